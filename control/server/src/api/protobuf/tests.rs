//! Bodies encoded here field by field as client-go encodes them (every
//! plain field written, zeros included; pointers only when set), each
//! checked against the JSON Kubernetes writes for the same object; then
//! the same bodies sent to the router, which must store what it stores
//! for their JSON twins.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::{civil_from_days, decode};
use crate::api::tests::{app, send, send_raw};

// --- a small encoder --------------------------------------------------

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

/// A length-delimited field.
fn bytes(num: u32, b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint(u64::from(num) << 3 | 2, &mut out);
    varint(b.len() as u64, &mut out);
    out.extend_from_slice(b);
    out
}

/// A varint field; a negative number sign-extended as Go writes an int32.
fn i(num: u32, v: i64) -> Vec<u8> {
    let mut out = Vec::new();
    varint(u64::from(num) << 3, &mut out);
    varint(v as u64, &mut out);
    out
}

fn yes(num: u32) -> Vec<u8> {
    i(num, 1)
}

fn no(num: u32) -> Vec<u8> {
    i(num, 0)
}

fn s(num: u32, v: &str) -> Vec<u8> {
    bytes(num, v.as_bytes())
}

/// A nested message.
fn m(num: u32, parts: &[Vec<u8>]) -> Vec<u8> {
    bytes(num, &parts.concat())
}

/// A `map<string, string>` entry.
fn kv(num: u32, k: &str, v: &str) -> Vec<u8> {
    m(num, &[s(1, k), s(2, v)])
}

/// A `Quantity`.
fn q(num: u32, v: &str) -> Vec<u8> {
    m(num, &[s(1, v)])
}

/// A `map<string, Quantity>` entry.
fn kq(num: u32, k: &str, v: &str) -> Vec<u8> {
    m(num, &[s(1, k), q(2, v)])
}

fn port(num: u32, v: i64) -> Vec<u8> {
    m(num, &[i(1, 0), i(2, v), s(3, "")])
}

fn named_port(num: u32, v: &str) -> Vec<u8> {
    m(num, &[i(1, 1), i(2, 0), s(3, v)])
}

/// A `Time` as client-go writes it: seconds, nanos 0.
fn time(num: u32, secs: i64) -> Vec<u8> {
    m(num, &[i(1, secs), i(2, 0)])
}

fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let type_meta = [s(1, api_version), s(2, kind)].concat();
    let mut out = b"k8s\0".to_vec();
    out.extend([bytes(1, &type_meta), bytes(2, raw), s(3, ""), s(4, "")].concat());
    out
}

/// ObjectMeta as a client writes it for a new object: the plain strings
/// empty, creationTimestamp the zero Time (empty).
fn meta(name: &str, extra: &[Vec<u8>]) -> Vec<u8> {
    let mut parts = vec![
        s(1, name),
        s(2, ""),
        s(3, ""),
        s(4, ""),
        s(5, ""),
        s(6, ""),
        i(7, 0),
        bytes(8, b""),
    ];
    parts.extend_from_slice(extra);
    m(1, &parts)
}

// --- the objects --------------------------------------------------------

/// A `Probe` (field `num`) with its handler and the plain numbers.
fn probe(num: u32, handler: Vec<u8>, numbers: &[Vec<u8>]) -> Vec<u8> {
    let mut parts = vec![m(1, &[handler])];
    parts.extend_from_slice(numbers);
    m(num, &parts)
}

/// A container with every field keel acts on (field `num` of PodSpec).
fn container_pb(num: u32) -> Vec<u8> {
    let liveness = probe(
        10,
        m(
            2,
            &[
                s(1, "/healthz"),
                port(2, 8080),
                s(3, ""),
                s(4, "HTTP"),
                m(5, &[s(1, "X-Probe"), s(2, "1")]),
            ],
        ),
        &[i(2, 5), i(3, 1), i(4, 10), i(5, 1), i(6, 3)],
    );
    let readiness = probe(
        11,
        m(3, &[named_port(1, "http"), s(2, "")]),
        &[i(2, 0), i(3, 2), i(4, 0), i(5, 0), i(6, 0)],
    );
    let startup = probe(
        22,
        m(1, &[s(1, "cat"), s(1, "/tmp/ready")]),
        &[i(6, 30), i(7, 0)],
    );
    let env_from_secret =
        |name: &str, key: &str| m(3, &[m(4, &[m(1, &[s(1, name)]), s(2, key), no(3)])]);
    m(
        num,
        &[
            s(1, "app"),
            s(2, "registry.example/app:1.2"),
            s(3, "/app"),
            s(4, "--port=8080"),
            s(4, "--verbose"),
            s(5, "/srv"),
            m(
                6,
                &[s(1, "http"), i(2, 0), i(3, 8080), s(4, "TCP"), s(5, "")],
            ),
            m(
                6,
                &[s(1, "grpc"), i(2, 0), i(3, 9090), s(4, "TCP"), s(5, "")],
            ),
            m(7, &[s(1, "MODE"), s(2, "fast")]),
            m(
                7,
                &[
                    s(1, "PASSWORD"),
                    s(2, ""),
                    env_from_secret("db", "password"),
                ],
            ),
            m(
                7,
                &[
                    s(1, "LEVEL"),
                    s(2, ""),
                    m(3, &[m(3, &[m(1, &[s(1, "app-config")]), s(2, "level")])]),
                ],
            ),
            m(
                7,
                &[
                    s(1, "POD_IP"),
                    m(3, &[m(1, &[s(1, "v1"), s(2, "status.podIP")])]),
                ],
            ),
            m(
                7,
                &[
                    s(1, "CPU_LIMIT"),
                    m(3, &[m(2, &[s(1, ""), s(2, "limits.cpu"), q(3, "1m")])]),
                ],
            ),
            // Go's zero divisor is written as "0": JSON leaves it out.
            m(
                7,
                &[
                    s(1, "MEM"),
                    m(3, &[m(2, &[s(1, ""), s(2, "requests.memory"), q(3, "0")])]),
                ],
            ),
            m(
                8,
                &[
                    kq(1, "cpu", "500m"),
                    kq(1, "memory", "256Mi"),
                    kq(2, "cpu", "100m"),
                    kq(2, "memory", "128Mi"),
                ],
            ),
            m(
                9,
                &[s(1, "config"), yes(2), s(3, "/etc/app"), s(4, ""), s(6, "")],
            ),
            m(
                9,
                &[s(1, "cache"), no(2), s(3, "/cache"), s(4, "sub"), s(6, "")],
            ),
            liveness,
            readiness,
            m(
                12,
                &[
                    m(1, &[m(1, &[s(1, "sh"), s(1, "-c"), s(1, "echo hi")])]),
                    m(2, &[m(4, &[i(1, 5)])]),
                ],
            ),
            s(13, "/dev/termination-log"),
            s(14, "IfNotPresent"),
            m(
                15,
                &[
                    m(1, &[s(1, "NET_BIND_SERVICE"), s(2, "ALL")]),
                    no(2),
                    i(4, 1000),
                    yes(5),
                    yes(6),
                    no(7),
                    i(8, 0),
                    m(11, &[s(1, "RuntimeDefault")]),
                ],
            ),
            no(16),
            no(17),
            no(18),
            m(
                19,
                &[s(1, "CFG_"), m(2, &[m(1, &[s(1, "app-config")]), yes(2)])],
            ),
            m(19, &[s(1, ""), m(3, &[m(1, &[s(1, "db")])])]),
            s(20, "File"),
            startup,
        ],
    )
}

fn container_json() -> Value {
    json!({
        "name": "app",
        "image": "registry.example/app:1.2",
        "command": ["/app"],
        "args": ["--port=8080", "--verbose"],
        "workingDir": "/srv",
        "ports": [
            {"name": "http", "containerPort": 8080, "protocol": "TCP"},
            {"name": "grpc", "containerPort": 9090, "protocol": "TCP"}
        ],
        "env": [
            {"name": "MODE", "value": "fast"},
            {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password", "optional": false}}},
            {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "level"}}},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}},
            {"name": "CPU_LIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}},
            {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "requests.memory"}}}
        ],
        "resources": {
            "limits": {"cpu": "500m", "memory": "256Mi"},
            "requests": {"cpu": "100m", "memory": "128Mi"}
        },
        "volumeMounts": [
            {"name": "config", "readOnly": true, "mountPath": "/etc/app"},
            {"name": "cache", "mountPath": "/cache", "subPath": "sub"}
        ],
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP",
                        "httpHeaders": [{"name": "X-Probe", "value": "1"}]},
            "initialDelaySeconds": 5, "timeoutSeconds": 1, "periodSeconds": 10,
            "successThreshold": 1, "failureThreshold": 3
        },
        "readinessProbe": {"tcpSocket": {"port": "http"}, "timeoutSeconds": 2},
        "startupProbe": {"exec": {"command": ["cat", "/tmp/ready"]}, "failureThreshold": 30,
                         "terminationGracePeriodSeconds": 0},
        "lifecycle": {
            "postStart": {"exec": {"command": ["sh", "-c", "echo hi"]}},
            "preStop": {"sleep": {"seconds": 5}}
        },
        "terminationMessagePath": "/dev/termination-log",
        "imagePullPolicy": "IfNotPresent",
        "securityContext": {
            "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
            "privileged": false, "runAsUser": 1000, "runAsNonRoot": true,
            "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
            "runAsGroup": 0, "seccompProfile": {"type": "RuntimeDefault"}
        },
        "envFrom": [
            {"prefix": "CFG_", "configMapRef": {"name": "app-config", "optional": true}},
            {"secretRef": {"name": "db"}}
        ],
        "terminationMessagePolicy": "File"
    })
}

/// A second container: a gRPC readiness probe, a container port with a
/// hostPort.
fn sidecar_pb(num: u32) -> Vec<u8> {
    m(
        num,
        &[
            s(1, "side"),
            s(2, "busybox:1.36"),
            m(6, &[s(1, ""), i(2, 8081), i(3, 81), s(4, "TCP"), s(5, "")]),
            m(8, &[]),
            probe(11, m(4, &[i(1, 9090), s(2, "health")]), &[i(4, 5)]),
            s(13, ""),
            s(14, "Always"),
        ],
    )
}

fn sidecar_json() -> Value {
    json!({"name": "side", "image": "busybox:1.36",
           "ports": [{"hostPort": 8081, "containerPort": 81, "protocol": "TCP"}],
           "readinessProbe": {"grpc": {"port": 9090, "service": "health"}, "periodSeconds": 5},
           "imagePullPolicy": "Always"})
}

fn volume(name: &str, source: Vec<u8>) -> Vec<u8> {
    m(1, &[s(1, name), m(2, &[source])])
}

/// A pod spec with every volume source keel supports and the pod-level
/// fields keel acts on or keeps (field `num` of its parent).
fn pod_spec_pb(num: u32, grace: i64) -> Vec<u8> {
    let field_ref = |path: &str| m(2, &[s(1, ""), s(2, path)]);
    m(
        num,
        &[
            volume(
                "config",
                m(
                    19,
                    &[
                        m(1, &[s(1, "app-config")]),
                        m(2, &[s(1, "app.conf"), s(2, "app.conf"), i(3, 0o400)]),
                        i(3, 0o644),
                    ],
                ),
            ),
            volume("secret", m(6, &[s(1, "db"), i(3, 0o400), no(4)])),
            // An emptyDir with nothing set: a pointer to an empty struct.
            volume("cache", m(2, &[s(1, "")])),
            volume("mem", m(2, &[s(1, "Memory"), q(2, "64Mi")])),
            volume(
                "podinfo",
                m(
                    16,
                    &[
                        m(1, &[s(1, "labels"), field_ref("metadata.labels")]),
                        m(
                            1,
                            &[
                                s(1, "cpu"),
                                m(3, &[s(1, "app"), s(2, "limits.cpu"), q(3, "1m")]),
                            ],
                        ),
                        i(2, 0o644),
                    ],
                ),
            ),
            volume(
                "all",
                m(
                    26,
                    &[
                        m(1, &[m(3, &[m(1, &[s(1, "app-config")])])]),
                        m(
                            1,
                            &[m(
                                1,
                                &[
                                    m(1, &[s(1, "db")]),
                                    m(2, &[s(1, "password"), s(2, "pw")]),
                                    yes(4),
                                ],
                            )],
                        ),
                        m(
                            1,
                            &[m(2, &[m(1, &[s(1, "name"), field_ref("metadata.name")])])],
                        ),
                        i(2, 0o444),
                    ],
                ),
            ),
            volume(
                "logs",
                m(1, &[s(1, "/var/log/app"), s(2, "DirectoryOrCreate")]),
            ),
            container_pb(2),
            sidecar_pb(2),
            s(3, "Always"),
            i(4, grace),
            s(6, "ClusterFirst"),
            kv(7, "disk", "ssd"),
            s(8, "default"),
            s(9, ""),
            s(10, ""),
            no(11),
            no(12),
            no(13),
            m(
                14,
                &[
                    i(2, 0),
                    i(4, 1),
                    i(4, 2),
                    i(5, 2000),
                    m(10, &[s(1, "RuntimeDefault")]),
                ],
            ),
            m(15, &[s(1, "regcred")]),
            s(16, ""),
            s(17, ""),
            m(
                18,
                &[
                    m(
                        1,
                        &[m(
                            1,
                            &[m(
                                1,
                                &[m(1, &[s(1, "zone"), s(2, "In"), s(3, "a"), s(3, "b")])],
                            )],
                        )],
                    ),
                    m(
                        3,
                        &[m(
                            2,
                            &[
                                i(1, 100),
                                m(
                                    2,
                                    &[m(1, &[kv(1, "app", "web")]), s(3, "kubernetes.io/hostname")],
                                ),
                            ],
                        )],
                    ),
                ],
            ),
            s(19, "default-scheduler"),
            m(
                20,
                &[
                    s(1, "init"),
                    s(2, "busybox:1.36"),
                    s(3, "sh"),
                    s(3, "-c"),
                    s(3, "true"),
                    m(8, &[]),
                ],
            ),
            m(
                22,
                &[
                    s(1, "node.kubernetes.io/not-ready"),
                    s(2, "Exists"),
                    s(3, ""),
                    s(4, "NoExecute"),
                    i(5, 300),
                ],
            ),
            m(
                22,
                &[
                    s(1, "dedicated"),
                    s(2, "Equal"),
                    s(3, "web"),
                    s(4, "NoSchedule"),
                ],
            ),
            m(23, &[s(1, "10.0.0.1"), s(2, "db.local")]),
            m(
                26,
                &[
                    s(1, "1.1.1.1"),
                    s(2, "example.com"),
                    m(3, &[s(1, "ndots"), s(2, "2")]),
                    m(3, &[s(1, "edns0")]),
                ],
            ),
            no(30),
            m(
                33,
                &[
                    i(1, 1),
                    s(2, "zone"),
                    s(3, "ScheduleAnyway"),
                    m(4, &[kv(1, "app", "web")]),
                ],
            ),
        ],
    )
}

fn pod_spec_json(grace: i64) -> Value {
    json!({
        "volumes": [
            {"name": "config", "configMap": {"name": "app-config",
                "items": [{"key": "app.conf", "path": "app.conf", "mode": 0o400}], "defaultMode": 0o644}},
            {"name": "secret", "secret": {"secretName": "db", "defaultMode": 0o400, "optional": false}},
            {"name": "cache", "emptyDir": {}},
            {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
            {"name": "podinfo", "downwardAPI": {"items": [
                {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                {"path": "cpu", "resourceFieldRef": {"containerName": "app", "resource": "limits.cpu", "divisor": "1m"}}
            ], "defaultMode": 0o644}},
            {"name": "all", "projected": {"sources": [
                {"configMap": {"name": "app-config"}},
                {"secret": {"name": "db", "items": [{"key": "password", "path": "pw"}], "optional": true}},
                {"downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}}
            ], "defaultMode": 0o444}},
            {"name": "logs", "hostPath": {"path": "/var/log/app", "type": "DirectoryOrCreate"}}
        ],
        "containers": [container_json(), sidecar_json()],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": grace,
        "dnsPolicy": "ClusterFirst",
        "nodeSelector": {"disk": "ssd"},
        "serviceAccountName": "default",
        "securityContext": {"runAsUser": 0, "supplementalGroups": [1, 2], "fsGroup": 2000,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "imagePullSecrets": [{"name": "regcred"}],
        "affinity": {
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]}},
            "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "web"}},
                                                     "topologyKey": "kubernetes.io/hostname"}}]}
        },
        "schedulerName": "default-scheduler",
        "initContainers": [{"name": "init", "image": "busybox:1.36", "command": ["sh", "-c", "true"]}],
        "tolerations": [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"}
        ],
        "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["db.local"]}],
        "dnsConfig": {"nameservers": ["1.1.1.1"], "searches": ["example.com"],
                      "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]},
        "enableServiceLinks": false,
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway",
                                       "labelSelector": {"matchLabels": {"app": "web"}}}]
    })
}

fn deployment_pb() -> Vec<u8> {
    let labels = [kv(11, "app", "web"), kv(11, "tier", "front")];
    let raw = [
        meta(
            "web",
            &[
                kv(11, "app", "web"),
                kv(12, "note", "from client-go"),
                // managedFields, which keel drops.
                m(17, &[s(1, "client"), s(2, "Update"), m(7, &[s(1, "{}")])]),
            ],
        ),
        m(
            2,
            &[
                i(1, 3),
                m(
                    2,
                    &[
                        kv(1, "app", "web"),
                        m(2, &[s(1, "tier"), s(2, "In"), s(3, "front")]),
                    ],
                ),
                m(3, &[meta("", &labels), pod_spec_pb(2, 30)]),
                m(
                    4,
                    &[
                        s(1, "RollingUpdate"),
                        m(2, &[port(1, 0), named_port(2, "25%")]),
                    ],
                ),
                i(5, 5),
                i(6, 0),
                no(7),
                i(9, 600),
            ],
        ),
        // The status a client sends with a new object: all zeros.
        m(3, &[i(1, 0), i(2, 0), i(3, 0), i(4, 0), i(5, 0), i(7, 0)]),
    ]
    .concat();
    envelope("apps/v1", "Deployment", &raw)
}

fn deployment_json() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}, "annotations": {"note": "from client-go"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"},
                         "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]},
            "template": {"metadata": {"labels": {"app": "web", "tier": "front"}}, "spec": pod_spec_json(30)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}},
            "minReadySeconds": 5,
            "revisionHistoryLimit": 0,
            "progressDeadlineSeconds": 600
        }
    })
}

fn pod_pb() -> Vec<u8> {
    let raw = [
        meta("p", &[kv(11, "app", "web")]),
        pod_spec_pb(2, 0),
        m(3, &[s(1, ""), s(3, ""), s(4, ""), s(5, ""), s(6, "")]),
    ]
    .concat();
    envelope("v1", "Pod", &raw)
}

fn pod_json() -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "p", "labels": {"app": "web"}},
           "spec": pod_spec_json(0)})
}

fn service_pb() -> Vec<u8> {
    let spec = m(
        2,
        &[
            m(
                1,
                &[
                    s(1, "http"),
                    s(2, "TCP"),
                    i(3, 80),
                    named_port(4, "http"),
                    i(5, 30080),
                    s(6, "http"),
                ],
            ),
            m(
                1,
                &[s(1, "dns"), s(2, "UDP"), i(3, 53), port(4, 5353), i(5, 0)],
            ),
            // No targetPort: Go writes the zero IntOrString.
            m(
                1,
                &[s(1, "raw"), s(2, "TCP"), i(3, 9000), port(4, 0), i(5, 0)],
            ),
            kv(2, "app", "web"),
            s(3, ""),
            s(4, "NodePort"),
            s(5, "192.0.2.10"),
            s(7, "ClientIP"),
            s(8, ""),
            s(10, ""),
            s(11, "Local"),
            i(12, 0),
            yes(13),
            m(14, &[m(1, &[i(1, 600)])]),
            s(17, "SingleStack"),
            s(19, "IPv4"),
            s(22, "Cluster"),
        ],
    );
    let status = m(3, &[m(1, &[])]);
    envelope("v1", "Service", &[meta("web", &[]), spec, status].concat())
}

fn service_json() -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
    "spec": {
        "ports": [
            {"name": "http", "protocol": "TCP", "port": 80, "targetPort": "http", "nodePort": 30080, "appProtocol": "http"},
            {"name": "dns", "protocol": "UDP", "port": 53, "targetPort": 5353},
            {"name": "raw", "protocol": "TCP", "port": 9000}
        ],
        "selector": {"app": "web"},
        "type": "NodePort",
        "externalIPs": ["192.0.2.10"],
        "sessionAffinity": "ClientIP",
        "externalTrafficPolicy": "Local",
        "publishNotReadyAddresses": true,
        "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 600}},
        "ipFamilyPolicy": "SingleStack",
        "ipFamilies": ["IPv4"],
        "internalTrafficPolicy": "Cluster"
    }})
}

/// A LoadBalancer Service with the fields only that type has.
fn load_balancer_pb() -> Vec<u8> {
    let spec = m(
        2,
        &[
            m(
                1,
                &[s(1, ""), s(2, "TCP"), i(3, 443), port(4, 8443), i(5, 30443)],
            ),
            kv(2, "app", "web"),
            s(3, "10.96.0.50"),
            s(4, "LoadBalancer"),
            s(8, "203.0.113.7"),
            s(9, "198.51.100.0/24"),
            s(11, "Local"),
            i(12, 30999),
            s(18, "10.96.0.50"),
            no(20),
            s(21, "example.com/lb"),
            s(23, "PreferClose"),
        ],
    );
    let status = m(
        3,
        &[m(
            1,
            &[m(
                1,
                &[
                    s(1, "203.0.113.7"),
                    s(3, "VIP"),
                    m(4, &[i(1, 443), s(2, "TCP")]),
                ],
            )],
        )],
    );
    envelope("v1", "Service", &[meta("lb", &[]), spec, status].concat())
}

fn load_balancer_json() -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb"},
        "spec": {
            "ports": [{"protocol": "TCP", "port": 443, "targetPort": 8443, "nodePort": 30443}],
            "selector": {"app": "web"},
            "clusterIP": "10.96.0.50",
            "type": "LoadBalancer",
            "loadBalancerIP": "203.0.113.7",
            "loadBalancerSourceRanges": ["198.51.100.0/24"],
            "externalTrafficPolicy": "Local",
            "healthCheckNodePort": 30999,
            "clusterIPs": ["10.96.0.50"],
            "allocateLoadBalancerNodePorts": false,
            "loadBalancerClass": "example.com/lb",
            "trafficDistribution": "PreferClose"
        },
        "status": {"loadBalancer": {"ingress": [
            {"ip": "203.0.113.7", "ipMode": "VIP", "ports": [{"port": 443, "protocol": "TCP"}]}]}}})
}

fn secret_pb() -> Vec<u8> {
    let raw = [
        meta("db", &[]),
        m(2, &[s(1, "password"), bytes(2, b"hunter2")]),
        m(2, &[s(1, "key"), bytes(2, &[0, 0xff, 0x10])]),
        s(3, "Opaque"),
        kv(4, "user", "admin"),
        no(5),
    ]
    .concat();
    envelope("v1", "Secret", &raw)
}

fn secret_json() -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
           "data": {"password": "aHVudGVyMg==", "key": "AP8Q"},
           "type": "Opaque", "stringData": {"user": "admin"}, "immutable": false})
}

fn config_map_pb() -> Vec<u8> {
    let raw = [
        meta("app-config", &[]),
        kv(2, "level", "debug"),
        kv(2, "empty", ""),
        m(3, &[s(1, "bin"), bytes(2, &[0, 1, 0xfe])]),
        yes(4),
    ]
    .concat();
    envelope("v1", "ConfigMap", &raw)
}

fn config_map_json() -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app-config"},
           "data": {"level": "debug", "empty": ""}, "binaryData": {"bin": "AAH+"}, "immutable": true})
}

/// 2024-02-29T12:34:56Z.
const LEAP_DAY: i64 = 1_709_210_096;

fn event_pb() -> Vec<u8> {
    let raw = [
        meta("web.17", &[]),
        m(
            2,
            &[
                s(1, "Pod"),
                s(2, "default"),
                s(3, "web"),
                s(4, "u-1"),
                s(5, "v1"),
                s(7, "spec.containers{app}"),
            ],
        ),
        s(3, "Pulled"),
        s(4, "pulled the image"),
        m(5, &[s(1, "kubelet"), s(2, "node-1")]),
        time(6, LEAP_DAY),
        // Kubernetes keeps no nanoseconds for a Time.
        m(7, &[i(1, LEAP_DAY + 60), i(2, 999)]),
        i(8, 2),
        s(9, "Normal"),
        m(10, &[i(1, LEAP_DAY), i(2, 123_456_789)]),
        m(11, &[i(1, 2), m(2, &[i(1, LEAP_DAY + 60), i(2, 5_000)])]),
        s(12, "Pulling"),
        s(14, "kubelet"),
        s(15, "node-1"),
    ]
    .concat();
    envelope("v1", "Event", &raw)
}

fn event_json() -> Value {
    json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "web.17"},
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web", "uid": "u-1",
                           "apiVersion": "v1", "fieldPath": "spec.containers{app}"},
        "reason": "Pulled", "message": "pulled the image",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": "2024-02-29T12:34:56Z", "lastTimestamp": "2024-02-29T12:35:56Z",
        "count": 2, "type": "Normal",
        "eventTime": "2024-02-29T12:34:56.123456Z",
        "series": {"count": 2, "lastObservedTime": "2024-02-29T12:35:56.000005Z"},
        "action": "Pulling", "reportingComponent": "kubelet", "reportingInstance": "node-1"})
}

/// A Node; `full` adds taints and podCIDRs, which keel's Node does not
/// have (refused from JSON too).
fn node_pb(full: bool) -> Vec<u8> {
    let mut spec = vec![s(1, "10.244.1.0/24"), no(4)];
    if full {
        spec.push(m(
            5,
            &[
                s(1, "dedicated"),
                s(2, "web"),
                s(3, "NoSchedule"),
                time(4, LEAP_DAY),
            ],
        ));
        spec.push(s(7, "10.244.1.0/24"));
    }
    let raw = [
        meta("node-1", &[kv(11, "kubernetes.io/hostname", "node-1")]),
        m(2, &spec),
        m(
            3,
            &[
                kq(1, "cpu", "4"),
                kq(1, "pods", "110"),
                kq(2, "memory", "7Gi"),
                m(
                    4,
                    &[
                        s(1, "Ready"),
                        s(2, "True"),
                        time(3, LEAP_DAY),
                        bytes(4, b""),
                        s(5, "KeelAgentReady"),
                    ],
                ),
                m(5, &[s(1, "InternalIP"), s(2, "10.0.0.11")]),
                m(6, &[m(1, &[i(1, 10250)])]),
                m(7, &[s(4, "6.1.0"), s(9, "linux"), s(10, "amd64")]),
            ],
        ),
    ]
    .concat();
    envelope("v1", "Node", &raw)
}

fn node_json(full: bool) -> Value {
    let mut v = json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "node-1", "labels": {"kubernetes.io/hostname": "node-1"}},
        "spec": {"podCIDR": "10.244.1.0/24",
                 "taints": [{"key": "dedicated", "value": "web", "effect": "NoSchedule", "timeAdded": "2024-02-29T12:34:56Z"}],
                 "podCIDRs": ["10.244.1.0/24"]},
        "status": {"capacity": {"cpu": "4", "pods": "110"}, "allocatable": {"memory": "7Gi"},
            "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "2024-02-29T12:34:56Z",
                            "reason": "KeelAgentReady"}],
            "addresses": [{"type": "InternalIP", "address": "10.0.0.11"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"kernelVersion": "6.1.0", "operatingSystem": "linux", "architecture": "amd64"}}});
    if !full {
        let spec = v["spec"].as_object_mut().unwrap();
        spec.remove("taints");
        spec.remove("podCIDRs");
    }
    v
}

fn endpoints_pb() -> Vec<u8> {
    let raw = [
        meta("web", &[]),
        m(
            2,
            &[
                m(
                    1,
                    &[
                        s(1, "10.244.1.5"),
                        m(2, &[s(1, "Pod"), s(2, "default"), s(3, "web-1")]),
                        s(3, ""),
                        s(4, "node-1"),
                    ],
                ),
                m(2, &[s(1, "10.244.2.7")]),
                m(3, &[s(1, "http"), i(2, 8080), s(3, "TCP"), s(4, "http")]),
            ],
        ),
    ]
    .concat();
    envelope("v1", "Endpoints", &raw)
}

fn endpoints_json() -> Value {
    json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web"},
    "subsets": [{
        "addresses": [{"ip": "10.244.1.5", "targetRef": {"kind": "Pod", "namespace": "default", "name": "web-1"},
                       "nodeName": "node-1"}],
        "notReadyAddresses": [{"ip": "10.244.2.7"}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP", "appProtocol": "http"}]
    }]})
}

// --- decoding -------------------------------------------------------------

#[test]
fn every_kind_decodes_to_the_json_kubernetes_writes() {
    let cases = [
        ("deployment", deployment_pb(), deployment_json()),
        ("pod", pod_pb(), pod_json()),
        ("service", service_pb(), service_json()),
        ("load balancer", load_balancer_pb(), load_balancer_json()),
        ("secret", secret_pb(), secret_json()),
        ("config map", config_map_pb(), config_map_json()),
        ("event", event_pb(), event_json()),
        ("node", node_pb(true), node_json(true)),
        ("node as keel has it", node_pb(false), node_json(false)),
        ("endpoints", endpoints_pb(), endpoints_json()),
    ];
    for (what, pb, want) in cases {
        let got = decode(&pb).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(got, want, "{what}:\n{got:#}");
    }
}

#[test]
fn a_deployment_as_kubectl_create_deployment_sends_it() {
    // metadata: name, labels, creationTimestamp as the seconds of Go's zero
    // time; the status message full of zeros.
    let meta = m(
        1,
        &[
            s(1, "web"),
            s(2, ""),
            s(4, ""),
            time(8, -62_135_596_800),
            kv(11, "app", "web"),
        ],
    );
    let container = m(
        2,
        &[
            s(1, "nginx"),
            s(2, "nginx:1"),
            s(5, ""),
            m(8, &[]),
            m(6, &[i(3, 80)]),
        ],
    );
    let template = m(
        3,
        &[
            m(1, &[kv(11, "app", "web")]),
            m(2, &[container, s(3, ""), s(6, "")]),
        ],
    );
    let spec = m(
        2,
        &[
            i(1, 2),
            m(2, &[kv(1, "app", "web")]),
            template,
            m(4, &[]),
            i(5, 0),
        ],
    );
    let status = m(3, &[i(1, 0), i(2, 0)]);
    let v = decode(&envelope(
        "apps/v1",
        "Deployment",
        &[meta, spec, status].concat(),
    ))
    .unwrap();
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
fn a_field_number_not_in_the_schema_is_refused_with_its_path() {
    let deployment = |container: Vec<u8>| {
        let spec = m(2, &[m(3, &[m(2, &[sidecar_pb(2), container])])]);
        envelope("apps/v1", "Deployment", &[meta("web", &[]), spec].concat())
    };
    let err = decode(&deployment(m(2, &[s(1, "c"), s(99, "x")]))).unwrap_err();
    assert_eq!(
        err,
        "spec.template.spec.containers[1]: field number 99 is not in Kubernetes 1.32's schema, which keel reads protobuf by; send JSON"
    );
    // With a zero value it says nothing and is skipped, as a zero is.
    let v = decode(&deployment(m(2, &[s(1, "c"), s(99, "")]))).unwrap();
    assert_eq!(
        v["spec"]["template"]["spec"]["containers"][1],
        json!({"name": "c"})
    );
    let err = decode(&envelope("v1", "Pod", &i(40, 1))).unwrap_err();
    assert!(err.starts_with("the object: field number 40 "), "{err}");
    // A field of the wrong wire type is named too.
    let err = decode(&envelope("v1", "Pod", &m(2, &[s(4, "30")]))).unwrap_err();
    assert_eq!(err, "spec.terminationGracePeriodSeconds: expected a number");
    let err = decode(&envelope(
        "v1",
        "Pod",
        &m(
            2,
            &[m(2, &[s(1, "c"), m(6, &[i(3, 1), s(4, "x"), i(1, 3)])])],
        ),
    ))
    .unwrap_err();
    assert_eq!(err, "spec.containers[0].ports[0].name: expected a string");
}

#[test]
fn envelopes_and_kinds_keel_does_not_read_are_refused() {
    let err = decode(&envelope("v1", "Namespace", b"")).unwrap_err();
    assert!(err.contains("only as JSON"), "{err}");
    let err = decode(&envelope("apps/v1", "ReplicaSet", b"")).unwrap_err();
    assert!(err.contains("only as JSON"), "{err}");
    assert!(decode(b"{}").is_err());
    assert!(decode(b"k8s\0\x0a\x05ab").is_err(), "truncated");
    let err = decode(&envelope(
        "v1",
        "Service",
        &m(2, &[m(1, &[m(4, &[i(1, 2)])])]),
    ))
    .unwrap_err();
    assert_eq!(
        err,
        "spec.ports[0].targetPort: IntOrString type 2 is neither 0 nor 1"
    );
    let err = decode(&envelope("v1", "Event", &m(6, &[i(1, 253_402_300_800)]))).unwrap_err();
    assert!(err.starts_with("firstTimestamp: time "), "{err}");
}

#[test]
fn pointers_set_to_zero_are_kept_and_plain_zeros_are_not() {
    let spec = m(
        2,
        &[
            i(1, 0),
            i(5, 0),
            i(6, 0),
            no(7),
            i(9, 0),
            m(4, &[s(1, ""), m(2, &[port(1, 0), port(2, 0)])]),
            m(
                3,
                &[m(
                    2,
                    &[
                        i(4, 0),
                        no(11),
                        i(25, 0),
                        no(21),
                        no(30),
                        m(14, &[i(2, 0), i(6, 0), no(3)]),
                        m(
                            2,
                            &[
                                s(1, "c"),
                                m(15, &[i(4, 0), no(2)]),
                                m(6, &[i(2, 0), i(3, 80)]),
                            ],
                        ),
                    ],
                )],
            ),
        ],
    );
    let v = decode(&envelope(
        "apps/v1",
        "Deployment",
        &[meta("web", &[]), spec].concat(),
    ))
    .unwrap();
    assert_eq!(
        v["spec"],
        json!({
            "replicas": 0, "revisionHistoryLimit": 0, "progressDeadlineSeconds": 0,
            "strategy": {"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}},
            "template": {"spec": {
                "terminationGracePeriodSeconds": 0, "priority": 0,
                "automountServiceAccountToken": false, "enableServiceLinks": false,
                "securityContext": {"runAsUser": 0, "runAsGroup": 0, "runAsNonRoot": false},
                "containers": [{"name": "c", "securityContext": {"runAsUser": 0, "privileged": false},
                                "ports": [{"containerPort": 80}]}]
            }}
        })
    );
}

#[test]
fn packed_numbers_and_repeated_messages_merge_as_protobuf_reads_them() {
    // supplementalGroups packed; securityContext written twice (merged).
    let mut packed = Vec::new();
    for g in [5u64, 300] {
        varint(g, &mut packed);
    }
    let spec = m(
        2,
        &[
            m(14, &[bytes(4, &packed)]),
            m(14, &[i(5, 7)]),
            m(2, &[s(1, "c"), i(18, -1)]),
        ],
    );
    let v = decode(&envelope("v1", "Pod", &spec)).unwrap();
    assert_eq!(
        v["spec"],
        json!({"securityContext": {"supplementalGroups": [5, 300], "fsGroup": 7},
               "containers": [{"name": "c", "tty": true}]})
    );
    // A negative int32 is sign-extended to ten bytes by Go.
    let v = decode(&envelope("v1", "Event", &i(8, -3))).unwrap();
    assert_eq!(v["count"], -3);
}

#[test]
fn times_are_written_as_kubernetes_writes_them() {
    for (days, want) in [
        (0, (1970, 1, 1)),
        (19_782, (2024, 2, 29)),
        (-719_162, (1, 1, 1)),
        (2_932_896, (9999, 12, 31)),
        (11_016, (2000, 2, 29)),
        (-25_508, (1900, 3, 1)),
    ] {
        assert_eq!(civil_from_days(days), want, "{days}");
    }
    // An empty Time and Go's zero time are unset; the first second of
    // year 1 with nanoseconds is not a zero MicroTime.
    let v = decode(&envelope(
        "v1",
        "Event",
        &[
            bytes(6, b""),
            time(7, -62_135_596_800),
            m(10, &[i(1, -62_135_596_800), i(2, 1000)]),
        ]
        .concat(),
    ))
    .unwrap();
    assert_eq!(
        v,
        json!({"apiVersion": "v1", "kind": "Event", "eventTime": "0001-01-01T00:00:00.000001Z"})
    );
}

// --- through the router ------------------------------------------------------

/// Creates `pb` in one fresh store and `json` in another and returns both
/// answers and the stored objects, without what differs between two
/// creates of the same object (uid, creation time).
async fn create_both(path: &str, pb: &[u8], json: &Value) -> [(StatusCode, String, Value); 2] {
    let mut out = Vec::new();
    for (ct, body) in [
        ("application/vnd.kubernetes.protobuf", pb.to_vec()),
        ("application/json", json.to_string().into_bytes()),
    ] {
        let mut app = app();
        let (code, headers, body) = send_raw(&mut app, Method::POST, path, ct, body).await;
        let warnings: Vec<_> = headers
            .get_all("warning")
            .iter()
            .map(|w| w.to_str().unwrap().to_string())
            .collect();
        let name = json["metadata"]["name"].as_str().unwrap();
        let (_, mut stored) =
            send(&mut app, Method::GET, &format!("{path}/{name}"), None, true).await;
        if let Some(meta) = stored["metadata"].as_object_mut() {
            meta.remove("uid");
            meta.remove("creationTimestamp");
        }
        let answer = if code.is_success() {
            String::new()
        } else {
            body.to_string()
        };
        out.push((code, format!("{answer}{}", warnings.join("\n")), stored));
    }
    out.try_into().unwrap()
}

#[tokio::test]
async fn each_body_is_stored_as_its_json_twin_is() {
    let created = StatusCode::CREATED;
    let cases = [
        (
            "/apis/apps/v1/namespaces/default/deployments",
            deployment_pb(),
            deployment_json(),
            created,
        ),
        (
            "/api/v1/namespaces/default/pods",
            pod_pb(),
            pod_json(),
            created,
        ),
        (
            "/api/v1/namespaces/default/services",
            service_pb(),
            service_json(),
            created,
        ),
        // keel has no LoadBalancer type: refused alike.
        (
            "/api/v1/namespaces/default/services",
            load_balancer_pb(),
            load_balancer_json(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/namespaces/default/secrets",
            secret_pb(),
            secret_json(),
            created,
        ),
        (
            "/api/v1/namespaces/default/configmaps",
            config_map_pb(),
            config_map_json(),
            created,
        ),
        (
            "/api/v1/namespaces/default/events",
            event_pb(),
            event_json(),
            created,
        ),
        ("/api/v1/nodes", node_pb(false), node_json(false), created),
        (
            "/api/v1/nodes",
            node_pb(true),
            node_json(true),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (path, pb, json, want) in cases {
        let [from_pb, from_json] = create_both(path, &pb, &json).await;
        assert_eq!(from_json.0, want, "{path}: {}", from_json.1);
        assert_eq!(from_pb.0, from_json.0, "{path}: {}", from_pb.1);
        assert_eq!(from_pb.1, from_json.1, "{path}: the answer and warnings");
        assert_eq!(from_pb.2, from_json.2, "{path}: the stored object");
        if want == created {
            assert!(
                from_pb.2["metadata"]["resourceVersion"].is_string(),
                "{path}"
            );
        }
    }
}

// --- real kubectl 1.32 bodies ---------------------------------------------------

/// Bodies kubectl v1.32.4 sent (captured from its `-v=10` request log) for
/// `create deployment web --image=nginx:1 --replicas=2 --port=80`,
/// `create service nodeport np --tcp=80:8080`, `create configmap cm
/// --from-literal=a=b` and `create secret generic s --from-literal=p=hunter2
/// --type=Opaque`.
fn kubectl_bodies() -> [(&'static str, &'static [u8], Value); 4] {
    [
        (
            "/apis/apps/v1/namespaces/default/deployments",
            include_bytes!("fixtures/create-deployment.pb"),
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "labels": {"app": "web"}},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "nginx", "image": "nginx:1",
                                                 "ports": [{"containerPort": 80}]}]}}}}),
        ),
        (
            "/api/v1/namespaces/default/services",
            include_bytes!("fixtures/create-service-nodeport.pb"),
            json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "np", "labels": {"app": "np"}},
                "spec": {"ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
                         "selector": {"app": "np"}, "type": "NodePort"}}),
        ),
        (
            "/api/v1/namespaces/default/configmaps",
            include_bytes!("fixtures/create-configmap.pb"),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"},
                   "data": {"a": "b"}}),
        ),
        (
            "/api/v1/namespaces/default/secrets",
            include_bytes!("fixtures/create-secret-generic.pb"),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                   "data": {"p": "aHVudGVyMg=="}, "type": "Opaque"}),
        ),
    ]
}

#[test]
fn kubectl_bodies_decode_to_what_kubectl_meant() {
    for (path, pb, want) in kubectl_bodies() {
        assert_eq!(decode(pb).unwrap(), want, "{path}");
    }
}

#[tokio::test]
async fn kubectl_bodies_are_created() {
    for (path, pb, want) in kubectl_bodies() {
        let mut app = app();
        let (code, _, body) = send_raw(
            &mut app,
            Method::POST,
            path,
            "application/vnd.kubernetes.protobuf",
            pb,
        )
        .await;
        assert_eq!(code, StatusCode::CREATED, "{path}: {body}");
        assert_eq!(body["metadata"]["name"], want["metadata"]["name"], "{path}");
    }
}
