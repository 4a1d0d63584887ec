//! The kernel boundary of egress: reads and writes keel's nftables table
//! with the `nft` program, in the agent's own network namespace (the
//! node's). Nothing else in nftables is read or touched.

use std::{
    io::Write,
    process::{Command, Stdio},
};

use super::{Observed, Op, TABLE};

#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("running nft (is nftables installed?): {0}")]
    Spawn(#[source] std::io::Error),
    #[error("nft {action}: {stderr}")]
    Failed { action: String, stderr: String },
}

impl NftError {
    /// No `nft` program: there can be no table to remove either (keel made
    /// its table with `nft`).
    pub fn is_missing(&self) -> bool {
        matches!(self, NftError::Spawn(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

/// Removes keel's table if it is there (`--masquerade=false`); without
/// `nft` there is nothing to remove.
/// Returns whether it was there.
pub fn remove() -> Result<bool, NftError> {
    match observe() {
        Ok(have) if have.present => apply(&Op::Delete).map(|()| true),
        Ok(_) => Ok(false),
        Err(e) if e.is_missing() => Ok(false),
        Err(e) => Err(e),
    }
}

fn run(args: &[&str], stdin: Option<&str>) -> Result<(bool, String, String), NftError> {
    let mut child = Command::new("nft")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(NftError::Spawn)?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).map_err(NftError::Spawn)?;
    }
    let out = child.wait_with_output().map_err(NftError::Spawn)?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    ))
}

/// keel's table as the kernel holds it.
pub fn observe() -> Result<Observed, NftError> {
    let (ok, stdout, stderr) = run(&["list", "table", "ip", TABLE], None)?;
    if ok {
        return Ok(Observed::parse(Some(&stdout)));
    }
    if stderr.contains("No such file or directory") {
        return Ok(Observed::parse(None));
    }
    Err(NftError::Failed {
        action: format!("list table ip {TABLE}"),
        stderr,
    })
}

/// Applies one change (a replacement is one `nft -f` transaction).
pub fn apply(op: &Op) -> Result<(), NftError> {
    let (ok, _, stderr) = match op {
        Op::Replace(script) => run(&["-f", "-"], Some(script))?,
        Op::Delete => run(&["delete", "table", "ip", TABLE], None)?,
    };
    if ok {
        Ok(())
    } else {
        Err(NftError::Failed {
            action: op.to_string(),
            stderr,
        })
    }
}
