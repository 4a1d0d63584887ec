//! What the agent reads from a CNI plugin it ran: stdout (a result or an
//! error object), read by `pods::cni::parse_output` for both a success and
//! a failure, and the pod's address taken from the result by `pod_ip`.
#![no_main]

use keel_agent::pods::cni::{parse_output, pod_ip};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // stdout, then (after the first NUL, if any) stderr.
    let (stdout, stderr) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    if let Ok(Some(result)) = parse_output("keel-cni".into(), "ADD", None, stdout, stderr) {
        let _ = pod_ip(&result);
    }
    let failed = parse_output(
        "keel-cni".into(),
        "ADD",
        Some("exit status: 1".into()),
        stdout,
        stderr,
    );
    assert!(failed.is_err(), "a failed plugin run is an error");
    let _ = failed.map_err(|e| e.to_string());
});
