//! Re-ranking: the last stage of recall → rank → re-rank, shared by recommendations and
//! search. Takes candidates already scored by a ranker, with their catalog facts, and
//! applies the merchandiser's [`Rules`]: filters, boosts, burials, pins, promotion slots
//! and diversity. Returns the final list and, per item, every [`Effect`] a rule had on it,
//! for explanations.
//!
//! # Order of application, and why
//!
//! 1. **Filter.** A candidate matching any filter condition is removed, and so is every
//!    other candidate with the same id (a filter is a promise that an item never shows,
//!    whatever facts a duplicate carries). Nothing later can bring it back: a filtered item
//!    is never pinned or promoted.
//! 2. **Boost.** Every matching boost multiplies the ranker's score by its factor
//!    (factors of several matching boosts compound). Scores may be negative (logits,
//!    cosines), and plain multiplication would push a boosted negative score *down*, so a
//!    factor `f` is applied sign-aware: `s · f` when `s ≥ 0`, `s / f` when `s < 0`. A factor
//!    above 1 therefore always raises a score and one below 1 always lowers it, the order
//!    among items with the same total factor is kept, and multiplying all ranker scores by
//!    a positive constant does not change the result (the rules do not depend on the
//!    ranker's units). A score of exactly 0 stays 0: a ranker whose scores sit around 0
//!    should be shifted before re-ranking if boosts must move them.
//! 3. **Sort** by boosted score, best first; ties keep the input order, a NaN score sorts
//!    last. Duplicate ids keep their best-scored copy.
//! 4. **Bury.** Candidates matching any bury condition move after all others, keeping their
//!    relative order. Later steps keep this: diversity and promotions take a buried item
//!    only when no unburied one is left to take.
//! 5. **Pins** reserve their positions for their items (see [`Pin`] for positions beyond the
//!    end of the list). A pin is the most explicit instruction there is, so it overrides
//!    bury, promotions and diversity.
//! 6. **Promotions** reserve their slots (unless pinned) for the best-ranked remaining
//!    candidates that match their condition — after bury, so a buried item fills a
//!    slot only when no unburied one matches. A matching item that the sorted order puts
//!    above its slot anyway is not pulled down to it; the slot takes the next matching one.
//!    A slot no candidate matches is left to the organic order.
//! 7. **Diversity** (or, without it, the sorted order) fills the remaining, organic
//!    positions from top to bottom, seeing the pinned and promoted items already in place.
//!    Running it last, around the fixed slots, means a quota holds over the list the user
//!    sees (fixed items count in its windows) rather than over a list that pins later
//!    shift; fixed items themselves are never moved for diversity: they are contracts,
//!    diversity is best effort.
//!
//! The output is the first `n` positions of this arrangement of every eligible candidate,
//! so a shorter page is always a prefix of a longer one.
//!
//! # Diversity
//!
//! - [`Diversity::Mmr`]: maximal marginal relevance (Carbonell & Goldstein 1998, eq. 1):
//!   each organic position takes the candidate maximising
//!   `λ · relevance − (1 − λ) · max similarity to the items above it`, where relevance is
//!   the boosted score min–max normalised over the eligible candidates (so it is on the
//!   same `[0, 1]` scale as the similarity) and the similarity of two items is
//!   `(shared category depth / longer path depth + same brand) / 2` (paths compared down
//!   to [`MAX_CATEGORY_DEPTH`] levels). `λ = 1` is the sorted order. With the maximum
//!   similarity as the penalty, MMR spreads the top of the list most: once every category
//!   and brand has appeared, relevance decides again.
//! - [`Diversity::Quota`]: at most `max_per_window` items with the same value (brand, or
//!   category path cut at a level) within any `window` consecutive positions. Each organic
//!   position takes the best-ranked candidate that keeps the quota in every window it
//!   belongs to. When every remaining candidate would break it, the quota is relaxed: the
//!   best-ranked one is taken and reported with [`Effect::QuotaRelaxed`]. Items without a
//!   value (no brand, no category) are never limited.
//!
//! # Matching
//!
//! Item ids compare exactly. Brands, category levels, tags and attribute names and values
//! compare ASCII case-insensitively, with the rule's side trimmed, like
//! [`crate::serving::ItemFilter`]. An item without a price fails `min_price`
//! and `max_price`.
//!
//! # Cost model
//!
//! For `c` candidates, `k` conditions and a page of `n`: filtering and boosting evaluate
//! `c · k` conditions (string compares of short facts; long `items` lists are hashed once
//! per call); sorting is `c log c`; pins and promotions scan the sorted list once per pin
//! or slot. MMR and quotas digest category prefixes and brands once per call (one xxh3 of
//! a short string per path level) so that their inner loops compare integers: MMR is
//! `n · c` similarity updates of a few integer compares each, a quota check is
//! `O(window)`. Allocations are a few `Vec`s of `c` integers or floats per call, plus the
//! output (the page's ids are copied; the candidates are borrowed). Pure: no I/O, no
//! clock, no randomness; the same input gives the same output.

use std::collections::HashSet;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

mod diversity;
mod rules;

use diversity::fill;
use rules::{matchers, Matcher};
pub use rules::{
    AttributeCondition, Boost, Candidate, Condition, Diversity, Pin, Promotion, QuotaKey, Rules, MAX_CATEGORY_DEPTH,
    MAX_POSITION,
};

/// What a rule did to an item, e.g. `{"rule":"boost","factor":1.5}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Effect {
    /// A matching boost multiplied the score by `factor` (sign-aware); one per boost.
    Boost { factor: f64 },
    /// The item matched a bury condition (not reported on pinned items: a pin overrides).
    Bury,
    /// Diversity placed the item elsewhere than the sorted order would have: `moved_from` is
    /// the position it would have had without diversity.
    Diversity { moved_from: usize },
    /// Every remaining candidate would have broken the quota here; this one was taken anyway.
    QuotaRelaxed,
    /// The item fills the promotion slot at `position`.
    Promotion { position: usize },
    /// The item was pinned at `position` (where it is, unless the list is shorter).
    Pin { position: usize },
}

/// One item of the final list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reranked {
    pub id: String,
    /// The score after boosts.
    pub score: f64,
    pub ranker_score: f64,
    /// 1-based.
    pub position: usize,
    /// In the order the rules applied; empty when no rule touched the item.
    pub effects: Vec<Effect>,
}

/// The sort key of a score: NaN last, -0 equal to 0.
fn sort_key(score: f64) -> f64 {
    if score.is_nan() {
        f64::NEG_INFINITY
    } else {
        score + 0.0
    }
}

/// What fills a position of the arrangement.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Slot {
    Organic,
    Pin { candidate: u32, requested: usize },
    Promotion { candidate: u32 },
}

/// Apply `rules` to `candidates` and return the first `n` items of the result. See the
/// module docs for the semantics. Borrows the candidates: the caller keeps them (to attach
/// facts to a response, say), and only the page's ids are copied. Never panics, even on
/// rules that fail [`Rules::validate`]: of two pins of one item or at one position the
/// first listed wins, and a position 0 is ignored.
pub fn rerank(candidates: &[Candidate], rules: &Rules, n: usize) -> Vec<Reranked> {
    if n == 0 || candidates.is_empty() {
        return Vec::new();
    }
    // Indices are u32 to halve the working set; more candidates than that is a caller bug.
    let candidates = &candidates[..candidates.len().min(u32::MAX as usize)];

    // 1. Filter: ban the id of every matching candidate.
    let filters = matchers(&rules.filter);
    let filtered: Vec<usize> =
        (0..candidates.len()).filter(|&i| filters.iter().any(|f| f.matches(&candidates[i]))).collect();
    let banned: HashSet<&str, ahash::RandomState> = filtered.iter().map(|&i| candidates[i].id.as_str()).collect();

    // 2. Boost.
    let boosts: Vec<(Matcher<'_>, f64)> = rules.boost.iter().map(|b| (Matcher::new(&b.when), b.factor)).collect();
    let score: Vec<f64> = candidates
        .iter()
        .map(|c| {
            let factor: f64 = boosts.iter().filter(|(m, _)| m.matches(c)).map(|(_, f)| f).product();
            if c.score > 0.0 {
                c.score * factor
            } else if c.score < 0.0 {
                c.score / factor
            } else {
                c.score
            }
        })
        .collect();

    // 3. Sort (ties keep input order), drop banned ids and later duplicates. Keys inline, so
    // the sort compares without indirection.
    let mut keyed: Vec<(f64, u32)> = (0..candidates.len()).map(|i| (sort_key(score[i]), i as u32)).collect();
    keyed.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut order: Vec<u32> = keyed.into_iter().map(|(_, i)| i).collect();
    let mut seen: HashSet<&str, ahash::RandomState> =
        HashSet::with_capacity_and_hasher(order.len(), Default::default());
    order.retain(|&i| {
        let id = candidates[i as usize].id.as_str();
        !banned.contains(id) && seen.insert(id)
    });
    drop(seen);
    drop(banned);

    // 4. Bury: stable partition.
    let buries = matchers(&rules.bury);
    let mut buried = vec![false; candidates.len()];
    for &i in &order {
        buried[i as usize] = buries.iter().any(|b| b.matches(&candidates[i as usize]));
    }
    let list: Vec<u32> = order
        .iter()
        .copied()
        .filter(|&i| !buried[i as usize])
        .chain(order.iter().copied().filter(|&i| buried[i as usize]))
        .collect();
    drop(order);
    let total = list.len();

    // 5. Pins.
    let mut fixed = vec![false; candidates.len()];
    let mut slots = vec![Slot::Organic; total];
    let mut overflow: Vec<(usize, u32)> = Vec::new();
    for pin in &rules.pin {
        if pin.position == 0 {
            continue;
        }
        let Some(&candidate) = list.iter().find(|&&i| candidates[i as usize].id == pin.item) else {
            continue;
        };
        if fixed[candidate as usize] {
            continue;
        }
        if pin.position <= total {
            if slots[pin.position - 1] != Slot::Organic {
                continue;
            }
            slots[pin.position - 1] = Slot::Pin { candidate, requested: pin.position };
        } else {
            overflow.push((pin.position, candidate));
        }
        fixed[candidate as usize] = true;
    }
    if !overflow.is_empty() {
        // Beyond the end: the last free positions, in order of requested position. There
        // are enough, since each pinned item is one of the `total` eligible candidates.
        overflow.sort_by_key(|&(position, _)| position);
        let mut free: Vec<usize> =
            (0..total).rev().filter(|&p| slots[p] == Slot::Organic).take(overflow.len()).collect();
        free.reverse();
        for (p, (requested, candidate)) in free.into_iter().zip(overflow) {
            slots[p] = Slot::Pin { candidate, requested };
        }
    }

    // 6. Promotions, slot by slot from the top.
    let mut promotion_slots: Vec<(usize, usize)> = rules
        .promotions
        .iter()
        .enumerate()
        .flat_map(|(k, promotion)| promotion.positions.iter().map(move |&p| (p, k)))
        .filter(|&(p, _)| (1..=total).contains(&p))
        .collect();
    promotion_slots.sort_by_key(|&(position, _)| position);
    let promotions: Vec<Matcher<'_>> = rules.promotions.iter().map(|p| Matcher::new(&p.when)).collect();
    for (position, k) in promotion_slots {
        if slots[position - 1] != Slot::Organic {
            continue;
        }
        // The organic positions above the slot take the first unfixed items of the list; a
        // matching item among those stays where it is.
        let organic_above = slots[..position - 1].iter().filter(|&&slot| slot == Slot::Organic).count();
        let pick = list
            .iter()
            .copied()
            .filter(|&i| !fixed[i as usize])
            .skip(organic_above)
            .find(|&i| promotions[k].matches(&candidates[i as usize]));
        if let Some(candidate) = pick {
            slots[position - 1] = Slot::Promotion { candidate };
            fixed[candidate as usize] = true;
        }
    }

    // 7. Organic positions, from the pool of everything not fixed, in list order.
    let pool: Vec<u32> = list.iter().copied().filter(|&i| !fixed[i as usize]).collect();
    let page_len = n.min(total);
    let placed = fill(candidates, &score, &buried, &slots, page_len, &pool, rules.diversity.as_ref());

    // Without diversity the k-th pool item would be at the k-th organic position.
    let organic_positions: Vec<usize> = if rules.diversity.is_some() {
        (0..total).filter(|&p| slots[p] == Slot::Organic).collect()
    } else {
        Vec::new()
    };

    let mut out = Vec::with_capacity(page_len);
    for (p, place) in placed.into_iter().enumerate() {
        let i = place.candidate as usize;
        let mut effects = Vec::new();
        for (matcher, factor) in &boosts {
            if matcher.matches(&candidates[i]) {
                effects.push(Effect::Boost { factor: *factor });
            }
        }
        let pinned = matches!(slots[p], Slot::Pin { .. });
        if buried[i] && !pinned {
            effects.push(Effect::Bury);
        }
        if let Some(pool_index) = place.pool_index {
            let without_diversity = organic_positions.get(pool_index as usize).copied();
            if let Some(q) = without_diversity.filter(|&q| q != p) {
                effects.push(Effect::Diversity { moved_from: q + 1 });
            }
        }
        if place.relaxed {
            effects.push(Effect::QuotaRelaxed);
        }
        match slots[p] {
            Slot::Organic => {}
            Slot::Pin { requested, .. } => effects.push(Effect::Pin { position: requested }),
            Slot::Promotion { .. } => effects.push(Effect::Promotion { position: p + 1 }),
        }
        out.push(Reranked {
            id: candidates[i].id.clone(),
            score: score[i],
            ranker_score: candidates[i].score,
            position: p + 1,
            effects,
        });
    }
    out
}

/// A realistic re-ranking workload for benchmarks (`souk bench rerank`): `count` candidates
/// over 8 top categories × 3 × 3 (three levels) and 30 brands, with random scores, and rules
/// with a filter, two boosts, a bury, two pins, one promotion with two slots and MMR.
/// The same seed always gives the same workload.
pub fn bench_candidates(count: usize, seed: u64) -> (Vec<Candidate>, Rules) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    const COLORS: [&str; 6] = ["black", "white", "red", "blue", "green", "grey"];
    let candidates: Vec<Candidate> = (0..count)
        .map(|i| {
            let (top, middle, leaf) = (rng.gen_range(0..8), rng.gen_range(0..3), rng.gen_range(0..3));
            let mut tags = Vec::new();
            for (tag, p) in [("sponsored", 0.1), ("new", 0.15), ("clearance", 0.05)] {
                if rng.gen_bool(p) {
                    tags.push(tag.to_string());
                }
            }
            Candidate {
                id: format!("item-{i:05}"),
                score: rng.gen_range(-1.0..4.0),
                category: vec![
                    format!("Category {top}"),
                    format!("Category {top}.{middle}"),
                    format!("Category {top}.{middle}.{leaf}"),
                ],
                brand: Some(format!("Brand {}", rng.gen_range(0..30))),
                price: Some((rng.gen_range(5.0f64..500.0) * 100.0).round() / 100.0),
                // The pinned items (10 and 20) stay available so the filter keeps them.
                available: i == 10 || i == 20 || rng.gen_bool(0.95),
                tags,
                attributes: vec![("color".to_string(), COLORS[rng.gen_range(0..COLORS.len())].to_string())],
            }
        })
        .collect();
    let rules = Rules {
        filter: vec![Condition { available: Some(false), ..Condition::default() }],
        boost: vec![
            Boost { when: Condition { brand: Some("Brand 3".into()), ..Condition::default() }, factor: 1.5 },
            Boost { when: Condition { tag: Some("new".into()), ..Condition::default() }, factor: 1.2 },
        ],
        bury: vec![Condition { tag: Some("clearance".into()), ..Condition::default() }],
        pin: vec![Pin { item: "item-00010".into(), position: 1 }, Pin { item: "item-00020".into(), position: 5 }],
        promotions: vec![Promotion {
            positions: vec![3, 7],
            when: Condition { tag: Some("sponsored".into()), ..Condition::default() },
        }],
        diversity: Some(Diversity::Mmr { lambda: 0.7 }),
    };
    (candidates, rules)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::hashing::IdMap;

    fn item(id: &str, score: f64) -> Candidate {
        Candidate::new(id, score)
    }

    /// A candidate in a category path with a brand.
    fn faceted(id: &str, score: f64, category: &[&str], brand: Option<&str>) -> Candidate {
        Candidate {
            category: category.iter().map(|c| c.to_string()).collect(),
            brand: brand.map(str::to_string),
            ..Candidate::new(id, score)
        }
    }

    fn tagged(id: &str, score: f64, tag: &str) -> Candidate {
        Candidate { tags: vec![tag.to_string()], ..Candidate::new(id, score) }
    }

    /// Candidates `a`, `b`, … with scores 10, 9, …
    fn letters(count: usize) -> Vec<Candidate> {
        (0..count).map(|i| item(&((b'a' + i as u8) as char).to_string(), 10.0 - i as f64)).collect()
    }

    fn ids(out: &[Reranked]) -> Vec<&str> {
        out.iter().map(|r| r.id.as_str()).collect()
    }

    fn rules(json: &str) -> Rules {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    fn effects_of<'a>(out: &'a [Reranked], id: &str) -> &'a [Effect] {
        &out.iter().find(|r| r.id == id).unwrap_or_else(|| panic!("{id} missing")).effects
    }

    #[test]
    fn sorts_by_score_with_ties_in_input_order_nan_last_and_positions_from_one() {
        let candidates =
            vec![item("nan", f64::NAN), item("low", -3.0), item("tie1", 2.0), item("top", 5.0), item("tie2", 2.0)];
        let out = rerank(&candidates, &Rules::default(), 10);
        assert_eq!(ids(&out), ["top", "tie1", "tie2", "low", "nan"]);
        assert_eq!(out.iter().map(|r| r.position).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
        assert!(out.iter().all(|r| r.effects.is_empty()));
        assert_eq!(out[0].score, 5.0);
        assert_eq!(ids(&rerank(&letters(5), &Rules::default(), 2)), ["a", "b"]);
        assert!(rerank(&letters(5), &Rules::default(), 0).is_empty());
    }

    #[test]
    fn duplicates_keep_their_best_copy_and_a_filtered_copy_bans_the_id() {
        let candidates =
            vec![item("a", 1.0), item("b", 2.0), item("a", 3.0), tagged("c", 5.0, "recalled"), item("c", 4.0)];
        let out = rerank(&candidates, &rules(r#"{"filter": [{"tag": "recalled"}]}"#), 10);
        assert_eq!(ids(&out), ["a", "b"]);
        assert_eq!(out[0].ranker_score, 3.0);
    }

    #[test]
    fn pins_land_exactly_at_their_positions() {
        let pins =
            r#"{"pin": [{"item": "j", "position": 1}, {"item": "a", "position": 4}, {"item": "e", "position": 6}]}"#;
        let out = rerank(&letters(10), &rules(pins), 10);
        assert_eq!(ids(&out), ["j", "b", "c", "a", "d", "e", "f", "g", "h", "i"]);
        assert_eq!(effects_of(&out, "j"), [Effect::Pin { position: 1 }]);
        assert_eq!(effects_of(&out, "a"), [Effect::Pin { position: 4 }]);
        assert_eq!(effects_of(&out, "e"), [Effect::Pin { position: 6 }]);
        assert!(effects_of(&out, "b").is_empty());
        // A page cut above a pin leaves the pinned item off the page, not higher up.
        assert_eq!(ids(&rerank(&letters(10), &rules(pins), 3)), ["j", "b", "c"]);
    }

    #[test]
    fn pins_beyond_a_short_list_go_to_its_end_in_position_order() {
        let pins =
            r#"{"pin": [{"item": "a", "position": 9}, {"item": "b", "position": 8}, {"item": "c", "position": 2}]}"#;
        let out = rerank(&letters(5), &rules(pins), 10);
        assert_eq!(ids(&out), ["d", "c", "e", "b", "a"]);
        assert_eq!(effects_of(&out, "b"), [Effect::Pin { position: 8 }]);
        assert_eq!(effects_of(&out, "a"), [Effect::Pin { position: 9 }]);
        // Still the end of the whole list, so off a page of 3.
        assert_eq!(ids(&rerank(&letters(5), &rules(pins), 3)), ["d", "c", "e"]);
    }

    #[test]
    fn filtered_and_unknown_items_are_never_pinned() {
        let json = r#"{
            "filter": [{"items": ["b"]}],
            "pin": [{"item": "b", "position": 1}, {"item": "zz", "position": 2}, {"item": "d", "position": 3}]
        }"#;
        let out = rerank(&letters(5), &rules(json), 10);
        assert_eq!(ids(&out), ["a", "c", "d", "e"]);
    }

    #[test]
    fn invalid_pins_do_not_panic_and_the_first_listed_wins() {
        let json = r#"{"pin": [
            {"item": "c", "position": 1}, {"item": "d", "position": 1}, {"item": "c", "position": 3},
            {"item": "e", "position": 0}
        ]}"#;
        assert_eq!(ids(&rerank(&letters(5), &rules(json), 10)), ["c", "a", "b", "d", "e"]);
    }

    #[test]
    fn boost_is_sign_aware_and_compounds() {
        let candidates = vec![
            item("a", 1.0),
            Candidate { tags: vec!["new".into()], ..faceted("b", 0.8, &[], Some("Acme")) },
            faceted("c", -1.0, &[], Some("ACME")),
            item("d", -0.6),
            faceted("e", 0.0, &[], Some("acme")),
            Candidate { price: Some(5.0), ..item("f", -0.3) },
        ];
        let json = r#"{"boost": [
            {"when": {"brand": "acme"}, "factor": 2.0},
            {"when": {"tag": "NEW"}, "factor": 1.5},
            {"when": {"max_price": 10}, "factor": 0.25}
        ]}"#;
        let out = rerank(&candidates, &rules(json), 10);
        // b: 0.8·2·1.5; c: -1/2 rises; e: 0 stays; f: -0.3/0.25 falls.
        assert_eq!(ids(&out), ["b", "a", "e", "c", "d", "f"]);
        let score = |id: &str| out.iter().find(|r| r.id == id).map(|r| r.score);
        assert_eq!(score("b"), Some(0.8 * 2.0 * 1.5));
        assert_eq!(score("c"), Some(-0.5));
        assert_eq!(score("e"), Some(0.0));
        assert_eq!(score("f"), Some(-0.3 / 0.25));
        assert_eq!(out[0].ranker_score, 0.8);
        assert_eq!(effects_of(&out, "b"), [Effect::Boost { factor: 2.0 }, Effect::Boost { factor: 1.5 }]);
        assert_eq!(effects_of(&out, "f"), [Effect::Boost { factor: 0.25 }]);
        assert!(effects_of(&out, "a").is_empty());
    }

    #[test]
    fn boosting_does_not_depend_on_the_rankers_units() {
        let (candidates, mut rules) = bench_candidates(120, 3);
        rules.diversity = None;
        let scaled: Vec<Candidate> =
            candidates.iter().map(|c| Candidate { score: c.score * 37.5, ..c.clone() }).collect();
        assert_eq!(ids(&rerank(&candidates, &rules, 120)), ids(&rerank(&scaled, &rules, 120)));
    }

    #[test]
    fn bury_moves_matches_after_the_rest_keeping_their_order() {
        let mut candidates = letters(6);
        for c in &mut candidates {
            if ["a", "c", "d"].contains(&c.id.as_str()) {
                c.available = false;
            }
        }
        let out = rerank(&candidates, &rules(r#"{"bury": [{"available": false}]}"#), 10);
        assert_eq!(ids(&out), ["b", "e", "f", "a", "c", "d"]);
        assert_eq!(effects_of(&out, "a"), [Effect::Bury]);
        assert!(effects_of(&out, "b").is_empty());
    }

    #[test]
    fn promotion_slots_take_the_best_matching_items_below_them() {
        let mut candidates = letters(8);
        for c in &mut candidates {
            if ["b", "e", "g"].contains(&c.id.as_str()) {
                c.tags.push("sponsored".into());
            }
        }
        let json = r#"{"promotions": [
            {"positions": [5, 3], "when": {"tag": "sponsored"}},
            {"positions": [7], "when": {"brand": "nobody"}}
        ]}"#;
        let out = rerank(&candidates, &rules(json), 10);
        // b ranks above slot 3 and stays; slots 3 and 5 take e and g; slot 7 finds no match.
        assert_eq!(ids(&out), ["a", "b", "e", "c", "g", "d", "f", "h"]);
        assert_eq!(effects_of(&out, "e"), [Effect::Promotion { position: 3 }]);
        assert_eq!(effects_of(&out, "g"), [Effect::Promotion { position: 5 }]);
        assert!(effects_of(&out, "b").is_empty());
        assert!(effects_of(&out, "f").is_empty());
    }

    #[test]
    fn buried_items_fill_promotion_slots_only_when_nothing_else_matches() {
        let candidates = vec![
            Candidate { available: false, ..tagged("a", 9.0, "sponsored") },
            item("b", 8.0),
            tagged("c", 7.0, "sponsored"),
            item("d", 6.0),
        ];
        let json =
            r#"{"bury": [{"available": false}], "promotions": [{"positions": [1, 2], "when": {"tag": "sponsored"}}]}"#;
        let out = rerank(&candidates, &rules(json), 10);
        assert_eq!(ids(&out), ["c", "a", "b", "d"]);
        assert_eq!(effects_of(&out, "a"), [Effect::Bury, Effect::Promotion { position: 2 }]);
    }

    #[test]
    fn a_pin_overrides_bury_promotions_and_diversity() {
        let candidates = vec![
            faceted("a", 9.0, &["Shoes"], Some("x")),
            faceted("b", 8.0, &["Shoes"], Some("x")),
            Candidate { tags: vec!["old".into()], ..faceted("c", 7.0, &["Shoes"], Some("x")) },
            faceted("d", 6.0, &["Hats"], Some("y")),
            faceted("e", 5.0, &["Hats"], Some("y")),
        ];
        // Unvalidated on purpose: a pin and a promotion slot at one position.
        let json = r#"{
            "bury": [{"tag": "old"}],
            "pin": [{"item": "c", "position": 2}],
            "promotions": [{"positions": [2], "when": {"brand": "y"}}],
            "diversity": {"quota": {"by": "brand", "max_per_window": 1, "window": 2}}
        }"#;
        let out = rerank(&candidates, &rules(json), 10);
        assert_eq!(out[1].id, "c");
        assert_eq!(effects_of(&out, "c"), [Effect::Pin { position: 2 }]);
        // The quota sees the pinned x at 2: position 1 and 3 take y.
        assert_eq!(ids(&out)[..3], ["d", "c", "e"]);
    }

    #[test]
    fn quota_spreads_values_when_enough_others_remain() {
        // Three brands, each brand's items scored together: plain order is a run per brand.
        let mut candidates = Vec::new();
        for (b, brand) in ["x", "y", "z"].iter().enumerate() {
            for k in 0..4 {
                candidates.push(faceted(&format!("{brand}{k}"), 100.0 - (b * 4 + k) as f64, &[], Some(brand)));
            }
        }
        let json = r#"{"diversity": {"quota": {"by": "brand", "max_per_window": 1, "window": 3}}}"#;
        let out = rerank(&candidates, &rules(json), 12);
        assert_eq!(ids(&out), ["x0", "y0", "z0", "x1", "y1", "z1", "x2", "y2", "z2", "x3", "y3", "z3"]);
        assert!(out.iter().all(|r| !r.effects.contains(&Effect::QuotaRelaxed)));
        assert_eq!(effects_of(&out, "y0"), [Effect::Diversity { moved_from: 5 }]);
        assert!(effects_of(&out, "x0").is_empty());
    }

    #[test]
    fn quota_relaxes_when_only_one_value_remains_and_says_so() {
        let mut candidates: Vec<Candidate> =
            (0..4).map(|k| faceted(&format!("x{k}"), 10.0 - k as f64, &[], Some("x"))).collect();
        candidates.push(faceted("y0", 1.0, &[], Some("y")));
        candidates.push(item("nobrand", 0.5));
        let json = r#"{"diversity": {"quota": {"by": "brand", "max_per_window": 1, "window": 2}}}"#;
        let out = rerank(&candidates, &rules(json), 10);
        assert_eq!(ids(&out), ["x0", "y0", "x1", "nobrand", "x2", "x3"]);
        assert_eq!(effects_of(&out, "y0"), [Effect::Diversity { moved_from: 5 }]);
        assert_eq!(effects_of(&out, "x3"), [Effect::Diversity { moved_from: 4 }, Effect::QuotaRelaxed]);
        assert!(!effects_of(&out, "x2").contains(&Effect::QuotaRelaxed));
        assert!(!effects_of(&out, "x1").contains(&Effect::QuotaRelaxed));
    }

    #[test]
    fn a_quota_sees_fixed_items_just_below_the_page() {
        // Regression: the pinned x at 4 is below a page of 3 but shares a window with 3.
        let candidates = vec![
            faceted("p", 0.0, &[], Some("x")),
            item("a", 9.0),
            item("b", 8.0),
            faceted("c", 7.0, &[], Some("x")),
            item("d", 6.0),
        ];
        let json = r#"{
            "pin": [{"item": "p", "position": 4}],
            "diversity": {"quota": {"by": "brand", "max_per_window": 1, "window": 3}}
        }"#;
        let full = rerank(&candidates, &rules(json), 5);
        assert_eq!(ids(&full), ["a", "b", "d", "p", "c"]);
        assert_eq!(effects_of(&full, "c"), [Effect::Diversity { moved_from: 3 }, Effect::QuotaRelaxed]);
        assert_eq!(ids(&rerank(&candidates, &rules(json), 3)), ["a", "b", "d"]);
    }

    #[test]
    fn unvalidated_diversity_does_not_panic() {
        let (candidates, _) = bench_candidates(50, 1);
        for diversity in [
            Diversity::Quota { by: QuotaKey::Brand, max_per_window: 0, window: usize::MAX },
            Diversity::Quota { by: QuotaKey::Category(0), max_per_window: 1, window: 0 },
            Diversity::Quota { by: QuotaKey::Category(usize::MAX), max_per_window: usize::MAX, window: 3 },
            Diversity::Mmr { lambda: f64::NAN },
            Diversity::Mmr { lambda: -3.0 },
        ] {
            let rules = Rules { diversity: Some(diversity.clone()), ..Rules::default() };
            assert_eq!(rerank(&candidates, &rules, 60).len(), 50, "{diversity:?}");
        }
    }

    #[test]
    fn quota_by_category_level_cuts_the_path() {
        let candidates = vec![
            faceted("a", 9.0, &["Home", "Kitchen"], None),
            faceted("b", 8.0, &["home", "Garden"], None),
            faceted("c", 7.0, &["Toys"], None),
        ];
        let level = |n: usize| {
            format!(r#"{{"diversity": {{"quota": {{"by": {{"category": {n}}}, "max_per_window": 1, "window": 2}}}}}}"#)
        };
        assert_eq!(ids(&rerank(&candidates, &rules(&level(1)), 3)), ["a", "c", "b"]);
        assert_eq!(ids(&rerank(&candidates, &rules(&level(2)), 3)), ["a", "b", "c"]);
    }

    /// Longest run of consecutive items sharing their top-level category.
    fn longest_category_run(out: &[Reranked], category: &IdMap<String, String>) -> usize {
        let mut longest = 0;
        let mut run = 0;
        for (k, r) in out.iter().enumerate() {
            run = if k > 0 && category[&out[k - 1].id] == category[&r.id] { run + 1 } else { 1 };
            longest = longest.max(run);
        }
        longest
    }

    #[test]
    fn mmr_below_one_breaks_up_same_category_runs() {
        // Three categories (each its own brand), each category's items scored together.
        let mut candidates = Vec::new();
        for (c, category) in ["Phones", "Cases", "Chargers"].iter().enumerate() {
            for k in 0..4 {
                let score = 1.0 - 0.01 * (c * 4 + k) as f64;
                candidates.push(faceted(&format!("{category}{k}"), score, &["Electronics", category], Some(category)));
            }
        }
        let category: IdMap<String, String> =
            candidates.iter().map(|c| (c.id.clone(), c.category[1].clone())).collect();
        let plain = rerank(&candidates, &rules(r#"{"diversity": {"mmr": {"lambda": 1.0}}}"#), 12);
        let diverse = rerank(&candidates, &rules(r#"{"diversity": {"mmr": {"lambda": 0.5}}}"#), 12);
        assert_eq!(longest_category_run(&plain, &category), 4);
        assert!(longest_category_run(&diverse, &category) < 4, "{:?}", ids(&diverse));
        // The top of the list shows every category before a second of any.
        assert_eq!(ids(&diverse)[..3], ["Phones0", "Cases0", "Chargers0"]);
        assert_eq!(effects_of(&diverse, "Cases0"), [Effect::Diversity { moved_from: 5 }]);
        assert!(effects_of(&diverse, "Phones0").is_empty());
    }

    #[test]
    fn mmr_keeps_buried_items_last() {
        let candidates = vec![
            faceted("a", 9.0, &["X"], None),
            faceted("b", 8.0, &["X"], None),
            Candidate { available: false, ..faceted("c", 7.0, &["Y"], None) },
        ];
        let json = r#"{"bury": [{"available": false}], "diversity": {"mmr": {"lambda": 0.0}}}"#;
        assert_eq!(ids(&rerank(&candidates, &rules(json), 3)), ["a", "b", "c"]);
    }

    #[test]
    fn conditions_compare_facts_case_insensitively_and_need_every_part() {
        let candidate = Candidate {
            category: vec!["Electronics".into(), "Audio".into(), "Headphones".into()],
            brand: Some("Sony".into()),
            price: Some(99.0),
            tags: vec!["Sale".into()],
            attributes: vec![("Color".into(), "Black".into())],
            ..Candidate::new("item-1", 1.0)
        };
        let check = |json: &str, expected: bool| {
            let condition: Condition = serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"));
            assert_eq!(condition.matches(&candidate), expected, "{json}");
            assert_eq!(Matcher::new(&condition).matches(&candidate), expected, "{json}");
        };
        check(r#"{"category": [" electronics ", "AUDIO"]}"#, true);
        check(r#"{"category": ["Electronics", "Video"]}"#, false);
        check(r#"{"category": ["Electronics", "Audio", "Headphones", "Wireless"]}"#, false);
        check(r#"{"brand": "SONY"}"#, true);
        check(r#"{"brands": ["bose", "sony"]}"#, true);
        check(r#"{"brands": ["bose"]}"#, false);
        check(r#"{"min_price": 99, "max_price": 99}"#, true);
        check(r#"{"min_price": 100}"#, false);
        check(r#"{"tag": "sale"}"#, true);
        check(r#"{"attribute": {"name": "color", "value": "BLACK"}}"#, true);
        check(r#"{"attribute": {"name": "color", "value": "white"}}"#, false);
        check(r#"{"available": true, "brand": "sony"}"#, true);
        check(r#"{"available": false, "brand": "sony"}"#, false);
        check(r#"{"items": ["ITEM-1"]}"#, false);
        check(r#"{"items": ["item-1"], "brand": "sony"}"#, true);
        let many: Vec<String> = (0..40).map(|i| format!("item-{i}")).collect();
        check(&serde_json::json!({ "items": many }).to_string(), true);
        check(&serde_json::json!({ "items": many, "brand": "bose" }).to_string(), false);
        // No price: fails any price bound.
        let unpriced = Candidate::new("x", 1.0);
        assert!(!Condition { max_price: Some(10.0), ..Condition::default() }.matches(&unpriced));
    }

    #[test]
    fn merge_adds_request_rules_and_the_request_wins_a_position() {
        let config = rules(
            r#"{
            "filter": [{"available": false}],
            "boost": [{"when": {"brand": "a"}, "factor": 2}],
            "pin": [{"item": "x", "position": 1}, {"item": "y", "position": 2}, {"item": "z", "position": 9}],
            "promotions": [
                {"positions": [3, 7], "when": {"tag": "sponsored"}},
                {"positions": [4], "when": {"tag": "s"}}
            ],
            "diversity": {"mmr": {"lambda": 0.5}}
        }"#,
        );
        let request = rules(
            r#"{
            "filter": [{"brand": "b"}],
            "boost": [{"when": {"brand": "a"}, "factor": 3}],
            "pin": [{"item": "w", "position": 1}, {"item": "z", "position": 5}, {"item": "v", "position": 4}],
            "promotions": [{"positions": [2], "when": {"tag": "deal"}}]
        }"#,
        );
        let merged = Rules::merge(&config, &request);
        assert_eq!(merged.filter, [config.filter[0].clone(), request.filter[0].clone()]);
        assert_eq!(merged.boost.iter().map(|b| b.factor).collect::<Vec<_>>(), [2.0, 3.0]);
        let pins: Vec<(&str, usize)> = merged.pin.iter().map(|p| (p.item.as_str(), p.position)).collect();
        assert_eq!(pins, [("w", 1), ("z", 5), ("v", 4)]);
        let slots: Vec<Vec<usize>> = merged.promotions.iter().map(|p| p.positions.clone()).collect();
        assert_eq!(slots, [vec![3, 7], vec![2]]);
        assert_eq!(merged.diversity, config.diversity);
        merged.validate().expect("merged valid rules are valid");

        let replaced = Rules::merge(&config, &rules(r#"{"diversity": {"mmr": {"lambda": 0.9}}}"#));
        assert_eq!(replaced.diversity, Some(Diversity::Mmr { lambda: 0.9 }));
        assert_eq!(Rules::merge(&Rules::default(), &config), config);
        assert_eq!(Rules::merge(&config, &Rules::default()), config);
    }

    #[test]
    fn validation_names_the_code_and_field_of_each_problem() {
        let check = |json: &str, code: &str, field: &str| {
            let error = rules(json).validate().expect_err(json);
            assert_eq!((error.code, error.field.as_str()), (code, field), "{json}: {error}");
        };
        check(r#"{"filter": [{}]}"#, "empty_condition", "filter[0]");
        check(r#"{"bury": [{"brand": "a"}, {"brands": []}]}"#, "invalid_condition", "bury[1].brands");
        check(r#"{"filter": [{"items": ["a", " "]}]}"#, "invalid_condition", "filter[0].items[1]");
        check(r#"{"filter": [{"category": []}]}"#, "invalid_condition", "filter[0].category");
        check(r#"{"filter": [{"tag": ""}]}"#, "invalid_condition", "filter[0].tag");
        check(
            r#"{"filter": [{"attribute": {"name": "color", "value": " "}}]}"#,
            "invalid_condition",
            "filter[0].attribute.value",
        );
        check(r#"{"filter": [{"min_price": 10, "max_price": 5}]}"#, "invalid_condition", "filter[0].max_price");
        check(r#"{"boost": [{"when": {"brand": "a"}, "factor": 0}]}"#, "invalid_rule", "boost[0].factor");
        check(r#"{"boost": [{"when": {"brand": "a"}, "factor": -2}]}"#, "invalid_rule", "boost[0].factor");
        check(r#"{"boost": [{"when": {}, "factor": 2}]}"#, "empty_condition", "boost[0].when");
        check(r#"{"pin": [{"item": "a", "position": 0}]}"#, "invalid_rule", "pin[0].position");
        check(r#"{"pin": [{"item": "a", "position": 10001}]}"#, "invalid_rule", "pin[0].position");
        check(r#"{"pin": [{"item": "", "position": 1}]}"#, "invalid_rule", "pin[0].item");
        check(
            r#"{"pin": [{"item": "a", "position": 1}, {"item": "b", "position": 1}]}"#,
            "duplicate_position",
            "pin[1].position",
        );
        check(
            r#"{"pin": [{"item": "a", "position": 1}, {"item": "a", "position": 2}]}"#,
            "duplicate_pin",
            "pin[1].item",
        );
        check(
            r#"{"promotions": [{"positions": [], "when": {"tag": "s"}}]}"#,
            "invalid_rule",
            "promotions[0].positions",
        );
        check(
            r#"{"pin": [{"item": "a", "position": 3}], "promotions": [{"positions": [1, 3], "when": {"tag": "s"}}]}"#,
            "duplicate_position",
            "promotions[0].positions[1]",
        );
        check(
            r#"{"promotions": [{"positions": [2, 2], "when": {"tag": "s"}}]}"#,
            "duplicate_position",
            "promotions[0].positions[1]",
        );
        check(
            r#"{"promotions": [{"positions": [0], "when": {"tag": "s"}}]}"#,
            "invalid_rule",
            "promotions[0].positions[0]",
        );
        check(r#"{"diversity": {"mmr": {"lambda": 1.5}}}"#, "invalid_rule", "diversity.mmr.lambda");
        check(r#"{"diversity": {"mmr": {"lambda": -0.1}}}"#, "invalid_rule", "diversity.mmr.lambda");
        check(
            r#"{"diversity": {"quota": {"by": "brand", "max_per_window": 1, "window": 0}}}"#,
            "invalid_rule",
            "diversity.quota.window",
        );
        check(
            r#"{"diversity": {"quota": {"by": "brand", "max_per_window": 0, "window": 3}}}"#,
            "invalid_rule",
            "diversity.quota.max_per_window",
        );
        for level in [0, MAX_CATEGORY_DEPTH + 1] {
            check(
                &format!(
                    r#"{{"diversity": {{"quota": {{"by": {{"category": {level}}}, "max_per_window": 1, "window": 3}}}}}}"#
                ),
                "invalid_rule",
                "diversity.quota.by.category",
            );
        }
        // NaN cannot be written in JSON; built directly.
        let nan = Rules {
            boost: vec![Boost { when: Condition { tag: Some("t".into()), ..Condition::default() }, factor: f64::NAN }],
            ..Rules::default()
        };
        assert_eq!(nan.validate().map_err(|e| (e.code, e.field)), Err(("invalid_rule", "boost[0].factor".to_string())));
        let lambda = Rules { diversity: Some(Diversity::Mmr { lambda: f64::NAN }), ..Rules::default() };
        assert_eq!(lambda.validate().map_err(|e| e.field), Err("diversity.mmr.lambda".to_string()));
    }

    #[test]
    fn validate_reports_every_problem_at_once() {
        let bad = rules(
            r#"{"filter": [{}], "boost": [{"when": {"tag": "a"}, "factor": 0}], "diversity": {"mmr": {"lambda": 2}}}"#,
        );
        assert_eq!(bad.problems().len(), 3);
        let error = bad.validate().expect_err("three problems");
        assert_eq!(error.field, "filter[0]");
        assert!(
            error.message.contains("boost[0].factor: ") && error.message.contains("diversity.mmr.lambda: "),
            "{error}"
        );
        assert_eq!(Rules::default().validate(), Ok(()));
    }

    #[test]
    fn rules_round_trip_through_json_and_reject_unknown_fields() {
        let json = r#"{
            "filter": [{"available": false}, {"category": ["Adult"]}],
            "boost": [{"when": {"brand": "Acme", "min_price": 10}, "factor": 1.5}],
            "bury": [{"attribute": {"name": "condition", "value": "used"}}],
            "pin": [{"item": "sku-1", "position": 1}],
            "promotions": [{"positions": [3, 7], "when": {"tag": "sponsored"}}],
            "diversity": {"quota": {"by": {"category": 1}, "max_per_window": 2, "window": 5}}
        }"#;
        let parsed = rules(json);
        parsed.validate().expect("valid");
        assert_eq!(
            parsed.diversity,
            Some(Diversity::Quota { by: QuotaKey::Category(1), max_per_window: 2, window: 5 })
        );
        let text = serde_json::to_string(&parsed).expect("serialises");
        assert_eq!(rules(&text), parsed);
        assert_eq!(serde_json::to_string(&Rules::default()).ok().as_deref(), Some("{}"));
        let brand: Rules = rules(r#"{"diversity": {"quota": {"by": "brand", "max_per_window": 1, "window": 2}}}"#);
        assert!(matches!(brand.diversity, Some(Diversity::Quota { by: QuotaKey::Brand, .. })));

        for unknown in [
            r#"{"filters": []}"#,
            r#"{"filter": [{"colour": "red"}]}"#,
            r#"{"boost": [{"when": {"tag": "a"}, "factor": 2, "weight": 1}]}"#,
            r#"{"pin": [{"item": "a", "position": 1, "sticky": true}]}"#,
            r#"{"promotions": [{"positions": [1], "when": {"tag": "a"}, "label": "ad"}]}"#,
            r#"{"diversity": {"mmr": {"lambda": 0.5, "beta": 1}}}"#,
            r#"{"diversity": {"quota": {"by": "brand", "max_per_window": 1, "window": 2, "size": 3}}}"#,
            r#"{"diversity": {"shuffle": {}}}"#,
            r#"{"filter": [{"attribute": {"name": "a", "value": "b", "op": "eq"}}]}"#,
        ] {
            let error = serde_json::from_str::<Rules>(unknown).expect_err(unknown).to_string();
            assert!(error.contains("unknown"), "{unknown}: {error}");
        }
    }

    #[test]
    fn effects_serialise_as_tagged_objects() {
        let check = |effect: Effect, json: &str| {
            assert_eq!(serde_json::to_string(&effect).ok().as_deref(), Some(json));
            assert_eq!(serde_json::from_str::<Effect>(json).ok(), Some(effect));
        };
        check(Effect::Boost { factor: 1.5 }, r#"{"rule":"boost","factor":1.5}"#);
        check(Effect::Bury, r#"{"rule":"bury"}"#);
        check(Effect::Diversity { moved_from: 2 }, r#"{"rule":"diversity","moved_from":2}"#);
        check(Effect::QuotaRelaxed, r#"{"rule":"quota_relaxed"}"#);
        check(Effect::Promotion { position: 7 }, r#"{"rule":"promotion","position":7}"#);
        check(Effect::Pin { position: 3 }, r#"{"rule":"pin","position":3}"#);
    }

    #[test]
    fn the_bench_workload_is_valid_and_its_fixed_slots_hold() {
        let (candidates, rules) = bench_candidates(200, 11);
        assert_eq!(candidates.len(), 200);
        rules.validate().expect("bench rules are valid");
        assert_eq!(bench_candidates(200, 11).0, candidates);
        let out = rerank(&candidates, &rules, 200);
        assert!(out.len() > 150 && out.len() < 200, "{}", out.len());
        assert_eq!((out[0].id.as_str(), out[4].id.as_str()), ("item-00010", "item-00020"));
        assert_eq!(out[2].effects.last(), Some(&Effect::Promotion { position: 3 }));
        assert_eq!(out[6].effects.last(), Some(&Effect::Promotion { position: 7 }));
    }

    // ---- property tests ----

    fn candidate_strategy() -> impl Strategy<Value = Candidate> {
        (
            0..30u8,
            prop_oneof![8 => -5.0..5.0f64, 1 => Just(0.0), 1 => Just(f64::NAN)],
            (0..3u8, 0..2u8, 0..=2usize),
            proptest::option::of(0..4u8),
            proptest::option::of(0..100u8),
            proptest::bool::weighted(0.9),
            proptest::collection::vec(0..3u8, 0..3),
        )
            .prop_map(|(id, score, (top, sub, depth), brand, price, available, tags)| Candidate {
                id: format!("i{id}"),
                score,
                category: [format!("C{top}"), format!("c{top}.{sub}")].into_iter().take(depth).collect(),
                // Mixed case: matching must not care.
                brand: brand.map(|b| if b % 2 == 0 { format!("Brand{b}") } else { format!("BRAND{b}") }),
                price: price.map(f64::from),
                available,
                tags: tags.into_iter().map(|t| format!("t{t}")).collect(),
                attributes: Vec::new(),
            })
    }

    fn condition_strategy() -> impl Strategy<Value = Condition> {
        prop_oneof![
            proptest::collection::vec(0..30u8, 1..4).prop_map(|ids| Condition {
                items: Some(ids.iter().map(|i| format!("i{i}")).collect()),
                ..Condition::default()
            }),
            (0..3u8).prop_map(|top| Condition { category: Some(vec![format!("c{top}")]), ..Condition::default() }),
            (0..4u8).prop_map(|b| Condition { brand: Some(format!("brand{b}")), ..Condition::default() }),
            (0..3u8).prop_map(|t| Condition { tag: Some(format!("T{t}")), ..Condition::default() }),
            (0..100u8).prop_map(|p| Condition { max_price: Some(f64::from(p)), ..Condition::default() }),
            Just(Condition { available: Some(false), ..Condition::default() }),
        ]
    }

    fn diversity_strategy() -> impl Strategy<Value = Option<Diversity>> {
        prop_oneof![
            Just(None),
            (0.0..=1.0f64).prop_map(|lambda| Some(Diversity::Mmr { lambda })),
            (prop_oneof![Just(QuotaKey::Brand), (1..3usize).prop_map(QuotaKey::Category)], 1..3usize, 1..5usize)
                .prop_map(|(by, max_per_window, window)| Some(Diversity::Quota { by, max_per_window, window })),
        ]
    }

    fn rules_strategy() -> impl Strategy<Value = Rules> {
        (
            proptest::collection::vec(condition_strategy(), 0..3),
            proptest::collection::vec((condition_strategy(), 0.25..4.0f64), 0..3),
            proptest::collection::vec(condition_strategy(), 0..2),
            proptest::collection::vec((0..30u8, 1..20usize), 0..4),
            proptest::collection::vec((proptest::collection::vec(1..20usize, 1..3), condition_strategy()), 0..2),
            diversity_strategy(),
        )
            .prop_map(|(filter, boost, bury, pin, promotions, diversity)| Rules {
                filter,
                boost: boost.into_iter().map(|(when, factor)| Boost { when, factor }).collect(),
                bury,
                pin: pin.into_iter().map(|(i, position)| Pin { item: format!("i{i}"), position }).collect(),
                promotions: promotions.into_iter().map(|(positions, when)| Promotion { positions, when }).collect(),
                diversity,
            })
    }

    /// The ids a correct answer may contain: not matching any filter, each once.
    fn eligible(candidates: &[Candidate], rules: &Rules) -> Vec<String> {
        let banned: HashSet<&str> =
            candidates.iter().filter(|c| rules.filter.iter().any(|f| f.matches(c))).map(|c| c.id.as_str()).collect();
        let mut ids: Vec<String> =
            candidates.iter().filter(|c| !banned.contains(c.id.as_str())).map(|c| c.id.clone()).collect();
        ids.sort();
        ids.dedup();
        ids
    }

    fn ids_and_effects(out: &[Reranked]) -> Vec<(&str, &[Effect])> {
        out.iter().map(|r| (r.id.as_str(), r.effects.as_slice())).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn rules_hold_on_random_input(
            candidates in proptest::collection::vec(candidate_strategy(), 0..40),
            rules in rules_strategy(),
            n in 0..45usize,
        ) {
            let allowed = eligible(&candidates, &rules);
            let full = rerank(&candidates, &rules, usize::MAX);
            let out = rerank(&candidates, &rules, n);

            // Nothing filtered, nothing twice, as many as asked for or allowed.
            prop_assert_eq!(out.len(), n.min(allowed.len()));
            prop_assert_eq!(full.len(), allowed.len());
            let mut seen = HashSet::new();
            for r in &full {
                prop_assert!(allowed.binary_search(&r.id).is_ok(), "{} is filtered", r.id);
                prop_assert!(seen.insert(r.id.clone()), "{} twice", r.id);
            }
            // A page is a prefix of a longer page; positions count from 1.
            prop_assert_eq!(ids_and_effects(&out), ids_and_effects(&full[..out.len()]));
            prop_assert!(full.iter().enumerate().all(|(k, r)| r.position == k + 1));

            // Each promotion slot holds a matching item.
            for r in &full {
                for effect in &r.effects {
                    if let Effect::Promotion { position } = effect {
                        prop_assert_eq!(*position, r.position);
                        // (Some copy of the item matches some promotion with that slot.)
                        let matching = candidates.iter().filter(|c| c.id == r.id).any(|c| {
                            rules.promotions.iter().any(|p| p.positions.contains(position) && p.when.matches(c))
                        });
                        prop_assert!(matching, "{} in slot {}", r.id, position);
                    }
                }
            }

            if rules.validate().is_ok() {
                // Every eligible pin inside the list is exactly where it was asked to be.
                for pin in &rules.pin {
                    if allowed.binary_search(&pin.item).is_ok() && pin.position <= full.len() {
                        prop_assert_eq!(&full[pin.position - 1].id, &pin.item);
                    }
                }
            }
        }

        #[test]
        fn merging_valid_rules_gives_valid_rules(config in rules_strategy(), request in rules_strategy()) {
            prop_assume!(config.validate().is_ok() && request.validate().is_ok());
            let merged = Rules::merge(&config, &request);
            prop_assert_eq!(merged.validate(), Ok(()));
            // Every request pin survives; the request's diversity wins when it has one.
            for pin in &request.pin {
                prop_assert!(merged.pin.contains(pin));
            }
            let diversity = if request.diversity.is_some() { &request.diversity } else { &config.diversity };
            prop_assert_eq!(&merged.diversity, diversity);
        }

        #[test]
        fn mmr_with_lambda_one_is_the_sorted_order(
            candidates in proptest::collection::vec(candidate_strategy(), 0..40),
            bury in proptest::collection::vec(condition_strategy(), 0..2),
        ) {
            let plain = Rules { bury, ..Rules::default() };
            let mmr = Rules { diversity: Some(Diversity::Mmr { lambda: 1.0 }), ..plain.clone() };
            let expected = rerank(&candidates, &plain, usize::MAX);
            let got = rerank(&candidates, &mmr, usize::MAX);
            prop_assert_eq!(ids_and_effects(&got), ids_and_effects(&expected));
        }

        #[test]
        fn quotas_hold_unless_relaxed_and_relax_only_when_needed(
            candidates in proptest::collection::vec(candidate_strategy(), 0..40),
            bury in proptest::collection::vec(condition_strategy(), 0..2),
            by_brand in any::<bool>(),
            max_per_window in 1..3usize,
            window in 1..6usize,
        ) {
            // Unique ids, so each output item has one set of facts.
            let mut unique = HashSet::new();
            let candidates: Vec<Candidate> = candidates.into_iter().filter(|c| unique.insert(c.id.clone())).collect();
            let by = if by_brand { QuotaKey::Brand } else { QuotaKey::Category(1) };
            let diversity = Some(Diversity::Quota { by, max_per_window, window });
            let rules = Rules { bury, diversity, ..Rules::default() };
            let facts: IdMap<&str, &Candidate> = candidates.iter().map(|c| (c.id.as_str(), c)).collect();
            let out = rerank(&candidates, &rules, usize::MAX);
            let value = |r: &Reranked| -> Option<String> {
                let c = facts[r.id.as_str()];
                match by {
                    QuotaKey::Brand => c.brand.as_ref().map(|b| b.to_ascii_lowercase()),
                    QuotaKey::Category(_) => c.category.first().map(|t| t.to_ascii_lowercase()),
                }
            };
            let is_buried = |r: &Reranked| r.effects.contains(&Effect::Bury);
            let values: Vec<Option<String>> = out.iter().map(value).collect();
            let count_in =
                |v: &String, from: usize, to: usize| values[from..to].iter().filter(|w| w.as_ref() == Some(v)).count();
            for (q, r) in out.iter().enumerate() {
                let relaxed = r.effects.contains(&Effect::QuotaRelaxed);
                let Some(v) = &values[q] else {
                    prop_assert!(!relaxed);
                    continue;
                };
                let before = q.saturating_sub(window - 1);
                if !relaxed {
                    // The window ending here keeps the quota (so every window does: see the
                    // (max + 1)-th occurrence of a value in any window).
                    prop_assert!(count_in(v, before, q + 1) <= max_per_window, "{:?} at {}", v, q);
                } else {
                    // Every later candidate of the same bury group would have broken it too.
                    for (k, later) in out.iter().enumerate().skip(q + 1) {
                        if is_buried(later) != is_buried(r) {
                            continue;
                        }
                        let Some(w) = &values[k] else {
                            prop_assert!(false, "{} had no value yet {} was relaxed", later.id, r.id);
                            continue;
                        };
                        prop_assert!(count_in(w, before, q) >= max_per_window, "{} would have fit at {}", later.id, q);
                    }
                }
            }
        }
    }
}
