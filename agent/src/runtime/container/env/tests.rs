use std::collections::BTreeMap;

use keel_api::{
    Quantity,
    pod::{
        EnvFromSource, EnvVar, KeySelector, ObjectFieldSelector, OptionalReference,
        ResourceFieldSelector,
    },
    service::ServicePort,
};
use serde_json::json;

use super::*;

/// Objects by `namespace/name`; names in `pending` are not fetched yet.
#[derive(Default)]
struct Map {
    config_maps: BTreeMap<String, Arc<ConfigMap>>,
    secrets: BTreeMap<String, Arc<Secret>>,
    services: Vec<Arc<Service>>,
    pending: Vec<String>,
}

impl Sources for Map {
    fn config_map(&self, ns: &str, name: &str) -> Fetched<Arc<ConfigMap>> {
        let k = format!("{ns}/{name}");
        if self.pending.contains(&k) {
            return Fetched::Pending;
        }
        self.config_maps
            .get(&k)
            .cloned()
            .map_or(Fetched::Missing, Fetched::Found)
    }
    fn secret(&self, ns: &str, name: &str) -> Fetched<Arc<Secret>> {
        let k = format!("{ns}/{name}");
        self.secrets
            .get(&k)
            .cloned()
            .map_or(Fetched::Missing, Fetched::Found)
    }
    fn services(&self, ns: &str) -> Vec<Arc<Service>> {
        self.services
            .iter()
            .filter(|s| s.metadata.namespace == ns)
            .cloned()
            .collect()
    }
}

fn sources() -> Map {
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "cfg", "namespace": "default"},
        "data": {"MODE": "fast", "LEVEL": "3", "bad-key": "x", "1ST": "y"}
    }))
    .unwrap();
    let mut secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "creds", "namespace": "default"},
        "stringData": {"password": "s3cret", "user": "admin"}
    }))
    .unwrap();
    secret.normalize();
    let svc = |ns: &str, name: &str, ip: &str, ports: Vec<ServicePort>| {
        let mut s: Service = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": ns},
            "spec": {"clusterIP": ip, "ports": [{"port": 1}]}
        }))
        .unwrap();
        s.spec.ports = ports;
        Arc::new(s)
    };
    let port = |name: &str, port: i64, proto: &str| -> ServicePort {
        serde_json::from_value(json!({"name": name, "port": port, "protocol": proto})).unwrap()
    };
    Map {
        config_maps: [("default/cfg".to_string(), Arc::new(cm))].into(),
        secrets: [("default/creds".to_string(), Arc::new(secret))].into(),
        services: vec![
            svc(
                "default",
                "kubernetes",
                "10.96.0.1",
                vec![port("https", 443, "TCP")],
            ),
            svc(
                "default",
                "redis-main",
                "10.96.0.20",
                vec![port("", 6379, "TCP"), port("metrics", 9121, "UDP")],
            ),
            svc("default", "headless", "None", vec![port("", 80, "TCP")]),
            svc("other", "db", "10.96.0.30", vec![port("", 5432, "TCP")]),
        ],
        pending: vec![],
    }
}

fn pod() -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "default", "uid": "u-1",
                     "labels": {"app": "web"}, "annotations": {"team": "core"}},
        "spec": {"nodeName": "node-a", "serviceAccountName": "builder",
                 "containers": [{"name": "app", "image": "busybox",
                     "resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "250m"}}}]},
        "status": {"podIP": "10.244.1.5"}
    }))
    .unwrap()
}

fn node() -> NodeFacts {
    NodeFacts {
        host_ip: "192.168.50.2".into(),
        cpu_milli: 2000,
        memory: 1 << 30,
    }
}

fn var(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: value.into(),
        value_from: None,
    }
}

fn from(name: &str, src: EnvVarSource) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: String::new(),
        value_from: Some(src),
    }
}

fn field(path: &str) -> EnvVarSource {
    EnvVarSource {
        field_ref: Some(ObjectFieldSelector {
            api_version: String::new(),
            field_path: path.into(),
        }),
        ..Default::default()
    }
}

fn cm_key(name: &str, key: &str, optional: bool) -> EnvVarSource {
    EnvVarSource {
        config_map_key_ref: Some(KeySelector {
            name: name.into(),
            key: key.into(),
            optional: optional.then_some(true),
        }),
        ..Default::default()
    }
}

fn secret_key(name: &str, key: &str) -> EnvVarSource {
    EnvVarSource {
        secret_key_ref: Some(KeySelector {
            name: name.into(),
            key: key.into(),
            optional: None,
        }),
        ..Default::default()
    }
}

fn run(env: Vec<EnvVar>, env_from: Vec<EnvFromSource>) -> Result<Env, ConfigError> {
    run_with(&pod(), env, env_from, &sources())
}

fn run_with(
    p: &Pod,
    env: Vec<EnvVar>,
    env_from: Vec<EnvFromSource>,
    s: &Map,
) -> Result<Env, ConfigError> {
    let mut c = p.spec.containers[0].clone();
    c.env = env;
    c.env_from = env_from;
    resolve(p, &c, "spec.containers[0]", s, &node())
}

fn get<'a>(e: &'a Env, name: &str) -> Option<&'a str> {
    e.vars
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn value_from_sources_resolve_by_a_table_of_cases() {
    let cases: &[(&str, EnvVarSource, Option<&str>)] = &[
        ("a", cm_key("cfg", "MODE", false), Some("fast")),
        ("b", secret_key("creds", "password"), Some("s3cret")),
        ("c", cm_key("cfg", "nope", true), None),
        ("d", cm_key("absent", "MODE", true), None),
        ("e", field("metadata.name"), Some("web")),
        ("f", field("metadata.namespace"), Some("default")),
        ("g", field("metadata.uid"), Some("u-1")),
        ("h", field("metadata.labels['app']"), Some("web")),
        ("i", field("metadata.annotations['team']"), Some("core")),
        ("j", field("metadata.labels['none']"), Some("")),
        ("k", field("spec.nodeName"), Some("node-a")),
        ("l", field("spec.serviceAccountName"), Some("builder")),
        ("m", field("status.podIP"), Some("10.244.1.5")),
        ("n", field("status.podIPs"), Some("10.244.1.5")),
        ("o", field("status.hostIP"), Some("192.168.50.2")),
    ];
    for (name, src, want) in cases {
        let e = run(vec![from(name, src.clone())], vec![]).unwrap();
        assert_eq!(get(&e, name), *want, "{name}: {src:?}");
    }
}

#[test]
fn resource_field_refs_read_limits_requests_and_the_node() {
    let r = |resource: &str, divisor: Option<&str>| EnvVarSource {
        resource_field_ref: Some(ResourceFieldSelector {
            container_name: String::new(),
            resource: resource.into(),
            divisor: divisor.map(|d| Quantity::parse(d).unwrap()),
        }),
        ..Default::default()
    };
    let cases: &[(&str, Option<&str>, &str)] = &[
        ("limits.memory", None, "67108864"),
        ("limits.memory", Some("1Mi"), "64"),
        ("requests.cpu", None, "1"),
        ("requests.cpu", Some("1m"), "250"),
        ("limits.cpu", None, "2"),
        ("requests.memory", None, "0"),
    ];
    for (res, div, want) in cases {
        let e = run(vec![from("X", r(res, *div))], vec![]).unwrap();
        assert_eq!(get(&e, "X"), Some(*want), "{res} / {div:?}");
    }
}

#[test]
fn a_missing_reference_names_the_object_and_the_key() {
    let e = run(vec![from("A", cm_key("absent", "MODE", false))], vec![]).unwrap_err();
    assert_eq!(
        e.field,
        "spec.containers[0].env[0].valueFrom.configMapKeyRef"
    );
    assert!(e.message.contains("configmap \"absent\" not found"), "{e}");
    let e = run(vec![from("A", cm_key("cfg", "nope", false))], vec![]).unwrap_err();
    assert_eq!(
        e.message, "couldn't find key nope in ConfigMap default/cfg",
        "{e}"
    );
    let e = run(vec![from("A", secret_key("creds", "token"))], vec![]).unwrap_err();
    assert_eq!(e.message, "couldn't find key token in Secret default/creds");
    let e = run(
        vec![],
        vec![EnvFromSource {
            prefix: String::new(),
            config_map_ref: None,
            secret_ref: Some(OptionalReference {
                name: "gone".into(),
                optional: None,
            }),
        }],
    )
    .unwrap_err();
    assert_eq!(e.field, "spec.containers[0].envFrom[0].secretRef");
    assert!(e.message.contains("secret \"gone\" not found"), "{e}");
    let mut s = sources();
    s.pending.push("default/cfg".into());
    let e = run_with(
        &pod(),
        vec![from("A", cm_key("cfg", "MODE", false))],
        vec![],
        &s,
    )
    .unwrap_err();
    assert!(e.message.contains("not fetched"), "{e}");
    // The secret's value is never part of an error.
    assert!(!e.to_string().contains("s3cret"));
}

#[test]
fn env_from_takes_prefixes_skips_invalid_keys_and_env_wins() {
    let e = run(
        vec![var("MODE", "override")],
        vec![
            EnvFromSource {
                prefix: String::new(),
                config_map_ref: Some(OptionalReference {
                    name: "cfg".into(),
                    optional: None,
                }),
                secret_ref: None,
            },
            EnvFromSource {
                prefix: "DB_".into(),
                config_map_ref: None,
                secret_ref: Some(OptionalReference {
                    name: "creds".into(),
                    optional: None,
                }),
            },
            EnvFromSource {
                prefix: "X_".into(),
                config_map_ref: Some(OptionalReference {
                    name: "absent".into(),
                    optional: Some(true),
                }),
                secret_ref: None,
            },
        ],
    )
    .unwrap();
    let names: Vec<&str> = e.vars.iter().map(|(k, _)| k.as_str()).collect();
    // envFrom keys in key order (`1ST` skipped: a name may not start with
    // a digit; `-` and `.` are allowed, as in Kubernetes), then the
    // Service variables.
    assert_eq!(
        names[..5],
        ["LEVEL", "MODE", "bad-key", "DB_password", "DB_user"],
        "{names:?}"
    );
    assert_eq!(get(&e, "MODE"), Some("override"));
    assert_eq!(get(&e, "DB_password"), Some("s3cret"));
    assert_eq!(get(&e, "1ST"), None);
    assert_eq!(
        e.warnings,
        vec![
            "Keys [1ST] from the EnvFrom configMap default/cfg were skipped since they are considered invalid environment variable names."
        ]
    );
}

#[test]
fn expansion_follows_kubernetes() {
    let lookup = |n: &str| match n {
        "A" => Some("1".to_string()),
        "EMPTY" => Some(String::new()),
        _ => None,
    };
    let cases: &[(&str, &str)] = &[
        ("$(A)", "1"),
        ("x$(A)y$(A)", "x1y1"),
        ("$(B)", "$(B)"),
        ("$$(A)", "$(A)"),
        ("$$$(A)", "$1"),
        ("$$", "$"),
        ("$", "$"),
        ("a$", "a$"),
        ("$(A", "$(A"),
        ("$A", "$A"),
        ("$(EMPTY)-", "-"),
        ("€$é", "€$é"),
        ("$()", "$()"),
    ];
    for (input, want) in cases {
        assert_eq!(expand(input, lookup), *want, "{input:?}");
    }
}

#[test]
fn env_values_expand_earlier_variables_and_service_variables() {
    let e = run(
        vec![
            from("MODE", cm_key("cfg", "MODE", false)),
            var(
                "URL",
                "redis://$(REDIS_MAIN_SERVICE_HOST):$(REDIS_MAIN_SERVICE_PORT)/$(MODE)",
            ),
            var("LATER", "$(AFTER)"),
            var("AFTER", "x"),
            var("ESC", "$$(MODE)"),
        ],
        vec![],
    )
    .unwrap();
    assert_eq!(get(&e, "URL"), Some("redis://10.96.0.20:6379/fast"));
    // Only earlier variables expand.
    assert_eq!(get(&e, "LATER"), Some("$(AFTER)"));
    assert_eq!(get(&e, "ESC"), Some("$(MODE)"));
}

#[test]
fn service_variables_are_the_kubelets() {
    let e = run(vec![], vec![]).unwrap();
    let want = [
        ("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
        ("KUBERNETES_SERVICE_PORT", "443"),
        ("KUBERNETES_SERVICE_PORT_HTTPS", "443"),
        ("KUBERNETES_PORT", "tcp://10.96.0.1:443"),
        ("KUBERNETES_PORT_443_TCP", "tcp://10.96.0.1:443"),
        ("KUBERNETES_PORT_443_TCP_PROTO", "tcp"),
        ("KUBERNETES_PORT_443_TCP_PORT", "443"),
        ("KUBERNETES_PORT_443_TCP_ADDR", "10.96.0.1"),
        ("REDIS_MAIN_SERVICE_HOST", "10.96.0.20"),
        ("REDIS_MAIN_SERVICE_PORT", "6379"),
        ("REDIS_MAIN_SERVICE_PORT_METRICS", "9121"),
        ("REDIS_MAIN_PORT", "tcp://10.96.0.20:6379"),
        ("REDIS_MAIN_PORT_6379_TCP", "tcp://10.96.0.20:6379"),
        ("REDIS_MAIN_PORT_6379_TCP_PROTO", "tcp"),
        ("REDIS_MAIN_PORT_6379_TCP_PORT", "6379"),
        ("REDIS_MAIN_PORT_6379_TCP_ADDR", "10.96.0.20"),
        ("REDIS_MAIN_PORT_9121_UDP", "udp://10.96.0.20:9121"),
        ("REDIS_MAIN_PORT_9121_UDP_PROTO", "udp"),
        ("REDIS_MAIN_PORT_9121_UDP_PORT", "9121"),
        ("REDIS_MAIN_PORT_9121_UDP_ADDR", "10.96.0.20"),
    ];
    let got: Vec<(&str, &str)> = e
        .vars
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(got, want);
    // Headless Services and other namespaces' give none.
    assert!(
        !e.vars
            .iter()
            .any(|(k, _)| k.starts_with("HEADLESS") || k.starts_with("DB_"))
    );

    // enableServiceLinks: false keeps only the kubernetes Service's.
    let mut p = pod();
    p.spec.enable_service_links = Some(false);
    let e = run_with(&p, vec![], vec![], &sources()).unwrap();
    assert!(e.vars.iter().all(|(k, _)| k.starts_with("KUBERNETES_")));
    assert_eq!(e.vars.len(), 8);

    // In another namespace: that namespace's Services and kubernetes.
    let mut p = pod();
    p.metadata.namespace = "other".into();
    let e = run_with(&p, vec![], vec![], &sources()).unwrap();
    assert_eq!(get(&e, "DB_SERVICE_HOST"), Some("10.96.0.30"));
    assert_eq!(get(&e, "KUBERNETES_SERVICE_HOST"), Some("10.96.0.1"));
    assert_eq!(get(&e, "REDIS_MAIN_SERVICE_HOST"), None);

    // A container's own variable of the same name wins, in its place.
    let e = run(vec![var("KUBERNETES_SERVICE_HOST", "mine")], vec![]).unwrap();
    assert_eq!(e.vars[0], ("KUBERNETES_SERVICE_HOST".into(), "mine".into()));
    assert_eq!(
        e.vars
            .iter()
            .filter(|(k, _)| k == "KUBERNETES_SERVICE_HOST")
            .count(),
        1
    );
}
