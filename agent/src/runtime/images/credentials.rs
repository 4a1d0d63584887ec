//! Registry credentials from a pod's `imagePullSecrets`, as the kubelet
//! reads them: a `kubernetes.io/dockerconfigjson` Secret's
//! `.dockerconfigjson` (`{"auths": {REGISTRY: ENTRY}}`) or a legacy
//! `kubernetes.io/dockercfg` Secret's `.dockercfg` (`{REGISTRY: ENTRY}`),
//! where an entry is `{"auth": base64("user:password")}` or
//! `{"username", "password"}` (or a `registrytoken`, sent as a bearer
//! token). Registry keys are reduced to `host[:port]` (`https://r.example/v1/`
//! → `r.example`); Docker Hub's names all mean `index.docker.io`. Pure;
//! errors name the key, never a value.

use std::collections::BTreeMap;

use base64::Engine as _;
use keel_api::{Secret, secret};
use serde::Deserialize;

use super::pull::RegistryAuth;

#[derive(Debug, Default, Deserialize)]
struct Entry {
    #[serde(default)]
    auth: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    registrytoken: String,
}

#[derive(Debug, Default, Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, Entry>,
}

/// `host[:port]` of a docker config key.
pub fn registry_key(key: &str) -> String {
    let k = key
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = k.split('/').next().unwrap_or(k).to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "registry-1.docker.io" | "index.docker.io" => "index.docker.io".into(),
        _ => host,
    }
}

/// The node's credentials file (docker's `config.json`: `auths` with `auth`
/// or `username`/`password`, like the kubelet's `/var/lib/kubelet/config.json`),
/// by registry; a file that does not exist gives none. Read at each pull, so
/// a change applies to the next one without a restart.
pub fn from_node_file(path: &std::path::Path) -> Result<BTreeMap<String, RegistryAuth>, String> {
    let raw = match std::fs::read(path) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(format!("--registry-credentials {}: {e}", path.display())),
    };
    let what = format!("--registry-credentials {}", path.display());
    let cfg = serde_json::from_slice::<DockerConfig>(&raw)
        .map_err(|e| format!("{what}: not a docker config.json: {e}"))?;
    entries_to_auth(&what, cfg.auths)
}

/// The credentials a pull Secret gives, by registry.
pub fn from_secret(s: &Secret) -> Result<BTreeMap<String, RegistryAuth>, String> {
    let name = format!("{}/{}", s.metadata.namespace, s.metadata.name);
    let entries = match s.secret_type() {
        secret::TYPE_DOCKER_CONFIG_JSON => {
            let raw = s
                .get(secret::DOCKER_CONFIG_JSON_KEY)
                .ok_or_else(|| format!("secret {name} has no .dockerconfigjson"))?;
            serde_json::from_slice::<DockerConfig>(&raw)
                .map_err(|e| {
                    format!("secret {name}: .dockerconfigjson is not a docker config: {e}")
                })?
                .auths
        }
        secret::TYPE_DOCKERCFG => {
            let raw = s
                .get(secret::DOCKERCFG_KEY)
                .ok_or_else(|| format!("secret {name} has no .dockercfg"))?;
            serde_json::from_slice::<BTreeMap<String, Entry>>(&raw)
                .map_err(|e| format!("secret {name}: .dockercfg is not a docker config: {e}"))?
        }
        other => {
            return Err(format!(
                "secret {name} is of type {other:?}, not kubernetes.io/dockerconfigjson or kubernetes.io/dockercfg"
            ));
        }
    };
    entries_to_auth(&format!("secret {name}"), entries)
}

/// Docker config entries as credentials by `host[:port]`; `what` names the
/// source in errors (never a value).
fn entries_to_auth(
    what: &str,
    entries: BTreeMap<String, Entry>,
) -> Result<BTreeMap<String, RegistryAuth>, String> {
    let name = what;
    let mut out = BTreeMap::new();
    for (key, e) in entries {
        let auth = if !e.registrytoken.is_empty() {
            RegistryAuth::Bearer(e.registrytoken)
        } else if !e.auth.is_empty() {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(e.auth.trim())
                .map_err(|_| format!("{name}: the auth of {key:?} is not base64"))?;
            let text = String::from_utf8(decoded)
                .map_err(|_| format!("{name}: the auth of {key:?} is not UTF-8"))?;
            let (u, p) = text
                .split_once(':')
                .ok_or_else(|| format!("{name}: the auth of {key:?} is not user:password"))?;
            RegistryAuth::Basic {
                username: u.to_string(),
                password: p.to_string(),
            }
        } else if !e.username.is_empty() {
            RegistryAuth::Basic {
                username: e.username,
                password: e.password,
            }
        } else {
            continue;
        };
        out.insert(registry_key(&key), auth);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
