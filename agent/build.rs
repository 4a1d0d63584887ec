//! Builds keel's BPF programs (ebpf/programs) with their pinned nightly and
//! bpf-linker, and leaves the object in OUT_DIR for `include_bytes_aligned!`.
//!
//! Without the BPF toolchain the agent still builds (so `cargo build`/`test`
//! of the workspace never needs it) and embeds an empty object: the load
//! balancer then fails at start with a message saying how to fix it.
//! `KEEL_REQUIRE_BPF=1` (set by `cargo xtask test` and CI) turns a missing
//! toolchain into a build error so no test can be skipped by accident.

use std::{
    env, fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, anyhow};

/// The BPF package, and the name of its load-balancer object (a bin).
const PROGRAMS: &str = "keel-ebpf";
/// Its host-routing object (the package's other bin).
const NET_PROGRAMS: &str = "keel-net";

fn main() -> anyhow::Result<()> {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest.parent().context("agent has a parent folder")?;
    let programs = root.join("ebpf/programs");
    let out = PathBuf::from(env::var("OUT_DIR")?).join(PROGRAMS);
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
        fs::write(&out, [])?;
        fs::write(out.with_file_name(NET_PROGRAMS), [])?;
        // A path that does not exist makes cargo rerun this script on every
        // build, so installing the toolchain later is picked up.
        println!(
            "cargo:rerun-if-changed={}",
            out.with_extension("toolchain-missing").display()
        );
        return Ok(());
    }
    let programs_dir = programs
        .to_str()
        .context("ebpf/programs path is not UTF-8")?;
    aya_build::build_ebpf(
        [aya_build::Package {
            name: PROGRAMS,
            root_dir: programs_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::Custom(&toolchain),
    )
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
