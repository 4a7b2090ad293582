//! The frames of a log segment: building them, telling a valid frame, a torn tail and damage
//! apart, and scanning a segment without changing it (for `souk verify` and `souk repair`).

use std::path::{Path, PathBuf};

use super::mark::{read_mark, read_sealed};
use crate::error::{Error, Result};
use crate::store::codec::{self, LogRecord};

pub(super) const MAGIC: &[u8; 8] = b"SOUKEVLG";
pub(super) const HEADER_LEN: u64 = 16;
pub(super) const FRAME_HEADER_LEN: usize = 8;
/// Largest accepted frame payload; anything bigger in a file is corruption.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

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

pub(super) fn segment_path(dir: &Path, number: u32) -> PathBuf {
    dir.join(format!("seg-{number:08}.log"))
}

pub(super) fn frame_header_fields(header: &[u8]) -> (usize, u32) {
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    (len, crc)
}

/// A valid frame at the start of `bytes`: its record and its length with the header.
fn valid_frame(bytes: &[u8]) -> Option<(LogRecord, usize)> {
    if bytes.len() < FRAME_HEADER_LEN {
        return None;
    }
    let (len, crc) = frame_header_fields(bytes);
    if len == 0 || len > MAX_FRAME_BYTES || len > bytes.len() - FRAME_HEADER_LEN {
        return None;
    }
    let payload = &bytes[FRAME_HEADER_LEN..FRAME_HEADER_LEN + len];
    // Cheap test first: the record kind byte rules out almost every misaligned position.
    if !codec::is_record_kind(payload[0]) || crc32fast::hash(payload) != crc {
        return None;
    }
    codec::decode(payload).ok().map(|record| (record, FRAME_HEADER_LEN + len))
}

/// The first offset at or after `from` where a valid frame starts.
fn next_valid_frame(bytes: &[u8], from: usize) -> Option<usize> {
    (from..bytes.len().saturating_sub(FRAME_HEADER_LEN)).find(|&at| valid_frame(&bytes[at..]).is_some())
}

/// What the bytes from the first bad frame of the newest segment to its end are.
pub(super) enum Tail {
    /// A write cut short by a crash: safe to truncate.
    Torn,
    /// Damage; the text says why it is not a torn write.
    Damaged(String),
}

pub(super) fn classify_tail(rest: &[u8]) -> Tail {
    if let Some(at) = next_valid_frame(rest, 1) {
        return Tail::Damaged(format!(", and a valid frame follows {at} bytes later"));
    }
    if rest.iter().all(|b| *b == 0) {
        return Tail::Torn;
    }
    if rest.len() < FRAME_HEADER_LEN {
        return Tail::Torn;
    }
    let (len, crc) = frame_header_fields(rest);
    let body = &rest[FRAME_HEADER_LEN..];
    let partial = len > body.len();
    if partial {
        // A damaged length field makes a complete last frame look partial: its payload
        // still checksums as a whole.
        if !body.is_empty() && crc32fast::hash(body) == crc {
            return Tail::Damaged(", the frame's length field is damaged (its payload is intact)".into());
        }
        return Tail::Torn;
    }
    // A complete frame that fails its checksum: torn only if it is zero-filled from some
    // point to the end (blocks the crash never wrote).
    let nonzero = rest.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    if rest.len() - nonzero >= ZERO_FILL_MIN {
        return Tail::Torn;
    }
    Tail::Damaged(", a complete frame fails its checksum".into())
}

/// Trailing zero bytes that mark a frame as never fully written (a crash leaves whole
/// unwritten blocks; records do not end in this many zeros).
pub const ZERO_FILL_MIN: usize = 16;

/// A stretch of a segment that holds no valid frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedStretch {
    pub offset: u64,
    pub len: u64,
    /// Whether the stretch runs to the end of the newest segment and is what a crash
    /// leaves (see the module docs): not damage, an unacknowledged write.
    pub torn_tail: bool,
}

/// A valid record found by [`scan_segment`] with the bytes of its whole frame.
pub struct LogRecordRef<'a> {
    pub record: LogRecord,
    pub frame: &'a [u8],
}

/// What [`scan_segment`] found: counts of valid frames and the stretches between them that
/// are not frames.
#[derive(Debug)]
pub struct SegmentScan {
    pub number: u32,
    pub bytes: u64,
    pub records: u64,
    pub damaged: Vec<DamagedStretch>,
    /// The header is unreadable (bad magic or version): nothing of the segment is trusted.
    pub bad_header: Option<String>,
}

/// The segment numbers in a log directory, in order (gaps are the caller's concern).
pub fn segment_numbers(dir: &Path) -> Result<Vec<u32>> {
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
    Ok(numbers)
}

/// The path of segment `number` in `dir`.
pub fn segment_file(dir: &Path, number: u32) -> PathBuf {
    segment_path(dir, number)
}

/// Read a segment without changing it: every valid frame and every stretch that is not
/// one. A bad frame is skipped by searching forward for the next valid frame.
pub fn scan_segment(
    dir: &Path,
    number: u32,
    is_last: bool,
    visit: &mut impl FnMut(LogRecordRef<'_>) -> Result<()>,
) -> Result<SegmentScan> {
    let path = segment_path(dir, number);
    let bytes = fs_err::read(&path)?;
    let mut scan = SegmentScan { number, bytes: bytes.len() as u64, records: 0, damaged: Vec::new(), bad_header: None };
    let durable = match read_sealed(dir).get(&number) {
        Some(len) => *len,
        None => read_mark(dir).filter(|m| m.segment == number).map_or(0, |m| m.offset),
    };
    if (bytes.len() as u64) < durable {
        scan.bad_header = Some(format!(
            "{} bytes long but {durable} were recorded as durable (acknowledged events are missing)",
            bytes.len()
        ));
    }
    if bytes.len() < HEADER_LEN as usize {
        // In the newest segment this is a crash while creating it (the open starts it again).
        if !is_last {
            scan.bad_header = Some(format!("segment shorter than its header ({} bytes)", bytes.len()));
        }
        return Ok(scan);
    }
    if &bytes[..8] != MAGIC {
        scan.bad_header = Some("not a souk event log segment (bad magic)".into());
        return Ok(scan);
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if !codec::readable_version(version) {
        scan.bad_header = Some(format!("unsupported format version {version}"));
        return Ok(scan);
    }
    let mut at = HEADER_LEN as usize;
    while at < bytes.len() {
        if let Some((record, len)) = valid_frame(&bytes[at..]) {
            visit(LogRecordRef { record, frame: &bytes[at..at + len] })?;
            scan.records += 1;
            at += len;
            continue;
        }
        let next = next_valid_frame(&bytes, at + 1);
        let end = next.unwrap_or(bytes.len());
        let torn_tail =
            is_last && next.is_none() && at as u64 >= durable && matches!(classify_tail(&bytes[at..]), Tail::Torn);
        scan.damaged.push(DamagedStretch { offset: at as u64, len: (end - at) as u64, torn_tail });
        at = end;
    }
    Ok(scan)
}
