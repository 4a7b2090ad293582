//! Physical erasure: rewriting the event log without erased users' events.
//!
//! Erasing a user appends a tombstone (their events vanish from memory at once) and drops
//! a `COMPACT_NEEDED` marker in the data directory. The next time the directory is opened,
//! before anything reads it, the log is rewritten into `events.compact/` without the
//! events the tombstones cover and without the tombstones; the erased events' id digests
//! are kept (a `KnownIds` record) so a late re-delivery is still recognised. The new log
//! is made durable, marked `COMPLETE`, and swapped in by two renames.
//!
//! Crash safety: every state between the steps is recognised on the next open —
//! `events` missing with `events.old` present means the swap was interrupted (finish it if
//! `events.compact/COMPLETE` exists, else undo it); a leftover `events.compact` or
//! `events.old` is removed; the marker is removed only after the swap, so an interrupted
//! compaction simply runs again.

use std::collections::HashMap;
use std::path::Path;

use super::codec::LogRecord;
use super::index::event_id_digest;
use super::log::{self, EventLog};
use crate::error::Result;

/// The marker file asking for a compaction at the next open.
pub const MARKER: &str = "COMPACT_NEEDED";
/// Digests per `KnownIds` record.
const DIGESTS_PER_RECORD: usize = 100_000;
/// Bytes of frames buffered before a write.
const WRITE_BATCH: usize = 4 << 20;

/// What a compaction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactReport {
    pub kept_events: u64,
    pub removed_events: u64,
}

pub(super) fn sync_dir(dir: &Path) -> Result<()> {
    fs_err::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Mark that erased events wait for compaction (durably).
pub fn request(dir: &Path) -> Result<()> {
    let path = dir.join(MARKER);
    fs_err::File::create(&path)?.sync_all()?;
    sync_dir(dir)
}

/// Finish or undo an interrupted compaction, then compact if one was requested. Runs
/// before the log is opened for use, with the data directory locked.
pub fn prepare(dir: &Path, segment_bytes: u64) -> Result<Option<CompactReport>> {
    let events = super::DataDir::new(dir).events();
    let compacted = dir.join("events.compact");
    let old = dir.join("events.old");
    if !events.exists() && old.exists() {
        if compacted.join(COMPLETE).exists() {
            fs_err::rename(&compacted, &events)?;
        } else {
            fs_err::rename(&old, &events)?;
        }
        sync_dir(dir)?;
    }
    if old.exists() {
        fs_err::remove_dir_all(&old)?;
    }
    if compacted.exists() {
        fs_err::remove_dir_all(&compacted)?;
    }
    if !dir.join(MARKER).exists() || !events.exists() {
        return Ok(None);
    }
    let report = compact(dir, segment_bytes)?;
    fs_err::remove_file(dir.join(MARKER))?;
    sync_dir(dir)?;
    tracing::info!(kept = report.kept_events, removed = report.removed_events, "compacted the event log");
    Ok(Some(report))
}

/// Where each user's last tombstone stands in a stretch of the log, by record sequence.
pub(super) type Erasures = HashMap<String, u64>;

/// Copies records into a new log, leaving out the events an earlier tombstone of their
/// user covers and the tombstones themselves, keeping the removed events' id digests.
pub(super) struct Rewriter {
    pub(super) target: EventLog,
    pub(super) report: CompactReport,
    /// The removed events' id digests, written as `KnownIds` records by [`Rewriter::flush_known`].
    known: Vec<u128>,
    frames: Vec<u8>,
    starts: Vec<usize>,
    /// The old packed positions of the buffered frames that are events (`u64::MAX` for others).
    olds: Vec<u64>,
    /// (old, new) packed positions of every copied event, in log order, when kept.
    pub(super) moves: Option<Vec<(u64, u64)>>,
    end: log::Ticket,
}

impl Rewriter {
    pub(super) fn new(target: EventLog, track_moves: bool) -> Self {
        Self {
            target,
            report: CompactReport::default(),
            known: Vec::new(),
            frames: Vec::with_capacity(WRITE_BATCH + 4096),
            starts: Vec::new(),
            olds: Vec::new(),
            moves: track_moves.then(Vec::new),
            end: log::Ticket::default(),
        }
    }

    /// Copy `record` found at `position`, the `sequence`-th record of the log, unless a later
    /// tombstone in `erasures` covers it; tombstones in `erasures` are dropped too.
    pub(super) fn filter(
        &mut self,
        record: LogRecord,
        position: u64,
        sequence: u64,
        erasures: &Erasures,
    ) -> Result<()> {
        match record {
            LogRecord::Event(event)
                if erasures.get(event.user.as_str()).is_some_and(|erased_at| sequence < *erased_at) =>
            {
                self.known.push(event_id_digest(event.id.as_str()));
                self.report.removed_events += 1;
                Ok(())
            }
            LogRecord::EraseUser { .. } => Ok(()),
            LogRecord::KnownIds(digests) => {
                self.known.extend(digests);
                Ok(())
            }
            record => self.copy(&record, position),
        }
    }

    /// Copy `record` as it is.
    pub(super) fn copy(&mut self, record: &LogRecord, position: u64) -> Result<()> {
        if matches!(record, LogRecord::Event(_)) {
            self.report.kept_events += 1;
            self.olds.push(position);
        } else {
            self.olds.push(u64::MAX);
        }
        self.starts.push(self.frames.len());
        log::frame(record, &mut self.frames);
        if self.frames.len() >= WRITE_BATCH {
            self.write()?;
        }
        Ok(())
    }

    /// Write the removed events' digests (so a late re-delivery is still recognised).
    pub(super) fn flush_known(&mut self) -> Result<()> {
        let known = std::mem::take(&mut self.known);
        for chunk in known.chunks(DIGESTS_PER_RECORD) {
            self.copy(&LogRecord::KnownIds(chunk.to_vec()), u64::MAX)?;
        }
        Ok(())
    }

    fn write(&mut self) -> Result<()> {
        if self.frames.is_empty() {
            return Ok(());
        }
        let mut positions = Vec::with_capacity(self.starts.len());
        self.end = self.target.append(&self.frames, &self.starts, &mut positions)?;
        if let Some(moves) = &mut self.moves {
            for (old, new) in self.olds.iter().zip(positions) {
                if *old != u64::MAX {
                    moves.push((*old, new.pack()));
                }
            }
        }
        self.frames.clear();
        self.starts.clear();
        self.olds.clear();
        Ok(())
    }

    /// Write what is buffered and make the new log durable.
    pub(super) fn finish(&mut self) -> Result<()> {
        self.write()?;
        self.target.sync_to(self.end)
    }
}

/// Mark a finished new log in `compacted` complete: from here on, an interrupted swap is
/// finished by the next open rather than undone.
pub(super) fn mark_complete(compacted: &Path) -> Result<()> {
    fs_err::File::create(compacted.join(COMPLETE))?.sync_all()?;
    sync_dir(compacted)
}

/// The file that marks a new log complete.
pub(super) const COMPLETE: &str = "COMPLETE";

fn compact(dir: &Path, segment_bytes: u64) -> Result<CompactReport> {
    let events = super::DataDir::new(dir).events();
    let compacted = dir.join("events.compact");
    // Pass 1: where each user's last tombstone stands in the log.
    let mut sequence = 0u64;
    let mut erasures = Erasures::new();
    drop(EventLog::open(&events, segment_bytes, |record, _| {
        sequence += 1;
        if let LogRecord::EraseUser { user, .. } = record {
            erasures.insert(user.into_string(), sequence);
        }
        Ok(())
    })?);
    // Pass 2: copy what survives.
    let mut rewriter = Rewriter::new(EventLog::open(&compacted, segment_bytes, |_, _| Ok(()))?, false);
    sequence = 0;
    drop(EventLog::open(&events, segment_bytes, |record, position| {
        sequence += 1;
        rewriter.filter(record, position.pack(), sequence, &erasures)
    })?);
    rewriter.flush_known()?;
    rewriter.finish()?;
    let report = rewriter.report;
    drop(rewriter);
    mark_complete(&compacted)?;
    fs_err::rename(&events, dir.join("events.old"))?;
    fs_err::rename(&compacted, &events)?;
    sync_dir(dir)?;
    fs_err::remove_dir_all(dir.join("events.old"))?;
    Ok(report)
}
