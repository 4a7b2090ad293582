//! Souk's own JSONL: one record per line, an object whose `"kind"` is `item`, `user`,
//! `event` or `follow` (see [`crate::input::parse_record`]). Blank lines are skipped.
//!
//! This is the bulk path (millions of events), so lines are parsed in parallel chunks by
//! [`Importer::scan_lines`]; events take the typed fast path of
//! [`crate::input::parse_record_json`].

use std::path::PathBuf;

use super::{Encoding, Importer};
use crate::error::Result;
use crate::input::parse_record_json;

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
                parse_record_json(line).map(Some)
            },
            |importer, _, record| importer.emit(record),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::{fixture, import_paths, import_to_vec, Format, ImportOptions, MAX_WARNINGS};
    use crate::error::Error;
    use crate::ids::{EventId, ItemId, UserId};
    use crate::input::{record_to_json, MAX_TIMESTAMP_MS};
    use crate::model::{Event, EventType, FollowKind, Record};

    #[test]
    fn imports_every_kind_in_order() {
        let (report, records) = import_to_vec(Format::Jsonl, &[fixture("jsonl/shop.jsonl")], true).unwrap();
        assert_eq!((report.items, report.users, report.events, report.follows), (3, 2, 4, 1));
        assert_eq!((report.distinct_items, report.distinct_users), (3, 3));
        assert_eq!(report.skipped, 0);
        let Record::Item(first) = &records[0] else { panic!("first record is the first item") };
        assert_eq!(first.id.as_str(), "sku-1");
        assert_eq!(first.category, vec!["Electronics", "Audio"]);
        let Record::Event(purchase) = &records[7] else { panic!("eighth record is an event") };
        assert_eq!(purchase.event_type, EventType::Purchase);
        assert_eq!(purchase.quantity, Some(2));
        assert_eq!(purchase.timestamp, 1_767_323_045_000);
        let Record::Follow(follow) = &records[9] else { panic!("last record is a follow") };
        assert_eq!(follow.kind, FollowKind::Trust);
    }

    #[test]
    fn a_bad_line_names_its_line_and_field() {
        let err = import_to_vec(Format::Jsonl, &[fixture("jsonl/bad.jsonl")], true).unwrap_err();
        let Error::Parse { path, line, message } = err else { panic!("expected a parse error") };
        assert!(path.ends_with("bad.jsonl"));
        assert_eq!(line, 3);
        assert!(message.contains("missing_field") && message.contains("`item`"), "{message}");
    }

    #[test]
    fn lenient_imports_skip_and_count_bad_lines() {
        let (report, records) = import_to_vec(Format::Jsonl, &[fixture("jsonl/bad.jsonl")], false).unwrap();
        assert_eq!(report.skipped, 3);
        assert_eq!(report.events, 2);
        assert_eq!(records.len(), 2);
        assert_eq!(report.warnings.len(), 3);
        assert!(report.warnings[0].contains("bad.jsonl:3:"), "{:?}", report.warnings);
        assert!(report.warnings[1].contains(":4: skipped: invalid_json"), "{:?}", report.warnings);
        assert!(report.warnings[2].contains(":6: skipped: invalid_event_type at `type`"));
    }

    #[test]
    fn a_directory_reads_its_jsonl_files_sorted() {
        let (report, _) = import_to_vec(Format::Jsonl, &[fixture("jsonl")], false).unwrap();
        assert_eq!(report.files.len(), 2);
        assert!(report.files[0].ends_with("bad.jsonl"));
        assert_eq!(report.events, 6);
    }

    #[test]
    fn warnings_are_capped_but_every_skip_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("many.jsonl");
        fs_err::write(&path, "{}\n".repeat(MAX_WARNINGS + 50)).unwrap();
        let (report, _) = import_to_vec(Format::Jsonl, &[path], false).unwrap();
        assert_eq!(report.skipped, MAX_WARNINGS as u64 + 50);
        assert_eq!(report.warnings.len(), MAX_WARNINGS + 1);
        assert_eq!(report.warnings[MAX_WARNINGS], "50 more warnings not shown");
    }

    #[test]
    fn progress_ends_at_the_total() {
        let mut records = Vec::new();
        let mut last = (0, 0);
        let report = import_paths(
            Format::Jsonl,
            &[fixture("jsonl/shop.jsonl")],
            &ImportOptions::default(),
            &mut records,
            &mut |done, total| last = (done, total),
        )
        .unwrap();
        assert_eq!(last, (report.bytes, report.bytes));
        assert!(report.bytes > 0);
    }

    fn event_strategy() -> impl Strategy<Value = Event> {
        let event_type = prop::sample::select(vec![EventType::View, EventType::Click, EventType::Purchase]);
        (
            event_type,
            "[a-z0-9:-]{1,12}",
            "[a-zA-Z0-9é蓝][a-zA-Z0-9 é蓝]{0,7}",
            "[a-z0-9]{1,8}",
            0..MAX_TIMESTAMP_MS,
            prop::option::of(0u64..100_000),
        )
            .prop_map(|(event_type, id, user, item, timestamp, dwell_ms)| {
                let mut event = Event::new(
                    EventId::parse(id, "id").unwrap(),
                    event_type,
                    UserId::parse(user, "user").unwrap(),
                    Some(ItemId::parse(item, "item").unwrap()),
                    timestamp,
                );
                event.dwell_ms = dwell_ms;
                event
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Whatever Souk writes as JSONL, the importer reads back unchanged and in order.
        #[test]
        fn exported_records_import_unchanged(events in prop::collection::vec(event_strategy(), 0..40)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("export.jsonl");
            let records: Vec<Record> = events.into_iter().map(Record::Event).collect();
            let text: String = records.iter().map(|r| format!("{}\n", record_to_json(r))).collect();
            fs_err::write(&path, text).unwrap();
            let (report, imported) = import_to_vec(Format::Jsonl, &[path], true).unwrap();
            prop_assert_eq!(report.events, records.len() as u64);
            prop_assert_eq!(imported, records);
        }
    }
}
