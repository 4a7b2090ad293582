//! RP3beta (Paudel, Christoffel, Newell & Bernstein 2017, "Updatable, accurate, diverse,
//! and scalable recommendations for interactive applications"): item-to-item transition
//! probabilities of a three-step random walk user → item → user → item, with the
//! destination's popularity divided out (`β`) to lift the long tail.
//!
//! Owns the random-walk weights, their top-k sparsification and scoring; the co-occurrence
//! pass is shared with item-kNN ([`Neighbours::top_k`]).

use serde::{Deserialize, Serialize};

use super::artifact::Artifact;
use super::data::Interactions;
use super::kernels::{check_range, invalid, map_rows, map_values, Neighbours};
use super::Recommender;
use crate::Result;

/// Parameters of [`train`]. Tuning grid used by the registry: `alpha ∈ {0.5, 1}` ×
/// `beta ∈ {0.2, 0.4, 0.6, 0.8}` with 200 neighbours (MovieLens-100K prefers β ≈ 0.6–0.8,
/// LastFM β ≈ 0.2–0.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rp3betaParams {
    /// Neighbours kept per item. At least 1.
    pub neighbours: usize,
    /// `α`: every transition probability is raised to this power before the walk
    /// (P3alpha, Cooper et al. 2014). In [0, 4].
    pub alpha: f32,
    /// `β`: the walk's arrival probability at item `j` is divided by `deg(j)^β`. In [0, 2].
    pub beta: f32,
    /// Rescale each item's kept neighbour weights to sum to 1.
    pub normalise: bool,
    /// Treat every interaction as 1 instead of its weight.
    pub binary: bool,
}

impl Default for Rp3betaParams {
    fn default() -> Self {
        Self { neighbours: 200, alpha: 1.0, beta: 0.4, normalise: false, binary: true }
    }
}

impl Rp3betaParams {
    pub fn validate(&self) -> Result<()> {
        if self.neighbours == 0 {
            return Err(invalid("rp3beta.neighbours", "expected at least 1, found 0"));
        }
        check_range("rp3beta.alpha", self.alpha, 0.0, 4.0)?;
        check_range("rp3beta.beta", self.beta, 0.0, 2.0)
    }
}

/// A trained RP3beta model: the top-k walk weights of every item.
#[derive(Debug, Clone, PartialEq)]
pub struct Rp3betaModel {
    pub params: Rp3betaParams,
    pub(crate) neighbours: Neighbours,
}

pub fn train(data: &Interactions, params: &Rp3betaParams) -> Result<Rp3betaModel> {
    params.validate()?;
    let binary = params.binary;
    let user_major = map_values(data, |w| if binary { 1.0 } else { w });
    let item_major = user_major.transpose();
    let degree = |m: &Interactions, r: usize| m.row(r).1.iter().sum::<f32>();
    let user_degree: Vec<f32> = (0..data.n_users()).map(|u| degree(&user_major, u)).collect();
    let item_degree: Vec<f32> = (0..data.n_items()).map(|i| degree(&item_major, i)).collect();
    let alpha = params.alpha;
    // P_ui = r_ui / deg(u) and P_iu = r_ui / deg(i), each raised to α (Paudel et al. §3).
    let user_to_item = map_rows(&user_major, |u, w| (w / user_degree[u]).powf(alpha));
    let item_to_user = map_rows(&item_major, |i, w| (w / item_degree[i]).powf(alpha));
    let penalty: Vec<f32> = item_degree.iter().map(|&d| if d > 0.0 { d.powf(params.beta) } else { 1.0 }).collect();
    let mut neighbours =
        Neighbours::top_k(&item_to_user, &user_to_item, params.neighbours, |_, j, walk| walk / penalty[j]);
    if params.normalise {
        neighbours.normalise_rows();
    }
    Ok(Rp3betaModel { params: params.clone(), neighbours })
}

impl Rp3betaModel {
    pub fn from_artifact(artifact: Artifact) -> Result<Self> {
        let (params, neighbours) = Neighbours::from_artifact(artifact)?;
        Ok(Self { params, neighbours })
    }
}

impl Recommender for Rp3betaModel {
    fn name(&self) -> &str {
        "rp3beta"
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

    #[test]
    fn walk_probabilities_by_hand() {
        // u1: a b; u2: a c; u3: c. From a: to u1 or u2 (½ each); u1 → b (½), u2 → c (½).
        // W_ab = ½·½ = ¼; W_ac = ¼. deg(b) = 1, deg(c) = 2: with β = 1, W_ac = ⅛.
        let mut b = InteractionsBuilder::default();
        for (u, i) in [("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "c"), ("u3", "c")] {
            b.add(u, i, 1.0);
        }
        let data = b.build();
        let plain = train(&data, &Rp3betaParams { beta: 0.0, ..Default::default() }).unwrap();
        assert_eq!(plain.neighbours.row(0), (&[1u32, 2][..], &[0.25f32, 0.25][..]));
        let penalised = train(&data, &Rp3betaParams { beta: 1.0, ..Default::default() }).unwrap();
        assert_eq!(penalised.neighbours.row(0), (&[1u32, 2][..], &[0.25f32, 0.125][..]));
        let normalised = train(&data, &Rp3betaParams { beta: 1.0, normalise: true, ..Default::default() }).unwrap();
        let (_, w) = normalised.neighbours.row(0);
        assert!((w[0] - 2.0 / 3.0).abs() < 1e-6 && (w[1] - 1.0 / 3.0).abs() < 1e-6);
        let mut scores = vec![0.0; 3];
        penalised.score(None, &[(0, 9.0)], &mut scores);
        assert_eq!(scores, vec![0.0, 0.25, 0.125]);
    }
}
