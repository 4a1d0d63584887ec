//! Starting keel-control: open the store, write the token and client
//! config, start the controllers, serve the API until shutdown.

use std::sync::Arc;

use anyhow::Context;
use keel_api::client::ClientConfigFile;

use crate::{
    api::{self, AppState},
    auth,
    config::ServerConfig,
    controllers,
    store::{Store, StoreConfig, redb::RedbBackend},
};

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
    let token = auth::load_or_create_token(&config.token_path())?;
    let backend = RedbBackend::open(&config.db_path())?;
    let store = Store::open(
        Box::new(backend),
        StoreConfig {
            ranges: config.ranges.clone(),
            history: config.watch_history,
        },
    )
    .context("opening the store")?;
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
    controllers::spawn_all(&store, &config.controllers, vpc);

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
