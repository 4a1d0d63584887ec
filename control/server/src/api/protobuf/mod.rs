//! The protobuf bodies Kubernetes' typed clients send (client-go,
//! kubectl's `create deployment|service|configmap|secret` generators:
//! `Content-Type: application/vnd.kubernetes.protobuf`), read into the
//! JSON Kubernetes would write for the same object, for the usual
//! decoding. Every field of every kind keel serves is read (Pod, Node,
//! Service, Endpoints, Deployment, ConfigMap, Secret, Event), following
//! Kubernetes v1.32's `generated.proto`: one schema table per message in
//! [`meta`], [`core`] and [`apps`], field numbers and JSON names as
//! Kubernetes has them.
//!
//! Go's generated code writes every field that is not a pointer, zeros
//! included; JSON leaves them out (`omitempty`). So a zero value of a
//! plain field is skipped, while a pointer field (`replicas`,
//! `revisionHistoryLimit`, `runAsUser`, `emptyDir: {}` …) is kept even
//! when zero: it was written only because it was set. What JSON and
//! protobuf spell differently comes out in JSON's form: `bytes` as base64,
//! `Time` as RFC 3339 (seconds) and `MicroTime` with microseconds,
//! `Quantity` as its string, `IntOrString` as a number or a string, and
//! embedded structs (`volumeSource`, a probe's `handler`) inlined into
//! their parent. `managedFields` is read and dropped, as keel drops it
//! from JSON too.
//!
//! A field number the tables do not have (a newer Kubernetes' field) that
//! carries a value is refused with 415 naming its path and number, so
//! nothing is ever dropped silently. Responses stay JSON.

mod apps;
mod core;
mod meta;
mod wire;

use serde_json::{Map, Value, json};

use wire::{Wire, fields, is_zero};

/// One field of a message: its number, its JSON name, how it is read.
type Field = (u32, &'static str, Shape);

/// A value's type.
#[derive(Clone, Copy)]
enum F {
    Str,
    /// `int32`, written as a sign-extended varint.
    Int32,
    Int64,
    Bool,
    /// `bytes`: base64 in JSON.
    Bytes,
    /// `meta/v1.Time`: `seconds` and `nanos`; JSON has seconds only.
    Time,
    /// `meta/v1.MicroTime`: `seconds` and `nanos`, JSON to the microsecond.
    MicroTime,
    /// `resource.Quantity`: a message with its string in field 1.
    Quantity,
    /// `intstr.IntOrString`: `type` (0 int, 1 string), `intVal`, `strVal`.
    IntOrString,
    Msg(&'static [Field]),
}

/// How a field holds its values.
#[derive(Clone, Copy)]
enum Shape {
    /// A plain Go field: always written, so a zero means unset.
    One(F),
    /// A Go pointer: written only when set, so a zero is kept.
    Ptr(F),
    /// Repeated.
    List(F),
    /// `map<string, V>`: entries with the key in 1, the value in 2.
    Map(F),
    /// An embedded struct whose fields JSON puts in the parent.
    Inline(&'static [Field]),
    /// Read and dropped (`managedFields`).
    Ignored,
}

/// Go's zero `time.Time` (0001-01-01T00:00:00Z) as Unix seconds: the
/// "unset" value a client may write for a plain `Time`.
const ZERO_TIME_SECONDS: i64 = -62_135_596_800;
/// 9999-12-31T23:59:59Z, the last second RFC 3339 can write.
const MAX_TIME_SECONDS: i64 = 253_402_300_799;

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn string(w: &Wire, path: &str) -> Result<String, String> {
    match w {
        Wire::Bytes(b) => String::from_utf8(b.to_vec()).map_err(|_| format!("{path}: not UTF-8")),
        _ => Err(format!("{path}: expected a string")),
    }
}

fn number(w: &Wire, path: &str) -> Result<u64, String> {
    match w {
        Wire::Varint(v) => Ok(*v),
        _ => Err(format!("{path}: expected a number")),
    }
}

fn bytes<'a>(w: &Wire<'a>, path: &str, what: &str) -> Result<&'a [u8], String> {
    match w {
        Wire::Bytes(b) => Ok(b),
        _ => Err(format!("{path}: expected {what}")),
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic
/// Gregorian calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A `Time` or `MicroTime` as Kubernetes' JSON writes it (UTC, `Z`);
/// `None` for the zero time, which JSON writes as `null`.
fn time(b: &[u8], micro: bool, path: &str) -> Result<Option<String>, String> {
    let (mut secs, mut nanos) = (0i64, 0i64);
    if b.is_empty() {
        return Ok(None);
    }
    for (n, w) in fields(b)? {
        match n {
            1 => secs = number(&w, path)? as i64,
            // Kubernetes drops a Time's nanoseconds (JSON has none).
            2 if micro => nanos = i64::from(number(&w, path)? as i32),
            2 => drop(number(&w, path)?),
            _ if is_zero(&w) => {}
            _ => return Err(format!("{path}: field number {n} is not part of a time")),
        }
    }
    if secs == ZERO_TIME_SECONDS && nanos == 0 {
        return Ok(None);
    }
    if !(ZERO_TIME_SECONDS..=MAX_TIME_SECONDS).contains(&secs)
        || !(0..1_000_000_000).contains(&nanos)
    {
        return Err(format!(
            "{path}: time {secs}s {nanos}ns is outside 0001-01-01 to 9999-12-31"
        ));
    }
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    let hms = format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60
    );
    Ok(Some(if micro {
        format!("{hms}.{:06}Z", nanos / 1000)
    } else {
        format!("{hms}Z")
    }))
}

/// One value as JSON, or `None` for a value JSON leaves out (a zero `Time`
/// is `null` there). The flag says whether it is the type's zero.
fn value(f: F, w: &Wire, path: &str) -> Result<(Option<Value>, bool), String> {
    Ok(match f {
        F::Str => {
            let s = string(w, path)?;
            let zero = s.is_empty();
            (Some(json!(s)), zero)
        }
        F::Bytes => {
            let b = bytes(w, path, "bytes")?;
            (
                Some(json!(keel_api::config_map::encode_base64(b))),
                b.is_empty(),
            )
        }
        F::Int32 => {
            let v = number(w, path)? as i32;
            (Some(json!(v)), v == 0)
        }
        F::Int64 => {
            let v = number(w, path)? as i64;
            (Some(json!(v)), v == 0)
        }
        F::Bool => {
            let v = number(w, path)? != 0;
            (Some(json!(v)), !v)
        }
        F::Time | F::MicroTime => {
            let t = time(bytes(w, path, "a time")?, matches!(f, F::MicroTime), path)?;
            let zero = t.is_none();
            (t.map(Value::String), zero)
        }
        F::Quantity => {
            let mut s = String::new();
            for (n, w) in fields(bytes(w, path, "a quantity")?)? {
                match n {
                    1 => s = string(&w, path)?,
                    _ if is_zero(&w) => {}
                    _ => {
                        return Err(format!(
                            "{path}: field number {n} is not part of a quantity"
                        ));
                    }
                }
            }
            // Go's zero Quantity writes "0"; an empty one reads as zero.
            if s.is_empty() {
                s = "0".into();
            }
            let zero = s == "0";
            (Some(json!(s)), zero)
        }
        F::IntOrString => {
            let (mut type_, mut int, mut text) = (0, 0i32, String::new());
            for (n, w) in fields(bytes(w, path, "an IntOrString")?)? {
                match n {
                    1 => type_ = number(&w, path)?,
                    2 => int = number(&w, path)? as i32,
                    3 => text = string(&w, path)?,
                    _ if is_zero(&w) => {}
                    _ => {
                        return Err(format!(
                            "{path}: field number {n} is not part of an IntOrString"
                        ));
                    }
                }
            }
            match type_ {
                0 => (Some(json!(int)), int == 0),
                1 => {
                    let zero = text.is_empty();
                    (Some(json!(text)), zero)
                }
                t => return Err(format!("{path}: IntOrString type {t} is neither 0 nor 1")),
            }
        }
        F::Msg(schema) => {
            let m = message(bytes(w, path, "a message")?, schema, path)?;
            let zero = m.is_empty();
            (Some(Value::Object(m)), zero)
        }
    })
}

/// The JSON zero of a map value left out of its entry.
fn default_value(f: F) -> Value {
    match f {
        F::Quantity => json!("0"),
        F::Int32 | F::Int64 => json!(0),
        F::Bool => json!(false),
        F::Msg(_) => json!({}),
        F::Str | F::Bytes | F::Time | F::MicroTime | F::IntOrString => json!(""),
    }
}

/// Sets `name`; a message read twice is merged, as protobuf merges it.
fn set(out: &mut Map<String, Value>, name: &str, v: Value) {
    match (out.get_mut(name), v) {
        (Some(Value::Object(old)), Value::Object(new)) => old.extend(new),
        (_, v) => drop(out.insert(name.into(), v)),
    }
}

fn push(out: &mut Map<String, Value>, name: &str, v: Value) {
    let list = out.entry(name).or_insert_with(|| json!([]));
    list.as_array_mut().expect("a list").push(v);
}

fn message(b: &[u8], schema: &[Field], path: &str) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for (num, w) in fields(b)? {
        let Some(&(_, name, shape)) = schema.iter().find(|(n, _, _)| *n == num) else {
            if is_zero(&w) {
                continue;
            }
            let at = if path.is_empty() { "the object" } else { path };
            return Err(format!(
                "{at}: field number {num} is not in Kubernetes 1.32's schema, which keel reads protobuf by; send JSON"
            ));
        };
        let here = join(path, name);
        match shape {
            Shape::Ignored => {}
            Shape::One(f) => {
                if let (Some(v), false) = value(f, &w, &here)? {
                    set(&mut out, name, v);
                }
            }
            Shape::Ptr(f) => {
                if let (Some(v), _) = value(f, &w, &here)? {
                    set(&mut out, name, v);
                }
            }
            Shape::Inline(schema) => {
                out.extend(message(bytes(&w, path, "a message")?, schema, path)?);
            }
            // A packed list of numbers (`[packed=true]`, or a client that
            // packs anyway).
            Shape::List(f @ (F::Int32 | F::Int64 | F::Bool)) if matches!(w, Wire::Bytes(_)) => {
                let b = bytes(&w, &here, "a list")?;
                let mut at = 0;
                while at < b.len() {
                    let n = wire::varint(b, &mut at)?;
                    if let (Some(v), _) = value(f, &Wire::Varint(n), &here)? {
                        push(&mut out, name, v);
                    }
                }
            }
            Shape::List(f) => {
                let at = out.get(name).and_then(Value::as_array).map_or(0, Vec::len);
                if let (Some(v), _) = value(f, &w, &format!("{here}[{at}]"))? {
                    push(&mut out, name, v);
                }
            }
            Shape::Map(f) => {
                let (mut k, mut v) = (String::new(), None);
                for (n, w) in fields(bytes(&w, &here, "a map entry")?)? {
                    match n {
                        1 => k = string(&w, &here)?,
                        2 => v = value(f, &w, &format!("{here}[{k:?}]"))?.0,
                        _ if is_zero(&w) => {}
                        _ => {
                            return Err(format!(
                                "{here}: field number {n} is not part of a map entry"
                            ));
                        }
                    }
                }
                let map = out.entry(name).or_insert_with(|| json!({}));
                map.as_object_mut()
                    .expect("a map")
                    .insert(k, v.unwrap_or_else(|| default_value(f)));
            }
        }
    }
    Ok(out)
}

/// The schema of each kind keel serves that Kubernetes has protobuf for.
fn schema(api_version: &str, kind: &str) -> Option<&'static [Field]> {
    Some(match (api_version, kind) {
        ("v1", "Pod") => core::POD,
        ("v1", "Node") => core::NODE,
        ("v1", "Service") => core::SERVICE,
        ("v1", "Endpoints") => core::ENDPOINTS,
        ("v1", "ConfigMap") => core::CONFIG_MAP,
        ("v1", "Secret") => core::SECRET,
        ("v1", "Event") => core::EVENT,
        ("apps/v1", "Deployment") => apps::DEPLOYMENT,
        _ => return None,
    })
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
            // contentEncoding and contentType: empty for an object.
            // contentEncoding and contentType, which Kubernetes' decoder
            // does not read either.
            (3 | 4, _) => {}
            _ => return Err("not a Kubernetes protobuf envelope".into()),
        }
    }
    let schema = schema(&api_version, &kind).ok_or_else(|| {
        format!(
            "keel reads {api_version} {kind} only as JSON (protobuf: Pod, Node, Service, Endpoints, ConfigMap, Secret, Event, Deployment)"
        )
    })?;
    let mut v = Value::Object(message(raw, schema, "")?);
    v["apiVersion"] = json!(api_version);
    v["kind"] = json!(kind);
    Ok(v)
}

#[cfg(test)]
mod tests;
