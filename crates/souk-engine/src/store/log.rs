//! The event log: append-only segment files with checksummed, length-prefixed records.
//!
//! Layout of a segment `events/seg-NNNNNNNN.log`: a 16-byte header (`SOUKEVLG`, format
//! version u32 LE, segment number u32 LE) followed by frames `len: u32 LE, crc32: u32 LE,
//! payload[len]` where the payload is a [`codec`](super::codec) record.
//!
//! Durability is by group commit: appends go to the OS under the writer lock (one `write`
//! per batch), then [`EventLog::sync_to`] makes them durable with `fdatasync`; callers that
//! arrive while a sync is running find their bytes already covered and return without a
//! second sync. A write is acknowledged only after `sync_to` returns.
//!
//! Beside the segments, `DURABLE` holds a point known to be on stable storage (refreshed
//! after an `fdatasync` at most once a second, at every rotation and on a clean close) and
//! `SEALED` the final length of every sealed segment. Both are lower bounds that recovery
//! checks: a segment shorter than recorded, or a bad frame before the durable point, is lost
//! acknowledged data and is reported, whatever it looks like.
//!
//! A batch is all or nothing. A failed `write` (`ENOSPC`, `EIO`) cuts the segment back to
//! where the batch began and syncs that before the error returns. A failed `fdatasync`
//! leaves the bytes after the last durable point in an unknown state: every batch written
//! after that point fails, and [`EventLog::recover`] cuts them off (see there for why) before
//! appends resume; the caller forgets what it indexed of them. Writes and syncs go through
//! the [`IoFaults`] seam, which tests use to make them fail.
//!
//! Recovery distinguishes a torn tail from damage. A torn tail is what a crash in the middle
//! of an append leaves at the very end of the newest segment: a partial frame (fewer header
//! bytes than a frame needs, or a length that runs past the end of the file) or a zero-filled
//! stretch, with no valid frame after it. It was never acknowledged (acknowledgement waits for
//! `fdatasync`), so it is truncated away. Anything else is damage and stops the open with
//! [`Error::Corrupt`] naming the segment and the offset: a complete frame that fails its
//! checksum, a frame whose length was damaged (the rest of the file checksums as one frame),
//! any bad frame followed by a valid one (a flipped byte in the middle of the segment), or a
//! bad frame in any segment but the newest. A zero-filled stretch must reach the end and be
//! at least [`ZERO_FILL_MIN`] bytes long: no record ends in that many zeros, so a shorter one
//! cannot be told from a damaged last frame and is refused. [`scan_segment`] finds every valid frame around
//! damaged stretches for `souk verify` and `souk repair`.

mod frames;
mod io;
mod mark;
mod range;

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use self::frames::{classify_tail, frame_header_fields, segment_path, Tail, FRAME_HEADER_LEN, HEADER_LEN, MAGIC};
pub use self::frames::{
    frame, frame_event, scan_segment, seal_frame, segment_file, segment_numbers, DamagedStretch, LogRecordRef,
    SegmentScan, MAX_FRAME_BYTES, ZERO_FILL_MIN,
};
pub use self::io::IoFaults;

/// The scratch file of [`EventLog::probe_writes`] (not a segment: opens ignore it).
const PROBE_FILE: &str = "write-probe";
use self::io::LogIo;
use self::mark::{read_mark, read_sealed, DurableMark, MarkWriter, MARK_FILE, SEALED_FILE};
use super::codec::{self, LogRecord, LOG_FORMAT_VERSION};
use crate::error::{Error, Result};

/// Where a record lives: segment number and byte offset of its frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogPosition {
    pub segment: u32,
    pub offset: u32,
}

impl LogPosition {
    pub fn pack(self) -> u64 {
        (u64::from(self.segment) << 32) | u64::from(self.offset)
    }

    pub fn unpack(packed: u64) -> Self {
        Self { segment: (packed >> 32) as u32, offset: packed as u32 }
    }
}

struct Segment {
    number: u32,
    file: Arc<File>,
    len: u64,
    /// The record layout its header names (older layouts are read, never appended to).
    version: u32,
}

/// A batch's place in the log, handed back by [`EventLog::append`] and redeemed by
/// [`EventLog::sync_to`]: the logical end of its bytes and the rollback epoch it was
/// written in. The default ticket covers nothing (syncing it does nothing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ticket {
    end: u64,
    epoch: usize,
}

struct Writer {
    current: Segment,
    /// Logical bytes written over the life of this process (monotone, across segments and
    /// rollbacks: bytes cut off by a rollback are never reused).
    written: u64,
    /// Logical offset up to which everything is on stable storage.
    durable: u64,
    /// Length of the current segment at `durable`.
    durable_len: u64,
    /// `durable` at each rollback, in order: a ticket of epoch `e` survived rollback `e`
    /// exactly when its end is at most `rollbacks[e]`.
    rollbacks: Vec<u64>,
    /// Why the bytes after `durable` can no longer be trusted (a failed `fdatasync`, or a
    /// failed write that could not be cut back): appends are refused until
    /// [`EventLog::recover`] cuts them off.
    broken: Option<String>,
}

/// Whether a ticket's bytes are durable.
enum TicketState {
    Durable,
    Pending,
    /// Cut off by a rollback.
    Lost,
}

impl Writer {
    fn epoch(&self) -> usize {
        self.rollbacks.len()
    }

    fn state(&self, ticket: Ticket) -> TicketState {
        match self.rollbacks.get(ticket.epoch) {
            Some(kept) if ticket.end <= *kept => TicketState::Durable,
            Some(_) => TicketState::Lost,
            None if ticket.end <= self.durable => TicketState::Durable,
            None => TicketState::Pending,
        }
    }
}

/// An append-only, checksummed, segmented log. See the module docs.
pub struct EventLog {
    dir: PathBuf,
    segment_bytes: u64,
    io: LogIo,
    writer: Mutex<Writer>,
    /// Held by the one `fdatasync` of a group commit (and by a rollback).
    sync_lock: Mutex<()>,
    /// Read handles by segment number (index = number - 1).
    readers: RwLock<Vec<Arc<File>>>,
    mark: Mutex<MarkWriter>,
}

impl Drop for EventLog {
    fn drop(&mut self) {
        // A clean close: everything written is made durable and marked, so any later
        // damage anywhere in the log is reported, never truncated. Bytes a failed sync left
        // behind are cut off first: they belong to batches that were refused.
        let writer = self.writer.get_mut();
        if writer.broken.is_some() && writer.current.file.set_len(writer.durable_len).is_err() {
            return;
        }
        if self.io.sync_data(&writer.current.file).is_ok() {
            let mark = DurableMark { segment: writer.current.number, offset: writer.current.len };
            self.mark.get_mut().record(mark, true);
        }
    }
}

fn io_context(path: &Path, error: std::io::Error) -> Error {
    Error::Io(std::io::Error::new(error.kind(), format!("{}: {error}", path.display())))
}

/// The error of a batch that a rollback cut off (its own write or sync did not fail).
fn lost_batch(reason: &str) -> Error {
    Error::Io(std::io::Error::other(format!(
        "the batch was not stored: an event-log write failed before it was durable ({reason})"
    )))
}

fn create_segment(dir: &Path, number: u32, io: &LogIo) -> Result<Segment> {
    let path = segment_path(dir, number);
    let file =
        OpenOptions::new().create_new(true).read(true).append(true).open(&path).map_err(|e| io_context(&path, e))?;
    let mut header = Vec::with_capacity(HEADER_LEN as usize);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&LOG_FORMAT_VERSION.to_le_bytes());
    header.extend_from_slice(&number.to_le_bytes());
    let written = io.write_all(&file, &header).and_then(|()| io.sync_data(&file));
    // The new directory entry must survive a crash too.
    let synced = written.and_then(|()| File::open(dir).and_then(|d| d.sync_all()));
    if let Err(e) = synced {
        // Leave no half-made segment behind: the next rotation starts it again.
        drop(file);
        let _ = std::fs::remove_file(&path);
        return Err(io_context(&path, e));
    }
    Ok(Segment { number, file: Arc::new(file), len: HEADER_LEN, version: LOG_FORMAT_VERSION })
}

impl EventLog {
    /// Open (or create) the log in `dir`, replaying every record into `visit` in order.
    pub fn open(
        dir: &Path,
        segment_bytes: u64,
        visit: impl FnMut(LogRecord, LogPosition) -> Result<()>,
    ) -> Result<Self> {
        Self::open_with(dir, segment_bytes, None, visit)
    }

    /// [`EventLog::open`] with faults injected into segment writes and syncs.
    pub fn open_with(
        dir: &Path,
        segment_bytes: u64,
        faults: Option<Arc<IoFaults>>,
        mut visit: impl FnMut(LogRecord, LogPosition) -> Result<()>,
    ) -> Result<Self> {
        let io = LogIo::new(faults);
        fs_err::create_dir_all(dir)?;
        let numbers = segment_numbers(dir)?;
        for (index, number) in numbers.iter().enumerate() {
            if *number as usize != index + 1 {
                return Err(Error::Corrupt {
                    path: dir.to_path_buf(),
                    message: format!(
                        "segments are not consecutive: expected seg-{:08}.log, found seg-{number:08}.log",
                        index + 1
                    ),
                });
            }
        }
        let mark = read_mark(dir);
        let sealed = read_sealed(dir);
        if let Some(mark) = mark {
            if numbers.last().is_none_or(|last| *last < mark.segment) {
                return Err(Error::Corrupt {
                    path: dir.to_path_buf(),
                    message: format!(
                        "segment {} was recorded as durable but the log ends before it; acknowledged events are missing",
                        mark.segment
                    ),
                });
            }
        }
        let mut readers = Vec::new();
        let mut last = None;
        let count = numbers.len();
        for (index, number) in numbers.into_iter().enumerate() {
            let is_last = index + 1 == count;
            let floor = match sealed.get(&number) {
                Some(len) => *len,
                None => mark.filter(|m| m.segment == number).map_or(0, |m| m.offset),
            };
            let segment = replay_segment(dir, number, is_last, floor, &io, &mut visit)?;
            readers.push(segment.file.clone());
            last = Some(segment);
        }
        let current = match last {
            Some(segment) => segment,
            None => {
                let segment = create_segment(dir, 1, &io)?;
                readers.push(segment.file.clone());
                segment
            }
        };
        // What was replayed is what the index will hold: make it durable now, so that a
        // later rollback never has to cut below it. If the sync fails, the first write
        // retries it (and cuts off nothing).
        let broken = io.sync_data(&current.file).err().map(|e| {
            tracing::warn!(error = %e, "could not sync the newest event-log segment at open; writes retry it");
            format!("the newest segment could not be synced at open: {e}")
        });
        let mark_path = dir.join(MARK_FILE);
        let mark_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&mark_path)
            .map_err(|e| io_context(&mark_path, e))?;
        let sealed_path = dir.join(SEALED_FILE);
        let sealed_file =
            OpenOptions::new().create(true).append(true).open(&sealed_path).map_err(|e| io_context(&sealed_path, e))?;
        let durable_len = current.len;
        Ok(Self {
            dir: dir.to_path_buf(),
            segment_bytes: segment_bytes.max(HEADER_LEN + 1),
            io,
            writer: Mutex::new(Writer { current, written: 0, durable: 0, durable_len, rollbacks: Vec::new(), broken }),
            sync_lock: Mutex::new(()),
            readers: RwLock::new(readers),
            mark: Mutex::new(MarkWriter { file: mark_file, sealed: sealed_file, written: None, last: mark }),
        })
    }

    /// Append already-framed bytes (whole frames, see [`frame`]). `positions` receives the
    /// position of each frame, given the frame start offsets within `frames`. Returns the
    /// ticket to pass to [`EventLog::sync_to`].
    ///
    /// A failed write leaves nothing of the batch: the segment is cut back to where the
    /// batch began (and that is synced). If even that fails, the log refuses appends until
    /// [`EventLog::recover`] succeeds.
    pub fn append(&self, frames: &[u8], starts: &[usize], positions: &mut Vec<LogPosition>) -> Result<Ticket> {
        let mut writer = self.writer.lock();
        if let Some(reason) = &writer.broken {
            return Err(lost_batch(reason));
        }
        // A segment of an older layout is read, never appended to: its header must stay
        // true for every record in it.
        let full = writer.current.len > HEADER_LEN && writer.current.len + frames.len() as u64 > self.segment_bytes;
        if full || writer.current.version < LOG_FORMAT_VERSION {
            self.rotate(&mut writer)?;
        }
        let base = writer.current.len;
        if base + frames.len() as u64 > u64::from(u32::MAX) {
            return Err(Error::Internal(format!("batch of {} bytes does not fit in one segment", frames.len())));
        }
        let path = segment_path(&self.dir, writer.current.number);
        if let Err(e) = self.io.write_all(&writer.current.file, frames) {
            // Whatever part of the batch reached the file goes: truncate, and sync so that a
            // crash cannot bring it back either.
            let file = &writer.current.file;
            if let Err(undo) = file.set_len(base).and_then(|()| self.io.sync_data(file)) {
                tracing::error!(path = %path.display(), error = %undo, "could not cut a failed write back");
                writer.broken = Some(format!("a failed write could not be cut back: {undo}"));
            }
            return Err(io_context(&path, e));
        }
        writer.current.len += frames.len() as u64;
        writer.written += frames.len() as u64;
        positions.extend(
            starts
                .iter()
                .map(|start| LogPosition { segment: writer.current.number, offset: (base + *start as u64) as u32 }),
        );
        Ok(Ticket { end: writer.written, epoch: writer.epoch() })
    }

    fn rotate(&self, writer: &mut Writer) -> Result<()> {
        // Everything in the old segment must be durable before later frames can be acked
        // by a sync of the new segment alone.
        let old_path = segment_path(&self.dir, writer.current.number);
        if let Err(e) = self.io.sync_data(&writer.current.file) {
            writer.broken = Some(format!("fdatasync of {} failed: {e}", old_path.display()));
            return Err(io_context(&old_path, e));
        }
        writer.durable = writer.written;
        writer.durable_len = writer.current.len;
        self.mark
            .lock()
            .seal(writer.current.number, writer.current.len)
            .map_err(|e| io_context(&self.dir.join(SEALED_FILE), e))?;
        let next = create_segment(&self.dir, writer.current.number + 1, &self.io)?;
        self.readers.write().push(next.file.clone());
        self.mark.lock().record(DurableMark { segment: next.number, offset: next.len }, true);
        writer.durable_len = next.len;
        writer.current = next;
        Ok(())
    }

    /// Make the bytes of `ticket` durable (group commit). Fails if they cannot be: their
    /// own `fdatasync` failed, or a rollback cut them off.
    pub fn sync_to(&self, ticket: Ticket) -> Result<()> {
        let _sync = self.sync_lock.lock();
        let (file, number, len, target, epoch) = {
            let writer = self.writer.lock();
            match writer.state(ticket) {
                TicketState::Durable => return Ok(()),
                TicketState::Lost => return Err(lost_batch("cut off by a rollback")),
                TicketState::Pending => {}
            }
            if let Some(reason) = &writer.broken {
                return Err(lost_batch(reason));
            }
            (writer.current.file.clone(), writer.current.number, writer.current.len, writer.written, writer.epoch())
        };
        let path = segment_path(&self.dir, number);
        let result = self.io.sync_data(&file);
        let mut writer = self.writer.lock();
        let same_segment = writer.epoch() == epoch && writer.current.number == number;
        match &result {
            Ok(()) if same_segment && target > writer.durable => {
                writer.durable = target;
                writer.durable_len = len;
                self.mark.lock().record(DurableMark { segment: number, offset: len }, false);
            }
            Ok(()) => {}
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "fdatasync of the event log failed");
                if same_segment && writer.broken.is_none() {
                    writer.broken = Some(format!("fdatasync of {} failed: {e}", path.display()));
                }
            }
        }
        match (writer.state(ticket), result) {
            (TicketState::Durable, _) => Ok(()),
            (_, Err(e)) => Err(io_context(&path, e)),
            (_, Ok(())) => Err(lost_batch("cut off by a rollback")),
        }
    }

    /// Why appends are refused (see [`EventLog::recover`]), if they are.
    pub fn broken(&self) -> Option<String> {
        self.writer.lock().broken.clone()
    }

    /// After a failed sync: cut the newest segment back to the last durable point and sync
    /// that, so appends can resume. The cut is made even when the sync fails (appends stay
    /// refused then, and the next call syncs again); each cut bumps [`EventLog::epoch`]: the
    /// records after that point are gone, and whoever indexed them must forget them.
    ///
    /// Why cut and not sync again: after a failed `fdatasync`, Linux may have marked the
    /// pages whose write-back failed clean (dropping them, or keeping data the disk does
    /// not have), and a second `fdatasync` then reports success without writing them. No
    /// later sync can prove those bytes durable, so they are truncated away; their batches
    /// were never acknowledged and each caller got an error. Re-writing them from memory
    /// would need every waiting batch's frames kept until the sync; cutting needs nothing.
    pub fn recover(&self) -> Result<()> {
        let _sync = self.sync_lock.lock();
        let mut writer = self.writer.lock();
        if writer.broken.is_none() {
            return Ok(());
        }
        let keep = writer.durable_len;
        let path = segment_path(&self.dir, writer.current.number);
        let file = writer.current.file.clone();
        // Also when nothing indexed is cut: a failed write may have left bytes past its start.
        file.set_len(keep).map_err(|e| io_context(&path, e))?;
        if writer.current.len > keep {
            tracing::warn!(path = %path.display(), kept_bytes = keep, cut_bytes = writer.current.len - keep, "cut the event log back to its last durable point");
            let durable = writer.durable;
            writer.rollbacks.push(durable);
            writer.current.len = keep;
        }
        if let Err(e) = self.io.sync_data(&file) {
            writer.broken = Some(format!("fdatasync of {} failed: {e}", path.display()));
            return Err(io_context(&path, e));
        }
        writer.broken = None;
        Ok(())
    }

    /// Whether the disk under the log takes a write again: `bytes` written to a scratch file
    /// beside the segments (through the same seam as appends), made durable, then removed.
    /// Nothing of the log changes. Used while writes are refused, so that an idle store sees
    /// space return without waiting for a client's write.
    pub fn probe_writes(&self, bytes: usize) -> Result<()> {
        let path = self.dir.join(PROBE_FILE);
        self.io.probe(&path, bytes).map_err(|e| io_context(&path, e))
    }

    /// How many times [`EventLog::recover`] cut records off.
    pub fn epoch(&self) -> usize {
        self.writer.lock().epoch()
    }

    /// Replay every record of the open log into `visit`, in order. The caller keeps
    /// appends out while it runs.
    pub fn replay(&self, mut visit: impl FnMut(LogRecord, LogPosition) -> Result<()>) -> Result<()> {
        let last = self.writer.lock().current.number;
        for number in 1..=last {
            replay_segment(&self.dir, number, false, 0, &self.io, &mut visit)?;
        }
        Ok(())
    }

    /// Read back the record at `position`.
    pub fn read_at(&self, position: LogPosition) -> Result<LogRecord> {
        let file = {
            let readers = self.readers.read();
            readers.get(position.segment as usize - 1).cloned()
        };
        let path = segment_path(&self.dir, position.segment);
        let file = file.ok_or_else(|| Error::Corrupt { path: path.clone(), message: "no such segment".into() })?;
        let mut header = [0u8; FRAME_HEADER_LEN];
        file.read_exact_at(&mut header, u64::from(position.offset)).map_err(|e| io_context(&path, e))?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len > MAX_FRAME_BYTES {
            return Err(Error::Corrupt { path, message: format!("frame at {} claims {len} bytes", position.offset) });
        }
        let mut payload = vec![0u8; len];
        file.read_exact_at(&mut payload, u64::from(position.offset) + FRAME_HEADER_LEN as u64)
            .map_err(|e| io_context(&path, e))?;
        if crc32fast::hash(&payload) != crc {
            return Err(Error::Corrupt { path, message: format!("checksum mismatch at {}", position.offset) });
        }
        codec::decode(&payload).map_err(|e| Error::Corrupt { path, message: e.to_string() })
    }

    /// Total bytes in all segments.
    pub fn size_bytes(&self) -> u64 {
        self.readers.read().iter().filter_map(|f| f.metadata().ok()).map(|m| m.len()).sum()
    }
}

/// Replay one segment; `durable` is the recorded durable length of this segment (0 when
/// the mark is in a later segment or unknown).
fn replay_segment(
    dir: &Path,
    number: u32,
    is_last: bool,
    durable: u64,
    io: &LogIo,
    visit: &mut impl FnMut(LogRecord, LogPosition) -> Result<()>,
) -> Result<Segment> {
    let path = segment_path(dir, number);
    let mut file = OpenOptions::new().read(true).append(true).open(&path).map_err(|e| io_context(&path, e))?;
    let file_len = file.metadata().map_err(|e| io_context(&path, e))?.len();
    let corrupt = |message: String| Error::Corrupt { path: path.clone(), message };
    if file_len < durable {
        return Err(corrupt(format!(
            "segment {number} is {file_len} bytes but {durable} were recorded as durable: acknowledged events are \
             missing; nothing was changed. `souk repair` salvages every valid frame into a new log"
        )));
    }
    if file_len < HEADER_LEN {
        if is_last {
            // A crash while creating the segment: start it again.
            file.set_len(0).map_err(|e| io_context(&path, e))?;
            drop(file);
            fs_err::remove_file(&path)?;
            return create_segment(dir, number, io);
        }
        return Err(corrupt(format!("segment shorter than its header ({file_len} bytes)")));
    }
    let mut reader = BufReader::with_capacity(1 << 20, &mut file);
    let mut header = [0u8; HEADER_LEN as usize];
    reader.read_exact(&mut header).map_err(|e| io_context(&path, e))?;
    if &header[..8] != MAGIC {
        return Err(corrupt("not a souk event log segment (bad magic)".into()));
    }
    let version = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
    if !codec::readable_version(version) {
        return Err(Error::FormatVersion { path, found: version, expected: LOG_FORMAT_VERSION });
    }
    let mut offset = HEADER_LEN;
    let mut payload = Vec::new();
    let mut bad: Option<String> = None;
    while offset < file_len {
        let remaining = file_len - offset;
        if remaining < FRAME_HEADER_LEN as u64 {
            bad = Some(format!("{remaining} stray bytes"));
            break;
        }
        let mut frame_header = [0u8; FRAME_HEADER_LEN];
        reader.read_exact(&mut frame_header).map_err(|e| io_context(&path, e))?;
        let (len, crc) = frame_header_fields(&frame_header);
        if len == 0 || len > MAX_FRAME_BYTES || (len + FRAME_HEADER_LEN) as u64 > remaining {
            bad = Some(format!("frame claims {len} bytes"));
            break;
        }
        payload.resize(len, 0);
        reader.read_exact(&mut payload).map_err(|e| io_context(&path, e))?;
        if crc32fast::hash(&payload) != crc {
            bad = Some("checksum mismatch".into());
            break;
        }
        let record = match codec::decode(&payload) {
            Ok(record) => record,
            Err(e) => {
                bad = Some(format!("undecodable record: {e}"));
                break;
            }
        };
        visit(record, LogPosition { segment: number, offset: offset as u32 })?;
        offset += (FRAME_HEADER_LEN + len) as u64;
    }
    drop(reader);
    if let Some(reason) = bad {
        let damage = |detail: String| {
            corrupt(format!(
                "segment {number} is damaged at byte offset {offset} ({reason}){detail}; nothing was \
                 changed. `souk verify` lists every damaged stretch, `souk repair` salvages every \
                 valid frame into a new log and keeps the damaged one"
            ))
        };
        if !is_last {
            return Err(damage(String::new()));
        }
        if offset < durable {
            return Err(damage(format!(", before the last point recorded as durable ({durable})")));
        }
        let mut rest = Vec::with_capacity((file_len - offset) as usize);
        file.seek(SeekFrom::Start(offset)).map_err(|e| io_context(&path, e))?;
        (&mut file).take(file_len - offset).read_to_end(&mut rest).map_err(|e| io_context(&path, e))?;
        match classify_tail(&rest) {
            Tail::Torn => {
                tracing::warn!(path = %path.display(), %reason, kept_bytes = offset, dropped_bytes = file_len - offset, "truncating the torn tail of the event log (an unacknowledged write cut short by a crash)");
                file.set_len(offset).map_err(|e| io_context(&path, e))?;
                file.sync_all().map_err(|e| io_context(&path, e))?;
            }
            Tail::Damaged(detail) => return Err(damage(detail)),
        }
    }
    file.seek(SeekFrom::End(0)).map_err(|e| io_context(&path, e))?;
    Ok(Segment { number, file: Arc::new(file), len: offset, version })
}

#[cfg(test)]
pub(crate) mod tests {
    use rand::{RngCore, SeedableRng};

    use super::*;
    use crate::ids::{EventId, ItemId, UserId};
    use crate::model::{Event, EventType};

    /// A view event numbered `n` (the log's tests and the repair tests share it).
    pub(crate) fn event(n: u32) -> LogRecord {
        LogRecord::Event(Event::new(
            EventId::parse(format!("e{n}"), "id").unwrap(),
            EventType::View,
            UserId::parse(format!("u{}", n % 7), "user").unwrap(),
            Some(ItemId::parse(format!("i{}", n % 13), "item").unwrap()),
            i64::from(n),
        ))
    }

    fn append_all(log: &EventLog, records: &[LogRecord]) -> Ticket {
        let mut frames = Vec::new();
        let mut starts = Vec::new();
        for r in records {
            starts.push(frames.len());
            frame(r, &mut frames);
        }
        let end = log.append(&frames, &starts, &mut Vec::new()).unwrap();
        log.sync_to(end).unwrap();
        end
    }

    fn replay(dir: &Path, segment_bytes: u64) -> (EventLog, Vec<LogRecord>) {
        let mut seen = Vec::new();
        let log = EventLog::open(dir, segment_bytes, |r, _| {
            seen.push(r);
            Ok(())
        })
        .unwrap();
        (log, seen)
    }

    #[test]
    fn a_version_1_segment_is_read_and_never_appended_to() {
        let dir = tempfile::tempdir().unwrap();
        let first: Vec<LogRecord> = (0..5).map(event).collect();
        {
            let (log, _) = replay(dir.path(), 1 << 20);
            append_all(&log, &first);
        }
        // Make the segment one that version 1 wrote (its records are the same bytes).
        let path = segment_path(dir.path(), 1);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
        std::fs::write(&path, &bytes).unwrap();

        let (log, seen) = replay(dir.path(), 1 << 20);
        assert_eq!(seen, first);
        let second: Vec<LogRecord> = (5..8).map(event).collect();
        append_all(&log, &second);
        drop(log);
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "the version 1 segment is untouched");
        let header = std::fs::read(segment_path(dir.path(), 2)).unwrap();
        assert_eq!(u32::from_le_bytes(header[8..12].try_into().unwrap()), LOG_FORMAT_VERSION);
        let (_, seen) = replay(dir.path(), 1 << 20);
        assert_eq!(seen, first.into_iter().chain(second).collect::<Vec<_>>());
    }

    #[test]
    fn records_survive_reopen_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let records: Vec<_> = (0..500).map(event).collect();
        {
            let (log, seen) = replay(dir.path(), 2_000);
            assert!(seen.is_empty());
            for chunk in records.chunks(37) {
                append_all(&log, chunk);
            }
        }
        let (log, seen) = replay(dir.path(), 2_000);
        assert_eq!(seen, records);
        assert!(fs_err::read_dir(dir.path()).unwrap().count() > 3, "expected several segments");
        append_all(&log, &[event(1000)]);
        drop(log);
        assert_eq!(replay(dir.path(), 2_000).1.len(), 501);
    }

    #[test]
    fn read_at_returns_the_record_at_its_position() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = replay(dir.path(), 1 << 20);
        let mut frames = Vec::new();
        let mut starts = Vec::new();
        for n in 0..10 {
            starts.push(frames.len());
            frame(&event(n), &mut frames);
        }
        let mut positions = Vec::new();
        log.append(&frames, &starts, &mut positions).unwrap();
        assert_eq!(log.read_at(positions[7]).unwrap(), event(7));
        assert_eq!(LogPosition::unpack(positions[3].pack()), positions[3]);
    }

    #[test]
    fn a_torn_tail_is_truncated_and_earlier_records_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = replay(dir.path(), 1 << 20);
        append_all(&log, &(0..19).map(event).collect::<Vec<_>>());
        // The 20th is written but the process dies before its fdatasync.
        let mut frames = Vec::new();
        frame(&event(19), &mut frames);
        log.append(&frames, &[0], &mut Vec::new()).unwrap();
        std::mem::forget(log);
        let path = segment_path(dir.path(), 1);
        let len = fs_err::metadata(&path).unwrap().len();
        // Simulate a crash in the middle of the last frame.
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(len - 3).unwrap();
        let (log, seen) = replay(dir.path(), 1 << 20);
        assert_eq!(seen.len(), 19);
        append_all(&log, &[event(99)]);
        drop(log);
        let (_, seen) = replay(dir.path(), 1 << 20);
        assert_eq!(seen.len(), 20);
        assert_eq!(seen[19], event(99));
    }

    #[test]
    fn after_a_clean_close_a_shorter_segment_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (log, _) = replay(dir.path(), 1 << 20);
            append_all(&log, &(0..20).map(event).collect::<Vec<_>>());
        }
        let path = segment_path(dir.path(), 1);
        let len = fs_err::metadata(&path).unwrap().len();
        OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 3).unwrap();
        let error = EventLog::open(dir.path(), 1 << 20, |_, _| Ok(())).err().expect("the open must refuse");
        assert!(error.to_string().contains("recorded as durable"), "{error}");
        assert_eq!(fs_err::metadata(&path).unwrap().len(), len - 3, "nothing is truncated");
    }

    #[test]
    fn damage_before_the_tail_is_reported_not_skipped() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (log, _) = replay(dir.path(), 300);
            for n in 0..20 {
                append_all(&log, &[event(n)]);
            }
        }
        let path = segment_path(dir.path(), 1);
        let mut bytes = fs_err::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs_err::write(&path, bytes).unwrap();
        let result = EventLog::open(dir.path(), 300, |_, _| Ok(()));
        assert!(matches!(result, Err(Error::Corrupt { .. })), "expected corruption to be reported");
    }

    #[test]
    fn an_unknown_format_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(replay(dir.path(), 1 << 20));
        let path = segment_path(dir.path(), 1);
        let mut bytes = fs_err::read(&path).unwrap();
        bytes[8] = 99;
        fs_err::write(&path, bytes).unwrap();
        let result = EventLog::open(dir.path(), 1 << 20, |_, _| Ok(()));
        assert!(matches!(result, Err(Error::FormatVersion { found: 99, .. })));
    }

    const SMALL_SEGMENT: u64 = 400;

    /// Records of a log written one durable append per record across two segments (the
    /// second one the newest), and the bytes of both segments.
    fn two_segment_log(dir: &Path) -> (Vec<LogRecord>, Vec<u8>, Vec<u8>) {
        let records: Vec<_> = (0..40).map(event).collect();
        let (log, _) = replay(dir, SMALL_SEGMENT);
        for r in &records {
            append_all(&log, std::slice::from_ref(r));
        }
        drop(log);
        assert_eq!(segment_numbers(dir).unwrap(), vec![1, 2, 3], "the test expects three segments");
        (records, fs_err::read(segment_path(dir, 2)).unwrap(), fs_err::read(segment_path(dir, 3)).unwrap())
    }

    /// Open must either give back every record or refuse without changing the files (a torn
    /// tail after the durable point aside, which is truncated).
    fn survives_or_refuses(dir: &Path, records: &[LogRecord], what: &str) -> bool {
        let before: Vec<_> = (1..=3).map(|n| fs_err::read(segment_path(dir, n)).unwrap()).collect();
        let mut seen = Vec::new();
        match EventLog::open(dir, SMALL_SEGMENT, |r, _| {
            seen.push(r);
            Ok(())
        }) {
            Ok(_) => {
                assert_eq!(seen, records, "{what}: an open that succeeds must keep every acknowledged record");
                true
            }
            Err(Error::Corrupt { message, .. }) => {
                assert!(message.contains("segment") || message.contains("magic"), "{what}: unclear message {message}");
                let after: Vec<_> = (1..=3).map(|n| fs_err::read(segment_path(dir, n)).unwrap()).collect();
                assert!(before == after, "{what}: a refused open must not change the files");
                false
            }
            Err(Error::FormatVersion { .. }) => false,
            Err(other) => panic!("{what}: unexpected error {other}"),
        }
    }

    #[test]
    fn a_flipped_byte_anywhere_in_a_segment_is_refused_never_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (records, sealed, newest) = two_segment_log(dir.path());
        for (number, original) in [(2u32, &sealed), (3, &newest)] {
            let path = segment_path(dir.path(), number);
            for at in 0..original.len() {
                let mut bytes = original.clone();
                bytes[at] ^= 0x5a;
                fs_err::write(&path, &bytes).unwrap();
                let opened = survives_or_refuses(dir.path(), &records, &format!("flip at {at} of segment {number}"));
                // Only the segment-number field of the header carries no data.
                assert_eq!(opened, (12..16).contains(&at), "flip at {at} of segment {number}");
            }
            fs_err::write(&path, original).unwrap();
        }
    }

    #[test]
    fn garbage_over_any_frame_is_refused_and_garbage_after_the_last_is_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let (records, _, newest) = two_segment_log(dir.path());
        let path = segment_path(dir.path(), 3);
        let mut noise = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for at in (HEADER_LEN as usize..newest.len()).step_by(5) {
            let mut bytes = newest.clone();
            let end = (at + 24).min(bytes.len());
            noise.fill_bytes(&mut bytes[at..end]);
            fs_err::write(&path, &bytes).unwrap();
            assert!(!survives_or_refuses(dir.path(), &records, &format!("garbage at {at}")));
        }
        for tail in [1usize, 7, 8, 100, 5000] {
            let mut bytes = newest.clone();
            let mut garbage = vec![0u8; tail];
            noise.fill_bytes(&mut garbage);
            bytes.extend_from_slice(&garbage);
            fs_err::write(&path, &bytes).unwrap();
            assert!(survives_or_refuses(dir.path(), &records, &format!("{tail} garbage bytes at the end")));
            assert_eq!(fs_err::read(&path).unwrap(), newest, "the torn tail is truncated away");
        }
    }

    #[test]
    fn truncation_anywhere_after_a_clean_close_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (records, sealed, newest) = two_segment_log(dir.path());
        for (number, original) in [(2u32, &sealed), (3, &newest)] {
            let path = segment_path(dir.path(), number);
            for cut in HEADER_LEN as usize..original.len() {
                fs_err::write(&path, &original[..cut]).unwrap();
                assert!(!survives_or_refuses(dir.path(), &records, &format!("segment {number} cut at {cut}")));
            }
            fs_err::write(&path, original).unwrap();
        }
        assert!(survives_or_refuses(dir.path(), &records, "the intact log"));
    }

    fn frames_of(records: &[LogRecord]) -> (Vec<u8>, Vec<usize>) {
        let mut frames = Vec::new();
        let mut starts = Vec::new();
        for r in records {
            starts.push(frames.len());
            frame(r, &mut frames);
        }
        (frames, starts)
    }

    fn open_faulty(dir: &Path, segment_bytes: u64, faults: &Arc<IoFaults>) -> EventLog {
        EventLog::open_with(dir, segment_bytes, Some(faults.clone()), |_, _| Ok(())).unwrap()
    }

    #[test]
    fn a_write_that_runs_out_of_space_leaves_nothing_of_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let records: Vec<_> = (0..40).map(event).collect();
        let faults = IoFaults::new();
        let log = open_faulty(dir.path(), 1 << 20, &faults);
        append_all(&log, &records[..10]);
        let path = segment_path(dir.path(), 1);
        let before = fs_err::read(&path).unwrap();
        // The disk fills in the middle of the second batch's frames.
        faults.fill_after(150);
        let (frames, starts) = frames_of(&records[10..30]);
        let error = log.append(&frames, &starts, &mut Vec::new()).unwrap_err();
        assert!(matches!(&error, Error::Io(e) if e.kind() == std::io::ErrorKind::StorageFull), "{error}");
        assert_eq!(fs_err::read(&path).unwrap(), before, "the partial batch is cut back");
        assert!(log.broken().is_none(), "a cut-back write needs no recovery");
        // Space returns: the next batch goes in without a reopen.
        faults.heal();
        append_all(&log, &records[30..]);
        drop(log);
        let (_, seen) = replay(dir.path(), 1 << 20);
        assert_eq!(seen, [&records[..10], &records[30..]].concat());
    }

    #[test]
    fn a_failed_write_whose_cut_back_cannot_be_synced_blocks_appends_until_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let records: Vec<_> = (0..40).map(event).collect();
        let faults = IoFaults::new();
        let log = open_faulty(dir.path(), 1 << 20, &faults);
        append_all(&log, &records[..10]);
        faults.fill_after(40);
        faults.fail_syncs(true);
        let (frames, starts) = frames_of(&records[10..30]);
        assert!(log.append(&frames, &starts, &mut Vec::new()).is_err());
        assert!(log.broken().is_some(), "the cut-back is not durable yet");
        assert!(log.append(&frames, &starts, &mut Vec::new()).is_err());
        faults.heal();
        log.recover().unwrap();
        assert_eq!(log.epoch(), 0, "nothing acknowledged or indexed was cut");
        append_all(&log, &records[30..]);
        drop(log);
        let (_, seen) = replay(dir.path(), 1 << 20);
        assert_eq!(seen, [&records[..10], &records[30..]].concat());
    }

    #[test]
    fn a_failed_fdatasync_fails_every_unsynced_batch_and_recovery_cuts_them_off() {
        let dir = tempfile::tempdir().unwrap();
        let records: Vec<_> = (0..40).map(event).collect();
        let faults = IoFaults::new();
        let log = open_faulty(dir.path(), 1 << 20, &faults);
        let first = append_all(&log, &records[..10]);
        // Two batches are written; neither is durable when the disk starts failing.
        let (frames, starts) = frames_of(&records[10..20]);
        let second = log.append(&frames, &starts, &mut Vec::new()).unwrap();
        let (frames, starts) = frames_of(&records[20..30]);
        let third = log.append(&frames, &starts, &mut Vec::new()).unwrap();
        faults.fail_syncs(true);
        assert!(log.sync_to(third).is_err());
        assert!(log.broken().is_some());
        // The batch whose sync was not the one that failed fails too, and so do appends.
        assert!(log.sync_to(second).is_err());
        let (frames, starts) = frames_of(&records[30..31]);
        assert!(log.append(&frames, &starts, &mut Vec::new()).is_err());
        assert!(log.recover().is_err(), "recovery syncs too: it fails while the disk does");
        assert_eq!(log.epoch(), 1, "the unsynced batches are cut off all the same");
        assert!(log.append(&frames, &starts, &mut Vec::new()).is_err(), "appends wait for the sync");
        faults.heal();
        log.recover().unwrap();
        assert_eq!(log.epoch(), 1);
        assert!(log.sync_to(second).is_err() && log.sync_to(third).is_err(), "cut off: never acknowledged");
        log.sync_to(first).unwrap();
        append_all(&log, &records[30..]);
        drop(log);
        let (_, seen) = replay(dir.path(), 1 << 20);
        assert_eq!(seen, [&records[..10], &records[30..]].concat());
    }

    #[test]
    fn a_rotation_that_fails_leaves_no_half_made_segment_and_is_retried() {
        let dir = tempfile::tempdir().unwrap();
        let records: Vec<_> = (0..40).map(event).collect();
        let faults = IoFaults::new();
        let log = open_faulty(dir.path(), SMALL_SEGMENT, &faults);
        let mut stored = Vec::new();
        let mut failed_rotations = 0;
        for r in &records {
            let (frames, starts) = frames_of(std::slice::from_ref(r));
            let segments = segment_numbers(dir.path()).unwrap().len();
            // Room for part of a new segment's header only.
            faults.fill_after(9);
            match log.append(&frames, &starts, &mut Vec::new()) {
                Ok(ticket) => {
                    log.sync_to(ticket).unwrap();
                    stored.push(r.clone());
                    continue;
                }
                Err(e) => assert!(matches!(&e, Error::Io(io) if io.kind() == std::io::ErrorKind::StorageFull), "{e}"),
            }
            if segment_numbers(dir.path()).unwrap().len() == segments
                && log.writer.lock().current.len > HEADER_LEN + 300
            {
                failed_rotations += 1;
            }
            assert_eq!(segment_numbers(dir.path()).unwrap().len(), segments, "no half-made segment is left");
            faults.heal();
            let ticket = log.append(&frames, &starts, &mut Vec::new()).unwrap();
            log.sync_to(ticket).unwrap();
            stored.push(r.clone());
        }
        assert!(failed_rotations >= 1 && segment_numbers(dir.path()).unwrap().len() >= 3, "{failed_rotations}");
        drop(log);
        let (_, seen) = replay(dir.path(), SMALL_SEGMENT);
        assert_eq!(seen, stored);
        assert_eq!(seen, records);
    }

    #[test]
    fn power_loss_after_the_last_fdatasync_keeps_every_acknowledged_record() {
        // The durable image is what was synced; the unsynced suffix may be lost, cut short or
        // zero-filled (a file size that got ahead of its data).
        let dir = tempfile::tempdir().unwrap();
        let records: Vec<_> = (0..30).map(event).collect();
        let (log, _) = replay(dir.path(), 1 << 20);
        append_all(&log, &records[..20]);
        let durable = fs_err::read(segment_path(dir.path(), 1)).unwrap();
        let mut frames = Vec::new();
        let mut starts = Vec::new();
        for r in &records[20..] {
            starts.push(frames.len());
            frame(r, &mut frames);
        }
        log.append(&frames, &starts, &mut Vec::new()).unwrap();
        // Power is lost: no clean close.
        std::mem::forget(log);
        let full = fs_err::read(segment_path(dir.path(), 1)).unwrap();
        assert_eq!(full.len(), durable.len() + frames.len());
        let path = segment_path(dir.path(), 1);
        for lost_from in durable.len()..full.len() {
            for zero_fill in [false, true] {
                let mut image = full[..lost_from].to_vec();
                if zero_fill {
                    image.resize(full.len(), 0);
                }
                fs_err::write(&path, &image).unwrap();
                let mut seen = Vec::new();
                let opened = EventLog::open(dir.path(), 1 << 20, |r, _| {
                    seen.push(r);
                    Ok(())
                });
                // A zero fill shorter than ZERO_FILL_MIN inside the last frame cannot be told
                // from damage: the open may refuse it (and changes nothing then).
                let must_open = !zero_fill || full.len() - lost_from >= ZERO_FILL_MIN;
                match opened {
                    Ok(_) => assert!(seen.len() >= 20 && seen[..] == records[..seen.len()], "lost from {lost_from}"),
                    Err(e) if must_open => panic!("lost from {lost_from}, zero fill {zero_fill}: {e}"),
                    Err(_) => assert_eq!(fs_err::read(&path).unwrap(), image),
                }
            }
        }
    }

    #[test]
    fn a_flip_in_the_middle_of_a_large_newest_segment_names_the_segment_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        let records: Vec<_> = (0..5_000).map(event).collect();
        {
            let (log, _) = replay(dir.path(), 1 << 30);
            append_all(&log, &records);
        }
        let path = segment_path(dir.path(), 1);
        let mut bytes = fs_err::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        fs_err::write(&path, &bytes).unwrap();
        let error = match EventLog::open(dir.path(), 1 << 30, |_, _| Ok(())) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("the open must refuse"),
        };
        assert!(error.contains("segment 1 is damaged at byte offset"), "{error}");
        assert!(error.contains("souk repair"), "{error}");
        assert_eq!(fs_err::read(&path).unwrap(), bytes, "nothing is truncated");
    }
}
