use serde_json::{Value, json};

use super::*;

fn group_versions() -> Vec<&'static str> {
    let mut gvs: Vec<&str> = KINDS.iter().map(|k| k.api_version).collect();
    gvs.dedup();
    gvs.sort();
    gvs.dedup();
    gvs
}

/// The schema at `path` (`Pod.spec.containers.image`), following `$ref`s,
/// `allOf`s of one and array items as kubectl explain does.
fn field<'a>(defs: &'a Map<String, Value>, path: &str) -> &'a Value {
    let mut parts = path.split('.');
    let mut at = &defs[parts.next().unwrap()];
    for part in parts {
        at = &resolve(defs, at)["properties"][part];
        assert!(!at.is_null(), "{path}: no field {part}");
    }
    at
}

fn resolve<'a>(defs: &'a Map<String, Value>, mut s: &'a Value) -> &'a Value {
    loop {
        if let Some(items) = s.get("items") {
            s = items;
        } else if let Some(Value::Array(all)) = s.get("allOf") {
            s = &all[0];
        } else if let Some(Value::String(r)) = s.get("$ref") {
            s = &defs[r.strip_prefix(REF_PREFIX).unwrap()];
        } else {
            return s;
        }
    }
}

#[test]
fn every_served_kind_has_a_schema_with_its_group_version_kind() {
    for k in &KINDS {
        let defs = component_schemas(k.api_version);
        let schema = defs
            .get(k.name)
            .unwrap_or_else(|| panic!("{}: no schema in {}", k.name, k.api_version));
        assert_eq!(
            schema[GVK_EXTENSION],
            json!([{"group": k.group(), "version": k.version(), "kind": k.name}]),
            "{}",
            k.name
        );
        assert_eq!(schema["type"], "object", "{}", k.name);
        for field in ["apiVersion", "kind", "metadata"] {
            let d = &schema["properties"][field]["description"];
            assert!(d.is_string(), "{}.{field}: no description", k.name);
        }
    }
    // Only the served kinds carry the extension, each in its own document.
    for gv in group_versions() {
        let defs = component_schemas(gv);
        let with: Vec<&String> = defs
            .iter()
            .filter(|(_, s)| s.get(GVK_EXTENSION).is_some())
            .map(|(n, _)| n)
            .collect();
        let served: Vec<&str> = KINDS
            .iter()
            .filter(|k| k.api_version == gv)
            .map(|k| k.name)
            .collect();
        assert_eq!(
            with.len(),
            served.len(),
            "{gv}: {with:?} against {served:?}"
        );
    }
    assert!(component_schemas("batch/v1").is_empty());
}

#[test]
fn every_ref_resolves_within_its_document() {
    for gv in group_versions() {
        let defs = component_schemas(gv);
        let mut found = Vec::new();
        for (name, schema) in &defs {
            // schemars would number a second type of the same name.
            assert!(
                !name.ends_with(|c: char| c.is_ascii_digit()),
                "{gv}: {name}"
            );
            refs(schema, &mut found);
        }
        assert!(found.len() > 10, "{gv}: {found:?}");
        for r in &found {
            assert!(defs.contains_key(r), "{gv}: $ref {r:?} resolves to nothing");
        }
        let text = serde_json::to_string(&defs).unwrap();
        assert!(!text.contains("\"oneOf\""), "{gv}: an enum left as oneOf");
        assert!(
            !text.contains("\"anyOf\":[{\"$ref\""),
            "{gv}: a nullable reference left as anyOf"
        );
    }
}

#[test]
fn descriptions_come_from_the_doc_comments() {
    let core = component_schemas("v1");
    let image = field(&core, "Pod.spec.containers.image");
    assert_eq!(image["type"], "string");
    let d = image["description"].as_str().unwrap();
    assert!(d.contains("image reference"), "{d}");
    // Reflowed for kubectl to wrap: no line breaks from the source.
    assert!(!d.contains('\n'), "{d:?}");
    assert!(
        resolve(&core, &core["Pod"])["description"]
            .as_str()
            .unwrap()
            .contains("containers"),
    );

    let apps = component_schemas("apps/v1");
    let replicas = field(&apps, "Deployment.spec.replicas");
    assert_eq!(replicas["type"], "integer");
    assert!(
        replicas["description"]
            .as_str()
            .unwrap()
            .contains("Defaults to 1")
    );
    // A Deployment's document carries the pod template's schemas too.
    assert!(field(&apps, "Deployment.spec.template.spec.containers.image").is_object());
}

#[test]
fn required_fields_enums_and_int_or_string_as_kubernetes_writes_them() {
    let core = component_schemas("v1");
    let port = resolve(&core, field(&core, "Service.spec.ports"));
    assert_eq!(port["required"], json!(["port"]));
    let target = field(&core, "Service.spec.ports.targetPort");
    assert_eq!(resolve(&core, target)["x-kubernetes-int-or-string"], true);
    // Enums are inline, their values' docs in the description.
    let ty = field(&core, "Service.spec.type");
    assert_eq!(ty["enum"], json!(["ClusterIP", "NodePort", "ExternalName"]));
    assert!(
        ty["description"]
            .as_str()
            .unwrap()
            .contains("`\"ExternalName\"` No address")
    );
    assert!(!core.contains_key("ServiceType"));
    // Fields keel keeps without acting on them are not listed.
    assert!(
        resolve(&core, field(&core, "Service.spec"))["properties"]
            .get("clusterIPs")
            .is_none()
    );
}
