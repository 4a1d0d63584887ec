//! `keelctl lab`: build, inspect, enter and remove a multi-node keel
//! cluster made of network namespaces on this machine.

use std::{os::unix::process::CommandExt, process::ExitCode};

use clap::Subcommand;
use keel_lab::{Bins, ControlPlane, Lab, Mode, Options, Spec, State, Store};

#[derive(Subcommand, Debug)]
pub enum LabCommand {
    /// Build a lab and wait until every node is Ready.
    Up {
        #[arg(long, default_value = "demo")]
        name: String,
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// vxlan, route, vpc or auto.
        #[arg(long, default_value = "vxlan")]
        mode: Mode,
        /// L2 segments the nodes are spread over (joined by a router).
        #[arg(long, default_value_t = 1)]
        segments: usize,
        /// What runs the pods: `direct` (keel's runtime, images from the
        /// lab's registry as registry.keel.test/…) or `none` (pods are
        /// network sandboxes only).
        #[arg(long, default_value = "direct", value_parser = ["direct", "none"])]
        runtime: String,
        /// Leave Service load balancing off.
        #[arg(long)]
        no_lb: bool,
        /// keel-control replicas, each in its own namespace (more than one
        /// needs --store etcd); agents and keelctl fail over between them.
        #[arg(long, default_value_t = 1)]
        control_replicas: usize,
        /// keel-control's store: `redb` (one embedded file) or `etcd` (an
        /// etcd cluster of one member per replica, TLS with client
        /// certificates).
        #[arg(long, default_value = "redb")]
        store: Store,
        /// keel-control's leader lease on etcd: the controllers move to
        /// another replica within it (default: keel-control's own).
        #[arg(long, value_parser = humantime::parse_duration)]
        leader_lease_ttl: Option<std::time::Duration>,
    },
    /// Describe a lab: namespaces, addresses, processes, pods.
    Status {
        #[arg(default_value = "demo")]
        name: String,
        /// table or json.
        #[arg(short = 'o', long, default_value = "table")]
        output: String,
    },
    /// Run a command inside a pod (`[namespace/]name`), a node (`node-2`), `ext`, `outside` or `control`.
    Run {
        name: String,
        target: String,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Remove a lab (or every lab with --all): processes, namespaces, cgroups, pins, data.
    Down {
        name: Option<String>,
        #[arg(long)]
        all: bool,
    },
    /// List labs.
    List,
    /// The lab's VPC route table: keel-control's exec VPC provider for a
    /// lab in vpc mode (control/server/src/vpc/EXEC.md), programming the
    /// router namespace's routes; the request on stdin, the answer on stdout.
    #[command(hide = true)]
    VpcRouter {
        /// The router's network namespace.
        #[arg(long)]
        netns: String,
        /// Refuse routes beyond this many, as a cloud's route quota does.
        #[arg(long)]
        max_routes: Option<usize>,
    },
}

pub fn run(cmd: LabCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        LabCommand::Up {
            name,
            nodes,
            mode,
            segments,
            runtime,
            no_lb,
            control_replicas,
            store,
            leader_lease_ttl,
        } => {
            let spec = Spec {
                name: name.clone(),
                nodes,
                mode,
                segments,
            };
            let bins = Bins::beside_current_exe()?;
            eprintln!(
                "building lab {name}: {nodes} nodes, {mode} mode, {segments} segment(s), {control_replicas} keel-control replica(s) on {store}…"
            );
            let opts = Options {
                control_plane: ControlPlane {
                    replicas: control_replicas,
                    store,
                },
                leader_lease_ttl,
                runtime: runtime == "direct",
                lb: !no_lb,
                progress: Some(|step| eprintln!("  {step}")),
                ..Default::default()
            };
            let lab = Lab::up(&spec, &bins, &opts)?;
            print!("{}", table(&lab.status()?));
            println!(
                "\nlab {name} is up (TLS with the lab's cluster CA; nodes joined with a bootstrap token). Talk to it:\n  keelctl --lab {name} get nodes -o wide\n  keelctl --lab {name} apply -f examples/\n  keelctl lab run {name} POD -- CMD…\n  keelctl lab status {name}\nWith kubectl (keel-control is reachable from the lab's control namespace {control}):\n  keelctl --lab {name} kubeconfig -o {name}.kubeconfig\n  ip netns exec {control} kubectl --kubeconfig {name}.kubeconfig get nodes\nJoin another node: keelctl --lab {name} token create\nRemove it:\n  keelctl lab down {name}",
                control = lab.topology().control.netns,
            );
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::Status { name, output } => {
            let status = Lab::load(&name)?.status()?;
            match output.as_str() {
                "json" => println!("{}", serde_json::to_string_pretty(&status)?),
                "table" => print!("{}", table(&status)),
                o => anyhow::bail!("-o: unknown output format {o:?} (use table or json)"),
            }
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::Run {
            name,
            target,
            command,
        } => {
            let lab = Lab::load(&name)?;
            // exec: this process enters the target's namespace and cgroup
            // and becomes the command.
            let err = lab
                .command(&target, &command[0])?
                .args(&command[1..])
                .exec();
            anyhow::bail!("running {}: {err}", command[0])
        }
        LabCommand::Down { name, all } => {
            let swept = match (name, all) {
                (_, true) => Lab::down_all()?,
                (Some(n), false) => Lab::down(&n)?,
                (None, false) => anyhow::bail!("name a lab, or pass --all"),
            };
            println!("{swept}");
            Ok(if swept.errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        LabCommand::VpcRouter { netns, max_routes } => {
            keel_lab::vpc_router::serve(&netns, max_routes)?;
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::List => {
            for n in State::list() {
                println!("{n}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn s(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "-".into(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The human view of `Lab::status`.
fn table(st: &serde_json::Value) -> String {
    let mut rows = Vec::new();
    // Every keel-control replica and etcd member (older state: `control`).
    let mut hosts: Vec<&serde_json::Value> = match st["controls"].as_array() {
        Some(c) if !c.is_empty() => c.iter().collect(),
        _ => vec![&st["control"]],
    };
    hosts.extend(st["etcd"].as_array().into_iter().flatten());
    hosts.push(&st["ext"]);
    hosts.extend(st["nodes"].as_array().into_iter().flatten());
    for h in hosts {
        rows.push(vec![
            s(&h["role"]),
            s(&h["netns"]),
            s(&h["ip"]),
            s(&h["segment"]),
            s(&h["podCIDR"]),
            s(&h["ready"]),
        ]);
    }
    // The host beyond the router standing for the internet (off the fabric).
    if let Some(o) = st["outside"].as_object() {
        let ips: Vec<String> = o
            .get("ips")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .map(s)
            .collect();
        rows.push(vec![
            "outside".into(),
            o.get("netns").map(s).unwrap_or_else(|| "-".into()),
            ips.join(","),
            "-".into(),
            "-".into(),
            "-".into(),
        ]);
    }
    let mut out = format!(
        "lab {} ({} mode), control at {}\n",
        s(&st["name"]),
        s(&st["mode"]),
        s(&st["controlURL"])
    );
    if st["store"] == "etcd" {
        out.push_str(&format!(
            "keel-control replicas on etcd: {}; the controllers run on {}\n",
            s(&st["controlURLs"]),
            match &st["leader"] {
                serde_json::Value::Null => "no replica (an election is under way)".into(),
                l => s(l),
            }
        ));
    }
    out.push_str(&crate::get::render(
        &["HOST", "NETNS", "IP", "SEGMENT", "POD-CIDR", "READY"],
        &rows,
    ));
    let pods: Vec<Vec<String>> = st["pods"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            vec![
                format!("{}/{}", s(&p["namespace"]), s(&p["name"])),
                s(&p["node"]),
                s(&p["ip"]),
                s(&p["phase"]),
                s(&p["ready"]),
            ]
        })
        .collect();
    if !pods.is_empty() {
        out.push('\n');
        out.push_str(&crate::get::render(
            &["POD", "NODE", "IP", "PHASE", "READY"],
            &pods,
        ));
    }
    let procs: Vec<Vec<String>> = st["processes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| vec![s(&p["role"]), s(&p["pid"]), s(&p["running"]), s(&p["log"])])
        .collect();
    out.push('\n');
    out.push_str(&crate::get::render(
        &["PROCESS", "PID", "RUNNING", "LOG"],
        &procs,
    ));
    out
}
