//! List and watch options from the query string (`labelSelector`,
//! `fieldSelector`, `watch`, `resourceVersion`, `allowWatchBookmarks`,
//! `timeoutSeconds`), checked against the kind, and the filter they make.

use std::{collections::HashMap, time::Duration};

use keel_api::{FieldSelector, KindInfo, Selector};

use super::error::ApiError;
use crate::store::{Obj, Store};

/// How long a read waits for the store to reach a resourceVersion it has
/// not seen yet (Kubernetes' watch cache `blockTimeout`), before answering
/// "Too large resource version".
pub(super) const FRESHNESS_WAIT: Duration = Duration::from_secs(3);

/// Waits (at most `limit`) until the store is at `rv` or later; the
/// Kubernetes error for a version it never reached otherwise.
pub(super) async fn wait_for_revision(
    store: &Store,
    rv: u64,
    limit: Duration,
) -> Result<(), ApiError> {
    let mut revisions = store.subscribe();
    let reached = tokio::time::timeout(limit, async {
        loop {
            if store.snapshot().revision >= rv {
                return true;
            }
            if revisions.changed().await.is_err() {
                return false;
            }
        }
    })
    .await;
    match reached {
        Ok(true) => Ok(()),
        _ => Err(ApiError::too_large_resource_version(
            rv,
            store.snapshot().revision,
        )),
    }
}

/// Parsed list/watch options.
pub(super) struct ListOptions {
    pub labels: Selector,
    pub fields: FieldSelector,
    pub watch: bool,
    /// `resourceVersion`: None when unset, "" or "0" (any version).
    pub resource_version: Option<u64>,
    pub bookmarks: bool,
    pub timeout: Option<Duration>,
}

impl ListOptions {
    /// Reads the options of a list or watch of `kind`; a field selector may
    /// name only the fields the kind's table row lists.
    pub fn parse(kind: &KindInfo, q: &HashMap<String, String>) -> Result<Self, ApiError> {
        let labels = Selector::parse(q.get("labelSelector").map(String::as_str).unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("labelSelector: {e}")))?;
        let fields = FieldSelector::parse(q.get("fieldSelector").map(String::as_str).unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("fieldSelector: {e}")))?;
        if let Some(f) = fields
            .fields()
            .find(|f| !kind.field_selectors().any(|s| s == *f))
        {
            return Err(ApiError::bad_request(format!(
                "fieldSelector: field {f:?} is not supported for {} (supported: {})",
                kind.name,
                kind.field_selectors().collect::<Vec<_>>().join(", ")
            )));
        }
        // Go's strconv.ParseBool, as Kubernetes reads these (the Python
        // client sends `watch=True`).
        let flag = |k: &str| {
            q.get(k)
                .is_some_and(|v| matches!(v.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True"))
        };
        let resource_version = match q.get("resourceVersion").map(String::as_str) {
            None | Some("") | Some("0") => None,
            Some(rv) => Some(rv.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!(
                    "resourceVersion: {rv:?} is not a valid resource version (a number this server issued)"
                ))
            })?),
        };
        let timeout = match q.get("timeoutSeconds") {
            Some(t) => Some(Duration::from_secs(t.parse().map_err(|_| {
                ApiError::bad_request(format!("timeoutSeconds: {t:?} is not a number"))
            })?)),
            None => None,
        };
        Ok(ListOptions {
            labels,
            fields,
            watch: flag("watch"),
            resource_version,
            bookmarks: flag("allowWatchBookmarks"),
            timeout,
        })
    }

    /// Whether `obj` is in the list: in `ns` (any namespace when `None`) and
    /// matching both selectors.
    pub fn matches(&self, obj: &Obj, ns: Option<&str>) -> bool {
        ns.is_none_or(|ns| obj.meta().namespace == ns)
            && self.labels.matches(&obj.meta().labels)
            && self.fields.matches(|f| obj.field(f))
    }
}
