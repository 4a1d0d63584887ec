//! A private bpf filesystem for one test: a keel-named directory in the
//! temp dir with its own bpffs instance mounted on it, so pins never touch
//! the host's /sys/fs/bpf. Unmounted (dropping every pin in it) and removed
//! on drop; the sweeper unmounts leftovers by name.

use std::path::{Path, PathBuf};

pub struct TestBpffs {
    dir: PathBuf,
}

impl TestBpffs {
    pub fn new(what: &str) -> std::io::Result<Self> {
        let dir = std::env::temp_dir().join(crate::unique(&format!("bpffs-{what}")));
        std::fs::create_dir(&dir)?;
        if let Err(e) = nix::mount::mount(
            Some("bpf"),
            &dir,
            Some("bpf"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        ) {
            let _ = std::fs::remove_dir(&dir);
            return Err(e.into());
        }
        Ok(Self { dir })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for TestBpffs {
    fn drop(&mut self) {
        if let Err(e) = nix::mount::umount2(&self.dir, nix::mount::MntFlags::MNT_DETACH) {
            eprintln!("cleanup: unmounting {}: {e}", self.dir.display());
        }
        if let Err(e) = std::fs::remove_dir(&self.dir) {
            eprintln!("cleanup: removing {}: {e}", self.dir.display());
        }
    }
}
