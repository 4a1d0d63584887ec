//! `keel-agent shim-exec --root ROOT --id ID -- CMD…`: runs CMD inside a
//! running container with libcontainer's tenant builder (joining its
//! namespaces and cgroup, with its user, env and working directory), passes
//! stdio through, waits and exits with CMD's status (128+signal if killed).

use std::path::PathBuf;

use libcontainer::{container::builder::ContainerBuilder, syscall::syscall::SyscallType};
use nix::{
    sys::wait::{WaitStatus, waitpid},
    unistd::Pid,
};

pub fn main(args: &[String]) -> i32 {
    let mut root = None;
    let mut id = None;
    let mut it = args.iter();
    let mut cmd = Vec::new();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--root" => root = it.next().map(PathBuf::from),
            "--id" => id = it.next().cloned(),
            "--" => {
                cmd = it.by_ref().cloned().collect();
            }
            _ => {}
        }
    }
    let (Some(root), Some(id)) = (root, id) else {
        eprintln!("usage: keel-agent shim-exec --root ROOT --id ID -- CMD...");
        return 2;
    };
    if cmd.is_empty() {
        eprintln!("shim-exec: no command");
        return 2;
    }
    let pid = match ContainerBuilder::new(id.clone(), SyscallType::Linux)
        .with_root_path(root)
        .and_then(|b| {
            b.as_tenant()
                .with_container_args(cmd.clone())
                .with_detach(false)
                .build()
        }) {
        Ok(pid) => pid,
        Err(e) => {
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
