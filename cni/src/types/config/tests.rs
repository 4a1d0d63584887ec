use super::*;

fn parse(s: &str) -> Result<NetConf, ConfigError> {
    NetConf::parse(s.as_bytes())
}

#[test]
fn minimal_config() {
    let c = parse(r#"{"cniVersion":"1.1.0","name":"pods","type":"keel","subnet":"10.1.0.0/24"}"#)
        .unwrap();
    assert_eq!(c.cni_version, CniVersion::V1_1_0);
    assert_eq!(c.mtu, 1500);
    assert_eq!(c.default_gateway(), Some("10.1.0.1".parse().unwrap()));
    assert_eq!(c.store_dir(), PathBuf::from("/var/lib/cni/keel/pods"));
    assert!(c.ipam.is_none());
}

#[test]
fn full_config() {
    let c = parse(
        r#"{"cniVersion":"0.4.0","name":"pods","type":"keel","subnet":"10.1.0.0/16","gateway":"10.1.255.254",
                "mtu":1450,"dataDir":"/tmp/x","dns":{"nameservers":["10.96.0.10"]},
                "runtimeConfig":{"portMappings":[]},"cni.dev/valid-attachments":[{"containerID":"a","ifname":"eth0"}]}"#,
    )
    .unwrap();
    assert_eq!(c.mtu, 1450);
    assert_eq!(c.default_gateway(), Some("10.1.255.254".parse().unwrap()));
    assert_eq!(c.store_dir(), PathBuf::from("/tmp/x/pods"));
    assert_eq!(c.valid_attachments.unwrap()[0].ifname, "eth0");
}

#[test]
fn delegated_ipam_needs_no_subnet() {
    let c = parse(r#"{"cniVersion":"1.0.0","name":"n","type":"keel","ipam":{"type":"host-local","ranges":[]}}"#)
        .unwrap();
    assert_eq!(
        c.ipam,
        Some(IpamConf {
            plugin: "host-local".into()
        })
    );
    assert_eq!(c.default_gateway(), None);
}

#[test]
fn invalid_configs_name_the_field_and_code() {
    let base = r#""name":"n","type":"keel""#;
    let cases: &[(&str, &str, u32)] = &[
        ("{not json", "network config is not valid JSON", 6),
        ("[1,2]", "network config is not valid JSON", 6),
        (
            r#"{"name":"n","type":"keel","subnet":"10.1.0.0/24"}"#,
            "cniVersion",
            7,
        ),
        (
            &format!(r#"{{"cniVersion":"9.9.9",{base},"subnet":"10.1.0.0/24"}}"#),
            "cniVersion",
            1,
        ),
        (
            r#"{"cniVersion":"1.1.0","type":"keel","subnet":"10.1.0.0/24"}"#,
            "name",
            7,
        ),
        (
            r#"{"cniVersion":"1.1.0","name":"bad name","type":"keel","subnet":"10.1.0.0/24"}"#,
            "name",
            7,
        ),
        (
            r#"{"cniVersion":"1.1.0","name":"n","subnet":"10.1.0.0/24"}"#,
            "type",
            7,
        ),
        (&format!(r#"{{"cniVersion":"1.1.0",{base}}}"#), "subnet", 7),
        (
            &format!(r#"{{"cniVersion":"1.1.0",{base},"subnet":"banana"}}"#),
            "subnet",
            7,
        ),
        (
            &format!(r#"{{"cniVersion":"1.1.0",{base},"subnet":"10.1.0.0"}}"#),
            "subnet",
            7,
        ),
        (
            &format!(r#"{{"cniVersion":"1.1.0",{base},"subnet":"10.1.0.5/24"}}"#),
            "subnet",
            7,
        ),
        (
            &format!(r#"{{"cniVersion":"1.1.0",{base},"subnet":"fd00::/64"}}"#),
            "subnet",
            7,
        ),
        (
            &format!(r#"{{"cniVersion":"1.1.0",{base},"subnet":"10.1.0.0/31"}}"#),
            "subnet",
            7,
        ),
        (
            &format!(r#"{{"cniVersion":"1.1.0",{base},"subnet":24}}"#),
            "subnet",
            7,
        ),
        (
            &format!(
                r#"{{"cniVersion":"1.1.0",{base},"subnet":"10.1.0.0/24","gateway":"10.2.0.1"}}"#
            ),
            "gateway",
            7,
        ),
        (
            &format!(
                r#"{{"cniVersion":"1.1.0",{base},"subnet":"10.1.0.0/24","gateway":"10.1.0.0"}}"#
            ),
            "gateway",
            7,
        ),
        (
            &format!(r#"{{"cniVersion":"1.1.0",{base},"subnet":"10.1.0.0/24","mtu":20}}"#),
            "mtu",
            7,
        ),
        (
            &format!(r#"{{"cniVersion":"1.1.0",{base},"subnet":"10.1.0.0/24","mtu":"1500"}}"#),
            "mtu",
            7,
        ),
        (
            &format!(r#"{{"cniVersion":"1.1.0",{base},"subnet":"10.1.0.0/24","dataDir":"rel"}}"#),
            "dataDir",
            7,
        ),
        (
            &format!(r#"{{"cniVersion":"1.1.0",{base},"ipam":{{}}}}"#),
            "ipam.type",
            7,
        ),
        (
            &format!(r#"{{"cniVersion":"1.1.0",{base},"ipam":{{"type":"../x"}}}}"#),
            "ipam.type",
            7,
        ),
        (
            &format!(r#"{{"cniVersion":"1.1.0",{base},"ipam":"host-local"}}"#),
            "ipam",
            7,
        ),
        (
            &format!(
                r#"{{"cniVersion":"1.1.0",{base},"subnet":"10.1.0.0/24","cni.dev/valid-attachments":[{{"x":1}}]}}"#
            ),
            "cni.dev/valid-attachments",
            7,
        ),
    ];
    for (input, field, code) in cases {
        let err = parse(input).expect_err(input);
        assert!(
            err.to_string().starts_with(field),
            "{input}: {err} should name {field}"
        );
        assert_eq!(err.code(), *code, "{input}: {err}");
    }
}

#[test]
fn non_unicast_subnets_are_refused() {
    for subnet in [
        "0.0.0.0/0",
        "0.0.0.0/8",
        "127.0.0.0/8",
        "127.1.0.0/24",
        "224.0.0.0/24",
        "239.1.0.0/16",
        "255.255.255.0/24",
        "240.0.0.0/8",
        "0.0.0.0/1",
    ] {
        let e = parse(&format!(
            r#"{{"cniVersion":"1.1.0","name":"n","type":"keel","subnet":"{subnet}"}}"#
        ))
        .unwrap_err();
        assert!(e.to_string().starts_with("subnet"), "{subnet}: {e}");
        assert!(e.to_string().contains("unicast"), "{subnet}: {e}");
    }
    for ok in [
        "10.0.0.0/8",
        "1.0.0.0/24",
        "223.255.255.0/24",
        "100.64.0.0/10",
    ] {
        parse(&format!(
            r#"{{"cniVersion":"1.1.0","name":"n","type":"keel","subnet":"{ok}"}}"#
        ))
        .unwrap();
    }
}

#[test]
fn network_names_fit_the_alias() {
    let name = "n".repeat(MAX_NAME + 1);
    let e = parse(&format!(
        r#"{{"cniVersion":"1.1.0","name":"{name}","type":"keel","subnet":"10.1.0.0/24"}}"#
    ))
    .unwrap_err();
    assert!(e.to_string().starts_with("name"), "{e}");
}
