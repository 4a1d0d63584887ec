//! `keel-agent shim-exec --root ROOT --id ID [--process FILE --console-fd N] -- CMD…`:
//! runs CMD inside a running container with libcontainer's tenant builder
//! (joining its namespaces and cgroup, with its user, env and working
//! directory), passes stdio through, waits and exits with CMD's status
//! (128+signal if killed).
//!
//! With `--console-fd N` the command gets a pseudo-terminal instead
//! (interactive exec with a TTY): `--process FILE` is its OCI process with
//! `terminal: true`; libcontainer opens the terminal inside the container
//! (from the container's own devpts, as runc does), makes its slave the
//! process's controlling terminal and stdio, and sends the master over a
//! console socket; shim-exec passes that master on through the inherited
//! socket N to whoever started it (the agent), then waits as above.

use std::{
    os::{
        fd::{AsRawFd, FromRawFd, RawFd},
        unix::net::{UnixListener, UnixStream},
    },
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use libcontainer::{container::builder::ContainerBuilder, syscall::syscall::SyscallType};
use nix::{
    sys::wait::{WaitStatus, waitpid},
    unistd::Pid,
};

use super::console;
use crate::runtime::exec_session::{self, TermSize};

#[derive(Debug)]
struct Args {
    root: PathBuf,
    id: String,
    process: Option<PathBuf>,
    console_fd: Option<RawFd>,
    size: Option<TermSize>,
    cmd: Vec<String>,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut root = None;
    let mut id = None;
    let mut process = None;
    let mut console_fd = None;
    let mut size = None;
    let mut it = args.iter();
    let mut cmd = Vec::new();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--root" => root = it.next().map(PathBuf::from),
            "--id" => id = it.next().cloned(),
            "--process" => process = it.next().map(PathBuf::from),
            "--console-fd" => {
                let v = it.next().map(String::as_str).unwrap_or_default();
                console_fd = Some(
                    v.parse::<RawFd>()
                        .map_err(|_| format!("--console-fd: {v:?} is not a descriptor"))?,
                );
            }
            "--size" => {
                let v = it.next().map(String::as_str).unwrap_or_default();
                size = Some(
                    v.split_once('x')
                        .and_then(|(w, h)| {
                            Some(TermSize {
                                width: w.parse().ok()?,
                                height: h.parse().ok()?,
                            })
                        })
                        .ok_or_else(|| format!("--size: {v:?} is not WIDTHxHEIGHT"))?,
                );
            }
            "--" => {
                cmd = it.by_ref().cloned().collect();
            }
            _ => {}
        }
    }
    let (Some(root), Some(id)) = (root, id) else {
        return Err(
            "usage: keel-agent shim-exec --root ROOT --id ID [--process FILE --console-fd N] -- CMD..."
                .into(),
        );
    };
    if cmd.is_empty() && process.is_none() {
        return Err("shim-exec: no command".into());
    }
    if console_fd.is_some() != process.is_some() {
        return Err("shim-exec: --console-fd and --process go together".into());
    }
    Ok(Args {
        root,
        id,
        process,
        console_fd,
        size,
        cmd,
    })
}

pub fn main(args: &[String]) -> i32 {
    let a = match parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let id = a.id.clone();
    let console = match a.console_fd {
        Some(fd) => match Console::listen(&a.root, fd, a.size) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("exec in {id}: the console socket: {e}");
                return 126;
            }
        },
        None => None,
    };
    let built = ContainerBuilder::new(id.clone(), SyscallType::Linux)
        .with_root_path(&a.root)
        .map(|b| b.with_console_socket(console.as_ref().map(|c| c.path.clone())))
        .and_then(|b| {
            let t = b.as_tenant();
            let t = match &a.process {
                Some(p) => t.with_process(Some(p)),
                None => t.with_container_args(a.cmd.clone()),
            };
            // A terminal needs libcontainer's detached mode (it checks the
            // console socket against it); the process is still our child.
            t.with_detach(console.is_some()).build()
        });
    let pid = match built {
        Ok(pid) => pid,
        Err(e) => {
            if let Some(c) = console {
                c.give_up();
            }
            eprintln!("exec in {id}: {e}");
            // 126/127 as a shell reports a command it cannot run.
            return if e.to_string().contains("not found") || e.to_string().contains("No such file")
            {
                127
            } else {
                126
            };
        }
    };
    if let Some(c) = console
        && let Err(e) = c.finish()
    {
        eprintln!("exec in {id}: passing the terminal on: {e}");
        let _ = nix::sys::signal::kill(
            Pid::from_raw(pid.as_raw()),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    loop {
        match waitpid(Pid::from_raw(pid.as_raw()), None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                eprintln!("exec in {id}: waiting: {e}");
                return 126;
            }
        }
    }
}

/// The console socket libcontainer connects to, served on a thread while
/// the container process is built: the master arrives before the process
/// is let go, and the thread sets its size at once, so the command starts
/// on a terminal of the client's size; then the master goes on to the
/// inherited socket.
struct Console {
    dir: PathBuf,
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<std::io::Result<()>>,
}

impl Console {
    fn listen(root: &Path, fd: RawFd, size: Option<TermSize>) -> std::io::Result<Self> {
        // SAFETY: the agent passes this descriptor to us for this purpose;
        // nothing else in this process uses it.
        let to = unsafe { UnixStream::from_raw_fd(fd) };
        let dir = root.join(format!("exec-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        // Bound by a relative name from inside `dir`, so a deep root does
        // not run into sun_path's 108 bytes (libcontainer reaches it
        // through a symlink the same way).
        let here = std::env::current_dir()?;
        std::env::set_current_dir(&dir)?;
        let listener = UnixListener::bind("console.sock");
        std::env::set_current_dir(here)?;
        let listener = listener?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || hand_over(listener, to, size, &stopped));
        Ok(Self {
            path: dir.join("console.sock"),
            dir,
            stop,
            thread,
        })
    }

    fn finish(self) -> std::io::Result<()> {
        let r = self
            .thread
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the console thread panicked")));
        let _ = std::fs::remove_dir_all(&self.dir);
        r
    }

    fn give_up(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Takes the master from libcontainer's connection, sizes it and sends it
/// on.
fn hand_over(
    listener: UnixListener,
    to: UnixStream,
    size: Option<TermSize>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let conn = loop {
        match listener.accept() {
            Ok((c, _)) => break c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if stop.load(Ordering::Relaxed) || std::time::Instant::now() > deadline {
                    return Err(std::io::Error::other(
                        "the container never connected to the console socket",
                    ));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => return Err(e),
        }
    };
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let master = console::recv_fd(&conn)?
        .ok_or_else(|| std::io::Error::other("the console socket closed without a terminal"))?;
    if let Some(s) = size {
        exec_session::set_size(&master, s)?;
    }
    console::send_fd(&to, master.as_raw_fd())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn arguments_parse_and_are_checked() {
        let a = parse(&s(&["--root", "/r", "--id", "c", "--", "sh", "-c", "x"])).unwrap();
        assert_eq!((a.id.as_str(), a.cmd.len(), a.console_fd), ("c", 3, None));
        let a = parse(&s(&[
            "--root",
            "/r",
            "--id",
            "c",
            "--process",
            "/p.json",
            "--console-fd",
            "3",
        ]))
        .unwrap();
        assert_eq!(a.console_fd, Some(3));
        assert!(parse(&s(&["--id", "c", "--", "ls"])).is_err());
        let a = parse(&s(&[
            "--root",
            "/r",
            "--id",
            "c",
            "--process",
            "/p",
            "--console-fd",
            "3",
            "--size",
            "80x24",
        ]))
        .unwrap();
        assert_eq!(
            a.size,
            Some(TermSize {
                width: 80,
                height: 24
            })
        );
        assert!(
            parse(&s(&[
                "--root", "/r", "--id", "c", "--size", "80", "--", "ls"
            ]))
            .unwrap_err()
            .contains("--size")
        );
        assert!(
            parse(&s(&[
                "--root",
                "/r",
                "--id",
                "c",
                "--console-fd",
                "x",
                "--",
                "ls"
            ]))
            .unwrap_err()
            .contains("--console-fd")
        );
        assert!(
            parse(&s(&[
                "--root",
                "/r",
                "--id",
                "c",
                "--console-fd",
                "3",
                "--",
                "ls"
            ]))
            .unwrap_err()
            .contains("together")
        );
        assert!(
            parse(&s(&["--root", "/r", "--id", "c"]))
                .unwrap_err()
                .contains("no command")
        );
    }
}
