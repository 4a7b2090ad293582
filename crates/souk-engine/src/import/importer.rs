//! One import's state ([`Importer`]): where records go, what was counted, and the chunked,
//! parallel line scanning every line-based format shares (see the module docs of
//! [`super`]).

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::{decode, Encoding, ImportOptions, ImportReport, CHUNK_BYTES, MAX_WARNINGS};
use crate::error::{Error, Result, ValidationError};
use crate::hashing::DigestSet;
use crate::ids::{ItemId, UserId};
use crate::model::{Event, Item, Record, RecordSink};

/// The state of one import: where records go, what was counted, how to report progress.
pub(super) struct Importer<'a> {
    pub(super) options: &'a ImportOptions,
    pub(super) sink: &'a mut dyn RecordSink,
    pub(super) progress: &'a mut dyn FnMut(u64, u64),
    pub(super) report: ImportReport,
    pub(super) total_bytes: u64,
    pub(super) bytes_done: u64,
    /// Ids are remembered by 64-bit hash: exact sets would keep every id string alive;
    /// a collision (probability ~n²/2⁶⁵, below 10⁻⁶ for millions of ids) only makes a
    /// reported count one short.
    pub(super) seen_users: DigestSet<u64>,
    pub(super) seen_items: DigestSet<u64>,
    pub(super) warnings_dropped: u64,
}

impl<'a> Importer<'a> {
    pub(super) fn new(
        options: &'a ImportOptions,
        sink: &'a mut dyn RecordSink,
        progress: &'a mut dyn FnMut(u64, u64),
        files: &[PathBuf],
    ) -> Result<Self> {
        let mut total_bytes = 0;
        for file in files {
            total_bytes += fs_err::metadata(file)?.len();
        }
        Ok(Self {
            options,
            sink,
            progress,
            report: ImportReport::default(),
            total_bytes,
            bytes_done: 0,
            seen_users: DigestSet::default(),
            seen_items: DigestSet::default(),
            warnings_dropped: 0,
        })
    }

    pub(super) fn finish(mut self) -> ImportReport {
        if self.warnings_dropped > 0 {
            self.report.warnings.push(format!("{} more warnings not shown", self.warnings_dropped));
        }
        self.report.distinct_users = self.seen_users.len() as u64;
        self.report.distinct_items = self.seen_items.len() as u64;
        self.report.bytes = self.bytes_done;
        self.report
    }

    pub(super) fn warn(&mut self, warning: String) {
        if self.report.warnings.len() < MAX_WARNINGS {
            self.report.warnings.push(warning);
        } else {
            self.warnings_dropped += 1;
        }
    }

    pub(super) fn read_bytes(&mut self, count: usize) {
        self.bytes_done += count as u64;
        (self.progress)(self.bytes_done, self.total_bytes.max(self.bytes_done));
    }

    pub(super) fn note_user(&mut self, id: &UserId) {
        self.seen_users.insert(xxhash_rust::xxh3::xxh3_64(id.as_str().as_bytes()));
    }

    pub(super) fn note_item(&mut self, id: &ItemId) {
        self.seen_items.insert(xxhash_rust::xxh3::xxh3_64(id.as_str().as_bytes()));
    }

    /// For datasets whose rows carry no catalog of their own: emit the event's item (made
    /// by `item` from its id) the first time that id comes, before the event, then the event. Exact ids
    /// in `emitted`, not hashes: a collision would silently drop an item.
    pub(super) fn emit_with_item(
        &mut self,
        emitted: &mut HashSet<ItemId>,
        event: Event,
        item: impl FnOnce(&ItemId) -> Item,
    ) -> Result<()> {
        if let Some(id) = event.item.as_ref().filter(|id| !emitted.contains(*id)) {
            emitted.insert(id.clone());
            self.emit(Record::Item(item(id)))?;
        }
        self.emit(Record::Event(event))
    }

    /// Count a record and hand it to the sink.
    pub(super) fn emit(&mut self, record: Record) -> Result<()> {
        match &record {
            Record::Item(item) => {
                self.report.items += 1;
                self.note_item(&item.id);
            }
            Record::User(user) => {
                self.report.users += 1;
                self.note_user(&user.id);
            }
            Record::Event(event) => {
                self.report.events += 1;
                self.note_user(&event.user);
                if let Some(item) = &event.item {
                    self.note_item(item);
                }
                for item in &event.items {
                    self.note_item(item);
                }
            }
            Record::Follow(follow) => {
                self.report.follows += 1;
                self.note_user(&follow.user);
                self.note_user(&follow.other);
            }
        }
        self.sink.put(record)
    }

    /// A bad line: fail the import (strict) or skip it and keep a warning.
    pub(super) fn reject(&mut self, path: &Path, line: u64, error: ValidationError) -> Result<()> {
        let message = if error.field.is_empty() {
            format!("{}: {}", error.code, error.message)
        } else {
            format!("{} at `{}`: {}", error.code, error.field, error.message)
        };
        if self.options.strict {
            return Err(Error::Parse { path: path.to_path_buf(), line, message });
        }
        self.report.skipped += 1;
        self.warn(format!("{}:{line}: skipped: {message}", path.display()));
        Ok(())
    }

    pub(super) fn start_file(&mut self, path: &Path) {
        tracing::debug!(path = %path.display(), "importing file");
        self.report.files.push(path.to_path_buf());
    }

    /// Read `path` line by line (1-based numbers; `\n` or `\r\n` endings; a UTF-8 byte order
    /// mark is dropped), parse lines in parallel with `parse` and hand the results to
    /// `consume` in file order. `parse` returns `None` for lines that hold no record (blank
    /// lines); its errors go through [`Importer::reject`]. With `skip_header` the first line
    /// is not parsed (its number still counts).
    pub(super) fn scan_lines<T: Send>(
        &mut self,
        path: &Path,
        skip_header: bool,
        encoding: Encoding,
        parse: impl Fn(u64, &str) -> Result<Option<T>, ValidationError> + Sync,
        mut consume: impl FnMut(&mut Self, u64, T) -> Result<()>,
    ) -> Result<()> {
        self.start_file(path);
        let mut file = fs_err::File::open(path)?;
        let mut buffer: Vec<u8> = Vec::new();
        let mut next_line: u64 = 1;
        let mut at_eof = false;
        let mut pending: Vec<(u64, Result<Option<T>, ValidationError>)> = Vec::new();
        while !at_eof || !buffer.is_empty() {
            if !at_eof {
                let kept = buffer.len();
                buffer.resize(kept + CHUNK_BYTES, 0);
                let mut filled = kept;
                while filled < buffer.len() {
                    let read = file.read(&mut buffer[filled..])?;
                    if read == 0 {
                        at_eof = true;
                        break;
                    }
                    filled += read;
                }
                buffer.truncate(filled);
                self.read_bytes(filled - kept);
            }
            // Only whole lines are parsed; a partial last line waits for the next read.
            let end = if at_eof {
                buffer.len()
            } else {
                match buffer.iter().rposition(|&b| b == b'\n') {
                    Some(newline) => newline + 1,
                    // A line longer than a chunk: keep reading until it ends.
                    None => continue,
                }
            };
            let mut lines: Vec<(u64, &[u8])> = Vec::new();
            for raw in buffer[..end].split_inclusive(|&b| b == b'\n') {
                let number = next_line;
                next_line += 1;
                let mut line = raw.strip_suffix(b"\n").unwrap_or(raw);
                line = line.strip_suffix(b"\r").unwrap_or(line);
                if number == 1 {
                    line = line.strip_prefix("\u{feff}".as_bytes()).unwrap_or(line);
                    if skip_header {
                        continue;
                    }
                }
                lines.push((number, line));
            }
            // Pipeline: this chunk is parsed on the worker pool while the calling thread
            // hands the previous chunk's records to the sink (which writes to the store).
            let mut parsed: Vec<(u64, Result<Option<T>, ValidationError>)> = Vec::new();
            let previous = std::mem::take(&mut pending);
            let consumed = rayon::in_place_scope(|scope| {
                scope.spawn(|_| {
                    parsed = lines
                        .par_iter()
                        .map(|&(number, bytes)| {
                            let result = decode(bytes, encoding).and_then(|text| parse(number, &text));
                            (number, result)
                        })
                        .collect();
                });
                self.consume_parsed(path, previous, &mut consume)
            });
            consumed?;
            pending = parsed;
            buffer.drain(..end);
        }
        self.consume_parsed(path, pending, &mut consume)
    }

    /// Hand parsed lines to `consume` in order; bad lines go through [`Importer::reject`].
    pub(super) fn consume_parsed<T>(
        &mut self,
        path: &Path,
        parsed: Vec<(u64, Result<Option<T>, ValidationError>)>,
        consume: &mut impl FnMut(&mut Self, u64, T) -> Result<()>,
    ) -> Result<()> {
        for (number, result) in parsed {
            match result {
                Ok(Some(value)) => consume(self, number, value)?,
                Ok(None) => {}
                Err(error) => self.reject(path, number, error)?,
            }
        }
        Ok(())
    }
}
