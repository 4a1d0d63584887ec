use std::collections::BTreeSet;

use super::*;

/// A made-up host: a kernel release, mountinfo text, and the paths that exist.
struct Fake {
    release: &'static str,
    mountinfo: &'static str,
    dirs: BTreeSet<PathBuf>,
    files: BTreeSet<PathBuf>,
    executables: BTreeSet<PathBuf>,
    caps: Option<u64>,
}

impl Probe for Fake {
    fn kernel_release(&self) -> String {
        self.release.into()
    }
    fn mountinfo(&self) -> String {
        self.mountinfo.into()
    }
    fn exists(&self, p: &Path) -> bool {
        self.dirs.contains(p) || self.files.contains(p) || self.executables.contains(p)
    }
    fn is_dir(&self, p: &Path) -> bool {
        self.dirs.contains(p)
    }
    fn is_executable(&self, p: &Path) -> bool {
        self.executables.contains(p)
    }
    fn capabilities(&self) -> Option<u64> {
        self.caps
    }
}

/// Root's effective set on this machine (`CapEff: 000001fffeffffff`).
const ROOT_CAPS: u64 = 0x0000_01ff_feff_ffff;

const HYBRID: &str = "\
31 23 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
42 31 0:39 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
52 23 0:40 / /sys/fs/bpf rw,relatime - bpf bpf rw
";

fn set(paths: &[&str]) -> BTreeSet<PathBuf> {
    paths.iter().map(PathBuf::from).collect()
}

/// This machine: everything there.
fn good_host() -> Fake {
    Fake {
        release: "6.18.44-fc-v1045",
        mountinfo: HYBRID,
        dirs: set(&[
            "/",
            "/sys/fs/bpf",
            "/sys/fs/cgroup/unified",
            "/etc",
            "/opt/cni/bin",
        ]),
        files: set(&[BTF_PATH]),
        executables: set(&["/opt/cni/bin/keel", "/usr/sbin/nft"]),
        caps: Some(ROOT_CAPS),
    }
}

/// The production defaults.
fn defaults() -> Features {
    Features {
        node_networking: true,
        cgroup_root: CgroupRoot::Auto,
        uplink: None,
        host_routing_bpf: false,
        bpffs: PathBuf::from("/sys/fs/bpf/keel/node-1"),
        cni_bin_dirs: vec![PathBuf::from("/opt/cni/bin")],
        cni_conf_dir: PathBuf::from("/etc/cni/net.d"),
        runtime: Runtime::Direct,
        bpf_built: true,
        masquerade: true,
        path: vec![PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")],
    }
}

fn problems(f: &Features, h: &Fake) -> Vec<Problem> {
    match check(f, h) {
        Ok(()) => Vec::new(),
        Err(Refused(p)) => p,
    }
}

#[test]
fn a_capable_host_passes_with_the_defaults() {
    assert_eq!(problems(&defaults(), &good_host()), vec![]);
    // The hybrid host's cgroup v2 mount is the root.
    assert_eq!(
        cgroup_root(&CgroupRoot::Auto, HYBRID).unwrap(),
        Some(PathBuf::from("/sys/fs/cgroup/unified"))
    );
}

#[test]
fn an_old_bare_host_gets_every_problem_at_once() {
    let host = Fake {
        release: "5.4.0-150-generic",
        mountinfo: "",
        dirs: set(&["/", "/etc"]),
        files: set(&["/etc/cni"]),
        executables: BTreeSet::new(),
        caps: Some(ROOT_CAPS),
    };
    let mut f = defaults();
    f.bpf_built = false;
    f.host_routing_bpf = true;
    let err = check(&f, &host).unwrap_err();
    let text = err.to_string();
    for want in [
        "load balancer: this keel-agent was built without its BPF programs",
        "load balancer: kernel 5.4.0-150-generic is older than 6.6",
        "load balancer: no kernel BTF at /sys/kernel/btf/vmlinux",
        "load balancer: /sys/fs/bpf/keel/node-1 is not on a bpf filesystem",
        "load balancer: no cgroup v2 mount in /proc/self/mountinfo",
        "pods: no CNI plugin \"keel\"",
        "pods: --cni-conf-dir /etc/cni/net.d: /etc/cni is not a directory",
        "runtime direct: no cgroup filesystem mounted",
        "egress masquerade: no \"nft\" program (nftables) in PATH (turn it off with --masquerade=false)",
        "(turn it off with --cgroup-root none)",
        "(turn it off with --cni-bin-dir none)",
        "(turn it off with --runtime none)",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    // Host routing's needs are the load balancer's: said once.
    assert_eq!(text.matches("older than 6.6").count(), 1, "{text}");
    assert!(
        text.starts_with("this host lacks what the enabled features need (9 problems)"),
        "{text}"
    );
}

#[test]
fn turning_features_off_turns_their_checks_off() {
    let host = Fake {
        release: "5.4.0",
        mountinfo: "",
        dirs: set(&["/"]),
        files: BTreeSet::new(),
        executables: BTreeSet::new(),
        caps: Some(ROOT_CAPS),
    };
    let off = Features {
        node_networking: false,
        cgroup_root: CgroupRoot::None,
        cni_bin_dirs: vec![],
        runtime: Runtime::None,
        bpf_built: false,
        ..defaults()
    };
    assert_eq!(problems(&off, &host), vec![]);
    // Masquerade off: nft is not needed.
    let no_nft = Fake {
        executables: set(&["/opt/cni/bin/keel"]),
        ..good_host()
    };
    assert_eq!(problems(&defaults(), &no_nft).len(), 1);
    let f = Features {
        masquerade: false,
        ..defaults()
    };
    assert_eq!(problems(&f, &no_nft), vec![]);
}

#[test]
fn load_balancer_details() {
    let host = good_host();
    // Without NodePort, 5.8 is enough.
    let old = Fake {
        release: "5.15.0-91-generic",
        ..good_host()
    };
    let mut f = defaults();
    f.uplink = Some("none".into());
    assert_eq!(problems(&f, &old), vec![]);
    f.uplink = None;
    assert_eq!(problems(&f, &old).len(), 1);
    // An explicit root must be a cgroup v2 directory.
    f.cgroup_root = CgroupRoot::Path("/sys/fs/cgroup/memory".into());
    let p = problems(
        &f,
        &Fake {
            dirs: set(&["/sys/fs/bpf", "/sys/fs/cgroup/memory", "/etc"]),
            ..good_host()
        },
    );
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].missing.contains("not on a cgroup v2 filesystem"),
        "{p:?}"
    );
    f.cgroup_root = CgroupRoot::Path("/sys/fs/cgroup/unified/nope".into());
    assert!(problems(&f, &host)[0].missing.contains("no such directory"));
    // bpffs outside /sys/fs/bpf must already be one.
    let mut f = defaults();
    f.bpffs = PathBuf::from("/tmp/pins");
    assert!(
        problems(&f, &host)[0]
            .missing
            .contains("/tmp/pins is not on a bpf filesystem")
    );
    // Under /sys/fs/bpf when it is not mounted yet: the agent mounts it.
    let unmounted = Fake {
        mountinfo: "41 31 0:38 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        dirs: set(&["/sys/fs/bpf", "/sys/fs/cgroup", "/etc", "/opt/cni/bin"]),
        ..good_host()
    };
    assert_eq!(problems(&defaults(), &unmounted), vec![]);
}

#[test]
fn containerd_needs_its_socket() {
    let mut f = defaults();
    f.runtime = Runtime::Containerd {
        socket: "/run/containerd/containerd.sock".into(),
    };
    let p = problems(&f, &good_host());
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].feature, "runtime containerd");
    assert!(p[0].missing.contains("/run/containerd/containerd.sock"));
}

#[test]
fn parses_kernel_releases_and_cgroup_roots() {
    assert_eq!(kernel_version("6.18.44-fc-v1045"), Some((6, 18)));
    assert_eq!(kernel_version("6.1.0-18-amd64"), Some((6, 1)));
    assert_eq!(kernel_version("5.15.0"), Some((5, 15)));
    assert_eq!(kernel_version("6.6-rc1"), Some((6, 6)));
    assert_eq!(kernel_version("6.10rc2"), Some((6, 10)));
    assert_eq!(kernel_version("garbage"), None);
    assert_eq!("auto".parse(), Ok(CgroupRoot::Auto));
    assert_eq!("none".parse(), Ok(CgroupRoot::None));
    assert_eq!(
        "/sys/fs/cgroup".parse(),
        Ok(CgroupRoot::Path("/sys/fs/cgroup".into()))
    );
    assert!("relative".parse::<CgroupRoot>().is_err());
}

#[test]
fn capabilities_each_feature_uses() {
    use crate::host::probe::cap_eff;
    assert_eq!(
        cap_eff("Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001fffeffffff\n"),
        Some(ROOT_CAPS)
    );
    assert_eq!(cap_eff("Name: x\n"), None);
    // No capabilities at all: every enabled feature says what it lacks.
    let none = Fake {
        caps: Some(0),
        ..good_host()
    };
    let text = check(&defaults(), &none).unwrap_err().to_string();
    for want in [
        "node networking: lacks CAP_NET_ADMIN (run it as root) (turn it off with --network-mode none)",
        "load balancer: lacks CAP_NET_ADMIN and CAP_BPF (run it as root)",
        "pods: lacks CAP_NET_ADMIN and CAP_SYS_ADMIN (run it as root)",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    // CAP_BPF and CAP_NET_ADMIN are enough for the load balancer alone.
    let bpf_only = Fake {
        caps: Some((1 << CAP_BPF) | (1 << CAP_NET_ADMIN)),
        ..good_host()
    };
    let lb_only = Features {
        node_networking: false,
        cni_bin_dirs: vec![],
        ..defaults()
    };
    assert_eq!(problems(&lb_only, &bpf_only), vec![]);
    // Unknown capabilities: nothing claimed.
    let unknown = Fake {
        caps: None,
        ..good_host()
    };
    assert_eq!(problems(&defaults(), &unknown), vec![]);
}
