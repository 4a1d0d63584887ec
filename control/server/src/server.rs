//! Starting keel-control: open the store, write the token and client
//! config, start the controllers, serve the API until shutdown.

use std::{sync::Arc, time::SystemTime};

use anyhow::Context;
use keel_api::client::ClientConfigFile;
use rustls::server::ResolvesServerCert;

use crate::{
    api::{self, AppState},
    auth,
    bootstrap::{
        Join,
        store::{BootstrapStore, Persist},
    },
    config::{ServerConfig, StoreBackend},
    controllers,
    pki::{
        ClusterCa,
        sans::{self, SanInputs},
        serving::{self, ServingCert, ServingFiles},
    },
    store::{Store, StoreConfig, leader::Elector, redb::RedbBackend},
};

/// Runs the controllers whenever this replica leads (on etcd), stopping
/// them as soon as it does not; their writes are fenced by the leader key.
async fn lead(
    elector: Elector,
    store: Store,
    config: controllers::ControllerConfig,
    vpc: Option<Arc<dyn crate::vpc::VpcProvider>>,
) {
    loop {
        let mut leadership = match elector.acquire().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "leader election: etcd unreachable; trying again");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        let tasks = controllers::spawn_all(
            &store.fenced(leadership.fence.clone()),
            &config,
            vpc.clone(),
        );
        leadership.wait_lost().await;
        for t in &tasks {
            t.abort();
        }
        tracing::warn!("stopped the controllers: this replica no longer leads");
    }
}

/// The serving certificate's SANs for this configuration.
fn serving_sans(config: &ServerConfig) -> Vec<String> {
    let service_ip = config
        .ranges
        .service_cidr
        .hosts()
        .next()
        .unwrap_or(config.ranges.service_cidr.addr());
    sans::sans(&SanInputs {
        listen: config.listen,
        local_addrs: sans::local_addrs(),
        hostname: nix::unistd::gethostname()
            .ok()
            .map(|h| h.to_string_lossy().into_owned()),
        advertise_host: config
            .advertise_url
            .as_deref()
            .and_then(|u| u.split(',').next())
            .and_then(sans::url_host),
        service_ip,
        cluster_domain: CLUSTER_DOMAIN.into(),
    })
}

/// The cluster DNS domain in the `kubernetes` Service's names.
const CLUSTER_DOMAIN: &str = "cluster.local";

/// Runs until `shutdown` resolves.
pub async fn run(
    config: ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config
        .ranges
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid ranges: {e}"))?;
    match crate::conn::raise_nofile_limit() {
        Ok(n) => tracing::info!(open_files = n, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
    crate::store::redb::private_dir(&config.data_dir)
        .with_context(|| format!("creating {} (0700)", config.data_dir.display()))?;
    let mut token = auth::load_or_create_token(&config.token_path())?;
    let (key_path, create_key) = config.encryption_key_path();
    let ring = crate::store::envelope::KeyRing::load_or_create(&key_path, create_key)?;
    tracing::info!(path = %key_path.display(), keys = ?ring.names(), "Secrets are sealed at rest");
    let store_config = StoreConfig {
        ranges: config.ranges.clone(),
        history: config.watch_history,
        history_bytes: config.watch_history_bytes,
        encryption: Some(Arc::new(ring)),
        limits: config.limits,
    };
    let store = match &config.store {
        StoreBackend::Redb => {
            let backend =
                RedbBackend::open_with_reserve(&config.db_path(), config.disk_reserve_mib << 20)?;
            Store::open(Box::new(backend), store_config).context("opening the store")?
        }
        StoreBackend::Etcd(etcd) => Store::open_etcd(etcd.clone(), store_config)
            .await
            .with_context(|| {
                format!("opening the store on etcd at {}", etcd.endpoints.join(","))
            })?,
    };
    if let StoreBackend::Etcd(etcd) = &config.store {
        // Every replica accepts the same token: the first to start stores
        // its own in etcd, the others take that one.
        let shared = crate::store::etcd::patiently(
            "sharing the API token",
            crate::store::etcd::EtcdError::is_transient,
            || crate::store::etcd::shared_token(etcd, &token),
        )
        .await
        .context("sharing the API token through etcd")?;
        if shared != token {
            tracing::info!(path = %config.token_path().display(), "taking the replicas' shared token from etcd");
            auth::write_private(&config.token_path(), shared.as_bytes())?;
            token = shared;
        }
    }
    let pki_dir = crate::pki::dir(&config.data_dir);
    let join = if config.insecure_http {
        tracing::warn!("--insecure-http: plain HTTP, no node join, no node credentials");
        None
    } else {
        let mut ca =
            ClusterCa::load_or_create(&pki_dir, SystemTime::now()).context("the cluster CA")?;
        if let StoreBackend::Etcd(etcd) = &config.store {
            let mine = ca.cert_pem.clone();
            ca = crate::store::etcd::patiently(
                "sharing the cluster CA",
                crate::store::etcd::is_transient_any,
                || async {
                    crate::pki::shared_ca(etcd, ClusterCa::from_pem(&ca.cert_pem, &ca.key_pem)?)
                        .await
                },
            )
            .await
            .context("sharing the cluster CA through etcd")?;
            if ca.cert_pem != mine {
                tracing::info!("taking the replicas' shared cluster CA from etcd");
                ca.store(&pki_dir)?;
            }
        }
        let persist = match &config.store {
            StoreBackend::Redb => Persist::File(config.bootstrap_path()),
            StoreBackend::Etcd(etcd) => Persist::Etcd(etcd.clone()),
        };
        let ca = Arc::new(ca);
        let dialer = crate::nodeproxy::NodeDialer::new(
            ca.clone(),
            crate::pki::SERVING_LIFETIME,
            std::time::SystemTime::now(),
        )
        .context("keel-control's client certificate for nodes")?;
        Some(Arc::new(Join {
            dialer: Some(dialer),
            ca,
            store: crate::store::etcd::patiently(
                "opening the bootstrap tokens",
                |e| matches!(e, crate::bootstrap::store::BootstrapStoreError::Etcd(_)),
                || BootstrapStore::open(persist.clone()),
            )
            .await
            .context("opening the bootstrap tokens")?,
            node_cert_lifetime: config.node_cert_lifetime,
        }))
    };
    // What clients trust: the certificate or CA given with --tls-cert,
    // else the cluster CA. Absolute: a client resolves a relative path
    // against client.json's directory, not keel-control's working directory.
    let ca_file = match (&config.tls, &join) {
        (Some(t), _) => Some(t.client_ca.clone().unwrap_or_else(|| t.cert.clone())),
        (None, Some(_)) => Some(pki_dir.join("ca.crt")),
        (None, None) => None,
    }
    .map(|p| std::path::absolute(&p).unwrap_or(p));
    let client = ClientConfigFile {
        server: config.url(),
        token_file: "token".into(),
        ca_file,
        cert_file: None,
        key_file: None,
    };

    let serving: Option<Arc<dyn ResolvesServerCert>> = match (&config.tls, &join) {
        (Some(tls), _) => Some(crate::tls::fixed_cert(&tls.cert, &tls.key)?),
        (None, Some(join)) => {
            let want = serving_sans(&config);
            let files = ServingFiles::in_dir(&pki_dir);
            if let Some(reason) = serving::ensure(&join.ca, &files, &want, SystemTime::now())? {
                tracing::info!(?reason, sans = ?want, "serving certificate issued by the cluster CA");
            }
            let cert = Arc::new(ServingCert::load(&files)?);
            tokio::spawn(serving::renew_periodically(
                join.ca.clone(),
                files,
                want,
                cert.clone(),
            ));
            Some(cert)
        }
        (None, None) => None,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    // Written once the port is bound: a client that sees the file connects
    // (the backlog holds it until the server answers), never "refused".
    auth::write_private(
        &config.client_config_path(),
        &serde_json::to_vec_pretty(&client)?,
    )?;
    let snap = store.snapshot();
    tracing::info!(
        url = %config.url(),
        data_dir = %config.data_dir.display(),
        revision = snap.revision,
        nodes = snap.nodes.len(),
        pods = snap.pods.len(),
        services = snap.services.len(),
        "keel-control serving"
    );
    let vpc = match &config.vpc_provider {
        Some(flag) => Some(Arc::from(crate::vpc::from_flag(
            flag,
            config.vpc_provider_timeout,
        )?)),
        None => None,
    };
    match &config.store {
        StoreBackend::Redb => {
            crate::kubernetes_service::ensure(&store, config.ranges.service_cidr, &config.url())
                .await
        }
        StoreBackend::Etcd(_) => drop(tokio::spawn(crate::kubernetes_service::keep(
            store.clone(),
            config.ranges.service_cidr,
            config.url(),
        ))),
    }
    match &config.store {
        StoreBackend::Redb => drop(controllers::spawn_all(&store, &config.controllers, vpc)),
        StoreBackend::Etcd(etcd) => {
            let client = crate::store::etcd::patiently(
                "connecting to etcd for the leader election",
                crate::store::etcd::EtcdError::is_transient,
                || crate::store::etcd::connect_steered(etcd),
            )
            .await?;
            let id = format!("{}/{}", config.url(), uuid::Uuid::new_v4());
            let elector = Elector::new(client, etcd, id, config.leader_lease_ttl);
            tokio::spawn(lead(
                elector,
                store.clone(),
                config.controllers.clone(),
                vpc,
            ));
        }
    }

    if let Some(join) = &join {
        tokio::spawn(crate::bootstrap::maintain(join.clone()));
    }
    let client_ca = join.as_ref().map(|j| j.ca.cert_pem.clone());
    let app = api::router(Arc::new(AppState {
        store,
        token,
        bookmark_interval: config.bookmark_interval,
        body_timeout: std::time::Duration::from_secs(60),
        requests: Default::default(),
        join,
    }));
    let acceptor = match serving {
        Some(cert) => Some(crate::tls::acceptor(
            cert,
            client_ca.as_deref().map(str::as_bytes),
        )?),
        None => None,
    };
    crate::conn::serve(
        listener,
        acceptor,
        app,
        config.connections.clone(),
        shutdown,
    )
    .await;
    Ok(())
}
