//! The plugin behind [`crate::run`], for everything decided before the
//! kernel is touched: VERSION, and each invalid input's spec code and the
//! error object's shape. (Kernel paths are in tests/tests/cni_*.rs.)

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::run;

fn invoke(vars: &[(&str, &str)], stdin: &str) -> (i32, Value) {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let out = run(|k| map.get(k).cloned(), stdin.as_bytes());
    (out.exit_code, out.stdout.unwrap_or(Value::Null))
}

fn env(command: &str) -> Vec<(&str, &str)> {
    vec![
        ("CNI_COMMAND", command),
        ("CNI_CONTAINERID", "c1"),
        ("CNI_NETNS", "/run/netns/keel-unit-does-not-exist"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/nonexistent"),
    ]
}

#[test]
fn version_needs_no_config() {
    let (code, out) = invoke(&[("CNI_COMMAND", "VERSION")], "");
    assert_eq!(code, 0);
    assert_eq!(
        out,
        json!({"cniVersion": "1.1.0", "supportedVersions": ["0.3.1", "0.4.0", "1.0.0", "1.1.0"]})
    );
}

#[test]
fn errors_carry_code_message_and_version() {
    let conf = |v: &str| {
        format!(r#"{{"cniVersion":"{v}","name":"n","type":"keel","subnet":"10.1.0.0/24"}}"#)
    };
    let no_subnet = r#"{"cniVersion":"1.1.0","name":"n","type":"keel"}"#;
    // (environment, stdin, expected code, message prefix, error cniVersion)
    type Case<'a> = (Vec<(&'a str, &'a str)>, String, u64, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (vec![], conf("1.1.0"), 4, "CNI_COMMAND", "1.1.0"),
        (
            env("ADD"),
            "{".into(),
            6,
            "network config is not valid JSON",
            "1.1.0",
        ),
        (env("ADD"), conf("2.0.0"), 1, "cniVersion", "2.0.0"),
        (
            env("CHECK"),
            conf("0.3.1"),
            1,
            "cniVersion: 0.3.1 does not support CHECK",
            "0.3.1",
        ),
        (
            env("GC"),
            conf("1.0.0"),
            1,
            "cniVersion: 1.0.0 does not support GC",
            "1.0.0",
        ),
        (
            env("STATUS"),
            conf("1.0.0"),
            1,
            "cniVersion: 1.0.0 does not support STATUS",
            "1.0.0",
        ),
        (
            env("STATUS"),
            no_subnet.into(),
            50,
            "STATUS: subnet",
            "1.1.0",
        ),
        (env("ADD"), no_subnet.into(), 7, "subnet", "1.1.0"),
        (
            env("GC"),
            conf("1.1.0"),
            7,
            "cni.dev/valid-attachments",
            "1.1.0",
        ),
        (env("CHECK"), conf("1.1.0"), 7, "prevResult", "1.1.0"),
        // The namespace is checked before anything is reserved or created.
        (env("ADD"), conf("1.0.0"), 3, "CNI_NETNS", "1.0.0"),
    ];
    for (vars, stdin, want, prefix, version) in cases {
        let (code, out) = invoke(&vars, &stdin);
        assert_eq!(code, 1, "{stdin}: {out}");
        assert_eq!(out["code"], want, "{stdin}: {out}");
        let msg = out["msg"].as_str().unwrap();
        assert!(
            msg.starts_with(prefix),
            "{msg:?} should start with {prefix:?}"
        );
        assert_eq!(out["cniVersion"], version, "{out}");
    }
}
