use super::*;

#[test]
fn state_survives_reopen_and_ignores_a_stale_tmp() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path().join("net"));
    assert!(
        store.lock_if_exists().unwrap().is_none(),
        "DEL must not create the store"
    );
    {
        let mut l = store.lock().unwrap();
        assert_eq!(l.state, State::default());
        l.state.reservations.push(Reservation {
            ip: "10.1.0.2".parse().unwrap(),
            container_id: "c1".into(),
            ifname: "eth0".into(),
        });
        l.state.last = Some("10.1.0.2".parse().unwrap());
        l.commit().unwrap();
    }
    // A killed writer's half-written temp file changes nothing.
    fs::write(store.dir().join("state.json.tmp"), b"{\"reserv").unwrap();
    let l = store.lock().unwrap();
    assert_eq!(
        l.state.find("c1", "eth0").unwrap().ip,
        "10.1.0.2".parse::<Ipv4Addr>().unwrap()
    );
    assert!(l.state.find("c1", "eth1").is_none());
}

#[test]
fn a_commit_removes_what_a_killed_holder_left() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path());
    store.lock().unwrap().commit().unwrap();
    // What keel-sys's write_atomic leaves when its process is killed
    // between creating the temporary file and renaming it.
    let leftover = dir.path().join(".state.json.4242.0.tmp");
    fs::write(&leftover, b"{\"reserv").unwrap();
    let mut l = store.lock().unwrap();
    assert_eq!(l.state, State::default(), "the leftover is not read");
    l.state.last = Some("10.1.0.9".parse().unwrap());
    l.commit().unwrap();
    let mut names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["lock", "state.json"]);
    let mode = fs::metadata(dir.path().join("state.json"))
        .unwrap()
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
}

#[test]
fn corrupt_state_is_an_error_not_a_reset() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path());
    fs::write(dir.path().join("state.json"), b"garbage").unwrap();
    assert!(matches!(store.lock(), Err(StoreError::Corrupt { .. })));
}

#[test]
fn lock_is_exclusive_across_threads() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path());
    // 8 threads each do 25 read-modify-write increments under the lock;
    // flock locks are per open file description, so threads exclude
    // each other like processes do.
    std::thread::scope(|s| {
        for t in 0..8 {
            let store = store.clone();
            s.spawn(move || {
                for i in 0..25 {
                    let mut l = store.lock().unwrap();
                    let n = l.state.reservations.len() as u32;
                    l.state.reservations.push(Reservation {
                        ip: Ipv4Addr::from(0x0a00_0000 + n),
                        container_id: format!("t{t}-{i}"),
                        ifname: "eth0".into(),
                    });
                    l.commit().unwrap();
                }
            });
        }
    });
    let l = store.lock().unwrap();
    assert_eq!(l.state.reservations.len(), 200);
    let ips: std::collections::HashSet<_> = l.state.reservations.iter().map(|r| r.ip).collect();
    assert_eq!(ips.len(), 200, "a lost update would reuse an index");
}
