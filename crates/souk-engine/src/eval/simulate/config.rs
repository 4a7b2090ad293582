//! What a simulation is asked and what it reports: the protocol's name and constants, the
//! surface, the configuration and the scores of every method.

use serde::{Deserialize, Serialize};

/// The protocol's name for `souk eval --protocol`.
pub const PROTOCOL: &str = "simulated-ranking";
/// Arms of the logging policy.
pub const ARM_BLEND: &str = "blend";
pub const ARM_EXPLORE: &str = "explore";
/// Clicks, carts and purchases are credited to an impression within this window.
pub const ATTRIBUTION_WINDOW_MS: i64 = 86_400_000;

/// Which list the simulated shoppers are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Surface {
    /// "For you" recommendations: recall by the collaborative model, item-kNN and
    /// popularity, blended by reciprocal rank.
    Recommendations,
    /// Search results: keyword recall (BM25), blended with the shopper's category and
    /// brand affinities (the personal touch).
    Search,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimulationConfig {
    pub surface: Surface,
    /// Distinct judged queries shoppers draw from (search; half English, half Chinese).
    pub queries: usize,
    pub items: usize,
    pub users: usize,
    pub history_events: usize,
    /// Logged requests the ranker learns from.
    pub train_requests: usize,
    /// Later requests every method is judged on.
    pub test_requests: usize,
    pub candidates: usize,
    pub shown: usize,
    pub explore_share: f64,
    pub explore_depth: usize,
    pub seed: u64,
    /// Run the online click model over the logged traffic (the `online_ctr` feature).
    pub online: bool,
}

impl Default for SimulationConfig {
    fn default() -> Self {
        Self {
            surface: Surface::Recommendations,
            queries: 400,
            items: 3_000,
            users: 2_000,
            history_events: 150_000,
            train_requests: 20_000,
            test_requests: 3_000,
            candidates: 100,
            shown: 10,
            explore_share: 0.2,
            explore_depth: 30,
            seed: 42,
            online: true,
        }
    }
}

impl SimulationConfig {
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.shown == 0 || self.shown > self.candidates {
            problems.push(("shown".into(), "must be between 1 and candidates".into()));
        }
        if self.explore_depth < self.shown || self.explore_depth > self.candidates {
            problems.push(("explore_depth".into(), "must be between shown and candidates".into()));
        }
        if !(0.0..=1.0).contains(&self.explore_share) {
            problems.push(("explore_share".into(), "must be within 0 and 1".into()));
        }
        if self.surface == Surface::Search && self.queries < 2 {
            problems.push(("queries".into(), "must be at least 2".into()));
        }
        if self.train_requests < 10 || self.test_requests == 0 {
            problems.push(("train_requests".into(), "need at least 10 training and 1 test request".into()));
        }
        problems
    }
}

/// One method's score on the later window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodScore {
    pub method: String,
    pub ndcg_at_10: f64,
    /// Standard error over requests.
    pub se: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimulationReport {
    pub config: SimulationConfig,
    pub setup_seconds: f64,
    pub logged_requests: usize,
    pub logged_rows: usize,
    pub clicks: usize,
    pub carts: usize,
    pub purchases: usize,
    /// Examination probability per slot as the shopper model has it, and as estimated from
    /// the randomised bucket.
    pub true_examination: Vec<f64>,
    pub estimated_examination: Vec<f64>,
    pub ranker_trees: usize,
    pub ranker_train_seconds: f64,
    /// The promotion gate's view of the later window: NDCG@10 of each learner's order of the
    /// shown items judged by the logged clicks, carts and purchases (labels as gains, lists
    /// with a click), beside the order shown (`logged`) — what serving decides on.
    #[serde(default)]
    pub gate: Vec<MethodScore>,
    /// DCG@10 per list (mean over every list, not normalised) with each logged grade divided
    /// by the estimated examination probability of its slot: unbiased where NDCG is not
    /// (normalising by each list's own ideal undoes the division).
    #[serde(default)]
    pub gate_ipw: Vec<MethodScore>,
    /// The same on randomised lists of the same requests (a shuffled draw from the blend's
    /// top `explore_depth`, shown in a parallel world whose events are not stored): what a
    /// gate on the explore arm's pages would see.
    #[serde(default)]
    pub gate_explore: Vec<MethodScore>,
    /// The learner the debiased gate would serve: `ranker` (LambdaMART) unless a challenger scored higher.
    #[serde(default)]
    pub gate_choice: String,
    /// The challenger learners' rows (`ranker_ftrl`, `ranker_mlp`) and their training time.
    #[serde(default)]
    pub challenger_train_seconds: Vec<(String, f64)>,
    /// Heaviest features by total split gain.
    pub top_features: Vec<(String, f64)>,
    pub test_requests: usize,
    pub methods: Vec<MethodScore>,
    /// The ranker's relative improvement over the best single recall source and over the
    /// hand blend.
    pub lift_over_best_source: f64,
    pub lift_over_blend: f64,
}
