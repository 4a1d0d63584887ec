//! The `CNI_*` environment a runtime passes, validated per command with
//! errors that name the variable (CNI spec 1.1, "Parameters").

use std::{net::Ipv4Addr, path::PathBuf};

use super::code;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Gc,
    Status,
    Version,
}

impl Command {
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Gc => "GC",
            Command::Status => "STATUS",
            Command::Version => "VERSION",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    #[error("{var}: required for {command} but not set")]
    Missing {
        var: &'static str,
        command: &'static str,
    },
    #[error("{var}: {value:?} is invalid: {reason}")]
    Invalid {
        var: &'static str,
        value: String,
        reason: String,
    },
}

impl EnvError {
    pub fn code(&self) -> u32 {
        code::INVALID_ENV
    }
}

/// Known CNI_ARGS keys. `IP` asks the built-in IPAM for one address (as
/// host-local does); the Kubernetes keys are accepted and ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniArgs {
    pub ip: Option<Ipv4Addr>,
}

impl CniArgs {
    /// Parses `K=V;K=V`. Unknown keys are an error unless
    /// `IgnoreUnknown=1|true` is among them.
    pub fn parse(s: &str) -> Result<Self, EnvError> {
        let invalid = |reason: String| EnvError::Invalid {
            var: "CNI_ARGS",
            value: s.to_string(),
            reason,
        };
        let mut args = CniArgs::default();
        let mut pairs = Vec::new();
        for part in s.split(';').filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| invalid(format!("{part:?} is not KEY=VALUE")))?;
            pairs.push((k, v));
        }
        let ignore_unknown = pairs
            .iter()
            .any(|(k, v)| *k == "IgnoreUnknown" && matches!(*v, "1" | "true" | "True"));
        for (k, v) in pairs {
            match k {
                "IgnoreUnknown" => {}
                "IP" => {
                    args.ip = Some(
                        v.parse()
                            .map_err(|_| invalid(format!("IP={v:?} is not an IPv4 address")))?,
                    );
                }
                "K8S_POD_NAMESPACE"
                | "K8S_POD_NAME"
                | "K8S_POD_INFRA_CONTAINER_ID"
                | "K8S_POD_UID" => {}
                _ if ignore_unknown => {}
                _ => {
                    return Err(invalid(format!(
                        "unknown key {k:?} (add IgnoreUnknown=1 to ignore it)"
                    )));
                }
            }
        }
        Ok(args)
    }
}

/// The validated environment of one invocation.
#[derive(Debug, Clone)]
pub struct CniEnv {
    pub command: Command,
    pub container_id: String,
    pub netns: Option<PathBuf>,
    pub ifname: String,
    pub args: CniArgs,
    pub path: Vec<PathBuf>,
}

impl CniEnv {
    /// Reads the environment through `get` (the process environment in
    /// the binary, a map in tests).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        let get = |k: &str| get(k).filter(|v| !v.is_empty());
        let command = match get("CNI_COMMAND") {
            None => {
                return Err(EnvError::Missing {
                    var: "CNI_COMMAND",
                    command: "any command",
                });
            }
            Some(c) => match c.as_str() {
                "ADD" => Command::Add,
                "DEL" => Command::Del,
                "CHECK" => Command::Check,
                "GC" => Command::Gc,
                "STATUS" => Command::Status,
                "VERSION" => Command::Version,
                _ => {
                    return Err(EnvError::Invalid {
                        var: "CNI_COMMAND",
                        value: c,
                        reason: "must be one of ADD, DEL, CHECK, GC, STATUS, VERSION".into(),
                    });
                }
            },
        };
        let cmd = command.as_str();
        let attach = matches!(command, Command::Add | Command::Del | Command::Check);
        let mut env = CniEnv {
            command,
            container_id: String::new(),
            netns: None,
            ifname: String::new(),
            args: CniArgs::default(),
            path: Vec::new(),
        };
        if command == Command::Version {
            return Ok(env);
        }
        if attach {
            let id = get("CNI_CONTAINERID").ok_or(EnvError::Missing {
                var: "CNI_CONTAINERID",
                command: cmd,
            })?;
            validate_container_id(&id)?;
            env.container_id = id;
            let ifname = get("CNI_IFNAME").ok_or(EnvError::Missing {
                var: "CNI_IFNAME",
                command: cmd,
            })?;
            validate_ifname(&ifname)?;
            env.ifname = ifname;
            // DEL must work when the namespace is already gone, so the
            // runtime may leave CNI_NETNS empty then.
            match get("CNI_NETNS") {
                Some(ns) if ns.len() > MAX_NETNS || ns.contains('\0') => {
                    return Err(EnvError::Invalid {
                        var: "CNI_NETNS",
                        value: format!("{}…", ns.chars().take(32).collect::<String>()),
                        reason: format!(
                            "{} bytes is not a path: at most {MAX_NETNS}, without NUL",
                            ns.len()
                        ),
                    });
                }
                Some(ns) if !ns.starts_with('/') => {
                    return Err(EnvError::Invalid {
                        var: "CNI_NETNS",
                        value: ns,
                        reason: "must be an absolute path".into(),
                    });
                }
                Some(ns) => env.netns = Some(PathBuf::from(ns)),
                None if command != Command::Del => {
                    return Err(EnvError::Missing {
                        var: "CNI_NETNS",
                        command: cmd,
                    });
                }
                None => {}
            }
            if let Some(args) = get("CNI_ARGS") {
                env.args = CniArgs::parse(&args)?;
            }
        }
        let path = get("CNI_PATH").ok_or(EnvError::Missing {
            var: "CNI_PATH",
            command: cmd,
        })?;
        env.path = path
            .split(':')
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .collect();
        Ok(env)
    }

    /// The process environment.
    pub fn from_process() -> Result<Self, EnvError> {
        Self::from_vars(|k| std::env::var(k).ok())
    }
}

/// Longest container ID: runtimes use 64 hex digits; the host veth's alias
/// must hold it with the network name and ifname in 255 bytes.
pub const MAX_CONTAINER_ID: usize = 128;
/// Longest `CNI_NETNS` (PATH_MAX less its NUL).
pub const MAX_NETNS: usize = 4095;

/// At most `max` bytes of `s`, cut at a character boundary (the value is
/// anything the runtime passed, not only ASCII).
fn prefix(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// CNI spec: starts with an alphanumeric, then alphanumerics, `_`, `.`, `-`;
/// at most [`MAX_CONTAINER_ID`] bytes.
pub fn validate_container_id(id: &str) -> Result<(), EnvError> {
    if id.len() > MAX_CONTAINER_ID {
        return Err(EnvError::Invalid {
            var: "CNI_CONTAINERID",
            value: format!("{}…", prefix(id, 32)),
            reason: format!(
                "{} characters is too long: at most {MAX_CONTAINER_ID}",
                id.len()
            ),
        });
    }
    if is_spec_name(id) {
        Ok(())
    } else {
        Err(EnvError::Invalid {
            var: "CNI_CONTAINERID",
            value: id.to_string(),
            reason: "must start with a letter or digit and contain only letters, digits, '_', '.' and '-'".into(),
        })
    }
}

/// CNI spec: 1-15 bytes, not `.` or `..`, no `/`, `:` or whitespace.
pub fn validate_ifname(name: &str) -> Result<(), EnvError> {
    let invalid = |reason: &str| {
        Err(EnvError::Invalid {
            var: "CNI_IFNAME",
            value: name.to_string(),
            reason: reason.to_string(),
        })
    };
    if name.len() > 15 {
        return invalid("longer than 15 characters (IFNAMSIZ)");
    }
    if name == "." || name == ".." {
        return invalid("must not be . or ..");
    }
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        return invalid("must not contain '/', ':' or whitespace");
    }
    Ok(())
}

/// The spec's pattern for container IDs and network names.
pub(crate) fn is_spec_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests;
