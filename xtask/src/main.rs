//! Developer tasks, run as `cargo xtask <task>`:
//!
//!   setup        install everything keel needs on Debian bookworm (idempotent, seconds when done)
//!   test         setup, then fmt check, clippy -D warnings and every test (what CI runs)
//!   demo         setup, then keel's main job (see README)
//!   bench SUITE  setup, then run a benchmark suite and print its table
//!   fuzz [T] [--seconds N]  setup, then build the fuzz targets (fuzz/) and run each (or T) N s (default 60)
//!   sweep [P]    remove leftovers of tests and labs by name prefix (default "keel")
//!   dist         the release tarball target/dist/keel-<version>-<arch>-linux.tar.gz (see dist.rs)
//!   image        the OCI image of keel-agent + keel-cni, target/dist/keel-agent-<version>-oci.tar (image.rs)
//!
//! Pure Rust dependencies only (std and serde_json): this crate must build
//! on a machine where nothing else is installed yet, since it installs the rest.

mod dist;
mod fuzz;
mod image;
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
        Some("fuzz") => setup::run().and_then(|()| fuzz::run(&rest())),
        Some("sweep") => sweep(&rest()),
        Some("dist") => dist::run(&rest()),
        Some("image") => dist::image(&rest()),
        _ => Err(
            "usage: cargo xtask setup | test | demo | bench SUITE | fuzz [TARGET] [--seconds N] | sweep [PREFIX] | dist|image [--profile P] [--out DIR]"
                .to_string(),
        ),
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
    // Every fuzz target briefly (10 targets x 8 s), built unoptimized to
    // keep CI's cold build short: a crash fails CI. `cargo xtask fuzz`
    // runs optimized builds longer.
    fuzz::run(&["--seconds", "8", "--dev"])?;
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

/// keel's main job on one machine: a multi-node lab cluster in network
/// namespaces (control plane, three nodes on two L2 segments joined by a
/// router), the example pods and Services deployed, pod-to-pod traffic
/// across nodes shown; the lab stays up for the user to look around.
fn demo(_extra: &[&str]) -> Result<(), String> {
    run("cargo", &["build", "--release", "--bins"])?;
    let bin = root().join("target/release");
    let keelctl = |args: &[&str]| -> Result<String, String> {
        eprintln!("\n$ keelctl {}", args.join(" "));
        let out = Command::new(bin.join("keelctl"))
            .args(args)
            .current_dir(root())
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(|e| format!("keelctl: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        print!("{text}");
        if out.status.success() {
            Ok(text)
        } else {
            Err(format!("keelctl {} failed", args.join(" ")))
        }
    };
    // A lab left by an earlier demo is replaced.
    let _ = Command::new(bin.join("keelctl"))
        .args(["lab", "down", "demo"])
        .output();
    keelctl(&[
        "lab",
        "up",
        "--name",
        "demo",
        "--nodes",
        "3",
        "--mode",
        "auto",
        "--segments",
        "2",
    ])?;
    keelctl(&["--lab", "demo", "apply", "-f", "examples/"])?;
    // Wait (bounded) until every pod is Ready: images pulled from the lab's
    // registry, containers started, readiness probes passed.
    eprintln!("\nwaiting for the pods to be Ready…");
    let get_json = |args: &[&str]| -> serde_json::Value {
        Command::new(bin.join("keelctl"))
            .args(["--lab", "demo"])
            .args(args)
            .args(["-o", "json"])
            .output()
            .ok()
            .and_then(|o| serde_json::from_slice(&o.stdout).ok())
            .unwrap_or_default()
    };
    let ready = |p: &serde_json::Value| {
        p["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    let pods = loop {
        let pods = get_json(&["get", "pods"]);
        let items = pods["items"].as_array().cloned().unwrap_or_default();
        if items.len() >= 4 && items.iter().all(ready) {
            break pods;
        }
        if std::time::Instant::now() > deadline {
            keelctl(&["--lab", "demo", "get", "pods", "-o", "wide"])?;
            return Err("the example pods were not Ready within 180 s (see keelctl --lab demo describe pod NAME, and the agents' logs in /run/keel-lab/demo)".into());
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    keelctl(&["--lab", "demo", "get", "nodes", "-o", "wide"])?;
    keelctl(&["--lab", "demo", "get", "pods", "-o", "wide"])?;
    keelctl(&["--lab", "demo", "get", "services"])?;
    keelctl(&["--lab", "demo", "get", "endpoints"])?;
    // Pod-to-pod across nodes: from the client pod to every web pod.
    let items = pods["items"].as_array().cloned().unwrap_or_default();
    let client_node = items
        .iter()
        .find(|p| p["metadata"]["name"] == "client")
        .and_then(|p| p["spec"]["nodeName"].as_str())
        .unwrap_or("")
        .to_string();
    for p in items
        .iter()
        .filter(|p| p["metadata"]["labels"]["app"] == "web")
    {
        let (ip, node) = (
            p["status"]["podIP"].as_str().unwrap_or(""),
            p["spec"]["nodeName"].as_str().unwrap_or(""),
        );
        let where_ = if node == client_node {
            "same node"
        } else {
            "another node"
        };
        eprintln!(
            "\n# client ({client_node}) → {} ({node}, {where_})",
            p["metadata"]["name"].as_str().unwrap_or("")
        );
        keelctl(&[
            "lab", "run", "demo", "client", "--", "ping", "-c", "2", "-W", "2", ip,
        ])?;
    }
    // The Service: by name from inside the client container (cluster DNS
    // answers with the ClusterIP), balanced
    // by the eBPF socket programs over the three replicas (each answers with
    // its pod name); the NodePort from outside the cluster, through each node.
    // (No `wget -T`: Debian's static busybox 1.35 crashes on it.)
    let svc = get_json(&["get", "service", "web"]);
    let vip = svc["spec"]["clusterIP"].as_str().unwrap_or("").to_string();
    eprintln!(
        "\n# the client container → Service web ({vip}:80) by its name, which the node's cluster DNS resolves: six requests"
    );
    for _ in 0..6 {
        keelctl(&[
            "--lab",
            "demo",
            "exec",
            "client",
            "--",
            "wget",
            "-qO-",
            "http://web/",
        ])?;
    }
    let nodes = get_json(&["get", "nodes"]);
    for n in nodes["items"].as_array().cloned().unwrap_or_default() {
        let name = n["metadata"]["name"].as_str().unwrap_or("").to_string();
        let ip = n["status"]["addresses"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["type"] == "InternalIP"))
            .and_then(|a| a["address"].as_str())
            .unwrap_or("")
            .to_string();
        eprintln!("\n# outside the cluster (ext) → NodePort {ip}:30080 on {name}");
        keelctl(&[
            "lab",
            "run",
            "demo",
            "ext",
            "--",
            "busybox",
            "wget",
            "-qO-",
            &format!("http://{ip}:30080/"),
        ])?;
    }
    println!(
        "\nThe lab \"demo\" is up: keel-control and three keel-agents in network namespaces (see `keelctl lab status demo`).\n\
         Look around:\n  target/release/keelctl --lab demo get pods -o wide\n  target/release/keelctl --lab demo logs POD (names from get pods)\n  target/release/keelctl --lab demo exec client -- wget -qO- http://web/ (or http://{vip}/)\n  target/release/keelctl --lab demo lb dump --node node-1\n  target/release/keelctl --lab demo net dump --node node-1 (BPF host routing: pods, links, counters)\n  target/release/keelctl lab run demo node-1 -- ip route\n  target/release/keelctl lab status demo -o json\n\
         Tear it down:\n  target/release/keelctl lab down demo"
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
