//! The layout of a data directory: the one place that names its files and folders.
//! Everything that reads or writes the data directory asks [`DataDir`] for the path. The
//! directory lock and the `FORMAT` file are taken and checked here too.
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

use std::fs::{File, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

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

/// Version of the data-directory layout, written to `DIR/FORMAT`.
pub const DATA_FORMAT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct FormatFile {
    format: String,
    version: u32,
}

/// How many more times a held lock is asked for, 25 ms apart, before the open is refused.
const LOCK_ATTEMPTS: u32 = 10;

/// Take the data directory's lock (`souk.lock`, an OS file lock held while the file is
/// open); fails with [`Error::Locked`] while another process holds it (still, after a
/// quarter of a second).
pub(super) fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join("souk.lock");
    let mut file =
        fs_err::OpenOptions::new().create(true).truncate(false).read(true).write(true).open(&path)?.into_parts().0;
    // A lock that goes within moments is not another owner: a process that is exiting, or
    // a child process between its fork and its exec, which holds a copy of the lock file's
    // descriptor until the exec closes it. Ask a few times over a quarter of a second
    // before refusing.
    let mut attempts = 0;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) if attempts < LOCK_ATTEMPTS => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
            Err(TryLockError::WouldBlock) => return Err(Error::Locked { path: dir.to_path_buf(), lock: path }),
            Err(TryLockError::Error(e)) => return Err(e.into()),
        }
    }
    // The pid is for people; the lock is what counts. A full disk must not stop the open.
    if let Err(e) = file.set_len(0).and_then(|()| writeln!(file, "{}", std::process::id())) {
        tracing::warn!(error = %e, "could not write the pid into the lock file");
    }
    Ok(file)
}

/// Check the `FORMAT` file, or write it in a new directory.
pub(super) fn check_format(dir: &Path) -> Result<()> {
    let path = dir.join("FORMAT");
    if path.exists() {
        let text = fs_err::read_to_string(&path)?;
        let format: FormatFile = serde_json::from_str(&text)
            .map_err(|e| Error::Corrupt { path: path.clone(), message: format!("unreadable format file: {e}") })?;
        if format.format != "souk-data" {
            return Err(Error::Corrupt {
                path,
                message: format!("not a souk data directory (format {:?})", format.format),
            });
        }
        if format.version != DATA_FORMAT_VERSION {
            return Err(Error::FormatVersion { path, found: format.version, expected: DATA_FORMAT_VERSION });
        }
    } else {
        let text = serde_json::to_string(&FormatFile { format: "souk-data".into(), version: DATA_FORMAT_VERSION })
            .map_err(|e| Error::Internal(e.to_string()))?;
        let tmp = dir.join("FORMAT.tmp");
        fs_err::write(&tmp, text)?;
        fs_err::File::open(&tmp)?.sync_all()?;
        fs_err::rename(&tmp, &path)?;
        fs_err::File::open(dir)?.sync_all()?;
    }
    Ok(())
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
