//! The BPF build → embed → load → attach pipeline, end to end: the agent's
//! embedded self-test program, attached to a test cgroup (never the root),
//! counts exactly the connects made by processes in that cgroup.

use std::net::TcpListener;

use keel_agent::bpf::{Probe, ProbeCounts};
use keel_tests::{TestCgroup, TestNetns, require_root};

const TESTBIN: &str = env!("CARGO_BIN_EXE_keel-testbin");

#[test]
fn probe_counts_connects_of_its_cgroup_only() {
    require_root();
    let netns = TestNetns::new("bpf").unwrap();
    let cgroup = TestCgroup::new("bpf").unwrap();
    let probe = Probe::attach(cgroup.path()).expect("load and attach the embedded probe");
    assert_eq!(
        probe.counts().unwrap(),
        ProbeCounts {
            connects: 0,
            loopback_connects: 0
        }
    );

    let listener = netns.run(|| TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap().to_string();

    // Outside the cgroup (this test process, inside the namespace): not counted.
    netns.run(|| std::net::TcpStream::connect(&addr)).unwrap();
    assert_eq!(
        probe.counts().unwrap().connects,
        0,
        "a process outside the cgroup was counted"
    );

    // Inside the cgroup: counted once, and recognised as loopback.
    let cg = cgroup.path().to_str().unwrap();
    let status = netns
        .command(TESTBIN)
        .args(["join-cgroup", cg, "--", TESTBIN, "connect", &addr])
        .status()
        .unwrap();
    assert!(
        status.success(),
        "connect from inside the cgroup failed: {status}"
    );
    assert_eq!(
        probe.counts().unwrap(),
        ProbeCounts {
            connects: 1,
            loopback_connects: 1
        }
    );
}
