//! The keel-cni binary: reads `CNI_*` and the network config on stdin,
//! prints the result or the CNI error object on stdout (and the error on
//! stderr for the runtime's log), and exits 0 or 1.

use std::io::{Read, Write};

fn main() {
    let mut stdin = Vec::new();
    let outcome = match std::io::stdin().read_to_end(&mut stdin) {
        Ok(_) => keel_cni::run(|k| std::env::var(k).ok(), &stdin),
        Err(e) => {
            let err = keel_cni::types::CniError::new(
                keel_cni::types::code::IO,
                format!("reading stdin: {e}"),
            );
            keel_cni::Outcome {
                stdout: Some(err.to_json(keel_cni::types::CniVersion::LATEST.as_str())),
                exit_code: 1,
            }
        }
    };
    if let Some(out) = &outcome.stdout {
        let mut stdout = std::io::stdout().lock();
        let _ = serde_json::to_writer(&mut stdout, out);
        let _ = stdout.write_all(b"\n");
        let _ = stdout.flush();
        if outcome.exit_code != 0 {
            eprintln!(
                "keel-cni: {}",
                out.get("msg").and_then(|m| m.as_str()).unwrap_or("error")
            );
        }
    }
    std::process::exit(outcome.exit_code);
}
