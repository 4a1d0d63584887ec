//! keel's lab: a whole cluster from network namespaces on one machine —
//! fabric segments joined by a router, a control-plane namespace running
//! keel-control, one namespace per node running keel-agent, and an
//! external-client namespace. Nothing is connected to the host's own
//! namespace and nothing has a route off the machine.
//!
//! `keelctl lab up/status/run/down` drive it; tests and benchmarks use the
//! same [`Lab`]. What only a lab needs lives here, not in the production
//! crates: the client connector that reaches keel-control from outside the
//! lab ([`connect`]) and the VPC router keel-control programs in `vpc` mode
//! ([`vpc_router`], behind its exec provider).

pub mod connect;
pub mod etcd;
pub mod fabric;
pub mod images;
pub mod procs;
pub mod state;
pub mod sweep;
pub mod topology;
pub mod vpc_router;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Child,
    time::{Duration, Instant},
};

use anyhow::Context;
use keel_api::{
    Node, Pod,
    client::{Client, ClientConfig, ClientConfigFile, ListParams},
};
use keel_sys::{command::InNetns, ns::NetNs};

pub use self::{
    state::{LABS_DIR, State},
    topology::{ControlPlane, Mode, Spec, Store, Topology},
};

/// The keel binaries a lab runs.
#[derive(Debug, Clone)]
pub struct Bins {
    pub dir: PathBuf,
}

impl Bins {
    /// Next to the running executable (keelctl, a test, a benchmark).
    pub fn beside_current_exe() -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let mut dir = exe
            .parent()
            .context("executable has no folder")?
            .to_path_buf();
        if dir.ends_with("deps") {
            dir.pop();
        }
        Ok(Self { dir })
    }

    /// One of keel's binaries in [`Self::dir`]; an error naming it when missing.
    pub fn path(&self, name: &str) -> anyhow::Result<PathBuf> {
        let p = self.dir.join(name);
        anyhow::ensure!(
            p.is_file(),
            "{} is missing (build keel first: cargo build --release --bins)",
            p.display()
        );
        Ok(p)
    }
}

/// The registry name the lab's images go by (a mirror on every agent maps it
/// to the lab's registry).
pub const LAB_REGISTRY: &str = "registry.keel.test";
/// The lab registry's port, on the control namespace's address.
pub const REGISTRY_PORT: u16 = 5000;

/// Options beyond the spec.
#[derive(Debug, Clone)]
pub struct Options {
    /// How often agents post node status.
    pub heartbeat: Duration,
    /// keel-control's node monitor grace period.
    pub node_grace: Duration,
    /// Extra arguments for every agent.
    pub agent_args: Vec<String>,
    /// Run pods' containers with keel's direct runtime, pulling from a
    /// registry in the control namespace that serves the lab's images
    /// (keel-testbin as `registry.keel.test/keel-testbin:latest`); without
    /// it pods are network sandboxes only.
    pub runtime: bool,
    /// Service load balancing on every node: agents run in their node's
    /// cgroup v2 subtree (so pods' containers do too) with BPF pinned under
    /// `/sys/fs/bpf/keel-lab-<name>-bpf/<node>` (swept with the lab).
    pub lb: bool,
    /// keel-control replicas and their store (default: one on redb).
    pub control_plane: ControlPlane,
    /// keel-control's `--leader-lease-ttl` on etcd (None: its default).
    pub leader_lease_ttl: Option<Duration>,
    /// Told each step of `up` as it happens (`keelctl lab up` prints them);
    /// None says nothing.
    pub progress: Option<fn(&str)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(2),
            node_grace: Duration::from_secs(20),
            agent_args: Vec::new(),
            runtime: false,
            lb: false,
            control_plane: ControlPlane::default(),
            leader_lease_ttl: None,
            progress: None,
        }
    }
}

/// A running lab. Dropping it does nothing: call [`Lab::down`] (tests use
/// [`LabGuard`], which does so on drop).
pub struct Lab {
    pub state: State,
    children: Vec<Child>,
}

/// Runs an async block on a private runtime on its own thread, so sync code
/// (and code already inside a runtime) can call the lab.
pub fn block_on<F: std::future::Future + Send>(f: F) -> F::Output
where
    F::Output: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime")
                .block_on(f)
        })
        .join()
        .expect("lab runtime thread")
    })
}

impl Lab {
    /// Builds the lab and waits until every node is Ready.
    pub fn up(spec: &Spec, bins: &Bins, opts: &Options) -> anyhow::Result<Lab> {
        let topology =
            Topology::plan_with(spec, &opts.control_plane).map_err(|e| anyhow::anyhow!("{e}"))?;
        let dir = state::lab_dir(&spec.name);
        let prefix = topology::netns_prefix(&spec.name);
        let taken = std::fs::read_dir(keel_sys::ns::NETNS_RUN_DIR)
            .map(|rd| {
                rd.flatten().any(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(&format!("{prefix}-"))
                })
            })
            .unwrap_or(false);
        anyhow::ensure!(
            !taken && !State::path(&dir).exists(),
            "a lab named {:?} already exists; remove it with `keelctl lab down {}`",
            spec.name,
            spec.name
        );
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut lab = Lab {
            state: State {
                topology,
                dir: dir.clone(),
                bin_dir: bins.dir.clone(),
                processes: Vec::new(),
            },
            children: Vec::new(),
        };
        lab.state.save()?;
        match lab.build(bins, opts) {
            Ok(()) => Ok(lab),
            Err(e) => {
                let log = lab.logs_tail();
                let _ = Lab::down(&spec.name);
                Err(e.context(log))
            }
        }
    }

    /// Debian's docker-registry in the control namespace, serving the
    /// lab's images (built here, pushed with skopeo); its `host:port`.
    fn start_registry(&mut self, bins: &Bins) -> anyhow::Result<String> {
        let t = self.state.topology.clone();
        let host = format!("{}:{}", t.control.ip, REGISTRY_PORT);
        let dir = self.state.dir.join("registry");
        std::fs::create_dir_all(&dir)?;
        let cfg = dir.join("config.yml");
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\n",
                dir.join("data").display()
            ),
        )?;
        let (p, child) = procs::spawn(
            "registry",
            &t.control.netns,
            None,
            Path::new("/usr/bin/docker-registry"),
            &["serve".into(), cfg.display().to_string()],
            &self.state.dir.join("registry.log"),
        )?;
        self.state.processes.push(p);
        self.children.push(child);
        self.state.save()?;
        let ns = NetNs::open(NetNs::named_path(&t.control.netns))?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while ns
            .run(|| std::net::TcpStream::connect(&host).is_err())
            .unwrap_or(true)
        {
            anyhow::ensure!(
                Instant::now() < deadline,
                "docker-registry did not listen on {host}"
            );
            self.check_alive()?;
            std::thread::sleep(Duration::from_millis(50));
        }
        let images = self.state.dir.join("images");
        let _ = std::fs::remove_dir_all(&images);
        let layout = images::build_layout(
            &images::ImageSpec::testbin("latest"),
            &images.join("keel-testbin"),
            &bins.path("keel-testbin")?,
        )?;
        let dest = format!("docker://{host}/keel-testbin:latest");
        let out = ns
            .command("skopeo")?
            .args(["copy", "--quiet", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:latest", layout.display()))
            .arg(&dest)
            .output()
            .context("running skopeo")?;
        anyhow::ensure!(
            out.status.success(),
            "skopeo copy to {dest}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(host)
    }

    fn build(&mut self, bins: &Bins, opts: &Options) -> anyhow::Result<()> {
        let t = self.state.topology.clone();
        let started = Instant::now();
        let say = |what: String| {
            if let Some(progress) = opts.progress {
                progress(&format!(
                    "[{:>5.1}s] {what}",
                    started.elapsed().as_secs_f64()
                ));
            }
        };
        say(format!(
            "network: {} namespaces ({} node(s) on {} segment(s), router, control, ext)",
            t.nodes.len() + 3,
            t.nodes.len(),
            t.spec.segments
        ));
        fabric::create(&t)?;
        let cg = cgroup2_root()?;
        for n in &t.nodes {
            let path = cg.join(t.node_cgroup(&n.role));
            std::fs::create_dir_all(&path)
                .with_context(|| format!("creating cgroup {}", path.display()))?;
        }
        // The CNI plugin is executed by its type name, "keel".
        let cni_bin = self.state.dir.join("cni-bin");
        std::fs::create_dir_all(&cni_bin)?;
        let _ = std::fs::remove_file(cni_bin.join("keel"));
        std::os::unix::fs::symlink(bins.path("keel-cni")?, cni_bin.join("keel"))?;

        let mut common: Vec<String> = vec![
            "--cluster-cidr".into(),
            t.cluster_cidr.to_string(),
            "--service-cidr".into(),
            t.service_cidr.to_string(),
            "--node-monitor-grace".into(),
            format!("{}s", opts.node_grace.as_secs()),
        ];
        if t.spec.mode == Mode::Vpc {
            // The router's table is the VPC: keel-control programs it
            // through its exec provider, as it would a cloud's.
            common.extend([
                "--vpc-provider".into(),
                format!(
                    "exec:{} lab vpc-router --netns {}",
                    bins.path("keelctl")?.display(),
                    t.router
                ),
            ]);
        }
        if t.control_plane.store == Store::Etcd {
            say(format!(
                "etcd: {} member(s) ({}), TLS with client certificates",
                t.etcd.len(),
                t.etcd_endpoints()
            ));
            common.extend(self.start_etcd()?);
            if let Some(ttl) = opts.leader_lease_ttl {
                common.extend([
                    "--leader-lease-ttl".into(),
                    format!("{}ms", ttl.as_millis()),
                ]);
            }
        }
        for host in t.controls() {
            let data = self.state.dir.join(&host.role);
            let mut args: Vec<String> = vec![
                "--listen".into(),
                format!("{}:{}", host.ip, topology::CONTROL_PORT),
                "--data-dir".into(),
                data.display().to_string(),
            ];
            args.extend(common.iter().cloned());
            // The first as before ("keel-control at URL"), the others named.
            let who = if host.role == "control" {
                String::new()
            } else {
                format!("{}: ", host.role)
            };
            say(format!(
                "{who}keel-control at https://{}:{} (its cluster CA, TLS, {})",
                host.ip,
                topology::CONTROL_PORT,
                match t.control_plane.store {
                    Store::Redb => "the embedded store",
                    Store::Etcd => "on etcd",
                }
            ));
            let (p, child) = procs::spawn(
                &host.role,
                &host.netns,
                None,
                &bins.path("keel-control")?,
                &args,
                &self.state.dir.join(format!("{}.log", host.role)),
            )?;
            self.state.processes.push(p);
            self.children.push(child);
            self.state.save()?;
            // One at a time: the first stores the cluster CA and token in
            // etcd, the next ones take them from there.
            let deadline = Instant::now() + Duration::from_secs(30);
            while !data.join("client.json").exists() {
                anyhow::ensure!(Instant::now() < deadline, "{} did not start", host.role);
                self.check_alive()?;
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        // The server is only reachable inside the lab: [`Lab::client`]
        // connects from the control namespace. Every replica's URL: the
        // client fails over between them.
        let client_file = ClientConfigFile {
            server: t.control_urls(),
            token_file: "control/token".into(),
            ca_file: Some("control/pki/ca.crt".into()),
            cert_file: None,
            key_file: None,
        };
        let client_json = self.state.dir.join("client.json");
        std::fs::write(&client_json, serde_json::to_vec_pretty(&client_file)?)?;
        let registry = if opts.runtime {
            say("registry: building the lab's image and pushing it".into());
            Some(self.start_registry(bins)?)
        } else {
            None
        };

        // Nodes join as real machines do: a bootstrap token from keelctl,
        // the CA pinned by hash, a per-node credential over TLS.
        let mut join = self.create_join_token(bins)?;
        // Agents get every replica and fail over between them.
        if let Some(at) = join.iter().position(|f| f == "--server") {
            join[at + 1] = t.control_urls();
        }
        for n in &t.nodes {
            say(format!(
                "{}: keel-agent joins with a bootstrap token ({})",
                n.role, n.ip
            ));
            let data = self.state.dir.join(&n.role);
            std::fs::create_dir_all(&data)?;
            let mut args: Vec<String> = vec!["join".into()];
            args.extend(join.iter().cloned());
            args.extend([
                "--node-name".into(),
                n.role.clone(),
                "--node-ip".into(),
                n.ip.to_string(),
                "--data-dir".into(),
                data.display().to_string(),
                "--heartbeat-interval".into(),
                format!("{}ms", opts.heartbeat.as_millis()),
                "--network-mode".into(),
                t.spec.mode.to_string(),
                "--cni-bin-dir".into(),
                cni_bin.display().to_string(),
                "--cni-conf-dir".into(),
                data.join("net.d").display().to_string(),
                "--pod-netns-prefix".into(),
                t.pod_netns_prefix(&n.role),
            ]);
            if let Some(registry) = &registry {
                args.extend([
                    "--runtime".into(),
                    "direct".into(),
                    "--insecure-registry".into(),
                    registry.clone(),
                    "--registry-mirror".into(),
                    format!("{LAB_REGISTRY}={registry}"),
                ]);
            } else if !opts.agent_args.iter().any(|a| a == "--runtime") {
                // The agent's default is keel's runtime; a lab without a
                // registry runs pods as network sandboxes only.
                args.extend(["--runtime".into(), "none".into()]);
            }
            // The node's own registry credentials (none unless a test
            // writes them), never the host's /etc/keel.
            if !opts
                .agent_args
                .iter()
                .any(|a| a == "--registry-credentials")
            {
                args.extend([
                    "--registry-credentials".into(),
                    data.join("registry-credentials.json").display().to_string(),
                ]);
            }
            let cgroup = cg.join(t.node_cgroup(&n.role));
            // Host routing pins under <bpffs>/net, the load balancer
            // directly under <bpffs>; both are swept with the lab.
            args.extend([
                "--bpffs".into(),
                t.node_bpffs(&n.role).display().to_string(),
            ]);
            // The agent's default is the node's whole cgroup v2 root; a lab
            // node's load balancer covers only its own subtree, or is off.
            let cgroup_root = if opts.lb {
                cgroup.display().to_string()
            } else {
                "none".into()
            };
            args.extend(["--cgroup-root".into(), cgroup_root]);
            args.extend(opts.agent_args.iter().cloned());
            let (p, child) = procs::spawn(
                &n.role,
                &n.netns,
                opts.lb.then_some(cgroup.as_path()),
                &bins.path("keel-agent")?,
                &args,
                &self.state.dir.join(format!("{}.log", n.role)),
            )?;
            self.state.processes.push(p);
            self.children.push(child);
            self.state.save()?;
        }
        let client = self.client()?;
        let want = t.nodes.len();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut told = usize::MAX;
        loop {
            self.check_alive()?;
            let ready = block_on(async {
                client
                    .list::<Node>("", &ListParams::default())
                    .await
                    .map(|l| {
                        l.items
                            .iter()
                            .filter(|n| n.is_ready() && !n.spec.pod_cidr.is_empty())
                            .count()
                    })
            })
            .unwrap_or(0);
            if ready != told {
                say(format!("nodes Ready: {ready} of {want}"));
                told = ready;
            }
            if ready == want {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "only {ready} of {want} nodes became Ready within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The lab's etcd members (PKI, a shared Secrets key, one member per
    /// etcd host, each serving before the next step): keel-control's etcd
    /// flags.
    fn start_etcd(&mut self) -> anyhow::Result<Vec<String>> {
        let t = self.state.topology.clone();
        anyhow::ensure!(
            Path::new(etcd::ETCD).is_file(),
            "{} is missing: --store etcd needs Debian's etcd-server (cargo xtask setup)",
            etcd::ETCD
        );
        let members: Vec<(String, std::net::Ipv4Addr)> =
            t.etcd.iter().map(|h| (h.role.clone(), h.ip)).collect();
        let pki = etcd::Pki::create(&self.state.dir.join("etcd-pki"), &members)?;
        let key = self.state.dir.join("encryption.key");
        etcd::create_shared_key(&key)?;
        let initial = t.etcd_initial_cluster();
        let token = topology::netns_prefix(&t.spec.name);
        for h in &t.etcd {
            let data = self.state.dir.join(&h.role);
            let tls = pki.member(&h.role);
            let client_url = format!("https://{}:{}", h.ip, topology::ETCD_CLIENT_PORT);
            let peer_url = format!("https://{}:{}", h.ip, topology::ETCD_PEER_PORT);
            let args = etcd::member_args(&etcd::Member {
                name: &h.role,
                data_dir: &data,
                client_url: &client_url,
                peer_url: &peer_url,
                initial_cluster: &initial,
                cluster_token: &token,
                tls: Some(&tls),
            });
            let (p, child) = procs::spawn(
                &h.role,
                &h.netns,
                None,
                Path::new(etcd::ETCD),
                &args,
                &self.state.dir.join(format!("{}.log", h.role)),
            )?;
            self.state.processes.push(p);
            self.children.push(child);
            self.state.save()?;
        }
        for h in &t.etcd {
            self.wait_listening(&h.netns, (h.ip, topology::ETCD_CLIENT_PORT).into(), &h.role)?;
        }
        let mut flags = vec![
            "--store".into(),
            "etcd".into(),
            "--etcd-endpoints".into(),
            t.etcd_endpoints(),
            "--encryption-key-file".into(),
            key.display().to_string(),
        ];
        flags.extend(pki.control_flags());
        Ok(flags)
    }

    fn wait_listening(
        &mut self,
        netns: &str,
        addr: std::net::SocketAddr,
        what: &str,
    ) -> anyhow::Result<()> {
        let ns = NetNs::open(NetNs::named_path(netns))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while ns
            .run(|| std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err())
            .unwrap_or(true)
        {
            anyhow::ensure!(
                Instant::now() < deadline,
                "{what} did not listen on {addr} within 30 s"
            );
            self.check_alive()?;
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// `keelctl --lab NAME token create`: the `--server`, `--token` and
    /// `--ca-hash` flags of the join command it prints.
    fn create_join_token(&mut self, bins: &Bins) -> anyhow::Result<Vec<String>> {
        let keelctl = bins.path("keelctl")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.check_alive()?;
            let out = std::process::Command::new(&keelctl)
                .args(["--lab", self.name(), "token", "create", "--ttl", "24h"])
                .args(["--description", &format!("lab {} nodes", self.name())])
                .output()
                .context("running keelctl token create")?;
            let stdout = String::from_utf8_lossy(&out.stdout);
            if out.status.success() {
                return join_flags(&stdout).with_context(|| {
                    format!("keelctl token create printed no join command: {stdout}")
                });
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "keelctl token create failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        for (p, c) in self.state.processes.iter().zip(self.children.iter_mut()) {
            if let Some(status) = c.try_wait()? {
                anyhow::bail!(
                    "{} exited during lab up ({status}); see {}",
                    p.role,
                    p.log.display()
                );
            }
        }
        Ok(())
    }

    fn logs_tail(&self) -> String {
        let mut out = String::from("last log lines:");
        for p in &self.state.processes {
            let log = std::fs::read_to_string(&p.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(8).collect();
            out.push_str(&format!("\n--- {} ({})", p.role, p.log.display()));
            for l in tail.into_iter().rev() {
                out.push_str(&format!("\n{l}"));
            }
        }
        out
    }

    /// A lab started earlier (by another process).
    pub fn load(name: &str) -> anyhow::Result<Lab> {
        Ok(Lab {
            state: State::load(name)?,
            children: Vec::new(),
        })
    }

    pub fn name(&self) -> &str {
        &self.state.topology.spec.name
    }

    pub fn topology(&self) -> &Topology {
        &self.state.topology
    }

    /// client.json for this lab's keel-control (server URL and token). The
    /// server is only reachable from inside the control namespace: use
    /// [`Lab::client`], which connects from there.
    pub fn client_config_path(&self) -> PathBuf {
        self.state.dir.join("client.json")
    }

    /// A client for this lab's keel-control, from any namespace.
    pub fn client(&self) -> anyhow::Result<Client> {
        let config = ClientConfig::load(&self.client_config_path())?;
        let control = NetNs::named_path(&self.state.topology.control.netns);
        Ok(Client::with_connector(
            &config,
            connect::in_netns(&control),
        )?)
    }

    /// The network namespace of a pod (from its node's prefix and uid).
    pub fn pod_netns(&self, pod: &Pod) -> anyhow::Result<String> {
        anyhow::ensure!(
            !pod.spec.node_name.is_empty(),
            "pod {} is not scheduled yet",
            pod.metadata.name
        );
        Ok(format!(
            "{}{}",
            self.state.topology.pod_netns_prefix(&pod.spec.node_name),
            pod.metadata.uid
        ))
    }

    /// Where `keelctl lab run` runs a command: a pod (`[ns/]name`), a node
    /// (`node-2`), `ext`, `outside` or `control`: its network namespace and the cgroup
    /// its processes belong in (pods and nodes: the node's subtree).
    pub fn target(&self, target: &str) -> anyhow::Result<(String, Option<PathBuf>)> {
        let t = &self.state.topology;
        let cg = |node: &str| cgroup2_root().ok().map(|r| r.join(t.node_cgroup(node)));
        if target == "ext" {
            return Ok((t.ext.netns.clone(), None));
        }
        if target == "outside" {
            return Ok((t.outside.netns.clone(), None));
        }
        if target == "control" {
            return Ok((t.control.netns.clone(), None));
        }
        if let Some(n) = t.node(target) {
            return Ok((n.netns.clone(), cg(&n.role)));
        }
        let (ns, name) = target.split_once('/').unwrap_or(("default", target));
        let client = self.client()?;
        let pod: Pod =
            block_on(async { client.get::<Pod>(ns, name).await }).with_context(|| {
                format!(
                    "{target:?} is not a node, ext, outside, control, or a pod of lab {}",
                    self.name()
                )
            })?;
        Ok((self.pod_netns(&pod)?, cg(&pod.spec.node_name)))
    }

    /// A command for `program` that runs at `target` (as [`Lab::target`]
    /// names it): inside its network namespace and, for pods and nodes,
    /// its node's cgroup.
    pub fn command(&self, target: &str, program: &str) -> anyhow::Result<std::process::Command> {
        let (netns, cgroup) = self.target(target)?;
        let ns = NetNs::open(NetNs::named_path(&netns))?;
        let mut enter = InNetns::new(&ns)?;
        if let Some(cg) = cgroup {
            enter = enter.cgroup(&cg)?;
        }
        Ok(enter.command(program))
    }

    /// Stops one node's agent (by its recorded PID) — its pods keep running.
    pub fn stop_agent(&mut self, node: &str) -> anyhow::Result<()> {
        let p = self
            .state
            .processes
            .iter()
            .find(|p| p.role == node)
            .with_context(|| format!("no agent for {node}"))?
            .clone();
        procs::stop(&p, Duration::from_secs(5));
        self.reap();
        Ok(())
    }

    /// Starts a node's agent again with the arguments it had.
    pub fn start_agent(&mut self, node: &str) -> anyhow::Result<()> {
        self.start_agent_with(node, &[])
    }

    /// Starts a stopped node's agent with `keel-agent join` and `join`
    /// (the `--server`, `--token`, `--ca-hash` flags of a join command), as
    /// an operator re-joins a machine whose Node was deleted; later
    /// restarts use the new credential.
    pub fn rejoin_agent(&mut self, node: &str, join: &[String]) -> anyhow::Result<()> {
        let i = self
            .state
            .processes
            .iter()
            .position(|p| p.role == node)
            .with_context(|| format!("no agent for {node}"))?;
        let old = self.state.processes[i].clone();
        anyhow::ensure!(
            !procs::is_ours(&old),
            "the agent of {node} is still running"
        );
        let plain = without_join(&old.command);
        let mut args: Vec<String> = vec!["join".into()];
        args.extend(join.iter().cloned());
        args.extend(plain[1..].iter().cloned());
        let (p, child) = procs::spawn(
            node,
            &old.netns,
            old.cgroup.as_deref(),
            Path::new(&plain[0]),
            &args,
            &old.log,
        )?;
        self.state.processes[i] = p;
        self.children.push(child);
        self.state.save()
    }

    /// Starts a node's agent again from another binary (an older build, to
    /// compare two side by side in one lab), kept for later restarts.
    pub fn start_agent_exe(&mut self, node: &str, exe: &Path) -> anyhow::Result<()> {
        let p = self
            .state
            .processes
            .iter_mut()
            .find(|p| p.role == node)
            .with_context(|| format!("no agent for {node}"))?;
        p.command[0] = exe.display().to_string();
        self.start_agent_with(node, &[])
    }

    /// Starts a node's agent again with `flags` (`(flag, value)`: replaced
    /// where the agent had the flag, added where not), kept for later
    /// restarts.
    pub fn start_agent_with(&mut self, node: &str, flags: &[(&str, &str)]) -> anyhow::Result<()> {
        let i = self
            .state
            .processes
            .iter()
            .position(|p| p.role == node)
            .with_context(|| format!("no agent for {node}"))?;
        let mut old = self.state.processes[i].clone();
        anyhow::ensure!(
            !procs::is_ours(&old),
            "the agent of {node} is still running"
        );
        // A restarted agent uses the credential it stored when it joined.
        old.command = without_join(&old.command);
        for (flag, value) in flags {
            match old.command.iter().position(|a| a == flag) {
                Some(at) if at + 1 < old.command.len() => old.command[at + 1] = value.to_string(),
                _ => old.command.extend([flag.to_string(), value.to_string()]),
            }
        }
        let (p, child) = procs::spawn(
            node,
            &old.netns,
            old.cgroup.as_deref(),
            Path::new(&old.command[0]),
            &old.command[1..],
            &old.log,
        )?;
        self.state.processes[i] = p;
        self.children.push(child);
        self.state.save()
    }

    /// The process of `role` (`control`, `control-2`, `etcd-1`, `node-1` …).
    pub fn process(&self, role: &str) -> anyhow::Result<&state::Proc> {
        self.state
            .processes
            .iter()
            .find(|p| p.role == role)
            .with_context(|| format!("lab {} has no process {role:?}", self.name()))
    }

    /// SIGKILLs the process of `role` by its recorded PID (only if that PID
    /// is still the process the lab started), as a crash would.
    pub fn kill(&mut self, role: &str) -> anyhow::Result<()> {
        let p = self.process(role)?.clone();
        anyhow::ensure!(procs::is_ours(&p), "{role} is not running");
        procs::kill_now(&p);
        let deadline = Instant::now() + Duration::from_secs(5);
        while procs::is_ours(&p) && !procs::is_zombie(p.pid) {
            anyhow::ensure!(Instant::now() < deadline, "{role} outlived SIGKILL");
            std::thread::sleep(Duration::from_millis(10));
        }
        self.reap();
        Ok(())
    }

    /// Starts the process of `role` again with the command it had (an etcd
    /// member on its data, a replica on its data directory).
    pub fn start_again(&mut self, role: &str) -> anyhow::Result<()> {
        self.start_agent_with(role, &[])
    }

    /// The keel-control replica whose controllers run now, from the
    /// replicas' logs: a running replica whose last word on leadership is
    /// "leading the controllers". None on redb (the one replica always
    /// runs them) or while nobody leads.
    pub fn control_leader(&self) -> Option<String> {
        let t = &self.state.topology;
        if t.control_plane.store != Store::Etcd {
            return None;
        }
        t.controls().into_iter().find_map(|h| {
            let p = self.process(&h.role).ok()?;
            if !procs::is_ours(p) {
                return None;
            }
            // The log is appended to across restarts: only the running
            // process's lines count, from its "serving" line on.
            let log = p.own_log()?;
            let since_start = &log[log.find("keel-control serving")?..];
            since_start
                .lines()
                .rev()
                .find(|l| l.contains("leading the controllers") || l.contains("no longer leads"))?
                .contains("leading the controllers")
                .then(|| h.role.clone())
        })
    }

    /// Cuts keel-control replica `role` off from every etcd member (a
    /// blackhole route to each in its namespace); clients and agents still
    /// reach it. [`Lab::heal_from_etcd`] undoes it.
    pub fn partition_from_etcd(&self, role: &str) -> anyhow::Result<()> {
        let t = &self.state.topology;
        let host = t
            .controls()
            .into_iter()
            .find(|h| h.role == role)
            .with_context(|| format!("{role:?} is not a keel-control replica"))?;
        anyhow::ensure!(!t.etcd.is_empty(), "lab {} runs no etcd", self.name());
        fabric::partition(host, &t.etcd.iter().collect::<Vec<_>>())
    }

    pub fn heal_from_etcd(&self, role: &str) -> anyhow::Result<()> {
        let t = &self.state.topology;
        let host = t
            .controls()
            .into_iter()
            .find(|h| h.role == role)
            .with_context(|| format!("{role:?} is not a keel-control replica"))?;
        fabric::heal(host, &t.etcd.iter().collect::<Vec<_>>())
    }

    fn reap(&mut self) {
        self.children
            .retain_mut(|c| c.try_wait().ok().flatten().is_none());
    }

    /// Removes a lab: stops its processes, then sweeps every namespace,
    /// cgroup, pin and mount named after it (works after a crash too, with
    /// or without lab.json), and deletes its directory.
    pub fn down(name: &str) -> anyhow::Result<sweep::Swept> {
        if let Ok(state) = State::load(name) {
            // Agents first (they may be mid-write to keel-control), then control.
            for p in state.processes.iter().rev() {
                procs::stop(p, Duration::from_secs(5));
            }
        }
        let swept = sweep::sweep(&format!("{}-", topology::netns_prefix(name)));
        let dir = state::lab_dir(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        Ok(swept)
    }

    /// Removes every lab (by state file and by name prefix).
    pub fn down_all() -> anyhow::Result<sweep::Swept> {
        for name in State::list() {
            Lab::down(&name)?;
        }
        let swept = sweep::sweep(&format!("{}-", topology::PREFIX));
        let _ = std::fs::remove_dir(LABS_DIR);
        Ok(swept)
    }

    /// Everything about the lab, for `keelctl lab status -o json`.
    pub fn status(&self) -> anyhow::Result<serde_json::Value> {
        let t = &self.state.topology;
        let client = self.client()?;
        let (pods, nodes) = block_on(async {
            let pods = client.list::<Pod>("", &ListParams::default()).await;
            let nodes = client.list::<Node>("", &ListParams::default()).await;
            (pods, nodes)
        });
        let pods: Vec<serde_json::Value> = pods
            .map(|l| l.items)
            .unwrap_or_default()
            .iter()
            .map(|p| {
                serde_json::json!({
                    "namespace": p.metadata.namespace,
                    "name": p.metadata.name,
                    "node": p.spec.node_name,
                    "ip": p.status.pod_ip,
                    "phase": p.status.phase.map(|ph| ph.as_str()),
                    "ready": p.is_ready(),
                    "netns": self.pod_netns(p).ok(),
                })
            })
            .collect();
        let node_objs: BTreeMap<String, Node> = nodes
            .map(|l| l.items)
            .unwrap_or_default()
            .into_iter()
            .map(|n| (n.metadata.name.clone(), n))
            .collect();
        let procs: Vec<serde_json::Value> = self
            .state
            .processes
            .iter()
            .map(|p| serde_json::json!({"role": p.role, "pid": p.pid, "running": procs::is_ours(p), "netns": p.netns, "log": p.log, "command": p.command}))
            .collect();
        let host = |h: &topology::Host| {
            let node = node_objs.get(&h.role);
            serde_json::json!({
                "role": h.role, "netns": h.netns, "segment": h.segment, "ip": h.ip, "gateway": h.gateway,
                "podCIDR": node.map(|n| n.spec.pod_cidr.clone()),
                "ready": node.map(|n| n.is_ready()),
            })
        };
        Ok(serde_json::json!({
            "name": t.spec.name,
            "mode": t.spec.mode,
            "dir": self.state.dir,
            "controlURL": t.control_url(),
            "clientConfig": self.client_config_path(),
            "segments": t.segments,
            "router": t.router,
            "control": host(&t.control),
            "store": t.control_plane.store,
            "controlURLs": t.control_urls(),
            "controls": t.controls().into_iter().map(host).collect::<Vec<_>>(),
            "etcd": t.etcd.iter().map(host).collect::<Vec<_>>(),
            "leader": self.control_leader(),
            "ext": host(&t.ext),
            "outside": t.outside,
            "nodes": t.nodes.iter().map(host).collect::<Vec<_>>(),
            "processes": procs,
            "pods": pods,
        }))
    }
}

/// Where cgroup v2 is mounted (the unified hierarchy on a hybrid host).
pub fn cgroup2_root() -> anyhow::Result<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts")?;
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, dir, fstype) = (f.next()?, f.next()?, f.next()?);
            (fstype == "cgroup2").then(|| PathBuf::from(dir))
        })
        .next()
        .context("no cgroup2 mount in /proc/self/mounts")
}

/// A lab for a test: torn down on drop, on success and on failure.
pub struct LabGuard(pub Lab);

impl std::ops::Deref for LabGuard {
    type Target = Lab;
    fn deref(&self) -> &Lab {
        &self.0
    }
}

impl std::ops::DerefMut for LabGuard {
    fn deref_mut(&mut self) -> &mut Lab {
        &mut self.0
    }
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        let name = self.0.name().to_string();
        if let Err(e) = Lab::down(&name) {
            eprintln!("cleanup: lab down {name}: {e:#}");
        }
        for c in &mut self.0.children {
            let _ = c.wait();
        }
    }
}

/// The `--server`, `--token` and `--ca-hash` flags (with values) of the
/// `keel-agent join …` command `keelctl token create` prints.
pub fn join_flags(printed: &str) -> Option<Vec<String>> {
    let line = printed
        .lines()
        .find(|l| l.trim_start().starts_with("keel-agent join "))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut out = Vec::new();
    for flag in ["--server", "--token", "--ca-hash"] {
        let at = words.iter().position(|w| *w == flag)?;
        out.push(flag.to_string());
        out.push(words.get(at + 1)?.to_string());
    }
    Some(out)
}

/// An agent's command line without `join` and its flags: how it starts
/// again once it holds its credential.
pub fn without_join(command: &[String]) -> Vec<String> {
    if command.get(1).map(String::as_str) != Some("join") {
        return command.to_vec();
    }
    let mut out = vec![command[0].clone()];
    let mut rest = command[2..].iter();
    while let Some(a) = rest.next() {
        if matches!(a.as_str(), "--server" | "--token" | "--ca-hash") {
            rest.next();
        } else {
            out.push(a.clone());
        }
    }
    out
}

#[cfg(test)]
mod join_tests {
    use super::*;

    #[test]
    fn the_join_flags_come_from_the_printed_command() {
        let printed = "keel-agent join --server https://172.30.0.2:6443 --token abcdef.0123456789abcdef --ca-hash sha256:ab\n";
        assert_eq!(
            join_flags(printed).unwrap(),
            [
                "--server",
                "https://172.30.0.2:6443",
                "--token",
                "abcdef.0123456789abcdef",
                "--ca-hash",
                "sha256:ab"
            ]
        );
        assert_eq!(join_flags("nothing"), None);
    }

    #[test]
    fn a_restart_drops_join_and_its_flags() {
        let cmd: Vec<String> = [
            "/bin/keel-agent",
            "join",
            "--server",
            "https://x",
            "--token",
            "t",
            "--ca-hash",
            "h",
            "--node-name",
            "node-1",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            without_join(&cmd),
            ["/bin/keel-agent", "--node-name", "node-1"]
        );
        let plain: Vec<String> = ["/bin/keel-agent", "--node-name", "n"]
            .map(String::from)
            .to_vec();
        assert_eq!(without_join(&plain), plain);
    }
}
