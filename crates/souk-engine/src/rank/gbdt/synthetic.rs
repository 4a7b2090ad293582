//! Seeded synthetic problems with known structure, for the tests, the LightGBM comparison
//! (`examples/gbdt_vs_lightgbm.rs`) and anyone checking a learner by hand.
//!
//! [`ranking_problem`]: groups of candidates with 12 features and graded relevance 0–4 that
//! depends on 5 of them through a threshold, a product, a flip by a group-level context, a
//! bump at one value of a small-integer feature and a missing-or-high indicator, plus noise.
//! A linear model of the raw features can use little of it; the best single feature orders
//! groups only somewhat better than chance.
//!
//! [`xor_problem`]: two features whose signs' XOR is the label (5% flipped), plus four noise
//! features — no linear model beats chance on it.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::dataset::Dataset;

/// The features of [`ranking_problem`], in order.
pub const RANKING_FEATURES: [&str; 12] = [
    "threshold",
    "flipped_by_context",
    "noise_uniform_a",
    "noise_uniform_b",
    "product_a",
    "product_b",
    "noise_normal_a",
    "noise_normal_b",
    "small_integer",
    "missing_or_high",
    "group_context",
    "noisy_copy_of_threshold",
];

/// The features relevance depends on; the other five are noise (one of them a noisy copy of
/// `threshold`).
pub const RELEVANT_RANKING_FEATURES: [&str; 7] =
    ["threshold", "flipped_by_context", "product_a", "product_b", "small_integer", "missing_or_high", "group_context"];

fn normal(rng: &mut ChaCha8Rng) -> f32 {
    // Box–Muller; 1 − u keeps the logarithm finite.
    let (u, v): (f64, f64) = (rng.gen(), rng.gen());
    ((-2.0 * (1.0 - u).ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
}

/// `groups` groups of `group_size` rows (see the module docs); the same seed gives the
/// same data.
pub fn ranking_problem(groups: usize, group_size: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = groups * group_size;
    let mut rows = Vec::with_capacity(n * RANKING_FEATURES.len());
    let mut labels = Vec::with_capacity(n);
    for _ in 0..groups {
        let context: f32 = rng.gen();
        for _ in 0..group_size {
            let x: [f32; 4] = [rng.gen(), rng.gen(), rng.gen(), rng.gen()];
            let z = [normal(&mut rng), normal(&mut rng), normal(&mut rng), normal(&mut rng)];
            let small_integer = rng.gen_range(0..5u8) as f32;
            let missing_or_high = if rng.gen_bool(0.15) { f32::NAN } else { rng.gen() };
            let noisy_copy = x[0] + 0.25 * normal(&mut rng);
            let mut latent = 0.0f32;
            latent += if x[0] > 0.65 { 1.4 } else { 0.0 };
            latent += z[0] * z[1];
            latent += 1.6 * if context > 0.5 { x[1] } else { 1.0 - x[1] };
            latent += if small_integer == 2.0 { 0.9 } else { 0.0 };
            latent += if missing_or_high.is_nan() || missing_or_high > 0.8 { 0.7 } else { 0.0 };
            latent += 0.5 * normal(&mut rng);
            let label = [1.7, 2.3, 3.0, 3.7].iter().filter(|&&t| latent >= t).count() as f32;
            rows.extend_from_slice(&[
                x[0],
                x[1],
                x[2],
                x[3],
                z[0],
                z[1],
                z[2],
                z[3],
                small_integer,
                missing_or_high,
                context,
                noisy_copy,
            ]);
            labels.push(label);
        }
    }
    let names = RANKING_FEATURES.iter().map(|s| s.to_string()).collect();
    let offsets = (0..=groups).map(|q| (q * group_size) as u32).collect();
    Dataset::new(names, rows, labels).and_then(|d| d.with_groups(offsets)).unwrap_or_else(|e| {
        // The generator builds consistent lengths and labels; this is unreachable.
        panic!("synthetic ranking problem is inconsistent: {e}")
    })
}

/// `rows` rows of the XOR problem (see the module docs), one group.
pub fn xor_problem(rows: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut values = Vec::with_capacity(rows * 6);
    let mut labels = Vec::with_capacity(rows);
    for _ in 0..rows {
        let x: [f32; 6] = std::array::from_fn(|_| rng.gen_range(-1.0..1.0));
        let xor = (x[0] > 0.0) != (x[1] > 0.0);
        labels.push(if xor != rng.gen_bool(0.05) { 1.0 } else { 0.0 });
        values.extend_from_slice(&x);
    }
    let names = ["a", "b", "noise_1", "noise_2", "noise_3", "noise_4"].map(String::from).to_vec();
    Dataset::new(names, values, labels).unwrap_or_else(|e| panic!("synthetic xor problem is inconsistent: {e}"))
}
