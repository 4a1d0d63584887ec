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
