//! PATCH bodies applied to an object's JSON, without I/O: JSON merge patch
//! (RFC 7386), JSON patch (RFC 6902) and Kubernetes' strategic merge patch,
//! whose lists of objects merge element by element on the merge key
//! Kubernetes declares for the field (containers by `name`, container
//! ports by `containerPort`, a Service's ports by `port` …) and which
//! understands the `$patch: delete|replace|merge` and
//! `$setElementOrder/FIELD` directives kubectl sends. Lists without a
//! merge key (and every list in a merge patch) are replaced whole.

use serde_json::{Map, Value};

/// Why a patch could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    #[error("the patch is not a valid {kind}: {reason}")]
    Malformed { kind: &'static str, reason: String },
    #[error("json patch operation {index} ({op} {path}): {reason}")]
    Operation {
        index: usize,
        op: String,
        path: String,
        reason: String,
    },
}

/// RFC 7386: objects merge key by key, `null` removes, anything else
/// (lists included) replaces.
pub fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let map = target.as_object_mut().expect("made an object above");
    for (k, v) in patch {
        if v.is_null() {
            map.remove(k);
        } else {
            merge(map.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// RFC 6902: `add`, `remove`, `replace`, `move`, `copy` and `test`, in
/// order; the first failing operation fails the whole patch.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let malformed = |reason: &str| PatchError::Malformed {
        kind: "JSON patch",
        reason: reason.to_string(),
    };
    let ops = patch
        .as_array()
        .ok_or_else(|| malformed("it must be a list of operations"))?;
    let mut doc = target.clone();
    for (index, op) in ops.iter().enumerate() {
        let name = op
            .get("op")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed(&format!("operation {index} has no \"op\"")))?;
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed(&format!("operation {index} has no \"path\"")))?;
        let fail = |reason: String| PatchError::Operation {
            index,
            op: name.to_string(),
            path: path.to_string(),
            reason,
        };
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| fail("needs a \"value\"".into()))
        };
        let from = || {
            op.get("from")
                .and_then(Value::as_str)
                .ok_or_else(|| fail("needs a \"from\"".into()))
        };
        match name {
            "add" => add(&mut doc, path, value()?).map_err(fail)?,
            "remove" => drop(remove(&mut doc, path).map_err(fail)?),
            "replace" => {
                remove(&mut doc, path).map_err(fail)?;
                add(&mut doc, path, value()?).map_err(fail)?;
            }
            "move" => {
                let v = remove(&mut doc, from()?).map_err(fail)?;
                add(&mut doc, path, v).map_err(fail)?;
            }
            "copy" => {
                let v = doc
                    .pointer(from()?)
                    .cloned()
                    .ok_or_else(|| fail(format!("{} does not exist", from().unwrap_or(""))))?;
                add(&mut doc, path, v).map_err(fail)?;
            }
            "test" => {
                if doc.pointer(path) != Some(&value()?) {
                    return Err(fail("the value differs".into()));
                }
            }
            other => return Err(fail(format!("unknown op {other:?}"))),
        }
    }
    *target = doc;
    Ok(())
}

/// Splits a JSON pointer into its parent and its unescaped last token.
fn split_pointer(path: &str) -> Result<(&str, String), String> {
    let cut = path
        .rfind('/')
        .ok_or_else(|| format!("{path:?} is not a JSON pointer"))?;
    let last = path[cut + 1..].replace("~1", "/").replace("~0", "~");
    Ok((&path[..cut], last))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = split_pointer(path)?;
    match doc.pointer_mut(parent) {
        Some(Value::Object(m)) => {
            m.insert(last, value);
            Ok(())
        }
        Some(Value::Array(a)) => {
            let i = if last == "-" {
                a.len()
            } else {
                last.parse::<usize>()
                    .ok()
                    .filter(|i| *i <= a.len())
                    .ok_or_else(|| format!("index {last} is out of range"))?
            };
            a.insert(i, value);
            Ok(())
        }
        Some(_) => Err(format!("{parent} is neither an object nor a list")),
        None => Err(format!("{parent:?} does not exist")),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split_pointer(path)?;
    let missing = || format!("{path} does not exist");
    match doc.pointer_mut(parent) {
        Some(Value::Object(m)) => m.remove(&last).ok_or_else(missing),
        Some(Value::Array(a)) => match last.parse::<usize>() {
            Ok(i) if i < a.len() => Ok(a.remove(i)),
            _ => Err(missing()),
        },
        _ => Err(missing()),
    }
}

/// The merge key Kubernetes declares (`patchMergeKey`) for the list at
/// `field` inside an object reached by `parents` (field names from the
/// root, list indices left out).
pub fn merge_key(parents: &[String], field: &str) -> Option<&'static str> {
    let parent = parents.last().map(String::as_str).unwrap_or("");
    Some(match field {
        "containers" | "initContainers" | "ephemeralContainers" => "name",
        "env" | "volumes" | "imagePullSecrets" | "resourceClaims" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "hostAliases" => "ip",
        "topologySpreadConstraints" => "topologyKey",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "addresses" if parent == "status" => "type",
        // A container's ports merge by containerPort, a Service's by port.
        "ports"
            if matches!(
                parent,
                "containers" | "initContainers" | "ephemeralContainers"
            ) =>
        {
            "containerPort"
        }
        "ports" if parent == "spec" => "port",
        _ => return None,
    })
}

/// Lists of scalars Kubernetes merges as sets (`patchStrategy: merge`).
fn merges_scalars(field: &str) -> bool {
    field == "finalizers"
}

/// Applies a strategic merge patch to `target`.
pub fn strategic(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let Value::Object(_) = patch else {
        return Err(PatchError::Malformed {
            kind: "strategic merge patch",
            reason: "it must be a JSON object".into(),
        });
    };
    strategic_at(target, patch, &mut Vec::new())
}

fn strategic_at(
    target: &mut Value,
    patch: &Value,
    parents: &mut Vec<String>,
) -> Result<(), PatchError> {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return Ok(());
    };
    match patch.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut replaced = patch.clone();
            replaced.remove("$patch");
            *target = Value::Object(replaced);
            return Ok(());
        }
        Some("delete") => {
            *target = Value::Null;
            return Ok(());
        }
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let map = target.as_object_mut().expect("made an object above");
    let mut orders = Vec::new();
    for (k, v) in patch {
        if k == "$patch" || k == "$retainKeys" {
            continue;
        }
        if let Some(field) = k.strip_prefix("$setElementOrder/") {
            orders.push((field.to_string(), v.clone()));
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(gone)) = (map.get_mut(field), v) {
                list.retain(|x| !gone.contains(x));
            }
            continue;
        }
        if v.is_null() {
            map.remove(k);
            continue;
        }
        let entry = map.entry(k.clone()).or_insert(Value::Null);
        match v {
            Value::Array(items) => {
                if let Some(key) = merge_key(parents, k) {
                    merge_list(entry, items, key, parents, k)?;
                } else if merges_scalars(k) {
                    let list = entry.as_array().cloned().unwrap_or_default();
                    let mut merged = list;
                    for item in items {
                        if !merged.contains(item) {
                            merged.push(item.clone());
                        }
                    }
                    *entry = Value::Array(merged);
                } else {
                    *entry = v.clone();
                }
            }
            Value::Object(_) => {
                parents.push(k.clone());
                let result = strategic_at(entry, v, parents);
                parents.pop();
                result?;
                if entry.is_null() {
                    map.remove(k);
                }
            }
            _ => *entry = v.clone(),
        }
    }
    for (field, order) in orders {
        if let (Some(Value::Array(list)), Some(key)) =
            (map.get_mut(&field), merge_key(parents, &field))
            && let Value::Array(order) = order
        {
            reorder(list, &order, key);
        }
    }
    Ok(())
}

/// Merges the patch's `items` into the list at `entry` by `key`: an item
/// whose key is in the list merges into that element (`$patch: delete`
/// removes it, `$patch: replace` as the only item replaces the list),
/// others are appended.
fn merge_list(
    entry: &mut Value,
    items: &[Value],
    key: &str,
    parents: &mut Vec<String>,
    field: &str,
) -> Result<(), PatchError> {
    if items.len() == 1 && items[0].get("$patch").and_then(Value::as_str) == Some("replace") {
        *entry = Value::Array(vec![]);
        return Ok(());
    }
    if items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        let kept: Vec<Value> = items
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .cloned()
            .collect();
        *entry = Value::Array(kept);
        return Ok(());
    }
    if !entry.is_array() {
        *entry = Value::Array(vec![]);
    }
    let list = entry.as_array_mut().expect("made a list above");
    parents.push(field.to_string());
    for item in items {
        let Some(id) = item.get(key) else {
            // Without its merge key an item cannot be matched: it is added.
            list.push(item.clone());
            continue;
        };
        let deleting = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match list.iter().position(|e| e.get(key) == Some(id)) {
            Some(i) if deleting => drop(list.remove(i)),
            Some(i) => strategic_at(&mut list[i], item, parents)?,
            None if deleting => {}
            None => {
                let mut fresh = Value::Null;
                strategic_at(&mut fresh, item, parents)?;
                list.push(fresh);
            }
        }
    }
    parents.pop();
    Ok(())
}

/// Orders `list` as `order` lists the keys; elements it does not name
/// keep their relative order after those it does.
fn reorder(list: &mut [Value], order: &[Value], key: &str) {
    let rank = |v: &Value| {
        order
            .iter()
            .position(|o| o.get(key).is_some() && o.get(key) == v.get(key))
            .unwrap_or(usize::MAX)
    };
    list.sort_by_key(rank);
}

#[cfg(test)]
mod tests;
