//! The feature log: the rows the ranker scored, appended when a page is served and read
//! back by training, so a model learns from the features it will be given.
//!
//! `DATA_DIR/rank/features.jsonl` (recommendation pages) and `search_features.jsonl`
//! (search pages): one JSON line per shown item under the response's request id and the
//! feature schema's digest, rotated by size, pruned by age, torn lines skipped.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::rank::features::{FEATURES, FEATURE_COUNT};
use crate::{Error, Result};

/// A feature log file is rotated at this many MiB by default…
pub const DEFAULT_LOG_MAX_MB: u64 = 64;
/// …keeping this many files…
pub const DEFAULT_LOG_FILES: usize = 4;
/// …none older than this many hours.
pub const DEFAULT_LOG_MAX_AGE_HOURS: u64 = 24 * 7;

/// Identifies the feature schema; rows logged under another are not trained on.
pub fn schema() -> u64 {
    xxhash_rust::xxh3::xxh3_64(FEATURES.join(",").as_bytes())
}

#[derive(Serialize, Deserialize)]
struct LoggedRow {
    schema: u64,
    request: String,
    item: String,
    /// `null` for a missing value.
    features: Vec<Option<f32>>,
}

/// Append-only log of served feature rows, rotated by size: `features.jsonl` is the
/// current file, `features.jsonl.1` the one before, up to `files − 1` rotated files; a file
/// whose last write is older than `max_age` is deleted (checked at most once a minute, by
/// the appends and by [`FeatureLog::prune`]).
pub struct FeatureLog {
    path: PathBuf,
    file: Mutex<Option<std::fs::File>>,
    /// Rotate when the current file reaches this many bytes…
    max_bytes: u64,
    /// …keeping this many files in all…
    files: usize,
    /// …none older than this.
    max_age: Duration,
    /// When the files' ages were last checked.
    pruned: Mutex<Option<Instant>>,
}

/// How often the appends check the files' ages.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

impl std::fmt::Debug for FeatureLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeatureLog").field("path", &self.path).finish()
    }
}

impl FeatureLog {
    /// The recommendation pages' log under a data directory (created on first append).
    pub fn in_data_dir(data_dir: &Path) -> FeatureLog {
        FeatureLog {
            path: crate::store::DataDir::new(data_dir).feature_log(),
            file: Mutex::new(None),
            max_bytes: DEFAULT_LOG_MAX_MB << 20,
            files: DEFAULT_LOG_FILES,
            max_age: Duration::from_secs(DEFAULT_LOG_MAX_AGE_HOURS * 3_600),
            pruned: Mutex::new(None),
        }
    }

    /// Rotate at `max_bytes`, keeping `files` files.
    pub fn with_limits(mut self, max_bytes: u64, files: usize) -> FeatureLog {
        self.max_bytes = max_bytes.max(1);
        self.files = files.max(1);
        self
    }

    /// Delete files whose last write is older than `max_age`.
    pub fn with_max_age(mut self, max_age: Duration) -> FeatureLog {
        self.max_age = max_age;
        self
    }

    /// Delete every file of this log whose last write is older than the age limit; returns
    /// how many went. The current file goes too when nothing was logged for that long.
    pub fn prune(&self) -> Result<usize> {
        let mut file = self.file.lock();
        *self.pruned.lock() = Some(Instant::now());
        let now = std::time::SystemTime::now();
        let mut removed = 0;
        for n in 0..self.files.max(1) {
            let path = self.rotated(n);
            let modified = match std::fs::metadata(&path).and_then(|m| m.modified()) {
                Ok(modified) => modified,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::Io(std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))),
            };
            if now.duration_since(modified).unwrap_or_default() > self.max_age {
                if n == 0 {
                    *file = None;
                }
                fs_err::remove_file(&path)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// [`FeatureLog::prune`], unless the ages were checked within the last minute.
    pub fn prune_if_due(&self) -> Result<usize> {
        if self.pruned.lock().is_none_or(|at| at.elapsed() >= PRUNE_INTERVAL) {
            self.prune()
        } else {
            Ok(0)
        }
    }

    /// The `n`-th rotated file (0: the current one).
    fn rotated(&self, n: usize) -> PathBuf {
        if n == 0 {
            return self.path.clone();
        }
        let mut name = self.path.as_os_str().to_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    /// Shift every file one place older, deleting the oldest (the current file is closed).
    fn rotate(&self) -> Result<()> {
        let oldest = self.rotated(self.files - 1);
        if self.files == 1 {
            return Ok(fs_err::remove_file(oldest)?);
        }
        match std::fs::remove_file(&oldest) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        for n in (0..self.files - 1).rev() {
            let from = self.rotated(n);
            if from.exists() {
                fs_err::rename(&from, self.rotated(n + 1))?;
            }
        }
        Ok(())
    }

    /// The search pages' log under a data directory: their rows describe other recall
    /// stages (keyword, vector), so the search ranker learns from them alone.
    pub fn search_in_data_dir(data_dir: &Path) -> FeatureLog {
        FeatureLog::in_data_dir(data_dir).for_search()
    }

    /// The search pages' log in the same directory as this one.
    pub fn for_search(&self) -> FeatureLog {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        FeatureLog {
            path: dir.join(crate::store::DataDir::SEARCH_FEATURE_LOG),
            file: Mutex::new(None),
            max_bytes: self.max_bytes,
            files: self.files,
            max_age: self.max_age,
            pruned: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append the rows of one response. Written without fsync: a crash loses at most the
    /// newest training rows, never stored events. A disk that refuses the rows is
    /// `disk_full` or `storage_unavailable`; a partly written line is skipped by the reader,
    /// and the next append starts on a line of its own.
    pub fn append(&self, request: &str, rows: &[(String, Vec<f32>)]) -> Result<()> {
        self.write_rows(request, rows).map_err(|e| crate::store::refused_write(e, "the feature rows"))
    }

    fn write_rows(&self, request: &str, rows: &[(String, Vec<f32>)]) -> Result<()> {
        let mut text = Vec::new();
        for (item, features) in rows {
            let row = LoggedRow {
                schema: schema(),
                request: request.to_string(),
                item: item.clone(),
                features: features.iter().map(|v| v.is_finite().then_some(*v)).collect(),
            };
            serde_json::to_writer(&mut text, &row).map_err(|e| Error::Internal(format!("encoding features: {e}")))?;
            text.push(b'\n');
        }
        self.prune_if_due()?;
        let mut file = self.file.lock();
        if file.is_none() {
            if let Some(parent) = self.path.parent() {
                fs_err::create_dir_all(parent)?;
            }
            let mut opened =
                fs_err::OpenOptions::new().create(true).read(true).append(true).open(&self.path)?.into_parts().0;
            // A line torn by a crash is closed, so the next row starts on its own line.
            let length = opened.metadata()?.len();
            if length > 0 {
                use std::io::{Read, Seek, SeekFrom};
                let mut last = [0u8; 1];
                opened.seek(SeekFrom::Start(length - 1))?;
                opened.read_exact(&mut last)?;
                if last[0] != b'\n' {
                    opened.write_all(b"\n")?;
                }
            }
            *file = Some(opened);
        }
        if let Some(open) = file.as_mut() {
            open.write_all(&text)?;
            if open.metadata()?.len() >= self.max_bytes {
                *file = None;
                self.rotate()?;
            }
        }
        Ok(())
    }

    /// Every row of the current schema by (request, item). A torn or foreign line (a crash
    /// mid-write, an older schema) is skipped.
    pub fn read(&self) -> Result<HashMap<(String, String), Vec<f32>>> {
        let mut rows = HashMap::new();
        let expected = schema();
        // Oldest first, so a newer row of the same page and item wins.
        for n in (0..self.files).rev() {
            let file = match std::fs::File::open(self.rotated(n)) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            for line in BufReader::new(file).lines() {
                let line = line?;
                let Ok(row) = serde_json::from_str::<LoggedRow>(&line) else { continue };
                if row.schema != expected || row.features.len() != FEATURE_COUNT {
                    continue;
                }
                rows.insert((row.request, row.item), row.features.into_iter().map(|v| v.unwrap_or(f32::NAN)).collect());
            }
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_feature_log_rotates_by_size_and_keeps_only_its_newest_files() {
        let dir = tempfile::tempdir().unwrap();
        let log = FeatureLog::in_data_dir(dir.path()).with_limits(4_096, 3);
        let row = vec![0.25f32; FEATURE_COUNT];
        for request in 0..400 {
            log.append(&format!("r{request}"), &[("a".into(), row.clone())]).unwrap();
        }
        let files: Vec<(String, u64)> = std::fs::read_dir(log.path().parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| (e.file_name().to_string_lossy().to_string(), e.metadata().unwrap().len()))
            .collect();
        assert_eq!(files.len(), 3, "{files:?}");
        let one_row = serde_json::to_vec(&LoggedRow {
            schema: schema(),
            request: "r399".into(),
            item: "a".into(),
            features: row.iter().map(|v| Some(*v)).collect(),
        })
        .unwrap()
        .len() as u64
            + 1;
        assert!(files.iter().all(|(_, bytes)| *bytes < 4_096 + one_row), "{files:?}");
        // The newest pages are read back (from every kept file); the oldest were pruned.
        let rows = log.read().unwrap();
        assert!(rows.contains_key(&("r399".to_string(), "a".to_string())));
        assert!(!rows.contains_key(&("r0".to_string(), "a".to_string())));
        let kept = rows.len() as u64;
        assert!(kept > 2 * 4_096 / one_row && kept <= 3 * (4_096 / one_row + 1), "{kept}");
        // The search log beside it rotates the same way.
        assert_eq!(log.for_search().max_bytes, 4_096);
    }

    #[test]
    fn feature_log_files_older_than_the_age_limit_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let day = Duration::from_secs(86_400);
        let log = FeatureLog::in_data_dir(dir.path()).with_limits(2_048, 3).with_max_age(day);
        let row = vec![0.5f32; FEATURE_COUNT];
        for request in 0..60 {
            log.append(&format!("r{request}"), &[("a".into(), row.clone())]).unwrap();
        }
        let rotated = log.rotated(1);
        assert!(rotated.exists() && log.path().exists());
        let age = |path: &Path, ago: Duration| {
            let file = std::fs::File::options().write(true).open(path).unwrap();
            file.set_modified(std::time::SystemTime::now() - ago).unwrap();
        };
        // A rotated file last written two days ago goes; one written within the day stays.
        age(&rotated, 2 * day);
        age(&log.rotated(2), day / 2);
        assert_eq!(log.prune().unwrap(), 1);
        assert!(!rotated.exists() && log.rotated(2).exists() && log.path().exists());
        // Nothing logged for longer than the limit: the current file goes too, and the
        // next append starts it afresh.
        age(log.path(), 3 * day);
        age(&log.rotated(2), 3 * day);
        assert_eq!(log.prune().unwrap(), 2);
        assert!(!log.path().exists() && !log.rotated(2).exists());
        log.append("fresh", &[("a".into(), row.clone())]).unwrap();
        let rows = log.read().unwrap();
        assert_eq!(rows.len(), 1);
        assert!(rows.contains_key(&("fresh".to_string(), "a".to_string())));
    }

    #[test]
    fn the_feature_log_round_trips_rows_and_skips_torn_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = FeatureLog::in_data_dir(dir.path());
        assert!(log.read().unwrap().is_empty());
        let mut row = vec![0.5f32; FEATURE_COUNT];
        row[3] = f32::NAN;
        log.append("r1", &[("a".into(), row.clone()), ("b".into(), vec![1.0; FEATURE_COUNT])]).unwrap();
        // A crash mid-line, and a row of another schema.
        let mut file = std::fs::OpenOptions::new().append(true).open(log.path()).unwrap();
        file.write_all(b"{\"schema\":1,\"request\":\"r2\",\"item\":\"c\",\"features\":[]}\n{\"schema\":").unwrap();
        drop(file);
        // A new writer (after the crash) starts on a fresh line.
        let reopened = FeatureLog::in_data_dir(dir.path());
        reopened.append("r3", &[("d".into(), vec![2.0; FEATURE_COUNT])]).unwrap();
        let rows = log.read().unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[&("r3".to_string(), "d".to_string())][0], 2.0);
        let a = &rows[&("r1".to_string(), "a".to_string())];
        assert!(a[3].is_nan());
        assert_eq!(a[0], 0.5);
    }
}
