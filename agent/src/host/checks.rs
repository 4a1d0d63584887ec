//! Start-up checks: before the agent touches anything, everything the
//! enabled features need from the host is checked at once, and the agent
//! refuses to start with one message listing each missing piece and the
//! flag that turns its feature off — instead of failing half-way later.
//!
//! What each feature needs (the README's "What the agent needs from the
//! kernel" lists the same):
//! - the load balancer (`--cgroup-root`, on unless `none`): BPF programs
//!   embedded in this build; Linux 6.6 for the TCX links of the NodePort
//!   programs on the uplink (5.8, for the cgroup `getpeername4` hook, with
//!   `--uplink none`); BTF at `/sys/kernel/btf/vmlinux`; a cgroup v2 mount
//!   (the root it attaches to is on it); bpffs at `--bpffs` (or
//!   `/sys/fs/bpf` present, which the agent mounts itself).
//! - BPF host routing when forced (`--host-routing bpf`): the same BPF,
//!   kernel 6.6, BTF and bpffs (`auto` falls back to the kernel's stack).
//! - pods (`--cni-bin-dir`, on unless `none`): keel's CNI plugin `keel` in
//!   one of the directories; `--cni-conf-dir` a directory or creatable.
//! - the runtime, for pods: `direct` a cgroup filesystem (v2, or v1
//!   controllers); `containerd` its socket.
//! - egress masquerade (`--masquerade`, on with node networking): the
//!   `nft` program (nftables) in one of `$PATH`'s directories.
//! - the capabilities each of them uses (as root the agent has them all):
//!   CAP_NET_ADMIN for node networking, pods, the load balancer and host
//!   routing; CAP_BPF (or CAP_SYS_ADMIN) for the BPF programs;
//!   CAP_SYS_ADMIN for pods (network namespaces) and the direct runtime.

use std::path::{Path, PathBuf};

use super::{mountinfo, probe::Probe};

#[cfg(test)]
#[path = "checks_tests.rs"]
mod tests;

/// Kernel for TCX links (`BPF_LINK_TYPE_TCX`, Linux 6.6).
pub const TCX_KERNEL: (u32, u32) = (6, 6);
/// Kernel for the cgroup `getpeername4` hook (Linux 5.8).
pub const SOCK_LB_KERNEL: (u32, u32) = (5, 8);
/// The kernel's own BTF, which the BPF loader needs.
pub const BTF_PATH: &str = "/sys/kernel/btf/vmlinux";
/// Where bpffs lives by convention; the agent mounts it there if missing.
pub const SYS_FS_BPF: &str = "/sys/fs/bpf";
/// keel's CNI plugin's file name.
pub const CNI_PLUGIN: &str = "keel";

/// `--cgroup-root`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupRoot {
    /// The node's cgroup v2 root, from `/proc/self/mountinfo`.
    Auto,
    /// No load balancer.
    None,
    Path(PathBuf),
}

impl std::str::FromStr for CgroupRoot {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "none" => Ok(Self::None),
            p if Path::new(p).is_absolute() => Ok(Self::Path(PathBuf::from(p))),
            p => Err(format!(
                "{p:?}: expected auto, none or an absolute cgroup v2 directory"
            )),
        }
    }
}

/// The runtime, as far as the checks care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runtime {
    None,
    Direct,
    Containerd { socket: PathBuf },
}

/// Capability numbers (linux/capability.h).
pub const CAP_NET_ADMIN: u32 = 12;
pub const CAP_SYS_ADMIN: u32 = 21;
pub const CAP_BPF: u32 = 39;

/// What the flags turn on.
#[derive(Debug, Clone)]
pub struct Features {
    /// `--network-mode` other than none.
    pub node_networking: bool,
    pub cgroup_root: CgroupRoot,
    /// The uplink for NodePort (`None`: the node IP's; `Some("none")`: no NodePort).
    pub uplink: Option<String>,
    /// Host routing forced to BPF (with node networking on).
    pub host_routing_bpf: bool,
    pub bpffs: PathBuf,
    /// Empty: no pods.
    pub cni_bin_dirs: Vec<PathBuf>,
    pub cni_conf_dir: PathBuf,
    pub runtime: Runtime,
    /// This build embeds its BPF programs.
    pub bpf_built: bool,
    /// `--masquerade` (with node networking on).
    pub masquerade: bool,
    /// Where programs are looked for (`$PATH`'s directories).
    pub path: Vec<PathBuf>,
}

/// The program egress masquerading runs.
pub const NFT: &str = "nft";

/// One missing piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub feature: &'static str,
    pub missing: String,
    /// The flag that turns the feature off.
    pub off: &'static str,
}

/// Everything missing, as one error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub Vec<Problem>);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "this host lacks what the enabled features need ({} problem{}):",
            self.0.len(),
            if self.0.len() == 1 { "" } else { "s" }
        )?;
        for p in &self.0 {
            writeln!(
                f,
                "  - {}: {} (turn it off with {})",
                p.feature, p.missing, p.off
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for Refused {}

/// `MAJOR.MINOR` of a kernel release string (`6.1.0-18-amd64` → (6, 1)).
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(['.', '-', '+']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()?;
    Some((major, minor))
}

/// The cgroup v2 directory the load balancer attaches to (None: off),
/// or why there is none.
pub fn cgroup_root(root: &CgroupRoot, mountinfo: &str) -> Result<Option<PathBuf>, String> {
    match root {
        CgroupRoot::None => Ok(None),
        CgroupRoot::Path(p) => Ok(Some(p.clone())),
        CgroupRoot::Auto => mountinfo::cgroup2_root(&mountinfo::parse(mountinfo))
            .map(Some)
            .ok_or_else(|| {
                "no cgroup v2 mount in /proc/self/mountinfo (mount one: mount -t cgroup2 none /sys/fs/cgroup, or pass --cgroup-root DIR)".into()
            }),
    }
}

/// Checks everything `f` needs; every problem found, not just the first.
pub fn check(f: &Features, host: &impl Probe) -> Result<(), Refused> {
    let mut problems = Vec::new();
    let mounts = mountinfo::parse(&host.mountinfo());
    let release = host.kernel_release();
    let version = kernel_version(&release);
    let bpf_needs = |problems: &mut Vec<Problem>,
                     feature: &'static str,
                     off: &'static str,
                     min: (u32, u32),
                     why: &str| {
        let mut need = |missing: String| {
            problems.push(Problem {
                feature,
                missing,
                off,
            })
        };
        if !f.bpf_built {
            need("this keel-agent was built without its BPF programs (build it with `cargo xtask dist`)".into());
        }
        match version {
            Some(v) if v < min => need(format!(
                "kernel {release} is older than {}.{} ({why})",
                min.0, min.1
            )),
            Some(_) => {}
            None => need(format!("cannot tell the kernel version from {release:?}")),
        }
        if !host.exists(Path::new(BTF_PATH)) {
            need(format!(
                "no kernel BTF at {BTF_PATH} (a kernel built with CONFIG_DEBUG_INFO_BTF=y)"
            ));
        }
        let sys_fs_bpf = Path::new(SYS_FS_BPF);
        let mountable = f.bpffs.starts_with(sys_fs_bpf) && host.is_dir(sys_fs_bpf);
        if !mountinfo::is_on(&mounts, &f.bpffs, "bpf") && !mountable {
            need(format!(
                "{} is not on a bpf filesystem (mount one: mount -t bpf bpf {SYS_FS_BPF}, or pass --bpffs DIR on one)",
                f.bpffs.display()
            ));
        }
    };

    if f.cgroup_root != CgroupRoot::None {
        const LB: &str = "load balancer";
        const OFF: &str = "--cgroup-root none";
        let (min, why) = if f.uplink.as_deref() == Some("none") {
            (SOCK_LB_KERNEL, "cgroup getpeername4 hook")
        } else {
            (
                TCX_KERNEL,
                "TCX links for the NodePort programs; --uplink none needs only 5.8",
            )
        };
        bpf_needs(&mut problems, LB, OFF, min, why);
        match cgroup_root(&f.cgroup_root, &host.mountinfo()) {
            Err(e) => problems.push(Problem {
                feature: LB,
                missing: e,
                off: OFF,
            }),
            Ok(Some(root)) => {
                if !host.is_dir(&root) {
                    problems.push(Problem {
                        feature: LB,
                        missing: format!("--cgroup-root {}: no such directory", root.display()),
                        off: OFF,
                    });
                } else if !mountinfo::is_on(&mounts, &root, "cgroup2") {
                    problems.push(Problem {
                        feature: LB,
                        missing: format!(
                            "--cgroup-root {}: not on a cgroup v2 filesystem",
                            root.display()
                        ),
                        off: OFF,
                    });
                }
            }
            Ok(None) => {}
        }
    }
    if f.host_routing_bpf {
        // The load balancer's checks already cover the same needs.
        let before = problems.len();
        bpf_needs(
            &mut problems,
            "BPF host routing",
            "--host-routing kernel",
            TCX_KERNEL,
            "TCX links",
        );
        let dup: Vec<Problem> = problems.drain(before..).collect();
        for p in dup {
            let key = |m: &str| m.split(" (").next().unwrap_or_default().to_string();
            if !problems.iter().any(|q| key(&q.missing) == key(&p.missing)) {
                problems.push(p);
            }
        }
    }
    if !f.cni_bin_dirs.is_empty() {
        const PODS: &str = "pods";
        const OFF: &str = "--cni-bin-dir none";
        if !f
            .cni_bin_dirs
            .iter()
            .any(|d| host.is_executable(&d.join(CNI_PLUGIN)))
        {
            let dirs: Vec<String> = f
                .cni_bin_dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect();
            problems.push(Problem {
                feature: PODS,
                missing: format!(
                    "no CNI plugin {CNI_PLUGIN:?} (an executable) in --cni-bin-dir {}",
                    dirs.join(":")
                ),
                off: OFF,
            });
        }
        let conf = &f.cni_conf_dir;
        let existing = conf.ancestors().find(|p| host.exists(p));
        if existing.is_some_and(|p| !host.is_dir(p)) {
            problems.push(Problem {
                feature: PODS,
                missing: format!(
                    "--cni-conf-dir {}: {} is not a directory",
                    conf.display(),
                    existing.unwrap_or(conf).display()
                ),
                off: OFF,
            });
        }
        match &f.runtime {
            Runtime::None => {}
            Runtime::Direct => {
                if !mounts
                    .iter()
                    .any(|m| m.fstype == "cgroup2" || m.fstype == "cgroup")
                {
                    problems.push(Problem {
                        feature: "runtime direct",
                        missing: "no cgroup filesystem mounted (v2, or v1 controllers)".into(),
                        off: "--runtime none",
                    });
                }
            }
            Runtime::Containerd { socket } => {
                if !host.exists(socket) {
                    problems.push(Problem {
                        feature: "runtime containerd",
                        missing: format!(
                            "no containerd socket at {} (is containerd running? --containerd-socket)",
                            socket.display()
                        ),
                        off: "--runtime direct or --runtime none",
                    });
                }
            }
        }
    }
    if f.node_networking && f.masquerade && !f.path.iter().any(|d| host.is_executable(&d.join(NFT)))
    {
        problems.push(Problem {
            feature: "egress masquerade",
            missing: format!("no {NFT:?} program (nftables) in PATH"),
            off: "--masquerade=false",
        });
    }
    capabilities(f, host.capabilities(), &mut problems);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Refused(problems))
    }
}

/// The capabilities each enabled feature uses, against the effective set
/// (None: unknown, nothing is claimed missing).
fn capabilities(f: &Features, eff: Option<u64>, problems: &mut Vec<Problem>) {
    let Some(eff) = eff else { return };
    let has = |cap: u32| eff & (1u64 << cap) != 0;
    let mut need = |feature: &'static str, off: &'static str, caps: &[(u32, &str)]| {
        let missing: Vec<&str> = caps
            .iter()
            .filter(|(c, _)| !has(*c))
            .map(|(_, name)| *name)
            .collect();
        if !missing.is_empty() {
            problems.push(Problem {
                feature,
                missing: format!("lacks {} (run it as root)", missing.join(" and ")),
                off,
            });
        }
    };
    // CAP_SYS_ADMIN stands in for CAP_BPF (kernels before 5.8 have only it).
    let bpf = if has(CAP_SYS_ADMIN) {
        CAP_SYS_ADMIN
    } else {
        CAP_BPF
    };
    if f.node_networking {
        need(
            "node networking",
            "--network-mode none",
            &[(CAP_NET_ADMIN, "CAP_NET_ADMIN")],
        );
    }
    if f.cgroup_root != CgroupRoot::None {
        need(
            "load balancer",
            "--cgroup-root none",
            &[(CAP_NET_ADMIN, "CAP_NET_ADMIN"), (bpf, "CAP_BPF")],
        );
    }
    if f.host_routing_bpf {
        need(
            "BPF host routing",
            "--host-routing kernel",
            &[(CAP_NET_ADMIN, "CAP_NET_ADMIN"), (bpf, "CAP_BPF")],
        );
    }
    if !f.cni_bin_dirs.is_empty() {
        need(
            "pods",
            "--cni-bin-dir none",
            &[
                (CAP_NET_ADMIN, "CAP_NET_ADMIN"),
                (CAP_SYS_ADMIN, "CAP_SYS_ADMIN"),
            ],
        );
    }
}
