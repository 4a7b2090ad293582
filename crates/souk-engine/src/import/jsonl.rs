//! Souk's own JSONL: one record per line, an object whose `"kind"` is `item`, `user`,
//! `event` or `follow` (see [`crate::input::parse_record`]). Blank lines are skipped.
//!
//! This is the bulk path (millions of events), so lines are parsed in parallel chunks by
//! [`Importer::scan_lines`]; the per-line cost is one `serde_json::Value` parse plus
//! validation.

use std::path::PathBuf;

use serde_json::Value;

use super::{Encoding, Importer};
use crate::error::{Result, ValidationError};
use crate::input::parse_record;

pub(super) fn in_directory(name: &str) -> bool {
    name.ends_with(".jsonl") || name.ends_with(".ndjson")
}

pub(super) fn run(importer: &mut Importer<'_>, files: &[PathBuf]) -> Result<()> {
    for path in files {
        importer.scan_lines(
            path,
            false,
            Encoding::Utf8,
            |_, line| {
                if line.trim().is_empty() {
                    return Ok(None);
                }
                let value: Value = serde_json::from_str(line).map_err(|e| {
                    ValidationError::new("invalid_json", "", format!("expected a JSON object, {e}"))
                })?;
                parse_record(&value).map(Some)
            },
            |importer, _, record| importer.emit(record),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{fixture, import_to_vec, Format};
    use crate::error::Error;
    use crate::model::{EventType, FollowKind, Record};

    #[test]
    fn imports_every_kind_in_order() {
        let (report, records) =
            import_to_vec(Format::Jsonl, &[fixture("jsonl/shop.jsonl")], true).unwrap();
        assert_eq!(
            (report.items, report.users, report.events, report.follows),
            (3, 2, 4, 1)
        );
        assert_eq!((report.distinct_items, report.distinct_users), (3, 3));
        assert_eq!(report.skipped, 0);
        let Record::Item(first) = &records[0] else {
            panic!("first record is the first item")
        };
        assert_eq!(first.id.as_str(), "sku-1");
        assert_eq!(first.category, vec!["Electronics", "Audio"]);
        let Record::Event(purchase) = &records[7] else {
            panic!("eighth record is an event")
        };
        assert_eq!(purchase.event_type, EventType::Purchase);
        assert_eq!(purchase.quantity, Some(2));
        assert_eq!(purchase.timestamp, 1_767_323_045_000);
        let Record::Follow(follow) = &records[9] else {
            panic!("last record is a follow")
        };
        assert_eq!(follow.kind, FollowKind::Trust);
    }

    #[test]
    fn a_bad_line_names_its_line_and_field() {
        let err = import_to_vec(Format::Jsonl, &[fixture("jsonl/bad.jsonl")], true).unwrap_err();
        let Error::Parse {
            path,
            line,
            message,
        } = err
        else {
            panic!("expected a parse error")
        };
        assert!(path.ends_with("bad.jsonl"));
        assert_eq!(line, 3);
        assert!(
            message.contains("missing_field") && message.contains("`item`"),
            "{message}"
        );
    }

    #[test]
    fn lenient_imports_skip_and_count_bad_lines() {
        let (report, records) =
            import_to_vec(Format::Jsonl, &[fixture("jsonl/bad.jsonl")], false).unwrap();
        assert_eq!(report.skipped, 3);
        assert_eq!(report.events, 2);
        assert_eq!(records.len(), 2);
        assert_eq!(report.warnings.len(), 3);
        assert!(
            report.warnings[0].contains("bad.jsonl:3:"),
            "{:?}",
            report.warnings
        );
        assert!(
            report.warnings[1].contains(":4: skipped: invalid_json"),
            "{:?}",
            report.warnings
        );
        assert!(report.warnings[2].contains(":6: skipped: invalid_event_type at `type`"));
    }

    #[test]
    fn a_directory_reads_its_jsonl_files_sorted() {
        let (report, _) = import_to_vec(Format::Jsonl, &[fixture("jsonl")], false).unwrap();
        assert_eq!(report.files.len(), 2);
        assert!(report.files[0].ends_with("bad.jsonl"));
        assert_eq!(report.events, 6);
    }
}
