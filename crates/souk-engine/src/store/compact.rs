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

fn sync_dir(dir: &Path) -> Result<()> {
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
        if compacted.join("COMPLETE").exists() {
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

fn compact(dir: &Path, segment_bytes: u64) -> Result<CompactReport> {
    let events = super::DataDir::new(dir).events();
    let compacted = dir.join("events.compact");
    // Pass 1: where each user's last tombstone stands in the log.
    let mut sequence = 0u64;
    let mut last_erasure: HashMap<String, u64> = HashMap::new();
    drop(EventLog::open(&events, segment_bytes, |record, _| {
        sequence += 1;
        if let LogRecord::EraseUser { user, .. } = record {
            last_erasure.insert(user.into_string(), sequence);
        }
        Ok(())
    })?);
    // Pass 2: copy what survives.
    let target = EventLog::open(&compacted, segment_bytes, |_, _| Ok(()))?;
    let mut report = CompactReport::default();
    let mut known: Vec<u128> = Vec::new();
    let mut frames = Vec::with_capacity(WRITE_BATCH + 4096);
    let mut starts = Vec::new();
    let mut end = log::Ticket::default();
    let mut write = |frames: &mut Vec<u8>, starts: &mut Vec<usize>| -> Result<()> {
        if !frames.is_empty() {
            end = target.append(frames, starts, &mut Vec::new())?;
            frames.clear();
            starts.clear();
        }
        Ok(())
    };
    sequence = 0;
    drop(EventLog::open(&events, segment_bytes, |record, _| {
        sequence += 1;
        match record {
            LogRecord::Event(event) => {
                if last_erasure.get(event.user.as_str()).is_some_and(|erased_at| sequence < *erased_at) {
                    known.push(event_id_digest(event.id.as_str()));
                    report.removed_events += 1;
                } else {
                    starts.push(frames.len());
                    log::frame_event(&event, &mut frames);
                    report.kept_events += 1;
                }
            }
            LogRecord::EraseUser { .. } => {}
            LogRecord::KnownIds(digests) => known.extend(digests),
        }
        if frames.len() >= WRITE_BATCH {
            write(&mut frames, &mut starts)?;
        }
        Ok(())
    })?);
    for chunk in known.chunks(DIGESTS_PER_RECORD) {
        starts.push(frames.len());
        log::frame(&LogRecord::KnownIds(chunk.to_vec()), &mut frames);
    }
    write(&mut frames, &mut starts)?;
    target.sync_to(end)?;
    drop(target);
    fs_err::File::create(compacted.join("COMPLETE"))?.sync_all()?;
    sync_dir(&compacted)?;
    fs_err::rename(&events, dir.join("events.old"))?;
    fs_err::rename(&compacted, &events)?;
    sync_dir(dir)?;
    fs_err::remove_dir_all(dir.join("events.old"))?;
    Ok(report)
}
