use futures_util::{SinkExt, StreamExt};
use keel_api::{
    client::{Client, ClientError, WsMessage},
    portforward::PROTOCOL,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::runtime::{api::serve_pod_p, backend::fake::FakeRuntime};

/// The agent's router on loopback with pod default/p registered without a
/// network namespace of its own (as a hostNetwork pod is), so its
/// `localhost` is this test's.
async fn serve() -> Client {
    serve_pod_p(FakeRuntime::new()).await
}

async fn next_binary(ws: &mut keel_api::client::Socket) -> Vec<u8> {
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(5), ws.next())
            .await
            .expect("a message within 5s")
        {
            Some(Ok(WsMessage::Binary(b))) => return b.to_vec(),
            Some(Ok(_)) => continue,
            other => panic!("socket ended: {other:?}"),
        }
    }
}

#[tokio::test]
async fn bytes_go_both_ways_and_half_closes_pass_through() {
    let client = serve().await;
    let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = server.local_addr().unwrap().port();
    let (mut ws, proto) = client
        .websocket(
            &format!("/pods/default/p/portforward?port={port}"),
            &[PROTOCOL],
        )
        .await
        .unwrap();
    assert_eq!(proto, PROTOCOL);
    let (mut conn, _) = server.accept().await.unwrap();
    conn.write_all(b"hello from the pod").await.unwrap();
    assert_eq!(next_binary(&mut ws).await, b"hello from the pod");
    ws.send(WsMessage::binary(b"ping".to_vec())).await.unwrap();
    // The client's half-close reaches the pod as EOF after the bytes.
    ws.send(WsMessage::binary(Vec::new())).await.unwrap();
    let mut got = Vec::new();
    conn.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"ping");
    // The pod still answers after that, then closes: an empty message.
    conn.write_all(b"pong").await.unwrap();
    drop(conn);
    assert_eq!(next_binary(&mut ws).await, b"pong");
    assert_eq!(next_binary(&mut ws).await, b"");
}

#[tokio::test]
async fn a_refused_port_a_missing_pod_and_a_bad_port_are_http_errors() {
    let client = serve().await;
    // A port just freed: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let status = |r: Result<_, ClientError>| match r {
        Err(ClientError::Api(s)) => (s.code, s.message),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("upgraded"),
    };
    let (code, msg) = status(
        client
            .websocket(
                &format!("/pods/default/p/portforward?port={port}"),
                &[PROTOCOL],
            )
            .await,
    );
    assert_eq!(code, 502, "{msg}");
    assert!(
        msg.contains(&format!("localhost:{port}")) && msg.to_lowercase().contains("refused"),
        "{msg}"
    );
    let (code, msg) = status(
        client
            .websocket("/pods/default/nope/portforward?port=80", &[PROTOCOL])
            .await,
    );
    assert_eq!(code, 404, "{msg}");
    assert!(msg.contains("default/nope"), "{msg}");
    let (code, msg) = status(
        client
            .websocket("/pods/default/p/portforward?port=0", &[PROTOCOL])
            .await,
    );
    assert_eq!(code, 400, "{msg}");
    assert!(msg.contains("port"), "{msg}");
}
