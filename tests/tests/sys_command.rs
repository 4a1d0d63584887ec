//! keel-sys's "run this program in that namespace" helper against the
//! kernel: the child runs in the namespace (not the parent's), and the
//! cgroup and new-session options take effect before the program starts.

use std::process::Stdio;

use keel_sys::command::InNetns;
use keel_tests::{TestCgroup, TestNetns, require_root};

/// Runs `sh -c script` as built by `enter` and returns its trimmed stdout.
fn sh(enter: InNetns, script: &str) -> String {
    let out = enter
        .command("sh")
        .args(["-c", script])
        .stderr(Stdio::inherit())
        .output()
        .expect("running sh");
    assert!(out.status.success(), "sh -c {script:?}: {}", out.status);
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

#[test]
fn the_child_runs_in_the_namespace_and_the_parent_stays() {
    require_root();
    let ns = TestNetns::new("sys-cmd").expect("netns");
    let inode = ns.ns().inode().expect("inode");
    let link = sh(
        InNetns::new(ns.ns()).expect("enter"),
        "readlink /proc/self/ns/net",
    );
    assert_eq!(link, format!("net:[{inode}]"));
    // Only this namespace's loopback is visible, not the host's links.
    let links = sh(InNetns::new(ns.ns()).expect("enter"), "ip -o link | wc -l");
    assert_eq!(links, "1", "links seen in the namespace");
    let own = std::fs::read_link("/proc/thread-self/ns/net").expect("own netns");
    assert_ne!(
        own.to_string_lossy(),
        format!("net:[{inode}]"),
        "the parent must not have moved"
    );
}

#[test]
fn setsid_and_cgroup_apply_before_exec() {
    require_root();
    let ns = TestNetns::new("sys-cmd-opts").expect("netns");
    let cg = TestCgroup::new("sys-cmd").expect("cgroup");
    // Field 6 of /proc/PID/stat is the session id; $$ is the shell's pid;
    // the cgroup v2 line of /proc/PID/cgroup is `0::PATH` (also on hybrid hosts).
    let script = "echo $$; cut -d' ' -f6 /proc/$$/stat; grep '^0::' /proc/$$/cgroup";
    let plain = sh(InNetns::new(ns.ns()).expect("enter"), script);
    let lines: Vec<&str> = plain.lines().collect();
    assert_ne!(lines[0], lines[1], "without setsid: the parent's session");
    let name = cg.path().file_name().unwrap().to_string_lossy().to_string();
    assert!(!lines[2].contains(&name), "{plain}");

    let opts = sh(
        InNetns::new(ns.ns())
            .expect("enter")
            .setsid()
            .cgroup(cg.path())
            .expect("cgroup"),
        script,
    );
    let lines: Vec<&str> = opts.lines().collect();
    assert_eq!(lines[0], lines[1], "setsid: the shell leads its session");
    assert!(
        lines[2].ends_with(&format!("/{name}")),
        "cgroup: {}",
        lines[2]
    );
}
