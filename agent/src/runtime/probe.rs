//! Liveness, readiness and startup probes with Kubernetes semantics.
//!
//! The state machine ([`Prober`]) is pure: given the container's start time
//! and each result it decides when the next probe is due and what the
//! container's readiness, liveness and startedness are:
//!
//! - nothing runs before `initialDelaySeconds`; then every `periodSeconds`;
//! - a startup probe gates the other two; once it succeeds it stops, and
//!   `failureThreshold` failures in a row kill the container;
//! - liveness is assumed until `failureThreshold` failures in a row, which
//!   kill the container (restart per policy);
//! - readiness starts false and flips after `successThreshold` successes in a
//!   row, back after `failureThreshold` failures in a row; without a
//!   readiness probe a started, running container is ready.
//!
//! One difference from the kubelet, on purpose: until a container's
//! readiness probe has succeeded once, a failed readiness probe is retried
//! after 100 ms, doubling up to `periodSeconds`, instead of a whole period
//! later. A server that is not listening yet at the first probe (the usual
//! case right after start) is then Ready within ~100 ms of listening
//! rather than up to a period later. Nothing else changes: readiness
//! failures before the first success cannot change anything (the container
//! is not ready yet), successes after the first are a period apart (so
//! `successThreshold` means what it means), and liveness and startup probes
//! keep their period (their failures kill).
//!
//! [`check`] performs one probe: exec (exit 0), httpGet (status 200–399) or
//! tcpSocket (connect), each bounded by `timeoutSeconds`.

use std::{
    io::{Read, Write},
    net::{IpAddr, SocketAddr, TcpStream},
    time::Duration,
};

use keel_api::{
    IntOrString,
    pod::{Container, Probe},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    Startup,
    Liveness,
    Readiness,
}

/// The first readiness retry before any success, doubling up to the period.
const FIRST_READY_RETRY_MS: u64 = 100;

/// One probe's counters.
#[derive(Debug, Clone)]
struct Track {
    probe: Probe,
    successes: i64,
    failures: i64,
    /// Whether the probe has ever succeeded.
    succeeded: bool,
    /// Milliseconds since the container started when the next run is due.
    next_ms: u64,
}

impl Track {
    fn new(probe: &Probe) -> Self {
        Self {
            probe: probe.clone(),
            successes: 0,
            failures: 0,
            succeeded: false,
            next_ms: probe.initial_delay().max(0) as u64 * 1000,
        }
    }

    fn record(&mut self, ok: bool, at_ms: u64) {
        if ok {
            self.successes += 1;
            self.failures = 0;
            self.succeeded = true;
        } else {
            self.failures += 1;
            self.successes = 0;
        }
        self.next_ms = at_ms + self.period_ms();
    }

    fn period_ms(&self) -> u64 {
        self.probe.period().max(1) as u64 * 1000
    }

    /// Before the first success: retry soon (see the module doc).
    fn retry_soon(&mut self, at_ms: u64) {
        if !self.succeeded {
            let doublings = (self.failures.max(1) - 1).min(16) as u32;
            let wait = (FIRST_READY_RETRY_MS << doublings).min(self.period_ms());
            self.next_ms = at_ms + wait;
        }
    }
}

/// What the probes of one running container say.
#[derive(Debug, Clone)]
pub struct Prober {
    startup: Option<Track>,
    liveness: Option<Track>,
    readiness: Option<Track>,
    started: bool,
    ready: bool,
    /// Set when a startup or liveness probe has failed enough: the
    /// container must be killed, with this message.
    pub kill: Option<String>,
}

impl Prober {
    pub fn new(c: &Container) -> Self {
        Self {
            startup: c.startup_probe.as_ref().map(Track::new),
            liveness: c.liveness_probe.as_ref().map(Track::new),
            readiness: c.readiness_probe.as_ref().map(Track::new),
            started: c.startup_probe.is_none(),
            ready: false,
            kill: None,
        }
    }

    /// A prober for a container that was already running before this agent
    /// started (re-adopted): it keeps the readiness and startedness the pod's
    /// last posted status gave it, so an agent restart does not flap the
    /// pod out of its Endpoints; the probes then carry on as usual.
    pub fn adopted(c: &Container, was_started: bool, was_ready: bool) -> Self {
        let mut p = Self::new(c);
        p.started = p.started || was_started;
        p.ready = was_ready;
        if let Some(r) = p.readiness.as_mut()
            && was_ready
        {
            r.successes = r.probe.success_threshold();
        }
        p
    }

    pub fn started(&self) -> bool {
        self.started
    }

    /// Readiness (false until started; true without a readiness probe).
    pub fn ready(&self) -> bool {
        self.started && self.kill.is_none() && (self.readiness.is_none() || self.ready)
    }

    fn track(&mut self, k: ProbeKind) -> Option<&mut Track> {
        match k {
            ProbeKind::Startup => self.startup.as_mut(),
            ProbeKind::Liveness => self.liveness.as_mut(),
            ProbeKind::Readiness => self.readiness.as_mut(),
        }
    }

    /// Probes due `at_ms` after the container started.
    pub fn due(&self, at_ms: u64) -> Vec<(ProbeKind, Probe)> {
        if self.kill.is_some() {
            return Vec::new();
        }
        let mut out = Vec::new();
        if !self.started {
            if let Some(t) = &self.startup
                && at_ms >= t.next_ms
            {
                out.push((ProbeKind::Startup, t.probe.clone()));
            }
            return out;
        }
        for (k, t) in [
            (ProbeKind::Liveness, &self.liveness),
            (ProbeKind::Readiness, &self.readiness),
        ] {
            if let Some(t) = t
                && at_ms >= t.next_ms
            {
                out.push((k, t.probe.clone()));
            }
        }
        out
    }

    /// Milliseconds after start when the next probe is due (None: none).
    pub fn next_due(&self) -> Option<u64> {
        if self.kill.is_some() {
            return None;
        }
        if !self.started {
            return self.startup.as_ref().map(|t| t.next_ms);
        }
        [&self.liveness, &self.readiness]
            .into_iter()
            .flatten()
            .map(|t| t.next_ms)
            .min()
    }

    /// Records a result.
    pub fn record(&mut self, k: ProbeKind, ok: bool, at_ms: u64, detail: &str) {
        let Some(t) = self.track(k) else { return };
        t.record(ok, at_ms);
        let (s, f) = (t.successes, t.failures);
        let (st, ft) = (t.probe.success_threshold(), t.probe.failure_threshold());
        match k {
            ProbeKind::Startup => {
                if ok {
                    self.started = true;
                    // Liveness and readiness begin their own delays now.
                    for t in [&mut self.liveness, &mut self.readiness]
                        .into_iter()
                        .flatten()
                    {
                        t.next_ms = at_ms + t.probe.initial_delay().max(0) as u64 * 1000;
                    }
                } else if f >= ft {
                    self.kill = Some(format!("Startup probe failed: {detail}"));
                }
            }
            ProbeKind::Liveness => {
                if !ok && f >= ft {
                    self.kill = Some(format!("Liveness probe failed: {detail}"));
                }
            }
            ProbeKind::Readiness => {
                if ok && s >= st {
                    self.ready = true;
                } else if !ok && f >= ft {
                    self.ready = false;
                }
                if !ok && let Some(t) = self.readiness.as_mut() {
                    t.retry_soon(at_ms);
                }
            }
        }
    }
}

/// Resolves a probe port (number, or a container port's name).
pub fn port(c: &Container, p: &IntOrString) -> Result<u16, String> {
    match p {
        IntOrString::Int(n) => u16::try_from(*n).map_err(|_| format!("port {n} out of range")),
        IntOrString::String(name) => c
            .ports
            .iter()
            .find(|cp| &cp.name == name)
            .and_then(|cp| u16::try_from(cp.container_port).ok())
            .ok_or_else(|| format!("no container port named {name:?}")),
    }
}

/// The outcome of one probe run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub ok: bool,
    pub detail: String,
}

/// Runs an httpGet or tcpSocket probe from the calling thread (which must
/// be in the pod's network namespace). `default_host` is the pod IP, or
/// loopback when none is known. Exec probes go through the runtime.
pub fn check_network(c: &Container, probe: &Probe, default_host: IpAddr) -> Option<Outcome> {
    let timeout = Duration::from_secs(probe.timeout().max(1) as u64);
    if let Some(h) = &probe.http_get {
        let host = if h.host.is_empty() {
            default_host
        } else {
            match h.host.parse() {
                Ok(ip) => ip,
                Err(_) => {
                    return Some(Outcome {
                        ok: false,
                        detail: format!("host {:?} is not an IP address", h.host),
                    });
                }
            }
        };
        let port = match port(c, &h.port) {
            Ok(p) => p,
            Err(e) => {
                return Some(Outcome {
                    ok: false,
                    detail: e,
                });
            }
        };
        let path = if h.path.is_empty() { "/" } else { &h.path };
        return Some(
            match http_get(SocketAddr::new(host, port), path, &h.http_headers, timeout) {
                Ok(code) if (200..400).contains(&code) => Outcome {
                    ok: true,
                    detail: format!("HTTP {code}"),
                },
                Ok(code) => Outcome {
                    ok: false,
                    detail: format!("HTTP probe failed with statuscode: {code}"),
                },
                Err(e) => Outcome {
                    ok: false,
                    detail: format!("Get \"http://{host}:{port}{path}\": {e}"),
                },
            },
        );
    }
    if let Some(t) = &probe.tcp_socket {
        let host = if t.host.is_empty() {
            default_host
        } else {
            t.host.parse().unwrap_or(default_host)
        };
        let port = match port(c, &t.port) {
            Ok(p) => p,
            Err(e) => {
                return Some(Outcome {
                    ok: false,
                    detail: e,
                });
            }
        };
        let addr = SocketAddr::new(host, port);
        return Some(match TcpStream::connect_timeout(&addr, timeout) {
            Ok(_) => Outcome {
                ok: true,
                detail: String::new(),
            },
            Err(e) => Outcome {
                ok: false,
                detail: format!("dial tcp {addr}: {e}"),
            },
        });
    }
    None
}

fn http_get(
    addr: SocketAddr,
    path: &str,
    headers: &[keel_api::pod::HttpHeader],
    timeout: Duration,
) -> std::io::Result<u16> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: kube-probe/keel\r\nAccept: */*\r\nConnection: close\r\n"
    );
    for h in headers {
        req.push_str(&format!("{}: {}\r\n", h.name, h.value));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    while !got.windows(2).any(|w| w == b"\r\n") && got.len() < 64 {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&got);
    line.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("malformed HTTP response {line:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_api::pod::{ExecAction, TcpSocketAction};

    fn probe(delay: i64, period: i64, success: i64, failure: i64) -> Probe {
        Probe {
            exec: Some(ExecAction {
                command: vec!["true".into()],
            }),
            initial_delay_seconds: Some(delay),
            period_seconds: Some(period),
            success_threshold: Some(success),
            failure_threshold: Some(failure),
            ..Default::default()
        }
    }

    #[test]
    fn liveness_kills_after_failure_threshold_in_a_row() {
        let c = Container {
            liveness_probe: Some(probe(5, 2, 1, 3)),
            ..Default::default()
        };
        let mut p = Prober::new(&c);
        assert!(p.due(4_999).is_empty(), "initial delay");
        assert_eq!(p.due(5_000).len(), 1);
        p.record(ProbeKind::Liveness, false, 5_000, "x");
        p.record(ProbeKind::Liveness, false, 7_000, "x");
        p.record(ProbeKind::Liveness, true, 9_000, "");
        p.record(ProbeKind::Liveness, false, 11_000, "x");
        p.record(ProbeKind::Liveness, false, 13_000, "x");
        assert!(p.kill.is_none(), "a success resets the count");
        assert_eq!(p.next_due(), Some(15_000));
        p.record(ProbeKind::Liveness, false, 15_000, "boom");
        assert_eq!(p.kill.as_deref(), Some("Liveness probe failed: boom"));
        assert!(p.due(100_000).is_empty() && !p.ready());
    }

    #[test]
    fn readiness_needs_success_threshold_and_flips_back() {
        let c = Container {
            readiness_probe: Some(probe(0, 1, 2, 2)),
            ..Default::default()
        };
        let mut p = Prober::new(&c);
        assert!(!p.ready(), "not ready before the first success");
        p.record(ProbeKind::Readiness, true, 0, "");
        assert!(!p.ready());
        p.record(ProbeKind::Readiness, true, 1000, "");
        assert!(p.ready());
        p.record(ProbeKind::Readiness, false, 2000, "");
        assert!(p.ready(), "one failure is below the threshold");
        p.record(ProbeKind::Readiness, false, 3000, "");
        assert!(!p.ready());
        assert!(p.kill.is_none(), "readiness never kills");
    }

    #[test]
    fn readiness_retries_soon_until_its_first_success_only() {
        let c = Container {
            readiness_probe: Some(probe(0, 2, 2, 3)),
            liveness_probe: Some(probe(0, 2, 1, 3)),
            ..Default::default()
        };
        let mut p = Prober::new(&c);
        p.record(ProbeKind::Readiness, false, 0, "connection refused");
        assert!(p.due(99).iter().all(|d| d.0 != ProbeKind::Readiness));
        assert_eq!(p.due(100).len(), 2, "liveness at 0 and readiness at 100");
        p.record(ProbeKind::Readiness, false, 100, "");
        p.record(ProbeKind::Readiness, false, 300, "");
        p.record(ProbeKind::Readiness, false, 700, "");
        p.record(ProbeKind::Readiness, false, 1500, "");
        p.record(ProbeKind::Readiness, false, 3100, "");
        assert_eq!(
            p.readiness.as_ref().unwrap().next_ms,
            5100,
            "100, 200, 400, 800 ms, then the 2 s period"
        );
        p.record(ProbeKind::Liveness, false, 0, "");
        assert_eq!(
            p.liveness.as_ref().unwrap().next_ms,
            2000,
            "liveness keeps its period"
        );
        p.record(ProbeKind::Readiness, true, 3200, "");
        assert!(
            !p.ready(),
            "successThreshold 2 still needs a second success"
        );
        assert_eq!(
            p.readiness.as_ref().unwrap().next_ms,
            5200,
            "a period later"
        );
        p.record(ProbeKind::Readiness, true, 5200, "");
        assert!(p.ready());
        p.record(ProbeKind::Readiness, false, 7200, "");
        assert_eq!(
            p.readiness.as_ref().unwrap().next_ms,
            9200,
            "after a success, failures wait the period"
        );
    }

    #[test]
    fn startup_gates_the_others() {
        let c = Container {
            startup_probe: Some(probe(0, 1, 1, 2)),
            liveness_probe: Some(probe(3, 1, 1, 1)),
            ..Default::default()
        };
        let mut p = Prober::new(&c);
        assert!(!p.started() && !p.ready());
        assert_eq!(
            p.due(10_000).iter().map(|d| d.0).collect::<Vec<_>>(),
            vec![ProbeKind::Startup]
        );
        p.record(ProbeKind::Startup, true, 10_000, "");
        assert!(
            p.started() && p.ready(),
            "no readiness probe: ready once started"
        );
        assert!(
            p.due(12_999).is_empty(),
            "liveness delay counts from startup success"
        );
        assert_eq!(p.due(13_000)[0].0, ProbeKind::Liveness);

        let mut q = Prober::new(&c);
        q.record(ProbeKind::Startup, false, 0, "");
        q.record(ProbeKind::Startup, false, 1000, "no");
        assert_eq!(q.kill.as_deref(), Some("Startup probe failed: no"));
    }

    #[test]
    fn adopted_containers_keep_their_readiness_until_probed_otherwise() {
        let c = Container {
            readiness_probe: Some(probe(0, 1, 1, 1)),
            ..Default::default()
        };
        let mut p = Prober::adopted(&c, true, true);
        assert!(p.ready(), "no flap after an agent restart");
        p.record(ProbeKind::Readiness, false, 0, "");
        assert!(!p.ready());
        assert!(!Prober::adopted(&c, true, false).ready());
    }

    #[test]
    fn without_probes_a_container_is_ready_at_once() {
        let p = Prober::new(&Container::default());
        assert!(p.ready() && p.next_due().is_none());
    }

    #[test]
    fn tcp_and_http_probes_against_loopback() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            for code in [200, 503] {
                let (mut s, _) = l.accept().unwrap();
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).unwrap();
                write!(s, "HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n").unwrap();
            }
            l
        });
        let c = Container::default();
        let mut http = Probe {
            http_get: Some(keel_api::pod::HttpGetAction {
                path: "/healthz".into(),
                port: IntOrString::Int(port as i64),
                host: String::new(),
                scheme: String::new(),
                http_headers: vec![],
            }),
            ..Default::default()
        };
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(check_network(&c, &http, lo).unwrap().ok);
        let bad = check_network(&c, &http, lo).unwrap();
        assert!(!bad.ok && bad.detail.contains("503"), "{bad:?}");
        let l = server.join().unwrap();
        let tcp = Probe {
            tcp_socket: Some(TcpSocketAction {
                port: IntOrString::Int(port as i64),
                host: String::new(),
            }),
            ..Default::default()
        };
        assert!(check_network(&c, &tcp, lo).unwrap().ok);
        drop(l);
        let closed = check_network(&c, &tcp, lo).unwrap();
        assert!(!closed.ok, "{closed:?}");
        http.http_get.as_mut().unwrap().port = IntOrString::String("web".into());
        assert!(!check_network(&c, &http, lo).unwrap().ok);
    }
}
