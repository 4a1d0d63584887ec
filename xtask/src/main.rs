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
    eprintln!("+ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(root())
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
    run(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
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
    let mut args = vec!["test", "--workspace"];
    args.extend_from_slice(extra);
    run("cargo", &args)
}

fn demo(extra: &[&str]) -> Result<(), String> {
    run("cargo", &["build", "--release", "--bins"])?;
    let mut args = vec!["--release".to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    let script = root().join("scripts/demo.sh");
    let status = Command::new("bash")
        .arg(&script)
        .args(&args)
        .current_dir(root())
        .status()
        .map_err(|e| format!("running {}: {e}", script.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("demo failed: {status}"))
    }
}

fn bench(extra: &[&str]) -> Result<(), String> {
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
