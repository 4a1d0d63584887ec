//! The client's pure parts.

use super::warning_text;

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
