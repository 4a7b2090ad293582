//! The event log's durable mark (`DURABLE`, a point known to be on stable storage) and the
//! recorded lengths of sealed segments (`SEALED`): the lower bounds recovery checks.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The durable mark (`DIR/DURABLE`): `segment u32, offset u64, crc32 u32` (little-endian) of a point up to
/// which everything is known to be on stable storage. Written after an `fdatasync` (at most
/// once per [`MARK_INTERVAL`] while appending, at every rotation and on a clean close), so
/// it is a lower bound: damage before it is never mistaken for a torn tail.
pub(super) const MARK_FILE: &str = "DURABLE";
const MARK_LEN: usize = 16;
/// How often appends refresh the durable mark.
const MARK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DurableMark {
    pub(super) segment: u32,
    pub(super) offset: u64,
}

impl DurableMark {
    fn encode(self) -> [u8; MARK_LEN] {
        let mut bytes = [0u8; MARK_LEN];
        bytes[..4].copy_from_slice(&self.segment.to_le_bytes());
        bytes[4..12].copy_from_slice(&self.offset.to_le_bytes());
        let crc = crc32fast::hash(&bytes[..12]);
        bytes[12..].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != MARK_LEN || crc32fast::hash(&bytes[..12]).to_le_bytes() != bytes[12..] {
            return None;
        }
        Some(Self {
            segment: u32::from_le_bytes(bytes[..4].try_into().ok()?),
            offset: u64::from_le_bytes(bytes[4..12].try_into().ok()?),
        })
    }
}

/// Lengths of sealed segments, one [`DurableMark`] encoding each, appended at every
/// rotation: a sealed segment found shorter has lost acknowledged events.
pub(super) const SEALED_FILE: &str = "SEALED";

/// The recorded length of every sealed segment (a torn last entry is ignored).
pub(super) fn read_sealed(dir: &Path) -> std::collections::HashMap<u32, u64> {
    let bytes = std::fs::read(dir.join(SEALED_FILE)).unwrap_or_default();
    bytes.chunks_exact(MARK_LEN).filter_map(DurableMark::decode).map(|m| (m.segment, m.offset)).collect()
}

pub(super) fn read_mark(dir: &Path) -> Option<DurableMark> {
    let bytes = std::fs::read(dir.join(MARK_FILE)).ok()?;
    if bytes.is_empty() {
        // Created, never written: nothing was made durable yet.
        return None;
    }
    let mark = DurableMark::decode(&bytes);
    if mark.is_none() {
        tracing::warn!(dir = %dir.display(), "the event log's durable mark is unreadable; recovery falls back to frame checks alone");
    }
    mark
}

/// The mark file and when it was last written.
pub(super) struct MarkWriter {
    pub(super) file: File,
    pub(super) sealed: File,
    pub(super) written: Option<std::time::Instant>,
    pub(super) last: Option<DurableMark>,
}

impl MarkWriter {
    /// Record the final length of a segment that was just sealed (synced).
    /// A failed write is cut back, so that later entries stay aligned.
    pub(super) fn seal(&mut self, segment: u32, len: u64) -> std::io::Result<()> {
        let before = self.sealed.metadata()?.len();
        let result = self
            .sealed
            .write_all(&DurableMark { segment, offset: len }.encode())
            .and_then(|()| self.sealed.sync_data());
        if result.is_err() {
            let _ = self.sealed.set_len(before);
        }
        result
    }

    /// Record `mark` (already durable in the log) unless one was written recently;
    /// `force` writes regardless. A failure is logged: the mark is only a lower bound.
    pub(super) fn record(&mut self, mark: DurableMark, force: bool) {
        if self.last == Some(mark) || (!force && self.written.is_some_and(|at| at.elapsed() < MARK_INTERVAL)) {
            return;
        }
        let result = self.file.write_all_at(&mark.encode(), 0).and_then(|()| self.file.sync_data());
        match result {
            Ok(()) => {
                self.written = Some(std::time::Instant::now());
                self.last = Some(mark);
            }
            Err(e) => tracing::warn!(error = %e, "could not record the event log's durable mark"),
        }
    }
}
