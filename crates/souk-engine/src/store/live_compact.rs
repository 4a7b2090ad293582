//! Compaction while serving: the event log rewritten without erased users' events while
//! appends and reads go on, so an erasure leaves the disk without a restart.
//!
//! 1. The prefix — everything written when the compaction starts — is made durable (so no
//!    rollback can cut it), read twice with `pread` beside the appends (where each user's
//!    last tombstone stands, then the copy), and written to `events.compact/` without the
//!    events a tombstone covers, followed by the removed events' id digests. No lock is
//!    held: appends and reads go on.
//! 2. The swap, under the index write lock (appends and index reads wait): what was
//!    appended meanwhile (the tail) is made durable in the old log and copied as it is,
//!    tombstones included; the new log is synced and marked `COMPLETE`; the index's log
//!    positions are mapped to the new log (both logs hold the events in the same order, so
//!    one merge pass); `events/` becomes `events.old/` and `events.compact/` becomes
//!    `events/` (two renames, the directory synced); the new log is installed. The pause is
//!    the tail's copy (what arrived during step 1: its size is the ingest rate times the
//!    time of step 1), three `fdatasync`s (old log, new log, directory), two renames and
//!    one pass over the index rows (a comparison and a store per stored event, no
//!    allocation beyond one `u64` per row). It is logged as `pause_ms`.
//! 3. `events.old/` is deleted (readers that took the old log before the swap keep reading
//!    its open files; their blocks are freed when the last one finishes), then the
//!    `COMPACT_NEEDED` marker, unless a tombstone arrived in the tail (the next compaction
//!    takes it).
//!
//! A batch appended to the old log before the swap and still waiting for its `fdatasync`
//! redeems its ticket with the old log, which the swap made durable: it is acknowledged,
//! and it is in the new log. Crash safety is the open-time compaction's (`compact`): every
//! state between the steps is recognised by the next open.

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::codec::LogRecord;
use super::compact::{mark_complete, sync_dir, CompactReport, Erasures, Rewriter, COMPLETE, MARKER};
use super::index::EventIndex;
use super::log::EventLog;
use super::{DataDir, EmbeddedStore};
use crate::error::{Error, Result};

const WHAT: &str = "the compaction";

/// The steps of a compaction while serving, after each of which a test may stop it as a
/// crash would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompactStep {
    /// The prefix is in `events.compact/`; no lock is held yet (a test may append here).
    PrefixCopied,
    /// The new log is complete (`COMPLETE`), nothing renamed.
    Complete,
    /// `events/` was renamed to `events.old/`.
    OldSetAside,
    /// `events.compact/` was renamed to `events/` and the new log serves.
    NewInPlace,
    /// `events.old/` is deleted; the marker is still there.
    OldRemoved,
}

impl EmbeddedStore {
    /// If erased events wait in the log (the `COMPACT_NEEDED` marker), rewrite it without
    /// them now, while serving (see the module docs). `None` when nothing waited or another
    /// compaction is running.
    pub fn compact_erased(&self) -> Result<Option<CompactReport>> {
        self.compact_erased_with(&mut |_| ControlFlow::Continue(()))
    }

    /// [`EmbeddedStore::compact_erased`], calling `step` after each step; a `Break` stops
    /// the compaction there and leaves the files as a crash would (tests; the store must
    /// be dropped then).
    pub fn compact_erased_with(
        &self,
        step: &mut dyn FnMut(CompactStep) -> ControlFlow<()>,
    ) -> Result<Option<CompactReport>> {
        let Some(_one) = self.compacting.try_lock() else {
            return Ok(None);
        };
        let dir = self.dir().to_path_buf();
        let events = DataDir::new(&dir).events();
        let compacted = dir.join("events.compact");
        let old = dir.join("events.old");
        if !dir.join(MARKER).exists() {
            return Ok(None);
        }
        if !events.exists() {
            return Err(Error::Internal(format!(
                "{} is missing: an interrupted compaction waits for the next open",
                events.display()
            )));
        }
        for leftover in [&compacted, &old] {
            if leftover.exists() {
                fs_err::remove_dir_all(leftover)?;
            }
        }
        let started = Instant::now();
        let result = self.compact_live(&dir, step);
        if result.is_err() && compacted.exists() && events.exists() {
            // Nothing was swapped: the old log serves on, the marker asks again later.
            let _ = fs_err::remove_dir_all(&compacted);
        }
        let (report, pause_ms) = match result? {
            Some(done) => done,
            None => return Ok(None),
        };
        tracing::info!(
            kept = report.kept_events,
            removed = report.removed_events,
            elapsed_ms = started.elapsed().as_millis() as u64,
            pause_ms,
            "compacted the event log while serving"
        );
        Ok(Some(report))
    }

    fn compact_live(
        &self,
        dir: &Path,
        step: &mut dyn FnMut(CompactStep) -> ControlFlow<()>,
    ) -> Result<Option<(CompactReport, u64)>> {
        let events = DataDir::new(dir).events();
        let compacted = dir.join("events.compact");
        let old = dir.join("events.old");
        // 1. The prefix, without any lock.
        let log = self.log();
        let (end, ticket) = log.end();
        self.sync_log(&log, ticket, WHAT)?;
        let mut erasures = Erasures::new();
        let mut sequence = 0u64;
        log.scan_range(EventLog::start(), end, |record, _| {
            sequence += 1;
            if let LogRecord::EraseUser { user, .. } = record {
                erasures.insert(user.into_string(), sequence);
            }
            Ok(())
        })?;
        let target = EventLog::open_with(&compacted, self.segment_bytes, self.faults.clone(), |_, _| Ok(()))?;
        let mut rewriter = Rewriter::new(target, true);
        sequence = 0;
        log.scan_range(EventLog::start(), end, |record, position| {
            sequence += 1;
            rewriter.filter(record, position.pack(), sequence, &erasures)
        })?;
        rewriter.flush_known()?;
        if step(CompactStep::PrefixCopied).is_break() {
            return Ok(None);
        }
        // 2. The swap, appends and index reads paused.
        let mut index = self.index.write();
        let paused = Instant::now();
        self.recover(&mut index)?;
        if !Arc::ptr_eq(&log, &self.log()) {
            return Err(Error::Internal("the event log changed during its compaction".into()));
        }
        let (tail_end, ticket) = log.end();
        if let Err(e) = log.sync_to(ticket) {
            return Err(self.log_failed(&mut index, e, WHAT));
        }
        let mut tail_erasures = false;
        log.scan_range(end, tail_end, |record, position| {
            tail_erasures |= matches!(record, LogRecord::EraseUser { .. });
            rewriter.copy(&record, position.pack())
        })?;
        rewriter.finish()?;
        let report = rewriter.report;
        let moves = rewriter.moves.take().unwrap_or_default();
        let new_positions = moved_positions(&index, &moves)?;
        drop(moves);
        let target = rewriter.target;
        mark_complete(&compacted)?;
        if step(CompactStep::Complete).is_break() {
            return Ok(None);
        }
        fs_err::rename(&events, &old)?;
        if step(CompactStep::OldSetAside).is_break() {
            return Ok(None);
        }
        if let Err(e) = fs_err::rename(&compacted, &events) {
            // Put the old log back under its name: it serves on.
            if let Err(undo) = fs_err::rename(&old, &events) {
                tracing::error!(error = %undo, "could not put the event log back after a failed compaction swap");
                // Without `COMPLETE` the next open undoes the swap instead of finishing it:
                // the old log, which keeps taking appends, is the one kept.
                let _ = fs_err::remove_file(compacted.join(COMPLETE));
            }
            return Err(e.into());
        }
        // From here the new log is the log by name: it must take the appends whatever happens.
        let synced = sync_dir(dir);
        for (row, position) in index.rows.iter_mut().zip(new_positions) {
            row.position = position;
        }
        *self.log.write() = Arc::new(target.moved_to(&events));
        self.indexed_epoch.store(0, Ordering::Release);
        let pause_ms = paused.elapsed().as_millis() as u64;
        drop(index);
        drop(log);
        synced?;
        if step(CompactStep::NewInPlace).is_break() {
            return Ok(None);
        }
        // 3. The old segments leave the disk.
        fs_err::remove_dir_all(&old)?;
        if step(CompactStep::OldRemoved).is_break() {
            return Ok(None);
        }
        let _ = fs_err::remove_file(events.join(COMPLETE));
        if !tail_erasures {
            fs_err::remove_file(dir.join(MARKER))?;
        }
        sync_dir(dir)?;
        Ok(Some((report, pause_ms)))
    }
}

/// The position of an erased row whose event a compaction removed (never read: erased rows
/// are skipped by every reader). Positions of the other rows stay in log order.
const REMOVED: u64 = u64::MAX;

/// Every index row's position in the new log, given the (old, new) positions of the
/// copied events in log order. Rows are in log order too (appends index under the lock
/// they write in), so one merge pass maps them. A row whose event was not copied must be
/// erased (it becomes [`REMOVED`]); anything else would be a compaction that loses an event.
fn moved_positions(index: &EventIndex, moves: &[(u64, u64)]) -> Result<Vec<u64>> {
    let mut next = moves.iter().peekable();
    let mut positions = Vec::with_capacity(index.rows.len());
    for row in &index.rows {
        if row.position == REMOVED {
            positions.push(REMOVED);
            continue;
        }
        while next.next_if(|(old, _)| *old < row.position).is_some() {}
        match next.peek() {
            Some((old, new)) if *old == row.position => {
                positions.push(*new);
                next.next();
            }
            _ if row.erased => positions.push(REMOVED),
            _ => {
                return Err(Error::Internal(format!(
                    "the compaction did not copy a live event (log position {:#x})",
                    row.position
                )))
            }
        }
    }
    Ok(positions)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::PathBuf;
    use std::sync::atomic::AtomicBool;

    use super::*;
    use crate::ids::{EventId, ItemId, UserId};
    use crate::model::{Event, EventType};
    use crate::store::{Storage, StoreConfig};

    fn view(id: &str, user: &str, item: &str, ts: i64) -> Event {
        Event::new(
            EventId::parse(id, "id").unwrap(),
            EventType::View,
            UserId::parse(user, "user").unwrap(),
            Some(ItemId::parse(item, "item").unwrap()),
            ts,
        )
    }

    /// A store whose log rotates every few kilobytes, so compactions span many segments.
    fn open(dir: &Path) -> EmbeddedStore {
        EmbeddedStore::open(dir, &StoreConfig { segment_bytes: 4_096, ..StoreConfig::default() }).unwrap()
    }

    fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for entry in fs_err::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                found.extend(files_containing(&path, needle));
            } else if fs_err::read(&path).unwrap().windows(needle.len()).any(|w| w == needle.as_bytes()) {
                found.push(path);
            }
        }
        found
    }

    fn stored_ids(store: &EmbeddedStore) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        store
            .scan_events(&EventType::ALL, &mut |event| {
                ids.insert(event.id.as_str().to_string());
                Ok(())
            })
            .unwrap();
        assert_eq!(ids.len() as u64, store.stats().unwrap().events);
        ids
    }

    /// Events of a few shoppers and of `secret-shopper`, who is then erased.
    fn shop_with_an_erasure(store: &EmbeddedStore) -> BTreeSet<String> {
        let mut kept = BTreeSet::new();
        for batch in 0..40 {
            let events: Vec<_> = (0..10)
                .map(|k| {
                    let n = batch * 10 + k;
                    if n % 4 == 0 {
                        view(&format!("secret-event-{n}"), "secret-shopper", &format!("i{}", n % 17), n)
                    } else {
                        kept.insert(format!("e{n}"));
                        view(&format!("e{n}"), &format!("u{}", n % 9), &format!("i{}", n % 17), n)
                    }
                })
                .collect();
            store.append_events(events).unwrap();
        }
        store.erase_user(&UserId::parse("secret-shopper", "user").unwrap()).unwrap();
        kept
    }

    #[test]
    fn a_writer_appending_throughout_a_compaction_loses_nothing_and_erased_events_leave_every_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(open(dir.path()));
        let mut expected = shop_with_an_erasure(&store);
        assert!(!files_containing(dir.path(), "secret-event-").is_empty(), "on disk before the compaction");
        let stop = Arc::new(AtomicBool::new(false));
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let writer = {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut acknowledged = Vec::new();
                let mut n = 0i64;
                while !stop.load(Ordering::Acquire) {
                    let ids: Vec<String> = (0..5).map(|k| format!("w{n}-{k}")).collect();
                    let events = ids.iter().map(|id| view(id, &format!("w{}", n % 5), "i1", 1_000 + n)).collect();
                    store.append_events(events).unwrap();
                    // Reads go on too, from whichever log is live.
                    assert!(!store
                        .user_events(&UserId::parse(format!("w{}", n % 5), "u").unwrap(), 3)
                        .unwrap()
                        .is_empty());
                    acknowledged.extend(ids);
                    if n == 3 {
                        started_tx.send(()).unwrap();
                    }
                    n += 1;
                }
                acknowledged
            })
        };
        started_rx.recv().unwrap();
        // A batch and a second erasure land between the prefix and the swap: both are in the
        // tail, which is copied as it is.
        let report = store
            .compact_erased_with(&mut |step| {
                if step == CompactStep::PrefixCopied {
                    store
                        .append_events(vec![view("tail-1", "late", "i2", 5_000), view("tail-2", "u1", "i2", 5_001)])
                        .unwrap();
                    store.erase_user(&UserId::parse("late", "user").unwrap()).unwrap();
                }
                ControlFlow::Continue(())
            })
            .unwrap()
            .expect("a compaction was waiting");
        stop.store(true, Ordering::Release);
        let acknowledged = writer.join().unwrap();
        assert!(acknowledged.len() >= 20);
        assert_eq!(report.removed_events, 100);
        expected.extend(acknowledged);
        expected.insert("tail-2".into());

        assert_eq!(stored_ids(&store), expected, "every acknowledged event, nothing erased");
        assert_eq!(files_containing(dir.path(), "secret-event-"), Vec::<PathBuf>::new());
        assert_eq!(files_containing(dir.path(), "secret-shopper"), Vec::<PathBuf>::new());
        assert!(!dir.path().join("events.old").exists() && !dir.path().join("events.compact").exists());
        // The erasure that came during the compaction waits for the next one.
        assert!(dir.path().join(MARKER).exists());
        assert!(!files_containing(dir.path(), "tail-1").is_empty());
        assert_eq!(store.compact_erased().unwrap().map(|r| r.removed_events), Some(1));
        assert_eq!(files_containing(dir.path(), "tail-1"), Vec::<PathBuf>::new());
        assert!(!dir.path().join(MARKER).exists());
        assert_eq!(store.compact_erased().unwrap(), None, "nothing waits any more");
        // A late re-delivery of an erased event is still recognised.
        let again = store.append_events(vec![view("secret-event-4", "secret-shopper", "i4", 4)]).unwrap();
        assert_eq!(again.duplicates, 1);
        store.append_events(vec![view("after", "u2", "i3", 9_000)]).unwrap();
        expected.insert("after".into());
        assert_eq!(stored_ids(&store), expected);

        drop(store);
        let store = open(dir.path());
        assert_eq!(stored_ids(&store), expected, "a reopen agrees");
        assert_eq!(store.user_events(&UserId::parse("u1", "u").unwrap(), 1).unwrap()[0].id.as_str(), "tail-2");
    }

    #[test]
    fn a_crash_at_any_step_of_the_swap_is_recognised_by_the_next_open() {
        for stop_at in [
            CompactStep::PrefixCopied,
            CompactStep::Complete,
            CompactStep::OldSetAside,
            CompactStep::NewInPlace,
            CompactStep::OldRemoved,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let store = open(dir.path());
            let mut expected = shop_with_an_erasure(&store);
            let stopped = store
                .compact_erased_with(&mut |step| {
                    if step == CompactStep::PrefixCopied {
                        store.append_events(vec![view("tail", "u3", "i1", 7_000)]).unwrap();
                    }
                    if step == stop_at {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                })
                .unwrap();
            assert_eq!(stopped, None, "{stop_at:?}");
            expected.insert("tail".into());
            // The process dies here.
            drop(store);
            let store = open(dir.path());
            assert_eq!(stored_ids(&store), expected, "{stop_at:?}");
            assert_eq!(files_containing(dir.path(), "secret-event-"), Vec::<PathBuf>::new(), "{stop_at:?}");
            for leftover in ["events.old", "events.compact", MARKER] {
                assert!(!dir.path().join(leftover).exists(), "{stop_at:?}: {leftover}");
            }
            store.append_events(vec![view("later", "u4", "i1", 8_000)]).unwrap();
            expected.insert("later".into());
            drop(store);
            assert_eq!(stored_ids(&open(dir.path())), expected, "{stop_at:?}");
        }
    }
}
