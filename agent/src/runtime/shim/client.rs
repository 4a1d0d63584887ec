//! The agent's side of a shim: start one for a pod, and send it requests.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::UnixStream,
};

use super::{
    proto::{ContainerInfo, Request, Response},
    server::short_path,
};

#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("shim {dir}: {source}")]
    Io {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("shim {dir}: {message}")]
    Failed { dir: String, message: String },
    #[error("shim {dir}: did not come up within {secs}s (see its shim.log)")]
    Timeout { dir: String, secs: u64 },
}

/// A handle on one pod's shim.
#[derive(Debug, Clone)]
pub struct ShimClient {
    dir: PathBuf,
}

impl ShimClient {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn io(&self, source: std::io::Error) -> ShimError {
        ShimError::Io {
            dir: self.dir.display().to_string(),
            source,
        }
    }

    /// Starts the pod's shim (`<exe> shim --dir DIR`) in its own session,
    /// unless one already answers, and waits until it does.
    pub async fn spawn(dir: &Path, exe: &Path) -> Result<Self, ShimError> {
        let me = Self::new(dir);
        if me.alive().await {
            return Ok(me);
        }
        std::fs::create_dir_all(dir).map_err(|e| me.io(e))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("shim.log"))
            .map_err(|e| me.io(e))?;
        let mut cmd = tokio::process::Command::new(exe);
        cmd.arg("shim")
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        // SAFETY: setsid is async-signal-safe. Its own session keeps the shim
        // out of the agent's process group and terminal signals.
        unsafe {
            cmd.pre_exec(|| {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                Ok(())
            });
        }
        // Dropped at once: tokio reaps a dropped child when it exits, so it
        // never lingers as a zombie of ours, and no thread waits for it.
        drop(cmd.spawn().map_err(|e| me.io(e))?);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::time::Instant::now() < deadline {
            if me.alive().await {
                return Ok(me);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Err(ShimError::Timeout {
            dir: dir.display().to_string(),
            secs: 10,
        })
    }

    /// Whether a shim answers on the socket.
    pub async fn alive(&self) -> bool {
        matches!(self.call(&Request::State).await, Ok(Response::State { .. }))
    }

    pub async fn call(&self, req: &Request) -> Result<Response, ShimError> {
        // Creating a container takes the shim tens of milliseconds; allow
        // for a loaded machine.
        self.call_within(req, Duration::from_secs(60)).await
    }

    async fn call_within(&self, req: &Request, limit: Duration) -> Result<Response, ShimError> {
        let fut = async {
            let (_dirfd, short) = short_path(&self.dir, "shim.sock").map_err(|e| self.io(e))?;
            let mut s = UnixStream::connect(&short).await.map_err(|e| self.io(e))?;
            let mut body = serde_json::to_vec(req).expect("request serialises");
            body.push(b'\n');
            s.write_all(&body).await.map_err(|e| self.io(e))?;
            let mut line = String::new();
            BufReader::new(s)
                .read_line(&mut line)
                .await
                .map_err(|e| self.io(e))?;
            serde_json::from_str::<Response>(&line).map_err(|e| ShimError::Failed {
                dir: self.dir.display().to_string(),
                message: format!("bad response {line:?}: {e}"),
            })
        };
        tokio::time::timeout(limit, fut)
            .await
            .map_err(|_| ShimError::Failed {
                dir: self.dir.display().to_string(),
                message: format!("no answer within {}s", limit.as_secs()),
            })?
    }

    /// Waits until a container exited after generation `seen` (None: the
    /// current generation at once), at most `timeout`. `Ok(None)`: a shim
    /// of an older agent that cannot wait.
    pub async fn wait(
        &self,
        seen: Option<u64>,
        timeout: Duration,
    ) -> Result<Option<u64>, ShimError> {
        let (seen, timeout) = match seen {
            Some(s) => (s, timeout),
            None => (0, Duration::ZERO),
        };
        let req = Request::Wait {
            seen,
            timeout_ms: timeout.as_millis() as u64,
        };
        match self
            .call_within(&req, timeout + Duration::from_secs(10))
            .await?
        {
            Response::Generation { generation } => Ok(Some(generation)),
            Response::Error { message } if message.starts_with("bad request") => Ok(None),
            r => Err(self.fail(r)),
        }
    }

    fn fail(&self, r: Response) -> ShimError {
        ShimError::Failed {
            dir: self.dir.display().to_string(),
            message: match r {
                Response::Error { message } => message,
                other => format!("unexpected answer {other:?}"),
            },
        }
    }

    pub async fn run(
        &self,
        id: &str,
        bundle: &Path,
        log: &Path,
        cgroup: &str,
    ) -> Result<i32, ShimError> {
        match self
            .call(&Request::Run {
                id: id.into(),
                bundle: bundle.into(),
                log: log.into(),
                cgroup: cgroup.into(),
            })
            .await?
        {
            Response::Started { pid } => Ok(pid),
            r => Err(self.fail(r)),
        }
    }

    pub async fn state(&self) -> Result<Vec<ContainerInfo>, ShimError> {
        match self.call(&Request::State).await? {
            Response::State { containers } => Ok(containers),
            r => Err(self.fail(r)),
        }
    }

    pub async fn kill(&self, id: &str, signal: i32) -> Result<(), ShimError> {
        match self
            .call(&Request::Kill {
                id: id.into(),
                signal,
            })
            .await?
        {
            Response::Ok => Ok(()),
            r => Err(self.fail(r)),
        }
    }

    pub async fn delete(&self, id: &str) -> Result<(), ShimError> {
        match self.call(&Request::Delete { id: id.into() }).await? {
            Response::Ok => Ok(()),
            r => Err(self.fail(r)),
        }
    }

    pub async fn shutdown(&self) -> Result<(), ShimError> {
        match self.call(&Request::Shutdown).await? {
            Response::Ok => Ok(()),
            r => Err(self.fail(r)),
        }
    }
}
