use std::{collections::BTreeMap, sync::Arc};

use keel_api::{ConfigMap, Secret, Service};
use serde_json::json;

use super::*;

struct Map(
    BTreeMap<String, Arc<ConfigMap>>,
    BTreeMap<String, Arc<Secret>>,
);

impl Sources for Map {
    fn config_map(&self, ns: &str, name: &str) -> Fetched<Arc<ConfigMap>> {
        self.0
            .get(&format!("{ns}/{name}"))
            .cloned()
            .map_or(Fetched::Missing, Fetched::Found)
    }
    fn secret(&self, ns: &str, name: &str) -> Fetched<Arc<Secret>> {
        self.1
            .get(&format!("{ns}/{name}"))
            .cloned()
            .map_or(Fetched::Missing, Fetched::Found)
    }
    fn services(&self, _: &str) -> Vec<Arc<Service>> {
        Vec::new()
    }
}

fn sources() -> Map {
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "cfg", "namespace": "ns"},
        "data": {"app.conf": "a=1", "other": "o"}, "binaryData": {"bin": "AAE="}
    }))
    .unwrap();
    let mut s: Secret = serde_json::from_value(json!({
        "metadata": {"name": "creds", "namespace": "ns"},
        "stringData": {"password": "p"}
    }))
    .unwrap();
    s.normalize();
    Map(
        [("ns/cfg".to_string(), Arc::new(cm))].into(),
        [("ns/creds".to_string(), Arc::new(s))].into(),
    )
}

fn vol(v: serde_json::Value) -> Volume {
    serde_json::from_value(v).unwrap()
}

/// (path, contents, mode).
type File = (String, String, u32);

fn files(p: &Payload) -> Vec<File> {
    p.iter()
        .map(|(k, f)| {
            (
                k.clone(),
                String::from_utf8_lossy(&f.data).into_owned(),
                f.mode,
            )
        })
        .collect()
}

fn s(p: &str, d: &str, m: u32) -> File {
    (p.into(), d.into(), m)
}

#[test]
fn volumes_project_every_key_or_their_items_with_modes() {
    let src = sources();
    let cases: Vec<(serde_json::Value, Vec<File>)> = vec![
        (
            json!({"name": "v", "configMap": {"name": "cfg"}}),
            vec![
                s("app.conf", "a=1", 0o644),
                s("bin", "\u{0}\u{1}", 0o644),
                s("other", "o", 0o644),
            ],
        ),
        (
            json!({"name": "v", "configMap": {"name": "cfg", "defaultMode": 0o600,
                "items": [{"key": "app.conf", "path": "etc/app.conf"}, {"key": "other", "path": "o", "mode": 0o444}]}}),
            vec![s("etc/app.conf", "a=1", 0o600), s("o", "o", 0o444)],
        ),
        (
            json!({"name": "v", "secret": {"secretName": "creds", "defaultMode": 0o400}}),
            vec![s("password", "p", 0o400)],
        ),
        (
            json!({"name": "v", "secret": {"secretName": "absent", "optional": true}}),
            vec![],
        ),
        (
            json!({"name": "v", "configMap": {"name": "cfg", "optional": true,
                "items": [{"key": "nope", "path": "x"}, {"key": "other", "path": "y"}]}}),
            vec![s("y", "o", 0o644)],
        ),
        (
            json!({"name": "v", "projected": {"defaultMode": 0o440, "sources": [
                {"configMap": {"name": "cfg", "items": [{"key": "other", "path": "cfg/other"}]}},
                {"secret": {"name": "creds"}}]}}),
            vec![s("cfg/other", "o", 0o440), s("password", "p", 0o440)],
        ),
    ];
    for (v, want) in cases {
        let shown = v.to_string();
        let p = payload(&vol(v), "spec.volumes[0]", "ns", &src).unwrap();
        assert_eq!(files(&p), want, "{shown}");
    }
}

#[test]
fn missing_objects_keys_and_bad_paths_name_the_field() {
    let src = sources();
    let cases: &[(serde_json::Value, &str, &str)] = &[
        (
            json!({"name": "v", "configMap": {"name": "absent"}}),
            "spec.volumes[0].configMap",
            "configmap \"absent\" not found in namespace ns",
        ),
        (
            json!({"name": "v", "secret": {"secretName": "absent"}}),
            "spec.volumes[0].secret",
            "secret \"absent\" not found in namespace ns",
        ),
        (
            json!({"name": "v", "configMap": {"name": "cfg", "items": [{"key": "nope", "path": "x"}]}}),
            "spec.volumes[0].configMap.items[0].key",
            "ConfigMap ns/cfg has no key \"nope\"",
        ),
        (
            json!({"name": "v", "configMap": {"name": "cfg", "items": [{"key": "other", "path": "../x"}]}}),
            "spec.volumes[0].configMap.items[0].path",
            "\"../x\" contains '..'",
        ),
        (
            json!({"name": "v", "projected": {"sources": [{"secret": {"name": "gone"}}]}}),
            "spec.volumes[0].projected.sources[0].secret",
            "secret \"gone\" not found in namespace ns",
        ),
    ];
    for (v, field, message) in cases {
        let e = payload(&vol(v.clone()), "spec.volumes[0]", "ns", &src).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            (*field, *message),
            "{v}"
        );
    }
}

#[test]
fn the_fingerprint_follows_the_referenced_objects_versions() {
    let mut src = sources();
    let vols = vec![
        vol(json!({"name": "a", "configMap": {"name": "cfg"}})),
        vol(json!({"name": "b", "emptyDir": {}})),
        vol(json!({"name": "c", "projected": {"sources": [
            {"secret": {"name": "creds"}}, {"configMap": {"name": "absent"}}]}})),
    ];
    let set_rv = |src: &mut Map, rv: &str| {
        let mut cm = (*src.0["ns/cfg"]).clone();
        cm.metadata.resource_version = rv.into();
        src.0.insert("ns/cfg".into(), Arc::new(cm));
    };
    set_rv(&mut src, "7");
    let first = fingerprint(&vols, "ns", &src);
    assert_eq!(first, "cm/cfg=7;cm/absent=missing;secret/creds=;");
    assert_eq!(fingerprint(&vols, "ns", &src), first);
    set_rv(&mut src, "8");
    assert_ne!(fingerprint(&vols, "ns", &src), first);
}
