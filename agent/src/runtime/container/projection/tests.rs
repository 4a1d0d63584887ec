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

/// A pod in namespace `ns`.
fn in_ns() -> Pod {
    let mut p = Pod::default();
    p.metadata.namespace = "ns".into();
    p
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
        let p = payload(
            &vol(v),
            "spec.volumes[0]",
            &in_ns(),
            &NodeFacts::default(),
            &src,
        )
        .unwrap();
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
        let e = payload(
            &vol(v.clone()),
            "spec.volumes[0]",
            &in_ns(),
            &NodeFacts::default(),
            &src,
        )
        .unwrap_err();
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
    let mut pod = in_ns();
    pod.spec.volumes = vec![
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
    let first = fingerprint(&pod, &src);
    assert_eq!(first, "cm/cfg=7;cm/absent=missing;secret/creds=;");
    assert_eq!(fingerprint(&pod, &src), first);
    set_rv(&mut src, "8");
    assert_ne!(fingerprint(&pod, &src), first);
}

/// A pod with labels, annotations and resources, for the downward API.
fn labelled() -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "web-1", "namespace": "ns", "uid": "u-1",
            "labels": {"tier": "front", "app": "web"},
            "annotations": {"note": "say \"hi\"\n\tbye\\", "z": "ü"}},
        "spec": {"containers": [{"name": "c", "image": "busybox",
            "resources": {"limits": {"cpu": "250m", "memory": "64Mi"}, "requests": {"memory": "32Mi"}}}]}
    }))
    .unwrap()
}

#[test]
fn go_quote_escapes_as_go_does() {
    // Expected strings are what Go's strconv.Quote prints.
    for (input, want) in [
        ("plain", r#""plain""#),
        ("a\"b", r#""a\"b""#),
        ("back\\slash", r#""back\\slash""#),
        ("l1\nl2\tx\r", r#""l1\nl2\tx\r""#),
        ("\u{7}\u{8}\u{c}\u{b}", r#""\a\b\f\v""#),
        ("\u{1}\u{7f}", r#""\x01\x7f""#),
        ("\u{85}", r#""\u0085""#),
        ("ünï 日本", r#""ünï 日本""#),
        ("", r#""""#),
    ] {
        assert_eq!(go_quote(input), want, "{input:?}");
    }
}

#[test]
fn downward_api_files_are_the_kubelets() {
    let pod = labelled();
    let node = NodeFacts {
        host_ip: String::new(),
        cpu_milli: 4000,
        memory: 8 << 30,
    };
    let v = vol(
        json!({"name": "info", "downwardAPI": {"defaultMode": 0o600, "items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
            {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
            {"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}},
            {"path": "uid", "fieldRef": {"fieldPath": "metadata.uid"}, "mode": 0o444},
            {"path": "sub/tier", "fieldRef": {"fieldPath": "metadata.labels['tier']"}},
            {"path": "note", "fieldRef": {"fieldPath": "metadata.annotations['note']"}},
            {"path": "cpu_limit", "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu", "divisor": "1m"}},
            {"path": "cpu_cores", "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu"}},
            {"path": "mem_mi", "resourceFieldRef": {"containerName": "c", "resource": "requests.memory", "divisor": "1Mi"}},
        ]}}),
    );
    let p = payload(&v, "spec.volumes[0]", &pod, &node, &sources()).unwrap();
    let s = |p: &str, c: &str, m: u32| (p.to_string(), c.to_string(), m);
    assert_eq!(
        files(&p),
        vec![
            s(
                "annotations",
                "note=\"say \\\"hi\\\"\\n\\tbye\\\\\"\nz=\"ü\"",
                0o600
            ),
            s("cpu_cores", "1", 0o600),
            s("cpu_limit", "250", 0o600),
            s("labels", "app=\"web\"\ntier=\"front\"", 0o600),
            s("mem_mi", "32", 0o600),
            s("name", "web-1", 0o600),
            s("note", "say \"hi\"\n\tbye\\", 0o600),
            s("ns", "ns", 0o600),
            s("sub/tier", "front", 0o600),
            s("uid", "u-1", 0o444),
        ]
    );
    // As a projected source, beside a ConfigMap, with the projection's mode.
    let v = vol(json!({"name": "all", "projected": {"sources": [
        {"configMap": {"name": "cfg", "items": [{"key": "other", "path": "other"}]}},
        {"downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}]}}));
    let p = payload(&v, "spec.volumes[0]", &pod, &node, &sources()).unwrap();
    assert_eq!(
        files(&p),
        vec![
            s("labels", "app=\"web\"\ntier=\"front\"", 0o644),
            s("other", "o", 0o644)
        ]
    );
    // A container that is not there names the field.
    let v = vol(json!({"name": "x", "downwardAPI": {"items": [
        {"path": "m", "resourceFieldRef": {"containerName": "nope", "resource": "limits.memory"}}]}}));
    let e = payload(&v, "spec.volumes[0]", &pod, &node, &sources()).unwrap_err();
    assert_eq!(
        e.field,
        "spec.volumes[0].downwardAPI.items[0].resourceFieldRef.containerName"
    );
}

#[test]
fn the_fingerprint_follows_labels_only_with_a_downward_api_volume() {
    let src = sources();
    let mut pod = labelled();
    pod.spec.volumes = vec![vol(json!({"name": "a", "configMap": {"name": "cfg"}}))];
    let before = fingerprint(&pod, &src);
    pod.metadata.labels.insert("v".into(), "2".into());
    assert_eq!(fingerprint(&pod, &src), before);
    pod.spec
        .volumes
        .push(vol(json!({"name": "d", "downwardAPI": {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}})));
    let with = fingerprint(&pod, &src);
    pod.metadata.labels.insert("v".into(), "3".into());
    assert_ne!(fingerprint(&pod, &src), with);
    let again = fingerprint(&pod, &src);
    pod.metadata.annotations.insert("a".into(), "b".into());
    assert_ne!(fingerprint(&pod, &src), again);
}
