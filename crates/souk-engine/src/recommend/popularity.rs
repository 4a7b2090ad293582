//! Popularity: every user gets the same ranking, items ordered by how much they were
//! interacted with. The baseline every other model must beat, and the fallback for users
//! with no history.
//!
//! Owns the popularity model and its parameters; nothing else.

use serde::{Deserialize, Serialize};

use super::artifact::{Array, Artifact};
use super::data::Interactions;
use super::Recommender;
use crate::Result;

/// Parameters of [`train`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PopularityParams {
    /// Count users per item (`true`) instead of summing interaction weights (`false`).
    /// Summed weights let a shop's purchases outweigh its views; user counts resist one
    /// heavy user dominating an item.
    pub binary: bool,
}

impl Default for PopularityParams {
    fn default() -> Self {
        Self { binary: true }
    }
}

/// A trained popularity model: one score per item.
#[derive(Debug, Clone, PartialEq)]
pub struct PopularityModel {
    pub params: PopularityParams,
    /// Score of each item (user count or summed weight).
    pub popularity: Vec<f32>,
}

pub fn train(data: &Interactions, params: &PopularityParams) -> Result<PopularityModel> {
    let mut popularity = vec![0f32; data.n_items()];
    for (&i, &w) in data.indices.iter().zip(&data.values) {
        if let Some(p) = popularity.get_mut(i as usize) {
            *p += if params.binary { 1.0 } else { w };
        }
    }
    Ok(PopularityModel { params: params.clone(), popularity })
}

impl Recommender for PopularityModel {
    fn name(&self) -> &str {
        "popularity"
    }

    fn score(&self, _user: Option<u32>, _history: &[(u32, f32)], scores: &mut [f32]) {
        for (s, p) in scores.iter_mut().zip(&self.popularity) {
            *s = *p;
        }
    }

    fn to_artifact(&self) -> Option<Artifact> {
        let mut params = serde_json::to_value(&self.params).ok()?;
        params["n_items"] = self.popularity.len().into();
        Some(Artifact { name: self.name().into(), params, arrays: vec![Array::F32(self.popularity.clone())] })
    }
}

impl PopularityModel {
    pub fn from_artifact(artifact: Artifact) -> Result<Self> {
        let n_items = artifact.shape("n_items")?;
        let params = artifact.model_params(&["n_items"])?;
        let mut arrays = artifact.arrays.into_iter();
        let popularity = Artifact::f32_array(&mut arrays, "popularity", n_items)?;
        Ok(Self { params, popularity })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recommend::InteractionsBuilder;

    #[test]
    fn orders_by_user_count_or_weight() {
        let mut b = InteractionsBuilder::default();
        b.add("u1", "a", 1.0);
        b.add("u2", "a", 1.0);
        b.add("u1", "b", 10.0);
        b.add_item("c");
        let data = b.build();
        let mut scores = vec![0.0; 3];
        let counts = train(&data, &PopularityParams { binary: true }).unwrap();
        counts.score(None, &[], &mut scores);
        assert_eq!(scores, vec![2.0, 1.0, 0.0]);
        let weights = train(&data, &PopularityParams { binary: false }).unwrap();
        weights.score(Some(0), &[], &mut scores);
        assert_eq!(scores, vec![2.0, 10.0, 0.0]);
    }
}
