//! A target policy over an Open Bandit Dataset log, read from a csv file: for each round (a
//! row of the log) and slot, the probability that the policy shows each item there.
//!
//! The file has the header `round,position,item,probability` (any column order): `round` is
//! the 0-based row of the log csv in file order (not counting its header), `position` and
//! `item` as in the log, `probability` in [0, 1]. A round lists every item the policy may show
//! at a position (the direct method and doubly robust need them all); the probabilities of a
//! (round, position) sum to at most 1 — with less, the policy shows nothing with the rest.
//! Items a round does not list have probability 0. Rows for positions other than the logged
//! one are checked, then dropped: a logged round only says what happened in its own slot.
//!
//! Every problem is refused with what was expected and what was found: an unknown round,
//! slot or item, a probability outside [0, 1], a (round, position, item) listed twice, a
//! (round, position) whose probabilities sum past 1, and a round with no row for its slot.
//!
//! Memory: 24 bytes per row of the file while reading, 16 per kept row after.

use std::path::Path;

use super::obd::ObdLog;
use crate::error::{Error, Result, ValidationError};

/// The columns of a policy file.
pub const POLICY_COLUMNS: [&str; 4] = ["round", "position", "item", "probability"];

/// Sums of a (round, position) may pass 1 by this much (float error of a normalised
/// distribution written in decimal).
const SUM_TOLERANCE: f64 = 1e-6;

/// A target policy at each logged round's slot.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluationPolicy {
    /// `offsets[i]..offsets[i + 1]` are the choices of impression `i` (the log's time order).
    offsets: Vec<usize>,
    /// (item, probability), sorted by item within an impression.
    choices: Vec<(u32, f64)>,
    /// Rows the file held.
    pub rows_read: usize,
}

fn parse_error(path: &Path, line: u64, message: impl Into<String>) -> Error {
    Error::Parse { path: path.to_path_buf(), line, message: message.into() }
}

impl EvaluationPolicy {
    /// The items the policy may show in impression `index`'s slot, with their probabilities.
    pub fn choices(&self, index: usize) -> &[(u32, f64)] {
        &self.choices[self.offsets[index]..self.offsets[index + 1]]
    }

    /// The probability that the policy shows `item` in impression `index`'s slot.
    pub fn probability(&self, index: usize, item: u32) -> f64 {
        let choices = self.choices(index);
        choices.binary_search_by_key(&item, |&(i, _)| i).map_or(0.0, |k| choices[k].1)
    }

    /// Read `path` against `log`, whose rows the rounds name.
    pub fn read(path: &Path, log: &ObdLog) -> Result<Self> {
        let rounds = log.impressions.len();
        let mut index_of_round = vec![0usize; rounds];
        for (index, impression) in log.impressions.iter().enumerate() {
            index_of_round[impression.row as usize] = index;
        }
        let slots = log.impressions.iter().map(|i| i.position).max().unwrap_or(0);

        let mut reader =
            csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(fs_err::File::open(path)?);
        let header: Vec<String> = match reader.headers() {
            Ok(h) => h.iter().map(|c| c.trim_start_matches('\u{feff}').trim().to_string()).collect(),
            Err(e) => return Err(parse_error(path, 1, format!("invalid csv header: {e}"))),
        };
        let mut columns = [0usize; 4];
        for (slot, name) in columns.iter_mut().zip(POLICY_COLUMNS) {
            *slot = header.iter().position(|h| h == name).ok_or_else(|| {
                parse_error(
                    path,
                    1,
                    format!("missing column {name:?} (expected the header {})", POLICY_COLUMNS.join(",")),
                )
            })?;
        }
        if let Some(extra) = header.iter().find(|h| !POLICY_COLUMNS.contains(&h.as_str())) {
            return Err(parse_error(
                path,
                1,
                format!("unexpected column {extra:?} (expected the header {})", POLICY_COLUMNS.join(",")),
            ));
        }

        // (round, position, item, probability), checked one by one.
        let mut rows: Vec<(u32, u32, u32, f64)> = Vec::new();
        let mut record = csv::StringRecord::new();
        loop {
            let line = reader.position().line();
            match reader.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    if let csv::ErrorKind::Io(_) = e.kind() {
                        return Err(Error::Io(std::io::Error::other(format!("{}: {e}", path.display()))));
                    }
                    let line = e.position().map_or(line, csv::Position::line);
                    return Err(parse_error(path, line, format!("invalid csv: {e}")));
                }
            }
            let line = record.position().map_or(line, csv::Position::line);
            let text = |k: usize| record.get(columns[k]).unwrap_or("").trim();
            let round: u64 = text(0).parse().map_err(|_| {
                parse_error(
                    path,
                    line,
                    format!("column \"round\": expected a row number of the log, found {:?}", text(0)),
                )
            })?;
            if round >= rounds as u64 {
                return Err(parse_error(
                    path,
                    line,
                    format!(
                        "column \"round\": the log has {rounds} rows (rounds 0..={}), found {round}",
                        rounds.max(1) - 1
                    ),
                ));
            }
            let position: u32 = text(1).parse().ok().filter(|p| (1..=slots).contains(p)).ok_or_else(|| {
                parse_error(
                    path,
                    line,
                    format!("column \"position\": expected a slot of the log (1..={slots}), found {:?}", text(1)),
                )
            })?;
            let item: u32 = text(2).parse().map_err(|_| {
                parse_error(path, line, format!("column \"item\": expected an item id, found {:?}", text(2)))
            })?;
            if !log.items.items.contains_key(&item) {
                return Err(parse_error(
                    path,
                    line,
                    format!("column \"item\": item {item} is not in {}", log.item_context_path.display()),
                ));
            }
            let probability: f64 = text(3).parse().ok().filter(|p: &f64| (0.0..=1.0).contains(p)).ok_or_else(|| {
                parse_error(
                    path,
                    line,
                    format!("column \"probability\": expected a number in [0, 1], found {:?}", text(3)),
                )
            })?;
            rows.push((round as u32, position, item, probability));
        }
        let rows_read = rows.len();

        rows.sort_unstable_by_key(|&(round, position, item, _)| (round, position, item));
        let mut group_start = 0;
        while group_start < rows.len() {
            let (round, position, _, _) = rows[group_start];
            let mut end = group_start;
            let mut sum = 0.0;
            while end < rows.len() && rows[end].0 == round && rows[end].1 == position {
                if end > group_start && rows[end].2 == rows[end - 1].2 {
                    return Err(ValidationError::new(
                        "invalid_value",
                        path.display().to_string(),
                        format!("round {round}, position {position}: item {} is listed twice", rows[end].2),
                    )
                    .into());
                }
                sum += rows[end].3;
                end += 1;
            }
            if sum > 1.0 + SUM_TOLERANCE {
                return Err(ValidationError::new(
                    "invalid_probability",
                    path.display().to_string(),
                    format!("round {round}, position {position}: the probabilities sum to {sum}, expected at most 1"),
                )
                .into());
            }
            group_start = end;
        }

        // Keep each round's rows at its logged slot, in the log's time order.
        let mut by_index: Vec<(usize, u32, f64)> = rows
            .into_iter()
            .filter_map(|(round, position, item, probability)| {
                let index = index_of_round[round as usize];
                (log.impressions[index].position == position).then_some((index, item, probability))
            })
            .collect();
        by_index.sort_unstable_by_key(|&(index, item, _)| (index, item));
        let mut offsets = Vec::with_capacity(rounds + 1);
        let mut choices = Vec::with_capacity(by_index.len());
        let mut next = 0;
        for index in 0..rounds {
            offsets.push(choices.len());
            while next < by_index.len() && by_index[next].0 == index {
                choices.push((by_index[next].1, by_index[next].2));
                next += 1;
            }
        }
        offsets.push(choices.len());

        let uncovered: Vec<usize> = (0..rounds).filter(|&i| offsets[i] == offsets[i + 1]).collect();
        if let Some(&first) = uncovered.first() {
            let impression = &log.impressions[first];
            return Err(ValidationError::new(
                "invalid_value",
                path.display().to_string(),
                format!(
                    "{} of {rounds} rounds have no row for their logged position (first: round {}, position {}); \
                     list every item the policy may show there, an item it never shows with probability 0",
                    uncovered.len(),
                    impression.row,
                    impression.position
                ),
            )
            .into());
        }
        Ok(Self { offsets, choices, rows_read })
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/rank/obd")
    }

    /// Every round of the fixture at its logged slot, item 0 with probability 1.
    fn covering_rows(log: &ObdLog) -> String {
        let mut rows: Vec<(u32, u32)> = log.impressions.iter().map(|i| (i.row, i.position)).collect();
        rows.sort_unstable();
        rows.iter().map(|(round, position)| format!("{round},{position},0,1\n")).collect()
    }

    fn read(log: &ObdLog, text: &str) -> Result<EvaluationPolicy> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.csv");
        std::fs::write(&path, text).unwrap();
        EvaluationPolicy::read(&path, log)
    }

    #[test]
    fn reads_choices_at_the_logged_slot() {
        let log = ObdLog::read_dir(&fixture()).unwrap();
        // Columns in another order; round 5 (time index 6, slot 2) gets two items; a row for
        // another slot of round 5 is checked and dropped.
        let mut text = String::from("item,probability,round,position\n");
        for line in covering_rows(&log).lines() {
            let cells: Vec<&str> = line.split(',').collect();
            if cells[0] != "5" {
                text.push_str(&format!("{},{},{},{}\n", cells[2], cells[3], cells[0], cells[1]));
            }
        }
        text.push_str("3,0.75,5,2\n1,0.25,5,2\n2,1.0,5,3\n");
        let policy = read(&log, &text).unwrap();
        assert_eq!(policy.rows_read, 16);
        assert_eq!(policy.choices(6), [(1, 0.25), (3, 0.75)]);
        assert_eq!((policy.probability(6, 3), policy.probability(6, 2)), (0.75, 0.0));
        assert_eq!(policy.choices(5), [(0, 1.0)]);
    }

    #[test]
    fn every_problem_is_refused_with_what_was_expected() {
        let log = ObdLog::read_dir(&fixture()).unwrap();
        let header = "round,position,item,probability\n";
        let cover = covering_rows(&log);
        for (extra, expected) in [
            ("14,1,0,0.5\n", ":16: column \"round\": the log has 14 rows (rounds 0..=13), found 14"),
            ("-1,1,0,0.5\n", ":16: column \"round\": expected a row number of the log, found \"-1\""),
            ("0,4,1,0.5\n", ":16: column \"position\": expected a slot of the log (1..=3), found \"4\""),
            ("0,0,1,0.5\n", "expected a slot of the log (1..=3), found \"0\""),
            ("0,1,9,0.5\n", ":16: column \"item\": item 9 is not in"),
            ("0,1,x,0.5\n", "column \"item\": expected an item id, found \"x\""),
            ("0,1,1,1.5\n", ":16: column \"probability\": expected a number in [0, 1], found \"1.5\""),
            ("0,1,1,NaN\n", "expected a number in [0, 1], found \"NaN\""),
            ("0,1,1,0.25\n", "round 0, position 1: the probabilities sum to 1.25, expected at most 1"),
            ("0,1,0,0\n", "round 0, position 1: item 0 is listed twice"),
            ("0,1,1\n", "invalid csv"),
        ] {
            let error = read(&log, &format!("{header}{cover}{extra}")).unwrap_err();
            assert!(error.to_string().contains(expected), "{extra}: {error} does not contain {expected}");
            assert_eq!(error.kind(), crate::error::ErrorKind::BadInput, "{extra}");
        }
        // Probabilities summing to just over 1 by float error pass.
        let mut rounding = String::from(header);
        for line in cover.lines() {
            let (round_position, _) = line.rsplit_once(",0,").unwrap();
            rounding.push_str(&format!(
                "{round_position},0,0.3333333\n{round_position},1,0.3333334\n{round_position},2,0.3333334\n"
            ));
        }
        assert!(read(&log, &rounding).is_ok());
    }

    #[test]
    fn the_header_and_the_coverage_are_checked() {
        let log = ObdLog::read_dir(&fixture()).unwrap();
        let cover = covering_rows(&log);
        let error = read(&log, "round,position,item\n").unwrap_err();
        assert!(error.to_string().contains(":1: missing column \"probability\""), "{error}");
        let error = read(&log, &format!("round,position,item,probability,weight\n{cover}")).unwrap_err();
        assert!(error.to_string().contains("unexpected column \"weight\""), "{error}");
        // Round 3 is logged in slot 1; a row for slot 2 does not cover it.
        let without: String = cover.lines().filter(|l| !l.starts_with("3,")).map(|l| format!("{l}\n")).collect();
        let error = read(&log, &format!("round,position,item,probability\n{without}3,2,0,1\n")).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("1 of 14 rounds have no row for their logged position (first: round 3, position 1)"),
            "{message}"
        );
        let error = read(&log, "round,position,item,probability\n").unwrap_err();
        assert!(error.to_string().contains("14 of 14 rounds"), "{error}");
    }
}
