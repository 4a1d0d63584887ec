//! The pod manager: gives every pod bound to this node a sandbox (a network
//! namespace attached by the CNI plugin chain), removes the sandboxes of
//! pods that are gone, and reports each pod's status. Decisions are made by
//! [`plan::plan`]; this loop only applies them.

pub mod cni;
pub mod plan;
pub mod sandbox;

use std::{
    collections::HashMap,
    net::Ipv4Addr,
    sync::Arc,
    time::{Duration, Instant},
};

use keel_api::client::Client;
use tokio::sync::watch;

use self::sandbox::Sandboxes;
use crate::sync::View;

/// Sandboxes created at once.
const PARALLEL_CREATES: usize = 16;
/// Full re-check period even without changes.
const RESYNC: Duration = Duration::from_secs(10);

pub struct PodManager {
    pub client: Client,
    pub node_ip: Ipv4Addr,
    pub sandboxes: Arc<Sandboxes>,
    /// MTU for pod interfaces (the node networking decides it).
    pub mtu: u32,
    /// A container runtime runs the pods and reports their status (phase,
    /// containers, readiness): only sandbox failures are reported here.
    pub runtime_reports_status: bool,
    /// Uids of pods whose containers the runtime still holds (stopping them
    /// gracefully): their sandboxes stay until the runtime lets go, so a
    /// terminating container keeps its network through its grace period.
    pub runtime_holds: Option<crate::runtime::manager::Held>,
}

/// Retry state of a pod whose sandbox failed.
struct Failure {
    message: String,
    attempts: u32,
    next: Instant,
}

impl PodManager {
    pub async fn run(self, mut view: watch::Receiver<View>) {
        let mut failures: HashMap<String, Failure> = HashMap::new();
        loop {
            let v = view.borrow_and_update().clone();
            if v.synced
                && let Some(cidr) = v.pod_cidr()
            {
                match self.sandboxes.cni.write_conf(cidr, self.mtu) {
                    Ok(true) => {
                        tracing::info!(%cidr, mtu = self.mtu, "wrote the CNI configuration")
                    }
                    Ok(false) => {}
                    Err(e) => tracing::error!(error = %e, "cannot write the CNI configuration"),
                }
                self.sync(&v, &mut failures).await;
            }
            let next_retry = failures.values().map(|f| f.next).min();
            let sleep = next_retry
                .map(|t| t.saturating_duration_since(Instant::now()))
                .unwrap_or(RESYNC)
                .min(RESYNC);
            tokio::select! {
                changed = view.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    // Let a burst of changes land before acting.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                _ = tokio::time::sleep(sleep) => {}
            }
        }
    }

    async fn sync(&self, view: &View, failures: &mut HashMap<String, Failure>) {
        use futures_util::StreamExt;
        let sb = self.sandboxes.clone();
        let (records, namespaces) =
            match tokio::task::spawn_blocking(move || (sb.load(), sb.namespaces())).await {
                Ok((Ok(r), n)) => (r, n),
                Ok((Err(e), _)) => {
                    tracing::error!(error = %e, "reading sandbox records");
                    return;
                }
                Err(_) => return,
            };
        let messages: HashMap<String, String> = failures
            .iter()
            .map(|(k, f)| (k.clone(), f.message.clone()))
            .collect();
        let sb = self.sandboxes.clone();
        let plan = plan::plan(
            &view.pods,
            &records,
            &namespaces,
            |uid| sb.netns_name(uid),
            &messages,
            self.node_ip,
        );
        failures.retain(|uid, _| view.pods.values().any(|p| &p.metadata.uid == uid));

        let held: std::collections::BTreeSet<String> = match &self.runtime_holds {
            Some(h) => h.lock().map(|h| h.clone()).unwrap_or_default(),
            None => Default::default(),
        };
        for rec in plan.delete.into_iter().filter(|r| !held.contains(&r.uid)) {
            let sb = self.sandboxes.clone();
            let key = rec.key();
            let res = tokio::task::spawn_blocking(move || {
                sb.delete(&rec.uid, &rec.netns, Some(&rec.result))
            })
            .await;
            match res {
                Ok(Ok(())) => tracing::info!(pod = %key, "sandbox removed"),
                Ok(Err(e)) => {
                    tracing::warn!(pod = %key, error = %e, "removing sandbox; will retry")
                }
                Err(_) => {}
            }
        }
        for netns in plan.orphans {
            let sb = self.sandboxes.clone();
            let uid = netns.strip_prefix(&sb.prefix).unwrap_or(&netns).to_string();
            let res = tokio::task::spawn_blocking(move || sb.delete(&uid, &netns, None)).await;
            if let Ok(Err(e)) = res {
                tracing::warn!(error = %e, "removing an orphaned sandbox; will retry");
            }
        }
        let now = Instant::now();
        let creates: Vec<_> = plan
            .create
            .into_iter()
            .filter(|p| failures.get(&p.metadata.uid).is_none_or(|f| f.next <= now))
            .collect();
        let results: Vec<_> = futures_util::stream::iter(creates)
            .map(|pod| {
                let sb = self.sandboxes.clone();
                async move {
                    let p = pod.clone();
                    (
                        pod,
                        tokio::task::spawn_blocking(move || sb.create(&p)).await,
                    )
                }
            })
            .buffer_unordered(PARALLEL_CREATES)
            .collect()
            .await;
        let mut created = false;
        for (pod, res) in results {
            let uid = pod.metadata.uid.clone();
            match res {
                Ok(Ok(rec)) => {
                    tracing::info!(pod = %rec.key(), ip = ?rec.ip, netns = %rec.netns, "sandbox ready");
                    failures.remove(&uid);
                    created = true;
                }
                Ok(Err(e)) => {
                    let f = failures.entry(uid).or_insert(Failure {
                        message: String::new(),
                        attempts: 0,
                        next: now,
                    });
                    f.attempts += 1;
                    f.message = e.to_string();
                    // 1 s doubling to 30 s.
                    f.next = Instant::now()
                        + Duration::from_secs(1 << f.attempts.min(5)).min(Duration::from_secs(30));
                    tracing::warn!(pod = %pod.metadata.name, error = %e, attempts = f.attempts, "sandbox creation failed");
                }
                Err(_) => {}
            }
        }
        for pod in plan.status {
            if self.runtime_reports_status && pod.status.reason != plan::SANDBOX_FAILED {
                continue;
            }
            self.post_status(pod).await;
        }
        if created && !self.runtime_reports_status {
            // Report the new sandboxes now rather than at the next change.
            let sb = self.sandboxes.clone();
            if let Ok(Ok(records)) = tokio::task::spawn_blocking(move || sb.load()).await {
                let messages: HashMap<String, String> = failures
                    .iter()
                    .map(|(k, f)| (k.clone(), f.message.clone()))
                    .collect();
                let sb = self.sandboxes.clone();
                let again = plan::plan(
                    &view.pods,
                    &records,
                    &[],
                    |uid| sb.netns_name(uid),
                    &messages,
                    self.node_ip,
                );
                for pod in again.status {
                    self.post_status(pod).await;
                }
            }
        }
    }

    async fn post_status(&self, mut pod: keel_api::Pod) {
        // Only this agent writes the status of pods bound to its node.
        pod.metadata.resource_version.clear();
        match self.client.update_status(&pod).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => tracing::warn!(pod = %pod.metadata.name, error = %e, "posting pod status"),
        }
    }
}
