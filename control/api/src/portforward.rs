//! Port-forward between keel-control and the agent (what keel-control
//! turns each of `kubectl port-forward`'s data streams into):
//! `GET /pods/{namespace}/{name}/portforward?port=P` on the agent, upgraded
//! to a WebSocket with subprotocol [`PROTOCOL`] once the agent has
//! connected to `localhost:P` inside the pod's network namespace (a
//! failure to connect is the HTTP answer, before any upgrade). Then binary
//! messages carry the TCP bytes both ways; an empty binary message ends
//! its sender's direction (a half-close: the agent shuts down writing to
//! the pod, keel-control sends FIN on the data stream); either side
//! closing the socket ends the connection.

/// The WebSocket subprotocol of the agent's port-forward.
pub const PROTOCOL: &str = "portforward.keel.v1";

/// The port of the agent's query (`port=P`, 1-65535), or what is wrong.
pub fn port(query: &str) -> Result<u16, String> {
    let mut found = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == "port" {
            if found.is_some() {
                return Err("port: given more than once".into());
            }
            found = Some(v);
        }
    }
    let v = found.ok_or("port: missing (port=1-65535)")?;
    v.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("port: {v:?} is not a port 1-65535"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_is_read_and_checked() {
        assert_eq!(port("port=8080"), Ok(8080));
        assert_eq!(port("x=1&port=1"), Ok(1));
        for bad in [
            "",
            "port=",
            "port=0",
            "port=65536",
            "port=80a",
            "port=1&port=2",
        ] {
            let e = port(bad).unwrap_err();
            assert!(e.starts_with("port:"), "{bad}: {e}");
        }
    }
}
