//! What an experiment arm showed: exposure measures over its logged pages (the pages whose
//! impression was written; a `log_share` sample of "for you" pages, every search page of a
//! known shopper).
//!
//! - `coverage`: distinct items shown over the catalog's items.
//! - `gini`: the Gini coefficient of shows over every catalog item (items never shown count
//!   as zero): 0 when every item is shown equally, near 1 when a few take every show.
//! - `tail_share`: the share of shows that went to the long tail — items outside the most
//!   interacted-with fifth of the catalog.
//! - `miscalibration`: per shopper, the Kullback–Leibler divergence of the category mix of
//!   what the arm showed them from the category mix of their own history before the
//!   experiment (Steck 2018, "Calibrated Recommendations", with its α = 0.01 mixing), over
//!   the shoppers who have both; 0 is a page that mirrors the shopper's tastes.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::error::Result;
use crate::model::EventType;
use crate::store::Storage;

/// Share of the catalog counted as the head (the most interacted-with items).
pub const HEAD_SHARE: f64 = 0.2;
/// Steck's mixing of the history into the shown mix, so the divergence stays finite.
const CALIBRATION_ALPHA: f64 = 0.01;

/// Exposure measures of one arm.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Exposure {
    /// Items shown on the arm's logged pages (with repeats).
    pub shows: u64,
    pub distinct_items: usize,
    pub coverage: f64,
    pub gini: f64,
    pub tail_share: f64,
    /// Mean divergence over `calibrated_users` (`None` when no shopper has both a history
    /// and a logged page).
    pub miscalibration: Option<f64>,
    pub calibrated_users: usize,
}

/// The catalog as the exposure measures see it: each item's top-level category and
/// whether it is in the head.
pub struct CatalogView {
    category: HashMap<String, String>,
    head: HashSet<String>,
    items: usize,
}

impl CatalogView {
    /// Read every catalog item and count every item's interactions (one pass over the
    /// in-memory event index).
    pub fn load(store: &dyn Storage) -> Result<Self> {
        let mut category = HashMap::new();
        let mut items = 0usize;
        store.scan_item_meta(&mut |id, meta| {
            items += 1;
            if let Some(top) = meta.category.first() {
                category.insert(id.to_string(), top.to_string());
            }
        })?;
        let mut counts: HashMap<String, u64> = HashMap::new();
        store.scan_interactions(&mut |_, item, interaction| {
            if let Some(item) = item {
                if !matches!(interaction.event_type, EventType::Impression | EventType::Search) {
                    *counts.entry(item.to_string()).or_default() += 1;
                }
            }
        })?;
        let mut ranked: Vec<(String, u64)> = counts.into_iter().collect();
        ranked.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let head_len = ((items as f64) * HEAD_SHARE).ceil() as usize;
        let head = ranked.into_iter().take(head_len).map(|(id, _)| id).collect();
        Ok(Self { category, head, items })
    }

    pub fn category(&self, item: &str) -> Option<&str> {
        self.category.get(item).map(String::as_str)
    }
}

/// The Gini coefficient of `counts` over `population` entities (the missing ones count 0).
pub fn gini(counts: &[u64], population: usize) -> f64 {
    let n = population.max(counts.len());
    let total: u64 = counts.iter().sum();
    if n < 2 || total == 0 {
        return 0.0;
    }
    let mut sorted = counts.to_vec();
    sorted.sort_unstable();
    // Zeros first: with ascending order, G = Σ (2i − n − 1) x_i / (n Σ x), i from 1.
    let offset = n - sorted.len();
    let weighted: f64 =
        sorted.iter().enumerate().map(|(k, &x)| (2.0 * (offset + k + 1) as f64 - n as f64 - 1.0) * x as f64).sum();
    weighted / (n as f64 * total as f64)
}

/// KL(p ‖ (1 − α)q + αp) of two category distributions given as counts.
pub fn miscalibration(history: &HashMap<&str, f64>, shown: &HashMap<&str, f64>) -> Option<f64> {
    let p_total: f64 = history.values().sum();
    let q_total: f64 = shown.values().sum();
    if p_total <= 0.0 || q_total <= 0.0 {
        return None;
    }
    let kl = history
        .iter()
        .map(|(category, count)| {
            let p = count / p_total;
            let q = shown.get(category).copied().unwrap_or(0.0) / q_total;
            let mixed = (1.0 - CALIBRATION_ALPHA) * q + CALIBRATION_ALPHA * p;
            if p > 0.0 {
                p * (p / mixed).ln()
            } else {
                0.0
            }
        })
        .sum();
    Some(kl)
}

/// One shopper's part: the items an arm showed them and their history's items.
#[derive(Debug, Default, Clone)]
pub struct ShopperExposure {
    pub shown: Vec<String>,
    pub history: Vec<String>,
}

/// The measures of one arm over its shoppers.
pub fn measure(catalog: &CatalogView, shoppers: &[&ShopperExposure]) -> Exposure {
    let mut counts: HashMap<&str, u64> = HashMap::new();
    let mut shows = 0u64;
    let mut tail = 0u64;
    let mut divergences = Vec::new();
    for shopper in shoppers {
        for item in &shopper.shown {
            *counts.entry(item.as_str()).or_default() += 1;
            shows += 1;
            if !catalog.head.contains(item) {
                tail += 1;
            }
        }
        let mix = |items: &[String]| {
            let mut mix: HashMap<&str, f64> = HashMap::new();
            for item in items {
                if let Some(category) = catalog.category(item) {
                    *mix.entry(category).or_default() += 1.0;
                }
            }
            mix
        };
        if let Some(kl) = miscalibration(&mix(&shopper.history), &mix(&shopper.shown)) {
            divergences.push(kl);
        }
    }
    let shown_counts: Vec<u64> = counts.values().copied().collect();
    Exposure {
        shows,
        distinct_items: counts.len(),
        coverage: if catalog.items == 0 { 0.0 } else { counts.len() as f64 / catalog.items as f64 },
        gini: gini(&shown_counts, catalog.items),
        tail_share: if shows == 0 { 0.0 } else { tail as f64 / shows as f64 },
        miscalibration: (!divergences.is_empty()).then(|| divergences.iter().sum::<f64>() / divergences.len() as f64),
        calibrated_users: divergences.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gini_is_zero_for_equal_exposure_and_near_one_when_one_item_takes_all() {
        assert_eq!(gini(&[5, 5, 5, 5], 4), 0.0);
        // One of 100 items takes every show: (n − 1) / n.
        assert!((gini(&[10], 100) - 0.99).abs() < 1e-12);
        // Checked by hand: counts 1, 2, 3 over 4 items (one never shown): G = 5/12.
        assert!((gini(&[3, 1, 2], 4) - 5.0 / 12.0).abs() < 1e-12);
        assert_eq!(gini(&[], 10), 0.0);
    }

    #[test]
    fn a_page_that_mirrors_the_history_is_calibrated() {
        let history: HashMap<&str, f64> = [("shoes", 3.0), ("books", 1.0)].into_iter().collect();
        let same: HashMap<&str, f64> = [("shoes", 6.0), ("books", 2.0)].into_iter().collect();
        assert!(miscalibration(&history, &same).unwrap().abs() < 1e-12);
        let only_shoes: HashMap<&str, f64> = [("shoes", 8.0)].into_iter().collect();
        let off = miscalibration(&history, &only_shoes).unwrap();
        // p(books) = 0.25 against a mixed 0.0025: 0.25 ln 100 + 0.75 ln(0.75 / 0.9925).
        let expected = 0.25 * (0.25f64 / 0.0025).ln() + 0.75 * (0.75f64 / (0.99 + 0.0075)).ln();
        assert!((off - expected).abs() < 1e-12, "{off} vs {expected}");
        assert_eq!(miscalibration(&HashMap::new(), &same), None);
    }

    #[test]
    fn an_arm_that_shows_only_the_head_has_no_tail_share() {
        let catalog = CatalogView {
            category: [("a", "x"), ("b", "x"), ("c", "y"), ("d", "y"), ("e", "y")]
                .into_iter()
                .map(|(i, c)| (i.to_string(), c.to_string()))
                .collect(),
            head: ["a".to_string()].into_iter().collect(),
            items: 5,
        };
        let head_only = ShopperExposure { shown: vec!["a".into(), "a".into()], history: vec!["a".into()] };
        let mixed = ShopperExposure { shown: vec!["a".into(), "c".into()], history: vec!["c".into(), "a".into()] };
        let m = measure(&catalog, &[&head_only]);
        assert_eq!((m.shows, m.distinct_items, m.tail_share), (2, 1, 0.0));
        assert!((m.coverage - 0.2).abs() < 1e-12);
        assert_eq!(m.miscalibration, Some(0.0));
        let m = measure(&catalog, &[&head_only, &mixed]);
        assert_eq!((m.shows, m.distinct_items), (4, 2));
        assert!((m.tail_share - 0.25).abs() < 1e-12);
        assert_eq!(m.calibrated_users, 2);
    }
}
