//! keel's API: Kubernetes-shaped objects (`Node`, `Pod`, `Service`,
//! `Endpoints`, `Deployment`, `ConfigMap`, `Secret`, `Event`), their validation, label and field selectors,
//! and the HTTP client the agent, the CLI and the tests use.
//!
//! Layers, bottom up; a module uses only the layers below its own (and, in
//! `kinds`, a Deployment uses the Pod it templates):
//!
//! 1. [`primitives`]: value types and checks the kinds share (`IntOrString`,
//!    `Protocol`, `Quantity`, selectors, validation helpers).
//! 2. [`resource`]: the generic resource layer (the [`Resource`] trait,
//!    metadata, lists, watch events, `Status`, decoding); it knows no kind.
//! 3. [`kinds`]: the concrete kinds.
//! 4. [`served`]: the closed set of kinds ([`Kind`], [`AnyObject`],
//!    [`with_object!`]) and the table of how each is served.
//! 5. [`client`]: the HTTP client.
//! 6. [`openapi`]: the OpenAPI v3 schemas of the served kinds, derived
//!    from their types.
//! 7. [`recorder`]: recording Events (aggregated, rate-limited, never
//!    blocking), through the client or any other [`recorder::Sink`].

pub mod client;
pub mod exec;
pub mod kinds;
pub mod openapi;
pub mod pki;
pub mod portforward;
pub mod primitives;
pub mod recorder;
pub mod resource;
pub mod served;
#[cfg(feature = "testing")]
pub mod testing;
pub mod vpc;

// The modules' own paths, which the agent, the CLI and the tests name
// (`keel_api::pod::Container`, `keel_api::validate::dns1123_subdomain`).
pub use kinds::{config_map, deployment, endpoints, event, node, pod, secret, service};
pub use primitives::{quantity, selector, validate};
pub use resource::meta;

pub use kinds::{ConfigMap, Deployment, Endpoints, Event, Node, Pod, Secret, Service};
pub use primitives::{
    FieldError, FieldSelector, IntOrString, LabelSelector, Protocol, Quantity, Selector,
};
pub use resource::{
    EventType, List, ListMeta, ObjectMeta, OwnerReference, Resource, Status, StatusDetails, Time,
    WatchEvent,
};
pub use served::{AnyObject, DecodeError, KINDS, Kind, KindInfo, Subresource};

// For `preserved_fields!`, which implements `JsonSchema` wherever it is used.
#[doc(hidden)]
pub use schemars;

#[cfg(test)]
mod tests;
