//! Feature values to small integers: quantile bins found once per feature, then a `u8` bin
//! matrix that training reads instead of the floats.
//!
//! Bin 0 holds the missing values (NaN); bins `1..=k` hold the rest, bin `b` the values in
//! `(upper[b - 2], upper[b - 1]]`, the last upper bound being +infinity. So a split "bin ≤ s"
//! is the same as "value ≤ upper[s - 1]", which is how a tree stores it: training on bins and
//! predicting on raw floats route every row the same way (a tested invariant).
//!
//! Edges follow the values' distribution (LightGBM's greedy binning, simplified): when a
//! feature has at most `max_bins` distinct values each gets its own bin, with the bound half
//! way to the next; otherwise bins are filled greedily to about `rows / max_bins` values each,
//! and a value frequent enough to fill a bin alone gets one. Edges come from a seeded sample
//! of rows when the data is large.
//!
//! Cost: finding edges sorts the sample per feature (O(s log s)); binning is one binary
//! search over at most 255 bounds per value (8 comparisons). The matrix is column-major,
//! one byte per value: 60 MB for 10^6 rows of 60 features.

use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::dataset::Dataset;

/// Bins per feature, missing bin included: a `u8` bin index.
pub(crate) const BINS: usize = 256;

/// The bin bounds of one feature.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BinMapper {
    /// Upper bounds of bins `1..=k`, increasing; the last is +infinity.
    upper: Vec<f32>,
}

impl BinMapper {
    /// Bounds for `values` (NaN ignored) with at most `max_bins` value bins (≤ 255).
    pub(crate) fn from_values(values: &[f32], max_bins: usize) -> Self {
        let max_bins = max_bins.clamp(1, BINS - 1);
        let mut distinct: Vec<(f32, usize)> = Vec::new();
        let mut present: Vec<f32> = values.iter().copied().filter(|v| !v.is_nan()).collect();
        present.sort_unstable_by(f32::total_cmp);
        for v in present {
            match distinct.last_mut() {
                // -0.0 and 0.0 compare equal and must share a bin.
                Some((last, count)) if *last == v => *count += 1,
                _ => distinct.push((v, 1)),
            }
        }
        let mut upper = Vec::new();
        if distinct.len() <= max_bins {
            for pair in distinct.windows(2) {
                upper.push(between(pair[0].0, pair[1].0));
            }
        } else {
            let mut remaining: usize = distinct.iter().map(|(_, c)| c).sum();
            let mut remaining_bins = max_bins;
            let mut filled = 0usize;
            for i in 0..distinct.len() - 1 {
                filled += distinct[i].1;
                let target = remaining as f64 / remaining_bins as f64;
                let next_is_heavy = distinct[i + 1].1 as f64 >= target;
                if remaining_bins > 1 && (filled as f64 >= target || next_is_heavy) {
                    upper.push(between(distinct[i].0, distinct[i + 1].0));
                    remaining -= filled;
                    remaining_bins -= 1;
                    filled = 0;
                }
            }
        }
        upper.push(f32::INFINITY);
        Self { upper }
    }

    /// Value bins (`k`); the missing bin is extra.
    pub(crate) fn value_bins(&self) -> usize {
        self.upper.len()
    }

    /// The bin of a value: 0 for NaN, else `1..=k`.
    pub(crate) fn bin(&self, value: f32) -> u8 {
        if value.is_nan() {
            return 0;
        }
        (1 + self.upper.partition_point(|&u| u < value)) as u8
    }

    /// The float threshold of the split "bin ≤ `bin`" (`1 ≤ bin ≤ k`).
    pub(crate) fn threshold(&self, bin: usize) -> f32 {
        self.upper[bin - 1]
    }
}

/// A bound strictly between `low` and `high` (`low < high`), as close to half way as f32
/// allows; `low` itself when nothing lies between.
fn between(low: f32, high: f32) -> f32 {
    let middle = ((f64::from(low) + f64::from(high)) / 2.0) as f32;
    if middle >= low && middle < high {
        middle
    } else {
        low
    }
}

/// A dataset as bins: what the tree learner reads.
#[derive(Debug)]
pub(crate) struct BinnedData {
    pub(crate) mappers: Vec<BinMapper>,
    /// Column-major: feature `f` is `bins[f * n_rows..(f + 1) * n_rows]`.
    bins: Vec<u8>,
    n_rows: usize,
}

impl BinnedData {
    /// Find each feature's bins on at most `sample_rows` rows (a seeded sample) and bin
    /// every row.
    pub(crate) fn new(data: &Dataset, max_bins: usize, sample_rows: usize, seed: u64) -> Self {
        let (n_rows, n_features) = (data.n_rows(), data.n_features());
        let sampled: Vec<usize> = if n_rows > sample_rows {
            let mut rows = sample(&mut ChaCha8Rng::seed_from_u64(seed), n_rows, sample_rows).into_vec();
            rows.sort_unstable();
            rows
        } else {
            (0..n_rows).collect()
        };
        let mappers: Vec<BinMapper> = (0..n_features)
            .into_par_iter()
            .map(|f| {
                let values: Vec<f32> = sampled.iter().map(|&r| data.rows()[r * n_features + f]).collect();
                BinMapper::from_values(&values, max_bins)
            })
            .collect();
        let mut bins = vec![0u8; n_rows * n_features];
        if n_rows > 0 {
            bins.par_chunks_mut(n_rows).zip(&mappers).enumerate().for_each(|(f, (column, mapper))| {
                for (r, bin) in column.iter_mut().enumerate() {
                    *bin = mapper.bin(data.rows()[r * n_features + f]);
                }
            });
        }
        Self { mappers, bins, n_rows }
    }

    pub(crate) fn column(&self, feature: usize) -> &[u8] {
        &self.bins[feature * self.n_rows..(feature + 1) * self.n_rows]
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn few_distinct_values_get_one_bin_each() {
        let mapper = BinMapper::from_values(&[3.0, 1.0, f32::NAN, 2.0, 1.0, 3.0], 255);
        assert_eq!(mapper.upper, [1.5, 2.5, f32::INFINITY]);
        assert_eq!([1.0, 2.0, 3.0, f32::NAN, 100.0, -5.0].map(|v| mapper.bin(v)), [1, 2, 3, 0, 3, 1]);
        // A constant feature has one value bin; an all-missing one too.
        assert_eq!(BinMapper::from_values(&[7.0; 4], 255).value_bins(), 1);
        assert_eq!(BinMapper::from_values(&[f32::NAN; 4], 255).value_bins(), 1);
        assert_eq!(BinMapper::from_values(&[-0.0, 0.0], 255).value_bins(), 1);
    }

    #[test]
    fn many_values_get_quantile_bins_and_heavy_values_their_own() {
        // 1,000 distinct values into 10 bins: about 100 values each.
        let values: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        let mapper = BinMapper::from_values(&values, 10);
        assert_eq!(mapper.value_bins(), 10);
        let mut counts = [0usize; BINS];
        for v in &values {
            counts[mapper.bin(*v) as usize] += 1;
        }
        assert!(counts[1..=10].iter().all(|&c| (90..=110).contains(&c)), "{:?}", &counts[..11]);
        // Half the values are 0: they fill one bin alone.
        let skewed: Vec<f32> = (0..1000).map(|i| if i % 2 == 0 { 0.0 } else { i as f32 }).collect();
        let mapper = BinMapper::from_values(&skewed, 10);
        assert_eq!(mapper.bin(0.0), 1);
        assert_eq!(mapper.bin(1.0), 2, "zero shares its bin with nothing: {:?}", mapper.upper);
    }

    #[test]
    fn between_stays_strictly_between() {
        let next = f32::from_bits(1.0f32.to_bits() + 1);
        assert_eq!(between(1.0, next), 1.0);
        assert_eq!(between(1.0, 3.0), 2.0);
        assert_eq!(between(1.0, f32::INFINITY), 1.0);
        assert_eq!(between(f32::NEG_INFINITY, 0.0), f32::NEG_INFINITY);
    }

    #[test]
    fn the_matrix_is_column_major_and_sampling_is_seeded() {
        let names = vec!["a".to_string(), "b".to_string()];
        let rows: Vec<f32> = (0..200).flat_map(|i| [i as f32, -(i as f32)]).collect();
        let data = Dataset::new(names, rows, vec![0.0; 200]).unwrap();
        let binned = BinnedData::new(&data, 255, 50, 7);
        assert_eq!(binned.column(0)[199], binned.mappers[0].bin(199.0));
        assert_eq!(binned.column(1)[199], 1, "the smallest value of b is in its first bin");
        assert_eq!(binned.mappers, BinnedData::new(&data, 255, 50, 7).mappers);
        assert_ne!(binned.mappers, BinnedData::new(&data, 255, 50, 8).mappers);
    }

    proptest! {
        #[test]
        fn bins_and_thresholds_agree(
            values in proptest::collection::vec(prop_oneof![any::<f32>(), (-3i32..3).prop_map(|v| v as f32)], 1..300),
            max_bins in 2usize..40,
            probes in proptest::collection::vec(any::<f32>(), 1..50),
        ) {
            let mapper = BinMapper::from_values(&values, max_bins);
            prop_assert!(mapper.value_bins() <= max_bins);
            prop_assert!(mapper.upper.windows(2).all(|w| w[0] < w[1]), "{:?}", mapper.upper);
            for v in values.iter().chain(&probes) {
                let bin = mapper.bin(*v) as usize;
                prop_assert!(bin <= mapper.value_bins());
                prop_assert_eq!(bin == 0, v.is_nan());
                for split in 1..=mapper.value_bins() {
                    // "bin ≤ split" is "value ≤ threshold": the invariant prediction relies on.
                    prop_assert_eq!(bin != 0 && bin <= split, *v <= mapper.threshold(split));
                }
            }
        }
    }
}
