//! The lab's images, built here rather than pulled (nothing off the machine
//! is reachable): Debian's static busybox, optionally keel-testbin with the
//! shared libraries it needs, written as an OCI image layout (one gzip
//! layer) that `skopeo` pushes into the lab's registry. The runtime tests
//! and benchmarks build their images the same way.

use std::{
    fs,
    os::unix::fs::{PermissionsExt, symlink},
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::Context;
use serde_json::json;
use sha2::{Digest, Sha256};

/// busybox applets linked into the images.
const APPLETS: &[&str] = &[
    "sh", "ls", "cat", "echo", "sleep", "touch", "true", "false", "id", "env", "ps", "kill",
    "hostname", "wget", "mkdir", "rm", "test", "pwd", "head", "nslookup", "tty", "stty",
];

/// What goes into an image.
pub struct ImageSpec {
    pub tag: String,
    pub with_testbin: bool,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
}

impl ImageSpec {
    /// busybox only, `sh` as the command.
    pub fn busybox(tag: &str) -> Self {
        Self {
            tag: tag.into(),
            with_testbin: false,
            entrypoint: vec![],
            cmd: vec!["/bin/sh".into()],
            env: vec!["PATH=/usr/local/bin:/usr/bin:/bin".into()],
            user: None,
            working_dir: None,
        }
    }

    /// busybox + keel-testbin, serving HTTP on 8080 by default.
    pub fn testbin(tag: &str) -> Self {
        Self {
            tag: tag.into(),
            with_testbin: true,
            entrypoint: vec!["/usr/local/bin/keel-testbin".into()],
            cmd: vec!["http-serve".into(), "--port".into(), "8080".into()],
            env: vec!["PATH=/usr/local/bin:/usr/bin:/bin".into()],
            user: None,
            working_dir: Some("/".into()),
        }
    }
}

/// Runs a command; its output, or an error with what it printed.
fn sh(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn sha256_bytes(b: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(b)))
}

fn sha256_file(p: &Path) -> anyhow::Result<String> {
    use std::io::Read;
    let mut f = fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", p.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex(&h.finalize())))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Copies `bin` and the shared libraries `ldd` lists into `root`, at the
/// same paths.
fn copy_with_libs(bin: &Path, dest_in_root: &str, root: &Path) -> anyhow::Result<()> {
    let dest = root.join(dest_in_root.trim_start_matches('/'));
    fs::create_dir_all(dest.parent().context("destination has a parent")?)?;
    fs::copy(bin, &dest).with_context(|| format!("copying {}", bin.display()))?;
    let ldd = sh(Command::new("ldd").arg(bin)).unwrap_or_default();
    for line in ldd.lines() {
        let Some(lib) = line
            .split_whitespace()
            .find(|w| w.starts_with('/'))
            .map(PathBuf::from)
        else {
            continue;
        };
        let d = root.join(lib.strip_prefix("/")?);
        fs::create_dir_all(d.parent().context("library has a parent")?)?;
        fs::copy(fs::canonicalize(&lib)?, &d)
            .with_context(|| format!("copying {}", lib.display()))?;
    }
    Ok(())
}

/// Builds an OCI image layout for `spec` under `dir` (one gzip layer) and
/// returns the layout path; `testbin` is the keel-testbin binary to put in.
pub fn build_layout(spec: &ImageSpec, dir: &Path, testbin: &Path) -> anyhow::Result<PathBuf> {
    let root = build_rootfs(spec, dir, testbin)?;
    pack_layout(spec, dir, &root)
}

/// Writes the image's root filesystem to `dir/rootfs` and returns it.
pub fn build_rootfs(spec: &ImageSpec, dir: &Path, testbin: &Path) -> anyhow::Result<PathBuf> {
    let root = dir.join("rootfs");
    for d in [
        "bin",
        "etc",
        "tmp",
        "usr/local/bin",
        "var",
        "root",
        "proc",
        "sys",
        "dev",
    ] {
        fs::create_dir_all(root.join(d))?;
    }
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777))?;
    fs::copy("/bin/busybox", root.join("bin/busybox"))
        .context("copying /bin/busybox (Debian's busybox-static)")?;
    for a in APPLETS {
        symlink("busybox", root.join("bin").join(a))?;
    }
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )?;
    fs::write(
        root.join("etc/group"),
        "root:x:0:\nwww:x:33:\nstaff:x:50:www\nnogroup:x:65534:\n",
    )?;
    if spec.with_testbin {
        copy_with_libs(testbin, "/usr/local/bin/keel-testbin", &root)?;
    }
    Ok(root)
}

fn pack_layout(spec: &ImageSpec, dir: &Path, root: &Path) -> anyhow::Result<PathBuf> {
    let layout = dir.join("layout");
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs)?;
    let tar = dir.join("layer.tar");
    sh(Command::new("tar")
        .args([
            "--numeric-owner",
            "--owner=0",
            "--group=0",
            "--sort=name",
            "-C",
        ])
        .arg(root)
        .arg("-cf")
        .arg(&tar)
        .arg("."))?;
    let diff_id = sha256_file(&tar)?;
    sh(Command::new("gzip").args(["-n", "-1", "-f"]).arg(&tar))?;
    let gz = dir.join("layer.tar.gz");
    let layer_digest = sha256_file(&gz)?;
    let layer_size = fs::metadata(&gz)?.len();
    fs::rename(&gz, blobs.join(&layer_digest[7..]))?;
    let mut cfg = json!({
        "Env": spec.env,
        "Cmd": spec.cmd,
    });
    if !spec.entrypoint.is_empty() {
        cfg["Entrypoint"] = json!(spec.entrypoint);
    }
    if let Some(u) = &spec.user {
        cfg["User"] = json!(u);
    }
    if let Some(w) = &spec.working_dir {
        cfg["WorkingDir"] = json!(w);
    }
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }))?;
    let config_digest = sha256_bytes(&config);
    fs::write(blobs.join(&config_digest[7..]), &config)?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest, "size": layer_size}],
    }))?;
    let manifest_digest = sha256_bytes(&manifest);
    fs::write(blobs.join(&manifest_digest[7..]), &manifest)?;
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": manifest.len(),
                "annotations": {"org.opencontainers.image.ref.name": spec.tag},
            }],
        }))?,
    )?;
    let _ = fs::remove_dir_all(root);
    Ok(layout)
}

/// The digest of the single manifest of a layout built by [`build_layout`].
pub fn layout_manifest_digest(layout: &Path) -> String {
    let idx: serde_json::Value = fs::read(layout.join("index.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    idx["manifests"][0]["digest"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}
