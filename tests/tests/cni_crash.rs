//! kill -9 at any point of an ADD, then DEL (or GC) of the attachment:
//! nothing leaks (no veth, no reservation), the store stays readable, and
//! no address is handed out twice afterwards.
//!
//! The kill instants are spread over the measured length of one ADD, so
//! they land before, during and after each step; the test asserts that
//! some kills really did interrupt an ADD half-way (otherwise it would
//! prove nothing).

use std::{collections::HashSet, os::unix::process::ExitStatusExt, time::Instant};

use keel_tests::{
    cni::{Node, Pod, cni_path, keel_cni_bin, result_ip},
    require_root,
};
use serde_json::json;

const RUNS: u32 = 40;

#[test]
fn kill_9_during_add_then_del_or_gc_leaks_nothing() {
    require_root();
    let node = Node::new("cni-kill");
    let conf = node.conf("1.1.0", "kill", "10.41.0.0/24");
    let (bin, path) = (keel_cni_bin(false), cni_path(false));

    // How long one ADD takes here (the fastest of three, so a load spike
    // does not stretch the kill instants past the end of most ADDs).
    let probe = Pod::new("cni-killp");
    let full = (0..3)
        .map(|_| {
            let start = Instant::now();
            node.run(&bin, "ADD", Some(&probe.attach()), &path, &conf)
                .ok();
            let took = start.elapsed();
            node.run(&bin, "DEL", Some(&probe.attach()), &path, &conf)
                .ok();
            took
        })
        .min()
        .unwrap();

    let mut interrupted_with_leftovers = 0;
    for i in 0..RUNS {
        let pod = Pod::new("cni-killp");
        let attach = pod.attach();
        let delay = full * i / RUNS;
        let mut child = node.spawn(&bin, "ADD", Some(&attach), &path, &conf);
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        let killed = status.signal() == Some(9);
        let leftovers = !node.keel_links().is_empty() || !node.reservations("kill").is_empty();
        if killed && leftovers {
            interrupted_with_leftovers += 1;
        }

        // The runtime cleans up after a failed ADD: DEL, or later a GC.
        if i % 2 == 0 {
            node.run(&bin, "DEL", Some(&attach), &path, &conf).ok();
        } else {
            let mut gc = conf.clone();
            gc["cni.dev/valid-attachments"] = json!([]);
            node.run(&bin, "GC", None, &path, &gc).ok();
        }
        assert!(
            node.keel_links().is_empty(),
            "run {i} (kill after {delay:?}): a veth leaked"
        );
        assert!(
            node.reservations("kill").is_empty(),
            "run {i} (kill after {delay:?}): an address leaked"
        );
        assert_eq!(pod.links().len(), 1, "run {i}: the pod kept an interface");
    }
    eprintln!(
        "one ADD took {full:?}; {interrupted_with_leftovers}/{RUNS} kills interrupted an ADD half-way"
    );
    assert!(
        interrupted_with_leftovers > 0,
        "no kill landed inside an ADD; the test proved nothing"
    );

    // The store still works and hands out distinct addresses.
    let pods: Vec<Pod> = (0..3).map(|_| Pod::new("cni-killq")).collect();
    let ips: HashSet<_> = pods
        .iter()
        .map(|p| {
            result_ip(
                &node
                    .run(&bin, "ADD", Some(&p.attach()), &path, &conf)
                    .ok()
                    .unwrap(),
            )
        })
        .collect();
    assert_eq!(ips.len(), 3);
    assert_eq!(node.reservations("kill").len(), 3);
}
