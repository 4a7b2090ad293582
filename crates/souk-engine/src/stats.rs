//! Experiment statistics for A/B tests: per-arm estimates of mean and ratio metrics, the
//! comparison of a treatment arm against control, sample-ratio-mismatch checks, multiple-testing
//! correction, variance reduction with a pre-experiment covariate, and power analysis.
//!
//! All statistics work on per-unit (per-user) observations: a metric's value in an arm is a
//! ratio of sums `R = Σyᵢ / Σxᵢ` of numerators `yᵢ` and denominators `xᵢ` (a mean metric has
//! `xᵢ = 1`, so `R = ȳ`). Sample moments use `n − 1`.
//!
//! * [`estimate`]: `R` and its variance by the delta method,
//!   `Var(R) ≈ (1/n)·(s_y² − 2R·s_xy + R²·s_x²) / x̄²` (for a mean metric `s_y²/n`), with the
//!   95% normal interval `R ± z₀.₉₇₅·√Var(R)`.
//! * [`compare`]: the difference `Δ = R_t − R_c`, Welch's t `Δ / √(V_t + V_c)` with the
//!   Welch–Satterthwaite degrees of freedom `(V_t + V_c)² / (V_t²/(n_t − 1) + V_c²/(n_c − 1))` and
//!   its two-sided p-value; the relative lift `R_t/R_c − 1` with a delta-method interval,
//!   `Var(lift) ≈ V_t/R_c² + R_t²·V_c/R_c⁴`; and the Bayesian chance to beat control under a
//!   flat prior with the normal approximation, `Φ(Δ / √(V_t + V_c))`.
//! * [`srm`]: Pearson's χ² goodness of fit of the units per arm to the planned shares,
//!   `Σ (oᵢ − eᵢ)²/eᵢ` with `arms − 1` degrees of freedom, flagged below [`SRM_ALPHA`].
//! * [`holm`]: Holm–Bonferroni step-down adjusted p-values,
//!   `p̃₍ᵢ₎ = min(1, max_{j ≤ i} (m − j + 1)·p₍ⱼ₎)` over the ascending order.
//! * [`cuped`]: CUPED, `θ = cov(y, x)/var(x)` pooled over the units of all arms and
//!   `y′ = y − θ·(x − x̄)`; the variance of `y′` is `(1 − ρ²)` times that of `y`.
//! * [`sample_size`] and [`power`]: the two-sided z-test of a relative effect on a mean metric,
//!   `n = 2·(z_{1−α/2} + z_power)²·σ² / (mde·μ)²` units per arm.
//!
//! References: GrowthBook's documentation of its frequentist and Bayesian statistics engines
//! (delta method for ratio metrics, Welch's t-test, chance to beat control); Deng, Xu, Kohavi
//! and Walker (2013), "Improving the sensitivity of online controlled experiments by utilizing
//! pre-experiment data" (CUPED); Holm (1979), "A simple sequentially rejective multiple test
//! procedure".
//!
//! The module has no dependencies inside the engine. Invalid inputs never panic: functions
//! that can fail return `None` (or the neutral value documented on them).

use statrs::distribution::{ChiSquared, ContinuousCDF, Normal, StudentsT};

/// The 97.5% quantile of the standard normal distribution (two-sided 95% intervals).
const Z_975: f64 = 1.959963984540054;

/// Per-unit (user) observations of one arm for one metric: numerator and denominator per user
/// (a mean metric has denominator 1 for every user).
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    /// The metric's numerator per unit (revenue, clicks, …).
    pub numerators: &'a [f64],
    /// The metric's denominator per unit (1 for a mean metric; sessions, views, … for a ratio).
    pub denominators: &'a [f64],
}

/// A metric's estimate in one arm.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Estimate {
    /// The number of units.
    pub n: usize,
    /// The ratio of sums `Σnumerators / Σdenominators` (the mean for a mean metric).
    pub value: f64,
    /// The variance of `value` by the delta method,
    /// `(1/n)·(s_y² − 2R·s_xy + R²·s_x²)/x̄²`; for a mean metric `s_y²/n`.
    pub variance: f64,
    /// The 95% normal interval `value ± 1.96·√variance`.
    pub ci: [f64; 2],
}

/// The estimate of a metric in one arm.
///
/// `None` when the slices differ in length, there are fewer than 2 units, a value is not
/// finite, or the denominators sum to 0.
pub fn estimate(sample: &Sample) -> Option<Estimate> {
    let (y, x) = (sample.numerators, sample.denominators);
    let n = y.len();
    if n != x.len() || n < 2 || !y.iter().chain(x).all(|v| v.is_finite()) {
        return None;
    }
    let sum_x: f64 = x.iter().sum();
    if sum_x == 0.0 {
        return None;
    }
    let nf = n as f64;
    let mean_y = y.iter().sum::<f64>() / nf;
    let mean_x = sum_x / nf;
    let value = y.iter().sum::<f64>() / sum_x;
    let (s_yy, s_xy, s_xx) = moments(y, x, mean_y, mean_x);
    let variance = (s_yy - 2.0 * value * s_xy + value * value * s_xx) / (mean_x * mean_x) / nf;
    // The delta-method expression is a variance of `y − R·x` and cannot be negative but for
    // rounding.
    let variance = variance.max(0.0);
    if !value.is_finite() || !variance.is_finite() {
        return None;
    }
    let half = Z_975 * variance.sqrt();
    Some(Estimate { n, value, variance, ci: [value - half, value + half] })
}

/// Sample variance of `y`, covariance of `y` and `x`, and variance of `x` (all with `n − 1`),
/// about the given means. `y` and `x` have the same length of at least 2.
fn moments(y: &[f64], x: &[f64], mean_y: f64, mean_x: f64) -> (f64, f64, f64) {
    let (mut s_yy, mut s_xy, mut s_xx) = (0.0, 0.0, 0.0);
    for (&yi, &xi) in y.iter().zip(x) {
        let (dy, dx) = (yi - mean_y, xi - mean_x);
        s_yy += dy * dy;
        s_xy += dy * dx;
        s_xx += dx * dx;
    }
    let dof = (y.len() - 1) as f64;
    (s_yy / dof, s_xy / dof, s_xx / dof)
}

/// Treatment against control.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Comparison {
    /// `value_t − value_c`.
    pub difference: f64,
    /// The relative lift `value_t / value_c − 1`.
    pub lift: f64,
    /// The 95% interval of the lift by the delta method on the ratio,
    /// `Var(lift) ≈ var_t/value_c² + value_t²·var_c/value_c⁴`.
    pub lift_ci: [f64; 2],
    /// Welch's t statistic, `difference / √(var_t + var_c)`.
    pub t: f64,
    /// The Welch–Satterthwaite degrees of freedom,
    /// `(var_t + var_c)² / (var_t²/(n_t − 1) + var_c²/(n_c − 1))`.
    pub df: f64,
    /// The two-sided p-value of `t` under Student's t with `df` degrees of freedom.
    pub p_value: f64,
    /// The Bayesian chance that treatment beats control (flat prior, normal approximation),
    /// `Φ(difference / √(var_t + var_c))`.
    pub chance_to_beat_control: f64,
}

/// Compares `treatment` against `control`.
///
/// `None` when control's value is 0 (the lift is undefined), both variances are 0, an arm has
/// fewer than 2 units, or a field is not finite.
pub fn compare(treatment: &Estimate, control: &Estimate) -> Option<Comparison> {
    let (t, c) = (treatment, control);
    let finite = [t.value, t.variance, c.value, c.variance].iter().all(|v| v.is_finite());
    if !finite || c.value == 0.0 || t.n < 2 || c.n < 2 || t.variance < 0.0 || c.variance < 0.0 {
        return None;
    }
    let pooled = t.variance + c.variance;
    if pooled <= 0.0 {
        return None;
    }
    let se = pooled.sqrt();
    let difference = t.value - c.value;
    let t_stat = difference / se;
    let df_denominator = t.variance * t.variance / (t.n - 1) as f64 + c.variance * c.variance / (c.n - 1) as f64;
    if df_denominator <= 0.0 {
        // Both variances underflowed when squared: the arms are, for all purposes, exact.
        return None;
    }
    let df = pooled * pooled / df_denominator;
    let students = StudentsT::new(0.0, 1.0, df).ok()?;
    let p_value = (2.0 * students.sf(t_stat.abs())).min(1.0);

    let lift = t.value / c.value - 1.0;
    let vc2 = c.value * c.value;
    let lift_variance = t.variance / vc2 + t.value * t.value * c.variance / (vc2 * vc2);
    let lift_half = Z_975 * lift_variance.sqrt();
    let chance_to_beat_control = Normal::standard().cdf(t_stat);

    let out = Comparison {
        difference,
        lift,
        lift_ci: [lift - lift_half, lift + lift_half],
        t: t_stat,
        df,
        p_value,
        chance_to_beat_control,
    };
    let all_finite = [out.difference, out.lift, out.lift_ci[0], out.lift_ci[1], out.t, out.df, out.p_value]
        .iter()
        .all(|v| v.is_finite());
    all_finite.then_some(out)
}

/// Sample-ratio mismatch: Pearson χ² goodness of fit of `observed` unit counts to `shares`
/// (normalised to sum 1), df = arms − 1.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Srm {
    /// Pearson's χ² statistic, `Σ (observed − expected)² / expected`.
    pub chi2: f64,
    /// The upper-tail probability of `chi2` under χ² with `arms − 1` degrees of freedom.
    pub p_value: f64,
    /// Whether `p_value < SRM_ALPHA`.
    pub flagged: bool,
}

/// The significance level below which a sample-ratio mismatch is flagged (it is deliberately
/// strict: the check runs on every experiment, often, and a mismatch invalidates the results).
pub const SRM_ALPHA: f64 = 0.001;

/// The sample-ratio-mismatch check of `observed` units per arm against the planned `shares`.
///
/// Flagged when `p < SRM_ALPHA`. With fewer than 2 arms, no units, slices of different lengths,
/// or shares that are negative, not finite or sum to 0, the result is neutral: χ² 0, p 1, not
/// flagged. An arm with share 0 and no units is left out; one with share 0 and some units is a
/// certain mismatch (χ² infinite, p 0, flagged).
pub fn srm(observed: &[u64], shares: &[f64]) -> Srm {
    let neutral = Srm { chi2: 0.0, p_value: 1.0, flagged: false };
    if observed.len() != shares.len() || shares.iter().any(|s| !s.is_finite() || *s < 0.0) {
        return neutral;
    }
    let total_share: f64 = shares.iter().sum();
    let total_units = observed.iter().map(|&o| o as f64).sum::<f64>();
    if total_share <= 0.0 || !total_share.is_finite() || total_units <= 0.0 {
        return neutral;
    }
    let mut chi2 = 0.0;
    let mut arms = 0usize;
    for (&o, &share) in observed.iter().zip(shares) {
        let o = o as f64;
        let expected = total_units * share / total_share;
        if expected <= 0.0 {
            if o > 0.0 {
                return Srm { chi2: f64::INFINITY, p_value: 0.0, flagged: true };
            }
            continue;
        }
        arms += 1;
        chi2 += (o - expected) * (o - expected) / expected;
    }
    if arms < 2 {
        return neutral;
    }
    let Ok(distribution) = ChiSquared::new((arms - 1) as f64) else {
        return neutral;
    };
    let p_value = distribution.sf(chi2);
    Srm { chi2, p_value, flagged: p_value < SRM_ALPHA }
}

/// Holm–Bonferroni step-down adjusted p-values (same order as the input; monotone; capped at 1).
///
/// With `m` p-values in ascending order `p₍₁₎ ≤ … ≤ p₍ₘ₎`, the adjusted value of `p₍ᵢ₎` is
/// `min(1, max_{j ≤ i} (m − j + 1)·p₍ⱼ₎)`. Rejecting the hypotheses whose adjusted p-value is
/// below α controls the family-wise error rate at α. A NaN p-value is treated as 1.
pub fn holm(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let clean: Vec<f64> = p_values.iter().map(|&p| if p.is_nan() { 1.0 } else { p.clamp(0.0, 1.0) }).collect();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| clean[a].total_cmp(&clean[b]));
    let mut adjusted = vec![0.0; m];
    let mut running = 0.0f64;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max((m - rank) as f64 * clean[i]);
        adjusted[i] = running.min(1.0);
    }
    adjusted
}

/// CUPED (Deng et al. 2013): θ = cov(y, x)/var(x) pooled over all units of all arms; adjusted
/// y′ = y − θ·(x − x̄).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Cuped {
    /// The regression coefficient of the metric on the covariate, `cov(y, x)/var(x)`.
    pub theta: f64,
    /// The pooled mean of the covariate, `x̄`.
    pub mean_covariate: f64,
}

/// Fits CUPED on the metric `pooled_y` and the pre-experiment covariate `pooled_x` of all units
/// of all arms (pooling keeps the adjustment the same in every arm, so it does not bias the
/// difference).
///
/// `None` when the slices differ in length, there are fewer than 2 units, a value is not
/// finite, or the covariate has variance 0.
pub fn cuped(pooled_y: &[f64], pooled_x: &[f64]) -> Option<Cuped> {
    let n = pooled_y.len();
    if n != pooled_x.len() || n < 2 || !pooled_y.iter().chain(pooled_x).all(|v| v.is_finite()) {
        return None;
    }
    let nf = n as f64;
    let mean_y = pooled_y.iter().sum::<f64>() / nf;
    let mean_x = pooled_x.iter().sum::<f64>() / nf;
    let (_, s_xy, s_xx) = moments(pooled_y, pooled_x, mean_y, mean_x);
    if s_xx <= 0.0 {
        return None;
    }
    let theta = s_xy / s_xx;
    theta.is_finite().then_some(Cuped { theta, mean_covariate: mean_x })
}

impl Cuped {
    /// The adjusted metric `yᵢ − θ·(xᵢ − x̄)` of each unit, pairing `y[i]` with `x[i]`; the
    /// result has the length of the shorter slice.
    pub fn adjust(&self, y: &[f64], x: &[f64]) -> Vec<f64> {
        y.iter().zip(x).map(|(&yi, &xi)| yi - self.theta * (xi - self.mean_covariate)).collect()
    }
}

/// The `(z_{1−α/2}, z_power)` quantiles, or `None` unless `0 < alpha < 1` and `0 < power < 1`.
fn z_quantiles(alpha: f64, power: f64) -> Option<(f64, f64)> {
    let open_unit = |v: f64| v > 0.0 && v < 1.0;
    if !open_unit(alpha) || !open_unit(power) {
        return None;
    }
    let normal = Normal::standard();
    Some((normal.inverse_cdf(1.0 - alpha / 2.0), normal.inverse_cdf(power)))
}

/// Units needed per arm to detect a relative effect `mde` on a mean metric with baseline mean
/// `mean` and standard deviation `sd`, two-sided `alpha`, `power` (normal approximation):
/// n = 2·(z_{1−α/2} + z_{power})²·sd² / (mde·mean)².
///
/// NaN unless `0 < alpha < 1`, `0 < power < 1`, `sd ≥ 0` and all inputs are finite; infinite
/// when the absolute effect `mde·mean` is 0. The result is not rounded up.
pub fn sample_size(mean: f64, sd: f64, mde: f64, alpha: f64, power: f64) -> f64 {
    if !(mean.is_finite() && sd.is_finite() && mde.is_finite()) || sd < 0.0 {
        return f64::NAN;
    }
    let Some((z_alpha, z_power)) = z_quantiles(alpha, power) else {
        return f64::NAN;
    };
    let effect = mde * mean;
    if effect == 0.0 {
        return f64::INFINITY;
    }
    2.0 * (z_alpha + z_power).powi(2) * sd * sd / (effect * effect)
}

/// The power of that test with `n` units per arm.
///
/// Both rejection regions count: `Φ(s − z_{1−α/2}) + Φ(−s − z_{1−α/2})` with the standardised
/// shift `s = |mde·mean| / (sd·√(2/n))`, so the power of [`sample_size`]'s `n` exceeds the
/// requested power by the far tail, `Φ(−s − z_{1−α/2})` (about 1e-6 at α = 0.05, power 0.8).
/// With no effect (or `n = 0`) the power is `alpha`; with `sd = 0` and an effect it is 1.
/// NaN unless `0 < alpha < 1`, `n ≥ 0`, `sd ≥ 0` and all inputs are finite.
pub fn power(mean: f64, sd: f64, mde: f64, alpha: f64, n: f64) -> f64 {
    let finite = [mean, sd, mde, alpha, n].iter().all(|v| v.is_finite());
    if !finite || sd < 0.0 || n < 0.0 || !(alpha > 0.0 && alpha < 1.0) {
        return f64::NAN;
    }
    let normal = Normal::standard();
    let z_alpha = normal.inverse_cdf(1.0 - alpha / 2.0);
    let effect = (mde * mean).abs();
    if effect == 0.0 || n == 0.0 {
        return alpha;
    }
    if sd == 0.0 {
        return 1.0;
    }
    let shift = effect / (sd * (2.0 / n).sqrt());
    (normal.cdf(shift - z_alpha) + normal.cdf(-shift - z_alpha)).min(1.0)
}

/// A one-sample t-test of mean zero: (mean, two-sided p-value); `None` with fewer than two
/// values or no variance.
pub fn one_sample(values: &[f64]) -> Option<(f64, f64)> {
    let n = values.len();
    if n < 2 || values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    if variance <= 0.0 {
        return None;
    }
    let t = mean / (variance / n as f64).sqrt();
    let p = StudentsT::new(0.0, 1.0, (n - 1) as f64).ok().map(|d| 2.0 * d.cdf(-t.abs()))?;
    Some((mean, p.min(1.0)))
}

/// Two-sided sign test of `wins` against `losses` (ties left out): the exact binomial
/// p-value of a split at least this uneven under p = ½ (1 with no decided unit).
pub fn sign_test(wins: u64, losses: u64) -> f64 {
    use statrs::distribution::{Binomial, DiscreteCDF};
    let n = wins + losses;
    if n == 0 {
        return 1.0;
    }
    let Ok(binomial) = Binomial::new(0.5, n) else {
        return 1.0;
    };
    let smaller = wins.min(losses);
    (2.0 * binomial.cdf(smaller)).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// `scipy.stats.ttest_1samp([0.5, 1.5, -0.2, 2.0, 0.9, 1.1], 0).pvalue` (scipy 1.17.1).
    const ONE_SAMPLE_P: f64 = 0.027_440_772_847_425_028;

    #[test]
    fn the_one_sample_test_matches_scipy() {
        // scipy.stats.ttest_1samp([0.5, 1.5, -0.2, 2.0, 0.9, 1.1], 0).pvalue
        let (mean, p) = one_sample(&[0.5, 1.5, -0.2, 2.0, 0.9, 1.1]).unwrap();
        assert!((mean - 0.966_666_666_666_666_7).abs() < 1e-12);
        assert!((p - ONE_SAMPLE_P).abs() < 1e-10, "{p}");
        assert!(one_sample(&[1.0]).is_none() && one_sample(&[2.0, 2.0]).is_none());
    }

    #[test]
    fn the_sign_test_matches_the_exact_binomial() {
        // scipy.stats.binomtest(15, 20).pvalue = 0.04138946533203125; (10, 10) → 1.
        assert!((sign_test(15, 5) - 0.041_389_465_332_031_25).abs() < 1e-12, "{}", sign_test(15, 5));
        assert!((sign_test(5, 15) - sign_test(15, 5)).abs() < 1e-15);
        assert_eq!(sign_test(10, 10), 1.0);
        assert_eq!(sign_test(0, 0), 1.0);
        // binomtest(60, 100).pvalue = 0.05688793364098089.
        assert!((sign_test(60, 40) - 0.056_887_933_640_980_89).abs() < 1e-10, "{}", sign_test(60, 40));
    }
    use rand_chacha::ChaCha8Rng;

    // Generated by `python3 bench/stats_reference.py`; paste as is.
    // Datasets.
    const MEAN_CONTROL: [f64; 30] = [
        12.4, 0.0, 7.5, 31.2, 4.8, 0.0, 18.9, 22.1, 9.3, 15.0, 0.0, 27.6, 11.2, 6.4, 13.8, 0.0, 19.5, 8.7, 24.3, 3.1,
        16.6, 10.0, 0.0, 21.4, 5.9, 14.2, 9.8, 30.5, 2.2, 17.3,
    ];
    const MEAN_TREATMENT: [f64; 25] = [
        14.1, 3.2, 25.8, 0.0, 19.7, 33.4, 11.9, 8.6, 22.5, 16.3, 0.0, 28.9, 13.4, 21.0, 7.7, 18.2, 35.6, 10.4, 0.0,
        24.8, 15.5, 9.1, 29.3, 12.6, 20.2,
    ];
    const RATIO_CONTROL_NUM: [f64; 20] =
        [3.0, 0.0, 5.0, 2.0, 8.0, 1.0, 0.0, 4.0, 6.0, 2.0, 3.0, 7.0, 1.0, 0.0, 5.0, 2.0, 9.0, 3.0, 4.0, 1.0];
    const RATIO_CONTROL_DEN: [f64; 20] =
        [4.0, 2.0, 6.0, 3.0, 9.0, 2.0, 1.0, 5.0, 8.0, 3.0, 4.0, 10.0, 2.0, 1.0, 6.0, 3.0, 12.0, 4.0, 5.0, 2.0];
    const RATIO_TREATMENT_NUM: [f64; 22] =
        [4.0, 1.0, 6.0, 3.0, 9.0, 2.0, 0.0, 5.0, 7.0, 3.0, 4.0, 8.0, 2.0, 1.0, 6.0, 3.0, 10.0, 4.0, 5.0, 2.0, 6.0, 1.0];
    const RATIO_TREATMENT_DEN: [f64; 22] = [
        5.0, 2.0, 6.0, 4.0, 10.0, 2.0, 1.0, 5.0, 8.0, 3.0, 5.0, 9.0, 3.0, 1.0, 7.0, 4.0, 11.0, 4.0, 6.0, 2.0, 7.0, 2.0,
    ];
    const SRM_TWO_OBSERVED: [u64; 2] = [10400, 9600];
    const SRM_TWO_SHARES: [f64; 2] = [0.5, 0.5];
    const SRM_THREE_OBSERVED: [u64; 3] = [5120, 2410, 2470];
    const SRM_THREE_SHARES: [f64; 3] = [0.5, 0.25, 0.25];
    const HOLM_P: [f64; 7] = [0.01, 0.04, 0.03, 0.005, 0.2, 0.04, 0.5];
    // Mean metric: numpy mean, var(ddof=1)/n; scipy Welch t-test.
    const MEAN_CONTROL_VALUE: f64 = 12.123333333333333;
    const MEAN_CONTROL_VARIANCE: f64 = 2.907326053639847;
    const MEAN_CONTROL_CI_LO: f64 = 8.78142170772313;
    const MEAN_CONTROL_CI_HI: f64 = 15.465244958943536;
    const MEAN_TREATMENT_VALUE: f64 = 16.088;
    const MEAN_TREATMENT_VARIANCE: f64 = 4.134110666666667;
    const MEAN_TREATMENT_CI_LO: f64 = 12.102900768338092;
    const MEAN_TREATMENT_CI_HI: f64 = 20.07309923166191;
    const MEAN_WELCH_T: f64 = 1.4940875232303188;
    const MEAN_WELCH_P: f64 = 0.1415126835332855;
    const MEAN_WELCH_DF: f64 = 49.404632152420206;
    const MEAN_DIFFERENCE: f64 = 3.964666666666668;
    const MEAN_LIFT: f64 = 0.32702777014022555;
    const MEAN_LIFT_CI_LO: f64 = -0.16477266437907478;
    const MEAN_LIFT_CI_HI: f64 = 0.8188282046595259;
    const MEAN_CHANCE: f64 = 0.9324236276890181;
    // Ratio metric: numpy delta method; Welch by formula with scipy.stats.t.sf.
    const RATIO_CONTROL_VALUE: f64 = 0.717391304347826;
    const RATIO_CONTROL_VARIANCE: f64 = 0.0009598965878932447;
    const RATIO_CONTROL_CI_LO: f64 = 0.6566673122646577;
    const RATIO_CONTROL_CI_HI: f64 = 0.7781152964309944;
    const RATIO_TREATMENT_VALUE: f64 = 0.8598130841121495;
    const RATIO_TREATMENT_VARIANCE: f64 = 0.00046730601288820213;
    const RATIO_TREATMENT_CI_LO: f64 = 0.8174440293059259;
    const RATIO_TREATMENT_CI_HI: f64 = 0.9021821389183732;
    const RATIO_T: f64 = 3.769932674227914;
    const RATIO_P: f64 = 0.0006116271322400007;
    const RATIO_DF: f64 = 34.58621328554991;
    const RATIO_DIFFERENCE: f64 = 0.14242177976432346;
    const RATIO_LIFT: f64 = 0.19852732936845086;
    const RATIO_LIFT_CI_LO: f64 = 0.08113832545811765;
    const RATIO_LIFT_CI_HI: f64 = 0.31591633327878405;
    const RATIO_CHANCE: f64 = 0.9999183542044117;
    // Sample-ratio mismatch: scipy.stats.chisquare.
    const SRM_TWO_CHI2: f64 = 32.0;
    const SRM_TWO_P: f64 = 1.5417257900280013e-08;
    const SRM_THREE_CHI2: f64 = 6.48;
    const SRM_THREE_P: f64 = 0.039163895098987066;
    // Holm-Bonferroni, by hand.
    const HOLM_ADJUSTED: [f64; 7] = [0.06, 0.16, 0.15, 0.035, 0.4, 0.16, 0.5];
    // Sample size and power: scipy.stats.norm.
    const SAMPLE_SIZE: f64 = 1569.7759468698177;
    const POWER_AT_N: f64 = 0.6087794846454567;
    const Z975: f64 = 1.959963984540054;
    // End of the generated block.

    /// The tolerance where the arithmetic is the same as the reference's (summation order and
    /// the special-function implementations differ, so not bit for bit).
    const EXACT_MATH: f64 = 1e-12;

    /// The tolerance of values that go through statrs's special functions (the regularised
    /// incomplete beta of Student's t, erfc of the normal CDF): they are accurate to about
    /// 1e-11 relative, against scipy's 1e-16. Observed: Welch p 4.7e-13, Φ 3.2e-12.
    const SPECIAL_FUNCTIONS: f64 = 1e-10;

    #[track_caller]
    fn assert_close(actual: f64, expected: f64, relative: f64, what: &str) {
        let error = (actual - expected).abs() / expected.abs().max(f64::MIN_POSITIVE);
        assert!(error <= relative, "{what}: {actual} vs {expected} (relative error {error:e} > {relative:e})");
    }

    fn mean_sample(values: &[f64]) -> (Vec<f64>, Vec<f64>) {
        (values.to_vec(), vec![1.0; values.len()])
    }

    fn estimate_of(numerators: &[f64], denominators: &[f64]) -> Estimate {
        estimate(&Sample { numerators, denominators }).expect("a valid sample")
    }

    #[test]
    fn z_975_matches_the_normal_quantile() {
        assert_close(Z_975, Z975, 1e-15, "z 0.975 vs scipy");
        assert_close(Normal::standard().inverse_cdf(0.975), Z_975, 1e-13, "z 0.975 vs statrs");
    }

    #[test]
    fn mean_metric_estimate_is_the_mean_and_variance_over_n() {
        for (values, value, variance, lo, hi) in [
            (&MEAN_CONTROL[..], MEAN_CONTROL_VALUE, MEAN_CONTROL_VARIANCE, MEAN_CONTROL_CI_LO, MEAN_CONTROL_CI_HI),
            (
                &MEAN_TREATMENT[..],
                MEAN_TREATMENT_VALUE,
                MEAN_TREATMENT_VARIANCE,
                MEAN_TREATMENT_CI_LO,
                MEAN_TREATMENT_CI_HI,
            ),
        ] {
            let (y, x) = mean_sample(values);
            let e = estimate_of(&y, &x);
            // Exactly the plain mean and sample variance / n, computed the same way here.
            let n = values.len() as f64;
            let mean = values.iter().sum::<f64>() / n;
            let sample_variance = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0);
            assert_eq!(e.n, values.len());
            assert_eq!(e.value, mean);
            assert_eq!(e.variance, sample_variance / n);
            // And numpy's, to rounding.
            assert_close(e.value, value, EXACT_MATH, "mean");
            assert_close(e.variance, variance, EXACT_MATH, "variance");
            assert_close(e.ci[0], lo, EXACT_MATH, "ci low");
            assert_close(e.ci[1], hi, EXACT_MATH, "ci high");
        }
    }

    #[test]
    fn mean_metric_comparison_matches_scipy_welch() {
        let (yt, xt) = mean_sample(&MEAN_TREATMENT);
        let (yc, xc) = mean_sample(&MEAN_CONTROL);
        let c = compare(&estimate_of(&yt, &xt), &estimate_of(&yc, &xc)).expect("comparable");
        assert_close(c.t, MEAN_WELCH_T, EXACT_MATH, "t");
        assert_close(c.df, MEAN_WELCH_DF, EXACT_MATH, "df");
        assert_close(c.p_value, MEAN_WELCH_P, SPECIAL_FUNCTIONS, "p");
        assert_close(c.difference, MEAN_DIFFERENCE, EXACT_MATH, "difference");
        assert_close(c.lift, MEAN_LIFT, EXACT_MATH, "lift");
        assert_close(c.lift_ci[0], MEAN_LIFT_CI_LO, EXACT_MATH, "lift ci low");
        assert_close(c.lift_ci[1], MEAN_LIFT_CI_HI, EXACT_MATH, "lift ci high");
        assert_close(c.chance_to_beat_control, MEAN_CHANCE, SPECIAL_FUNCTIONS, "chance to beat control");
    }

    #[test]
    fn ratio_metric_matches_the_numpy_delta_method() {
        let control = estimate_of(&RATIO_CONTROL_NUM, &RATIO_CONTROL_DEN);
        let treatment = estimate_of(&RATIO_TREATMENT_NUM, &RATIO_TREATMENT_DEN);
        for (e, value, variance, lo, hi) in [
            (control, RATIO_CONTROL_VALUE, RATIO_CONTROL_VARIANCE, RATIO_CONTROL_CI_LO, RATIO_CONTROL_CI_HI),
            (treatment, RATIO_TREATMENT_VALUE, RATIO_TREATMENT_VARIANCE, RATIO_TREATMENT_CI_LO, RATIO_TREATMENT_CI_HI),
        ] {
            assert_close(e.value, value, EXACT_MATH, "ratio");
            assert_close(e.variance, variance, EXACT_MATH, "ratio variance");
            assert_close(e.ci[0], lo, EXACT_MATH, "ratio ci low");
            assert_close(e.ci[1], hi, EXACT_MATH, "ratio ci high");
        }
        let c = compare(&treatment, &control).expect("comparable");
        assert_close(c.t, RATIO_T, EXACT_MATH, "t");
        assert_close(c.df, RATIO_DF, EXACT_MATH, "df");
        assert_close(c.p_value, RATIO_P, SPECIAL_FUNCTIONS, "p");
        assert_close(c.difference, RATIO_DIFFERENCE, EXACT_MATH, "difference");
        assert_close(c.lift, RATIO_LIFT, EXACT_MATH, "lift");
        assert_close(c.lift_ci[0], RATIO_LIFT_CI_LO, EXACT_MATH, "lift ci low");
        assert_close(c.lift_ci[1], RATIO_LIFT_CI_HI, EXACT_MATH, "lift ci high");
        assert_close(c.chance_to_beat_control, RATIO_CHANCE, SPECIAL_FUNCTIONS, "chance to beat control");
    }

    #[test]
    fn estimate_and_compare_refuse_degenerate_input() {
        let one = [1.0];
        assert_eq!(estimate(&Sample { numerators: &one, denominators: &one }), None);
        assert_eq!(estimate(&Sample { numerators: &[1.0, 2.0], denominators: &[0.0, 0.0] }), None);
        assert_eq!(estimate(&Sample { numerators: &[1.0, 2.0], denominators: &[1.0] }), None);
        assert_eq!(estimate(&Sample { numerators: &[1.0, f64::NAN], denominators: &[1.0, 1.0] }), None);
        let zero = estimate_of(&[0.0, 0.0], &[1.0, 1.0]);
        let some = estimate_of(&[1.0, 3.0], &[1.0, 1.0]);
        assert_eq!(compare(&some, &zero), None, "control value 0");
        let flat = estimate_of(&[2.0, 2.0], &[1.0, 1.0]);
        assert_eq!(compare(&flat, &flat), None, "both variances 0");
        assert!(compare(&some, &flat).is_some(), "one variance 0 is fine");
    }

    /// Standard normal draws by Box–Muller.
    fn normal(rng: &mut ChaCha8Rng) -> f64 {
        let u1: f64 = 1.0 - rng.gen::<f64>(); // (0, 1]
        let u2: f64 = rng.gen();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// A/A tests: with no true difference, `p < 0.05` must happen about 5% of the time. With
    /// 2,000 replications the binomial standard error of the rate is √(0.05·0.95/2000) ≈ 0.0049,
    /// so 0.035..0.065 is about ±3 standard errors. The data are skewed (exponential revenue
    /// with many zeros) so that the test also exercises the normal approximation.
    #[test]
    fn a_a_false_positive_rate_is_nominal() {
        let mut rng = ChaCha8Rng::seed_from_u64(20_130_205);
        let (replications, users) = (2_000, 500);
        let ones = vec![1.0; users];
        let mut arm = || -> Vec<f64> {
            (0..users).map(|_| if rng.gen_bool(0.3) { -10.0 * (1.0 - rng.gen::<f64>()).ln() } else { 0.0 }).collect()
        };
        let mut positives = 0;
        for _ in 0..replications {
            let (a, b) = (arm(), arm());
            let c = compare(&estimate_of(&a, &ones), &estimate_of(&b, &ones)).expect("comparable");
            positives += usize::from(c.p_value < 0.05);
        }
        let rate = positives as f64 / replications as f64;
        assert!((0.035..=0.065).contains(&rate), "A/A false-positive rate {rate}");
    }

    /// The same for a ratio metric (clicks per session, sessions vary per user), which checks
    /// the delta-method variance. 1,000 replications: standard error ≈ 0.0069, the band
    /// 0.03..0.07 is about ±2.9 standard errors.
    #[test]
    fn a_a_false_positive_rate_of_a_ratio_metric_is_nominal() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (replications, users) = (1_000, 500);
        let mut arm = || -> (Vec<f64>, Vec<f64>) {
            let mut clicks = Vec::with_capacity(users);
            let mut sessions = Vec::with_capacity(users);
            for _ in 0..users {
                let s: u32 = rng.gen_range(1..=8);
                // A per-user click rate, so clicks are over-dispersed against a binomial.
                let rate = 0.1 + 0.4 * rng.gen::<f64>();
                let k = (0..s).filter(|_| rng.gen_bool(rate)).count();
                clicks.push(k as f64);
                sessions.push(f64::from(s));
            }
            (clicks, sessions)
        };
        let mut positives = 0;
        for _ in 0..replications {
            let ((ya, xa), (yb, xb)) = (arm(), arm());
            let c = compare(&estimate_of(&ya, &xa), &estimate_of(&yb, &xb)).expect("comparable");
            positives += usize::from(c.p_value < 0.05);
        }
        let rate = positives as f64 / replications as f64;
        assert!((0.03..=0.07).contains(&rate), "A/A false-positive rate of a ratio metric {rate}");
    }

    #[test]
    fn srm_matches_scipy_chisquare() {
        let two = srm(&SRM_TWO_OBSERVED, &SRM_TWO_SHARES);
        assert_close(two.chi2, SRM_TWO_CHI2, EXACT_MATH, "chi2 of two arms");
        assert_close(two.p_value, SRM_TWO_P, SPECIAL_FUNCTIONS, "p of two arms");
        let three = srm(&SRM_THREE_OBSERVED, &SRM_THREE_SHARES);
        assert_close(three.chi2, SRM_THREE_CHI2, EXACT_MATH, "chi2 of three arms");
        assert_close(three.p_value, SRM_THREE_P, SPECIAL_FUNCTIONS, "p of three arms");
        assert!(!three.flagged, "p ≈ 0.039 is above SRM_ALPHA");
        // Shares need not sum to 1.
        assert_eq!(srm(&SRM_THREE_OBSERVED, &[2.0, 1.0, 1.0]).chi2, three.chi2);
    }

    #[test]
    fn srm_flags_a_real_mismatch_only() {
        let bad = srm(&[10_400, 9_600], &[0.5, 0.5]);
        assert!(bad.flagged && bad.p_value < 2e-8, "{bad:?}");
        let fine = srm(&[10_050, 9_950], &[0.5, 0.5]);
        assert!(!fine.flagged && fine.p_value > 0.4, "{fine:?}");
        let neutral = Srm { chi2: 0.0, p_value: 1.0, flagged: false };
        assert_eq!(srm(&[100], &[1.0]), neutral, "one arm");
        assert_eq!(srm(&[0, 0], &[0.5, 0.5]), neutral, "no units");
        assert_eq!(srm(&[1, 2], &[0.5]), neutral, "mismatched lengths");
        assert_eq!(srm(&[1, 2], &[-0.5, 1.5]), neutral, "negative share");
        assert!(srm(&[10, 10, 1], &[0.5, 0.5, 0.0]).flagged, "units in an arm planned at 0%");
        assert_eq!(srm(&[10, 10, 0], &[0.5, 0.5, 0.0]).chi2, 0.0, "an empty arm planned at 0% is left out");
    }

    #[test]
    fn holm_matches_the_reference() {
        let adjusted = holm(&HOLM_P);
        assert_eq!(adjusted.len(), HOLM_ADJUSTED.len());
        for (a, e) in adjusted.iter().zip(HOLM_ADJUSTED) {
            assert_close(*a, e, EXACT_MATH, "holm");
        }
        assert_eq!(holm(&[]), Vec::<f64>::new());
        assert_eq!(holm(&[0.9, 0.6]), vec![1.0, 1.0], "capped at 1");
        assert_eq!(holm(&[f64::NAN, 0.01]), vec![1.0, 0.02], "NaN counts as 1");
        // Monotone in the order of the raw p-values.
        let mut pairs: Vec<(f64, f64)> = HOLM_P.iter().copied().zip(adjusted).collect();
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(pairs.windows(2).all(|w| w[0].1 <= w[1].1));
    }

    fn mean_and_variance(v: &[f64]) -> (f64, f64) {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        (mean, v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0))
    }

    /// y = 5 + 2x + 1.5ε with x, ε standard normal: ρ² = 4 / (4 + 2.25) = 0.64. In sample, the
    /// adjusted variance is exactly (1 − ρ̂²) times the raw one (θ is the least-squares slope),
    /// so that is checked to rounding; ρ̂² itself is within sampling error of ρ²: with 10,000
    /// units its standard error is about 2ρ(1 − ρ²)/√n ≈ 0.006, and the tolerance 0.03 is 5 of
    /// them. The adjusted mean equals the raw mean because x − x̄ sums to 0.
    #[test]
    fn cuped_reduces_variance_by_rho_squared_and_keeps_the_mean() {
        let mut rng = ChaCha8Rng::seed_from_u64(2013);
        let n = 10_000;
        let x: Vec<f64> = (0..n).map(|_| normal(&mut rng)).collect();
        let y: Vec<f64> = x.iter().map(|xi| 5.0 + 2.0 * xi + 1.5 * normal(&mut rng)).collect();
        let fit = cuped(&y, &x).expect("x varies");
        assert!((fit.theta - 2.0).abs() < 0.05, "theta {}", fit.theta);
        let adjusted = fit.adjust(&y, &x);
        let (mean_y, var_y) = mean_and_variance(&y);
        let (mean_adj, var_adj) = mean_and_variance(&adjusted);
        let (_, var_x) = mean_and_variance(&x);
        let cov = x.iter().zip(&y).map(|(a, b)| (a - fit.mean_covariate) * (b - mean_y)).sum::<f64>() / (n - 1) as f64;
        let rho2_sample = cov * cov / (var_x * var_y);
        assert_close(var_adj / var_y, 1.0 - rho2_sample, 1e-9, "variance ratio vs 1 − ρ̂²");
        assert!((rho2_sample - 0.64).abs() < 0.03, "ρ̂² {rho2_sample}");
        assert!((mean_adj - mean_y).abs() < 1e-12 * mean_y.abs(), "{mean_adj} vs {mean_y}");

        assert!(cuped(&[1.0, 2.0], &[3.0, 3.0]).is_none(), "constant covariate");
        assert!(cuped(&[1.0], &[3.0]).is_none(), "one unit");
        assert!(cuped(&[1.0, 2.0], &[3.0]).is_none(), "mismatched lengths");
    }

    #[test]
    fn sample_size_and_power_match_scipy_and_invert_each_other() {
        let n = sample_size(10.0, 5.0, 0.05, 0.05, 0.8);
        assert_close(n, SAMPLE_SIZE, SPECIAL_FUNCTIONS, "sample size");
        assert_close(power(10.0, 5.0, 0.05, 0.05, 1000.0), POWER_AT_N, SPECIAL_FUNCTIONS, "power at n = 1000");
        for (alpha, target) in [(0.05, 0.8), (0.01, 0.9), (0.1, 0.5)] {
            let n = sample_size(3.0, 7.0, 0.02, alpha, target);
            let achieved = power(3.0, 7.0, 0.02, alpha, n);
            // Above the target by the far rejection tail only, Φ(−z_power − 2·z_{1−α/2}) < 1e-3
            // for these (α, power).
            assert!(achieved >= target - 1e-12 && achieved - target < 1e-3, "{alpha} {target}: {achieved}");
        }
        assert!(sample_size(10.0, 5.0, 0.0, 0.05, 0.8).is_infinite());
        assert!(sample_size(10.0, 5.0, 0.05, 0.0, 0.8).is_nan());
        assert!(sample_size(10.0, 5.0, 0.05, 0.05, 1.0).is_nan());
        assert_eq!(power(10.0, 5.0, 0.0, 0.05, 100.0), 0.05);
        assert!(power(10.0, 5.0, 0.05, 1.5, 100.0).is_nan());
    }
}
