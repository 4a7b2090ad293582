//! Item-based k-nearest-neighbours (Sarwar et al. 2001; Deshpande & Karypis 2004): items
//! are similar when the same users interacted with them; a user's score for an item is
//! the similarity-weighted sum over their history.
//!
//! Owns the similarity (shrunk cosine, optional popularity penalty), its top-k
//! sparsification and scoring. Training is one sparse co-occurrence pass over the
//! transpose, parallel over items (see [`Neighbours::top_k`]).

use serde::{Deserialize, Serialize};

use super::artifact::Artifact;
use super::data::Interactions;
use super::kernels::{check_range, invalid, map_values, Neighbours};
use super::Recommender;
use crate::Result;

/// Parameters of [`train`]. Tuning grid used by the registry: `neighbours ∈ {50, 100,
/// 200}` × `shrink ∈ {0, 10}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ItemKnnParams {
    /// Neighbours kept per item (the largest similarities). At least 1.
    pub neighbours: usize,
    /// Shrinkage `s` in `sim(i, j) = dot(i, j) / (‖i‖·‖j‖ + s)`: pulls similarities that
    /// rest on few co-occurrences towards 0 (Koren 2008 §2.2 uses the same idea). ≥ 0.
    pub shrink: f32,
    /// Treat every interaction as 1 (`true`) instead of its weight, both for the
    /// similarities and for the history at scoring time.
    pub binary: bool,
    /// `β` in `sim(i, j) / n_j^β` where `n_j` is the number of users of item `j`: β > 0
    /// penalises popular neighbours (as RP3beta does), 0 is plain cosine. In [0, 2].
    pub popularity_exponent: f32,
}

impl Default for ItemKnnParams {
    fn default() -> Self {
        Self { neighbours: 100, shrink: 0.0, binary: true, popularity_exponent: 0.0 }
    }
}

impl ItemKnnParams {
    pub fn validate(&self) -> Result<()> {
        if self.neighbours == 0 {
            return Err(invalid("itemknn.neighbours", "expected at least 1, found 0"));
        }
        check_range("itemknn.shrink", self.shrink, 0.0, f32::MAX)?;
        check_range("itemknn.popularity_exponent", self.popularity_exponent, 0.0, 2.0)
    }
}

/// A trained item-kNN model: the top-k neighbours of every item.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemKnnModel {
    pub params: ItemKnnParams,
    pub(crate) neighbours: Neighbours,
}

pub fn train(data: &Interactions, params: &ItemKnnParams) -> Result<ItemKnnModel> {
    params.validate()?;
    let binary = params.binary;
    let user_major = map_values(data, |w| if binary { 1.0 } else { w });
    let item_major = user_major.transpose();
    let norms: Vec<f32> =
        (0..data.n_items()).map(|i| item_major.row(i).1.iter().map(|w| w * w).sum::<f32>().sqrt()).collect();
    let penalty: Vec<f32> = (0..data.n_items())
        .map(|i| {
            let users = item_major.row(i).0.len() as f32;
            if params.popularity_exponent == 0.0 || users == 0.0 {
                1.0
            } else {
                users.powf(params.popularity_exponent)
            }
        })
        .collect();
    let shrink = params.shrink;
    let neighbours = Neighbours::top_k(&item_major, &user_major, params.neighbours, |i, j, d| {
        d / (norms[i] * norms[j] + shrink) / penalty[j]
    });
    Ok(ItemKnnModel { params: params.clone(), neighbours })
}

impl ItemKnnModel {
    /// Similarity of `j` to `i` as kept after sparsification (0 when not a neighbour).
    pub fn similarity(&self, i: u32, j: u32) -> f32 {
        if i as usize >= self.neighbours.n_items {
            return 0.0;
        }
        let (js, vs) = self.neighbours.row(i as usize);
        js.binary_search(&j).map(|k| vs[k]).unwrap_or(0.0)
    }

    /// The kept neighbours of `i` (sorted by item) and their similarities; empty for
    /// unknown items.
    pub fn neighbours_of(&self, i: u32) -> (&[u32], &[f32]) {
        if i as usize >= self.neighbours.n_items {
            return (&[], &[]);
        }
        self.neighbours.row(i as usize)
    }

    pub fn from_artifact(artifact: Artifact) -> Result<Self> {
        let (params, neighbours) = Neighbours::from_artifact(artifact)?;
        Ok(Self { params, neighbours })
    }
}

impl Recommender for ItemKnnModel {
    fn name(&self) -> &str {
        "itemknn"
    }

    fn score(&self, _user: Option<u32>, history: &[(u32, f32)], scores: &mut [f32]) {
        let binary = self.params.binary;
        self.neighbours.score(history, |w| if binary { 1.0 } else { w }, scores);
    }

    fn to_artifact(&self) -> Option<Artifact> {
        self.neighbours.to_artifact(self.name(), &self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recommend::InteractionsBuilder;

    /// Users × items (a, b, c):
    /// u1: a b
    /// u2: a b c
    /// u3:     c
    fn tiny() -> Interactions {
        let mut b = InteractionsBuilder::default();
        for (u, i) in [("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "b"), ("u2", "c"), ("u3", "c")] {
            b.add(u, i, 1.0);
        }
        b.build()
    }

    #[test]
    fn cosine_with_shrink_by_hand() {
        let model = train(&tiny(), &ItemKnnParams { shrink: 1.0, ..Default::default() }).unwrap();
        // a = (1,1,0), b = (1,1,0), c = (0,1,1): dot(a,b) = 2, ‖a‖‖b‖ = 2 → 2/3;
        // dot(a,c) = 1, ‖a‖‖c‖ = 2 → 1/3.
        assert!((model.similarity(0, 1) - 2.0 / 3.0).abs() < 1e-6);
        assert!((model.similarity(0, 2) - 1.0 / 3.0).abs() < 1e-6);
        assert!((model.similarity(2, 1) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(model.similarity(0, 0), 0.0);
        let mut scores = vec![0.0; 3];
        model.score(None, &[(0, 5.0)], &mut scores);
        assert!((scores[1] - 2.0 / 3.0).abs() < 1e-6 && (scores[2] - 1.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn keeps_only_k_neighbours_and_penalises_popular_ones() {
        let model = train(&tiny(), &ItemKnnParams { neighbours: 1, ..Default::default() }).unwrap();
        assert_eq!(model.neighbours.row(0).0, &[1]);
        let penalised = train(&tiny(), &ItemKnnParams { popularity_exponent: 1.0, ..Default::default() }).unwrap();
        // sim(c, a) = 1/2 / n_a(2) = 1/4.
        assert!((penalised.similarity(2, 0) - 0.25).abs() < 1e-6);
    }

    #[test]
    fn weights_change_similarities_unless_binary() {
        let mut b = InteractionsBuilder::default();
        b.add("u1", "a", 3.0);
        b.add("u1", "b", 1.0);
        b.add("u2", "a", 1.0);
        b.add("u2", "c", 1.0);
        let data = b.build();
        let weighted = train(&data, &ItemKnnParams { binary: false, ..Default::default() }).unwrap();
        // a = (3,1), b = (1,0), c = (0,1): cos(a,b) = 3/√10, cos(a,c) = 1/√10.
        assert!((weighted.similarity(0, 1) - 3.0 / 10f32.sqrt()).abs() < 1e-6);
        assert!((weighted.similarity(0, 2) - 1.0 / 10f32.sqrt()).abs() < 1e-6);
    }

    #[test]
    fn zero_neighbours_is_refused() {
        let err = train(&tiny(), &ItemKnnParams { neighbours: 0, ..Default::default() }).unwrap_err();
        assert!(err.to_string().contains("itemknn.neighbours"));
    }
}
