//! The shim process itself: one thread, one `poll` loop over the control
//! socket, a pidfd per container (readable when it exits) and the
//! containers' stdout/stderr pipes. No signal handlers and no signal mask
//! changes, so nothing leaks into the containers it forks.

use std::{
    collections::BTreeMap,
    fs,
    io::{Read, Write},
    os::{
        fd::{AsFd, AsRawFd, FromRawFd, OwnedFd},
        unix::{
            fs::PermissionsExt,
            net::{UnixListener, UnixStream},
        },
    },
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use libcontainer::{
    container::{Container, builder::ContainerBuilder},
    syscall::syscall::SyscallType,
};
use nix::{
    poll::{PollFd, PollFlags, PollTimeout, poll},
    sys::{
        signal::{Signal, kill},
        wait::{WaitPidFlag, WaitStatus, waitpid},
    },
    unistd::Pid,
};

use super::proto::{ContainerInfo, Exit, Request, Response, now_ms};
use crate::runtime::logs::{LineSplitter, LogWriter, Stream};

/// Log files rotate past this size (the kubelet's containerLogMaxSize).
pub const LOG_MAX_SIZE: u64 = 10 << 20;
/// Rotated files kept besides the current one.
pub const LOG_KEEP: usize = 4;

struct Pipe {
    fd: OwnedFd,
    stream: Stream,
    split: LineSplitter,
}

struct Running {
    info: ContainerInfo,
    pidfd: Option<OwnedFd>,
    pipes: Vec<Pipe>,
    log: Option<LogWriter>,
}

pub struct Shim {
    dir: PathBuf,
    root: PathBuf,
    containers: BTreeMap<String, Running>,
    shutdown: bool,
    /// Exits seen so far (what [`Request::Wait`] waits on).
    generation: u64,
    /// Connections parked in a [`Request::Wait`], answered on the next exit
    /// or at their deadline.
    waiters: Vec<Waiter>,
    /// Connections whose request line has not fully arrived: read as it
    /// comes, in the poll loop, so a slow or stalled client never holds
    /// up the others (the shim has one thread).
    reading: Vec<Reading>,
}

/// A connection whose request is still arriving.
struct Reading {
    stream: UnixStream,
    buf: Vec<u8>,
    deadline: Instant,
}

/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// A request line longer than this is refused (requests are small JSON).
const MAX_REQUEST: usize = 64 * 1024;

/// A waiting agent: its connection, what it has seen, and until when.
struct Waiter {
    stream: UnixStream,
    seen: u64,
    deadline: Instant,
}

/// Waits are answered after this long at most, whatever was asked.
const MAX_WAIT: Duration = Duration::from_secs(300);

/// The socket a shim listens on.
pub fn socket_path(dir: &Path) -> PathBuf {
    dir.join("shim.sock")
}

/// A path to `dir/name` short enough for `sun_path` (108 bytes) however deep
/// `dir` is: `/proc/self/fd/N/name` through an `O_PATH` descriptor of the
/// directory, which the caller keeps open while it binds or connects.
pub fn short_path(dir: &Path, name: &str) -> std::io::Result<(OwnedFd, PathBuf)> {
    let fd = nix::fcntl::open(
        dir,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(std::io::Error::from)?;
    let path = PathBuf::from(format!("/proc/self/fd/{}/{name}", fd.as_raw_fd()));
    Ok((fd, path))
}

/// libcontainer's state root of a pod's containers.
pub fn state_root(dir: &Path) -> PathBuf {
    dir.join("lc")
}

pub fn main(args: &[String]) -> i32 {
    let dir = match args {
        [flag, d] if flag == "--dir" => PathBuf::from(d),
        _ => {
            eprintln!("usage: keel-agent shim --dir POD_DIR");
            return 2;
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KEEL_SHIM_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .try_init();
    match run(&dir) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("keel shim {}: {e:#}", dir.display());
            1
        }
    }
}

fn run(dir: &Path) -> anyhow::Result<()> {
    // SAFETY: plain prctl with integer arguments. Orphaned descendants (a
    // container's init whose parent went away) come back to us.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    fs::create_dir_all(dir)?;
    let sock = socket_path(dir);
    let _ = fs::remove_file(&sock);
    let (_dirfd, short) = short_path(dir, "shim.sock")?;
    let listener = UnixListener::bind(&short)?;
    fs::set_permissions(&sock, fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    fs::write(dir.join("shim.pid"), std::process::id().to_string())?;
    let mut shim = Shim {
        dir: dir.to_path_buf(),
        root: state_root(dir),
        containers: BTreeMap::new(),
        shutdown: false,
        generation: 0,
        waiters: Vec::new(),
        reading: Vec::new(),
    };
    fs::create_dir_all(&shim.root)?;
    loop {
        if shim.shutdown && shim.containers.values().all(|c| c.info.exit.is_some()) {
            let _ = fs::remove_file(&sock);
            let _ = fs::remove_file(dir.join("shim.pid"));
            return Ok(());
        }
        shim.poll_once(&listener)?;
    }
}

impl Shim {
    fn poll_once(&mut self, listener: &UnixListener) -> anyhow::Result<()> {
        // Index what we poll: 0 = listener, then the connections whose
        // request is arriving, then (id, None) = pidfd, (id, Some(i)) =
        // pipe i.
        let mut keys: Vec<(String, Option<usize>)> = Vec::new();
        let mut fds = vec![PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        for r in &self.reading {
            fds.push(PollFd::new(r.stream.as_fd(), PollFlags::POLLIN));
        }
        let first_container = fds.len();
        for (id, c) in &self.containers {
            if let Some(p) = &c.pidfd {
                fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
                keys.push((id.clone(), None));
            }
            for (i, pipe) in c.pipes.iter().enumerate() {
                fds.push(PollFd::new(pipe.fd.as_fd(), PollFlags::POLLIN));
                keys.push((id.clone(), Some(i)));
            }
        }
        // Wake for the nearest deadline, and at least every second.
        let now = Instant::now();
        let wait_ms = self
            .waiters
            .iter()
            .map(|w| w.deadline)
            .chain(self.reading.iter().map(|r| r.deadline))
            .map(|d| d.saturating_duration_since(now).as_millis().min(1000) as u16 + 1)
            .fold(1000u16, u16::min);
        match poll(&mut fds, PollTimeout::from(wait_ms)) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        // Pipes before exits, so the last output lands before the exit is
        // reported.
        let mut closed: Vec<(String, usize)> = Vec::new();
        for (k, (id, which)) in keys.iter().enumerate() {
            if !ready[k + first_container] {
                continue;
            }
            if let Some(i) = which
                && self.read_pipe(id, *i)
            {
                closed.push((id.clone(), *i));
            }
        }
        for (id, i) in closed.into_iter().rev() {
            if let Some(c) = self.containers.get_mut(&id) {
                let mut pipe = c.pipes.remove(i);
                if let (Some(rest), Some(log)) = (pipe.split.finish(), c.log.as_mut()) {
                    let _ = log.write(pipe.stream, false, &rest);
                }
            }
        }
        for (k, (id, which)) in keys.iter().enumerate() {
            if ready[k + first_container] && which.is_none() {
                self.reap(id);
            }
        }
        // Requests that arrived, in the order they were accepted.
        let arriving: Vec<bool> = ready[1..first_container].to_vec();
        let mut still = Vec::new();
        for (r, ready) in std::mem::take(&mut self.reading).into_iter().zip(arriving) {
            match if ready { read_request(r) } else { Ok(r) } {
                Ok(r) if Instant::now() < r.deadline => still.push(r),
                // Too slow: dropped (the client sees the connection close).
                Ok(_) => {}
                Err(Some((stream, line))) => self.serve(stream, &line),
                Err(None) => {}
            }
        }
        self.reading.extend(still);
        if ready[0] {
            loop {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let r = Reading {
                            stream,
                            buf: Vec::new(),
                            deadline: Instant::now() + REQUEST_TIMEOUT,
                        };
                        // Most requests are already there.
                        match read_request(r) {
                            Ok(r) => self.reading.push(r),
                            Err(Some((stream, line))) => self.serve(stream, &line),
                            Err(None) => {}
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        self.answer_waiters();
        Ok(())
    }

    /// Answers the waits whose exit came or whose time ran out.
    fn answer_waiters(&mut self) {
        let now = Instant::now();
        let generation = self.generation;
        let (done, parked): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|w| generation > w.seen || now >= w.deadline);
        self.waiters = parked;
        for w in done {
            reply(&w.stream, &Response::Generation { generation });
        }
    }

    /// Reads what a pipe has; true once it is closed.
    fn read_pipe(&mut self, id: &str, i: usize) -> bool {
        let Some(c) = self.containers.get_mut(id) else {
            return true;
        };
        let pipe = &mut c.pipes[i];
        let mut buf = [0u8; 32 * 1024];
        // SAFETY: the fd is owned by `pipe` and outlives this borrow; the
        // File is forgotten below so it is not closed twice.
        let mut f = unsafe { fs::File::from_raw_fd(pipe.fd.as_raw_fd()) };
        let r = f.read(&mut buf);
        std::mem::forget(f);
        match r {
            Ok(0) => true,
            Ok(n) => {
                for (partial, text) in pipe.split.feed(&buf[..n]) {
                    if let Some(log) = c.log.as_mut() {
                        let _ = log.write(pipe.stream, partial, &text);
                    }
                }
                false
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => false,
            Err(_) => true,
        }
    }

    fn reap(&mut self, id: &str) {
        let Some(c) = self.containers.get_mut(id) else {
            return;
        };
        let pid = Pid::from_raw(c.info.pid);
        let (code, signal) = match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => (code, None),
            Ok(WaitStatus::Signaled(_, sig, _)) => (128 + sig as i32, Some(sig as i32)),
            Ok(_) => return,
            // Not our child (adopted after a restart of ours): no status.
            Err(_) => (255, None),
        };
        c.pidfd = None;
        self.generation += 1;
        c.info.exit = Some(Exit {
            code,
            signal,
            oom_killed: oom_killed(&c.info.cgroup),
            finished_at_ms: now_ms(),
        });
    }

    /// Answers one request line (or parks it, for a wait).
    fn serve(&mut self, stream: UnixStream, line: &str) {
        let resp = match serde_json::from_str::<Request>(line) {
            Ok(Request::Wait { seen, timeout_ms }) if seen >= self.generation && timeout_ms > 0 => {
                let wait = Duration::from_millis(timeout_ms).min(MAX_WAIT);
                self.waiters.push(Waiter {
                    stream,
                    seen,
                    deadline: Instant::now() + wait,
                });
                return;
            }
            Ok(req) => self.handle(req),
            Err(e) => Response::Error {
                message: format!("bad request: {e}"),
            },
        };
        reply(&stream, &resp);
    }

    fn handle(&mut self, req: Request) -> Response {
        match req {
            Request::Run {
                id,
                bundle,
                log,
                cgroup,
            } => match self.start(&id, &bundle, &log, &cgroup) {
                Ok(pid) => Response::Started { pid },
                Err(e) => Response::Error {
                    message: format!("{e:#}"),
                },
            },
            Request::State => Response::State {
                containers: self.containers.values().map(|c| c.info.clone()).collect(),
            },
            Request::Kill { id, signal } => match self.containers.get(&id) {
                Some(c) if c.info.exit.is_none() => {
                    let sig = Signal::try_from(signal).unwrap_or(Signal::SIGKILL);
                    match kill(Pid::from_raw(c.info.pid), sig) {
                        Ok(()) | Err(nix::errno::Errno::ESRCH) => Response::Ok,
                        Err(e) => Response::Error {
                            message: format!("kill {id}: {e}"),
                        },
                    }
                }
                Some(_) => Response::Ok,
                None => Response::Error {
                    message: format!("no container {id}"),
                },
            },
            Request::Delete { id } => {
                if let Some(c) = self.containers.get(&id)
                    && c.info.exit.is_none()
                {
                    return Response::Error {
                        message: format!("container {id} is still running"),
                    };
                }
                self.containers.remove(&id);
                match delete_state(&self.root, &id) {
                    Ok(()) => Response::Ok,
                    Err(e) => Response::Error {
                        message: format!("delete {id}: {e:#}"),
                    },
                }
            }
            Request::Shutdown => {
                self.shutdown = true;
                Response::Ok
            }
            Request::Wait { .. } => Response::Generation {
                generation: self.generation,
            },
        }
    }

    fn start(&mut self, id: &str, bundle: &Path, log: &Path, cgroup: &str) -> anyhow::Result<i32> {
        if self.containers.contains_key(id) {
            anyhow::bail!("container {id} already exists in this pod");
        }
        // A leftover of a failed earlier attempt with the same ID.
        let _ = delete_state(&self.root, id);
        let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let (err_r, err_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        for fd in [&out_r, &err_r] {
            nix::fcntl::fcntl(
                fd.as_fd(),
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
            )?;
        }
        let null: OwnedFd = fs::File::open("/dev/null")?.into();
        let mut container = ContainerBuilder::new(id.to_string(), SyscallType::Linux)
            .with_root_path(&self.root)?
            .with_stdin(null)
            .with_stdout(out_w)
            .with_stderr(err_w)
            .validate_id()?
            .as_init(bundle)
            .with_systemd(false)
            .with_detach(true)
            .build()
            .map_err(|e| anyhow::anyhow!("creating container: {e}"))?;
        if let Err(e) = set_propagation(&container, bundle) {
            let _ = container.delete(true);
            anyhow::bail!("creating container: {e:#}");
        }
        if let Err(e) = container.start() {
            let _ = container.delete(true);
            anyhow::bail!("starting container: {e}");
        }
        let pid = container
            .pid()
            .ok_or_else(|| anyhow::anyhow!("container {id} has no pid after start"))?
            .as_raw();
        let pidfd = pidfd_open(pid).ok();
        let log_writer = LogWriter::open(log, LOG_MAX_SIZE, LOG_KEEP).ok();
        self.containers.insert(
            id.to_string(),
            Running {
                info: ContainerInfo {
                    id: id.to_string(),
                    pid,
                    bundle: bundle.to_path_buf(),
                    log: log.to_path_buf(),
                    cgroup: cgroup.to_string(),
                    started_at_ms: now_ms(),
                    exit: None,
                },
                pidfd,
                pipes: vec![
                    Pipe {
                        fd: out_r,
                        stream: Stream::Stdout,
                        split: LineSplitter::default(),
                    },
                    Pipe {
                        fd: err_r,
                        stream: Stream::Stderr,
                        split: LineSplitter::default(),
                    },
                ],
                log: log_writer,
            },
        );
        let _ = &self.dir;
        Ok(pid)
    }
}

/// The spec's mount propagation on the created container's bind mounts
/// ([`super::propagation`]).
pub(crate) fn set_propagation(container: &Container, bundle: &Path) -> anyhow::Result<()> {
    let config: serde_json::Value = serde_json::from_slice(&fs::read(bundle.join("config.json"))?)?;
    let plan = super::propagation::plan(&config);
    if plan.is_empty() {
        return Ok(());
    }
    let pid = container
        .pid()
        .ok_or_else(|| anyhow::anyhow!("the created container has no pid"))?;
    super::propagation::apply(pid.as_raw(), &plan)
}

/// Reads what has arrived of a request without blocking. `Err(Some)`: the
/// whole line is there; `Err(None)`: the client went away (or sent too
/// much); `Ok`: still arriving.
fn read_request(mut r: Reading) -> Result<Reading, Option<(UnixStream, String)>> {
    if r.stream.set_nonblocking(true).is_err() {
        return Err(None);
    }
    let mut chunk = [0u8; 4096];
    loop {
        match r.stream.read(&mut chunk) {
            Ok(0) => return Err(None),
            Ok(n) => {
                r.buf.extend_from_slice(&chunk[..n]);
                if let Some(end) = r.buf.iter().position(|b| *b == b'\n') {
                    let line = String::from_utf8_lossy(&r.buf[..end]).into_owned();
                    // Replies are written blocking (they are small), but
                    // never for long to a client that does not read.
                    let _ = r.stream.set_nonblocking(false);
                    let _ = r.stream.set_write_timeout(Some(REQUEST_TIMEOUT));
                    return Err(Some((r.stream, line)));
                }
                if r.buf.len() > MAX_REQUEST {
                    return Err(None);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(r),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Err(None),
        }
    }
}

/// Writes one response line; a client that went away is no error of ours.
fn reply(stream: &UnixStream, resp: &Response) {
    let mut body = serde_json::to_vec(resp).expect("response serialises");
    body.push(b'\n');
    let _ = (&*stream).write_all(&body);
}

fn delete_state(root: &Path, id: &str) -> anyhow::Result<()> {
    let dir = root.join(id);
    if !dir.exists() {
        return Ok(());
    }
    match Container::load(dir.clone()) {
        Ok(mut c) => c
            .delete(true)
            .map_err(|e| anyhow::anyhow!("libcontainer delete: {e}")),
        Err(_) => Ok(fs::remove_dir_all(&dir)?),
    }
}

fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        // SAFETY: the kernel just handed us this fd.
        Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
    }
}

/// Whether the kernel's OOM killer killed a process of the cgroup: the
/// `oom_kill` counter of cgroup v1's memory.oom_control or v2's
/// memory.events.
pub fn oom_killed(cgroup: &str) -> bool {
    let rel = cgroup.trim_start_matches('/');
    let candidates = [
        PathBuf::from("/sys/fs/cgroup/memory")
            .join(rel)
            .join("memory.oom_control"),
        PathBuf::from("/sys/fs/cgroup")
            .join(rel)
            .join("memory.events"),
        PathBuf::from("/sys/fs/cgroup/unified")
            .join(rel)
            .join("memory.events"),
    ];
    candidates.iter().any(|p| {
        fs::read_to_string(p).is_ok_and(|s| {
            s.lines().any(|l| {
                l.strip_prefix("oom_kill ")
                    .and_then(|n| n.trim().parse::<u64>().ok())
                    .is_some_and(|n| n > 0)
            })
        })
    })
}
