//! The `exec` VPC provider: runs an operator-supplied command once per sync
//! with the [`Request`] as JSON on stdin and reads the [`Response`] from its
//! stdout (the contract is [EXEC.md](EXEC.md)). Exit status 0 means the
//! answer is on stdout; anything else means the run failed as a whole and
//! stderr says why.
//!
//! The command is trusted (the operator configured it) but still bounded:
//! it is killed after the timeout, its answer may not exceed
//! [`STDOUT_LIMIT`], and only the first [`STDERR_LIMIT`] bytes of its
//! complaints are kept. Stdin is written while stdout and stderr are read,
//! so a command that answers before it has read everything cannot
//! deadlock against keel-control.

use std::{path::PathBuf, process::Stdio, time::Duration};

use keel_api::vpc::{Request, Response};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::{SyncFuture, VpcError, VpcProvider};

/// The most a command's answer may hold (a route is ~80 bytes of JSON).
pub const STDOUT_LIMIT: usize = 4 << 20;
/// How much of a failing command's stderr is kept for logs and conditions.
pub const STDERR_LIMIT: usize = 4 << 10;

pub struct ExecProvider {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    timeout: Duration,
}

impl ExecProvider {
    pub fn new(program: PathBuf, args: Vec<String>, timeout: Duration) -> Self {
        let mut name = format!("exec:{}", program.display());
        for a in &args {
            name.push(' ');
            name.push_str(a);
        }
        Self {
            name,
            program,
            args,
            timeout,
        }
    }

    fn io(&self, what: &'static str) -> impl FnOnce(std::io::Error) -> VpcError + '_ {
        move |source| VpcError::Io {
            provider: self.name.clone(),
            what,
            source,
        }
    }

    async fn run(&self, request: &Request) -> Result<Response, VpcError> {
        let input = serde_json::to_vec(request).expect("a request serializes");
        let mut child = tokio::process::Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A timed-out run is dropped, and with it the child.
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| VpcError::Spawn {
                provider: self.name.clone(),
                program: self.program.clone(),
                source,
            })?;
        let (mut stdin, stdout, stderr) = (
            child.stdin.take().expect("piped"),
            child.stdout.take().expect("piped"),
            child.stderr.take().expect("piped"),
        );
        let write = async move {
            let written = stdin.write_all(&input).await;
            drop(stdin);
            match written {
                // It may answer (or fail) without reading its input: its
                // exit status says how it went.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => other,
            }
        };
        let (written, out, err) = tokio::join!(
            write,
            read_capped(stdout, STDOUT_LIMIT),
            read_capped(stderr, STDERR_LIMIT)
        );
        let status = child.wait().await.map_err(self.io("waiting for it"))?;
        written.map_err(self.io("writing the request to its stdin"))?;
        let (out, out_truncated) = out.map_err(self.io("reading its stdout"))?;
        let (err, _) = err.map_err(self.io("reading its stderr"))?;
        if !status.success() {
            return Err(VpcError::Exit {
                provider: self.name.clone(),
                status,
                stderr: String::from_utf8_lossy(&err).trim().to_string(),
            });
        }
        if out_truncated {
            return Err(VpcError::TooLarge {
                provider: self.name.clone(),
                limit: STDOUT_LIMIT,
            });
        }
        Response::parse(&out).map_err(|source| VpcError::Answer {
            provider: self.name.clone(),
            source,
        })
    }
}

impl VpcProvider for ExecProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn sync<'a>(&'a self, request: &'a Request) -> SyncFuture<'a> {
        Box::pin(async move {
            tokio::time::timeout(self.timeout, self.run(request))
                .await
                .map_err(|_| VpcError::Timeout {
                    provider: self.name.clone(),
                    timeout: self.timeout,
                })?
        })
    }
}

/// Reads `r` to its end, keeping the first `cap` bytes; whether more came.
/// Reading on past the cap keeps the writer from blocking on a full pipe.
async fn read_capped(
    mut r: impl AsyncRead + Unpin,
    cap: usize,
) -> std::io::Result<(Vec<u8>, bool)> {
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut chunk = [0u8; 8192];
    loop {
        let n = r.read(&mut chunk).await?;
        if n == 0 {
            return Ok((kept, truncated));
        }
        let room = (cap - kept.len()).min(n);
        kept.extend_from_slice(&chunk[..room]);
        truncated |= room < n;
    }
}

#[cfg(test)]
mod tests;
