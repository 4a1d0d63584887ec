//! The provider against small shell scripts: the contract's edges,
//! without root and without any network.

use std::os::unix::fs::PermissionsExt;

use keel_api::vpc::Route;

use super::*;

/// An executable `sh` script in a fresh directory.
fn script(body: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("provider");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    (dir, path)
}

fn provider(path: &std::path::Path, timeout: Duration) -> ExecProvider {
    ExecProvider::new(path.into(), vec!["--table".into(), "rtb-1".into()], timeout)
}

fn request() -> Request {
    Request::new(
        vec![Route {
            destination: "10.244.1.0/24".parse().unwrap(),
            next_hop: "172.30.0.11".parse().unwrap(),
            node: "node-1".into(),
        }],
        None,
    )
}

#[tokio::test]
async fn the_request_goes_to_stdin_with_the_arguments_and_the_answer_comes_back() {
    let (dir, path) = script(
        r#"cat > "$(dirname "$0")/stdin"; echo "$@" > "$(dirname "$0")/args"
echo '{"routes": [{"destination": "10.244.1.0/24", "nextHop": "172.30.0.11"}]}'"#,
    );
    let answer = provider(&path, Duration::from_secs(10))
        .sync(&request())
        .await
        .expect("answer");
    assert!(answer.holds(
        "10.244.1.0/24".parse().unwrap(),
        "172.30.0.11".parse().unwrap()
    ));
    let stdin = std::fs::read(dir.path().join("stdin")).unwrap();
    assert_eq!(Request::parse(&stdin).unwrap(), request());
    let args = std::fs::read_to_string(dir.path().join("args")).unwrap();
    assert_eq!(args.trim(), "--table rtb-1");
}

#[tokio::test]
async fn a_failing_command_reports_its_status_and_stderr() {
    let (_dir, path) = script(
        "cat >/dev/null; echo 'RouteLimitExceeded: rtb-1 holds 50 of 50 routes' >&2; exit 3",
    );
    let p = provider(&path, Duration::from_secs(10));
    let err = p.sync(&request()).await.expect_err("exit 3");
    match &err {
        VpcError::Exit { status, stderr, .. } => {
            assert_eq!(status.code(), Some(3));
            assert_eq!(stderr, "RouteLimitExceeded: rtb-1 holds 50 of 50 routes");
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains(p.name()), "{err}");
}

#[tokio::test]
async fn a_command_that_ignores_its_input_and_fails_is_still_a_failure() {
    let (_dir, path) = script("exit 1");
    let err = provider(&path, Duration::from_secs(10))
        .sync(&request())
        .await
        .expect_err("exit 1");
    assert!(matches!(err, VpcError::Exit { .. }), "{err}");
}

#[tokio::test]
async fn an_invalid_answer_is_refused_naming_the_field() {
    let (_dir, path) = script(
        r#"cat >/dev/null; echo '{"routes": [], "failed": [{"destination": "10.244.1.0/24", "reason": "no room"}]}'"#,
    );
    let err = provider(&path, Duration::from_secs(10))
        .sync(&request())
        .await
        .expect_err("bad reason");
    assert!(matches!(err, VpcError::Answer { .. }), "{err}");
    assert!(err.to_string().contains("failed[0].reason"), "{err}");
}

#[tokio::test]
async fn an_answer_over_the_limit_is_refused() {
    // 5 MiB of spaces (valid JSON whitespace) before a valid answer.
    let (_dir, path) =
        script(r#"cat >/dev/null; head -c 5242880 /dev/zero | tr '\0' ' '; echo '{"routes": []}'"#);
    let err = provider(&path, Duration::from_secs(20))
        .sync(&request())
        .await
        .expect_err("too large");
    assert!(matches!(err, VpcError::TooLarge { .. }), "{err}");
}

#[tokio::test]
async fn a_hanging_command_is_killed_at_the_timeout() {
    let (dir, path) = script(r#"echo $$ > "$(dirname "$0")/pid"; exec sleep 30"#);
    let started = std::time::Instant::now();
    let err = provider(&path, Duration::from_millis(300))
        .sync(&request())
        .await
        .expect_err("timeout");
    assert!(matches!(err, VpcError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // kill_on_drop: the process is gone (or a zombie awaiting reaping
    // by tokio's orphan reaper) shortly after.
    let pid = std::fs::read_to_string(dir.path().join("pid")).unwrap();
    let stat = format!("/proc/{}/stat", pid.trim());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(&stat).is_ok_and(|s| {
        !s.rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
    }) {
        assert!(
            std::time::Instant::now() < deadline,
            "the command still runs"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_missing_command_names_the_program() {
    let err = provider(
        std::path::Path::new("/nonexistent/vpc"),
        Duration::from_secs(1),
    )
    .sync(&request())
    .await
    .expect_err("no such program");
    assert!(matches!(err, VpcError::Spawn { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/vpc"), "{err}");
}
