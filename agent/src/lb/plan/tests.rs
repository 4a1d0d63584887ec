use keel_ebpf_common::lb::{SVC_F_AFFINITY, SVC_F_NODEPORT, SVC_F_SOCK, SVC_F_TC, ServiceValue};

use super::*;
use crate::lb::{
    apply::observe,
    maps::FakeMaps,
    testutil::{converge, desired, fe, spec, step},
};

const VIP: &str = "10.96.0.10:80/TCP";
const A: &str = "10.244.1.5:8080/TCP";
const B: &str = "10.244.2.5:8080/TCP";
const C: &str = "10.244.3.5:8080/TCP";
const SOCK: u8 = SVC_F_SOCK;

fn fresh() -> (FakeMaps, Observed) {
    let maps = FakeMaps::default();
    let observed = observe(&maps).unwrap();
    (maps, observed)
}

#[test]
fn create_then_nothing_to_do() {
    let (mut maps, mut obs) = fresh();
    let d = desired(&[(VIP, spec(SOCK, &[B, A]))]);
    let p = converge(&d, &mut maps, &mut obs);
    assert_eq!(
        p.lines(),
        vec![
            "put backend 1 10.244.1.5:8080/TCP",
            "put backend 2 10.244.2.5:8080/TCP",
            "put slot 10.96.0.10:80/TCP rev=1 slot=1 backend=1",
            "put slot 10.96.0.10:80/TCP rev=1 slot=2 backend=2",
            "put header 10.96.0.10:80/TCP id=1 rev=1 count=2 flags=1 affinity=0 maglev=0",
        ]
    );
    assert_eq!(p.summary.created, 1);
    let again = converge(&d, &mut maps, &mut obs);
    assert!(again.is_empty(), "{:?}", again.lines());
    assert_eq!(again.summary.unchanged, 1);
}

/// Each case: the backend set before and after, and the exact ops.
#[test]
fn backend_set_changes_flip_the_revision() {
    /// What, backends before, backends after, the ops.
    type Case = (
        &'static str,
        Vec<&'static str>,
        Vec<&'static str>,
        Vec<&'static str>,
    );
    let cases: Vec<Case> = vec![
        (
            "add a backend",
            vec![A, B],
            vec![A, B, C],
            vec![
                "put backend 3 10.244.3.5:8080/TCP",
                "put slot 10.96.0.10:80/TCP rev=2 slot=1 backend=1",
                "put slot 10.96.0.10:80/TCP rev=2 slot=2 backend=2",
                "put slot 10.96.0.10:80/TCP rev=2 slot=3 backend=3",
                "put header 10.96.0.10:80/TCP id=1 rev=2 count=3 flags=1 affinity=0 maglev=0",
                "del slot 10.96.0.10:80/TCP rev=1 slot=1",
                "del slot 10.96.0.10:80/TCP rev=1 slot=2",
            ],
        ),
        (
            "remove a backend: deleted once nothing points to it",
            vec![A, B],
            vec![B],
            vec![
                "put slot 10.96.0.10:80/TCP rev=2 slot=1 backend=2",
                "put header 10.96.0.10:80/TCP id=1 rev=2 count=1 flags=1 affinity=0 maglev=0",
                "del slot 10.96.0.10:80/TCP rev=1 slot=1",
                "del slot 10.96.0.10:80/TCP rev=1 slot=2",
                "del backend 1",
            ],
        ),
        (
            "last backend goes: the header says count=0 (refuse)",
            vec![A],
            vec![],
            vec![
                "put header 10.96.0.10:80/TCP id=1 rev=2 count=0 flags=1 affinity=0 maglev=0",
                "del slot 10.96.0.10:80/TCP rev=1 slot=1",
                "del backend 1",
            ],
        ),
        (
            "first backend arrives",
            vec![],
            vec![A],
            vec![
                "put backend 1 10.244.1.5:8080/TCP",
                "put slot 10.96.0.10:80/TCP rev=2 slot=1 backend=1",
                "put header 10.96.0.10:80/TCP id=1 rev=2 count=1 flags=1 affinity=0 maglev=0",
            ],
        ),
        (
            "a backend moves to this node: updated in place, slots untouched",
            vec![A, B],
            vec!["10.244.1.5:8080/TCP*", B],
            vec!["put backend 1 10.244.1.5:8080/TCP local"],
        ),
    ];
    for (what, before, after, want) in cases {
        let (mut maps, mut obs) = fresh();
        converge(&desired(&[(VIP, spec(SOCK, &before))]), &mut maps, &mut obs);
        let p = converge(&desired(&[(VIP, spec(SOCK, &after))]), &mut maps, &mut obs);
        assert_eq!(p.lines(), want, "{what}");
        let again = converge(&desired(&[(VIP, spec(SOCK, &after))]), &mut maps, &mut obs);
        assert!(
            again.is_empty(),
            "{what}: not converged: {:?}",
            again.lines()
        );
    }
}

#[test]
fn flags_and_timeout_change_only_the_header() {
    let (mut maps, mut obs) = fresh();
    converge(&desired(&[(VIP, spec(SOCK, &[A, B]))]), &mut maps, &mut obs);
    let mut s = spec(SOCK | SVC_F_AFFINITY, &[A, B]);
    s.affinity_timeout = 30;
    let p = converge(&desired(&[(VIP, s)]), &mut maps, &mut obs);
    assert_eq!(
        p.lines(),
        vec!["put header 10.96.0.10:80/TCP id=1 rev=1 count=2 flags=5 affinity=30 maglev=0"]
    );
    assert_eq!(p.summary.header_only, 1);
}

#[test]
fn deleting_a_service_removes_the_header_first() {
    let (mut maps, mut obs) = fresh();
    converge(&desired(&[(VIP, spec(SOCK, &[A, B]))]), &mut maps, &mut obs);
    let p = converge(&Desired::default(), &mut maps, &mut obs);
    assert_eq!(
        p.lines(),
        vec![
            "del header 10.96.0.10:80/TCP",
            "del slot 10.96.0.10:80/TCP rev=1 slot=1",
            "del slot 10.96.0.10:80/TCP rev=1 slot=2",
            "del backend 1",
            "del backend 2",
        ]
    );
    assert!(maps.services.is_empty() && maps.backends.is_empty());
}

#[test]
fn shared_backends_live_until_the_last_frontend_lets_go() {
    let (mut maps, mut obs) = fresh();
    let np = "10.0.0.1:30080/TCP";
    let both = desired(&[(VIP, spec(SOCK, &[A])), (np, spec(SOCK | SVC_F_TC, &[A]))]);
    let p = converge(&both, &mut maps, &mut obs);
    assert_eq!(
        p.lines()
            .iter()
            .filter(|l| l.starts_with("put backend"))
            .count(),
        1
    );
    let p = converge(&desired(&[(VIP, spec(SOCK, &[A]))]), &mut maps, &mut obs);
    assert!(
        !p.lines().iter().any(|l| l.starts_with("del backend")),
        "{:?}",
        p.lines()
    );
    let p = converge(&Desired::default(), &mut maps, &mut obs);
    assert!(p.lines().contains(&"del backend 1".to_string()));
}

#[test]
fn tc_frontends_get_a_maglev_table_under_the_same_revision() {
    let (mut maps, mut obs) = fresh();
    let np = "10.0.0.1:30080/TCP";
    let flags = SOCK | SVC_F_TC | SVC_F_NODEPORT;
    let p = converge(&desired(&[(np, spec(flags, &[A, B]))]), &mut maps, &mut obs);
    let lines = p.lines();
    let chunks: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("put maglev"))
        .collect();
    assert_eq!(chunks.len(), 16, "16381 entries in 1024-entry chunks");
    assert_eq!(chunks[0], "put maglev id=1 rev=1 chunk=0");
    assert_eq!(
        lines.last().unwrap(),
        &format!(
            "put header 10.0.0.1:30080/TCP id=1 rev=1 count=2 flags={flags} affinity=0 maglev=16381"
        )
    );
    // A new backend: new table under rev 2, old one deleted after the flip.
    let p = converge(
        &desired(&[(np, spec(flags, &[A, B, C]))]),
        &mut maps,
        &mut obs,
    );
    let lines = p.lines();
    let flip = lines
        .iter()
        .position(|l| l.starts_with("put header"))
        .unwrap();
    assert!(
        lines[..flip]
            .iter()
            .filter(|l| l.starts_with("put maglev id=1 rev=2"))
            .count()
            == 16
    );
    assert!(
        lines[flip..]
            .iter()
            .filter(|l| l.starts_with("del maglev id=1 rev=1"))
            .count()
            == 16
    );
    // Back to no backends: table gone.
    converge(&desired(&[(np, spec(flags, &[]))]), &mut maps, &mut obs);
    assert!(maps.maglev.is_empty());
}

#[test]
fn scope_only_leaves_other_frontends_alone() {
    let (mut maps, mut obs) = fresh();
    let other = "10.96.0.11:80/TCP";
    converge(
        &desired(&[(VIP, spec(SOCK, &[A])), (other, spec(SOCK, &[B]))]),
        &mut maps,
        &mut obs,
    );
    // Both change in desired state; only VIP is in scope.
    let d = desired(&[(VIP, spec(SOCK, &[A, C])), (other, spec(SOCK, &[]))]);
    let scope = [fe(VIP)].into_iter().collect();
    let p = step(&d, &mut maps, &mut obs, Scope::Only(&scope));
    assert!(
        p.lines().iter().all(|l| !l.contains("10.96.0.11")),
        "{:?}",
        p.lines()
    );
    assert!(!p.lines().iter().any(|l| l.starts_with("del backend 2")));
}

/// What a restarted agent finds, and the repair it plans.
#[test]
fn adoption_keeps_what_is_right_and_fixes_what_is_wrong() {
    let (mut maps, mut obs) = fresh();
    let np = "10.0.0.1:30080/TCP";
    let d = desired(&[
        (VIP, spec(SOCK, &[A, B, C])),
        (np, spec(SOCK | SVC_F_TC, &[A, B])),
    ]);
    converge(&d, &mut maps, &mut obs);

    // A restart with nothing changed: the fresh read plans nothing, and the
    // slot order (hence every choice) stays.
    let before = maps.clone();
    let mut adopted = observe(&maps).unwrap();
    let p = converge(&d, &mut maps, &mut adopted);
    assert!(p.is_empty(), "{:?}", p.lines());
    assert_eq!(before.services, maps.services);

    // Damage of the kinds a crash or a bug could leave:
    let vip = fe(VIP);
    let key = |rev, slot| (vip.ip_be(), vip.port_be(), 6u8, rev, slot);
    maps.services.remove(&key(1, 2)); // a live slot missing
    maps.services.insert(key(2, 7), ServiceValue::slot(1)); // garbage in the other revision
    let ghost = fe("10.96.0.99:53/UDP");
    maps.services.insert(
        (ghost.ip_be(), ghost.port_be(), 17, 1, 1),
        ServiceValue::slot(2),
    ); // slots of a frontend without header
    maps.backends.insert(77, maps.backends[&1]); // an unreferenced backend
    maps.maglev.insert((42, 1, 0), Default::default()); // a table nobody owns
    let np_id = maps.services[&(fe(np).ip_be(), fe(np).port_be(), 6, 0, 0)].id;
    maps.maglev.remove(&(np_id, 1, 3)); // a hole in a live table

    let mut adopted = observe(&maps).unwrap();
    // (the fake's check would flag the damaged state itself)
    assert!(!maps.check_lookups().is_empty());
    let p = plan(&d, &adopted, Scope::All);
    let lines = p.lines();
    for want in [
        "put header 10.96.0.10:80/TCP id=2 rev=2 count=3 flags=1 affinity=0 maglev=0",
        "del slot 10.96.0.10:80/TCP rev=2 slot=7",
        "del slot 10.96.0.99:53/UDP rev=1 slot=1",
        "del backend 77",
        "del maglev id=42 rev=1 chunk=0",
    ] {
        assert!(
            lines.iter().any(|l| l == want),
            "missing `{want}` in {lines:#?}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("put maglev id={np_id} rev=2"))),
        "the NodePort table is rebuilt under the other revision: {lines:#?}"
    );
    for op in &p.ops {
        crate::lb::apply::apply_op(op, &mut maps, &mut adopted).unwrap();
    }
    assert!(
        maps.check_lookups().is_empty(),
        "{:?}",
        maps.check_lookups()
    );
    let again = converge(&d, &mut maps, &mut adopted);
    assert!(again.is_empty(), "{:?}", again.lines());
    assert!(!maps.backends.contains_key(&77));
}

#[test]
fn ids_are_never_reused_while_a_table_with_that_id_exists() {
    let mut maps = FakeMaps::default();
    maps.maglev.insert((1, 1, 0), Default::default());
    maps.maglev.insert((2, 2, 0), Default::default());
    let mut obs = observe(&maps).unwrap();
    let p = converge(&desired(&[(VIP, spec(SOCK, &[A]))]), &mut maps, &mut obs);
    assert!(
        p.lines()
            .iter()
            .any(|l| l.starts_with("put header 10.96.0.10:80/TCP id=3")),
        "{:?}",
        p.lines()
    );
    assert!(maps.maglev.is_empty());
}
