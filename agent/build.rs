//! Builds keel's BPF programs (ebpf/programs) with their pinned nightly and
//! bpf-linker, and leaves the objects in OUT_DIR for `include_bytes_aligned!`.
//!
//! Without the BPF toolchain the agent still builds (so `cargo build`/`test`
//! of the workspace never needs it) and embeds empty objects: the load
//! balancer then fails at start with a message saying how to fix it.
//! `KEEL_REQUIRE_BPF=1` (set by `cargo xtask test` and CI) turns a missing
//! toolchain into a build error so no test can be skipped by accident.
//!
//! The nested cargo build's output is kept to itself unless it fails:
//! cargo replays a build script's warnings on every later build, so
//! forwarding the nested build's progress would greet every `cargo build`
//! with thirty warnings that are not.

use std::{
    env, fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, anyhow, bail};

/// The BPF package; its bins are the objects.
const PACKAGE: &str = "keel-ebpf";
/// The objects (bins of [`PACKAGE`]): load balancer, host routing, and the
/// pipeline self-test.
const OBJECTS: [&str; 3] = ["keel-ebpf", "keel-net", "keel-probe"];

fn main() -> anyhow::Result<()> {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest.parent().context("agent has a parent folder")?;
    let programs = root.join("ebpf/programs");
    let out = PathBuf::from(env::var("OUT_DIR")?);
    for var in ["KEEL_REQUIRE_BPF", "KEEL_SKIP_BPF"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!(
        "cargo:rerun-if-changed={}",
        root.join("ebpf/common/src").display()
    );
    println!("cargo:rerun-if-changed={}", programs.display());

    let toolchain = pinned_toolchain(&programs)?;
    let missing = if env::var_os("KEEL_SKIP_BPF").is_some_and(|v| v == "1") {
        Some("KEEL_SKIP_BPF=1".to_string())
    } else {
        missing_toolchain(&toolchain)
    };
    if let Some(why) = missing {
        if env::var_os("KEEL_REQUIRE_BPF").is_some_and(|v| v == "1") {
            return Err(anyhow!(
                "KEEL_REQUIRE_BPF=1 but the BPF toolchain is not usable ({why}); run `cargo xtask setup`"
            ));
        }
        println!(
            "cargo:warning=building keel-agent without BPF programs ({why}); run `cargo xtask setup` for the load balancer"
        );
        for o in OBJECTS {
            fs::write(out.join(o), [])?;
        }
        // `keel-agent --version` says so; `cargo xtask dist` refuses it.
        println!("cargo:rustc-env=KEEL_BPF_OBJECTS=missing");
        // A path that does not exist makes cargo rerun this script on every
        // build, so installing the toolchain later is picked up.
        println!(
            "cargo:rerun-if-changed={}",
            out.join("toolchain-missing").display()
        );
        return Ok(());
    }
    build(&programs, &toolchain, &out)
}

/// `cargo build` of the BPF package for the BPF target, quietly; on failure
/// its output becomes the error.
fn build(programs: &Path, toolchain: &str, out: &Path) -> anyhow::Result<()> {
    let endian = env::var("CARGO_CFG_TARGET_ENDIAN")?;
    let target = match endian.as_str() {
        "little" => "bpfel-unknown-none",
        "big" => "bpfeb-unknown-none",
        e => bail!("unsupported endianness {e}"),
    };
    let arch = env::var("CARGO_CFG_TARGET_ARCH")?;
    // aya's bpf_target_arch names (its `target_arch_fixup`).
    let arch = match arch.as_str() {
        a if a.starts_with("riscv64") => "riscv64",
        a => a,
    };
    // Separate from OUT_DIR's objects, and from the workspace's own target
    // dir (cargo would wait on its own lock).
    let target_dir = out.join("bpf-target");
    let rustflags = [
        format!("--cfg=bpf_target_arch=\"{arch}\""),
        "-Cdebuginfo=2".into(),
        "-Clink-arg=--btf".into(),
    ]
    .join("\x1f");
    let output = Command::new("rustup")
        .args(["run", toolchain, "cargo", "build", "--package", PACKAGE])
        .args(["--bins", "--release", "--message-format=json"])
        .args(["--target", target, "-Z", "build-std=core"])
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(programs)
        .env("CARGO_ENCODED_RUSTFLAGS", rustflags)
        .env_remove("RUSTC")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .context("running cargo for the BPF programs")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let rendered: Vec<String> = stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|m| m["message"]["rendered"].as_str().map(str::to_owned))
            .collect();
        bail!(
            "building the BPF programs failed ({}):\n{}\n{}",
            output.status,
            rendered.join("\n"),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let mut found = Vec::new();
    for line in stdout.lines() {
        let Ok(m) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if m["reason"] == "compiler-artifact"
            && let (Some(name), Some(exe)) =
                (m["target"]["name"].as_str(), m["executable"].as_str())
        {
            fs::copy(exe, out.join(name))
                .with_context(|| format!("copying the BPF object {exe}"))?;
            found.push(name.to_string());
        }
    }
    let mut sizes = Vec::new();
    for o in OBJECTS {
        if !found.iter().any(|f| f == o) {
            bail!("the BPF build made no {o} object (made: {found:?})");
        }
        let size = fs::metadata(out.join(o))?.len();
        if size == 0 {
            bail!("the BPF build made an empty {o} object");
        }
        sizes.push(format!("{o} {size} bytes"));
    }
    // `keel-agent --version` says what it embeds; `cargo xtask dist` checks.
    println!(
        "cargo:rustc-env=KEEL_BPF_OBJECTS=embedded ({})",
        sizes.join(", ")
    );
    Ok(())
}

/// The `channel` of ebpf/programs/rust-toolchain.toml, the one place it is pinned.
fn pinned_toolchain(programs: &Path) -> anyhow::Result<String> {
    let text = fs::read_to_string(programs.join("rust-toolchain.toml"))?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("channel"))
        .filter_map(|rest| rest.split('"').nth(1))
        .next()
        .map(str::to_owned)
        .context("ebpf/programs/rust-toolchain.toml has no channel")
}

/// Why the BPF toolchain cannot be used, or None when it can.
fn missing_toolchain(toolchain: &str) -> Option<String> {
    let found = |bin: &str| {
        env::var_os("PATH").is_some_and(|p| env::split_paths(&p).any(|d| d.join(bin).is_file()))
    };
    if !found("bpf-linker") {
        return Some("bpf-linker is not on PATH".into());
    }
    if !found("rustup") {
        return Some("rustup is not on PATH".into());
    }
    let sysroot = match Command::new("rustup")
        .args(["run", toolchain, "rustc", "--print", "sysroot"])
        .output()
    {
        Ok(out) if out.status.success() => out,
        _ => return Some(format!("toolchain {toolchain} is not installed")),
    };
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if !sysroot.join("lib/rustlib/src/rust/library/core").is_dir() {
        return Some(format!("toolchain {toolchain} has no rust-src component"));
    }
    None
}
