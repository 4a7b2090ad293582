//! Session-based k-nearest neighbours: the next item of a session from the past sessions
//! most like it — the V-SKNN / STAN family (Ludewig & Jannach; Garg et al. 2019, "STAN";
//! session-rec's `VSKNN_STAN`, "VSTAN").
//!
//! A [`SessionKnn`] is an index that grows one event at a time (no retraining): sessions
//! (their items in order and their newest time) and, per item, the sessions holding it.
//! Memory is bounded: at most `max_sessions` sessions are kept (the oldest go first) with
//! at most `max_session_items` items each, so the index holds at most their product of
//! postings (8 bytes each) plus the items (4 bytes each).
//!
//! Scoring a session prefix (oldest item first):
//! 1. candidates: the sessions sharing an item with the prefix; the `sample` most recent
//!    of them (by their newest event) are compared;
//! 2. similarity: cosine between the prefix — its items weighted by recency,
//!    `exp((p - len) / position_decay)` for the item at 1-based position `p` — and the
//!    neighbour's distinct items, times `exp(-age / time_decay)` where `age` is how long
//!    before `now` the neighbour ended;
//! 3. the `neighbours` most similar sessions vote for each of their items with their
//!    similarity, times `exp(-d / neighbour_position_decay)` where `d` is how far the item
//!    lies from the neighbour's last item shared with the prefix, times
//!    `exp((p - len) / match_position_decay)` where `p` is the newest prefix position the
//!    neighbour shares, times `1 + idf_weight · ln(sessions / sessions with the item)`.
//!
//! A decay of 0 switches its factor off. Cost of one query: the postings of the prefix's
//! items (at most `sample` sessions kept after a partial sort), one pass over each kept
//! session's items, and one over each neighbour's.

use std::collections::{HashMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;

/// See the module documentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionKnnParams {
    /// Most similar sessions that vote (k).
    pub neighbours: usize,
    /// Most recent candidate sessions compared with the prefix.
    pub sample: usize,
    /// Recency weight of the prefix's items in the similarity (λ_spw); 0: all equal.
    pub position_decay: f32,
    /// `exp` (STAN: `exp((p - len) / position_decay)`) or `quadratic` (V-SKNN: `(p / len)²`).
    pub position_weighting: PositionWeighting,
    /// Age decay of a neighbour, in days (λ_snh); 0: none.
    pub time_decay_days: f32,
    /// Weight of a neighbour's item by its distance from the last shared item (λ_inh); 0: none.
    pub neighbour_position_decay: f32,
    /// Weight of a neighbour by the newest prefix position it shares (λ_ipw); 0: none.
    /// With `match_weighting` `div`, `1 / (len - p + 1)` instead (V-SKNN's `div`).
    pub match_position_decay: f32,
    /// `exp` (STAN) or `div` (V-SKNN): how the newest shared position weighs a neighbour.
    pub match_weighting: MatchWeighting,
    /// `cosine` (STAN) or `vec` (V-SKNN: the shared weight over the prefix's distinct
    /// items, not divided by the neighbour's length, which favours longer neighbours).
    pub similarity: Similarity,
    /// Weight of the inverse document frequency of a voted item (λ_idf); 0: none.
    pub idf_weight: f32,
    /// Sessions kept (the oldest are dropped first).
    pub max_sessions: usize,
    /// Items kept per session (later ones are ignored).
    pub max_session_items: usize,
}

impl Default for SessionKnnParams {
    fn default() -> Self {
        Self {
            neighbours: 200,
            sample: 5_000,
            position_decay: 1.8,
            position_weighting: PositionWeighting::Exp,
            time_decay_days: 40.0,
            neighbour_position_decay: 0.9,
            match_position_decay: 0.9,
            match_weighting: MatchWeighting::Exp,
            similarity: Similarity::Cosine,
            idf_weight: 0.0,
            max_sessions: 1_000_000,
            max_session_items: 100,
        }
    }
}

impl SessionKnnParams {
    /// Check every field; errors name it.
    pub fn validate(&self) -> Result<(), ValidationError> {
        for (field, value) in [("neighbours", self.neighbours), ("sample", self.sample)] {
            if value == 0 {
                return Err(ValidationError::new("invalid_number", field, "expected at least 1, found 0"));
            }
        }
        for (field, value) in [("max_sessions", self.max_sessions), ("max_session_items", self.max_session_items)] {
            if value == 0 {
                return Err(ValidationError::new("invalid_number", field, "expected at least 1, found 0"));
            }
        }
        for (field, value) in [
            ("position_decay", self.position_decay),
            ("time_decay_days", self.time_decay_days),
            ("neighbour_position_decay", self.neighbour_position_decay),
            ("match_position_decay", self.match_position_decay),
            ("idf_weight", self.idf_weight),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err(ValidationError::new(
                    "invalid_number",
                    field,
                    format!("expected a non-negative number, found {value}"),
                ));
            }
        }
        Ok(())
    }
}

/// How the prefix's items weigh in the similarity by their position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PositionWeighting {
    Exp,
    Quadratic,
}

/// How the newest prefix position a neighbour shares weighs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchWeighting {
    Exp,
    Div,
}

/// How a neighbour's similarity to the prefix is normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Similarity {
    Cosine,
    Vec,
}

/// Number of a session in the index (never reused).
pub type SessionNo = u64;

#[derive(Debug, Default)]
struct StoredSession {
    /// Items in order (repeats kept), at most `max_session_items`.
    items: Vec<u32>,
    distinct: u32,
    newest_ms: i64,
}

/// See the module documentation.
#[derive(Debug)]
pub struct SessionKnn {
    params: SessionKnnParams,
    /// Number of `sessions[0]`.
    first: SessionNo,
    sessions: VecDeque<StoredSession>,
    /// Per item, the kept (and perhaps some dropped) sessions holding it.
    postings: Vec<Vec<SessionNo>>,
    /// Per item, how many kept sessions hold it.
    session_counts: Vec<u32>,
}

/// `exp(x / decay)`, or 1 when the decay is off.
fn decay(x: f32, lambda: f32) -> f32 {
    if lambda > 0.0 {
        (x / lambda).exp()
    } else {
        1.0
    }
}

impl SessionKnn {
    /// An empty index (`params` validated by the caller).
    pub fn new(params: SessionKnnParams) -> Self {
        Self { params, first: 0, sessions: VecDeque::new(), postings: Vec::new(), session_counts: Vec::new() }
    }

    pub fn params(&self) -> &SessionKnnParams {
        &self.params
    }

    /// Sessions kept.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Open a new session (dropping the oldest one past `max_sessions`).
    pub fn start_session(&mut self, time_ms: i64) -> SessionNo {
        if self.sessions.len() >= self.params.max_sessions {
            self.drop_oldest();
        }
        self.sessions.push_back(StoredSession { newest_ms: time_ms, ..StoredSession::default() });
        self.first + self.sessions.len() as SessionNo - 1
    }

    fn drop_oldest(&mut self) {
        let Some(old) = self.sessions.pop_front() else { return };
        self.first += 1;
        let first = self.first;
        let mut seen = HashSet::with_capacity(old.items.len());
        for &item in &old.items {
            if seen.insert(item) {
                let i = item as usize;
                self.session_counts[i] = self.session_counts[i].saturating_sub(1);
                self.postings[i].retain(|&s| s >= first);
            }
        }
    }

    /// Whether the index still keeps session `session`.
    pub fn holds(&self, session: SessionNo) -> bool {
        session >= self.first && session < self.first + self.sessions.len() as SessionNo
    }

    fn stored(&self, session: SessionNo) -> Option<&StoredSession> {
        if session < self.first {
            return None;
        }
        self.sessions.get((session - self.first) as usize)
    }

    /// Add an event of `item` at `time_ms` to a kept session (a dropped one is ignored).
    pub fn push(&mut self, session: SessionNo, item: u32, time_ms: i64) {
        if !self.holds(session) {
            return;
        }
        let max_items = self.params.max_session_items;
        let stored = &mut self.sessions[(session - self.first) as usize];
        stored.newest_ms = stored.newest_ms.max(time_ms);
        if stored.items.len() >= max_items {
            return;
        }
        let new_item = !stored.items.contains(&item);
        stored.items.push(item);
        if new_item {
            stored.distinct += 1;
            let i = item as usize;
            if self.postings.len() <= i {
                self.postings.resize_with(i + 1, Vec::new);
                self.session_counts.resize(i + 1, 0);
            }
            self.postings[i].push(session);
            self.session_counts[i] += 1;
        }
    }

    /// The items' votes (sparse, unordered) as the next item after `prefix` (oldest item
    /// first) at `now_ms`; session `skip` (the prefix's own, when the index holds it) takes
    /// no part.
    pub fn scores(&self, prefix: &[u32], now_ms: i64, skip: Option<SessionNo>) -> HashMap<u32, f32> {
        let p = &self.params;
        let mut votes: HashMap<u32, f32> = HashMap::new();
        if prefix.is_empty() {
            return votes;
        }
        let len = prefix.len() as f32;
        // The weight of each prefix item at its newest position, and that position.
        let mut weight: HashMap<u32, (f32, usize)> = HashMap::with_capacity(prefix.len());
        for (k, &item) in prefix.iter().enumerate() {
            let w = match p.position_weighting {
                PositionWeighting::Exp => decay(k as f32 + 1.0 - len, p.position_decay),
                PositionWeighting::Quadratic => ((k as f32 + 1.0) / len).powi(2),
            };
            weight.insert(item, (w, k + 1));
        }
        let norm: f32 = weight.values().map(|(w, _)| w * w).sum::<f32>().sqrt();

        let mut candidates: Vec<SessionNo> = {
            let mut seen: HashSet<SessionNo> = HashSet::new();
            for item in weight.keys() {
                if let Some(postings) = self.postings.get(*item as usize) {
                    seen.extend(postings.iter().filter(|&&s| s >= self.first && Some(s) != skip));
                }
            }
            seen.into_iter().collect()
        };
        let newest = |s: SessionNo| self.stored(s).map_or(i64::MIN, |x| x.newest_ms);
        if candidates.len() > p.sample {
            candidates.select_nth_unstable_by(p.sample - 1, |a, b| newest(*b).cmp(&newest(*a)).then(b.cmp(a)));
            candidates.truncate(p.sample);
        }

        let time_decay_ms = p.time_decay_days * 86_400_000.0;
        let mut similar: Vec<(SessionNo, f32)> = candidates
            .into_iter()
            .filter_map(|s| {
                let stored = self.stored(s)?;
                let mut dot = 0.0;
                let mut counted: Vec<u32> = Vec::with_capacity(stored.items.len());
                for item in &stored.items {
                    if let Some((w, _)) = weight.get(item) {
                        if !counted.contains(item) {
                            counted.push(*item);
                            dot += w;
                        }
                    }
                }
                let mut sim = match p.similarity {
                    Similarity::Cosine => dot / (norm * (stored.distinct as f32).sqrt()),
                    Similarity::Vec => dot / weight.len() as f32,
                };
                if time_decay_ms > 0.0 {
                    let age = (now_ms - stored.newest_ms).max(0) as f32;
                    sim *= (-age / time_decay_ms).exp();
                }
                (sim > 0.0).then_some((s, sim))
            })
            .collect();
        if similar.len() > p.neighbours {
            similar.select_nth_unstable_by(p.neighbours - 1, |a, b| b.1.total_cmp(&a.1).then(b.0.cmp(&a.0)));
            similar.truncate(p.neighbours);
        }

        let sessions = self.sessions.len().max(1) as f32;
        let mut last_position: HashMap<u32, usize> = HashMap::new();
        for (s, sim) in similar {
            let Some(stored) = self.stored(s) else { continue };
            last_position.clear();
            let mut last_shared = 0;
            let mut newest_match = 0;
            for (k, item) in stored.items.iter().enumerate() {
                last_position.insert(*item, k + 1);
                if let Some((_, position)) = weight.get(item) {
                    last_shared = k + 1;
                    newest_match = newest_match.max(*position);
                }
            }
            let matched = sim
                * match p.match_weighting {
                    MatchWeighting::Exp => decay(newest_match as f32 - len, p.match_position_decay),
                    MatchWeighting::Div => 1.0 / (len - newest_match as f32 + 1.0),
                };
            for (&item, &position) in &last_position {
                let distance = (position as f32 - last_shared as f32).abs();
                let mut vote = matched * decay(-distance, p.neighbour_position_decay);
                if p.idf_weight > 0.0 {
                    let holding = self.session_counts.get(item as usize).copied().unwrap_or(1).max(1) as f32;
                    vote *= 1.0 + p.idf_weight * (sessions / holding).ln();
                }
                *votes.entry(item).or_default() += vote;
            }
        }
        votes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(sessions: &[&[u32]], params: SessionKnnParams) -> SessionKnn {
        let mut knn = SessionKnn::new(params);
        for (k, items) in sessions.iter().enumerate() {
            let s = knn.start_session(k as i64 * 1_000);
            for &item in *items {
                knn.push(s, item, k as i64 * 1_000);
            }
        }
        knn
    }

    fn plain() -> SessionKnnParams {
        SessionKnnParams {
            position_decay: 0.0,
            time_decay_days: 0.0,
            neighbour_position_decay: 0.0,
            match_position_decay: 0.0,
            ..SessionKnnParams::default()
        }
    }

    #[test]
    fn without_decays_it_is_cosine_session_knn() {
        let knn = index(&[&[1, 2, 3], &[1, 4], &[5, 6]], plain());
        let votes = knn.scores(&[1], 10_000, None);
        // Session 0: cosine 1/sqrt(3); session 1: 1/sqrt(2); session 2 shares nothing.
        let (a, b) = (1.0 / 3f32.sqrt(), 1.0 / 2f32.sqrt());
        assert!((votes[&1] - (a + b)).abs() < 1e-6);
        assert!((votes[&2] - a).abs() < 1e-6 && (votes[&3] - a).abs() < 1e-6);
        assert!((votes[&4] - b).abs() < 1e-6);
        assert!(!votes.contains_key(&5) && !votes.contains_key(&6));
        // Only the nearest neighbour votes with k = 1.
        let knn = index(&[&[1, 2, 3], &[1, 4]], SessionKnnParams { neighbours: 1, ..plain() });
        let votes = knn.scores(&[1], 10_000, None);
        assert!(votes.contains_key(&4) && !votes.contains_key(&2));
    }

    #[test]
    fn recency_of_the_prefix_and_of_the_neighbour_counts() {
        let params = SessionKnnParams { position_decay: 1.0, ..plain() };
        let knn = index(&[&[1, 10], &[2, 20]], params);
        let votes = knn.scores(&[1, 2], 10_000, None);
        assert!(votes[&20] > votes[&10], "the newer prefix item's neighbour wins: {votes:?}");
        // An old neighbour counts less than a new one with the same items.
        let params = SessionKnnParams { time_decay_days: 1.0, ..plain() };
        let mut knn = SessionKnn::new(params);
        let old = knn.start_session(0);
        knn.push(old, 1, 0);
        knn.push(old, 10, 0);
        let new = knn.start_session(5 * 86_400_000);
        knn.push(new, 1, 5 * 86_400_000);
        knn.push(new, 20, 5 * 86_400_000);
        let votes = knn.scores(&[1], 5 * 86_400_000, None);
        assert!(votes[&20] > 10.0 * votes[&10], "{votes:?}");
        // The skipped session takes no part.
        let votes = knn.scores(&[1], 5 * 86_400_000, Some(new));
        assert!(!votes.contains_key(&20));
    }

    #[test]
    fn the_oldest_sessions_go_first_and_their_postings_with_them() {
        let params = SessionKnnParams { max_sessions: 2, ..plain() };
        let knn = index(&[&[1, 2], &[1, 3], &[1, 4]], params);
        assert_eq!(knn.len(), 2);
        let votes = knn.scores(&[1], 0, None);
        assert!(!votes.contains_key(&2) && votes.contains_key(&3) && votes.contains_key(&4), "{votes:?}");
        assert_eq!(knn.session_counts[1], 2);
        assert!(knn.postings[2].is_empty());
        // A session is capped at max_session_items.
        let knn = index(&[&[1, 2, 3, 4]], SessionKnnParams { max_session_items: 2, ..plain() });
        assert!(!knn.scores(&[1], 0, None).contains_key(&3));
    }

    #[test]
    fn incremental_pushes_equal_a_batch_build() {
        // Sessions interleaved in time give the same votes as sessions built one by one.
        let sessions: Vec<Vec<u32>> = (0..40u32).map(|s| (0..5).map(|k| (s * 7 + k * 3) % 23).collect()).collect();
        let params = SessionKnnParams { neighbours: 10, sample: 15, ..SessionKnnParams::default() };
        let mut batch = SessionKnn::new(params.clone());
        for (s, items) in sessions.iter().enumerate() {
            let no = batch.start_session(0);
            for (k, item) in items.iter().enumerate() {
                batch.push(no, *item, (s * 10 + k) as i64);
            }
        }
        let mut live = SessionKnn::new(params);
        let numbers: Vec<SessionNo> = sessions.iter().map(|_| live.start_session(0)).collect();
        for k in 0..5 {
            for (s, items) in sessions.iter().enumerate() {
                live.push(numbers[s], items[k], (s * 10 + k) as i64);
            }
        }
        for prefix in [&[1u32][..], &[4, 9], &[22, 3, 7]] {
            let (a, b) = (batch.scores(prefix, 1_000, None), live.scores(prefix, 1_000, None));
            assert_eq!(a.len(), b.len());
            for (item, score) in &a {
                assert!((score - b[item]).abs() < 1e-5, "{prefix:?} item {item}");
            }
        }
    }
}
