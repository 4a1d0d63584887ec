//! `cargo xtask dist`: the release tarball
//! `target/dist/keel-<version>-<arch>-linux.tar.gz`.
//!
//! ```text
//! cargo xtask dist [--profile release|dev | --debug] [--out DIR] [--bin-dir DIR]
//! ```
//!
//! Builds keel-control, keel-agent, keel-cni and keelctl with the BPF
//! toolchain required (the agent embeds its BPF programs; a build without
//! them fails, and an agent binary that says it has none is refused), then
//! packs them with what `dist/` holds: `install.sh`, the systemd units and
//! the default `/etc/keel/*.yaml`. Layout of the tarball:
//!
//! ```text
//! keel-<version>-<arch>-linux/
//!   install.sh
//!   bin/keel-control bin/keel-agent bin/keelctl
//!   cni/keel                       (keel-cni, for /opt/cni/bin)
//!   systemd/keel-control.service systemd/keel-agent.service
//!   etc/keel/control.yaml etc/keel/agent.yaml
//! ```
//!
//! `--bin-dir DIR` packs the binaries already built in DIR instead of
//! building (tests use it so they never start a cargo build of their own).
//! The tarball is reproducible: sorted, owned by root, files dated 0.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

struct Options {
    /// Cargo profile name (`release`, `dev`).
    profile: String,
    out: PathBuf,
    /// Binaries already built (no build).
    bin_dir: Option<PathBuf>,
}

fn parse(args: &[&str]) -> Result<Options, String> {
    let mut o = Options {
        profile: "release".into(),
        out: target_dir().join("dist"),
        bin_dir: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match *a {
            "--profile" => {
                o.profile = it
                    .next()
                    .ok_or("--profile needs a name (release, dev)")?
                    .to_string()
            }
            "--debug" => o.profile = "dev".into(),
            "--out" => o.out = PathBuf::from(it.next().ok_or("--out needs a directory")?),
            "--bin-dir" => {
                o.bin_dir = Some(PathBuf::from(
                    it.next().ok_or("--bin-dir needs a directory")?,
                ))
            }
            other => {
                return Err(format!(
                    "dist: unknown argument {other:?} (expected --profile NAME, --debug, --out DIR, --bin-dir DIR)"
                ));
            }
        }
    }
    Ok(o)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::root().join("target"))
}

/// Where cargo puts a profile's binaries (`dev` builds into `debug`).
fn profile_dir(profile: &str) -> PathBuf {
    target_dir().join(match profile {
        "dev" | "test" => "debug",
        "bench" => "release",
        p => p,
    })
}

pub fn run(args: &[&str]) -> Result<(), String> {
    let o = parse(args)?;
    let bins = build(&o)?;
    let tarball = pack(&bins, &o.out)?;
    println!("{}", tarball.display());
    Ok(())
}

/// `cargo xtask image` (image.rs), with the same options.
pub fn image(args: &[&str]) -> Result<(), String> {
    let o = parse(args)?;
    let bins = build(&o)?;
    let archive = crate::image::build(&bins, &o.out)?;
    println!("{}", archive.display());
    Ok(())
}

/// Builds the binaries (unless `--bin-dir`); returns where they are.
fn build(o: &Options) -> Result<PathBuf, String> {
    if o.bin_dir.is_none() {
        crate::setup::run()?;
        crate::run(
            "cargo",
            &[
                "build",
                "--profile",
                &o.profile,
                "-p",
                "keel-control",
                "-p",
                "keel-agent",
                "-p",
                "keel-cni",
                "-p",
                "keelctl",
                "--bins",
            ],
        )?;
    }
    Ok(o.bin_dir.clone().unwrap_or_else(|| profile_dir(&o.profile)))
}

/// Refuses an agent that embeds no BPF programs (its `--version` says).
pub(crate) fn check_agent(agent: &Path) -> Result<(), String> {
    let out = Command::new(agent)
        .arg("--version")
        .output()
        .map_err(|e| format!("running {} --version: {e}", agent.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("BPF programs:"))
        .unwrap_or("BPF programs: not reported");
    if !out.status.success() || !line.starts_with("BPF programs: embedded") {
        return Err(format!(
            "{} has no BPF programs embedded ({line}): install the BPF toolchain (`cargo xtask setup`) and build again; dist ships no agent without its load balancer",
            agent.display()
        ));
    }
    Ok(())
}

fn copy(from: &Path, to: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = to.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    fs::copy(from, to)
        .map_err(|e| format!("copying {} to {}: {e}", from.display(), to.display()))?;
    fs::set_permissions(to, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {}: {e}", to.display()))
}

/// Stages the release directory under `out` and packs it; returns the tarball.
fn pack(bins: &Path, out: &Path) -> Result<PathBuf, String> {
    let name = format!(
        "keel-{}-{}-linux",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    );
    let bin = |b: &str| -> Result<PathBuf, String> {
        let p = bins.join(b);
        if p.is_file() {
            Ok(p)
        } else {
            Err(format!("{} is missing (build it first)", p.display()))
        }
    };
    let agent = bin("keel-agent")?;
    check_agent(&agent)?;
    let stage = out.join(&name);
    if stage.exists() {
        fs::remove_dir_all(&stage).map_err(|e| format!("removing {}: {e}", stage.display()))?;
    }
    for b in ["keel-control", "keel-agent", "keelctl"] {
        copy(&bin(b)?, &stage.join("bin").join(b), 0o755)?;
    }
    copy(&bin("keel-cni")?, &stage.join("cni/keel"), 0o755)?;
    let src = crate::root().join("dist");
    copy(&src.join("install.sh"), &stage.join("install.sh"), 0o755)?;
    for f in [
        "systemd/keel-control.service",
        "systemd/keel-agent.service",
        "etc/keel/control.yaml",
        "etc/keel/agent.yaml",
    ] {
        copy(&src.join(f), &stage.join(f), 0o644)?;
    }
    let tarball = out.join(format!("{name}.tar.gz"));
    let status = Command::new("tar")
        .args([
            "--sort=name",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "--mtime=@0",
            "-czf",
        ])
        .arg(&tarball)
        .arg("-C")
        .arg(out)
        .arg(&name)
        .status()
        .map_err(|e| format!("running tar: {e}"))?;
    if !status.success() {
        return Err(format!("tar {} failed: {status}", tarball.display()));
    }
    fs::remove_dir_all(&stage).map_err(|e| format!("removing {}: {e}", stage.display()))?;
    Ok(tarball)
}
