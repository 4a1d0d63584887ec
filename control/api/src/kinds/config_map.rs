//! `ConfigMap`: named pieces of configuration (`data` as text,
//! `binaryData` as bytes) that pods consume as environment variables or
//! files. The checks both ConfigMaps and Secrets share (key syntax, total
//! size, immutability) live here too.

use std::collections::BTreeMap;

use base64::Engine as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    primitives::validate::{self, Errors, FieldError},
    resource::{ObjectMeta, Resource},
};

/// Kubernetes' limit on a ConfigMap's or Secret's data (`MaxSecretSize`,
/// `MaxConfigMapSize`: 1 MiB).
pub const MAX_DATA_BYTES: usize = 1024 * 1024;

/// A ConfigMap: named pieces of configuration that pods consume as environment
/// variables or as files in a volume.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigMap {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Key → text value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
    /// Values base64-encoded in JSON, as Kubernetes sends `[]byte`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub binary_data: BTreeMap<String, String>,
    /// Once true, `data` and `binaryData` never change and this stays true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
}

impl ConfigMap {
    /// Every key with its bytes: `data` as UTF-8, `binaryData` decoded.
    /// A `binaryData` value that is not base64 (refused on write) is skipped.
    pub fn entries(&self) -> BTreeMap<String, Vec<u8>> {
        let mut out: BTreeMap<String, Vec<u8>> = self
            .data
            .iter()
            .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
            .collect();
        for (k, v) in &self.binary_data {
            if let Ok(b) = decode_base64(v) {
                out.insert(k.clone(), b);
            }
        }
        out
    }
}

/// Decodes the standard base64 Kubernetes writes for `[]byte`.
pub fn decode_base64(s: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| format!("not valid base64: {e}"))
}

/// Encodes bytes as Kubernetes' JSON form of `[]byte`.
pub fn encode_base64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// A ConfigMap or Secret key: `[-._a-zA-Z0-9]+`, at most 253 characters,
/// not `.` or `..` (Kubernetes' `IsConfigMapKey`).
pub fn data_key(k: &str) -> Result<(), String> {
    if k.is_empty() {
        return Err("a key must not be empty".into());
    }
    if k.len() > 253 {
        return Err(format!("key {k:?} is longer than 253 characters"));
    }
    if k == "." || k == ".." {
        return Err(format!("key {k:?} is not allowed"));
    }
    if k.starts_with("..") {
        return Err(format!("key {k:?} must not start with '..'"));
    }
    if !k
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        return Err(format!(
            "key {k:?} must consist of alphanumeric characters, '-', '_' or '.'"
        ));
    }
    Ok(())
}

/// The name check every kind with DNS-subdomain names makes.
pub(crate) fn validate_name(meta: &ObjectMeta, errs: &mut Errors) {
    if !meta.name.is_empty() {
        errs.check("metadata.name", validate::dns1123_subdomain(&meta.name));
    }
}

/// Checks the keys of `map` (named `field`), their values' base64 when
/// `base64` is set, and returns the total size of the values in bytes.
pub(crate) fn validate_entries(
    field: &str,
    map: &BTreeMap<String, String>,
    base64: bool,
    errs: &mut Errors,
) -> usize {
    let mut size = 0;
    for (k, v) in map {
        errs.check(format!("{field}[{k}]"), data_key(k));
        if base64 {
            match decode_base64(v) {
                Ok(b) => size += b.len(),
                Err(e) => errs.add(format!("{field}[{k}]"), e),
            }
        } else {
            size += v.len();
        }
    }
    size
}

/// Refuses a key present in both maps.
pub(crate) fn validate_disjoint(
    field: &str,
    a: &BTreeMap<String, String>,
    other: &str,
    b: &BTreeMap<String, String>,
    errs: &mut Errors,
) {
    for k in a.keys().filter(|k| b.contains_key(*k)) {
        errs.add(
            format!("{field}[{k}]"),
            format!("duplicate of key {k:?} in {other}"),
        );
    }
}

pub(crate) fn validate_size(total: usize, errs: &mut Errors) {
    if total > MAX_DATA_BYTES {
        errs.add(
            "data",
            format!("the data holds {total} bytes; at most {MAX_DATA_BYTES} are allowed"),
        );
    }
}

/// `immutable: true` on the stored object: the data and the flag may not change.
pub(crate) fn validate_immutable(
    old_immutable: Option<bool>,
    new_immutable: Option<bool>,
    data_changed: bool,
    kind: &str,
    errs: &mut Errors,
) {
    if old_immutable != Some(true) {
        return;
    }
    if new_immutable != Some(true) {
        errs.add(
            "immutable",
            format!("field is immutable when the {kind} is immutable"),
        );
    }
    if data_changed {
        errs.add(
            "data",
            format!("field is immutable when `immutable` is set (the {kind} is immutable)"),
        );
    }
}

impl Resource for ConfigMap {
    const KIND: &'static str = "ConfigMap";
    const API_VERSION: &'static str = "v1";
    const PLURAL: &'static str = "configmaps";
    const NAMESPACED: bool = true;

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
    fn spec_eq(&self, other: &Self) -> bool {
        self.data == other.data
            && self.binary_data == other.binary_data
            && self.immutable == other.immutable
    }
    fn copy_status(&mut self, _from: &Self) {}
    fn set_type_meta(&mut self) {
        self.api_version = Self::API_VERSION.into();
        self.kind = Self::KIND.into();
    }

    fn validate(&self) -> Vec<FieldError> {
        let mut errs = Errors::new();
        crate::resource::validate_common(self, &self.api_version, &self.kind, &mut errs);
        validate_name(&self.metadata, &mut errs);
        let mut size = validate_entries("data", &self.data, false, &mut errs);
        size += validate_entries("binaryData", &self.binary_data, true, &mut errs);
        validate_disjoint(
            "binaryData",
            &self.binary_data,
            "data",
            &self.data,
            &mut errs,
        );
        validate_size(size, &mut errs);
        errs.0
    }

    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        let mut errs = Errors::new();
        validate_immutable(
            old.immutable,
            self.immutable,
            self.data != old.data || self.binary_data != old.binary_data,
            Self::KIND,
            &mut errs,
        );
        errs.0
    }
}

#[cfg(test)]
mod tests;
