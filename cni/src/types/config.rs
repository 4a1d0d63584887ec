//! The network configuration keel-cni reads on stdin:
//!
//! ```json
//! {"cniVersion": "1.1.0", "name": "pods", "type": "keel",
//!  "subnet": "10.244.1.0/24", "gateway": "10.244.1.1", "mtu": 1450,
//!  "dataDir": "/var/lib/cni/keel", "ipam": {"type": "host-local", ...}}
//! ```
//!
//! Every field is checked here, before anything changes, and each error
//! names its field. Fields keel does not know are ignored (the spec lets
//! runtimes add `runtimeConfig`, `args`, `capabilities`…).

use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
};

use ipnet::Ipv4Net;
use serde_json::{Map, Value};

use super::{CniVersion, code, env::is_spec_name};

/// Where the built-in IPAM keeps its store unless `dataDir` says otherwise;
/// one directory per network name below it.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/cni/keel";
pub const DEFAULT_MTU: u32 = 1500;
/// Longest network name: with the longest container ID and interface name
/// the host veth's alias (`keel-cni:<name>:<id>:<ifname>`) still fits the
/// kernel's 255 bytes (IFALIASZ - 1).
pub const MAX_NAME: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("network config is not valid JSON: {reason}")]
    Decode { reason: String },
    #[error("{field}: required")]
    Missing { field: &'static str },
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("cniVersion: {version:?} is not supported (supported: {supported})")]
    UnsupportedVersion { version: String, supported: String },
}

impl ConfigError {
    pub fn code(&self) -> u32 {
        match self {
            ConfigError::Decode { .. } => code::DECODE,
            ConfigError::UnsupportedVersion { .. } => code::INCOMPATIBLE_VERSION,
            ConfigError::Missing { .. } | ConfigError::Invalid { .. } => code::INVALID_CONFIG,
        }
    }

    fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

/// A delegated IPAM plugin: its `type` (a binary found in CNI_PATH).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpamConf {
    pub plugin: String,
}

/// One entry of `cni.dev/valid-attachments` (GC).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Attachment {
    pub container_id: String,
    pub ifname: String,
}

/// A validated network configuration.
#[derive(Debug, Clone)]
pub struct NetConf {
    pub cni_version: CniVersion,
    pub name: String,
    pub plugin: String,
    /// The node's pod CIDR (IPv4). Required unless `ipam` delegates.
    pub subnet: Option<Ipv4Net>,
    /// The pods' gateway, on the host side of every veth. Defaults to the
    /// subnet's first address.
    pub gateway: Option<Ipv4Addr>,
    pub mtu: u32,
    pub data_dir: PathBuf,
    pub ipam: Option<IpamConf>,
    pub dns: Option<Value>,
    pub prev_result: Option<Value>,
    pub valid_attachments: Option<Vec<Attachment>>,
    /// The bytes as received, passed unchanged to a delegated IPAM plugin.
    pub raw: Vec<u8>,
}

impl NetConf {
    pub fn parse(bytes: &[u8]) -> Result<Self, ConfigError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| ConfigError::Decode {
            reason: e.to_string(),
        })?;
        let Value::Object(obj) = value else {
            return Err(ConfigError::Decode {
                reason: "expected a JSON object".into(),
            });
        };
        let version = string(&obj, "cniVersion")?.ok_or(ConfigError::Missing {
            field: "cniVersion",
        })?;
        let cni_version = version
            .parse()
            .map_err(|()| ConfigError::UnsupportedVersion {
                version: version.clone(),
                supported: CniVersion::supported_list(),
            })?;
        let name = string(&obj, "name")?.ok_or(ConfigError::Missing { field: "name" })?;
        if name.len() > MAX_NAME {
            return Err(ConfigError::invalid(
                "name",
                format!(
                    "{} characters is too long: at most {MAX_NAME} (it is part of each host veth's alias)",
                    name.len()
                ),
            ));
        }
        if !is_spec_name(&name) {
            return Err(ConfigError::invalid(
                "name",
                format!(
                    "{name:?} must start with a letter or digit and contain only letters, digits, '_', '.' and '-'"
                ),
            ));
        }
        let plugin = string(&obj, "type")?.ok_or(ConfigError::Missing { field: "type" })?;

        let ipam = match obj.get("ipam") {
            None | Some(Value::Null) => None,
            Some(Value::Object(ipam)) => {
                let plugin = match ipam.get("type") {
                    Some(Value::String(t)) if !t.is_empty() => t.clone(),
                    _ => return Err(ConfigError::Missing { field: "ipam.type" }),
                };
                if plugin.contains('/') || plugin == "." || plugin == ".." {
                    return Err(ConfigError::invalid(
                        "ipam.type",
                        format!("{plugin:?} must be a plugin name, not a path"),
                    ));
                }
                Some(IpamConf { plugin })
            }
            Some(_) => return Err(ConfigError::invalid("ipam", "must be an object")),
        };

        let subnet = match string(&obj, "subnet")? {
            None => None,
            Some(s) => Some(parse_subnet(&s)?),
        };
        if subnet.is_none() && ipam.is_none() {
            return Err(ConfigError::Missing { field: "subnet" });
        }
        let gateway = match string(&obj, "gateway")? {
            None => None,
            Some(g) => {
                let gw: Ipv4Addr = g.parse().map_err(|_| {
                    ConfigError::invalid("gateway", format!("{g:?} is not an IPv4 address"))
                })?;
                if let Some(net) = subnet
                    && (!net.contains(&gw) || gw == net.network() || gw == net.broadcast())
                {
                    return Err(ConfigError::invalid(
                        "gateway",
                        format!("{gw} is not a usable address of subnet {net}"),
                    ));
                }
                Some(gw)
            }
        };
        let mtu = match obj.get("mtu") {
            None | Some(Value::Null) => DEFAULT_MTU,
            Some(v) => match v.as_u64() {
                Some(m @ 68..=65535) => m as u32,
                _ => {
                    return Err(ConfigError::invalid(
                        "mtu",
                        format!("{v} must be an integer from 68 to 65535"),
                    ));
                }
            },
        };
        let data_dir = match string(&obj, "dataDir")? {
            None => PathBuf::from(DEFAULT_DATA_DIR),
            Some(d) if Path::new(&d).is_absolute() => PathBuf::from(d),
            Some(d) => {
                return Err(ConfigError::invalid(
                    "dataDir",
                    format!("{d:?} must be an absolute path"),
                ));
            }
        };
        let dns = match obj.get("dns") {
            None | Some(Value::Null) => None,
            Some(v @ Value::Object(_)) => Some(v.clone()),
            Some(_) => return Err(ConfigError::invalid("dns", "must be an object")),
        };
        let prev_result = match obj.get("prevResult") {
            None | Some(Value::Null) => None,
            Some(v @ Value::Object(_)) => Some(v.clone()),
            Some(_) => return Err(ConfigError::invalid("prevResult", "must be an object")),
        };
        let valid_attachments = match obj.get("cni.dev/valid-attachments") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .map(|item| {
                        let field =
                            |k: &str| item.get(k).and_then(Value::as_str).map(str::to_string);
                        match (field("containerID"), field("ifname")) {
                            (Some(container_id), Some(ifname)) => Ok(Attachment {
                                container_id,
                                ifname,
                            }),
                            _ => Err(ConfigError::invalid(
                                "cni.dev/valid-attachments",
                                format!(
                                    "{item} must be {{\"containerID\": \"…\", \"ifname\": \"…\"}}"
                                ),
                            )),
                        }
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Some(_) => {
                return Err(ConfigError::invalid(
                    "cni.dev/valid-attachments",
                    "must be an array",
                ));
            }
        };
        Ok(NetConf {
            cni_version,
            name,
            plugin,
            subnet,
            gateway,
            mtu,
            data_dir,
            ipam,
            dns,
            prev_result,
            valid_attachments,
            raw: bytes.to_vec(),
        })
    }

    /// The directory of this network's IPAM store.
    pub fn store_dir(&self) -> PathBuf {
        self.data_dir.join(&self.name)
    }

    /// The gateway the pods route through: `gateway`, else the subnet's
    /// first address.
    pub fn default_gateway(&self) -> Option<Ipv4Addr> {
        self.gateway
            .or_else(|| self.subnet.and_then(|n| n.hosts().next()))
    }
}

/// Reads the version field alone, for error objects when the rest of the
/// config is invalid.
pub fn peek_version(bytes: &[u8]) -> Option<CniVersion> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    v.get("cniVersion")?.as_str()?.parse().ok()
}

fn string(obj: &Map<String, Value>, field: &'static str) -> Result<Option<String>, ConfigError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(ConfigError::invalid(field, format!("{v} must be a string"))),
    }
}

fn parse_subnet(s: &str) -> Result<Ipv4Net, ConfigError> {
    let net: ipnet::IpNet = s.parse().map_err(|_| {
        ConfigError::invalid(
            "subnet",
            format!("{s:?} is not a CIDR (like 10.244.1.0/24)"),
        )
    })?;
    let ipnet::IpNet::V4(net) = net else {
        return Err(ConfigError::invalid(
            "subnet",
            format!("{s}: only IPv4 pod subnets are supported"),
        ));
    };
    if net.network() != net.addr() {
        return Err(ConfigError::invalid(
            "subnet",
            format!("{s} has host bits set (did you mean {}?)", net.trunc()),
        ));
    }
    // Addresses that are not unicast host addresses (RFC 6890): "this
    // network", loopback, multicast and the reserved block up to the
    // broadcast address would end up on host veths and in pods' routes.
    for (special, what) in [
        ("0.0.0.0/8", "\"this network\" (0.0.0.0/8)"),
        ("127.0.0.0/8", "loopback (127.0.0.0/8)"),
        ("224.0.0.0/4", "multicast (224.0.0.0/4)"),
        ("240.0.0.0/4", "reserved and broadcast (240.0.0.0/4)"),
    ] {
        let special: Ipv4Net = special.parse().expect("constant CIDR");
        if net.contains(&special.network()) || special.contains(&net.network()) {
            return Err(ConfigError::invalid(
                "subnet",
                format!("{s} overlaps {what}: pods need unicast addresses"),
            ));
        }
    }
    if net.prefix_len() > 30 {
        return Err(ConfigError::invalid(
            "subnet",
            format!("{s} is too small: a /30 or larger leaves room for the gateway and a pod"),
        ));
    }
    Ok(net)
}

#[cfg(test)]
mod tests;
