//! gRPC probes: one `grpc.health.v1.Health/Check` call (the standard health
//! protocol, grpc/grpc-proto `health/v1/health.proto`) over plaintext
//! HTTP/2, SERVING being success, with the kubelet's messages
//! (`pkg/probe/grpc`). The call runs on a thread of its own with a
//! current-thread runtime: that thread is created by the caller's, so its
//! sockets are in the caller's network namespace (the pod's).

use std::{net::SocketAddr, time::Duration};

use super::Outcome;

/// `grpc.health.v1.HealthCheckRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    pub service: String,
}

/// `grpc.health.v1.HealthCheckResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    pub status: i32,
}

/// `HealthCheckResponse.ServingStatus` values.
pub const UNKNOWN: i32 = 0;
pub const SERVING: i32 = 1;
pub const NOT_SERVING: i32 = 2;
pub const SERVICE_UNKNOWN: i32 = 3;

/// The method's path.
pub const CHECK: &str = "/grpc.health.v1.Health/Check";

fn status_name(s: i32) -> String {
    match s {
        UNKNOWN => "UNKNOWN".into(),
        SERVING => "SERVING".into(),
        NOT_SERVING => "NOT_SERVING".into(),
        SERVICE_UNKNOWN => "SERVICE_UNKNOWN".into(),
        n => n.to_string(),
    }
}

fn fail(detail: String) -> Outcome {
    Outcome { ok: false, detail }
}

/// Asks `addr` about `service` within `timeout` (connection included).
pub fn check(addr: SocketAddr, service: &str, timeout: Duration) -> Outcome {
    std::thread::scope(|s| {
        s.spawn(|| {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(call(addr, service, timeout)),
                Err(e) => fail(format!("error: starting the probe's runtime: {e}")),
            }
        })
        .join()
        .unwrap_or_else(|_| fail("error: the gRPC probe panicked".into()))
    })
}

async fn call(addr: SocketAddr, service: &str, timeout: Duration) -> Outcome {
    let connect_failed = |e: &dyn std::fmt::Display| {
        fail(format!(
            "timeout: failed to connect service {:?} within {timeout:?}: {e}",
            addr.to_string()
        ))
    };
    let endpoint = match tonic::transport::Endpoint::from_shared(format!("http://{addr}")) {
        Ok(e) => e.connect_timeout(timeout).timeout(timeout),
        Err(e) => return connect_failed(&e),
    };
    let channel = match tokio::time::timeout(timeout, endpoint.connect()).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            // The cause (connection refused …) is in the source chain.
            let mut text = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                text.push_str(&format!(": {s}"));
                src = s.source();
            }
            return connect_failed(&text);
        }
        Err(_) => return connect_failed(&"deadline exceeded"),
    };
    let mut grpc = tonic::client::Grpc::new(channel);
    if let Err(e) = grpc.ready().await {
        return connect_failed(&e);
    }
    let mut req = tonic::Request::new(HealthCheckRequest {
        service: service.to_string(),
    });
    req.set_timeout(timeout);
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(CHECK);
    let codec = tonic_prost::ProstCodec::<HealthCheckRequest, HealthCheckResponse>::default();
    match tokio::time::timeout(timeout, grpc.unary(req, path, codec)).await {
        Err(_) => fail(format!(
            "timeout: health rpc did not complete within {timeout:?}"
        )),
        Ok(Err(s)) => match s.code() {
            tonic::Code::Unimplemented => fail(format!(
                "this server does not implement the grpc health protocol (grpc.health.v1.Health): {}",
                s.message()
            )),
            tonic::Code::DeadlineExceeded => fail(format!(
                "timeout: health rpc did not complete within {timeout:?}"
            )),
            code => fail(format!(
                "error: health rpc probe failed: rpc error: code = {code:?} desc = {}",
                s.message()
            )),
        },
        Ok(Ok(resp)) => {
            let status = resp.into_inner().status;
            if status == SERVING {
                Outcome {
                    ok: true,
                    detail: "service healthy".into(),
                }
            } else {
                fail(format!(
                    "service unhealthy (responded with {:?})",
                    status_name(status)
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests;
