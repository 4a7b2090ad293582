//! Reading a stretch of the open log while it keeps taking appends, and handing a finished
//! log to a new directory name: what compaction while serving needs of the log.

use std::os::unix::fs::FileExt;
use std::path::Path;

use super::frames::{frame_header_fields, segment_path, FRAME_HEADER_LEN, HEADER_LEN, MAX_FRAME_BYTES};
use super::{io_context, EventLog, LogPosition, Ticket};
use crate::error::{Error, Result};
use crate::store::codec::{self, LogRecord};

/// Bytes read from a segment at a time.
const READ_CHUNK: usize = 8 << 20;

impl EventLog {
    /// The start of the log: the first frame of the first segment.
    pub fn start() -> LogPosition {
        LogPosition { segment: 1, offset: HEADER_LEN as u32 }
    }

    /// Where the next append will land (the end of what is written), and the ticket that
    /// makes everything written so far durable.
    pub fn end(&self) -> (LogPosition, Ticket) {
        let writer = self.writer.lock();
        let end = LogPosition { segment: writer.current.number, offset: writer.current.len as u32 };
        (end, Ticket { end: writer.written, epoch: writer.epoch() })
    }

    /// Visit every record from `from` (a frame start) up to `to` (a later [`EventLog::end`]),
    /// in order, reading the segments with `pread` beside concurrent appends. Everything in
    /// the range must be written (and should be durable: a rollback may cut what is not).
    /// A bad frame in the range is damage: the open checked every frame, appends write
    /// whole frames.
    pub fn scan_range(
        &self,
        from: LogPosition,
        to: LogPosition,
        mut visit: impl FnMut(LogRecord, LogPosition) -> Result<()>,
    ) -> Result<()> {
        let mut buffer = Vec::new();
        for number in from.segment..=to.segment {
            let file = {
                let readers = self.readers.read();
                readers.get(number as usize - 1).cloned()
            };
            let path = segment_path(&self.dir, number);
            let corrupt = |message: String| Error::Corrupt { path: path.clone(), message };
            let file = file.ok_or_else(|| corrupt(format!("segment {number} is not open")))?;
            let start = if number == from.segment { u64::from(from.offset) } else { HEADER_LEN };
            let stop = if number == to.segment {
                u64::from(to.offset)
            } else {
                // A sealed segment: everything in it was written before the rotation.
                file.metadata().map_err(|e| io_context(&path, e))?.len()
            };
            // `buffer[at..]` holds the bytes from `offset` on, read up to `read_to`.
            let mut offset = start;
            let mut read_to = start;
            let mut at = 0usize;
            buffer.clear();
            while offset < stop {
                let held = buffer.len() - at;
                let need = if held >= FRAME_HEADER_LEN {
                    let (len, _) = frame_header_fields(&buffer[at..]);
                    if len == 0 || len > MAX_FRAME_BYTES {
                        return Err(corrupt(format!("segment {number}: bad frame length at byte offset {offset}")));
                    }
                    FRAME_HEADER_LEN + len
                } else {
                    FRAME_HEADER_LEN
                };
                if offset + need as u64 > stop {
                    return Err(corrupt(format!("segment {number}: frame at byte offset {offset} runs past {stop}")));
                }
                if held < need {
                    buffer.drain(..at);
                    at = 0;
                    let want = (stop - read_to).min(READ_CHUNK.max(need - held) as u64) as usize;
                    let filled = buffer.len();
                    buffer.resize(filled + want, 0);
                    file.read_exact_at(&mut buffer[filled..], read_to).map_err(|e| io_context(&path, e))?;
                    read_to += want as u64;
                    continue;
                }
                let (_, crc) = frame_header_fields(&buffer[at..]);
                let payload = &buffer[at + FRAME_HEADER_LEN..at + need];
                if crc32fast::hash(payload) != crc {
                    return Err(corrupt(format!("segment {number}: checksum mismatch at byte offset {offset}")));
                }
                let record = codec::decode(payload).map_err(|e| corrupt(e.to_string()))?;
                visit(record, LogPosition { segment: number, offset: offset as u32 })?;
                at += need;
                offset += need as u64;
            }
        }
        Ok(())
    }

    /// This log, now found under `dir` (its directory was renamed while it was open: the
    /// open files follow the rename, only new segments need the name).
    pub fn moved_to(mut self, dir: &Path) -> Self {
        self.dir = dir.to_path_buf();
        self
    }
}
