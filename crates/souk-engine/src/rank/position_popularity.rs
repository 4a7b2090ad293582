//! Popularity by position: the click-model baseline. The click probability of an item in a
//! slot is its click rate there in the training log, smoothed toward the slot's click rate
//! by a Beta prior — what a shop gets from counting clicks, and what a learned click model
//! must beat to be worth its keep.
//!
//! The estimate is hierarchical, each level a Beta posterior mean:
//! `ctr(item, slot) = (clicks + m · ctr(slot)) / (impressions + m)`, with
//! `ctr(slot) = (clicks + m · ctr) / (impressions + m)` and the overall
//! `ctr = (clicks + ½) / (impressions + 1)` (Jeffreys prior), so an unseen item or slot gets
//! its parent's rate and no prediction is ever exactly 0 or 1. `m` is
//! [`PositionPopularityParams::prior_strength`], in pseudo-impressions.
//!
//! Owns the counts and the estimate; knows nothing of files or features.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// The baseline's name in reports.
pub const MODEL_NAME: &str = "popularity-by-position";

/// Parameters of [`PositionPopularity`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PositionPopularityParams {
    /// Weight of the prior, in impressions: how many impressions an (item, slot) needs
    /// before its own click rate counts as much as the slot's.
    pub prior_strength: f64,
}

impl Default for PositionPopularityParams {
    fn default() -> Self {
        Self { prior_strength: 100.0 }
    }
}

impl PositionPopularityParams {
    /// Every problem with these parameters, each with its key.
    pub fn problems(&self) -> Vec<(String, String)> {
        let m = self.prior_strength;
        if m.is_finite() && m > 0.0 {
            Vec::new()
        } else {
            vec![(format!("{MODEL_NAME}.prior_strength"), format!("expected a positive number, found {m}"))]
        }
    }
}

/// Clicks and impressions of one cell.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Counts {
    clicks: f64,
    impressions: f64,
}

impl Counts {
    fn add(&mut self, click: bool) {
        self.impressions += 1.0;
        if click {
            self.clicks += 1.0;
        }
    }

    /// Posterior mean under a Beta prior of mean `prior` and strength `m`.
    fn smoothed(&self, prior: f64, m: f64) -> f64 {
        (self.clicks + m * prior) / (self.impressions + m)
    }
}

/// A trained popularity-by-position model.
#[derive(Debug, Clone, PartialEq)]
pub struct PositionPopularity {
    params: PositionPopularityParams,
    overall: Counts,
    by_position: HashMap<u32, Counts>,
    by_item_position: HashMap<(u32, u32), Counts>,
}

impl PositionPopularity {
    /// Count `(item, position, click)` impressions.
    pub fn train(
        params: PositionPopularityParams,
        impressions: impl IntoIterator<Item = (u32, u32, bool)>,
    ) -> Result<Self> {
        super::ftrl::problems_to_error(&params.problems())?;
        let mut model =
            Self { params, overall: Counts::default(), by_position: HashMap::new(), by_item_position: HashMap::new() };
        for (item, position, click) in impressions {
            model.overall.add(click);
            model.by_position.entry(position).or_default().add(click);
            model.by_item_position.entry((item, position)).or_default().add(click);
        }
        Ok(model)
    }

    pub fn params(&self) -> &PositionPopularityParams {
        &self.params
    }

    /// The click rate of the whole training log (Jeffreys-smoothed).
    pub fn overall_ctr(&self) -> f64 {
        (self.overall.clicks + 0.5) / (self.overall.impressions + 1.0)
    }

    /// The smoothed click rate of a slot.
    pub fn position_ctr(&self, position: u32) -> f64 {
        let m = self.params.prior_strength;
        self.by_position.get(&position).copied().unwrap_or_default().smoothed(self.overall_ctr(), m)
    }

    /// The click probability of `item` shown in `position`.
    pub fn predict(&self, item: u32, position: u32) -> f64 {
        let m = self.params.prior_strength;
        let prior = self.position_ctr(position);
        self.by_item_position.get(&(item, position)).copied().unwrap_or_default().smoothed(prior, m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_by_hand() {
        // Slot 1: item 7 shown 4 times, clicked twice; item 8 shown 6 times, never clicked.
        // Slot 2: item 7 shown 10 times, clicked once.
        let mut log = Vec::new();
        log.extend([(7, 1, true), (7, 1, true), (7, 1, false), (7, 1, false)]);
        log.extend((0..6).map(|_| (8, 1, false)));
        log.extend((0..10).map(|k| (7, 2, k == 0)));
        let model = PositionPopularity::train(PositionPopularityParams { prior_strength: 10.0 }, log).unwrap();
        // Overall: 3 clicks in 20 → (3 + 0.5) / 21.
        let overall = 3.5 / 21.0;
        assert!((model.overall_ctr() - overall).abs() < 1e-12);
        // Slot 1: 2 clicks in 10 → (2 + 10 · overall) / 20.
        let slot1 = (2.0 + 10.0 * overall) / 20.0;
        assert!((model.position_ctr(1) - slot1).abs() < 1e-12);
        // Item 7 in slot 1: (2 + 10 · slot1) / 14.
        assert!((model.predict(7, 1) - (2.0 + 10.0 * slot1) / 14.0).abs() < 1e-12);
        // An item never shown in slot 1 gets the slot's rate; an unseen slot the overall.
        assert!((model.predict(99, 1) - slot1).abs() < 1e-12);
        assert!((model.predict(7, 9) - (0.0 + 10.0 * overall) / 10.0).abs() < 1e-12);
        // More clicks, higher estimate; the prior keeps estimates inside (0, 1).
        assert!(model.predict(7, 1) > model.predict(8, 1));
        assert!(model.predict(8, 1) > 0.0);
    }

    #[test]
    fn a_stronger_prior_pulls_toward_the_slot() {
        let log: Vec<_> = (0..10).map(|k| (1, 1, k < 5)).chain((0..90).map(|_| (2, 1, false))).collect();
        let weak = PositionPopularity::train(PositionPopularityParams { prior_strength: 1.0 }, log.clone()).unwrap();
        let strong = PositionPopularity::train(PositionPopularityParams { prior_strength: 1e6 }, log).unwrap();
        assert!(weak.predict(1, 1) > 0.4);
        assert!((strong.predict(1, 1) - strong.position_ctr(1)).abs() < 1e-4);
    }

    #[test]
    fn invalid_strength_is_refused() {
        let error = PositionPopularity::train(PositionPopularityParams { prior_strength: 0.0 }, []).unwrap_err();
        assert!(
            error.to_string().contains("popularity-by-position.prior_strength: expected a positive number"),
            "{error}"
        );
    }
}
