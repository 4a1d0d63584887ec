//! The VPC route table of `vpc` mode: pod CIDR → node, programmed by
//! keel-control's route controller (`controllers/routes.rs`) through a
//! [`VpcProvider`]. keel ships one provider, [`exec`]: an operator-supplied
//! command that speaks a small JSON contract ([EXEC.md](EXEC.md),
//! `keel_api::vpc`), so a cloud's route API is a short script away and keel
//! links no cloud SDK. The lab's router is such a command
//! (`keelctl lab vpc-router`).

pub mod exec;

use std::{future::Future, io, path::PathBuf, pin::Pin, process::ExitStatus, time::Duration};

use keel_api::vpc::{ContractError, Request, Response};

#[derive(Debug, thiserror::Error)]
pub enum VpcError {
    #[error("--vpc-provider {flag:?}: {reason}")]
    Flag { flag: String, reason: &'static str },
    #[error("VPC provider {provider}: starting {}: {source}", program.display())]
    Spawn {
        provider: String,
        program: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("VPC provider {provider}: {what}: {source}")]
    Io {
        provider: String,
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("VPC provider {provider}: no answer within {}s; killed", timeout.as_secs())]
    Timeout { provider: String, timeout: Duration },
    /// The command failed as a whole; `stderr` is what it said (trimmed,
    /// at most [`exec::STDERR_LIMIT`] bytes).
    #[error("VPC provider {provider}: {status}: {stderr}")]
    Exit {
        provider: String,
        status: ExitStatus,
        stderr: String,
    },
    #[error("VPC provider {provider}: its answer exceeds {limit} bytes")]
    TooLarge { provider: String, limit: usize },
    #[error("VPC provider {provider}: invalid answer: {source}")]
    Answer {
        provider: String,
        #[source]
        source: ContractError,
    },
}

/// What [`VpcProvider::sync`] returns.
pub type SyncFuture<'a> = Pin<Box<dyn Future<Output = Result<Response, VpcError>> + Send + 'a>>;

/// A VPC route table keel owns entries in. A provider only ever adds,
/// replaces and withdraws keel's own entries.
pub trait VpcProvider: Send + Sync + 'static {
    /// How logs and Node conditions name it (`exec:/usr/local/bin/vpc-aws`).
    fn name(&self) -> &str;
    /// Makes keel's routes in the table `request.desired` and reports what
    /// the table holds; routes it could not program are listed as failed
    /// rather than failing the whole call.
    fn sync<'a>(&'a self, request: &'a Request) -> SyncFuture<'a>;
}

/// Parses `--vpc-provider`: `exec:PROGRAM [ARG…]` (words split on
/// whitespace); `timeout` bounds every run of the command.
pub fn from_flag(flag: &str, timeout: Duration) -> Result<Box<dyn VpcProvider>, VpcError> {
    let bad = |reason| VpcError::Flag {
        flag: flag.to_string(),
        reason,
    };
    match flag.split_once(':') {
        Some(("exec", command)) => {
            let mut words = command.split_whitespace();
            let program = words.next().ok_or_else(|| bad("exec: names no command"))?;
            Ok(Box::new(exec::ExecProvider::new(
                program.into(),
                words.map(str::to_string).collect(),
                timeout,
            )))
        }
        _ => Err(bad(
            "not a known provider (exec:PROGRAM [ARG…], see control/server/src/vpc/EXEC.md)",
        )),
    }
}

#[cfg(test)]
mod tests;
