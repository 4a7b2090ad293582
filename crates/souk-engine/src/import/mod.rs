//! Importers: read files in Souk's own formats or in well-known public dataset layouts and
//! emit validated [`Record`]s into a [`RecordSink`].
//!
//! This module owns file discovery (a path may be a file or a directory), line and row
//! parsing, the mapping of each dataset's columns onto the domain model, and the
//! per-import [`ImportReport`]. It never decides what a valid record is: every record goes
//! through the same rules as HTTP input ([`crate::input`]), either by building the JSON the
//! API would receive or by constructing events from ids and numbers checked with the same
//! functions. It never writes anything: the sink does.
//!
//! Formats ([`Format`]):
//! - `jsonl`: Souk's own records, one object with a `"kind"` per line.
//! - `csv`: a header row decides whether rows are events, items or follows.
//! - `movielens`: ML-100K (`u.data`, `u.item`, `u.user`, `u.genre`) and the newer
//!   `ratings.csv` / `movies.csv` layout.
//! - `recbole`: RecBole atomic files (`.inter`, `.item`, `.user`, `.kg`, `.link`).
//! - `lastfm`: the LightGCN split (`data1.txt`, `test1.txt`, `trustnetwork.txt`) or the
//!   HetRec 2011 Last.fm 2K release (`user_artists.dat`, `artists.dat`, ...).
//! - `taobao`: Taobao UserBehavior CSV (`user,item,category,behavior,seconds`).
//! - `sessions`: session logs (session-rec's RSC15 files or DIGINETICA's item views); each
//!   session becomes a user.
//! - `sequences`: item sequences without time (S3-Rec's `user item…` lines, SASRec's
//!   `user item` pairs).
//! - `rees46`: the REES46 / Open CDP multi-category store's monthly event files.
//! - `retailrocket`: Retailrocket's `events.csv`, or the processed per-type files
//!   (`view_ecommerce.dat`, ...) of the caserec collection.
//!
//! Dataset rows carry no event ids, so importers derive them from the row's content
//! (e.g. `ml:{user}:{item}:{seconds}`): importing the same file twice yields the same ids
//! and the store keeps each event once.
//!
//! Large inputs are read in chunks of [`CHUNK_BYTES`] whose lines are parsed in parallel
//! with rayon and then emitted in file order, so output order never depends on
//! scheduling. Cost per line: one UTF-8 check, one parse into owned values, one sink call.

mod csv_rows;
mod importer;
mod jsonl;
mod lastfm;
mod movielens;
mod recbole;
mod rees46;
mod retailrocket;
pub mod sequences;
pub mod sessions;
mod taobao;

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::{Error, Result, ValidationError};
use crate::ids::{EventId, ItemId, UserId};
use crate::input::MAX_TIMESTAMP_MS;
use crate::model::{Event, EventType, RecordSink, TimestampMs};

use importer::Importer;
pub use recbole::{read_kg, KgNode, KgTriple};

/// Bytes read per parallel parsing round. Large enough that a round holds tens of thousands
/// of lines (rayon's per-task overhead vanishes), small enough to keep memory flat.
pub const CHUNK_BYTES: usize = 8 * 1024 * 1024;

/// At most this many warnings are kept in a report; the rest are only counted.
pub const MAX_WARNINGS: usize = 100;

/// The input formats the importers understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Jsonl,
    Csv,
    Movielens,
    Recbole,
    Lastfm,
    Taobao,
    Sessions,
    Sequences,
    Rees46,
    Retailrocket,
}

impl Format {
    pub const ALL: [Format; 10] = [
        Format::Jsonl,
        Format::Csv,
        Format::Movielens,
        Format::Recbole,
        Format::Lastfm,
        Format::Taobao,
        Format::Sessions,
        Format::Sequences,
        Format::Rees46,
        Format::Retailrocket,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
            Format::Movielens => "movielens",
            Format::Recbole => "recbole",
            Format::Lastfm => "lastfm",
            Format::Taobao => "taobao",
            Format::Sessions => "sessions",
            Format::Sequences => "sequences",
            Format::Rees46 => "rees46",
            Format::Retailrocket => "retailrocket",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL.iter().copied().find(|f| f.as_str() == s).ok_or_else(|| {
            ValidationError::new(
                "unknown_format",
                "format",
                format!("expected one of: {}, found {s:?}", Format::ALL.map(Format::as_str).join(", ")),
            )
        })
    }
}

/// How an import treats bad input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// Stop at the first bad line with [`Error::Parse`] (the default), or skip bad lines,
    /// count them in [`ImportReport::skipped`] and describe the first few in
    /// [`ImportReport::warnings`]. Either way a file whose header cannot be understood
    /// fails the import, since none of its rows could be read.
    pub strict: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self { strict: true }
    }
}

/// What an import read and emitted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// The files read, in the order they were read.
    pub files: Vec<PathBuf>,
    /// Bytes of all files read.
    pub bytes: u64,
    /// Records emitted, by kind.
    pub items: u64,
    pub users: u64,
    pub events: u64,
    pub follows: u64,
    /// Distinct user ids seen in any record (users, events, follows).
    pub distinct_users: u64,
    /// Distinct item ids seen in any record (items, events' `item` and `items`).
    pub distinct_items: u64,
    /// Bad lines skipped (non-strict imports only).
    pub skipped: u64,
    /// Knowledge-graph triples read (`.kg` files); not emitted into the sink, see [`read_kg`].
    pub kg_triples: u64,
    /// Item-to-entity links read (`.link` files).
    pub kg_links: u64,
    /// Human-readable notes: skipped lines, ignored files and columns. At most
    /// [`MAX_WARNINGS`] lines of detail, then a line saying how many more there were.
    pub warnings: Vec<String>,
}

/// Import `paths` (files, or directories whose known files are read) in `format`, emitting
/// every record into `sink` in file order. `progress` is called with (bytes read, total
/// bytes) after each chunk.
pub fn import_paths(
    format: Format,
    paths: &[PathBuf],
    options: &ImportOptions,
    sink: &mut dyn RecordSink,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ImportReport> {
    let in_directory: fn(&str) -> bool = match format {
        Format::Jsonl => jsonl::in_directory,
        Format::Csv => csv_rows::in_directory,
        Format::Movielens => movielens::in_directory,
        Format::Recbole => recbole::in_directory,
        Format::Lastfm => lastfm::in_directory,
        Format::Taobao => taobao::in_directory,
        Format::Sessions => sessions::in_directory,
        Format::Sequences => sequences::in_directory,
        Format::Rees46 => rees46::in_directory,
        Format::Retailrocket => retailrocket::in_directory,
    };
    let (files, ignored) = collect_files(paths, in_directory)?;
    let mut importer = Importer::new(options, sink, progress, &files)?;
    if !ignored.is_empty() {
        importer.warn(format!("ignored files not part of the {format} format: {}", ignored.join(", ")));
    }
    match format {
        Format::Jsonl => jsonl::run(&mut importer, &files)?,
        Format::Csv => csv_rows::run(&mut importer, &files)?,
        Format::Movielens => movielens::run(&mut importer, &files)?,
        Format::Recbole => recbole::run(&mut importer, &files)?,
        Format::Lastfm => lastfm::run(&mut importer, &files)?,
        Format::Taobao => taobao::run(&mut importer, &files)?,
        Format::Sessions => sessions::run(&mut importer, &files)?,
        Format::Sequences => sequences::run(&mut importer, &files)?,
        Format::Rees46 => rees46::run(&mut importer, &files)?,
        Format::Retailrocket => retailrocket::run(&mut importer, &files)?,
    }
    Ok(importer.finish())
}

/// Expand directories (non-recursively, sorted by name) into the files `in_directory`
/// accepts; files named explicitly are always kept. Returns the files and the names of
/// directory entries that were passed over.
fn collect_files(paths: &[PathBuf], in_directory: fn(&str) -> bool) -> Result<(Vec<PathBuf>, Vec<String>)> {
    let mut files = Vec::new();
    let mut ignored = Vec::new();
    for path in paths {
        if fs_err::metadata(path)?.is_dir() {
            let mut entries = Vec::new();
            for entry in fs_err::read_dir(path)? {
                let entry = entry?;
                if entry.file_type()?.is_file() {
                    entries.push(entry.path());
                }
            }
            entries.sort();
            for entry in entries {
                let name = file_name(&entry);
                if in_directory(&name) {
                    files.push(entry);
                } else if !name.starts_with('.') {
                    ignored.push(name);
                }
            }
        } else {
            files.push(path.clone());
        }
    }
    Ok((files, ignored))
}

/// The last component of a path as text (lossy: only used to recognise known names).
fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The error for a file whose name says nothing about its role in a dataset layout.
fn unknown_file(path: &Path, format: Format, expected: &str) -> Error {
    Error::Parse {
        path: path.to_path_buf(),
        line: 0,
        message: format!("not a file of the {format} format; expected {expected}"),
    }
}

/// How the bytes of a line become text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// UTF-8 only; anything else is a bad line (JSON, CSV written by Souk).
    Utf8,
    /// UTF-8 where valid, else Latin-1 (ISO-8859-1). Older dataset releases (MovieLens
    /// 100K titles, HetRec tags) are Latin-1, later copies were often re-encoded to UTF-8;
    /// Latin-1 text with accents is practically never valid UTF-8, so trying UTF-8 first
    /// reads both correctly.
    Utf8OrLatin1,
}

fn decode(bytes: &[u8], encoding: Encoding) -> Result<Cow<'_, str>, ValidationError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(Cow::Borrowed(text)),
        Err(_) if encoding == Encoding::Utf8OrLatin1 => {
            // Latin-1 maps every byte to the code point of the same value.
            Ok(Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()))
        }
        Err(e) => Err(ValidationError::new(
            "invalid_utf8",
            "",
            format!("expected UTF-8 text, found an invalid byte at column {}", e.valid_up_to() + 1),
        )),
    }
}

/// The first line of a file (a header), decoded, without its line ending or byte order mark.
fn read_header(path: &Path, encoding: Encoding) -> Result<String> {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::new(fs_err::File::open(path)?);
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line)?;
    let mut line = line.as_slice();
    line = line.strip_suffix(b"\n").unwrap_or(line);
    line = line.strip_suffix(b"\r").unwrap_or(line);
    line = line.strip_prefix("\u{feff}".as_bytes()).unwrap_or(line);
    decode(line, encoding).map(Cow::into_owned).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        line: 1,
        message: e.message,
    })
}

/// The `index`-th of `cells`, trimmed, or a `missing_column` error naming `column`.
fn cell<'t>(cells: &[&'t str], index: usize, column: &str) -> Result<&'t str, ValidationError> {
    match cells.get(index) {
        Some(value) => Ok(value.trim()),
        None => Err(ValidationError::new(
            "missing_column",
            column,
            format!("expected at least {} columns, found {}", index + 1, cells.len()),
        )),
    }
}

/// A finite number from a text cell.
fn parse_number(text: &str, field: &str) -> Result<f64, ValidationError> {
    match text.trim().parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err(ValidationError::new("invalid_number", field, format!("expected a finite number, found {text:?}"))),
    }
}

/// Unix seconds (integer or fractional, as datasets write them) to milliseconds, within the
/// range [`crate::input::parse_timestamp`] accepts.
fn seconds_to_ms(text: &str, field: &str) -> Result<TimestampMs, ValidationError> {
    let text = text.trim();
    let invalid = || {
        ValidationError::new(
            "invalid_timestamp",
            field,
            format!("expected Unix seconds between 1970 and 9999, found {text:?}"),
        )
    };
    let ms = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<i64>().ok().and_then(|s| s.checked_mul(1000)).ok_or_else(invalid)?
    } else {
        let seconds = text.parse::<f64>().map_err(|_| invalid())?;
        let ms = (seconds * 1000.0).round();
        if !(ms.is_finite() && ms >= 0.0 && ms <= MAX_TIMESTAMP_MS as f64) {
            return Err(invalid());
        }
        ms as i64
    };
    if !(0..=MAX_TIMESTAMP_MS).contains(&ms) {
        return Err(invalid());
    }
    Ok(ms)
}

/// An event of a dataset row: one user, one item, an optional finite value. Ids are checked
/// with the same rules as HTTP input; rating events must carry their value.
fn dataset_event(
    id: String,
    event_type: EventType,
    user: &str,
    item: &str,
    value: Option<f64>,
    timestamp: TimestampMs,
) -> Result<Event, ValidationError> {
    let id = EventId::parse(id, "id")?;
    let user = UserId::parse(user, "user")?;
    let item = ItemId::parse(item, "item")?;
    if event_type == EventType::Rating && value.is_none() {
        return Err(ValidationError::new("missing_field", "value", "a rating event carries its value"));
    }
    if !(0..=MAX_TIMESTAMP_MS).contains(&timestamp) {
        return Err(ValidationError::new(
            "invalid_timestamp",
            "timestamp",
            format!("expected a time between 1970 and 9999, found {timestamp} ms"),
        ));
    }
    let mut event = Event::new(id, event_type, user, Some(item), timestamp);
    event.value = value.filter(|v| v.is_finite());
    Ok(event)
}

/// A JSON value for a text cell of unknown type: integers and decimals without a leading
/// zero become numbers (so `"01234"`, a zip code, stays text), `true`/`false` booleans,
/// anything else a string.
fn guess_json_value(text: &str) -> serde_json::Value {
    use serde_json::Value;
    let trimmed = text.trim();
    match trimmed {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    let digits = trimmed.strip_prefix('-').unwrap_or(trimmed);
    let numeric_shape = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && digits.bytes().filter(|&b| b == b'.').count() <= 1
        && !digits.starts_with('.')
        && !digits.ends_with('.')
        && !(digits.len() > 1 && digits.starts_with('0') && !digits.starts_with("0."));
    if numeric_shape {
        if let Ok(n) = trimmed.parse::<i64>() {
            return Value::from(n);
        }
        if let Some(n) = trimmed.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
            return Value::Number(n);
        }
    }
    Value::String(text.to_string())
}

/// Where the hand-written fixtures live.
#[cfg(test)]
fn fixture(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/import").join(relative)
}

/// Import into a vector, for tests.
#[cfg(test)]
fn import_to_vec(format: Format, paths: &[PathBuf], strict: bool) -> Result<(ImportReport, Vec<crate::model::Record>)> {
    let mut records = Vec::new();
    let options = ImportOptions { strict };
    let report = import_paths(format, paths, &options, &mut records, &mut |_, _| {})?;
    Ok((report, records))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_by_name() {
        for format in Format::ALL {
            assert_eq!(format.as_str().parse::<Format>(), Ok(format));
        }
        let err = "parquet".parse::<Format>().unwrap_err();
        assert_eq!((err.code, err.field.as_str()), ("unknown_format", "format"));
    }

    #[test]
    fn seconds_become_milliseconds_within_range() {
        assert_eq!(seconds_to_ms("881250949", "t"), Ok(881_250_949_000));
        assert_eq!(seconds_to_ms("881250949.5", "t"), Ok(881_250_949_500));
        assert_eq!(seconds_to_ms(" 0 ", "t"), Ok(0));
        for bad in ["", "-1", "soon", "NaN", "inf", "99999999999999999"] {
            assert_eq!(seconds_to_ms(bad, "t").unwrap_err().code, "invalid_timestamp", "{bad}");
        }
    }

    #[test]
    fn guessed_values_keep_codes_as_text() {
        use serde_json::json;
        assert_eq!(guess_json_value("12"), json!(12));
        assert_eq!(guess_json_value("-1.5"), json!(-1.5));
        assert_eq!(guess_json_value("0.25"), json!(0.25));
        assert_eq!(guess_json_value("0"), json!(0));
        assert_eq!(guess_json_value("01234"), json!("01234"));
        assert_eq!(guess_json_value("1.2.3"), json!("1.2.3"));
        assert_eq!(guess_json_value("true"), json!(true));
        assert_eq!(guess_json_value("NaN"), json!("NaN"));
        assert_eq!(guess_json_value("red"), json!("red"));
    }

    #[test]
    fn latin1_is_the_fallback_for_invalid_utf8() {
        assert_eq!(decode(b"Caf\xe9", Encoding::Utf8OrLatin1).unwrap(), "Café");
        assert_eq!(decode("Café".as_bytes(), Encoding::Utf8OrLatin1).unwrap(), "Café");
        assert_eq!(decode(b"Caf\xe9", Encoding::Utf8).unwrap_err().code, "invalid_utf8");
    }

    #[test]
    fn lines_split_across_chunks_keep_their_numbers() {
        // More than one chunk, with a line straddling the boundary and CRLF endings.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.txt");
        let line = "x".repeat(999);
        let count = (CHUNK_BYTES / 1000) * 2 + 7;
        let text: String = (0..count).map(|i| format!("{line}{}\r\n", i % 10)).collect();
        fs_err::write(&path, text).unwrap();
        let options = ImportOptions::default();
        let mut sink: Vec<crate::model::Record> = Vec::new();
        let mut calls = 0;
        let mut progress = |_: u64, _: u64| calls += 1;
        let mut importer = Importer::new(&options, &mut sink, &mut progress, std::slice::from_ref(&path)).unwrap();
        let mut seen = Vec::new();
        importer
            .scan_lines(
                &path,
                true,
                Encoding::Utf8,
                |number, text| Ok(Some((number, text.len(), text.ends_with(&format!("{}", (number - 1) % 10))))),
                |_, number, value| {
                    seen.push((number, value));
                    Ok(())
                },
            )
            .unwrap();
        let report = importer.finish();
        assert_eq!(seen.len(), count - 1, "header skipped");
        for (index, (number, (parsed_number, len, ends_right))) in seen.iter().enumerate() {
            assert_eq!(*number, index as u64 + 2);
            assert_eq!(number, parsed_number);
            assert_eq!(*len, 1000);
            assert!(ends_right);
        }
        assert_eq!(report.bytes, count as u64 * 1002, "CRLF line endings count");
        assert!(calls >= 3);
    }
}
