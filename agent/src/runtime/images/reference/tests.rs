use super::*;

#[test]
fn normalises_like_docker() {
    assert_eq!(
        normalise("busybox").unwrap(),
        "docker.io/library/busybox:latest"
    );
    assert_eq!(
        normalise("127.0.0.1:5000/keel/testbin:v1").unwrap(),
        "127.0.0.1:5000/keel/testbin:v1"
    );
    let d = format!("sha256:{}", "0".repeat(64));
    assert_eq!(
        normalise(&format!("127.0.0.1:5000/app@{d}")).unwrap(),
        format!("127.0.0.1:5000/app@{d}")
    );
}

#[test]
fn rejects_bad_names() {
    for bad in ["", "UPPER/case", "a b", "x@sha256:zz"] {
        let e = normalise(bad).unwrap_err();
        assert_eq!(e.reason(), "InvalidImageName", "{bad}: {e}");
    }
}
