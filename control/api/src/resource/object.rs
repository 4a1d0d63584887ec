//! The [`Resource`] trait every kind implements, and the checks and
//! methods every kind shares through it.

use std::fmt::Debug;

use serde::{Serialize, de::DeserializeOwned};

use super::meta::ObjectMeta;
use crate::primitives::validate::{self, Errors, FieldError};

/// Field-selector fields every kind has; [`Resource::field`] answers them.
pub const META_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];

/// A kind the API serves.
pub trait Resource:
    Clone + Debug + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static
{
    const KIND: &'static str;
    /// `v1` or `apps/v1`.
    const API_VERSION: &'static str;
    /// Lower-case plural used in paths (`pods`).
    const PLURAL: &'static str;
    const NAMESPACED: bool;
    /// Field-selector fields this kind supports beyond [`META_FIELDS`]: the
    /// only list of them (keel-control refuses any other), each answered by
    /// [`Resource::field`].
    const EXTRA_FIELDS: &'static [&'static str] = &[];

    fn meta(&self) -> &ObjectMeta;
    fn meta_mut(&mut self) -> &mut ObjectMeta;

    /// Checks the object on its own (names, ranges, syntax). Errors name fields.
    fn validate(&self) -> Vec<FieldError>;

    /// Checks an update against the stored object (immutable fields).
    fn validate_update(&self, _old: &Self) -> Vec<FieldError> {
        Vec::new()
    }

    /// Whether two objects have the same spec (a change bumps `generation`).
    fn spec_eq(&self, other: &Self) -> bool;

    /// Replaces this object's status with `from`'s (a spec update keeps the
    /// stored status; a status update keeps the stored spec).
    fn copy_status(&mut self, from: &Self);

    /// Copies everything but the status from `from` (for status updates).
    fn with_status_of(from: &Self, status_of: &Self) -> Self {
        let mut out = from.clone();
        out.copy_status(status_of);
        out
    }

    /// The value of a field-selector field, if the kind has it.
    fn field(&self, path: &str) -> Option<String> {
        match path {
            "metadata.name" => Some(self.meta().name.clone()),
            "metadata.namespace" => Some(self.meta().namespace.clone()),
            _ => None,
        }
    }

    /// `namespace/name` or `name` for cluster-scoped kinds.
    fn key(&self) -> String {
        let m = self.meta();
        if Self::NAMESPACED {
            format!("{}/{}", m.namespace, m.name)
        } else {
            m.name.clone()
        }
    }

    /// Fills apiVersion and kind.
    fn set_type_meta(&mut self);
}

/// Checks apiVersion/kind and metadata common to every kind.
pub(crate) fn validate_common<R: Resource>(
    r: &R,
    api_version: &str,
    kind: &str,
    errs: &mut Errors,
) {
    if !api_version.is_empty() && api_version != R::API_VERSION {
        errs.add(
            "apiVersion",
            format!(
                "{api_version:?} is not supported for {} (use {})",
                R::KIND,
                R::API_VERSION
            ),
        );
    }
    if !kind.is_empty() && kind != R::KIND {
        errs.add("kind", format!("{kind:?} does not match {}", R::KIND));
    }
    let m = r.meta();
    if m.name.is_empty() && m.generate_name.is_empty() {
        errs.add("metadata.name", "required");
    }
    if R::NAMESPACED {
        if m.namespace.is_empty() {
            errs.add("metadata.namespace", "required");
        } else {
            errs.check("metadata.namespace", validate::dns1123_label(&m.namespace));
        }
    } else if !m.namespace.is_empty() {
        errs.add(
            "metadata.namespace",
            format!("{} is cluster-scoped and takes no namespace", R::KIND),
        );
    }
    for (k, v) in &m.labels {
        errs.check(format!("metadata.labels[{k}]"), validate::label_key(k));
        errs.check(format!("metadata.labels[{k}]"), validate::label_value(v));
    }
    for k in m.annotations.keys() {
        errs.check(format!("metadata.annotations[{k}]"), validate::label_key(k));
    }
    for (i, f) in m.finalizers.iter().enumerate() {
        let path = format!("metadata.finalizers[{i}]");
        match f.as_str() {
            "orphan" | "foregroundDeletion" => errs.add(
                path,
                format!(
                    "{f:?}: keel-control's garbage collector does not process this finalizer, so the object would never go (delete with propagationPolicy Background)"
                ),
            ),
            "kubernetes" => {}
            f if !f.contains('/') => errs.add(
                path,
                format!(
                    "{f:?}: name is neither a standard finalizer name nor is it fully qualified (use DOMAIN/NAME)"
                ),
            ),
            f => errs.check(path, validate::label_key(f)),
        }
    }
    // Kubernetes' ValidateAnnotationsSize: keys and values together. Labels
    // have no such total in Kubernetes; keel bounds them the same way, as
    // every label is indexed.
    for (field, map) in [
        ("metadata.annotations", &m.annotations),
        ("metadata.labels", &m.labels),
    ] {
        let size: usize = map.iter().map(|(k, v)| k.len() + v.len()).sum();
        if size > TOTAL_METADATA_MAP_BYTES {
            errs.add(
                field,
                format!("Too long: must have at most {TOTAL_METADATA_MAP_BYTES} bytes"),
            );
        }
    }
}

/// Kubernetes' `TotalAnnotationSizeLimitB` (256 KiB).
pub const TOTAL_METADATA_MAP_BYTES: usize = 256 * 1024;

/// The [`Resource`] methods every kind with `metadata`, `spec` and `status`
/// fields writes the same way.
macro_rules! resource_common {
    () => {
        fn meta(&self) -> &$crate::resource::meta::ObjectMeta {
            &self.metadata
        }
        fn meta_mut(&mut self) -> &mut $crate::resource::meta::ObjectMeta {
            &mut self.metadata
        }
        fn spec_eq(&self, other: &Self) -> bool {
            self.spec == other.spec
        }
        fn copy_status(&mut self, from: &Self) {
            self.status = from.status.clone();
        }
        fn set_type_meta(&mut self) {
            self.api_version = Self::API_VERSION.to_string();
            self.kind = Self::KIND.to_string();
        }
    };
}
pub(crate) use resource_common;
