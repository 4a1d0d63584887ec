use super::*;

fn exit(code: i32, oom: bool) -> Exit {
    Exit {
        code,
        signal: if code > 128 { Some(code - 128) } else { None },
        oom_killed: oom,
        finished_at_ms: 2000,
    }
}

fn running(name: &str, ready: bool) -> ContainerView {
    ContainerView {
        name: name.into(),
        running_since_ms: Some(1000),
        ready,
        started: true,
        ..Default::default()
    }
}

fn exited(name: &str, code: i32, will_restart: bool) -> ContainerView {
    ContainerView {
        name: name.into(),
        exit: Some((1000, exit(code, false))),
        will_restart,
        ..Default::default()
    }
}

#[test]
fn terminated_reasons() {
    let mut v = exited("a", 0, false);
    assert_eq!(
        container_status(&v).state.terminated.unwrap().reason,
        "Completed"
    );
    v.exit = Some((1, exit(1, false)));
    let t = container_status(&v).state.terminated.unwrap();
    assert_eq!((t.reason.as_str(), t.exit_code), ("Error", 1));
    v.exit = Some((1, exit(137, true)));
    let t = container_status(&v).state.terminated.unwrap();
    assert_eq!(
        (t.reason.as_str(), t.exit_code, t.signal),
        ("OOMKilled", 137, Some(9))
    );
}

#[test]
fn crash_loop_shows_waiting_with_last_state() {
    let mut v = exited("a", 2, true);
    v.waiting = Some(("CrashLoopBackOff".into(), "back-off 10s".into()));
    v.restart_count = 1;
    let s = container_status(&v);
    assert_eq!(s.state.waiting.unwrap().reason, "CrashLoopBackOff");
    assert_eq!(s.last_state.terminated.unwrap().exit_code, 2);
    assert!(!s.ready);
    assert_eq!(s.restart_count, 1);
}

#[test]
fn phases() {
    use RestartPolicy::*;
    let none: &[ContainerView] = &[];
    assert_eq!(
        phase(Always, none, &[ContainerView::default()], false),
        PodPhase::Pending
    );
    assert_eq!(
        phase(Always, none, &[running("a", true)], false),
        PodPhase::Running
    );
    assert_eq!(
        phase(Never, none, &[exited("a", 0, false)], false),
        PodPhase::Succeeded
    );
    assert_eq!(
        phase(Never, none, &[exited("a", 1, false)], false),
        PodPhase::Failed
    );
    assert_eq!(
        phase(
            Never,
            none,
            &[exited("a", 0, false), exited("b", 3, false)],
            false
        ),
        PodPhase::Failed
    );
    assert_eq!(
        phase(OnFailure, none, &[exited("a", 1, true)], false),
        PodPhase::Running
    );
    assert_eq!(
        phase(
            Never,
            none,
            &[running("a", false), exited("b", 1, false)],
            false
        ),
        PodPhase::Running
    );
    // Init containers first.
    let init_running = [running("i", false)];
    assert_eq!(
        phase(Always, &init_running, &[ContainerView::default()], false),
        PodPhase::Pending
    );
    assert_eq!(
        phase(Never, &[exited("i", 1, false)], &[], true),
        PodPhase::Failed
    );
}

#[test]
fn conditions_follow_readiness() {
    let mut pod = Pod::default();
    apply(
        &mut pod,
        &[],
        &[running("a", true), running("b", false)],
        false,
    );
    assert_eq!(pod.status.phase, Some(PodPhase::Running));
    assert_eq!(pod.condition("PodScheduled").unwrap().status, "True");
    assert_eq!(pod.condition("Initialized").unwrap().status, "True");
    let cr = pod.condition("ContainersReady").unwrap();
    assert_eq!(cr.status, "False");
    assert!(cr.message.contains("[b]"), "{}", cr.message);
    assert!(!pod.is_ready());
    apply(
        &mut pod,
        &[],
        &[running("a", true), running("b", true)],
        false,
    );
    assert!(pod.is_ready());

    let mut p2 = Pod::default();
    apply(
        &mut p2,
        &[running("init", false)],
        &[ContainerView::default()],
        false,
    );
    assert_eq!(p2.condition("Initialized").unwrap().status, "False");
    assert_eq!(p2.status.phase, Some(PodPhase::Pending));
}

#[test]
fn sidecars_do_not_complete_and_their_readiness_counts() {
    let mut pod = Pod::default();
    pod.spec.restart_policy = RestartPolicy::Never;
    let mut proxy = running("proxy", false);
    proxy.sidecar = true;
    let setup = exited("setup", 0, false);
    // A running (unready) sidecar does not hold initialization; its
    // readiness holds the pod's.
    apply(
        &mut pod,
        &[proxy.clone(), setup.clone()],
        &[running("job", true)],
        false,
    );
    assert_eq!(pod.status.phase, Some(PodPhase::Running));
    assert_eq!(pod.condition("Initialized").unwrap().status, "True");
    assert!(!pod.is_ready());
    assert!(pod.condition("Ready").unwrap().message.contains("proxy"));
    proxy.ready = true;
    apply(
        &mut pod,
        &[proxy.clone(), setup.clone()],
        &[running("job", true)],
        false,
    );
    assert!(pod.is_ready());
    // The main container done: Running while the sidecar is being
    // stopped, then Succeeded whatever the sidecar's exit.
    apply(
        &mut pod,
        &[proxy, setup.clone()],
        &[exited("job", 0, false)],
        false,
    );
    assert_eq!(pod.status.phase, Some(PodPhase::Running));
    let mut stopped = exited("proxy", 143, false);
    stopped.sidecar = true;
    apply(
        &mut pod,
        &[stopped, setup],
        &[exited("job", 0, false)],
        false,
    );
    assert_eq!(pod.status.phase, Some(PodPhase::Succeeded));
}
