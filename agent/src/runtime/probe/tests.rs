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
