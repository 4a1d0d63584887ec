//! Helpers for the LB unit tests: frontends and backends from text, and a
//! converge loop over the fake maps that checks every intermediate state.

use std::net::Ipv4Addr;

use super::{
    apply::{apply_op, observe},
    desired::Desired,
    maps::FakeMaps,
    model::{Addr, BackendSpec, Frontend, FrontendSpec, Proto},
    observed::Observed,
    plan::{Plan, Scope, plan},
};

/// "10.96.0.10:80/TCP"
pub fn addr(s: &str) -> Addr {
    let (hostport, proto) = s.split_once('/').expect("ADDR:PORT/PROTO");
    let (ip, port) = hostport.rsplit_once(':').expect("ADDR:PORT");
    Addr::new(
        ip.parse::<Ipv4Addr>().expect("ip"),
        port.parse().expect("port"),
        match proto {
            "TCP" => Proto::Tcp,
            "UDP" => Proto::Udp,
            p => panic!("protocol {p}"),
        },
    )
}

pub fn fe(s: &str) -> Frontend {
    addr(s)
}

/// "10.244.1.5:8080/TCP" remote, "10.244.1.5:8080/TCP*" local.
pub fn be(s: &str) -> BackendSpec {
    match s.strip_suffix('*') {
        Some(s) => BackendSpec {
            addr: addr(s),
            local: true,
        },
        None => BackendSpec {
            addr: addr(s),
            local: false,
        },
    }
}

pub fn spec(flags: u8, backends: &[&str]) -> FrontendSpec {
    let mut backends: Vec<BackendSpec> = backends.iter().map(|b| be(b)).collect();
    backends.sort();
    FrontendSpec {
        service: "default/web".into(),
        flags,
        affinity_timeout: 0,
        backends,
    }
}

/// Each frontend as its own Service (named after the frontend).
pub fn desired(entries: &[(&str, FrontendSpec)]) -> Desired {
    let mut d = Desired::default();
    for (f, s) in entries {
        d.set_service(f, vec![(fe(f), s.clone())], vec![]);
    }
    d
}

/// Plans with `scope`, applies op by op and asserts after each op that
/// every lookup sees one whole backend set. Returns the plan.
pub fn step(d: &Desired, maps: &mut FakeMaps, observed: &mut Observed, scope: Scope<'_>) -> Plan {
    let p = plan(d, observed, scope);
    for op in &p.ops {
        apply_op(op, maps, observed).expect("fake maps do not fail");
        let problems = maps.check_lookups();
        assert!(problems.is_empty(), "after `{op}`: {problems:?}");
    }
    p
}

/// A full sync, then checks that the mirror equals a fresh read of the maps.
pub fn converge(d: &Desired, maps: &mut FakeMaps, observed: &mut Observed) -> Plan {
    let p = step(d, maps, observed, Scope::All);
    assert_mirror(maps, observed);
    p
}

pub fn assert_mirror(maps: &FakeMaps, observed: &Observed) {
    let fresh = observe(maps).unwrap();
    assert_eq!(fresh.frontends, observed.frontends, "mirror frontends");
    assert_eq!(fresh.backends, observed.backends, "mirror backends");
    assert_eq!(fresh.maglev, observed.maglev, "mirror maglev");
    assert_eq!(fresh.refs, observed.refs, "mirror refs");
    assert_eq!(fresh.ids, observed.ids, "mirror ids");
}
