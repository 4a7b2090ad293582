//! The `sentiment` protocol (`souk eval --protocol sentiment --path REVIEWS.csv`): review
//! sentiment from text, a head on a frozen pre-trained encoder, judged on a held-out share.
//!
//! The file is a CSV with a header naming `label` (1 positive, 0 negative) and `review` (or
//! `text`), and optionally `cat` (a group, e.g. the product category, reported per group).
//! Empty reviews are skipped and counted. A seeded, label-stratified `test_share` of the
//! reviews is held out; every review is embedded by the encoder as a passage; the head
//! ([`SentimentHead::fit_tuned`]) learns from the rest, choosing its regularisation on a slice
//! of the training reviews, never the test. `--write-split DIR` writes the identical split
//! (`train.tsv`, `test.tsv`: label, group, text) for a reference run beside it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::error::{Error, Result, ValidationError};
use crate::rank::metrics::{auc, log_loss};
use crate::rank::review_sentiment::EmbedTexts;
use crate::rank::sentiment::{accuracy, stratified_split, GridPoint, SentimentHead};

/// The protocol's name.
pub const PROTOCOL: &str = "sentiment";
/// Share of the reviews held out when none is given.
pub const DEFAULT_TEST_SHARE: f64 = 0.2;

/// One labelled review.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledReview {
    pub text: String,
    pub positive: bool,
    /// The review's group (`cat` column), empty when the file has none.
    pub group: String,
}

/// The reviews of a labelled file and how many empty ones were skipped.
#[derive(Debug)]
pub struct LabelledReviews {
    pub reviews: Vec<LabelledReview>,
    pub skipped_empty: usize,
}

/// Read a labelled review file (see the module docs).
pub fn read_reviews(path: &Path) -> Result<LabelledReviews> {
    let parse = |line: u64, message: String| Error::Parse { path: path.to_path_buf(), line, message };
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_path(path).map_err(|e| match e.kind() {
        csv::ErrorKind::Io(_) => Error::Io(std::io::Error::other(format!("{}: {e}", path.display()))),
        _ => parse(1, e.to_string()),
    })?;
    let headers = reader.headers().map_err(|e| parse(1, e.to_string()))?.clone();
    let column = |names: &[&str]| {
        headers.iter().position(|h| names.contains(&h.trim_start_matches('\u{feff}').trim().to_lowercase().as_str()))
    };
    let label = column(&["label"]).ok_or_else(|| parse(1, "the header names no `label` column".into()))?;
    let text = column(&["review", "text"])
        .ok_or_else(|| parse(1, "the header names no `review` (or `text`) column".into()))?;
    let group = column(&["cat", "category", "group"]);
    let mut out = LabelledReviews { reviews: Vec::new(), skipped_empty: 0 };
    for record in reader.records() {
        let record = record.map_err(|e| parse(e.position().map_or(0, |p| p.line()), e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line());
        let positive = match record.get(label).map(str::trim) {
            Some("1") => true,
            Some("0") => false,
            other => return Err(parse(line, format!("label must be 1 or 0, found {other:?}"))),
        };
        let review = record.get(text).unwrap_or_default().trim_matches(|c: char| c == '\u{feff}' || c.is_whitespace());
        if review.is_empty() {
            out.skipped_empty += 1;
            continue;
        }
        let group = group.and_then(|g| record.get(g)).unwrap_or_default().trim().to_string();
        out.reviews.push(LabelledReview { text: review.to_string(), positive, group });
    }
    if out.reviews.is_empty() {
        return Err(parse(1, "no labelled reviews".into()));
    }
    Ok(out)
}

/// Knobs of one evaluation.
#[derive(Debug, Clone)]
pub struct SentimentEvalConfig {
    /// Share of the reviews held out for the test (0 < share < 1).
    pub test_share: f64,
    pub seed: u64,
    /// Where to write the identical split for a reference run, if anywhere.
    pub write_split: Option<PathBuf>,
}

/// Figures on one set of reviews.
#[derive(Debug, Clone, Serialize)]
pub struct SentimentScores {
    pub reviews: usize,
    pub accuracy: f64,
    pub auc: Option<f64>,
    pub log_loss: Option<f64>,
}

impl SentimentScores {
    fn of(probabilities: &[f64], labels: &[bool]) -> Self {
        SentimentScores {
            reviews: labels.len(),
            accuracy: accuracy(probabilities, labels),
            auc: auc(probabilities, labels),
            log_loss: log_loss(probabilities, labels),
        }
    }
}

/// What `souk eval --protocol sentiment` prints.
#[derive(Debug, Clone, Serialize)]
pub struct SentimentReport {
    pub protocol: &'static str,
    pub encoder: String,
    pub reviews: usize,
    pub skipped_empty: usize,
    pub train: usize,
    pub seed: u64,
    pub test: SentimentScores,
    /// Test figures per group, when the file names groups.
    pub by_group: BTreeMap<String, SentimentScores>,
    /// The regularisation grid with its validation figures, and the chosen strength.
    pub grid: Vec<GridPoint>,
    pub l2: f64,
    pub newton_steps: usize,
    pub embed_seconds: f64,
    pub reviews_per_second: f64,
    pub fit_seconds: f64,
}

/// Split, embed, fit and judge. `embed` turns texts into the encoder's vectors (passages);
/// `encoder` names it; `progress` hears (embedded, total) now and then.
pub fn evaluate(
    data: &LabelledReviews,
    encoder: &str,
    embed: &EmbedTexts<'_>,
    config: &SentimentEvalConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(SentimentReport, SentimentHead)> {
    if !(config.test_share > 0.0 && config.test_share < 1.0) {
        return Err(ValidationError::new("invalid_value", "ratio", "the test share must be between 0 and 1").into());
    }
    let reviews = &data.reviews;
    let labels: Vec<bool> = reviews.iter().map(|r| r.positive).collect();
    let (train, test) = stratified_split(&labels, config.test_share, config.seed);
    if train.is_empty() || test.is_empty() {
        return Err(
            ValidationError::new("invalid_value", "path", "too few reviews for a train and a test share").into()
        );
    }
    if let Some(dir) = &config.write_split {
        write_split(dir, reviews, &train, &test)?;
    }
    let started = Instant::now();
    let mut vectors: Vec<Vec<f32>> = Vec::with_capacity(reviews.len());
    const CHUNK: usize = 256;
    for chunk in reviews.chunks(CHUNK) {
        let texts: Vec<&str> = chunk.iter().map(|r| r.text.as_str()).collect();
        let embedded = embed(&texts)?;
        if embedded.len() != texts.len() {
            return Err(Error::Internal(format!(
                "the encoder returned {} vectors for {} texts",
                embedded.len(),
                texts.len()
            )));
        }
        vectors.extend(embedded);
        progress(vectors.len(), reviews.len());
    }
    let embed_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let pick = |rows: &[usize]| -> (Vec<Vec<f32>>, Vec<bool>) {
        (rows.iter().map(|&i| vectors[i].clone()).collect(), rows.iter().map(|&i| labels[i]).collect())
    };
    let (train_x, train_y) = pick(&train);
    let (head, grid) = SentimentHead::fit_tuned(encoder, &train_x, &train_y, config.seed)?;
    let fit_seconds = started.elapsed().as_secs_f64();
    let probabilities: Vec<f64> = test.iter().map(|&i| f64::from(head.probability(&vectors[i]))).collect();
    let test_labels: Vec<bool> = test.iter().map(|&i| labels[i]).collect();
    let mut groups: BTreeMap<&str, (Vec<f64>, Vec<bool>)> = BTreeMap::new();
    for (k, &i) in test.iter().enumerate() {
        if !reviews[i].group.is_empty() {
            let entry = groups.entry(reviews[i].group.as_str()).or_default();
            entry.0.push(probabilities[k]);
            entry.1.push(test_labels[k]);
        }
    }
    let report = SentimentReport {
        protocol: PROTOCOL,
        encoder: encoder.to_string(),
        reviews: reviews.len(),
        skipped_empty: data.skipped_empty,
        train: train.len(),
        seed: config.seed,
        test: SentimentScores::of(&probabilities, &test_labels),
        by_group: groups.into_iter().map(|(g, (p, y))| (g.to_string(), SentimentScores::of(&p, &y))).collect(),
        grid,
        l2: head.l2,
        newton_steps: head.steps,
        embed_seconds,
        reviews_per_second: reviews.len() as f64 / embed_seconds.max(1e-9),
        fit_seconds,
    };
    Ok((report, head))
}

/// Write `train.tsv` and `test.tsv` (label, group, text; tabs and line breaks in a text
/// become spaces) under `dir`.
pub fn write_split(dir: &Path, reviews: &[LabelledReview], train: &[usize], test: &[usize]) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, rows) in [("train.tsv", train), ("test.tsv", test)] {
        let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join(name))?);
        writeln!(out, "label\tgroup\ttext")?;
        for &i in rows {
            let r = &reviews[i];
            let clean = |s: &str| s.replace(['\t', '\n', '\r'], " ");
            writeln!(out, "{}\t{}\t{}", u8::from(r.positive), clean(&r.group), clean(&r.text))?;
        }
        out.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        file
    }

    #[test]
    fn reads_labels_texts_and_groups_with_a_bom_and_quoted_line_breaks() {
        let file = write("\u{feff}cat,label,review\n书籍,1,\"好书，\n推荐\"\n水果,0,不新鲜\n水果,1,  \n");
        let data = read_reviews(file.path()).unwrap();
        assert_eq!(data.skipped_empty, 1);
        assert_eq!(data.reviews.len(), 2);
        assert_eq!(
            data.reviews[0],
            LabelledReview { text: "好书，\n推荐".into(), positive: true, group: "书籍".into() }
        );
        assert!(!data.reviews[1].positive);
        let plain = write("label,text\n0,bad\n1,good\n");
        assert_eq!(read_reviews(plain.path()).unwrap().reviews[1].group, "");
    }

    #[test]
    fn a_bad_file_names_the_line_or_the_missing_column() {
        let no_label = write("cat,review\na,b\n");
        assert!(read_reviews(no_label.path()).unwrap_err().to_string().contains("label"));
        let bad_label = write("label,review\n1,fine\n2,odd\n");
        let error = read_reviews(bad_label.path()).unwrap_err();
        assert!(matches!(error, Error::Parse { line: 3, .. }), "{error:?}");
        let empty = write("label,review\n");
        assert!(read_reviews(empty.path()).is_err());
    }

    /// A toy encoder: counts of a few sentiment words.
    fn toy_embed(texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let words = ["good", "great", "bad", "awful", "okay"];
        Ok(texts.iter().map(|t| words.iter().map(|w| t.matches(w).count() as f32).collect()).collect())
    }

    #[test]
    fn evaluates_on_a_held_out_share_and_writes_the_identical_split() {
        let mut reviews = Vec::new();
        for i in 0..200 {
            let (text, positive) = match i % 4 {
                0 => ("good and great", true),
                1 => ("great okay", true),
                2 => ("bad okay", false),
                _ => ("awful and bad", false),
            };
            let group = if i % 3 == 0 { "a" } else { "b" };
            reviews.push(LabelledReview { text: text.into(), positive, group: group.into() });
        }
        let data = LabelledReviews { reviews, skipped_empty: 0 };
        let dir = tempfile::tempdir().unwrap();
        let config = SentimentEvalConfig { test_share: 0.25, seed: 3, write_split: Some(dir.path().to_path_buf()) };
        let mut calls = 0;
        let (report, head) = evaluate(&data, "toy", &toy_embed, &config, &mut |_, _| calls += 1).unwrap();
        assert!(calls >= 1);
        assert_eq!(report.test.reviews, 50);
        assert_eq!(report.train, 150);
        assert_eq!(report.test.accuracy, 1.0, "separable words: {report:?}");
        assert_eq!(report.by_group.len(), 2);
        assert_eq!(head.encoder, "toy");
        let test = std::fs::read_to_string(dir.path().join("test.tsv")).unwrap();
        assert_eq!(test.lines().count(), 51);
        assert!(test.lines().nth(1).unwrap().split('\t').count() == 3);
        let bad = SentimentEvalConfig { test_share: 1.0, seed: 3, write_split: None };
        assert!(evaluate(&data, "toy", &toy_embed, &bad, &mut |_, _| {}).is_err());
    }
}
