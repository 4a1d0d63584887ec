//! keel's own binaries run as real processes for tests: keel-control on a
//! loopback port with a temporary data directory, keel-agent against it.
//! Each guard ends its process by PID and removes its directory on drop.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use keel_api::client::{Client, ClientConfig};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

/// A workspace binary, from the target directory this test was built into.
/// `cargo xtask test` builds them all first (`cargo build --bins`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> or target/<profile>/<bin> → target/<profile>/<name>
    let mut dir = exe.parent().expect("target directory");
    if dir.ends_with("deps") {
        dir = dir.parent().expect("target directory");
    }

    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the workspace binaries first (`cargo build --bins`, which `cargo xtask test` does)",
        path.display()
    );
    path
}

/// A free TCP port on loopback (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind loopback")
        .local_addr()
        .expect("local addr")
        .port()
}

/// Ends a child we started: SIGTERM, then SIGKILL after `grace`; reaps it.
pub fn stop_child(child: &mut Child, grace: Duration) {
    if child.try_wait().ok().flatten().is_some() {
        return;
    }
    let pid = Pid::from_raw(child.id() as i32);
    let _ = kill(pid, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = kill(pid, Signal::SIGKILL);
    let _ = child.wait();
}

/// Polls `f` every 50 ms until it returns Some or `timeout` passes.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Async twin of [`wait_for`].
pub async fn wait_until<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A running keel-control.
pub struct ControlProcess {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub port: u16,
    args: Vec<String>,
    log: PathBuf,
    options: ControlOptions,
}

/// How keel-control is started besides its flags.
#[derive(Debug, Clone, Default)]
pub struct ControlOptions {
    /// The open-file soft limit it starts with (the hard one unchanged),
    /// as a service manager's default of 1024 would leave it.
    pub nofile_soft: Option<u64>,
    /// Its data directory, when not the guard's own temporary one (the
    /// caller owns it and removes it).
    pub data_dir: Option<PathBuf>,
}

impl ControlProcess {
    /// A bootstrap token, created with the admin credential (what
    /// `keelctl token create` does).
    pub async fn create_token(&self) -> keel_api::pki::TokenInfo {
        let created = self
            .client()
            .request_raw(
                keel_api::client::HttpMethod::POST,
                keel_api::pki::BOOTSTRAP_TOKENS_PATH,
                Some(b"{}".to_vec()),
            )
            .await
            .expect("creating a bootstrap token");
        serde_json::from_slice(&created).expect("the token keel-control answered with")
    }

    /// Joins `node` as a real node does (a new bootstrap token, the CA
    /// pinned by hash), its credential kept under `data_dir`: the path of
    /// the node's client configuration.
    pub async fn join_node(&self, node: &str, data_dir: &Path) -> PathBuf {
        let info = self.create_token().await;
        keel_agent::join::join(
            &self.url(),
            info.token.as_deref().expect("the token's secret"),
            info.ca_hash.as_deref().expect("the CA's hash"),
            node,
            data_dir,
        )
        .await
        .expect("joining with a new bootstrap token")
    }

    /// Starts on a free loopback port with a fresh data directory.
    pub fn start(extra: &[&str]) -> Self {
        Self::start_with(extra, ControlOptions::default())
    }

    /// Starts keel-control with `extra` flags and `options`.
    pub fn start_with(extra: &[&str], options: ControlOptions) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("keel-t-control-")
            .tempdir()
            .expect("temp dir");
        let log = dir.path().join("control.log");
        let mut c = Self {
            child: None,
            dir,
            port: free_port(),
            args: extra.iter().map(|s| s.to_string()).collect(),
            log,
            options,
        };
        c.spawn();
        c
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let mut cmd = Command::new(bin("keel-control"));
        if let Some(soft) = self.options.nofile_soft {
            use std::os::unix::process::CommandExt;
            // SAFETY: between fork and exec only getrlimit/setrlimit run,
            // both async-signal-safe, on the child's own stack values.
            unsafe {
                cmd.pre_exec(move || {
                    let mut lim = libc::rlimit {
                        rlim_cur: 0,
                        rlim_max: 0,
                    };
                    if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    lim.rlim_cur = soft.min(lim.rlim_max);
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = cmd
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(&self.args)
            .env("RUST_LOG", "info,keel_control=debug")
            // On its flags alone, whatever this machine's /etc/keel holds.
            .env("KEEL_CONTROL_CONFIG", "/dev/null")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting keel-control");
        self.child = Some(child);
        let url = format!("127.0.0.1:{}", self.port);
        wait_for("keel-control to listen", Duration::from_secs(20), || {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("keel-control exited early ({status}):\n{}", self.log());
            }
            // client.json is written just after the port is bound.
            (std::net::TcpStream::connect(&url).is_ok() && self.client_config_path().exists())
                .then_some(())
        });
    }

    pub fn data_dir(&self) -> &Path {
        self.options.data_dir.as_deref().unwrap_or(self.dir.path())
    }

    /// `https://…`, or `http://…` when started with `--insecure-http`.
    pub fn url(&self) -> String {
        let scheme = if self.args.iter().any(|a| a == "--insecure-http") {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The cluster CA keel-control created (what client.json trusts).
    pub fn ca_path(&self) -> PathBuf {
        self.data_dir().join("pki").join("ca.crt")
    }

    pub fn client_config_path(&self) -> PathBuf {
        self.data_dir().join("client.json")
    }

    pub fn client(&self) -> Client {
        Client::new(&ClientConfig::load(&self.client_config_path()).expect("client.json"))
            .expect("client")
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.data_dir().join("token"))
            .expect("token")
            .trim()
            .to_string()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGTERM (SIGKILL after 5 s).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, Duration::from_secs(5));
        }
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, Duration::ZERO);
        }
    }

    /// Starts again on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Starts again after stop()/kill().
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "still running");
        self.spawn();
    }
}

impl Drop for ControlProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A running keel-agent registered as `name` against a [`ControlProcess`].
pub struct AgentProcess {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub name: String,
    args: Vec<String>,
    log: PathBuf,
}

/// The agent's flags that turn off everything touching the node (its
/// defaults turn it all on): no node networking, no runtime, no load
/// balancer, no pods, no cluster DNS.
pub const AGENT_FEATURES_OFF: [(&str, &str); 5] = [
    ("--network-mode", "none"),
    ("--runtime", "none"),
    ("--cgroup-root", "none"),
    ("--cni-bin-dir", "none"),
    ("--cluster-dns", "none"),
];

impl AgentProcess {
    pub fn start(control: &ControlProcess, name: &str, node_ip: &str, extra: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("keel-t-agent-")
            .tempdir()
            .expect("temp dir");
        let log = dir.path().join("agent.log");
        let mut args = vec![
            "--node-name".to_string(),
            name.to_string(),
            "--node-ip".to_string(),
            node_ip.to_string(),
            "--config".to_string(),
            control.client_config_path().display().to_string(),
        ];
        // This agent runs in the test's own namespace: every feature that
        // touches the node (the production defaults) is off unless the
        // test turns it on in `extra`.
        for (flag, off) in AGENT_FEATURES_OFF {
            if !extra.contains(&flag) {
                args.extend([flag.to_string(), off.to_string()]);
            }
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut a = Self {
            child: None,
            dir,
            name: name.into(),
            args,
            log,
        };
        a.spawn();
        a
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = Command::new(bin("keel-agent"))
            .args(&self.args)
            .arg("--data-dir")
            .arg(self.dir.path())
            .env("RUST_LOG", "info,keel_agent=debug")
            // On its flags alone, whatever this machine's /etc/keel holds.
            .env("KEEL_AGENT_CONFIG", "/dev/null")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting keel-agent");
        self.child = Some(child);
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The agent's view through its local socket (GET /state).
    pub fn state(&self) -> Option<serde_json::Value> {
        use std::io::{Read, Write};
        let mut s =
            std::os::unix::net::UnixStream::connect(self.dir.path().join("agent.sock")).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(b"GET /state HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n")
            .ok()?;
        let mut resp = String::new();
        s.read_to_string(&mut resp).ok()?;
        let body = resp.split_once("\r\n\r\n")?.1;
        serde_json::from_str(body).ok()
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, Duration::from_secs(5));
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, Duration::ZERO);
        }
    }

    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "still running");
        self.spawn();
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
