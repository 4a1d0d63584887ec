//! Test support the crates' tests share (feature `testing`, never in
//! release binaries).

/// Lints a Prometheus text exposition with `promtool check metrics`
/// (Debian's prometheus package, which `cargo xtask setup` installs);
/// panics with promtool's findings and the text, prefixed with `what`.
pub fn promtool_check(what: &str, text: &str) {
    use std::io::Write as _;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; `cargo xtask setup` installs it)");
    child
        .stdin
        .take()
        .expect("promtool's stdin")
        .write_all(text.as_bytes())
        .expect("writing to promtool");
    let out = child.wait_with_output().expect("promtool's result");
    assert!(
        out.status.success(),
        "{what}: promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
