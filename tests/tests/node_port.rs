//! The agent's HTTPS port and keel-control's proxy to it, without root:
//! a node joins a real keel-control, gets its serving certificate from it
//! (`keel_agent::nodeport::request`), and serves a stand-in of the
//! runtime's logs route with `keel_agent::nodeport` on loopback; its Node
//! advertises the port. Then `GET …/pods/NAME/log` through keel-control
//! reaches it over mTLS with Kubernetes' parameters (and `follow` streams),
//! `kubectl exec` and `exec -i` (and `keelctl exec -i`) are relayed to a
//! stand-in of the agent's exec stream, a node's credential gets 403, and the port itself refuses any client
//! certificate that is not keel-control's.

use std::time::{Duration, SystemTime};

use axum::{
    body::Body,
    extract::{Path, RawQuery},
    routing::get,
};
use http_body_util::BodyExt;
use keel_api::{
    Node, Pod,
    client::{Client, ClientConfig, ClientError, HttpMethod, Identity},
};
use keel_control::pki::ClusterCa;
use keel_tests::process::ControlProcess;

/// The stand-in of the agent's exec stream: echoes each stdin message as
/// `got:…` and each resize as `resize WxH` (query `tty=true` only), and on
/// the v5 close of stdin exits with the command's last word as its code.
async fn exec_stream(
    ws: axum::extract::ws::WebSocketUpgrade,
    RawQuery(q): RawQuery,
) -> axum::response::Response {
    use axum::extract::ws::Message;
    use keel_api::exec as proto;
    let p = proto::parse(q.as_deref().unwrap_or_default()).unwrap();
    let code = p
        .command
        .last()
        .and_then(|c| c.parse::<i32>().ok())
        .unwrap_or(0);
    ws.protocols(proto::PROTOCOLS)
        .on_upgrade(move |mut s| async move {
            while let Some(Ok(m)) = s.recv().await {
                let Message::Binary(b) = m else { continue };
                let out = match b[0] {
                    proto::STDIN => format!("got:{}", String::from_utf8_lossy(&b[1..])),
                    proto::RESIZE if p.tty => {
                        let size = proto::parse_resize(&b[1..]).unwrap();
                        format!("resize {}x{}\n", size.width, size.height)
                    }
                    proto::CLOSE => break,
                    _ => continue,
                };
                let _ = s
                    .send(Message::Binary(
                        proto::frame(proto::STDOUT, out.as_bytes()).into(),
                    ))
                    .await;
            }
            let status = serde_json::to_vec(&proto::status(code)).unwrap();
            let _ = s
                .send(Message::Binary(proto::frame(proto::ERROR, &status).into()))
                .await;
            let _ = s
                .send(Message::Close(Some(axum::extract::ws::CloseFrame {
                    code: axum::extract::ws::close_code::NORMAL,
                    reason: "".into(),
                })))
                .await;
        })
}

/// The stand-in agent: echoes the pod and query; `follow` sends a second
/// line later.
fn agent_routes() -> axum::Router {
    axum::Router::new()
        .route(
            "/pods/{ns}/{name}/exec",
            axum::routing::get(exec_stream).post(|body: String| async move {
                let req: serde_json::Value = serde_json::from_str(&body).unwrap();
                let cmd: Vec<String> = serde_json::from_value(req["command"].clone()).unwrap();
                let code = cmd.last().and_then(|c| c.parse::<i32>().ok()).unwrap_or(0);
                axum::Json(serde_json::json!({
                    "exitCode": code,
                    "stdout": format!("ran {}\n", cmd.join(" ")),
                    "stderr": "to stderr\n",
                }))
            }),
        )
        .route(
            "/pods/{ns}/{name}/logs",
            get(
                |Path((ns, name)): Path<(String, String)>, RawQuery(q): RawQuery| async move {
                    let q = q.unwrap_or_default();
                    let first = format!("{ns}/{name}?{q}\n");
                    if !q.contains("follow=true") {
                        return Body::from(first);
                    }
                    let s = futures_util::stream::unfold(0, move |i| {
                        let first = first.clone();
                        async move {
                            match i {
                                0 => Some((Ok::<_, std::io::Error>(first), 1)),
                                1 => {
                                    tokio::time::sleep(Duration::from_millis(300)).await;
                                    Some((Ok("later\n".to_string()), 2))
                                }
                                _ => None,
                            }
                        }
                    });
                    Body::from_stream(s)
                },
            ),
        )
}

async fn body_text(resp: hyper::Response<hyper::body::Incoming>) -> String {
    let b = tokio::time::timeout(Duration::from_secs(10), resp.into_body().collect())
        .await
        .expect("body within 10 s")
        .unwrap()
        .to_bytes();
    String::from_utf8_lossy(&b).into_owned()
}

fn code_of(e: ClientError) -> u16 {
    code(e)
}

fn code(e: ClientError) -> u16 {
    match e {
        ClientError::Api(s) => s.code,
        other => panic!("expected an API error, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_proxied_to_the_node_port_over_mtls_and_only_keel_control_gets_in() {
    let control = ControlProcess::start(&[]);
    let admin = control.client();
    let dir = tempfile::Builder::new()
        .prefix("keel-t-nodeport-")
        .tempdir()
        .unwrap();
    let path = control.join_node("np-1", dir.path()).await;
    let node = Client::new(&ClientConfig::load(&path).unwrap()).unwrap();

    // The Node first (an agent registers before it asks): its serving
    // certificate may name only the Node's own name and addresses.
    let mut n: Node =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "np-1"}})).unwrap();
    n = admin.create(&n).await.unwrap();
    n.metadata.resource_version.clear();
    n.status = serde_json::from_value(serde_json::json!({
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
    }))
    .unwrap();
    n = admin.update_status(&n).await.unwrap();

    // The serving certificate, for this node only.
    let addresses = vec!["127.0.0.1".to_string(), "np-1".to_string()];
    let (cert, key, ca) = keel_agent::nodeport::request(&node, "np-1", &addresses)
        .await
        .unwrap();
    let other = keel_agent::nodeport::request(&node, "np-2", &addresses)
        .await
        .unwrap_err();
    assert!(format!("{other:#}").contains("Forbidden"), "{other:#}");
    let foreign = vec!["127.0.0.1".to_string(), "10.0.0.99".to_string()];
    let e = keel_agent::nodeport::request(&node, "np-1", &foreign)
        .await
        .unwrap_err();
    assert!(
        format!("{e:#}")
            .contains("addresses[1] \"10.0.0.99\" is not one of node \"np-1\"'s addresses"),
        "{e:#}"
    );
    let serving = Identity::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
    let acceptor = keel_agent::nodeport::acceptor(serving, &ca).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(keel_agent::nodeport::serve(
        listener,
        acceptor,
        agent_routes(),
    ));

    // The Node advertises the port; a pod runs there.
    n.metadata.resource_version.clear();
    n.status = serde_json::from_value(serde_json::json!({
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
    }))
    .unwrap();
    admin.update_status(&n).await.unwrap();
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"nodeName": "np-1", "containers": [{"name": "c", "image": "busybox"}]}
    }))
    .unwrap();
    admin.create(&pod).await.unwrap();

    // Through keel-control, with Kubernetes' parameters.
    let log = "/api/v1/namespaces/default/pods/web/log";
    let resp = admin
        .get_stream(&format!("{log}?container=c&tailLines=3&timestamps=true"))
        .await
        .unwrap();
    assert_eq!(
        body_text(resp).await,
        "default/web?container=c&tailLines=3&timestamps=true\n"
    );
    let resp = admin
        .get_stream(&format!("{log}?follow=true"))
        .await
        .unwrap();
    assert_eq!(body_text(resp).await, "default/web?follow=true\nlater\n");
    // Invalid parameters are refused by name, before any node is dialled.
    let e = admin
        .get_stream(&format!("{log}?tailLines=-2"))
        .await
        .unwrap_err();
    assert_eq!(code(e), 400);
    // A missing pod is 404; a node may not read logs.
    let e = admin
        .get_stream("/api/v1/namespaces/default/pods/nope/log")
        .await
        .unwrap_err();
    assert_eq!(code(e), 404);
    let e = node.get_stream(log).await.unwrap_err();
    assert_eq!(code(e), 403);

    // Real kubectl: logs, and exec over its WebSocket (exit code and both
    // streams), through the admin's kubeconfig.
    let kubeconfig = control.data_dir().join("kubeconfig");
    let status = std::process::Command::new(keel_tests::process::bin("keelctl"))
        .arg("--config")
        .arg(control.client_config_path())
        .args(["kubeconfig", "-o"])
        .arg(&kubeconfig)
        .status()
        .unwrap();
    assert!(status.success());
    let kubectl = |args: &[&str]| {
        let out = std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--cache-dir")
            .arg(control.data_dir().join("kube-cache"))
            .arg("--request-timeout=20s")
            .args(args)
            .output()
            .expect("kubectl on PATH");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = kubectl(&["logs", "web", "--tail=2"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "default/web?container=c&tailLines=2\n"),
        "{err}"
    );
    let (code, out, err) = kubectl(&["exec", "web", "--", "sh", "-c", "work", "7"]);
    assert_eq!(code, 7, "{out}{err}");
    assert_eq!(out, "ran sh -c work 7\n", "{err}");
    assert!(err.contains("to stderr"), "{err}");
    let (code, out, err) = kubectl(&["exec", "web", "-c", "c", "--", "true"]);
    assert_eq!((code, out.as_str()), (0, "ran true\n"), "{err}");
    // With stdin: relayed both ways to the agent's exec stream; kubectl's
    // end of stdin reaches it (v5), and the exit code comes back.
    let mut child = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--cache-dir")
        .arg(control.data_dir().join("kube-cache"))
        .args(["exec", "-i", "web", "--", "sh", "-c", "3"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl on PATH");
    {
        use std::io::Write;
        let mut i = child.stdin.take().unwrap();
        i.write_all(b"hello\n").unwrap();
    }
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let (o, e) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(3), "{o}{e}");
    assert_eq!(o, "got:hello\n", "{e}");
    // keelctl's -i goes the same way.
    let out = std::process::Command::new(keel_tests::process::bin("keelctl"))
        .arg("--config")
        .arg(control.client_config_path())
        .args(["exec", "-i", "web", "--", "cat", "5"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A missing pod is kubectl's NotFound before any stream opens.
    let (code, _, err) = kubectl(&["exec", "-i", "nope", "--", "cat"]);
    assert_ne!(code, 0);
    assert!(err.contains("not found"), "{err}");
    // A node may not exec either.
    let e = node
        .request_raw(
            HttpMethod::POST,
            "/api/v1/namespaces/default/pods/web/exec?command=ls&stdout=true",
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(e), 403);

    // The port itself: keel-control's identity gets in, any other
    // certificate of the same CA (a node's) does not.
    let ca_key = std::fs::read_to_string(control.data_dir().join("pki/ca.key")).unwrap();
    let cluster = ClusterCa::from_pem(&ca, &ca_key).unwrap();
    let direct = |identity: Identity| {
        Client::new(&ClientConfig {
            server: format!("https://127.0.0.1:{port}"),
            token: String::new(),
            ca_pem: Some(ca.clone().into_bytes()),
            identity: Some(identity),
        })
        .unwrap()
    };
    let (c, k) = cluster
        .issue_control_client(Duration::from_secs(600), SystemTime::now())
        .unwrap();
    let as_control = direct(Identity::from_pem(c.as_bytes(), k.as_bytes()).unwrap());
    let got = as_control.get_stream("/pods/a/b/logs").await.unwrap();
    assert_eq!(body_text(got).await, "a/b?\n");
    let node_key = rcgen::KeyPair::generate().unwrap();
    let csr = rcgen::CertificateParams::default()
        .serialize_request(&node_key)
        .unwrap()
        .pem()
        .unwrap();
    let node_cert = cluster
        .sign_node(&csr, "np-1", Duration::from_secs(600), SystemTime::now())
        .unwrap();
    let as_node = direct(
        Identity::from_pem(node_cert.as_bytes(), node_key.serialize_pem().as_bytes()).unwrap(),
    );
    let refused = as_node.get_stream("/pods/a/b/logs").await.unwrap_err();
    assert!(
        matches!(refused, ClientError::Unreachable { .. }),
        "a node certificate must not get in: {refused}"
    );
    server.abort();
}
