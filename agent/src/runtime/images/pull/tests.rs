use super::*;

fn opts() -> PullOptions {
    PullOptions {
        mirrors: [
            (
                "registry.keel.test".to_string(),
                "172.30.0.2:5000".to_string(),
            ),
            ("docker.io".to_string(), "mirror.local".to_string()),
        ]
        .into(),
        ..Default::default()
    }
}

fn endpoint(image: &str) -> String {
    opts()
        .endpoint(&super::super::reference::parse(image).unwrap())
        .whole()
}

#[test]
fn mirrored_registries_are_fetched_from_their_mirror() {
    assert_eq!(
        endpoint("registry.keel.test/keel-testbin:latest"),
        "172.30.0.2:5000/keel-testbin:latest"
    );
    assert_eq!(
        endpoint("registry.keel.test/team/app"),
        "172.30.0.2:5000/team/app:latest"
    );
    // Docker Hub's short names resolve to docker.io.
    assert_eq!(
        endpoint("busybox:1.36"),
        "mirror.local/library/busybox:1.36"
    );
    let d = format!("sha256:{}", "a".repeat(64));
    assert_eq!(
        endpoint(&format!("registry.keel.test/app:v1@{d}")),
        format!("172.30.0.2:5000/app@{d}")
    );
}

#[test]
fn other_registries_are_fetched_as_named() {
    assert_eq!(endpoint("quay.io/x/y:1"), "quay.io/x/y:1");
    assert_eq!(
        endpoint("registry.keel.test:5000/app:v1"),
        "registry.keel.test:5000/app:v1"
    );
}
