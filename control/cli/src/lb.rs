//! `keelctl lb`: a node's load balancer, through keel-control's node proxy
//! (`--node N`) or an agent's local socket: its maps as the kernel holds
//! them (`dump`), its counters (`drops`) and the reconciler's status
//! (`status`).

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

/// Which agent: a node's, through keel-control (`--node N`), or the local
/// socket (`--local`, or no `--node`; with `--lab`, `--node N --local` is
/// that lab node's socket).
#[derive(Args, Debug)]
pub(crate) struct AgentArgs {
    /// The agent's local API socket.
    #[arg(long, default_value = "/var/lib/keel/agent/agent.sock")]
    agent_socket: PathBuf,
    /// The node: its agent reached through keel-control's node proxy.
    #[arg(long)]
    node: Option<String>,
    /// The agent's local socket instead of keel-control.
    #[arg(long)]
    local: bool,
}

impl AgentArgs {
    fn socket(&self, lab: Option<&str>) -> anyhow::Result<PathBuf> {
        let (Some(node), Some(lab)) = (&self.node, lab) else {
            return Ok(self.agent_socket.clone());
        };
        let lab = keel_lab::Lab::load(lab)?;
        anyhow::ensure!(
            lab.topology().node(node).is_some(),
            "lab {} has no node {node:?}",
            lab.name()
        );
        Ok(lab.state.dir.join(node).join("agent.sock"))
    }

    /// `GET path` on the agent; `missing` is the error when the agent does
    /// not run that part (its 404).
    pub(crate) async fn get(
        &self,
        conn: &crate::connect::ConnectArgs,
        path: &str,
        missing: &str,
    ) -> anyhow::Result<String> {
        let node = match &self.node {
            Some(node) if !self.local => node,
            _ => {
                let socket = self.socket(conn.lab())?;
                return tokio::task::spawn_blocking({
                    let (path, missing) = (path.to_string(), missing.to_string());
                    move || get(&socket, &path, &missing)
                })
                .await?;
            }
        };
        let client = conn.client()?;
        let through = format!("/api/v1/nodes/{node}/proxy{path}");
        match client
            .request_raw(keel_api::client::HttpMethod::GET, &through, None)
            .await
        {
            Ok(body) => Ok(String::from_utf8_lossy(&body).into_owned()),
            Err(keel_api::client::ClientError::Api(s))
                if s.code == 404 && !s.message.contains(&format!("nodes \"{node}\" not found")) =>
            {
                bail!("node {node}: {missing}")
            }
            Err(e) => {
                Err(e).with_context(|| format!("node {node}: GET {path} through keel-control"))
            }
        }
    }
}

pub async fn run(cmd: LbCommand, conn: &crate::connect::ConnectArgs) -> anyhow::Result<ExitCode> {
    let (agent, path) = match &cmd {
        LbCommand::Dump { agent, limit } => (agent, format!("/lb/dump?limit={limit}")),
        LbCommand::Drops { agent } => (agent, "/lb/drops".to_string()),
        LbCommand::Status { agent } => (agent, "/lb/status".to_string()),
    };
    let body = agent
        .get(
            conn,
            &path,
            "the agent has no load balancer (start it with --cgroup-root)",
        )
        .await?;
    print!("{body}");
    if !body.ends_with('\n') {
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

/// One HTTP/1.0 GET over the agent's unix socket (the server closes the
/// connection after the response); `missing` is the error for a 404 (the
/// agent does not run that part).
fn get(socket: &PathBuf, path: &str, missing: &str) -> anyhow::Result<String> {
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
