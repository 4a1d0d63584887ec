//! A containerd of a test's own: Debian's `/usr/bin/containerd` with a
//! config of ours (root, state and sockets in a `keel-t-ctrd-…` temp dir, the
//! CRI plugin and unusable snapshotters off), for the containerd backend of
//! keel's runtime. Never the system's containerd: nothing here uses
//! `/run/containerd/containerd.sock`.
//!
//! Drop removes what it owns: every container of every namespace of its
//! daemon through `ctr` (task killed and deleted, so the shim exits and runc removes the
//! cgroup), then by PID any shim still serving this daemon and the shims'
//! children (log drivers), then the daemon itself, any mount below its
//! directory, and the directory.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

use crate::process;

pub const CONTAINERD: &str = "/usr/bin/containerd";
pub const CTR: &str = "/usr/bin/ctr";

pub struct TestContainerd {
    dir: tempfile::TempDir,
    child: Option<Child>,
    namespace: String,
}

impl TestContainerd {
    /// Starts the daemon and waits for its socket.
    pub fn start() -> Self {
        assert!(
            Path::new(CONTAINERD).is_file()
                && Path::new("/usr/bin/containerd-shim-runc-v2").is_file(),
            "the containerd tests need Debian's containerd (apt-get install containerd)"
        );
        let dir = tempfile::Builder::new()
            .prefix("keel-t-ctrd-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"
"#,
            root = d.join("root").display(),
            state = d.join("state").display(),
            sock = d.join("c.sock").display(),
            opt = d.join("opt").display(),
        );
        fs::write(d.join("config.toml"), config).unwrap();
        let log = fs::File::create(d.join("containerd.log")).unwrap();
        let child = Command::new(CONTAINERD)
            .arg("--config")
            .arg(d.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting containerd");
        let mut me = Self {
            dir,
            child: Some(child),
            namespace: crate::unique("ctrd"),
        };
        let sock = me.socket();
        process::wait_for("containerd's socket", Duration::from_secs(20), || {
            if let Some(c) = me.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                panic!(
                    "containerd exited ({st}): {}",
                    fs::read_to_string(me.dir.path().join("containerd.log")).unwrap_or_default()
                );
            }
            std::os::unix::net::UnixStream::connect(&sock).ok()
        });
        me
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("c.sock")
    }

    /// runc's state root to give the shims (in our directory, instead of
    /// runc's default under /run/containerd).
    pub fn runc_root(&self) -> PathBuf {
        self.dir.path().join("runc")
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    /// `ctr` against this daemon and namespace.
    pub fn ctr(&self) -> Command {
        let mut c = Command::new(CTR);
        c.arg("--address")
            .arg(self.socket())
            .arg("--namespace")
            .arg(&self.namespace);
        c
    }

    /// PIDs of the runc shims serving this daemon (their `-address` is our
    /// socket).
    pub fn shim_pids(&self) -> Vec<i32> {
        let sock = self.socket().display().to_string();
        shims_of(|addr| addr == sock)
    }
}

impl TestContainerd {
    /// SIGKILLs one of our shims (as a crash would) and removes the socket
    /// it leaves in /run/containerd/s.
    pub fn kill_shim(&self, pid: i32) {
        assert!(self.shim_pids().contains(&pid), "{pid} is not our shim");
        let socket = shim_ns_id(pid)
            .map(|(ns, id)| shim_socket(&self.socket().display().to_string(), &ns, &id));
        kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
        process::wait_for("the shim to die", Duration::from_secs(5), || {
            (!self.shim_pids().contains(&pid)).then_some(())
        });
        if let Some(s) = socket {
            let _ = fs::remove_file(s);
        }
    }
}

/// Where containerd 1.6's runc shim listens: `/run/containerd/s/<hex>` of
/// the SHA-256 of `<daemon address>/<namespace>/<container id>`
/// (`runtime/v2/shim/util_unix.go`, `SocketAddress`). A shim that is killed
/// leaves it behind; the name is unique to our daemon's address.
pub fn shim_socket(address: &str, namespace: &str, id: &str) -> PathBuf {
    let digest = keel_agent::runtime::images::store::sha256_bytes(
        format!("{address}/{namespace}/{id}").as_bytes(),
    );
    Path::new("/run/containerd/s").join(digest.trim_start_matches("sha256:"))
}

/// A shim's `-namespace` and `-id` arguments.
fn shim_ns_id(pid: i32) -> Option<(String, String)> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let after = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    Some((after("-namespace")?, after("-id")?))
}

/// Shim processes (`containerd-shim-runc-v2 … -address ADDR`) whose address
/// satisfies `pred`.
pub fn shims_of(pred: impl Fn(&str) -> bool) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(raw) = fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<String> = raw
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_shim = args
            .first()
            .is_some_and(|a| a.ends_with("containerd-shim-runc-v2"));
        let addr = args
            .iter()
            .position(|a| a == "-address")
            .and_then(|i| args.get(i + 1));
        if is_shim && addr.is_some_and(|a| pred(a)) {
            out.push(pid);
        }
    }
    out
}

/// Children of `pid` (from /proc/*/stat).
pub fn children_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let ppid = fs::read_to_string(format!("/proc/{p}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit(')')
                    .next()?
                    .split_whitespace()
                    .nth(1)?
                    .parse::<i32>()
                    .ok()
            });
        if ppid == Some(pid) {
            out.push(p);
        }
    }
    out
}

impl Drop for TestContainerd {
    fn drop(&mut self) {
        let address = self.socket().display().to_string();
        let sockets: Vec<PathBuf> = self
            .shim_pids()
            .into_iter()
            .filter_map(shim_ns_id)
            .map(|(ns, id)| shim_socket(&address, &ns, &id))
            .collect();
        // Orderly first, in every namespace (a lab's agents each have
        // theirs): the shims exit once their task is deleted.
        let namespaces = self
            .ctr()
            .args(["namespaces", "list", "--quiet"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for ns in namespaces.split_whitespace() {
            let ctr = |args: &[&str]| {
                let mut c = Command::new(CTR);
                c.arg("--address")
                    .arg(self.socket())
                    .arg("--namespace")
                    .arg(ns)
                    .args(args)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null());
                c.output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default()
            };
            for id in ctr(&["containers", "list", "--quiet"]).split_whitespace() {
                ctr(&["tasks", "kill", "--all", "--signal", "SIGKILL", id]);
                std::thread::sleep(Duration::from_millis(100));
                ctr(&["tasks", "delete", "--force", id]);
                ctr(&["containers", "delete", id]);
            }
        }
        // Whatever shim is left, and its children, by PID.
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        while !self.shim_pids().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        for shim in self.shim_pids() {
            for c in children_of(shim) {
                let _ = kill(Pid::from_raw(c), Signal::SIGKILL);
            }
            let _ = kill(Pid::from_raw(shim), Signal::SIGKILL);
        }
        if let Some(mut c) = self.child.take() {
            process::stop_child(&mut c, Duration::from_secs(5));
        }
        for s in sockets {
            let _ = fs::remove_file(s);
        }
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let root = self.dir.path().display().to_string();
        let mut mine: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4))
            .filter(|m| m.starts_with(&root))
            .collect();
        mine.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mine {
            let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}
