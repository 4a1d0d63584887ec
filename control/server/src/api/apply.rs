//! Server-side apply (`application/apply-patch+yaml`), simplified: keel
//! keeps no `managedFields`. Each field manager's last applied
//! configuration is kept in the annotation `applied.keel.dev/MANAGER`;
//! applying sets every field the new configuration has (merged as a
//! strategic merge patch: lists by their merge keys) and removes the
//! fields the manager's previous configuration had and the new one does
//! not — kubectl's client-side three-way merge, done on the server. Fields
//! set by others are never reported as conflicts: the last applier wins,
//! with or without `force`.

use serde_json::{Map, Value, json};

use super::patch;

/// The annotation keeping `manager`'s last applied configuration.
pub fn annotation(manager: &str) -> String {
    let name: String = manager
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    format!(
        "applied.keel.dev/{}",
        name.trim_matches(|c: char| !c.is_ascii_alphanumeric())
    )
}

/// Parses an apply body (YAML, or JSON, which is YAML too).
pub fn parse(body: &[u8]) -> Result<Value, String> {
    let v: Value = serde_yaml_ng::from_slice(body)
        .map_err(|e| format!("the apply configuration is not YAML: {e}"))?;
    if !v.is_object() {
        return Err("the apply configuration must be an object".into());
    }
    Ok(v)
}

/// Records `applied` in its own annotation, as stored with the object.
fn record(doc: &mut Value, applied: &Value, manager: &str) {
    let mut kept = applied.clone();
    if let Some(m) = kept
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        m.retain(|k, _| !k.starts_with("applied.keel.dev/"));
    }
    // A Secret's values stay out of its metadata: only the keys are kept
    // (all that finding removed fields needs).
    if kept.get("kind").and_then(Value::as_str) == Some("Secret") {
        for field in ["data", "stringData"] {
            if let Some(m) = kept.get_mut(field).and_then(Value::as_object_mut) {
                for v in m.values_mut() {
                    *v = json!("");
                }
            }
        }
    }
    let text = kept.to_string();
    let meta = doc
        .as_object_mut()
        .expect("an object")
        .entry("metadata")
        .or_insert_with(|| json!({}));
    let annotations = meta
        .as_object_mut()
        .expect("metadata is an object")
        .entry("annotations")
        .or_insert_with(|| json!({}));
    if let Some(a) = annotations.as_object_mut() {
        a.insert(annotation(manager), Value::String(text));
    }
}

/// The object to create from a first apply.
pub fn first(applied: &Value, manager: &str) -> Result<Value, String> {
    let mut doc = applied.clone();
    record(&mut doc, applied, manager);
    Ok(doc)
}

/// Applies `applied` by `manager` to the stored object `doc`.
pub fn apply(doc: &mut Value, applied: &Value, manager: &str) -> Result<(), String> {
    let previous = doc
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(annotation(manager)))
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str::<Value>(s).ok());
    if let Some(prev) = previous {
        let removals = removed(&prev, applied, &mut Vec::new());
        if let Some(removals) = removals {
            patch::strategic(doc, &removals).map_err(|e| e.to_string())?;
        }
    }
    patch::strategic(doc, applied).map_err(|e| e.to_string())?;
    record(doc, applied, manager);
    Ok(())
}

/// A strategic merge patch removing what `prev` had and `next` has not
/// (nulls for fields, `$patch: delete` for keyed list items); `None` when
/// nothing was removed.
fn removed(prev: &Value, next: &Value, parents: &mut Vec<String>) -> Option<Value> {
    let (Value::Object(prev), Value::Object(next)) = (prev, next) else {
        return None;
    };
    let mut out = Map::new();
    for (k, pv) in prev {
        match next.get(k) {
            None => {
                out.insert(k.clone(), Value::Null);
            }
            Some(nv) => match (pv, nv) {
                (Value::Object(_), Value::Object(_)) => {
                    parents.push(k.clone());
                    let r = removed(pv, nv, parents);
                    parents.pop();
                    if let Some(r) = r {
                        out.insert(k.clone(), r);
                    }
                }
                (Value::Array(pl), Value::Array(nl)) => {
                    let Some(key) = patch::merge_key(parents, k) else {
                        continue;
                    };
                    let mut items = Vec::new();
                    parents.push(k.clone());
                    for p in pl {
                        let Some(id) = p.get(key) else { continue };
                        match nl.iter().find(|n| n.get(key) == Some(id)) {
                            None => items.push(json!({key: id, "$patch": "delete"})),
                            Some(n) => {
                                if let Some(mut r) = removed(p, n, parents) {
                                    r[key] = id.clone();
                                    items.push(r);
                                }
                            }
                        }
                    }
                    parents.pop();
                    if !items.is_empty() {
                        out.insert(k.clone(), Value::Array(items));
                    }
                }
                _ => {}
            },
        }
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_second_apply_removes_what_the_manager_dropped_and_keeps_others_fields() {
        let first_cfg = json!({"metadata": {"name": "w", "labels": {"a": "1", "b": "2"}},
            "spec": {"template": {"spec": {"containers": [
                {"name": "web", "image": "w:1", "env": [{"name": "X", "value": "1"}]},
                {"name": "side", "image": "s:1"}]}}}});
        let mut doc = first(&first_cfg, "kubectl").unwrap();
        // Someone else labels it.
        doc["metadata"]["labels"]["other"] = json!("x");
        let second = json!({"metadata": {"name": "w", "labels": {"a": "1"}},
            "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "w:2"}]}}}});
        apply(&mut doc, &second, "kubectl").unwrap();
        assert_eq!(doc["metadata"]["labels"], json!({"a": "1", "other": "x"}));
        assert_eq!(
            doc["spec"]["template"]["spec"]["containers"],
            json!([{"name": "web", "image": "w:2"}])
        );
        let kept: Value = serde_json::from_str(
            doc["metadata"]["annotations"]["applied.keel.dev/kubectl"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(kept, second);
        assert!(parse(b"- a").is_err());
        assert_eq!(
            annotation("kubectl-client-side-apply"),
            "applied.keel.dev/kubectl-client-side-apply"
        );
    }

    #[test]
    fn a_secrets_applied_configuration_keeps_its_keys_not_its_values() {
        let applied = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
            "stringData": {"password": "hunter2"}, "data": {"token": "dG9r"}});
        let doc = first(&applied, "kubectl").unwrap();
        let kept = doc["metadata"]["annotations"][annotation("kubectl")]
            .as_str()
            .unwrap();
        assert!(
            !kept.contains("hunter2") && !kept.contains("dG9r"),
            "{kept}"
        );
        let kept: Value = serde_json::from_str(kept).unwrap();
        assert_eq!(kept["stringData"], json!({"password": ""}));
        // The object itself still carries the values.
        assert_eq!(doc["stringData"]["password"], "hunter2");
        // A later apply without the key removes it.
        let mut doc = doc;
        let next = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
            "stringData": {"password": "hunter2"}});
        apply(&mut doc, &next, "kubectl").unwrap();
        assert!(doc["data"].get("token").is_none(), "{doc}");
    }
}
