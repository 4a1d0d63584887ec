//! `WatchEvent`: one line of a watch stream, and what happened to its object.

use serde::{Deserialize, Serialize};

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
    /// The object is a [`Status`](super::status::Status); the watch ends (410 means relist).
    Error,
}
