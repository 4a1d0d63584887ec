//! `cargo xtask fuzz [TARGET] [--seconds N]`: builds keel's libFuzzer
//! targets (fuzz/, a cargo-fuzz workspace on the pinned nightly) and runs
//! each for N seconds, then prints executions and crashes per target as a
//! table and one JSON line. A crash fails the task; its input is kept in
//! fuzz/artifacts/TARGET/ and libFuzzer's log in target/fuzz/TARGET.log.
//!
//! Each run starts from the committed seeds (fuzz/corpus/TARGET, never
//! written) plus what earlier runs on this machine found
//! (target/fuzz/corpus/TARGET, where libFuzzer writes new inputs).

use std::{
    fs,
    path::Path,
    process::{Command, Stdio},
    time::Instant,
};

/// Seconds per target when none are given.
pub const DEFAULT_SECONDS: u64 = 60;

struct Outcome {
    target: String,
    seconds: u64,
    executions: u64,
    crashed: bool,
    crash_input: Option<String>,
}

pub fn run(args: &[&str]) -> Result<(), String> {
    let mut seconds = DEFAULT_SECONDS;
    let mut only = None;
    let mut dev = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match *a {
            "--seconds" => {
                seconds = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .filter(|s| *s > 0)
                    .ok_or("--seconds: expected a positive number of seconds")?;
            }
            // Unoptimized: a third of the cold build, fewer executions a
            // second (what `cargo xtask test` uses for its short runs).
            "--dev" => dev = true,
            t if !t.starts_with('-') && only.is_none() => only = Some(t.to_string()),
            other => {
                return Err(format!(
                    "fuzz: unexpected argument {other:?} (usage: cargo xtask fuzz [TARGET] [--seconds N] [--dev])"
                ));
            }
        }
    }
    let root = crate::root();
    let all = targets(&root)?;
    let chosen: Vec<String> = match only {
        Some(t) if all.contains(&t) => vec![t],
        Some(t) => {
            return Err(format!(
                "fuzz: no target {t:?} (targets: {})",
                all.join(", ")
            ));
        }
        None => all,
    };
    let toolchain = nightly(&root)?;
    let started = Instant::now();
    build(&toolchain, dev)?;
    eprintln!(
        "fuzz: targets built in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let mut outcomes = Vec::new();
    for t in &chosen {
        outcomes.push(run_target(&root, t, seconds, dev)?);
    }
    println!(
        "{:<18} {:>8} {:>12} {:>8}",
        "TARGET", "SECONDS", "EXECUTIONS", "CRASHES"
    );
    for o in &outcomes {
        println!(
            "{:<18} {:>8} {:>12} {:>8}",
            o.target,
            o.seconds,
            o.executions,
            u32::from(o.crashed)
        );
    }
    let json = serde_json::json!({
        "fuzz": outcomes.iter().map(|o| serde_json::json!({
            "target": o.target,
            "seconds": o.seconds,
            "executions": o.executions,
            "crashes": u32::from(o.crashed),
            "crash_input": o.crash_input,
        })).collect::<Vec<_>>(),
        "crashes": outcomes.iter().filter(|o| o.crashed).count(),
    });
    println!("{json}");
    let crashed: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.crashed)
        .map(|o| o.target.as_str())
        .collect();
    if crashed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "fuzz: crash in {} (inputs in fuzz/artifacts/, logs in target/fuzz/)",
            crashed.join(", ")
        ))
    }
}

/// The targets declared in fuzz/Cargo.toml (`[[bin]] name = "…"`).
fn targets(root: &Path) -> Result<Vec<String>, String> {
    let manifest = root.join("fuzz/Cargo.toml");
    let text = fs::read_to_string(&manifest).map_err(|e| format!("{}: {e}", manifest.display()))?;
    let mut out = Vec::new();
    let mut in_bin = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if in_bin
            && let Some(rest) = line.strip_prefix("name")
            && let Some(name) = rest.split('"').nth(1)
        {
            out.push(name.to_string());
        }
    }
    if out.is_empty() {
        return Err(format!("{} declares no targets", manifest.display()));
    }
    Ok(out)
}

/// The nightly fuzz/rust-toolchain.toml pins.
pub fn nightly(root: &Path) -> Result<String, String> {
    let file = root.join("fuzz/rust-toolchain.toml");
    let text = fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("channel"))
        .find_map(|rest| rest.split('"').nth(1))
        .map(str::to_string)
        .ok_or_else(|| format!("{} has no channel", file.display()))
}

/// Release with debug assertions (overflow checks are findings too), no
/// sanitizer: keel's targets are safe Rust over libc calls, and the
/// address sanitizer would double the cold build.
fn build(toolchain: &str, dev: bool) -> Result<(), String> {
    let plus = format!("+{toolchain}");
    let mut args = vec![
        plus.as_str(),
        "fuzz",
        "build",
        "--fuzz-dir",
        "fuzz",
        "-s",
        "none",
        "--debug-assertions",
    ];
    if dev {
        args.push("--dev");
    }
    eprintln!("+ cargo {}", args.join(" "));
    let status = Command::new("cargo")
        .args(&args)
        .current_dir(crate::root())
        .env_remove("RUSTUP_TOOLCHAIN")
        // The parsers need no BPF object; the agent's build script skips it.
        .env("KEEL_SKIP_BPF", "1")
        .env_remove("KEEL_REQUIRE_BPF")
        .env("PATH", crate::setup::path_with_cargo_bin())
        .status()
        .map_err(|e| format!("cargo fuzz build: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo fuzz build failed: {status}"))
    }
}

fn run_target(root: &Path, target: &str, seconds: u64, dev: bool) -> Result<Outcome, String> {
    let bin = root
        .join("fuzz/target")
        .join(host_triple())
        .join(if dev { "debug" } else { "release" })
        .join(target);
    let work = root.join("target/fuzz");
    let corpus = work.join("corpus").join(target);
    let seeds = root.join("fuzz/corpus").join(target);
    let artifacts = root.join("fuzz/artifacts").join(target);
    for d in [&corpus, &artifacts] {
        fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let before: Vec<_> = list(&artifacts);
    let log_path = work.join(format!("{target}.log"));
    let log = fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    eprintln!("fuzz: {target} for {seconds} s");
    let mut cmd = Command::new(&bin);
    cmd.arg(&corpus);
    if seeds.is_dir() {
        cmd.arg(&seeds);
    }
    let status = cmd
        .args([
            format!("-max_total_time={seconds}"),
            format!("-artifact_prefix={}/", artifacts.display()),
            "-print_final_stats=1".into(),
            "-timeout=10".into(),
            "-rss_limit_mb=2048".into(),
            "-max_len=65536".into(),
        ])
        .stdout(Stdio::null())
        .stderr(log)
        .status()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let text = fs::read_to_string(&log_path).unwrap_or_default();
    let executions = text
        .lines()
        .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    let new: Vec<String> = list(&artifacts)
        .into_iter()
        .filter(|a| !before.contains(a))
        .collect();
    let crashed = !status.success() || !new.is_empty();
    if crashed {
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        eprintln!(
            "fuzz: {target} crashed ({status}); end of {}:",
            log_path.display()
        );
        for l in tail.iter().rev() {
            eprintln!("  {l}");
        }
    }
    Ok(Outcome {
        target: target.to_string(),
        seconds,
        executions,
        crashed,
        crash_input: new.first().cloned(),
    })
}

fn list(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.path().display().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn host_triple() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "aarch64-unknown-linux-gnu"
    } else {
        "x86_64-unknown-linux-gnu"
    }
}
