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
mod tests {
    use super::*;

    fn sample() -> CniResult {
        CniResult {
            interfaces: vec![
                Interface {
                    name: "kv0123456789abc".into(),
                    mac: Some("02:11:22:33:44:55".into()),
                    mtu: Some(1450),
                    sandbox: None,
                },
                Interface {
                    name: "eth0".into(),
                    mac: Some("0a:58:0a:01:00:05".into()),
                    mtu: Some(1450),
                    sandbox: Some("/run/netns/p".into()),
                },
            ],
            ips: vec![IpConfig {
                address: "10.1.0.5/32".parse().unwrap(),
                gateway: Some("10.1.0.1".parse().unwrap()),
                interface: Some(1),
            }],
            routes: vec![RouteConf {
                dst: "0.0.0.0/0".parse().unwrap(),
                gw: Some("10.1.0.1".parse().unwrap()),
            }],
            dns: Some(json!({"nameservers": ["10.96.0.10"]})),
        }
    }

    #[test]
    fn version_specific_fields() {
        let r = sample();
        let v031 = r.to_json(CniVersion::V0_3_1);
        assert_eq!(v031["cniVersion"], "0.3.1");
        assert_eq!(v031["ips"][0]["version"], "4");
        assert!(v031["interfaces"][1].get("mtu").is_none());
        let v040 = r.to_json(CniVersion::V0_4_0);
        assert_eq!(v040["ips"][0]["version"], "4");
        let v100 = r.to_json(CniVersion::V1_0_0);
        assert!(v100["ips"][0].get("version").is_none());
        assert!(v100["interfaces"][1].get("mtu").is_none());
        let v110 = r.to_json(CniVersion::V1_1_0);
        assert_eq!(v110["interfaces"][1]["mtu"], 1450);
        assert_eq!(v110["interfaces"][1]["sandbox"], "/run/netns/p");
        assert_eq!(v110["ips"][0]["address"], "10.1.0.5/32");
        assert_eq!(v110["routes"][0]["gw"], "10.1.0.1");
    }

    #[test]
    fn every_version_reads_back() {
        let r = sample();
        for v in CniVersion::ALL {
            let back = CniResult::from_json(&r.to_json(v)).unwrap();
            assert_eq!(back.ips, r.ips, "{v}");
            assert_eq!(back.routes, r.routes, "{v}");
            assert_eq!(back.dns, r.dns, "{v}");
            assert_eq!(back.interfaces[1].sandbox, r.interfaces[1].sandbox, "{v}");
            assert_eq!(
                back.interfaces[1].mtu.is_some(),
                v.interfaces_have_mtu(),
                "{v}"
            );
        }
    }

    #[test]
    fn reads_a_host_local_result() {
        let hl = json!({"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.1.0.2/24","gateway":"10.1.0.1"}],
                        "dns":{}});
        let r = CniResult::from_json(&hl).unwrap();
        assert_eq!(r.ips[0].address, "10.1.0.2/24".parse::<IpNet>().unwrap());
        assert_eq!(r.ips[0].interface, None);
        assert_eq!(r.dns, None);
    }

    #[test]
    fn bad_results_name_the_field() {
        for (v, field) in [
            (json!({"ips":[{"gateway":"10.1.0.1"}]}), "ips[0].address"),
            (json!({"ips":[{"address":"nope"}]}), "ips[0].address"),
            (
                json!({"routes":[{"dst":"0.0.0.0/0","gw":"x"}]}),
                "routes[0].gw",
            ),
            (json!({"interfaces":"eth0"}), "interfaces"),
            (json!({"cniVersion":"7.0.0"}), "cniVersion"),
        ] {
            let e = CniResult::from_json(&v).unwrap_err();
            assert_eq!(e.field, field, "{v}");
        }
    }
}
