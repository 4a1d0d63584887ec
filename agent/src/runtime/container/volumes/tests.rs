use super::*;
use crate::runtime::container::env::{NoSources, NodeFacts};

/// A pod in namespace `default` (what the volumes' objects are looked up in).
fn ns_default() -> Pod {
    let mut p = Pod::default();
    p.metadata.namespace = "default".into();
    p
}
use keel_api::pod::{EmptyDirVolumeSource, HostPathVolumeSource, VolumeMount};

fn host(name: &str, path: &str) -> Volume {
    Volume {
        name: name.into(),
        empty_dir: None,
        host_path: Some(HostPathVolumeSource {
            path: path.into(),
            type_: String::new(),
        }),
        ..Default::default()
    }
}

#[test]
fn host_paths_must_stay_inside_the_allowed_roots() {
    let roots = vec![PathBuf::from("/var/lib/data")];
    assert!(validate(&[host("a", "/var/lib/data/x")], &roots).is_ok());
    let e = validate(&[host("a", "/var/lib/data/../../etc")], &roots).unwrap_err();
    assert_eq!(e.field, "spec.volumes[0].hostPath.path");
    assert!(e.message.contains("escapes"), "{e}");
    let e = validate(&[host("a", "/etc")], &roots).unwrap_err();
    assert!(e.message.contains("outside"), "{e}");
    assert!(validate(&[host("a", "relative")], &roots).is_err());
}

#[test]
fn sub_paths_cannot_leave_their_volume() {
    let pod = tempfile::tempdir().unwrap();
    let vols = vec![Volume {
        name: "scratch".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        host_path: None,
        ..Default::default()
    }];
    let mut c = Container {
        name: "c".into(),
        volume_mounts: vec![VolumeMount {
            name: "scratch".into(),
            mount_path: "/data".into(),
            read_only: false,
            sub_path: "../../etc".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let e = mounts(
        "spec.containers[0]",
        &c,
        &vols,
        pod.path(),
        &[],
        &ns_default(),
        &NodeFacts::default(),
        &NoSources,
    )
    .unwrap_err();
    assert_eq!(e.field, "spec.containers[0].volumeMounts[0].subPath");
    // A symlink inside the volume pointing out is caught after resolving.
    let vd = volume_dir(pod.path(), "scratch");
    fs::create_dir_all(&vd).unwrap();
    std::os::unix::fs::symlink("/etc", vd.join("link")).unwrap();
    c.volume_mounts[0].sub_path = "link".into();
    let e = mounts(
        "spec.containers[0]",
        &c,
        &vols,
        pod.path(),
        &[],
        &ns_default(),
        &NodeFacts::default(),
        &NoSources,
    )
    .unwrap_err();
    assert!(e.message.contains("outside volume"), "{e}");
    c.volume_mounts[0].sub_path = "logs".into();
    let m = mounts(
        "spec.containers[0]",
        &c,
        &vols,
        pod.path(),
        &[],
        &ns_default(),
        &NodeFacts::default(),
        &NoSources,
    )
    .unwrap();
    assert_eq!(m[0].source, fs::canonicalize(vd.join("logs")).unwrap());
    assert_eq!(m[0].destination, "/data");
}

fn mount_of(volume: &str, sub_path: &str) -> Container {
    Container {
        name: "c".into(),
        volume_mounts: vec![VolumeMount {
            name: volume.into(),
            mount_path: "/data".into(),
            read_only: false,
            sub_path: sub_path.into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn host_paths_are_created_only_inside_their_root() {
    let t = tempfile::tempdir().unwrap();
    let (root, outside) = (t.path().join("root"), t.path().join("outside"));
    fs::create_dir_all(&root).unwrap();
    fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
    let roots = vec![root.clone()];
    for ty in ["DirectoryOrCreate", "FileOrCreate"] {
        let mut v = host("h", root.join("link/a/b").to_str().unwrap());
        v.host_path.as_mut().unwrap().type_ = ty.into();
        let e = mounts(
            "spec.containers[0]",
            &mount_of("h", ""),
            &[v],
            t.path(),
            &roots,
            &ns_default(),
            &NodeFacts::default(),
            &NoSources,
        )
        .unwrap_err();
        assert_eq!(e.field, "spec.containers[0].volumeMounts[0]", "{ty}");
        assert!(e.message.contains("creating hostPath"), "{ty}: {e}");
        assert!(
            fs::read_dir(&outside).unwrap().next().is_none(),
            "{ty} created outside its root"
        );
    }
    // Inside the root both are made, as the kubelet makes them.
    let mut v = host("h", root.join("d/e").to_str().unwrap());
    v.host_path.as_mut().unwrap().type_ = "DirectoryOrCreate".into();
    mounts(
        "spec.containers[0]",
        &mount_of("h", ""),
        &[v],
        t.path(),
        &roots,
        &ns_default(),
        &NodeFacts::default(),
        &NoSources,
    )
    .unwrap();
    assert!(root.join("d/e").is_dir());
    let mut v = host("h", root.join("f/g").to_str().unwrap());
    v.host_path.as_mut().unwrap().type_ = "FileOrCreate".into();
    mounts(
        "spec.containers[0]",
        &mount_of("h", ""),
        &[v],
        t.path(),
        &roots,
        &ns_default(),
        &NodeFacts::default(),
        &NoSources,
    )
    .unwrap();
    assert!(root.join("f/g").is_file());
}

#[test]
fn sub_paths_are_created_only_inside_their_volume() {
    let pod = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let vols = vec![Volume {
        name: "scratch".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        host_path: None,
        ..Default::default()
    }];
    let vd = volume_dir(pod.path(), "scratch");
    fs::create_dir_all(&vd).unwrap();
    std::os::unix::fs::symlink(outside.path(), vd.join("link")).unwrap();
    let e = mounts(
        "spec.containers[0]",
        &mount_of("scratch", "link/new/dir"),
        &vols,
        pod.path(),
        &[],
        &ns_default(),
        &NodeFacts::default(),
        &NoSources,
    )
    .unwrap_err();
    assert_eq!(e.field, "spec.containers[0].volumeMounts[0].subPath");
    assert!(e.message.contains("outside volume"), "{e}");
    assert!(fs::read_dir(outside.path()).unwrap().next().is_none());
}

#[test]
fn config_map_volumes_are_written_and_their_sub_paths_must_exist() {
    use std::sync::Arc;

    use crate::runtime::container::env::{Fetched, Sources};

    struct One(Arc<keel_api::ConfigMap>);
    impl Sources for One {
        fn config_map(&self, _: &str, _: &str) -> Fetched<Arc<keel_api::ConfigMap>> {
            Fetched::Found(self.0.clone())
        }
        fn secret(&self, _: &str, _: &str) -> Fetched<Arc<keel_api::Secret>> {
            Fetched::Missing
        }
        fn services(&self, _: &str) -> Vec<Arc<keel_api::Service>> {
            Vec::new()
        }
    }
    let cm: keel_api::ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "cfg", "namespace": "default"}, "data": {"app.conf": "v1"}
    }))
    .unwrap();
    let src = One(Arc::new(cm));
    let pod = tempfile::tempdir().unwrap();
    let vols = vec![Volume {
        name: "cfg".into(),
        config_map: Some(keel_api::pod::ConfigMapVolumeSource {
            name: "cfg".into(),
            ..Default::default()
        }),
        ..Default::default()
    }];
    validate(&vols, &[]).unwrap();
    let m = mounts(
        "spec.containers[0]",
        &mount_of("cfg", "app.conf"),
        &vols,
        pod.path(),
        &[],
        &ns_default(),
        &NodeFacts::default(),
        &src,
    )
    .unwrap();
    // The subPath is the file of the current generation (it keeps it).
    assert_eq!(fs::read_to_string(&m[0].source).unwrap(), "v1");
    assert!(
        m[0].source.to_string_lossy().contains("/.."),
        "{:?}",
        m[0].source
    );
    let e = mounts(
        "spec.containers[0]",
        &mount_of("cfg", "nope"),
        &vols,
        pod.path(),
        &[],
        &ns_default(),
        &NodeFacts::default(),
        &src,
    )
    .unwrap_err();
    assert_eq!(e.field, "spec.containers[0].volumeMounts[0].subPath");
    assert!(!volume_dir(pod.path(), "cfg").join("nope").exists());
}

#[test]
fn a_volume_keel_has_no_driver_for_refuses_the_containers_naming_it() {
    let v: Volume = serde_json::from_value(serde_json::json!({
        "name": "data", "persistentVolumeClaim": {"claimName": "db"}
    }))
    .unwrap();
    let e = validate(
        &[host("a", "/var/lib/data/x"), v],
        &[PathBuf::from("/var/lib/data")],
    )
    .unwrap_err();
    assert_eq!(e.field, "spec.volumes[1].persistentVolumeClaim");
    assert!(
        e.message
            .contains("keel has no persistentVolumeClaim volumes"),
        "{e}"
    );
    assert!(e.message.contains("\"data\""), "{e}");
}

#[test]
fn sub_path_exprs_expand_from_the_containers_variables_as_the_kubelet_does() {
    let with = |expr: &str, sub: &str| Container {
        name: "app".into(),
        volume_mounts: vec![
            VolumeMount {
                name: "logs".into(),
                mount_path: "/plain".into(),
                ..Default::default()
            },
            VolumeMount {
                name: "logs".into(),
                mount_path: "/logs".into(),
                sub_path: sub.into(),
                sub_path_expr: expr.into(),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let vars: Vec<(String, String)> = [
        ("POD", "web-1"),
        ("NS", "default"),
        ("EMPTY", ""),
        ("UP", ".."),
        ("ROOT", "/etc"),
        ("POD", "web-2"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let f = "spec.containers[0]";
    // The last definition of a name wins (as in the container's env);
    // `$$` is a literal `$`; the mount without an expression is untouched.
    let c = expand_sub_paths(f, &with("$(NS)/$(POD)/x$$y", ""), &vars).unwrap();
    assert_eq!(c.volume_mounts[1].sub_path, "default/web-2/x$y");
    assert_eq!(c.volume_mounts[0].sub_path, "");
    let err = |expr: &str, sub: &str| {
        let e = expand_sub_paths(f, &with(expr, sub), &vars).unwrap_err();
        assert_eq!(e.field, "spec.containers[0].volumeMounts[1].subPathExpr");
        e.message
    };
    assert!(err("$(NOPE)/$(EMPTY)", "").contains("missing value for EMPTY, NOPE"));
    assert!(err("$(UP)/x", "").contains("must not contain '..'"));
    assert!(err("$(ROOT)", "").contains("must not be an absolute path"));
    assert!(err("$(POD)", "p").contains("mutually exclusive"));
}

#[test]
fn a_sub_path_expr_mounts_its_expansion_and_errors_name_it() {
    let pod = tempfile::tempdir().unwrap();
    let vols = vec![Volume {
        name: "logs".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    }];
    let c = Container {
        name: "app".into(),
        volume_mounts: vec![VolumeMount {
            name: "logs".into(),
            mount_path: "/logs".into(),
            sub_path_expr: "$(POD)".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let vars = vec![("POD".to_string(), "web-1".to_string())];
    let c = expand_sub_paths("spec.containers[0]", &c, &vars).unwrap();
    let facts = NodeFacts::default();
    let m = mounts(
        "spec.containers[0]",
        &c,
        &vols,
        pod.path(),
        &[],
        &ns_default(),
        &facts,
        &NoSources,
    )
    .unwrap();
    let want = fs::canonicalize(volume_dir(pod.path(), "logs"))
        .unwrap()
        .join("web-1");
    assert_eq!(m[0].source, want);
    assert!(want.is_dir(), "made like a subPath");
    // A link in the volume that leads out: refused, naming subPathExpr.
    let d = volume_dir(pod.path(), "logs");
    std::os::unix::fs::symlink("/etc", d.join("out")).unwrap();
    let mut c2 = c.clone();
    c2.volume_mounts[0].sub_path = "out".into();
    let e = mounts(
        "spec.containers[0]",
        &c2,
        &vols,
        pod.path(),
        &[],
        &ns_default(),
        &facts,
        &NoSources,
    )
    .unwrap_err();
    assert_eq!(e.field, "spec.containers[0].volumeMounts[0].subPathExpr");
}

#[test]
fn propagation_needs_a_shared_or_slave_source_mount() {
    // mountinfo lines: id parent major:minor root point options optional… - fstype source super.
    let info = "\
22 1 0:21 / / rw,relatime - ext4 /dev/sda1 rw
30 22 0:30 / /srv rw shared:5 - ext4 /dev/sdb1 rw
31 30 0:31 / /srv/slave rw master:5 - tmpfs tmpfs rw
32 30 0:32 / /srv/private rw - tmpfs tmpfs rw
33 30 0:33 / /srv/with\\040space rw shared:9 master:5 - tmpfs tmpfs rw
34 32 0:34 / /srv/private rw shared:7 - tmpfs tmpfs rw
";
    use MountPropagation::*;
    let ok = |p: &str, w| check_propagation(info, Path::new(p), w);
    // Under /srv (shared): both.
    assert_eq!(ok("/srv/data/x", HostToContainer), Ok(()));
    assert_eq!(ok("/srv/data/x", Bidirectional), Ok(()));
    // A slave: host to container only.
    assert_eq!(ok("/srv/slave/x", HostToContainer), Ok(()));
    let e = ok("/srv/slave/x", Bidirectional).unwrap_err();
    assert!(e.contains("a shared mount; it is a slave"), "{e}");
    // The root (private here): neither. Not fooled by a name prefix.
    let e = ok("/srvx/data", HostToContainer).unwrap_err();
    assert!(e.contains("mounted on /,") && e.contains("private"), "{e}");
    // Escaped names; the mount on top of another at the same point wins.
    assert_eq!(ok("/srv/with space/a", Bidirectional), Ok(()));
    assert_eq!(ok("/srv/private/a", Bidirectional), Ok(()));
    // None asks nothing.
    assert_eq!(ok("/srvx", None), Ok(()));
}
