//! Starting keel-control: open the store, write the token and client
//! config, start the controllers, serve the API until shutdown.

use std::sync::Arc;

use anyhow::Context;
use keel_api::client::ClientConfigFile;

use crate::{
    api::{self, AppState},
    auth,
    config::{ServerConfig, StoreBackend},
    controllers,
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

/// Runs until `shutdown` resolves.
pub async fn run(
    config: ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config
        .ranges
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid ranges: {e}"))?;
    crate::store::redb::private_dir(&config.data_dir)
        .with_context(|| format!("creating {} (0700)", config.data_dir.display()))?;
    let mut token = auth::load_or_create_token(&config.token_path())?;
    let store_config = StoreConfig {
        ranges: config.ranges.clone(),
        history: config.watch_history,
    };
    let store = match &config.store {
        StoreBackend::Redb => {
            let backend = RedbBackend::open(&config.db_path())?;
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
        let shared = crate::store::etcd::shared_token(etcd, &token)
            .await
            .context("sharing the API token through etcd")?;
        if shared != token {
            tracing::info!(path = %config.token_path().display(), "taking the replicas' shared token from etcd");
            auth::write_private(&config.token_path(), shared.as_bytes())?;
            token = shared;
        }
    }
    let client = ClientConfigFile {
        server: config.url(),
        token_file: "token".into(),
        // Absolute: a client resolves a relative path against client.json's
        // directory, not keel-control's working directory.
        ca_file: config
            .tls
            .as_ref()
            .map(|t| t.client_ca.clone().unwrap_or_else(|| t.cert.clone()))
            .map(|p| std::path::absolute(&p).unwrap_or(p)),
    };

    auth::write_private(
        &config.client_config_path(),
        &serde_json::to_vec_pretty(&client)?,
    )?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
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
    crate::kubernetes_service::ensure(&store, config.ranges.service_cidr, &config.url()).await;
    match &config.store {
        StoreBackend::Redb => drop(controllers::spawn_all(&store, &config.controllers, vpc)),
        StoreBackend::Etcd(etcd) => {
            let client = crate::store::etcd::connect(etcd).await?;
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

    let app = api::router(Arc::new(AppState {
        store,
        token,
        bookmark_interval: config.bookmark_interval,
        requests: Default::default(),
    }));
    match &config.tls {
        Some(tls) => {
            let acceptor = crate::tls::acceptor(&tls.cert, &tls.key)?;
            crate::tls::serve(listener, acceptor, app, shutdown).await;
        }
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await?;
        }
    }
    Ok(())
}
