//! Running one bundle to completion with libcontainer — create, start, wait,
//! delete — the work the shim does per container, without the shim's
//! bookkeeping. The runtime benchmark measures it in-process (as the shim
//! does it) and as `keel-agent shim-run --root R --id ID --bundle B` (a
//! process per container, as `runc run`/`crun run` are).

use std::{os::fd::OwnedFd, path::Path};

use libcontainer::{container::builder::ContainerBuilder, syscall::syscall::SyscallType};
use nix::{
    sys::wait::{WaitStatus, waitpid},
    unistd::Pid,
};

/// Runs the bundle's process with stdio on /dev/null and returns its exit
/// code (128+signal when killed).
pub fn run_bundle(root: &Path, id: &str, bundle: &Path) -> anyhow::Result<i32> {
    let null = || -> std::io::Result<OwnedFd> {
        Ok(std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")?
            .into())
    };
    let mut c = ContainerBuilder::new(id.to_string(), SyscallType::Linux)
        .with_root_path(root)?
        .with_stdin(null()?)
        .with_stdout(null()?)
        .with_stderr(null()?)
        .as_init(bundle)
        .with_systemd(false)
        .with_detach(true)
        .build()
        .map_err(|e| anyhow::anyhow!("create {id}: {e}"))?;
    let result = (|| {
        super::server::set_propagation(&c, bundle)?;
        c.start().map_err(|e| anyhow::anyhow!("start {id}: {e}"))?;
        let pid = c
            .pid()
            .ok_or_else(|| anyhow::anyhow!("{id}: no pid"))?
            .as_raw();
        loop {
            match waitpid(Pid::from_raw(pid), None) {
                Ok(WaitStatus::Exited(_, code)) => return Ok(code),
                Ok(WaitStatus::Signaled(_, s, _)) => return Ok(128 + s as i32),
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => anyhow::bail!("wait {id}: {e}"),
            }
        }
    })();
    c.delete(true)
        .map_err(|e| anyhow::anyhow!("delete {id}: {e}"))?;
    result
}

/// `keel-agent shim-run --root ROOT --id ID --bundle BUNDLE`.
pub fn main(args: &[String]) -> i32 {
    let mut it = args.iter();
    let (mut root, mut id, mut bundle) = (None, None, None);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--root" => root = it.next().cloned(),
            "--id" => id = it.next().cloned(),
            "--bundle" => bundle = it.next().cloned(),
            _ => {}
        }
    }
    let (Some(root), Some(id), Some(bundle)) = (root, id, bundle) else {
        eprintln!("usage: keel-agent shim-run --root ROOT --id ID --bundle BUNDLE");
        return 2;
    };
    match run_bundle(Path::new(&root), &id, Path::new(&bundle)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("shim-run: {e:#}");
            125
        }
    }
}
