//! Fields of Kubernetes' schema that keel accepts and keeps but does not
//! act on (`tolerations`, `terminationMessagePath`,
//! `progressDeadlineSeconds` …), so the manifests people already have apply
//! unchanged and `kubectl get -o yaml` / `kubectl apply` round-trip.
//!
//! Each struct of a kind that has such fields carries one
//! `#[serde(flatten)]` value of a type made by [`preserved_fields!`]: it
//! takes only the names Kubernetes' schema has *at that place* (a
//! `tolerations` under a container is still refused, with its path), and
//! keeps their JSON values as sent. Since they live inside the typed
//! object, they are stored with it (every store backend serializes the
//! object), served back on every read, copied from a Deployment's template
//! into its Pods, and part of the template's hash.
//!
//! [`preserved_paths`] names where an object carries them: keel-control
//! warns about each by path.

use std::cell::Cell;

use serde::Serialize;
use serde_json::Value;

thread_local! {
    static HIDDEN: Cell<bool> = const { Cell::new(false) };
}

/// Whether preserved fields are left out of serialization on this thread
/// (only inside [`preserved_paths`]).
#[doc(hidden)]
pub fn hidden() -> bool {
    HIDDEN.with(Cell::get)
}

/// Makes a type for the preserved fields of one place of the schema:
/// `preserved_fields!(ContainerFields, "a container", ["stdin", "tty"])`.
#[macro_export]
macro_rules! preserved_fields {
    ($(#[$m:meta])* $name:ident, $place:literal, [$($field:literal),+ $(,)?]) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct $name(pub std::collections::BTreeMap<String, serde_json::Value>);

        impl $name {
            /// The names Kubernetes' schema has here that keel keeps
            /// without acting on them.
            pub const FIELDS: &'static [&'static str] = &[$($field),+];

            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }

            pub fn get(&self, field: &str) -> Option<&serde_json::Value> {
                self.0.get(field)
            }
        }

        /// No properties: the schema shows what keel models, and these
        /// fields are accepted, kept and warned about (see the module doc).
        impl $crate::schemars::JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut $crate::schemars::SchemaGenerator) -> $crate::schemars::Schema {
                $crate::schemars::json_schema!({"type": "object"})
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let hide = $crate::resource::preserved::hidden();
                let mut map = s.serialize_map(Some(if hide { 0 } else { self.0.len() }))?;
                if !hide {
                    for (k, v) in &self.0 {
                        map.serialize_entry(k, v)?;
                    }
                }
                map.end()
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Visit;
                impl<'de> serde::de::Visitor<'de> for Visit {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str(concat!("the fields of ", $place))
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut m: A,
                    ) -> Result<$name, A::Error> {
                        let mut out = std::collections::BTreeMap::new();
                        while let Some(k) = m.next_key::<String>()? {
                            if !$name::FIELDS.contains(&k.as_str()) {
                                return Err(serde::de::Error::custom(format!(
                                    concat!("unknown field `{}`: not a field of ", $place, " in Kubernetes' schema"),
                                    k
                                )));
                            }
                            let v: serde_json::Value = m.next_value()?;
                            // As Kubernetes: a null is an absent field.
                            if !v.is_null() {
                                out.insert(k, v);
                            }
                        }
                        Ok($name(out))
                    }
                }
                d.deserialize_map(Visit)
            }
        }
    };
}

/// Where `obj` carries preserved fields: each path
/// (`spec.containers[0].terminationMessagePath`) with whether its value is
/// empty (`{}`, `[]`), in document order.
pub fn preserved_paths<T: Serialize>(obj: &T) -> Vec<(String, bool)> {
    /// Shows the fields again however the serialization ends (a panic
    /// included), so nothing else on the thread ever loses them.
    struct Hide;
    impl Drop for Hide {
        fn drop(&mut self) {
            HIDDEN.with(|h| h.set(false));
        }
    }
    let with = serde_json::to_value(obj).expect("API objects serialize");
    let without = {
        HIDDEN.with(|h| h.set(true));
        let _shown_after = Hide;
        serde_json::to_value(obj).expect("API objects serialize")
    };
    let mut out = Vec::new();
    diff(&with, &without, "", &mut out);
    out
}

/// Paths of `with` that `without` lacks.
fn diff(with: &Value, without: &Value, at: &str, out: &mut Vec<(String, bool)>) {
    match (with, without) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let path = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                match b.get(k) {
                    Some(w) => diff(v, w, &path, out),
                    None => out.push((path, is_empty(v))),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                diff(v, w, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
