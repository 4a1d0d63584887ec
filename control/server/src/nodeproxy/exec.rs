//! `pods/NAME/exec` as Kubernetes streams it to kubectl: a WebSocket with
//! the `v5.channel.k8s.io` (or `v4.channel.k8s.io`) subprotocol, each
//! binary message one channel byte then data: 0 stdin, 1 stdout, 2 stderr,
//! 3 the final `Status` (a non-zero exit as reason `NonZeroExitCode` with a
//! `details.causes` `ExitCode`), 4 terminal resize, 255 close (v5).
//!
//! keel-control runs the command through the agent's exec route (the whole
//! output, then the exit code) and sends it on these channels: commands
//! without stdin or a terminal. Interactive exec (`-i`, `-t`) is refused
//! with a message saying so.

/// The subprotocols keel-control speaks, preferred first.
pub const PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;

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
                keel_api::validate::dns1123_label(&v)
                    .map_err(|e| format!("container {v:?}: {e}"))?;
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
    Ok(p)
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
    }

    #[test]
    fn the_status_carries_the_exit_code_as_kubectl_reads_it() {
        assert_eq!(status(0)["status"], "Success");
        let s = status(7);
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(s["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(s["details"]["causes"][0]["message"], "7");
        assert_eq!(frame(STDOUT, b"hi"), b"\x01hi");
    }
}
