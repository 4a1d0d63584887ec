use super::*;

fn sample() -> CniResult {
    CniResult {
        interfaces: vec![
            Interface {
                name: "kv0123456789abc".into(),
                mac: Some("02:11:22:33:44:55".into()),
                mtu: Some(1450),
                sandbox: None,
            },
            Interface {
                name: "eth0".into(),
                mac: Some("0a:58:0a:01:00:05".into()),
                mtu: Some(1450),
                sandbox: Some("/run/netns/p".into()),
            },
        ],
        ips: vec![IpConfig {
            address: "10.1.0.5/32".parse().unwrap(),
            gateway: Some("10.1.0.1".parse().unwrap()),
            interface: Some(1),
        }],
        routes: vec![RouteConf {
            dst: "0.0.0.0/0".parse().unwrap(),
            gw: Some("10.1.0.1".parse().unwrap()),
        }],
        dns: Some(json!({"nameservers": ["10.96.0.10"]})),
    }
}

#[test]
fn version_specific_fields() {
    let r = sample();
    let v031 = r.to_json(CniVersion::V0_3_1);
    assert_eq!(v031["cniVersion"], "0.3.1");
    assert_eq!(v031["ips"][0]["version"], "4");
    assert!(v031["interfaces"][1].get("mtu").is_none());
    let v040 = r.to_json(CniVersion::V0_4_0);
    assert_eq!(v040["ips"][0]["version"], "4");
    let v100 = r.to_json(CniVersion::V1_0_0);
    assert!(v100["ips"][0].get("version").is_none());
    assert!(v100["interfaces"][1].get("mtu").is_none());
    let v110 = r.to_json(CniVersion::V1_1_0);
    assert_eq!(v110["interfaces"][1]["mtu"], 1450);
    assert_eq!(v110["interfaces"][1]["sandbox"], "/run/netns/p");
    assert_eq!(v110["ips"][0]["address"], "10.1.0.5/32");
    assert_eq!(v110["routes"][0]["gw"], "10.1.0.1");
}

#[test]
fn every_version_reads_back() {
    let r = sample();
    for v in CniVersion::ALL {
        let back = CniResult::from_json(&r.to_json(v)).unwrap();
        assert_eq!(back.ips, r.ips, "{v}");
        assert_eq!(back.routes, r.routes, "{v}");
        assert_eq!(back.dns, r.dns, "{v}");
        assert_eq!(back.interfaces[1].sandbox, r.interfaces[1].sandbox, "{v}");
        assert_eq!(
            back.interfaces[1].mtu.is_some(),
            v.interfaces_have_mtu(),
            "{v}"
        );
    }
}

#[test]
fn reads_a_host_local_result() {
    let hl = json!({"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.1.0.2/24","gateway":"10.1.0.1"}],
                    "dns":{}});
    let r = CniResult::from_json(&hl).unwrap();
    assert_eq!(r.ips[0].address, "10.1.0.2/24".parse::<IpNet>().unwrap());
    assert_eq!(r.ips[0].interface, None);
    assert_eq!(r.dns, None);
}

#[test]
fn bad_results_name_the_field() {
    for (v, field) in [
        (json!({"ips":[{"gateway":"10.1.0.1"}]}), "ips[0].address"),
        (json!({"ips":[{"address":"nope"}]}), "ips[0].address"),
        (
            json!({"routes":[{"dst":"0.0.0.0/0","gw":"x"}]}),
            "routes[0].gw",
        ),
        (json!({"interfaces":"eth0"}), "interfaces"),
        (json!({"cniVersion":"7.0.0"}), "cniVersion"),
    ] {
        let e = CniResult::from_json(&v).unwrap_err();
        assert_eq!(e.field, field, "{v}");
    }
}
