//! The training table: dense numeric features, one label and one importance weight per row,
//! rows grouped into queries (requests) by offsets.
//!
//! Checked once, at construction, so training can index without looking: every length
//! agrees, labels and weights are finite, group offsets run from 0 to the row count without
//! going back. Features may be NaN — a missing value, routed by each split's learned default
//! direction — and ±infinity (they sort past every finite value).

use std::ops::Range;

use crate::error::ValidationError;

/// Rows of dense features with labels, weights and query groups (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    feature_names: Vec<String>,
    /// Row-major: row `i` is `rows[i * n_features..(i + 1) * n_features]`.
    rows: Vec<f32>,
    labels: Vec<f32>,
    weights: Vec<f32>,
    /// Offsets: group `q` is rows `groups[q]..groups[q + 1]`; `len = groups + 1`.
    groups: Vec<u32>,
}

fn invalid(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> ValidationError {
    ValidationError::new(code, field, message)
}

impl Dataset {
    /// A dataset of `rows` (row-major, `feature_names.len()` values per row) and one label per
    /// row, every weight 1 and every row in one group. Labels must be finite; what range they
    /// must lie in depends on the objective and is checked by training.
    pub fn new(feature_names: Vec<String>, rows: Vec<f32>, labels: Vec<f32>) -> Result<Self, ValidationError> {
        if feature_names.is_empty() {
            return Err(invalid("invalid_length", "feature_names", "expected at least one feature, found none"));
        }
        for (i, name) in feature_names.iter().enumerate() {
            if name.is_empty() {
                return Err(invalid("invalid_name", format!("feature_names[{i}]"), "expected a name, found \"\""));
            }
            if let Some(first) = feature_names[..i].iter().position(|other| other == name) {
                return Err(invalid(
                    "duplicate_name",
                    format!("feature_names[{i}]"),
                    format!("expected unique names, found {name:?} again (first at {first})"),
                ));
            }
        }
        let n_features = feature_names.len();
        if !rows.len().is_multiple_of(n_features) {
            return Err(invalid(
                "invalid_length",
                "rows",
                format!("expected a multiple of {n_features} values (one per feature), found {}", rows.len()),
            ));
        }
        let n_rows = rows.len() / n_features;
        if u32::try_from(n_rows).is_err() {
            return Err(invalid(
                "invalid_length",
                "rows",
                format!("expected at most {} rows, found {n_rows}", u32::MAX),
            ));
        }
        if labels.len() != n_rows {
            return Err(invalid(
                "invalid_length",
                "labels",
                format!("expected {n_rows} labels (one per row), found {}", labels.len()),
            ));
        }
        if let Some(i) = labels.iter().position(|l| !l.is_finite()) {
            return Err(invalid(
                "invalid_label",
                format!("labels[{i}]"),
                format!("expected a finite label, found {}", labels[i]),
            ));
        }
        Ok(Self { feature_names, rows, labels, weights: vec![1.0; n_rows], groups: vec![0, n_rows as u32] })
    }

    /// Per-row importance weights (e.g. inverse propensities), finite and non-negative. A
    /// weight acts as a count: Binary multiplies the row's gradient and hessian by it,
    /// LambdaRank a pair's by the product of its two rows' weights.
    pub fn with_weights(mut self, weights: Vec<f32>) -> Result<Self, ValidationError> {
        if weights.len() != self.n_rows() {
            return Err(invalid(
                "invalid_length",
                "weights",
                format!("expected {} weights (one per row), found {}", self.n_rows(), weights.len()),
            ));
        }
        if let Some(i) = weights.iter().position(|w| !(w.is_finite() && *w >= 0.0)) {
            return Err(invalid(
                "invalid_weight",
                format!("weights[{i}]"),
                format!("expected a finite non-negative weight, found {}", weights[i]),
            ));
        }
        self.weights = weights;
        Ok(self)
    }

    /// Query groups as offsets: group `q` is rows `offsets[q]..offsets[q + 1]`. The offsets
    /// start at 0, end at the row count and never decrease; a group must not be empty.
    pub fn with_groups(mut self, offsets: Vec<u32>) -> Result<Self, ValidationError> {
        let n_rows = self.n_rows();
        match (offsets.first(), offsets.last()) {
            (Some(0), Some(&last)) if offsets.len() >= 2 && last as usize == n_rows => {}
            _ => {
                return Err(invalid(
                    "invalid_groups",
                    "groups",
                    format!(
                        "expected offsets from 0 to {n_rows} (the row count), at least two, found {} starting {:?} ending {:?}",
                        offsets.len(),
                        offsets.first(),
                        offsets.last()
                    ),
                ))
            }
        }
        if let Some(q) = offsets.windows(2).position(|w| w[1] <= w[0]) {
            return Err(invalid(
                "invalid_groups",
                format!("groups[{}]", q + 1),
                format!("expected an offset above {} (groups are not empty), found {}", offsets[q], offsets[q + 1]),
            ));
        }
        self.groups = offsets;
        Ok(self)
    }

    /// [`Self::with_groups`] from group sizes (as LightGBM's `.query` files give them).
    pub fn with_group_sizes(self, sizes: &[u32]) -> Result<Self, ValidationError> {
        let mut offsets = Vec::with_capacity(sizes.len() + 1);
        offsets.push(0u32);
        let mut end = 0u64;
        for &size in sizes {
            end += u64::from(size);
            offsets.push(u32::try_from(end).unwrap_or(u32::MAX));
        }
        self.with_groups(offsets)
    }

    pub fn n_rows(&self) -> usize {
        self.labels.len()
    }

    pub fn n_features(&self) -> usize {
        self.feature_names.len()
    }

    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// All rows, row-major.
    pub fn rows(&self) -> &[f32] {
        &self.rows
    }

    /// The features of row `i`. Panics when `i >= n_rows()`.
    pub fn row(&self, i: usize) -> &[f32] {
        let n = self.n_features();
        &self.rows[i * n..(i + 1) * n]
    }

    pub fn labels(&self) -> &[f32] {
        &self.labels
    }

    pub fn weights(&self) -> &[f32] {
        &self.weights
    }

    /// Group offsets (`n_groups() + 1` of them).
    pub fn group_offsets(&self) -> &[u32] {
        &self.groups
    }

    pub fn n_groups(&self) -> usize {
        self.groups.len() - 1
    }

    /// The rows of group `q`. Panics when `q >= n_groups()`.
    pub fn group(&self, q: usize) -> Range<usize> {
        self.groups[q] as usize..self.groups[q + 1] as usize
    }

    /// Iterate over the groups' row ranges.
    pub fn groups(&self) -> impl ExactSizeIterator<Item = Range<usize>> + '_ {
        self.groups.windows(2).map(|w| w[0] as usize..w[1] as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("f{i}")).collect()
    }

    fn small() -> Dataset {
        Dataset::new(names(2), vec![1.0, 2.0, 3.0, f32::NAN, 5.0, 6.0], vec![0.0, 1.0, 2.0]).unwrap()
    }

    fn field_and_code(error: ValidationError) -> (String, &'static str) {
        (error.field, error.code)
    }

    #[test]
    fn accessors_see_rows_labels_weights_and_groups() {
        let data = small().with_weights(vec![1.0, 0.5, 2.0]).unwrap().with_group_sizes(&[1, 2]).unwrap();
        assert_eq!((data.n_rows(), data.n_features(), data.n_groups()), (3, 2, 2));
        assert_eq!(data.row(1)[0], 3.0);
        assert!(data.row(1)[1].is_nan(), "missing values are kept");
        assert_eq!(data.weights(), [1.0, 0.5, 2.0]);
        assert_eq!(data.groups().collect::<Vec<_>>(), [0..1, 1..3]);
        assert_eq!(data.group_offsets(), [0, 1, 3]);
        let plain = small();
        assert_eq!((plain.weights(), plain.group_offsets()), (&[1.0f32; 3][..], &[0u32, 3][..]));
    }

    #[test]
    fn mismatched_lengths_are_refused_with_the_field() {
        let e = Dataset::new(names(2), vec![1.0; 5], vec![0.0; 2]).unwrap_err();
        assert_eq!(field_and_code(e.clone()), ("rows".into(), "invalid_length"));
        assert!(e.message.contains("multiple of 2 values") && e.message.contains("found 5"), "{e}");
        let e = Dataset::new(names(2), vec![1.0; 6], vec![0.0; 2]).unwrap_err();
        assert_eq!(field_and_code(e.clone()), ("labels".into(), "invalid_length"));
        assert!(e.message.contains("expected 3 labels") && e.message.contains("found 2"), "{e}");
        let e = small().with_weights(vec![1.0; 4]).unwrap_err();
        assert_eq!(field_and_code(e), ("weights".into(), "invalid_length"));
        let e = Dataset::new(vec![], vec![], vec![]).unwrap_err();
        assert_eq!(field_and_code(e), ("feature_names".into(), "invalid_length"));
    }

    #[test]
    fn bad_names_labels_and_weights_are_refused() {
        let e = Dataset::new(vec!["a".into(), "a".into()], vec![], vec![]).unwrap_err();
        assert_eq!(field_and_code(e.clone()), ("feature_names[1]".into(), "duplicate_name"));
        assert!(e.message.contains("\"a\" again"), "{e}");
        let e = Dataset::new(vec!["".into()], vec![], vec![]).unwrap_err();
        assert_eq!(field_and_code(e), ("feature_names[0]".into(), "invalid_name"));
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let e = Dataset::new(names(1), vec![0.0; 3], vec![0.0, bad, 1.0]).unwrap_err();
            assert_eq!(field_and_code(e.clone()), ("labels[1]".into(), "invalid_label"), "{e}");
        }
        for bad in [-1.0, f32::NAN, f32::INFINITY] {
            let e = small().with_weights(vec![1.0, 1.0, bad]).unwrap_err();
            assert_eq!(field_and_code(e), ("weights[2]".into(), "invalid_weight"));
        }
    }

    #[test]
    fn bad_groups_are_refused() {
        for (offsets, field) in [
            (vec![], "groups"),
            (vec![0], "groups"),
            (vec![1, 3], "groups"),
            (vec![0, 2], "groups"),
            (vec![0, 4], "groups"),
            (vec![0, 2, 1, 3], "groups[2]"),
            (vec![0, 1, 1, 3], "groups[2]"),
        ] {
            let e = small().with_groups(offsets.clone()).unwrap_err();
            assert_eq!(field_and_code(e.clone()), (field.into(), "invalid_groups"), "{offsets:?}: {e}");
        }
        let e = small().with_group_sizes(&[1, 1]).unwrap_err();
        assert!(e.message.contains("from 0 to 3"), "{e}");
        assert!(small().with_group_sizes(&[u32::MAX, 1]).is_err(), "overflowing sizes must not wrap around");
    }
}
