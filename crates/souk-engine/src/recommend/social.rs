//! The social model: another model's scores, pulled towards what the user's friends like.
//!
//! Friends share taste beyond what co-occurrence shows: on LastFM a friend's artists are
//! often tail artists nobody else plays, which no collaborative model can propose from the
//! user's own row. For each training user the model keeps their *friend row*: every item
//! their followed users interacted with, weighted by the share of friends who did (a
//! friend counts with the weight of the edge and, optionally, with the similarity of the
//! two users' own rows), the strongest `friend_items_kept` of them. Scoring is
//!
//! ```text
//! s(u) = z(base(u)) + β · z(base(friend row of u)) + γ · friend row of u
//! ```
//!
//! `z` standardises over the catalog (as `blend` does): the base model's own opinion of
//! the user, its opinion of the friends' pooled history ("friend taste": for a linear
//! model the friends' mean score, for ALS a fold-in of their pooled items), and the
//! friends' items themselves ("friends' items"). A user without friends in training is
//! scored by the base model alone, so the model is the base model on a shop without social
//! edges. This is the friend-augmented-history family (the cheap end of social
//! recommendation: no change to the base model's training, one more scoring per request).
//!
//! Owns: the social edges a training run sees ([`SocialEdges`], by user id), the friend
//! rows, the model and its composite artifact (the base model's arrays, then the friend
//! rows in CSR). Never reads the store: edges come with the [`Interactions`].

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::artifact::{Array, Artifact};
use super::blend::standardise;
use super::data::{Interactions, SocialEdges};
use super::kernels::{check_range, invalid};
use super::Recommender;
use crate::Result;

/// Parameters of [`train`]. Defaults chosen on a validation split carved from HetRec
/// LastFM's training data (see BENCHMARKS.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SocialParams {
    /// The base model (a registry name, not `social`).
    pub base: String,
    /// Its parameters (`null`: its defaults).
    pub base_params: Value,
    /// `β`: weight of the base model's standardised scores of the friends' pooled items.
    pub friend_taste: f32,
    /// `γ`: weight of the friends' items themselves (share of friends, in `[0, 1]`).
    pub friend_items: f32,
    /// Exponent of the cosine similarity between the user's and the friend's rows in the
    /// friend's weight (0: every friend weighs its edge alone).
    pub similarity_exponent: f32,
    /// How many of the friends' items each user's friend row keeps (the strongest).
    pub friend_items_kept: usize,
    /// Edges are followed both ways (friendship and trust networks are often listed one
    /// way only).
    pub symmetric: bool,
}

impl Default for SocialParams {
    fn default() -> Self {
        Self {
            base: "als".into(),
            base_params: json!({ "factors": 128, "regularization": 50.0, "alpha": 10.0 }),
            friend_taste: 0.3,
            friend_items: 2.0,
            similarity_exponent: 0.0,
            friend_items_kept: 500,
            symmetric: true,
        }
    }
}

impl SocialParams {
    pub fn validate(&self, models: &[&str]) -> Result<()> {
        if self.base == "social" || !models.contains(&self.base.as_str()) {
            return Err(invalid(
                "social.base",
                format!("expected another registry model as the base, found {:?}", self.base),
            ));
        }
        check_range("social.friend_taste", self.friend_taste, 0.0, 1e6)?;
        check_range("social.friend_items", self.friend_items, 0.0, 1e6)?;
        check_range("social.similarity_exponent", self.similarity_exponent, 0.0, 16.0)?;
        if !(1..=1_000_000).contains(&self.friend_items_kept) {
            return Err(invalid(
                "social.friend_items_kept",
                format!("expected 1..=1000000, found {}", self.friend_items_kept),
            ));
        }
        Ok(())
    }
}

/// Each training user's friend row, CSR: row `u` is `items[indptr[u]..indptr[u + 1]]`,
/// sorted by item, with the share of friend weight in `values`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FriendRows {
    pub indptr: Vec<u32>,
    pub items: Vec<u32>,
    pub values: Vec<f32>,
}

impl FriendRows {
    /// User `u`'s friend row as (item, share) pairs; empty for unknown users.
    pub fn row(&self, u: usize) -> Vec<(u32, f32)> {
        if u + 1 >= self.indptr.len() {
            return Vec::new();
        }
        let range = self.indptr[u] as usize..self.indptr[u + 1] as usize;
        self.items[range.clone()].iter().copied().zip(self.values[range].iter().copied()).collect()
    }

    pub fn n_users(&self) -> usize {
        self.indptr.len().saturating_sub(1)
    }

    /// Build from the training rows and the edges: for each user, the items of the users
    /// they follow, each friend counted once per item with its weight, divided by the
    /// friends' total weight. Cost `O(Σ_u Σ_{f ∈ F(u)} |row_f|)`.
    pub fn build(data: &Interactions, edges: &SocialEdges, params: &SocialParams) -> FriendRows {
        let index: HashMap<&str, u32> =
            data.user_ids.iter().enumerate().map(|(u, id)| (id.as_str(), u as u32)).collect();
        let mut friends: Vec<Vec<(u32, f32)>> = vec![Vec::new(); data.n_users()];
        for (a, b, w) in edges.edges.iter() {
            let (Some(&a), Some(&b)) = (index.get(a.as_str()), index.get(b.as_str())) else { continue };
            if a == b || *w <= 0.0 {
                continue;
            }
            friends[a as usize].push((b, *w));
            if params.symmetric {
                friends[b as usize].push((a, *w));
            }
        }
        let mut indptr = vec![0u32];
        let (mut items, mut values) = (Vec::new(), Vec::new());
        let mut pooled: HashMap<u32, f32> = HashMap::new();
        for (u, list) in friends.iter_mut().enumerate() {
            // One weight per friend (the strongest edge when listed twice).
            list.sort_unstable_by(|x, y| x.0.cmp(&y.0).then(y.1.total_cmp(&x.1)));
            list.dedup_by_key(|(f, _)| *f);
            pooled.clear();
            let mut total = 0f32;
            for &(f, edge) in list.iter() {
                let weight = if params.similarity_exponent > 0.0 {
                    edge * (0.01 + cosine(data.row(u).0, data.row(f as usize).0)).powf(params.similarity_exponent)
                } else {
                    edge
                };
                total += weight;
                for &i in data.row(f as usize).0 {
                    *pooled.entry(i).or_default() += weight;
                }
            }
            let mut row: Vec<(u32, f32)> =
                pooled.iter().map(|(&i, &w)| (i, w / total.max(f32::MIN_POSITIVE))).collect();
            row.sort_unstable_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
            row.truncate(params.friend_items_kept);
            row.sort_unstable_by_key(|(i, _)| *i);
            for (i, v) in row {
                items.push(i);
                values.push(v);
            }
            indptr.push(items.len() as u32);
        }
        FriendRows { indptr, items, values }
    }
}

/// Cosine similarity of two binary rows (sorted item lists).
fn cosine(a: &[u32], b: &[u32]) -> f32 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let (mut x, mut y, mut common) = (0, 0, 0usize);
    while x < a.len() && y < b.len() {
        match a[x].cmp(&b[y]) {
            std::cmp::Ordering::Less => x += 1,
            std::cmp::Ordering::Greater => y += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                x += 1;
                y += 1;
            }
        }
    }
    common as f32 / ((a.len() as f32) * (b.len() as f32)).sqrt()
}

/// A trained social model: the base model and every training user's friend row.
pub struct SocialModel {
    pub params: SocialParams,
    base: Box<dyn Recommender>,
    friends: FriendRows,
}

/// Trains the base model by name and parameters (the registry's `train_model`).
pub type TrainBase<'a> = &'a dyn Fn(&str, &Value, &Interactions) -> Result<Box<dyn Recommender>>;
/// Loads the base model from its artifact (the registry's `model_from_artifact`).
pub type LoadBase<'a> = &'a dyn Fn(Artifact) -> Result<Box<dyn Recommender>>;

/// Train the base model on `data` and build the friend rows from `data.social`.
pub fn train(
    data: &Interactions,
    params: &SocialParams,
    models: &[&str],
    train_base: TrainBase<'_>,
) -> Result<SocialModel> {
    params.validate(models)?;
    let base = train_base(&params.base, &params.base_params, data)?;
    let friends = FriendRows::build(data, &data.social, params);
    Ok(SocialModel { params: params.clone(), base, friends })
}

impl SocialModel {
    /// How many training users have a non-empty friend row.
    pub fn users_with_friends(&self) -> usize {
        self.friends.indptr.windows(2).filter(|w| w[1] > w[0]).count()
    }

    /// Add the social terms for user row `user` to `scores`, which hold the base model's
    /// scores of the user (standardised here when the user has friends).
    fn add_friends(&self, user: Option<u32>, scores: &mut [f32]) {
        let Some(u) = user else { return };
        let row = self.friends.row(u as usize);
        if row.is_empty() {
            return;
        }
        standardise(scores);
        if self.params.friend_taste > 0.0 {
            let mut taste = vec![0f32; scores.len()];
            self.base.score(None, &row, &mut taste);
            standardise(&mut taste);
            for (s, t) in scores.iter_mut().zip(&taste) {
                *s += self.params.friend_taste * t;
            }
        }
        if self.params.friend_items > 0.0 {
            for (i, share) in row {
                if let Some(s) = scores.get_mut(i as usize) {
                    *s += self.params.friend_items * share;
                }
            }
        }
    }

    pub fn from_artifact(artifact: Artifact, load_base: LoadBase<'_>) -> Result<Self> {
        let corrupt = |m: &str| super::artifact::corrupt_artifact(format!("social: {m}"));
        let meta = &artifact.params;
        let base_name = meta.get("base_name").and_then(Value::as_str).ok_or_else(|| corrupt("no base name"))?;
        if base_name == "social" {
            return Err(corrupt("a social model inside a social model"));
        }
        let base_arrays = meta.get("base_arrays").and_then(Value::as_u64).ok_or_else(|| corrupt("no array count"))?;
        let n_users = artifact.shape("n_users")?;
        let nnz = artifact.shape("friend_nnz")?;
        let params: SocialParams = serde_json::from_value(meta.get("trained_with").cloned().unwrap_or(Value::Null))
            .map_err(|e| corrupt(&e.to_string()))?;
        let base_params = meta.get("base_params").cloned().unwrap_or(Value::Null);
        let mut arrays = artifact.arrays.into_iter();
        let base_part: Vec<Array> = arrays.by_ref().take(base_arrays as usize).collect();
        if base_part.len() != base_arrays as usize {
            return Err(corrupt("fewer arrays than the base model names"));
        }
        let base = load_base(Artifact { name: base_name.to_string(), params: base_params, arrays: base_part })?;
        let indptr = Artifact::u32_array(&mut arrays, "friend indptr", n_users + 1)?;
        let items = Artifact::u32_array(&mut arrays, "friend items", nnz)?;
        let values = Artifact::f32_array(&mut arrays, "friend values", nnz)?;
        if arrays.next().is_some() {
            return Err(corrupt("more arrays than expected"));
        }
        if indptr.first() != Some(&0)
            || indptr.last().copied() != Some(nnz as u32)
            || indptr.windows(2).any(|w| w[0] > w[1])
        {
            return Err(corrupt("friend rows out of order"));
        }
        Ok(SocialModel { params, base, friends: FriendRows { indptr, items, values } })
    }
}

impl Recommender for SocialModel {
    fn name(&self) -> &str {
        "social"
    }

    /// Cost: the base model's scoring, plus (for a user with friends) one more scoring of
    /// the friend row (`friend_taste`), two passes over the catalog and the row.
    fn score(&self, user: Option<u32>, history: &[(u32, f32)], scores: &mut [f32]) {
        self.base.score(user, history, scores);
        self.add_friends(user, scores);
    }

    fn score_live(&self, user: Option<u32>, history: &[(u32, f32)], scores: &mut [f32]) {
        self.base.score_live(None, history, scores);
        self.add_friends(user, scores);
    }

    fn to_artifact(&self) -> Option<Artifact> {
        let base = self.base.to_artifact()?;
        let params = json!({
            "base_name": base.name,
            "base_params": base.params,
            "base_arrays": base.arrays.len(),
            "trained_with": self.params,
            "n_users": self.friends.n_users(),
            "friend_nnz": self.friends.items.len(),
        });
        let mut arrays = base.arrays;
        arrays.push(Array::U32(self.friends.indptr.clone()));
        arrays.push(Array::U32(self.friends.items.clone()));
        arrays.push(Array::F32(self.friends.values.clone()));
        Some(Artifact { name: self.name().into(), params, arrays })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::recommend::als::tests::synthetic;
    use crate::recommend::registry::{self, MODELS};

    fn params() -> SocialParams {
        SocialParams {
            base_params: json!({ "factors": 4, "iterations": 3 }),
            friend_taste: 0.5,
            friend_items: 2.0,
            ..SocialParams::default()
        }
    }

    fn with_edges(mut data: Interactions, edges: &[(&str, &str)]) -> Interactions {
        data.social = SocialEdges::new(edges.iter().map(|(a, b)| (a.to_string(), b.to_string(), 1.0)).collect());
        data
    }

    fn scores(model: &dyn Recommender, data: &Interactions, u: usize) -> Vec<f32> {
        let mut out = vec![0f32; data.n_items()];
        model.score(Some(u as u32), &data.history(u), &mut out);
        out
    }

    fn live_scores(model: &dyn Recommender, data: &Interactions, u: usize) -> Vec<f32> {
        let mut out = vec![0f32; data.n_items()];
        model.score_live(Some(u as u32), &data.history(u), &mut out);
        out
    }

    fn train_social(data: &Interactions, params: &SocialParams) -> SocialModel {
        train(data, params, MODELS, &registry::train_model).unwrap()
    }

    #[test]
    fn without_edges_it_scores_as_its_base_model() {
        let data = synthetic(12, 16, 5, 3);
        let social = train_social(&data, &params());
        let base = registry::train_model("als", &params().base_params, &data).unwrap();
        assert_eq!(social.users_with_friends(), 0);
        for u in 0..data.n_users() {
            assert_eq!(scores(&social, &data, u), scores(base.as_ref(), &data, u), "user {u}");
        }
    }

    #[test]
    fn edges_change_the_scores_of_the_users_they_touch_and_no_one_else() {
        let data = synthetic(12, 16, 5, 3);
        let plain = train_social(&data, &params());
        let social = train_social(&with_edges(data.clone(), &[("u0", "u5")]), &params());
        // Symmetric by default: u0 and u5 have a friend each, nobody else has.
        assert_eq!(social.users_with_friends(), 2);
        for u in 0..data.n_users() {
            let (before, after) = (scores(&plain, &data, u), scores(&social, &data, u));
            if u == 0 || u == 5 {
                assert_ne!(before, after, "user {u} has a friend now");
                assert_ne!(live_scores(&plain, &data, u), live_scores(&social, &data, u), "user {u}, served");
            } else {
                assert_eq!(before, after, "user {u} has no friend");
                assert_eq!(live_scores(&plain, &data, u), live_scores(&social, &data, u), "user {u}, served");
            }
        }
        // A one-way edge when asked: only the follower changes.
        let one_way = SocialParams { symmetric: false, ..params() };
        let social = train_social(&with_edges(data.clone(), &[("u0", "u5")]), &one_way);
        assert_ne!(scores(&social, &data, 0), scores(&plain, &data, 0));
        assert_eq!(scores(&social, &data, 5), scores(&plain, &data, 5));
    }

    #[test]
    fn a_friends_items_rise_above_the_rest_for_the_follower() {
        let data = synthetic(12, 16, 5, 3);
        let only_items = SocialParams { friend_taste: 0.0, friend_items: 50.0, ..params() };
        let social = train_social(&with_edges(data.clone(), &[("u0", "u5")]), &only_items);
        let s = scores(&social, &data, 0);
        let theirs = data.row(5).0;
        let lowest_of_theirs = theirs.iter().map(|&i| s[i as usize]).fold(f32::INFINITY, f32::min);
        let best_of_the_rest = (0..data.n_items() as u32)
            .filter(|i| !theirs.contains(i))
            .map(|i| s[i as usize])
            .fold(f32::NEG_INFINITY, f32::max);
        assert!(lowest_of_theirs > best_of_the_rest, "{s:?}");
    }

    #[test]
    fn friend_rows_hold_the_share_of_friends_with_each_item() {
        let mut b = crate::recommend::InteractionsBuilder::default();
        for (u, i) in [("a", "x"), ("b", "x"), ("b", "y"), ("c", "x"), ("c", "z"), ("d", "w")] {
            b.add(u, i, 3.0);
        }
        let data = with_edges(b.build(), &[("a", "b"), ("a", "c"), ("a", "nobody"), ("a", "a")]);
        let rows = FriendRows::build(&data, &data.social, &SocialParams { symmetric: false, ..params() });
        let id = |i: u32| data.item_ids[i as usize].as_str();
        let row: Vec<(&str, f32)> = rows.row(0).into_iter().map(|(i, v)| (id(i), v)).collect();
        assert_eq!(row, vec![("x", 1.0), ("y", 0.5), ("z", 0.5)]);
        assert!(rows.row(1).is_empty() && rows.row(3).is_empty());
        let kept = FriendRows::build(
            &data,
            &data.social,
            &SocialParams { symmetric: false, friend_items_kept: 1, ..params() },
        );
        assert_eq!(kept.row(0).len(), 1);
    }

    #[test]
    fn save_then_load_keeps_the_friends() {
        let data = with_edges(synthetic(10, 12, 4, 7), &[("u1", "u2"), ("u3", "u1")]);
        let model = train_social(&data, &params());
        let mut bytes = Vec::new();
        registry::save_model(&model, &mut bytes).unwrap();
        let loaded = registry::load_model(&mut bytes.as_slice()).unwrap();
        assert_eq!(loaded.name(), "social");
        for u in 0..data.n_users() {
            assert_eq!(scores(&model, &data, u), scores(loaded.as_ref(), &data, u));
        }
        let mut damaged = bytes.clone();
        let at = damaged.len() - 12;
        damaged[at] ^= 0x40;
        assert!(registry::load_model(&mut damaged.as_slice()).is_err());
    }

    #[test]
    fn a_social_base_is_refused() {
        let data = synthetic(4, 4, 2, 1);
        let nested = SocialParams { base: "social".into(), ..params() };
        assert!(train(&data, &nested, MODELS, &registry::train_model).is_err());
        let unknown = SocialParams { base: "svd".into(), ..params() };
        assert!(train(&data, &unknown, MODELS, &registry::train_model).is_err());
    }

    #[test]
    fn erasing_a_user_removes_their_edges_from_training() {
        use crate::ids::UserId;
        use crate::store::{EmbeddedStore, Storage, StoreConfig, StoreSink};
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), &StoreConfig::default()).unwrap();
        let mut sink = StoreSink::new(&store);
        let mut records = Vec::new();
        for (n, (user, item)) in
            [("ann", "i1"), ("ann", "i2"), ("bob", "i2"), ("bob", "i3"), ("cat", "i3"), ("cat", "i4"), ("dan", "i1")]
                .into_iter()
                .enumerate()
        {
            let event = crate::input::parse_event(
                &json!({ "id": format!("e{n}"), "type": "purchase", "user": user, "item": item, "timestamp": 1_000 + n }),
            )
            .unwrap();
            records.push(crate::model::Record::Event(event));
        }
        for (user, other) in [("ann", "bob"), ("cat", "bob"), ("dan", "ann")] {
            let follow = crate::input::parse_follow(&json!({ "user": user, "other": other })).unwrap();
            records.push(crate::model::Record::Follow(follow));
        }
        for record in records {
            crate::model::RecordSink::put(&mut sink, record).unwrap();
        }
        sink.finish().unwrap();
        let weights = crate::recommend::EventWeights::default();
        let before = Interactions::from_store(&store, &weights).unwrap();
        assert_eq!(before.social.len(), 3);
        let one_way = SocialParams { symmetric: false, ..params() };
        let ann = before.user_ids.iter().position(|u| u == "ann").unwrap();
        let model = train_social(&before, &one_way);
        assert!(!model.friends.row(ann).is_empty(), "ann follows bob");

        store.erase_user(&UserId::parse("bob", "user").unwrap()).unwrap();
        let after = Interactions::from_store(&store, &weights).unwrap();
        let edges: Vec<(&str, &str)> = after.social.edges.iter().map(|(a, b, _)| (a.as_str(), b.as_str())).collect();
        assert_eq!(edges, vec![("dan", "ann")], "bob's edges went with bob");
        let model = train_social(&after, &one_way);
        let ann = after.user_ids.iter().position(|u| u == "ann").unwrap();
        assert!(model.friends.row(ann).is_empty(), "ann's only friend was erased");
    }
}
