//! keel-agent: the node agent binary.

use std::{net::Ipv4Addr, path::PathBuf, time::Duration};

use anyhow::Context;
use clap::Parser;
use keel_agent::sync::{self, register::NodeFacts};
use keel_api::client::{Client, ClientConfig, DEFAULT_DATA_DIR};

/// keel's node agent: registers the node, mirrors its desired state and
/// runs its pods, services and networking.
#[derive(Parser, Debug)]
#[command(
    version,
    long_version = concat!(env!("CARGO_PKG_VERSION"), "\nBPF programs: ", env!("KEEL_BPF_OBJECTS"))
)]
struct Args {
    /// The agent's config file: YAML keyed by these flags' long names
    /// (flags and environment variables override it; a missing file at the
    /// default path is fine).
    #[arg(long, env = "KEEL_AGENT_CONFIG", value_name = "FILE")]
    config_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
    /// This node's name (default: the host name).
    #[arg(long, env = "KEEL_NODE_NAME")]
    node_name: Option<String>,
    /// The node's IP on the cluster network (default: the address of the
    /// default route's interface; without a default route, the first
    /// non-loopback IPv4 address).
    #[arg(long, env = "KEEL_NODE_IP")]
    node_ip: Option<Ipv4Addr>,
    /// keel-control's client.json (not the agent's own config file: that
    /// is --config-file).
    #[arg(long, env = "KEEL_CONFIG")]
    config: Option<PathBuf>,
    /// Server URL, or several replicas comma-separated, tried in turn (with
    /// --token-file instead of --config).
    #[arg(long, env = "KEEL_SERVER")]
    server: Option<String>,
    #[arg(long, env = "KEEL_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    #[arg(long, env = "KEEL_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Where the agent keeps its cache and socket.
    #[arg(long, default_value = "/var/lib/keel/agent")]
    data_dir: PathBuf,
    /// Plain HTTP address for /healthz, /livez, /readyz and Prometheus
    /// /metrics (like the kubelet's read-only port), or `none`.
    #[arg(long, default_value = "127.0.0.1:10255")]
    metrics_listen: String,
    /// How often the node posts its status.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    heartbeat_interval: Duration,
    /// Log as JSON lines.
    #[arg(long)]
    log_json: bool,
    /// How pods reach other nodes: vxlan, route, vpc, auto, or none (keel
    /// does not touch node networking).
    #[arg(long, default_value = "auto", value_parser = |s: &str| s.parse::<keel_agent::net::plan::Mode>())]
    network_mode: keel_agent::net::plan::Mode,
    /// What forwards pod traffic through this node: "bpf" (TC programs,
    /// no pass through the node's IP stack or its netfilter rules),
    /// "kernel" (the IP stack), or "auto" (bpf when keel's load balancer
    /// runs here, so no netfilter NAT needs to see pod traffic, and the
    /// kernel takes the programs).
    #[arg(long, default_value = "auto", value_parser = |s: &str| s.parse::<keel_agent::net::hostrouting::Mode>())]
    host_routing: keel_agent::net::hostrouting::Mode,
    /// SNAT pods' traffic to destinations outside the cluster network to
    /// the node's address (an nftables masquerade rule in the node's
    /// namespace, table `ip keel-egress`); `--masquerade=false` removes it
    /// (Calico's natOutgoing). Cluster destinations — every node's pod CIDR
    /// and IP, every Service's cluster IP — keep the pod's address.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    masquerade: bool,
    /// Destinations pods reach with their own address, besides the
    /// cluster's (like ip-masq-agent's nonMasqueradeCIDRs): repeatable or
    /// comma-separated IPv4 CIDRs.
    #[arg(long, value_name = "CIDR", value_delimiter = ',', value_parser = keel_agent::net::egress::parse_cidr)]
    non_masquerade_cidr: Vec<ipnet::Ipv4Net>,
    /// VXLAN network identifier.
    #[arg(long, default_value_t = 1)]
    vxlan_vni: u32,
    /// VXLAN UDP port (8472 as flannel and the Linux default, or 4789).
    #[arg(long, default_value_t = 8472)]
    vxlan_port: u16,
    /// Directories holding CNI plugins (keel's is `keel`); "none": no
    /// pods on this node.
    #[arg(long, value_delimiter = ':', default_value = "/opt/cni/bin")]
    cni_bin_dir: Vec<PathBuf>,
    /// Where the agent writes (and runtimes read) the CNI configuration.
    #[arg(long, default_value = "/etc/cni/net.d")]
    cni_conf_dir: PathBuf,
    /// What runs the pods' containers: "direct" (keel's per-pod shim with
    /// youki's libcontainer), "containerd" (containerd's runc shim, keel's
    /// images and specs) or "none" (pods are network sandboxes only).
    #[arg(long, default_value = "direct", value_parser = ["none", "direct", "containerd"])]
    runtime: String,
    /// containerd's gRPC socket (with --runtime containerd).
    #[arg(long, default_value = "/run/containerd/containerd.sock")]
    containerd_socket: PathBuf,
    /// containerd namespace of this agent's containers (default: the pod
    /// netns prefix without its trailing dash, e.g. `keel-pod`).
    #[arg(long)]
    containerd_namespace: Option<String>,
    /// runc's state root for containerd's shims (default: runc's,
    /// /run/containerd/runc).
    #[arg(long)]
    containerd_runc_root: Option<PathBuf>,
    /// Registries (host:port) the runtime reaches over plain HTTP.
    #[arg(long, value_delimiter = ',')]
    insecure_registry: Vec<String>,
    /// Fetch images of a registry from a mirror: `REGISTRY=HOST[:PORT]`
    /// (repeatable; the images keep their names).
    #[arg(long, value_parser = parse_mirror)]
    registry_mirror: Vec<(String, String)>,
    /// The node's registry credentials: a docker `config.json` (`auths`
    /// with `auth` or `username`/`password`), read at each pull and used
    /// where the pod's imagePullSecrets have none for the registry
    /// contacted (a mirror's own host when mirrored); a missing file means
    /// none.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "/etc/keel/registry-credentials.json"
    )]
    registry_credentials: PathBuf,
    /// Accept `securityContext.privileged: true`, capabilities beyond Pod
    /// Security "baseline", `seccompProfile: Unconfined` and `hostNetwork:
    /// true` pods.
    #[arg(long, env = "KEEL_ALLOW_PRIVILEGED")]
    allow_privileged: bool,
    /// Where `seccompProfile: Localhost` profiles are read from (default:
    /// `<data-dir>/seccomp`).
    #[arg(long)]
    seccomp_profile_dir: Option<PathBuf>,
    /// Directories under which hostPath volumes are allowed (repeatable or
    /// ':'-separated; none by default, so no hostPath at all).
    #[arg(long = "allow-host-path", value_name = "DIR", env = "KEEL_ALLOW_HOST_PATH", value_delimiter = ':', num_args = 1.., value_parser = parse_host_path_root)]
    allow_host_path: Vec<PathBuf>,
    /// cgroup parent of the pods' containers, in every hierarchy (default:
    /// the pod netns prefix without its trailing dash, e.g. `keel-pod`).
    #[arg(long)]
    pod_cgroup_parent: Option<String>,
    /// Where the runtime keeps images, pod bundles, shims' sockets and logs
    /// (default: `<data-dir>/<pod-netns-prefix>runtime`, named like the
    /// pods' namespaces so the sweeper finds what a crash leaves).
    #[arg(long)]
    runtime_root: Option<PathBuf>,
    /// Prefix of the pods' network namespace names (unique per agent).
    #[arg(long, default_value = "keel-pod-")]
    pod_netns_prefix: String,
    /// cgroup v2 directory whose processes get Service load balancing at
    /// the socket layer: "auto" (the node's cgroup v2 root, from
    /// /proc/self/mountinfo), a directory, or "none" (no load balancer).
    #[arg(long, env = "KEEL_CGROUP_ROOT", default_value = "auto", value_parser = |s: &str| s.parse::<keel_agent::host::checks::CgroupRoot>())]
    cgroup_root: keel_agent::host::checks::CgroupRoot,
    /// Interface for the NodePort/externalIP TC programs (default: the one
    /// holding the node IP; "none": no NodePort).
    #[arg(long, env = "KEEL_UPLINK")]
    uplink: Option<String>,
    /// Where the load balancer pins its maps and links, and host routing
    /// its own under `net/` (default: /sys/fs/bpf/keel/<node>); must be on
    /// a bpf filesystem.
    #[arg(long, env = "KEEL_BPFFS")]
    bpffs: Option<PathBuf>,
    /// Answer NodePorts only on the uplink's addresses inside these CIDRs
    /// (comma-separated), as kube-proxy's --nodeport-addresses; default:
    /// every IPv4 address of the uplink.
    #[arg(long, env = "KEEL_NODEPORT_ADDRESSES", value_delimiter = ',')]
    nodeport_addresses: Vec<ipnet::Ipv4Net>,
    /// How often the load balancer re-reads its maps and compares everything.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    lb_resync: Duration,
    /// Serve cluster DNS for this node's pods on this address (put on a
    /// `keel.dns` dummy device in the agent's network namespace, on `lo`
    /// where the kernel has no dummy driver) and make it their nameserver
    /// under dnsPolicy ClusterFirst. On by default at NodeLocal DNSCache's
    /// 169.254.20.10; `none` turns it off, and ClusterFirst pods then get
    /// the node's resolv.conf (the kubelet without --cluster-dns).
    #[arg(long, env = "KEEL_CLUSTER_DNS", default_value = "169.254.20.10", value_parser = parse_cluster_dns)]
    cluster_dns: ClusterDns,
    /// The cluster's DNS domain.
    #[arg(long, default_value = "cluster.local")]
    cluster_domain: String,
    /// The node's resolver configuration: cluster DNS's upstreams, and the
    /// search domains and servers pods' resolv.conf inherit.
    #[arg(long, default_value = "/etc/resolv.conf")]
    resolv_conf: PathBuf,
    /// The HTTPS port keel-control proxies logs and exec to (the kubelet's
    /// 10250), on the node IP; `none` turns it off. Needs the node's own
    /// credential (a joined node) and a runtime.
    #[arg(long, alias = "server-port", env = "KEEL_NODE_PORT_LISTEN", default_value = "10250", value_parser = parse_node_port)]
    node_port_listen: NodePort,
}

/// `--cluster-dns`: the address, or None for `none`.
#[derive(Debug, Clone, Copy)]
struct ClusterDns(Option<Ipv4Addr>);

/// `--node-port-listen`: the port, or None for `none`.
#[derive(Debug, Clone, Copy)]
struct NodePort(Option<u16>);

/// Subcommands (the agent itself runs without one).
#[derive(clap::Subcommand, Debug)]
enum Command {
    /// The agent's configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(clap::Subcommand, Debug)]
enum ConfigCommand {
    /// Print the effective configuration (flags over environment over the
    /// config file over defaults) as YAML, each value commented with where
    /// it came from.
    Show,
}

fn first_ipv4() -> Option<Ipv4Addr> {
    nix::ifaddrs::getifaddrs().ok()?.find_map(|ifa| {
        let ip = ifa.address?.as_sockaddr_in()?.ip();
        (!ip.is_loopback() && ifa.flags.contains(nix::net::if_::InterfaceFlags::IFF_UP))
            .then_some(ip)
    })
}

/// `keel-agent join`: the agent's flags and these.
#[derive(clap::Args, Debug)]
struct JoinFlags {
    /// Bootstrap token from `keelctl token create` (ID.SECRET).
    #[arg(long, env = "KEEL_JOIN_TOKEN")]
    token: String,
    /// The cluster CA's hash (sha256:…), as `keelctl token create` prints it.
    #[arg(long)]
    ca_hash: String,
}

/// `keel-agent join --server URL --token ID.SECRET --ca-hash sha256:… [agent flags]`:
/// get this node's credential with a bootstrap token, then run as the agent.
#[derive(Parser, Debug)]
#[command(name = "keel-agent join", version)]
struct JoinCli {
    #[command(flatten)]
    agent: Args,
    #[command(flatten)]
    join: JoinFlags,
}

/// The agent's flags (under its config file), and the join flags when the
/// first argument is `join`.
fn parse_args() -> (Args, Option<JoinFlags>, keel_config::Effective) {
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == "join") {
        argv.remove(1);
        let (cli, effective) =
            keel_config::parse_or_exit_from::<JoinCli, _, _>(argv, startup::CONFIG_FILE);
        (cli.agent, Some(cli.join), effective)
    } else {
        let (args, effective) =
            keel_config::parse_or_exit_from::<Args, _, _>(argv, startup::CONFIG_FILE);
        (args, None, effective)
    }
}

fn main() -> anyhow::Result<()> {
    // A pod's shim and the exec helper are this binary re-executed; they
    // must start before any thread or async runtime exists.
    if let Some(code) = keel_agent::runtime::shim::dispatch() {
        std::process::exit(code);
    }
    keel_agent::memory::limit_arenas();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Blocking work (CNI plugins, probes, map writes) comes in bursts;
        // a bounded pool keeps a burst from leaving dozens of idle
        // threads (and their allocations) behind.
        .max_blocking_threads(64)
        .build()?
        .block_on(agent_main())
}

async fn agent_main() -> anyhow::Result<()> {
    let (mut args, join, effective) = parse_args();
    if let Some(Command::Config(ConfigCommand::Show)) = args.command {
        print!("{}", startup::show(&args, &effective));
        return Ok(());
    }
    args.cni_bin_dir.retain(|d| d.as_os_str() != "none");
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    if args.log_json {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    } else {
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(ansi)
            .init();
    }
    let node_name = match args.node_name.clone() {
        Some(n) => n,
        None => nix::unistd::gethostname()?.to_string_lossy().into_owned(),
    };
    keel_api::validate::dns1123_subdomain(&node_name)
        .map_err(|e| anyhow::anyhow!("--node-name: {e}"))?;
    let node_ip = match args.node_ip {
        Some(ip) => ip,
        None => startup::node_ip()?,
    };
    let bpffs = args
        .bpffs
        .clone()
        .unwrap_or_else(|| PathBuf::from("/sys/fs/bpf/keel").join(&node_name));
    // Before anything is touched: everything the enabled features need.
    let cgroup_root = startup::check(&args, &bpffs)?;
    // `own_credential`: the node's credential in the data dir, which the
    // agent renews.
    let (client_config, own_credential) = match (join, args.server) {
        (Some(join), Some(server)) => {
            let path = keel_agent::join::join(
                &server,
                &join.token,
                &join.ca_hash,
                &node_name,
                &args.data_dir,
            )
            .await?;
            (
                ClientConfig::load(&path).with_context(|| format!("{}", path.display()))?,
                true,
            )
        }
        (Some(_), None) => anyhow::bail!("join: --server https://HOST:PORT is required"),
        // A joined node uses its stored credential.
        (None, None)
            if args.config.is_none() && keel_agent::join::stored(&args.data_dir).is_some() =>
        {
            let path = keel_agent::join::stored(&args.data_dir).expect("checked");
            let config = ClientConfig::load(&path)
                .with_context(|| format!("the node credential {}", path.display()))?;
            (config, true)
        }
        (None, Some(server)) => {
            let token = args
                .token_file
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR).join("token"));
            (
                ClientConfig::from_parts(&server, &token, args.ca_file.as_deref())?,
                false,
            )
        }
        (None, None) => {
            let path = args
                .config
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR).join("client.json"));
            let config = ClientConfig::load(&path)
                .with_context(|| format!("--config {}", path.display()))?;
            (config, false)
        }
    };
    let client = Client::new(&client_config)?;
    if let Some(identity) = client_config.identity.clone().filter(|_| own_credential) {
        tokio::spawn(keel_agent::join::renew_periodically(
            client.clone(),
            identity,
            node_name.clone(),
            args.data_dir.clone(),
        ));
    }
    keel_agent::private::private_dir(&args.data_dir)
        .with_context(|| format!("creating {} (0700)", args.data_dir.display()))?;
    tracing::info!(node = %node_name, %node_ip, server = %client.server(), "keel-agent starting");

    // Events as the kubelet records them (component `kubelet`, this node).
    let events = keel_api::recorder::Recorder::spawn(client.clone(), "kubelet", &node_name);
    events.normal(
        keel_agent::sync::register::node_reference(&node_name),
        "Starting",
        "Starting kubelet.",
    );
    // The HTTPS port for keel-control: only with the node's own credential
    // (keel-control signs its serving certificate) and something to serve:
    // the runtime (logs, exec), the load balancer or host routing (their
    // dumps, through keel-control's node proxy).
    let serves = args.runtime != "none"
        || cgroup_root.is_some()
        || args.network_mode != keel_agent::net::plan::Mode::None;
    let node_port = match args.node_port_listen.0 {
        Some(port) if own_credential && serves => {
            let listener = tokio::net::TcpListener::bind((node_ip, port))
                .await
                .with_context(|| format!("--node-port-listen: binding {node_ip}:{port}"))?;
            Some((listener, port))
        }
        Some(_) => {
            tracing::info!(
                "node port off: it needs a joined node's own credential and a runtime, load balancer or node networking"
            );
            None
        }
        None => None,
    };
    let mut facts = NodeFacts::detect(&node_name, node_ip);
    facts.agent_port = node_port.as_ref().map(|(_, port)| *port);
    let (conditions_tx, conditions) = tokio::sync::watch::channel(Vec::new());
    tokio::spawn(sync::register::run(
        client.clone(),
        facts,
        args.heartbeat_interval,
        conditions,
        events.clone(),
    ));
    tokio::spawn(keel_agent::memory::trim_periodically());
    let views = sync::start(
        client.clone(),
        node_name.clone(),
        args.data_dir.join("cache"),
    );
    let mut status = keel_agent::api::Reconcilers::default();
    keel_agent::dns::zone::Zone::new(&args.cluster_domain)
        .map_err(|e| anyhow::anyhow!("--cluster-domain: {e}"))?;
    // A node without a resolv.conf has no upstream and nothing for pods to
    // inherit; that is no reason not to run.
    let host_dns = match std::fs::read_to_string(&args.resolv_conf) {
        Ok(t) => keel_agent::dns::podfiles::ResolvConf::parse(&t),
        Err(e) => {
            tracing::warn!(path = %args.resolv_conf.display(), error = %e, "--resolv-conf unreadable: no upstream DNS");
            Default::default()
        }
    };
    let mut routes = axum::Router::new();
    // What keel-control reaches on the node port (logs, exec, dumps).
    let mut node_app = axum::Router::new();
    if let ClusterDns(Some(addr)) = args.cluster_dns {
        let dns = keel_agent::dns::start(
            keel_agent::dns::DnsOptions {
                addr,
                domain: args.cluster_domain.clone(),
                host: host_dns.clone(),
            },
            &views,
        )
        .await
        .context("starting cluster DNS")?;
        routes = routes.merge(dns.router());
    }

    let egress_status = keel_agent::net::egress::SharedStatus::default();
    let net = keel_agent::net::NetConfig {
        mode: args.network_mode,
        vxlan: keel_agent::net::plan::VxlanConfig {
            vni: args.vxlan_vni,
            port: args.vxlan_port,
        },
        node_name: node_name.clone(),
        node_ip,
        egress: keel_agent::net::egress::EgressConfig {
            masquerade: args.masquerade,
            non_masquerade: args.non_masquerade_cidr.clone(),
        },
        egress_status: egress_status.clone(),
    };
    if let Some(h) =
        keel_agent::net::start(net, &views, conditions_tx).context("starting node networking")?
    {
        status.add("net", h);
    }
    if args.network_mode != keel_agent::net::plan::Mode::None {
        let hr = keel_agent::net::hostrouting::start(
            keel_agent::net::hostrouting::Options {
                mode: args.host_routing,
                lb: cgroup_root.is_some(),
                dir: bpffs.join("net"),
                node_ip,
                egress: egress_status,
            },
            &views,
        )
        .context("starting host routing")?;
        node_app = node_app.merge(hr.router.clone());
        routes = routes.merge(hr.router);
        if let Some(h) = hr.handle {
            status.add("hostrouting", h);
        }
    } else if bpffs.join("net").exists() {
        // An earlier agent ran host routing here; keel no longer does node
        // networking, so what it attached goes.
        keel_agent::net::hostrouting::datapath::remove(&bpffs.join("net"))
            .with_context(|| format!("removing {}", bpffs.join("net").display()))?;
        tracing::info!(
            "host routing: removed what an earlier agent attached (--network-mode none)"
        );
    }
    if !args.cni_bin_dir.is_empty() {
        use keel_agent::{pods, runtime};
        let mtu = args
            .network_mode
            .pod_mtu(keel_agent::net::underlay_mtu(node_ip));
        let cni = pods::cni::CniSetup {
            bin_dirs: args.cni_bin_dir.clone(),
            conf_dir: args.cni_conf_dir.clone(),
            ipam_dir: args.data_dir.join("ipam"),
        };
        let sandboxes = pods::sandbox::Sandboxes {
            cni: cni.clone(),
            prefix: args.pod_netns_prefix.clone(),
            records: args.data_dir.join("sandboxes"),
        };
        let registry = runtime::api::Registry::default();
        let cfg = pods::PodsConfig {
            status: std::sync::Arc::new(client.clone()),
            node_name: node_name.clone(),
            node_ip,
            sandboxes: std::sync::Arc::new(sandboxes),
            cni: Some(cni),
            mtu,
            registry: registry.clone(),
            lifecycle: Default::default(),
            client: Some(client.clone()),
            events: events.clone(),
        };
        let root = args.runtime_root.clone().unwrap_or_else(|| {
            args.data_dir
                .join(format!("{}runtime", args.pod_netns_prefix))
        });
        let exe = std::env::current_exe().context("locating keel-agent for the shims")?;
        let node = runtime::container::NodeRuntimeConfig {
            allow_privileged: args.allow_privileged,
            host_path_roots: args.allow_host_path.clone(),
            seccomp_profile_dir: args
                .seccomp_profile_dir
                .clone()
                .unwrap_or_else(|| args.data_dir.join("seccomp")),
            cgroup_parent: args
                .pod_cgroup_parent
                .clone()
                .unwrap_or_else(|| args.pod_netns_prefix.trim_end_matches('-').to_string()),
            dns: keel_agent::dns::podfiles::NodeDns {
                cluster_dns: args.cluster_dns.0.map(std::net::IpAddr::V4),
                cluster_domain: args.cluster_domain.clone(),
                host: host_dns.clone(),
            },
            ..Default::default()
        };
        let pull = runtime::images::PullOptions {
            insecure_registries: args.insecure_registry.clone(),
            mirrors: args.registry_mirror.iter().cloned().collect(),
            credentials_file: Some(args.registry_credentials.clone()),
            ..Default::default()
        };
        let running = match args.runtime.as_str() {
            "containerd" => {
                let rt = runtime::containerd::ContainerdRuntime::new(
                    runtime::containerd::ContainerdConfig {
                        root,
                        exe,
                        socket: args.containerd_socket.clone(),
                        namespace: args.containerd_namespace.clone().unwrap_or_else(|| {
                            args.pod_netns_prefix.trim_end_matches('-').to_string()
                        }),
                        runc_root: args.containerd_runc_root.clone(),
                        node,
                        pull,
                    },
                )?;
                let r = runtime::api::router(rt.clone(), registry);
                node_app = node_app.merge(r.clone());
                routes = routes.merge(r);
                pods::start(cfg, Some(rt), &views)
            }
            "direct" => {
                let rt = runtime::direct::DirectRuntime::new(runtime::direct::DirectConfig {
                    root,
                    exe,
                    node,
                    pull,
                })?;
                let r = runtime::api::router(rt.clone(), registry);
                node_app = node_app.merge(r.clone());
                routes = routes.merge(r);
                pods::start(cfg, Some(rt), &views)
            }
            _ => pods::start::<runtime::direct::DirectRuntime>(cfg, None, &views),
        }
        .context("starting the pods reconciler")?;
        status.add("pods", running.handle);
        status.pod_wakes = Some(running.wakes);
    }
    let lb_on = cgroup_root.is_some();
    if let Some(cgroup_root) = cgroup_root {
        let lb = keel_agent::lb::start(
            keel_agent::lb::LbOptions {
                node: keel_agent::lb::model::NodeInfo::new(node_name.clone(), node_ip),
                nodeport_addresses: args.nodeport_addresses.clone(),
                cgroup_root,
                uplink: args.uplink.clone(),
                bpffs: bpffs.clone(),
                resync: args.lb_resync,
            },
            &views,
        )
        .context("starting the load balancer")?;
        node_app = node_app.merge(lb.router.clone());
        routes = routes.merge(lb.router);
        status.add("lb", lb.reconciler);
    }
    if let Some((listener, _)) = node_port {
        tokio::spawn(keel_agent::nodeport::start(
            client.clone(),
            node_name.clone(),
            vec![node_ip.to_string(), node_name.clone()],
            listener,
            node_app,
        ));
    }

    if args.metrics_listen != "none" {
        let addr: std::net::SocketAddr = args.metrics_listen.parse().with_context(|| {
            format!(
                "--metrics-listen {:?}: not HOST:PORT or none",
                args.metrics_listen
            )
        })?;
        let mut files = Vec::new();
        if !args.cni_bin_dir.is_empty() {
            files.push(keel_agent::health::FileCheck {
                name: "cni-config",
                path: args.cni_conf_dir.join(keel_agent::pods::cni::CONF_FILE),
                why: "written once the node has a pod CIDR",
            });
        }
        if lb_on {
            files.push(keel_agent::health::FileCheck {
                name: "lb-programs",
                path: bpffs.join("links"),
                why: "the LB's programs are attached through links pinned there",
            });
        }
        let health = keel_agent::health::Health {
            views: views.clone(),
            reconcilers: status.clone(),
            events: events.clone(),
            files,
            datapaths: keel_agent::health::ops::Datapaths {
                lb_maps: lb_on.then(|| bpffs.join("maps")),
                host_routing: (args.network_mode != keel_agent::net::plan::Mode::None)
                    .then(|| bpffs.join("net")),
            },
        };
        // Health is auxiliary: a taken port is said loudly, the node runs on.
        tokio::spawn(async move {
            if let Err(e) = keel_agent::health::serve(addr, health).await {
                tracing::error!(error = %e, "health and metrics are not served");
            }
        });
    }
    let socket = args.data_dir.join("agent.sock");
    let api = tokio::spawn({
        // Reconcilers merge their routes here.
        let app = keel_agent::api::router(node_name, views, status).merge(routes);
        async move { keel_agent::api::serve(&socket, app).await }
    });

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        r = api => r??,
    }
    tracing::info!("keel-agent stopping; pods and datapath stay as they are");
    Ok(())
}

/// `--cluster-dns`: an IPv4 address, or `none`.
fn parse_cluster_dns(s: &str) -> Result<ClusterDns, String> {
    match s {
        "none" => Ok(ClusterDns(None)),
        _ => s
            .parse::<Ipv4Addr>()
            .ok()
            .filter(|a| !a.is_unspecified() && !a.is_broadcast() && !a.is_multicast())
            .map(|a| ClusterDns(Some(a)))
            .ok_or_else(|| format!("{s:?}: expected an IPv4 unicast address or none")),
    }
}

/// `--node-port-listen`: a port, or `none`.
fn parse_node_port(s: &str) -> Result<NodePort, String> {
    match s {
        "none" => Ok(NodePort(None)),
        _ => s
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .map(|p| NodePort(Some(p)))
            .ok_or_else(|| format!("{s:?}: expected a port 1-65535 or none")),
    }
}

/// A directory of `--allow-host-path`: absolute, without `..` (the check
/// against it is by path prefix).
fn parse_host_path_root(s: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(s);
    if !p.is_absolute() || p.components().any(|c| c == std::path::Component::ParentDir) {
        return Err(format!("{s:?}: must be an absolute path without '..'"));
    }
    Ok(p)
}

/// `REGISTRY=HOST[:PORT]` of `--registry-mirror`.
fn parse_mirror(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((r, m)) if !r.is_empty() && !m.is_empty() && !m.contains('/') => {
            Ok((r.to_string(), m.to_string()))
        }
        _ => Err(format!(
            "{s:?}: expected REGISTRY=HOST[:PORT], e.g. registry.example=10.0.0.5:5000"
        )),
    }
}

#[path = "main/startup.rs"]
mod startup;

#[cfg(test)]
#[path = "main/tests.rs"]
mod tests;
