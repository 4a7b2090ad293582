//! Small sampling helpers the generator needs and `rand` 0.8 lacks without `rand_distr`:
//! Walker/Vose alias tables, normal, log-normal and Gumbel draws.
//!
//! Everything takes the RNG explicitly so that the generator stays deterministic.

use rand::Rng;

/// O(1) sampling from a fixed discrete distribution (Vose's alias method). Costs 8 bytes
/// per outcome.
#[derive(Debug, Clone)]
pub struct AliasTable {
    probability: Vec<f32>,
    alias: Vec<u32>,
}

impl AliasTable {
    /// A table for `weights` (non-negative, finite). `None` when there is no outcome with a
    /// positive weight.
    pub fn new(weights: &[f64]) -> Option<Self> {
        let total: f64 = weights.iter().filter(|w| w.is_finite() && **w > 0.0).sum();
        if weights.is_empty() || total <= 0.0 || u32::try_from(weights.len()).is_err() {
            return None;
        }
        let n = weights.len();
        let mut scaled: Vec<f64> =
            weights.iter().map(|&w| if w.is_finite() && w > 0.0 { w * n as f64 / total } else { 0.0 }).collect();
        let mut alias = vec![0u32; n];
        let mut probability = vec![1.0f32; n];
        let (mut small, mut large): (Vec<u32>, Vec<u32>) = (0..n as u32).partition(|&i| scaled[i as usize] < 1.0);
        while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
            small.pop();
            probability[s as usize] = scaled[s as usize] as f32;
            alias[s as usize] = l;
            scaled[l as usize] -= 1.0 - scaled[s as usize];
            if scaled[l as usize] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        // Leftovers (from rounding) keep probability 1 and alias to themselves.
        for i in small.into_iter().chain(large) {
            probability[i as usize] = 1.0;
            alias[i as usize] = i;
        }
        Some(Self { probability, alias })
    }

    pub fn len(&self) -> usize {
        self.alias.len()
    }

    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        let column = rng.gen_range(0..self.alias.len());
        if rng.gen::<f32>() < self.probability[column] {
            column
        } else {
            self.alias[column] as usize
        }
    }
}

/// A standard normal draw (Box–Muller; one of the pair is discarded for simplicity).
pub fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    // 1 - U is in (0, 1], so the logarithm is finite.
    let u1 = 1.0 - rng.gen::<f64>();
    let u2 = rng.gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// exp(N(mu, sigma²)).
pub fn log_normal<R: Rng + ?Sized>(rng: &mut R, mu: f64, sigma: f64) -> f64 {
    (mu + sigma * standard_normal(rng)).exp()
}

/// A standard Gumbel draw: adding it to utilities and taking the arg-max samples from the
/// softmax of the utilities (the Gumbel-max trick).
pub fn gumbel<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    let u = rng.gen::<f64>().max(f64::MIN_POSITIVE);
    -(-u.ln()).ln()
}

pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Index drawn with probability proportional to `weights` by a linear scan; for the short
/// tables (categories, colours) where an alias table is not worth it.
pub fn weighted_index<R: Rng + ?Sized>(rng: &mut R, weights: impl Iterator<Item = f64> + Clone) -> usize {
    let total: f64 = weights.clone().sum();
    let mut target = rng.gen::<f64>() * total;
    let mut last = 0;
    for (index, weight) in weights.enumerate() {
        if target < weight {
            return index;
        }
        target -= weight;
        if weight > 0.0 {
            // Rounding can leave `target` just above the total; fall back to the last
            // outcome that can actually occur.
            last = index;
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn alias_table_matches_its_weights() {
        let weights = [1.0, 0.0, 3.0, 6.0];
        let table = AliasTable::new(&weights).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut counts = [0usize; 4];
        let draws = 200_000;
        for _ in 0..draws {
            counts[table.sample(&mut rng)] += 1;
        }
        assert_eq!(counts[1], 0, "zero weight is never drawn");
        for (count, weight) in counts.iter().zip(weights) {
            let expected = weight / 10.0;
            let observed = *count as f64 / draws as f64;
            assert!((observed - expected).abs() < 0.01, "{observed} vs {expected}");
        }
        assert!(AliasTable::new(&[]).is_none());
        assert!(AliasTable::new(&[0.0, 0.0]).is_none());
    }

    #[test]
    fn normal_and_gumbel_have_the_right_moments() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let n = 100_000;
        let normals: Vec<f64> = (0..n).map(|_| standard_normal(&mut rng)).collect();
        let mean = normals.iter().sum::<f64>() / n as f64;
        let variance = normals.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.02 && (variance - 1.0).abs() < 0.03, "{mean} {variance}");
        // The Gumbel mean is the Euler–Mascheroni constant.
        let gumbel_mean = (0..n).map(|_| gumbel(&mut rng)).sum::<f64>() / n as f64;
        assert!((gumbel_mean - 0.5772).abs() < 0.02, "{gumbel_mean}");
        assert!((0..1000).all(|_| log_normal(&mut rng, 0.0, 1.0) > 0.0));
    }

    #[test]
    fn weighted_index_skips_zero_weights() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..1000 {
            let index = weighted_index(&mut rng, [0.0, 2.0, 0.0, 1.0].into_iter());
            assert!(index == 1 || index == 3);
        }
    }
}
