//! The kernel boundary of the load balancer: [`LbMaps`], with the real
//! implementation over aya's typed maps ([`AyaMaps`]) and an in-memory fake
//! ([`FakeMaps`]) for unit tests of the planner and applier — which can also
//! check, after every single write, what a BPF lookup would see.

use std::path::Path;

use aya::maps::{Array, HashMap as AyaHashMap, Map, MapData, MapError, PerCpuArray};
use keel_ebpf_common::lb::{
    AFFINITY_MAP, AffinityKey, AffinityValue, BACKENDS_MAP, Backend, CONFIG_MAP, CT_MAP, CtKey,
    CtValue, Ip, LbConfig, MAGLEV_MAP, MaglevChunk, MaglevKey, Proto, SERVICES_MAP,
    SOCK_REVNAT_MAP, STATS_LEN, STATS_MAP, ServiceKey, ServiceValue, SockRevNatKey,
    SockRevNatValue, port,
};

#[derive(Debug, thiserror::Error)]
pub enum MapsError {
    #[error("BPF map {map}: {op} {key}: {source}")]
    Map {
        map: &'static str,
        op: &'static str,
        key: String,
        #[source]
        source: Box<MapError>,
    },
    #[error("BPF map {map}: opening {path}: {source}")]
    Open {
        map: &'static str,
        path: String,
        #[source]
        source: Box<MapError>,
    },
    #[error("BPF object has no map named {0}")]
    Missing(&'static str),
    #[error("BPF map {map}: {op} {key}: injected failure")]
    Injected {
        map: &'static str,
        op: &'static str,
        key: String,
    },
}

/// Reads and writes of the LB maps. Deleting what is already gone succeeds.
pub trait LbMaps {
    fn put_service(&mut self, key: &ServiceKey, value: &ServiceValue) -> Result<(), MapsError>;
    fn del_service(&mut self, key: &ServiceKey) -> Result<(), MapsError>;
    fn put_backend(&mut self, id: u32, backend: &Backend) -> Result<(), MapsError>;
    fn del_backend(&mut self, id: u32) -> Result<(), MapsError>;
    fn put_maglev(&mut self, key: &MaglevKey, chunk: &MaglevChunk) -> Result<(), MapsError>;
    fn del_maglev(&mut self, key: &MaglevKey) -> Result<(), MapsError>;
    fn set_config(&mut self, config: &LbConfig) -> Result<(), MapsError>;
    fn services(&self) -> Result<Vec<(ServiceKey, ServiceValue)>, MapsError>;
    fn backends(&self) -> Result<Vec<(u32, Backend)>, MapsError>;
    fn maglev(&self) -> Result<Vec<(MaglevKey, MaglevChunk)>, MapsError>;
}

/// Everything a dump shows, read at one moment (per map).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub services: Vec<(ServiceKey, ServiceValue)>,
    pub backends: Vec<(u32, Backend)>,
    pub maglev: Vec<MaglevKey>,
    pub affinity: Vec<(AffinityKey, AffinityValue)>,
    pub ct: Vec<(CtKey, CtValue)>,
    pub sock_revnat: usize,
    /// Summed over CPUs, indexed by `Stat`.
    pub stats: Vec<u64>,
    /// Entries left out of `affinity` and `ct` by the limit.
    pub truncated: usize,
}

fn key_text<K: std::fmt::Debug>(k: &K) -> String {
    format!("{k:?}")
}

/// `10.96.0.10:80/TCP rev=1 slot=2`
fn service_key_text(k: &ServiceKey) -> String {
    format!(
        "{}:{}/{} rev={} slot={}",
        Ip(k.addr),
        port(k.port),
        Proto(k.proto),
        k.rev,
        k.slot
    )
}

/// `id=3 rev=1 chunk=0`
fn maglev_key_text(k: &MaglevKey) -> String {
    format!("id={} rev={} chunk={}", k.id, k.rev, k.chunk)
}

fn not_found(e: &MapError) -> bool {
    match e {
        MapError::KeyNotFound => true,
        MapError::SyscallError(s) => s.io_error.raw_os_error() == Some(libc::ENOENT),
        _ => false,
    }
}

/// The real maps, through aya.
pub struct AyaMaps {
    services: AyaHashMap<MapData, ServiceKey, ServiceValue>,
    backends: AyaHashMap<MapData, u32, Backend>,
    maglev: AyaHashMap<MapData, MaglevKey, MaglevChunk>,
    affinity: AyaHashMap<MapData, AffinityKey, AffinityValue>,
    sock_revnat: AyaHashMap<MapData, SockRevNatKey, SockRevNatValue>,
    ct: AyaHashMap<MapData, CtKey, CtValue>,
    stats: PerCpuArray<MapData, u64>,
    config: Array<MapData, LbConfig>,
}

impl AyaMaps {
    /// Takes the maps out of a loaded object.
    pub fn take(ebpf: &mut aya::Ebpf) -> Result<Self, MapsError> {
        let mut take = |name: &'static str| ebpf.take_map(name).ok_or(MapsError::Missing(name));
        let (s, b, m, a, r, c, st, cf) = (
            take(SERVICES_MAP)?,
            take(BACKENDS_MAP)?,
            take(MAGLEV_MAP)?,
            take(AFFINITY_MAP)?,
            take(SOCK_REVNAT_MAP)?,
            take(CT_MAP)?,
            take(STATS_MAP)?,
            take(CONFIG_MAP)?,
        );
        Self::from_maps([s, b, m, a, r, c, st, cf], None)
    }

    /// Opens the maps pinned under `dir` (one file per map name): another
    /// handle on the same kernel maps, e.g. for the API's dumps.
    pub fn open_pinned(dir: &Path) -> Result<Self, MapsError> {
        let open = |name: &'static str| -> Result<Map, MapsError> {
            let path = dir.join(name);
            let err = |source| MapsError::Open {
                map: name,
                path: path.display().to_string(),
                source: Box::new(source),
            };
            let data = MapData::from_pin(&path).map_err(err)?;
            Map::from_map_data(data).map_err(err)
        };
        let maps = [
            open(SERVICES_MAP)?,
            open(BACKENDS_MAP)?,
            open(MAGLEV_MAP)?,
            open(AFFINITY_MAP)?,
            open(SOCK_REVNAT_MAP)?,
            open(CT_MAP)?,
            open(STATS_MAP)?,
            open(CONFIG_MAP)?,
        ];
        Self::from_maps(maps, Some(dir))
    }

    fn from_maps(maps: [Map; 8], dir: Option<&Path>) -> Result<Self, MapsError> {
        let [s, b, m, a, r, c, st, cf] = maps;
        let typed = |name: &'static str, source: MapError| MapsError::Open {
            map: name,
            path: dir
                .map(|d| d.join(name).display().to_string())
                .unwrap_or_default(),
            source: Box::new(source),
        };
        Ok(Self {
            services: AyaHashMap::try_from(s).map_err(|e| typed(SERVICES_MAP, e))?,
            backends: AyaHashMap::try_from(b).map_err(|e| typed(BACKENDS_MAP, e))?,
            maglev: AyaHashMap::try_from(m).map_err(|e| typed(MAGLEV_MAP, e))?,
            affinity: AyaHashMap::try_from(a).map_err(|e| typed(AFFINITY_MAP, e))?,
            sock_revnat: AyaHashMap::try_from(r).map_err(|e| typed(SOCK_REVNAT_MAP, e))?,
            ct: AyaHashMap::try_from(c).map_err(|e| typed(CT_MAP, e))?,
            stats: PerCpuArray::try_from(st).map_err(|e| typed(STATS_MAP, e))?,
            config: Array::try_from(cf).map_err(|e| typed(CONFIG_MAP, e))?,
        })
    }

    /// Counters summed over CPUs, indexed by `Stat`.
    /// How many entries each hash map holds (keys walked; entries deleted
    /// during the walk are not counted).
    pub fn entry_counts(&self) -> Result<Vec<(&'static str, usize)>, MapsError> {
        Ok(vec![
            (SERVICES_MAP, count(self.services.keys(), SERVICES_MAP)?),
            (BACKENDS_MAP, count(self.backends.keys(), BACKENDS_MAP)?),
            (MAGLEV_MAP, count(self.maglev.keys(), MAGLEV_MAP)?),
            (AFFINITY_MAP, count(self.affinity.keys(), AFFINITY_MAP)?),
            (
                SOCK_REVNAT_MAP,
                count(self.sock_revnat.keys(), SOCK_REVNAT_MAP)?,
            ),
            (CT_MAP, count(self.ct.keys(), CT_MAP)?),
        ])
    }

    pub fn stats(&self) -> Result<Vec<u64>, MapsError> {
        (0..STATS_LEN)
            .map(|i| {
                self.stats
                    .get(&i, 0)
                    .map(|v| v.iter().sum())
                    .map_err(|source| MapsError::Map {
                        map: STATS_MAP,
                        op: "get",
                        key: i.to_string(),
                        source: Box::new(source),
                    })
            })
            .collect()
    }

    pub fn config(&self) -> Result<LbConfig, MapsError> {
        self.config.get(&0, 0).map_err(|source| MapsError::Map {
            map: CONFIG_MAP,
            op: "get",
            key: "0".into(),
            source: Box::new(source),
        })
    }

    /// One frontend's header, read straight from the kernel.
    pub fn header(
        &self,
        addr: u32,
        port: u16,
        proto: u8,
    ) -> Result<Option<ServiceValue>, MapsError> {
        let key = ServiceKey::header(addr, port, proto);
        match self.services.get(&key, 0) {
            Ok(v) => Ok(Some(v)),
            Err(e) if not_found(&e) => Ok(None),
            Err(source) => Err(MapsError::Map {
                map: SERVICES_MAP,
                op: "get",
                key: service_key_text(&key),
                source: Box::new(source),
            }),
        }
    }

    /// Conntrack entries (for tests and dumps).
    pub fn conntrack(&self) -> Result<Vec<(CtKey, CtValue)>, MapsError> {
        collect(&self.ct, CT_MAP, usize::MAX).map(|(v, _)| v)
    }

    pub fn affinity(&self) -> Result<Vec<(AffinityKey, AffinityValue)>, MapsError> {
        collect(&self.affinity, AFFINITY_MAP, usize::MAX).map(|(v, _)| v)
    }

    pub fn put_conntrack(&mut self, key: &CtKey, value: &CtValue) -> Result<(), MapsError> {
        self.ct
            .insert(key, value, 0)
            .map_err(|source| MapsError::Map {
                map: CT_MAP,
                op: "insert",
                key: key_text(key),
                source: Box::new(source),
            })
    }

    /// Everything a dump shows; at most `limit` affinity and conntrack entries.
    pub fn snapshot(&self, limit: usize) -> Result<Snapshot, MapsError> {
        let (affinity, t1) = collect(&self.affinity, AFFINITY_MAP, limit)?;
        let (ct, t2) = collect(&self.ct, CT_MAP, limit)?;
        let maglev = self
            .maglev
            .keys()
            .filter_map(|k| match k {
                Err(e) if not_found(&e) => None,
                other => Some(other),
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| MapsError::Map {
                map: MAGLEV_MAP,
                op: "keys",
                key: String::new(),
                source: Box::new(source),
            })?;
        Ok(Snapshot {
            services: self.services()?,
            backends: self.backends()?,
            maglev,
            affinity,
            ct,
            sock_revnat: self.sock_revnat.keys().filter(Result::is_ok).count(),
            stats: self.stats()?,
            truncated: t1 + t2,
        })
    }
}

/// Up to `limit` entries of a hash map, and how many more there were.
fn count<K>(
    keys: impl Iterator<Item = Result<K, aya::maps::MapError>>,
    name: &'static str,
) -> Result<usize, MapsError> {
    let mut n = 0;
    for k in keys {
        match k {
            Ok(_) => n += 1,
            Err(e) if not_found(&e) => {}
            Err(source) => {
                return Err(MapsError::Map {
                    map: name,
                    op: "iterate",
                    key: String::new(),
                    source: Box::new(source),
                });
            }
        }
    }
    Ok(n)
}

fn collect<K: aya::Pod, V: aya::Pod>(
    map: &AyaHashMap<MapData, K, V>,
    name: &'static str,
    limit: usize,
) -> Result<(Vec<(K, V)>, usize), MapsError> {
    let mut out = Vec::new();
    let mut more = 0;
    for item in map.iter() {
        match item {
            Ok(kv) if out.len() < limit => out.push(kv),
            Ok(_) => more += 1,
            // Deleted while we walked (LRU eviction, a concurrent update).
            Err(e) if not_found(&e) => {}
            Err(source) => {
                return Err(MapsError::Map {
                    map: name,
                    op: "iterate",
                    key: String::new(),
                    source: Box::new(source),
                });
            }
        }
    }
    Ok((out, more))
}

impl LbMaps for AyaMaps {
    fn put_service(&mut self, key: &ServiceKey, value: &ServiceValue) -> Result<(), MapsError> {
        self.services
            .insert(key, value, 0)
            .map_err(|source| MapsError::Map {
                map: SERVICES_MAP,
                op: "insert",
                key: service_key_text(key),
                source: Box::new(source),
            })
    }

    fn del_service(&mut self, key: &ServiceKey) -> Result<(), MapsError> {
        match self.services.remove(key) {
            Err(e) if !not_found(&e) => Err(MapsError::Map {
                map: SERVICES_MAP,
                op: "delete",
                key: service_key_text(key),
                source: Box::new(e),
            }),
            _ => Ok(()),
        }
    }

    fn put_backend(&mut self, id: u32, backend: &Backend) -> Result<(), MapsError> {
        self.backends
            .insert(id, backend, 0)
            .map_err(|source| MapsError::Map {
                map: BACKENDS_MAP,
                op: "insert",
                key: id.to_string(),
                source: Box::new(source),
            })
    }

    fn del_backend(&mut self, id: u32) -> Result<(), MapsError> {
        match self.backends.remove(&id) {
            Err(e) if !not_found(&e) => Err(MapsError::Map {
                map: BACKENDS_MAP,
                op: "delete",
                key: id.to_string(),
                source: Box::new(e),
            }),
            _ => Ok(()),
        }
    }

    fn put_maglev(&mut self, key: &MaglevKey, chunk: &MaglevChunk) -> Result<(), MapsError> {
        self.maglev
            .insert(key, chunk, 0)
            .map_err(|source| MapsError::Map {
                map: MAGLEV_MAP,
                op: "insert",
                key: maglev_key_text(key),
                source: Box::new(source),
            })
    }

    fn del_maglev(&mut self, key: &MaglevKey) -> Result<(), MapsError> {
        match self.maglev.remove(key) {
            Err(e) if !not_found(&e) => Err(MapsError::Map {
                map: MAGLEV_MAP,
                op: "delete",
                key: maglev_key_text(key),
                source: Box::new(e),
            }),
            _ => Ok(()),
        }
    }

    fn set_config(&mut self, config: &LbConfig) -> Result<(), MapsError> {
        self.config
            .set(0, config, 0)
            .map_err(|source| MapsError::Map {
                map: CONFIG_MAP,
                op: "set",
                key: "0".into(),
                source: Box::new(source),
            })
    }

    fn services(&self) -> Result<Vec<(ServiceKey, ServiceValue)>, MapsError> {
        collect(&self.services, SERVICES_MAP, usize::MAX).map(|(v, _)| v)
    }

    fn backends(&self) -> Result<Vec<(u32, Backend)>, MapsError> {
        collect(&self.backends, BACKENDS_MAP, usize::MAX).map(|(v, _)| v)
    }

    fn maglev(&self) -> Result<Vec<(MaglevKey, MaglevChunk)>, MapsError> {
        collect(&self.maglev, MAGLEV_MAP, usize::MAX).map(|(v, _)| v)
    }
}

#[cfg(any(test, feature = "testing"))]
mod fake;
#[cfg(any(test, feature = "testing"))]
pub use fake::FakeMaps;
