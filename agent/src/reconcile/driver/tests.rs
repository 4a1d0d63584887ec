use std::sync::mpsc;

use super::{super::backoff::Backoff, *};

/// Records every batch; fails keys named "bad" the first `fail` times.
struct Recorder {
    seen: mpsc::Sender<Batch<String>>,
    fail: u32,
}

impl Reconcile for Recorder {
    type Key = String;
    fn reconcile(&mut self, batch: &Batch<String>) -> Report<String> {
        self.seen.send(batch.clone()).unwrap();
        let mut r = Report::ok();
        if self.fail > 0 && batch.keys.contains("bad") {
            self.fail -= 1;
            r.fail("bad".to_string(), "refused");
        }
        r
    }
}

fn opts() -> Options {
    Options {
        debounce: Duration::from_millis(20),
        resync: None,
        backoff: Backoff::new(Duration::from_millis(30), Duration::from_millis(60)),
    }
}

const WAIT: Duration = Duration::from_secs(5);

#[test]
fn batches_bursts_retries_failures_and_stops() {
    let (tx, rx) = mpsc::channel();
    let (h, join) = spawn("test", Recorder { seen: tx, fail: 2 }, opts()).unwrap();
    let first = rx.recv_timeout(WAIT).unwrap();
    assert!(first.all, "the first batch is a full pass");
    h.trigger("a".to_string());
    h.trigger_many(["b".to_string(), "a".to_string()]);
    let b = rx.recv_timeout(WAIT).unwrap();
    assert_eq!(
        b.keys.into_iter().collect::<Vec<_>>(),
        ["a", "b"],
        "one batch for the burst"
    );
    h.trigger("bad".to_string());
    for _ in 0..3 {
        let b = rx.recv_timeout(WAIT).unwrap();
        assert_eq!(b.keys.into_iter().collect::<Vec<_>>(), ["bad"]);
    }
    // Settled: two failures then a success, nothing failing any more.
    let deadline = Instant::now() + WAIT;
    while !h.status().failing.is_empty() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    let s = h.status();
    assert_eq!((s.syncs, s.full_passes, s.failures), (5, 1, 2));
    assert!(
        rx.recv_timeout(Duration::from_millis(150)).is_err(),
        "nothing more to do"
    );
    h.stop();
    join.join().unwrap();
}

#[test]
fn status_names_failing_keys_with_their_error() {
    let (tx, rx) = mpsc::channel();
    let (h, join) = spawn(
        "test",
        Recorder {
            seen: tx,
            fail: 100,
        },
        opts(),
    )
    .unwrap();
    rx.recv_timeout(WAIT).unwrap();
    h.trigger("bad".to_string());
    rx.recv_timeout(WAIT).unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let s = h.status();
        if let Some(k) = s.failing.get("bad") {
            assert_eq!(k.error, "refused");
            break;
        }
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    h.stop();
    join.join().unwrap();
}
