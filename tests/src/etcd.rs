//! A real etcd (Debian's etcd-server 3.4) for tests: one or N members in a
//! fresh network namespace of their own, on loopback inside it, with data
//! in a temporary directory. Members are ended by PID and the directory and
//! namespace removed on drop, on success and on failure.
//!
//! Clients must run inside the namespace too: [`EtcdCluster::run`] runs a
//! closure on a thread that entered it, so everything that closure starts
//! (a tokio runtime's workers, `keel-control` processes) is in it as well.

use std::{
    net::TcpStream,
    path::PathBuf,
    process::{Child, Stdio},
    time::Duration,
};

use crate::{
    TestNetns,
    process::{stop_child, wait_for},
};

/// The etcd binary the tests run (`cargo xtask setup` installs it).
pub const ETCD: &str = keel_lab::etcd::ETCD;

/// First client port; member `i` listens on `CLIENT_PORT + i` and peers on
/// `PEER_PORT + i`. The namespace is the test's own, so fixed ports cannot
/// collide with anything.
const CLIENT_PORT: u16 = 2379;
const PEER_PORT: u16 = 2380 + 100;

/// Serving certificate, key and client CA (PEM files): members serve
/// clients over HTTPS and require a client certificate signed by the CA.
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
}

/// A running etcd cluster.
pub struct EtcdCluster {
    members: Vec<Option<Child>>,
    tls: Option<ServerTls>,
    /// More flags for every member (`--quota-backend-bytes` …).
    extra: Vec<String>,
    dir: tempfile::TempDir,
    // Fields drop in order after `Drop::drop` ended the members: the
    // namespace goes last.
    netns: TestNetns,
}

impl EtcdCluster {
    /// One member.
    pub fn single() -> Self {
        Self::start(1)
    }

    /// `n` members forming one cluster; returns once every member serves.
    pub fn start(n: usize) -> Self {
        Self::start_with(n, None)
    }

    /// `n` members serving clients over HTTPS with client certificates.
    pub fn start_tls(n: usize, tls: ServerTls) -> Self {
        Self::start_with(n, Some(tls))
    }

    /// `n` members started with more flags.
    pub fn start_args(n: usize, extra: &[&str]) -> Self {
        Self::start_full(n, None, extra.iter().map(|s| s.to_string()).collect())
    }

    fn start_with(n: usize, tls: Option<ServerTls>) -> Self {
        Self::start_full(n, tls, Vec::new())
    }

    fn start_full(n: usize, tls: Option<ServerTls>, extra: Vec<String>) -> Self {
        crate::require_root();
        assert!(
            std::path::Path::new(ETCD).is_file(),
            "{ETCD} is missing: run `cargo xtask setup` (Debian package etcd-server)"
        );
        let netns = TestNetns::new("etcd").expect("etcd test namespace");
        let dir = tempfile::Builder::new()
            .prefix("keel-t-etcd-")
            .tempdir()
            .expect("temp dir");
        let mut c = Self {
            members: (0..n).map(|_| None).collect(),
            tls,
            extra,
            dir,
            netns,
        };
        for i in 0..n {
            c.spawn(i);
        }
        for i in 0..n {
            c.wait_serving(i);
        }
        c
    }

    fn name(i: usize) -> String {
        format!("m{i}")
    }

    fn initial_cluster(&self) -> String {
        (0..self.members.len())
            .map(|i| {
                format!(
                    "{}=http://127.0.0.1:{}",
                    Self::name(i),
                    PEER_PORT + i as u16
                )
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(Self::name(i))
    }

    /// The log of member `i`.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{}.log", Self::name(i))))
            .unwrap_or_default()
    }

    fn spawn(&mut self, i: usize) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{}.log", Self::name(i))))
            .expect("etcd log file");
        let client = self.endpoint(i);
        let peer = format!("http://127.0.0.1:{}", PEER_PORT + i as u16);
        let tls = self.tls.as_ref().map(|t| keel_lab::etcd::MemberTls {
            cert: t.cert.clone(),
            key: t.key.clone(),
            ca: t.client_ca.clone(),
            peers: false,
        });
        // The lab's etcd members are started with the same arguments.
        let args = keel_lab::etcd::member_args(&keel_lab::etcd::Member {
            name: &Self::name(i),
            data_dir: &self.data_dir(i),
            client_url: &client,
            peer_url: &peer,
            initial_cluster: &self.initial_cluster(),
            cluster_token: self.netns.name(),
            tls: tls.as_ref(),
        });
        let child = self
            .netns
            .command(ETCD)
            .args(&args)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting etcd");
        self.members[i] = Some(child);
    }

    fn wait_serving(&mut self, i: usize) {
        let port = CLIENT_PORT + i as u16;
        let members = &mut self.members;
        let dir = self.dir.path().to_path_buf();
        self.netns.run(|| {
            wait_for("etcd to serve", Duration::from_secs(30), || {
                if let Some(status) = members[i]
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten())
                {
                    panic!(
                        "etcd member {i} exited early ({status}):\n{}",
                        std::fs::read_to_string(dir.join(format!("m{i}.log"))).unwrap_or_default()
                    );
                }
                TcpStream::connect(("127.0.0.1", port)).ok().map(drop)
            })
        });
    }

    /// The client URL of member `i` (reachable only inside the namespace).
    pub fn endpoint(&self, i: usize) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", CLIENT_PORT + i as u16)
    }

    /// Every member's client URL, comma-separated (`--etcd-endpoints`).
    pub fn endpoints(&self) -> String {
        (0..self.members.len())
            .map(|i| self.endpoint(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A key file for keel-control's `--encryption-key-file` that every
    /// replica on this cluster shares (created on first call, 0600).
    pub fn encryption_key_file(&self) -> String {
        use base64::Engine;
        use std::{io::Read, os::unix::fs::OpenOptionsExt};
        let path = self.dir.path().join("encryption.key");
        if !path.exists() {
            let mut key = [0u8; 32];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| f.read_exact(&mut key))
                .expect("random key");
            let line = format!(
                "shared {}\n",
                base64::engine::general_purpose::STANDARD.encode(key)
            );
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()))
                .expect("writing the shared key file");
        }
        path.display().to_string()
    }

    pub fn pid(&self, i: usize) -> Option<u32> {
        self.members[i].as_ref().map(Child::id)
    }

    /// SIGKILL member `i`, as a crash would.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].take() {
            stop_child(&mut c, Duration::ZERO);
        }
    }

    /// Starts member `i` again on its data after [`kill`](Self::kill).
    pub fn restart(&mut self, i: usize) {
        assert!(self.members[i].is_none(), "member {i} still runs");
        self.spawn(i);
        self.wait_serving(i);
    }

    pub fn netns(&self) -> &TestNetns {
        &self.netns
    }

    /// Runs `f` on a thread inside the cluster's namespace.
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.netns.run(f)
    }

    /// A multi-threaded runtime whose workers are inside the cluster's
    /// namespace, for tests that kill and restart members while tasks run:
    /// run futures with `rt.block_on(rt.spawn(…))`, so they run on the
    /// workers (a future given to `block_on` itself runs on the caller's
    /// thread, outside the namespace).
    pub fn runtime(&self) -> tokio::runtime::Runtime {
        self.netns.run(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime")
        })
    }

    /// Runs an async test body on a multi-threaded runtime whose workers are
    /// all inside the cluster's namespace.
    pub fn block_on<R: Send, F: std::future::Future<Output = R>>(
        &self,
        f: impl FnOnce() -> F + Send,
    ) -> R {
        self.netns.run(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime")
                .block_on(f())
        })
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for m in self.members.iter_mut() {
            if let Some(mut c) = m.take() {
                stop_child(&mut c, Duration::from_secs(5));
            }
        }
    }
}
