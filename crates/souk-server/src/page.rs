//! What every served page shares below the handlers: request ids, randomness for log
//! sampling and the explore arm, the clock, and the order of a page's feature rows.
//! The handlers of recommendations and search both use it; it uses neither.

/// A fresh request id for a served page (`r-` and 16 hex digits).
pub fn new_request_id() -> String {
    format!("r-{:016x}", rand_u64())
}

/// A random 64-bit number.
pub fn rand_u64() -> u64 {
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

/// The feature rows of an impression's items, in the order it showed them.
pub fn in_page_order(impression: &souk_engine::Event, rows: &[(String, Vec<f32>)]) -> Vec<(String, Vec<f32>)> {
    let by_item: std::collections::HashMap<&str, &Vec<f32>> = rows.iter().map(|(id, row)| (id.as_str(), row)).collect();
    impression
        .items
        .iter()
        .filter_map(|item| by_item.get(item.as_str()).map(|row| (item.as_str().to_string(), (*row).clone())))
        .collect()
}
