//! Kubernetes' exec stream protocol, as kubectl speaks it to the apiserver
//! and keel-control to the agent: a WebSocket with the
//! `v5.channel.k8s.io` (or `v4.channel.k8s.io`) subprotocol, each binary
//! message one channel byte then data: 0 stdin, 1 stdout, 2 stderr, 3 the
//! final `Status` (a non-zero exit as reason `NonZeroExitCode` with a
//! `details.causes` `ExitCode`), 4 terminal resize (`{"Width":W,"Height":H}`),
//! 255 close (v5: `[255, 0]` closes stdin).
//!
//! Pure: parsing and building the query (`PodExecOptions`), frames, resize
//! messages and the final status. Shared by keel-control, the agent and
//! keelctl.

/// The subprotocols keel speaks, preferred first.
pub const PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];
/// The protocol in which a client may close its stdin (channel 255).
pub const V5: &str = "v5.channel.k8s.io";

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;
pub const CLOSE: u8 = 255;

/// Kubernetes' `PodExecOptions` from the query (`command` repeated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecParams {
    pub command: Vec<String>,
    pub container: Option<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

fn decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("{s:?}: bad percent-encoding"))?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| format!("{s:?}: not UTF-8"))
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn boolean(name: &str, v: &str) -> Result<bool, String> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" | "" => Ok(false),
        _ => Err(format!("{name}: {v:?} is not true or false")),
    }
}

/// Parses the raw query. Pure.
pub fn parse(query: &str) -> Result<ExecParams, String> {
    let mut p = ExecParams::default();
    for pair in query.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = decode(v)?;
        match k {
            "command" => p.command.push(v),
            "container" => {
                crate::validate::dns1123_label(&v).map_err(|e| format!("container {v:?}: {e}"))?;
                p.container = Some(v);
            }
            "stdin" => p.stdin = boolean(k, &v)?,
            "stdout" => p.stdout = boolean(k, &v)?,
            "stderr" => p.stderr = boolean(k, &v)?,
            "tty" => p.tty = boolean(k, &v)?,
            // kubectl's `timeout` and others: ignored, as the apiserver does.
            _ => {}
        }
    }
    if p.command.is_empty() {
        return Err("command: at least one is required".into());
    }
    if !(p.stdin || p.stdout || p.stderr) {
        return Err("you must specify at least one of stdin, stdout, stderr".into());
    }
    if p.tty && p.stderr {
        // With a terminal, stderr is the terminal too (kubelet refuses it
        // the same way).
        return Err("stderr: must be false with tty (a terminal merges stdout and stderr)".into());
    }
    Ok(p)
}

impl ExecParams {
    /// The query that [`parse`] reads back. Pure.
    pub fn to_query(&self) -> String {
        let mut q: Vec<String> = self
            .command
            .iter()
            .map(|c| format!("command={}", encode(c)))
            .collect();
        if let Some(c) = &self.container {
            q.push(format!("container={}", encode(c)));
        }
        for (k, v) in [
            ("stdin", self.stdin),
            ("stdout", self.stdout),
            ("stderr", self.stderr),
            ("tty", self.tty),
        ] {
            q.push(format!("{k}={v}"));
        }
        q.join("&")
    }
}

/// A terminal's size in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TermSize {
    pub width: u16,
    pub height: u16,
}

/// Reads a channel-4 message (`{"Width":80,"Height":24}`). Pure.
pub fn parse_resize(data: &[u8]) -> Result<TermSize, String> {
    let v: serde_json::Value =
        serde_json::from_slice(data).map_err(|e| format!("resize: not JSON: {e}"))?;
    let dim = |k: &str| -> Result<u16, String> {
        let n = v
            .get(k)
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| format!("resize: {k}: a number is required"))?;
        u16::try_from(n).map_err(|_| format!("resize: {k}: {n} is out of range 0-65535"))
    };
    Ok(TermSize {
        width: dim("Width")?,
        height: dim("Height")?,
    })
}

/// A channel-4 message. Pure.
pub fn resize(size: TermSize) -> Vec<u8> {
    frame(
        RESIZE,
        format!(r#"{{"Width":{},"Height":{}}}"#, size.width, size.height).as_bytes(),
    )
}

/// The channel-3 message ending an exec. Pure.
pub fn status(exit_code: i32) -> serde_json::Value {
    if exit_code == 0 {
        return serde_json::json!({"metadata": {}, "status": "Success"});
    }
    serde_json::json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("command terminated with non-zero exit code: error executing command, exit status {exit_code}"),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": exit_code.to_string()}]},
    })
}

/// The channel-3 message for an exec that could not run. Pure.
pub fn failure(message: &str) -> serde_json::Value {
    serde_json::json!({
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "InternalError",
    })
}

/// What a channel-3 message says: `Ok(code)` for an exit (0 on success),
/// `Err(message)` for an exec that failed to run. Pure.
pub fn exit_code(status: &[u8]) -> Result<i32, String> {
    let v: serde_json::Value =
        serde_json::from_slice(status).map_err(|e| format!("exec status: not JSON: {e}"))?;
    if v["status"] == "Success" {
        return Ok(0);
    }
    if v["reason"] == "NonZeroExitCode" {
        let code = v["details"]["causes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["reason"] == "ExitCode")
            .and_then(|c| c["message"].as_str()?.parse().ok());
        if let Some(code) = code {
            return Ok(code);
        }
    }
    Err(v["message"]
        .as_str()
        .unwrap_or("exec failed without a message")
        .to_string())
}

/// One message: the channel byte, then `data`.
pub fn frame(channel: u8, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(data.len() + 1);
    v.push(channel);
    v.extend_from_slice(data);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_s_exec_query_parses() {
        let p = parse(
            "command=sh&command=-c&command=echo+hi%3B+exit+7&container=web&stdout=true&stderr=true",
        )
        .unwrap();
        assert_eq!(p.command, ["sh", "-c", "echo hi; exit 7"]);
        assert_eq!(p.container.as_deref(), Some("web"));
        assert!(p.stdout && p.stderr && !p.stdin && !p.tty);
        assert!(parse("stdout=true").unwrap_err().contains("command"));
        assert!(
            parse("command=ls")
                .unwrap_err()
                .contains("stdin, stdout, stderr")
        );
        assert!(
            parse("command=ls&stdout=maybe")
                .unwrap_err()
                .contains("stdout")
        );
        assert_eq!(
            parse("command=ls&stdout=1&timeout=20s").unwrap().command,
            ["ls"]
        );
        assert!(
            parse("command=%zz&stdout=1")
                .unwrap_err()
                .contains("percent")
        );
        let it = parse("command=sh&stdin=true&stdout=true&tty=true").unwrap();
        assert!(it.stdin && it.tty && !it.stderr);
        assert!(
            parse("command=sh&stdout=true&stderr=true&tty=true")
                .unwrap_err()
                .starts_with("stderr")
        );
    }

    #[test]
    fn the_query_reads_back() {
        let p = ExecParams {
            command: vec![
                "sh".into(),
                "-c".into(),
                "read x; echo \"$x\" & 100%".into(),
            ],
            container: Some("web".into()),
            stdin: true,
            stdout: true,
            stderr: false,
            tty: true,
        };
        assert_eq!(parse(&p.to_query()).unwrap(), p);
    }

    #[test]
    fn resize_messages_parse_and_are_checked() {
        let m = resize(TermSize {
            width: 100,
            height: 30,
        });
        assert_eq!(m[0], RESIZE);
        assert_eq!(
            parse_resize(&m[1..]).unwrap(),
            TermSize {
                width: 100,
                height: 30
            }
        );
        assert!(
            parse_resize(b"{\"Width\":1}")
                .unwrap_err()
                .contains("Height")
        );
        assert!(
            parse_resize(b"{\"Width\":70000,\"Height\":1}")
                .unwrap_err()
                .contains("Width: 70000")
        );
        assert!(parse_resize(b"80x24").unwrap_err().contains("not JSON"));
    }

    #[test]
    fn the_status_carries_the_exit_code_as_kubectl_reads_it() {
        assert_eq!(status(0)["status"], "Success");
        let s = status(7);
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(s["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(s["details"]["causes"][0]["message"], "7");
        assert_eq!(frame(STDOUT, b"hi"), b"\x01hi");
        let bytes = |v: serde_json::Value| serde_json::to_vec(&v).unwrap();
        assert_eq!(exit_code(&bytes(status(0))), Ok(0));
        assert_eq!(exit_code(&bytes(status(3))), Ok(3));
        assert_eq!(
            exit_code(&bytes(failure("no such container"))),
            Err("no such container".to_string())
        );
    }
}
