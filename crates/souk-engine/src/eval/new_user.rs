//! The `new-user` protocol (`souk eval --protocol new-user`): how good the first pages are
//! for a shopper the models never saw, at 0, 1, 3 and 5 events of history — strong
//! generalisation, as Liang et al. (2018) hold out users, cut at the start of a history.
//!
//! Users with at least [`MAX_HISTORY`] + 1 distinct items are eligible; a seeded
//! `1 - ratio` share of all users (at most every eligible one) is held out entirely, and
//! every model trains on the others. A held-out user's distinct items in the order they
//! first touched them are cut after the first [`MAX_HISTORY`]: the rest is the test set,
//! the same at every history length so the columns compare. At history `h` the model sees
//! the first `h` items (and the user's stored record: attributes, stated preferences) and
//! ranks every item but those `h`. Metrics average over all held-out users, with or
//! without a record.
//!
//! Models: `popularity`; `demographic` (the prior of shoppers sharing the user's attribute
//! values, [`DemographicPrior`]); `preferences` (popular items in the stated categories
//! and brands first; reported when a held-out user stated any); `als` and `itemknn` folded
//! in from the revealed items (popularity at `h = 0`); and `served`, the "for you" page's
//! recall fusion — reciprocal-rank fusion of those lists with the configured source
//! weights (the history sources' ramped by the history's length, [`history_weights`]), the
//! new-shopper sources only below [`NEW_SHOPPER_ITEMS`] items, as the page does.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use super::metrics::{hit_list, ndcg, recall};
use super::protocol::test_count;
use crate::error::{Error, Result, ValidationError};
use crate::fusion;
use crate::hashing::IdMap;
use crate::recommend::demographic::{attribute_groups, DemographicPrior};
use crate::recommend::itemknn::{self, ItemKnnModel};
use crate::recommend::{als, EventWeights, InteractionsBuilder, Recommender, SourceKind};
use crate::serving::new_shoppers::{history_weights, NEW_SHOPPER_ITEMS};
use crate::serving::RecommendConfig;
use crate::store::Storage;

/// The protocol's name.
pub const PROTOCOL: &str = "new-user";

/// History lengths evaluated.
pub const HISTORIES: [usize; 4] = [0, 1, 3, 5];

/// The longest history revealed; test items come after it.
pub const MAX_HISTORY: usize = 5;

/// How to evaluate.
#[derive(Debug, Clone)]
pub struct NewUserConfig {
    /// Share of users kept for training.
    pub ratio: f64,
    pub seed: u64,
    pub ks: Vec<usize>,
    /// The models' parameters and the page's source weights.
    pub recommend: RecommendConfig,
    /// How events weigh (the store's training weights).
    pub weights: EventWeights,
}

/// One model at one history length.
#[derive(Debug, Clone, Serialize)]
pub struct NewUserResult {
    pub model: String,
    /// `{"history": h}`.
    pub params: serde_json::Value,
    pub train_seconds: f64,
    pub metrics: BTreeMap<String, f64>,
}

/// What was evaluated.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NewUserDataset {
    pub users: usize,
    pub items: usize,
    pub train_users: usize,
    pub train_pairs: usize,
    /// Held-out users (every one is evaluated).
    pub eval_users: usize,
    /// Held-out users with an attribute value the demographic prior knows.
    pub eval_users_with_attributes: usize,
    /// Held-out users with stated preferences.
    pub eval_users_with_preferences: usize,
    pub test_pairs: usize,
}

/// The report, shaped as `souk eval`'s.
#[derive(Debug, Clone, Serialize)]
pub struct NewUserReport {
    pub protocol: &'static str,
    pub dataset: NewUserDataset,
    pub results: Vec<NewUserResult>,
}

/// A held-out user: distinct items in first-touch order with summed weights, the test
/// items (sorted), their attribute groups and stated preferences (lower case).
struct HeldOut {
    sequence: Vec<(u32, f32)>,
    test: Vec<u32>,
    groups: Vec<String>,
    categories: Vec<String>,
    brands: Vec<String>,
}

/// Per item: lower-case category levels and brand, for the preferences model.
type ItemFacts = Vec<Option<(Vec<String>, Option<String>)>>;

/// Run the protocol on the store's live events and user records.
pub fn evaluate(store: &dyn Storage, config: &NewUserConfig) -> Result<NewUserReport> {
    if !(config.ratio.is_finite() && config.ratio > 0.0 && config.ratio < 1.0) {
        let message = format!("expected a number strictly between 0 and 1, found {}", config.ratio);
        return Err(ValidationError::new("invalid_ratio", "ratio", message).into());
    }
    if config.ks.is_empty() || config.ks.contains(&0) {
        return Err(ValidationError::new("invalid_eval_config", "k", "expected cut-offs of at least 1").into());
    }
    // Each user's distinct items in first-touch order (events arrive in time order per
    // user in every importer; ties keep arrival order).
    let mut users: IdMap<String, u32> = IdMap::default();
    let mut user_ids: Vec<String> = Vec::new();
    let mut items: IdMap<String, u32> = IdMap::default();
    let mut item_ids: Vec<String> = Vec::new();
    let mut sequences: Vec<Vec<(u32, f32, i64)>> = Vec::new();
    // Where each (user, item) pair sits in its user's sequence.
    let mut placed: HashMap<(u32, u32), usize> = HashMap::new();
    store.scan_interactions(&mut |user, item, row| {
        let Some(item) = item else { return };
        let weight = config.weights.weight(row);
        if weight == 0.0 {
            return;
        }
        let u = *users.entry(user.to_string()).or_insert_with(|| {
            user_ids.push(user.to_string());
            sequences.push(Vec::new());
            (user_ids.len() - 1) as u32
        });
        let i = *items.entry(item.to_string()).or_insert_with(|| {
            item_ids.push(item.to_string());
            (item_ids.len() - 1) as u32
        });
        let sequence = &mut sequences[u as usize];
        match placed.get(&(u, i)) {
            Some(&k) => sequence[k].1 += weight,
            None => {
                placed.insert((u, i), sequence.len());
                sequence.push((i, weight, row.timestamp));
            }
        }
    })?;
    drop(placed);
    for sequence in &mut sequences {
        sequence.sort_by_key(|(_, _, t)| *t);
    }
    let mut eligible: Vec<usize> = (0..user_ids.len())
        .filter(|&u| sequences[u].iter().filter(|(_, w, _)| *w > 0.0).count() > MAX_HISTORY)
        .collect();
    eligible.shuffle(&mut ChaCha8Rng::seed_from_u64(config.seed));
    let n_held = test_count(user_ids.len(), config.ratio).min(eligible.len());
    if n_held == 0 {
        return Err(Error::Coded {
            code: "no_data",
            message: format!("no user has more than {MAX_HISTORY} distinct items to hold out"),
        });
    }
    let mut held = vec![false; user_ids.len()];
    for &u in &eligible[..n_held] {
        held[u] = true;
    }

    // Training rows: every other user; every item is a column.
    let mut builder = InteractionsBuilder::default();
    for id in &item_ids {
        builder.add_item(id);
    }
    for (u, sequence) in sequences.iter().enumerate() {
        if !held[u] {
            for &(i, w, _) in sequence {
                builder.add(&user_ids[u], &item_ids[i as usize], w);
            }
        }
    }
    let data = builder.build();
    let mut records: HashMap<String, crate::model::User> = HashMap::new();
    store.scan_users(&mut |user| {
        if users.contains_key(user.id.as_str()) {
            records.insert(user.id.as_str().to_string(), user);
        }
        Ok(())
    })?;

    let mut seconds: BTreeMap<&str, f64> = BTreeMap::new();
    let t = Instant::now();
    let mut popularity = vec![0f32; data.n_items()];
    for &i in &data.indices {
        popularity[i as usize] += 1.0;
    }
    seconds.insert("popularity", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let groups: Vec<Vec<String>> = data
        .user_ids
        .iter()
        .map(|id| records.get(id).map(|r| attribute_groups(&r.attributes)).unwrap_or_default())
        .collect();
    let prior = DemographicPrior::train(&data, &groups, &config.recommend.demographic)?;
    seconds.insert("demographic", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let als = als::train(&data, &config.recommend.als)?;
    seconds.insert("als", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let knn = itemknn::train(&data, &config.recommend.itemknn)?;
    seconds.insert("itemknn", t.elapsed().as_secs_f64());

    let held_out: Vec<HeldOut> = (0..user_ids.len())
        .filter(|&u| held[u])
        .map(|u| {
            let sequence: Vec<(u32, f32)> =
                sequences[u].iter().filter(|(_, w, _)| *w > 0.0).map(|&(i, w, _)| (i, w)).collect();
            let mut test: Vec<u32> = sequence[MAX_HISTORY..].iter().map(|(i, _)| *i).collect();
            test.sort_unstable();
            let record = records.get(&user_ids[u]);
            let lower = |values: &[String]| -> Vec<String> {
                values.iter().map(|v| v.trim().to_lowercase()).filter(|v| !v.is_empty()).collect()
            };
            HeldOut {
                sequence,
                test,
                groups: record.map(|r| attribute_groups(&r.attributes)).unwrap_or_default(),
                categories: record.map(|r| lower(&r.preferences.categories)).unwrap_or_default(),
                brands: record.map(|r| lower(&r.preferences.brands)).unwrap_or_default(),
            }
        })
        .collect();
    let with_preferences = held_out.iter().filter(|u| !u.categories.is_empty() || !u.brands.is_empty()).count();
    let facts: ItemFacts = if with_preferences > 0 {
        let mut facts = vec![None; item_ids.len()];
        store.scan_item_meta(&mut |id, meta| {
            if let Some(&i) = items.get(id) {
                let category = meta.category.iter().map(|c| c.to_lowercase()).collect();
                facts[i as usize] = Some((category, meta.brand.as_ref().map(|b| b.to_lowercase())));
            }
        })?;
        facts
    } else {
        Vec::new()
    };

    let mut models = vec!["popularity", "als", "itemknn"];
    if prior.is_some() {
        models.insert(1, "demographic");
    }
    if with_preferences > 0 {
        models.insert(models.len() - 2, "preferences");
    }
    models.push("served");
    let scorer = Scorer {
        popularity: &popularity,
        prior: prior.as_ref(),
        als: &als,
        knn: &knn,
        facts: &facts,
        config: &config.recommend,
        depth: config.ks.iter().copied().max().unwrap_or(10),
    };
    // Per user: (model, history) → metric sums.
    let sums: Vec<BTreeMap<(usize, usize), Vec<f64>>> = held_out
        .par_iter()
        .map(|user| {
            let mut out = BTreeMap::new();
            for (m, model) in models.iter().enumerate() {
                for (h, &history) in HISTORIES.iter().enumerate() {
                    let ranked = scorer.rank(model, user, history);
                    let hits = hit_list(&ranked, &user.test);
                    let mut values = Vec::new();
                    for &k in &config.ks {
                        values.push(ndcg(&hits, k, user.test.len()));
                        values.push(recall(&hits, k, user.test.len()));
                    }
                    out.insert((m, h), values);
                }
            }
            out
        })
        .collect();
    let mut results = Vec::new();
    for (m, model) in models.iter().enumerate() {
        for (h, &history) in HISTORIES.iter().enumerate() {
            let mut metrics = BTreeMap::new();
            for (k_index, &k) in config.ks.iter().enumerate() {
                for (offset, name) in ["ndcg", "recall"].iter().enumerate() {
                    let total: f64 = sums.iter().map(|s| s[&(m, h)][2 * k_index + offset]).sum();
                    metrics.insert(format!("{name}@{k}"), total / held_out.len() as f64);
                }
            }
            let train_seconds = match *model {
                "served" => seconds.values().sum(),
                "preferences" => seconds["popularity"],
                name => seconds[name],
            };
            results.push(NewUserResult {
                model: model.to_string(),
                params: serde_json::json!({ "history": history }),
                train_seconds,
                metrics,
            });
        }
    }
    let dataset = NewUserDataset {
        users: user_ids.len(),
        items: item_ids.len(),
        train_users: data.n_users(),
        train_pairs: data.nnz(),
        eval_users: held_out.len(),
        eval_users_with_attributes: held_out
            .iter()
            .filter(|u| prior.as_ref().is_some_and(|p| p.knows_any(&u.groups)))
            .count(),
        eval_users_with_preferences: with_preferences,
        test_pairs: held_out.iter().map(|u| u.test.len()).sum(),
    };
    Ok(NewUserReport { protocol: PROTOCOL, dataset, results })
}

/// What every model ranks from.
struct Scorer<'a> {
    popularity: &'a [f32],
    prior: Option<&'a DemographicPrior>,
    als: &'a als::AlsModel,
    knn: &'a ItemKnnModel,
    facts: &'a ItemFacts,
    config: &'a RecommendConfig,
    /// The longest list a metric reads.
    depth: usize,
}

impl Scorer<'_> {
    /// `model`'s ranking for `user` at `history` items, best first, at least `depth` long
    /// (the revealed items left out).
    fn rank(&self, model: &str, user: &HeldOut, history: usize) -> Vec<u32> {
        let revealed = &user.sequence[..history];
        let shown = |i: u32| revealed.iter().any(|(j, _)| *j == i);
        let depth = self.depth;
        match model {
            "served" => self.served(user, revealed, &shown),
            name => {
                let scores = self.scores(name, user, revealed);
                top(&scores, depth, &shown)
            }
        }
    }

    /// Dense scores of one model (popularity where the model has nothing to go on).
    fn scores(&self, model: &str, user: &HeldOut, revealed: &[(u32, f32)]) -> Vec<f32> {
        match model {
            "demographic" => match self.prior {
                Some(prior) => prior.scores(&user.groups),
                None => self.popularity.to_vec(),
            },
            "preferences" => {
                let bonus = self.popularity.iter().copied().fold(0.0, f32::max) + 1.0;
                (0..self.popularity.len())
                    .map(|i| self.popularity[i] + if self.prefers(user, i) { bonus } else { 0.0 })
                    .collect()
            }
            "als" if !revealed.is_empty() => {
                let mut pairs = revealed.to_vec();
                pairs.sort_unstable_by_key(|(i, _)| *i);
                let mut scores = vec![0f32; self.popularity.len()];
                self.als.score_live(None, &pairs, &mut scores);
                scores
            }
            "itemknn" if !revealed.is_empty() => {
                let mut scores = vec![0f32; self.popularity.len()];
                for &(j, weight) in revealed {
                    let weight = if self.knn.params.binary { 1.0 } else { weight };
                    let (neighbours, sims) = self.knn.neighbours_of(j);
                    for (i, s) in neighbours.iter().zip(sims) {
                        scores[*i as usize] += weight * s;
                    }
                }
                // Items without a neighbour score follow by popularity.
                let scale = self.popularity.iter().copied().fold(0.0, f32::max).max(1.0) * 1e3;
                scores.iter().zip(self.popularity).map(|(s, p)| if *s > 0.0 { s + scale } else { *p }).collect()
            }
            _ => self.popularity.to_vec(),
        }
    }

    fn prefers(&self, user: &HeldOut, item: usize) -> bool {
        let Some(Some((category, brand))) = self.facts.get(item) else { return false };
        brand.as_ref().is_some_and(|b| user.brands.contains(b)) || category.iter().any(|c| user.categories.contains(c))
    }

    /// The page's recall fusion: each source's top list, fused by weighted reciprocal
    /// rank; what no source proposed follows by popularity.
    fn served(&self, user: &HeldOut, revealed: &[(u32, f32)], shown: &dyn Fn(u32) -> bool) -> Vec<u32> {
        let want = self.config.candidates_per_source.max(self.depth * 3);
        let mut lists: Vec<(SourceKind, Vec<u32>)> = Vec::new();
        if !revealed.is_empty() {
            lists.push((SourceKind::Als, top(&self.scores("als", user, revealed), want, shown)));
            let knn = self.scores("itemknn", user, revealed);
            let proposed: Vec<u32> =
                top(&knn, want, shown).into_iter().filter(|&i| knn[i as usize] > self.popularity[i as usize]).collect();
            lists.push((SourceKind::Itemknn, proposed));
        }
        if revealed.len() < NEW_SHOPPER_ITEMS {
            if let Some(prior) = self.prior.filter(|p| p.knows_any(&user.groups)) {
                lists.push((SourceKind::Demographic, top(&prior.scores(&user.groups), want, shown)));
            }
            if !user.categories.is_empty() || !user.brands.is_empty() {
                let matching = top(&self.scores("preferences", user, revealed), want, shown);
                let matching = matching.into_iter().filter(|&i| self.prefers(user, i as usize)).collect();
                lists.push((SourceKind::Preferences, matching));
            }
        }
        lists.push((SourceKind::Popularity, top(self.popularity, want, shown)));
        let weights = history_weights(&self.config.source_weights, revealed.len(), self.config.history_ramp);
        let mut fused: HashMap<u32, f64> = HashMap::new();
        for (kind, list) in &lists {
            let weight = weights.get(kind).copied().unwrap_or(1.0);
            for (rank, &i) in list.iter().enumerate() {
                *fused.entry(i).or_default() += weight * fusion::reciprocal_rank(fusion::RRF_K, rank + 1);
            }
        }
        let mut ranked: Vec<(u32, f64)> = fused.into_iter().collect();
        ranked.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut out: Vec<u32> = ranked.into_iter().map(|(i, _)| i).collect();
        if out.len() < self.depth {
            for i in top(self.popularity, self.depth + out.len(), shown) {
                if out.len() == self.depth {
                    break;
                }
                if !out.contains(&i) {
                    out.push(i);
                }
            }
        }
        out
    }
}

/// The `k` best items by score, ties by item number, skipping `skip`.
fn top(scores: &[f32], k: usize, skip: &dyn Fn(u32) -> bool) -> Vec<u32> {
    let mut order: Vec<u32> = (0..scores.len() as u32).filter(|&i| !skip(i)).collect();
    let k = k.min(order.len());
    if k == 0 {
        return Vec::new();
    }
    let by_score = |a: &u32, b: &u32| scores[*b as usize].total_cmp(&scores[*a as usize]).then(a.cmp(b));
    order.select_nth_unstable_by(k - 1, by_score);
    order.truncate(k);
    order.sort_unstable_by(by_score);
    order
}

/// The report as a table: NDCG and recall at the first cut-off per model and history.
pub fn render(report: &NewUserReport, ks: &[usize]) -> String {
    use std::fmt::Write as _;
    let d = &report.dataset;
    let mut out = format!(
        "protocol new-user: {} users ({} held out: {} with known attributes, {} with stated preferences), {} items, {} training pairs, {} test pairs\n",
        d.users, d.eval_users, d.eval_users_with_attributes, d.eval_users_with_preferences, d.items, d.train_pairs, d.test_pairs
    );
    for k in ks.iter().take(1) {
        for metric in ["ndcg", "recall"] {
            let _ = write!(out, "\n{metric}@{k:<8}");
            for h in HISTORIES {
                let _ = write!(out, "{:>10}", format!("h={h}"));
            }
            let mut models: Vec<&str> = report.results.iter().map(|r| r.model.as_str()).collect();
            models.dedup();
            for model in models {
                let _ = write!(out, "\n{model:<15}");
                for h in HISTORIES {
                    let value = report
                        .results
                        .iter()
                        .find(|r| r.model == model && r.params["history"] == h)
                        .and_then(|r| r.metrics.get(&format!("{metric}@{k}")))
                        .copied()
                        .unwrap_or(f64::NAN);
                    let _ = write!(out, "{value:>10.4}");
                }
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::{GenConfig, Generator};
    use crate::store::{EmbeddedStore, StoreConfig, StoreSink};

    fn config(seed: u64) -> NewUserConfig {
        NewUserConfig {
            ratio: 0.8,
            seed,
            ks: vec![10, 20],
            recommend: RecommendConfig::default(),
            weights: EventWeights::default(),
        }
    }

    fn metric(report: &NewUserReport, model: &str, history: usize, name: &str) -> f64 {
        report
            .results
            .iter()
            .find(|r| r.model == model && r.params["history"] == history)
            .unwrap_or_else(|| panic!("{model} at {history}"))
            .metrics[name]
    }

    /// A generated shop: demographics shape the shoppers' category tastes, and their
    /// stated preferences agree with them.
    #[test]
    fn profiles_beat_popularity_before_any_history_and_history_takes_over() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), &StoreConfig::default()).unwrap();
        let generator = Generator::new(GenConfig { items: 400, users: 800, events: 40_000, seed: 11 }).unwrap();
        let mut sink = StoreSink::new(&store);
        generator.run(&mut sink, &mut |_| {}).unwrap();
        sink.finish().unwrap();
        let report = evaluate(&store, &config(3)).unwrap();
        let d = &report.dataset;
        assert!(d.eval_users > 50, "{d:?}");
        assert_eq!(d.eval_users_with_attributes, d.eval_users, "every generated shopper has attributes");
        assert!(d.eval_users_with_preferences > 0);
        let models: Vec<&str> = report.results.iter().map(|r| r.model.as_str()).collect();
        for model in ["popularity", "demographic", "preferences", "als", "itemknn", "served"] {
            assert_eq!(models.iter().filter(|m| **m == model).count(), HISTORIES.len(), "{model}");
        }
        let ndcg = |model: &str, h: usize| metric(&report, model, h, "ndcg@10");
        // Before any event, the profile is all there is.
        assert!(ndcg("demographic", 0) > ndcg("popularity", 0), "{report:?}");
        assert!(ndcg("preferences", 0) > ndcg("popularity", 0), "{report:?}");
        assert!(ndcg("served", 0) > ndcg("popularity", 0), "{report:?}");
        // Without history the history models are popularity.
        assert_eq!(ndcg("als", 0), ndcg("popularity", 0));
        // Five events teach ALS more than the profile says.
        assert!(ndcg("als", 5) > ndcg("als", 1), "{report:?}");
        assert!(ndcg("served", 5) > ndcg("served", 0), "{report:?}");
        // The same seed, the same figures.
        let again = evaluate(&store, &config(3)).unwrap();
        assert_eq!(ndcg("served", 3), metric(&again, "served", 3, "ndcg@10"));
        let table = render(&report, &[10, 20]);
        assert!(table.contains("demographic") && table.contains("h=5"), "{table}");
    }

    #[test]
    fn refuses_bad_settings_and_a_shop_without_long_histories() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), &StoreConfig::default()).unwrap();
        let bad = NewUserConfig { ratio: 1.0, ..config(1) };
        assert!(evaluate(&store, &bad).is_err());
        let bad = NewUserConfig { ks: vec![0], ..config(1) };
        assert!(evaluate(&store, &bad).is_err());
        let err = evaluate(&store, &config(1)).unwrap_err();
        assert!(err.to_string().contains("distinct items"), "{err}");
    }
}
