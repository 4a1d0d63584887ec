use super::*;

#[test]
fn percentiles_by_nearest_rank() {
    let s: Samples = (1..=100).map(Duration::from_millis).collect();
    assert_eq!(s.p50(), Duration::from_millis(50));
    assert_eq!(s.p99(), Duration::from_millis(99));
    assert_eq!(s.percentile(100.0), Duration::from_millis(100));
    assert_eq!(Samples::new().p99(), Duration::ZERO);
}
