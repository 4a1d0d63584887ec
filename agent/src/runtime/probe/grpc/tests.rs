//! The probe against an in-process gRPC health server on loopback (the
//! service written out as tonic's codegen would write it).

use std::{
    collections::BTreeMap,
    convert::Infallible,
    future::Future,
    net::{Ipv4Addr, SocketAddr},
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use tonic::codegen::http;

use super::*;

/// A health server: each service's status; others answer NOT_FOUND, as
/// grpc-go's health server does.
#[derive(Clone)]
struct Health(BTreeMap<String, i32>);

struct Check(BTreeMap<String, i32>);

impl tonic::server::UnaryService<HealthCheckRequest> for Check {
    type Response = HealthCheckResponse;
    type Future = Pin<
        Box<
            dyn Future<Output = Result<tonic::Response<HealthCheckResponse>, tonic::Status>> + Send,
        >,
    >;

    fn call(&mut self, req: tonic::Request<HealthCheckRequest>) -> Self::Future {
        let got = self.0.get(&req.into_inner().service).copied();
        Box::pin(async move {
            match got {
                Some(status) => Ok(tonic::Response::new(HealthCheckResponse { status })),
                None => Err(tonic::Status::not_found("unknown service")),
            }
        })
    }
}

impl tonic::codegen::Service<http::Request<tonic::body::Body>> for Health {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let statuses = self.0.clone();
        Box::pin(async move {
            if req.uri().path() != CHECK {
                return Ok(tonic::Status::unimplemented("").into_http());
            }
            let codec =
                tonic_prost::ProstCodec::<HealthCheckResponse, HealthCheckRequest>::default();
            let mut grpc = tonic::server::Grpc::new(codec);
            Ok(grpc.unary(Check(statuses), req).await)
        })
    }
}

impl tonic::server::NamedService for Health {
    const NAME: &'static str = "grpc.health.v1.Health";
}

/// Serves `statuses` on a loopback port until the returned runtime is dropped.
fn serve(statuses: &[(&str, i32)]) -> (tokio::runtime::Runtime, SocketAddr) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let health = Health(statuses.iter().map(|(k, v)| (k.to_string(), *v)).collect());
    let listener = rt
        .block_on(tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(
        tonic::transport::Server::builder()
            .add_service(health)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (rt, addr)
}

#[test]
fn serving_is_success_and_everything_else_fails_with_the_kubelets_message() {
    let (_rt, addr) = serve(&[("", SERVING), ("db", NOT_SERVING), ("cache", SERVING)]);
    let t = Duration::from_secs(2);
    let ok = check(addr, "", t);
    assert_eq!((ok.ok, ok.detail.as_str()), (true, "service healthy"));
    assert!(check(addr, "cache", t).ok);
    let bad = check(addr, "db", t);
    assert!(!bad.ok);
    assert_eq!(
        bad.detail,
        "service unhealthy (responded with \"NOT_SERVING\")"
    );
    let unknown = check(addr, "nope", t);
    assert!(!unknown.ok);
    assert!(
        unknown.detail.contains("health rpc probe failed") && unknown.detail.contains("NotFound"),
        "{}",
        unknown.detail
    );
}

#[test]
fn a_refused_connection_fails_within_the_timeout() {
    // A port nothing listens on: bound, then closed.
    let addr = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap();
    let started = std::time::Instant::now();
    let out = check(addr, "", Duration::from_secs(1));
    assert!(!out.ok);
    assert!(
        out.detail.starts_with("timeout: failed to connect service")
            && out.detail.to_lowercase().contains("refused"),
        "{}",
        out.detail
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn a_probe_names_the_pods_port_and_service() {
    let (_rt, addr) = serve(&[("", SERVING), ("db", NOT_SERVING)]);
    let c = keel_api::pod::Container::default();
    let probe = |port: i64, service: Option<&str>| keel_api::pod::Probe {
        grpc: Some(keel_api::pod::GrpcAction {
            port,
            service: service.map(str::to_string),
        }),
        ..Default::default()
    };
    let lo = addr.ip();
    let run = |p| crate::runtime::probe::check_network(&c, &p, lo).unwrap();
    assert!(run(probe(i64::from(addr.port()), None)).ok);
    assert!(!run(probe(i64::from(addr.port()), Some("db"))).ok);
    let out = run(probe(70000, None));
    assert!(
        !out.ok && out.detail.contains("out of range"),
        "{}",
        out.detail
    );
}
