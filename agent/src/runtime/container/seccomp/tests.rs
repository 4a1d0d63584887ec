use super::*;

fn caps(c: &[&str]) -> Vec<String> {
    c.iter().map(|s| s.to_string()).collect()
}

fn allowed_unconditionally(p: &Value) -> Vec<String> {
    p["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "SCMP_ACT_ALLOW" && r.get("args").is_none())
        .flat_map(|r| r["names"].as_array().unwrap().iter())
        .map(|n| n.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn default_is_an_allow_list() {
    let p = default_profile(&caps(crate::runtime::container::resolve::DEFAULT_CAPS));
    assert_eq!(p["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(p["defaultErrnoRet"], libc::EPERM);
    let allowed = allowed_unconditionally(&p);
    // What the deny-list let through, and what escapes a container.
    for denied in [
        "unshare",
        "setns",
        "mount",
        "umount2",
        "bpf",
        "clone3",
        "pidfd_getfd",
        "process_madvise",
        "process_vm_readv",
        "fanotify_init",
        "vm86",
        "umount",
        "keyctl",
        "init_module",
        "kexec_load",
        "io_uring_setup",
        "userfaultfd",
        "clone",
    ] {
        assert!(!allowed.contains(&denied.to_string()), "{denied} allowed");
    }
    for ok in ["read", "execve", "socket", "futex", "rseq", "chroot"] {
        // chroot comes with CAP_SYS_CHROOT, which the default set has.
        assert!(allowed.contains(&ok.to_string()), "{ok} not allowed");
    }
}

#[test]
fn clone_without_namespace_flags_and_clone3_enosys() {
    let p = default_profile(&caps(&["CAP_KILL"]));
    let rules = p["syscalls"].as_array().unwrap();
    let clone = rules
        .iter()
        .find(|r| r["names"] == json!(["clone"]))
        .unwrap();
    assert_eq!(clone["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
    assert_eq!(clone["args"][0]["value"], 0x7E02_0000u64);
    assert_eq!(clone["args"][0]["valueTwo"], 0);
    let clone3 = rules
        .iter()
        .find(|r| r["names"] == json!(["clone3"]))
        .unwrap();
    assert_eq!(clone3["action"], "SCMP_ACT_ERRNO");
    assert_eq!(clone3["errnoRet"], libc::ENOSYS);
    // With CAP_SYS_ADMIN both are plain allows, and the mask rule is gone.
    let p = default_profile(&caps(&["CAP_SYS_ADMIN"]));
    let allowed = allowed_unconditionally(&p);
    for n in ["clone", "clone3", "unshare", "mount", "setns"] {
        assert!(allowed.contains(&n.to_string()), "{n}");
    }
    assert!(
        !p["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.get("args").is_some() && r["names"] == json!(["clone"]))
    );
}

#[test]
fn capability_conditional_rules() {
    for (cap, call) in [
        ("CAP_SYS_PTRACE", "process_vm_readv"),
        ("CAP_SYS_PTRACE", "pidfd_getfd"),
        ("CAP_SYS_MODULE", "finit_module"),
        ("CAP_SYS_TIME", "clock_settime"),
        ("CAP_BPF", "bpf"),
        ("CAP_PERFMON", "perf_event_open"),
        ("CAP_SYS_BOOT", "reboot"),
        ("CAP_SYS_CHROOT", "chroot"),
    ] {
        assert!(!allowed_unconditionally(&default_profile(&[])).contains(&call.to_string()));
        let with = allowed_unconditionally(&default_profile(&caps(&[cap])));
        assert!(with.contains(&call.to_string()), "{cap} → {call}");
    }
}

#[test]
fn runtimes_parse_the_default_profile() {
    let p = default_profile(&caps(crate::runtime::container::resolve::DEFAULT_CAPS));
    let s: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(p).unwrap();
    assert_eq!(s.default_errno_ret(), Some(libc::EPERM as u32));
}

#[test]
fn localhost_profiles_come_from_the_profile_dir() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("profiles")).unwrap();
    let good = json!({"defaultAction": "SCMP_ACT_LOG"});
    std::fs::write(d.path().join("profiles/log.json"), good.to_string()).unwrap();
    std::fs::write(d.path().join("bad.json"), "{\"syscalls\": []}").unwrap();
    assert_eq!(localhost(d.path(), "profiles/log.json").unwrap(), good);
    for rel in ["", "/etc/x.json", "../x.json", "profiles/../log.json"] {
        assert!(
            matches!(localhost(d.path(), rel), Err(LocalhostError::Path(_))),
            "{rel:?}"
        );
    }
    assert!(matches!(
        localhost(d.path(), "missing.json"),
        Err(LocalhostError::Read { .. })
    ));
    assert!(matches!(
        localhost(d.path(), "bad.json"),
        Err(LocalhostError::Invalid { .. })
    ));
}

#[test]
fn libcontainer_gets_the_mask_where_it_reads_it() {
    let mut spec = json!({"linux": {"seccomp": default_profile(&[])}});
    for_libcontainer(&mut spec);
    let rules = spec["linux"]["seccomp"]["syscalls"].as_array().unwrap();
    let clone = rules
        .iter()
        .find(|r| r["names"] == json!(["clone"]))
        .unwrap();
    assert_eq!(clone["args"][0]["valueTwo"], CLONE_NAMESPACE_MASK);
    assert_eq!(clone["args"][0]["value"], 0);
    // Other comparisons are left as they are.
    let p = rules
        .iter()
        .find(|r| r["names"] == json!(["personality"]) && r["args"][0]["value"] == 8)
        .unwrap();
    assert_eq!(p["args"][0]["op"], "SCMP_CMP_EQ");
}
