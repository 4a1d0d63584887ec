//! `keel-bench runtime`: one container's create → start → exit, on the same
//! bundle (Debian's static busybox as rootfs, `/bin/true`, the OCI spec keel
//! generates for pods: own pid/ipc/uts/mount namespaces, a given network
//! namespace, cgroup v1 limits, seccomp, masked paths), with:
//!
//! - keel's direct path: libcontainer create/start/wait/delete inside the
//!   already running process, which is what a pod's shim does per container;
//! - `keel-agent shim-run`: the same, as a process per container;
//! - Debian's `runc run` and `crun run` (a process per container, as every
//!   containerd shim execs them).
//!
//! Runs alternate runtime by runtime, iteration by iteration, so drift on
//! the machine hits all alike.
//!
//! `keel-bench runtime [--iterations N] [--only LABEL-PREFIX]`

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use keel_agent::runtime::{
    container::{ContainerRequest, Resources, resolve::DEFAULT_CAPS, spec},
    shim::oneshot::run_bundle,
};

use super::{Samples, Table, stats::fmt_duration};
use crate::{
    TestNetns,
    process::bin,
    runtime::{ImageSpec, RuntimeRoot, build_rootfs},
};

const TIME_BUDGET: Duration = Duration::from_secs(180);

enum Runner {
    InProcess,
    Exec(Vec<String>),
}

struct Variant {
    label: &'static str,
    runner: Runner,
    root: PathBuf,
    bundle: PathBuf,
    samples: Samples,
}

fn write_bundle(dir: &Path, rootfs: &Path, netns: &Path, cgroup: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let req = ContainerRequest {
        id: "bench".into(),
        name: "bench".into(),
        init: false,
        attempt: 0,
        image: "busybox".into(),
        args: vec!["/bin/true".into()],
        env: vec!["PATH=/bin".into()],
        cwd: "/".into(),
        uid: 0,
        gid: 0,
        additional_gids: vec![],
        user_name: None,
        hostname: "bench".into(),
        hosts: String::new(),
        resolv_conf: None,
        mounts: vec![],
        resources: Resources {
            cpu_shares: Some(102),
            cpu_quota: Some(50_000),
            memory_limit: Some(64 << 20),
            oom_score_adj: 1000,
        },
        read_only_rootfs: true,
        privileged: false,
        no_new_privileges: true,
        capabilities: DEFAULT_CAPS.iter().map(|s| s.to_string()).collect(),
        seccomp: Default::default(),
        cgroup_path: cgroup.into(),
        netns: Some(netns.to_path_buf()),
        uts_ns: None,
        pid_ns: None,
        ipc_ns: None,
    };
    let config = spec::build(&req, &rootfs.display().to_string());
    std::fs::write(dir.join("config.json"), serde_json::to_vec_pretty(&config)?)?;
    Ok(())
}

fn run_once(v: &Variant, id: &str) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let code = match &v.runner {
        Runner::InProcess => run_bundle(&v.root, id, &v.bundle)?,
        Runner::Exec(cmd) => {
            let out = Command::new(&cmd[0])
                .args(&cmd[1..])
                .args(match v.label {
                    "keel-agent shim-run" => vec![
                        "--root".into(),
                        v.root.display().to_string(),
                        "--id".into(),
                        id.into(),
                        "--bundle".into(),
                        v.bundle.display().to_string(),
                    ],
                    _ => vec![
                        "--root".into(),
                        v.root.display().to_string(),
                        "run".into(),
                        "--bundle".into(),
                        v.bundle.display().to_string(),
                        id.into(),
                    ],
                })
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()
                .with_context(|| format!("running {}", cmd[0]))?;
            if !out.status.success() {
                bail!(
                    "{}: {}",
                    v.label,
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            0
        }
    };
    let d = t.elapsed();
    if code != 0 {
        bail!("{}: /bin/true exited {code}", v.label);
    }
    Ok(d)
}

/// cgroup v1 controllers with cgroup2 mounted beside them.
fn hybrid_cgroups() -> bool {
    Path::new("/sys/fs/cgroup/unified").is_dir() && Path::new("/sys/fs/cgroup/memory").is_dir()
}

/// Moves this (single-threaded) process into a private mount namespace and
/// unmounts cgroup2 there, so every runtime sees a pure cgroup v1 host.
/// The host's own mounts are untouched (mounts are made private first).
fn private_v1_only() -> anyhow::Result<()> {
    use nix::mount::{MntFlags, MsFlags, mount, umount2};
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).context("unshare(CLONE_NEWNS)")?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("making / private")?;
    umount2("/sys/fs/cgroup/unified", MntFlags::MNT_DETACH).context("umount cgroup2")?;
    // crun still writes below "unified" in v1 mode: give it a private tmpfs
    // that vanishes with this namespace rather than the host's directory.
    mount(
        Some("tmpfs"),
        "/sys/fs/cgroup/unified",
        Some("tmpfs"),
        MsFlags::empty(),
        Some("size=1m"),
    )
    .context("private tmpfs on /sys/fs/cgroup/unified")?;
    Ok(())
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut iterations = 100usize;
    let mut only: Option<String> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--iterations" => {
                iterations = it
                    .next()
                    .context("--iterations needs a number")?
                    .parse::<usize>()?
                    .clamp(1, 10_000)
            }
            "--only" => {
                only = Some(
                    it.next()
                        .context("--only needs a runtime label prefix")?
                        .clone(),
                )
            }
            other => bail!("unknown argument {other:?} (expected --iterations N, --only PREFIX)"),
        }
    }
    crate::require_root();
    let hybrid = hybrid_cgroups();
    if hybrid {
        private_v1_only()?;
    }
    let ns = TestNetns::new("bench-rt")?;
    let root = RuntimeRoot::new();
    let rootfs = build_rootfs(&ImageSpec::busybox("bench"), &root.path().join("image"));
    let agent = bin("keel-agent").display().to_string();
    let mut variants = Vec::new();
    for (label, runner) in [
        ("keel (in the shim)", Runner::InProcess),
        (
            "keel-agent shim-run",
            Runner::Exec(vec![agent.clone(), "shim-run".into()]),
        ),
        ("runc run", Runner::Exec(vec!["runc".into()])),
        ("crun run", Runner::Exec(vec!["crun".into()])),
    ] {
        if only.as_deref().is_some_and(|o| !label.starts_with(o)) {
            continue;
        }
        let slug: String = label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let dir = root.path().join(&slug);
        let bundle = dir.join("bundle");
        write_bundle(
            &bundle,
            &rootfs,
            ns.ns().path(),
            &format!("/{}/{slug}", root.cgroup_parent),
        )?;
        std::fs::create_dir_all(dir.join("state"))?;
        variants.push(Variant {
            label,
            runner,
            root: dir.join("state"),
            bundle,
            samples: Samples::new(),
        });
    }
    // One warm-up each (page cache, first cgroup creation), not counted.
    for v in &variants {
        run_once(v, "keel-warmup").with_context(|| format!("warm-up of {}", v.label))?;
    }
    let start = Instant::now();
    for i in 0..iterations {
        if start.elapsed() > TIME_BUDGET {
            eprintln!("runtime bench: time budget reached after {i} iterations");
            break;
        }
        for v in &mut variants {
            let d = run_once(v, &format!("keel-b-{i}"))?;
            v.samples.push(d);
        }
    }
    let base = variants[0].samples.p50().as_secs_f64();
    let mut t = Table::new(
        "container create → start → exit (/bin/true on busybox, same bundle)",
        &["runtime", "p50", "p99", "mean", "p50 / keel"],
    );
    for v in &variants {
        t.row(vec![
            v.label.into(),
            fmt_duration(v.samples.p50()),
            fmt_duration(v.samples.p99()),
            fmt_duration(v.samples.mean()),
            format!("{:.2}x", v.samples.p50().as_secs_f64() / base),
        ]);
    }
    t.note(format!(
        "{} runs each, alternating; cgroup v1 (hybrid host), seccomp and masked paths on, network namespace joined by path",
        variants[0].samples.len()
    ));
    if hybrid {
        t.note("hybrid cgroup host: crun 1.8 refuses those, so the suite runs in a private mount namespace without the cgroup2 mount — all four use the same v1 controllers");
    }
    t.note("runc 1.1.5 and crun 1.8.1 from Debian bookworm; keel = youki's libcontainer 0.7.0");
    t.emit("runtime")?;
    if hybrid {
        // Drop crun's scratch before the root guard walks the hierarchies.
        let _ = nix::mount::umount2("/sys/fs/cgroup/unified", nix::mount::MntFlags::MNT_DETACH);
    }
    Ok(())
}
