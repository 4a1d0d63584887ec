use futures_util::{SinkExt, StreamExt};
use keel_api::client::{Client, WsMessage};

use super::*;
use crate::runtime::{
    api::serve_pod_p,
    backend::{Observed, fake::FakeRuntime},
};

#[test]
fn client_messages_are_read_by_channel() {
    assert_eq!(incoming(b"\x00hi"), In::Stdin(b"hi".to_vec()));
    assert_eq!(
        incoming(b"\x04{\"Width\":80,\"Height\":24}"),
        In::Resize(proto::TermSize {
            width: 80,
            height: 24
        })
    );
    assert_eq!(incoming(b"\x04{\"Width\":-1}"), In::Other);
    assert_eq!(incoming(b"\xff\x00"), In::CloseStdin);
    // Closing another stream, or an empty message, means nothing.
    assert_eq!(incoming(b"\xff\x01"), In::Other);
    assert_eq!(incoming(b""), In::Other);
}

/// The agent's router on loopback with the fake runtime (which echoes
/// stdin and resizes) and one running container `c` of pod default/p.
async fn serve(exec_code: i32) -> Client {
    let rt = FakeRuntime::new();
    {
        let mut s = rt.state.lock().unwrap();
        s.containers.push(Observed {
            id: "p-c".into(),
            name: "c".into(),
            kind_init: false,
            attempt: 0,
            image_id: String::new(),
            pid: 1,
            started_at_ms: 0,
            exit: None,
            log: Default::default(),
        });
        s.exec_codes.insert("c".into(), exec_code);
    }
    serve_pod_p(rt).await
}

#[tokio::test]
async fn stdin_and_resizes_reach_the_process_and_the_exit_code_comes_last() {
    let client = serve(3).await;
    let (mut ws, proto_chosen) = client
        .websocket(
            "/pods/default/p/exec?command=cat&stdin=true&stdout=true&tty=true",
            &proto::PROTOCOLS,
        )
        .await
        .unwrap();
    assert_eq!(proto_chosen, proto::V5);
    ws.send(WsMessage::binary(proto::frame(proto::STDIN, b"hi\n")))
        .await
        .unwrap();
    ws.send(WsMessage::binary(proto::resize(proto::TermSize {
        width: 80,
        height: 24,
    })))
    .await
    .unwrap();
    ws.send(WsMessage::binary(vec![proto::CLOSE, proto::STDIN]))
        .await
        .unwrap();
    let mut out = String::new();
    let mut status = None;
    let mut closed_normally = false;
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
        match m.unwrap() {
            WsMessage::Binary(b) => match b[0] {
                proto::STDOUT => out.push_str(&String::from_utf8_lossy(&b[1..])),
                proto::ERROR => status = Some(proto::exit_code(&b[1..])),
                c => panic!("channel {c}"),
            },
            WsMessage::Close(Some(f)) => {
                closed_normally = u16::from(f.code) == 1000;
                break;
            }
            _ => {}
        }
    }
    // Stdin and resizes are separate streams (as in Kubernetes): both
    // arrive, in either order.
    assert_eq!(out.len(), "hi\nresize 80x24\n".len(), "{out:?}");
    assert!(
        out.contains("hi\n") && out.contains("resize 80x24\n"),
        "{out:?}"
    );
    assert_eq!(status, Some(Ok(3)));
    assert!(closed_normally);
}

#[tokio::test]
async fn bad_requests_are_refused_before_anything_runs() {
    let client = serve(0).await;
    let e = client
        .websocket("/pods/default/p/exec?stdout=true", &proto::PROTOCOLS)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(400), "{e}");
    assert!(e.to_string().contains("command"), "{e}");
    let e = client
        .websocket(
            "/pods/default/nope/exec?command=sh&stdout=true",
            &proto::PROTOCOLS,
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(404), "{e}");
}
