use super::serving_addresses_allowed;

fn node(addresses: serde_json::Value) -> keel_api::Node {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": "node-1"},
        "status": {"addresses": addresses},
    }))
    .unwrap()
}

#[test]
fn a_serving_certificate_names_only_the_nodes_own_addresses() {
    let n = node(serde_json::json!([
        {"type": "InternalIP", "address": "10.0.0.11"},
        {"type": "ExternalIP", "address": "203.0.113.7"},
        {"type": "Hostname", "address": "node-1.example"},
    ]));
    let ok = |a: &[&str]| {
        serving_addresses_allowed(&n, &a.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    };
    assert_eq!(ok(&[]), Ok(()));
    assert_eq!(ok(&["10.0.0.11", "node-1"]), Ok(()));
    assert_eq!(ok(&["203.0.113.7", "NODE-1.example"]), Ok(()));
    let e = ok(&["10.0.0.11", "10.0.0.12"]).unwrap_err();
    assert!(e.contains("addresses[1] \"10.0.0.12\""), "{e}");
    // A name is not an address, nor an address a name.
    let e = ok(&["node-2"]).unwrap_err();
    assert!(e.contains("addresses[0] \"node-2\""), "{e}");
    assert!(ok(&["10.0.0.11.example"]).is_err());
    // An IP written as a Hostname address is not an IP of the node's.
    let n = node(serde_json::json!([{"type": "Hostname", "address": "10.9.9.9"}]));
    assert!(
        serving_addresses_allowed(&n, &["10.9.9.9".into()]).is_ok(),
        "the same IP, any type"
    );
    let n = node(serde_json::json!([]));
    assert!(serving_addresses_allowed(&n, &["node-1".into()]).is_ok());
    assert!(serving_addresses_allowed(&n, &["127.0.0.1".into()]).is_err());
}
