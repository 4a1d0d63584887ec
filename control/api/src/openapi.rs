//! OpenAPI v3 schemas of the served kinds, derived from the API types
//! themselves (schemars), so they cannot drift from what keel decodes:
//! serde's renames, defaults and flattened fields shape them, and the
//! types' doc comments become their descriptions. keel-control serves them
//! as `components.schemas` of each group-version's OpenAPI document, where
//! `kubectl explain` finds a kind's schema by its
//! `x-kubernetes-group-version-kind` extension, follows `$ref`s and prints
//! `description`s, field types and `required`.
//!
//! What schemars derives is then shaped the way Kubernetes' own documents
//! are, for what kubectl prints:
//! - an enum of strings is inline where it is used, `type: string` with
//!   `enum`, its values' doc comments listed in the description under
//!   "Possible enum values" (schemars makes a `oneOf` of one schema per
//!   documented value, which kubectl shows as `<Object>`);
//! - a field with no doc comment of its own whose type is a named schema
//!   carries that type's description beside its `$ref`, so the list of a
//!   kind's fields has a description for it (kubectl reads a field's own
//!   `description` there and resolves the `$ref` everywhere else, so the
//!   text is not shown twice);
//! - `apiVersion` and `kind` of every kind carry Kubernetes' usual meaning.
//!
//! Fields keel accepts and keeps without acting on them
//! ([`crate::resource::preserved`]) are not listed: keel-control warns about
//! each by path.

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::served::KINDS;

/// The extension naming the kind a schema (or a path's operation) is of.
pub const GVK_EXTENSION: &str = "x-kubernetes-group-version-kind";

/// Where `$ref`s point: `#/components/schemas/NAME`.
pub const REF_PREFIX: &str = "#/components/schemas/";

const API_VERSION_DOC: &str = "The versioned schema of this representation of an object: `v1` for the core group, `GROUP/VERSION` for the others. keel-control accepts only the version it serves for the kind and fills it in on every object it returns.";
const KIND_DOC: &str = "The kind of object this is (`Pod`, `Service` …), in CamelCase. keel-control fills it in on every object it returns.";

/// The component schemas of one group-version's OpenAPI document: each
/// served kind of `group_version` with its group-version-kind extension,
/// and every schema they refer to. Empty when no kind is of that
/// group-version.
pub fn component_schemas(group_version: &str) -> Map<String, Value> {
    let kinds: Vec<_> = KINDS
        .iter()
        .filter(|k| k.api_version == group_version)
        .collect();
    if kinds.is_empty() {
        return Map::new();
    }
    let mut generator = SchemaSettings::openapi3().into_generator();
    for k in &kinds {
        let reference = k.kind.json_schema(&mut generator);
        debug_assert_eq!(
            reference.get("$ref").and_then(Value::as_str),
            Some(format!("{REF_PREFIX}{}", k.name).as_str()),
            "a kind's schema is named after the kind"
        );
    }
    let mut defs = generator.take_definitions(true);
    for def in defs.values_mut() {
        visit(def, &mut |s| {
            reflow(s);
            unwrap_nullable(s);
            collapse_enum(s);
        });
    }
    let named = defs.clone();
    for def in defs.values_mut() {
        visit(def, &mut |s| inline_or_describe(s, &named));
    }
    drop_unreferenced(&mut defs, &kinds.iter().map(|k| k.name).collect::<Vec<_>>());
    for k in &kinds {
        let def = defs
            .get_mut(k.name)
            .and_then(Value::as_object_mut)
            .expect("every kind's schema is an object");
        def.insert(
            GVK_EXTENSION.into(),
            json!([{"group": k.group(), "version": k.version(), "kind": k.name}]),
        );
        if let Some(Value::Object(props)) = def.get_mut("properties") {
            for (field, doc) in [("apiVersion", API_VERSION_DOC), ("kind", KIND_DOC)] {
                if let Some(Value::Object(p)) = props.get_mut(field) {
                    p.entry("description").or_insert_with(|| doc.into());
                }
            }
        }
    }
    defs
}

/// Calls `f` on `schema` and then on each of its subschemas, depth first.
fn visit(schema: &mut Value, f: &mut impl FnMut(&mut Map<String, Value>)) {
    let Value::Object(s) = schema else { return };
    f(s);
    if referenced(s).is_some() {
        // Nothing to shape inside a reference.
        return;
    }
    if let Some(Value::Object(props)) = s.get_mut("properties") {
        for p in props.values_mut() {
            visit(p, f);
        }
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(sub) = s.get_mut(key) {
            visit(sub, f);
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(subs)) = s.get_mut(key) {
            for sub in subs {
                visit(sub, f);
            }
        }
    }
}

/// `oneOf` of single string values (what schemars makes of an enum whose
/// values have doc comments) → `type: string` with `enum`, the values' docs
/// in the description.
fn collapse_enum(s: &mut Map<String, Value>) {
    let Some(Value::Array(alternatives)) = s.get("oneOf") else {
        return;
    };
    let mut values = Vec::new();
    let mut docs = Vec::new();
    for a in alternatives {
        let Some(a) = a.as_object() else { return };
        if a.keys()
            .any(|k| !matches!(k.as_str(), "type" | "enum" | "description"))
            || a.get("type").is_some_and(|t| t != "string")
        {
            return;
        }
        let Some(Value::Array(these)) = a.get("enum") else {
            return;
        };
        if !these.iter().all(Value::is_string) {
            return;
        }
        // schemars groups values without docs into one alternative.
        if let (Some(Value::String(doc)), [Value::String(value)]) =
            (a.get("description"), these.as_slice())
        {
            docs.push(format!(" - `{value:?}` {}", one_line(doc)));
        }
        values.extend(these.iter().cloned());
    }
    s.remove("oneOf");
    s.insert("type".into(), "string".into());
    s.insert("enum".into(), Value::Array(values));
    if !docs.is_empty() {
        let list = format!("Possible enum values:\n{}", docs.join("\n"));
        let description = match s.get("description").and_then(Value::as_str) {
            Some(d) => format!("{d}\n\n{list}"),
            None => list,
        };
        s.insert("description".into(), description.into());
    }
}

fn one_line(doc: &str) -> String {
    doc.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The schema name `s` refers to: by `$ref`, or by an `allOf` of one `$ref`
/// (what OpenAPI 3.0 needs for a `$ref` with a description beside it).
fn referenced(s: &Map<String, Value>) -> Option<String> {
    let reference = match s.get("allOf") {
        Some(Value::Array(all)) if all.len() == 1 => all[0].get("$ref"),
        _ => s.get("$ref"),
    };
    reference?
        .as_str()?
        .strip_prefix(REF_PREFIX)
        .map(str::to_string)
}

/// A reference to an enum → the enum itself, inline; a reference to a
/// described type from a field with no description → the type's
/// description beside it (see the module doc).
fn inline_or_describe(s: &mut Map<String, Value>, defs: &Map<String, Value>) {
    let Some(name) = referenced(s) else { return };
    let Some(Value::Object(def)) = defs.get(&name) else {
        return;
    };
    if def.contains_key("enum") {
        let own = s
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_string);
        let mut inline = def.clone();
        for (k, v) in std::mem::take(s) {
            if !matches!(k.as_str(), "$ref" | "allOf" | "description") {
                inline.insert(k, v);
            }
        }
        let description = match (own, def.get("description").and_then(Value::as_str)) {
            (Some(own), Some(of_type)) => Some(format!("{own}\n\n{of_type}")),
            (Some(own), None) => Some(own),
            (None, of_type) => of_type.map(str::to_string),
        };
        if let Some(d) = description {
            inline.insert("description".into(), d.into());
        }
        *s = inline;
    } else if !s.contains_key("description")
        && let Some(d) = def.get("description")
    {
        // A bare `$ref` with the description beside it: kubectl resolves
        // the `$ref` when it explains the field itself, and shows the
        // text only in the list of fields. (The object's `default` goes:
        // it is the type's `Default`, noise in a reference.)
        *s = Map::new();
        s.insert("$ref".into(), format!("{REF_PREFIX}{name}").into());
        s.insert("description".into(), d.clone());
    }
}

/// `anyOf: [X, {nullable}]` (what schemars makes of an `Option` of a named
/// schema) → X, nullable: kubectl shows an `anyOf` as `<Object>`.
fn unwrap_nullable(s: &mut Map<String, Value>) {
    let Some(Value::Array(any)) = s.get("anyOf") else {
        return;
    };
    let is_null = |v: &Value| {
        v.get("nullable") == Some(&Value::Bool(true)) && v.get("enum") == Some(&json!([null]))
    };
    let [some, null] = any.as_slice() else { return };
    if !is_null(null) {
        return;
    }
    let Some(some) = some.as_object().cloned() else {
        return;
    };
    s.remove("anyOf");
    if some.contains_key("$ref") {
        s.insert("allOf".into(), json!([{"$ref": some["$ref"]}]));
    } else {
        s.extend(some);
    }
    s.insert("nullable".into(), true.into());
}

/// Doc comments' line breaks → spaces, so kubectl wraps the text itself;
/// paragraphs and list items (`- `) keep theirs.
fn reflow(s: &mut Map<String, Value>) {
    let Some(Value::String(d)) = s.get("description") else {
        return;
    };
    let paragraphs: Vec<String> = d
        .split("\n\n")
        .map(|p| {
            let mut out = String::new();
            for line in p.lines() {
                let line = line.trim();
                if !out.is_empty() {
                    out.push(if line.starts_with("- ") { '\n' } else { ' ' });
                }
                if line.starts_with("- ") {
                    out.push(' ');
                }
                out.push_str(line);
            }
            out
        })
        .collect();
    s.insert("description".into(), paragraphs.join("\n\n").into());
}

/// Drops the schemas nothing refers to any more (enums now inline).
fn drop_unreferenced(defs: &mut Map<String, Value>, roots: &[&str]) {
    let mut used: Vec<String> = roots.iter().map(|r| r.to_string()).collect();
    let mut i = 0;
    while i < used.len() {
        if let Some(def) = defs.get(&used[i]) {
            let mut found = Vec::new();
            refs(def, &mut found);
            for f in found {
                if !used.contains(&f) {
                    used.push(f);
                }
            }
        }
        i += 1;
    }
    defs.retain(|name, _| used.contains(name));
}

/// Every schema name `value` refers to, anywhere inside it.
pub fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => {
                        out.push(r.strip_prefix(REF_PREFIX).unwrap_or(r).to_string())
                    }
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests;
