//! Starting the lab's daemons inside their namespaces (detached: they
//! outlive `keelctl lab up`) and ending them again, only ever by the PID the
//! lab recorded and only if that PID is still the process it started.

use std::{
    fs,
    path::Path,
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context;
use keel_sys::{command::InNetns, ns::NetNs};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

use crate::state::{Proc, start_time};

/// Starts `program args` inside network namespace `netns` (and cgroup v2
/// directory `cgroup`, if given, so that whatever it starts inherits it), in
/// a new session, with stdout and stderr appended to `log`.
pub fn spawn(
    role: &str,
    netns: &str,
    cgroup: Option<&Path>,
    program: &Path,
    args: &[String],
    log: &Path,
) -> anyhow::Result<(Proc, Child)> {
    let ns = NetNs::open(NetNs::named_path(netns))?;
    let mut enter = InNetns::new(&ns)?.setsid();
    if let Some(cg) = cgroup {
        enter = enter.cgroup(cg)?;
    }
    let out = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let log_from = out.metadata().map(|m| m.len()).unwrap_or(0);
    let mut cmd = enter.command(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        )
        // A lab's daemons run on their flags alone, whatever this
        // machine's /etc/keel holds.
        .env("KEEL_AGENT_CONFIG", "/dev/null")
        .env("KEEL_CONTROL_CONFIG", "/dev/null");
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    let pid = child.id() as i32;
    let mut command = vec![program.display().to_string()];
    command.extend(args.iter().cloned());
    let proc = Proc {
        role: role.to_string(),
        pid,
        start_time: start_time(pid).unwrap_or(0),
        netns: netns.to_string(),
        cgroup: cgroup.map(Path::to_path_buf),
        command,
        log: log.to_path_buf(),
        log_from,
    };
    Ok((proc, child))
}

/// Whether the recorded process is still the one the lab started.
pub fn is_ours(p: &Proc) -> bool {
    start_time(p.pid).is_some_and(|t| t == p.start_time)
        && fs::read(format!("/proc/{}/cmdline", p.pid)).is_ok_and(|c| {
            c.split(|b| *b == 0)
                .next()
                .is_some_and(|exe| exe == p.command[0].as_bytes())
        })
}

/// SIGTERM, then SIGKILL after `grace`; only if the PID is still ours.
pub fn stop(p: &Proc, grace: Duration) {
    if !is_ours(p) {
        return;
    }
    let pid = Pid::from_raw(p.pid);
    let _ = kill(pid, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !is_ours(p) || zombie(p.pid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = kill(pid, Signal::SIGKILL);
}

/// SIGKILL at once (a crash, `kill -9`); only if the PID is still ours.
pub fn kill_now(p: &Proc) {
    if is_ours(p) {
        let _ = nix::sys::signal::kill(Pid::from_raw(p.pid), Signal::SIGKILL);
    }
}

/// Whether `pid` has exited and waits to be reaped.
pub fn is_zombie(pid: i32) -> bool {
    zombie(pid)
}

fn zombie(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
    })
}
