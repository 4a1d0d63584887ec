//! Duplicate keys in a JSON body. serde_json keeps the last of a repeated
//! key without a word; Kubernetes' strict decoding (sigs.k8s.io/json)
//! names each, by path (`duplicate field "spec.replicas"`), and refuses the
//! body under `fieldValidation=Strict`, warns under `Warn`. The same holds
//! for patch bodies (merge and strategic merge patches) and for
//! server-side apply's YAML.

use std::{collections::HashSet, fmt};

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The paths of the keys repeated within one object, in body order
/// (`metadata.name`, `spec.containers[0].image`); a repeated key at the top
/// is its own name.
pub(super) fn duplicate_fields(body: &[u8]) -> Result<Vec<String>, serde_json::Error> {
    let mut found = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(body);
    Walk {
        path: String::new(),
        found: &mut found,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(found)
}

/// The same for a YAML document (server-side apply's body); keys that are
/// not strings (`80:`) are named as written.
pub(super) fn duplicate_fields_yaml(body: &[u8]) -> Result<Vec<String>, serde_yaml_ng::Error> {
    let mut found = Vec::new();
    let de = serde_yaml_ng::Deserializer::from_slice(body);
    Walk {
        path: String::new(),
        found: &mut found,
    }
    .deserialize(de)?;
    Ok(found)
}

struct Walk<'a> {
    path: String,
    found: &'a mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        loop {
            let walk = Walk {
                path: format!("{}[{i}]", self.path),
                found: &mut *self.found,
            };
            if seq.next_element_seed(walk)?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(Key(key)) = map.next_key::<Key>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if !seen.insert(key) && !self.found.contains(&path) {
                self.found.push(path.clone());
            }
            map.next_value_seed(Walk {
                path,
                found: &mut *self.found,
            })?;
        }
        Ok(())
    }
}

/// A mapping key: a string, or a number or boolean as YAML allows.
struct Key(String);

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping key")
            }
            fn visit_str<E>(self, s: &str) -> Result<Key, E> {
                Ok(Key(s.to_owned()))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Key, E> {
                Ok(Key(n.to_string()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Key, E> {
                Ok(Key(n.to_string()))
            }
            fn visit_f64<E>(self, n: f64) -> Result<Key, E> {
                Ok(Key(n.to_string()))
            }
            fn visit_bool<E>(self, b: bool) -> Result<Key, E> {
                Ok(Key(b.to_string()))
            }
            fn visit_unit<E>(self) -> Result<Key, E> {
                Ok(Key("null".into()))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::{duplicate_fields, duplicate_fields_yaml};

    #[test]
    fn repeated_keys_are_named_by_path_once_each() {
        let body = br#"{"kind":"Pod","metadata":{"name":"a","name":"b","name":"c"},
            "spec":{"containers":[{"name":"x","image":"i","image":"j"}]},"kind":"Pod"}"#;
        assert_eq!(
            duplicate_fields(body).unwrap(),
            ["metadata.name", "spec.containers[0].image", "kind"]
        );
        assert!(
            duplicate_fields(br#"{"a":{"b":1},"c":{"b":2},"d":[{"b":1},{"b":2}]}"#)
                .unwrap()
                .is_empty()
        );
        assert!(duplicate_fields(b"{\"a\":").is_err());
    }

    #[test]
    fn repeated_yaml_keys_are_named_by_path() {
        let body = b"kind: Service\nmetadata:\n  name: a\n  name: b\nspec:\n  ports:\n  - port: 80\n    port: 81\n  selector: {app: web, 80: x, 80: y}\n";
        assert_eq!(
            duplicate_fields_yaml(body).unwrap(),
            ["metadata.name", "spec.ports[0].port", "spec.selector.80"]
        );
        assert!(
            duplicate_fields_yaml(b"a: {b: 1}\nc: {b: ~}\nd: [{b: 1}, {b: 2}]\n")
                .unwrap()
                .is_empty()
        );
        assert!(duplicate_fields_yaml(b"a: [").is_err());
    }
}
