use std::os::unix::fs::MetadataExt;

use super::*;

fn file(data: &str, mode: u32) -> FileProjection {
    FileProjection {
        data: data.as_bytes().to_vec(),
        mode,
    }
}

fn payload(items: &[(&str, &str, u32)]) -> Payload {
    items
        .iter()
        .map(|(p, d, m)| (p.to_string(), file(d, *m)))
        .collect()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn writes_the_kubelet_layout_and_swaps_it_on_change() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vol");
    let first = payload(&[
        ("app.conf", "mode=fast\n", 0o644),
        ("keys/secret", "k1", 0o400),
    ]);
    assert!(write(&dir, &first).unwrap());
    let ts1 = fs::read_link(dir.join(DATA_DIR)).unwrap();
    assert!(ts1.to_string_lossy().starts_with("..20"), "{ts1:?}");
    // name -> ..data/name, read through the links.
    assert_eq!(
        fs::read_link(dir.join("app.conf")).unwrap(),
        Path::new("..data/app.conf")
    );
    assert_eq!(
        fs::read_to_string(dir.join("app.conf")).unwrap(),
        "mode=fast\n"
    );
    assert_eq!(fs::read_to_string(dir.join("keys/secret")).unwrap(), "k1");
    let mode = |p: &str| fs::metadata(dir.join(p)).unwrap().mode() & 0o7777;
    assert_eq!(mode("app.conf"), 0o644);
    assert_eq!(mode("keys/secret"), 0o400);

    // The same payload changes nothing.
    assert!(!write(&dir, &first).unwrap());
    assert_eq!(fs::read_link(dir.join(DATA_DIR)).unwrap(), ts1);

    // A changed value, a removed key and a new one: a new generation, the
    // old one gone, the removed key's link gone.
    let second = payload(&[("app.conf", "mode=slow\n", 0o644), ("new", "n", 0o600)]);
    assert!(write(&dir, &second).unwrap());
    let ts2 = fs::read_link(dir.join(DATA_DIR)).unwrap();
    assert_ne!(ts1, ts2);
    assert_eq!(
        fs::read_to_string(dir.join("app.conf")).unwrap(),
        "mode=slow\n"
    );
    assert_eq!(fs::read_to_string(dir.join("new")).unwrap(), "n");
    assert_eq!(
        names(&dir),
        [
            ts2.to_string_lossy().into_owned(),
            "..data".into(),
            "app.conf".into(),
            "new".into()
        ]
    );

    // Everything removed: only the (empty) generation and its link remain.
    assert!(write(&dir, &Payload::new()).unwrap());
    let ts3 = fs::read_link(dir.join(DATA_DIR)).unwrap();
    assert_eq!(
        names(&dir),
        [ts3.to_string_lossy().into_owned(), "..data".into()]
    );
}

#[test]
fn paths_that_climb_out_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for bad in ["/etc/passwd", "../x", "a/../../x", "..data", "..x", ""] {
        let e = write(tmp.path(), &payload(&[(bad, "x", 0o644)])).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
    }
    assert!(fs::read_dir(tmp.path()).unwrap().next().is_none());
}
