use super::*;

#[test]
fn records_have_the_cri_shape() {
    let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_nanos(1_500_000_123);
    let r = record(t, Stream::Stderr, false, b"hello world");
    assert_eq!(
        String::from_utf8(r).unwrap(),
        "1970-01-01T00:00:01.500000123Z stderr F hello world\n"
    );
    let p = parse("1970-01-01T00:00:01.500000123Z stdout P a b").unwrap();
    assert_eq!(
        (p.stream.as_str(), p.partial, p.text.as_str()),
        ("stdout", true, "a b")
    );
}

#[test]
fn splitter_keeps_unfinished_lines_and_cuts_long_ones() {
    let mut s = LineSplitter::default();
    assert_eq!(s.feed(b"ab"), vec![]);
    assert_eq!(
        s.feed(b"c\nd\n"),
        vec![(false, b"abc".to_vec()), (false, b"d".to_vec())]
    );
    let long = vec![b'x'; MAX_RECORD + 10];
    let recs = s.feed(&long);
    assert_eq!(recs.len(), 1);
    assert!(recs[0].0 && recs[0].1.len() == MAX_RECORD);
    assert_eq!(s.feed(b"\n"), vec![(false, vec![b'x'; 10])]);
    s.feed(b"tail");
    assert_eq!(s.finish(), Some(b"tail".to_vec()));
}

#[test]
fn rotates_by_size_and_reads_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("0.log");
    let mut w = LogWriter::open(&path, 200, 2).unwrap();
    for i in 0..20 {
        w.write(Stream::Stdout, false, format!("line {i}").as_bytes())
            .unwrap();
    }
    assert!(fs::metadata(&path).unwrap().len() <= 200);
    assert!(dir.path().join("0.log.1").exists());
    assert!(dir.path().join("0.log.2").exists());
    assert!(!dir.path().join("0.log.3").exists());
    let lines = read_lines(&path, 2).unwrap();
    assert_eq!(lines.last().unwrap(), "line 19");
    let nums: Vec<u32> = lines
        .iter()
        .map(|l| l.trim_start_matches("line ").parse().unwrap())
        .collect();
    assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "{nums:?}");
    assert!(lines.len() < 20, "oldest lines rotated away");
}

fn entries() -> Vec<(String, String)> {
    (1..=4)
        .map(|i| (format!("2026-01-01T00:00:0{i}.000000000Z"), format!("l{i}")))
        .collect()
}

#[test]
fn select_applies_tail_since_timestamps_and_limit() {
    let e = entries();
    assert_eq!(select(&e, &Selection::default()), "l1\nl2\nl3\nl4\n");
    let tail = Selection {
        tail: Some(2),
        ..Default::default()
    };
    assert_eq!(select(&e, &tail), "l3\nl4\n");
    let zero = Selection {
        tail: Some(0),
        ..Default::default()
    };
    assert_eq!(select(&e, &zero), "");
    let since = Selection {
        since: Some("2026-01-01T00:00:03.000000000Z".into()),
        timestamps: true,
        ..Default::default()
    };
    assert_eq!(
        select(&e, &since),
        "2026-01-01T00:00:03.000000000Z l3\n2026-01-01T00:00:04.000000000Z l4\n"
    );
    let limit = Selection {
        limit: Some(4),
        ..Default::default()
    };
    assert_eq!(select(&e, &limit), "l1\nl");
}

#[test]
fn read_entries_keeps_each_line_s_first_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("0.log");
    fs::write(
        &path,
        "2026-01-01T00:00:01.000000000Z stdout P ab\n2026-01-01T00:00:02.000000000Z stdout F cd\n2026-01-01T00:00:03.000000000Z stderr F ef\n",
    )
    .unwrap();
    assert_eq!(
        read_entries(&path, 1).unwrap(),
        vec![
            ("2026-01-01T00:00:01.000000000Z".into(), "abcd".into()),
            ("2026-01-01T00:00:03.000000000Z".into(), "ef".into())
        ]
    );
}
