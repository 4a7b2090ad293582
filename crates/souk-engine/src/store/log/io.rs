//! The seam every event-log write and sync goes through: [`LogIo`] calls the file itself,
//! unless an [`IoFaults`] was handed to the store, which then decides whether a write runs
//! out of space (`ENOSPC` after a number of bytes) or an `fdatasync` fails (`EIO`). Opens
//! in production pass none: the cost is one branch per batch, nothing per event.

use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Faults injected into an event log's segment writes and syncs, switched on and off while
/// the store is open (fault-injection tests, disk-full drills). Shared by the store and
/// whoever drives it.
#[derive(Debug)]
pub struct IoFaults {
    /// Bytes that may still be written before writes fail with `ENOSPC` (`u64::MAX`: no limit).
    space: AtomicU64,
    /// Whether `fdatasync` fails with `EIO`.
    syncs_fail: AtomicBool,
    /// Faults injected so far.
    injected: AtomicU64,
}

impl IoFaults {
    /// No fault yet.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            space: AtomicU64::new(u64::MAX),
            syncs_fail: AtomicBool::new(false),
            injected: AtomicU64::new(0),
        })
    }

    /// The disk fills after `bytes` more bytes: a write that runs past that point writes what
    /// fits, then fails with `ENOSPC`, as a full file system does.
    pub fn fill_after(&self, bytes: u64) {
        self.space.store(bytes, Ordering::SeqCst);
    }

    /// Every `fdatasync` fails with `EIO` (`true`) or does its work again (`false`).
    pub fn fail_syncs(&self, fail: bool) {
        self.syncs_fail.store(fail, Ordering::SeqCst);
    }

    /// Space returns and syncs succeed.
    pub fn heal(&self) {
        self.fill_after(u64::MAX);
        self.fail_syncs(false);
    }

    /// How many writes and syncs failed by injection.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::SeqCst)
    }

    /// Take up to `wanted` bytes of the remaining space; returns how many fit.
    fn take_space(&self, wanted: u64) -> u64 {
        let mut granted = wanted;
        let _ = self.space.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
            if left == u64::MAX {
                granted = wanted;
                return None;
            }
            granted = wanted.min(left);
            Some(left - granted)
        });
        granted
    }
}

/// Writes and syncs of segment files (see the module docs).
#[derive(Debug, Clone, Default)]
pub(super) struct LogIo {
    faults: Option<Arc<IoFaults>>,
}

impl LogIo {
    pub(super) fn new(faults: Option<Arc<IoFaults>>) -> Self {
        Self { faults }
    }

    /// Write all of `bytes` at the end of `file` (opened for appending).
    pub(super) fn write_all(&self, mut file: &File, bytes: &[u8]) -> io::Result<()> {
        if let Some(faults) = &self.faults {
            let fits = faults.take_space(bytes.len() as u64) as usize;
            if fits < bytes.len() {
                file.write_all(&bytes[..fits])?;
                faults.injected.fetch_add(1, Ordering::SeqCst);
                return Err(io::Error::new(io::ErrorKind::StorageFull, "no space left on device (injected)"));
            }
        }
        file.write_all(bytes)
    }

    /// Write `bytes` into a new file at `path`, sync it and remove it (removed whatever
    /// happened: a probe that met a full disk frees what it took).
    pub(super) fn probe(&self, path: &std::path::Path, bytes: usize) -> io::Result<()> {
        let result = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(path)
            .and_then(|file| self.write_all(&file, &vec![0u8; bytes]).and_then(|()| self.sync_data(&file)));
        let removed = std::fs::remove_file(path);
        result.and(removed)
    }

    /// `fdatasync`.
    pub(super) fn sync_data(&self, file: &File) -> io::Result<()> {
        if let Some(faults) = &self.faults {
            if faults.syncs_fail.load(Ordering::SeqCst) {
                faults.injected.fetch_add(1, Ordering::SeqCst);
                return Err(io::Error::other("input/output error (injected)"));
            }
        }
        file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_past_the_space_left_writes_what_fits_then_fails_with_enospc() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap();
        let faults = IoFaults::new();
        let io = LogIo::new(Some(faults.clone()));
        io.write_all(&file, b"abc").unwrap();
        faults.fill_after(2);
        let error = io.write_all(&file, b"defg").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::StorageFull);
        assert_eq!(std::fs::read(&path).unwrap(), b"abcde");
        assert!(io.write_all(&file, b"x").is_err(), "the disk stays full");
        faults.fail_syncs(true);
        assert!(io.sync_data(&file).is_err());
        assert_eq!(faults.injected(), 3);
        faults.heal();
        io.write_all(&file, b"h").unwrap();
        io.sync_data(&file).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"abcdeh");
    }
}
