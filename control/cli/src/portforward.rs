//! `keelctl port-forward POD [LOCAL:]REMOTE…`: listens on 127.0.0.1:LOCAL
//! (any free port for `:REMOTE`) and forwards each connection to the pod's
//! `localhost:REMOTE` through keel-control (its `pods/NAME/portforward` in
//! keel's one-connection protocol, [`keel_api::portforward`]), so it works
//! from any machine with the admin credential, as kubectl's does. Prints
//! `Forwarding from 127.0.0.1:L -> R` per port, as kubectl; a connection
//! the pod refuses is closed and its error printed. Runs until
//! interrupted.

use std::process::ExitCode;

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use keel_api::{
    client::{Client, ClientError, WsMessage},
    portforward::PROTOCOL,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// `LOCAL:REMOTE`, `REMOTE` (the same port locally) or `:REMOTE` (any
/// free local port, shown as 0), as kubectl reads them.
pub fn parse(spec: &str) -> Result<(u16, u16), String> {
    let port = |what: &str, v: &str, zero: bool| {
        v.parse::<u16>()
            .ok()
            .filter(|p| zero || *p != 0)
            .ok_or_else(|| format!("{spec:?}: {what} port {v:?} is not a port 1-65535"))
    };
    match spec.split_once(':') {
        Some(("", r)) => Ok((0, port("remote", r, false)?)),
        Some((l, r)) => Ok((port("local", l, true)?, port("remote", r, false)?)),
        None => {
            let p = port("remote", spec, false)?;
            Ok((p, p))
        }
    }
}

pub async fn run(
    client: &Client,
    ns: &str,
    pod: &str,
    specs: &[String],
) -> anyhow::Result<ExitCode> {
    let mut ports = Vec::new();
    for s in specs {
        ports.push(parse(s).map_err(anyhow::Error::msg)?);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (local, remote) in ports {
        let listener = TcpListener::bind(("127.0.0.1", local))
            .await
            .with_context(|| format!("listening on 127.0.0.1:{local}"))?;
        let bound = listener.local_addr()?.port();
        println!("Forwarding from 127.0.0.1:{bound} -> {remote}");
        let client = client.clone();
        let path = format!(
            "/api/v1/namespaces/{}/pods/{}/portforward?port={remote}",
            crate::logs::encode(ns),
            crate::logs::encode(pod)
        );
        tasks.spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    continue;
                };
                println!("Handling connection for {bound}");
                let (client, path) = (client.clone(), path.clone());
                tokio::spawn(async move {
                    if let Err(e) = forward(&client, &path, conn).await {
                        eprintln!("error: port {remote}: {e}");
                    }
                });
            }
        });
    }
    tokio::signal::ctrl_c().await?;
    Ok(ExitCode::SUCCESS)
}

/// One connection: bytes both ways, an empty message a half-close.
async fn forward(client: &Client, path: &str, conn: TcpStream) -> anyhow::Result<()> {
    let (ws, _) = client
        .websocket(path, &[PROTOCOL])
        .await
        .map_err(|e| match e {
            ClientError::Api(s) => anyhow::anyhow!("{}", s.message.trim()),
            other => other.into(),
        })?;
    let _ = conn.set_nodelay(true);
    let (mut rd, mut wr) = conn.into_split();
    let (mut tx, mut rx) = ws.split();
    let up = async {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    let _ = tx.send(WsMessage::binary(Vec::new())).await;
                    break;
                }
                Ok(n) => {
                    if tx.send(WsMessage::binary(buf[..n].to_vec())).await.is_err() {
                        return;
                    }
                }
            }
        }
        // The pod may still answer: the other direction ends this.
        std::future::pending::<()>().await;
    };
    let down = async {
        while let Some(Ok(m)) = rx.next().await {
            match m {
                WsMessage::Binary(b) if b.is_empty() => break,
                WsMessage::Binary(b) => {
                    let written = wr.write_all(&b).await;
                    if written.is_err() {
                        break;
                    }
                }
                WsMessage::Close(_) => break,
                _ => {}
            }
        }
        let _ = wr.shutdown().await;
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn ports_are_read_as_kubectl_reads_them() {
        assert_eq!(parse("8080"), Ok((8080, 8080)));
        assert_eq!(parse("18080:80"), Ok((18080, 80)));
        assert_eq!(parse(":80"), Ok((0, 80)));
        assert_eq!(parse("0:80"), Ok((0, 80)));
        for (bad, what) in [
            ("0", "remote"),
            ("80:0", "remote"),
            ("x:80", "local"),
            ("80:70000", "remote"),
            ("", "remote"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(what), "{bad}: {e}");
        }
    }
}
