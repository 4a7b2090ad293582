//! Exploration slots: which new and long-tail items a page shows in the slots it sets aside
//! for learning, and with what probability.
//!
//! Each candidate's click rate is a Beta posterior over its own shows and clicks. The prior
//! is either flat, Beta(1, 1), or centred on the candidate's category's pooled click rate
//! with `strength` pseudo-shows (empirical Bayes: a category whose items are rarely clicked
//! starts its new items low). Thompson sampling draws one rate per candidate and the slots
//! take the highest draws, best first.
//!
//! Thompson sampling has no closed-form propensity, so the probability of each pick at its
//! slot is estimated the way obp does for its Thompson-sampling policies: the same draw is
//! repeated `simulations` times and counted. The draw that was served is one of the
//! repetitions, so no shown item has propensity 0 (the estimate is `count / (simulations
//! + 1)`, unbiased for the served policy's probability up to that one count).
//!
//! `souk eval --protocol exploration` compares it with a flat prior, uniform random picks
//! and no exploration on simulated shops (figures in BENCHMARKS.md): at the traffic
//! simulated so far the three exploring policies cost about the same, so the category
//! prior is the default for its better start on new items, not for a measured win.

use std::collections::HashMap;

use rand::Rng;
use rand_distr::{Beta, Distribution};
use serde::{Deserialize, Serialize};

/// How the exploration slots are filled (`[rank.explore]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExploreSettings {
    /// Page positions (0-based) given to exploration on logged pages; empty: none.
    pub slots: Vec<usize>,
    /// Candidates past the page considered, at most.
    pub pool: usize,
    /// Items shown this often in exploration slots leave the pool.
    pub pool_shows: f64,
    /// Pseudo-shows of the category prior.
    pub prior_strength: f64,
    /// Repeated draws that estimate each pick's propensity.
    pub simulations: usize,
}

impl Default for ExploreSettings {
    fn default() -> Self {
        Self { slots: vec![7], pool: 100, pool_shows: 200.0, prior_strength: 20.0, simulations: 100 }
    }
}

impl ExploreSettings {
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.slots.windows(2).any(|w| w[0] >= w[1]) || self.slots.iter().any(|s| *s >= 100) {
            problems.push(("slots".into(), "expected ascending page positions below 100".into()));
        }
        if self.pool == 0 || self.pool > 10_000 {
            problems.push(("pool".into(), format!("expected 1..=10000 candidates, found {}", self.pool)));
        }
        if !(self.pool_shows > 0.0 && self.pool_shows.is_finite()) {
            problems.push(("pool_shows".into(), format!("expected a positive number, found {}", self.pool_shows)));
        }
        if !(self.prior_strength > 0.0 && self.prior_strength.is_finite()) {
            problems
                .push(("prior_strength".into(), format!("expected a positive number, found {}", self.prior_strength)));
        }
        if !(10..=10_000).contains(&self.simulations) {
            problems.push(("simulations".into(), format!("expected 10..=10000 draws, found {}", self.simulations)));
        }
        problems
    }
}

/// Shows and clicks of one item (or pooled over a category, or the whole shop).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ClickCounts {
    pub shows: f64,
    pub clicks: f64,
}

impl ClickCounts {
    /// The rate with `pseudo` shows at `prior` added (the posterior mean).
    pub fn smoothed(&self, prior: f64, pseudo: f64) -> f64 {
        (self.clicks + prior * pseudo) / (self.shows + pseudo).max(f64::MIN_POSITIVE)
    }
}

/// Where a candidate's click rate starts before it is shown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Prior {
    /// Beta(1, 1): every new item starts at one half.
    Flat,
    /// The category's pooled rate (itself smoothed towards the shop's) with `strength`
    /// pseudo-shows.
    Category { strength: f64 },
}

/// Pseudo-shows that pull a category's pooled rate towards the shop's.
const CATEGORY_SMOOTHING: f64 = 50.0;

/// Shows and clicks per item and per category.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BanditCounts {
    items: HashMap<String, ClickCounts, ahash::RandomState>,
    categories: HashMap<String, ClickCounts, ahash::RandomState>,
    total: ClickCounts,
}

impl BanditCounts {
    /// `item` (of `category`) was shown once.
    pub fn show(&mut self, item: &str, category: Option<&str>) {
        self.add(item, category, ClickCounts { shows: 1.0, clicks: 0.0 });
    }

    /// `item` was shown where it is looked at with probability `examination`: it counts
    /// as that share of a show (clicks over examination-weighted shows estimate the click
    /// rate of an item that is looked at, whatever its positions).
    pub fn show_weighted(&mut self, item: &str, category: Option<&str>, examination: f64) {
        self.add(item, category, ClickCounts { shows: examination, clicks: 0.0 });
    }

    /// `item` (of `category`) was clicked where it was shown.
    pub fn click(&mut self, item: &str, category: Option<&str>) {
        self.add(item, category, ClickCounts { shows: 0.0, clicks: 1.0 });
    }

    fn add(&mut self, item: &str, category: Option<&str>, delta: ClickCounts) {
        let apply = |c: &mut ClickCounts| {
            c.shows += delta.shows;
            c.clicks += delta.clicks;
        };
        match self.items.get_mut(item) {
            Some(c) => apply(c),
            None => apply(self.items.entry(item.to_string()).or_default()),
        }
        if let Some(category) = category {
            match self.categories.get_mut(category) {
                Some(c) => apply(c),
                None => apply(self.categories.entry(category.to_string()).or_default()),
            }
        }
        apply(&mut self.total);
    }

    pub fn item(&self, item: &str) -> ClickCounts {
        self.items.get(item).copied().unwrap_or_default()
    }

    pub fn total(&self) -> ClickCounts {
        self.total
    }

    /// The Beta posterior (α, β) of `item`'s click rate.
    pub fn posterior(&self, item: &str, category: Option<&str>, prior: Prior) -> (f64, f64) {
        let own = self.item(item);
        let (a0, b0) = match prior {
            Prior::Flat => (1.0, 1.0),
            Prior::Category { strength } => {
                let shop = self.total.smoothed(0.5, 2.0);
                let rate = category
                    .and_then(|c| self.categories.get(c))
                    .map_or(shop, |c| c.smoothed(shop, CATEGORY_SMOOTHING))
                    .clamp(1e-4, 1.0 - 1e-4);
                (rate * strength, (1.0 - rate) * strength)
            }
        };
        let misses = (own.shows - own.clicks).max(0.0);
        (a0 + own.clicks, b0 + misses)
    }
}

/// One exploration pick: the candidate's index, the probability that the policy put it
/// in this slot, and the probability that it put it in any of the slots.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pick {
    pub candidate: usize,
    pub propensity: f64,
    pub on_page: f64,
}

/// Draw one rate per candidate from its posterior `(α, β)`.
fn draw(posteriors: &[Beta<f64>], rng: &mut impl Rng, out: &mut Vec<(usize, f64)>) {
    out.clear();
    out.extend(posteriors.iter().enumerate().map(|(i, beta)| (i, beta.sample(rng))));
}

/// The candidates of the `slots` highest draws, best first (fewer when there are fewer).
fn best(draws: &mut [(usize, f64)], slots: usize) -> Vec<usize> {
    let slots = slots.min(draws.len());
    if slots == 0 {
        return Vec::new();
    }
    let by_draw = |a: &(usize, f64), b: &(usize, f64)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if draws.len() > slots {
        draws.select_nth_unstable_by(slots - 1, by_draw);
    }
    draws[..slots].sort_unstable_by(by_draw);
    draws[..slots].iter().map(|(i, _)| *i).collect()
}

/// The Beta distributions of `posteriors` (parameters below a tiny floor are raised to it).
fn betas(posteriors: &[(f64, f64)]) -> Vec<Beta<f64>> {
    posteriors.iter().map(|&(a, b)| Beta::new(a.max(1e-3), b.max(1e-3)).expect("positive, finite parameters")).collect()
}

/// Thompson sampling over candidates with Beta posteriors `(α, β)`: the picks for `slots`
/// slots, best first, each with its propensity at its slot estimated from `simulations`
/// further draws (none: the propensities are left at 0 — for simulations that do not log).
pub fn thompson(posteriors: &[(f64, f64)], slots: usize, simulations: usize, rng: &mut impl Rng) -> Vec<Pick> {
    let betas = betas(posteriors);
    let mut draws = Vec::with_capacity(betas.len());
    draw(&betas, rng, &mut draws);
    let chosen = best(&mut draws, slots);
    if simulations == 0 {
        return chosen.into_iter().map(|candidate| Pick { candidate, propensity: 0.0, on_page: 0.0 }).collect();
    }
    // How often the served pick of each slot landed there again, and anywhere on the page.
    let mut at_slot = vec![1usize; chosen.len()];
    let mut on_page = vec![1usize; chosen.len()];
    for _ in 0..simulations {
        draw(&betas, rng, &mut draws);
        let again = best(&mut draws, chosen.len());
        for (slot, candidate) in chosen.iter().enumerate() {
            if again[slot] == *candidate {
                at_slot[slot] += 1;
            }
            if again.contains(candidate) {
                on_page[slot] += 1;
            }
        }
    }
    let total = (simulations + 1) as f64;
    chosen
        .into_iter()
        .enumerate()
        .map(|(slot, candidate)| Pick {
            candidate,
            propensity: at_slot[slot] as f64 / total,
            on_page: on_page[slot] as f64 / total,
        })
        .collect()
}

/// Put `picks` (best first) into `slots` (ascending page positions) of `ranked`, the rest of
/// the page in ranked order: a page of `ranked.len() + picks.len()` items at most. Slots past
/// the end of the page take the next free position. Returns the page and, per position,
/// whether it holds a pick (and which).
pub fn place<T>(ranked: Vec<T>, picks: Vec<T>, slots: &[usize]) -> (Vec<T>, Vec<Option<usize>>) {
    let size = ranked.len() + picks.len();
    let mut ranked = ranked.into_iter();
    let mut picks = picks.into_iter().enumerate().peekable();
    let mut page = Vec::with_capacity(size);
    let mut origin = Vec::with_capacity(size);
    let mut next_slot = slots.iter().copied().peekable();
    while page.len() < size {
        let position = page.len();
        let slot_here = next_slot.peek().is_some_and(|s| *s <= position);
        if slot_here {
            next_slot.next();
        }
        let take_pick = slot_here || ranked.len() == 0;
        match (take_pick, picks.peek().is_some()) {
            (true, true) => {
                let (index, item) = picks.next().expect("peeked");
                page.push(item);
                origin.push(Some(index));
            }
            _ => match ranked.next() {
                Some(item) => {
                    page.push(item);
                    origin.push(None);
                }
                None => break,
            },
        }
    }
    (page, origin)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn the_category_prior_starts_a_new_item_at_its_categorys_rate() {
        let mut counts = BanditCounts::default();
        for i in 0..1_000 {
            let item = format!("shoe{}", i % 10);
            counts.show(&item, Some("shoes"));
            if i % 10 == 0 {
                counts.click(&item, Some("shoes"));
            }
            let book = format!("book{}", i % 10);
            counts.show(&book, Some("books"));
            if i % 50 == 0 {
                counts.click(&book, Some("books"));
            }
        }
        let prior = Prior::Category { strength: 20.0 };
        let mean = |(a, b): (f64, f64)| a / (a + b);
        let new_shoe = mean(counts.posterior("new", Some("shoes"), prior));
        let new_book = mean(counts.posterior("new", Some("books"), prior));
        assert!((new_shoe - 0.1).abs() < 0.02, "{new_shoe}");
        assert!((new_book - 0.02).abs() < 0.01, "{new_book}");
        assert_eq!(counts.posterior("new", Some("shoes"), Prior::Flat), (1.0, 1.0));
        // Its own evidence moves it: 10 clicks in 20 shows.
        for _ in 0..20 {
            counts.show("new", Some("books"));
        }
        for _ in 0..10 {
            counts.click("new", Some("books"));
        }
        assert!(mean(counts.posterior("new", Some("books"), prior)) > 0.2);
    }

    #[test]
    fn thompson_picks_the_clearly_best_and_its_propensity_matches_its_frequency() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        // Candidate 2 is clearly best; 0 and 1 are equal and uncertain.
        let posteriors = [(2.0, 8.0), (2.0, 8.0), (400.0, 100.0)];
        let picks = thompson(&posteriors, 2, 2_000, &mut rng);
        assert_eq!(picks.len(), 2);
        assert_eq!(picks[0].candidate, 2);
        assert!(picks[0].propensity > 0.99, "{picks:?}");
        assert!((picks[1].propensity - 0.5).abs() < 0.05, "{picks:?}");
        // The estimate agrees with how often the policy itself chooses each pick.
        let mut firsts = [0usize; 3];
        for _ in 0..4_000 {
            firsts[thompson(&[(3.0, 7.0), (5.0, 5.0), (1.0, 1.0)], 1, 0, &mut rng)[0].candidate] += 1;
        }
        let estimated = thompson(&[(3.0, 7.0), (5.0, 5.0), (1.0, 1.0)], 1, 4_000, &mut rng)[0];
        let frequency = firsts[estimated.candidate] as f64 / 4_000.0;
        assert!((estimated.propensity - frequency).abs() < 0.04, "{estimated:?} vs {frequency}");
        assert!(thompson(&[], 2, 10, &mut rng).is_empty());
    }

    #[test]
    fn picks_go_into_their_slots_and_the_ranked_items_keep_their_order() {
        let (page, origin) = place(vec!["a", "b", "c", "d"], vec!["x", "y"], &[1, 4]);
        assert_eq!(page, vec!["a", "x", "b", "c", "y", "d"]);
        assert_eq!(origin, vec![None, Some(0), None, None, Some(1), None]);
        // A slot past a short page: the pick follows the ranked items.
        let (page, origin) = place(vec!["a"], vec!["x"], &[5]);
        assert_eq!(page, vec!["a", "x"]);
        assert_eq!(origin, vec![None, Some(0)]);
        // Fewer picks than slots.
        let (page, _) = place(vec!["a", "b", "c"], vec![], &[0, 1]);
        assert_eq!(page, vec!["a", "b", "c"]);
    }
}
