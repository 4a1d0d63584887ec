//! What every kind has in common: the [`Resource`] trait, a tagged
//! [`AnyObject`], lists, watch events and the `Status` error body.

use std::fmt::Debug;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{
    deployment::Deployment,
    endpoints::Endpoints,
    meta::ObjectMeta,
    node::Node,
    pod::Pod,
    service::Service,
    validate::{Errors, FieldError},
};

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
    /// Field-selector fields this kind supports beyond metadata.name/namespace.
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
            errs.check(
                "metadata.namespace",
                crate::validate::dns1123_label(&m.namespace),
            );
        }
    } else if !m.namespace.is_empty() {
        errs.add(
            "metadata.namespace",
            format!("{} is cluster-scoped and takes no namespace", R::KIND),
        );
    }
    for (k, v) in &m.labels {
        errs.check(
            format!("metadata.labels[{k}]"),
            crate::validate::label_key(k),
        );
        errs.check(
            format!("metadata.labels[{k}]"),
            crate::validate::label_value(v),
        );
    }
    for k in m.annotations.keys() {
        errs.check(
            format!("metadata.annotations[{k}]"),
            crate::validate::label_key(k),
        );
    }
}

macro_rules! resource_common {
    () => {
        fn meta(&self) -> &ObjectMeta {
            &self.metadata
        }
        fn meta_mut(&mut self) -> &mut ObjectMeta {
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

/// Any object the API serves, tagged by its kind.
#[derive(Debug, Clone, PartialEq)]
#[expect(
    clippy::large_enum_variant,
    reason = "objects are decoded and moved a few times per request; boxing would add an allocation to each"
)]
pub enum AnyObject {
    Node(Node),
    Pod(Pod),
    Service(Service),
    Endpoints(Endpoints),
    Deployment(Deployment),
}

/// The kinds, for paths, tables and the CLI's aliases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Kind {
    Node,
    Pod,
    Service,
    Endpoints,
    Deployment,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Node,
        Kind::Pod,
        Kind::Service,
        Kind::Endpoints,
        Kind::Deployment,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Node => Node::KIND,
            Kind::Pod => Pod::KIND,
            Kind::Service => Service::KIND,
            Kind::Endpoints => Endpoints::KIND,
            Kind::Deployment => Deployment::KIND,
        }
    }

    pub fn plural(&self) -> &'static str {
        match self {
            Kind::Node => Node::PLURAL,
            Kind::Pod => Pod::PLURAL,
            Kind::Service => Service::PLURAL,
            Kind::Endpoints => Endpoints::PLURAL,
            Kind::Deployment => Deployment::PLURAL,
        }
    }

    pub fn api_version(&self) -> &'static str {
        match self {
            Kind::Deployment => Deployment::API_VERSION,
            _ => "v1",
        }
    }

    pub fn namespaced(&self) -> bool {
        !matches!(self, Kind::Node)
    }

    /// Parses a kind as kubectl does: singular, plural or short name, any case.
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s.to_ascii_lowercase().as_str() {
            "node" | "nodes" | "no" => Kind::Node,
            "pod" | "pods" | "po" => Kind::Pod,
            "service" | "services" | "svc" => Kind::Service,
            "endpoints" | "endpoint" | "ep" => Kind::Endpoints,
            "deployment" | "deployments" | "deploy" => Kind::Deployment,
            _ => return None,
        })
    }

    /// The collection path (`/api/v1/namespaces/NS/pods`, `/api/v1/nodes`);
    /// an empty namespace of a namespaced kind means all namespaces.
    pub fn collection_path(&self, namespace: &str) -> String {
        let group = if *self == Kind::Deployment {
            "/apis/apps/v1"
        } else {
            "/api/v1"
        };
        if self.namespaced() && !namespace.is_empty() {
            format!("{group}/namespaces/{namespace}/{}", self.plural())
        } else {
            format!("{group}/{}", self.plural())
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Runs `$body` with `$o` bound to the typed object inside an [`AnyObject`].
#[macro_export]
macro_rules! with_object {
    ($any:expr, $o:ident => $body:expr) => {
        match $any {
            $crate::AnyObject::Node($o) => $body,
            $crate::AnyObject::Pod($o) => $body,
            $crate::AnyObject::Service($o) => $body,
            $crate::AnyObject::Endpoints($o) => $body,
            $crate::AnyObject::Deployment($o) => $body,
        }
    };
}

/// Why a document could not be read as an object. The message carries the
/// path of the offending field, e.g. `spec.containers[0]: unknown field `imag``.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{0}")]
    Syntax(String),
    #[error("kind: required")]
    MissingKind,
    #[error("kind: {0:?} is not a kind keel serves (Node, Pod, Service, Endpoints, Deployment)")]
    UnknownKind(String),
    #[error("{kind}: {path}: {message}")]
    Field {
        kind: &'static str,
        path: String,
        message: String,
    },
}

/// Decodes one typed object from a JSON value, reporting the field path on error.
pub fn decode<R: Resource>(value: serde_json::Value) -> Result<R, DecodeError> {
    serde_path_to_error::deserialize::<_, R>(value).map_err(|e| {
        let path = e.path().to_string();
        DecodeError::Field {
            kind: R::KIND,
            path: if path == "." {
                "(root)".to_string()
            } else {
                path
            },
            message: e.into_inner().to_string(),
        }
    })
}

impl AnyObject {
    /// Decodes by the document's `kind`.
    pub fn from_value(value: serde_json::Value) -> Result<Self, DecodeError> {
        let kind = match value.get("kind") {
            Some(serde_json::Value::String(k)) => k.clone(),
            Some(_) => return Err(DecodeError::Syntax("kind: must be a string".into())),
            None => return Err(DecodeError::MissingKind),
        };
        Ok(match Kind::parse(&kind).filter(|k| k.as_str() == kind) {
            Some(Kind::Node) => AnyObject::Node(decode(value)?),
            Some(Kind::Pod) => AnyObject::Pod(decode(value)?),
            Some(Kind::Service) => AnyObject::Service(decode(value)?),
            Some(Kind::Endpoints) => AnyObject::Endpoints(decode(value)?),
            Some(Kind::Deployment) => AnyObject::Deployment(decode(value)?),
            None => return Err(DecodeError::UnknownKind(kind)),
        })
    }

    /// Decodes JSON bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Self, DecodeError> {
        let value =
            serde_json::from_slice(bytes).map_err(|e| DecodeError::Syntax(e.to_string()))?;
        Self::from_value(value)
    }

    pub fn kind(&self) -> Kind {
        match self {
            AnyObject::Node(_) => Kind::Node,
            AnyObject::Pod(_) => Kind::Pod,
            AnyObject::Service(_) => Kind::Service,
            AnyObject::Endpoints(_) => Kind::Endpoints,
            AnyObject::Deployment(_) => Kind::Deployment,
        }
    }

    pub fn meta(&self) -> &ObjectMeta {
        with_object!(self, o => o.meta())
    }

    pub fn meta_mut(&mut self) -> &mut ObjectMeta {
        with_object!(self, o => o.meta_mut())
    }

    pub fn to_json_value(&self) -> serde_json::Value {
        with_object!(self, o => serde_json::to_value(o).expect("API objects always serialize"))
    }

    pub fn to_json(&self) -> Vec<u8> {
        with_object!(self, o => serde_json::to_vec(o).expect("API objects always serialize"))
    }

    pub fn validate(&self) -> Vec<FieldError> {
        with_object!(self, o => o.validate())
    }
}

macro_rules! any_from {
    ($($k:ident),*) => {$(
        impl From<$k> for AnyObject {
            fn from(o: $k) -> Self {
                AnyObject::$k(o)
            }
        }
        impl TryFrom<AnyObject> for $k {
            type Error = AnyObject;
            fn try_from(o: AnyObject) -> Result<Self, AnyObject> {
                match o {
                    AnyObject::$k(x) => Ok(x),
                    other => Err(other),
                }
            }
        }
    )*};
}
any_from!(Node, Pod, Service, Endpoints, Deployment);

/// A list response (`PodList`): items and the revision they were read at.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct List<T> {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    pub metadata: ListMeta,
    pub items: Vec<T>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListMeta {
    #[serde(default)]
    pub resource_version: String,
}

/// One line of a watch stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchEvent<T> {
    #[serde(rename = "type")]
    pub type_: EventType,
    pub object: T,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventType {
    Added,
    Modified,
    Deleted,
    /// Carries only metadata.resourceVersion: "you have seen everything up to here".
    Bookmark,
    /// The object is a [`Status`]; the watch ends (410 means relist).
    Error,
}

/// The error body every failed request returns, as Kubernetes does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    /// "Failure" or "Success".
    pub status: String,
    pub message: String,
    /// NotFound, AlreadyExists, Conflict, Invalid, BadRequest, Unauthorized,
    /// Forbidden, Expired, InternalError, MethodNotAllowed.
    pub reason: String,
    pub code: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<StatusDetails>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDetails {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<FieldError>,
}

impl Status {
    pub fn failure(code: u16, reason: &str, message: impl Into<String>) -> Self {
        Self {
            api_version: "v1".into(),
            kind: "Status".into(),
            status: "Failure".into(),
            message: message.into(),
            reason: reason.into(),
            code,
            details: None,
        }
    }

    pub fn success(message: impl Into<String>) -> Self {
        Self {
            status: "Success".into(),
            reason: String::new(),
            code: 200,
            ..Self::failure(200, "", message)
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
