//! Preserved fields: kept where Kubernetes' schema has them, refused with
//! their path where it does not, round-tripped, and named by path.

use serde_json::{Value, json};

use super::*;
use crate::{AnyObject, DecodeError, Deployment, Pod, Service};

/// A Deployment as the Kubernetes documentation writes one, with fields
/// keel does not act on at every level that has them.
fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 2,
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "schedulerName": "default-scheduler",
                    "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
                    "affinity": {"nodeAffinity": {}},
                    "securityContext": {"runAsNonRoot": true, "fsGroup": 2000},
                    "containers": [{
                        "name": "web",
                        "image": "registry.keel.test/web:1",
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File",
                        "securityContext": {"allowPrivilegeEscalation": false, "procMount": "Default"},
                        "readinessProbe": {"tcpSocket": {"port": 80}, "terminationGracePeriodSeconds": 5},
                    }],
                },
            },
        },
    })
}

#[test]
fn kubernetes_fields_keel_does_not_act_on_are_kept_and_round_trip() {
    let d: Deployment = serde_json::from_value(deployment()).unwrap();
    let pod = &d.spec.template.spec;
    assert_eq!(
        pod.preserved.get("schedulerName"),
        Some(&json!("default-scheduler"))
    );
    assert_eq!(
        pod.containers[0].preserved.get("terminationMessagePath"),
        Some(&json!("/dev/termination-log"))
    );
    assert_eq!(
        d.spec.preserved.get("progressDeadlineSeconds"),
        Some(&json!(600))
    );
    // `revisionHistoryLimit` is modelled, not kept aside.
    assert_eq!(d.spec.revision_history_limit, Some(10));
    // What keel models is still read as before.
    assert_eq!(
        pod.security_context.as_ref().unwrap().run_as_non_root,
        Some(true)
    );
    // Serialized back, nothing is lost or added.
    let back = serde_json::to_value(&d).unwrap();
    let again: Deployment = serde_json::from_value(back.clone()).unwrap();
    assert_eq!(again, d);
    for (path, want) in [
        ("/spec/revisionHistoryLimit", json!(10)),
        ("/spec/progressDeadlineSeconds", json!(600)),
        ("/spec/template/spec/tolerations/0/key", json!("k")),
        ("/spec/template/spec/securityContext/fsGroup", json!(2000)),
        (
            "/spec/template/spec/containers/0/terminationMessagePolicy",
            json!("File"),
        ),
        (
            "/spec/template/spec/containers/0/securityContext/procMount",
            json!("Default"),
        ),
        (
            "/spec/template/spec/containers/0/readinessProbe/terminationGracePeriodSeconds",
            json!(5),
        ),
    ] {
        assert_eq!(back.pointer(path), Some(&want), "{path}");
    }
}

#[test]
fn preserved_paths_name_each_kept_field() {
    let d: Deployment = serde_json::from_value(deployment()).unwrap();
    let paths: Vec<String> = preserved_paths(&d).into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        paths,
        [
            "spec.progressDeadlineSeconds",
            "spec.template.spec.affinity",
            "spec.template.spec.containers[0].readinessProbe.terminationGracePeriodSeconds",
            "spec.template.spec.containers[0].securityContext.procMount",
            "spec.template.spec.containers[0].terminationMessagePath",
            "spec.template.spec.containers[0].terminationMessagePolicy",
            "spec.template.spec.schedulerName",
            "spec.template.spec.securityContext.fsGroup",
            "spec.template.spec.tolerations",
        ]
    );
    // Serialization after the walk is whole again.
    assert!(
        serde_json::to_value(&d)
            .unwrap()
            .pointer("/spec/progressDeadlineSeconds")
            .is_some()
    );
    let empty = preserved_paths(
        &serde_json::from_value::<Service>(json!({
            "metadata": {"name": "s", "namespace": "d"},
            "spec": {"ipFamilyPolicy": "SingleStack"},
            "status": {"loadBalancer": {}},
        }))
        .unwrap(),
    );
    assert_eq!(
        empty,
        [
            ("spec.ipFamilyPolicy".to_string(), false),
            ("status.loadBalancer".to_string(), true)
        ]
    );
}

/// Where a decode fails: (path, message).
fn refusal(v: Value) -> (String, String) {
    match AnyObject::from_value(v) {
        Err(DecodeError::Field(e)) => (e.path, e.message),
        other => panic!("expected a field error, got {other:?}"),
    }
}

#[test]
fn a_kubernetes_field_at_the_wrong_place_is_refused_with_its_path() {
    // `tolerations` belongs to the pod spec, not to a container.
    let mut d = deployment();
    d["spec"]["template"]["spec"]["containers"][0]["tolerations"] = json!([]);
    let (path, message) = refusal(d);
    assert_eq!(path, "spec.template.spec.containers[0]");
    assert!(message.contains("unknown field `tolerations`"), "{message}");
    assert!(message.contains("a container"), "{message}");

    // `revisionHistoryLimit` is a Deployment's, not a pod's.
    let (path, message) = refusal(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "d"},
        "spec": {"revisionHistoryLimit": 3, "containers": [{"name": "c", "image": "i"}]},
    }));
    assert_eq!(path, "spec");
    assert!(
        message.contains("unknown field `revisionHistoryLimit`"),
        "{message}"
    );
}

#[test]
fn a_field_kubernetes_does_not_have_is_refused_with_its_path() {
    let mut d = deployment();
    d["spec"]["template"]["spec"]["containers"][0]["imag"] = json!("x");
    let (path, message) = refusal(d);
    assert_eq!(path, "spec.template.spec.containers[0]");
    assert!(message.contains("unknown field `imag`"), "{message}");

    // Inside a modeled struct without preserved fields, serde's own refusal.
    let mut d = deployment();
    d["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"] =
        json!({"ad": ["NET_ADMIN"]});
    let (path, message) = refusal(d);
    assert_eq!(
        path,
        "spec.template.spec.containers[0].securityContext.capabilities.ad"
    );
    assert!(message.contains("unknown field `ad`"), "{message}");
}

#[test]
fn a_null_is_an_absent_field() {
    let p: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p", "namespace": "d"},
        "spec": {"tolerations": null, "containers": [{"name": "c", "image": "i"}]},
    }))
    .unwrap();
    assert!(p.spec.preserved.is_empty());
    assert!(preserved_paths(&p).is_empty());
}

#[test]
fn volume_sources_keel_lacks_are_kept_warned_and_count_as_the_source() {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "d"},
        "spec": {
            "containers": [{"name": "c", "image": "i",
                "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "db"}}],
        },
    });
    let p: Pod = serde_json::from_value(pod.clone()).unwrap();
    use crate::Resource;
    assert!(p.validate().is_empty(), "{:?}", p.validate());
    assert_eq!(
        p.spec.volumes[0].unsupported_source(),
        Some("persistentVolumeClaim")
    );
    assert_eq!(
        serde_json::to_value(&p).unwrap()["spec"]["volumes"][0]["persistentVolumeClaim"],
        json!({"claimName": "db"})
    );
    assert_eq!(
        preserved_paths(&p),
        [("spec.volumes[0].persistentVolumeClaim".to_string(), false)]
    );
    // Two sources are still two; a name Kubernetes lacks is refused.
    let mut two = pod.clone();
    two["spec"]["volumes"][0]["emptyDir"] = json!({});
    let p: Pod = serde_json::from_value(two).unwrap();
    assert!(
        p.validate()
            .iter()
            .any(|e| e.message.contains("more than one volume type")),
        "{:?}",
        p.validate()
    );
    let mut bad = pod;
    bad["spec"]["volumes"][0] = json!({"name": "data", "persistentVolumeClaimz": {}});
    let (path, message) = refusal(bad);
    assert_eq!(path, "spec.volumes[0]");
    assert!(
        message.contains("unknown field `persistentVolumeClaimz`"),
        "{message}"
    );
}

#[test]
fn device_claims_pod_level_resources_and_volume_devices_are_kept() {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "d"},
        "spec": {
            "resources": {"limits": {"cpu": "1"}},
            "resourceClaims": [{"name": "gpu", "resourceClaimName": "gpu-claim"}],
            "containers": [{"name": "c", "image": "i",
                "resources": {"limits": {"memory": "64Mi"}, "claims": [{"name": "gpu"}]},
                "volumeDevices": [{"name": "raw", "devicePath": "/dev/xvda"}]}],
        },
    });
    let p: Pod = serde_json::from_value(pod.clone()).unwrap();
    use crate::Resource;
    assert!(p.validate().is_empty(), "{:?}", p.validate());
    assert_eq!(p.spec.resource_claims_field(), Some("spec.resourceClaims"));
    assert_eq!(
        p.spec.containers[0].resources.limits["memory"].to_string(),
        "64Mi",
        "what keel models is still read"
    );
    let back = serde_json::to_value(&p).unwrap();
    for path in [
        "/spec/resources/limits/cpu",
        "/spec/resourceClaims/0/name",
        "/spec/containers/0/resources/claims/0/name",
        "/spec/containers/0/volumeDevices/0/devicePath",
    ] {
        assert_eq!(back.pointer(path), pod.pointer(path), "{path}");
    }
    let paths: Vec<String> = preserved_paths(&p).into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        paths,
        [
            "spec.containers[0].resources.claims",
            "spec.containers[0].volumeDevices",
            "spec.resourceClaims",
            "spec.resources",
        ]
    );
}
