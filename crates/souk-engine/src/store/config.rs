//! `[store]`: where the system of record lives and how the embedded event log is cut into
//! segments.

use serde::{Deserialize, Serialize};

/// Settings of the embedded store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Size at which the event log starts a new segment file, in bytes.
    pub segment_bytes: u64,
    /// Where the system of record lives: empty for the embedded store in the data
    /// directory, or `postgres://USER@HOST/DB` for a PostgreSQL database that several
    /// processes share (`SOUK__STORE__URL`).
    pub url: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self { segment_bytes: 256 * 1024 * 1024, url: String::new() }
    }
}

impl StoreConfig {
    /// Problems with this configuration, each with the offending key.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.segment_bytes < 1024 * 1024 || self.segment_bytes > u64::from(u32::MAX) {
            problems.push((
                "store.segment_bytes".to_string(),
                format!("expected 1 MiB..=4 GiB, found {}", self.segment_bytes),
            ));
        }
        if !self.url.is_empty() && !self.url.starts_with("postgres://") && !self.url.starts_with("postgresql://") {
            problems.push((
                "store.url".to_string(),
                "expected empty (the embedded store) or a postgres:// URL, found another scheme".to_string(),
            ));
        }
        problems
    }
}
