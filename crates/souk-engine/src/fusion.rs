//! Rank fusion: the one place the engine combines ranked lists, for search (keyword and
//! semantic) and for recommendations (every recall source). Pure arithmetic over ranks and
//! scores; knows nothing of items or sources.
//!
//! Reciprocal-rank fusion (Cormack, Clarke and Büttcher, SIGIR 2009): an item scores
//! Σ weightₛ / (k + rankₛ) over the lists s it appears in, ranks 1-based; k = 60 damps the
//! head so that agreement between lists outweighs one list's first place. Weighted score
//! fusion normalises each list's scores to 0..=1 (by its maximum, or min-max) first.

use std::collections::HashMap;
use std::hash::Hash;

/// The k of reciprocal-rank fusion in the original paper, and Souk's default.
pub const RRF_K: f64 = 60.0;

/// One list's contribution to an item at 1-based `rank`: 1 / (k + rank).
pub fn reciprocal_rank(k: f64, rank: usize) -> f64 {
    1.0 / (k + rank as f64)
}

/// `value` scaled by the list's maximum to 0..=1 (0 when the maximum is not positive).
pub fn max_scaled(value: f32, max: f32) -> f32 {
    if max > 0.0 {
        value / max
    } else {
        0.0
    }
}

/// `value` min-max normalised to 0..=1 (1 when every value is the same).
pub fn min_max(value: f32, min: f32, max: f32) -> f32 {
    let range = max - min;
    if range > 0.0 {
        (value - min) / range
    } else {
        1.0
    }
}

/// Weighted reciprocal-rank fusion of several ranked lists, accumulated list by list.
#[derive(Debug, Clone)]
pub struct Rrf<K> {
    k: f64,
    scores: HashMap<K, f64>,
}

impl<K: Hash + Eq> Rrf<K> {
    pub fn new(k: f64) -> Self {
        Self { k, scores: HashMap::new() }
    }

    /// Add one list, best first, with its weight.
    pub fn add(&mut self, weight: f64, list: impl IntoIterator<Item = K>) {
        for (rank, key) in list.into_iter().enumerate() {
            *self.scores.entry(key).or_default() += weight * reciprocal_rank(self.k, rank + 1);
        }
    }

    /// The fused scores (unordered).
    pub fn into_scores(self) -> HashMap<K, f64> {
        self.scores
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreement_between_lists_beats_one_first_place() {
        let mut rrf = Rrf::new(RRF_K);
        rrf.add(1.0, ["a", "b", "c"]);
        rrf.add(1.0, ["b", "c", "a"]);
        rrf.add(1.0, ["d"]);
        let scores = rrf.into_scores();
        assert!(scores["b"] > scores["a"] && scores["a"] > scores["d"], "{scores:?}");
        assert!((scores["d"] - 1.0 / 61.0).abs() < 1e-12);
        assert!((scores["b"] - (1.0 / 62.0 + 1.0 / 61.0)).abs() < 1e-12);
    }

    #[test]
    fn weights_scale_a_lists_contribution_and_zero_removes_it() {
        let mut rrf = Rrf::new(RRF_K);
        rrf.add(2.0, ["a"]);
        rrf.add(0.0, ["b"]);
        let scores = rrf.into_scores();
        assert!((scores["a"] - 2.0 / 61.0).abs() < 1e-12);
        assert_eq!(scores["b"], 0.0);
    }

    #[test]
    fn normalisations_stay_in_range() {
        assert_eq!(max_scaled(5.0, 10.0), 0.5);
        assert_eq!(max_scaled(5.0, 0.0), 0.0);
        assert_eq!(min_max(3.0, 1.0, 5.0), 0.5);
        assert_eq!(min_max(3.0, 3.0, 3.0), 1.0);
    }
}
