//! `keelctl net`: a node's host routing, through keel-control's node proxy
//! (`--node N`) or its agent's local socket:
//! the reconciler's status (`status`) and the pinned maps, links and
//! counters as the kernel holds them (`dump`).

use std::process::ExitCode;

use clap::Subcommand;

use crate::lb::AgentArgs;

#[derive(Subcommand, Debug)]
pub enum NetCommand {
    /// What forwards pod traffic on the node (BPF or the kernel), and why (JSON).
    Status {
        #[command(flatten)]
        agent: AgentArgs,
    },
    /// Pod CIDRs, local pod endpoints, attached links and the counters, one per line.
    Dump {
        #[command(flatten)]
        agent: AgentArgs,
    },
}

pub async fn run(cmd: NetCommand, conn: &crate::connect::ConnectArgs) -> anyhow::Result<ExitCode> {
    let (agent, path) = match &cmd {
        NetCommand::Status { agent } => (agent, "/net/status"),
        NetCommand::Dump { agent } => (agent, "/net/dump"),
    };
    let body = agent
        .get(
            conn,
            path,
            "the agent does no node networking (it runs with --network-mode none)",
        )
        .await?;
    print!("{body}");
    if !body.ends_with('\n') {
        println!();
    }
    Ok(ExitCode::SUCCESS)
}
