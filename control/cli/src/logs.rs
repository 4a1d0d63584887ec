//! `keelctl logs POD [-c C] [-f] [--previous] [--tail N] [--since D]
//! [--timestamps]`: like kubectl, through keel-control's
//! `pods/NAME/log` (which asks the agent of the pod's node over its HTTPS
//! port), or with `--local` straight to the agent's local socket (root
//! only). `keelctl exec POD [-c C] -- CMD…` (without -i/-t, see
//! [`crate::attach`]): through the agent's local
//! socket: the agent's data dir on this machine, or a lab node's with
//! `--lab NAME`.

use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
    path::PathBuf,
    process::ExitCode,
    time::Duration,
};

use anyhow::{Context, bail};
use clap::Args;
use keel_api::{Pod, client::Client};

#[derive(Args, Debug)]
pub struct Target {
    /// The pod.
    pub pod: String,
    /// The container (needed when the pod has several).
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// The agent's local API socket (when not using --lab).
    #[arg(long, default_value = "/var/lib/keel/agent/agent.sock")]
    pub agent_socket: PathBuf,
}

/// kubectl's log selection flags.
#[derive(Args, Debug)]
pub struct Select {
    /// Only the last N lines (-1: all).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub tail: i64,
    /// Only lines newer than this (5s, 2m, 3h).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub since: Option<Duration>,
    /// Each line with its time (RFC 3339).
    #[arg(long)]
    pub timestamps: bool,
    /// At most this many bytes.
    #[arg(long)]
    pub limit_bytes: Option<u64>,
}

impl Default for Select {
    fn default() -> Self {
        Self {
            tail: -1,
            since: None,
            timestamps: false,
            limit_bytes: None,
        }
    }
}

/// The `pods/NAME/log` query kubectl would send. Pure.
pub fn log_query(container: Option<&str>, follow: bool, previous: bool, s: &Select) -> String {
    let mut q = Vec::new();
    if let Some(c) = container {
        q.push(format!("container={}", encode(c)));
    }
    if follow {
        q.push("follow=true".into());
    }
    if previous {
        q.push("previous=true".into());
    }
    if s.tail >= 0 {
        q.push(format!("tailLines={}", s.tail));
    }
    if let Some(d) = s.since {
        // Kubernetes counts whole seconds, at least one.
        q.push(format!("sinceSeconds={}", d.as_secs().max(1)));
    }
    if s.timestamps {
        q.push("timestamps=true".into());
    }
    if let Some(n) = s.limit_bytes {
        q.push(format!("limitBytes={n}"));
    }
    q.join("&")
}

/// `keelctl logs` through keel-control.
pub async fn logs_through_control(
    client: &Client,
    ns: &str,
    t: &Target,
    follow: bool,
    previous: bool,
    select: &Select,
) -> anyhow::Result<ExitCode> {
    use http_body_util::BodyExt;
    let q = log_query(t.container.as_deref(), follow, previous, select);
    let mut path = format!(
        "/api/v1/namespaces/{}/pods/{}/log",
        encode(ns),
        encode(&t.pod)
    );
    if !q.is_empty() {
        path = format!("{path}?{q}");
    }
    let mut body = client.get_stream(&path).await?.into_body();
    let mut out = std::io::stdout().lock();
    while let Some(frame) = body.frame().await {
        let frame = frame.with_context(|| format!("reading the logs of pod {ns}/{}", t.pod))?;
        if let Some(data) = frame.data_ref() {
            out.write_all(data)?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The socket of the agent running the pod.
async fn socket(
    client: &Client,
    lab: Option<&str>,
    ns: &str,
    t: &Target,
) -> anyhow::Result<PathBuf> {
    let pod: Pod = client.get(ns, &t.pod).await?;
    let node = pod.spec.node_name.clone();
    if node.is_empty() {
        bail!("pod {ns}/{} is not scheduled to a node yet", t.pod);
    }
    match lab {
        Some(lab) => {
            let lab = keel_lab::Lab::load(lab)?;
            anyhow::ensure!(
                lab.topology().node(&node).is_some(),
                "pod {ns}/{} runs on {node:?}, which is not a node of lab {}",
                t.pod,
                lab.name()
            );
            Ok(lab.state.dir.join(&node).join("agent.sock"))
        }
        None => Ok(t.agent_socket.clone()),
    }
}

fn connect(socket: &PathBuf) -> anyhow::Result<UnixStream> {
    UnixStream::connect(socket).with_context(|| {
        format!(
            "connecting to the agent at {} (is keel-agent running with --runtime direct on the pod's node, and are you root?)",
            socket.display()
        )
    })
}

/// Reads the response head; returns (status code, rest of the body so far).
fn head(s: &mut UnixStream) -> anyhow::Result<(u16, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            bail!("the agent closed the connection");
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).to_string();
            let code = head
                .lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|c| c.parse().ok())
                .context("the agent's answer is not HTTP")?;
            return Ok((code, buf[i + 4..].to_vec()));
        }
    }
}

pub async fn logs(
    client: &Client,
    lab: Option<&str>,
    ns: &str,
    t: &Target,
    follow: bool,
    previous: bool,
) -> anyhow::Result<ExitCode> {
    let socket = socket(client, lab, ns, t).await?;
    let mut q = format!("follow={follow}&previous={previous}");
    if let Some(c) = &t.container {
        q.push_str(&format!("&container={}", encode(c)));
    }
    let path = format!("/pods/{}/{}/logs?{q}", encode(ns), encode(&t.pod));
    tokio::task::spawn_blocking(move || -> anyhow::Result<ExitCode> {
        let mut s = connect(&socket)?;
        if !follow {
            s.set_read_timeout(Some(Duration::from_secs(30)))?;
        }
        // HTTP/1.0: the body runs to the end of the connection.
        write!(s, "GET {path} HTTP/1.0\r\nHost: agent\r\n\r\n")?;
        let (code, first) = head(&mut s)?;
        let mut out = std::io::stdout().lock();
        if code != 200 {
            let mut rest = first;
            s.read_to_end(&mut rest)?;
            bail!("agent: {}", String::from_utf8_lossy(&rest).trim());
        }
        out.write_all(&first)?;
        out.flush()?;
        let mut buf = [0u8; 8192];
        loop {
            let n = s.read(&mut buf)?;
            if n == 0 {
                return Ok(ExitCode::SUCCESS);
            }
            out.write_all(&buf[..n])?;
            out.flush()?;
        }
    })
    .await?
}

pub async fn exec(
    client: &Client,
    lab: Option<&str>,
    ns: &str,
    t: &Target,
    command: Vec<String>,
) -> anyhow::Result<ExitCode> {
    let socket = socket(client, lab, ns, t).await?;
    let body = serde_json::to_vec(&serde_json::json!({
        "container": t.container,
        "command": command,
    }))?;
    let path = format!("/pods/{}/{}/exec", encode(ns), encode(&t.pod));
    tokio::task::spawn_blocking(move || -> anyhow::Result<ExitCode> {
        let mut s = connect(&socket)?;
        s.set_read_timeout(Some(Duration::from_secs(3700)))?;
        write!(
            s,
            "POST {path} HTTP/1.0\r\nHost: agent\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )?;
        s.write_all(&body)?;
        let (code, mut rest) = head(&mut s)?;
        s.read_to_end(&mut rest)?;
        if code != 200 {
            bail!("agent: {}", String::from_utf8_lossy(&rest).trim());
        }
        let r: serde_json::Value =
            serde_json::from_slice(&rest).context("the agent's exec answer")?;
        print!("{}", r["stdout"].as_str().unwrap_or_default());
        eprint!("{}", r["stderr"].as_str().unwrap_or_default());
        let code = r["exitCode"].as_i64().unwrap_or(1);
        Ok(ExitCode::from(code.clamp(0, 255) as u8))
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_s_log_flags_become_its_query() {
        assert_eq!(log_query(None, false, false, &Select::default()), "");
        let s = Select {
            tail: 0,
            since: Some(Duration::from_millis(1500)),
            timestamps: true,
            limit_bytes: Some(10),
        };
        assert_eq!(
            log_query(Some("web"), true, true, &s),
            "container=web&follow=true&previous=true&tailLines=0&sinceSeconds=1&timestamps=true&limitBytes=10"
        );
    }
}
