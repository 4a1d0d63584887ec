//! `keelctl token create|list|delete`: bootstrap tokens for joining nodes
//! (kubeadm's `token` verbs). `create` prints the command that joins a
//! machine: `keel-agent join --server … --token ID.SECRET --ca-hash sha256:…`.

use std::{process::ExitCode, time::Duration};

use clap::Subcommand;
use keel_api::{
    client::{Client, HttpMethod},
    pki::{BOOTSTRAP_TOKENS_PATH, TokenInfo, TokenList, TokenRequest},
};

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a bootstrap token and print the command that joins a node with it.
    Create {
        /// How long the token is valid (e.g. 30m, 24h, 7d).
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        ttl: Duration,
        /// A note for `token list` (what or who the token is for).
        #[arg(long, default_value = "")]
        description: String,
        /// Print only the token (ID.SECRET).
        #[arg(long)]
        print_token_only: bool,
    },
    /// List the bootstrap tokens that have not expired (never their secrets).
    List,
    /// Delete bootstrap tokens by ID (or ID.SECRET): nodes can no longer join with them.
    Delete {
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

/// `join --server URL --token … --ca-hash …`, as `token create` prints it.
pub fn join_command(server: &str, info: &TokenInfo) -> String {
    format!(
        "keel-agent join --server {server} --token {} --ca-hash {}",
        info.token.as_deref().unwrap_or("<token>"),
        info.ca_hash.as_deref().unwrap_or("<ca-hash>")
    )
}

/// `1h59m` style, for the TTL column.
fn ttl_left(expires: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    if expires <= now {
        return "expired".into();
    }
    let left = expires - now;
    let (d, h, m) = (left / 86_400, left % 86_400 / 3600, left % 3600 / 60);
    match (d, h) {
        (0, 0) => format!("{}m{}s", m, left % 60),
        (0, _) => format!("{h}h{m}m"),
        _ => format!("{d}d{h}h"),
    }
}

pub async fn run(client: &Client, cmd: TokenCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        TokenCommand::Create {
            ttl,
            description,
            print_token_only,
        } => {
            let req = TokenRequest {
                ttl_seconds: Some(ttl.as_secs().max(1)),
                description,
            };
            let bytes = client
                .request_raw(
                    HttpMethod::POST,
                    BOOTSTRAP_TOKENS_PATH,
                    Some(serde_json::to_vec(&req)?),
                )
                .await?;
            let info: TokenInfo = serde_json::from_slice(&bytes)?;
            if print_token_only {
                println!("{}", info.token.as_deref().unwrap_or_default());
            } else {
                println!("{}", join_command(client.server(), &info));
            }
        }
        TokenCommand::List => {
            let bytes = client
                .request_raw(HttpMethod::GET, BOOTSTRAP_TOKENS_PATH, None)
                .await?;
            let list: TokenList = serde_json::from_slice(&bytes)?;
            println!("{:<8} {:<10} {:<22} DESCRIPTION", "ID", "TTL", "EXPIRES");
            for t in list.items {
                let expires = humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH + Duration::from_secs(t.expires),
                );
                println!(
                    "{:<8} {:<10} {:<22} {}",
                    t.id,
                    ttl_left(t.expires),
                    expires.to_string(),
                    t.description
                );
            }
        }
        TokenCommand::Delete { ids } => {
            for id in ids {
                // `ID.SECRET` is accepted as kubeadm does; only the ID is sent.
                let id = id.split('.').next().unwrap_or_default().to_string();
                client
                    .request_raw(
                        HttpMethod::DELETE,
                        &format!("{BOOTSTRAP_TOKENS_PATH}/{id}"),
                        None,
                    )
                    .await?;
                println!("bootstrap token {id} deleted");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_join_command_names_server_token_and_hash() {
        let info = TokenInfo {
            id: "abcdef".into(),
            description: String::new(),
            expires: 0,
            token: Some("abcdef.0123456789abcdef".into()),
            ca_hash: Some("sha256:00".into()),
        };
        assert_eq!(
            join_command("https://10.0.0.1:6443", &info),
            "keel-agent join --server https://10.0.0.1:6443 --token abcdef.0123456789abcdef --ca-hash sha256:00"
        );
    }
}
