//! A cgroup v2 directory for one test, removed on drop.

use std::{
    fs, io,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

/// Where cgroup v2 is mounted: the unified hierarchy of a hybrid host, or
/// /sys/fs/cgroup itself on a pure v2 host.
pub fn cgroup2_root() -> io::Result<PathBuf> {
    let mounts = fs::read_to_string("/proc/self/mounts")?;
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, dir, fstype) = (f.next()?, f.next()?, f.next()?);
            (fstype == "cgroup2").then(|| PathBuf::from(dir))
        })
        .next()
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "no cgroup2 mount in /proc/self/mounts",
            )
        })
}

/// A child cgroup of the cgroup v2 root, never the root itself.
pub struct TestCgroup {
    path: PathBuf,
}

impl TestCgroup {
    pub fn new(what: &str) -> io::Result<Self> {
        let path = cgroup2_root()?.join(crate::unique(what));
        fs::create_dir(&path)?;
        Ok(Self { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// PIDs currently in the cgroup.
    pub fn pids(&self) -> io::Result<Vec<i32>> {
        Ok(fs::read_to_string(self.path.join("cgroup.procs"))?
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect())
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // rmdir fails with EBUSY while processes remain; tests end their own
        // processes, so allow a moment for them to be reaped.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match fs::remove_dir(&self.path) {
                Ok(()) => return,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return,
                Err(e) if Instant::now() > deadline => {
                    eprintln!("cleanup: removing cgroup {}: {e}", self.path.display());
                    return;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}
