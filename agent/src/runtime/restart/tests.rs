use super::*;

#[test]
fn policies() {
    use RestartPolicy::*;
    assert!(should_restart(Always, 0) && should_restart(Always, 1));
    assert!(!should_restart(OnFailure, 0) && should_restart(OnFailure, 137));
    assert!(!should_restart(Never, 1));
}

#[test]
fn doubles_from_10s_to_5min() {
    let mut b = Backoff::kubelet();
    let waits: Vec<u64> = (0..8)
        .map(|_| b.on_exit(Duration::from_secs(1)).as_secs())
        .collect();
    assert_eq!(waits, vec![10, 20, 40, 80, 160, 300, 300, 300]);
}

#[test]
fn resets_after_ten_minutes_running() {
    let mut b = Backoff::kubelet();
    for _ in 0..5 {
        b.on_exit(Duration::from_secs(1));
    }
    assert_eq!(b.on_exit(Duration::from_secs(599)).as_secs(), 300);
    assert_eq!(b.on_exit(Duration::from_secs(600)).as_secs(), 10);
    assert_eq!(b.on_exit(Duration::from_secs(1)).as_secs(), 20);
}
