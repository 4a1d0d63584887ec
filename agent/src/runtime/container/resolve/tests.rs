use super::*;
use crate::runtime::container::env::NoSources;
use crate::runtime::images::RunConfig;
use keel_api::{
    Quantity,
    pod::{Capabilities, EnvVar, SecurityContext},
};

fn image(entry: &[&str], cmd: &[&str]) -> ImageConfig {
    ImageConfig {
        config: Some(RunConfig {
            entrypoint: (!entry.is_empty()).then(|| entry.iter().map(|s| s.to_string()).collect()),
            cmd: (!cmd.is_empty()).then(|| cmd.iter().map(|s| s.to_string()).collect()),
            env: Some(vec!["PATH=/bin".into(), "MODE=image".into()]),
            working_dir: Some("/srv".into()),
            user: Some("33:44".into()),
        }),
        ..Default::default()
    }
}

fn pod(c: Container) -> Pod {
    let mut p = Pod::default();
    p.metadata.name = "web".into();
    p.metadata.namespace = "default".into();
    p.metadata.uid = "u1".into();
    p.spec.containers = vec![c];
    p
}

fn run(p: &Pod, img: &ImageConfig) -> Result<ContainerRequest, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    resolve(
        p,
        Kind::App,
        0,
        img,
        &NodeRuntimeConfig::default(),
        dir.path(),
        None,
        0,
        &NoSources,
    )
}

fn c(command: &[&str], args: &[&str]) -> Container {
    Container {
        name: "app".into(),
        image: "img".into(),
        command: command.iter().map(|s| s.to_string()).collect(),
        args: args.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

#[test]
fn command_and_args_follow_kubernetes_rules() {
    let img = image(&["/entry"], &["cmd-arg"]);
    let cases: &[(&[&str], &[&str], &[&str])] = &[
        (&[], &[], &["/entry", "cmd-arg"]),
        (&["/bin/x"], &[], &["/bin/x"]),
        (&["/bin/x"], &["a"], &["/bin/x", "a"]),
        (&[], &["a", "b"], &["/entry", "a", "b"]),
    ];
    for (command, args, want) in cases {
        let r = run(&pod(c(command, args)), &img).unwrap();
        assert_eq!(r.args, *want, "command={command:?} args={args:?}");
    }
    let e = run(&pod(c(&[], &[])), &image(&[], &[])).unwrap_err();
    assert_eq!(e.field, "spec.containers[0].command");
}

#[test]
fn env_workdir_and_user_come_from_the_image_unless_set() {
    let img = image(&["/entry"], &[]);
    let r = run(&pod(c(&[], &[])), &img).unwrap();
    assert_eq!(r.env, vec!["PATH=/bin", "MODE=image", "HOSTNAME=web"]);
    assert_eq!(r.cwd, "/srv");
    assert_eq!((r.uid, r.gid), (33, 44));

    let mut ct = c(&[], &[]);
    ct.env = vec![EnvVar {
        name: "MODE".into(),
        value: "pod".into(),
        value_from: None,
    }];
    ct.working_dir = "/work".into();
    ct.security_context = Some(SecurityContext {
        run_as_user: Some(1000),
        run_as_group: Some(2000),
        ..Default::default()
    });
    let r = run(&pod(ct), &img).unwrap();
    assert!(r.env.contains(&"MODE=pod".to_string()));
    assert!(!r.env.contains(&"MODE=image".to_string()));
    assert_eq!(r.cwd, "/work");
    assert_eq!((r.uid, r.gid), (1000, 2000));

    let mut named = img.clone();
    named.config.as_mut().unwrap().user = Some("www".into());
    assert_eq!(
        run(&pod(c(&[], &[])), &named).unwrap().user_name.as_deref(),
        Some("www")
    );
}

#[test]
fn run_as_non_root_refuses_root() {
    let mut img = image(&["/entry"], &[]);
    img.config.as_mut().unwrap().user = None;
    let mut ct = c(&[], &[]);
    ct.security_context = Some(SecurityContext {
        run_as_non_root: Some(true),
        ..Default::default()
    });
    let e = run(&pod(ct), &img).unwrap_err();
    assert_eq!(e.field, "spec.containers[0].securityContext.runAsNonRoot");
}

#[test]
fn capabilities_add_drop_and_privileged() {
    let img = image(&["/entry"], &[]);
    let mut ct = c(&[], &[]);
    ct.security_context = Some(SecurityContext {
        capabilities: Some(Capabilities {
            add: vec!["NET_ADMIN".into()],
            drop: vec!["CAP_NET_RAW".into(), "kill".into()],
        }),
        ..Default::default()
    });
    // NET_ADMIN is beyond "baseline": refused, then accepted by a node
    // that allows privileged pods.
    let e = run(&pod(ct.clone()), &img).unwrap_err();
    assert_eq!(
        e.field,
        "spec.containers[0].securityContext.capabilities.add[0]"
    );
    let dir = tempfile::tempdir().unwrap();
    let node = NodeRuntimeConfig {
        allow_privileged: true,
        ..Default::default()
    };
    let r = resolve(
        &pod(ct.clone()),
        Kind::App,
        0,
        &img,
        &node,
        dir.path(),
        None,
        0,
        &NoSources,
    )
    .unwrap();
    assert!(r.capabilities.contains(&"CAP_NET_ADMIN".to_string()));
    assert!(!r.capabilities.contains(&"CAP_NET_RAW".to_string()));
    assert!(!r.capabilities.contains(&"CAP_KILL".to_string()));
    assert!(r.no_new_privileges);

    ct.security_context.as_mut().unwrap().capabilities = Some(Capabilities {
        add: vec!["BOGUS".into()],
        drop: vec![],
    });
    assert!(
        run(&pod(ct.clone()), &img)
            .unwrap_err()
            .field
            .ends_with("add[0]")
    );

    ct.security_context = Some(SecurityContext {
        privileged: Some(true),
        ..Default::default()
    });
    let e = run(&pod(ct.clone()), &img).unwrap_err();
    assert!(e.message.contains("not allowed"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let node = NodeRuntimeConfig {
        allow_privileged: true,
        ..Default::default()
    };
    let r = resolve(
        &pod(ct),
        Kind::App,
        0,
        &img,
        &node,
        dir.path(),
        None,
        0,
        &NoSources,
    )
    .unwrap();
    assert!(r.privileged && r.capabilities.len() == ALL_CAPS.len());
}

#[test]
fn resources_and_oom_score() {
    let img = image(&["/entry"], &[]);
    let mut ct = c(&[], &[]);
    ct.resources.requests = [
        ("cpu".to_string(), Quantity::parse("250m").unwrap()),
        ("memory".to_string(), Quantity::parse("64Mi").unwrap()),
    ]
    .into();
    ct.resources.limits = [
        ("cpu".to_string(), Quantity::parse("500m").unwrap()),
        ("memory".to_string(), Quantity::parse("128Mi").unwrap()),
    ]
    .into();
    let p = pod(ct);
    assert_eq!(qos(&p), Qos::Burstable);
    let r = run(&p, &img).unwrap().resources;
    assert_eq!(r.cpu_shares, Some(256));
    assert_eq!(r.cpu_quota, Some(50_000));
    assert_eq!(r.memory_limit, Some(128 << 20));
    assert!(r.oom_score_adj >= 2 && r.oom_score_adj <= 999);

    assert_eq!(
        oom_score_adj(Qos::Guaranteed, 0, 1),
        0,
        "clamped: no CAP_SYS_RESOURCE"
    );
    assert_eq!(oom_score_adj(Qos::BestEffort, 0, 1), 1000);
    assert_eq!(oom_score_adj(Qos::Burstable, 1 << 30, 2 << 30), 500);
    assert_eq!(qos(&pod(c(&[], &[]))), Qos::BestEffort);
    let best = run(&pod(c(&[], &[])), &img).unwrap().resources;
    assert_eq!((best.cpu_shares, best.memory_limit), (Some(2), None));
}

#[test]
fn only_baseline_capabilities_without_allow_privileged() {
    let img = image(&["/entry"], &[]);
    for (cap, ok) in [
        ("ALL", false),
        ("SYS_ADMIN", false),
        ("CAP_NET_ADMIN", false),
        ("sys_ptrace", false),
        ("SYS_MODULE", false),
        ("BPF", false),
        ("PERFMON", false),
        ("NET_RAW", false),
        ("NET_BIND_SERVICE", true),
        ("CAP_CHOWN", true),
        ("sys_chroot", true),
    ] {
        let mut ct = c(&[], &[]);
        ct.security_context = Some(SecurityContext {
            capabilities: Some(Capabilities {
                add: vec!["KILL".into(), cap.into()],
                drop: vec![],
            }),
            ..Default::default()
        });
        match run(&pod(ct), &img) {
            Ok(_) => assert!(ok, "{cap} accepted without --allow-privileged"),
            Err(e) => {
                assert!(!ok, "{cap} refused: {e}");
                assert_eq!(
                    e.field,
                    "spec.containers[0].securityContext.capabilities.add[1]"
                );
                assert!(e.message.contains("--allow-privileged"), "{e}");
            }
        }
    }
}

#[test]
fn no_host_path_by_default() {
    assert!(NodeRuntimeConfig::default().host_path_roots.is_empty());
    let img = image(&["/entry"], &[]);
    let mut p = pod(c(&[], &[]));
    p.spec.volumes = vec![keel_api::pod::Volume {
        name: "h".into(),
        empty_dir: None,
        host_path: Some(keel_api::pod::HostPathVolumeSource {
            path: "/tmp".into(),
            type_: String::new(),
        }),
        ..Default::default()
    }];
    let e = run(&p, &img).unwrap_err();
    assert_eq!(e.field, "spec.volumes[0].hostPath.path");
    assert!(
        e.message
            .contains("outside the host paths this node allows"),
        "{e}"
    );
}

#[test]
fn seccomp_profiles() {
    use keel_api::pod::{PodSecurityContext, SeccompProfile};
    let img = image(&["/entry"], &[]);
    let profile = |t: &str, l: Option<&str>| SeccompProfile {
        type_: t.into(),
        localhost_profile: l.map(Into::into),
    };
    let with = |p: Option<SeccompProfile>| {
        let mut ct = c(&[], &[]);
        ct.security_context = Some(SecurityContext {
            seccomp_profile: p,
            ..Default::default()
        });
        pod(ct)
    };
    // Unset and RuntimeDefault: keel's default.
    assert_eq!(
        run(&with(None), &img).unwrap().seccomp,
        crate::runtime::container::seccomp::Profile::RuntimeDefault
    );
    assert_eq!(
        run(&with(Some(profile("RuntimeDefault", None))), &img)
            .unwrap()
            .seccomp,
        crate::runtime::container::seccomp::Profile::RuntimeDefault
    );
    // Unconfined: only with --allow-privileged.
    let e = run(&with(Some(profile("Unconfined", None))), &img).unwrap_err();
    assert_eq!(
        e.field,
        "spec.containers[0].securityContext.seccompProfile.type"
    );
    assert!(e.message.contains("--allow-privileged"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let mut node = NodeRuntimeConfig {
        allow_privileged: true,
        seccomp_profile_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    let p = with(Some(profile("Unconfined", None)));
    let r = resolve(
        &p,
        Kind::App,
        0,
        &img,
        &node,
        dir.path(),
        None,
        0,
        &NoSources,
    )
    .unwrap();
    assert_eq!(
        r.seccomp,
        crate::runtime::container::seccomp::Profile::Unconfined
    );
    node.allow_privileged = false;
    // Localhost: read from the node's directory, named field on errors.
    std::fs::write(
        dir.path().join("p.json"),
        r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#,
    )
    .unwrap();
    let p = with(Some(profile("Localhost", Some("p.json"))));
    let r = resolve(
        &p,
        Kind::App,
        0,
        &img,
        &node,
        dir.path(),
        None,
        0,
        &NoSources,
    )
    .unwrap();
    assert_eq!(
        r.seccomp,
        crate::runtime::container::seccomp::Profile::Localhost(json_of(
            r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#
        ))
    );
    for (p, field) in [
        (profile("Localhost", None), "localhostProfile"),
        (profile("Localhost", Some("../p.json")), "localhostProfile"),
        (profile("Localhost", Some("nope.json")), "localhostProfile"),
        (profile("Bogus", None), "type"),
    ] {
        let e = resolve(
            &with(Some(p)),
            Kind::App,
            0,
            &img,
            &node,
            dir.path(),
            None,
            0,
            &NoSources,
        )
        .unwrap_err();
        assert_eq!(
            e.field,
            format!("spec.containers[0].securityContext.seccompProfile.{field}")
        );
    }
    // The pod's profile applies when the container has none.
    let mut p = pod(c(&[], &[]));
    p.spec.security_context = Some(PodSecurityContext {
        seccomp_profile: Some(profile("Unconfined", None)),
        ..Default::default()
    });
    let e = run(&p, &img).unwrap_err();
    assert_eq!(e.field, "spec.securityContext.seccompProfile.type");
}

fn json_of(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap()
}

#[test]
fn host_network_needs_allow_privileged_and_joins_the_agents_namespaces() {
    let img = image(&["/bin/sh"], &[]);
    let mut p = pod(c(&[], &[]));
    p.spec.host_network = true;
    let e = run(&p, &img).unwrap_err();
    assert_eq!(e.field, "spec.hostNetwork");
    assert!(e.message.contains("--allow-privileged"), "{}", e.message);

    let dir = tempfile::tempdir().unwrap();
    let node = NodeRuntimeConfig {
        allow_privileged: true,
        ..Default::default()
    };
    let sandbox = std::path::Path::new("/run/netns/never-used");
    let r = resolve(
        &p,
        Kind::App,
        0,
        &img,
        &node,
        dir.path(),
        Some(sandbox),
        0,
        &NoSources,
    )
    .unwrap();
    let me = std::process::id();
    assert_eq!(r.netns, Some(format!("/proc/{me}/ns/net").into()));
    assert_eq!(r.uts_ns, Some(format!("/proc/{me}/ns/uts").into()));
    // The node's hostname, in HOSTNAME too.
    let node_name = crate::dns::podfiles::node_hostname();
    assert!(!node_name.is_empty());
    assert_eq!(r.hostname, node_name);
    assert!(
        r.env.contains(&format!("HOSTNAME={node_name}")),
        "{:?}",
        r.env
    );
    // The node's /etc/hosts.
    assert_eq!(
        r.hosts,
        crate::dns::podfiles::host_network_hosts(
            &std::fs::read_to_string("/etc/hosts").unwrap_or_default(),
            &p
        )
    );

    // A pod of its own network keeps its sandbox and a UTS namespace of its own.
    p.spec.host_network = false;
    let r = resolve(
        &p,
        Kind::App,
        0,
        &img,
        &node,
        dir.path(),
        Some(sandbox),
        0,
        &NoSources,
    )
    .unwrap();
    assert_eq!(r.netns.as_deref(), Some(sandbox));
    assert_eq!(r.uts_ns, None);
    assert_eq!(r.hostname, "web");
}

#[test]
fn host_pid_and_host_ipc_need_allow_privileged_and_join_the_agents_namespaces() {
    let img = image(&["/bin/sh"], &[]);
    let dir = tempfile::tempdir().unwrap();
    let node = NodeRuntimeConfig {
        allow_privileged: true,
        ..Default::default()
    };
    let me = std::process::id();
    let sandbox = std::path::Path::new("/run/netns/never-used");
    let with = |node: &NodeRuntimeConfig, pid: bool, ipc: bool| {
        let mut p = pod(c(&[], &[]));
        p.spec.host_pid = pid;
        p.spec.host_ipc = ipc;
        resolve(
            &p,
            Kind::App,
            0,
            &img,
            node,
            dir.path(),
            Some(sandbox),
            0,
            &NoSources,
        )
    };
    for (pid, ipc, field) in [
        (true, false, "spec.hostPID"),
        (false, true, "spec.hostIPC"),
        (true, true, "spec.hostPID"),
    ] {
        let e = with(&NodeRuntimeConfig::default(), pid, ipc).unwrap_err();
        assert_eq!(e.field, field);
        assert!(e.message.contains("--allow-privileged"), "{}", e.message);
    }
    let r = with(&node, true, false).unwrap();
    assert_eq!(r.pid_ns, Some(format!("/proc/{me}/ns/pid").into()));
    assert_eq!(r.ipc_ns, None);
    // The pod's own network and hostname all the same.
    assert_eq!(r.netns.as_deref(), Some(sandbox));
    assert_eq!((r.uts_ns, r.hostname.as_str()), (None, "web"));
    let r = with(&node, false, true).unwrap();
    assert_eq!(
        (r.pid_ns, r.ipc_ns),
        (None, Some(format!("/proc/{me}/ns/ipc").into()))
    );
    let r = with(&node, false, false).unwrap();
    assert_eq!((r.pid_ns, r.ipc_ns), (None, None));
}

#[test]
fn a_pod_claiming_devices_is_refused_naming_its_resource_claims() {
    let img = image(&["/bin/app"], &[]);
    let mut p = pod(c(&[], &[]));
    p.spec.preserved = serde_json::from_value(serde_json::json!({
        "resourceClaims": [{"name": "gpu", "resourceClaimName": "gpu-claim"}]
    }))
    .unwrap();
    let e = run(&p, &img).unwrap_err();
    assert_eq!(e.field, "spec.resourceClaims");
    assert!(e.message.contains("allocates no devices"), "{e}");
    // An empty list claims nothing.
    p.spec.preserved = serde_json::from_value(serde_json::json!({"resourceClaims": []})).unwrap();
    assert!(run(&p, &img).is_ok());
}
