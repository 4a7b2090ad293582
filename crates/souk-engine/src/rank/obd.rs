//! The Open Bandit Dataset (Saito et al. 2021, ZOZOTOWN): logged impressions of a fashion
//! shop's three recommendation slots, with clicks and the logging policy's propensities.
//! This module reads its csv files and turns each impression into click-model features.
//!
//! A directory of the dataset (e.g. `random/all`) holds one impression log (`all.csv`) and
//! `item_context.csv`. The layout is read from the header rows, never assumed by position:
//! the log needs `timestamp`, `item_id`, `position`, `click` and `propensity_score`; every
//! `user_feature_*` column is a categorical user feature and every `user-item_affinity_K`
//! column the user's affinity to item K. The item file needs `item_id`; each other named
//! column is an item feature, numeric when every value parses as a number, else categorical.
//! The unnamed index column the files start with is ignored.
//!
//! Owns: parsing, validation with line numbers and column names, time order, and the
//! feature set ([`ObdFeatureConfig`]). Never writes anything; reads only the paths given.
//!
//! Memory: one [`Impression`] (40 bytes) per row plus 4 bytes per user feature per row;
//! user feature values are interned per column. Affinities are sparse (about one row in
//! twenty has any in the public sample): 12 bytes per non-zero value.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ftrl::{Example, Feature, FeatureHasher};
use crate::error::{Error, Result, ValidationError};

/// The name of the item file in a dataset directory.
pub const ITEM_CONTEXT_FILE: &str = "item_context.csv";
/// Columns every impression log must have.
pub const LOG_COLUMNS: [&str; 5] = ["timestamp", "item_id", "position", "click", "propensity_score"];
const USER_FEATURE_PREFIX: &str = "user_feature_";
const AFFINITY_PREFIX: &str = "user-item_affinity_";

/// One logged impression: an item shown to a user in a slot, clicked or not.
#[derive(Debug, Clone, PartialEq)]
pub struct Impression {
    /// Microseconds since the Unix epoch (UTC).
    pub timestamp: i64,
    /// The row's place in the file, 0-based, not counting the header (before time order).
    pub row: u32,
    pub item: u32,
    /// The slot, as in the file (1 = first).
    pub position: u32,
    pub click: bool,
    /// Probability that the logging policy showed this item in this slot.
    pub propensity: f64,
    /// The user's affinity to the shown item, when the log has that item's column.
    pub affinity: Option<f32>,
}

/// A categorical column: its name and its distinct values (a value's id is its index).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vocabulary {
    pub name: String,
    /// `NAME×item`, the name of the column's cross with the shown item.
    pub cross_name: String,
    pub values: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Vocabulary {
    fn new(name: &str) -> Self {
        Self { name: name.to_string(), cross_name: format!("{name}×item"), ..Self::default() }
    }

    fn intern(&mut self, value: &str) -> u32 {
        if let Some(&id) = self.ids.get(value) {
            return id;
        }
        let id = self.values.len() as u32;
        self.values.push(value.to_string());
        self.ids.insert(value.to_string(), id);
        id
    }
}

/// The value of one item feature.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemValue {
    Number(f32),
    Text(String),
}

/// `item_context.csv`: features of each item.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemContext {
    /// Names of the feature columns, in file order.
    pub columns: Vec<String>,
    /// Whether each column is numeric.
    pub numeric: Vec<bool>,
    /// Each item's values, one per column.
    pub items: HashMap<u32, Vec<ItemValue>>,
}

/// An impression log with its item context, in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct ObdLog {
    pub log_path: PathBuf,
    pub item_context_path: PathBuf,
    /// Sorted by timestamp; rows with equal timestamps keep their file order.
    pub impressions: Vec<Impression>,
    /// The `user_feature_*` columns.
    pub user_features: Vec<Vocabulary>,
    /// Row-major: `user_features.len()` value ids per impression.
    user_values: Vec<u32>,
    /// Every non-zero `user-item_affinity_K` cell as (impression index, item, value), sorted.
    affinities: Vec<(u32, u32, f32)>,
    pub items: ItemContext,
}

fn parse_error(path: &Path, line: u64, message: impl Into<String>) -> Error {
    Error::Parse { path: path.to_path_buf(), line, message: message.into() }
}

/// A csv reader over `path` and its header cells (BOM and spaces trimmed).
fn open_csv(path: &Path) -> Result<(csv::Reader<fs_err::File>, Vec<String>)> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(fs_err::File::open(path)?);
    let header = match reader.headers() {
        Ok(header) => header.iter().map(|h| h.trim_start_matches('\u{feff}').trim().to_string()).collect(),
        Err(e) => return Err(parse_error(path, 1, format!("invalid csv header: {e}"))),
    };
    Ok((reader, header))
}

fn column(path: &Path, header: &[String], name: &str, needed: &[&str]) -> Result<usize> {
    header.iter().position(|h| h == name).ok_or_else(|| {
        parse_error(path, 1, format!("missing column {name:?} (expected the columns {})", needed.join(", ")))
    })
}

/// Read the next row, or `None` at the end; csv errors carry their line.
fn next_row(reader: &mut csv::Reader<fs_err::File>, path: &Path, row: &mut csv::StringRecord) -> Result<Option<u64>> {
    let line = reader.position().line();
    match reader.read_record(row) {
        Ok(false) => Ok(None),
        Ok(true) => Ok(Some(row.position().map_or(line, csv::Position::line))),
        Err(e) => {
            if let csv::ErrorKind::Io(_) = e.kind() {
                return Err(Error::Io(std::io::Error::other(format!("{}: {e}", path.display()))));
            }
            let line = e.position().map_or(line, csv::Position::line);
            Err(parse_error(path, line, format!("invalid csv: {e}")))
        }
    }
}

/// Parse one cell, naming the column and what was expected when it does not parse.
fn cell<T: std::str::FromStr>(
    path: &Path,
    line: u64,
    row: &csv::StringRecord,
    header: &[String],
    index: usize,
    expected: &str,
) -> Result<T> {
    let text = row.get(index).unwrap_or("").trim();
    text.parse().map_err(|_| {
        parse_error(path, line, format!("column {:?}: expected {expected}, found {text:?}", header[index]))
    })
}

/// Microseconds since the epoch of `2019-11-24 00:00:34.762830+00:00` (the dataset's
/// form) or an RFC 3339 timestamp.
fn parse_timestamp(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%:z")
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(text))
        .ok()
        .map(|t| t.timestamp_micros())
}

/// `timestamp` (microseconds since the epoch) as `2019-11-28 07:05:01.123456 UTC`.
pub fn format_timestamp(timestamp: i64) -> String {
    chrono::DateTime::from_timestamp_micros(timestamp)
        .map_or_else(|| timestamp.to_string(), |t| t.format("%Y-%m-%d %H:%M:%S%.6f UTC").to_string())
}

impl ItemContext {
    /// Read `item_context.csv`.
    pub fn read(path: &Path) -> Result<Self> {
        let (mut reader, header) = open_csv(path)?;
        let item_column = column(path, &header, "item_id", &["item_id"])?;
        let feature_columns: Vec<usize> =
            (0..header.len()).filter(|&c| c != item_column && !header[c].is_empty()).collect();
        let mut rows: Vec<(u32, u64, Vec<String>)> = Vec::new();
        let mut row = csv::StringRecord::new();
        while let Some(line) = next_row(&mut reader, path, &mut row)? {
            let item: u32 = cell(path, line, &row, &header, item_column, "a non-negative integer item id")?;
            let values = feature_columns.iter().map(|&c| row.get(c).unwrap_or("").trim().to_string()).collect();
            rows.push((item, line, values));
        }
        let numeric: Vec<bool> = (0..feature_columns.len())
            .map(|k| {
                !rows.is_empty() && rows.iter().all(|(_, _, values)| values[k].parse::<f32>().is_ok_and(f32::is_finite))
            })
            .collect();
        let mut items = HashMap::with_capacity(rows.len());
        for (item, line, values) in rows {
            let values = values
                .into_iter()
                .zip(&numeric)
                .map(
                    |(v, &is_number)| {
                        if is_number {
                            ItemValue::Number(v.parse().unwrap_or(0.0))
                        } else {
                            ItemValue::Text(v)
                        }
                    },
                )
                .collect();
            if items.insert(item, values).is_some() {
                return Err(parse_error(path, line, format!("item_id {item} appears twice")));
            }
        }
        let columns = feature_columns.iter().map(|&c| header[c].clone()).collect();
        Ok(Self { columns, numeric, items })
    }
}

impl ObdLog {
    /// Read a dataset directory: its `item_context.csv` and its one other csv file, the
    /// impression log.
    pub fn read_dir(dir: &Path) -> Result<Self> {
        let mut logs = Vec::new();
        for entry in fs_err::read_dir(dir)? {
            let path = entry?.path();
            let is_csv = path.extension().is_some_and(|e| e == "csv");
            if is_csv && path.file_name().is_some_and(|n| n != ITEM_CONTEXT_FILE) {
                logs.push(path);
            }
        }
        logs.sort();
        let item_context = dir.join(ITEM_CONTEXT_FILE);
        if !item_context.is_file() {
            return Err(Error::not_found("item context file", item_context.display().to_string()));
        }
        match logs.as_slice() {
            [log] => Self::read(log, &item_context),
            _ => Err(ValidationError::new(
                "expected_one_log",
                dir.display().to_string(),
                format!(
                    "expected one impression log (a csv file besides {ITEM_CONTEXT_FILE}), found {}",
                    if logs.is_empty() {
                        "none".to_string()
                    } else {
                        logs.iter()
                            .filter_map(|p| p.file_name())
                            .map(|n| n.to_string_lossy())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
            )
            .into()),
        }
    }

    /// Read an impression log and its item context file.
    pub fn read(log_path: &Path, item_context_path: &Path) -> Result<Self> {
        let items = ItemContext::read(item_context_path)?;
        let (mut reader, header) = open_csv(log_path)?;
        let [timestamp_c, item_c, position_c, click_c, propensity_c] =
            LOG_COLUMNS.map(|name| column(log_path, &header, name, &LOG_COLUMNS));
        let (timestamp_c, item_c, position_c, click_c, propensity_c) =
            (timestamp_c?, item_c?, position_c?, click_c?, propensity_c?);
        let user_columns: Vec<usize> =
            (0..header.len()).filter(|&c| header[c].starts_with(USER_FEATURE_PREFIX)).collect();
        let mut user_features: Vec<Vocabulary> = user_columns.iter().map(|&c| Vocabulary::new(&header[c])).collect();
        let affinity_columns: HashMap<u32, usize> = (0..header.len())
            .filter_map(|c| header[c].strip_prefix(AFFINITY_PREFIX)?.parse::<u32>().ok().map(|item| (item, c)))
            .collect();

        let mut impressions = Vec::new();
        let mut user_values = Vec::new();
        let mut affinities: Vec<(u32, u32, f32)> = Vec::new();
        let mut row = csv::StringRecord::new();
        while let Some(line) = next_row(&mut reader, log_path, &mut row)? {
            let Ok(file_row) = u32::try_from(impressions.len()) else {
                return Err(parse_error(log_path, line, "the log has more than 2^32 rows"));
            };
            let text = row.get(timestamp_c).unwrap_or("").trim();
            let timestamp = parse_timestamp(text).ok_or_else(|| {
                parse_error(
                    log_path,
                    line,
                    format!(
                        "column \"timestamp\": expected a time like 2019-11-24 00:00:34.762830+00:00, found {text:?}"
                    ),
                )
            })?;
            let item: u32 = cell(log_path, line, &row, &header, item_c, "a non-negative integer item id")?;
            if !items.items.contains_key(&item) {
                return Err(parse_error(
                    log_path,
                    line,
                    format!("column \"item_id\": item {item} is not in {}", item_context_path.display()),
                ));
            }
            let position: u32 = cell(log_path, line, &row, &header, position_c, "a slot number of at least 1")?;
            if position == 0 {
                return Err(parse_error(
                    log_path,
                    line,
                    "column \"position\": expected a slot number of at least 1, found 0",
                ));
            }
            let click: u8 = cell(log_path, line, &row, &header, click_c, "0 or 1")?;
            if click > 1 {
                return Err(parse_error(log_path, line, format!("column \"click\": expected 0 or 1, found {click}")));
            }
            let propensity: f64 = cell(log_path, line, &row, &header, propensity_c, "a probability")?;
            if !(propensity > 0.0 && propensity <= 1.0) {
                return Err(parse_error(
                    log_path,
                    line,
                    format!("column \"propensity_score\": expected a probability in (0, 1], found {propensity}"),
                ));
            }
            let mut affinity = None;
            for (&affinity_item, &c) in &affinity_columns {
                let text = row.get(c).unwrap_or("").trim();
                // Most cells are "0.0": skip the float parse for them.
                let value = if text == "0.0" || text == "0" {
                    0.0
                } else {
                    cell::<f32>(log_path, line, &row, &header, c, "a number")?
                };
                if affinity_item == item {
                    affinity = Some(value);
                }
                if value != 0.0 {
                    affinities.push((file_row, affinity_item, value));
                }
            }
            for (vocabulary, &c) in user_features.iter_mut().zip(&user_columns) {
                user_values.push(vocabulary.intern(row.get(c).unwrap_or("").trim()));
            }
            impressions.push(Impression {
                timestamp,
                row: file_row,
                item,
                position,
                click: click == 1,
                propensity,
                affinity,
            });
        }

        // Time order, stable: the files are already sorted, but the protocol must not
        // depend on it.
        let mut order: Vec<usize> = (0..impressions.len()).collect();
        order.sort_by_key(|&i| impressions[i].timestamp);
        let width = user_features.len();
        let sorted_values =
            order.iter().flat_map(|&i| user_values[i * width..(i + 1) * width].iter().copied()).collect();
        let sorted = order.iter().map(|&i| impressions[i].clone()).collect();
        // Re-key the affinities from file rows to time-ordered indices.
        let mut index_of_file_row = vec![0u32; order.len()];
        for (index, &file_row) in order.iter().enumerate() {
            index_of_file_row[file_row] = index as u32;
        }
        for cell in &mut affinities {
            cell.0 = index_of_file_row[cell.0 as usize];
        }
        affinities.sort_unstable_by_key(|&(index, item, _)| (index, item));
        Ok(Self {
            log_path: log_path.to_path_buf(),
            item_context_path: item_context_path.to_path_buf(),
            impressions: sorted,
            user_features,
            user_values: sorted_values,
            affinities,
            items,
        })
    }

    /// The user feature value ids of impression `row`, one per [`Self::user_features`].
    pub fn user_values(&self, row: usize) -> &[u32] {
        let width = self.user_features.len();
        &self.user_values[row * width..(row + 1) * width]
    }

    pub fn clicks(&self, rows: Range<usize>) -> usize {
        self.impressions[rows].iter().filter(|i| i.click).count()
    }

    /// The index where the earliest `ratio` of `rows` ends: rows before it are earlier
    /// than rows after it. Rows sharing the boundary's timestamp all go to the earlier part,
    /// so no instant is split between training and test.
    pub fn time_cut(&self, rows: Range<usize>, ratio: f64) -> usize {
        let len = rows.end - rows.start;
        let mut cut = rows.start + ((len as f64 * ratio).floor() as usize).min(len);
        while cut > rows.start
            && cut < rows.end
            && self.impressions[cut].timestamp == self.impressions[cut - 1].timestamp
        {
            cut += 1;
        }
        cut
    }

    /// The user's affinity to `item` in impression `row` (0 when the log has no such column).
    pub fn affinity(&self, row: usize, item: u32) -> f32 {
        let start = self.affinities.partition_point(|&(index, _, _)| (index as usize) < row);
        self.affinities[start..]
            .iter()
            .take_while(|&&(index, _, _)| index as usize == row)
            .find(|&&(_, affinity_item, _)| affinity_item == item)
            .map_or(0.0, |&(_, _, value)| value)
    }

    /// The click-model features of impression `row`, appended to `out`.
    pub fn features(&self, row: usize, config: &ObdFeatureConfig, hasher: &mut FeatureHasher, out: &mut Vec<Feature>) {
        let impression = &self.impressions[row];
        self.features_of(row, impression.item, impression.position, config, hasher, out);
    }

    /// The click-model features of showing `item` in slot `position` to the user of
    /// impression `row` — the logged item or any other (off-policy evaluation asks about
    /// items the log did not show), appended to `out`.
    pub fn features_of(
        &self,
        row: usize,
        item: u32,
        position: u32,
        config: &ObdFeatureConfig,
        hasher: &mut FeatureHasher,
        out: &mut Vec<Feature>,
    ) {
        out.push(hasher.categorical("item", item));
        out.push(hasher.categorical("position", position));
        if config.crosses {
            out.push(hasher.categorical("position×item", format_args!("{position}|{item}")));
        }
        if config.user_features {
            for (vocabulary, &id) in self.user_features.iter().zip(self.user_values(row)) {
                let value = &vocabulary.values[id as usize];
                out.push(hasher.categorical(&vocabulary.name, value));
                if config.crosses {
                    out.push(hasher.categorical(&vocabulary.cross_name, format_args!("{value}|{item}")));
                }
            }
        }
        if config.item_context {
            if let Some(values) = self.items.items.get(&item) {
                for (name, value) in self.items.columns.iter().zip(values) {
                    out.push(match value {
                        ItemValue::Number(x) => hasher.numeric(name, *x),
                        ItemValue::Text(text) => hasher.categorical(name, text),
                    });
                }
            }
        }
        if config.affinity {
            let affinity = self.affinity(row, item);
            if affinity != 0.0 {
                out.push(hasher.numeric("user-item_affinity", affinity));
            }
        }
    }

    /// Training examples for `rows`, each with importance weight 1.
    pub fn examples(&self, rows: Range<usize>, config: &ObdFeatureConfig) -> Vec<Example> {
        let mut hasher = FeatureHasher::default();
        rows.map(|row| {
            let mut features = Vec::with_capacity(24);
            self.features(row, config, &mut hasher, &mut features);
            Example { features, label: self.impressions[row].click, weight: 1.0 }
        })
        .collect()
    }
}

/// Which feature groups the click model sees. Item id and position are always on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ObdFeatureConfig {
    /// Each `user_feature_*` value.
    pub user_features: bool,
    /// Each feature of the shown item from `item_context.csv`.
    pub item_context: bool,
    /// position × item and each user feature × item.
    pub crosses: bool,
    /// The user's affinity to the shown item.
    pub affinity: bool,
}

impl Default for ObdFeatureConfig {
    fn default() -> Self {
        Self { user_features: true, item_context: true, crosses: true, affinity: true }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/rank/obd")
    }

    #[test]
    fn reads_the_fixture_in_time_order() {
        let log = ObdLog::read_dir(&fixture()).unwrap();
        assert_eq!(log.impressions.len(), 14);
        assert_eq!(log.clicks(0..14), 4);
        assert!(log.impressions.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
        // The file lists 2030-01-01 00:00:07 before 00:00:06: sorting put them in order.
        let first = &log.impressions[0];
        assert_eq!(format_timestamp(first.timestamp), "2030-01-01 00:00:01.000000 UTC");
        assert_eq!((first.item, first.position, first.click, first.propensity), (1, 1, false, 0.25));
        assert_eq!(log.impressions[5].item, 2, "the row at 00:00:06 comes before the one at 00:00:07");
        let names: Vec<&str> = log.user_features.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["user_feature_0", "user_feature_1"]);
        assert_eq!(log.user_features[0].values, ["synthetic-u0-a", "synthetic-u0-b"]);
        assert_eq!(log.items.columns, ["item_feature_0", "item_feature_1"]);
        assert_eq!(log.items.numeric, [true, false]);
        assert_eq!(log.items.items[&3], [ItemValue::Number(0.5), ItemValue::Text("synthetic-colour-blue".into())]);
        // Affinity is read from the shown item's column; the fixture has columns for items 0..=3.
        assert_eq!(log.impressions[0].affinity, Some(2.0));
    }

    #[test]
    fn rows_keep_their_file_place_and_every_affinity() {
        let log = ObdLog::read_dir(&fixture()).unwrap();
        let rows: Vec<u32> = log.impressions.iter().map(|i| i.row).collect();
        assert_eq!(rows, [0, 1, 2, 3, 4, 6, 5, 7, 8, 9, 10, 11, 12, 13]);
        // File row 4 (time index 4) has affinity 1.0 to item 0, which it did not show.
        assert_eq!((log.impressions[4].item, log.affinity(4, 0), log.affinity(4, 1)), (1, 1.0, 0.0));
        // File row 5 moved to time index 6 and took its affinity to item 3 along.
        assert_eq!((log.impressions[6].row, log.affinity(6, 3), log.affinity(5, 3)), (5, 3.0, 0.0));
        assert_eq!(log.affinity(0, 1), 2.0);
        assert_eq!(log.affinity(13, 9), 0.0, "an item without a column");
        // Features of another item than the logged one carry that item's affinity.
        let mut hasher = FeatureHasher::default();
        let mut features = Vec::new();
        let config = ObdFeatureConfig { user_features: false, item_context: false, crosses: false, affinity: true };
        log.features_of(4, 0, 3, &config, &mut hasher, &mut features);
        let expected = [
            hasher.categorical("item", 0),
            hasher.categorical("position", 3),
            hasher.numeric("user-item_affinity", 1.0),
        ];
        assert_eq!(features, expected);
    }

    #[test]
    fn the_time_cut_keeps_an_instant_together() {
        let log = ObdLog::read_dir(&fixture()).unwrap();
        // 14 rows: 70% = 9.8 → 9, but rows 8 and 9 share 00:00:09 and stay together.
        assert_eq!(log.impressions[8].timestamp, log.impressions[9].timestamp);
        assert_eq!(log.time_cut(0..14, 0.7), 10);
        assert_eq!(log.time_cut(0..14, 0.5), 7);
        assert_eq!(log.time_cut(0..14, 1.0), 14);
        assert_eq!(log.time_cut(0..0, 0.7), 0);
    }

    #[test]
    fn features_cover_each_group() {
        let log = ObdLog::read_dir(&fixture()).unwrap();
        let mut hasher = FeatureHasher::default();
        let mut features = Vec::new();
        log.features(0, &ObdFeatureConfig::default(), &mut hasher, &mut features);
        let expected = [
            hasher.categorical("item", 1),
            hasher.categorical("position", 1),
            hasher.categorical("position×item", "1|1"),
            hasher.categorical("user_feature_0", "synthetic-u0-a"),
            hasher.categorical("user_feature_0×item", "synthetic-u0-a|1"),
            hasher.categorical("user_feature_1", "synthetic-u1-x"),
            hasher.categorical("user_feature_1×item", "synthetic-u1-x|1"),
            hasher.numeric("item_feature_0", -0.25),
            hasher.categorical("item_feature_1", "synthetic-colour-red"),
            hasher.numeric("user-item_affinity", 2.0),
        ];
        assert_eq!(features, expected);
        features.clear();
        let bare = ObdFeatureConfig { user_features: false, item_context: false, crosses: false, affinity: false };
        log.features(0, &bare, &mut hasher, &mut features);
        assert_eq!(features, expected[..2]);
    }

    /// Write the fixture's log with one column removed into a temp dir.
    fn without_column(name: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(fixture().join("log.csv")).unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header = reader.headers().unwrap().clone();
        let drop = header.iter().position(|h| h == name).unwrap();
        let mut writer = csv::Writer::from_path(dir.path().join("log.csv")).unwrap();
        writer.write_record(header.iter().enumerate().filter(|(i, _)| *i != drop).map(|(_, h)| h)).unwrap();
        for record in reader.records() {
            let record = record.unwrap();
            writer.write_record(record.iter().enumerate().filter(|(i, _)| *i != drop).map(|(_, h)| h)).unwrap();
        }
        writer.flush().unwrap();
        std::fs::copy(fixture().join(ITEM_CONTEXT_FILE), dir.path().join(ITEM_CONTEXT_FILE)).unwrap();
        dir
    }

    #[test]
    fn a_missing_column_is_named() {
        for name in LOG_COLUMNS {
            let dir = without_column(name);
            let error = ObdLog::read_dir(dir.path()).unwrap_err();
            let message = error.to_string();
            assert!(matches!(error, Error::Parse { line: 1, .. }), "{message}");
            assert!(message.contains(&format!("missing column \"{name}\"")), "{message}");
        }
    }

    #[test]
    fn optional_columns_may_be_absent() {
        let dir = without_column("user-item_affinity_1");
        let log = ObdLog::read_dir(dir.path()).unwrap();
        assert_eq!(log.impressions[0].item, 1);
        assert_eq!(log.impressions[0].affinity, None);
        assert_eq!(log.impressions[1].affinity, Some(0.0));
    }

    fn with_log(text: &str) -> (tempfile::TempDir, Error) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("log.csv"), text).unwrap();
        std::fs::copy(fixture().join(ITEM_CONTEXT_FILE), dir.path().join(ITEM_CONTEXT_FILE)).unwrap();
        let error = ObdLog::read_dir(dir.path()).unwrap_err();
        (dir, error)
    }

    #[test]
    fn bad_cells_are_reported_with_line_and_column() {
        let header = ",timestamp,item_id,position,click,propensity_score\n";
        for (row, expected) in [
            ("0,2030-01-01 00:00:01+00:00,1,1,2,0.5", ":2: column \"click\": expected 0 or 1, found 2"),
            (
                "0,2030-01-01 00:00:01+00:00,1,x,0,0.5",
                ":2: column \"position\": expected a slot number of at least 1, found \"x\"",
            ),
            ("0,yesterday,1,1,0,0.5", ":2: column \"timestamp\": expected a time like"),
            ("0,2030-01-01 00:00:01+00:00,9,1,0,0.5", ":2: column \"item_id\": item 9 is not in"),
            (
                "0,2030-01-01 00:00:01+00:00,1,1,0,0",
                ":2: column \"propensity_score\": expected a probability in (0, 1], found 0",
            ),
        ] {
            let (_dir, error) = with_log(&format!("{header}{row}\n"));
            assert!(error.to_string().contains(expected), "{error} does not contain {expected}");
        }
    }

    #[test]
    fn a_directory_needs_exactly_one_log_and_the_item_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(fixture().join(ITEM_CONTEXT_FILE), dir.path().join(ITEM_CONTEXT_FILE)).unwrap();
        let error = ObdLog::read_dir(dir.path()).unwrap_err();
        assert!(error.to_string().contains("expected one impression log"), "{error}");
        for name in ["a.csv", "b.csv"] {
            std::fs::copy(fixture().join("log.csv"), dir.path().join(name)).unwrap();
        }
        let error = ObdLog::read_dir(dir.path()).unwrap_err();
        assert!(error.to_string().contains("found a.csv, b.csv"), "{error}");
        std::fs::remove_file(dir.path().join(ITEM_CONTEXT_FILE)).unwrap();
        std::fs::remove_file(dir.path().join("b.csv")).unwrap();
        let error = ObdLog::read_dir(dir.path()).unwrap_err();
        assert!(matches!(error, Error::NotFound { .. }) && error.to_string().contains(ITEM_CONTEXT_FILE), "{error}");
    }
}
