//! A container's environment as the kubelet makes it
//! (`makeEnvironmentVariables`), pure:
//!
//! 1. `envFrom`, in order: every key of the ConfigMap's `data` or the
//!    Secret's `data`, with the prefix; a key that is not a valid variable
//!    name is skipped and named in a warning (the kubelet's
//!    `InvalidEnvironmentVariableNames` event).
//! 2. `env`, in order, replacing what envFrom set: `value` with `$(VAR)`
//!    expanded against the variables so far, then the Service variables
//!    (`$$` is a literal `$`; an unknown reference stays as written);
//!    `valueFrom` from a ConfigMap or Secret key, the pod's fields, or the
//!    container's resources.
//! 3. The Service variables not already set: for each Service of the pod's
//!    namespace when `enableServiceLinks` is not false, and for the
//!    `default/kubernetes` Service always, `NAME_SERVICE_HOST`,
//!    `NAME_SERVICE_PORT[_PORTNAME]` and the Docker-link variables
//!    (`NAME_PORT`, `NAME_PORT_80_TCP[_PROTO|_PORT|_ADDR]`).
//!
//! A missing ConfigMap, Secret or key that is not `optional` is a
//! [`ConfigError`] naming it (the container waits with
//! `CreateContainerConfigError`); so is one the agent has not fetched yet.

use std::{collections::BTreeMap, sync::Arc};

use keel_api::{
    ConfigMap, Pod, Secret, Service,
    pod::{Container, EnvVarSource, ResourceFieldSelector},
};

use super::ConfigError;

/// What the agent knows of a referenced object.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetched<T> {
    Found(T),
    /// keel-control says there is no such object.
    Missing,
    /// Not heard from keel-control yet.
    Pending,
}

/// Where the referenced objects come from (the agent's referenced-object
/// store; a map in tests).
pub trait Sources: Send + Sync {
    fn config_map(&self, namespace: &str, name: &str) -> Fetched<Arc<ConfigMap>>;
    fn secret(&self, namespace: &str, name: &str) -> Fetched<Arc<Secret>>;
    /// The Services of a namespace.
    fn services(&self, namespace: &str) -> Vec<Arc<Service>>;
}

/// No objects at all (every reference is missing): for callers without a
/// connection to keel-control.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoSources;

impl Sources for NoSources {
    fn config_map(&self, _: &str, _: &str) -> Fetched<Arc<ConfigMap>> {
        Fetched::Missing
    }
    fn secret(&self, _: &str, _: &str) -> Fetched<Arc<Secret>> {
        Fetched::Missing
    }
    fn services(&self, _: &str) -> Vec<Arc<Service>> {
        Vec::new()
    }
}

/// The node facts `fieldRef` and `resourceFieldRef` read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeFacts {
    /// `status.hostIP` when the pod has none yet.
    pub host_ip: String,
    /// Allocatable CPU in millicores and memory in bytes: what a limit that
    /// is not set reads as.
    pub cpu_milli: u64,
    pub memory: u64,
}

impl NodeFacts {
    /// This machine's CPUs and memory (no host IP: the pod's own is used).
    pub fn this_node() -> Self {
        Self {
            host_ip: String::new(),
            cpu_milli: std::thread::available_parallelism().map_or(1, |n| n.get() as u64) * 1000,
            memory: super::resolve::total_memory(),
        }
    }
}

/// The resolved environment, in the kubelet's order, and the warnings
/// (skipped envFrom keys) to report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    pub vars: Vec<(String, String)>,
    pub warnings: Vec<String>,
}

/// Resolves container `c` (at `field`, e.g. `spec.containers[0]`) of `pod`.
pub fn resolve(
    pod: &Pod,
    c: &Container,
    field: &str,
    sources: &dyn Sources,
    node: &NodeFacts,
) -> Result<Env, ConfigError> {
    let ns = pod.metadata.namespace.as_str();
    let service_env = service_env(pod, sources);
    let mut out = Env::default();
    // Names in the order first set, with the latest value.
    let mut order: Vec<String> = Vec::new();
    let mut vals: BTreeMap<String, String> = BTreeMap::new();
    let mut set = |k: String, v: String, vals: &mut BTreeMap<String, String>| {
        if vals.insert(k.clone(), v).is_none() {
            order.push(k);
        }
    };
    for (i, from) in c.env_from.iter().enumerate() {
        let at = format!("{field}.envFrom[{i}]");
        let (kind, name, data): (&str, &str, Option<BTreeMap<String, String>>) =
            if let Some(r) = &from.config_map_ref {
                let opt = r.optional == Some(true);
                let at = format!("{at}.configMapRef");
                let cm = fetched(
                    sources.config_map(ns, &r.name),
                    "configmap",
                    ns,
                    &r.name,
                    opt,
                    &at,
                )?;
                ("configMap", &r.name, cm.map(|cm| cm.data.clone()))
            } else if let Some(r) = &from.secret_ref {
                let opt = r.optional == Some(true);
                let at = format!("{at}.secretRef");
                let s = fetched(sources.secret(ns, &r.name), "secret", ns, &r.name, opt, &at)?;
                let data = s.map(|s| {
                    s.entries()
                        .into_iter()
                        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
                        .collect()
                });
                ("secret", &r.name, data)
            } else {
                continue;
            };
        let Some(data) = data else { continue };
        let mut invalid = Vec::new();
        for (k, v) in data {
            let k = format!("{}{k}", from.prefix);
            if keel_api::validate::env_var_name(&k).is_err() {
                invalid.push(k);
                continue;
            }
            set(k, v, &mut vals);
        }
        if !invalid.is_empty() {
            out.warnings.push(format!(
                "Keys [{}] from the EnvFrom {kind} {ns}/{name} were skipped since they are considered invalid environment variable names.",
                invalid.join(", ")
            ));
        }
    }
    for (j, e) in c.env.iter().enumerate() {
        let at = format!("{field}.env[{j}].valueFrom");
        let value = if !e.value.is_empty() {
            expand(&e.value, |name| {
                vals.get(name)
                    .or_else(|| service_env.iter().find(|(k, _)| k == name).map(|(_, v)| v))
                    .cloned()
            })
        } else if let Some(from) = &e.value_from {
            match value_from(pod, c, from, &at, sources, node)? {
                Some(v) => v,
                None => continue,
            }
        } else {
            String::new()
        };
        set(e.name.clone(), value, &mut vals);
    }
    for k in order {
        let v = vals.remove(&k).unwrap_or_default();
        out.vars.push((k, v));
    }
    for (k, v) in service_env {
        if !out.vars.iter().any(|(n, _)| *n == k) {
            out.vars.push((k, v));
        }
    }
    Ok(out)
}

/// The object, None when it is missing and optional, or the error.
fn fetched<T>(
    f: Fetched<T>,
    kind: &str,
    ns: &str,
    name: &str,
    optional: bool,
    at: &str,
) -> Result<Option<T>, ConfigError> {
    match f {
        Fetched::Found(o) => Ok(Some(o)),
        Fetched::Missing if optional => Ok(None),
        Fetched::Missing => Err(ConfigError::new(
            at,
            format!("{kind} \"{name}\" not found in namespace {ns}"),
        )),
        Fetched::Pending => Err(ConfigError::new(
            at,
            format!("{kind} {ns}/{name} is not fetched from keel-control yet"),
        )),
    }
}

/// One `valueFrom`; None when an optional source is missing (the variable
/// is then not set at all, as the kubelet does).
fn value_from(
    pod: &Pod,
    c: &Container,
    from: &EnvVarSource,
    at: &str,
    sources: &dyn Sources,
    node: &NodeFacts,
) -> Result<Option<String>, ConfigError> {
    let ns = pod.metadata.namespace.as_str();
    if let Some(f) = &from.field_ref {
        return field_value(pod, &f.field_path, node)
            .map(Some)
            .map_err(|m| ConfigError::new(format!("{at}.fieldRef.fieldPath"), m));
    }
    if let Some(r) = &from.resource_field_ref {
        return resource_value(pod, c, r, node)
            .map(Some)
            .map_err(|m| ConfigError::new(format!("{at}.resourceFieldRef"), m));
    }
    if let Some(r) = &from.config_map_key_ref {
        let opt = r.optional == Some(true);
        let at = format!("{at}.configMapKeyRef");
        let Some(cm) = fetched(
            sources.config_map(ns, &r.name),
            "configmap",
            ns,
            &r.name,
            opt,
            &at,
        )?
        else {
            return Ok(None);
        };
        return match cm.data.get(&r.key) {
            Some(v) => Ok(Some(v.clone())),
            None if opt => Ok(None),
            None => Err(ConfigError::new(
                at,
                format!("couldn't find key {} in ConfigMap {ns}/{}", r.key, r.name),
            )),
        };
    }
    if let Some(r) = &from.secret_key_ref {
        let opt = r.optional == Some(true);
        let at = format!("{at}.secretKeyRef");
        let Some(s) = fetched(sources.secret(ns, &r.name), "secret", ns, &r.name, opt, &at)? else {
            return Ok(None);
        };
        return match s.get(&r.key) {
            Some(v) => Ok(Some(String::from_utf8_lossy(&v).into_owned())),
            None if opt => Ok(None),
            None => Err(ConfigError::new(
                at,
                format!("couldn't find key {} in Secret {ns}/{}", r.key, r.name),
            )),
        };
    }
    Ok(Some(String::new()))
}

/// A downward-API field of the pod (`fieldRef.fieldPath`).
pub fn field_value(pod: &Pod, path: &str, node: &NodeFacts) -> Result<String, String> {
    let subscript = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|r| r.strip_suffix("']"))
            .map(str::to_string)
    };
    if let Some(k) = subscript("metadata.labels['") {
        return Ok(pod.metadata.labels.get(&k).cloned().unwrap_or_default());
    }
    if let Some(k) = subscript("metadata.annotations['") {
        return Ok(pod
            .metadata
            .annotations
            .get(&k)
            .cloned()
            .unwrap_or_default());
    }
    let host_ip = if pod.status.host_ip.is_empty() {
        node.host_ip.clone()
    } else {
        pod.status.host_ip.clone()
    };
    Ok(match path {
        "metadata.name" => pod.metadata.name.clone(),
        "metadata.namespace" => pod.metadata.namespace.clone(),
        "metadata.uid" => pod.metadata.uid.clone(),
        "spec.nodeName" => pod.spec.node_name.clone(),
        "spec.serviceAccountName" => pod.spec.service_account().to_string(),
        "status.hostIP" | "status.hostIPs" => host_ip,
        "status.podIP" | "status.podIPs" => pod.status.pod_ip.clone(),
        other => return Err(format!("{other:?} is not a supported field path")),
    })
}

/// A container's resource (`resourceFieldRef`): the limit, or the node's
/// allocatable when none is set, or the request; divided by `divisor`
/// (1 by default) and rounded up, as the kubelet does.
pub fn resource_value(
    pod: &Pod,
    c: &Container,
    r: &ResourceFieldSelector,
    node: &NodeFacts,
) -> Result<String, String> {
    let target = if r.container_name.is_empty() {
        c
    } else {
        pod.spec
            .containers
            .iter()
            .chain(&pod.spec.init_containers)
            .find(|x| x.name == r.container_name)
            .ok_or_else(|| format!("no container named {:?}", r.container_name))?
    };
    let (which, res) = r
        .resource
        .split_once('.')
        .ok_or_else(|| format!("{:?} is not a resource", r.resource))?;
    let map = if which == "limits" {
        &target.resources.limits
    } else {
        &target.resources.requests
    };
    let cpu = res == "cpu";
    // In millis for cpu, bytes otherwise.
    let amount = match map.get(res) {
        Some(q) if cpu => q.milli(),
        Some(q) => q.value(),
        None if which == "requests" => 0,
        None if cpu => node.cpu_milli,
        None => node.memory,
    };
    let divisor = match &r.divisor {
        Some(d) if cpu => d.milli(),
        Some(d) => d.value(),
        None if cpu => 1000,
        None => 1,
    };
    if divisor == 0 {
        return Err("divisor must be greater than zero".into());
    }
    Ok(amount.div_ceil(divisor).to_string())
}

/// Kubernetes' `$(VAR)` expansion (`third_party/forked/golang/expansion`):
/// `$(NAME)` becomes `lookup(NAME)` or stays as written when unknown,
/// `$$` becomes `$`, any other `$` stays.
pub fn expand(input: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after.chars().next() {
            None => {
                out.push('$');
                rest = "";
                break;
            }
            Some('$') => {
                out.push('$');
                rest = &after[1..];
            }
            Some('(') => match after[1..].find(')') {
                Some(end) => {
                    let name = &after[1..1 + end];
                    match lookup(name) {
                        Some(v) => out.push_str(&v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &after[end + 2..];
                }
                None => {
                    out.push_str("$(");
                    rest = &after[1..];
                }
            },
            Some(ch) => {
                out.push('$');
                out.push(ch);
                rest = &after[ch.len_utf8()..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The Service variables a container of `pod` gets, in the kubelet's
/// order (Services by name).
pub fn service_env(pod: &Pod, sources: &dyn Sources) -> Vec<(String, String)> {
    let mut by_name: BTreeMap<String, Arc<Service>> = BTreeMap::new();
    if let Some(k) = sources
        .services("default")
        .into_iter()
        .find(|s| s.metadata.name == "kubernetes")
    {
        by_name.insert("kubernetes".into(), k);
    }
    if pod.spec.service_links() {
        for s in sources.services(&pod.metadata.namespace) {
            by_name.insert(s.metadata.name.clone(), s);
        }
    }
    let mut out = Vec::new();
    for s in by_name.values() {
        let ip = &s.spec.cluster_ip;
        if ip.is_empty() || s.is_headless() || s.spec.ports.is_empty() {
            continue;
        }
        let prefix = var_name(&s.metadata.name);
        out.push((format!("{prefix}_SERVICE_HOST"), ip.clone()));
        let first = &s.spec.ports[0];
        out.push((format!("{prefix}_SERVICE_PORT"), first.port.to_string()));
        for p in s.spec.ports.iter().filter(|p| !p.name.is_empty()) {
            out.push((
                format!("{prefix}_SERVICE_PORT_{}", var_name(&p.name)),
                p.port.to_string(),
            ));
        }
        for (i, p) in s.spec.ports.iter().enumerate() {
            let proto = p.protocol.as_str();
            let lower = proto.to_ascii_lowercase();
            let host_port = if ip.contains(':') {
                format!("[{ip}]:{}", p.port)
            } else {
                format!("{ip}:{}", p.port)
            };
            let url = format!("{lower}://{host_port}");
            if i == 0 {
                out.push((format!("{prefix}_PORT"), url.clone()));
            }
            let pp = format!("{prefix}_PORT_{}_{}", p.port, proto.to_ascii_uppercase());
            out.push((pp.clone(), url));
            out.push((format!("{pp}_PROTO"), lower));
            out.push((format!("{pp}_PORT"), p.port.to_string()));
            out.push((format!("{pp}_ADDR"), ip.clone()));
        }
    }
    out
}

/// A Service or port name as a variable name: upper case, `-` as `_`.
fn var_name(s: &str) -> String {
    s.to_ascii_uppercase().replace('-', "_")
}

#[cfg(test)]
mod tests;
