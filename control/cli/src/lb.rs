//! `keelctl lb`: the node load balancer, through an agent's local socket:
//! its maps as the kernel holds them (`dump`), its counters (`drops`) and
//! the reconciler's status (`status`).

use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
    path::PathBuf,
    process::ExitCode,
    time::Duration,
};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

#[derive(Subcommand, Debug)]
pub enum LbCommand {
    /// Every LB map entry, one per line (SVC, BE, MAGLEV, AFFINITY, CT), and the counters.
    Dump {
        #[command(flatten)]
        agent: AgentArgs,
        /// At most this many affinity and conntrack entries.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// Translations and drops by reason, summed over CPUs.
    Drops {
        #[command(flatten)]
        agent: AgentArgs,
    },
    /// The load-balancer reconciler's status (JSON).
    Status {
        #[command(flatten)]
        agent: AgentArgs,
    },
}

/// Which agent: its socket, or a lab node's (`keelctl --lab NAME lb … --node N`).
#[derive(Args, Debug)]
pub(crate) struct AgentArgs {
    /// The agent's local API socket.
    #[arg(long, default_value = "/var/lib/keel/agent/agent.sock")]
    agent_socket: PathBuf,
    /// A node of the lab given with --lab: its agent's socket.
    #[arg(long)]
    node: Option<String>,
}

impl AgentArgs {
    pub(crate) fn socket(&self, lab: Option<&str>) -> anyhow::Result<PathBuf> {
        let Some(node) = &self.node else {
            return Ok(self.agent_socket.clone());
        };
        let lab = lab.context("--node names a lab node: pass --lab NAME too")?;
        let lab = keel_lab::Lab::load(lab)?;
        anyhow::ensure!(
            lab.topology().node(node).is_some(),
            "lab {} has no node {node:?}",
            lab.name()
        );
        Ok(lab.state.dir.join(node).join("agent.sock"))
    }
}

pub fn run(cmd: LbCommand, lab: Option<&str>) -> anyhow::Result<ExitCode> {
    let (agent, path) = match &cmd {
        LbCommand::Dump { agent, limit } => (agent, format!("/lb/dump?limit={limit}")),
        LbCommand::Drops { agent } => (agent, "/lb/drops".to_string()),
        LbCommand::Status { agent } => (agent, "/lb/status".to_string()),
    };
    let socket = agent.socket(lab)?;
    let body = get(
        &socket,
        &path,
        "the agent has no load balancer (start it with --cgroup-root)",
    )?;
    print!("{body}");
    if !body.ends_with('\n') {
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

/// One HTTP/1.0 GET over the agent's unix socket (the server closes the
/// connection after the response); `missing` is the error for a 404 (the
/// agent does not run that part).
pub(crate) fn get(socket: &PathBuf, path: &str, missing: &str) -> anyhow::Result<String> {
    let mut s = UnixStream::connect(socket).with_context(|| {
        format!(
            "connecting to the agent at {} (is keel-agent running, and are you root?)",
            socket.display()
        )
    })?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: agent\r\n\r\n")?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let resp = String::from_utf8_lossy(&resp);
    let (head, body) = resp
        .split_once("\r\n\r\n")
        .context("the agent's answer is not HTTP")?;
    let status = head.lines().next().unwrap_or_default();
    match status.split_whitespace().nth(1) {
        Some("200") => Ok(body.to_string()),
        Some("404") => bail!("{missing}"),
        _ => bail!("agent: {status}: {}", body.trim()),
    }
}
