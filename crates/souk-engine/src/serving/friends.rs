//! The `friends` recall source ("friends bought"): items the users the shopper follows
//! interacted with lately, each reason naming the friend.
//!
//! Live, no training: built per request from the store's edges (`follows_of`, one catalog
//! read) and each followed user's latest interactions (memory). An item's score is
//! `Σ_friends edge · w(event) · 2^(−age / half-life)`, the event weights of the set's
//! manifest (a friend's purchase says more than a view; a dislike says nothing here), the
//! age measured from the request's clock, or without one (offline) from the newest
//! interaction among the friends. The friend whose interaction counts most is the one the
//! reason cites.
//!
//! Cost per request: one edge read, then at most [`MAX_FRIENDS`] × [`FRIEND_HISTORY`]
//! interactions from memory and one hash map of their items.

use std::collections::HashMap;

use super::recall::{Recall, RecallSource};
use super::{ModelSet, Reason, SourceKind};
use crate::error::Result;
use crate::ids::UserId;
use crate::model::EventType;
use crate::store::Storage;

/// How many followed users a request reads (the first by id).
pub const MAX_FRIENDS: usize = 100;
/// How many of each friend's latest interactions count.
pub const FRIEND_HISTORY: usize = 50;
/// An interaction this old counts half as much as one just now.
pub const FRIEND_HALF_LIFE_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// The friends' items of one request, best first, with the friend each one cites.
pub struct FriendsSource {
    ranked: Vec<(u32, f32)>,
    cited: HashMap<u32, (String, EventType)>,
}

impl FriendsSource {
    /// Read `user`'s followed users and their latest interactions; `now_ms` 0 means no
    /// clock (offline).
    pub fn new(set: &ModelSet, store: &dyn Storage, user: &UserId, now_ms: i64) -> Result<Self> {
        let follows = store.follows_of(user)?;
        let mut histories = Vec::new();
        for follow in follows.iter().filter(|f| f.other != *user).take(MAX_FRIENDS) {
            histories
                .push((follow.other.as_str().to_string(), store.user_interactions(&follow.other, FRIEND_HISTORY)?));
        }
        let newest = histories.iter().filter_map(|(_, h)| h.first().map(|i| i.timestamp)).max().unwrap_or(0);
        let clock = if now_ms > 0 { now_ms } else { newest };
        let weights = &set.manifest.weights;
        let mut scores: HashMap<u32, f32> = HashMap::new();
        // Per item: (friend, event, contribution) of the strongest single interaction.
        let mut best: HashMap<u32, (usize, EventType, f32)> = HashMap::new();
        for (f, (_, interactions)) in histories.iter().enumerate() {
            for interaction in interactions {
                let Some(&i) = set.item_index.get(&interaction.item) else { continue };
                let w = weights.weight_of(interaction.event_type, interaction.value, interaction.dwell_ms);
                if w <= 0.0 {
                    continue;
                }
                let age = (clock - interaction.timestamp).max(0) as f64;
                let contribution = w * (0.5f64.powf(age / FRIEND_HALF_LIFE_MS as f64) as f32);
                *scores.entry(i).or_default() += contribution;
                let entry = best.entry(i).or_insert((f, interaction.event_type, contribution));
                if contribution > entry.2 {
                    *entry = (f, interaction.event_type, contribution);
                }
            }
        }
        let mut ranked: Vec<(u32, f32)> = scores.into_iter().filter(|(_, s)| *s > 0.0).collect();
        ranked.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let cited = best.into_iter().map(|(i, (f, event, _))| (i, (histories[f].0.clone(), event))).collect();
        Ok(FriendsSource { ranked, cited })
    }

    /// Whether the friends proposed nothing (no edges, or friends without interactions).
    pub fn is_empty(&self) -> bool {
        self.ranked.is_empty()
    }
}

impl RecallSource for FriendsSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Friends
    }

    fn recall(&self, recall: &Recall<'_>) -> Result<Vec<(u32, f32)>> {
        recall.accepted(self.ranked.iter().copied().filter(|(i, _)| !(recall.rejected)(*i)))
    }

    fn explain(&self, item: u32, reason: &mut Reason) {
        if let Some((friend, event)) = self.cited.get(&item) {
            reason.friend = Some(friend.clone());
            reason.friend_event = Some(*event);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::gen::GenConfig;
    use crate::input::ItemFilter;
    use crate::serving::{recommend, user_history, Exclusions, RecommendConfig, RecommendRequest};
    use crate::store::EmbeddedStore;

    fn shop(dir: &std::path::Path) -> (EmbeddedStore, ModelSet) {
        crate::serving::test_shop::trained_shop(dir, GenConfig { items: 200, users: 60, events: 4_000, seed: 5 })
    }

    /// The user with the most followed users, and the ids they follow.
    fn follower(store: &EmbeddedStore, set: &ModelSet) -> (UserId, HashSet<String>) {
        let mut users: Vec<&String> = set.user_index.keys().collect();
        users.sort();
        users
            .into_iter()
            .map(|id| UserId::parse(id, "user").unwrap())
            .map(|user| {
                let follows = store.follows_of(&user).unwrap();
                (user, follows.into_iter().map(|f| f.other.as_str().to_string()).collect::<HashSet<_>>())
            })
            .max_by_key(|(_, follows)| follows.len())
            .unwrap()
    }

    /// Every item the followed users interacted with (their latest [`FRIEND_HISTORY`]).
    fn friends_items(store: &EmbeddedStore, friends: &HashSet<String>) -> HashSet<String> {
        let mut items = HashSet::new();
        for friend in friends {
            for i in store.user_interactions(&UserId::parse(friend, "user").unwrap(), FRIEND_HISTORY).unwrap() {
                items.insert(i.item);
            }
        }
        items
    }

    #[test]
    fn proposes_followed_users_items_within_exclusions_and_filters_and_names_the_friend() {
        let dir = tempfile::tempdir().unwrap();
        let (store, set) = shop(dir.path());
        let (user, friends) = follower(&store, &set);
        assert!(!friends.is_empty(), "the generated shop has follows");
        let source = FriendsSource::new(&set, &store, &user, 0).unwrap();
        assert!(!source.is_empty());
        let theirs = friends_items(&store, &friends);
        let history = user_history(&set, &store, &user, 200, Exclusions::default()).unwrap();
        let rejected = |i: u32| i.is_multiple_of(3);
        let brand = {
            let ids: Vec<&str> = source.ranked.iter().map(|(i, _)| set.item_ids[*i as usize].as_str()).collect();
            store.items_meta(&ids).unwrap().into_iter().flatten().find_map(|m| m.brand).unwrap().to_string()
        };
        let filter = ItemFilter { brands: vec![brand.clone()], available_only: true, ..ItemFilter::default() };
        let recall = Recall::new(&set, &store, &history, &filter, &rejected, 50);
        let list = source.recall(&recall).unwrap();
        assert!(!list.is_empty());
        assert!(list.windows(2).all(|w| w[0].1 >= w[1].1), "best first: {list:?}");
        for (i, _) in &list {
            let id = set.item_ids[*i as usize].as_str();
            assert!(!rejected(*i), "a rejected item {id}");
            assert!(theirs.contains(id), "{id} is no friend's item");
            let meta = store.items_meta(&[id]).unwrap().pop().flatten().unwrap();
            assert_eq!(meta.brand.as_deref(), Some(brand.as_str()));
            let mut reason = Reason { source: SourceKind::Friends, ..Reason::default() };
            source.explain(*i, &mut reason);
            let friend = reason.friend.expect("a friend is named");
            assert!(friends.contains(&friend), "{friend} is not followed by {user}");
            assert!(reason.friend_event.is_some());
        }
    }

    #[test]
    fn a_user_who_follows_no_one_gets_nothing_from_friends() {
        let dir = tempfile::tempdir().unwrap();
        let (store, set) = shop(dir.path());
        let loner = UserId::parse("nobody-follows", "user").unwrap();
        assert!(FriendsSource::new(&set, &store, &loner, 0).unwrap().is_empty());
    }

    #[test]
    fn pages_of_friends_items_keep_exclusions_and_the_cursor_and_cite_followed_users() {
        let dir = tempfile::tempdir().unwrap();
        let (store, set) = shop(dir.path());
        let (user, friends) = follower(&store, &set);
        // Only the friends source counts, so every listed item is theirs.
        let config = RecommendConfig {
            source_weights: SourceKind::ALL
                .into_iter()
                .map(|k| (k, if k == SourceKind::Friends { 1.0 } else { 0.0 }))
                .collect(),
            ..RecommendConfig::default()
        };
        let seen: HashSet<String> = store
            .user_interactions(&user, 10_000)
            .unwrap()
            .into_iter()
            .filter(|i| !matches!(i.event_type, EventType::Search | EventType::Impression))
            .map(|i| i.item)
            .collect();
        let theirs = friends_items(&store, &friends);
        let mut shown = HashSet::new();
        let mut request = RecommendRequest::new(user.clone(), 4);
        for _ in 0..3 {
            let page = recommend(&set, &store, &config, &request).unwrap();
            assert!(!page.items.is_empty());
            for item in &page.items {
                assert!(shown.insert(item.id.clone()), "{} shown twice", item.id);
                assert!(!seen.contains(&item.id), "{} was seen by the user and is excluded", item.id);
                assert!(theirs.contains(&item.id));
                let reason = item.reasons.iter().find(|r| r.source == SourceKind::Friends).unwrap();
                assert!(friends.contains(reason.friend.as_deref().unwrap()), "{reason:?}");
            }
            request.cursor = page.next_cursor;
        }
    }
}
