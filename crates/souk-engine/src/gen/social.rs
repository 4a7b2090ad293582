//! The synthetic social graph: who follows or befriends whom, with homophily (shoppers
//! mostly follow others whose dominant category is theirs) and preferential attachment to
//! active shoppers, so that social recommenders have a signal to find.
//!
//! Edges are streamed to a callback; nothing is held but the per-user neighbour list of the
//! user being processed.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::sample::{log_normal, AliasTable};
use super::tastes::{UserSpec, NUM_CATEGORIES};
use crate::model::{FollowKind, TimestampMs};

/// Probability that a follow edge is drawn among users sharing the follower's dominant
/// category (the rest are drawn by activity from everyone).
pub const HOMOPHILY: f64 = 0.7;
const MAX_OUT_DEGREE: usize = 50;
const DAY_MS: i64 = 86_400_000;

/// One directed edge, by user index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    pub user: u32,
    pub other: u32,
    pub kind: FollowKind,
    pub created_at: TimestampMs,
}

/// Users grouped by dominant category, for homophilous sampling.
pub fn users_by_dominant_category(users: &[UserSpec]) -> Vec<Vec<u32>> {
    let mut groups = vec![Vec::new(); NUM_CATEGORIES];
    for (index, user) in users.iter().enumerate() {
        groups[usize::from(user.dominant_category)].push(index as u32);
    }
    groups
}

/// Generate every user's out-edges, in user order, and hand each to `emit`. Edges are
/// distinct and never loops. `epoch` is the start of the event window; edges are created
/// during the year before it.
pub fn generate_follows(
    users: &[UserSpec],
    groups: &[Vec<u32>],
    by_activity: &AliasTable,
    epoch: TimestampMs,
    rng: &mut ChaCha8Rng,
    emit: &mut dyn FnMut(Edge) -> crate::Result<()>,
) -> crate::Result<()> {
    if users.len() < 2 {
        return Ok(());
    }
    let mut chosen: Vec<u32> = Vec::with_capacity(MAX_OUT_DEGREE);
    for (index, user) in users.iter().enumerate() {
        let user_index = index as u32;
        // Out-degree is log-normal (median about 3), a few users follow many.
        let degree = (log_normal(rng, 1.1, 0.8) as usize).min(MAX_OUT_DEGREE).min(users.len() - 1);
        let same = &groups[usize::from(user.dominant_category)];
        chosen.clear();
        // Bounded retries: in tiny populations most draws collide.
        for _ in 0..degree * 4 {
            if chosen.len() == degree {
                break;
            }
            let other = if same.len() > 1 && rng.gen_bool(HOMOPHILY) {
                same[rng.gen_range(0..same.len())]
            } else {
                by_activity.sample(rng) as u32
            };
            if other == user_index || chosen.contains(&other) {
                continue;
            }
            chosen.push(other);
            let kind = if rng.gen_bool(0.25) { FollowKind::Friend } else { FollowKind::Follow };
            let created_at = epoch - rng.gen_range(DAY_MS..365 * DAY_MS);
            emit(Edge { user: user_index, other, kind, created_at })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use rand::SeedableRng;

    use super::super::tastes::generate_user;
    use super::*;

    #[test]
    fn followed_users_share_the_dominant_category_more_often_than_chance() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let users: Vec<UserSpec> = (0..3_000).map(|_| generate_user(&mut rng)).collect();
        let groups = users_by_dominant_category(&users);
        let activity: Vec<f64> = users.iter().map(|u| f64::from(u.activity)).collect();
        let table = AliasTable::new(&activity).unwrap();
        let mut edges = Vec::new();
        generate_follows(&users, &groups, &table, 1_000 * DAY_MS, &mut rng, &mut |edge| {
            edges.push(edge);
            Ok(())
        })
        .unwrap();
        assert!(edges.len() > users.len(), "{} edges", edges.len());
        let distinct: HashSet<(u32, u32)> = edges.iter().map(|e| (e.user, e.other)).collect();
        assert_eq!(distinct.len(), edges.len(), "no duplicate edges");
        assert!(edges.iter().all(|e| e.user != e.other));
        let same = edges
            .iter()
            .filter(|e| users[e.user as usize].dominant_category == users[e.other as usize].dominant_category)
            .count() as f64
            / edges.len() as f64;
        // Chance: two random users share a dominant category with probability Σ share².
        let chance: f64 = groups.iter().map(|g| (g.len() as f64 / users.len() as f64).powi(2)).sum();
        assert!(same > chance + 0.4, "same-category share {same:.3} vs chance {chance:.3}");
    }

    #[test]
    fn a_single_user_follows_nobody() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let users = vec![generate_user(&mut rng)];
        let groups = users_by_dominant_category(&users);
        let table = AliasTable::new(&[1.0]).unwrap();
        generate_follows(&users, &groups, &table, 0, &mut rng, &mut |_| panic!("no edge expected")).unwrap();
    }
}
