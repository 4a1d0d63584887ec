//! Support for the runtime tests: test images built here (Debian's static
//! busybox, keel-testbin with the shared libraries it needs), written as OCI
//! image layouts; Debian's `docker-registry` serving them on the loopback of
//! a test network namespace (pushed with `skopeo`); and a guard over a
//! runtime root that removes its shims, containers, mounts and cgroups on
//! drop.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::{TestNetns, process};

pub use keel_lab::images::{ImageSpec, layout_manifest_digest};

/// [`keel_lab::images::build_layout`] with this build's keel-testbin.
pub fn build_layout(spec: &ImageSpec, dir: &Path) -> PathBuf {
    keel_lab::images::build_layout(spec, dir, &process::bin("keel-testbin"))
        .expect("building a test image")
}

/// [`keel_lab::images::build_rootfs`] with this build's keel-testbin.
pub fn build_rootfs(spec: &ImageSpec, dir: &Path) -> PathBuf {
    keel_lab::images::build_rootfs(spec, dir, &process::bin("keel-testbin"))
        .expect("building a test rootfs")
}

/// Debian's docker-registry on 127.0.0.1:PORT inside a test namespace.
pub struct TestRegistry {
    child: Option<Child>,
    dir: tempfile::TempDir,
    data: PathBuf,
    pub port: u16,
}

/// A command that runs inside the network namespace at `path` (a named
/// one: `/run/netns/NAME`), keeping the host's mounts.
pub fn netns_command(path: &Path, program: &str) -> Command {
    let ns = keel_sys::ns::NetNs::open(path).unwrap_or_else(|e| panic!("{e}"));
    ns.command(program).unwrap_or_else(|e| panic!("{e}"))
}

impl TestRegistry {
    pub fn start(ns: &TestNetns, port: u16) -> Self {
        Self::start_at(ns.ns().path(), port, None)
    }

    /// A registry in the named network namespace at `netns`, serving
    /// `data` (another registry's storage, to serve the same images on
    /// several nodes' loopbacks) or a fresh directory.
    pub fn start_at(netns: &Path, port: u16, data: Option<&Path>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("keel-t-registry-")
            .tempdir()
            .unwrap();
        let data = data
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dir.path().join("data"));
        let cfg = dir.path().join("config.yml");
        fs::write(
            &cfg,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                data.display()
            ),
        )
        .unwrap();
        let log = fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = netns_command(netns, "docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting docker-registry");
        let mut r = Self {
            child: Some(child),
            dir,
            data: PathBuf::new(),
            port,
        };
        let addr = format!("127.0.0.1:{port}");
        process::wait_for("docker-registry to listen", Duration::from_secs(20), || {
            if let Some(s) = r.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!(
                    "docker-registry exited ({s}): {}",
                    fs::read_to_string(r.dir.path().join("registry.log")).unwrap_or_default()
                );
            }
            keel_sys::ns::NetNs::open(netns)
                .ok()?
                .run(|| std::net::TcpStream::connect(&addr).ok().map(drop))
                .ok()?
        });
        r.data = data;
        r
    }

    /// The storage directory (to serve it from another namespace too).
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Pushes an OCI layout (its single image, tagged `tag`) as `repo:tag`.
    pub fn push(&self, ns: &TestNetns, layout: &Path, tag: &str, repo: &str) -> String {
        self.push_at(ns.ns().path(), layout, tag, repo)
    }

    /// [`Self::push`] from the named namespace at `netns`.
    pub fn push_at(&self, netns: &Path, layout: &Path, tag: &str, repo: &str) -> String {
        let dest = format!("{}/{repo}:{tag}", self.host());
        let out = netns_command(netns, "skopeo")
            .args(["copy", "--quiet", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{dest}"))
            .output()
            .expect("skopeo");
        assert!(
            out.status.success(),
            "skopeo copy to {dest}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        dest
    }

    /// Where the registry keeps a blob (to corrupt it on purpose).
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.data
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            process::stop_child(&mut c, Duration::from_secs(2));
        }
    }
}

/// A runtime root (`keel-t-runtime-…` temp dir) and cgroup parent
/// (`keel-t-rt-…`) for one test. Drop kills the shims and containers it
/// holds (by the PIDs their files name), unmounts the rootfs overlays and
/// removes the cgroups and the directory.
pub struct RuntimeRoot {
    pub dir: tempfile::TempDir,
    pub cgroup_parent: String,
}

impl RuntimeRoot {
    pub fn new() -> Self {
        Self {
            dir: tempfile::Builder::new()
                .prefix("keel-t-runtime-")
                .tempdir()
                .unwrap(),
            cgroup_parent: crate::unique("rt"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Shim PIDs from their pid files.
    pub fn shim_pids(&self) -> Vec<i32> {
        let mut out = Vec::new();
        if let Ok(rd) = fs::read_dir(self.path().join("pods")) {
            for e in rd.flatten() {
                if let Some(p) = fs::read_to_string(e.path().join("shim.pid"))
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                {
                    out.push(p);
                }
            }
        }
        out
    }

    /// PIDs in the cgroups under this root's parent (every hierarchy).
    pub fn container_pids(&self) -> Vec<i32> {
        let mut out = Vec::new();
        fn walk(d: &Path, out: &mut Vec<i32>) {
            if let Ok(s) = fs::read_to_string(d.join("cgroup.procs")) {
                out.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
            }
            if let Ok(rd) = fs::read_dir(d) {
                for e in rd.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        walk(&e.path(), out);
                    }
                }
            }
        }
        for h in cgroup_hierarchies() {
            walk(&h.join(&self.cgroup_parent), &mut out);
        }
        out.sort();
        out.dedup();
        out
    }
}

impl Default for RuntimeRoot {
    fn default() -> Self {
        Self::new()
    }
}

/// /sys/fs/cgroup and each mounted hierarchy under it.
pub fn cgroup_hierarchies() -> Vec<PathBuf> {
    let mut v = vec![PathBuf::from("/sys/fs/cgroup")];
    if let Ok(rd) = fs::read_dir("/sys/fs/cgroup") {
        v.extend(
            rd.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path()),
        );
    }
    v
}

impl Drop for RuntimeRoot {
    fn drop(&mut self) {
        use nix::{
            sys::signal::{Signal, kill},
            unistd::Pid,
        };
        let pids: Vec<i32> = self
            .shim_pids()
            .into_iter()
            .chain(self.container_pids())
            .collect();
        for p in &pids {
            let _ = kill(Pid::from_raw(*p), Signal::SIGKILL);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline
            && pids
                .iter()
                .any(|p| Path::new(&format!("/proc/{p}")).exists() && !is_zombie(*p))
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let root = self.path().display().to_string();
        let mut mine: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4))
            .filter(|m| m.starts_with(&root))
            .collect();
        mine.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mine {
            if let Err(e) = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH) {
                eprintln!("cleanup: umount {m}: {e}");
            }
        }
        for h in cgroup_hierarchies() {
            let d = h.join(&self.cgroup_parent);
            if d.exists() {
                remove_cgroup_tree(&d);
            }
        }
    }
}

fn is_zombie(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

fn remove_cgroup_tree(d: &Path) {
    if let Ok(rd) = fs::read_dir(d) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while let Err(e) = fs::remove_dir(d) {
        if e.kind() == std::io::ErrorKind::NotFound || std::time::Instant::now() > deadline {
            if e.kind() != std::io::ErrorKind::NotFound {
                eprintln!("cleanup: rmdir {}: {e}", d.display());
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
