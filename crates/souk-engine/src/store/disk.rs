//! Writes the disk refuses: what the caller is told, and the store's write health.
//!
//! A write that cannot be made durable is answered `disk_full` (HTTP 507: `ENOSPC`,
//! `EDQUOT`, `SQLITE_FULL`) or `storage_unavailable` (HTTP 503: any other IO failure), and
//! nothing of the refused batch is kept (the event log cuts it back, the catalog rolls its
//! transaction back). The store remembers the last failure of the event log and of the
//! catalog until that part's next successful write; `/health` reports it (`degraded`).
//! Nothing stays refused: every write tries the disk again.

use parking_lot::Mutex;

use crate::error::Error;

/// Whether `error` says the disk (or the user's quota) is full.
pub(crate) fn is_disk_full(error: &Error) -> bool {
    match error {
        Error::Io(e) => matches!(e.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded),
        Error::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => e.code == rusqlite::ErrorCode::DiskFull,
        Error::Coded { code, .. } => *code == "disk_full",
        _ => false,
    }
}

/// Whether `error` is the disk failing a read or write (as opposed to bad input, a bug or
/// damaged data).
pub(crate) fn is_storage_failure(error: &Error) -> bool {
    match error {
        Error::Io(_) => true,
        Error::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
            e.code,
            rusqlite::ErrorCode::DiskFull
                | rusqlite::ErrorCode::SystemIoFailure
                | rusqlite::ErrorCode::CannotOpen
                | rusqlite::ErrorCode::ReadOnly
        ),
        _ => false,
    }
}

/// The coded error a caller gets for a write of `what` that failed with `error` (other
/// errors pass unchanged). The cause, with its path, is logged here; the message names no
/// file.
pub(crate) fn refused_write(error: Error, what: &str) -> Error {
    if !is_storage_failure(&error) {
        return error;
    }
    tracing::error!(error = %error, what, "a write to the data directory failed; nothing of it was kept");
    if is_disk_full(&error) {
        Error::Coded {
            code: "disk_full",
            message: format!(
                "the disk is full, so {what} could not be stored (nothing of it was kept); writes resume by \
                 themselves once space is freed"
            ),
        }
    } else {
        Error::Coded {
            code: "storage_unavailable",
            message: format!(
                "the disk failed a write, so {what} could not be stored (nothing of it was kept); the next write \
                 tries again"
            ),
        }
    }
}

/// The last write failure of each part of the store, until that part's next success.
#[derive(Debug, Default)]
pub(crate) struct WriteHealth {
    log: Mutex<Option<String>>,
    catalog: Mutex<Option<String>>,
}

/// The part of the store a write went to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Part {
    Log,
    Catalog,
}

impl WriteHealth {
    fn slot(&self, part: Part) -> &Mutex<Option<String>> {
        match part {
            Part::Log => &self.log,
            Part::Catalog => &self.catalog,
        }
    }

    /// Record a failure (a coded storage error from [`refused_write`]; others are ignored).
    pub(crate) fn failed(&self, part: Part, error: &Error) {
        if let Error::Coded { code: code @ ("disk_full" | "storage_unavailable"), .. } = error {
            self.degrade(part, format!("{code}: the last write failed at {}", chrono::Utc::now().to_rfc3339()));
        }
    }

    /// Mark `part` degraded for `reason`.
    pub(crate) fn degrade(&self, part: Part, reason: String) {
        let name = match part {
            Part::Log => "event log",
            Part::Catalog => "catalog",
        };
        *self.slot(part).lock() = Some(format!("{name} {reason}"));
    }

    pub(crate) fn succeeded(&self, part: Part) {
        let mut slot = self.slot(part).lock();
        if slot.take().is_some() {
            tracing::info!(?part, "writes succeed again");
        }
    }

    /// Why writes are failing, if they are.
    pub(crate) fn reason(&self) -> Option<String> {
        let reasons: Vec<String> = [&self.log, &self.catalog].iter().filter_map(|slot| slot.lock().clone()).collect();
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }
}

/// Apply `result` of a write to `part` to `health`: a storage failure becomes its coded
/// error and degrades the part, a success clears it.
pub(crate) fn track<T>(health: &WriteHealth, part: Part, what: &str, result: crate::Result<T>) -> crate::Result<T> {
    match result {
        Ok(value) => {
            health.succeeded(part);
            Ok(value)
        }
        Err(error) => {
            let error = refused_write(error, what);
            health.failed(part, &error);
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::super::{EmbeddedStore, IoFaults, Storage, StoreConfig};
    use crate::error::Error;
    use crate::ids::{EventId, ItemId, UserId};
    use crate::model::{Event, EventType};

    fn views(range: std::ops::Range<u32>) -> Vec<Event> {
        range
            .map(|n| {
                Event::new(
                    EventId::parse(format!("e{n}"), "id").unwrap(),
                    EventType::View,
                    UserId::parse(format!("u{}", n % 5), "user").unwrap(),
                    Some(ItemId::parse(format!("i{}", n % 11), "item").unwrap()),
                    i64::from(n),
                )
            })
            .collect()
    }

    fn open(dir: &Path, faults: &Arc<IoFaults>) -> EmbeddedStore {
        EmbeddedStore::open_with(dir, &StoreConfig::default(), Some(faults.clone())).unwrap()
    }

    fn code(error: Error) -> &'static str {
        match error {
            Error::Coded { code, .. } => code,
            other => panic!("expected a coded error, got {other}"),
        }
    }

    /// Ids of every stored event, oldest first per user, users in order.
    fn stored_ids(store: &EmbeddedStore) -> Vec<String> {
        let mut ids: Vec<String> = (0..5)
            .flat_map(|u| store.user_events(&UserId::parse(format!("u{u}"), "u").unwrap(), usize::MAX).unwrap())
            .map(|e| e.id.as_str().to_string())
            .collect();
        ids.sort();
        ids
    }

    fn ids(range: std::ops::Range<u32>) -> Vec<String> {
        let mut ids: Vec<String> = range.map(|n| format!("e{n}")).collect();
        ids.sort();
        ids
    }

    #[test]
    fn a_batch_that_meets_a_full_disk_is_refused_whole_and_writes_resume_when_space_returns() {
        let dir = tempfile::tempdir().unwrap();
        let faults = IoFaults::new();
        let store = open(dir.path(), &faults);
        store.append_events(views(0..100)).unwrap();
        // Room for part of the next batch only.
        faults.fill_after(2_000);
        assert_eq!(code(store.append_events(views(100..600)).unwrap_err()), "disk_full");
        assert_eq!(store.stats().unwrap().events, 100, "nothing of the batch is visible");
        assert_eq!(stored_ids(&store), ids(0..100));
        let reason = store.writes_refused().expect("/health reports degraded writes");
        assert!(reason.contains("disk_full"), "{reason}");
        // Still full: refused again, still nothing partial; a check of the disk finds it full.
        assert_eq!(code(store.append_events(views(100..600)).unwrap_err()), "disk_full");
        assert!(store.check_writes().unwrap().contains("disk_full"));
        faults.heal();
        // Idle (no write since), the store sees the space return once the probe runs again.
        std::thread::sleep(std::time::Duration::from_millis(1_100));
        assert_eq!(store.check_writes(), None, "space returned and nothing was written");
        assert_eq!(store.stats().unwrap().events, 100);
        assert!(!dir.path().join("events").join("write-probe").exists(), "the probe leaves nothing");
        // No id of the refused batch was remembered: all 500 are new.
        let outcome = store.append_events(views(100..600)).unwrap();
        assert_eq!((outcome.accepted, outcome.duplicates), (500, 0));
        assert_eq!(store.writes_refused(), None);
        drop(store);
        let store = EmbeddedStore::open(dir.path(), &StoreConfig::default()).unwrap();
        assert_eq!(store.stats().unwrap().events, 600);
        assert_eq!(stored_ids(&store), ids(0..600));
    }

    #[test]
    fn a_failed_fdatasync_refuses_the_batch_forgets_it_and_writes_resume_without_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let faults = IoFaults::new();
        let store = open(dir.path(), &faults);
        store.append_events(views(0..100)).unwrap();
        faults.fail_syncs(true);
        assert_eq!(code(store.append_events(views(100..150)).unwrap_err()), "storage_unavailable");
        assert_eq!(store.stats().unwrap().events, 100);
        assert_eq!(stored_ids(&store), ids(0..100), "the index no longer holds the refused batch");
        // An erasure whose tombstone cannot be made durable leaves the user as they were.
        let user = UserId::parse("u1", "u").unwrap();
        assert_eq!(code(store.erase_user(&user).unwrap_err()), "storage_unavailable");
        assert_eq!(store.user_events(&user, usize::MAX).unwrap().len(), 20);
        assert!(store.writes_refused().unwrap().contains("storage_unavailable"));
        assert!(store.check_writes().is_some(), "syncs still fail");
        faults.heal();
        let outcome = store.append_events(views(100..150)).unwrap();
        assert_eq!((outcome.accepted, outcome.duplicates), (50, 0));
        assert_eq!(store.writes_refused(), None);
        assert_eq!(store.erase_user(&user).unwrap().events, 30);
        drop(store);
        let store = EmbeddedStore::open(dir.path(), &StoreConfig::default()).unwrap();
        assert_eq!(store.stats().unwrap().events, 120);
        let mut expected: Vec<String> = (0..150).filter(|n| n % 5 != 1).map(|n| format!("e{n}")).collect();
        expected.sort();
        assert_eq!(stored_ids(&store), expected);
    }

    #[test]
    fn concurrent_batches_either_survive_a_failing_disk_or_are_refused_never_half_kept() {
        let dir = tempfile::tempdir().unwrap();
        let faults = IoFaults::new();
        let store = Arc::new(open(dir.path(), &faults));
        let acked = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for t in 0..4u32 {
                let (store, faults, acked) = (store.clone(), faults.clone(), &acked);
                scope.spawn(move || {
                    for b in 0..25u32 {
                        let start = (t * 25 + b) * 10;
                        if t == 0 {
                            // One writer flips the disk between failing syncs, a full disk and health.
                            match b % 3 {
                                0 => faults.fail_syncs(true),
                                1 => faults.fill_after(300),
                                _ => faults.heal(),
                            }
                        }
                        if store.append_events(views(start..start + 10)).is_ok() {
                            acked.lock().unwrap().extend(ids(start..start + 10));
                        }
                    }
                });
            }
        });
        faults.heal();
        let mut acked = acked.into_inner().unwrap();
        acked.sort();
        assert!(!acked.is_empty() && acked.len() < 1000, "{} acknowledged", acked.len());
        assert_eq!(stored_ids(&store), acked, "memory holds exactly the acknowledged batches");
        drop(store);
        let store = EmbeddedStore::open(dir.path(), &StoreConfig::default()).unwrap();
        assert_eq!(stored_ids(&store), acked, "the disk holds exactly the acknowledged batches");
    }

    /// A small tmpfs mounted over a temporary directory for one test, unmounted at the end;
    /// `None` where mounting is not allowed (not root, no `CAP_SYS_ADMIN`).
    struct Tmpfs(tempfile::TempDir);

    impl Tmpfs {
        fn mount(size: &str) -> Option<Self> {
            let dir = tempfile::tempdir().ok()?;
            let mounted = std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(dir.path())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            mounted.then_some(Self(dir))
        }
    }

    impl Drop for Tmpfs {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.0.path()).status();
        }
    }

    /// Write zeros into `path` until the file system is full.
    fn fill(path: &Path) {
        use std::io::Write;
        let mut file = std::fs::File::create(path).unwrap();
        let block = vec![0u8; 4096];
        while file.write_all(&block).is_ok() {}
        let _ = file.sync_all();
    }

    #[test]
    fn on_a_real_full_disk_nothing_partial_is_stored_writes_resume_and_the_store_opens_read_only() {
        let Some(fs) = Tmpfs::mount("4m") else {
            eprintln!("skipped: a tmpfs cannot be mounted here (the injected-fault tests cover the same paths)");
            return;
        };
        let dir = fs.0.path().join("data");
        let store = EmbeddedStore::open(&dir, &StoreConfig::default()).unwrap();
        // Held back so that space can be given back later.
        std::fs::write(fs.0.path().join("reserve"), vec![1u8; 512 * 1024]).unwrap();
        let mut acked = 0u32;
        let refused = loop {
            match store.append_events(views(acked..acked + 500)) {
                Ok(_) => acked += 500,
                Err(e) => break e,
            }
            assert!(acked < 200_000, "the disk never filled");
        };
        assert_eq!(code(refused), "disk_full");
        assert_eq!(store.stats().unwrap().events, u64::from(acked), "nothing of the refused batch");
        let item = crate::model::Item::new(ItemId::parse("mug", "id").unwrap(), "Mug");
        assert_eq!(code(store.put_items(vec![item.clone()]).unwrap_err()), "disk_full");
        assert!(store.get_item(&item.id).unwrap().is_none(), "nothing of the catalog write");
        assert!(store.writes_refused().is_some());
        // Space returns: writes resume without a reopen.
        std::fs::remove_file(fs.0.path().join("reserve")).unwrap();
        store.append_events(views(acked..acked + 500)).unwrap();
        acked += 500;
        store.put_items(vec![item.clone()]).unwrap();
        assert_eq!(store.writes_refused(), None);
        // An erasure asks the next open to compact the log, which needs space.
        let erased = store.erase_user(&UserId::parse("u1", "u").unwrap()).unwrap().events;
        let kept = |range: std::ops::Range<u32>| -> Vec<String> {
            let mut ids: Vec<String> = range.filter(|n| n % 5 != 1).map(|n| format!("e{n}")).collect();
            ids.sort();
            ids
        };
        drop(store);
        // Closed, the disk fills up again; the store still opens, to serve reads.
        fill(&fs.0.path().join("filler"));
        let store = EmbeddedStore::open(&dir, &StoreConfig::default()).expect("opens with the disk full");
        assert_eq!(store.stats().unwrap().events, u64::from(acked) - erased);
        assert!(stored_ids(&store) == kept(0..acked), "exactly the acknowledged events, less the erased");
        assert!(dir.join(super::super::compact::MARKER).exists(), "the compaction waits for space");
        // A compaction while serving needs room for a copy too: it fails, leaves nothing
        // behind, and the log serves on.
        let error = store.compact_erased().unwrap_err();
        assert!(super::is_disk_full(&error), "{error}");
        assert!(!dir.join("events.compact").exists());
        assert_eq!(store.stats().unwrap().events, u64::from(acked) - erased);
        assert!(store.get_item(&item.id).unwrap().is_some());
        assert_eq!(code(store.append_events(views(acked..acked + 500)).unwrap_err()), "disk_full");
        assert!(store.writes_refused().is_some(), "degraded while the disk is full");
        std::fs::remove_file(fs.0.path().join("filler")).unwrap();
        store.append_events(views(acked..acked + 500)).unwrap();
        store.put_items(vec![crate::model::Item::new(ItemId::parse("cup", "id").unwrap(), "Cup")]).unwrap();
        assert_eq!(store.writes_refused(), None);
        drop(store);
        let store = EmbeddedStore::open(&dir, &StoreConfig::default()).unwrap();
        // The batch after the erasure keeps u1's new events.
        let mut expected = kept(0..acked);
        expected.extend(ids(acked..acked + 500));
        expected.sort();
        let stored = stored_ids(&store);
        assert!(stored == expected, "{} events stored, {} expected", stored.len(), expected.len());
        // The compaction needs room for a copy of the log, which this disk may still lack.
        if dir.join(super::super::compact::MARKER).exists() {
            assert!(store.writes_refused().unwrap().contains("compact"));
        }
    }
}
