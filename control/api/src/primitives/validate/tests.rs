use super::*;

#[test]
fn names() {
    assert!(dns1123_label("web-1").is_ok());
    for bad in ["", "Web", "-a", "a-", "a_b", &"a".repeat(64)] {
        assert!(dns1123_label(bad).is_err(), "{bad:?}");
    }
    assert!(dns1123_subdomain("node-1.example").is_ok());
    assert!(dns1123_subdomain("node..x").is_err());
    assert!(dns1035_label("web").is_ok());
    assert!(dns1035_label("1web").is_err());
}

#[test]
fn labels() {
    for ok in ["app", "app.kubernetes.io/name", "a_b-c.d", "x/y"] {
        assert!(label_key(ok).is_ok(), "{ok:?}");
    }
    for bad in ["", "/x", "a/", "-a", "a b", "Bad_/x"] {
        assert!(label_key(bad).is_err(), "{bad:?}");
    }
    assert!(label_value("").is_ok());
    assert!(label_value("v1.2_x").is_ok());
    assert!(label_value("has space").is_err());
}

#[test]
fn ports_and_service_names() {
    assert!(port(1).is_ok() && port(65535).is_ok());
    assert!(port(0).is_err() && port(70000).is_err());
    assert!(iana_svc_name("http").is_ok());
    for bad in ["", "HTTP", "80", "a--b", "-a", "a-very-long-port-name"] {
        assert!(iana_svc_name(bad).is_err(), "{bad:?}");
    }
}
