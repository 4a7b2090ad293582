//! A prior over items for shoppers with little or no history, learned from what shoppers
//! who share their attributes (age band, gender, region, occupation…) interacted with.
//!
//! Each attribute value `g` (`gender=F`, `region=north`) is a group of training users.
//! The chance that a user of the group touched item `i` is shrunk towards the shop-wide
//! chance `p(i)` with `shrinkage` pseudo-users: `p_g(i) = (c_g(i) + α·p(i)) / (n_g + α)`.
//! A shopper with groups `G` scores items by one of two combinations ([`Combine`]):
//! - `mean` (the default): `mean_{g∈G} p_g(i)` — "popular with shoppers like you", a
//!   mixture of the groups' shrunk rates;
//! - `naive_bayes`: `log p(i) + Σ_{g∈G} log(p_g(i) / p(i))` — the posterior if attributes
//!   were independent given the item; sharper, and overconfident where groups are small.
//!
//! Values held by fewer than `min_group_users` training users are not groups (a zip code of
//! one shopper is noise, not a prior). Only the items a group touched are stored per group,
//! with their counts, so the model is as large as the sum of the groups' distinct items.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::artifact::{Array, Artifact};
use super::data::Interactions;
use crate::error::{Error, Result, ValidationError};

/// How the prior is learned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemographicParams {
    /// Pseudo-users of shop-wide behaviour each group's rates are shrunk with.
    pub shrinkage: f32,
    /// Attribute values held by fewer training users than this are ignored.
    pub min_group_users: u32,
    /// How the groups of a shopper are combined.
    pub combine: Combine,
}

/// How a shopper's groups' rates are combined (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Combine {
    Mean,
    NaiveBayes,
}

impl Default for DemographicParams {
    fn default() -> Self {
        Self { shrinkage: 20.0, min_group_users: 5, combine: Combine::Mean }
    }
}

impl DemographicParams {
    pub fn validate(&self) -> std::result::Result<(), ValidationError> {
        if !(self.shrinkage.is_finite() && self.shrinkage > 0.0) {
            let message = format!("expected a positive number, found {}", self.shrinkage);
            return Err(ValidationError::new("invalid_params", "shrinkage", message));
        }
        if self.min_group_users == 0 {
            return Err(ValidationError::new("invalid_params", "min_group_users", "expected at least 1, found 0"));
        }
        Ok(())
    }
}

/// The group keys of a user's attributes: `name=value` for each attribute whose value is a
/// string, number or boolean (lists and objects name no group).
pub fn attribute_groups(attributes: &BTreeMap<String, serde_json::Value>) -> Vec<String> {
    attributes
        .iter()
        .filter_map(|(name, value)| {
            let value = match value {
                serde_json::Value::String(s) => s.trim().to_string(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            (!value.is_empty()).then(|| format!("{name}={value}"))
        })
        .collect()
}

/// One attribute value's users and the items they touched, with how many touched each.
#[derive(Debug, Clone, PartialEq)]
struct Group {
    users: u32,
    items: Vec<u32>,
    counts: Vec<u32>,
}

impl Group {
    /// `c_g(i) / (n_g + α)` of a listed item (`p_g(i)` less its share of the prior).
    fn share(&self, count: u32, alpha: f32) -> f32 {
        count as f32 / (self.users as f32 + alpha)
    }

    /// `α / (n_g + α)`: the weight of `p(i)` in `p_g(i)`.
    fn prior_weight(&self, alpha: f32) -> f32 {
        alpha / (self.users as f32 + alpha)
    }
}

/// The `k` best-scored items `reject` lets through, best first (ties by item number).
fn best_of(scores: &[f32], k: usize, reject: &mut dyn FnMut(u32) -> bool) -> Vec<(u32, f32)> {
    let mut top = super::ivf::TopK::new(k);
    for (i, &score) in scores.iter().enumerate() {
        if top.admits(score) && !reject(i as u32) {
            top.push(i as u32, score);
        }
    }
    top.into_sorted()
}

/// See the module docs.
#[derive(Debug, Clone, PartialEq)]
pub struct DemographicPrior {
    pub params: DemographicParams,
    n_items: usize,
    /// `p(i)` of every trained item.
    base: Vec<f32>,
    groups: HashMap<String, Group>,
    heads: Heads,
}

/// How many of the best items are kept per combination of groups.
const HEAD: usize = 1_000;

/// Combinations of groups kept before the cache starts afresh.
const HEADS_KEPT: usize = 4_096;

/// The best [`HEAD`] items of each combination of known groups asked for, best first:
/// shoppers share few combinations (age band × gender × region …), and scoring every item
/// per request took a fifth of the serving time at a million items (a sparse merge was
/// slower still: a large group lists most of the catalog). A cache, so equal and cloned
/// priors compare and copy without it.
#[derive(Default)]
struct Heads(parking_lot::Mutex<HashMap<Vec<String>, Head>>);

/// Items and scores, best first.
type Head = std::sync::Arc<Vec<(u32, f32)>>;

impl Clone for Heads {
    fn clone(&self) -> Self {
        Heads::default()
    }
}

impl PartialEq for Heads {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for Heads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Heads({})", self.0.lock().len())
    }
}

impl DemographicPrior {
    /// Learn the prior from `data`'s rows and each row's group keys (see
    /// [`attribute_groups`]; `groups[u]` for row `u`, empty for a user without attributes).
    /// `None` when no attribute value has enough users to be a group.
    pub fn train(data: &Interactions, groups: &[Vec<String>], params: &DemographicParams) -> Result<Option<Self>> {
        params.validate()?;
        if groups.len() != data.n_users() {
            return Err(Error::Internal(format!(
                "demographic prior: {} group lists for {} users",
                groups.len(),
                data.n_users()
            )));
        }
        let users = data.n_users().max(1) as f32;
        let mut touched = vec![0u32; data.n_items()];
        for &i in &data.indices {
            touched[i as usize] += 1;
        }
        // p(i) with one pseudo-user spread over the items, so no item has rate 0.
        let base: Vec<f32> = touched.iter().map(|&c| (c as f32 + 1.0 / data.n_items().max(1) as f32) / users).collect();
        let mut members: HashMap<&str, Vec<usize>> = HashMap::new();
        for (u, keys) in groups.iter().enumerate() {
            for key in keys {
                members.entry(key.as_str()).or_default().push(u);
            }
        }
        let mut out = HashMap::new();
        let mut counts: HashMap<u32, u32> = HashMap::new();
        for (key, rows) in members {
            if (rows.len() as u32) < params.min_group_users {
                continue;
            }
            counts.clear();
            for &u in &rows {
                for &i in data.row(u).0 {
                    *counts.entry(i).or_default() += 1;
                }
            }
            let mut listed: Vec<(u32, u32)> = counts.iter().map(|(&i, &c)| (i, c)).collect();
            listed.sort_unstable_by_key(|(i, _)| *i);
            let (items, counts) = listed.into_iter().unzip();
            out.insert(key.to_string(), Group { users: rows.len() as u32, items, counts });
        }
        if out.is_empty() {
            return Ok(None);
        }
        Ok(Some(Self { params: params.clone(), n_items: data.n_items(), base, groups: out, heads: Heads::default() }))
    }

    /// The prior over `data`'s rows from the stored users' attributes (`None` when no
    /// attribute value has enough users).
    pub fn from_store(
        store: &dyn crate::store::Storage,
        data: &Interactions,
        params: &DemographicParams,
    ) -> Result<Option<Self>> {
        let rows: HashMap<&str, usize> = data.user_ids.iter().enumerate().map(|(u, id)| (id.as_str(), u)).collect();
        let mut groups = vec![Vec::new(); data.n_users()];
        let mut any = false;
        store.scan_users(&mut |user| {
            if let Some(&u) = rows.get(user.id.as_str()) {
                groups[u] = attribute_groups(&user.attributes);
                any |= !groups[u].is_empty();
            }
            Ok(())
        })?;
        if !any {
            return Ok(None);
        }
        Self::train(data, &groups, params)
    }

    pub fn n_items(&self) -> usize {
        self.n_items
    }

    /// Whether any of these group keys is a group of the model.
    pub fn knows_any(&self, keys: &[String]) -> bool {
        keys.iter().any(|k| self.groups.contains_key(k))
    }

    /// The groups among `keys` that the model knows, with their sizes.
    pub fn known_groups<'a>(&self, keys: &'a [String]) -> Vec<(&'a str, u32)> {
        keys.iter().filter_map(|k| self.groups.get(k).map(|g| (k.as_str(), g.users))).collect()
    }

    /// The groups among `keys` whose users touched `item` more often than the shop's
    /// users at large (after shrinkage): what a reason can say "shoppers like you" by.
    pub fn lifting_groups<'a>(&self, keys: &'a [String], item: u32) -> Vec<&'a str> {
        keys.iter()
            .filter(|key| {
                self.groups.get(key.as_str()).is_some_and(|group| {
                    // p_g(i) > p(i)
                    let alpha = self.params.shrinkage;
                    group.items.binary_search(&item).is_ok_and(|k| {
                        let p = self.base[item as usize];
                        group.share(group.counts[k], alpha) + group.prior_weight(alpha) * p > p
                    })
                })
            })
            .map(String::as_str)
            .collect()
    }

    /// The `k` best items of [`DemographicPrior::scores`] that `reject` lets through, best
    /// first: from the cached head of this combination of groups, or from every score when
    /// `reject` turns down too much of the head.
    pub fn top(&self, keys: &[String], k: usize, reject: &mut dyn FnMut(u32) -> bool) -> Vec<(u32, f32)> {
        let head = self.head(keys);
        let found: Vec<(u32, f32)> = head.iter().copied().filter(|(i, _)| !reject(*i)).take(k).collect();
        if found.len() == k || head.len() < HEAD {
            return found;
        }
        best_of(&self.scores(keys), k, reject)
    }

    fn head(&self, keys: &[String]) -> Head {
        let mut known: Vec<String> = keys.iter().filter(|k| self.groups.contains_key(*k)).cloned().collect();
        known.sort();
        known.dedup();
        if let Some(head) = self.heads.0.lock().get(&known) {
            return head.clone();
        }
        let head = std::sync::Arc::new(best_of(&self.scores(&known), HEAD, &mut |_| false));
        let mut heads = self.heads.0.lock();
        if heads.len() >= HEADS_KEPT {
            heads.clear();
        }
        heads.insert(known, head.clone());
        head
    }

    /// Scores of every trained item for a shopper with these group keys (unknown keys
    /// count for nothing; with none known, the shop-wide order).
    pub fn scores(&self, keys: &[String]) -> Vec<f32> {
        let alpha = self.params.shrinkage;
        let groups: Vec<&Group> = keys.iter().filter_map(|k| self.groups.get(k)).collect();
        match self.params.combine {
            // mean_g p_g(i) = p(i)·mean_g(α/(n_g+α)) + mean_g(c_g(i)/(n_g+α)); with no group,
            // p(i).
            Combine::Mean => {
                if groups.is_empty() {
                    return self.base.clone();
                }
                let k = groups.len() as f32;
                let prior: f32 = groups.iter().map(|g| g.prior_weight(alpha)).sum::<f32>() / k;
                let mut scores: Vec<f32> = self.base.iter().map(|p| p * prior).collect();
                for group in groups {
                    for (&i, &c) in group.items.iter().zip(&group.counts) {
                        scores[i as usize] += group.share(c, alpha) / k;
                    }
                }
                scores
            }
            // log p(i) + Σ_g log(p_g(i)/p(i)); for an item the group never touched the lift
            // is log(α/(n_g+α)) whatever the item, so only listed items move, by the
            // difference.
            Combine::NaiveBayes => {
                let mut scores: Vec<f32> = self.base.iter().map(|p| p.ln()).collect();
                for group in groups {
                    let floor = group.prior_weight(alpha).ln();
                    for (&i, &c) in group.items.iter().zip(&group.counts) {
                        let p = self.base[i as usize];
                        let lift = ((group.share(c, alpha) + group.prior_weight(alpha) * p) / p).ln();
                        scores[i as usize] += lift - floor;
                    }
                }
                scores
            }
        }
    }

    pub fn to_artifact(&self) -> Result<Artifact> {
        let mut keys: Vec<&String> = self.groups.keys().collect();
        keys.sort();
        let mut sizes = Vec::with_capacity(keys.len());
        let mut users = Vec::with_capacity(keys.len());
        let (mut items, mut counts) = (Vec::new(), Vec::new());
        for key in &keys {
            let group = &self.groups[*key];
            sizes.push(group.items.len() as u32);
            users.push(group.users);
            items.extend_from_slice(&group.items);
            counts.extend_from_slice(&group.counts);
        }
        let mut params = serde_json::to_value(&self.params)
            .map_err(|e| Error::Internal(format!("encoding the demographic prior: {e}")))?;
        params["n_items"] = self.n_items.into();
        params["groups"] = keys.iter().map(|k| serde_json::Value::from(k.as_str())).collect();
        params["listed"] = items.len().into();
        Ok(Artifact {
            name: "demographic".into(),
            params,
            arrays: vec![
                Array::F32(self.base.clone()),
                Array::U32(sizes),
                Array::U32(users),
                Array::U32(items),
                Array::U32(counts),
            ],
        })
    }

    pub fn from_artifact(artifact: Artifact) -> Result<Self> {
        use super::artifact::corrupt_artifact as corrupt;
        if artifact.name != "demographic" {
            return Err(corrupt(format!("expected a demographic prior, found {:?}", artifact.name)));
        }
        let n_items = artifact.shape("n_items")?;
        let listed = artifact.shape("listed")?;
        let keys: Vec<String> = artifact
            .params
            .get("groups")
            .and_then(|g| serde_json::from_value(g.clone()).ok())
            .ok_or_else(|| corrupt("params.groups: expected a list of group keys"))?;
        let params: DemographicParams = artifact.model_params(&["n_items", "groups", "listed"])?;
        let mut arrays = artifact.arrays.into_iter();
        let base = Artifact::f32_array(&mut arrays, "base", n_items)?;
        let sizes = Artifact::u32_array(&mut arrays, "sizes", keys.len())?;
        let users = Artifact::u32_array(&mut arrays, "users", keys.len())?;
        let items = Artifact::u32_array(&mut arrays, "items", listed)?;
        let counts = Artifact::u32_array(&mut arrays, "counts", listed)?;
        if sizes.iter().map(|&s| s as usize).sum::<usize>() != listed {
            return Err(corrupt("group sizes do not add up to the listed items"));
        }
        if items.iter().any(|&i| i as usize >= n_items) {
            return Err(corrupt("a group lists an item beyond the model's items"));
        }
        let mut groups = HashMap::with_capacity(keys.len());
        let mut start = 0;
        for ((key, size), users) in keys.into_iter().zip(sizes).zip(users) {
            let end = start + size as usize;
            groups.insert(key, Group { users, items: items[start..end].to_vec(), counts: counts[start..end].to_vec() });
            start = end;
        }
        if base.iter().any(|p| !(p.is_finite() && *p > 0.0)) {
            return Err(corrupt("shop-wide rates must be positive"));
        }
        Ok(Self { params, n_items, base, groups, heads: Heads::default() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recommend::data::InteractionsBuilder;

    /// 40 users: the 20 with `g=a` touch items 0–2, the 20 with `g=b` items 3–5; everyone
    /// touches item 6 (the shop-wide favourite); `zip` values are unique.
    fn shop() -> (Interactions, Vec<Vec<String>>) {
        let mut builder = InteractionsBuilder::default();
        for i in 0..7 {
            builder.add_item(&format!("i{i}"));
        }
        let mut groups = Vec::new();
        for u in 0..40 {
            let user = format!("u{u:02}");
            let own = if u < 20 { 0..3 } else { 3..6 };
            for i in own {
                if (u + i) % 3 != 0 {
                    builder.add(&user, &format!("i{i}"), 1.0);
                }
            }
            builder.add(&user, "i6", 1.0);
            let mut attributes = BTreeMap::new();
            attributes.insert("g".to_string(), serde_json::json!(if u < 20 { "a" } else { "b" }));
            attributes.insert("zip".to_string(), serde_json::json!(10_000 + u));
            attributes.insert("tags".to_string(), serde_json::json!(["x"]));
            groups.push(attribute_groups(&attributes));
        }
        (builder.build(), groups)
    }

    fn top(scores: &[f32], n: usize) -> Vec<u32> {
        let mut order: Vec<u32> = (0..scores.len() as u32).collect();
        order.sort_by(|a, b| scores[*b as usize].total_cmp(&scores[*a as usize]).then(a.cmp(b)));
        order.truncate(n);
        order
    }

    #[test]
    fn groups_are_named_by_scalar_attribute_values() {
        let (_, groups) = shop();
        assert_eq!(groups[0], vec!["g=a".to_string(), "zip=10000".to_string()]);
    }

    #[test]
    fn a_group_pulls_up_its_own_items_and_tiny_groups_are_ignored() {
        for combine in [Combine::Mean, Combine::NaiveBayes] {
            group_pulls_up_its_own_items(combine);
        }
    }

    fn group_pulls_up_its_own_items(combine: Combine) {
        let (data, groups) = shop();
        let params = DemographicParams { combine, ..DemographicParams::default() };
        let model = DemographicPrior::train(&data, &groups, &params).unwrap().unwrap();
        // Unique zip codes are below min_group_users.
        assert!(!model.knows_any(&["zip=10000".to_string()]));
        let a = model.scores(&["g=a".to_string()]);
        let b = model.scores(&["g=b".to_string(), "zip=10020".to_string()]);
        // Everyone's favourite first, then the group's own items.
        assert_eq!(top(&a, 1), vec![6]);
        let mut top_a = top(&a, 4);
        top_a.sort();
        let mut top_b = top(&b, 4);
        top_b.sort();
        assert_eq!(top_a, vec![0, 1, 2, 6]);
        assert_eq!(top_b, vec![3, 4, 5, 6]);
        // Without a known group: the shop-wide favourite first.
        assert_eq!(top(&model.scores(&[]), 1), vec![6]);
        assert_eq!(model.known_groups(&["g=a".into(), "nope=1".into()]), vec![("g=a", 20)]);
        let keys = ["g=a".to_string(), "zip=10000".to_string()];
        assert_eq!(model.lifting_groups(&keys, 1), vec!["g=a"], "group a over-indexes on its own items");
        assert!(model.lifting_groups(&keys, 4).is_empty(), "and not on group b's");
        assert!(model.lifting_groups(&keys, 6).is_empty(), "nor on what everyone touches");
    }

    #[test]
    fn the_top_items_are_those_of_the_full_scores() {
        let (data, groups) = shop();
        for combine in [Combine::Mean, Combine::NaiveBayes] {
            let params = DemographicParams { combine, ..DemographicParams::default() };
            let model = DemographicPrior::train(&data, &groups, &params).unwrap().unwrap();
            for keys in [vec![], vec!["g=a".to_string()], vec!["zip=10020".to_string(), "g=b".to_string()]] {
                let scores = model.scores(&keys);
                for k in [1, 3, 7] {
                    for rejected in [None, Some(6u32), Some(0)] {
                        let expected: Vec<(u32, f32)> = top(&scores, 7)
                            .into_iter()
                            .filter(|i| Some(*i) != rejected)
                            .take(k)
                            .map(|i| (i, scores[i as usize]))
                            .collect();
                        // Twice: computed, then from the cache.
                        for _ in 0..2 {
                            assert_eq!(
                                model.top(&keys, k, &mut |i| Some(i) == rejected),
                                expected,
                                "{combine:?} {keys:?}"
                            );
                        }
                    }
                }
            }
            // One cached head per combination of known groups, whatever else the keys hold.
            assert_eq!(model.heads.0.lock().len(), 3);
        }
    }

    #[test]
    fn more_shrinkage_moves_towards_the_shop_wide_order() {
        let (data, groups) = shop();
        // Items 0 and 3 are equally popular shop-wide; group a touched only item 0.
        for combine in [Combine::Mean, Combine::NaiveBayes] {
            let gap = |shrinkage: f32| {
                let params = DemographicParams { shrinkage, combine, ..DemographicParams::default() };
                let model = DemographicPrior::train(&data, &groups, &params).unwrap().unwrap();
                let scores = model.scores(&["g=a".to_string()]);
                scores[0] - scores[3]
            };
            assert!(gap(20.0) > 0.1, "{combine:?}: {}", gap(20.0));
            assert!(gap(1.0) > gap(20.0), "{combine:?}");
            assert!(gap(1e6).abs() < 0.01 * gap(20.0), "{combine:?}: shrunk to the shop-wide rates: {}", gap(1e6));
        }
    }

    #[test]
    fn no_group_large_enough_means_no_model_and_bad_params_are_refused() {
        let (data, groups) = shop();
        let strict = DemographicParams { min_group_users: 21, ..DemographicParams::default() };
        assert!(DemographicPrior::train(&data, &groups, &strict).unwrap().is_none());
        let bad = DemographicParams { shrinkage: 0.0, ..DemographicParams::default() };
        assert!(DemographicPrior::train(&data, &groups, &bad).is_err());
        assert!(DemographicPrior::train(&data, &groups[..3], &DemographicParams::default()).is_err());
    }

    #[test]
    fn round_trips_through_its_artifact_and_refuses_damage() {
        let (data, groups) = shop();
        let model = DemographicPrior::train(&data, &groups, &DemographicParams::default()).unwrap().unwrap();
        let mut bytes = Vec::new();
        model.to_artifact().unwrap().write_to(&mut bytes).unwrap();
        let back = DemographicPrior::from_artifact(Artifact::read_from(&mut bytes.as_slice()).unwrap()).unwrap();
        assert_eq!(back, model);
        let mut artifact = model.to_artifact().unwrap();
        artifact.params["listed"] = 1.into();
        assert!(DemographicPrior::from_artifact(artifact).is_err());
        let mut artifact = model.to_artifact().unwrap();
        artifact.name = "als".into();
        assert!(DemographicPrior::from_artifact(artifact).is_err());
    }
}
