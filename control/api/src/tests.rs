//! Decoding the YAML a Kubernetes user writes, and validation that names fields.

use crate::{AnyObject, DecodeError, Deployment, KINDS, Kind, Pod, Protocol, Resource, Service};

fn yaml(text: &str) -> Result<AnyObject, DecodeError> {
    let value: serde_json::Value = serde_yaml_ng::from_str(text).expect("test YAML parses");
    AnyObject::from_value(value)
}

fn fields(errs: Vec<crate::FieldError>) -> Vec<String> {
    errs.into_iter().map(|e| e.field).collect()
}

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
  labels: {app: web}
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: "25%"}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: server
        image: registry.local/web:1.0
        command: ["/bin/server"]
        args: ["--port", "8080"]
        env: [{name: MODE, value: prod}]
        ports: [{name: http, containerPort: 8080}]
        resources:
          requests: {cpu: 100m, memory: 64Mi}
          limits: {cpu: 1, memory: 128Mi}
        readinessProbe:
          httpGet: {path: /healthz, port: http}
          periodSeconds: 2
        livenessProbe:
          tcpSocket: {port: 8080}
"#;

#[test]
fn kubernetes_deployment_yaml_decodes_and_validates() {
    let AnyObject::Deployment(d) = yaml(DEPLOYMENT).unwrap() else {
        panic!("not a Deployment")
    };
    assert_eq!(d.replicas(), 3);
    assert_eq!(
        d.spec.template.spec.containers[0].resources.requests["cpu"].milli(),
        100
    );
    assert_eq!(d.rollout_bounds(), (1, 0));
    assert_eq!(d.validate(), vec![]);
}

#[test]
fn unknown_fields_are_rejected_with_their_path() {
    let bad = DEPLOYMENT.replace("image: registry", "imag: registry");
    let err = yaml(&bad).unwrap_err().to_string();
    assert!(err.contains("spec.template.spec.containers[0]"), "{err}");
    assert!(err.contains("unknown field `imag`"), "{err}");
    let err = yaml("kind: Pod\napiVersion: v1\nmetadata: {name: a}\nspex: {}\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `spex`"), "{err}");
    assert_eq!(
        yaml("kind: LimitRange\n").unwrap_err(),
        DecodeError::UnknownKind("LimitRange".into())
    );
    assert_eq!(
        yaml("metadata: {}\n").unwrap_err(),
        DecodeError::MissingKind
    );
}

#[test]
fn service_yaml_and_validation() {
    let svc = r#"
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: NodePort
  selector: {app: web}
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}
  ports:
  - {name: http, port: 80, targetPort: http, nodePort: 30080}
  - {name: dns, port: 53, protocol: UDP, targetPort: 5353}
"#;
    let AnyObject::Service(s) = yaml(svc).unwrap() else {
        panic!()
    };
    assert_eq!(s.validate(), vec![]);
    assert_eq!(s.affinity_timeout(), Some(60));

    let mut bad: Service = s.clone();
    bad.spec.ports[0].port = 70000;
    bad.spec.ports[1].node_port = Some(80);
    bad.spec.ports.push(bad.spec.ports[1].clone());
    bad.spec.ports[2].name = "dns2".into();
    bad.metadata.name = "1web".into();
    bad.spec.selector.insert("bad key".into(), "x".into());
    let f = fields(bad.validate());
    for want in [
        "spec.ports[0].port",
        "spec.ports[1].nodePort",
        "spec.ports[2]",
        "metadata.name",
        "spec.selector[bad key]",
    ] {
        assert!(f.iter().any(|x| x == want), "missing {want} in {f:?}");
    }
    let mut headless = s.clone();
    headless.spec.cluster_ip = "None".into();
    assert_eq!(fields(headless.validate()), vec!["spec.clusterIP"]);
}

#[test]
fn pod_validation_names_fields() {
    let mut p: Pod = serde_yaml_ng::from_str(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: default}\nspec:\n  containers:\n  - {name: c, image: busybox}\n",
    )
    .unwrap();
    assert_eq!(p.validate(), vec![]);
    p.spec.containers.push(p.spec.containers[0].clone());
    p.spec.containers[1].image = String::new();
    p.spec.containers[0].readiness_probe = Some(Default::default());
    p.spec.containers[0]
        .volume_mounts
        .push(crate::pod::VolumeMount {
            name: "data".into(),
            mount_path: "data".into(),
            read_only: false,
            sub_path: "../x".into(),
            ..Default::default()
        });
    let f = fields(p.validate());
    for want in [
        "spec.containers[1].name",
        "spec.containers[1].image",
        "spec.containers[0].readinessProbe",
        "spec.containers[0].volumeMounts[0].name",
        "spec.containers[0].volumeMounts[0].mountPath",
        "spec.containers[0].volumeMounts[0].subPath",
    ] {
        assert!(f.iter().any(|x| x == want), "missing {want} in {f:?}");
    }
}

#[test]
fn seccomp_profiles_are_validated_as_kubernetes_does() {
    let pod = |sc: &str| -> Pod {
        serde_yaml_ng::from_str(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: a, namespace: default}}\nspec:\n  securityContext: {{seccompProfile: {sc}}}\n  containers:\n  - {{name: c, image: busybox, securityContext: {{seccompProfile: {sc}}}}}\n"
        ))
        .unwrap()
    };
    for ok in [
        "{type: RuntimeDefault}",
        "{type: Unconfined}",
        "{type: Localhost, localhostProfile: profiles/audit.json}",
    ] {
        assert_eq!(pod(ok).validate(), vec![], "{ok}");
    }
    for (bad, field) in [
        ("{type: Bogus}", "type"),
        ("{type: Localhost}", "localhostProfile"),
        (
            "{type: Localhost, localhostProfile: ../x.json}",
            "localhostProfile",
        ),
        (
            "{type: RuntimeDefault, localhostProfile: x.json}",
            "localhostProfile",
        ),
    ] {
        let f = fields(pod(bad).validate());
        for at in ["spec", "spec.containers[0]"] {
            let want = format!("{at}.securityContext.seccompProfile.{field}");
            assert!(f.contains(&want), "{bad}: missing {want} in {f:?}");
        }
    }
}

#[test]
fn pod_spec_is_immutable_but_binding_is_allowed() {
    let p: Pod = serde_yaml_ng::from_str(
        "metadata: {name: a, namespace: default}\nspec:\n  containers:\n  - {name: c, image: busybox}\n",
    )
    .unwrap();
    let mut bound = p.clone();
    bound.spec.node_name = "n1".into();
    assert_eq!(bound.validate_update(&p), vec![]);
    let mut moved = bound.clone();
    moved.spec.node_name = "n2".into();
    assert_eq!(fields(moved.validate_update(&bound)), vec!["spec.nodeName"]);
    let mut changed = bound.clone();
    changed.spec.containers[0].image = "other".into();
    assert_eq!(fields(changed.validate_update(&bound)), vec!["spec"]);
}

#[test]
fn deployment_rules() {
    let AnyObject::Deployment(d) = yaml(DEPLOYMENT).unwrap() else {
        panic!()
    };
    let mut bad: Deployment = d.clone();
    bad.spec
        .template
        .metadata
        .labels
        .insert("app".into(), "other".into());
    bad.spec.template.spec.restart_policy = crate::pod::RestartPolicy::Never;
    bad.spec.replicas = Some(-1);
    let f = fields(bad.validate());
    for want in [
        "spec.template.metadata.labels",
        "spec.template.spec.restartPolicy",
        "spec.replicas",
    ] {
        assert!(f.iter().any(|x| x == want), "missing {want} in {f:?}");
    }
    let mut reselect = d.clone();
    reselect
        .spec
        .selector
        .match_labels
        .insert("x".into(), "y".into());
    assert_eq!(fields(reselect.validate_update(&d)), vec!["spec.selector"]);
}

#[test]
fn wrong_api_version_and_scope() {
    let err = fields(
        yaml("apiVersion: apps/v1beta1\nkind: Deployment\nmetadata: {name: a, namespace: d}\n")
            .unwrap()
            .validate(),
    );
    assert!(err.contains(&"apiVersion".to_string()), "{err:?}");
    let node = yaml("apiVersion: v1\nkind: Node\nmetadata: {name: n, namespace: x}\n").unwrap();
    assert_eq!(fields(node.validate()), vec!["metadata.namespace"]);
}

#[test]
fn json_round_trip_keeps_kubernetes_names() {
    let AnyObject::Deployment(d) = yaml(DEPLOYMENT).unwrap() else {
        panic!()
    };
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(
        v["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
        8080
    );
    assert_eq!(v["spec"]["template"]["spec"]["restartPolicy"], "Always");
    let back: Deployment = serde_json::from_value(v).unwrap();
    assert_eq!(back, d);
}

#[test]
fn kinds_are_named_as_kubectl_names_them() {
    for (name, kind) in [
        ("node", Kind::Node),
        ("Nodes", Kind::Node),
        ("no", Kind::Node),
        ("pod", Kind::Pod),
        ("pods", Kind::Pod),
        ("PO", Kind::Pod),
        ("Service", Kind::Service),
        ("services", Kind::Service),
        ("svc", Kind::Service),
        ("endpoints", Kind::Endpoints),
        ("endpoint", Kind::Endpoints),
        ("ep", Kind::Endpoints),
        ("deployment", Kind::Deployment),
        ("deployments", Kind::Deployment),
        ("deploy", Kind::Deployment),
        ("configmaps", Kind::ConfigMap),
        ("configmap", Kind::ConfigMap),
        ("cm", Kind::ConfigMap),
        ("ConfigMap", Kind::ConfigMap),
        ("secret", Kind::Secret),
        ("secrets", Kind::Secret),
    ] {
        assert_eq!(Kind::parse(name), Some(kind), "{name}");
    }
    for name in ["limitrange", "s", "", "podss", "all"] {
        assert_eq!(Kind::parse(name), None, "{name}");
    }
    assert_eq!(Kind::of::<Deployment>(), Kind::Deployment);
    for kind in Kind::ALL {
        assert_eq!(kind.info().kind, kind, "the table is in Kind's order");
    }
}

#[test]
fn paths_come_from_the_table() {
    assert_eq!(Kind::Node.collection_path("x"), "/api/v1/nodes");
    assert_eq!(Kind::Pod.collection_path(""), "/api/v1/pods");
    assert_eq!(
        Kind::Service.collection_path("default"),
        "/api/v1/namespaces/default/services"
    );
    assert_eq!(
        Kind::Deployment.collection_path("prod"),
        "/apis/apps/v1/namespaces/prod/deployments"
    );
    let apps = Kind::Deployment.info();
    assert_eq!((apps.group(), apps.version()), ("apps", "v1"));
    let core = Kind::Pod.info();
    assert_eq!((core.group(), core.version()), ("", "v1"));
}

#[test]
fn every_field_selector_of_a_kind_is_answered_by_its_objects() {
    for info in &KINDS {
        let obj = AnyObject::from_value(serde_json::json!({"kind": info.name})).unwrap();
        for field in info.field_selectors() {
            assert!(obj.field(field).is_some(), "{}: {field}", info.name);
        }
        assert_eq!(obj.field("spec.nope"), None);
    }
    assert_eq!(
        Kind::Pod.info().field_selectors().collect::<Vec<_>>(),
        [
            "metadata.name",
            "metadata.namespace",
            "spec.nodeName",
            "status.phase",
            "status.podIP"
        ]
    );
}

#[test]
fn unknown_kinds_are_refused_naming_the_served_ones() {
    assert_eq!(
        DecodeError::UnknownKind("LimitRange".into()).to_string(),
        r#"kind: "LimitRange" is not a kind keel serves (Node, Pod, Service, Endpoints, Deployment, ConfigMap, Secret, Event)"#
    );
}

#[test]
fn headless_and_external_name_services() {
    let AnyObject::Service(h) = yaml(
        "apiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: default}\nspec:\n  clusterIP: None\n  selector: {app: db}\n",
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(h.validate(), vec![], "headless, no ports: DNS only");
    assert!(h.is_headless() && !h.wants_cluster_ip());

    let AnyObject::Service(e) = yaml(
        "apiVersion: v1\nkind: Service\nmetadata: {name: ext, namespace: default}\nspec:\n  type: ExternalName\n  externalName: db.example.com.\n",
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(e.validate(), vec![]);
    assert!(!e.wants_cluster_ip());
    let mut bad = e.clone();
    bad.spec.external_name = "not_a name".into();
    bad.spec.cluster_ip = "10.96.0.9".into();
    assert_eq!(
        fields(bad.validate()),
        vec!["spec.externalName", "spec.clusterIP"]
    );
    bad.spec.external_name.clear();
    assert!(fields(bad.validate()).contains(&"spec.externalName".to_string()));
    let mut bad = h.clone();
    bad.spec.external_name = "x.example".into();
    assert_eq!(fields(bad.validate()), vec!["spec.externalName"]);
    let mut plain = h;
    plain.spec.cluster_ip.clear();
    assert_eq!(
        fields(plain.validate()),
        vec!["spec.ports"],
        "a ClusterIP Service needs a port"
    );
}

#[test]
fn pod_dns_fields_decode_and_validate_like_kubernetes() {
    let AnyObject::Pod(p) = yaml(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: dns-example, namespace: default}
spec:
  hostname: db-0
  subdomain: db
  dnsPolicy: "None"
  dnsConfig:
    nameservers: [192.0.2.1]
    searches: [ns1.svc.cluster-domain.example, my.dns.search.suffix]
    options:
    - {name: ndots, value: "2"}
    - name: edns0
  hostAliases:
  - ip: "127.0.0.1"
    hostnames: ["foo.local", "bar.local"]
  containers:
  - {name: test, image: nginx}
"#,
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(p.validate(), vec![]);
    assert_eq!(p.spec.dns_policy, Some(crate::pod::DnsPolicy::None));
    let back: Pod = serde_json::from_value(serde_json::to_value(&p).unwrap()).unwrap();
    assert_eq!(back, p, "round trip");

    let mut bad = p.clone();
    bad.spec.dns_config = None;
    assert_eq!(fields(bad.validate()), vec!["spec.dnsConfig"]);
    let mut bad = p.clone();
    let cfg = bad.spec.dns_config.as_mut().unwrap();
    cfg.nameservers = vec![
        "1.1.1.1".into(),
        "2.2.2.2".into(),
        "3.3.3.3".into(),
        "x".into(),
    ];
    cfg.searches.push("Bad_Domain".into());
    cfg.options.push(Default::default());
    bad.spec.subdomain = "a.b".into();
    bad.spec.host_aliases[0].ip = "nope".into();
    bad.spec.host_aliases[0].hostnames.push("in valid".into());
    assert_eq!(
        fields(bad.validate()),
        vec![
            "spec.subdomain",
            "spec.dnsConfig.nameservers",
            "spec.dnsConfig.nameservers[3]",
            "spec.dnsConfig.searches[2]",
            "spec.dnsConfig.options[2].name",
            "spec.hostAliases[0].ip",
            "spec.hostAliases[0].hostnames[2]",
        ]
    );
    let mut bad = p;
    bad.spec.dns_config.as_mut().unwrap().nameservers.clear();
    assert_eq!(fields(bad.validate()), vec!["spec.dnsConfig.nameservers"]);
    assert!(yaml("apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: default}\nspec:\n  dnsPolicy: Sometimes\n  containers: [{name: c, image: i}]\n").is_err());
}

#[test]
fn env_sources_and_config_volumes_are_validated() {
    let pod = |containers: serde_json::Value, volumes: serde_json::Value| -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "d"},
            "spec": {"containers": containers, "volumes": volumes}
        }))
        .unwrap()
    };
    let c = |extra: serde_json::Value| {
        let mut c = serde_json::json!({"name": "c", "image": "busybox"});
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::json!([c])
    };
    let none = serde_json::json!([]);
    let cases: Vec<(Pod, Vec<&str>)> = vec![
        (
            pod(
                c(serde_json::json!({"env": [
            {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k", "optional": true}}},
            {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            {"name": "C", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "D", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "E", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}}],
            "envFrom": [{"prefix": "P_", "configMapRef": {"name": "cm"}}, {"secretRef": {"name": "s"}}]})),
                none.clone(),
            ),
            vec![],
        ),
        (
            pod(
                c(
                    serde_json::json!({"env": [{"name": "A", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}),
                ),
                none.clone(),
            ),
            vec!["spec.containers[0].env[0].valueFrom"],
        ),
        (
            pod(
                c(serde_json::json!({"env": [{"name": "A", "valueFrom": {}}]})),
                none.clone(),
            ),
            vec!["spec.containers[0].env[0].valueFrom"],
        ),
        (
            pod(
                c(
                    serde_json::json!({"env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "spec.hostname"}}}]}),
                ),
                none.clone(),
            ),
            vec!["spec.containers[0].env[0].valueFrom.fieldRef.fieldPath"],
        ),
        (
            pod(
                c(
                    serde_json::json!({"env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "a/b"}}}]}),
                ),
                none.clone(),
            ),
            vec!["spec.containers[0].env[0].valueFrom.configMapKeyRef.key"],
        ),
        (
            pod(
                c(
                    serde_json::json!({"envFrom": [{"configMapRef": {"name": "cm"}, "secretRef": {"name": "s"}}]}),
                ),
                none.clone(),
            ),
            vec!["spec.containers[0].envFrom[0]"],
        ),
        (
            pod(
                c(
                    serde_json::json!({"envFrom": [{"prefix": "1X", "configMapRef": {"name": "cm"}}]}),
                ),
                none.clone(),
            ),
            vec!["spec.containers[0].envFrom[0].prefix"],
        ),
        (
            pod(
                c(serde_json::json!({})),
                serde_json::json!([
            {"name": "a", "configMap": {"name": "cm", "items": [{"key": "k", "path": "dir/file", "mode": 0o400}], "defaultMode": 0o644}},
            {"name": "b", "secret": {"secretName": "s", "defaultMode": 0o400, "optional": true}},
            {"name": "c", "projected": {"sources": [{"configMap": {"name": "cm"}}, {"secret": {"name": "s"}}]}}]),
            ),
            vec![],
        ),
        (
            pod(
                c(serde_json::json!({})),
                serde_json::json!([
            {"name": "a", "configMap": {"name": "cm", "items": [{"key": "k", "path": "../x"}, {"key": "k", "path": "/abs"}, {"key": "k", "path": "..d"}]}}]),
            ),
            vec![
                "spec.volumes[0].configMap.items[0].path",
                "spec.volumes[0].configMap.items[1].path",
                "spec.volumes[0].configMap.items[2].path",
            ],
        ),
        (
            pod(
                c(serde_json::json!({})),
                serde_json::json!([{"name": "a", "secret": {"secretName": "s", "defaultMode": 4096}}]),
            ),
            vec!["spec.volumes[0].secret.defaultMode"],
        ),
        (
            pod(
                c(serde_json::json!({})),
                serde_json::json!([{"name": "a", "secret": {"secretName": "s"}, "emptyDir": {}}]),
            ),
            vec!["spec.volumes[0]"],
        ),
        (
            pod(
                c(serde_json::json!({})),
                serde_json::json!([{"name": "a", "projected": {"sources": [{}]}}]),
            ),
            vec!["spec.volumes[0].projected.sources[0]"],
        ),
        // downwardAPI: the volume field paths, resources with their
        // container, relative paths, modes.
        (
            pod(
                c(serde_json::json!({})),
                serde_json::json!([
            {"name": "a", "downwardAPI": {"defaultMode": 0o600, "items": [
                {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                {"path": "t", "fieldRef": {"fieldPath": "metadata.labels['tier']"}},
                {"path": "uid", "fieldRef": {"fieldPath": "metadata.uid"}, "mode": 0o400},
                {"path": "d/cpu", "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu", "divisor": "1m"}}]}},
            {"name": "b", "projected": {"sources": [{"downwardAPI": {"items": [
                {"path": "n", "fieldRef": {"fieldPath": "metadata.name"}}]}}]}}]),
            ),
            vec![],
        ),
        (
            pod(
                c(serde_json::json!({})),
                serde_json::json!([
            {"name": "a", "downwardAPI": {"defaultMode": 4096, "items": [
                {"path": "ip", "fieldRef": {"fieldPath": "status.podIP"}},
                {"path": "../x", "fieldRef": {"fieldPath": "metadata.name"}},
                {"path": "m", "resourceFieldRef": {"resource": "limits.memory"}},
                {"path": "g", "resourceFieldRef": {"containerName": "c", "resource": "limits.gpu"}},
                {"path": "both", "fieldRef": {"fieldPath": "metadata.name"}, "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu"}},
                {"path": "n", "fieldRef": {"fieldPath": "metadata.name"}, "mode": 512}]}},
            {"name": "b", "projected": {"sources": [{"downwardAPI": {"items": [
                {"path": "/abs", "fieldRef": {"fieldPath": "spec.nodeName"}}]}}]}}]),
            ),
            vec![
                "spec.volumes[0].downwardAPI.items[0].fieldRef.fieldPath",
                "spec.volumes[0].downwardAPI.items[1].path",
                "spec.volumes[0].downwardAPI.items[2].resourceFieldRef.containerName",
                "spec.volumes[0].downwardAPI.items[3].resourceFieldRef.resource",
                "spec.volumes[0].downwardAPI.items[4]",
                "spec.volumes[0].downwardAPI.items[5].mode",
                "spec.volumes[0].downwardAPI.defaultMode",
                "spec.volumes[1].projected.sources[0].downwardAPI.items[0].path",
                "spec.volumes[1].projected.sources[0].downwardAPI.items[0].fieldRef.fieldPath",
            ],
        ),
    ];
    for (i, (p, want)) in cases.into_iter().enumerate() {
        assert_eq!(fields(p.validate()), want, "case {i}");
    }
}

#[test]
fn host_network_and_host_ports_decode_and_validate_like_kubernetes() {
    let pod = |spec: &str| -> Pod {
        serde_yaml_ng::from_str(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: a, namespace: default}}\nspec:\n{spec}"
        ))
        .unwrap()
    };
    let p = pod(
        "  hostNetwork: true\n  containers:\n  - name: c\n    image: busybox\n    ports:\n    - {containerPort: 8080, hostPort: 8080}\n    - {containerPort: 53, protocol: UDP}\n",
    );
    assert!(p.spec.host_network);
    assert_eq!(p.validate(), vec![]);
    // A hostNetwork pod holds every container port on its node.
    let hp = |protocol, ip: &str, port| crate::pod::HostPort {
        protocol,
        ip: ip.into(),
        port,
    };
    assert_eq!(
        p.spec.host_ports(),
        vec![hp(Protocol::Tcp, "", 8080), hp(Protocol::Udp, "", 53)]
    );
    // Round trip keeps the Kubernetes names.
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(v["spec"]["hostNetwork"], true);
    assert_eq!(v["spec"]["containers"][0]["ports"][0]["hostPort"], 8080);

    let p = pod(
        "  containers:\n  - name: c\n    image: busybox\n    ports:\n    - {containerPort: 80, hostPort: 8080, hostIP: 0.0.0.0}\n    - {containerPort: 81}\n    - {containerPort: 82, hostPort: 8082, hostIP: 10.0.0.5, protocol: UDP}\n",
    );
    assert_eq!(p.validate(), vec![]);
    assert!(!p.spec.host_network);
    assert!(
        !serde_json::to_value(&p).unwrap()["spec"]
            .as_object()
            .unwrap()
            .contains_key("hostNetwork")
    );
    assert_eq!(
        p.spec.host_ports(),
        vec![
            hp(Protocol::Tcp, "", 8080),
            hp(Protocol::Udp, "10.0.0.5", 8082)
        ]
    );

    let bad = pod(
        "  hostNetwork: true\n  containers:\n  - name: c\n    image: busybox\n    ports:\n    - {containerPort: 80, hostPort: 8080}\n    - {containerPort: 81, hostPort: 70000}\n    - {containerPort: 82, hostPort: 0}\n    - {containerPort: 83, hostPort: 83, hostIP: nope}\n",
    );
    let errs = bad.validate();
    assert_eq!(
        fields(errs.clone()),
        vec![
            "spec.containers[0].ports[0].hostPort",
            "spec.containers[0].ports[1].hostPort",
            "spec.containers[0].ports[1].hostPort",
            "spec.containers[0].ports[2].hostPort",
            "spec.containers[0].ports[2].hostPort",
            "spec.containers[0].ports[3].hostIP",
        ]
    );
    let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    assert!(
        text[0].contains("must match containerPort 80 when hostNetwork is true"),
        "{text:?}"
    );
    assert!(text[1].contains("out of range 1-65535"), "{text:?}");

    // Conflicts: same port and protocol, on the same address or on all.
    let all = hp(Protocol::Tcp, "", 80);
    assert!(all.conflicts(&hp(Protocol::Tcp, "10.0.0.5", 80)));
    assert!(hp(Protocol::Tcp, "10.0.0.5", 80).conflicts(&hp(Protocol::Tcp, "10.0.0.5", 80)));
    assert!(!hp(Protocol::Tcp, "10.0.0.5", 80).conflicts(&hp(Protocol::Tcp, "10.0.0.6", 80)));
    assert!(!all.conflicts(&hp(Protocol::Udp, "", 80)));
    assert!(!all.conflicts(&hp(Protocol::Tcp, "", 81)));
}

#[test]
fn host_pid_and_host_ipc_round_trip_and_exclude_share_process_namespace() {
    let pod = |spec: &str| -> Pod {
        serde_yaml_ng::from_str(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: a, namespace: default}}\nspec:\n{spec}"
        ))
        .unwrap()
    };
    let p = pod("  hostPID: true\n  hostIPC: true\n  containers:\n  - {name: c, image: busybox}\n");
    assert!(p.spec.host_pid && p.spec.host_ipc);
    assert_eq!(p.validate(), vec![]);
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(
        (&v["spec"]["hostPID"], &v["spec"]["hostIPC"]),
        (&true.into(), &true.into())
    );
    // Nothing to warn about: keel acts on both.
    assert!(crate::resource::preserved::preserved_paths(&p).is_empty());
    // Unset: left out.
    let p = pod("  containers:\n  - {name: c, image: busybox}\n");
    let v = serde_json::to_value(&p).unwrap();
    assert!(v["spec"].get("hostPID").is_none() && v["spec"].get("hostIPC").is_none());
    // One PID namespace or the other, as Kubernetes validates it.
    let p = pod(
        "  hostPID: true\n  shareProcessNamespace: true\n  containers:\n  - {name: c, image: busybox}\n",
    );
    let errs = p.validate();
    assert_eq!(fields(errs.clone()), vec!["spec.shareProcessNamespace"]);
    assert!(
        errs[0]
            .to_string()
            .contains("ShareProcessNamespace and HostPID cannot both be enabled")
    );
    assert_eq!(
        pod("  hostIPC: true\n  shareProcessNamespace: true\n  containers:\n  - {name: c, image: busybox}\n")
            .validate(),
        vec![]
    );
}

#[test]
fn sub_path_expr_and_mount_propagation_validate_like_kubernetes() {
    let pod = |mounts: serde_json::Value, privileged: bool| -> Pod {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "a", "namespace": "default"},
            "spec": {
                "containers": [{"name": "c", "image": "busybox", "volumeMounts": mounts,
                                "securityContext": {"privileged": privileged}}],
                "volumes": [{"name": "v", "emptyDir": {}}]
            }
        }))
        .unwrap()
    };
    let good = pod(
        serde_json::json!([
            {"name": "v", "mountPath": "/a", "subPathExpr": "$(POD_NAME)/logs"},
            {"name": "v", "mountPath": "/b", "mountPropagation": "HostToContainer"},
            {"name": "v", "mountPath": "/c", "mountPropagation": "None"},
            {"name": "v", "mountPath": "/d", "mountPropagation": "Bidirectional"}
        ]),
        true,
    );
    assert_eq!(good.validate(), vec![]);
    // Kept as sent; nothing to warn about (keel acts on both).
    let v = serde_json::to_value(&good).unwrap();
    let m = &v["spec"]["containers"][0]["volumeMounts"];
    assert_eq!(m[0]["subPathExpr"], "$(POD_NAME)/logs");
    assert_eq!(m[1]["mountPropagation"], "HostToContainer");
    assert!(crate::resource::preserved::preserved_paths(&good).is_empty());

    let bad = pod(
        serde_json::json!([
            {"name": "v", "mountPath": "/a", "subPath": "x", "subPathExpr": "$(A)"},
            {"name": "v", "mountPath": "/b", "subPathExpr": "/abs/$(A)"},
            {"name": "v", "mountPath": "/c", "subPathExpr": "$(A)/../x"},
            {"name": "v", "mountPath": "/d", "mountPropagation": "Bidirectional"}
        ]),
        false,
    );
    let errs = bad.validate();
    assert_eq!(
        fields(errs.clone()),
        vec![
            "spec.containers[0].volumeMounts[0].subPathExpr",
            "spec.containers[0].volumeMounts[1].subPathExpr",
            "spec.containers[0].volumeMounts[2].subPathExpr",
            "spec.containers[0].volumeMounts[3].mountPropagation",
        ]
    );
    let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    assert!(text[0].contains("mutually exclusive"), "{text:?}");
    assert!(
        text[3].contains("only to privileged containers"),
        "{text:?}"
    );
    // An unknown value is refused when decoding, naming the choices.
    let e = serde_json::from_value::<crate::pod::VolumeMount>(serde_json::json!(
        {"name": "v", "mountPath": "/a", "mountPropagation": "Sideways"}
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("HostToContainer"), "{e}");
}

#[test]
fn grpc_probes_decode_and_validate_like_kubernetes() {
    let pod = |probe: serde_json::Value| -> Pod {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "a", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "busybox", "livenessProbe": probe}]}
        }))
        .unwrap()
    };
    let p = pod(serde_json::json!({"grpc": {"port": 9090, "service": "db"}, "periodSeconds": 2}));
    assert_eq!(p.validate(), vec![]);
    let g = p.spec.containers[0]
        .liveness_probe
        .as_ref()
        .unwrap()
        .grpc
        .clone()
        .unwrap();
    assert_eq!((g.port, g.service.as_deref()), (9090, Some("db")));
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(
        v["spec"]["containers"][0]["livenessProbe"]["grpc"],
        serde_json::json!({"port": 9090, "service": "db"})
    );
    assert!(crate::resource::preserved::preserved_paths(&p).is_empty());
    assert_eq!(
        pod(serde_json::json!({"grpc": {"port": 9090}})).validate(),
        vec![]
    );
    // Out of range; two handlers.
    assert_eq!(
        fields(pod(serde_json::json!({"grpc": {"port": 0}})).validate()),
        vec!["spec.containers[0].livenessProbe.grpc.port"]
    );
    assert_eq!(
        fields(pod(serde_json::json!({"grpc": {"port": 1}, "tcpSocket": {"port": 1}})).validate()),
        vec!["spec.containers[0].livenessProbe"]
    );
    // The port is a number in Kubernetes' schema, and required.
    for bad in [
        serde_json::json!({"grpc": {"port": "grpc"}}),
        serde_json::json!({"grpc": {"service": "x"}}),
    ] {
        assert!(
            serde_json::from_value::<crate::pod::Probe>(bad.clone()).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn sidecars_are_init_containers_with_restart_policy_always() {
    let pod = |spec: serde_json::Value| -> Result<Pod, serde_json::Error> {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "a", "namespace": "default"},
            "spec": spec
        }))
    };
    let probe = serde_json::json!({"tcpSocket": {"port": 80}});
    let p = pod(serde_json::json!({
        "initContainers": [
            {"name": "proxy", "image": "busybox", "restartPolicy": "Always",
             "startupProbe": probe, "readinessProbe": probe},
            {"name": "setup", "image": "busybox"}],
        "containers": [{"name": "c", "image": "busybox"}]
    }))
    .unwrap();
    assert_eq!(p.validate(), vec![]);
    assert!(p.spec.init_containers[0].is_sidecar() && !p.spec.init_containers[1].is_sidecar());
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(v["spec"]["initContainers"][0]["restartPolicy"], "Always");
    assert!(crate::resource::preserved::preserved_paths(&p).is_empty());
    // Only Always; only on init containers; other init containers still
    // have no probes.
    assert!(
        pod(serde_json::json!({"initContainers": [{"name": "i", "image": "b", "restartPolicy": "Never"}],
                               "containers": [{"name": "c", "image": "b"}]}))
        .is_err()
    );
    let bad = pod(serde_json::json!({
        "initContainers": [{"name": "i", "image": "b", "readinessProbe": probe}],
        "containers": [{"name": "c", "image": "b", "restartPolicy": "Always"}]
    }))
    .unwrap();
    assert_eq!(
        fields(bad.validate()),
        vec![
            "spec.initContainers[0].readinessProbe",
            "spec.containers[0].restartPolicy"
        ]
    );
}
