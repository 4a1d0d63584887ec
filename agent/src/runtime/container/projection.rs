//! The files of `configMap`, `secret` and `projected` volumes, pure: from
//! the volume and the referenced objects to the [`Payload`] the
//! [`atomic_writer`](super::atomic_writer) writes. As the kubelet: every
//! key (`data` and `binaryData`) or only `items` (`key` → `path`, with its
//! own `mode`); `defaultMode` 0644; a missing object that is `optional`
//! gives no files, one that is not is a [`ConfigError`] naming it, as is an
//! item naming a key the object does not have.

use std::collections::BTreeMap;

use keel_api::{
    Pod,
    pod::{DownwardApiVolumeFile, KeyToPath, Volume},
};

use super::{
    ConfigError,
    atomic_writer::{FileProjection, Payload, validate_path},
    env::{self, Fetched, NodeFacts, Sources},
};

/// The default file mode of these volumes (Kubernetes'
/// `ConfigMapVolumeSourceDefaultMode`, `SecretVolumeSourceDefaultMode`).
pub const DEFAULT_MODE: u32 = 0o644;

/// Whether the volume is one this module writes.
pub fn is_projected(v: &Volume) -> bool {
    v.config_map.is_some()
        || v.secret.is_some()
        || v.projected.is_some()
        || v.downward_api.is_some()
}

/// Whether the volume shows the pod's own fields (rewritten when the pod's
/// labels or annotations change).
fn shows_the_pod(v: &Volume) -> bool {
    v.downward_api.is_some()
        || v.projected
            .as_ref()
            .is_some_and(|p| p.sources.iter().any(|s| s.downward_api.is_some()))
}

/// Whether the volume holds Secret data (kept on tmpfs).
pub fn holds_secrets(v: &Volume) -> bool {
    v.secret.is_some()
        || v.projected
            .as_ref()
            .is_some_and(|p| p.sources.iter().any(|s| s.secret.is_some()))
}

/// What the pod's configMap, secret and projected volumes were made from:
/// each referenced object's resourceVersion (or that it is missing or not
/// fetched yet), in the volumes' order, and the pod's labels and
/// annotations when a downwardAPI volume shows them. Equal fingerprints: the
/// files need no rewrite, so a sync that changes nothing reads no file.
pub fn fingerprint(pod: &Pod, sources: &dyn Sources) -> String {
    let (volumes, namespace) = (&pod.spec.volumes, pod.metadata.namespace.as_str());
    fn state<T: keel_api::Resource>(f: Fetched<std::sync::Arc<T>>) -> String {
        match f {
            Fetched::Found(o) => o.meta().resource_version.clone(),
            Fetched::Missing => "missing".into(),
            Fetched::Pending => "pending".into(),
        }
    }
    let mut out = String::new();
    if volumes.iter().any(shows_the_pod) {
        out.push_str(&format!(
            "meta={:?}{:?};",
            pod.metadata.labels, pod.metadata.annotations
        ));
    }
    for v in volumes.iter().filter(|v| is_projected(v)) {
        let mut cms: Vec<&str> = Vec::new();
        let mut secrets: Vec<&str> = Vec::new();
        if let Some(c) = &v.config_map {
            cms.push(&c.name);
        }
        if let Some(s) = &v.secret {
            secrets.push(&s.secret_name);
        }
        for src in v.projected.iter().flat_map(|p| &p.sources) {
            if let Some(c) = &src.config_map {
                cms.push(&c.name);
            }
            if let Some(s) = &src.secret {
                secrets.push(&s.name);
            }
        }
        for n in cms {
            out.push_str(&format!(
                "cm/{n}={};",
                state(sources.config_map(namespace, n))
            ));
        }
        for n in secrets {
            out.push_str(&format!(
                "secret/{n}={};",
                state(sources.secret(namespace, n))
            ));
        }
    }
    out
}

/// The files of volume `v` (at `field`, e.g. `spec.volumes[1]`) of `pod`.
pub fn payload(
    v: &Volume,
    field: &str,
    pod: &Pod,
    node: &NodeFacts,
    sources: &dyn Sources,
) -> Result<Payload, ConfigError> {
    let namespace = pod.metadata.namespace.as_str();
    let mut out = Payload::new();
    if let Some(d) = &v.downward_api {
        let mode = mode_of(d.default_mode);
        downward(
            &mut out,
            pod,
            node,
            &d.items,
            mode,
            &format!("{field}.downwardAPI"),
        )?;
    }
    if let Some(c) = &v.config_map {
        let mode = mode_of(c.default_mode);
        let data = config_map(
            sources,
            namespace,
            &c.name,
            &format!("{field}.configMap"),
            c.optional,
        )?;
        add(
            &mut out,
            data,
            &c.items,
            mode,
            &format!("{field}.configMap"),
            "ConfigMap",
            namespace,
            &c.name,
            c.optional,
        )?;
    }
    if let Some(s) = &v.secret {
        let mode = mode_of(s.default_mode);
        let data = secret(
            sources,
            namespace,
            &s.secret_name,
            &format!("{field}.secret"),
            s.optional,
        )?;
        add(
            &mut out,
            data,
            &s.items,
            mode,
            &format!("{field}.secret"),
            "Secret",
            namespace,
            &s.secret_name,
            s.optional,
        )?;
    }
    if let Some(p) = &v.projected {
        let mode = mode_of(p.default_mode);
        for (i, src) in p.sources.iter().enumerate() {
            let at = format!("{field}.projected.sources[{i}]");
            if let Some(c) = &src.config_map {
                let at = format!("{at}.configMap");
                let data = config_map(sources, namespace, &c.name, &at, c.optional)?;
                add(
                    &mut out,
                    data,
                    &c.items,
                    mode,
                    &at,
                    "ConfigMap",
                    namespace,
                    &c.name,
                    c.optional,
                )?;
            }
            if let Some(s) = &src.secret {
                let at = format!("{at}.secret");
                let data = secret(sources, namespace, &s.name, &at, s.optional)?;
                add(
                    &mut out, data, &s.items, mode, &at, "Secret", namespace, &s.name, s.optional,
                )?;
            }
            if let Some(d) = &src.downward_api {
                downward(
                    &mut out,
                    pod,
                    node,
                    &d.items,
                    mode,
                    &format!("{at}.downwardAPI"),
                )?;
            }
        }
    }
    Ok(out)
}

fn mode_of(m: Option<i32>) -> u32 {
    m.map_or(DEFAULT_MODE, |m| (m as u32) & 0o777)
}

type Data = Option<BTreeMap<String, Vec<u8>>>;

fn missing(kind: &str, ns: &str, name: &str, at: &str, pending: bool) -> ConfigError {
    if pending {
        ConfigError::new(
            at,
            format!("{kind} {ns}/{name} is not fetched from keel-control yet"),
        )
    } else {
        ConfigError::new(at, format!("{kind} \"{name}\" not found in namespace {ns}"))
    }
}

fn config_map(
    s: &dyn Sources,
    ns: &str,
    name: &str,
    at: &str,
    optional: Option<bool>,
) -> Result<Data, ConfigError> {
    match s.config_map(ns, name) {
        Fetched::Found(c) => Ok(Some(c.entries())),
        Fetched::Missing if optional == Some(true) => Ok(None),
        Fetched::Missing => Err(missing("configmap", ns, name, at, false)),
        Fetched::Pending => Err(missing("configmap", ns, name, at, true)),
    }
}

fn secret(
    s: &dyn Sources,
    ns: &str,
    name: &str,
    at: &str,
    optional: Option<bool>,
) -> Result<Data, ConfigError> {
    match s.secret(ns, name) {
        Fetched::Found(c) => Ok(Some(c.entries())),
        Fetched::Missing if optional == Some(true) => Ok(None),
        Fetched::Missing => Err(missing("secret", ns, name, at, false)),
        Fetched::Pending => Err(missing("secret", ns, name, at, true)),
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "the object's data, the items asked for and how to name them in errors"
)]
fn add(
    out: &mut Payload,
    data: Data,
    items: &[KeyToPath],
    mode: u32,
    at: &str,
    kind: &str,
    ns: &str,
    name: &str,
    optional: Option<bool>,
) -> Result<(), ConfigError> {
    let Some(data) = data else { return Ok(()) };
    if items.is_empty() {
        for (k, v) in data {
            out.insert(k, FileProjection { data: v, mode });
        }
        return Ok(());
    }
    for (i, it) in items.iter().enumerate() {
        validate_path(&it.path)
            .map_err(|m| ConfigError::new(format!("{at}.items[{i}].path"), m))?;
        match data.get(&it.key) {
            Some(v) => {
                out.insert(
                    it.path.clone(),
                    FileProjection {
                        data: v.clone(),
                        mode: it.mode.map_or(mode, |m| (m as u32) & 0o777),
                    },
                );
            }
            None if optional == Some(true) => {}
            None => {
                return Err(ConfigError::new(
                    format!("{at}.items[{i}].key"),
                    format!("{kind} {ns}/{name} has no key {:?}", it.key),
                ));
            }
        }
    }
    Ok(())
}

/// The files of downwardAPI items, as the kubelet writes them: a field's
/// value as it is; `metadata.labels`/`metadata.annotations` as sorted
/// `key="value"` lines ([`format_map`]); a resource divided by its divisor.
fn downward(
    out: &mut Payload,
    pod: &Pod,
    node: &NodeFacts,
    items: &[DownwardApiVolumeFile],
    mode: u32,
    at: &str,
) -> Result<(), ConfigError> {
    for (i, it) in items.iter().enumerate() {
        let at = format!("{at}.items[{i}]");
        validate_path(&it.path).map_err(|m| ConfigError::new(format!("{at}.path"), m))?;
        let value = match (&it.field_ref, &it.resource_field_ref) {
            (Some(f), _) => match f.field_path.as_str() {
                "metadata.labels" => format_map(&pod.metadata.labels),
                "metadata.annotations" => format_map(&pod.metadata.annotations),
                p => env::field_value(pod, p, node)
                    .map_err(|m| ConfigError::new(format!("{at}.fieldRef.fieldPath"), m))?,
            },
            (None, Some(r)) => {
                let c = pod
                    .spec
                    .containers
                    .iter()
                    .chain(&pod.spec.init_containers)
                    .find(|c| c.name == r.container_name)
                    .ok_or_else(|| {
                        ConfigError::new(
                            format!("{at}.resourceFieldRef.containerName"),
                            format!("no container named {:?}", r.container_name),
                        )
                    })?;
                env::resource_value(pod, c, r, node)
                    .map_err(|m| ConfigError::new(format!("{at}.resourceFieldRef"), m))?
            }
            (None, None) => {
                return Err(ConfigError::new(
                    at,
                    "must specify exactly one of fieldRef or resourceFieldRef",
                ));
            }
        };
        out.insert(
            it.path.clone(),
            FileProjection {
                data: value.into_bytes(),
                mode: it.mode.map_or(mode, |m| (m as u32) & 0o777),
            },
        );
    }
    Ok(())
}

/// Kubernetes' `fieldpath.FormatMap`: one `key="value"` line per entry,
/// sorted by key, the value quoted as Go's `%q`, no newline after the last.
pub fn format_map(m: &BTreeMap<String, String>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Go's `strconv.Quote`: `"`, `\` and the control characters escaped
/// (`\a \b \f \n \r \t \v`, else `\xNN` below 0x80 or `\uNNNN`),
/// printable characters kept as they are.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => {
                let n = c as u32;
                if n > 0xffff {
                    out.push_str(&format!("\\U{n:08x}"))
                } else {
                    out.push_str(&format!("\\u{n:04x}"))
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests;
