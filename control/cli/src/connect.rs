//! How keelctl finds keel-control: --config (client.json), or --server with
//! --token-file, from flags or environment.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use keel_api::{
    KINDS, Kind,
    client::{Client, ClientConfig, DEFAULT_DATA_DIR},
};

#[derive(Args, Debug)]
pub struct ConnectArgs {
    /// client.json written by keel-control (default: /var/lib/keel/control/client.json).
    #[arg(long, global = true, env = "KEEL_CONFIG")]
    config: Option<PathBuf>,
    /// Talk to the keel-control of this lab (see `keelctl lab`).
    #[arg(long, global = true, env = "KEEL_LAB")]
    lab: Option<String>,
    /// Server URL, e.g. http://127.0.0.1:6443, or several replicas
    /// comma-separated, tried in turn (with --token-file instead of --config).
    #[arg(long, global = true, env = "KEEL_SERVER")]
    server: Option<String>,
    /// File holding the bearer token.
    #[arg(long, global = true, env = "KEEL_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// CA certificate to trust for https.
    #[arg(long, global = true, env = "KEEL_CA_FILE")]
    ca_file: Option<PathBuf>,
}

impl ConnectArgs {
    /// The lab named with --lab, if any.
    pub fn lab(&self) -> Option<&str> {
        self.lab.as_deref()
    }

    pub fn client(&self) -> anyhow::Result<Client> {
        if let Some(lab) = &self.lab {
            // The lab's own client: it connects from inside the lab.
            return keel_lab::Lab::load(lab)?.client();
        }
        Ok(Client::new(&self.config()?)?)
    }

    /// The connection settings: a lab's client.json, --server with
    /// --token-file, or --config.
    pub fn config(&self) -> anyhow::Result<ClientConfig> {
        if let Some(lab) = &self.lab {
            let path = keel_lab::Lab::load(lab)?.client_config_path();
            return Ok(ClientConfig::load(&path)?);
        }
        let config = match (&self.server, &self.config) {
            (Some(server), _) => {
                let token = self
                    .token_file
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR).join("token"));
                ClientConfig::from_parts(server, &token, self.ca_file.as_deref())?
            }
            (None, config) => {
                let path = config
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR).join("client.json"));
                ClientConfig::load(&path).with_context(|| {
                    format!("no connection settings: pass --config (or KEEL_CONFIG) pointing at keel-control's client.json, or --server and --token-file (tried {})", path.display())
                })?
            }
        };
        Ok(config)
    }
}

pub fn parse_kind(s: &str) -> anyhow::Result<Kind> {
    Kind::parse(s).ok_or_else(|| {
        let served: Vec<&str> = KINDS.iter().map(|k| k.plural).collect();
        anyhow::anyhow!(
            "the server doesn't have a resource type {s:?} (use {})",
            served.join(", ")
        )
    })
}
