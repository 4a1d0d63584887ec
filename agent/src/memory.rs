//! Keeping the agent's memory what it uses. glibc's allocator gives each
//! thread that allocates an arena of its own (up to eight per core) and
//! keeps freed memory in them; after a burst (thousands of Services
//! arriving, fifty pods starting at once on blocking threads) the resident
//! size would stay at the burst's peak. Two arenas, and handing freed pages
//! back every half minute, keep it near what is in use. (mimalloc, tried
//! instead, held twice as much here.)

use std::time::Duration;

/// Limits glibc malloc to two arenas; call before any thread exists.
pub fn limit_arenas() {
    // SAFETY: mallopt with a valid parameter and value, before other
    // threads allocate.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Returns freed memory to the system every half minute.
pub async fn trim_periodically() {
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    loop {
        tick.tick().await;
        // SAFETY: malloc_trim has no preconditions; it may run concurrently
        // with allocations (glibc locks each arena).
        unsafe {
            libc::malloc_trim(0);
        }
    }
}
