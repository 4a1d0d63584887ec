//! BPF host routing in the lab, with real agents and real pods: the fast
//! path carries pod traffic (its counters say so), a node forwarding through
//! its kernel stack talks to nodes forwarding in BPF over every kind of
//! peer, switching a node between the two leaves nothing behind, pods that
//! come and go are tracked, and an agent restart adopts what is pinned
//! without changing it or cutting a flow. Egress to the lab's outside host
//! is SNATed to the node's IP whichever forwards pod traffic.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use keel_agent::bpf::sys;
use keel_api::Pod;
use keel_lab::{Lab, Mode, block_on};
use keel_tests::{
    labnet::{
        assert_flow_alive, check_pairs, create_pod, egress_source, hostrouting, lab, open_flow,
        ready_pods, wait_programmed,
    },
    process::wait_for,
};

fn pins(lab: &Lab, node: &str) -> PathBuf {
    lab.topology().node_bpffs(node).join("net")
}

/// Link pin → the kernel's link id (unchanged while a link is adopted).
fn link_ids(lab: &Lab, node: &str) -> BTreeMap<String, u32> {
    std::fs::read_dir(pins(lab, node).join("links"))
        .unwrap()
        .flatten()
        .map(|e| {
            let fd = sys::obj_get(&e.path()).unwrap();
            let info = sys::link_info(std::os::fd::AsFd::as_fd(&fd)).unwrap();
            (e.file_name().to_string_lossy().into_owned(), info.id)
        })
        .collect()
}

fn agent_log(lab: &Lab, node: &str) -> PathBuf {
    lab.state
        .processes
        .iter()
        .find(|p| p.role == node)
        .unwrap()
        .log
        .clone()
}

/// Restarts a node's agent (with `flags` changed) and waits until it has
/// registered and taken its first look at host routing; returns the log
/// written since the restart.
fn restart(lab: &mut Lab, node: &str, flags: &[(&str, &str)]) -> String {
    let log = agent_log(lab, node);
    let runs = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches("keel-agent starting")
            .count()
    };
    let before = runs();
    lab.stop_agent(node).unwrap();
    lab.start_agent_with(node, flags).unwrap();
    wait_for("the agent to restart", Duration::from_secs(20), || {
        let text = std::fs::read_to_string(&log).ok()?;
        let since = text.rsplit("keel-agent starting").next()?.to_string();
        (runs() > before && since.contains("node registered") && since.contains("host routing"))
            .then_some(())
    });
    // Give the reconcilers a moment to act on what they found.
    std::thread::sleep(Duration::from_secs(2));
    let text = std::fs::read_to_string(&log).unwrap();
    text.rsplit("keel-agent starting")
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn bpf_and_kernel_nodes_interoperate_and_switching_leaves_nothing_behind() {
    // node-1 and node-3 on segment 0 (direct route), node-2 on segment 1
    // (VXLAN from both).
    let mut lab = lab("hrmix", Mode::Auto, 3, 2);
    for (p, n) in [
        ("a1", "node-1"),
        ("a2", "node-1"),
        ("b", "node-2"),
        ("c", "node-3"),
    ] {
        create_pod(&lab, p, n);
    }
    let pods = ready_pods(&lab, 4);
    wait_programmed(&lab, &pods);
    let pairs = [("a1", "a2"), ("a1", "b"), ("a1", "c"), ("b", "c")];
    check_pairs(&pods, &pairs);
    for node in ["node-1", "node-2", "node-3"] {
        let s = hostrouting(&lab, node);
        assert!(s.stats["to_pod"] > 0, "{node}: {:?}", s.stats);
        assert!(s.stats["to_device"] > 0, "{node}: {:?}", s.stats);
        assert_eq!(s.cidrs.len(), 3, "{node}: every node's pod CIDR");
    }
    let s1 = hostrouting(&lab, "node-1");
    assert_eq!(s1.endpoints.len(), 2, "a1 and a2: {:?}", s1.endpoints);
    assert!(
        s1.links.keys().filter(|l| l.starts_with("to_pod-")).count() == 2,
        "uplink and VXLAN device: {:?}",
        s1.links
    );

    // node-2 goes back to the kernel's stack: everything it pinned goes.
    let log = restart(&mut lab, "node-2", &[("--host-routing", "kernel")]);
    assert!(
        log.contains("the kernel's IP stack forwards pod traffic"),
        "{log}"
    );
    assert!(!pins(&lab, "node-2").exists(), "node-2 left pins");
    // Mixed: node-1 and node-3 in BPF, node-2 in its stack, over VXLAN.
    let before = hostrouting(&lab, "node-1").stats;
    check_pairs(&pods, &pairs);
    let after = hostrouting(&lab, "node-1").stats;
    assert!(
        after["to_device"] > before["to_device"],
        "{before:?} → {after:?}"
    );
    assert!(after["to_pod"] > before["to_pod"], "{before:?} → {after:?}");
    // Egress from a node in its kernel stack and from one in BPF (auto
    // mode: node-2 reaches node-1 by VXLAN, node-3 by a direct route).
    let outside = lab.topology().outside.ips[0];
    for (pod, node) in [("b", "node-2"), ("a1", "node-1"), ("c", "node-3")] {
        let seen = egress_source(&lab, &pods[pod].1, outside)
            .unwrap_or_else(|e| panic!("{pod} → outside: {e:#}"));
        assert_eq!(
            seen,
            lab.topology().node(node).unwrap().ip,
            "{pod} on {node}"
        );
    }

    // And back to BPF.
    let log = restart(&mut lab, "node-2", &[("--host-routing", "bpf")]);
    assert!(log.contains("host routing: BPF"), "{log}");
    wait_for("node-2's endpoints", Duration::from_secs(10), || {
        (hostrouting(&lab, "node-2").endpoints.len() == 1).then_some(())
    });
    check_pairs(&pods, &pairs);
    assert!(hostrouting(&lab, "node-2").stats["to_pod"] > 0);
}

#[test]
fn pods_are_tracked_and_a_restart_adopts_without_a_change() {
    let mut lab = lab("hrpods", Mode::Route, 2, 1);
    create_pod(&lab, "a", "node-1");
    create_pod(&lab, "b", "node-2");
    let pods = ready_pods(&lab, 2);
    let (a_ip, _) = pods["a"].clone();
    wait_for("a's endpoint", Duration::from_secs(10), || {
        hostrouting(&lab, "node-1")
            .endpoints
            .contains_key(&a_ip)
            .then_some(())
    });
    let from_pod_links = |lab: &Lab| {
        hostrouting(lab, "node-1")
            .links
            .keys()
            .filter(|l| l.starts_with("from_pod-"))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(from_pod_links(&lab).len(), 1);

    // a goes: its endpoint and its veth's link go with it.
    let c = lab.client().unwrap();
    block_on(c.delete::<Pod>("default", "a")).unwrap();
    wait_for(
        "a's endpoint and link to go",
        Duration::from_secs(20),
        || {
            let s = hostrouting(&lab, "node-1");
            (!s.endpoints.contains_key(&a_ip) && from_pod_links(&lab).is_empty()).then_some(())
        },
    );

    // A new pod is picked up and reached through the fast path.
    create_pod(&lab, "a2", "node-1");
    let pods = ready_pods(&lab, 2);
    let (a2_ip, a2_ns) = pods["a2"].clone();
    wait_for("a2's endpoint", Duration::from_secs(10), || {
        hostrouting(&lab, "node-1")
            .endpoints
            .contains_key(&a2_ip)
            .then_some(())
    });
    check_pairs(&pods, &[("a2", "b")]);

    // A long-lived flow from a2 to b across the agent's restart.
    let (b_ip, b_ns) = pods["b"].clone();
    let (mut client, mut server) = open_flow(&a2_ns, &b_ns, b_ip);
    let ids = link_ids(&lab, "node-1");
    let maps = hostrouting(&lab, "node-1");
    let log = restart(&mut lab, "node-1", &[]);
    assert!(
        log.contains(&format!("adopted={}", ids.len())),
        "every pinned link adopted:\n{log}"
    );
    assert!(
        !log.contains("host routing updated"),
        "the restarted agent changed host routing:\n{log}"
    );
    assert_eq!(link_ids(&lab, "node-1"), ids, "links replaced, not adopted");
    let after = hostrouting(&lab, "node-1");
    assert_eq!(after.endpoints, maps.endpoints);
    assert_eq!(after.cidrs, maps.cidrs);

    for _ in 0..3 {
        assert_flow_alive(&mut client, &mut server);
    }
    let later = hostrouting(&lab, "node-1").stats;
    assert!(
        later["to_device"] > after.stats["to_device"] && later["to_pod"] > after.stats["to_pod"],
        "the flow still takes the fast path after the restart: {:?} → {later:?}",
        after.stats
    );
}
