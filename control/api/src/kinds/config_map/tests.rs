//! ConfigMap and Secret validation, by a table of cases each naming the
//! field Kubernetes would name.

use serde_json::{Value, json};

use super::*;
use crate::{Resource, Secret};

fn cm(v: Value) -> ConfigMap {
    serde_json::from_value(v).unwrap()
}

fn secret(v: Value) -> Secret {
    serde_json::from_value(v).unwrap()
}

fn fields(errs: Vec<FieldError>) -> Vec<String> {
    errs.into_iter().map(|e| e.field).collect()
}

#[test]
fn config_maps_are_validated_as_kubernetes_does() {
    let big = "x".repeat(MAX_DATA_BYTES);
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({"metadata": {"name": "a.b-c", "namespace": "d"}, "data": {"k": "v", "a.b_c-D9": "v"}}),
            vec![],
        ),
        (
            json!({"metadata": {"name": "Bad_Name", "namespace": "d"}}),
            vec!["metadata.name"],
        ),
        (
            json!({"metadata": {"name": "a", "namespace": "d"}, "data": {"bad key": "v"}}),
            vec!["data[bad key]"],
        ),
        (
            json!({"metadata": {"name": "a", "namespace": "d"}, "data": {".": "v"}}),
            vec!["data[.]"],
        ),
        (
            json!({"metadata": {"name": "a", "namespace": "d"}, "data": {"..": "v"}}),
            vec!["data[..]"],
        ),
        (
            json!({"metadata": {"name": "a", "namespace": "d"}, "data": {"..x": "v"}}),
            vec!["data[..x]"],
        ),
        (
            json!({"metadata": {"name": "a", "namespace": "d"}, "data": {"a/b": "v"}}),
            vec!["data[a/b]"],
        ),
        (
            json!({"metadata": {"name": "a", "namespace": "d"}, "data": {"k": "v"}, "binaryData": {"k": "AAE="}}),
            vec!["binaryData[k]"],
        ),
        (
            json!({"metadata": {"name": "a", "namespace": "d"}, "binaryData": {"b": "not base64!"}}),
            vec!["binaryData[b]"],
        ),
        (
            json!({"metadata": {"name": "a", "namespace": "d"}, "data": {"k": big}}),
            vec![],
        ),
        (
            json!({"metadata": {"name": "a", "namespace": "d"}, "data": {"k": big, "l": "x"}}),
            vec!["data"],
        ),
        (
            json!({"metadata": {"name": "a"}}),
            vec!["metadata.namespace"],
        ),
    ];
    for (v, want) in cases {
        let shown = v.to_string().chars().take(120).collect::<String>();
        assert_eq!(fields(cm(v).validate()), want, "{shown}");
    }
    let c = cm(
        json!({"metadata": {"name": "a", "namespace": "d"}, "data": {"t": "x"}, "binaryData": {"b": "AAE="}}),
    );
    assert_eq!(c.entries()["b"], vec![0, 1]);
    assert_eq!(c.entries()["t"], b"x");
}

#[test]
fn immutable_config_maps_refuse_changes() {
    let old = cm(
        json!({"metadata": {"name": "a", "namespace": "d"}, "data": {"k": "v"}, "immutable": true}),
    );
    let same_labels = cm(
        json!({"metadata": {"name": "a", "namespace": "d", "labels": {"x": "y"}}, "data": {"k": "v"}, "immutable": true}),
    );
    assert!(same_labels.validate_update(&old).is_empty());
    let changed = cm(
        json!({"metadata": {"name": "a", "namespace": "d"}, "data": {"k": "w"}, "immutable": true}),
    );
    assert_eq!(fields(changed.validate_update(&old)), ["data"]);
    let unset = cm(json!({"metadata": {"name": "a", "namespace": "d"}, "data": {"k": "v"}}));
    assert_eq!(fields(unset.validate_update(&old)), ["immutable"]);
    // A mutable one may change and become immutable.
    let mutable = cm(json!({"metadata": {"name": "a", "namespace": "d"}, "data": {"k": "v"}}));
    assert!(changed.validate_update(&mutable).is_empty());
}

#[test]
fn secrets_are_validated_by_type() {
    let dcj = encode_base64(br#"{"auths":{"r.example":{"auth":"dTpw"}}}"#);
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({"metadata": {"name": "s", "namespace": "d"}, "data": {"k": "djE="}}),
            vec![],
        ),
        (
            json!({"metadata": {"name": "s", "namespace": "d"}, "data": {"k": "not base64!"}}),
            vec!["data[k]"],
        ),
        (
            json!({"metadata": {"name": "s", "namespace": "d"}, "stringData": {"bad key": "v"}}),
            vec!["stringData[bad key]"],
        ),
        (
            json!({"metadata": {"name": "s", "namespace": "d"}, "type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": dcj}}),
            vec![],
        ),
        (
            json!({"metadata": {"name": "s", "namespace": "d"}, "type": "kubernetes.io/dockerconfigjson", "stringData": {".dockerconfigjson": "{}"}}),
            vec![],
        ),
        (
            json!({"metadata": {"name": "s", "namespace": "d"}, "type": "kubernetes.io/dockerconfigjson"}),
            vec!["data[.dockerconfigjson]"],
        ),
        (
            json!({"metadata": {"name": "s", "namespace": "d"}, "type": "kubernetes.io/dockerconfigjson", "stringData": {".dockerconfigjson": "{nope"}}),
            vec!["data[.dockerconfigjson]"],
        ),
        (
            json!({"metadata": {"name": "s", "namespace": "d"}, "type": "kubernetes.io/dockercfg"}),
            vec!["data[.dockercfg]"],
        ),
        (
            json!({"metadata": {"name": "s", "namespace": "d"}, "type": "kubernetes.io/tls", "stringData": {"tls.crt": "c"}}),
            vec!["data[tls.key]"],
        ),
        (
            json!({"metadata": {"name": "s", "namespace": "d"}, "type": "kubernetes.io/basic-auth"}),
            vec!["data"],
        ),
        (
            json!({"metadata": {"name": "s", "namespace": "d"}, "type": "kubernetes.io/basic-auth", "stringData": {"username": "u"}}),
            vec![],
        ),
        (
            json!({"metadata": {"name": "s", "namespace": "d"}, "type": "kubernetes.io/ssh-auth"}),
            vec!["data[ssh-privatekey]"],
        ),
        (
            json!({"metadata": {"name": "s", "namespace": "d"}, "type": "example.com/custom"}),
            vec![],
        ),
    ];
    for (v, want) in cases {
        let shown = v.to_string();
        assert_eq!(fields(secret(v).validate()), want, "{shown}");
    }
}

#[test]
fn string_data_is_merged_into_data_and_wins() {
    let mut s = secret(json!({
        "metadata": {"name": "s", "namespace": "d"},
        "data": {"a": encode_base64(b"old"), "b": encode_base64(b"keep")},
        "stringData": {"a": "new"}
    }));
    s.normalize();
    assert!(s.string_data.is_empty());
    assert_eq!(s.type_, "Opaque");
    assert_eq!(s.get("a").unwrap(), b"new");
    assert_eq!(s.get("b").unwrap(), b"keep");
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["data"]["a"], "bmV3");
    assert!(json.get("stringData").is_none());
}

#[test]
fn a_secrets_type_and_immutable_data_cannot_change() {
    let old = secret(
        json!({"metadata": {"name": "s", "namespace": "d"}, "type": "Opaque", "data": {"k": "djE="}, "immutable": true}),
    );
    let retyped = secret(
        json!({"metadata": {"name": "s", "namespace": "d"}, "type": "kubernetes.io/basic-auth", "data": {"k": "djE="}, "immutable": true}),
    );
    assert_eq!(fields(retyped.validate_update(&old)), ["type"]);
    let changed = secret(
        json!({"metadata": {"name": "s", "namespace": "d"}, "type": "Opaque", "data": {"k": "djI="}, "immutable": true}),
    );
    assert_eq!(fields(changed.validate_update(&old)), ["data"]);
}

#[test]
fn a_secrets_debug_form_shows_no_value() {
    let s = secret(json!({"metadata": {"name": "s", "namespace": "d"},
        "data": {"k": encode_base64(b"hunter2")}, "stringData": {"p": "swordfish"}}));
    let shown = format!("{s:?}");
    assert!(
        !shown.contains("aHVudGVyMg") && !shown.contains("swordfish"),
        "{shown}"
    );
    assert!(shown.contains("\"k\""), "{shown}");
}
