//! What the linear and neural learners see of a dense feature row: each feature centred and
//! scaled by its training mean and standard deviation (clipped to ±[`CLIP`]), a flag for a
//! missing value, and for the linear learner the feature's quantile bucket — LambdaMART
//! splits on raw values and needs none of it.
//!
//! Owns: the per-feature statistics, computed once from the training rows and stored with
//! the model, so serving transforms a row exactly as training did.

use crate::recommend::artifact::{corrupt_artifact, Array};
use crate::Result;

/// Scaled values are clipped to this many standard deviations.
pub const CLIP: f32 = 5.0;

/// Per-feature statistics of the training rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Scaler {
    pub means: Vec<f32>,
    /// Standard deviations; 1 for a feature that is constant or never present.
    pub stds: Vec<f32>,
    /// Per feature, the ascending upper edges of its quantile buckets (at most `buckets − 1`
    /// distinct values); a value's bucket is the number of edges below it.
    pub edges: Vec<Vec<f32>>,
}

impl Scaler {
    /// Statistics of `rows` (`n_features` values per row, NaN for missing), with up to
    /// `buckets` quantile buckets per feature.
    pub fn fit(rows: &[f32], n_features: usize, buckets: usize) -> Scaler {
        let n_rows = rows.len() / n_features.max(1);
        let mut means = vec![0.0f32; n_features];
        let mut stds = vec![1.0f32; n_features];
        let mut edges = vec![Vec::new(); n_features];
        let mut values = Vec::with_capacity(n_rows);
        for f in 0..n_features {
            values.clear();
            values.extend((0..n_rows).map(|r| rows[r * n_features + f]).filter(|v| v.is_finite()));
            if values.is_empty() {
                continue;
            }
            let count = values.len() as f64;
            let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / count;
            let variance = values.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / count;
            means[f] = mean as f32;
            if variance > 1e-12 {
                stds[f] = variance.sqrt() as f32;
            }
            values.sort_unstable_by(f32::total_cmp);
            let mut cuts: Vec<f32> = (1..buckets)
                .map(|b| values[(b * values.len() / buckets).min(values.len() - 1)])
                .filter(|&cut| cut < values[values.len() - 1])
                .collect();
            cuts.dedup();
            edges[f] = cuts;
        }
        Scaler { means, stds, edges }
    }

    pub fn n_features(&self) -> usize {
        self.means.len()
    }

    /// Feature `f`'s value centred, scaled and clipped; `None` when missing.
    pub fn scaled(&self, f: usize, value: f32) -> Option<f32> {
        value.is_finite().then(|| ((value - self.means[f]) / self.stds[f]).clamp(-CLIP, CLIP))
    }

    /// Feature `f`'s quantile bucket (0 ..= edges); `None` when missing.
    pub fn bucket(&self, f: usize, value: f32) -> Option<usize> {
        value.is_finite().then(|| self.edges[f].partition_point(|&edge| edge < value))
    }

    /// The network's input for one row: per feature its scaled value (0 when missing) and a
    /// missing flag (1 when missing).
    pub fn inputs(&self, row: &[f32], out: &mut Vec<f32>) {
        for (f, &value) in row.iter().enumerate() {
            match self.scaled(f, value) {
                Some(x) => out.extend([x, 0.0]),
                None => out.extend([0.0, 1.0]),
            }
        }
    }

    /// The statistics as artifact arrays: means, standard deviations, edge count per
    /// feature, every edge.
    pub fn to_arrays(&self) -> Vec<Array> {
        vec![
            Array::F32(self.means.clone()),
            Array::F32(self.stds.clone()),
            Array::U32(self.edges.iter().map(|e| e.len() as u32).collect()),
            Array::F32(self.edges.iter().flatten().copied().collect()),
        ]
    }

    /// Read back [`Self::to_arrays`] for `n_features` features, checking every value.
    pub fn from_arrays(arrays: &mut std::vec::IntoIter<Array>, n_features: usize) -> Result<Scaler> {
        use crate::recommend::artifact::Artifact;
        let means = Artifact::f32_array(arrays, "means", n_features)?;
        let stds = Artifact::f32_array(arrays, "stds", n_features)?;
        let counts = Artifact::u32_array(arrays, "edge counts", n_features)?;
        let total = counts.iter().map(|&c| c as usize).sum();
        let flat = Artifact::f32_array(arrays, "edges", total)?;
        if means.iter().any(|m| !m.is_finite()) || stds.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(corrupt_artifact("scaler: expected finite means and positive standard deviations"));
        }
        let mut edges = Vec::with_capacity(n_features);
        let mut at = 0;
        for &count in &counts {
            let cuts = flat[at..at + count as usize].to_vec();
            if cuts.iter().any(|c| !c.is_finite()) || cuts.windows(2).any(|w| w[0] >= w[1]) {
                return Err(corrupt_artifact("scaler: expected ascending finite bucket edges"));
            }
            edges.push(cuts);
            at += count as usize;
        }
        Ok(Scaler { means, stds, edges })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_buckets_and_missing_values_follow_the_training_rows() {
        // Feature 0: 0..100; feature 1: constant; feature 2: never present.
        let rows: Vec<f32> = (0..100).flat_map(|i| [i as f32, 3.0, f32::NAN]).collect();
        let scaler = Scaler::fit(&rows, 3, 4);
        assert!((scaler.means[0] - 49.5).abs() < 1e-4);
        assert!((scaler.stds[0] - 28.866).abs() < 1e-2);
        assert_eq!((scaler.means[1], scaler.stds[1]), (3.0, 1.0));
        assert_eq!((scaler.means[2], scaler.stds[2]), (0.0, 1.0));
        assert_eq!(scaler.edges[0], vec![25.0, 50.0, 75.0]);
        assert!(scaler.edges[1].is_empty() && scaler.edges[2].is_empty());
        assert_eq!(scaler.bucket(0, 0.0), Some(0));
        assert_eq!(scaler.bucket(0, 25.0), Some(0));
        assert_eq!(scaler.bucket(0, 25.5), Some(1));
        assert_eq!(scaler.bucket(0, 1e9), Some(3));
        assert_eq!(scaler.bucket(0, f32::NAN), None);
        assert_eq!(scaler.scaled(0, 1e9), Some(CLIP));
        assert_eq!(scaler.scaled(1, 3.0), Some(0.0));
        let mut inputs = Vec::new();
        scaler.inputs(&[49.5, 4.0, f32::NAN], &mut inputs);
        assert_eq!(inputs, vec![0.0, 0.0, 1.0, 0.0, 0.0, 1.0]);
        let mut arrays = scaler.to_arrays().into_iter();
        assert_eq!(Scaler::from_arrays(&mut arrays, 3).unwrap(), scaler);
    }
}
