//! Seccomp for containers: keel's default profile and the choice a pod
//! makes with `securityContext.seccompProfile`.
//!
//! The default (`RuntimeDefault`, also what an unset field gets, as
//! containerd's CRI plugin and Docker do) has the semantics of
//! containerd's and moby's default profile: an allow-list — every system
//! call not named fails with EPERM, including any a future kernel adds —
//! where
//!
//! - `clone` is allowed only without namespace flags (the mask
//!   `CLONE_NEWNS|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWCGROUP` must be
//!   clear), and `clone3`, whose flags live in memory seccomp cannot read,
//!   fails with ENOSYS so libcs fall back to `clone` (moby#42681);
//! - `personality` only with the harmless personas;
//! - calls that need a capability are allowed only when the container has
//!   it (CAP_SYS_ADMIN: mount, unshare, setns, any clone, bpf …;
//!   CAP_SYS_PTRACE: ptrace's cousins `process_vm_*`, `pidfd_getfd`,
//!   `process_madvise`, `kcmp`; CAP_SYS_MODULE, CAP_SYS_TIME, CAP_SYS_BOOT,
//!   CAP_SYSLOG, CAP_BPF, CAP_PERFMON …).
//!
//! What is not in it: AF_VSOCK and the rest of the socket families stay
//! reachable through `socket` as in moby's profile (the capability set
//! and the network namespace govern them), `io_uring_*` are left out as
//! moby leaves them out since 2023, as are 32-bit `vm86`, `umount` and
//! `fanotify_init` without CAP_SYS_ADMIN.
//!
//! `Unconfined` needs a node started with `--allow-privileged`;
//! `Localhost` reads an OCI seccomp JSON profile from the node's profile
//! directory (`--seccomp-profile-dir`, the kubelet's `<root>/seccomp`).

use std::path::{Component, Path};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Allowed for every container.
pub const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "ptrace",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socket",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
    // x86-64 only (the profile's architectures are the x86 family).
    "arch_prctl",
    "modify_ldt",
];

/// Calls allowed only with a capability in the container's bounding set.
pub const BY_CAPABILITY: &[(&str, &[&str])] = &[
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    (
        "CAP_SYS_ADMIN",
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "name_to_handle_at",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    (
        "CAP_SYS_MODULE",
        &["delete_module", "init_module", "finit_module"],
    ),
    ("CAP_SYS_PACCT", &["acct"]),
    (
        "CAP_SYS_PTRACE",
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
        ],
    ),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    (
        "CAP_SYS_TIME",
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
];

/// The namespace flags `clone` may not carry without CAP_SYS_ADMIN.
pub const CLONE_NAMESPACE_MASK: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;

/// Personas `personality(2)` may switch to: PER_LINUX (0), PER_LINUX32
/// (0x8), UNAME26 (0x20000) with either, and the query (0xffffffff).
const PERSONAS: &[u64] = &[0x0, 0x0008, 0x20000, 0x20008, 0xffff_ffff];

/// What the container runs under, from `securityContext.seccompProfile`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Profile {
    /// keel's default (the containerd/moby semantics above).
    #[default]
    RuntimeDefault,
    /// No filter (only on nodes with `--allow-privileged`).
    Unconfined,
    /// The OCI `linux.seccomp` object read from the node's profile directory.
    Localhost(Value),
}

/// The default profile for a container with `capabilities` (its bounding
/// set, `CAP_` names): the `linux.seccomp` section of the OCI spec.
pub fn default_profile(capabilities: &[String]) -> Value {
    let has = |c: &str| capabilities.iter().any(|x| x == c);
    let mut rules = vec![json!({"names": ALLOWED, "action": "SCMP_ACT_ALLOW"})];
    for p in PERSONAS {
        rules.push(json!({
            "names": ["personality"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": p, "op": "SCMP_CMP_EQ"}],
        }));
    }
    for (cap, names) in BY_CAPABILITY {
        if has(cap) {
            rules.push(json!({"names": names, "action": "SCMP_ACT_ALLOW"}));
        }
    }
    if !has("CAP_SYS_ADMIN") {
        rules.push(json!({
            "names": ["clone"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{
                "index": 0,
                "value": CLONE_NAMESPACE_MASK,
                "valueTwo": 0,
                "op": "SCMP_CMP_MASKED_EQ",
            }],
        }));
        rules.push(json!({
            "names": ["clone3"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": libc::ENOSYS,
        }));
    }
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": libc::EPERM,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": rules,
    })
}

/// Rewrites the spec's seccomp rules for youki's libcontainer (keel's
/// shim), which reads `SCMP_CMP_MASKED_EQ` the other way round from runc:
/// runc (and every profile written for it: moby's, containerd's, ours)
/// takes `value` as the mask and `valueTwo` as the datum; libcontainer
/// 0.7's `translate_op` takes `valueTwo` as the mask. Unswapped, the clone
/// rule's mask would be 0 — libseccomp then masks the datum to 0 as well,
/// and every clone, namespace flags included, would pass.
pub fn for_libcontainer(spec: &mut Value) {
    let Some(rules) = spec
        .pointer_mut("/linux/seccomp/syscalls")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for arg in rules
        .iter_mut()
        .filter_map(|r| r.get_mut("args").and_then(Value::as_array_mut))
        .flatten()
    {
        if arg["op"] == "SCMP_CMP_MASKED_EQ" {
            let value = arg.get("value").cloned().unwrap_or(json!(0));
            let two = arg.get("valueTwo").cloned().unwrap_or(json!(0));
            arg["value"] = two;
            arg["valueTwo"] = value;
        }
    }
}

/// Why a `Localhost` profile cannot be used (the caller names the field).
#[derive(Debug, thiserror::Error)]
pub enum LocalhostError {
    #[error(
        "{0:?} must be a relative path without '..' inside the node's seccomp profile directory"
    )]
    Path(String),
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not an OCI seccomp profile: {reason}")]
    Invalid { path: String, reason: String },
}

/// Reads the `Localhost` profile `rel` from `dir`: a JSON object with a
/// `defaultAction`, as the OCI runtime spec's `linux.seccomp` (the format
/// the kubelet's profile files use).
pub fn localhost(dir: &Path, rel: &str) -> Result<Value, LocalhostError> {
    let p = Path::new(rel);
    if rel.is_empty()
        || p.is_absolute()
        || p.components().any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(LocalhostError::Path(rel.to_string()));
    }
    let path = dir.join(p);
    let shown = path.display().to_string();
    let text = std::fs::read(&path).map_err(|source| LocalhostError::Read {
        path: shown.clone(),
        source,
    })?;
    let v: Value = serde_json::from_slice(&text).map_err(|e| LocalhostError::Invalid {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    if !v.get("defaultAction").is_some_and(Value::is_string) {
        return Err(LocalhostError::Invalid {
            path: shown,
            reason: "no defaultAction".into(),
        });
    }
    // What the runtimes will parse: refuse here, with the file named,
    // rather than at container start.
    serde_json::from_value::<oci_spec::runtime::LinuxSeccomp>(v.clone()).map_err(|e| {
        LocalhostError::Invalid {
            path: shown,
            reason: e.to_string(),
        }
    })?;
    Ok(v)
}

#[cfg(test)]
mod tests;
