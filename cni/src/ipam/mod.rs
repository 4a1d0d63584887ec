//! IP address management: the built-in store (default) or a delegated IPAM
//! plugin when the config has an `ipam` section.
//!
//! The built-in IPAM keys every reservation by container ID + interface
//! name, so a repeated ADD returns the same address and DEL releases
//! exactly what ADD took.

pub mod allocator;
pub mod delegate;
pub mod store;

use std::{
    collections::HashSet,
    net::{IpAddr, Ipv4Addr},
};

use ipnet::IpNet;
use serde_json::Value;

pub use allocator::{AllocError, Range};
pub use delegate::DelegateError;
pub use store::{Reservation, Store, StoreError};

use crate::types::{Attachment, CniEnv, CniResult, Command, NetConf, RouteConf, code};

#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("ipam: {0}")]
    Alloc(#[from] AllocError),
    #[error(transparent)]
    Delegate(#[from] DelegateError),
    #[error("ipam plugin {plugin}: returned no IPv4 address (keel-cni attaches IPv4 pods)")]
    NoIpv4 { plugin: String },
    #[error("ipam plugin {plugin}: {reason}")]
    BadResult { plugin: String, reason: String },
}

impl IpamError {
    pub fn code(&self) -> u32 {
        match self {
            IpamError::Store(_) => code::IO,
            IpamError::Alloc(AllocError::Exhausted { .. }) => code::IPAM_EXHAUSTED,
            IpamError::Alloc(_) => code::INVALID_ENV,
            IpamError::Delegate(d) => d.code(),
            IpamError::NoIpv4 { .. } | IpamError::BadResult { .. } => code::INVALID_CONFIG,
        }
    }
}

/// What the pod gets from IPAM.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    pub ip: Ipv4Addr,
    /// The gateway IPAM proposes (a delegated plugin's), if any.
    pub gateway: Option<Ipv4Addr>,
    /// Extra routes IPAM asks for (a delegated plugin's `routes`).
    pub routes: Vec<RouteConf>,
    pub dns: Option<Value>,
}

/// The IPAM a config selects.
pub enum Ipam<'a> {
    BuiltIn { store: Store, range: Option<Range> },
    Delegated { plugin: &'a str, conf: &'a NetConf },
}

impl<'a> Ipam<'a> {
    pub fn for_conf(conf: &'a NetConf) -> Self {
        match &conf.ipam {
            Some(ipam) => Ipam::Delegated {
                plugin: &ipam.plugin,
                conf,
            },
            None => Ipam::BuiltIn {
                store: Store::new(conf.store_dir()),
                range: conf
                    .subnet
                    .zip(conf.default_gateway())
                    .map(|(subnet, gateway)| Range { subnet, gateway }),
            },
        }
    }

    /// Reserves an address for the attachment (the same one again if it
    /// already has one).
    pub fn add(&self, env: &CniEnv) -> Result<Lease, IpamError> {
        match self {
            Ipam::BuiltIn { store, range } => {
                let range = range.expect("config validation requires subnet without ipam");
                let mut locked = store.lock()?;
                if let Some(r) = locked.state.find(&env.container_id, &env.ifname)
                    && env.args.ip.is_none_or(|want| want == r.ip)
                {
                    return Ok(Lease {
                        ip: r.ip,
                        gateway: None,
                        routes: Vec::new(),
                        dns: None,
                    });
                }
                locked
                    .state
                    .reservations
                    .retain(|r| !(r.container_id == env.container_id && r.ifname == env.ifname));
                let taken: HashSet<Ipv4Addr> =
                    locked.state.reservations.iter().map(|r| r.ip).collect();
                let ip = allocator::allocate(&range, &taken, locked.state.last, env.args.ip)?;
                locked.state.reservations.push(Reservation {
                    ip,
                    container_id: env.container_id.clone(),
                    ifname: env.ifname.clone(),
                });
                if env.args.ip.is_none() {
                    locked.state.last = Some(ip);
                }
                locked.commit()?;
                Ok(Lease {
                    ip,
                    gateway: None,
                    routes: Vec::new(),
                    dns: None,
                })
            }
            Ipam::Delegated { plugin, conf } => {
                let out = delegate::run(plugin, Command::Add, env, &conf.raw)?;
                let bad = |reason: String| IpamError::BadResult {
                    plugin: plugin.to_string(),
                    reason,
                };
                let result =
                    CniResult::from_json(&out.ok_or_else(|| bad("printed no result".into()))?)
                        .map_err(|e| bad(e.to_string()))?;
                let v4 = result.ips.iter().find_map(|ip| match ip.address {
                    IpNet::V4(net) => Some((net.addr(), ip.gateway)),
                    IpNet::V6(_) => None,
                });
                let Some((ip, gateway)) = v4 else {
                    // Give the address(es) back before failing.
                    let _ = delegate::run(plugin, Command::Del, env, &conf.raw);
                    return Err(IpamError::NoIpv4 {
                        plugin: plugin.to_string(),
                    });
                };
                let gateway = match gateway {
                    Some(IpAddr::V4(g)) => Some(g),
                    _ => None,
                };
                let routes = result
                    .routes
                    .into_iter()
                    .filter(|r| r.dst.addr().is_ipv4())
                    .collect();
                Ok(Lease {
                    ip,
                    gateway,
                    routes,
                    dns: result.dns,
                })
            }
        }
    }

    /// Releases the attachment's address; nothing reserved is fine.
    pub fn del(&self, env: &CniEnv) -> Result<(), IpamError> {
        match self {
            Ipam::BuiltIn { store, .. } => {
                let Some(mut locked) = store.lock_if_exists()? else {
                    return Ok(());
                };
                let before = locked.state.reservations.len();
                locked
                    .state
                    .reservations
                    .retain(|r| !(r.container_id == env.container_id && r.ifname == env.ifname));
                if locked.state.reservations.len() != before {
                    locked.commit()?;
                }
                Ok(())
            }
            Ipam::Delegated { plugin, conf } => delegate::run(plugin, Command::Del, env, &conf.raw)
                .map(drop)
                .map_err(Into::into),
        }
    }

    /// Checks the attachment holds `ip`; a mismatch is returned as text for
    /// CHECK's report.
    pub fn check(&self, env: &CniEnv, ip: Ipv4Addr) -> Result<Option<String>, IpamError> {
        match self {
            Ipam::BuiltIn { store, .. } => {
                let Some(locked) = store.lock_if_exists()? else {
                    return Ok(Some(format!(
                        "ipam: no store at {}, so no reservation for {ip}",
                        store.dir().display()
                    )));
                };
                Ok(match locked.state.find(&env.container_id, &env.ifname) {
                    Some(r) if r.ip == ip => None,
                    Some(r) => Some(format!(
                        "ipam: the attachment holds {} but prevResult says {ip}",
                        r.ip
                    )),
                    None => Some(format!(
                        "ipam: no reservation for this attachment (prevResult says {ip})"
                    )),
                })
            }
            Ipam::Delegated { plugin, conf } => {
                match delegate::run(plugin, Command::Check, env, &conf.raw) {
                    Ok(_) => Ok(None),
                    Err(DelegateError::Failed { error, .. }) => {
                        Ok(Some(format!("ipam plugin {plugin}: {}", error.msg)))
                    }
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    /// The attachments holding a reservation in the built-in store (none
    /// with a delegated IPAM, whose records keel cannot read).
    pub fn attachments(&self) -> Result<Vec<Attachment>, IpamError> {
        match self {
            Ipam::BuiltIn { store, .. } => {
                let Some(locked) = store.lock_if_exists()? else {
                    return Ok(Vec::new());
                };
                Ok(locked
                    .state
                    .reservations
                    .iter()
                    .map(|r| Attachment {
                        container_id: r.container_id.clone(),
                        ifname: r.ifname.clone(),
                    })
                    .collect())
            }
            Ipam::Delegated { .. } => Ok(Vec::new()),
        }
    }

    /// Releases every reservation not in `valid`; returns how many.
    pub fn gc(&self, env: &CniEnv, valid: &HashSet<Attachment>) -> Result<usize, IpamError> {
        match self {
            Ipam::BuiltIn { store, .. } => {
                let Some(mut locked) = store.lock_if_exists()? else {
                    return Ok(0);
                };
                let before = locked.state.reservations.len();
                locked.state.reservations.retain(|r| {
                    valid.contains(&Attachment {
                        container_id: r.container_id.clone(),
                        ifname: r.ifname.clone(),
                    })
                });
                let released = before - locked.state.reservations.len();
                if released > 0 {
                    locked.commit()?;
                }
                Ok(released)
            }
            Ipam::Delegated { plugin, conf } => {
                delegate::run(plugin, Command::Gc, env, &conf.raw)?;
                Ok(0)
            }
        }
    }

    /// Whether an ADD could get an address now: `Err(reason)` if not.
    pub fn status(&self, env: &CniEnv) -> Result<(), String> {
        match self {
            Ipam::BuiltIn { store, range } => {
                let Some(range) = range else {
                    return Err("subnet: not configured".into());
                };
                let locked = store.lock().map_err(|e| e.to_string())?;
                let used = locked
                    .state
                    .reservations
                    .iter()
                    .filter(|r| range.usable(r.ip))
                    .count() as u32;
                if used >= range.capacity() {
                    return Err(format!(
                        "ipam: no free address in {}: all {} usable addresses are reserved",
                        range.subnet,
                        range.capacity()
                    ));
                }
                Ok(())
            }
            Ipam::Delegated { plugin, conf } => {
                match delegate::run(plugin, Command::Status, env, &conf.raw) {
                    Ok(_) => Ok(()),
                    Err(e) => Err(e.to_string()),
                }
            }
        }
    }
}
