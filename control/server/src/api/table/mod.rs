//! Table output (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`):
//! the columns Kubernetes' own printers give each kind, so `kubectl get`
//! and `kubectl get -o wide` look as they do against Kubernetes. Columns of
//! priority 1 are the `-o wide` ones. Rendering is pure: an object's JSON
//! and the time now in, cells out.

use std::time::{Duration, SystemTime};

use keel_api::{Kind, KindInfo};
use serde_json::{Value, json};

/// A column: its name as Kubernetes spells it (kubectl upper-cases it),
/// its type and whether it is a wide one.
struct Column {
    name: &'static str,
    type_: &'static str,
    wide: bool,
}

const fn col(name: &'static str, type_: &'static str) -> Column {
    Column {
        name,
        type_,
        wide: false,
    }
}

const fn wide(name: &'static str) -> Column {
    Column {
        name,
        type_: "string",
        wide: true,
    }
}

fn columns(kind: Kind) -> Vec<Column> {
    match kind {
        Kind::Pod => vec![
            col("Name", "string"),
            col("Ready", "string"),
            col("Status", "string"),
            col("Restarts", "string"),
            col("Age", "string"),
            wide("IP"),
            wide("Node"),
            wide("Nominated Node"),
            wide("Readiness Gates"),
        ],
        Kind::Service => vec![
            col("Name", "string"),
            col("Type", "string"),
            col("Cluster-IP", "string"),
            col("External-IP", "string"),
            col("Port(s)", "string"),
            col("Age", "string"),
            wide("Selector"),
        ],
        Kind::Endpoints => vec![
            col("Name", "string"),
            col("Endpoints", "string"),
            col("Age", "string"),
        ],
        Kind::ConfigMap => vec![
            col("Name", "string"),
            col("Data", "integer"),
            col("Age", "string"),
        ],
        Kind::Secret => vec![
            col("Name", "string"),
            col("Type", "string"),
            col("Data", "integer"),
            col("Age", "string"),
        ],
        // Kubernetes' event printer; kubectl shows LAST SEEN TYPE REASON
        // OBJECT MESSAGE, and the rest with -o wide.
        Kind::Event => vec![
            col("Last Seen", "string"),
            col("Type", "string"),
            col("Reason", "string"),
            col("Object", "string"),
            wide("Subobject"),
            wide("Source"),
            col("Message", "string"),
            wide("First Seen"),
            wide("Count"),
            wide("Name"),
        ],
        Kind::Deployment => vec![
            col("Name", "string"),
            col("Ready", "string"),
            col("Up-to-date", "integer"),
            col("Available", "integer"),
            col("Age", "string"),
            wide("Containers"),
            wide("Images"),
            wide("Selector"),
        ],
        Kind::Node => vec![
            col("Name", "string"),
            col("Status", "string"),
            col("Roles", "string"),
            col("Age", "string"),
            col("Version", "string"),
            wide("Internal-IP"),
            wide("External-IP"),
            wide("OS-Image"),
            wide("Kernel-Version"),
            wide("Container-Runtime"),
        ],
    }
}

/// What each row carries as its `object`, from `includeObject`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    /// `PartialObjectMetadata` (Kubernetes' default).
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(s: Option<&str>) -> Result<Self, String> {
        match s {
            None | Some("") | Some("Metadata") => Ok(IncludeObject::Metadata),
            Some("None") => Ok(IncludeObject::None),
            Some("Object") => Ok(IncludeObject::Object),
            Some(other) => Err(format!(
                "includeObject: {other:?} is not one of None, Metadata, Object"
            )),
        }
    }
}

/// Whether an `Accept` header asks for a Table (in any position of its list).
pub fn wants_table(accept: &str) -> bool {
    accept.split(',').any(|t| {
        let params: Vec<&str> = t.split(';').map(str::trim).collect();
        params.contains(&"as=Table") && params.contains(&"g=meta.k8s.io")
    })
}

/// A Table of `objects` (each an object's JSON) of `kind`.
pub fn render(
    kind: &KindInfo,
    objects: &[Value],
    resource_version: &str,
    include: IncludeObject,
    now: SystemTime,
) -> Value {
    let definitions: Vec<Value> = columns(kind.kind)
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "type": c.type_,
                "format": if c.name == "Name" { "name" } else { "" },
                "description": "",
                "priority": if c.wide { 1 } else { 0 },
            })
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut row = json!({"cells": cells(kind.kind, o, now)});
            match include {
                IncludeObject::None => {}
                IncludeObject::Object => row["object"] = o.clone(),
                IncludeObject::Metadata => {
                    row["object"] = json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": o.get("metadata").cloned().unwrap_or(Value::Null),
                    })
                }
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn list<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn or_none(s: String) -> String {
    if s.is_empty() { "<none>".into() } else { s }
}

/// The cells of one object's row.
pub fn cells(kind: Kind, o: &Value, now: SystemTime) -> Vec<Value> {
    let name = json!(s(o, "/metadata/name"));
    let age = json!(age(o, now));
    match kind {
        Kind::Pod => {
            let statuses = list(o, "/status/containerStatuses");
            let total = list(o, "/spec/containers").len();
            let ready = statuses
                .iter()
                .filter(|c| c.get("ready") == Some(&Value::Bool(true)))
                .count();
            let restarts: i64 = statuses
                .iter()
                .filter_map(|c| c.get("restartCount").and_then(Value::as_i64))
                .sum();
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(pod_status(o)),
                json!(restarts.to_string()),
                age,
                json!(or_none(s(o, "/status/podIP").to_string())),
                json!(or_none(s(o, "/spec/nodeName").to_string())),
                json!("<none>"),
                json!("<none>"),
            ]
        }
        Kind::Service => {
            let type_ = match s(o, "/spec/type") {
                "" => "ClusterIP",
                t => t,
            };
            let external = list(o, "/spec/externalIPs")
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(",");
            let ports = list(o, "/spec/ports")
                .iter()
                .map(|p| {
                    let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
                    let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
                    match p.get("nodePort").and_then(Value::as_i64) {
                        Some(np) if np != 0 => format!("{port}:{np}/{proto}"),
                        _ => format!("{port}/{proto}"),
                    }
                })
                .collect::<Vec<_>>()
                .join(",");
            vec![
                name,
                json!(type_),
                json!(or_none(s(o, "/spec/clusterIP").to_string())),
                json!(or_none(external)),
                json!(or_none(ports)),
                age,
                json!(or_none(map_string(o.pointer("/spec/selector")))),
            ]
        }
        Kind::Endpoints => vec![name, json!(endpoints(o)), age],
        Kind::ConfigMap => vec![name, json!(keys(o, "/data") + keys(o, "/binaryData")), age],
        Kind::Secret => vec![
            name,
            json!(match s(o, "/type") {
                "" => "Opaque",
                t => t,
            }),
            json!(keys(o, "/data")),
            age,
        ],
        Kind::Event => {
            let e: keel_api::Event = serde_json::from_value(o.clone()).unwrap_or_default();
            let first = e.first_seen().map_or_else(
                || "<unknown>".to_string(),
                |t| keel_api::meta::short_age(now.duration_since(t.0).unwrap_or_default()),
            );
            vec![
                json!(e.last_seen_column(now)),
                json!(e.type_),
                json!(e.reason),
                json!(e.object_column()),
                json!(e.involved_object.field_path),
                json!(e.source_column()),
                json!(e.message.trim()),
                json!(first),
                json!(e.count.to_string()),
                name,
            ]
        }
        Kind::Deployment => {
            let n = |p: &str| o.pointer(p).and_then(Value::as_i64).unwrap_or(0);
            let desired = o
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let containers = list(o, "/spec/template/spec/containers");
            let join = |field: &str| {
                containers
                    .iter()
                    .map(|c| c.get(field).and_then(Value::as_str).unwrap_or(""))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            vec![
                name,
                json!(format!("{}/{desired}", n("/status/readyReplicas"))),
                json!(n("/status/updatedReplicas")),
                json!(n("/status/availableReplicas")),
                age,
                json!(join("name")),
                json!(join("image")),
                json!(or_none(map_string(o.pointer("/spec/selector/matchLabels")))),
            ]
        }
        Kind::Node => {
            let ready = list(o, "/status/conditions")
                .iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
                .and_then(|c| c.get("status").and_then(Value::as_str));
            let mut status = match ready {
                Some("True") => "Ready".to_string(),
                _ => "NotReady".to_string(),
            };
            if o.pointer("/spec/unschedulable") == Some(&Value::Bool(true)) {
                status.push_str(",SchedulingDisabled");
            }
            let roles = o
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .map(|l| {
                    l.keys()
                        .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            let address = |t: &str| {
                list(o, "/status/addresses")
                    .iter()
                    .find(|a| a.get("type").and_then(Value::as_str) == Some(t))
                    .and_then(|a| a.get("address").and_then(Value::as_str))
                    .unwrap_or("<none>")
                    .to_string()
            };
            vec![
                name,
                json!(status),
                json!(or_none(roles)),
                age,
                json!(s(o, "/status/nodeInfo/kubeletVersion")),
                json!(address("InternalIP")),
                json!(address("ExternalIP")),
                json!(or_none(s(o, "/status/nodeInfo/osImage").to_string())),
                json!(or_none(s(o, "/status/nodeInfo/kernelVersion").to_string())),
                json!(or_none(
                    s(o, "/status/nodeInfo/containerRuntimeVersion").to_string()
                )),
            ]
        }
    }
}

/// A pod's STATUS as kubectl shows it: the reason of a waiting or
/// terminated container (`CrashLoopBackOff`, `ErrImagePull`, `Completed`)
/// over the phase, as Kubernetes' printer does.
fn pod_status(o: &Value) -> String {
    let mut reason = match s(o, "/status/reason") {
        "" => s(o, "/status/phase").to_string(),
        r => r.to_string(),
    };
    for c in list(o, "/status/initContainerStatuses") {
        let waiting = c.pointer("/state/waiting/reason").and_then(Value::as_str);
        let term = c
            .pointer("/state/terminated/exitCode")
            .and_then(Value::as_i64);
        match (waiting, term) {
            (_, Some(0)) => continue,
            (_, Some(code)) => return format!("Init:ExitCode:{code}"),
            (Some(r), _) if r != "PodInitializing" => return format!("Init:{r}"),
            _ => {}
        }
    }
    for c in list(o, "/status/containerStatuses").iter().rev() {
        if let Some(r) = c.pointer("/state/waiting/reason").and_then(Value::as_str)
            && !r.is_empty()
        {
            reason = r.to_string();
        } else if let Some(t) = c.pointer("/state/terminated") {
            reason = match t.get("reason").and_then(Value::as_str) {
                Some(r) if !r.is_empty() => r.to_string(),
                _ => match t.get("exitCode").and_then(Value::as_i64) {
                    Some(0) => "Completed".into(),
                    Some(code) => format!("ExitCode:{code}"),
                    None => reason,
                },
            };
        }
    }
    if o.pointer("/metadata/deletionTimestamp").is_some() {
        return "Terminating".into();
    }
    if reason.is_empty() {
        "Pending".into()
    } else {
        reason
    }
}

/// `a=b,c=d` from a JSON map of strings.
fn map_string(v: Option<&Value>) -> String {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// `10.244.1.5:8080,10.244.2.3:8080 + 1 more...`, as Kubernetes prints
/// How many keys the map at `pointer` has (kubectl's DATA column).
fn keys(o: &Value, pointer: &str) -> usize {
    o.pointer(pointer)
        .and_then(Value::as_object)
        .map_or(0, serde_json::Map::len)
}

/// Endpoints (ready addresses only, at most three).
fn endpoints(o: &Value) -> String {
    let mut all = Vec::new();
    for subset in list(o, "/subsets") {
        let ports = list(subset, "/ports");
        for a in list(subset, "/addresses") {
            let ip = a.get("ip").and_then(Value::as_str).unwrap_or("");
            if ports.is_empty() {
                all.push(ip.to_string());
            }
            for p in ports {
                let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
                all.push(format!("{ip}:{port}"));
            }
        }
    }
    match all.len() {
        0 => "<none>".into(),
        1..=3 => all.join(","),
        n => format!("{} + {} more...", all[..3].join(","), n - 3),
    }
}

fn age(o: &Value, now: SystemTime) -> String {
    let Some(t) = o
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
    else {
        return "<unknown>".into();
    };
    human_duration(now.duration_since(t).unwrap_or_default())
}

/// Kubernetes' `duration.HumanDuration`: `45s`, `3m20s`, `15m`, `5h10m`,
/// `20h`, `3d4h`, `12d`, `2y30d`.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (minute, hour, day) = (60, 3600, 86_400);
    let year = 365 * day;
    if secs < 2 * minute {
        format!("{secs}s")
    } else if secs < 10 * minute {
        let s = secs % minute;
        if s == 0 {
            format!("{}m", secs / minute)
        } else {
            format!("{}m{s}s", secs / minute)
        }
    } else if secs < 3 * hour {
        format!("{}m", secs / minute)
    } else if secs < 8 * hour {
        let m = (secs % hour) / minute;
        if m == 0 {
            format!("{}h", secs / hour)
        } else {
            format!("{}h{m}m", secs / hour)
        }
    } else if secs < 48 * hour {
        format!("{}h", secs / hour)
    } else if secs < 8 * day {
        let h = (secs % day) / hour;
        if h == 0 {
            format!("{}d", secs / day)
        } else {
            format!("{}d{h}h", secs / day)
        }
    } else if secs < 2 * year {
        format!("{}d", secs / day)
    } else if secs < 8 * year {
        let dd = (secs % year) / day;
        if dd == 0 {
            format!("{}y", secs / year)
        } else {
            format!("{}y{dd}d", secs / year)
        }
    } else {
        format!("{}y", secs / year)
    }
}

#[cfg(test)]
mod tests;
