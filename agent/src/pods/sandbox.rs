//! Pod sandboxes: a network namespace per pod, attached by the CNI plugin
//! chain. The record on disk is a crash-recovery journal only: it lets a
//! restarted agent adopt a sandbox instead of attaching it again, and
//! gives DEL the ADD's result; the pod's worker holds the live state. A
//! sandbox is named `<prefix><pod uid>`.

use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
};

use keel_api::{Pod, Time};
use keel_sys::{
    fs::write_atomic,
    ns::{NETNS_RUN_DIR, NetNs},
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::cni::{CniError, CniSetup};

/// The pod's interface name, as kubelet uses it.
pub const POD_IFNAME: &str = "eth0";

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("pod {pod}: network namespace {netns}: {source}")]
    Netns {
        pod: String,
        netns: String,
        #[source]
        source: keel_sys::ns::NsError,
    },
    #[error("pod {pod}: {source}")]
    Cni {
        pod: String,
        #[source]
        source: CniError,
    },
    #[error("sandbox record {path}: {message}")]
    Record { path: PathBuf, message: String },
    #[error("sandbox task: {0}")]
    Task(String),
}

/// What the pods' workers do with sandboxes: the kernel boundary of the
/// pods side ([`Sandboxes`] is the real one; unit tests use a fake).
pub trait SandboxOps: Send + Sync + 'static {
    /// The journal record of pod `uid`'s sandbox, if there is one.
    fn record(&self, uid: &str) -> Result<Option<SandboxRecord>, SandboxError>;
    /// Every journal record.
    fn load(&self) -> Result<Vec<SandboxRecord>, SandboxError>;
    /// Network namespaces with this node's prefix, by name.
    fn namespaces(&self) -> Vec<String>;
    /// The name `uid`'s namespace has.
    fn netns_name(&self, uid: &str) -> String;
    /// The pod uid a namespace of ours is named after.
    fn uid_of(&self, netns: &str) -> String;
    /// Makes (or finishes) the sandbox of `pod`; on failure nothing stays.
    fn create(&self, pod: &Pod) -> Result<SandboxRecord, SandboxError>;
    /// CNI DEL, the namespace, the record; gone things are no error.
    fn delete(&self, uid: &str, netns: &str, result: Option<&Value>) -> Result<(), SandboxError>;
    /// Whether the sandbox's namespace still exists.
    fn alive(&self, rec: &SandboxRecord) -> bool;
}

/// What the agent remembers of a sandbox it made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxRecord {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub netns: String,
    pub ip: Option<Ipv4Addr>,
    /// The CNI chain's result, passed back to DEL as prevResult.
    pub result: Value,
    pub created: Time,
}

impl SandboxRecord {
    /// What stands for the sandbox of a hostNetwork pod: the node's own
    /// network, no namespace, no CNI, the node's IP. Never journaled and
    /// never deleted (there is nothing of the pod's to give back).
    pub fn host(pod: &Pod, node_ip: Ipv4Addr) -> Self {
        Self {
            uid: pod.metadata.uid.clone(),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            netns: String::new(),
            ip: Some(node_ip),
            result: Value::Null,
            created: Time::now(),
        }
    }

    /// The node's network ([`SandboxRecord::host`]).
    pub fn is_host(&self) -> bool {
        self.netns.is_empty()
    }

    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    pub fn netns_path(&self) -> PathBuf {
        NetNs::named_path(&self.netns)
    }
}

/// Makes and removes sandboxes.
pub struct Sandboxes {
    pub cni: CniSetup,
    /// Prefix of every sandbox's network namespace name.
    pub prefix: String,
    /// One JSON record per sandbox.
    pub records: PathBuf,
}

impl Sandboxes {
    pub fn netns_name(&self, uid: &str) -> String {
        format!("{}{uid}", self.prefix)
    }

    fn record_path(&self, uid: &str) -> PathBuf {
        self.records.join(format!("{uid}.json"))
    }

    /// The record of pod `uid`'s sandbox, if there is one (a sandbox made
    /// before this agent started: adopted, not attached again).
    pub fn record(&self, uid: &str) -> Result<Option<SandboxRecord>, SandboxError> {
        let path = self.record_path(uid);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(SandboxError::Record {
                    path,
                    message: e.to_string(),
                });
            }
        };
        match serde_json::from_slice(&bytes) {
            Ok(r) => Ok(Some(r)),
            // Cut short by a crash: the namespace is attached again (ADD is
            // idempotent for the same container id) and the record rewritten.
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "dropping an unreadable sandbox record");
                let _ = std::fs::remove_file(&path);
                Ok(None)
            }
        }
    }

    /// Every recorded sandbox.
    pub fn load(&self) -> Result<Vec<SandboxRecord>, SandboxError> {
        let mut out = Vec::new();
        let Ok(rd) = std::fs::read_dir(&self.records) else {
            return Ok(out);
        };
        for e in rd.flatten() {
            let path = e.path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(|e| SandboxError::Record {
                path: path.clone(),
                message: e.to_string(),
            })?;
            match serde_json::from_slice(&bytes) {
                Ok(r) => out.push(r),
                // A record cut short by a crash: its namespace is found as an
                // orphan and cleaned up.
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "dropping an unreadable sandbox record");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        Ok(out)
    }

    /// Network namespaces with our prefix, by name.
    pub fn namespaces(&self) -> Vec<String> {
        std::fs::read_dir(NETNS_RUN_DIR)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(&self.prefix))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Creates the sandbox (or finishes one a crash left half-made): the
    /// namespace, then CNI ADD, then the record. On failure nothing stays.
    pub fn create(&self, pod: &Pod) -> Result<SandboxRecord, SandboxError> {
        let uid = &pod.metadata.uid;
        let key = format!("{}/{}", pod.metadata.namespace, pod.metadata.name);
        let netns = self.netns_name(uid);
        let path = NetNs::named_path(&netns);
        let made = if path.exists() {
            false
        } else {
            NetNs::create(&netns).map_err(|source| SandboxError::Netns {
                pod: key.clone(),
                netns: netns.clone(),
                source,
            })?;
            true
        };
        // Loopback is the plugin's job (keel-cni brings it up); a plugin
        // that does not still gets a working namespace from the runtime.
        let ns = NetNs::open(&path).map_err(|source| SandboxError::Netns {
            pod: key.clone(),
            netns: netns.clone(),
            source,
        })?;
        let _ = ns.run(|| {
            let mut h = keel_sys::netlink::Handle::new()?;
            let lo = keel_sys::netlink::link::LinkGet::Name("lo".into()).execute(&mut h)?;
            if let Some(lo) = lo {
                keel_sys::netlink::link::LinkSet::index(lo.index)
                    .up()
                    .execute(&mut h)?;
            }
            Ok::<(), keel_sys::netlink::NetlinkError>(())
        });
        let attachment = match self.cni.add(uid, &path, POD_IFNAME) {
            Ok(a) => a,
            Err(source) => {
                if made {
                    let _ = NetNs::delete(&netns);
                }
                return Err(SandboxError::Cni { pod: key, source });
            }
        };
        let rec = SandboxRecord {
            uid: uid.clone(),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            netns,
            ip: attachment.ip,
            result: attachment.result,
            created: Time::now(),
        };
        if let Err(e) = self.save(&rec) {
            let _ = self.cni.del(uid, &path, POD_IFNAME, Some(&rec.result));
            let _ = NetNs::delete(&rec.netns);
            return Err(e);
        }
        Ok(rec)
    }

    fn save(&self, rec: &SandboxRecord) -> Result<(), SandboxError> {
        let path = self.record_path(&rec.uid);
        let err = |e: std::io::Error| SandboxError::Record {
            path: path.clone(),
            message: e.to_string(),
        };
        crate::private::private_dir(&self.records).map_err(err)?;
        // Owner-only, like all agent state.
        write_atomic(&path, &serde_json::to_vec(rec).expect("JSON"), 0o600).map_err(|e| {
            SandboxError::Record {
                message: format!("{}: {}", e.step, e.source),
                path,
            }
        })
    }

    /// CNI DEL (which releases the address even if the namespace is gone),
    /// then the namespace, then the record.
    pub fn delete(
        &self,
        uid: &str,
        netns: &str,
        result: Option<&Value>,
    ) -> Result<(), SandboxError> {
        let path = NetNs::named_path(netns);
        self.cni
            .del(uid, &path, POD_IFNAME, result)
            .map_err(|source| SandboxError::Cni {
                pod: uid.to_string(),
                source,
            })?;
        NetNs::delete(netns).map_err(|source| SandboxError::Netns {
            pod: uid.to_string(),
            netns: netns.to_string(),
            source,
        })?;
        let rec = self.record_path(uid);
        match std::fs::remove_file(&rec) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(SandboxError::Record {
                path: rec,
                message: e.to_string(),
            }),
        }
    }

    /// Whether the sandbox's namespace still exists.
    pub fn alive(&self, rec: &SandboxRecord) -> bool {
        Path::new(&rec.netns_path()).exists()
    }
}

impl SandboxOps for Sandboxes {
    fn record(&self, uid: &str) -> Result<Option<SandboxRecord>, SandboxError> {
        Sandboxes::record(self, uid)
    }
    fn load(&self) -> Result<Vec<SandboxRecord>, SandboxError> {
        Sandboxes::load(self)
    }
    fn namespaces(&self) -> Vec<String> {
        Sandboxes::namespaces(self)
    }
    fn netns_name(&self, uid: &str) -> String {
        Sandboxes::netns_name(self, uid)
    }
    fn uid_of(&self, netns: &str) -> String {
        netns
            .strip_prefix(&self.prefix)
            .unwrap_or(netns)
            .to_string()
    }
    fn create(&self, pod: &Pod) -> Result<SandboxRecord, SandboxError> {
        Sandboxes::create(self, pod)
    }
    fn delete(&self, uid: &str, netns: &str, result: Option<&Value>) -> Result<(), SandboxError> {
        Sandboxes::delete(self, uid, netns, result)
    }
    fn alive(&self, rec: &SandboxRecord) -> bool {
        Sandboxes::alive(self, rec)
    }
}
