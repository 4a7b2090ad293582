//! Team-draft interleaving (Radlinski, Kurup and Joachims 2008): two rankers' lists merged
//! into one page, each shown item credited to the ranker ("team") that picked it, so a
//! shopper's clicks say which ranker they prefer — on one page, without splitting traffic.
//!
//! Each round the team with fewer picks (a coin decides ties) adds its best item not yet
//! on the page. A page's clicks credit each team; the team with more credited clicks wins
//! the page. Over many pages, a sign test on wins against losses says whether one ranker
//! is preferred (ties carry no information).

use rand::Rng;
use serde::Serialize;

use crate::stats;

/// Which ranker picked an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Team {
    A,
    B,
}

/// Merge `a` and `b` (each best first) into a page of at most `n` items, each with the team
/// that picked it. Items are compared by equality; neither list repeats an item.
pub fn team_draft<T: Clone + PartialEq>(a: &[T], b: &[T], n: usize, rng: &mut impl Rng) -> Vec<(T, Team)> {
    let mut page: Vec<(T, Team)> = Vec::with_capacity(n);
    let (mut next_a, mut next_b) = (0usize, 0usize);
    let (mut picks_a, mut picks_b) = (0usize, 0usize);
    let taken = |page: &[(T, Team)], item: &T| page.iter().any(|(t, _)| t == item);
    while page.len() < n {
        // Skip what the other team already placed.
        while next_a < a.len() && taken(&page, &a[next_a]) {
            next_a += 1;
        }
        while next_b < b.len() && taken(&page, &b[next_b]) {
            next_b += 1;
        }
        let (has_a, has_b) = (next_a < a.len(), next_b < b.len());
        let team = match (has_a, has_b) {
            (false, false) => break,
            (true, false) => Team::A,
            (false, true) => Team::B,
            (true, true) => {
                if picks_a < picks_b || (picks_a == picks_b && rng.gen_bool(0.5)) {
                    Team::A
                } else {
                    Team::B
                }
            }
        };
        match team {
            Team::A => {
                page.push((a[next_a].clone(), Team::A));
                picks_a += 1;
                next_a += 1;
            }
            Team::B => {
                page.push((b[next_b].clone(), Team::B));
                picks_b += 1;
                next_b += 1;
            }
        }
    }
    page
}

/// Each click credited to the team that placed the item: (A's clicks, B's clicks).
pub fn credit<T: PartialEq>(page: &[(T, Team)], clicked: &[T]) -> (usize, usize) {
    let (mut a, mut b) = (0usize, 0usize);
    for (item, team) in page {
        if clicked.contains(item) {
            match team {
                Team::A => a += 1,
                Team::B => b += 1,
            }
        }
    }
    (a, b)
}

/// Which team a page's clicks prefer: `Some(team)` with more credited clicks, `None` for a
/// tie (no clicks, or as many for each).
pub fn page_winner<T: PartialEq>(page: &[(T, Team)], clicked: &[T]) -> Option<Team> {
    let (a, b) = credit(page, clicked);
    match a.cmp(&b) {
        std::cmp::Ordering::Greater => Some(Team::A),
        std::cmp::Ordering::Less => Some(Team::B),
        std::cmp::Ordering::Equal => None,
    }
}

/// The outcome of an interleaving test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Preference {
    pub wins_a: u64,
    pub wins_b: u64,
    pub ties: u64,
    /// (wins of B − wins of A) / pages: positive when B is preferred.
    pub delta: f64,
    /// Two-sided exact sign test of B's wins against A's.
    pub p_value: f64,
}

/// Sum up page winners.
pub fn preference(winners: impl IntoIterator<Item = Option<Team>>) -> Preference {
    let (mut wins_a, mut wins_b, mut ties) = (0u64, 0u64, 0u64);
    for winner in winners {
        match winner {
            Some(Team::A) => wins_a += 1,
            Some(Team::B) => wins_b += 1,
            None => ties += 1,
        }
    }
    let pages = (wins_a + wins_b + ties).max(1) as f64;
    Preference {
        wins_a,
        wins_b,
        ties,
        delta: (wins_b as f64 - wins_a as f64) / pages,
        p_value: stats::sign_test(wins_b, wins_a),
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn team_draft_alternates_fairly_and_never_repeats_an_item() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let a = [1, 2, 3, 4, 5, 6];
        let b = [2, 7, 1, 8, 9, 3];
        let mut first_a = 0;
        for _ in 0..1_000 {
            let page = team_draft(&a, &b, 6, &mut rng);
            assert_eq!(page.len(), 6);
            let items: std::collections::HashSet<i32> = page.iter().map(|(i, _)| *i).collect();
            assert_eq!(items.len(), 6, "no item twice: {page:?}");
            // After every second pick the teams are even.
            for k in (2..=6).step_by(2) {
                let a_picks = page[..k].iter().filter(|(_, t)| *t == Team::A).count();
                assert_eq!(a_picks * 2, k, "{page:?}");
            }
            // Each team's items keep its own order.
            let of = |team: Team, list: &[i32]| {
                let picked: Vec<usize> = page
                    .iter()
                    .filter(|(_, t)| *t == team)
                    .map(|(i, _)| list.iter().position(|x| x == i).unwrap())
                    .collect();
                picked.windows(2).all(|w| w[0] < w[1])
            };
            assert!(of(Team::A, &a) && of(Team::B, &b), "{page:?}");
            first_a += usize::from(page[0].1 == Team::A);
        }
        // The coin decides who starts: about half the pages each.
        assert!((430..570).contains(&first_a), "{first_a}");
        // A short list runs out and the other fills the page.
        let page = team_draft(&[1], &[2, 3, 4], 4, &mut rng);
        assert_eq!(page.len(), 4);
        assert_eq!(page.iter().filter(|(_, t)| *t == Team::B).count(), 3);
    }

    #[test]
    fn clicks_credit_their_team_and_a_clear_preference_is_significant() {
        let page = vec![(1, Team::A), (2, Team::B), (3, Team::A), (4, Team::B)];
        assert_eq!(page_winner(&page, &[2]), Some(Team::B));
        assert_eq!(credit(&page, &[1, 3, 2]), (2, 1));
        assert_eq!(page_winner(&page, &[1, 3, 2]), Some(Team::A));
        assert_eq!(page_winner(&page, &[1, 2]), None);
        assert_eq!(page_winner::<i32>(&page, &[]), None);
        let even = preference((0..100).map(|i| if i % 2 == 0 { Some(Team::A) } else { Some(Team::B) }));
        assert!(even.p_value > 0.9 && even.delta == 0.0);
        let winners = (0..200).map(|i| match i % 10 {
            0..=5 => Some(Team::B),
            6..=8 => Some(Team::A),
            _ => None,
        });
        let prefer_b = preference(winners);
        assert_eq!((prefer_b.wins_b, prefer_b.wins_a, prefer_b.ties), (120, 60, 20));
        assert!(prefer_b.delta > 0.0 && prefer_b.p_value < 0.001, "{prefer_b:?}");
    }
}
