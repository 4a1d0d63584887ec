use keel_ebpf_common::lb::{SVC_F_NODEPORT, SVC_F_SOCK, SVC_F_TC};

use super::*;
use crate::lb::{
    maps::FakeMaps,
    plan::{Scope, plan},
    testutil::{assert_mirror, converge, desired, spec},
};

const VIP: &str = "10.96.0.10:80/TCP";
const NP: &str = "10.0.0.1:30080/TCP";
const A: &str = "10.244.1.5:8080/TCP";
const B: &str = "10.244.2.5:8080/TCP";
const C: &str = "10.244.3.5:8080/TCP";

/// A write fails at every possible point of a plan: the maps stay
/// consistent for lookups, the mirror says what was really written, and
/// the next sync finishes the job.
#[test]
fn a_failure_at_any_op_leaves_a_consistent_state_and_resumes() {
    let np = SVC_F_SOCK | SVC_F_TC | SVC_F_NODEPORT;
    let start = desired(&[(VIP, spec(SVC_F_SOCK, &[A, B])), (NP, spec(np, &[A]))]);
    let target = desired(&[(VIP, spec(SVC_F_SOCK, &[B, C])), (NP, spec(np, &[A, B, C]))]);
    let mut base = FakeMaps::default();
    let mut base_obs = observe(&base).unwrap();
    converge(&start, &mut base, &mut base_obs);
    let n = plan(&target, &base_obs, Scope::All).ops.len();
    assert!(n > 30, "a plan with many ops ({n})");
    for k in 0..n {
        let mut maps = base.clone();
        let mut obs = base_obs.clone();
        maps.fail_at = Some(k);
        let p = plan(&target, &obs, Scope::All);
        let err = apply(&p, &mut maps, &mut obs).unwrap_err();
        assert_eq!(err.index, k);
        assert!(
            maps.check_lookups().is_empty(),
            "k={k}: {:?}",
            maps.check_lookups()
        );
        assert_mirror(&maps, &obs);
        converge(&target, &mut maps, &mut obs);
        let again = plan(&target, &obs, Scope::All);
        assert!(again.is_empty(), "k={k}: {:?}", again.lines());
        let vip = crate::lb::testutil::fe(VIP);
        let got: Vec<u16> = maps
            .resolve(vip.ip_be(), vip.port_be(), 6)
            .unwrap()
            .iter()
            .map(|b| u16::from_be(b.port))
            .collect();
        assert_eq!(got, vec![8080, 8080], "k={k}");
    }
}

#[test]
fn errors_name_the_op_and_the_map() {
    let mut maps = FakeMaps {
        fail_at: Some(2),
        ..Default::default()
    };
    let mut obs = observe(&maps).unwrap();
    let p = plan(
        &desired(&[(VIP, spec(SVC_F_SOCK, &[A, B]))]),
        &obs,
        Scope::All,
    );
    let err = apply(&p, &mut maps, &mut obs).unwrap_err();
    assert_eq!(
        err.to_string(),
        "applying op 2 of 5 (put slot 10.96.0.10:80/TCP rev=1 slot=1 backend=1): BPF map KEEL_LB_SVC: insert 10.96.0.10:80/TCP rev=1 slot=1: injected failure"
    );
    // Nothing visible yet: the header was never written.
    assert!(maps.check_lookups().is_empty());
    let vip = crate::lb::testutil::fe(VIP);
    assert!(maps.resolve(vip.ip_be(), vip.port_be(), 6).is_none());
}
