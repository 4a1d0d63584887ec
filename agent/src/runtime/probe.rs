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
//! tcpSocket (connect) or grpc (`grpc.health.v1.Health/Check` answering
//! SERVING, [`grpc`]), each bounded by `timeoutSeconds`.

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

/// Runs an httpGet, tcpSocket or grpc probe from the calling thread (which must
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
    if let Some(g) = &probe.grpc {
        // No host field: always the pod's IP, as the kubelet dials it.
        let Some(port) = u16::try_from(g.port).ok().filter(|p| *p != 0) else {
            return Some(Outcome {
                ok: false,
                detail: format!("port {} out of range", g.port),
            });
        };
        let service = g.service.as_deref().unwrap_or_default();
        return Some(grpc::check(
            SocketAddr::new(default_host, port),
            service,
            timeout,
        ));
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

pub mod grpc;

#[cfg(test)]
mod tests;
