//! Developer tasks, run as `cargo xtask <task>`:
//!
//!   setup        install everything keel needs on Debian bookworm (idempotent, seconds when done)
//!   test         setup, then fmt check, clippy -D warnings and every test (what CI runs)
//!   demo         setup, then keel's main job (see README)
//!   bench SUITE  setup, then run a benchmark suite and print its table
//!   sweep [P]    remove leftovers of tests and labs by name prefix (default "keel")
//!
//! Only std here: this crate must build on a machine where nothing else is
//! installed yet, since it is what installs the rest.

mod setup;

use std::{
    env,
    path::PathBuf,
    process::{Command, ExitCode},
};

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let rest = || args.iter().skip(1).map(String::as_str).collect::<Vec<_>>();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup::run(),
        Some("test") => setup::run().and_then(|()| test(&rest())),
        Some("demo") => setup::run().and_then(|()| demo(&rest())),
        Some("bench") => setup::run().and_then(|()| bench(&rest())),
        Some("sweep") => sweep(&rest()),
        _ => {
            Err("usage: cargo xtask setup | test | demo | bench SUITE | sweep [PREFIX]".to_string())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Runs a command in the workspace root with the BPF toolchain required, so
/// nothing can silently build without the load balancer.
pub(crate) fn run(program: &str, args: &[&str]) -> Result<(), String> {
    run_in(".", program, args)
}

/// [`run`] in a folder of the workspace (its rust-toolchain.toml applies).
pub(crate) fn run_in(dir: &str, program: &str, args: &[&str]) -> Result<(), String> {
    eprintln!("+ (cd {dir}) {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(root().join(dir))
        // `cargo xtask` runs under the workspace's toolchain and rustup
        // passes it down; a folder with its own rust-toolchain.toml must
        // get that one instead.
        .env_remove("RUSTUP_TOOLCHAIN")
        .env("KEEL_REQUIRE_BPF", "1")
        .env("PATH", setup::path_with_cargo_bin())
        .status()
        .map_err(|e| format!("running {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{program} {} failed: {status}", args.join(" ")))
    }
}

fn test(extra: &[&str]) -> Result<(), String> {
    run("cargo", &["fmt", "--all", "--", "--check"])?;
    // Default members: everything but the BPF programs, which are linted
    // for their own target with their own toolchain next.
    run(
        "cargo",
        &["clippy", "--all-targets", "--", "-D", "warnings"],
    )?;
    run_in(
        "ebpf/programs",
        "cargo",
        &[
            "clippy",
            "--release",
            "--target",
            "bpfel-unknown-none",
            "-Z",
            "build-std=core",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    // Sweep leftovers of an earlier killed run before starting (tests only).
    run(
        "cargo",
        &[
            "run",
            "--quiet",
            "-p",
            "keel-tests",
            "--bin",
            "keel-sweep",
            "--",
            "keel-t",
        ],
    )?;
    // Integration tests run keel's real binaries.
    run("cargo", &["build", "--bins"])?;
    let mut args = vec!["test"];
    args.extend_from_slice(extra);
    run("cargo", &args)
}

/// keel's main job on one machine: keel-control on loopback with its
/// embedded store, the example manifests applied, and what it made shown.
fn demo(_extra: &[&str]) -> Result<(), String> {
    run("cargo", &["build", "--release", "--bins"])?;
    let dir = root().join(".keel/demo");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let bin = root().join("target/release");
    let pid_file = dir.join("control.pid");
    // Stop the previous demo's keel-control (only the one this task started).
    if let Ok(pid) = std::fs::read_to_string(&pid_file) {
        let pid = pid.trim();
        let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if cmdline.contains("keel-control") && cmdline.contains(".keel/demo") {
            let _ = Command::new("kill").arg(pid).status();
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    }
    let log = std::fs::File::create(dir.join("control.log")).map_err(|e| e.to_string())?;
    let control = Command::new(bin.join("keel-control"))
        .args(["--listen", "127.0.0.1:6443", "--data-dir"])
        .arg(dir.join("control"))
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("starting keel-control: {e}"))?;
    std::fs::write(&pid_file, control.id().to_string()).map_err(|e| e.to_string())?;
    let config = dir.join("control/client.json");
    for _ in 0..100 {
        if std::net::TcpStream::connect("127.0.0.1:6443").is_ok() && config.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let keelctl = |args: &[&str]| -> Result<(), String> {
        eprintln!("\n$ keelctl {}", args.join(" "));
        let status = Command::new(bin.join("keelctl"))
            .args(args)
            .env("KEEL_CONFIG", &config)
            .current_dir(root())
            .status()
            .map_err(|e| format!("keelctl: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("keelctl {} failed", args.join(" ")))
        }
    };
    keelctl(&["apply", "-f", "examples/"])?;
    std::thread::sleep(std::time::Duration::from_millis(300));
    keelctl(&["get", "deployments", "-o", "wide"])?;
    keelctl(&["get", "pods", "-o", "wide"])?;
    keelctl(&["get", "services"])?;
    keelctl(&["get", "endpoints"])?;
    println!(
        "\nkeel-control is running (pid {pid}) with its store in {dir}.\n\
         Look around:   export KEEL_CONFIG={config}; target/release/keelctl get pods -o wide\n\
         Stop it:       kill {pid}",
        pid = control.id(),
        dir = dir.join("control").display(),
        config = config.display(),
    );
    Ok(())
}

fn bench(extra: &[&str]) -> Result<(), String> {
    // Suites run keel's real binaries: build them all in release first.
    run("cargo", &["build", "--release", "--bins"])?;
    let mut args = vec![
        "run",
        "--release",
        "--quiet",
        "-p",
        "keel-tests",
        "--bin",
        "keel-bench",
        "--",
    ];
    args.extend_from_slice(extra);
    run("cargo", &args)
}

fn sweep(extra: &[&str]) -> Result<(), String> {
    let mut args = vec![
        "run",
        "--quiet",
        "-p",
        "keel-tests",
        "--bin",
        "keel-sweep",
        "--",
    ];
    args.extend_from_slice(extra);
    run("cargo", &args)
}
