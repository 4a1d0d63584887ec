//! `cargo xtask setup`: installs what keel needs on Debian bookworm, checking
//! each piece first so a second run takes seconds.

use std::{env, path::PathBuf, process::Command};

/// Debian packages: build dependencies of keel's crates, the BPF linker's
/// LLVM, and the real tools the tests and benchmarks run against.
const APT_PACKAGES: &[&str] = &[
    // building: libcontainer needs libseccomp, containerd-client protoc,
    // bpf-linker LLVM 22.
    "pkg-config",
    "libseccomp-dev",
    "protobuf-compiler",
    "llvm-22-dev",
    "libpolly-22-dev",
    "zlib1g-dev",
    "libzstd-dev",
    // running and testing: namespaces, routes, the reference CNI plugins,
    // other runtimes and registries to compare against and pull from.
    "iproute2",
    "iputils-ping",
    "nftables",
    "iptables",
    "containernetworking-plugins",
    "containerd",
    "runc",
    "crun",
    "skopeo",
    "umoci",
    "docker-registry",
    "busybox-static",
    // `promtool check metrics` lints keel's metrics expositions in tests
    "prometheus",
    // the cluster DNS lab test's upstream resolver
    "dnsmasq-base",
    // `cargo xtask bench dns` (and taskset, from util-linux, pins its servers)
    "dnsperf",
    "iperf3",
    "sockperf",
    "hyperfine",
    // keel-control's etcd backend (issue 15) is tested against Debian's etcd
    // 3.4 (`/usr/bin/etcd`; the package's systemd unit is never started).
    "etcd-server",
    // keel-cni's runtime test: podman 4.3 with its CNI backend (conmon comes
    // with it).
    "podman",
    // keel-control's client test: the Python Kubernetes client (kubectl
    // itself comes with the machine image).
    "python3-kubernetes",
    // The dist test verifies keel's units with `systemd-analyze verify`
    // (no systemd needs to run).
    "systemd",
    // ...and lints install.sh.
    "shellcheck",
];

/// bpf-linker, built against Debian's LLVM 22 (the LLVM of the pinned nightly).
const BPF_LINKER_VERSION: &str = "0.13.0";

/// cargo-fuzz, which builds the libFuzzer targets in fuzz/ (`cargo xtask fuzz`).
const CARGO_FUZZ_VERSION: &str = "0.13.2";

pub fn run() -> Result<(), String> {
    apt()?;
    nightly()?;
    bpf_linker()?;
    cargo_fuzz()?;
    eprintln!("setup: everything is in place");
    Ok(())
}

/// PATH with ~/.cargo/bin, where rustup and `cargo install` put binaries.
pub fn path_with_cargo_bin() -> String {
    let path = env::var("PATH").unwrap_or_default();
    let bin = cargo_home().join("bin");
    if env::split_paths(&path).any(|p| p == bin) {
        path
    } else {
        format!("{}:{path}", bin.display())
    }
}

fn cargo_home() -> PathBuf {
    env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env::var("HOME").unwrap_or_else(|_| "/root".into())).join(".cargo")
        })
}

fn apt() -> Result<(), String> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .copied()
        .filter(|pkg| {
            let out = Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", pkg])
                .output();
            !out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("setup: installing Debian packages: {}", missing.join(" "));
    let sudo = if is_root() { vec![] } else { vec!["sudo"] };
    let apt = |args: &[&str]| -> Result<(), String> {
        let mut all: Vec<&str> = sudo.clone();
        all.push("apt-get");
        all.extend_from_slice(args);
        let status = Command::new(all[0])
            .args(&all[1..])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| format!("apt-get: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("apt-get {} failed: {status}", args.join(" ")))
        }
    };
    apt(&["update", "-q"])?;
    let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
    args.extend(missing);
    apt(&args)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The nightly pinned in ebpf/programs/rust-toolchain.toml, with rust-src
/// (to build core for the BPF target) and clippy (to lint the programs).
fn nightly() -> Result<(), String> {
    let file = crate::root().join("ebpf/programs/rust-toolchain.toml");
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    let toolchain = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("channel"))
        .find_map(|rest| rest.split('"').nth(1))
        .ok_or_else(|| format!("{} has no channel", file.display()))?
        .to_string();
    let sysroot = Command::new("rustup")
        .args(["run", &toolchain, "rustc", "--print", "sysroot"])
        .env("PATH", path_with_cargo_bin())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let has_clippy = Command::new("rustup")
        .args(["run", &toolchain, "cargo-clippy", "--version"])
        .env("PATH", path_with_cargo_bin())
        .output()
        .is_ok_and(|o| o.status.success());
    if has_clippy && sysroot.is_some_and(|s| s.join("lib/rustlib/src/rust/library/core").is_dir()) {
        return Ok(());
    }
    eprintln!("setup: installing Rust {toolchain} with rust-src and clippy (for the BPF programs)");
    let status = Command::new("rustup")
        .args([
            "toolchain",
            "install",
            &toolchain,
            "--profile",
            "minimal",
            "--component",
            "rust-src",
            "--component",
            "clippy",
        ])
        .env("PATH", path_with_cargo_bin())
        .status()
        .map_err(|e| format!("rustup: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("rustup toolchain install {toolchain} failed"))
    }
}

fn bpf_linker() -> Result<(), String> {
    let bin = cargo_home().join("bin/bpf-linker");
    let have = Command::new(&bin)
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(BPF_LINKER_VERSION));
    if have {
        return Ok(());
    }
    eprintln!("setup: building bpf-linker {BPF_LINKER_VERSION} against LLVM 22 (about a minute)");
    // Built outside the workspace so its toolchain file does not apply.
    let status = Command::new("cargo")
        .args([
            "install",
            &format!("bpf-linker@{BPF_LINKER_VERSION}"),
            "--locked",
            "--no-default-features",
            "--features",
            "llvm-22",
        ])
        .current_dir(env::temp_dir())
        .env("LLVM_PREFIX", "/usr/lib/llvm-22")
        .env("PATH", path_with_cargo_bin())
        .status()
        .map_err(|e| format!("cargo install bpf-linker: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err("cargo install bpf-linker failed".into())
    }
}

fn cargo_fuzz() -> Result<(), String> {
    let have = Command::new(cargo_home().join("bin/cargo-fuzz"))
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(CARGO_FUZZ_VERSION));
    if have {
        return Ok(());
    }
    eprintln!("setup: installing cargo-fuzz {CARGO_FUZZ_VERSION}");
    // Outside the workspace so its toolchain file does not apply.
    let status = Command::new("cargo")
        .args([
            "install",
            &format!("cargo-fuzz@{CARGO_FUZZ_VERSION}"),
            "--locked",
        ])
        .current_dir(env::temp_dir())
        .env("PATH", path_with_cargo_bin())
        .status()
        .map_err(|e| format!("cargo install cargo-fuzz: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err("cargo install cargo-fuzz failed".into())
    }
}
