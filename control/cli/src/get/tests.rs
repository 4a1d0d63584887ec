use super::*;

#[test]
fn pod_status_prefers_container_reasons() {
    let mut p: Pod =
        serde_json::from_value(serde_json::json!({"status": {"phase": "Running"}})).unwrap();
    assert_eq!(pod_status(&p), "Running");
    p.status.container_statuses.push(
        serde_json::from_value(serde_json::json!({
            "name": "c", "state": {"waiting": {"reason": "CrashLoopBackOff"}}
        }))
        .unwrap(),
    );
    assert_eq!(pod_status(&p), "CrashLoopBackOff");
}

#[test]
fn render_aligns_columns() {
    let out = render(
        &["NAME", "AGE"],
        &[
            vec!["a-long-name".into(), "5s".into()],
            vec!["b".into(), "10m".into()],
        ],
    );
    assert_eq!(
        out,
        "NAME          AGE\na-long-name   5s\nb             10m\n"
    );
}
