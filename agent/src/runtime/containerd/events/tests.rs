use super::*;

#[tokio::test]
async fn exits_wake_only_their_pod_and_unknown_ones_wake_all() {
    let exits = Exits::default();
    exits.set_live(true);
    exits.expect("c1", "pod-a");
    exits.expect("c2", "pod-b");
    let a = exits.wait("pod-a", None, Duration::ZERO).await.unwrap();
    let b = exits.wait("pod-b", None, Duration::ZERO).await.unwrap();
    exits.exited("c1");
    assert_eq!(
        exits.wait("pod-a", Some(a), Duration::from_secs(5)).await,
        Some(a + 1)
    );
    assert_eq!(
        exits
            .wait("pod-b", Some(b), Duration::from_millis(20))
            .await,
        Some(b),
        "another pod's exit does not wake this one"
    );
    exits.exited("unknown-container");
    assert_eq!(
        exits.wait("pod-b", Some(b), Duration::from_secs(5)).await,
        Some(b + 1)
    );
    exits.set_live(false);
    assert_eq!(exits.wait("pod-b", Some(b + 1), Duration::ZERO).await, None);
}
