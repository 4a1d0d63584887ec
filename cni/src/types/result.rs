//! The ADD result, written in the format of the requested `cniVersion`
//! and read back from `prevResult` in any supported format.
//!
//! Differences handled here (CNI spec "Result" sections):
//! - 0.3.1 and 0.4.0: `ips[].version` ("4"/"6") is required.
//! - 1.0.0: `ips[].version` is gone.
//! - 1.1.0: `interfaces[].mtu` may be set.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{Map, Value, json};

use super::{CniVersion, code};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("prevResult: {field}: {reason}")]
pub struct ResultError {
    pub field: String,
    pub reason: String,
}

impl ResultError {
    pub fn code(&self) -> u32 {
        code::INVALID_CONFIG
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Interface {
    pub name: String,
    pub mac: Option<String>,
    pub mtu: Option<u32>,
    /// The namespace path for interfaces inside the container.
    pub sandbox: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpConfig {
    pub address: IpNet,
    pub gateway: Option<IpAddr>,
    /// Index into `interfaces`.
    pub interface: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConf {
    pub dst: IpNet,
    pub gw: Option<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct CniResult {
    pub interfaces: Vec<Interface>,
    pub ips: Vec<IpConfig>,
    pub routes: Vec<RouteConf>,
    pub dns: Option<Value>,
}

impl CniResult {
    pub fn to_json(&self, version: CniVersion) -> Value {
        let interfaces: Vec<Value> = self
            .interfaces
            .iter()
            .map(|i| {
                let mut o = Map::new();
                o.insert("name".into(), i.name.clone().into());
                if let Some(mac) = &i.mac {
                    o.insert("mac".into(), mac.clone().into());
                }
                if let (Some(mtu), true) = (i.mtu, version.interfaces_have_mtu()) {
                    o.insert("mtu".into(), mtu.into());
                }
                if let Some(s) = &i.sandbox {
                    o.insert("sandbox".into(), s.clone().into());
                }
                Value::Object(o)
            })
            .collect();
        let ips: Vec<Value> = self
            .ips
            .iter()
            .map(|ip| {
                let mut o = Map::new();
                if version.ips_have_version() {
                    o.insert(
                        "version".into(),
                        if ip.address.addr().is_ipv4() {
                            "4"
                        } else {
                            "6"
                        }
                        .into(),
                    );
                }
                o.insert("address".into(), ip.address.to_string().into());
                if let Some(gw) = ip.gateway {
                    o.insert("gateway".into(), gw.to_string().into());
                }
                if let Some(i) = ip.interface {
                    o.insert("interface".into(), i.into());
                }
                Value::Object(o)
            })
            .collect();
        let routes: Vec<Value> = self
            .routes
            .iter()
            .map(|r| match r.gw {
                Some(gw) => json!({"dst": r.dst.to_string(), "gw": gw.to_string()}),
                None => json!({"dst": r.dst.to_string()}),
            })
            .collect();
        let mut out = json!({ "cniVersion": version.as_str() });
        if !interfaces.is_empty() {
            out["interfaces"] = interfaces.into();
        }
        out["ips"] = ips.into();
        if !routes.is_empty() {
            out["routes"] = routes.into();
        }
        out["dns"] = self.dns.clone().unwrap_or_else(|| json!({}));
        out
    }

    /// Reads a result (a `prevResult`, or a delegated IPAM plugin's answer).
    /// The format is told by the object's own `cniVersion` when present;
    /// fields that only some versions have are accepted from any.
    pub fn from_json(v: &Value) -> Result<Self, ResultError> {
        let err = |field: String, reason: &str| ResultError {
            field,
            reason: reason.to_string(),
        };
        let obj = v
            .as_object()
            .ok_or_else(|| err("(root)".into(), "must be an object"))?;
        if let Some(ver) = obj.get("cniVersion").and_then(Value::as_str)
            && ver.parse::<CniVersion>().is_err()
            && !matches!(ver, "0.3.0")
        {
            return Err(err(
                "cniVersion".into(),
                "is not a version keel-cni can read",
            ));
        }
        let mut result = CniResult::default();
        for (n, i) in array(obj, "interfaces")?.iter().enumerate() {
            let f = |k: &str| i.get(k).and_then(Value::as_str).map(str::to_string);
            result.interfaces.push(Interface {
                name: f("name").ok_or_else(|| err(format!("interfaces[{n}].name"), "required"))?,
                mac: f("mac").filter(|m| !m.is_empty()),
                mtu: i.get("mtu").and_then(Value::as_u64).map(|m| m as u32),
                sandbox: f("sandbox").filter(|s| !s.is_empty()),
            });
        }
        for (n, ip) in array(obj, "ips")?.iter().enumerate() {
            let address = ip
                .get("address")
                .and_then(Value::as_str)
                .ok_or_else(|| err(format!("ips[{n}].address"), "required"))?
                .parse()
                .map_err(|_| err(format!("ips[{n}].address"), "is not a CIDR"))?;
            let gateway = match ip.get("gateway").and_then(Value::as_str) {
                None | Some("") => None,
                Some(g) => Some(
                    g.parse()
                        .map_err(|_| err(format!("ips[{n}].gateway"), "is not an IP"))?,
                ),
            };
            let interface = ip
                .get("interface")
                .and_then(Value::as_u64)
                .map(|i| i as usize);
            result.ips.push(IpConfig {
                address,
                gateway,
                interface,
            });
        }
        for (n, r) in array(obj, "routes")?.iter().enumerate() {
            let dst = r
                .get("dst")
                .and_then(Value::as_str)
                .ok_or_else(|| err(format!("routes[{n}].dst"), "required"))?
                .parse()
                .map_err(|_| err(format!("routes[{n}].dst"), "is not a CIDR"))?;
            let gw = match r.get("gw").and_then(Value::as_str) {
                None | Some("") => None,
                Some(g) => Some(
                    g.parse()
                        .map_err(|_| err(format!("routes[{n}].gw"), "is not an IP"))?,
                ),
            };
            result.routes.push(RouteConf { dst, gw });
        }
        result.dns = obj
            .get("dns")
            .filter(|d| d.as_object().is_some_and(|o| !o.is_empty()))
            .cloned();
        Ok(result)
    }
}

fn array<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<&'a [Value], ResultError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(ResultError {
            field: field.to_string(),
            reason: "must be an array".into(),
        }),
    }
}

#[cfg(test)]
mod tests;
