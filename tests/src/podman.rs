//! A real container runtime for keel-cni's tests: Debian's podman (4.3,
//! CNI backend) confined to a test node namespace.
//!
//! Confinement, so nothing lands on the real host:
//! - podman runs with its network namespace set to the test node's, so the
//!   CNI plugins it executes see the node namespace as the host side;
//! - it runs in a private mount namespace (`unshare --mount`) where
//!   /run/netns (where rootful podman puts pod namespaces) and /var/lib/cni
//!   (libcni's result cache) are bind mounts of directories under the
//!   test's temp dir; the mounts vanish with the last process in it;
//! - its root, runroot, tmpdir, CNI config dir and containers.conf are all
//!   under a `keel-t-podman-*` temp dir, and containers get a keel-named
//!   cgroup parent, so `keel-sweep` finds anything a killed test leaves.

use std::{
    fs, io,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use crate::TestNetns;

/// Whether podman is installed (`cargo xtask setup` installs it).
pub fn available() -> bool {
    Command::new("podman")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// One confined podman: its directories, the network config, and the
/// cgroup parent of its containers.
pub struct Podman {
    pub dir: tempfile::TempDir,
    cgroup_parent: String,
}

impl Podman {
    /// Sets up podman's directories, a busybox rootfs, and containers.conf
    /// with the CNI backend and `plugin_dirs`. `conflists` are (network
    /// name, conflist JSON) written to the network config dir.
    pub fn new(
        plugin_dirs: &[PathBuf],
        conflists: &[(&str, serde_json::Value)],
    ) -> io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("keel-t-podman-")
            .tempdir()?;
        let d = dir.path();
        for sub in [
            "root",
            "runroot",
            "tmp",
            "net.d",
            "netns",
            "cni-cache",
            "rootfs/bin",
        ] {
            fs::create_dir_all(d.join(sub))?;
        }
        // A one-binary image: busybox-static and its applets.
        fs::copy("/bin/busybox", d.join("rootfs/bin/busybox"))?;
        for applet in ["sh", "ip", "nc", "cat", "sleep", "tee", "echo"] {
            std::os::unix::fs::symlink("busybox", d.join("rootfs/bin").join(applet))?;
        }
        let dirs: Vec<String> = plugin_dirs
            .iter()
            .map(|p| format!("{:?}", p.display().to_string()))
            .collect();
        let conf = format!(
            "[network]\nnetwork_backend = \"cni\"\ncni_plugin_dirs = [{}]\nnetwork_config_dir = {:?}\n\n\
             [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"none\"\nruntime = \"runc\"\n",
            dirs.join(", "),
            d.join("net.d").display().to_string(),
        );
        fs::write(d.join("containers.conf"), conf)?;
        for (name, list) in conflists {
            fs::write(
                d.join("net.d").join(format!("{name}.conflist")),
                serde_json::to_vec_pretty(list)?,
            )?;
        }
        let cgroup_parent = dir
            .path()
            .file_name()
            .expect("temp dir name")
            .to_string_lossy()
            .into_owned();
        Ok(Self { dir, cgroup_parent })
    }

    /// The rootfs to pass to `run --rootfs`.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// Runs `podman ARGS` inside `node` (network) and a private mount
    /// namespace, for at most `timeout`; a run that overstays is killed (by
    /// PID, with every process of its containers' cgroup).
    pub fn podman(&self, node: &TestNetns, args: &[&str], timeout: Duration) -> io::Result<Output> {
        let d = self.dir.path();
        // /var/lib/cni may not exist yet; bind mounts need a target. An
        // empty directory is what libcni itself would create there.
        fs::create_dir_all("/var/lib/cni")?;
        let mut script = format!(
            "set -e; mount --bind {netns} /run/netns; mount --bind {cache} /var/lib/cni; exec podman \
             --root {root} --runroot {runroot} --tmpdir {tmp} --storage-driver vfs --network-config-dir {netd}",
            netns = quote(&d.join("netns")),
            cache = quote(&d.join("cni-cache")),
            root = quote(&d.join("root")),
            runroot = quote(&d.join("runroot")),
            tmp = quote(&d.join("tmp")),
            netd = quote(&d.join("net.d")),
        );
        for a in args {
            script.push(' ');
            script.push_str(&quote(Path::new(a)));
        }
        let mut child = node
            .command("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .env("CONTAINERS_CONF", d.join("containers.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let deadline = Instant::now() + timeout;
        while child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                self.kill_containers();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output()
    }

    /// Arguments for `podman run` that every test container needs here:
    /// the keel-named cgroup parent, and ulimits this sandbox can grant
    /// (it lacks CAP_SYS_RESOURCE, so podman's defaults are refused).
    pub fn run_args(&self) -> Vec<String> {
        vec![
            format!("--cgroup-parent=/{}", self.cgroup_parent),
            "--ulimit=nofile=1024:1024".into(),
            "--ulimit=nproc=1024:1024".into(),
        ]
    }

    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let root = Path::new("/sys/fs/cgroup");
        let direct = root.join(&self.cgroup_parent);
        if direct.is_dir() {
            out.push(direct);
        }
        if let Ok(rd) = fs::read_dir(root) {
            for e in rd.flatten() {
                let p = e.path().join(&self.cgroup_parent);
                if p.is_dir() {
                    out.push(p);
                }
            }
        }
        out
    }

    /// Ends every process in the containers' cgroup parent (only podman's
    /// processes for this test are there).
    fn kill_containers(&self) {
        for dir in self.cgroup_dirs() {
            for procs in walk(&dir).into_iter().map(|d| d.join("cgroup.procs")) {
                for pid in fs::read_to_string(procs)
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| l.trim().parse().ok())
                {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::SIGKILL,
                    );
                }
            }
        }
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        self.kill_containers();
        let deadline = Instant::now() + Duration::from_secs(5);
        for dir in self.cgroup_dirs() {
            let mut dirs = walk(&dir);
            dirs.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
            for d in dirs {
                while let Err(e) = fs::remove_dir(&d) {
                    if e.kind() == io::ErrorKind::NotFound || Instant::now() > deadline {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

/// `dir` and every directory below it.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(walk(&e.path()));
            }
        }
    }
    out
}

fn quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}
