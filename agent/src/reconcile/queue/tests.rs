use super::*;

const MS: Duration = Duration::from_millis(1);

fn opts() -> Options {
    Options {
        debounce: 10 * MS,
        resync: Some(Duration::from_secs(60)),
        backoff: Backoff {
            jitter: 0.0,
            ..Backoff::new(100 * MS, 400 * MS)
        },
    }
}

fn keys(b: &Batch<&'static str>) -> Vec<&'static str> {
    b.keys.iter().copied().collect()
}

/// A queue past its initial full pass, at `t0 + 1 ms`.
fn settled() -> (Queue<&'static str>, Instant) {
    let t0 = Instant::now();
    let mut q = Queue::new(opts(), t0);
    let b = q.take(t0).expect("the first full pass is due at once");
    assert!(b.all && b.keys.is_empty());
    q.done(&b, &Report::ok(), t0);
    (q, t0 + MS)
}

#[test]
fn a_burst_is_one_batch_after_the_debounce_each_key_once() {
    let (mut q, t) = settled();
    assert_eq!(q.take(t), None, "nothing changed");
    q.add("a", t);
    q.add("b", t + 4 * MS);
    q.add("a", t + 8 * MS);
    assert_eq!(q.depth(), 2);
    assert_eq!(q.take(t + 9 * MS), None, "still debouncing");
    assert_eq!(q.deadline(), Some(t + 10 * MS));
    let b = q.take(t + 10 * MS).unwrap();
    assert_eq!((keys(&b), b.all), (vec!["a", "b"], false));
    assert_eq!(q.take(t + 11 * MS), None);
    assert_eq!(q.depth(), 0);
}

#[test]
fn a_failed_key_backs_off_alone_and_doubles() {
    let (mut q, t) = settled();
    q.add("bad", t);
    q.add("good", t);
    let b = q.take(t + 10 * MS).unwrap();
    let mut r = Report::ok();
    r.fail("bad", "EPERM");
    q.done(&b, &r, t + 10 * MS);
    assert!(!q.failing().contains_key("good"));
    assert_eq!(q.failing()["bad"].failures, 1);
    assert_eq!(q.deadline(), Some(t + 110 * MS));
    assert_eq!(q.take(t + 109 * MS), None);
    let b = q.take(t + 110 * MS).unwrap();
    assert_eq!(keys(&b), ["bad"]);
    q.done(&b, &r, t + 110 * MS);
    assert_eq!(q.deadline(), Some(t + 310 * MS), "200 ms the second time");
    let b = q.take(t + 310 * MS).unwrap();
    q.done(&b, &Report::ok(), t + 310 * MS);
    assert!(q.failing().is_empty(), "a success forgets the failures");
}

#[test]
fn a_change_to_a_failing_key_retries_it_without_waiting() {
    let (mut q, t) = settled();
    q.add("k", t);
    let b = q.take(t + 10 * MS).unwrap();
    let mut r = Report::ok();
    r.fail("k", "boom");
    q.done(&b, &r, t + 10 * MS);
    q.add("k", t + 20 * MS);
    let b = q
        .take(t + 30 * MS)
        .expect("due after the debounce, not the back-off");
    assert_eq!(keys(&b), ["k"]);
    q.done(&b, &r, t + 30 * MS);
    assert_eq!(q.failing()["k"].failures, 2, "the count goes on");
}

#[test]
fn a_change_during_a_failing_sync_is_not_delayed_by_the_back_off() {
    let (mut q, t) = settled();
    q.add("k", t);
    let b = q.take(t + 10 * MS).unwrap();
    q.add("k", t + 11 * MS); // arrives while the batch runs
    let mut r = Report::ok();
    r.fail("k", "boom");
    q.done(&b, &r, t + 12 * MS);
    assert_eq!(q.deadline(), Some(t + 21 * MS));
}

#[test]
fn full_passes_at_start_on_resync_and_retried_when_they_fail() {
    let t0 = Instant::now();
    let mut q: Queue<&str> = Queue::new(opts(), t0);
    let b = q.take(t0).unwrap();
    assert!(b.all);
    q.done(
        &b,
        &Report {
            all_failed: Some("maps unreadable".into()),
            ..Report::ok()
        },
        t0,
    );
    assert_eq!(q.all_failing().unwrap().failures, 1);
    assert_eq!(q.deadline(), Some(t0 + 100 * MS));
    let b = q.take(t0 + 100 * MS).unwrap();
    assert!(b.all);
    q.done(&b, &Report::ok(), t0 + 100 * MS);
    assert!(q.all_failing().is_none());
    assert_eq!(q.deadline(), Some(t0 + Duration::from_secs(60)), "resync");
    let b = q.take(t0 + Duration::from_secs(60)).unwrap();
    assert!(b.all);
    q.done(&b, &Report::ok(), t0 + Duration::from_secs(60));
    assert_eq!(q.deadline(), Some(t0 + Duration::from_secs(120)));
}

#[test]
fn asking_for_a_full_pass_waits_for_the_debounce_and_takes_dirty_keys_along() {
    let (mut q, t) = settled();
    q.add("x", t);
    q.add_all(t + 2 * MS);
    let b = q.take(t + 10 * MS).unwrap();
    assert_eq!(keys(&b), ["x"]);
    assert!(!b.all, "the full pass is due 2 ms later");
    q.done(&b, &Report::ok(), t + 10 * MS);
    let b = q.take(t + 12 * MS).unwrap();
    assert!(b.all && b.keys.is_empty());
}

#[test]
fn fail_batch_names_every_key() {
    let b = Batch {
        keys: ["a", "b"].into(),
        all: true,
    };
    let r = Report::fail_batch(&b, "ENOSPC");
    assert_eq!(r.failed.len(), 2);
    assert_eq!(r.all_failed.as_deref(), Some("ENOSPC"));
    assert!(!r.is_ok());
}
