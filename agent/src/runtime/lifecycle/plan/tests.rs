use std::time::Duration;

use super::*;
use crate::runtime::shim::Exit;
use keel_api::pod::{Container, RestartPolicy};

fn pod(init: &[&str], app: &[&str], policy: RestartPolicy) -> Pod {
    let mut p = Pod::default();
    let c = |n: &&str| Container {
        name: n.to_string(),
        ..Default::default()
    };
    p.spec.init_containers = init.iter().map(c).collect();
    p.spec.containers = app.iter().map(c).collect();
    p.spec.restart_policy = policy;
    p
}

fn obs(name: &str, init: bool, attempt: u32, exit: Option<i32>) -> Observed {
    Observed {
        id: format!("{name}-{attempt}"),
        name: name.into(),
        kind_init: init,
        attempt,
        image_id: String::new(),
        pid: 1,
        started_at_ms: 1_000,
        exit: exit.map(|code| Exit {
            code,
            signal: None,
            oom_killed: false,
            finished_at_ms: 2_000,
        }),
        log: Default::default(),
    }
}

fn run(p: &Pod, o: &[Observed], now: u64, st: &mut BTreeMap<String, RestartState>) -> Plan {
    plan(
        p,
        o,
        now,
        &BTreeMap::new(),
        &Default::default(),
        st,
        Backoff::kubelet,
    )
}

#[test]
fn init_containers_run_in_order_before_apps() {
    let p = pod(&["i1", "i2"], &["app"], RestartPolicy::Always);
    let mut st = BTreeMap::new();
    let a = run(&p, &[], 0, &mut st);
    assert_eq!(
        a.actions,
        vec![Action::Start {
            kind: Kind::Init,
            index: 0,
            attempt: 0
        }]
    );
    assert!(
        run(&p, &[obs("i1", true, 0, None)], 0, &mut st)
            .actions
            .is_empty()
    );
    let a = run(&p, &[obs("i1", true, 0, Some(0))], 0, &mut st);
    assert_eq!(
        a.actions,
        vec![Action::Start {
            kind: Kind::Init,
            index: 1,
            attempt: 0
        }]
    );
    let a = run(
        &p,
        &[obs("i1", true, 0, Some(0)), obs("i2", true, 0, Some(0))],
        0,
        &mut st,
    );
    assert!(a.initialized);
    assert_eq!(
        a.actions,
        vec![Action::Start {
            kind: Kind::App,
            index: 0,
            attempt: 0
        }]
    );
}

#[test]
fn failed_init_with_never_fails_the_pod() {
    let p = pod(&["i1"], &["app"], RestartPolicy::Never);
    let a = run(&p, &[obs("i1", true, 0, Some(3))], 0, &mut BTreeMap::new());
    assert!(a.init_failed && a.actions.is_empty());
    // With OnFailure it is retried after the back-off.
    let p = pod(&["i1"], &["app"], RestartPolicy::OnFailure);
    let mut st = BTreeMap::new();
    let a = run(&p, &[obs("i1", true, 0, Some(3))], 2_000, &mut st);
    assert!(!a.init_failed && a.actions.is_empty());
    assert_eq!(a.backing_off["i1"], 10_000);
    let a = run(&p, &[obs("i1", true, 0, Some(3))], 12_000, &mut st);
    assert_eq!(
        a.actions,
        vec![Action::Start {
            kind: Kind::Init,
            index: 0,
            attempt: 1
        }]
    );
}

#[test]
fn restarts_follow_policy_and_back_off() {
    let mut st = BTreeMap::new();
    let p = pod(&[], &["app"], RestartPolicy::Always);
    // Exit at 2 s: first restart after 10 s.
    let o = [obs("app", false, 0, Some(0))];
    assert!(run(&p, &o, 11_999, &mut st).actions.is_empty());
    assert_eq!(
        run(&p, &o, 12_000, &mut st).actions,
        vec![Action::Start {
            kind: Kind::App,
            index: 0,
            attempt: 1
        }]
    );
    // The second exit waits 20 s; the old attempt is removed.
    let mut o2 = obs("app", false, 1, Some(1));
    o2.started_at_ms = 12_000;
    o2.exit.as_mut().unwrap().finished_at_ms = 13_000;
    let o = [obs("app", false, 0, Some(0)), o2];
    let a = run(&p, &o, 13_000, &mut st);
    assert_eq!(a.actions, vec![Action::Remove { id: "app-0".into() }]);
    assert_eq!(a.backing_off["app"], 20_000);

    for (policy, code, restarts) in [
        (RestartPolicy::OnFailure, 0, false),
        (RestartPolicy::OnFailure, 1, true),
        (RestartPolicy::Never, 1, false),
    ] {
        let p = pod(&[], &["app"], policy);
        let a = run(
            &p,
            &[obs("app", false, 0, Some(code))],
            100_000,
            &mut BTreeMap::new(),
        );
        assert_eq!(!a.actions.is_empty(), restarts, "{policy:?} exit {code}");
    }
}

#[test]
fn a_long_run_resets_the_back_off() {
    let mut st = BTreeMap::new();
    let p = pod(&[], &["app"], RestartPolicy::Always);
    for attempt in 0..4 {
        let mut o = obs("app", false, attempt, Some(1));
        o.exit.as_mut().unwrap().finished_at_ms = 2_000 + attempt as u64;
        run(&p, &[o], 0, &mut st);
    }
    assert_eq!(st["app"].backoff.peek(), Duration::from_secs(160));
    let mut o = obs("app", false, 9, Some(1));
    o.started_at_ms = 0;
    o.exit.as_mut().unwrap().finished_at_ms = 600_000;
    let a = run(&p, &[o], 600_000, &mut st);
    assert_eq!(a.backing_off["app"], 10_000);
}

#[test]
fn probe_failures_kill() {
    let p = pod(&[], &["app"], RestartPolicy::Always);
    let kills: BTreeMap<_, _> = [("app-0".to_string(), "Liveness probe failed".to_string())].into();
    let a = plan(
        &p,
        &[obs("app", false, 0, None)],
        0,
        &kills,
        &Default::default(),
        &mut BTreeMap::new(),
        Backoff::kubelet,
    );
    assert_eq!(
        a.actions,
        vec![Action::Kill {
            id: "app-0".into(),
            reason: "Liveness probe failed".into()
        }]
    );
}

#[test]
fn sidecars_start_in_order_stay_up_and_go_when_the_main_containers_are_done() {
    use keel_api::pod::ContainerRestartPolicy;
    let mut p = pod(&["proxy", "setup"], &["job"], RestartPolicy::Never);
    p.spec.init_containers[0].restart_policy = Some(ContainerRestartPolicy::Always);
    let mut st = BTreeMap::new();
    let go = |p: &Pod, o: &[Observed], started: &[&str], st: &mut _| {
        let started = started.iter().map(|s| s.to_string()).collect();
        plan(p, o, 0, &BTreeMap::new(), &started, st, Backoff::kubelet).actions
    };
    let start = |kind, index, attempt| Action::Start {
        kind,
        index,
        attempt,
    };
    // The sidecar first; the next init container waits until it has started.
    assert_eq!(go(&p, &[], &[], &mut st), vec![start(Kind::Init, 0, 0)]);
    let proxy = obs("proxy", true, 0, None);
    assert!(go(&p, std::slice::from_ref(&proxy), &[], &mut st).is_empty());
    assert_eq!(
        go(&p, std::slice::from_ref(&proxy), &["proxy-0"], &mut st),
        vec![start(Kind::Init, 1, 0)]
    );
    // Set up: the main container starts, the sidecar keeps running.
    let setup = obs("setup", true, 0, Some(0));
    let a = go(&p, &[proxy.clone(), setup.clone()], &["proxy-0"], &mut st);
    assert_eq!(a, vec![start(Kind::App, 0, 0)]);
    // The sidecar exits: restarted although the pod's policy is Never,
    // and while it restarts the initialized pod's containers go on.
    let job = obs("job", false, 0, None);
    let crashed = obs("proxy", true, 0, Some(3));
    let mut st = BTreeMap::new();
    let a = plan(
        &p,
        &[crashed.clone(), setup.clone(), job.clone()],
        100_000,
        &BTreeMap::new(),
        &Default::default(),
        &mut st,
        Backoff::kubelet,
    );
    assert_eq!(a.actions, vec![start(Kind::Init, 0, 1)]);
    assert!(a.initialized);
    assert!(!main_done(&p, &[crashed, setup.clone(), job]));
    // The job completes: the sidecar is stopped, not restarted, and a
    // stopped sidecar stays stopped.
    let done = obs("job", false, 0, Some(0));
    assert!(main_done(&p, std::slice::from_ref(&done)));
    let a = go(
        &p,
        &[proxy.clone(), setup.clone(), done.clone()],
        &["proxy-0"],
        &mut st,
    );
    assert_eq!(
        a,
        vec![Action::Kill {
            id: "proxy-0".into(),
            reason: "the pod's main containers have completed".into()
        }]
    );
    let gone = obs("proxy", true, 0, Some(143));
    assert!(go(&p, &[gone, setup, done], &[], &mut st).is_empty());
}
