use super::*;

#[test]
fn conflist_is_written_once_and_loaded_back() {
    let dir = tempfile::tempdir().unwrap();
    let setup = CniSetup {
        bin_dirs: vec![],
        conf_dir: dir.path().join("net.d"),
        ipam_dir: dir.path().join("ipam"),
    };
    assert!(matches!(setup.load(), Err(CniError::NoConfig { .. })));
    let cidr: Ipv4Net = "10.244.3.0/24".parse().unwrap();
    assert!(setup.write_conf(cidr, 1450).unwrap());
    assert!(
        !setup.write_conf(cidr, 1450).unwrap(),
        "unchanged config is not rewritten"
    );
    let list = setup.load().unwrap();
    assert_eq!(list["plugins"][0]["subnet"], "10.244.3.0/24");
    assert_eq!(list["plugins"][0]["mtu"], 1450);
    let conf = CniSetup::plugin_conf(&list, &list["plugins"][0], Some(&json!({"ips": []})));
    assert_eq!(conf["name"], NETWORK);
    assert_eq!(conf["cniVersion"], CNI_VERSION);
    assert!(conf["prevResult"].is_object());
    assert!(
        setup.write_conf(cidr, 1500).unwrap(),
        "an MTU change rewrites it"
    );
}

#[test]
fn a_single_conf_is_wrapped_into_a_list() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("05-other.conf"),
        r#"{"cniVersion":"1.0.0","name":"n","type":"ptp"}"#,
    )
    .unwrap();
    let setup = CniSetup {
        bin_dirs: vec![],
        conf_dir: dir.path().into(),
        ipam_dir: dir.path().into(),
    };
    let list = setup.load().unwrap();
    assert_eq!(list["plugins"][0]["type"], "ptp");
    assert_eq!(list["name"], "n");
    let err = setup
        .add("c", Path::new("/nonexistent"), "eth0")
        .unwrap_err();
    assert!(matches!(err, CniError::NoPlugin { .. }), "{err}");
}
