use super::*;

#[test]
fn long_or_odd_ids_are_hashed() {
    assert_eq!(containerd_id("uid-1-web-0"), "uid-1-web-0");
    let long = format!("{}-{}-0", "u".repeat(36), "n".repeat(63));
    let h = containerd_id(&long);
    assert_eq!(h.len(), 64);
    assert_eq!(h, containerd_id(&long), "stable");
    assert_ne!(containerd_id("a/b"), "a/b");
    assert_ne!(containerd_id("-a"), "-a");
}

fn runtime(root: &Path) -> ContainerdRuntime {
    ContainerdRuntime::new(ContainerdConfig {
        root: root.to_path_buf(),
        exe: "/bin/true".into(),
        socket: root.join("none.sock"),
        namespace: "test".into(),
        runc_root: None,
        node: NodeRuntimeConfig::default(),
        pull: PullOptions::default(),
    })
    .unwrap()
}

fn container(bundle: &Path) -> Container {
    Container {
        id: "u-web-0".into(),
        labels: [
            (label::POD_UID, "u"),
            (label::NAME, "web"),
            (label::ATTEMPT, "0"),
            (label::BUNDLE, &bundle.display().to_string()),
            (label::CGROUP, "/keel-test-none/u/u-web-0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        created_at: Some(prost_types::Timestamp {
            seconds: 7,
            nanos: 0,
        }),
        ..Default::default()
    }
}

fn task(status: Status, code: u32) -> Process {
    Process {
        id: "u-web-0".into(),
        pid: 42,
        status: status as i32,
        exit_status: code,
        exited_at: Some(prost_types::Timestamp {
            seconds: 9,
            nanos: 0,
        }),
        ..Default::default()
    }
}

#[test]
fn exits_come_from_the_task_and_stay_put() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let bundle = dir.path().join("pods/u/containers/u-web-0");
    fs::create_dir_all(&bundle).unwrap();
    let c = container(&bundle);

    // Created but never started: an exit at creation, not remembered.
    let o = rt.observe(&c, None).unwrap();
    assert_eq!(
        o.exit.as_ref().map(|e| (e.code, e.finished_at_ms)),
        Some((255, 7000))
    );
    assert!(!bundle.join("meta.json").exists());

    ContainerdRuntime::write_meta(
        &bundle,
        &Meta {
            started_at_ms: 5000,
            exit: None,
        },
    );
    let o = rt.observe(&c, Some(&task(Status::Running, 0))).unwrap();
    assert_eq!((o.exit, o.pid, o.started_at_ms), (None, 42, 5000));

    // SIGKILLed: 128 + 9, the time containerd saw it, kept on disk.
    let o = rt.observe(&c, Some(&task(Status::Stopped, 137))).unwrap();
    let e = o.exit.unwrap();
    assert_eq!(
        (e.code, e.signal, e.oom_killed, e.finished_at_ms),
        (137, Some(9), false, 9000)
    );
    let again = rt.observe(&c, None).unwrap().exit.unwrap();
    assert_eq!(again, e, "the task gone later changes nothing");
}

#[test]
fn a_task_lost_after_it_started_ends_once() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let bundle = dir.path().join("b");
    fs::create_dir_all(&bundle).unwrap();
    let c = container(&bundle);
    ContainerdRuntime::write_meta(
        &bundle,
        &Meta {
            started_at_ms: 5000,
            exit: None,
        },
    );
    let first = rt.observe(&c, None).unwrap().exit.unwrap();
    assert_eq!(first.code, 255);
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(rt.observe(&c, None).unwrap().exit.unwrap(), first);
}

#[test]
fn zero_timestamps_are_no_time() {
    assert_eq!(ms(None), None);
    let zero = prost_types::Timestamp {
        seconds: -62135596800,
        nanos: 0,
    };
    assert_eq!(ms(Some(&zero)), None);
    let t = prost_types::Timestamp {
        seconds: 2,
        nanos: 5_000_000,
    };
    assert_eq!(ms(Some(&t)), Some(2005));
}
