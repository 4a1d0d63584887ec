//! `cargo xtask image`: the OCI image of keel-agent + keel-cni, for the
//! DaemonSet-style deployment (a privileged container with the host's
//! network and PID namespaces).
//!
//! ```text
//! cargo xtask image [--profile release|dev | --debug] [--out DIR] [--bin-dir DIR]
//! ```
//!
//! Made without network and without a base image, with umoci: the image is
//! the binaries and the shared libraries they load (found with `ldd`),
//! nothing else. `keel-agent` is the entrypoint (`/usr/local/bin`), keel's
//! CNI plugin is `/opt/cni/bin/keel`. Written as an OCI layout,
//! `DIR/keel-agent-<version>-oci/` (tag `<version>`), and the same as an
//! OCI archive, `DIR/keel-agent-<version>-oci.tar`, which podman runs as
//! `oci-archive:PATH` and containerd imports with `ctr image import`.
//! The agent is checked as for `dist`: no image without its BPF programs.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

fn sh(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("running {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The shared objects `bin` loads (absolute paths, the loader included).
fn libraries(bin: &Path) -> Result<Vec<PathBuf>, String> {
    let out = sh(Command::new("ldd").arg(bin))?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = match l.split_once(" => ") {
                Some((_, rest)) => rest.split_whitespace().next()?,
                None => l.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect())
}

fn copy_into(rootfs: &Path, from: &Path, to: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let dst = rootfs.join(to.strip_prefix("/").unwrap_or(to));
    if let Some(d) = dst.parent() {
        fs::create_dir_all(d).map_err(|e| format!("creating {}: {e}", d.display()))?;
    }
    // fs::copy follows symlinks: the image gets the files themselves.
    fs::copy(from, &dst).map_err(|e| format!("copying {}: {e}", from.display()))?;
    fs::set_permissions(&dst, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {}: {e}", dst.display()))
}

/// Builds the layout and the archive under `out`; returns the archive.
pub fn build(bins: &Path, out: &Path) -> Result<PathBuf, String> {
    let agent = bins.join("keel-agent");
    let cni = bins.join("keel-cni");
    for b in [&agent, &cni] {
        if !b.is_file() {
            return Err(format!("{} is missing (build it first)", b.display()));
        }
    }
    crate::dist::check_agent(&agent)?;
    let version = env!("CARGO_PKG_VERSION");
    let name = format!("keel-agent-{version}-oci");
    let layout = out.join(&name);
    let bundle = out.join(format!("{name}.bundle"));
    for d in [&layout, &bundle] {
        if d.exists() {
            fs::remove_dir_all(d).map_err(|e| format!("removing {}: {e}", d.display()))?;
        }
    }
    fs::create_dir_all(out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    let image = format!("{}:{version}", layout.display());
    sh(Command::new("umoci")
        .args(["init", "--layout"])
        .arg(&layout))?;
    sh(Command::new("umoci").args(["new", "--image", &image]))?;
    sh(Command::new("umoci")
        .args(["unpack", "--image", &image])
        .arg(&bundle))?;
    let rootfs = bundle.join("rootfs");
    copy_into(
        &rootfs,
        &agent,
        Path::new("/usr/local/bin/keel-agent"),
        0o755,
    )?;
    copy_into(&rootfs, &cni, Path::new("/opt/cni/bin/keel"), 0o755)?;
    let mut libs = libraries(&agent)?;
    libs.extend(libraries(&cni)?);
    libs.sort();
    libs.dedup();
    for lib in &libs {
        copy_into(&rootfs, lib, lib, 0o755)?;
    }
    for d in ["tmp", "var/lib/keel", "etc/keel", "run", "sys", "proc"] {
        fs::create_dir_all(rootfs.join(d)).map_err(|e| format!("creating {d}: {e}"))?;
    }
    sh(Command::new("umoci")
        .args(["repack", "--image", &image])
        .arg(&bundle))?;
    sh(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--config.entrypoint",
        "/usr/local/bin/keel-agent",
        "--config.env",
        "PATH=/usr/local/bin:/usr/bin:/bin",
        "--os",
        "linux",
        "--architecture",
        match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            a => a,
        },
        "--author",
        "keel",
    ]))?;
    sh(Command::new("umoci").args(["gc", "--layout"]).arg(&layout))?;
    fs::remove_dir_all(&bundle).map_err(|e| format!("removing {}: {e}", bundle.display()))?;
    let archive = out.join(format!("{name}.tar"));
    sh(Command::new("tar")
        .args([
            "--sort=name",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "-cf",
        ])
        .arg(&archive)
        .arg("-C")
        .arg(&layout)
        .arg("."))?;
    Ok(archive)
}
