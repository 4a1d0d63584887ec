//! keel-control: the control service binary.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context;
use keel_control::{
    alloc::Ranges,
    config::{ServerConfig, StoreBackend, TlsConfig},
    controllers::ControllerConfig,
    store::etcd::{EtcdConfig, EtcdTls},
};

/// keel's control service: desired state for nodes, pods, services and
/// deployments, with a Kubernetes-shaped HTTP/JSON API and watch.
#[derive(clap::Parser, Debug)]
#[command(version)]
struct Args {
    /// keel-control's config file: YAML keyed by these flags' long names
    /// (flags and environment variables override it; a missing file at the
    /// default path, /etc/keel/control.yaml, is fine).
    #[arg(
        long,
        visible_alias = "config-file",
        env = "KEEL_CONTROL_CONFIG",
        value_name = "FILE"
    )]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
    /// Address to serve the API on.
    #[arg(long, default_value = "127.0.0.1:6443", env = "KEEL_CONTROL_LISTEN")]
    listen: SocketAddr,
    /// Where the store, the token (mode 0600) and client.json live.
    #[arg(long, default_value = keel_api::client::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Pod CIDRs for nodes are carved out of this.
    #[arg(long, default_value = "10.244.0.0/16")]
    cluster_cidr: ipnet::Ipv4Net,
    /// Prefix length of each node's pod CIDR.
    #[arg(long, default_value_t = 24)]
    node_cidr_prefix: u8,
    /// Cluster IPs of Services come from this.
    #[arg(long, default_value = "10.96.0.0/16")]
    service_cidr: ipnet::Ipv4Net,
    /// NodePort range, FIRST-LAST.
    #[arg(long, default_value = "30000-32767")]
    node_port_range: String,
    /// Events kept for watch resume.
    #[arg(long, default_value_t = 20_000)]
    watch_history: usize,
    /// Bytes of events kept for watch resume (their JSON); the oldest go
    /// first, and a watch that falls behind them is told to relist (410).
    #[arg(long, default_value_t = 256 << 20)]
    watch_history_bytes: usize,
    /// A node that posts no status for this long becomes NotReady.
    #[arg(long, default_value = "40s", value_parser = humantime::parse_duration)]
    node_monitor_grace: Duration,
    /// How often node heartbeats are checked.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    node_monitor_period: Duration,
    /// Pods of a node NotReady this long are evicted and replaced elsewhere.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pod_eviction_timeout: Duration,
    /// Events last seen longer ago than this are deleted (Kubernetes'
    /// `--event-ttl`).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    event_ttl: Duration,
    /// Full recomputation period of the controllers.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    resync: Duration,
    /// How often an idle watch gets a bookmark (keepalive).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    bookmark_interval: Duration,
    /// Serve HTTPS with this certificate (PEM)...
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// ...and this private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// CA clients should trust (written to client.json); default: the certificate itself.
    #[arg(long)]
    tls_client_ca: Option<PathBuf>,
    /// Serve plain HTTP instead of TLS with the cluster CA (no node join,
    /// no node credentials: for tests and debugging only).
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    insecure_http: bool,
    /// How long a node's client certificate is valid; nodes renew it when
    /// less than a third is left.
    #[arg(long, default_value = "8760h", value_parser = humantime::parse_duration)]
    node_cert_lifetime: Duration,
    /// URL written to client.json for agents and keelctl (default: from --listen).
    #[arg(long)]
    advertise_url: Option<String>,
    /// Log as JSON lines.
    #[arg(long)]
    log_json: bool,
    /// Program a VPC route table with each node's pod CIDR (vpc mode):
    /// `exec:PROGRAM [ARG…]` runs PROGRAM with the desired route table as
    /// JSON on stdin (contract: control/server/src/vpc/EXEC.md).
    #[arg(long)]
    vpc_provider: Option<String>,
    /// How long one run of the VPC provider may take before it is killed.
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    vpc_provider_timeout: Duration,
    /// Where desired state lives: one redb file in --data-dir, or an etcd
    /// cluster (--etcd-endpoints) that several replicas can share.
    #[arg(long, value_enum, default_value_t = StoreKind::Redb)]
    store: StoreKind,
    /// etcd client URLs, comma-separated (with --store etcd).
    #[arg(long, value_delimiter = ',')]
    etcd_endpoints: Vec<String>,
    /// Every key keel-control writes in etcd starts with this.
    #[arg(long, default_value = "/keel")]
    etcd_prefix: String,
    /// CA that signed etcd's serving certificates (turns on TLS to etcd).
    #[arg(long)]
    etcd_cafile: Option<PathBuf>,
    /// Client certificate for etcd (PEM), with --etcd-keyfile.
    #[arg(long, requires_all = ["etcd_keyfile", "etcd_cafile"])]
    etcd_certfile: Option<PathBuf>,
    /// Client key for etcd (PEM), with --etcd-certfile.
    #[arg(long, requires_all = ["etcd_certfile", "etcd_cafile"])]
    etcd_keyfile: Option<PathBuf>,
    /// On etcd, the controllers run on one replica at a time, elected with
    /// an etcd lease of this TTL: another replica takes over within it.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    leader_lease_ttl: Duration,
    /// The keys that seal Secrets at rest (`NAME BASE64-KEY` lines, the
    /// first seals); default: `<data-dir>/encryption.key`, generated (0600)
    /// on first start. etcd replicas must share one file; a named file must
    /// exist.
    #[arg(long, value_name = "FILE")]
    encryption_key_file: Option<PathBuf>,
    /// How often etcd's history is compacted (0s: never).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    etcd_compaction_interval: Duration,
    /// The most replicas a Deployment may ask for (0: no bound); its
    /// controller creates them at most 500 per pass.
    #[arg(long, default_value_t = 10_000)]
    max_replicas: u64,
    /// The most ports one Service may have (0: no bound).
    #[arg(long, default_value_t = 256)]
    max_service_ports: usize,
    /// The most Pods, Services, Deployments, ConfigMaps and Secrets one
    /// namespace may hold, counting what controllers create (0: no bound).
    #[arg(long, default_value_t = 50_000)]
    max_objects_per_namespace: usize,
    /// The most client connections served at once; past it, new ones are
    /// closed at accept.
    #[arg(long, default_value_t = 4096)]
    max_connections: usize,
    /// The most connections one client address may hold, so one host
    /// cannot take every slot.
    #[arg(long, default_value_t = 512)]
    max_connections_per_ip: usize,
    /// How long a client has to finish its TLS handshake and then each
    /// request's headers.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    client_read_timeout: Duration,
    /// MiB of the data directory's disk the store keeps in a reserve file,
    /// released when the disk fills so that deletes still work (0: none).
    #[arg(long, default_value_t = 64)]
    disk_reserve_mib: u64,
}

/// Subcommands (the service itself runs without one).
#[derive(clap::Subcommand, Debug)]
enum Command {
    /// keel-control's configuration.
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

/// keel-control's config file: `--config`, `KEEL_CONTROL_CONFIG`, else this path.
const CONFIG_FILE: keel_config::FileFlag = keel_config::FileFlag {
    id: "config",
    default_path: "/etc/keel/control.yaml",
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum StoreKind {
    Redb,
    Etcd,
}

fn store_backend(args: &Args) -> anyhow::Result<StoreBackend> {
    let etcd_flags = !args.etcd_endpoints.is_empty() || args.etcd_cafile.is_some();
    match args.store {
        StoreKind::Redb => {
            anyhow::ensure!(
                !etcd_flags,
                "--etcd-endpoints/--etcd-cafile need --store etcd (the store is redb)"
            );
            Ok(StoreBackend::Redb)
        }
        StoreKind::Etcd => {
            anyhow::ensure!(
                !args.etcd_endpoints.is_empty(),
                "--store etcd needs --etcd-endpoints (e.g. https://10.0.0.1:2379,https://10.0.0.2:2379)"
            );
            let prefix = args.etcd_prefix.trim_end_matches('/').to_string();
            anyhow::ensure!(
                prefix.starts_with('/'),
                "--etcd-prefix: {:?} must start with /",
                args.etcd_prefix
            );
            let mut etcd = EtcdConfig::new(args.etcd_endpoints.clone());
            etcd.prefix = prefix;
            etcd.compact_interval = args.etcd_compaction_interval;
            etcd.tls = args.etcd_cafile.clone().map(|ca| EtcdTls {
                ca,
                cert: args.etcd_certfile.clone(),
                key: args.etcd_keyfile.clone(),
            });
            Ok(StoreBackend::Etcd(etcd))
        }
    }
}

fn parse_port_range(s: &str) -> anyhow::Result<std::ops::RangeInclusive<u16>> {
    let (a, b) = s
        .split_once('-')
        .context("--node-port-range: expected FIRST-LAST, e.g. 30000-32767")?;
    let (a, b): (u16, u16) = (a.trim().parse()?, b.trim().parse()?);
    anyhow::ensure!(
        a >= 1 && a <= b,
        "--node-port-range: {s} is empty or starts at 0"
    );
    Ok(a..=b)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (args, effective) = keel_config::parse_or_exit::<Args>(CONFIG_FILE);
    if let Some(Command::Config(ConfigCommand::Show)) = args.command {
        print!("{}", effective.to_yaml("keel-control"));
        return Ok(());
    }
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
    let store = store_backend(&args)?;
    let config = ServerConfig {
        insecure_http: args.insecure_http,
        node_cert_lifetime: args.node_cert_lifetime,
        encryption_key_file: args.encryption_key_file,
        store,
        leader_lease_ttl: args.leader_lease_ttl,
        listen: args.listen,
        data_dir: args.data_dir,
        ranges: Ranges {
            cluster_cidr: args.cluster_cidr,
            node_prefix: args.node_cidr_prefix,
            service_cidr: args.service_cidr,
            node_ports: parse_port_range(&args.node_port_range)?,
        },
        watch_history: args.watch_history,
        watch_history_bytes: args.watch_history_bytes,
        bookmark_interval: args.bookmark_interval,
        controllers: ControllerConfig {
            node_monitor_period: args.node_monitor_period,
            node_grace: args.node_monitor_grace,
            pod_eviction_timeout: args.pod_eviction_timeout,
            resync: args.resync,
            event_ttl: args.event_ttl,
        },
        tls: args
            .tls_cert
            .zip(args.tls_key)
            .map(|(cert, key)| TlsConfig {
                cert,
                key,
                client_ca: args.tls_client_ca,
            }),
        advertise_url: args.advertise_url,
        vpc_provider: args.vpc_provider,
        vpc_provider_timeout: args.vpc_provider_timeout,
        limits: keel_control::store::Limits {
            max_replicas: args.max_replicas,
            max_service_ports: args.max_service_ports,
            max_objects_per_namespace: args.max_objects_per_namespace,
        },
        disk_reserve_mib: args.disk_reserve_mib,
        connections: keel_control::conn::ConnLimits {
            max: args.max_connections,
            per_ip: args.max_connections_per_ip,
            read_timeout: args.client_read_timeout,
        },
    };
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
    };
    keel_control::server::run(config, shutdown).await
}
