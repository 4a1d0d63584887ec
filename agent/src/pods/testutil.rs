//! In-memory sandboxes and status writer for unit tests of the pods side
//! (the real ones need root, network namespaces and keel-control).

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use keel_api::{Pod, Time};
use serde_json::Value;

use super::{
    sandbox::{SandboxError, SandboxOps, SandboxRecord},
    status::{StatusWriter, WriteError, WriteFuture},
};

#[derive(Default)]
pub struct FakeSandboxesState {
    pub records: BTreeMap<String, SandboxRecord>,
    /// Namespaces that exist, by name.
    pub namespaces: Vec<String>,
    /// Every create and delete, in order: `create <uid>`, `delete <uid>`.
    pub log: Vec<String>,
    /// The next creates that fail.
    pub fail_creates: u32,
    /// Called at every delete (to see what else was true at that moment).
    pub on_delete: Option<Box<dyn Fn() -> String + Send>>,
    next_ip: u8,
}

#[derive(Clone, Default)]
pub struct FakeSandboxes {
    pub state: Arc<Mutex<FakeSandboxesState>>,
}

impl FakeSandboxes {
    pub fn log(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }
}

impl SandboxOps for FakeSandboxes {
    fn record(&self, uid: &str) -> Result<Option<SandboxRecord>, SandboxError> {
        Ok(self.state.lock().unwrap().records.get(uid).cloned())
    }
    fn load(&self) -> Result<Vec<SandboxRecord>, SandboxError> {
        Ok(self
            .state
            .lock()
            .unwrap()
            .records
            .values()
            .cloned()
            .collect())
    }
    fn namespaces(&self) -> Vec<String> {
        self.state.lock().unwrap().namespaces.clone()
    }
    fn netns_name(&self, uid: &str) -> String {
        format!("p-{uid}")
    }
    fn uid_of(&self, netns: &str) -> String {
        netns.trim_start_matches("p-").to_string()
    }
    fn create(&self, pod: &Pod) -> Result<SandboxRecord, SandboxError> {
        let mut s = self.state.lock().unwrap();
        let uid = pod.metadata.uid.clone();
        s.log.push(format!("create {uid}"));
        if s.fail_creates > 0 {
            s.fail_creates -= 1;
            return Err(SandboxError::Task("CNI plugin keel ADD: no IP left".into()));
        }
        s.next_ip += 1;
        let rec = SandboxRecord {
            uid: uid.clone(),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            netns: format!("p-{uid}"),
            ip: Some(std::net::Ipv4Addr::new(10, 244, 0, s.next_ip)),
            result: Value::Null,
            created: Time::now(),
        };
        s.namespaces.push(rec.netns.clone());
        s.records.insert(uid, rec.clone());
        Ok(rec)
    }
    fn delete(&self, uid: &str, netns: &str, _result: Option<&Value>) -> Result<(), SandboxError> {
        let mut s = self.state.lock().unwrap();
        let note = s.on_delete.as_ref().map(|f| f()).unwrap_or_default();
        s.log.push(format!("delete {uid}{note}"));
        s.records.remove(uid);
        s.namespaces.retain(|n| n != netns);
        Ok(())
    }
    fn alive(&self, rec: &SandboxRecord) -> bool {
        self.state.lock().unwrap().namespaces.contains(&rec.netns)
    }
}

/// Records every status write.
#[derive(Clone, Default)]
pub struct FakeStatus {
    pub written: Arc<Mutex<Vec<Pod>>>,
}

impl FakeStatus {
    /// The last status written for pod `name`.
    pub fn last(&self, name: &str) -> Option<Pod> {
        self.written
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|p| p.metadata.name == name)
            .cloned()
    }

    pub fn count(&self) -> usize {
        self.written.lock().unwrap().len()
    }
}

impl StatusWriter for FakeStatus {
    fn write<'a>(&'a self, pod: &'a Pod) -> WriteFuture<'a> {
        Box::pin(async move {
            self.written.lock().unwrap().push(pod.clone());
            Ok::<(), WriteError>(())
        })
    }
}
