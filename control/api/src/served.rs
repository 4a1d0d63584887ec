//! The closed set of kinds keel serves, declared once in the table below
//! (`served_kinds! { … }`). Each row names a type from `crate::kinds` and
//! how the API serves it; from the rows come [`Kind`], the [`KINDS`] table
//! of [`KindInfo`], [`AnyObject`] and [`with_object!`](crate::with_object).
//! keel-control's routes and kind resolution, keelctl's names for kinds and
//! the client's paths all read [`KindInfo`], and discovery (`/api`, `/apis`
//! and their resource lists) has what it needs there too. Adding a kind is
//! its type plus one row.
//!
//! What a row takes from the type's [`Resource`] impl (kind, apiVersion,
//! plural, scope, field-selector fields) is not repeated in the row.

use serde::{Deserialize, Serialize};

use crate::{
    kinds::{ConfigMap, Deployment, Endpoints, Event, Node, Pod, Secret, Service},
    primitives::FieldError,
    resource::{self, FieldDecodeError, META_FIELDS, ObjectMeta, Resource},
};

/// Declares the served kinds: see the table below for the row syntax. The
/// leading `$` is passed in so the generated `with_object!` can have
/// metavariables of its own.
macro_rules! served_kinds {
    ($d:tt $(
        $ty:ident {
            singular: $singular:literal,
            short_names: [$($short:literal),* $(,)?],
            categories: [$($category:literal),* $(,)?],
            subresources: [$($sub:ident),* $(,)?],
            user_writable: $writable:literal $(,)?
        }
    ),+ $(,)?) => {
        const COUNT: usize = [$(stringify!($ty)),+].len();

        /// A served kind, for paths, tables and the CLI's names for kinds.
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        pub enum Kind {
            $($ty),+
        }

        impl Kind {
            /// Every kind, in the table's order.
            pub const ALL: [Kind; COUNT] = [$(Kind::$ty),+];

            /// Adds the schema of this kind's type (and of every type it
            /// refers to) to `generator`'s definitions and returns a
            /// reference to it: see [`crate::openapi`].
            pub fn json_schema(self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
                match self {
                    $(Kind::$ty => generator.subschema_for::<$ty>()),+
                }
            }
        }

        /// The table: one row per kind, in [`Kind`]'s order.
        pub static KINDS: [KindInfo; COUNT] = [$(
            KindInfo {
                kind: Kind::$ty,
                name: <$ty as Resource>::KIND,
                api_version: <$ty as Resource>::API_VERSION,
                plural: <$ty as Resource>::PLURAL,
                singular: $singular,
                short_names: &[$($short),*],
                categories: &[$($category),*],
                namespaced: <$ty as Resource>::NAMESPACED,
                subresources: &[$(Subresource::$sub),*],
                user_writable: $writable,
                extra_fields: <$ty as Resource>::EXTRA_FIELDS,
            }
        ),+];

        /// Any object the API serves, tagged by its kind.
        #[derive(Debug, Clone, PartialEq)]
        #[expect(
            clippy::large_enum_variant,
            reason = "objects are decoded and moved a few times per request; boxing would add an allocation to each"
        )]
        pub enum AnyObject {
            $($ty($ty)),+
        }

        impl AnyObject {
            pub fn kind(&self) -> Kind {
                match self {
                    $(AnyObject::$ty(_) => Kind::$ty),+
                }
            }

            /// Decodes `value` as an object of `kind`.
            fn decode_as(kind: Kind, value: serde_json::Value) -> Result<Self, FieldDecodeError> {
                match kind {
                    $(Kind::$ty => resource::decode(value).map(AnyObject::$ty)),+
                }
            }
        }

        $(
            impl From<$ty> for AnyObject {
                fn from(o: $ty) -> Self {
                    AnyObject::$ty(o)
                }
            }

            impl TryFrom<AnyObject> for $ty {
                type Error = AnyObject;
                fn try_from(o: AnyObject) -> Result<Self, AnyObject> {
                    match o {
                        AnyObject::$ty(x) => Ok(x),
                        other => Err(other),
                    }
                }
            }
        )+

        /// Runs `$body` with `$o` bound to the typed object inside an [`AnyObject`].
        ///
        /// ```
        /// use keel_api::{AnyObject, Pod, Resource, with_object};
        ///
        /// let mut pod = Pod::default();
        /// pod.metadata.name = "web".into();
        /// let any = AnyObject::from(pod);
        /// assert_eq!(with_object!(&any, o => o.key()), "/web");
        /// ```
        #[macro_export]
        macro_rules! with_object {
            ($d any:expr, $d o:ident => $d body:expr) => {
                match $d any {
                    $($d crate::served::AnyObject::$ty($d o) => $d body,)+
                }
            };
        }
    };
}

served_kinds! { $
    Node {
        singular: "node",
        short_names: ["no"],
        categories: [],
        subresources: [Status],
        user_writable: true,
    },
    Pod {
        singular: "pod",
        short_names: ["po"],
        categories: ["all"],
        subresources: [Status],
        user_writable: true,
    },
    Service {
        singular: "service",
        short_names: ["svc"],
        categories: ["all"],
        subresources: [Status],
        user_writable: true,
    },
    // Derived by keel-control from Services and Pods. Kubernetes' singular
    // is `endpoints`; keelctl has always also taken `endpoint`.
    Endpoints {
        singular: "endpoint",
        short_names: ["ep"],
        categories: [],
        subresources: [],
        user_writable: false,
    },
    Deployment {
        singular: "deployment",
        short_names: ["deploy"],
        categories: ["all"],
        subresources: [Status, Scale],
        user_writable: true,
    },
    ConfigMap {
        singular: "configmap",
        short_names: ["cm"],
        categories: [],
        subresources: [],
        user_writable: true,
    },
    Secret {
        singular: "secret",
        short_names: [],
        categories: [],
        subresources: [],
        user_writable: true,
    },
    // Written by the scheduler, the controllers and the agents; people may
    // write them too, as Kubernetes allows.
    Event {
        singular: "event",
        short_names: ["ev"],
        categories: [],
        subresources: [],
        user_writable: true,
    },
}

/// A subresource served under an object's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subresource {
    /// `…/NAME/status`: reads the object; a write changes only its status
    /// (the path agents and controllers report through).
    Status,
    /// `…/NAME/scale`: an `autoscaling/v1` `Scale` of the object's
    /// `spec.replicas` (`kubectl scale`).
    Scale,
}

impl Subresource {
    /// The path segment after the object's name.
    pub fn path(self) -> &'static str {
        match self {
            Subresource::Status => "status",
            Subresource::Scale => "scale",
        }
    }
}

/// How the API serves one kind: a row of [`KINDS`].
#[derive(Debug)]
pub struct KindInfo {
    pub kind: Kind,
    /// The objects' `kind` (`Pod`).
    pub name: &'static str,
    /// `v1` (the core group) or `GROUP/VERSION` (`apps/v1`).
    pub api_version: &'static str,
    /// The name in paths (`pods`).
    pub plural: &'static str,
    /// Discovery's `singularName`; keelctl takes it as a name for the kind.
    pub singular: &'static str,
    /// kubectl's short names (`po`, `svc`).
    pub short_names: &'static [&'static str],
    /// Groups a client can ask for at once (`kubectl get all`).
    pub categories: &'static [&'static str],
    pub namespaced: bool,
    pub subresources: &'static [Subresource],
    /// False for kinds keel-control derives from others: users may read
    /// them, and their writes are refused with 403 Forbidden.
    pub user_writable: bool,
    /// Field-selector fields beyond [`META_FIELDS`]: the type's
    /// [`Resource::EXTRA_FIELDS`].
    pub extra_fields: &'static [&'static str],
}

impl KindInfo {
    /// The API group: empty for the core group.
    pub fn group(&self) -> &'static str {
        self.api_version.rsplit_once('/').map_or("", |(g, _)| g)
    }

    pub fn version(&self) -> &'static str {
        self.api_version
            .rsplit_once('/')
            .map_or(self.api_version, |(_, v)| v)
    }

    /// Where the kind's group-version is served: `/api/v1` for the core
    /// group, `/apis/GROUP/VERSION` for the others.
    pub fn group_version_path(&self) -> String {
        if self.group().is_empty() {
            format!("/api/{}", self.api_version)
        } else {
            format!("/apis/{}", self.api_version)
        }
    }

    /// The collection path (`/api/v1/namespaces/NS/pods`, `/api/v1/nodes`);
    /// an empty namespace of a namespaced kind means all namespaces.
    pub fn collection_path(&self, namespace: &str) -> String {
        let base = self.group_version_path();
        if self.namespaced && !namespace.is_empty() {
            format!("{base}/namespaces/{namespace}/{}", self.plural)
        } else {
            format!("{base}/{}", self.plural)
        }
    }

    /// Every field list and watch may select on, metadata first.
    pub fn field_selectors(&self) -> impl Iterator<Item = &'static str> + use<> {
        META_FIELDS.iter().chain(self.extra_fields).copied()
    }

    /// The verbs users have on the kind, as discovery lists them.
    pub fn verbs(&self) -> &'static [&'static str] {
        if self.user_writable {
            &[
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ]
        } else {
            &["get", "list", "watch"]
        }
    }

    pub fn has(&self, sub: Subresource) -> bool {
        self.subresources.contains(&sub)
    }

    /// Whether `name` names this kind as kubectl takes it: kind, singular,
    /// plural or short name, in any case.
    fn is_named(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        name.eq_ignore_ascii_case(self.name)
            || name == self.singular
            || name == self.plural
            || self.short_names.contains(&name.as_str())
    }
}

impl Kind {
    /// This kind's row of the table.
    pub fn info(self) -> &'static KindInfo {
        &KINDS[self as usize]
    }

    pub fn as_str(&self) -> &'static str {
        self.info().name
    }

    pub fn plural(&self) -> &'static str {
        self.info().plural
    }

    pub fn api_version(&self) -> &'static str {
        self.info().api_version
    }

    pub fn namespaced(&self) -> bool {
        self.info().namespaced
    }

    /// Parses a kind as kubectl does: singular, plural or short name, any case.
    pub fn parse(s: &str) -> Option<Kind> {
        KINDS.iter().find(|k| k.is_named(s)).map(|k| k.kind)
    }

    /// The kind of a typed object.
    pub fn of<R: Resource>() -> Kind {
        KINDS
            .iter()
            .find(|k| k.name == R::KIND)
            .map(|k| k.kind)
            .expect("every Resource is a row of the table")
    }

    /// See [`KindInfo::collection_path`].
    pub fn collection_path(&self, namespace: &str) -> String {
        self.info().collection_path(namespace)
    }

    /// `Node, Pod, …`, in the table's order.
    fn names() -> String {
        KINDS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a document could not be read as an object. The message carries the
/// path of the offending field, e.g. `spec.containers[0]: unknown field `imag``.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{0}")]
    Syntax(String),
    #[error("kind: required")]
    MissingKind,
    #[error("kind: {0:?} is not a kind keel serves ({served})", served = Kind::names())]
    UnknownKind(String),
    #[error(transparent)]
    Field(#[from] FieldDecodeError),
}

impl AnyObject {
    /// Decodes by the document's `kind`.
    pub fn from_value(value: serde_json::Value) -> Result<Self, DecodeError> {
        let kind = match value.get("kind") {
            Some(serde_json::Value::String(k)) => k.clone(),
            Some(_) => return Err(DecodeError::Syntax("kind: must be a string".into())),
            None => return Err(DecodeError::MissingKind),
        };
        match KINDS.iter().find(|k| k.name == kind) {
            Some(k) => Ok(Self::decode_as(k.kind, value)?),
            None => Err(DecodeError::UnknownKind(kind)),
        }
    }

    /// Decodes JSON bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Self, DecodeError> {
        let value =
            serde_json::from_slice(bytes).map_err(|e| DecodeError::Syntax(e.to_string()))?;
        Self::from_value(value)
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

    /// The value of a field-selector field, if the kind has it.
    pub fn field(&self, path: &str) -> Option<String> {
        with_object!(self, o => o.field(path))
    }
}
