//! Checking a data directory (`souk verify`) and salvaging a damaged event log
//! (`souk repair`).
//!
//! Verify reads, never writes: every segment frame by frame (a bad frame is skipped by
//! searching forward for the next valid one, so one report lists every damaged stretch),
//! the catalog with SQLite's `PRAGMA integrity_check`, and every file of the live model
//! generation against its checksum list.
//!
//! Repair copies every valid frame, in order, into `events.repair/`, makes it durable,
//! marks it `COMPLETE`, then swaps it in by two renames; the damaged log is kept as
//! `events.damaged-N/` for the operator to inspect or delete. An interrupted swap is
//! finished on the next open ([`finish_interrupted`]); an incomplete copy is removed.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::catalog::Catalog;
use super::data_dir::{check_format, lock_dir};
use super::log::{self, EventLog};
use super::{DataDir, StoreConfig};
use crate::error::{Error, Result};

/// Directory a repair writes the salvaged log into.
const REPAIR_DIR: &str = "events.repair";
/// Bytes of frames buffered before a write.
const WRITE_BATCH: usize = 4 << 20;

/// One stretch of a segment that holds no valid frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Damage {
    pub segment: u32,
    pub offset: u64,
    pub bytes: u64,
    /// What a crash in the middle of an append leaves at the end of the newest segment: an
    /// unacknowledged write that the next open truncates, not damage.
    pub torn_tail: bool,
}

/// What reading the event log found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LogCheck {
    pub segments: u32,
    pub bytes: u64,
    /// Valid records.
    pub records: u64,
    /// Damaged stretches and a torn tail, if any.
    pub damage: Vec<Damage>,
    /// Whole-segment problems: unreadable headers, missing segment numbers.
    pub problems: Vec<String>,
}

impl LogCheck {
    /// No damage (a torn tail is not damage) and no whole-segment problem.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty() && self.damage.iter().all(|d| d.torn_tail)
    }

    pub fn damaged_bytes(&self) -> u64 {
        self.damage.iter().filter(|d| !d.torn_tail).map(|d| d.bytes).sum()
    }
}

/// Read every segment of the log in `events_dir`, visiting each valid record in order.
pub fn check_log(events_dir: &Path, mut visit: impl FnMut(log::LogRecordRef<'_>) -> Result<()>) -> Result<LogCheck> {
    let mut check = LogCheck::default();
    if !events_dir.exists() {
        return Ok(check);
    }
    let numbers = log::segment_numbers(events_dir)?;
    let mut expected = 1u32;
    for number in &numbers {
        if *number != expected {
            check.problems.push(format!("segments {expected} to {} are missing", number - 1));
        }
        expected = number + 1;
    }
    for (index, number) in numbers.iter().enumerate() {
        let is_last = index + 1 == numbers.len();
        let scan = log::scan_segment(events_dir, *number, is_last, &mut visit)?;
        check.segments += 1;
        check.bytes += scan.bytes;
        check.records += scan.records;
        if let Some(problem) = scan.bad_header {
            check.problems.push(format!("segment {number}: {problem}; its {} bytes cannot be read", scan.bytes));
        }
        check.damage.extend(scan.damaged.into_iter().map(|d| Damage {
            segment: *number,
            offset: d.offset,
            bytes: d.len,
            torn_tail: d.torn_tail,
        }));
    }
    Ok(check)
}

/// What a repair did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepairReport {
    /// What was found (and, where `repaired`, what was lost: every non-torn damage).
    pub check: LogCheck,
    /// Whether a new log was written and swapped in (false when nothing was damaged).
    pub repaired: bool,
    /// Where the damaged log was kept.
    pub kept_damaged: Option<PathBuf>,
}

fn sync_dir(dir: &Path) -> Result<()> {
    fs_err::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Salvage every valid frame of `DATA_DIR/events` into a new log and swap it in. Call with
/// the data directory locked and the log not open.
pub fn repair_log(data_dir: &Path, segment_bytes: u64) -> Result<RepairReport> {
    let events = super::DataDir::new(data_dir).events();
    let check = check_log(&events, |_| Ok(()))?;
    if check.is_clean() {
        return Ok(RepairReport { check, repaired: false, kept_damaged: None });
    }
    let target_dir = data_dir.join(REPAIR_DIR);
    if target_dir.exists() {
        fs_err::remove_dir_all(&target_dir)?;
    }
    let target = EventLog::open(&target_dir, segment_bytes, |_, _| Ok(()))?;
    let mut frames = Vec::with_capacity(WRITE_BATCH + 4096);
    let mut starts = Vec::new();
    let mut end = log::Ticket::default();
    let mut flush = |frames: &mut Vec<u8>, starts: &mut Vec<usize>| -> Result<()> {
        if !frames.is_empty() {
            end = target.append(frames, starts, &mut Vec::new())?;
            frames.clear();
            starts.clear();
        }
        Ok(())
    };
    let check = check_log(&events, |record| {
        starts.push(frames.len());
        frames.extend_from_slice(record.frame);
        if frames.len() >= WRITE_BATCH {
            flush(&mut frames, &mut starts)?;
        }
        Ok(())
    })?;
    flush(&mut frames, &mut starts)?;
    target.sync_to(end)?;
    drop(target);
    fs_err::File::create(target_dir.join("COMPLETE"))?.sync_all()?;
    sync_dir(&target_dir)?;
    let kept = (1..).map(|n| data_dir.join(format!("events.damaged-{n}"))).find(|p| !p.exists()).expect("a free name");
    fs_err::rename(&events, &kept)?;
    fs_err::rename(&target_dir, &events)?;
    sync_dir(data_dir)?;
    fs_err::remove_file(events.join("COMPLETE"))?;
    tracing::warn!(records = check.records, lost_bytes = check.damaged_bytes(), kept = %kept.display(), "repaired the event log");
    Ok(RepairReport { check, repaired: true, kept_damaged: Some(kept) })
}

/// Finish a repair interrupted between its renames, or remove an incomplete copy. Runs
/// before the log is opened, with the data directory locked.
pub fn finish_interrupted(data_dir: &Path) -> Result<()> {
    let events = super::DataDir::new(data_dir).events();
    let target_dir = data_dir.join(REPAIR_DIR);
    if !target_dir.exists() {
        return Ok(());
    }
    if !events.exists() && target_dir.join("COMPLETE").exists() {
        fs_err::rename(&target_dir, &events)?;
        sync_dir(data_dir)?;
        fs_err::remove_file(events.join("COMPLETE"))?;
        tracing::warn!("finished an interrupted repair of the event log");
    } else {
        fs_err::remove_dir_all(&target_dir)?;
    }
    Ok(())
}

/// What `souk verify` found in a data directory.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub log: super::verify::LogCheck,
    /// Problems SQLite's integrity check reports (empty when the catalog is sound).
    pub catalog: Vec<String>,
    pub models: super::artifacts::ModelCheck,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.log.is_clean() && self.catalog.is_empty() && self.models.problems.is_empty()
    }
}

impl super::EmbeddedStore {
    /// Check the data directory without changing it: every event-log segment, the catalog
    /// (SQLite's full integrity check) and the live model generation's checksums. Takes the
    /// directory lock (fails with [`Error::Locked`] while a server holds it).
    pub fn verify(dir: &Path) -> Result<VerifyReport> {
        if !dir.join("FORMAT").exists() {
            return Err(Error::not_found("data directory", dir.display().to_string()));
        }
        let _lock = lock_dir(dir)?;
        check_format(dir)?;
        let log = check_log(&DataDir::new(dir).events(), |_| Ok(()))?;
        let catalog_path = DataDir::new(dir).catalog();
        let catalog = if catalog_path.exists() {
            Catalog::integrity_problems(&catalog_path, false)?
        } else {
            vec!["the catalog file is missing".into()]
        };
        let models = super::artifacts::ArtifactStore::new(dir).verify_current()?;
        Ok(VerifyReport { log, catalog, models })
    }

    /// Salvage every valid frame of a damaged event log into a new log (see
    /// [`super::verify`]). Takes the directory lock.
    pub fn repair(dir: &Path, config: &StoreConfig) -> Result<RepairReport> {
        if !dir.join("FORMAT").exists() {
            return Err(Error::not_found("data directory", dir.display().to_string()));
        }
        let _lock = lock_dir(dir)?;
        check_format(dir)?;
        finish_interrupted(dir)?;
        repair_log(dir, config.segment_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::codec::LogRecord;
    use crate::store::log::tests::event;

    fn write_log(dir: &Path, n: u32, segment_bytes: u64) {
        let log = EventLog::open(dir, segment_bytes, |_, _| Ok(())).unwrap();
        for k in 0..n {
            let mut frames = Vec::new();
            log::frame(&event(k), &mut frames);
            let end = log.append(&frames, &[0], &mut Vec::new()).unwrap();
            log.sync_to(end).unwrap();
        }
    }

    fn read_all(dir: &Path, segment_bytes: u64) -> Result<Vec<LogRecord>> {
        let mut seen = Vec::new();
        EventLog::open(dir, segment_bytes, |r, _| {
            seen.push(r);
            Ok(())
        })?;
        Ok(seen)
    }

    #[test]
    fn repair_salvages_every_valid_frame_and_keeps_the_damaged_log() {
        let data = tempfile::tempdir().unwrap();
        let events = data.path().join("events");
        write_log(&events, 200, 4_000);
        let path = log::segment_file(&events, 2);
        let mut bytes = fs_err::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x40;
        fs_err::write(&path, &bytes).unwrap();
        assert!(read_all(&events, 4_000).is_err(), "a damaged log must not open");

        let check = check_log(&events, |_| Ok(())).unwrap();
        assert!(!check.is_clean());
        assert_eq!(check.damage.len(), 1);
        assert_eq!(check.damage[0].segment, 2);
        assert_eq!(check.records, 199, "exactly the damaged frame is lost");

        let report = repair_log(data.path(), 4_000).unwrap();
        assert!(report.repaired);
        let kept = report.kept_damaged.unwrap();
        assert!(kept.join("seg-00000002.log").exists());
        let salvaged = read_all(&events, 4_000).unwrap();
        assert_eq!(salvaged.len(), 199);
        let all: Vec<_> = (0..200).map(event).collect();
        let missing: Vec<_> = all.iter().filter(|e| !salvaged.contains(e)).collect();
        assert_eq!(missing.len(), 1);
        // Order is kept.
        let order: Vec<_> = all.iter().filter(|e| salvaged.contains(e)).cloned().collect();
        assert_eq!(order, salvaged);
        // A clean log is left alone.
        assert!(!repair_log(data.path(), 4_000).unwrap().repaired);
    }

    #[test]
    fn an_interrupted_swap_is_finished_and_an_incomplete_copy_removed() {
        let data = tempfile::tempdir().unwrap();
        let target = data.path().join(REPAIR_DIR);
        write_log(&target, 5, 1 << 20);
        fs_err::File::create(target.join("COMPLETE")).unwrap();
        finish_interrupted(data.path()).unwrap();
        assert_eq!(read_all(&data.path().join("events"), 1 << 20).unwrap().len(), 5);
        assert!(!target.exists());

        write_log(&target, 3, 1 << 20);
        finish_interrupted(data.path()).unwrap();
        assert!(!target.exists(), "an incomplete copy beside a live log is removed");
        assert_eq!(read_all(&data.path().join("events"), 1 << 20).unwrap().len(), 5);
    }
}
