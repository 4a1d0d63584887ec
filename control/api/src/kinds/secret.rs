//! `Secret`: like a ConfigMap, for values that must not leak. `data` holds
//! base64 (the JSON form of Kubernetes' `[]byte`); `stringData` is
//! write-only: keel-control merges it into `data` on every write and never
//! stores it. `type` says which keys the Secret must hold. The [`Debug`]
//! form shows key names and sizes only, so a logged Secret leaks nothing.

use std::{collections::BTreeMap, fmt};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::config_map::{
    decode_base64, encode_base64, validate_entries, validate_immutable, validate_name,
    validate_size,
};
use crate::{
    primitives::validate::{Errors, FieldError},
    resource::{ObjectMeta, Resource},
};

pub const TYPE_OPAQUE: &str = "Opaque";
pub const TYPE_DOCKER_CONFIG_JSON: &str = "kubernetes.io/dockerconfigjson";
pub const TYPE_DOCKERCFG: &str = "kubernetes.io/dockercfg";
pub const TYPE_TLS: &str = "kubernetes.io/tls";
pub const TYPE_BASIC_AUTH: &str = "kubernetes.io/basic-auth";
pub const TYPE_SSH_AUTH: &str = "kubernetes.io/ssh-auth";
pub const TYPE_SERVICE_ACCOUNT_TOKEN: &str = "kubernetes.io/service-account-token";

/// The key a `kubernetes.io/dockerconfigjson` Secret holds.
pub const DOCKER_CONFIG_JSON_KEY: &str = ".dockerconfigjson";
/// The key a `kubernetes.io/dockercfg` Secret holds.
pub const DOCKERCFG_KEY: &str = ".dockercfg";

/// A Secret: sensitive data (passwords, tokens, keys, registry credentials)
/// that pods consume as environment variables or files, kept encrypted at rest
/// by keel-control.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Secret {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Key → base64 of the value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
    /// Key → value as text; merged into `data` on write (wins over `data`),
    /// never stored or returned.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub string_data: BTreeMap<String, String>,
    /// `Opaque` when unset on create.
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sizes = |m: &BTreeMap<String, String>| -> BTreeMap<String, usize> {
            m.iter().map(|(k, v)| (k.clone(), v.len())).collect()
        };
        f.debug_struct("Secret")
            .field("metadata", &self.metadata)
            .field("type", &self.type_)
            .field("data_base64_sizes", &sizes(&self.data))
            .field("string_data_sizes", &sizes(&self.string_data))
            .field("immutable", &self.immutable)
            .finish()
    }
}

impl Secret {
    /// The type, `Opaque` when unset.
    pub fn secret_type(&self) -> &str {
        if self.type_.is_empty() {
            TYPE_OPAQUE
        } else {
            &self.type_
        }
    }

    /// Merges `stringData` into `data` (a `stringData` key wins) and clears
    /// it, and fills the default type: what the server does on every write.
    pub fn normalize(&mut self) {
        for (k, v) in std::mem::take(&mut self.string_data) {
            self.data.insert(k, encode_base64(v.as_bytes()));
        }
        if self.type_.is_empty() {
            self.type_ = TYPE_OPAQUE.into();
        }
    }

    /// Every key with its decoded bytes (values that are not base64,
    /// refused on write, are skipped), `stringData` included.
    pub fn entries(&self) -> BTreeMap<String, Vec<u8>> {
        let mut out: BTreeMap<String, Vec<u8>> = self
            .data
            .iter()
            .filter_map(|(k, v)| decode_base64(v).ok().map(|b| (k.clone(), b)))
            .collect();
        for (k, v) in &self.string_data {
            out.insert(k.clone(), v.as_bytes().to_vec());
        }
        out
    }

    /// One key's decoded bytes.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        if let Some(v) = self.string_data.get(key) {
            return Some(v.as_bytes().to_vec());
        }
        self.data.get(key).and_then(|v| decode_base64(v).ok())
    }
}

impl Resource for Secret {
    const KIND: &'static str = "Secret";
    const API_VERSION: &'static str = "v1";
    const PLURAL: &'static str = "secrets";
    const NAMESPACED: bool = true;
    const EXTRA_FIELDS: &'static [&'static str] = &["type"];

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
    fn spec_eq(&self, other: &Self) -> bool {
        self.data == other.data
            && self.string_data == other.string_data
            && self.type_ == other.type_
            && self.immutable == other.immutable
    }
    fn copy_status(&mut self, _from: &Self) {}
    fn set_type_meta(&mut self) {
        self.api_version = Self::API_VERSION.into();
        self.kind = Self::KIND.into();
    }

    fn field(&self, path: &str) -> Option<String> {
        match path {
            "metadata.name" => Some(self.metadata.name.clone()),
            "metadata.namespace" => Some(self.metadata.namespace.clone()),
            "type" => Some(self.secret_type().to_string()),
            _ => None,
        }
    }

    fn validate(&self) -> Vec<FieldError> {
        let mut errs = Errors::new();
        crate::resource::validate_common(self, &self.api_version, &self.kind, &mut errs);
        validate_name(&self.metadata, &mut errs);
        validate_entries("data", &self.data, true, &mut errs);
        validate_entries("stringData", &self.string_data, false, &mut errs);
        // The size counts what will be stored: data with stringData merged.
        let entries = self.entries();
        validate_size(entries.values().map(Vec::len).sum(), &mut errs);
        // data and stringData may share a key: stringData wins, as in Kubernetes.
        let has = |k: &str| entries.contains_key(k);
        let require = |errs: &mut Errors, k: &str| {
            if !has(k) {
                errs.add(
                    format!("data[{k}]"),
                    format!("required for a Secret of type {:?}", self.secret_type()),
                );
            }
        };
        match self.secret_type() {
            TYPE_DOCKER_CONFIG_JSON | TYPE_DOCKERCFG => {
                let key = if self.secret_type() == TYPE_DOCKERCFG {
                    DOCKERCFG_KEY
                } else {
                    DOCKER_CONFIG_JSON_KEY
                };
                require(&mut errs, key);
                if let Some(v) = entries.get(key)
                    && serde_json::from_slice::<serde_json::Value>(v).is_err()
                {
                    errs.add(format!("data[{key}]"), "not valid JSON");
                }
            }
            TYPE_TLS => {
                require(&mut errs, "tls.crt");
                require(&mut errs, "tls.key");
            }
            TYPE_SSH_AUTH => require(&mut errs, "ssh-privatekey"),
            TYPE_BASIC_AUTH if !has("username") && !has("password") => {
                errs.add(
                    "data",
                    "a Secret of type \"kubernetes.io/basic-auth\" needs \"username\" or \"password\"",
                );
            }
            TYPE_SERVICE_ACCOUNT_TOKEN
                if !self
                    .metadata
                    .annotations
                    .contains_key("kubernetes.io/service-account.name") =>
            {
                errs.add(
                    "metadata.annotations[kubernetes.io/service-account.name]",
                    "required for a Secret of type \"kubernetes.io/service-account-token\"",
                );
            }
            _ => {}
        }
        if self.type_.len() > 253 {
            errs.add("type", "longer than 253 characters");
        }
        errs.0
    }

    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        let mut errs = Errors::new();
        if self.secret_type() != old.secret_type() {
            errs.add(
                "type",
                format!(
                    "field is immutable (was {:?}, now {:?})",
                    old.secret_type(),
                    self.secret_type()
                ),
            );
        }
        validate_immutable(
            old.immutable,
            self.immutable,
            self.entries() != old.entries(),
            Self::KIND,
            &mut errs,
        );
        errs.0
    }
}
