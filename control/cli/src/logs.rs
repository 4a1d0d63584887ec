//! `keelctl logs POD [-c C] [-f] [--previous]` and `keelctl exec POD [-c C]
//! -- CMD…`: like kubectl, but straight to the agent of the pod's node over
//! its local socket (root only): the agent's data dir on this machine, or a
//! lab node's with `--lab NAME`.

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

fn encode(s: &str) -> String {
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
