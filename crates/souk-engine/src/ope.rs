//! Off-policy evaluation: the value a target policy would have had on logged traffic that
//! another policy (the logging policy) served, from the log alone.
//!
//! Each logged round `i` is one action `aᵢ` shown in one context `xᵢ` (for a slate, one slot
//! of it, the slot part of the context) with its reward `rᵢ`, the logging policy's probability
//! `π₀(aᵢ|xᵢ)` of having shown it, the target policy's probability `π(aᵢ|xᵢ)`, and, for the
//! model-based estimators, a reward model `q̂`: its prediction `q̂(xᵢ, aᵢ)` for the logged
//! action and its expectation under the target policy, `q̂(xᵢ, π) = Σₐ π(a|xᵢ)·q̂(xᵢ, a)`.
//! With the importance weight `wᵢ = π(aᵢ|xᵢ) / π₀(aᵢ|xᵢ)`:
//!
//! * IPW (Horvitz–Thompson; Strehl et al. 2010): `V̂ = (1/n)·Σ wᵢ·rᵢ`.
//! * SNIPW (Swaminathan & Joachims 2015): `V̂ = Σ wᵢ·rᵢ / Σ wᵢ` — IPW divided by the mean
//!   weight, bounded by the rewards, invariant to a common scale of the weights.
//! * DM (direct method): `V̂ = (1/n)·Σ q̂(xᵢ, π)`.
//! * DR (doubly robust; Dudík, Langford & Li 2011): `V̂ = (1/n)·Σ [q̂(xᵢ, π) + wᵢ·(rᵢ − q̂(xᵢ, aᵢ))]`.
//!
//! These are the round-level forms of obp's (Open Bandit Pipeline 0.5.7, `obp/ope/estimators.py`)
//! `InverseProbabilityWeighting`, `SelfNormalizedInverseProbabilityWeighting`, `DirectMethod`
//! and `DoublyRobust` without weight clipping; for slates obp, like this module, treats each
//! (round, slot) as one round with the slot as part of the context. One difference: obp's DM
//! and DR take `np.average(q̂, weights=π)`, which divides by `Σₐ π(a|x)`; here a target policy
//! whose probabilities sum to less than 1 shows nothing with the rest (reward 0), so the sum is
//! not divided. The two agree when the probabilities sum to 1.
//!
//! Intervals are percentile bootstraps over rounds (seeded; resample `b` draws from its own
//! ChaCha stream, so the result does not depend on the thread count), with the percentile
//! interpolated linearly between order statistics as numpy's default. Each resample recomputes
//! the estimator — SNIPW's normaliser included (obp resamples SNIPW's already normalised round
//! rewards instead). The reward model is held fixed: the interval is the sampling spread of
//! the rounds, not of fitting `q̂`.
//!
//! Pure functions: no dependencies inside the engine, no IO. Cost: one pass over the rounds
//! per estimate; a bootstrap is `resamples × n` draws, spread over threads.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// One logged round as the estimators see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoggedRound {
    /// The observed reward `rᵢ` (a click: 0 or 1).
    pub reward: f64,
    /// The logging policy's probability of the logged action, `π₀(aᵢ|xᵢ)`, in (0, 1].
    pub logging_probability: f64,
    /// The target policy's probability of the logged action, `π(aᵢ|xᵢ)`, in [0, 1].
    pub target_probability: f64,
    /// The reward model's prediction for the logged action, `q̂(xᵢ, aᵢ)`.
    pub model_reward: f64,
    /// The reward model's expectation under the target policy, `Σₐ π(a|xᵢ)·q̂(xᵢ, a)`.
    pub model_value: f64,
}

impl LoggedRound {
    /// The importance weight `π(aᵢ|xᵢ) / π₀(aᵢ|xᵢ)`.
    pub fn weight(&self) -> f64 {
        self.target_probability / self.logging_probability
    }
}

/// The estimators, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Estimator {
    Ipw,
    Snipw,
    Dm,
    Dr,
}

impl Estimator {
    pub const ALL: [Estimator; 4] = [Estimator::Ipw, Estimator::Snipw, Estimator::Dm, Estimator::Dr];

    pub fn name(self) -> &'static str {
        match self {
            Estimator::Ipw => "ipw",
            Estimator::Snipw => "snipw",
            Estimator::Dm => "dm",
            Estimator::Dr => "dr",
        }
    }
}

/// The sums every estimator is a ratio of; one pass over (a resample of) the rounds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Sums {
    rounds: f64,
    weighted_reward: f64,
    weight: f64,
    model_value: f64,
    doubly_robust: f64,
}

impl Sums {
    fn add(&mut self, round: &LoggedRound) {
        let w = round.weight();
        self.rounds += 1.0;
        self.weighted_reward += w * round.reward;
        self.weight += w;
        self.model_value += round.model_value;
        self.doubly_robust += round.model_value + w * (round.reward - round.model_reward);
    }

    fn of(rounds: &[LoggedRound]) -> Self {
        let mut sums = Self::default();
        for round in rounds {
            sums.add(round);
        }
        sums
    }

    /// The estimate, or `None` when it is undefined (no rounds; SNIPW with all weights 0).
    fn estimate(&self, estimator: Estimator) -> Option<f64> {
        if self.rounds == 0.0 {
            return None;
        }
        match estimator {
            Estimator::Ipw => Some(self.weighted_reward / self.rounds),
            Estimator::Snipw => (self.weight > 0.0).then(|| self.weighted_reward / self.weight),
            Estimator::Dm => Some(self.model_value / self.rounds),
            Estimator::Dr => Some(self.doubly_robust / self.rounds),
        }
    }
}

/// The estimate of the target policy's value, or `None` when it is undefined: no rounds, or
/// SNIPW when the target policy gives every logged action probability 0.
pub fn estimate(estimator: Estimator, rounds: &[LoggedRound]) -> Option<f64> {
    Sums::of(rounds).estimate(estimator)
}

/// The effective sample size of the importance weights, `(Σ wᵢ)² / Σ wᵢ²` (Kish): how many
/// rounds of on-policy data the weighted log is worth. `None` when every weight is 0.
pub fn effective_sample_size(rounds: &[LoggedRound]) -> Option<f64> {
    let (sum, squares) = rounds.iter().map(LoggedRound::weight).fold((0.0, 0.0), |(s, q), w| (s + w, q + w * w));
    (squares > 0.0).then(|| sum * sum / squares)
}

/// The `q`-quantile (0..=1) of sorted values, interpolated linearly between order statistics
/// (numpy's default `percentile`). `None` for no values.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let position = q.clamp(0.0, 1.0) * last as f64;
    let below = position.floor() as usize;
    let above = (below + 1).min(last);
    let fraction = position - below as f64;
    Some(sorted[below] + (sorted[above] - sorted[below]) * fraction)
}

/// Settings of the bootstrap intervals.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BootstrapConfig {
    /// Resamples of the rounds (0: no intervals).
    pub resamples: usize,
    /// Coverage of the interval, e.g. 0.95.
    pub confidence: f64,
    pub seed: u64,
}

/// One estimator's value and percentile-bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PolicyEstimate {
    pub estimator: Estimator,
    /// `None` (JSON null) when the estimator is undefined on these rounds.
    pub value: Option<f64>,
    /// `None` without resamples, or when no resample defines the estimator.
    pub ci: Option<[f64; 2]>,
}

/// Every estimator's value and interval on `rounds`, in [`Estimator::ALL`] order.
pub fn estimate_all(rounds: &[LoggedRound], bootstrap: &BootstrapConfig) -> Vec<PolicyEstimate> {
    let sums = Sums::of(rounds);
    let resampled: Vec<Sums> = if rounds.is_empty() {
        Vec::new()
    } else {
        (0..bootstrap.resamples)
            .into_par_iter()
            .map(|resample| {
                let mut rng = ChaCha8Rng::seed_from_u64(bootstrap.seed);
                rng.set_stream(resample as u64);
                let mut sums = Sums::default();
                for _ in 0..rounds.len() {
                    sums.add(&rounds[rng.gen_range(0..rounds.len())]);
                }
                sums
            })
            .collect()
    };
    let tail = (1.0 - bootstrap.confidence) / 2.0;
    Estimator::ALL
        .into_iter()
        .map(|estimator| {
            let mut values: Vec<f64> = resampled.iter().filter_map(|s| s.estimate(estimator)).collect();
            values.sort_by(f64::total_cmp);
            let ci = quantile(&values, tail).zip(quantile(&values, 1.0 - tail)).map(|(lo, hi)| [lo, hi]);
            PolicyEstimate { estimator, value: sums.estimate(estimator), ci }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn round(reward: f64, logging: f64, target: f64, model_reward: f64, model_value: f64) -> LoggedRound {
        LoggedRound { reward, logging_probability: logging, target_probability: target, model_reward, model_value }
    }

    /// Rewards, propensities, target probabilities and reward-model predictions of 12 rounds
    /// of a 3-action, 2-slot log, as printed by `bench/ope_reference.py`, which computed the
    /// expected values below with obp 0.5.7's estimators on the same input.
    fn reference_rounds() -> Vec<LoggedRound> {
        let reward = [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
        let pscore = [
            0.8734926156171888,
            0.219333706458682,
            0.1375171515979952,
            0.4763609172902833,
            0.6460619865383396,
            0.8035065273510372,
            0.6463362977462811,
            0.516229298746805,
            0.4736044468138648,
            0.3059204800876253,
            0.5064226245598669,
            0.5595758340911986,
        ];
        let target = [
            0.15423529197753486,
            0.3019590957604422,
            0.0,
            0.17435405522818914,
            0.4666592293216418,
            0.23882870979783716,
            0.09060186385770755,
            0.0,
            0.6550785473246323,
            0.5109430215046521,
            0.27992774121565334,
            0.3374661370683139,
        ];
        let q_factual = [
            0.4137771020786348,
            0.4175631783685051,
            0.14880661733202133,
            0.279814019716395,
            0.2952141788147712,
            0.13915431052816873,
            0.3895262410796736,
            0.09984629561847126,
            0.5593235744919435,
            0.5160759606564919,
            0.3270271316033156,
            0.5235316149291155,
        ];
        let q_policy = [
            0.3582594058063614,
            0.1683055274778551,
            0.5302902441308435,
            0.29036916272493773,
            0.37373708843919307,
            0.37777818516864525,
            0.47743165643111046,
            0.39995986608625794,
            0.4480225793442304,
            0.5081264077918595,
            0.36639600987164045,
            0.42004650699745594,
        ];
        (0..12).map(|i| round(reward[i], pscore[i], target[i], q_factual[i], q_policy[i])).collect()
    }

    #[test]
    fn equals_obp_on_identical_inputs() {
        let rounds = reference_rounds();
        // Written by bench/ope_reference.py with obp 0.5.7.
        let expected = [
            (Estimator::Ipw, 0.09722824603833445),
            (Estimator::Snipw, 0.16008581220169507),
            (Estimator::Dm, 0.3932268866891992),
            (Estimator::Dr, 0.22448668778783998),
        ];
        for (estimator, value) in expected {
            let found = estimate(estimator, &rounds).unwrap();
            assert!((found - value).abs() < 1e-12, "{estimator:?}: {found} vs obp {value}");
        }
    }

    #[test]
    fn quantile_interpolates_like_numpy() {
        let values = [1.0, 2.0, 4.0, 8.0];
        // numpy.percentile([1, 2, 4, 8], [0, 2.5, 50, 97.5, 100]) = 1, 1.075, 3, 7.7, 8
        for (q, expected) in [(0.0, 1.0), (0.025, 1.075), (0.5, 3.0), (0.975, 7.7), (1.0, 8.0)] {
            assert!((quantile(&values, q).unwrap() - expected).abs() < 1e-12, "{q}");
        }
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[3.0], 0.9), Some(3.0));
    }

    #[test]
    fn undefined_estimates_are_none() {
        assert_eq!(estimate(Estimator::Ipw, &[]), None);
        let rounds = [round(1.0, 0.5, 0.0, 0.2, 0.3)];
        assert_eq!(estimate(Estimator::Snipw, &rounds), None);
        assert_eq!(estimate(Estimator::Ipw, &rounds), Some(0.0));
        assert_eq!(effective_sample_size(&rounds), None);
        let report = estimate_all(&[], &BootstrapConfig { resamples: 10, confidence: 0.95, seed: 1 });
        assert!(report.iter().all(|e| e.value.is_none() && e.ci.is_none()));
    }

    #[test]
    fn bootstrap_is_seeded_and_covers_the_estimate() {
        let rounds = reference_rounds();
        let config = BootstrapConfig { resamples: 400, confidence: 0.95, seed: 7 };
        let first = estimate_all(&rounds, &config);
        assert_eq!(first, estimate_all(&rounds, &config), "same seed, same intervals");
        let other = estimate_all(&rounds, &BootstrapConfig { seed: 8, ..config });
        assert_ne!(first, other, "another seed draws other resamples");
        for e in &first {
            let [lo, hi] = e.ci.unwrap();
            let value = e.value.unwrap();
            assert!(lo < value && value < hi, "{e:?}");
        }
        let none = estimate_all(&rounds, &BootstrapConfig { resamples: 0, ..config });
        assert!(none.iter().all(|e| e.ci.is_none() && e.value.is_some()));
    }

    /// Rounds of a logging policy over `actions` actions with random rewards.
    fn rounds_strategy() -> impl Strategy<Value = Vec<(u8, f64, f64, f64, f64)>> {
        prop::collection::vec((0u8..2, 0.01f64..1.0, 0.0f64..1.0, 0.0f64..1.0, 0.0f64..1.0), 1..60)
    }

    proptest! {
        /// Evaluating the logging policy itself: every weight is 1, so IPW and SNIPW are the
        /// mean reward, and DR is the mean reward plus the model's mean error on the policy,
        /// which vanishes when the model's expectation is its prediction for the logged action.
        #[test]
        fn the_logging_policy_is_valued_at_its_mean_reward(cells in rounds_strategy()) {
            let rounds: Vec<LoggedRound> =
                cells.iter().map(|&(r, p, _, q, _)| round(f64::from(r), p, p, q, q)).collect();
            let mean = rounds.iter().map(|r| r.reward).sum::<f64>() / rounds.len() as f64;
            for estimator in [Estimator::Ipw, Estimator::Snipw, Estimator::Dr] {
                let value = estimate(estimator, &rounds).unwrap();
                prop_assert!((value - mean).abs() < 1e-9, "{:?} {} vs {}", estimator, value, mean);
            }
            let ess = effective_sample_size(&rounds).unwrap();
            prop_assert!((ess - rounds.len() as f64).abs() < 1e-6);
        }

        /// SNIPW does not change when every target probability is scaled by the same factor;
        /// IPW scales with it.
        #[test]
        fn snipw_is_invariant_to_scaling_the_weights(cells in rounds_strategy(), scale in 0.05f64..1.0) {
            let rounds: Vec<LoggedRound> =
                cells.iter().map(|&(r, p, t, q, v)| round(f64::from(r), p, t, q, v)).collect();
            let scaled: Vec<LoggedRound> =
                rounds.iter().map(|r| LoggedRound { target_probability: r.target_probability * scale, ..*r }).collect();
            match (estimate(Estimator::Snipw, &rounds), estimate(Estimator::Snipw, &scaled)) {
                (Some(a), Some(b)) => prop_assert!((a - b).abs() < 1e-9 * a.abs().max(1.0)),
                (a, b) => prop_assert_eq!(a.is_some(), b.is_some()),
            }
            let (a, b) = (estimate(Estimator::Ipw, &rounds).unwrap(), estimate(Estimator::Ipw, &scaled).unwrap());
            prop_assert!((a * scale - b).abs() < 1e-9 * a.abs().max(1.0));
            // SNIPW stays within the observed rewards.
            if let Some(v) = estimate(Estimator::Snipw, &rounds) {
                prop_assert!((0.0..=1.0).contains(&v));
            }
        }

        /// With a perfect reward model (`q̂` = the reward) DR is DM whatever the weights: the
        /// correction term is 0.
        #[test]
        fn doubly_robust_is_the_direct_method_with_an_exact_model(cells in rounds_strategy()) {
            let rounds: Vec<LoggedRound> =
                cells.iter().map(|&(r, p, t, _, v)| round(f64::from(r), p, t, f64::from(r), v)).collect();
            let (dm, dr) = (estimate(Estimator::Dm, &rounds).unwrap(), estimate(Estimator::Dr, &rounds).unwrap());
            prop_assert!((dm - dr).abs() < 1e-9);
        }

        /// A bootstrap interval holds the middle of the resampled estimates: it is ordered.
        #[test]
        fn intervals_are_ordered(cells in rounds_strategy(), seed in 0u64..1000) {
            let rounds: Vec<LoggedRound> =
                cells.iter().map(|&(r, p, t, q, v)| round(f64::from(r), p, t, q, v)).collect();
            for e in estimate_all(&rounds, &BootstrapConfig { resamples: 50, confidence: 0.9, seed }) {
                if let Some([lo, hi]) = e.ci {
                    prop_assert!(lo <= hi, "{:?}", e);
                }
            }
        }
    }
}
