use std::net::Ipv4Addr;

use super::*;
use crate::lb::model::{Addr, Proto};

fn fe(ip: &str, port: u16) -> Frontend {
    Addr::new(ip.parse::<Ipv4Addr>().unwrap(), port, Proto::Tcp)
}

fn spec(service: &str) -> FrontendSpec {
    FrontendSpec {
        service: service.into(),
        flags: 1,
        affinity_timeout: 0,
        backends: vec![],
    }
}

#[test]
fn set_replace_remove_report_touched_frontends() {
    let mut d = Desired::default();
    let t = d.set_service(
        "default/a",
        vec![
            (fe("10.96.0.1", 80), spec("default/a")),
            (fe("10.96.0.1", 81), spec("default/a")),
        ],
        vec![],
    );
    assert_eq!(t, [fe("10.96.0.1", 80), fe("10.96.0.1", 81)].into());
    // Replacing: the old frontends and the new ones are touched.
    let t = d.set_service(
        "default/a",
        vec![(fe("10.96.0.1", 82), spec("default/a"))],
        vec![],
    );
    assert_eq!(
        t,
        [
            fe("10.96.0.1", 80),
            fe("10.96.0.1", 81),
            fe("10.96.0.1", 82)
        ]
        .into()
    );
    assert_eq!(d.len(), 1);
    assert!(d.get(&fe("10.96.0.1", 80)).is_none());
    let t = d.remove_service("default/a");
    assert_eq!(t, [fe("10.96.0.1", 82)].into());
    assert!(d.is_empty());
    assert!(d.remove_service("default/a").is_empty());
}

#[test]
fn conflicting_claims_first_key_wins_and_the_other_takes_over() {
    let mut d = Desired::default();
    let shared = fe("192.0.2.7", 80);
    d.set_service("default/b", vec![(shared, spec("default/b"))], vec![]);
    d.set_service("default/a", vec![(shared, spec("default/a"))], vec![]);
    assert_eq!(d.get(&shared).unwrap().service, "default/a");
    assert_eq!(
        d.problems(),
        vec![
            "service default/b: frontend 192.0.2.7:80/TCP is already served by default/a; ignored"
        ]
    );
    let t = d.remove_service("default/a");
    assert_eq!(t, [shared].into());
    assert_eq!(d.get(&shared).unwrap().service, "default/b");
    assert!(d.problems().is_empty());
}
