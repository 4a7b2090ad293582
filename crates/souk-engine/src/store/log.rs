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
//! Recovery: a frame that is cut short or fails its checksum at the end of the newest
//! segment is a torn write from a crash and is truncated away; damage anywhere else is
//! reported as corruption, never skipped silently.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::codec::{self, LogRecord, LOG_FORMAT_VERSION};
use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"SOUKEVLG";
const HEADER_LEN: u64 = 16;
const FRAME_HEADER_LEN: usize = 8;
/// Largest accepted frame payload; anything bigger in a file is corruption.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

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

/// Append `record` to `out` as a complete frame (header and payload).
pub fn frame(record: &LogRecord, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
    codec::encode(record, out);
    seal_frame(out, start);
}

/// Append an event as a complete frame (avoids cloning it into a [`LogRecord`]).
pub fn frame_event(event: &crate::model::Event, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
    codec::encode_event(event, out);
    seal_frame(out, start);
}

/// Fill in the length and checksum of the frame that starts at `start` and runs to the end.
pub fn seal_frame(out: &mut [u8], start: usize) {
    let payload_len = out.len() - start - FRAME_HEADER_LEN;
    let crc = crc32fast::hash(&out[start + FRAME_HEADER_LEN..]);
    out[start..start + 4].copy_from_slice(&(payload_len as u32).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

struct Segment {
    number: u32,
    file: Arc<File>,
    len: u64,
}

struct Writer {
    current: Segment,
    /// Logical bytes written over the life of this process (monotone, across segments).
    written: u64,
}

/// An append-only, checksummed, segmented log. See the module docs.
pub struct EventLog {
    dir: PathBuf,
    segment_bytes: u64,
    writer: Mutex<Writer>,
    /// Logical offset up to which everything is on stable storage.
    synced: Mutex<u64>,
    /// Read handles by segment number (index = number - 1).
    readers: RwLock<Vec<Arc<File>>>,
}

fn segment_path(dir: &Path, number: u32) -> PathBuf {
    dir.join(format!("seg-{number:08}.log"))
}

fn io_context(path: &Path, error: std::io::Error) -> Error {
    Error::Io(std::io::Error::new(error.kind(), format!("{}: {error}", path.display())))
}

fn create_segment(dir: &Path, number: u32) -> Result<Segment> {
    let path = segment_path(dir, number);
    let mut file =
        OpenOptions::new().create_new(true).read(true).append(true).open(&path).map_err(|e| io_context(&path, e))?;
    let mut header = Vec::with_capacity(HEADER_LEN as usize);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&LOG_FORMAT_VERSION.to_le_bytes());
    header.extend_from_slice(&number.to_le_bytes());
    file.write_all(&header).map_err(|e| io_context(&path, e))?;
    file.sync_all().map_err(|e| io_context(&path, e))?;
    // The new directory entry must survive a crash too.
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io_context(dir, e))?;
    Ok(Segment { number, file: Arc::new(file), len: HEADER_LEN })
}

impl EventLog {
    /// Open (or create) the log in `dir`, replaying every record into `visit` in order.
    pub fn open(
        dir: &Path,
        segment_bytes: u64,
        mut visit: impl FnMut(LogRecord, LogPosition) -> Result<()>,
    ) -> Result<Self> {
        fs_err::create_dir_all(dir)?;
        let mut numbers = Vec::new();
        for entry in fs_err::read_dir(dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some(n) = name.strip_prefix("seg-").and_then(|s| s.strip_suffix(".log")) {
                let number = n.parse::<u32>().map_err(|_| Error::Corrupt {
                    path: dir.join(name.as_ref()),
                    message: "unexpected segment file name".into(),
                })?;
                numbers.push(number);
            }
        }
        numbers.sort_unstable();
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
        let mut readers = Vec::new();
        let mut last = None;
        let count = numbers.len();
        for (index, number) in numbers.into_iter().enumerate() {
            let is_last = index + 1 == count;
            let segment = replay_segment(dir, number, is_last, &mut visit)?;
            readers.push(segment.file.clone());
            last = Some(segment);
        }
        let current = match last {
            Some(segment) => segment,
            None => {
                let segment = create_segment(dir, 1)?;
                readers.push(segment.file.clone());
                segment
            }
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            segment_bytes: segment_bytes.max(HEADER_LEN + 1),
            writer: Mutex::new(Writer { current, written: 0 }),
            synced: Mutex::new(0),
            readers: RwLock::new(readers),
        })
    }

    /// Append already-framed bytes (whole frames, see [`frame`]). `positions` receives the
    /// position of each frame, given the frame start offsets within `frames`. Returns the
    /// logical end offset to pass to [`EventLog::sync_to`].
    pub fn append(&self, frames: &[u8], starts: &[usize], positions: &mut Vec<LogPosition>) -> Result<u64> {
        let mut writer = self.writer.lock();
        if writer.current.len > HEADER_LEN && writer.current.len + frames.len() as u64 > self.segment_bytes {
            self.rotate(&mut writer)?;
        }
        let base = writer.current.len;
        if base + frames.len() as u64 > u64::from(u32::MAX) {
            return Err(Error::Internal(format!("batch of {} bytes does not fit in one segment", frames.len())));
        }
        let path = segment_path(&self.dir, writer.current.number);
        (&*writer.current.file).write_all(frames).map_err(|e| io_context(&path, e))?;
        writer.current.len += frames.len() as u64;
        writer.written += frames.len() as u64;
        positions.extend(
            starts
                .iter()
                .map(|start| LogPosition { segment: writer.current.number, offset: (base + *start as u64) as u32 }),
        );
        Ok(writer.written)
    }

    fn rotate(&self, writer: &mut Writer) -> Result<()> {
        // Everything in the old segment must be durable before later frames can be acked
        // by a sync of the new segment alone.
        let old_path = segment_path(&self.dir, writer.current.number);
        writer.current.file.sync_data().map_err(|e| io_context(&old_path, e))?;
        let next = create_segment(&self.dir, writer.current.number + 1)?;
        self.readers.write().push(next.file.clone());
        writer.current = next;
        Ok(())
    }

    /// Make every byte up to logical offset `end` durable (group commit).
    pub fn sync_to(&self, end: u64) -> Result<()> {
        let mut synced = self.synced.lock();
        if *synced >= end {
            return Ok(());
        }
        let (file, number, target) = {
            let writer = self.writer.lock();
            (writer.current.file.clone(), writer.current.number, writer.written)
        };
        file.sync_data().map_err(|e| io_context(&segment_path(&self.dir, number), e))?;
        *synced = target;
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

fn replay_segment(
    dir: &Path,
    number: u32,
    is_last: bool,
    visit: &mut impl FnMut(LogRecord, LogPosition) -> Result<()>,
) -> Result<Segment> {
    let path = segment_path(dir, number);
    let mut file = OpenOptions::new().read(true).append(true).open(&path).map_err(|e| io_context(&path, e))?;
    let file_len = file.metadata().map_err(|e| io_context(&path, e))?.len();
    let corrupt = |message: String| Error::Corrupt { path: path.clone(), message };
    if file_len < HEADER_LEN {
        if is_last {
            // A crash while creating the segment: start it again.
            file.set_len(0).map_err(|e| io_context(&path, e))?;
            drop(file);
            fs_err::remove_file(&path)?;
            return create_segment(dir, number);
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
    if version != LOG_FORMAT_VERSION {
        return Err(Error::FormatVersion { path, found: version, expected: LOG_FORMAT_VERSION });
    }
    let mut offset = HEADER_LEN;
    let mut payload = Vec::new();
    let mut torn: Option<String> = None;
    while offset < file_len {
        let remaining = file_len - offset;
        if remaining < FRAME_HEADER_LEN as u64 {
            torn = Some(format!("{remaining} stray bytes at {offset}"));
            break;
        }
        let mut frame_header = [0u8; FRAME_HEADER_LEN];
        reader.read_exact(&mut frame_header).map_err(|e| io_context(&path, e))?;
        let len = u32::from_le_bytes([frame_header[0], frame_header[1], frame_header[2], frame_header[3]]) as usize;
        let crc = u32::from_le_bytes([frame_header[4], frame_header[5], frame_header[6], frame_header[7]]);
        if len > MAX_FRAME_BYTES || (len + FRAME_HEADER_LEN) as u64 > remaining {
            torn = Some(format!("frame at {offset} runs past the end of the segment"));
            break;
        }
        payload.resize(len, 0);
        reader.read_exact(&mut payload).map_err(|e| io_context(&path, e))?;
        if crc32fast::hash(&payload) != crc {
            torn = Some(format!("checksum mismatch at {offset}"));
            break;
        }
        let record = codec::decode(&payload).map_err(|e| corrupt(format!("at {offset}: {e}")))?;
        visit(record, LogPosition { segment: number, offset: offset as u32 })?;
        offset += (FRAME_HEADER_LEN + len) as u64;
    }
    drop(reader);
    if let Some(reason) = torn {
        if !is_last {
            return Err(corrupt(reason));
        }
        tracing::warn!(path = %path.display(), %reason, kept_bytes = offset, dropped_bytes = file_len - offset, "truncating torn tail of the event log");
        file.set_len(offset).map_err(|e| io_context(&path, e))?;
        file.sync_all().map_err(|e| io_context(&path, e))?;
    }
    file.seek(SeekFrom::End(0)).map_err(|e| io_context(&path, e))?;
    Ok(Segment { number, file: Arc::new(file), len: offset })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{EventId, ItemId, UserId};
    use crate::model::{Event, EventType};

    fn event(n: u32) -> LogRecord {
        LogRecord::Event(Event::new(
            EventId::parse(format!("e{n}"), "id").unwrap(),
            EventType::View,
            UserId::parse(format!("u{}", n % 7), "user").unwrap(),
            Some(ItemId::parse(format!("i{}", n % 13), "item").unwrap()),
            i64::from(n),
        ))
    }

    fn append_all(log: &EventLog, records: &[LogRecord]) -> u64 {
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
        {
            let (log, _) = replay(dir.path(), 1 << 20);
            append_all(&log, &(0..20).map(event).collect::<Vec<_>>());
        }
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
}
