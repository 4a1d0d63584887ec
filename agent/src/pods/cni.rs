//! Running CNI plugins as a runtime does (libcni's behaviour, by the CNI
//! 1.1 spec): the node's network configuration list is read from the conf
//! dir; ADD runs each plugin in order, feeding each the previous result as
//! `prevResult`; DEL runs them in reverse. The agent also writes the keel
//! configuration for its node when it learns its pod CIDR.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use ipnet::Ipv4Net;
use keel_sys::fs::write_atomic;
use serde_json::{Value, json};

/// The CNI version keel speaks to plugins.
pub const CNI_VERSION: &str = "1.1.0";
/// The network's name (also the IPAM store's folder).
pub const NETWORK: &str = "keel";
/// The file the agent writes its configuration list to.
pub const CONF_FILE: &str = "10-keel.conflist";

#[derive(Debug, thiserror::Error)]
pub enum CniError {
    #[error("CNI configuration {path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("no CNI configuration in {dir} (the agent writes one once the node has a pod CIDR)")]
    NoConfig { dir: PathBuf },
    #[error("CNI plugin {plugin:?} not found in {path}")]
    NoPlugin { plugin: String, path: String },
    #[error("CNI plugin {plugin} {command}: {message}")]
    Plugin {
        plugin: String,
        command: &'static str,
        message: String,
    },
    #[error("CNI plugin {plugin}: {source}")]
    Exec {
        plugin: String,
        #[source]
        source: std::io::Error,
    },
}

/// Where plugins and configuration live.
#[derive(Debug, Clone)]
pub struct CniSetup {
    pub bin_dirs: Vec<PathBuf>,
    pub conf_dir: PathBuf,
    /// The built-in IPAM's store (the plugin's `dataDir`).
    pub ipam_dir: PathBuf,
}

/// What an ADD produced: the final result and the pod's IPv4 address.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub result: Value,
    pub ip: Option<std::net::Ipv4Addr>,
}

/// What one plugin run printed, read as libcni reads it: the result (or
/// nothing) on success; on failure (`failed` is the exit status) the error
/// object's `msg` and `code`, else the status and stderr.
pub fn parse_output(
    plugin: String,
    command: &'static str,
    failed: Option<String>,
    stdout: &[u8],
    stderr: &[u8],
) -> Result<Option<Value>, CniError> {
    let parsed: Option<Value> = serde_json::from_slice(stdout).ok();
    if let Some(status) = failed {
        let message = parsed
            .as_ref()
            .and_then(|v| {
                v["msg"]
                    .as_str()
                    .map(|m| format!("{m} (code {})", v["code"]))
            })
            .unwrap_or_else(|| format!("{status}: {}", String::from_utf8_lossy(stderr).trim()));
        return Err(CniError::Plugin {
            plugin,
            command,
            message,
        });
    }
    Ok(parsed)
}

/// The pod's IPv4 address in an ADD result: the first `ips[].address`
/// that is one.
pub fn pod_ip(result: &Value) -> Option<std::net::Ipv4Addr> {
    result["ips"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["address"].as_str())
        .find_map(|a| a.split('/').next()?.parse().ok())
}

impl CniSetup {
    /// The keel configuration list for a node's pod CIDR.
    pub fn keel_conflist(&self, pod_cidr: Ipv4Net, mtu: u32) -> Value {
        json!({
            "cniVersion": CNI_VERSION,
            "name": NETWORK,
            "plugins": [{
                "type": "keel",
                "subnet": pod_cidr.to_string(),
                "mtu": mtu,
                "dataDir": self.ipam_dir,
            }]
        })
    }

    /// Writes the keel configuration list if it differs (atomically).
    /// Returns whether it changed.
    pub fn write_conf(&self, pod_cidr: Ipv4Net, mtu: u32) -> Result<bool, CniError> {
        let path = self.conf_dir.join(CONF_FILE);
        let want = serde_json::to_vec_pretty(&self.keel_conflist(pod_cidr, mtu)).expect("JSON");
        if std::fs::read(&path).is_ok_and(|have| have == want) {
            return Ok(false);
        }
        let err = |e: std::io::Error| CniError::Config {
            path: path.clone(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(&self.conf_dir).map_err(err)?;
        // World-readable, as the runtimes reading net.d expect of a config.
        write_atomic(&path, &want, 0o644).map_err(|e| CniError::Config {
            message: format!("{}: {}", e.step, e.source),
            path,
        })?;
        Ok(true)
    }

    /// The first configuration in the conf dir, by file name, as libcni
    /// picks it: a `.conflist`, or a `.conf`/`.json` wrapped into a list.
    pub fn load(&self) -> Result<Value, CniError> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.conf_dir)
            .map_err(|_| CniError::NoConfig {
                dir: self.conf_dir.clone(),
            })?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.extension()
                    .is_some_and(|e| e == "conflist" || e == "conf" || e == "json")
            })
            .collect();
        files.sort();
        let path = files.into_iter().next().ok_or_else(|| CniError::NoConfig {
            dir: self.conf_dir.clone(),
        })?;
        let bad = |message: String| CniError::Config {
            path: path.clone(),
            message,
        };
        let v: Value =
            serde_json::from_slice(&std::fs::read(&path).map_err(|e| bad(e.to_string()))?)
                .map_err(|e| bad(e.to_string()))?;
        if path.extension().is_some_and(|e| e == "conflist") {
            if v["plugins"].as_array().is_none_or(|p| p.is_empty()) {
                return Err(bad("plugins: must be a non-empty list".into()));
            }
            Ok(v)
        } else {
            Ok(json!({"cniVersion": v["cniVersion"], "name": v["name"], "plugins": [v]}))
        }
    }

    fn find(&self, plugin: &str) -> Result<PathBuf, CniError> {
        self.bin_dirs
            .iter()
            .map(|d| d.join(plugin))
            .find(|p| p.is_file())
            .ok_or_else(|| CniError::NoPlugin {
                plugin: plugin.into(),
                path: self
                    .bin_dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(":"),
            })
    }

    fn exec(
        &self,
        command: &'static str,
        conf: &Value,
        container_id: &str,
        netns: &Path,
        ifname: &str,
    ) -> Result<Option<Value>, CniError> {
        let plugin = conf["type"].as_str().unwrap_or_default().to_string();
        let bin = self.find(&plugin)?;
        let path = self
            .bin_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(":");
        let mut child = Command::new(&bin)
            .env_clear()
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", container_id)
            .env("CNI_NETNS", netns)
            .env("CNI_IFNAME", ifname)
            .env("CNI_PATH", path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| CniError::Exec {
                plugin: plugin.clone(),
                source,
            })?;
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(&serde_json::to_vec(conf).expect("JSON"))
            .map_err(|source| CniError::Exec {
                plugin: plugin.clone(),
                source,
            })?;
        let out = child.wait_with_output().map_err(|source| CniError::Exec {
            plugin: plugin.clone(),
            source,
        })?;
        let status = (!out.status.success()).then(|| out.status.to_string());
        parse_output(plugin, command, status, &out.stdout, &out.stderr)
    }

    /// One plugin's configuration from the list, with name/cniVersion and
    /// (for later plugins) the previous result filled in.
    fn plugin_conf(list: &Value, plugin: &Value, prev: Option<&Value>) -> Value {
        let mut c = plugin.clone();
        c["name"] = list["name"].clone();
        c["cniVersion"] = list["cniVersion"].clone();
        if let Some(p) = prev {
            c["prevResult"] = p.clone();
        }
        c
    }

    /// ADD: every plugin in order. On failure the plugins that succeeded
    /// are deleted again (libcni leaves that to the runtime; we do it).
    pub fn add(
        &self,
        container_id: &str,
        netns: &Path,
        ifname: &str,
    ) -> Result<Attachment, CniError> {
        let started = std::time::Instant::now();
        let r = self.add_untimed(container_id, netns, ifname);
        crate::health::ops::cni_done("ADD", &r, started.elapsed());
        r
    }

    fn add_untimed(
        &self,
        container_id: &str,
        netns: &Path,
        ifname: &str,
    ) -> Result<Attachment, CniError> {
        let list = self.load()?;
        let plugins = list["plugins"].as_array().cloned().unwrap_or_default();
        let mut prev: Option<Value> = None;
        for (i, p) in plugins.iter().enumerate() {
            match self.exec(
                "ADD",
                &Self::plugin_conf(&list, p, prev.as_ref()),
                container_id,
                netns,
                ifname,
            ) {
                Ok(r) => prev = r,
                Err(e) => {
                    for q in plugins[..i].iter().rev() {
                        let _ = self.exec(
                            "DEL",
                            &Self::plugin_conf(&list, q, prev.as_ref()),
                            container_id,
                            netns,
                            ifname,
                        );
                    }
                    return Err(e);
                }
            }
        }
        let result = prev.unwrap_or(Value::Null);
        let ip = pod_ip(&result);
        Ok(Attachment { result, ip })
    }

    /// DEL: every plugin in reverse order, with the result of the ADD.
    pub fn del(
        &self,
        container_id: &str,
        netns: &Path,
        ifname: &str,
        prev: Option<&Value>,
    ) -> Result<(), CniError> {
        let started = std::time::Instant::now();
        let r = self.del_untimed(container_id, netns, ifname, prev);
        crate::health::ops::cni_done("DEL", &r, started.elapsed());
        r
    }

    fn del_untimed(
        &self,
        container_id: &str,
        netns: &Path,
        ifname: &str,
        prev: Option<&Value>,
    ) -> Result<(), CniError> {
        let list = self.load()?;
        let plugins = list["plugins"].as_array().cloned().unwrap_or_default();
        let mut first_err = None;
        for p in plugins.iter().rev() {
            if let Err(e) = self.exec(
                "DEL",
                &Self::plugin_conf(&list, p, prev.filter(|v| !v.is_null())),
                container_id,
                netns,
                ifname,
            ) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests;
