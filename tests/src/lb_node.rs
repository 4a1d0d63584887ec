//! A one-node cluster inside one test network namespace, for testing the
//! load balancer through the real binaries: keel-control on the
//! namespace's loopback, keel-agent with the load balancer on (cgroup root
//! = a test cgroup, pins in a private bpffs, uplink = a veth `up0` holding
//! the node IP 10.0.0.1), and an API client whose connections are opened
//! inside the namespace. Everything is removed on drop.

use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::{Child, Stdio},
    time::Duration,
};

use keel_api::client::{Client, ClientConfig};
use keel_sys::ns::NetNs;

use crate::{
    TestBpffs, TestCgroup, TestNetns,
    process::{bin, stop_child, wait_for},
};

pub const NODE: &str = "lb-node";
pub const NODE_IP: &str = "10.0.0.1";

/// A process started inside a namespace, ended by PID on drop.
pub struct NsProcess {
    child: Option<Child>,
    netns: PathBuf,
    program: PathBuf,
    args: Vec<String>,
    pub log: PathBuf,
}

impl NsProcess {
    /// Starts `program args` inside `netns`, stderr appended to `log`.
    pub fn start(netns: &TestNetns, program: PathBuf, args: Vec<String>, log: PathBuf) -> Self {
        let mut p = NsProcess {
            child: None,
            netns: NetNs::named_path(netns.name()),
            program,
            args,
            log,
        };
        p.spawn();
        p
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let ns = NetNs::open(&self.netns).expect("netns file");
        let mut cmd = ns.command(&self.program).expect("netns handle");
        cmd.args(&self.args)
            .env("RUST_LOG", "info,keel_agent=debug")
            // On their flags alone, whatever this machine's /etc/keel holds.
            .env("KEEL_AGENT_CONFIG", "/dev/null")
            .env("KEEL_CONTROL_CONFIG", "/dev/null")
            .stdout(Stdio::null())
            .stderr(log);
        self.child = Some(cmd.spawn().expect("spawning a keel binary"));
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, Duration::ZERO);
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, Duration::from_secs(5));
        }
    }

    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "still running");
        self.spawn();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NsProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct LbNode {
    pub agent: NsProcess,
    pub control: NsProcess,
    pub client: Client,
    pub cgroup: TestCgroup,
    pub bpffs: TestBpffs,
    pub netns: TestNetns,
    pub dir: tempfile::TempDir,
}

impl LbNode {
    pub fn start(what: &str) -> Self {
        crate::require_root();
        let netns = TestNetns::new(what).expect("netns");
        for args in [
            "link add up0 type veth peer name up0p",
            "link set up0 up",
            "link set up0p up",
            "addr add 10.0.0.1/24 dev up0",
        ] {
            let st = netns
                .command("ip")
                .args(args.split_whitespace())
                .status()
                .expect("ip");
            assert!(st.success(), "ip {args}");
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("keel-t-{what}-"))
            .tempdir()
            .expect("temp dir");
        let control_dir = dir.path().join("control");
        let control = NsProcess::start(
            &netns,
            bin("keel-control"),
            vec![
                "--listen".into(),
                "127.0.0.1:6443".into(),
                "--data-dir".into(),
                control_dir.display().to_string(),
            ],
            dir.path().join("control.log"),
        );
        wait_for(
            "keel-control's client.json",
            Duration::from_secs(20),
            || control_dir.join("client.json").exists().then_some(()),
        );
        // keel-control listens on the namespace's loopback: connect from there.
        let config = ClientConfig::load(&control_dir.join("client.json")).expect("client config");
        let client = Client::with_connector(
            &config,
            keel_lab::connect::in_netns(&NetNs::named_path(netns.name())),
        )
        .expect("client");
        let cgroup = TestCgroup::new(what).expect("cgroup");
        let bpffs = TestBpffs::new(what).expect("bpffs");
        let agent_dir = dir.path().join("agent");
        let agent = NsProcess::start(
            &netns,
            bin("keel-agent"),
            vec![
                "--node-name".into(),
                NODE.into(),
                "--node-ip".into(),
                NODE_IP.into(),
                "--config".into(),
                control_dir.join("client.json").display().to_string(),
                "--data-dir".into(),
                agent_dir.display().to_string(),
                "--heartbeat-interval".into(),
                "1s".into(),
                "--cgroup-root".into(),
                cgroup.path().display().to_string(),
                "--bpffs".into(),
                bpffs.path().join(NODE).display().to_string(),
                // Only the load balancer: the production defaults' node
                // networking, runtime and pods stay off.
                "--network-mode".into(),
                "none".into(),
                "--runtime".into(),
                "none".into(),
                "--cni-bin-dir".into(),
                "none".into(),
                "--cluster-dns".into(),
                "none".into(),
            ],
            dir.path().join("agent.log"),
        );
        let mut node = LbNode {
            agent,
            control,
            client,
            cgroup,
            bpffs,
            netns,
            dir,
        };
        node.wait_programmed();
        node
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("agent/agent.sock")
    }

    pub fn pins(&self) -> PathBuf {
        self.bpffs.path().join(NODE)
    }

    /// `GET path` on the agent's socket: the body of a 200 answer.
    pub fn agent_get(&self, path: &str) -> Option<String> {
        agent_get(&self.socket(), path)
    }

    /// The reconciler's status.
    pub fn status(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.agent_get("/lb/status")?).ok()
    }

    /// Waits (30 s at most) until the agent's load balancer has synced.
    pub fn wait_programmed(&mut self) {
        let log = self.dir.path().join("agent.log");
        wait_for(
            "the agent's load balancer to sync",
            Duration::from_secs(30),
            || {
                assert!(
                    self.agent.running(),
                    "keel-agent exited:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
                let s = self.status()?;
                (s["programmed"] == true).then_some(())
            },
        );
    }

    /// Waits (30 s at most) until the dump has a line satisfying `f`.
    pub fn wait_dump(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        wait_for(what, Duration::from_secs(30), || {
            let d = self.agent_get("/lb/dump")?;
            d.lines().any(&f).then_some(d)
        })
    }

    /// Runs async API calls from this thread.
    pub fn block_on<F: std::future::Future + Send>(&self, f: F) -> F::Output
    where
        F::Output: Send,
    {
        keel_lab::block_on(f)
    }
}

/// `GET path` over a unix socket (HTTP/1.0): the body of a 200 answer.
pub fn agent_get(socket: &Path, path: &str) -> Option<String> {
    let mut s = UnixStream::connect(socket).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: agent\r\n\r\n").ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let (head, body) = resp.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.0 200")
        .then(|| body.to_string())
        .or_else(|| head.starts_with("HTTP/1.1 200").then(|| body.to_string()))
}
