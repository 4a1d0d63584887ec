use std::collections::HashMap;

use super::*;

fn env(pairs: &[(&str, &str)]) -> Result<CniEnv, EnvError> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    CniEnv::from_vars(|k| map.get(k).cloned())
}

const ADD: &[(&str, &str)] = &[
    ("CNI_COMMAND", "ADD"),
    ("CNI_CONTAINERID", "abc123"),
    ("CNI_NETNS", "/run/netns/x"),
    ("CNI_IFNAME", "eth0"),
    ("CNI_PATH", "/opt/cni/bin:/usr/lib/cni"),
];

fn without(var: &str) -> Vec<(&'static str, &'static str)> {
    ADD.iter().copied().filter(|(k, _)| *k != var).collect()
}

fn with(var: &'static str, value: &'static str) -> Vec<(&'static str, &'static str)> {
    let mut v = without(var);
    v.push((var, value));
    v
}

#[test]
fn add_env_parses() {
    let e = env(ADD).unwrap();
    assert_eq!(e.command, Command::Add);
    assert_eq!(
        e.path,
        vec![PathBuf::from("/opt/cni/bin"), PathBuf::from("/usr/lib/cni")]
    );
    assert_eq!(e.netns, Some(PathBuf::from("/run/netns/x")));
}

#[test]
fn missing_and_invalid_variables_are_named() {
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (without("CNI_NETNS"), "CNI_NETNS"),
        (without("CNI_CONTAINERID"), "CNI_CONTAINERID"),
        (without("CNI_IFNAME"), "CNI_IFNAME"),
        (without("CNI_PATH"), "CNI_PATH"),
        (without("CNI_COMMAND"), "CNI_COMMAND"),
        (with("CNI_COMMAND", "ATTACH"), "CNI_COMMAND"),
        (with("CNI_IFNAME", "averyveryverylongname"), "CNI_IFNAME"),
        (with("CNI_IFNAME", "eth/0"), "CNI_IFNAME"),
        (with("CNI_IFNAME", ".."), "CNI_IFNAME"),
        (with("CNI_CONTAINERID", "-bad"), "CNI_CONTAINERID"),
        (with("CNI_NETNS", "relative/ns"), "CNI_NETNS"),
        (with("CNI_ARGS", "FOO=bar"), "CNI_ARGS"),
        (with("CNI_ARGS", "IP=notanip"), "CNI_ARGS"),
    ];
    for (vars, named) in cases {
        let err = env(&vars).expect_err(named);
        assert!(
            err.to_string().starts_with(named),
            "{err} should name {named}"
        );
        assert_eq!(err.code(), 4);
    }
}

#[test]
fn del_without_netns_is_fine() {
    let mut vars = without("CNI_NETNS");
    vars.retain(|(k, _)| *k != "CNI_COMMAND");
    vars.push(("CNI_COMMAND", "DEL"));
    assert_eq!(env(&vars).unwrap().netns, None);
}

#[test]
fn version_needs_nothing_else() {
    assert_eq!(
        env(&[("CNI_COMMAND", "VERSION")]).unwrap().command,
        Command::Version
    );
}

#[test]
fn cni_args() {
    assert_eq!(CniArgs::parse("").unwrap(), CniArgs::default());
    assert_eq!(
        CniArgs::parse("IP=10.1.0.9").unwrap().ip,
        Some("10.1.0.9".parse().unwrap())
    );
    assert!(CniArgs::parse("IgnoreUnknown=1;FOO=bar;K8S_POD_NAME=x").is_ok());
    assert!(CniArgs::parse("K8S_POD_NAME=x;K8S_POD_NAMESPACE=y").is_ok());
    assert!(CniArgs::parse("FOO").is_err());
}

#[test]
fn oversized_values_are_refused_up_front() {
    let huge = "a".repeat(100 * 1024);
    let long = "b".repeat(300);
    let netns = format!("/{}", "n".repeat(5000));
    for (var, value) in [
        ("CNI_CONTAINERID", huge.as_str()),
        ("CNI_CONTAINERID", long.as_str()),
        ("CNI_NETNS", netns.as_str()),
    ] {
        let mut vars: Vec<(&str, &str)> = without(var).into_iter().collect();
        vars.push((var, value));
        let err = env(&vars).expect_err(var);
        assert!(err.to_string().starts_with(var), "{err}");
        assert!(err.to_string().len() < 300, "the value is not echoed whole");
        assert_eq!(err.code(), 4);
    }
    let id = "c".repeat(MAX_CONTAINER_ID);
    let mut vars: Vec<(&str, &str)> = without("CNI_CONTAINERID").into_iter().collect();
    vars.push(("CNI_CONTAINERID", &id));
    env(&vars).unwrap();
}

#[test]
fn a_long_container_id_with_multibyte_characters_is_refused_not_a_panic() {
    // Found by the cni_env fuzz target: the echoed prefix was cut inside a
    // UTF-8 character (byte 32 of a 3-byte one) and the plugin panicked.
    let id = format!("abc{}", "\u{fffd}".repeat(MAX_CONTAINER_ID));
    let err = validate_container_id(&id).expect_err("too long");
    let text = err.to_string();
    assert!(text.starts_with("CNI_CONTAINERID"), "{text}");
    assert!(text.contains("too long"), "{text}");
    assert_eq!(err.code(), 4);
}
