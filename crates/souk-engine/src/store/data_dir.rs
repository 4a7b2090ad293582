//! The layout of a data directory: the one place that names its files and folders.
//! Everything that reads or writes the data directory asks [`DataDir`] for the path.
//!
//! ```text
//! DIR/FORMAT                     format of the directory (checked on open)
//! DIR/souk.lock                  held by the process that owns the directory
//! DIR/events/                    the event log (segments, DURABLE, SEALED)
//! DIR/catalog.sqlite3            items, users, follows
//! DIR/models/                    model generations (CURRENT, g-N/)
//! DIR/search/                    the search index (derived from the catalog)
//! DIR/rank/features.jsonl        feature rows of logged recommendation pages
//! DIR/rank/search_features.jsonl feature rows of logged search pages
//! DIR/rank/online_ctr.ftrl       the online click model
//! DIR/ground_truth.json          the generator's ground truth (generated shops)
//! ```

use std::path::{Path, PathBuf};

/// A data directory's paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// File names inside [`DataDir::rank`], for logs kept in a folder of their own.
    pub const FEATURE_LOG: &'static str = "features.jsonl";
    pub const SEARCH_FEATURE_LOG: &'static str = "search_features.jsonl";
    pub const ONLINE_MODEL: &'static str = "online_ctr.ftrl";

    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn format_file(&self) -> PathBuf {
        self.root.join("FORMAT")
    }

    pub fn lock_file(&self) -> PathBuf {
        self.root.join("souk.lock")
    }

    pub fn events(&self) -> PathBuf {
        self.root.join("events")
    }

    pub fn catalog(&self) -> PathBuf {
        self.root.join("catalog.sqlite3")
    }

    pub fn models(&self) -> PathBuf {
        self.root.join("models")
    }

    pub fn search(&self) -> PathBuf {
        self.root.join("search")
    }

    /// The folder of the ranker's logs and the online click model.
    pub fn rank(&self) -> PathBuf {
        self.root.join("rank")
    }

    pub fn feature_log(&self) -> PathBuf {
        self.rank().join(Self::FEATURE_LOG)
    }

    pub fn search_feature_log(&self) -> PathBuf {
        self.rank().join(Self::SEARCH_FEATURE_LOG)
    }

    pub fn online_model(&self) -> PathBuf {
        self.rank().join(Self::ONLINE_MODEL)
    }

    pub fn ground_truth(&self) -> PathBuf {
        self.root.join("ground_truth.json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_lies_inside_the_directory_and_no_two_coincide() {
        let dir = DataDir::new("/data/shop");
        let paths = [
            dir.format_file(),
            dir.lock_file(),
            dir.events(),
            dir.catalog(),
            dir.models(),
            dir.search(),
            dir.feature_log(),
            dir.search_feature_log(),
            dir.online_model(),
            dir.ground_truth(),
        ];
        assert!(paths.iter().all(|p| p.starts_with(dir.root()) && p != dir.root()));
        let distinct: std::collections::BTreeSet<_> = paths.iter().collect();
        assert_eq!(distinct.len(), paths.len());
    }
}
