//! The value types and checks every kind shares, below the resource layer:
//! they know neither the [`Resource`](crate::resource::Resource) trait nor
//! any kind.

pub mod int_or_string;
pub mod protocol;
pub mod quantity;
pub mod selector;
pub mod validate;

pub use int_or_string::IntOrString;
pub use protocol::Protocol;
pub use quantity::Quantity;
pub use selector::{FieldSelector, LabelSelector, Selector};
pub use validate::FieldError;
