//! Envelopes encoded here as client-go encodes them, zero-valued fields
//! included.

use serde_json::json;

use super::decode;

fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn bytes(num: u32, b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint(u64::from(num) << 3 | 2, &mut out);
    varint(b.len() as u64, &mut out);
    out.extend_from_slice(b);
    out
}

fn int(num: u32, v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    varint(u64::from(num) << 3, &mut out);
    varint(v, &mut out);
    out
}

fn msg(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let type_meta = msg(&[bytes(1, api_version.as_bytes()), bytes(2, kind.as_bytes())]);
    let mut out = b"k8s\0".to_vec();
    out.extend(msg(&[
        bytes(1, &type_meta),
        bytes(2, raw),
        bytes(3, b""),
        bytes(4, b""),
    ]));
    out
}

fn label(k: &str, v: &str) -> Vec<u8> {
    msg(&[bytes(1, k.as_bytes()), bytes(2, v.as_bytes())])
}

#[test]
fn a_deployment_as_kubectl_create_deployment_sends_it() {
    // metadata: name, labels, a zero creationTimestamp (seconds of year 1),
    // an empty selfLink; the status message full of zeros.
    let meta = msg(&[
        bytes(1, b"web"),
        bytes(2, b""),
        bytes(4, b""),
        bytes(8, &int(1, (-62_135_596_800i64) as u64)),
        bytes(11, &label("app", "web")),
    ]);
    let container = msg(&[
        bytes(1, b"nginx"),
        bytes(2, b"nginx:1"),
        bytes(5, b""),
        bytes(8, b""),
        bytes(6, &msg(&[int(3, 80)])),
    ]);
    let template = msg(&[
        bytes(1, &msg(&[bytes(11, &label("app", "web"))])),
        bytes(2, &msg(&[bytes(2, &container), bytes(3, b""), int(25, 0)])),
    ]);
    let spec = msg(&[
        int(1, 2),
        bytes(2, &msg(&[bytes(1, &label("app", "web"))])),
        bytes(3, &template),
        bytes(4, b""),
        int(5, 0),
    ]);
    let status = msg(&[int(1, 0), int(2, 0)]);
    let raw = msg(&[bytes(1, &meta), bytes(2, &spec), bytes(3, &status)]);
    let v = decode(&envelope("apps/v1", "Deployment", &raw)).unwrap();
    assert_eq!(
        v,
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx:1", "ports": [{"containerPort": 80}]}]}}}})
    );
}

#[test]
fn a_field_keel_does_not_read_is_refused_by_number_not_dropped() {
    let spec = msg(&[int(5, 3)]); // minReadySeconds: 3
    let raw = msg(&[bytes(1, &msg(&[bytes(1, b"web")])), bytes(2, &spec)]);
    let err = decode(&envelope("apps/v1", "Deployment", &raw)).unwrap_err();
    assert_eq!(
        err,
        "spec: field number 5 is not one keel reads from protobuf; send JSON"
    );
    // paused and revisionHistoryLimit are read (0 is a limit, not unset).
    let spec = msg(&[int(6, 0), int(7, 1)]);
    let raw = msg(&[bytes(1, &msg(&[bytes(1, b"web")])), bytes(2, &spec)]);
    let v = decode(&envelope("apps/v1", "Deployment", &raw)).unwrap();
    assert_eq!(v["spec"]["paused"], true);
    assert_eq!(v["spec"]["revisionHistoryLimit"], 0);
    let err = decode(&envelope("v1", "Pod", b"")).unwrap_err();
    assert!(err.contains("only as JSON"), "{err}");
    assert!(decode(b"{}").is_err());
    assert!(decode(b"k8s\0\x0a\x05ab").is_err(), "truncated");
}

#[test]
fn a_service_as_kubectl_create_service_sends_it() {
    let port = msg(&[
        bytes(1, b"80-8080"),
        bytes(2, b"TCP"),
        int(3, 80),
        bytes(4, &msg(&[int(1, 0), int(2, 8080), bytes(3, b"")])),
        int(5, 0),
    ]);
    let spec = msg(&[
        bytes(1, &port),
        bytes(2, &label("app", "cs")),
        bytes(3, b""),
        bytes(4, b"ClusterIP"),
    ]);
    let raw = msg(&[bytes(1, &msg(&[bytes(1, b"cs")])), bytes(2, &spec)]);
    let v = decode(&envelope("v1", "Service", &raw)).unwrap();
    assert_eq!(
        v["spec"],
        json!({"ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
               "selector": {"app": "cs"}, "type": "ClusterIP"})
    );
}

#[test]
fn config_maps_and_secrets_as_kubectl_create_sends_them() {
    let meta = msg(&[bytes(1, b"app"), bytes(3, b"default")]);
    let raw = msg(&[
        bytes(1, &meta),
        bytes(2, &label("MODE", "fast")),
        bytes(3, &msg(&[bytes(1, b"bin"), bytes(2, &[0, 1])])),
        int(4, 1),
    ]);
    let v = decode(&envelope("v1", "ConfigMap", &raw)).unwrap();
    assert_eq!(
        v,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "app", "namespace": "default"},
            "data": {"MODE": "fast"}, "binaryData": {"bin": "AAE="}, "immutable": true})
    );
    let raw = msg(&[
        bytes(1, &msg(&[bytes(1, b"db")])),
        bytes(2, &msg(&[bytes(1, b"password"), bytes(2, b"hunter2")])),
        bytes(3, b"Opaque"),
    ]);
    let v = decode(&envelope("v1", "Secret", &raw)).unwrap();
    assert_eq!(
        v,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
            "data": {"password": "aHVudGVyMg=="}, "type": "Opaque"})
    );
}
