//! An interactive exec's streams, as every runtime hands them to the
//! agent's exec WebSocket ([`super::exec_ws`]): channels of byte chunks
//! (dropping the stdin sender closes the process's stdin), terminal
//! resizes, and the exit code. The pumps between those channels and files
//! or pipes live here too, so the runtimes only open the right ends.

use std::{
    io::{Read, Write},
    os::fd::{AsRawFd, OwnedFd},
};

pub use keel_api::exec::TermSize;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    sync::{mpsc, oneshot},
};

/// How the process is attached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExecAttach {
    /// Its stdin is fed from the client (otherwise it reads /dev/null or,
    /// with a terminal, a terminal nobody types in).
    pub stdin: bool,
    /// It gets a pseudo-terminal as its controlling terminal and
    /// stdin/stdout/stderr; output comes on `stdout` only.
    pub tty: bool,
    /// The terminal's size before the command starts (kubectl sends it
    /// first), so the command's first look at it is right.
    pub size: Option<TermSize>,
}

/// A started exec. Output channels close at the process's end.
pub struct ExecSession {
    pub stdin: Option<mpsc::Sender<Vec<u8>>>,
    pub stdout: mpsc::Receiver<Vec<u8>>,
    /// None with a terminal.
    pub stderr: Option<mpsc::Receiver<Vec<u8>>>,
    /// Some with a terminal.
    pub resize: Option<mpsc::UnboundedSender<TermSize>>,
    /// The exit code (128+N when killed by signal N), or why it is unknown.
    pub exit: oneshot::Receiver<Result<i32, String>>,
}

/// Where a process's stdin is fed (dropping it closes stdin).
pub type Input = mpsc::Sender<Vec<u8>>;

/// How many chunks may wait in a channel before the reader stops reading
/// (back-pressure to the process).
pub const CHUNKS: usize = 16;
const CHUNK: usize = 32 * 1024;

/// Reads `r` to its end into a channel (closed at EOF or on an error).
pub fn read_async(mut r: impl AsyncRead + Unpin + Send + 'static, tx: mpsc::Sender<Vec<u8>>) {
    tokio::spawn(async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
}

/// Writes what arrives into `w`; closes `w` when the sender is dropped.
pub fn write_async(mut w: impl AsyncWrite + Unpin + Send + 'static) -> mpsc::Sender<Vec<u8>> {
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(CHUNKS);
    tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if w.write_all(&b).await.is_err() || w.flush().await.is_err() {
                return;
            }
        }
        let _ = w.shutdown().await;
    });
    tx
}

/// Reads a blocking file (a FIFO, a terminal's master) on its own thread.
/// A terminal's master answers EIO once no process holds its slave: that
/// is its end.
pub fn read_blocking(mut f: std::fs::File, tx: mpsc::Sender<Vec<u8>>) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match f.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            }
        }
    });
}

/// Writes what arrives into a blocking file on its own thread. When the
/// sender is dropped, `at_end` is written (a terminal's EOF character:
/// closing a terminal's master would hang the session up instead) and the
/// file closed.
pub fn write_blocking(mut f: std::fs::File, at_end: &'static [u8]) -> mpsc::Sender<Vec<u8>> {
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(CHUNKS);
    std::thread::spawn(move || {
        while let Some(b) = rx.blocking_recv() {
            if f.write_all(&b).is_err() {
                return;
            }
        }
        let _ = f.write_all(at_end);
    });
    tx
}

/// The terminal's EOF character (VEOF, ^D by default), which a program
/// reading a terminal in canonical mode sees as the end of its input.
pub const TERMINAL_EOF: &[u8] = b"\x04";

/// Sets a terminal's size (TIOCSWINSZ on its master; the kernel sends the
/// foreground process group SIGWINCH).
pub fn set_size(master: &impl AsRawFd, size: TermSize) -> std::io::Result<()> {
    let ws = libc::winsize {
        ws_row: size.height,
        ws_col: size.width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which lives
    // across the call.
    let r = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A session on a terminal's master: output read from it, stdin written
/// to it (or nothing: the terminal still exists, as for `kubectl exec -t`
/// without `-i`), resizes applied to it.
pub fn on_terminal(
    master: OwnedFd,
    stdin: bool,
    out: mpsc::Sender<Vec<u8>>,
) -> std::io::Result<(Option<Input>, mpsc::UnboundedSender<TermSize>)> {
    let master = std::fs::File::from(master);
    read_blocking(master.try_clone()?, out);
    let input = if stdin {
        Some(write_blocking(master.try_clone()?, TERMINAL_EOF))
    } else {
        None
    };
    let (resize, mut sizes) = mpsc::unbounded_channel::<TermSize>();
    tokio::spawn(async move {
        while let Some(s) = sizes.recv().await {
            if let Err(e) = set_size(&master, s) {
                tracing::debug!(error = %e, "exec: resizing the terminal");
            }
        }
    });
    Ok((input, resize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_terminal_s_master_carries_input_output_size_and_eof() {
        // A real pseudo-terminal and a real shell on its slave: what is
        // typed comes back, stty sees the size set, ^D ends `cat`.
        let pty = nix::pty::openpty(None, None).unwrap();
        let slave = std::fs::File::from(pty.slave);
        let mut child = std::process::Command::new("sh")
            .args(["-c", "read x; echo got:$x; stty size; cat; echo done"])
            .stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave)
            .spawn()
            .unwrap();
        let (tx, mut rx) = mpsc::channel(CHUNKS);
        let (input, resize) = on_terminal(pty.master, true, tx).unwrap();
        let input = input.unwrap();
        resize
            .send(TermSize {
                width: 91,
                height: 17,
            })
            .unwrap();
        // Let the resize land before the shell asks.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        input.send(b"hello\n".to_vec()).await.unwrap();
        input.send(b"more\n".to_vec()).await.unwrap();
        drop(input);
        let mut text = String::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while !text.contains("done") {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(b)) => text.push_str(&String::from_utf8_lossy(&b)),
                _ => break,
            }
        }
        assert!(child.wait().unwrap().success());
        assert!(text.contains("got:hello"), "{text:?}");
        assert!(text.contains("17 91"), "{text:?}");
        assert!(text.contains("done"), "{text:?}");
    }
}

/// The OCI process of an exec: the container's own (its user, env, cwd,
/// capabilities, rlimits) with `cmd` as args and `terminal` set, as
/// containerd's and the kubelet's exec do. Pure.
pub fn exec_process(
    spec: &serde_json::Value,
    cmd: &[String],
    terminal: bool,
    size: Option<TermSize>,
) -> Result<serde_json::Value, String> {
    if cmd.is_empty() {
        return Err("command: must not be empty".into());
    }
    let mut p = spec
        .get("process")
        .filter(|p| p.is_object())
        .cloned()
        .ok_or("the container's spec has no process")?;
    p["args"] = serde_json::json!(cmd);
    p["terminal"] = serde_json::json!(terminal);
    match size.filter(|_| terminal) {
        Some(s) => p["consoleSize"] = serde_json::json!({"height": s.height, "width": s.width}),
        None => {
            if let Some(o) = p.as_object_mut() {
                o.remove("consoleSize");
            }
        }
    }
    Ok(p)
}

#[cfg(test)]
mod process_tests {
    use super::{TermSize, exec_process};

    #[test]
    fn the_exec_process_is_the_container_s_with_the_command() {
        let spec = serde_json::json!({"process": {
            "args": ["/server"], "env": ["A=1"], "cwd": "/app", "user": {"uid": 1000, "gid": 1000},
            "terminal": false
        }});
        let size = TermSize {
            width: 80,
            height: 24,
        };
        let p = exec_process(&spec, &["sh".into()], true, Some(size)).unwrap();
        assert_eq!(
            p["consoleSize"],
            serde_json::json!({"height": 24, "width": 80})
        );
        let q = exec_process(&spec, &["sh".into()], false, Some(size)).unwrap();
        assert!(q.get("consoleSize").is_none());
        assert_eq!(p["args"], serde_json::json!(["sh"]));
        assert_eq!(p["terminal"], true);
        assert_eq!(p["user"]["uid"], 1000);
        assert_eq!(p["env"][0], "A=1");
        assert!(
            exec_process(&spec, &[], true, None)
                .unwrap_err()
                .contains("command")
        );
        assert!(
            exec_process(&serde_json::json!({}), &["sh".into()], false, None)
                .unwrap_err()
                .contains("no process")
        );
    }
}
