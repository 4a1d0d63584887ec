//! `keelctl exec -i`/`-t`/`-it POD -- CMD…`: interactive exec through
//! keel-control's `pods/NAME/exec` WebSocket (the channel protocol of
//! [`keel_api::exec`], as kubectl speaks it), so it works from any machine
//! with the admin credential. With `-t` on a terminal, the local terminal
//! is put in raw mode while attached (restored on every way out), its size
//! is sent first and again on each SIGWINCH. Exits with the remote
//! command's exit code.

use std::{
    io::{IsTerminal, Read, Write},
    os::fd::AsRawFd,
    process::ExitCode,
};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use keel_api::{
    client::{Client, WsMessage},
    exec::{self as proto, ExecParams, TermSize},
};
use tokio::sync::mpsc;

use crate::logs::Target;

/// The local terminal in raw mode; dropping it restores the settings.
struct RawMode {
    fd: i32,
    saved: libc::termios,
}

impl RawMode {
    fn enter(fd: i32) -> std::io::Result<Self> {
        // SAFETY: tcgetattr/tcsetattr read and write one termios we own.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut saved) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let mut raw = saved;
            libc::cfmakeraw(&mut raw);
            if libc::tcsetattr(fd, libc::TCSANOW, &raw) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(Self { fd, saved })
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: as in `enter`.
        unsafe {
            libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved);
        }
    }
}

/// The size of the terminal on `fd`, if it is one.
fn size_of(fd: i32) -> Option<TermSize> {
    // SAFETY: TIOCGWINSZ writes one winsize into ours.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_col > 0).then_some(TermSize {
        width: ws.ws_col,
        height: ws.ws_row,
    })
}

/// The request kubectl would make for these flags. Pure.
pub fn params(t: &Target, command: Vec<String>, stdin: bool, tty: bool) -> ExecParams {
    ExecParams {
        command,
        container: t.container.clone(),
        stdin,
        stdout: true,
        // A terminal carries both; the apiserver refuses stderr with tty.
        stderr: !tty,
        tty,
    }
}

pub async fn run(
    client: &Client,
    ns: &str,
    t: &Target,
    command: Vec<String>,
    stdin: bool,
    tty: bool,
) -> anyhow::Result<ExitCode> {
    let local_tty = std::io::stdin().is_terminal();
    let tty = if tty && !local_tty {
        eprintln!("Unable to use a TTY - input is not a terminal or the right kind of file");
        false
    } else {
        tty
    };
    let p = params(t, command, stdin, tty);
    let path = format!(
        "/api/v1/namespaces/{}/pods/{}/exec?{}",
        encode(ns),
        encode(&t.pod),
        p.to_query()
    );
    let (socket, chosen) = client
        .websocket(&path, &proto::PROTOCOLS)
        .await
        .map_err(|e| anyhow::anyhow!("exec in pod {ns}/{}: {e}", t.pod))?;
    let (mut tx, mut rx) = socket.split();

    // Stdin on a plain thread (a blocked read must not keep the process
    // alive at exit); None at its end.
    let (input_tx, mut input) = mpsc::channel::<Option<Vec<u8>>>(16);
    if stdin {
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            let mut s = std::io::stdin().lock();
            loop {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = input_tx.blocking_send(None);
                        return;
                    }
                    Ok(n) => {
                        if input_tx.blocking_send(Some(buf[..n].to_vec())).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
    let stdin_fd = std::io::stdin().as_raw_fd();
    let _raw = if tty {
        Some(RawMode::enter(stdin_fd).context("putting the terminal in raw mode")?)
    } else {
        None
    };
    let mut winch = if tty {
        if let Some(size) = size_of(stdin_fd) {
            tx.send(WsMessage::binary(proto::resize(size))).await?;
        }
        Some(tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::window_change(),
        )?)
    } else {
        None
    };
    let mut stdin_open = stdin;
    let mut status: Option<Result<i32, String>> = None;
    loop {
        let resized = async {
            match winch.as_mut() {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            m = rx.next() => match m {
                Some(Ok(WsMessage::Binary(b))) => {
                    let Some((&channel, data)) = b.split_first() else { continue };
                    match channel {
                        proto::STDOUT => {
                            let mut o = std::io::stdout().lock();
                            o.write_all(data)?;
                            o.flush()?;
                        }
                        proto::STDERR => {
                            let mut e = std::io::stderr().lock();
                            e.write_all(data)?;
                            e.flush()?;
                        }
                        proto::ERROR => status = Some(proto::exit_code(data)),
                        _ => {}
                    }
                }
                Some(Ok(WsMessage::Close(_))) | None => break,
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    if status.is_some() {
                        break;
                    }
                    bail!("exec in pod {ns}/{}: the stream broke: {e}", t.pod);
                }
            },
            i = input.recv(), if stdin_open => match i {
                Some(Some(b)) => tx.send(WsMessage::binary(proto::frame(proto::STDIN, &b))).await?,
                Some(None) | None => {
                    stdin_open = false;
                    // v4 has no way to say it; the command sees EOF only
                    // when it ends by itself.
                    if chosen == proto::V5 {
                        tx.send(WsMessage::binary(vec![proto::CLOSE, proto::STDIN])).await?;
                    }
                }
            },
            Some(()) = resized => {
                if let Some(size) = size_of(stdin_fd) {
                    tx.send(WsMessage::binary(proto::resize(size))).await?;
                }
            }
        }
    }
    drop(_raw);
    match status {
        Some(Ok(code)) => Ok(ExitCode::from(code.clamp(0, 255) as u8)),
        Some(Err(message)) => bail!("exec in pod {ns}/{}: {message}", t.pod),
        None => bail!(
            "exec in pod {ns}/{}: the stream ended without the command's exit status",
            t.pod
        ),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_become_kubectl_s_request() {
        let t = Target {
            pod: "web".into(),
            container: Some("c".into()),
            agent_socket: Default::default(),
        };
        let p = params(&t, vec!["sh".into()], true, true);
        assert!(p.stdin && p.tty && p.stdout && !p.stderr);
        assert_eq!(
            p.to_query(),
            "command=sh&container=c&stdin=true&stdout=true&stderr=false&tty=true"
        );
        let p = params(&t, vec!["cat".into()], true, false);
        assert!(p.stderr && !p.tty);
        // What keel-control accepts.
        assert!(proto::parse(&p.to_query()).is_ok());
    }
}
