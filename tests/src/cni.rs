//! Helpers for keel-cni's integration tests and its benchmark: the plugin
//! binary, a test *node* namespace (the plugin's "host side") with its own
//! IPAM directory, pods (namespaces), running a plugin inside the node
//! namespace, and a small libcni that runs a `.conflist` chain the way
//! runtimes do (ADD in order with `prevResult`, DEL in reverse).
//!
//! Nothing here touches the real host namespace: plugins run with their
//! network namespace set to the test node's.

use std::{
    io::Write,
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use keel_sys::netlink::{
    Handle,
    link::{Link, LinkList},
};
use serde_json::{Map, Value, json};

use crate::TestNetns;

/// Where Debian's containernetworking-plugins live.
pub const DEBIAN_CNI_DIR: &str = "/usr/lib/cni";

/// The workspace's target directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// The keel-cni binary of the given profile, built on first use in this
/// process (`cargo build -p keel-cni`), so the tests always run the
/// current source even when only keel-tests was asked to build.
pub fn keel_cni_bin(release: bool) -> PathBuf {
    static DEBUG: OnceLock<PathBuf> = OnceLock::new();
    static RELEASE: OnceLock<PathBuf> = OnceLock::new();
    let cell = if release { &RELEASE } else { &DEBUG };
    cell.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "-p", "keel-cni", "--bin", "keel-cni"])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("running cargo build -p keel-cni");
        assert!(status.success(), "cargo build -p keel-cni failed: {status}");
        let bin = target_dir()
            .join(if release { "release" } else { "debug" })
            .join("keel-cni");
        assert!(bin.is_file(), "{} missing after the build", bin.display());
        bin
    })
    .clone()
}

/// A directory holding the plugin as `keel` (the `type` in configs), to
/// put in CNI_PATH before Debian's plugins.
pub fn keel_bin_dir(release: bool) -> PathBuf {
    static DEBUG: OnceLock<PathBuf> = OnceLock::new();
    static RELEASE: OnceLock<PathBuf> = OnceLock::new();
    let cell = if release { &RELEASE } else { &DEBUG };
    cell.get_or_init(|| {
        let bin = keel_cni_bin(release);
        let dir = target_dir().join(if release {
            "cni-bin-release"
        } else {
            "cni-bin-debug"
        });
        std::fs::create_dir_all(&dir).expect("creating the CNI bin dir");
        let link = dir.join("keel");
        if std::fs::read_link(&link).ok().as_deref() != Some(bin.as_path()) {
            // Another test process may do the same: build the link aside
            // and rename it into place, which replaces atomically.
            let tmp = dir.join(format!(".keel.{}", std::process::id()));
            let _ = std::fs::remove_file(&tmp);
            std::os::unix::fs::symlink(&bin, &tmp).expect("linking keel");
            std::fs::rename(&tmp, &link).expect("placing the keel link");
        }
        dir
    })
    .clone()
}

/// CNI_PATH for tests: keel first, then Debian's plugins.
pub fn cni_path(release: bool) -> String {
    format!("{}:{DEBIAN_CNI_DIR}", keel_bin_dir(release).display())
}

/// What one plugin run printed and how it exited.
#[derive(Debug)]
pub struct Exec {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Exec {
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(self.stdout.trim()).ok()
    }

    /// The result of a run that must have succeeded.
    #[track_caller]
    pub fn ok(&self) -> Option<Value> {
        assert_eq!(
            self.code, 0,
            "plugin failed: stdout={} stderr={}",
            self.stdout, self.stderr
        );
        self.json()
    }

    /// The CNI error code and message of a run that must have failed.
    #[track_caller]
    pub fn err(&self) -> (u64, String) {
        assert_ne!(
            self.code, 0,
            "plugin succeeded but should have failed: {}",
            self.stdout
        );
        let v = self
            .json()
            .unwrap_or_else(|| panic!("error output is not JSON: {:?}", self.stdout));
        (
            v["code"].as_u64().expect("error code"),
            v["msg"].as_str().unwrap_or_default().to_string(),
        )
    }
}

/// One attachment: container ID, the pod's namespace path, interface.
#[derive(Debug, Clone)]
pub struct Attach {
    pub container_id: String,
    pub netns: Option<PathBuf>,
    pub ifname: String,
    pub args: Option<String>,
}

impl Attach {
    pub fn new(container_id: impl Into<String>, netns: &Path) -> Self {
        Self {
            container_id: container_id.into(),
            netns: Some(netns.to_path_buf()),
            ifname: "eth0".into(),
            args: None,
        }
    }
}

/// A pod: its own namespace and a container ID.
pub struct Pod {
    pub ns: TestNetns,
    pub id: String,
}

impl Pod {
    pub fn new(what: &str) -> Self {
        let ns = TestNetns::new(what).expect("creating a pod namespace");
        let id = ns.name().replace("keel-t-", "c-");
        Self { ns, id }
    }

    pub fn attach(&self) -> Attach {
        Attach::new(&self.id, self.ns.ns().path())
    }

    /// Links inside the pod namespace.
    pub fn links(&self) -> Vec<Link> {
        self.ns
            .run(|| LinkList.execute(&mut Handle::new()?))
            .expect("listing pod links")
    }
}

/// The plugin's host side: a test namespace standing in for the node, and
/// the IPAM data directory the configs point at.
pub struct Node {
    pub ns: TestNetns,
    pub data: tempfile::TempDir,
}

impl Node {
    pub fn new(what: &str) -> Self {
        let ns = TestNetns::new(what).expect("creating the node namespace");
        let data = tempfile::Builder::new()
            .prefix("keel-t-cni-")
            .tempdir()
            .expect("creating the IPAM dir");
        Self { ns, data }
    }

    /// A keel network config using this node's IPAM dir.
    pub fn conf(&self, version: &str, name: &str, subnet: &str) -> Value {
        json!({
            "cniVersion": version,
            "name": name,
            "type": "keel",
            "subnet": subnet,
            "mtu": 1400,
            "dataDir": self.data.path(),
        })
    }

    /// Starts `bin` for `command` inside the node namespace, config on stdin.
    pub fn spawn(
        &self,
        bin: &Path,
        command: &str,
        attach: Option<&Attach>,
        path: &str,
        conf: &Value,
    ) -> Child {
        let mut cmd = self.ns.command(bin.to_str().expect("utf-8 path"));
        cmd.env("CNI_COMMAND", command)
            .env("CNI_PATH", path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for var in ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS"] {
            cmd.env_remove(var);
        }
        if let Some(a) = attach {
            cmd.env("CNI_CONTAINERID", &a.container_id)
                .env("CNI_IFNAME", &a.ifname);
            if let Some(ns) = &a.netns {
                cmd.env("CNI_NETNS", ns);
            }
            if let Some(args) = &a.args {
                cmd.env("CNI_ARGS", args);
            }
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()));
        let bytes = serde_json::to_vec(conf).expect("config serializes");
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(&bytes)
            .expect("writing the config");
        child
    }

    /// Runs `bin` for `command` and waits for it.
    pub fn run(
        &self,
        bin: &Path,
        command: &str,
        attach: Option<&Attach>,
        path: &str,
        conf: &Value,
    ) -> Exec {
        let out = self
            .spawn(bin, command, attach, path, conf)
            .wait_with_output()
            .expect("waiting for the plugin");
        Exec {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs the debug keel-cni with raw stdin bytes (for invalid JSON).
    pub fn run_raw(&self, command: &str, attach: Option<&Attach>, stdin: &[u8]) -> Exec {
        let bin = keel_cni_bin(false);
        let mut cmd = self.ns.command(bin.to_str().expect("utf-8 path"));
        cmd.env("CNI_COMMAND", command)
            .env("CNI_PATH", cni_path(false));
        if let Some(a) = attach {
            cmd.env("CNI_CONTAINERID", &a.container_id)
                .env("CNI_IFNAME", &a.ifname);
            if let Some(ns) = &a.netns {
                cmd.env("CNI_NETNS", ns);
            }
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("running keel-cni");
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(stdin)
            .expect("writing stdin");
        let out = child.wait_with_output().expect("waiting for keel-cni");
        Exec {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs the debug keel-cni (as `keel`, from CNI_PATH).
    pub fn keel(&self, command: &str, attach: Option<&Attach>, conf: &Value) -> Exec {
        self.run(
            &keel_cni_bin(false),
            command,
            attach,
            &cni_path(false),
            conf,
        )
    }

    /// Links in the node namespace.
    pub fn links(&self) -> Vec<Link> {
        self.ns
            .run(|| LinkList.execute(&mut Handle::new()?))
            .expect("listing node links")
    }

    /// keel's host-side veths in the node namespace.
    pub fn keel_links(&self) -> Vec<Link> {
        self.links()
            .into_iter()
            .filter(|l| keel_cni::attach::is_host_ifname(&l.name))
            .collect()
    }

    /// The built-in IPAM's reservations of `network` (empty if no store).
    pub fn reservations(&self, network: &str) -> Vec<(String, String, Ipv4Addr)> {
        let path = self.data.path().join(network).join("state.json");
        let Ok(bytes) = std::fs::read(&path) else {
            return Vec::new();
        };
        let v: Value = serde_json::from_slice(&bytes).expect("state.json is JSON");
        v["reservations"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                (
                    r["containerId"].as_str().unwrap_or_default().to_string(),
                    r["ifname"].as_str().unwrap_or_default().to_string(),
                    r["ip"]
                        .as_str()
                        .and_then(|s| s.parse().ok())
                        .expect("reservation ip"),
                )
            })
            .collect()
    }

    /// Whether a TCP connection from the node namespace to `ip:port`
    /// succeeds within `timeout`.
    pub fn can_connect(&self, ip: Ipv4Addr, port: u16, timeout: Duration) -> bool {
        self.ns
            .run(|| std::net::TcpStream::connect_timeout(&(ip, port).into(), timeout).is_ok())
    }
}

/// The pod IPv4 address in an ADD result (the first `ips` entry).
pub fn result_ip(result: &Value) -> Ipv4Addr {
    let addr = result["ips"][0]["address"]
        .as_str()
        .unwrap_or_else(|| panic!("no ips in {result}"));
    addr.split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("bad address {addr}"))
}

/// A listening TCP socket inside a namespace; connections are accepted by
/// the kernel's backlog, so connect() succeeds without an accept loop.
pub fn listen_in(ns: &TestNetns, ip: Ipv4Addr, port: u16) -> std::net::TcpListener {
    ns.run(|| std::net::TcpListener::bind((ip, port)))
        .unwrap_or_else(|e| panic!("listening on {ip}:{port}: {e}"))
}

/// A conflist run the way libcni does it.
pub struct Chain {
    pub conflist: Value,
    pub path: String,
}

impl Chain {
    /// The config libcni gives plugin `i`: the plugin's object plus the
    /// list's name and cniVersion, `prevResult`, and the runtime config
    /// keys the plugin declares in `capabilities`.
    pub fn plugin_conf(&self, i: usize, prev: Option<&Value>, runtime: &Value) -> Value {
        let plugin = &self.conflist["plugins"][i];
        let mut conf: Map<String, Value> = plugin.as_object().expect("plugin object").clone();
        conf.insert("name".into(), self.conflist["name"].clone());
        conf.insert("cniVersion".into(), self.conflist["cniVersion"].clone());
        if let Some(p) = prev {
            conf.insert("prevResult".into(), p.clone());
        }
        let mut rc = Map::new();
        if let Some(caps) = plugin["capabilities"].as_object() {
            for (k, on) in caps {
                if on.as_bool() == Some(true)
                    && let Some(v) = runtime.get(k)
                {
                    rc.insert(k.clone(), v.clone());
                }
            }
        }
        if !rc.is_empty() {
            conf.insert("runtimeConfig".into(), Value::Object(rc));
        }
        conf.remove("capabilities");
        Value::Object(conf)
    }

    fn bin(&self, i: usize) -> PathBuf {
        let ty = self.conflist["plugins"][i]["type"]
            .as_str()
            .expect("plugin type");
        self.path
            .split(':')
            .map(|d| Path::new(d).join(ty))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("plugin {ty} not in {}", self.path))
    }

    fn len(&self) -> usize {
        self.conflist["plugins"].as_array().map_or(0, Vec::len)
    }

    /// ADD through the chain; the last plugin's result.
    pub fn add(&self, node: &Node, attach: &Attach, runtime: &Value) -> Value {
        let mut prev: Option<Value> = None;
        for i in 0..self.len() {
            let conf = self.plugin_conf(i, prev.as_ref(), runtime);
            let out = node.run(&self.bin(i), "ADD", Some(attach), &self.path, &conf);
            let result = out
                .ok()
                .unwrap_or_else(|| panic!("plugin {i} printed no result"));
            prev = Some(result);
        }
        prev.expect("a chain has plugins")
    }

    /// CHECK through the chain; the first failure, with the failing
    /// plugin's `type`.
    pub fn check(
        &self,
        node: &Node,
        attach: &Attach,
        result: &Value,
        runtime: &Value,
    ) -> Result<(), (String, Exec)> {
        for i in 0..self.len() {
            let conf = self.plugin_conf(i, Some(result), runtime);
            let out = node.run(&self.bin(i), "CHECK", Some(attach), &self.path, &conf);
            if out.code != 0 {
                let ty = self.conflist["plugins"][i]["type"]
                    .as_str()
                    .unwrap_or_default();
                return Err((ty.to_string(), out));
            }
        }
        Ok(())
    }

    /// DEL through the chain in reverse order.
    pub fn del(&self, node: &Node, attach: &Attach, result: Option<&Value>, runtime: &Value) {
        for i in (0..self.len()).rev() {
            let conf = self.plugin_conf(i, result, runtime);
            node.run(&self.bin(i), "DEL", Some(attach), &self.path, &conf)
                .ok();
        }
    }
}

/// Waits for `f` to hold, polling every 10 ms, for at most `timeout`.
pub fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
