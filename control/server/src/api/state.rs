//! `AppState`: what every handler can reach.

use std::{collections::BTreeMap, sync::Mutex, time::Duration};

use crate::store::Store;

/// What every handler can reach.
pub struct AppState {
    pub store: Store,
    pub token: String,
    /// How often an idle watch gets a BOOKMARK.
    pub bookmark_interval: Duration,
    /// Requests served, by method and code (`/metrics`).
    pub requests: RequestCounts,
    /// The cluster CA, bootstrap tokens and revocations: node join and
    /// node credentials (`None`: only the admin token authenticates).
    pub join: Option<std::sync::Arc<crate::bootstrap::Join>>,
}

/// Requests served, by method and status code.
#[derive(Debug, Default)]
pub struct RequestCounts(Mutex<BTreeMap<(String, u16), u64>>);

impl RequestCounts {
    pub fn count(&self, method: &str, code: u16) {
        *self
            .0
            .lock()
            .expect("counts lock")
            .entry((method.to_string(), code))
            .or_default() += 1;
    }

    /// Prometheus' text format: `keel_control_requests_total{method,code}`.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# HELP keel_control_requests_total API requests served, by method and status code.\n# TYPE keel_control_requests_total counter\n",
        );
        for ((method, code), n) in self.0.lock().expect("counts lock").iter() {
            out.push_str(&format!(
                "keel_control_requests_total{{method=\"{method}\",code=\"{code}\"}} {n}\n"
            ));
        }
        out
    }
}
