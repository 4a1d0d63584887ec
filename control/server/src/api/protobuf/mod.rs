//! The protobuf bodies kubectl's typed clients send (`kubectl create
//! deployment`, `create service …`, `create configmap`, `create secret …`: `Content-Type:
//! application/vnd.kubernetes.protobuf`), read into JSON for the usual
//! decoding. Only the fields those generators set are known here (by
//! their numbers in Kubernetes' `generated.proto`); the many fields
//! protobuf writes with zero values are skipped, and any other field that
//! carries a value is refused with 415 naming its number, so nothing is
//! ever dropped silently. Responses stay JSON.

use serde_json::{Map, Value, json};

/// How one field is read.
#[derive(Clone, Copy)]
enum F {
    Str,
    Int,
    /// A nested message.
    Msg(&'static [(u32, &'static str, F)]),
    /// Repeated messages.
    List(&'static [(u32, &'static str, F)]),
    /// Repeated strings.
    Strs,
    /// `map<string, string>`.
    Map,
    /// `map<string, bytes>`: values as base64, JSON's form of `[]byte`.
    BytesMap,
    /// `optional bool`: written only when set.
    Bool,
    /// Read and dropped (set by the server: `creationTimestamp`).
    Ignore,
    /// `IntOrString`: `type` (0 int, 1 string), `intVal`, `strVal`.
    IntOrString,
}

const META: &[(u32, &str, F)] = &[
    (1, "name", F::Str),
    (2, "generateName", F::Str),
    (3, "namespace", F::Str),
    (8, "creationTimestamp", F::Ignore),
    (11, "labels", F::Map),
    (12, "annotations", F::Map),
];
const SELECTOR: &[(u32, &str, F)] = &[(1, "matchLabels", F::Map)];
const CONTAINER_PORT: &[(u32, &str, F)] = &[
    (1, "name", F::Str),
    (3, "containerPort", F::Int),
    (4, "protocol", F::Str),
];
const CONTAINER: &[(u32, &str, F)] = &[
    (1, "name", F::Str),
    (2, "image", F::Str),
    (3, "command", F::Strs),
    (4, "args", F::Strs),
    (6, "ports", F::List(CONTAINER_PORT)),
];
const POD_SPEC: &[(u32, &str, F)] = &[(2, "containers", F::List(CONTAINER))];
const TEMPLATE: &[(u32, &str, F)] = &[(1, "metadata", F::Msg(META)), (2, "spec", F::Msg(POD_SPEC))];
const DEPLOYMENT_SPEC: &[(u32, &str, F)] = &[
    (1, "replicas", F::Int),
    (2, "selector", F::Msg(SELECTOR)),
    (3, "template", F::Msg(TEMPLATE)),
    (6, "revisionHistoryLimit", F::Int),
    (7, "paused", F::Bool),
];
const DEPLOYMENT: &[(u32, &str, F)] = &[
    (1, "metadata", F::Msg(META)),
    (2, "spec", F::Msg(DEPLOYMENT_SPEC)),
];
const SERVICE_PORT: &[(u32, &str, F)] = &[
    (1, "name", F::Str),
    (2, "protocol", F::Str),
    (3, "port", F::Int),
    (4, "targetPort", F::IntOrString),
    (5, "nodePort", F::Int),
];
const SERVICE_SPEC: &[(u32, &str, F)] = &[
    (1, "ports", F::List(SERVICE_PORT)),
    (2, "selector", F::Map),
    (3, "clusterIP", F::Str),
    (4, "type", F::Str),
];
const SERVICE: &[(u32, &str, F)] = &[
    (1, "metadata", F::Msg(META)),
    (2, "spec", F::Msg(SERVICE_SPEC)),
];
const CONFIG_MAP: &[(u32, &str, F)] = &[
    (1, "metadata", F::Msg(META)),
    (2, "data", F::Map),
    (3, "binaryData", F::BytesMap),
    (4, "immutable", F::Bool),
];
const SECRET: &[(u32, &str, F)] = &[
    (1, "metadata", F::Msg(META)),
    (2, "data", F::BytesMap),
    (3, "type", F::Str),
    (4, "stringData", F::Map),
    (5, "immutable", F::Bool),
];

/// One field off the wire.
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

fn varint(b: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at).ok_or("truncated varint")?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("varint too long".into())
}

fn fields(b: &[u8]) -> Result<Vec<(u32, Wire<'_>)>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < b.len() {
        let tag = varint(b, &mut at)?;
        let (num, wt) = ((tag >> 3) as u32, tag & 7);
        let w = match wt {
            0 => Wire::Varint(varint(b, &mut at)?),
            2 => {
                let len = varint(b, &mut at)? as usize;
                let end = at
                    .checked_add(len)
                    .filter(|e| *e <= b.len())
                    .ok_or("truncated field")?;
                let s = &b[at..end];
                at = end;
                Wire::Bytes(s)
            }
            1 => {
                at += 8;
                Wire::Fixed
            }
            5 => {
                at += 4;
                Wire::Fixed
            }
            other => return Err(format!("wire type {other} is not supported")),
        };
        out.push((num, w));
    }
    if at > b.len() {
        return Err("truncated field".into());
    }
    Ok(out)
}

/// Whether a field's value is protobuf's zero: 0, empty, or a message
/// whose own fields are all zero.
fn is_zero(w: &Wire) -> bool {
    match w {
        Wire::Varint(v) => *v == 0,
        Wire::Fixed => false,
        Wire::Bytes(b) => {
            b.is_empty() || fields(b).is_ok_and(|fs| fs.iter().all(|(_, w)| is_zero(w)))
        }
    }
}

fn string(w: &Wire, path: &str) -> Result<String, String> {
    match w {
        Wire::Bytes(b) => String::from_utf8(b.to_vec()).map_err(|_| format!("{path}: not UTF-8")),
        _ => Err(format!("{path}: expected a string")),
    }
}

fn message(b: &[u8], schema: &[(u32, &str, F)], path: &str) -> Result<Value, String> {
    let mut out = Map::new();
    for (num, w) in fields(b)? {
        let Some(&(_, name, f)) = schema.iter().find(|(n, _, _)| *n == num) else {
            if is_zero(&w) {
                continue;
            }
            return Err(format!(
                "{}field number {num} is not one keel reads from protobuf; send JSON",
                if path.is_empty() {
                    String::new()
                } else {
                    format!("{path}: ")
                }
            ));
        };
        let here = if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}.{name}")
        };
        match f {
            F::Ignore => {}
            F::IntOrString => match w {
                Wire::Bytes(b) => {
                    let (mut type_, mut int, mut text) = (0, 0, String::new());
                    for (n, w) in fields(b)? {
                        match (n, &w) {
                            (1, Wire::Varint(t)) => type_ = *t,
                            (2, Wire::Varint(i)) => int = *i as i64 as i32,
                            (3, _) => text = string(&w, &here)?,
                            _ => return Err(format!("{here}: not an IntOrString")),
                        }
                    }
                    let v = if type_ == 1 { json!(text) } else { json!(int) };
                    out.insert(name.into(), v);
                }
                _ => return Err(format!("{here}: expected an IntOrString")),
            },
            F::Str => {
                let s = string(&w, &here)?;
                if !s.is_empty() {
                    out.insert(name.into(), json!(s));
                }
            }
            F::Int => match w {
                // A zero is protobuf's "unset", except for the pointers
                // `replicas` and `revisionHistoryLimit`, written only when
                // set.
                Wire::Varint(0) if !matches!(name, "replicas" | "revisionHistoryLimit") => {}
                Wire::Varint(v) => drop(out.insert(name.into(), json!(v as i64 as i32))),
                _ => return Err(format!("{here}: expected a number")),
            },
            F::Msg(schema) => match w {
                Wire::Bytes(b) => {
                    let v = message(b, schema, &here)?;
                    out.insert(name.into(), v);
                }
                _ => return Err(format!("{here}: expected a message")),
            },
            F::List(schema) => match w {
                Wire::Bytes(b) => {
                    let v = message(b, schema, &here)?;
                    let list = out.entry(name).or_insert_with(|| json!([]));
                    list.as_array_mut().expect("a list").push(v);
                }
                _ => return Err(format!("{here}: expected a message")),
            },
            F::Strs => {
                let s = string(&w, &here)?;
                let list = out.entry(name).or_insert_with(|| json!([]));
                list.as_array_mut().expect("a list").push(json!(s));
            }
            F::Bool => match w {
                Wire::Varint(v) => drop(out.insert(name.into(), json!(v != 0))),
                _ => return Err(format!("{here}: expected a bool")),
            },
            F::Map | F::BytesMap => match w {
                Wire::Bytes(b) => {
                    let (mut k, mut v) = (String::new(), String::new());
                    for (n, w) in fields(b)? {
                        match (n, &w, f) {
                            (1, _, _) => k = string(&w, &here)?,
                            (2, Wire::Bytes(b), F::BytesMap) => {
                                v = keel_api::config_map::encode_base64(b);
                            }
                            (2, _, _) => v = string(&w, &here)?,
                            _ => return Err(format!("{here}: not a map entry")),
                        }
                    }
                    let map = out.entry(name).or_insert_with(|| json!({}));
                    map.as_object_mut().expect("a map").insert(k, json!(v));
                }
                _ => return Err(format!("{here}: expected a map entry")),
            },
        }
    }
    Ok(Value::Object(out))
}

/// Reads a protobuf body (the `k8s\0` envelope around an `Unknown` with
/// the object's TypeMeta and raw bytes) as JSON.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let inner = body
        .strip_prefix(b"k8s\0")
        .ok_or("the body does not start with Kubernetes' protobuf envelope (k8s\\0)")?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for (num, w) in fields(inner)? {
        match (num, w) {
            (1, Wire::Bytes(tm)) => {
                for (n, w) in fields(tm)? {
                    match n {
                        1 => api_version = string(&w, "apiVersion")?,
                        2 => kind = string(&w, "kind")?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(r)) => raw = r,
            (3 | 4, w) if is_zero(&w) => {}
            (3 | 4, _) => {}
            _ => return Err("not a Kubernetes protobuf envelope".into()),
        }
    }
    let schema = match (api_version.as_str(), kind.as_str()) {
        ("apps/v1", "Deployment") => DEPLOYMENT,
        ("v1", "Service") => SERVICE,
        ("v1", "ConfigMap") => CONFIG_MAP,
        ("v1", "Secret") => SECRET,
        _ => {
            return Err(format!(
                "keel reads {api_version} {kind} only as JSON (protobuf: Deployment, Service, ConfigMap and Secret)"
            ));
        }
    };
    let mut v = message(raw, schema, "")?;
    v["apiVersion"] = json!(api_version);
    v["kind"] = json!(kind);
    Ok(v)
}

#[cfg(test)]
mod tests;
