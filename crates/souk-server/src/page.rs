//! What every served page shares below the handlers: request ids, the clock, and the
//! background write of a logged page (the page log's policy is the engine's).
//! The handlers of recommendations and search both use it; it uses neither.

/// A fresh request id for a served page (`r-` and 16 hex digits).
pub fn new_request_id() -> String {
    format!("r-{:016x}", rand_u64())
}

/// A random 64-bit number.
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // A per-process random key hashed with a counter: unique and unpredictable enough for
    // request ids without another dependency.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    hasher.finish()
}

/// The wall clock in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Write a logged page in the background (logging never delays or fails a page); the
/// online click model sees the page at once.
pub fn log_page(
    state: &crate::state::AppState,
    record: souk_engine::serving::page_log::PageRecord,
    log: Option<std::sync::Arc<souk_engine::rank::ranker::FeatureLog>>,
) {
    if let Some((online, _)) = &state.online {
        record.observe(online);
    }
    let store = state.store.clone();
    let metrics = state.metrics.clone();
    let searched = record.events.iter().any(|e| e.event_type == souk_engine::EventType::Search);
    tokio::task::spawn_blocking(move || match record.write(store.as_ref(), log.as_deref()) {
        Ok(()) if searched => metrics.count_search_logged(),
        Ok(()) => {}
        Err(e) => tracing::error!(error = %e, "logging a served page failed"),
    });
}
