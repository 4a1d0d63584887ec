//! keel-cni: a CNI 1.1 plugin that attaches pods with a point-to-point
//! veth and a crash-safe on-disk IPAM.
//!
//! One file per command (`add`, `del`, `check`, `gc`, `status`,
//! `version`), the protocol's data in `types`, address management in
//! `ipam`; kernel access (rtnetlink, namespaces) is keel-sys's. [`run`] is the whole
//! plugin behind a function: environment and stdin in, stdout and exit
//! code out.

pub mod add;
pub mod attach;
pub mod check;
pub mod del;
pub mod error;
pub mod gc;
pub mod ipam;
pub mod status;
pub mod types;
pub mod version;

use serde_json::Value;

pub use error::Error;
use types::{CniEnv, CniVersion, Command, NetConf, config::ConfigError};

/// What the plugin prints and how it exits.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub stdout: Option<Value>,
    pub exit_code: i32,
}

/// Runs one plugin invocation: `vars` reads the `CNI_*` environment and
/// `stdin` is the network configuration.
pub fn run(vars: impl Fn(&str) -> Option<String>, stdin: &[u8]) -> Outcome {
    match dispatch(vars, stdin) {
        Ok(stdout) => Outcome {
            stdout,
            exit_code: 0,
        },
        Err(e) => {
            let version = error_version(stdin);
            Outcome {
                stdout: Some(e.to_cni().to_json(&version)),
                exit_code: 1,
            }
        }
    }
}

/// The `cniVersion` an error object carries: the config's when it has a
/// string one (even an unsupported one), else the newest.
fn error_version(stdin: &[u8]) -> String {
    serde_json::from_slice::<Value>(stdin)
        .ok()
        .and_then(|v| v.get("cniVersion")?.as_str().map(str::to_string))
        .unwrap_or_else(|| CniVersion::LATEST.as_str().to_string())
}

fn dispatch(vars: impl Fn(&str) -> Option<String>, stdin: &[u8]) -> Result<Option<Value>, Error> {
    let env = CniEnv::from_vars(vars)?;
    if env.command == Command::Version {
        return Ok(Some(version::version_info()));
    }
    let conf = match NetConf::parse(stdin) {
        // STATUS before the agent has written a subnet: not available yet,
        // rather than an invalid config.
        Err(ConfigError::Missing { field: "subnet" }) if env.command == Command::Status => {
            return Err(Error::NotAvailable("subnet: not configured yet".into()));
        }
        other => other?,
    };
    let too_old = |command, since| Error::VersionTooOld {
        version: conf.cni_version.to_string(),
        command,
        since,
    };
    match env.command {
        Command::Add => Ok(Some(add::add(&env, &conf)?.to_json(conf.cni_version))),
        Command::Del => del::del(&env, &conf).map(|()| None),
        Command::Check if !conf.cni_version.allows_check() => Err(too_old("CHECK", "0.4.0")),
        Command::Check => check::check(&env, &conf).map(|()| None),
        Command::Gc if !conf.cni_version.allows_gc_and_status() => Err(too_old("GC", "1.1.0")),
        Command::Gc => gc::gc(&env, &conf).map(|()| None),
        Command::Status if !conf.cni_version.allows_gc_and_status() => {
            Err(too_old("STATUS", "1.1.0"))
        }
        Command::Status => status::status(&env, &conf).map(|()| None),
        Command::Version => unreachable!("handled above"),
    }
}

#[cfg(test)]
mod tests;
