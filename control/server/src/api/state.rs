//! `AppState`: what every handler can reach.

use std::{collections::BTreeMap, sync::Mutex, time::Duration};

use crate::store::Store;

/// What every handler can reach.
pub struct AppState {
    pub store: Store,
    pub token: String,
    /// How often an idle watch gets a BOOKMARK.
    pub bookmark_interval: Duration,
    /// How long a request's body may take to arrive (Kubernetes'
    /// `--request-timeout`, a minute): a client trickling it is cut.
    pub body_timeout: Duration,
    /// Requests served, by method and code (`/metrics`).
    pub requests: RequestCounts,
    /// The cluster CA, bootstrap tokens and revocations: node join and
    /// node credentials (`None`: only the admin token authenticates).
    pub join: Option<std::sync::Arc<crate::bootstrap::Join>>,
}

/// Requests served, by method and status code; and how long each took, by
/// verb and resource (Kubernetes' `apiserver_request_duration_seconds`:
/// long-running requests, watches and streams, are left out).
#[derive(Debug, Default)]
pub struct RequestCounts(
    Mutex<BTreeMap<(String, u16), u64>>,
    Mutex<BTreeMap<(String, String), Histogram>>,
);

/// The upper bounds of the latency buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Debug, Default, Clone)]
pub struct Histogram {
    /// Observations at most each bound (not cumulative).
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl RequestCounts {
    pub fn count(&self, method: &str, code: u16) {
        *self
            .0
            .lock()
            .expect("counts lock")
            .entry((method.to_string(), code))
            .or_default() += 1;
    }

    /// A request of `verb` on `resource` (`pods`, `pods/status`) that
    /// took `secs`.
    pub fn observe(&self, verb: &str, resource: &str, secs: f64) {
        let mut h = self.1.lock().expect("latency lock");
        let h = h
            .entry((verb.to_string(), resource.to_string()))
            .or_default();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
            h.buckets[i] += 1;
        }
        h.count += 1;
        h.sum += secs;
    }

    /// Prometheus' text format: `keel_control_requests_total{method,code}`
    /// and `keel_control_request_duration_seconds{verb,resource}`.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# HELP keel_control_requests_total API requests served, by method and status code.\n# TYPE keel_control_requests_total counter\n",
        );
        for ((method, code), n) in self.0.lock().expect("counts lock").iter() {
            out.push_str(&format!(
                "keel_control_requests_total{{method=\"{method}\",code=\"{code}\"}} {n}\n"
            ));
        }
        out.push_str(
            "# HELP keel_control_request_duration_seconds API request latency, by verb and resource (watches and streams left out).\n# TYPE keel_control_request_duration_seconds histogram\n",
        );
        for ((verb, resource), h) in self.1.lock().expect("latency lock").iter() {
            let labels = format!("verb=\"{verb}\",resource=\"{resource}\"");
            let mut cumulative = 0;
            for (bound, n) in LATENCY_BUCKETS.iter().zip(h.buckets) {
                cumulative += n;
                out.push_str(&format!(
                    "keel_control_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}\n"
                ));
            }
            out.push_str(&format!(
                "keel_control_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}\n\
                 keel_control_request_duration_seconds_sum{{{labels}}} {}\n\
                 keel_control_request_duration_seconds_count{{{labels}}} {}\n",
                h.count, h.sum, h.count
            ));
        }
        out
    }
}
