//! Calibration of the experiment statistics on simulated experiments (`souk bench
//! experiments`): are false positives as rare as α says, is a real effect found as often as
//! the power formula predicts, does the sample-ratio check fire on a broken split, and how
//! much variance CUPED removes from revenue per user on a generated shop.
//!
//! Each simulated user has pages (1 + Poisson(3)), clicks on each with probability 0.1,
//! converts with probability `base_conversion` and then spends an exponential amount with
//! mean 50. A/A replications draw both arms from the same distribution; power replications
//! raise the treatment's conversion by `lift` (relative) with as many users per arm as
//! [`stats::sample_size`] asks for the target power.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::error::Result;
use crate::model::EventType;
use crate::serving::experiment_report::Paid;
use crate::stats::{self, Sample, Srm};
use crate::store::Storage;

/// What to simulate.
#[derive(Debug, Clone, Serialize)]
pub struct CalibrationConfig {
    /// A/A replications (and power replications).
    pub replications: usize,
    /// Users per arm in each A/A replication.
    pub users_per_arm: usize,
    pub base_conversion: f64,
    /// Relative conversion effect of the power replications (0.05: +5%).
    pub lift: f64,
    pub alpha: f64,
    /// The power the sample size is chosen for.
    pub power: f64,
    pub seed: u64,
}

impl Default for CalibrationConfig {
    fn default() -> Self {
        Self {
            replications: 1_000,
            users_per_arm: 5_000,
            base_conversion: 0.10,
            lift: 0.05,
            alpha: 0.05,
            power: 0.80,
            seed: 42,
        }
    }
}

/// The false-positive rate of each metric over A/A replications.
#[derive(Debug, Clone, Serialize)]
pub struct AaReport {
    pub replications: usize,
    pub users_per_arm: usize,
    pub false_positive_rate_conversion: f64,
    pub false_positive_rate_revenue_per_user: f64,
    pub false_positive_rate_ctr: f64,
    /// Binomial standard error of a rate of α over the replications.
    pub standard_error: f64,
}

/// How often a real effect is found, against the formula's prediction.
#[derive(Debug, Clone, Serialize)]
pub struct PowerReport {
    pub base_conversion: f64,
    pub lift: f64,
    pub users_per_arm: usize,
    pub predicted_power: f64,
    pub observed_power: f64,
    pub replications: usize,
}

/// CUPED on a shop: revenue per user after a split time, adjusted with the same user's
/// revenue before it.
#[derive(Debug, Clone, Serialize)]
pub struct CupedReport {
    pub users: usize,
    pub theta: f64,
    /// Share of the variance of revenue per user that CUPED removes (ρ² of before and after).
    pub variance_reduction: f64,
}

/// Everything `souk bench experiments` reports.
#[derive(Debug, Clone, Serialize)]
pub struct CalibrationReport {
    pub config: CalibrationConfig,
    pub aa: AaReport,
    /// 10,400 / 9,600 users where 50 / 50 was planned (a 52/48 split of 20,000).
    pub srm_52_48: Srm,
    pub power: PowerReport,
    pub seconds: f64,
}

/// One simulated user: (pages, clicked pages, converted, revenue).
fn user(rng: &mut ChaCha8Rng, conversion: f64) -> (f64, f64, f64, f64) {
    let pages = 1 + poisson(rng, 3.0);
    let clicked = (0..pages).filter(|_| rng.gen::<f64>() < 0.1).count();
    let converted = rng.gen::<f64>() < conversion;
    let revenue = if converted { -50.0 * (1.0 - rng.gen::<f64>()).ln() } else { 0.0 };
    (pages as f64, clicked as f64, f64::from(u8::from(converted)), revenue)
}

fn poisson(rng: &mut ChaCha8Rng, mean: f64) -> usize {
    let limit = (-mean).exp();
    let (mut k, mut p) = (0, rng.gen::<f64>());
    while p > limit {
        k += 1;
        p *= rng.gen::<f64>();
    }
    k
}

/// Columns of an arm: pages, clicked pages, conversions, revenue.
fn arm(rng: &mut ChaCha8Rng, users: usize, conversion: f64) -> [Vec<f64>; 4] {
    let mut columns: [Vec<f64>; 4] = Default::default();
    for _ in 0..users {
        let (pages, clicked, converted, revenue) = user(rng, conversion);
        for (column, value) in columns.iter_mut().zip([pages, clicked, converted, revenue]) {
            column.push(value);
        }
    }
    columns
}

/// Whether the treatment differs from the control on a metric at level `alpha`.
fn significant(t: (&[f64], &[f64]), c: (&[f64], &[f64]), alpha: f64) -> bool {
    let (Some(t), Some(c)) = (
        stats::estimate(&Sample { numerators: t.0, denominators: t.1 }),
        stats::estimate(&Sample { numerators: c.0, denominators: c.1 }),
    ) else {
        return false;
    };
    stats::compare(&t, &c).is_some_and(|comparison| comparison.p_value < alpha)
}

/// Run the A/A, sample-ratio and power simulations.
pub fn calibrate(config: &CalibrationConfig) -> CalibrationReport {
    let started = std::time::Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let n = config.users_per_arm;
    let ones = vec![1.0; n];
    let mut false_positives = [0usize; 3];
    for _ in 0..config.replications {
        let a = arm(&mut rng, n, config.base_conversion);
        let b = arm(&mut rng, n, config.base_conversion);
        false_positives[0] += usize::from(significant((&b[2], &ones), (&a[2], &ones), config.alpha));
        false_positives[1] += usize::from(significant((&b[3], &ones), (&a[3], &ones), config.alpha));
        false_positives[2] += usize::from(significant((&b[1], &b[0]), (&a[1], &a[0]), config.alpha));
    }
    let reps = config.replications.max(1) as f64;
    let aa = AaReport {
        replications: config.replications,
        users_per_arm: n,
        false_positive_rate_conversion: false_positives[0] as f64 / reps,
        false_positive_rate_revenue_per_user: false_positives[1] as f64 / reps,
        false_positive_rate_ctr: false_positives[2] as f64 / reps,
        standard_error: (config.alpha * (1.0 - config.alpha) / reps).sqrt(),
    };
    let srm_52_48 = stats::srm(&[10_400, 9_600], &[0.5, 0.5]);

    let p = config.base_conversion;
    let sd = (p * (1.0 - p)).sqrt();
    let users = stats::sample_size(p, sd, config.lift, config.alpha, config.power).ceil() as usize;
    let predicted = stats::power(p, sd, config.lift, config.alpha, users as f64);
    let ones = vec![1.0; users];
    let mut found = 0usize;
    for _ in 0..config.replications {
        let control: Vec<f64> = (0..users).map(|_| f64::from(u8::from(rng.gen::<f64>() < p))).collect();
        let treated: Vec<f64> =
            (0..users).map(|_| f64::from(u8::from(rng.gen::<f64>() < p * (1.0 + config.lift)))).collect();
        found += usize::from(significant((&treated, &ones), (&control, &ones), config.alpha));
    }
    let power = PowerReport {
        base_conversion: p,
        lift: config.lift,
        users_per_arm: users,
        predicted_power: predicted,
        observed_power: found as f64 / reps,
        replications: config.replications,
    };
    CalibrationReport { config: config.clone(), aa, srm_52_48, power, seconds: started.elapsed().as_secs_f64() }
}

/// CUPED on a stored shop: each buyer's revenue (price × quantity, the catalog price when
/// the event has none) after `split_ms` against theirs before it.
pub fn cuped_on_shop(store: &dyn Storage, split_ms: i64) -> Result<CupedReport> {
    let mut revenue: std::collections::HashMap<String, (f64, f64)> = std::collections::HashMap::new();
    let mut paid = Paid::new(store);
    store.scan_events(&[EventType::Purchase], &mut |event| {
        let amount = paid.of(&event)?;
        let entry = revenue.entry(event.user.as_str().to_string()).or_default();
        if event.timestamp < split_ms {
            entry.0 += amount;
        } else {
            entry.1 += amount;
        }
        Ok(())
    })?;
    let (before, after): (Vec<f64>, Vec<f64>) = revenue.into_values().unzip();
    let cuped = stats::cuped(&after, &before);
    let (theta, reduction) = match &cuped {
        Some(c) => {
            let adjusted = c.adjust(&after, &before);
            (c.theta, 1.0 - variance(&adjusted) / variance(&after).max(f64::MIN_POSITIVE))
        }
        None => (0.0, 0.0),
    };
    Ok(CupedReport { users: after.len(), theta, variance_reduction: reduction })
}

fn variance(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let mean = values.iter().sum::<f64>() / n;
    values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
}

/// Interleaving against A/B testing: how many users each needs to find the better of two
/// rankers with the same power. Shoppers see 1 + Poisson(2) pages of 10 from 100 candidates
/// of normal utility; the rankers score utility plus normal noise (B with less); shoppers
/// differ in clickiness. The A/B test compares clicks per user with Welch's test; the
/// interleaving test credits each click to the team that placed the item and tests whether
/// B's credited clicks minus A's per page average above zero.
#[derive(Debug, Clone, Serialize)]
pub struct InterleavingReport {
    /// Noise of the two rankers' scores around the true utility (B is the better one).
    pub noise_a: f64,
    pub noise_b: f64,
    /// Users of the pilot that measured each design's effect and variance.
    pub pilot_users: usize,
    /// Clicks per user under A and B (the A/B test's metric).
    pub clicks_per_user_a: f64,
    pub clicks_per_user_b: f64,
    /// Interleaved pages: share won by B, by A, tied; pages per user.
    pub wins_b: f64,
    pub wins_a: f64,
    pub ties: f64,
    pub pages_per_user: f64,
    /// Users for 80% power at α = 0.05: both arms of the A/B test together, and the
    /// interleaving test.
    pub ab_users: usize,
    pub interleaving_users: usize,
    /// `ab_users / interleaving_users`.
    pub ratio: f64,
    /// Replications run at those sizes and how often each design found B better.
    pub replications: usize,
    pub ab_power: f64,
    pub interleaving_power: f64,
}

/// A simulated shopper's page: 100 candidates of normal utility, `PAGE` shown.
const CANDIDATES: usize = 100;
const PAGE: usize = 10;

/// (utilities, ranker A's order, ranker B's order) of one shopper.
fn shopper(rng: &mut ChaCha8Rng, noise_a: f64, noise_b: f64) -> (Vec<f64>, Vec<usize>, Vec<usize>) {
    let utilities: Vec<f64> = (0..CANDIDATES).map(|_| gaussian(rng)).collect();
    let order = |rng: &mut ChaCha8Rng, noise: f64| {
        let scores: Vec<f64> = utilities.iter().map(|u| u + noise * gaussian(rng)).collect();
        let mut order: Vec<usize> = (0..CANDIDATES).collect();
        order.sort_by(|x, y| scores[*y].total_cmp(&scores[*x]));
        order
    };
    let a = order(rng, noise_a);
    let b = order(rng, noise_b);
    (utilities, a, b)
}

fn gaussian(rng: &mut ChaCha8Rng) -> f64 {
    let (u1, u2) = (1.0 - rng.gen::<f64>(), rng.gen::<f64>());
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// How much shoppers differ in their eagerness to click (the standard deviation of a
/// per-shopper offset on the click logit): the user-level variance an A/B test carries and
/// interleaving, which shows both rankers to the same shopper, cancels.
const CLICKINESS_SD: f64 = 1.5;
/// Mean pages a shopper sees beyond the first (Poisson).
const EXTRA_PAGES: f64 = 2.0;

/// Which items of a page a shopper clicks: slot k is looked at with probability 1/(k+1),
/// an item looked at is clicked with probability σ(2u − 3 + the shopper's clickiness).
fn clicks(rng: &mut ChaCha8Rng, page: &[usize], utilities: &[f64], clickiness: f64) -> Vec<usize> {
    page.iter()
        .enumerate()
        .filter(|(slot, item)| {
            let looked = rng.gen::<f64>() < 1.0 / (1.0 + *slot as f64);
            let p = 1.0 / (1.0 + (3.0 - 2.0 * utilities[**item] - clickiness).exp());
            looked && rng.gen::<f64>() < p
        })
        .map(|(_, item)| *item)
        .collect()
}

/// One A/B user of a ranker: their clicks over their pages.
fn ab_user(rng: &mut ChaCha8Rng, noise_a: f64, noise_b: f64, use_b: bool) -> f64 {
    let clickiness = CLICKINESS_SD * gaussian(rng);
    let pages = 1 + poisson(rng, EXTRA_PAGES);
    let mut total = 0;
    for _ in 0..pages {
        let (utilities, a, b) = shopper(rng, noise_a, noise_b);
        let order = if use_b { &b } else { &a };
        total += clicks(rng, &order[..PAGE], &utilities, clickiness).len();
    }
    total as f64
}

/// One interleaved user: per page, B's credited clicks minus A's.
fn interleaved_user(rng: &mut ChaCha8Rng, noise_a: f64, noise_b: f64) -> Vec<f64> {
    use crate::serving::interleave::{credit, team_draft};
    let clickiness = CLICKINESS_SD * gaussian(rng);
    let pages = 1 + poisson(rng, EXTRA_PAGES);
    (0..pages)
        .map(|_| {
            let (utilities, a, b) = shopper(rng, noise_a, noise_b);
            let page = team_draft(&a[..PAGE], &b[..PAGE], PAGE, rng);
            let items: Vec<usize> = page.iter().map(|(i, _)| *i).collect();
            let (to_a, to_b) = credit(&page, &clicks(rng, &items, &utilities, clickiness));
            to_b as f64 - to_a as f64
        })
        .collect()
}

/// Measure both designs on a pilot, size each for 80% power at α = 0.05, then check the
/// power of each at its size over `replications`.
pub fn interleaving_efficiency(
    noise_a: f64,
    noise_b: f64,
    pilot_users: usize,
    replications: usize,
    seed: u64,
) -> InterleavingReport {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let a: Vec<f64> = (0..pilot_users).map(|_| ab_user(&mut rng, noise_a, noise_b, false)).collect();
    let b: Vec<f64> = (0..pilot_users).map(|_| ab_user(&mut rng, noise_a, noise_b, true)).collect();
    let (mean_a, mean_b) = (mean(&a), mean(&b));
    let outcomes: Vec<f64> = (0..pilot_users).flat_map(|_| interleaved_user(&mut rng, noise_a, noise_b)).collect();
    let pages_per_user = outcomes.len() as f64 / pilot_users.max(1) as f64;
    let share =
        |test: fn(f64) -> bool| outcomes.iter().filter(|o| test(**o)).count() as f64 / outcomes.len().max(1) as f64;
    let z = 1.959_963_984_540_054 + 0.841_621_233_572_914_3; // z_0.975 + z_0.8
    let effect = mean_b - mean_a;
    let per_arm = (z * z * (variance(&a) + variance(&b)) / (effect * effect)).ceil();
    // Pages are the interleaving test's units (a t-test of B's credited clicks minus A's per
    // page); the users needed are the pages needed over pages per user.
    let delta = mean(&outcomes);
    let interleaving = (z * z * variance(&outcomes) / (delta * delta) / pages_per_user).ceil();
    let (ab_users, interleaving_users) = (2 * per_arm as usize, interleaving as usize);
    let ones = vec![1.0; per_arm as usize];
    let (mut ab_found, mut il_found) = (0usize, 0usize);
    for _ in 0..replications {
        let a: Vec<f64> = (0..per_arm as usize).map(|_| ab_user(&mut rng, noise_a, noise_b, false)).collect();
        let b: Vec<f64> = (0..per_arm as usize).map(|_| ab_user(&mut rng, noise_a, noise_b, true)).collect();
        let (Some(ea), Some(eb)) = (
            stats::estimate(&Sample { numerators: &a, denominators: &ones }),
            stats::estimate(&Sample { numerators: &b, denominators: &ones }),
        ) else {
            continue;
        };
        ab_found += usize::from(stats::compare(&eb, &ea).is_some_and(|c| c.p_value < 0.05 && c.difference > 0.0));
        let pages: Vec<f64> =
            (0..interleaving_users).flat_map(|_| interleaved_user(&mut rng, noise_a, noise_b)).collect();
        il_found += usize::from(stats::one_sample(&pages).is_some_and(|(mean, p)| p < 0.05 && mean > 0.0));
    }
    let reps = replications.max(1) as f64;
    InterleavingReport {
        noise_a,
        noise_b,
        pilot_users,
        clicks_per_user_a: mean_a,
        clicks_per_user_b: mean_b,
        wins_b: share(|d| d > 0.0),
        wins_a: share(|d| d < 0.0),
        ties: share(|d| d == 0.0),
        pages_per_user,
        ab_users,
        interleaving_users,
        ratio: ab_users as f64 / interleaving_users.max(1) as f64,
        replications,
        ab_power: ab_found as f64 / reps,
        interleaving_power: il_found as f64 / reps,
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaving_finds_the_better_ranker_with_fewer_users() {
        let report = interleaving_efficiency(1.5, 0.5, 4_000, 0, 7);
        assert!(report.clicks_per_user_b > report.clicks_per_user_a, "{report:?}");
        assert!(report.wins_b > report.wins_a, "{report:?}");
        assert!(report.ratio > 1.0, "{report:?}");
    }

    #[test]
    fn a_small_calibration_has_every_figure_in_range() {
        let config =
            CalibrationConfig { replications: 200, users_per_arm: 400, lift: 0.5, ..CalibrationConfig::default() };
        let report = calibrate(&config);
        // 200 replications: the standard error of a 5% rate is 1.5 points; 4 of them either way.
        for rate in [
            report.aa.false_positive_rate_conversion,
            report.aa.false_positive_rate_revenue_per_user,
            report.aa.false_positive_rate_ctr,
        ] {
            assert!((0.0..=0.11).contains(&rate), "{report:?}");
        }
        assert!(report.srm_52_48.flagged);
        // +50% on a 10% conversion needs about 680 users per arm for 80% power.
        assert!((500..900).contains(&report.power.users_per_arm), "{report:?}");
        assert!((report.power.observed_power - report.power.predicted_power).abs() < 0.12, "{report:?}");
    }
}
