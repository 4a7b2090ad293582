//! The exploration protocol (`souk eval --protocol exploration`): which policy should fill
//! the slots a page sets aside for new and long-tail items, and what does exploring cost?
//!
//! 1. **Shop.** A `souk gen` catalog and its shoppers' latent tastes. A shopper who looks at
//!    an item clicks it with probability `σ(u − 3)`, `u` the generator's latent utility (as
//!    in the simulated-ranking protocol); slot `p` is looked at with probability
//!    `1 / (1 + p)`. Neither is known to the policies.
//! 2. **History.** A `new_share` of the catalog is a cohort of new items with no history;
//!    the rest is warm: `warm_shows` shows spread over it by the generator's popularity,
//!    clicked as above.
//! 3. **Pages.** Each page goes to a shopper drawn by activity. The static ranker fills it
//!    with the items of the best estimated click rate (clicks over examination-weighted
//!    shows — position bias as the ranker's join corrects it — smoothed towards the shop's
//!    rate; items with fewer than `rankable_shows` weighted shows have no estimate and are
//!    not ranked). An exploring policy puts its picks into `slots` instead, chosen among
//!    the pool — items with fewer than `pool_shows` weighted shows (new and long tail):
//!    `none` (no slots), `uniform` (random pool items), `thompson-flat` and
//!    `thompson-category` ([`crate::rank::explore`] with a flat or a category prior).
//!    Every show and click updates the counts every policy learns from. Policies meet the
//!    same shoppers in the same order and the same random numbers decide their clicks
//!    (common random numbers), so their differences are not drowned by chance.
//! 4. **Measures**, per policy over `seeds` shops (mean and the 95% interval of the mean):
//!    expected clicks (the sum over shown items of examination × click probability)
//!    relative to `none`; regret — expected clicks short of an oracle page of the best
//!    items by true click rate; the cohort's share of shows; the Spearman correlation of
//!    the cohort's estimated and true click rates at the end; and how many cohort shows it
//!    took to reach `rank_target`, checked every `check_every` pages.

use rand::distributions::{Distribution, WeightedIndex};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, ValidationError};
use crate::gen::{GenConfig, Generator};
use crate::rank::explore::{self, BanditCounts, Prior};

pub const PROTOCOL: &str = "exploration";

/// The protocol's settings (`--param exploration.KEY=VALUE`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExplorationConfig {
    pub seed: u64,
    /// Shops simulated per policy (seeds `seed`, `seed + 1`, …).
    pub seeds: usize,
    pub items: usize,
    pub users: usize,
    /// Share of the catalog that enters as new items.
    pub new_share: f64,
    /// Shows of warm items before the first page.
    pub warm_shows: usize,
    pub pages: usize,
    pub page_size: usize,
    /// Page positions (0-based) of the exploration slots.
    pub slots: Vec<usize>,
    /// Items shown fewer times are candidates for the slots.
    pub pool_shows: f64,
    /// Items shown fewer times are not ranked by the static ranker.
    pub rankable_shows: f64,
    /// Pseudo-shows of the category prior.
    pub prior_strength: f64,
    pub rank_target: f64,
    pub check_every: usize,
}

impl Default for ExplorationConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            seeds: 5,
            items: 2_000,
            users: 2_000,
            new_share: 0.1,
            warm_shows: 200_000,
            pages: 40_000,
            page_size: 10,
            slots: vec![7],
            pool_shows: 50.0,
            rankable_shows: 5.0,
            prior_strength: 20.0,
            rank_target: 0.5,
            check_every: 250,
        }
    }
}

impl ExplorationConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, message: String| {
            Err(Error::Invalid(ValidationError::new("invalid_config", format!("exploration.{field}"), message)))
        };
        if self.seeds == 0 || self.pages == 0 || self.check_every == 0 {
            return bad("seeds", "seeds, pages and check_every must be at least 1".into());
        }
        if !(self.new_share > 0.0 && self.new_share < 1.0) {
            return bad("new_share", format!("expected a share in (0, 1), found {}", self.new_share));
        }
        if self.items < 20 || self.users == 0 {
            return bad("items", "expected at least 20 items and 1 user".into());
        }
        if self.page_size == 0 || self.slots.iter().any(|s| *s >= self.page_size) {
            return bad("slots", format!("slots must be positions below page_size {}", self.page_size));
        }
        if self.prior_strength.is_nan() || self.prior_strength <= 0.0 || !(0.0..=1.0).contains(&self.rank_target) {
            return bad("prior_strength", "expected a positive prior strength and a target in [0, 1]".into());
        }
        Ok(())
    }
}

/// How the exploration slots are filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    None,
    Uniform,
    ThompsonFlat,
    ThompsonCategory,
}

impl Policy {
    pub const ALL: [Policy; 4] = [Policy::None, Policy::Uniform, Policy::ThompsonFlat, Policy::ThompsonCategory];
}

/// A mean over seeds and the half-width of its 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    pub mean: f64,
    /// Half-width of the 95% t-interval over the values; not a number (`null` in JSON) for
    /// fewer than two values, where there is no interval.
    pub ci95: f64,
}

impl Estimate {
    /// `mean ± ci95` with `digits` decimals, or `mean (one shop)` where there is no
    /// interval (the protocols' replications are shops).
    pub fn display(&self, digits: usize) -> String {
        if self.ci95.is_finite() {
            format!("{:.digits$} ± {:.digits$}", self.mean, self.ci95)
        } else {
            format!("{:.digits$} (one shop)", self.mean)
        }
    }
}

pub(crate) fn estimate(values: &[f64]) -> Estimate {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return Estimate { mean, ci95: f64::NAN };
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let t = statrs::distribution::StudentsT::new(0.0, 1.0, n - 1.0).map_or(1.96, |t| {
        use statrs::distribution::ContinuousCDF;
        t.inverse_cdf(0.975)
    });
    Estimate { mean, ci95: t * (var / n).sqrt() }
}

/// One policy's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyReport {
    pub policy: Policy,
    /// Clicks the simulated shoppers made.
    pub clicks: Estimate,
    /// Expected clicks relative to no exploration, in percent (per shop, then averaged).
    pub clicks_vs_none_pct: Estimate,
    /// Expected clicks short of the oracle, in percent of the oracle's.
    pub regret_pct: Estimate,
    /// Shows of cohort items until their estimated order reached the target, per shop
    /// that reached it.
    pub cohort_shows_to_rank: Option<Estimate>,
    /// Shops (of `seeds`) whose cohort reached the target.
    pub reached: usize,
    /// Share of all shows that went to cohort items.
    pub cohort_show_share: Estimate,
    /// Spearman correlation of the cohort's estimated and true click rates at the end.
    pub cohort_rank_correlation: Estimate,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExplorationReport {
    pub config: ExplorationConfig,
    pub cohort_items: usize,
    pub policies: Vec<PolicyReport>,
}

/// The latent shop: true click rates come from here.
struct Shop {
    generator: Generator,
    users: WeightedIndex<f64>,
    categories: Vec<String>,
    /// Mean click probability over shoppers, per item (the oracle's order).
    true_rate: Vec<f64>,
    popularity: WeightedIndex<f64>,
    cohort: Vec<usize>,
    is_new: Vec<bool>,
}

fn click_probability(utility: f64) -> f64 {
    1.0 / (1.0 + (3.0 - utility).exp())
}

fn examination(position: usize) -> f64 {
    1.0 / (1.0 + position as f64)
}

impl Shop {
    fn new(config: &ExplorationConfig, seed: u64) -> Result<Self> {
        let generator = Generator::new(GenConfig { items: config.items, users: config.users, events: 0, seed })?;
        let truth = generator.ground_truth()?;
        let users = WeightedIndex::new(truth.users.iter().map(|u| u.activity))
            .map_err(|e| Error::Internal(format!("shoppers' activity: {e}")))?;
        let popularity = WeightedIndex::new(truth.items.iter().map(|i| i.popularity))
            .map_err(|e| Error::Internal(format!("items' popularity: {e}")))?;
        let categories: Vec<String> = truth.items.iter().map(|i| i.category.clone()).collect();
        // The mean over a fixed sample of shoppers is the item's true rate.
        let sample: Vec<usize> = (0..config.users).step_by((config.users / 500).max(1)).collect();
        let true_rate = (0..config.items)
            .map(|item| {
                sample
                    .iter()
                    .map(|&u| click_probability(generator.true_utility(u, item).unwrap_or(f64::NEG_INFINITY)))
                    .sum::<f64>()
                    / sample.len() as f64
            })
            .collect();
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_c0de);
        let mut order: Vec<usize> = (0..config.items).collect();
        order.shuffle(&mut rng);
        let cohort_len = ((config.items as f64 * config.new_share).round() as usize).max(2);
        let mut cohort = order[..cohort_len].to_vec();
        cohort.sort_unstable();
        let mut is_new = vec![false; config.items];
        for &i in &cohort {
            is_new[i] = true;
        }
        Ok(Self { generator, users, categories, true_rate, popularity, cohort, is_new })
    }

    /// The probability that `user` clicks `item` shown at `position`.
    fn click_chance(&self, user: usize, item: usize, position: usize) -> f64 {
        examination(position) * click_probability(self.generator.true_utility(user, item).unwrap_or(-1e9))
    }
}

/// What one shop under one policy gave.
struct Run {
    clicks: f64,
    expected: f64,
    oracle: f64,
    cohort_shows_to_rank: Option<f64>,
    cohort_shows: f64,
    shows: f64,
    cohort_correlation: f64,
}

fn item_key(item: usize) -> String {
    format!("{item}")
}

/// Spearman's rank correlation of two equally long lists (average ranks for ties).
fn spearman(a: &[f64], b: &[f64]) -> f64 {
    fn ranks(v: &[f64]) -> Vec<f64> {
        let mut order: Vec<usize> = (0..v.len()).collect();
        order.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
        let mut ranks = vec![0.0; v.len()];
        let mut start = 0;
        while start < order.len() {
            let mut end = start + 1;
            while end < order.len() && v[order[end]] == v[order[start]] {
                end += 1;
            }
            let rank = (start + end - 1) as f64 / 2.0;
            for &i in &order[start..end] {
                ranks[i] = rank;
            }
            start = end;
        }
        ranks
    }
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    let mean = (n - 1.0) / 2.0;
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - mean) * (y - mean)).sum();
    let var_a: f64 = ra.iter().map(|x| (x - mean).powi(2)).sum();
    let var_b: f64 = rb.iter().map(|y| (y - mean).powi(2)).sum();
    if var_a == 0.0 || var_b == 0.0 {
        0.0
    } else {
        cov / (var_a * var_b).sqrt()
    }
}

fn run(shop: &Shop, config: &ExplorationConfig, policy: Policy, seed: u64) -> Run {
    // Common random numbers: shoppers and the uniform draws that decide clicks come from
    // streams every policy shares; only the policy's own choices use `rng`.
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut shoppers = ChaCha8Rng::seed_from_u64(seed ^ 0x0005_4009);
    let mut chance = ChaCha8Rng::seed_from_u64(seed ^ 0x00c1_1c55);
    let mut counts = BanditCounts::default();
    let keys: Vec<String> = (0..config.items).map(item_key).collect();
    let category = |item: usize| Some(shop.categories[item].as_str());
    // Warm history: shows by popularity at a random position of a page.
    for _ in 0..config.warm_shows {
        let item = shop.popularity.sample(&mut shoppers);
        let user = shop.users.sample(&mut shoppers);
        let position = shoppers.gen_range(0..config.page_size);
        let draw = chance.gen::<f64>();
        if shop.is_new[item] {
            continue;
        }
        counts.show_weighted(&keys[item], category(item), examination(position));
        if draw < shop.click_chance(user, item, position) {
            counts.click(&keys[item], category(item));
        }
    }
    let mut oracle_order: Vec<usize> = (0..config.items).collect();
    oracle_order.sort_by(|&a, &b| shop.true_rate[b].total_cmp(&shop.true_rate[a]));
    let oracle_page = &oracle_order[..config.page_size];
    let slots: &[usize] = if policy == Policy::None { &[] } else { &config.slots };
    let ranked_len = config.page_size - slots.len();
    let prior = match policy {
        Policy::ThompsonFlat => Prior::Flat,
        _ => Prior::Category { strength: config.prior_strength },
    };
    let cohort_true: Vec<f64> = shop.cohort.iter().map(|&i| shop.true_rate[i]).collect();
    let mut result = Run {
        clicks: 0.0,
        expected: 0.0,
        oracle: 0.0,
        cohort_shows_to_rank: None,
        cohort_shows: 0.0,
        shows: 0.0,
        cohort_correlation: 0.0,
    };
    let cohort_estimates = |counts: &BanditCounts| -> Vec<f64> {
        let shop_rate = counts.total().smoothed(0.5, 2.0);
        shop.cohort.iter().map(|&i| counts.item(&keys[i]).smoothed(shop_rate, 10.0)).collect()
    };
    let mut scores: Vec<(usize, f64)> = Vec::with_capacity(config.items);
    for page_number in 0..config.pages {
        // The static ranker: best estimated rate among rankable items.
        let shop_rate = counts.total().smoothed(0.5, 2.0);
        scores.clear();
        scores.extend((0..config.items).filter_map(|i| {
            let c = counts.item(&keys[i]);
            (c.shows >= config.rankable_shows).then(|| (i, c.smoothed(shop_rate, 10.0)))
        }));
        let by_score = |a: &(usize, f64), b: &(usize, f64)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        let take = ranked_len.min(scores.len());
        if take > 0 && scores.len() > take {
            scores.select_nth_unstable_by(take - 1, by_score);
        }
        scores[..take].sort_unstable_by(by_score);
        let ranked: Vec<usize> = scores[..take].iter().map(|(i, _)| *i).collect();
        let pool: Vec<usize> = (0..config.items)
            .filter(|i| counts.item(&keys[*i]).shows < config.pool_shows && !ranked.contains(i))
            .collect();
        let picks: Vec<usize> = match policy {
            Policy::None => Vec::new(),
            Policy::Uniform => pool.choose_multiple(&mut rng, slots.len()).copied().collect(),
            Policy::ThompsonFlat | Policy::ThompsonCategory => {
                let posteriors: Vec<(f64, f64)> =
                    pool.iter().map(|&i| counts.posterior(&keys[i], category(i), prior)).collect();
                explore::thompson(&posteriors, slots.len(), 0, &mut rng)
                    .into_iter()
                    .map(|p| pool[p.candidate])
                    .collect()
            }
        };
        let (page, _) = explore::place(ranked, picks, slots);
        let user = shop.users.sample(&mut shoppers);
        let draws: Vec<f64> = (0..config.page_size).map(|_| chance.gen::<f64>()).collect();
        for (position, &item) in page.iter().enumerate() {
            let p = shop.click_chance(user, item, position);
            result.expected += p;
            counts.show_weighted(&keys[item], category(item), examination(position));
            result.shows += 1.0;
            if shop.is_new[item] {
                result.cohort_shows += 1.0;
            }
            if draws[position] < p {
                counts.click(&keys[item], category(item));
                result.clicks += 1.0;
            }
        }
        for (position, &item) in oracle_page.iter().enumerate() {
            result.oracle += shop.click_chance(user, item, position);
        }
        let check = result.cohort_shows_to_rank.is_none() && (page_number + 1) % config.check_every == 0;
        if check && spearman(&cohort_estimates(&counts), &cohort_true) >= config.rank_target {
            result.cohort_shows_to_rank = Some(result.cohort_shows);
        }
    }
    result.cohort_correlation = spearman(&cohort_estimates(&counts), &cohort_true);
    result
}

/// Run every policy on `config.seeds` shops.
pub fn evaluate(config: &ExplorationConfig, progress: &mut dyn FnMut(&str)) -> Result<ExplorationReport> {
    config.validate()?;
    let mut runs: Vec<Vec<Run>> = Policy::ALL.iter().map(|_| Vec::new()).collect();
    let mut cohort_items = 0;
    for s in 0..config.seeds {
        let seed = config.seed.wrapping_add(s as u64);
        progress(&format!("shop {} of {}", s + 1, config.seeds));
        let shop = Shop::new(config, seed)?;
        cohort_items = shop.cohort.len();
        for (p, policy) in Policy::ALL.iter().enumerate() {
            // The same seed per shop: every policy meets the same shoppers in the same order.
            runs[p].push(run(&shop, config, *policy, seed.wrapping_mul(31).wrapping_add(7)));
        }
    }
    let none: Vec<f64> = runs[0].iter().map(|r| r.expected).collect();
    let policies = Policy::ALL
        .iter()
        .zip(&runs)
        .map(|(policy, runs)| {
            let reached: Vec<f64> = runs.iter().filter_map(|r| r.cohort_shows_to_rank).collect();
            PolicyReport {
                policy: *policy,
                clicks: estimate(&runs.iter().map(|r| r.clicks).collect::<Vec<_>>()),
                clicks_vs_none_pct: estimate(
                    &runs.iter().zip(&none).map(|(r, n)| 100.0 * (r.expected / n - 1.0)).collect::<Vec<_>>(),
                ),
                regret_pct: estimate(&runs.iter().map(|r| 100.0 * (1.0 - r.expected / r.oracle)).collect::<Vec<_>>()),
                cohort_shows_to_rank: (!reached.is_empty()).then(|| estimate(&reached)),
                reached: reached.len(),
                cohort_show_share: estimate(&runs.iter().map(|r| r.cohort_shows / r.shows).collect::<Vec<_>>()),
                cohort_rank_correlation: estimate(&runs.iter().map(|r| r.cohort_correlation).collect::<Vec<_>>()),
            }
        })
        .collect();
    Ok(ExplorationReport { config: config.clone(), cohort_items, policies })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_is_one_for_the_same_order_and_minus_one_reversed() {
        assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        assert_eq!(spearman(&[1.0, 1.0], &[1.0, 2.0]), 0.0);
    }

    #[test]
    fn exploring_policies_show_the_cohort_and_no_exploration_never_does() {
        let config = ExplorationConfig {
            seeds: 2,
            items: 300,
            users: 300,
            warm_shows: 30_000,
            pages: 3_000,
            check_every: 100,
            ..ExplorationConfig::default()
        };
        let report = evaluate(&config, &mut |_| {}).unwrap();
        assert_eq!(report.cohort_items, 30);
        let of = |p: Policy| report.policies.iter().find(|r| r.policy == p).unwrap();
        // Without slots no new item is ever shown, so nothing is learnt about the cohort.
        let none = of(Policy::None);
        assert_eq!((none.cohort_show_share.mean, none.reached), (0.0, 0));
        assert_eq!(none.cohort_rank_correlation.mean, 0.0);
        assert_eq!(none.clicks_vs_none_pct.mean, 0.0);
        for p in [Policy::Uniform, Policy::ThompsonFlat, Policy::ThompsonCategory] {
            let r = of(p);
            assert!(r.cohort_show_share.mean > 0.0, "{p:?}");
            assert!(r.regret_pct.mean.is_finite() && r.regret_pct.mean < 100.0, "{r:?}");
            // One slot of ten, at position 8, costs far less than a fifth of the clicks.
            assert!(r.clicks_vs_none_pct.mean > -20.0, "{r:?}");
        }
        assert!(ExplorationConfig { slots: vec![10], ..config }.validate().is_err());
    }
}
