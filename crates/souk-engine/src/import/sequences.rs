//! Item sequences without timestamps, as the sequential-recommendation benchmarks publish
//! them: S3-Rec / ICLRec's `user item_1 item_2 … item_n` (one line per user: Amazon Beauty,
//! Sports, Toys, Yelp) and SASRec's `user item` (one interaction per line, each user's lines
//! in time order: Amazon Video Games). One reader takes both: the first token of a line is
//! the user, the rest are that user's next items, continuing where the user's earlier lines
//! stopped.
//!
//! Each interaction becomes a `purchase` (in the Amazon sets, a review of the item). The
//! files carry order, not time, so the `k`-th interaction of a user (from 0) is stamped
//! [`SEQUENCE_EPOCH_MS`] + `k` minutes: the order is kept (the `leave-last-out` protocol
//! holds out each user's last item, as these benchmarks do) and nothing pretends to be a
//! real date. Event ids are `seq:{file stem}:{user}:{k}`, so importing a file twice stores
//! each interaction once. Items have no titles in these files, and none are emitted.

use std::collections::HashMap;
use std::path::PathBuf;

use super::{dataset_event, Encoding, Importer};
use crate::error::{Result, ValidationError};
use crate::ids::{ItemId, UserId};
use crate::model::{EventType, Record};

/// The time of every user's first interaction: 2020-01-01T00:00:00Z.
pub const SEQUENCE_EPOCH_MS: i64 = 1_577_836_800_000;
/// The time between a user's consecutive interactions.
pub const SEQUENCE_STEP_MS: i64 = 60_000;

pub(super) fn in_directory(name: &str) -> bool {
    name.ends_with(".txt")
}

/// A line: the user and their next items (ids checked here, in parallel).
fn parse_line(line: &str) -> Result<Option<(String, Vec<String>)>, ValidationError> {
    let mut tokens = line.split_whitespace();
    let Some(user) = tokens.next() else { return Ok(None) };
    UserId::parse(user, "user")?;
    let items: Vec<String> = tokens.map(str::to_string).collect();
    if items.is_empty() {
        return Err(ValidationError::new(
            "missing_field",
            "item",
            format!("expected a user and at least one item, found only {user:?}"),
        ));
    }
    for item in &items {
        ItemId::parse(item.as_str(), "item")?;
    }
    Ok(Some((user.to_string(), items)))
}

pub(super) fn run(importer: &mut Importer<'_>, files: &[PathBuf]) -> Result<()> {
    for path in files {
        let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        // Interactions read so far per user, in this file.
        let mut seen: HashMap<String, i64> = HashMap::new();
        importer.scan_lines(
            path,
            false,
            Encoding::Utf8,
            |_, line| parse_line(line),
            |importer, line, (user, items)| {
                let next = seen.entry(user.clone()).or_insert(0);
                let mut events = Vec::with_capacity(items.len());
                for item in &items {
                    let k = *next;
                    *next += 1;
                    let at = SEQUENCE_EPOCH_MS + k * SEQUENCE_STEP_MS;
                    match dataset_event(format!("seq:{stem}:{user}:{k}"), EventType::Purchase, &user, item, None, at) {
                        Ok(event) => events.push(event),
                        Err(error) => return importer.reject(path, line, error),
                    }
                }
                events.into_iter().try_for_each(|event| importer.emit(Record::Event(event)))
            },
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{fixture, import_to_vec, Format};
    use super::{SEQUENCE_EPOCH_MS, SEQUENCE_STEP_MS};
    use crate::error::Error;
    use crate::model::{Event, EventType, Record};

    fn events(records: &[Record]) -> Vec<&Event> {
        records.iter().filter_map(|r| if let Record::Event(e) = r { Some(e) } else { None }).collect()
    }

    #[test]
    fn one_line_per_user_and_one_line_per_interaction_read_alike() {
        let (report, records) = import_to_vec(Format::Sequences, &[fixture("sequences/Beauty.txt")], true).unwrap();
        assert_eq!((report.events, report.distinct_users, report.distinct_items), (15, 3, 13));
        let beauty = events(&records);
        assert!(beauty.iter().all(|e| e.event_type == EventType::Purchase));
        // User 2's sequence, in order, a minute apart.
        let two: Vec<(&str, i64)> = beauty
            .iter()
            .filter(|e| e.user.as_str() == "2")
            .map(|e| (e.item.as_ref().unwrap().as_str(), e.timestamp))
            .collect();
        let expected: Vec<(&str, i64)> = ["6", "7", "8", "9", "10", "4", "11"]
            .iter()
            .enumerate()
            .map(|(k, item)| (*item, SEQUENCE_EPOCH_MS + k as i64 * SEQUENCE_STEP_MS))
            .collect();
        assert_eq!(two, expected);
        assert_eq!(beauty[0].id.as_str(), "seq:Beauty:1:0");

        // SASRec's layout: user 1's lines continue one sequence across other users' lines.
        let (_, records) = import_to_vec(Format::Sequences, &[fixture("sequences/Video.txt")], true).unwrap();
        let one: Vec<(String, i64)> = events(&records)
            .iter()
            .filter(|e| e.user.as_str() == "1")
            .map(|e| (e.id.as_str().to_string(), e.timestamp - SEQUENCE_EPOCH_MS))
            .collect();
        assert_eq!(
            one,
            vec![
                ("seq:Video:1:0".to_string(), 0),
                ("seq:Video:1:1".to_string(), SEQUENCE_STEP_MS),
                ("seq:Video:1:2".to_string(), 2 * SEQUENCE_STEP_MS)
            ]
        );
    }

    #[test]
    fn a_user_without_items_is_a_bad_line() {
        let error = import_to_vec(Format::Sequences, &[fixture("sequences/bad.txt")], true).unwrap_err();
        let Error::Parse { line, message, .. } = error else { panic!("expected a parse error") };
        assert_eq!(line, 2);
        assert!(message.contains("at least one item"), "{message}");
        let (report, _) = import_to_vec(Format::Sequences, &[fixture("sequences/bad.txt")], false).unwrap();
        assert_eq!((report.events, report.skipped), (4, 1));
    }
}
