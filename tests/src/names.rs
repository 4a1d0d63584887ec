//! Unique, short names for everything a test creates, all starting with
//! [`TEST_PREFIX`] so the sweeper can find leftovers.

use std::sync::atomic::{AtomicU32, Ordering};

/// Prefix of every namespace, cgroup and pin a test creates.
pub const TEST_PREFIX: &str = "keel-t";

/// `keel-t-<what>-<pid>-<n>`: unique across concurrently running test
/// threads and test binaries.
pub fn unique(what: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{TEST_PREFIX}-{what}-{}-{n}", std::process::id())
}
