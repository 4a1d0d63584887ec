//! keel-control's configuration (from flags; see main.rs).

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use crate::{alloc::Ranges, controllers::ControllerConfig};

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub ranges: Ranges,
    pub watch_history: usize,
    /// `--watch-history-bytes`: the history's budget in bytes.
    pub watch_history_bytes: usize,
    pub bookmark_interval: Duration,
    pub controllers: ControllerConfig,
    pub tls: Option<TlsConfig>,
    /// The URL written to client.json (defaults from `listen`).
    pub advertise_url: Option<String>,
    /// `--vpc-provider`: where the route controller programs pod CIDRs (vpc mode).
    pub vpc_provider: Option<String>,
    /// `--vpc-provider-timeout`: how long one run of the provider may take.
    pub vpc_provider_timeout: Duration,
    /// `--store`: where desired state lives.
    pub store: StoreBackend,
    /// `--leader-lease-ttl`: on etcd, how long a replica that stopped
    /// renewing still counts as the controllers' leader.
    pub leader_lease_ttl: Duration,
    /// `--insecure-http`: serve plain HTTP (no TLS, no node credentials).
    pub insecure_http: bool,
    /// `--node-cert-lifetime`: how long a node's client certificate is valid.
    pub node_cert_lifetime: Duration,
    /// `--encryption-key-file`: the keys that seal Secrets at rest; None:
    /// `<data-dir>/encryption.key`, generated on first start.
    pub encryption_key_file: Option<PathBuf>,
    /// `--max-replicas`, `--max-service-ports`, `--max-objects-per-namespace`.
    pub limits: crate::store::Limits,
    /// `--max-connections`, `--max-connections-per-ip` and the read timeouts.
    pub connections: crate::conn::ConnLimits,
    /// `--disk-reserve-mib`: space the redb store keeps aside for when the
    /// disk fills.
    pub disk_reserve_mib: u64,
}

/// `--store redb|etcd`.
#[derive(Debug, Clone, Default)]
pub enum StoreBackend {
    /// One redb file in the data directory (the default).
    #[default]
    Redb,
    /// An etcd cluster (`--etcd-endpoints`), shared by every replica.
    Etcd(crate::store::etcd::EtcdConfig),
}

/// `--tls-cert/--tls-key`: serve with this certificate instead of one the
/// cluster CA issues.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// CA that clients should trust (written to client.json); the
    /// certificate itself when it is self-signed.
    pub client_ca: Option<PathBuf>,
}

impl ServerConfig {
    pub fn token_path(&self) -> PathBuf {
        self.data_dir.join("token")
    }

    pub fn client_config_path(&self) -> PathBuf {
        self.data_dir.join("client.json")
    }

    pub fn bootstrap_path(&self) -> PathBuf {
        self.data_dir.join("bootstrap.json")
    }

    /// The key file sealing Secrets, and whether keel-control may create it
    /// (only its own, in the data dir: a named file is shared and must exist).
    pub fn encryption_key_path(&self) -> (PathBuf, bool) {
        match &self.encryption_key_file {
            Some(p) => (p.clone(), false),
            None => (self.data_dir.join("encryption.key"), true),
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("state.redb")
    }

    /// The URL clients should use.
    pub fn url(&self) -> String {
        if let Some(u) = &self.advertise_url {
            return u.clone();
        }
        let scheme = if self.insecure_http { "http" } else { "https" };
        let host = if self.listen.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            self.listen.ip().to_string()
        };
        format!("{scheme}://{host}:{}", self.listen.port())
    }
}
