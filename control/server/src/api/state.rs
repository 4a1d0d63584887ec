//! `AppState`: what every handler can reach.

use std::time::Duration;

use crate::store::Store;

/// What every handler can reach.
pub struct AppState {
    pub store: Store,
    pub token: String,
    /// How often an idle watch gets a BOOKMARK.
    pub bookmark_interval: Duration,
}
