use serde_json::json;

use super::*;

fn secret(type_: &str, key: &str, value: serde_json::Value) -> Secret {
    let mut s: Secret = serde_json::from_value(json!({
        "metadata": {"name": "regcred", "namespace": "ns"},
        "type": type_,
        "stringData": {key: value.to_string()}
    }))
    .unwrap();
    s.normalize();
    s
}

fn basic(u: &str, p: &str) -> RegistryAuth {
    RegistryAuth::Basic {
        username: u.into(),
        password: p.into(),
    }
}

#[test]
fn docker_configs_give_credentials_by_registry() {
    let s = secret(
        "kubernetes.io/dockerconfigjson",
        ".dockerconfigjson",
        json!({"auths": {
            "https://r.example:5000/v1/": {"auth": "dTE6cDE="},
            "docker.io": {"username": "u2", "password": "p2"},
            "tok.example": {"registrytoken": "t"},
            "empty.example": {}
        }}),
    );
    let got = from_secret(&s).unwrap();
    assert_eq!(
        got,
        [
            ("index.docker.io".to_string(), basic("u2", "p2")),
            ("r.example:5000".to_string(), basic("u1", "p1")),
            ("tok.example".to_string(), RegistryAuth::Bearer("t".into())),
        ]
        .into()
    );
    let legacy = secret(
        "kubernetes.io/dockercfg",
        ".dockercfg",
        json!({"r.example": {"auth": "dTE6cDE="}}),
    );
    assert_eq!(
        from_secret(&legacy).unwrap(),
        [("r.example".to_string(), basic("u1", "p1"))].into()
    );
}

#[test]
fn bad_pull_secrets_are_named_without_their_values() {
    let s = secret(
        "kubernetes.io/dockerconfigjson",
        ".dockerconfigjson",
        json!({"auths": {"r.example": {"auth": "c2VjcmV0LW5vLWNvbG9u"}}}),
    );
    let e = from_secret(&s).unwrap_err();
    assert_eq!(
        e,
        "secret ns/regcred: the auth of \"r.example\" is not user:password"
    );
    let mut opaque = s.clone();
    opaque.type_ = "Opaque".into();
    assert!(
        from_secret(&opaque)
            .unwrap_err()
            .contains("not kubernetes.io/dockerconfigjson")
    );
}
