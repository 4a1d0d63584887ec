//! The generic resource layer: what every kind has in common — the
//! [`Resource`] trait, object metadata, lists, watch events, the `Status`
//! error body and typed decoding. It knows no concrete kind; the kinds
//! (`crate::kinds`) implement [`Resource`] on top of it.

pub mod decode;
pub mod list;
pub mod meta;
pub mod object;
pub mod preserved;
pub mod status;
pub mod watch;

pub(crate) use self::object::{resource_common, validate_common};
pub use self::{
    decode::{FieldDecodeError, decode},
    list::{List, ListMeta},
    meta::{ObjectMeta, OwnerReference, Time},
    object::{META_FIELDS, Resource},
    preserved::preserved_paths,
    status::{Status, StatusDetails},
    watch::{EventType, WatchEvent},
};
