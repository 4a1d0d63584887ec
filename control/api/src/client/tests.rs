//! The client's pure parts.

use super::{ClientError, warning_text};

#[test]
fn warning_headers_are_read_as_kubernetes_writes_them() {
    assert_eq!(
        warning_text(r#"299 - "spec.tolerations: keel does not act on this field""#).as_deref(),
        Some("spec.tolerations: keel does not act on this field")
    );
    // Quotes inside the text come escaped, as Go's strconv.Quote writes them.
    assert_eq!(
        warning_text(r#"299 - "unknown field \"spec.x\"""#).as_deref(),
        Some(r#"unknown field "spec.x""#)
    );
    assert_eq!(warning_text("199 - \"misc\""), None);
    assert_eq!(warning_text("299"), None);
}

#[test]
fn too_large_resource_version_is_told_apart_from_other_timeouts() {
    let status = |code: u16, message: &str| {
        ClientError::Api(Box::new(crate::Status::failure(code, "Timeout", message)))
    };
    assert!(
        status(504, "Timeout: Too large resource version: 9, current: 3")
            .is_too_large_resource_version()
    );
    assert!(!status(504, "Timeout: request did not complete").is_too_large_resource_version());
    assert!(!status(410, "too old resource version").is_too_large_resource_version());
}

#[test]
fn a_request_moves_to_the_next_replica_only_when_that_cannot_apply_it_twice() {
    use super::{Attempt, try_next};
    use hyper::Method;
    let cases = [
        // (method, what happened, on to the next replica)
        (Method::POST, Attempt::NotConnected, true),
        (Method::POST, Attempt::Answered(503), true),
        (Method::POST, Attempt::Failed, false),
        (Method::POST, Attempt::TimedOut, false),
        (Method::POST, Attempt::Answered(504), false),
        (Method::PUT, Attempt::Answered(504), false),
        (Method::DELETE, Attempt::Failed, false),
        (Method::PATCH, Attempt::Answered(503), true),
        (Method::POST, Attempt::Answered(409), false),
        (Method::POST, Attempt::Answered(500), false),
        (Method::GET, Attempt::NotConnected, true),
        (Method::GET, Attempt::Failed, true),
        (Method::GET, Attempt::TimedOut, true),
        (Method::GET, Attempt::Answered(503), true),
        (Method::GET, Attempt::Answered(504), true),
        (Method::GET, Attempt::Answered(404), false),
        (Method::GET, Attempt::Answered(200), false),
    ];
    for (method, attempt, want) in cases {
        assert_eq!(
            try_next(&method, attempt),
            want,
            "{method} after {attempt:?}"
        );
    }
}
