use super::*;

#[test]
fn doubles_to_the_cap() {
    let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
    let ms: Vec<u128> = (1..=6).map(|n| b.nominal(n).as_millis()).collect();
    assert_eq!(ms, [100, 200, 400, 800, 1000, 1000]);
    assert_eq!(b.nominal(u32::MAX), Duration::from_secs(1), "no overflow");
}

#[test]
fn jitter_stays_within_twenty_percent() {
    let b = Backoff::new(Duration::from_millis(1000), Duration::from_secs(10));
    for _ in 0..200 {
        let d = b.delay(1).as_millis();
        assert!((800..=1200).contains(&d), "{d}");
    }
    let spread: std::collections::BTreeSet<u128> =
        (0..50).map(|_| b.delay(1).as_millis()).collect();
    assert!(spread.len() > 5, "jittered delays differ: {spread:?}");
}

#[test]
fn retry_counts_and_resets() {
    let mut r = Retry::new(Backoff {
        jitter: 0.0,
        ..Backoff::new(Duration::from_millis(10), Duration::from_millis(40))
    });
    let ms: Vec<u128> = (0..4).map(|_| r.next_delay().as_millis()).collect();
    assert_eq!(ms, [10, 20, 40, 40]);
    assert_eq!(r.failures(), 4);
    r.reset();
    assert_eq!(r.next_delay(), Duration::from_millis(10));
}
