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

#[test]
fn the_node_file_gives_credentials_and_a_missing_one_none() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("registry-credentials.json");
    assert!(from_node_file(&path).unwrap().is_empty());
    std::fs::write(
        &path,
        json!({"auths": {
            "http://10.0.0.5:5000": {"auth": "dTE6cDE="},
            "index.docker.io": {"username": "u2", "password": "p2"}
        }})
        .to_string(),
    )
    .unwrap();
    let m = from_node_file(&path).unwrap();
    assert_eq!(m.get("10.0.0.5:5000"), Some(&basic("u1", "p1")));
    assert_eq!(m.get("index.docker.io"), Some(&basic("u2", "p2")));
    std::fs::write(&path, "{not json").unwrap();
    let e = from_node_file(&path).unwrap_err();
    assert!(
        e.contains("--registry-credentials") && e.contains("registry-credentials.json"),
        "{e}"
    );
    std::fs::write(&path, json!({"auths": {"r": {"auth": "!!"}}}).to_string()).unwrap();
    let e = from_node_file(&path).unwrap_err();
    assert!(e.contains("\"r\"") && e.contains("not base64"), "{e}");
}
