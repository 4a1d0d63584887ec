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

/// CNI spec: starts with an alphanumeric, then alphanumerics, `_`, `.`, `-`.
pub fn validate_container_id(id: &str) -> Result<(), EnvError> {
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
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Result<CniEnv, EnvError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        CniEnv::from_vars(|k| map.get(k).cloned())
    }

    const ADD: &[(&str, &str)] = &[
        ("CNI_COMMAND", "ADD"),
        ("CNI_CONTAINERID", "abc123"),
        ("CNI_NETNS", "/run/netns/x"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/opt/cni/bin:/usr/lib/cni"),
    ];

    fn without(var: &str) -> Vec<(&'static str, &'static str)> {
        ADD.iter().copied().filter(|(k, _)| *k != var).collect()
    }

    fn with(var: &'static str, value: &'static str) -> Vec<(&'static str, &'static str)> {
        let mut v = without(var);
        v.push((var, value));
        v
    }

    #[test]
    fn add_env_parses() {
        let e = env(ADD).unwrap();
        assert_eq!(e.command, Command::Add);
        assert_eq!(
            e.path,
            vec![PathBuf::from("/opt/cni/bin"), PathBuf::from("/usr/lib/cni")]
        );
        assert_eq!(e.netns, Some(PathBuf::from("/run/netns/x")));
    }

    #[test]
    fn missing_and_invalid_variables_are_named() {
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (without("CNI_NETNS"), "CNI_NETNS"),
            (without("CNI_CONTAINERID"), "CNI_CONTAINERID"),
            (without("CNI_IFNAME"), "CNI_IFNAME"),
            (without("CNI_PATH"), "CNI_PATH"),
            (without("CNI_COMMAND"), "CNI_COMMAND"),
            (with("CNI_COMMAND", "ATTACH"), "CNI_COMMAND"),
            (with("CNI_IFNAME", "averyveryverylongname"), "CNI_IFNAME"),
            (with("CNI_IFNAME", "eth/0"), "CNI_IFNAME"),
            (with("CNI_IFNAME", ".."), "CNI_IFNAME"),
            (with("CNI_CONTAINERID", "-bad"), "CNI_CONTAINERID"),
            (with("CNI_NETNS", "relative/ns"), "CNI_NETNS"),
            (with("CNI_ARGS", "FOO=bar"), "CNI_ARGS"),
            (with("CNI_ARGS", "IP=notanip"), "CNI_ARGS"),
        ];
        for (vars, named) in cases {
            let err = env(&vars).expect_err(named);
            assert!(
                err.to_string().starts_with(named),
                "{err} should name {named}"
            );
            assert_eq!(err.code(), 4);
        }
    }

    #[test]
    fn del_without_netns_is_fine() {
        let mut vars = without("CNI_NETNS");
        vars.retain(|(k, _)| *k != "CNI_COMMAND");
        vars.push(("CNI_COMMAND", "DEL"));
        assert_eq!(env(&vars).unwrap().netns, None);
    }

    #[test]
    fn version_needs_nothing_else() {
        assert_eq!(
            env(&[("CNI_COMMAND", "VERSION")]).unwrap().command,
            Command::Version
        );
    }

    #[test]
    fn cni_args() {
        assert_eq!(CniArgs::parse("").unwrap(), CniArgs::default());
        assert_eq!(
            CniArgs::parse("IP=10.1.0.9").unwrap().ip,
            Some("10.1.0.9".parse().unwrap())
        );
        assert!(CniArgs::parse("IgnoreUnknown=1;FOO=bar;K8S_POD_NAME=x").is_ok());
        assert!(CniArgs::parse("K8S_POD_NAME=x;K8S_POD_NAMESPACE=y").is_ok());
        assert!(CniArgs::parse("FOO").is_err());
    }
}
