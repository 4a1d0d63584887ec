//! Readiness checks and the metrics exposition (linted by `promtool check
//! metrics` when promtool is installed, as `cargo xtask setup` does).

use std::sync::Arc;

use keel_api::{Pod, pod::PodPhase};

use super::*;
use crate::sync::view::View;

fn health(synced: bool, files: Vec<FileCheck>) -> Health {
    let mut view = View {
        synced,
        ..Default::default()
    };
    for (name, phase, restarts) in [
        ("a", PodPhase::Running, 2),
        ("b", PodPhase::Running, 1),
        ("c", PodPhase::Pending, 0),
    ] {
        let mut p: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "default"},
            "status": {"containerStatuses": [{"name": "c", "restartCount": restarts}]}
        }))
        .unwrap();
        p.status.phase = Some(phase);
        view.pods.insert(format!("default/{name}"), Arc::new(p));
    }
    Health {
        views: Views::new(view),
        reconcilers: Reconcilers::default(),
        events: Recorder::disabled("kubelet"),
        files,
        datapaths: Default::default(),
    }
}

#[test]
fn readiness_names_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let present = dir.path().join("10-keel.conflist");
    std::fs::write(&present, "{}").unwrap();
    let files = vec![
        FileCheck {
            name: "cni-config",
            path: present,
            why: "written once the node has a pod CIDR",
        },
        FileCheck {
            name: "lb-programs",
            path: dir.path().join("missing"),
            why: "pinned when the LB attaches",
        },
    ];
    let checks = readiness(&health(false, files));
    let failed: Vec<&str> = checks
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(failed, ["view-synced", "lb-programs"]);
    assert!(
        readiness(&health(true, vec![]))
            .iter()
            .all(|(_, r)| r.is_ok())
    );
}

#[test]
fn metrics_have_the_series_and_pass_promtool() {
    ops::image_pulled(&Ok::<(), ()>(()), std::time::Duration::from_millis(300));
    ops::cni_done(
        "ADD",
        &Err::<(), ()>(()),
        std::time::Duration::from_millis(3),
    );
    let text = render(&health(true, vec![]));
    for want in [
        "keel_agent_pods{phase=\"Running\"} 2",
        "keel_agent_pods{phase=\"Pending\"} 1",
        "keel_agent_pods{phase=\"Failed\"} 0",
        "keel_agent_container_restarts_total 3",
        "keel_agent_view_synced 1",
        "keel_agent_events_total{outcome=\"dropped\"} 0",
        "keel_agent_image_pull_duration_seconds_bucket{le=\"0.4\",result=\"success\"} 1",
        "keel_agent_cni_operation_duration_seconds_count{operation=\"ADD\",result=\"error\"} 1",
    ] {
        assert!(text.contains(want), "{want} in:\n{text}");
    }
    lint(&text);
}

#[test]
fn counters_are_named_with_total_in_the_text_format() {
    let om = "# HELP a_total x.\n# HELP b Things.\n# TYPE b counter\nb_total 3\n# HELP g G.\n# TYPE g gauge\ng 1\n# EOF\n";
    assert_eq!(
        prometheus_text(om),
        "# HELP a_total x.\n# HELP b_total Things.\n# TYPE b_total counter\nb_total 3\n# HELP g G.\n# TYPE g gauge\ng 1\n"
    );
}

/// `promtool check metrics` on `text`: it must pass (promtool is part of
/// the machine setup; without it the test says so and fails).
pub fn lint(text: &str) {
    keel_api::testing::promtool_check("keel-agent's metrics", text);
}
