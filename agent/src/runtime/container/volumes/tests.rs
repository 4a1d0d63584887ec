use super::*;
use keel_api::pod::{EmptyDirVolumeSource, HostPathVolumeSource, VolumeMount};

fn host(name: &str, path: &str) -> Volume {
    Volume {
        name: name.into(),
        empty_dir: None,
        host_path: Some(HostPathVolumeSource {
            path: path.into(),
            type_: String::new(),
        }),
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
    let e = mounts("spec.containers[0]", &c, &vols, pod.path(), &[]).unwrap_err();
    assert_eq!(e.field, "spec.containers[0].volumeMounts[0].subPath");
    // A symlink inside the volume pointing out is caught after resolving.
    let vd = volume_dir(pod.path(), "scratch");
    fs::create_dir_all(&vd).unwrap();
    std::os::unix::fs::symlink("/etc", vd.join("link")).unwrap();
    c.volume_mounts[0].sub_path = "link".into();
    let e = mounts("spec.containers[0]", &c, &vols, pod.path(), &[]).unwrap_err();
    assert!(e.message.contains("outside volume"), "{e}");
    c.volume_mounts[0].sub_path = "logs".into();
    let m = mounts("spec.containers[0]", &c, &vols, pod.path(), &[]).unwrap();
    assert_eq!(m[0].source, fs::canonicalize(vd.join("logs")).unwrap());
    assert_eq!(m[0].destination, "/data");
}
