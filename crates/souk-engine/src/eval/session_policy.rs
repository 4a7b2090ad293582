//! The session-policy protocol (`souk eval --protocol session-policy`): does a policy that
//! picks each page's mix from what the session has shown so far sell more than the static
//! ranker, and can off-policy evaluation tell before it serves?
//!
//! 1. **Shop.** Per seed a `souk gen` shop; the recall models train on its history and
//!    recall every shopper's candidates ([`env`]).
//! 2. **Learning.** `train_sessions` sessions; on every page the learner picks one of the
//!    [`Mix`]es ε-greedily from a tabular Q-function over an observable state ([`qlearn`]);
//!    reward = purchases on the page. Then the table is frozen and the learned policy is
//!    its greedy choice.
//! 3. **Simulated value.** `eval_sessions` fresh sessions per policy — the learned one, the
//!    static ranker (always [`Mix::Exploit`]), every other fixed mix and uniform random —
//!    with common random numbers: session `i` draws the same shopper and the same response
//!    draws under every policy.
//! 4. **Off-policy estimate.** `ope_sessions` further sessions logged under ε-greedy around
//!    the learned table (`logging_epsilon`), each page's propensity logged. The learned
//!    policy's value per session is estimated with per-decision importance sampling (PDIS,
//!    Precup et al. 2000: a page's reward is weighted by the product of the ratios up to
//!    that page, since later choices cannot change it — unbiased like whole-trajectory
//!    weights and of lower variance), its self-normalised form (per page position), the
//!    whole-trajectory IPW and SNIPW of [`crate::ope`], and the per-decision doubly robust
//!    estimator (Jiang & Li 2016, eq. 7 with γ = 1) with the learned Q-table as the model;
//!    each is compared with the simulated value.
//!
//! Figures are means over seeds with their 95% t-interval; purchases also carry the
//! interval over all sessions pooled.

mod env;
mod off_policy;
mod qlearn;

use std::path::Path;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

pub use self::env::{Mix, Observation, PageOutcome};
use self::env::{Session, Shop};
use self::off_policy::off_policy;
use self::qlearn::{QTable, State};
use crate::error::{Error, Result, ValidationError};
use crate::eval::exploration::{estimate, Estimate};
use crate::recommend::EventWeights;
use crate::serving::RecommendConfig;

pub const PROTOCOL: &str = "session-policy";

/// The protocol's settings (`--param session_policy.KEY=VALUE`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionPolicyConfig {
    pub seed: u64,
    /// Shops simulated (seeds `seed`, `seed + 1`, …).
    pub seeds: usize,
    pub items: usize,
    pub users: usize,
    pub history_events: usize,
    /// Candidates recalled per shopper.
    pub candidates: usize,
    pub page_size: usize,
    pub max_pages: usize,
    /// How deep into the blend `explore` and `cheaper` reorder.
    pub explore_depth: usize,
    /// Items of one category on a `diversify` page.
    pub category_cap: usize,
    /// Utility a click adds to its category for the rest of the session.
    pub click_interest: f64,
    /// Utility a purchase takes off its category for the rest of the session.
    pub satiation: f64,
    pub leave_base: f64,
    pub leave_per_page: f64,
    pub leave_per_dry_page: f64,
    pub train_sessions: usize,
    pub eval_sessions: usize,
    pub ope_sessions: usize,
    /// The Q-learning step size's floor (a pair's first updates take `1/n`).
    pub learning_rate: f64,
    pub discount: f64,
    /// Exploration while learning.
    pub epsilon: f64,
    /// Exploration of the logging policy the off-policy estimate reads.
    pub logging_epsilon: f64,
}

impl Default for SessionPolicyConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            seeds: 5,
            items: 2_000,
            users: 1_500,
            history_events: 60_000,
            candidates: 100,
            page_size: 10,
            max_pages: 10,
            explore_depth: 30,
            category_cap: 2,
            click_interest: 0.5,
            satiation: 1.5,
            leave_base: 0.1,
            leave_per_page: 0.02,
            leave_per_dry_page: 0.1,
            train_sessions: 200_000,
            eval_sessions: 20_000,
            ope_sessions: 20_000,
            learning_rate: 0.002,
            discount: 1.0,
            epsilon: 0.2,
            logging_epsilon: 0.3,
        }
    }
}

impl SessionPolicyConfig {
    /// Every problem, as (field, message).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, field: &'static str, message: String| {
            if !ok {
                problems.push((field, message));
            }
        };
        check(self.seeds >= 1, "seeds", "expected at least 1 seed".into());
        check(self.items >= 50 && self.users >= 10, "items", "expected at least 50 items and 10 users".into());
        check(
            self.page_size >= 1 && self.page_size <= self.candidates,
            "page_size",
            format!("expected 1 to candidates ({}), found {}", self.candidates, self.page_size),
        );
        check(self.max_pages >= 1, "max_pages", "expected at least 1".into());
        check(
            self.explore_depth >= self.page_size,
            "explore_depth",
            format!("expected at least page_size ({}), found {}", self.page_size, self.explore_depth),
        );
        check(self.category_cap >= 1, "category_cap", "expected at least 1".into());
        for (field, value) in [("click_interest", self.click_interest), ("satiation", self.satiation)] {
            check(value.is_finite() && value >= 0.0, field, format!("expected a finite value ≥ 0, found {value}"));
        }
        for (field, value) in [
            ("leave_base", self.leave_base),
            ("leave_per_page", self.leave_per_page),
            ("leave_per_dry_page", self.leave_per_dry_page),
            ("discount", self.discount),
            ("epsilon", self.epsilon),
        ] {
            check((0.0..=1.0).contains(&value), field, format!("expected a value in [0, 1], found {value}"));
        }
        check(
            self.learning_rate > 0.0 && self.learning_rate <= 1.0,
            "learning_rate",
            format!("expected a value in (0, 1], found {}", self.learning_rate),
        );
        check(
            self.logging_epsilon > 0.0 && self.logging_epsilon <= 1.0,
            "logging_epsilon",
            format!("expected a value in (0, 1] (every action needs a propensity), found {}", self.logging_epsilon),
        );
        check(
            self.train_sessions >= 1 && self.eval_sessions >= 2 && self.ope_sessions >= 2,
            "eval_sessions",
            "expected at least 1 training, 2 evaluation and 2 logged sessions".into(),
        );
        problems
    }

    /// The first problem as an error naming its field (all of them in the message).
    pub fn validate(&self) -> Result<()> {
        let problems = self.problems();
        let Some((field, _)) = problems.first() else { return Ok(()) };
        let message = problems.iter().map(|(f, m)| format!("{f}: {m}")).collect::<Vec<_>>().join("; ");
        Err(Error::Invalid(ValidationError::new("invalid_config", format!("session_policy.{field}"), message)))
    }
}

/// Who picks the pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    Learned,
    Fixed(Mix),
    Uniform,
}

impl Policy {
    fn name(self) -> String {
        match self {
            Policy::Learned => "learned".into(),
            Policy::Fixed(Mix::Exploit) => "static (exploit)".into(),
            Policy::Fixed(mix) => mix.name().into(),
            Policy::Uniform => "uniform random".into(),
        }
    }
}

/// One page of a session as a log holds it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Step {
    state: usize,
    action: usize,
    propensity: f64,
    purchases: f64,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Trajectory {
    steps: Vec<Step>,
    purchases: f64,
    revenue: f64,
}

/// Play one session, `choose` picking each page's mix (index into [`Mix::ALL`]) with its
/// propensity.
fn play(session: &mut Session<'_>, rng: &mut ChaCha8Rng, choose: &mut dyn FnMut(usize) -> (usize, f64)) -> Trajectory {
    let mut trajectory = Trajectory::default();
    loop {
        let State(state) = State::of(&session.observation());
        let (action, propensity) = choose(state);
        let outcome = session.step(Mix::ALL[action], rng);
        let purchases = outcome.purchases as f64;
        trajectory.steps.push(Step { state, action, propensity, purchases });
        trajectory.purchases += purchases;
        trajectory.revenue += outcome.revenue;
        if outcome.done {
            return trajectory;
        }
    }
}

/// Session `index` of a stream: the shopper and the response draws depend on the stream
/// and the index only, so every policy meets the same shoppers (common random numbers).
fn session_rng(seed: u64, stream: u64, index: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5e55_1011);
    rng.set_stream(stream);
    rng.set_word_pos(index as u128 * (1 << 20));
    rng
}

const TRAIN_STREAM: u64 = 1;
const EVAL_STREAM: u64 = 2;
const LOG_STREAM: u64 = 3;

/// Learn the Q-table on `config.train_sessions` sessions.
fn learn(shop: &Shop, config: &SessionPolicyConfig, seed: u64) -> QTable {
    let mut table = QTable::new(State::COUNT, Mix::ALL.len());
    let mut choices = ChaCha8Rng::seed_from_u64(seed ^ 0x0c40_1ce5);
    for index in 0..config.train_sessions {
        let mut rng = session_rng(seed, TRAIN_STREAM, index);
        let Some(mut session) = shop.start(config, &mut rng) else { continue };
        let trajectory = play(&mut session, &mut rng, &mut |s| table.epsilon_greedy(s, config.epsilon, &mut choices));
        for (t, step) in trajectory.steps.iter().enumerate() {
            let next = trajectory.steps.get(t + 1).map(|n| n.state);
            table.update(step.state, step.action, step.purchases, next, config.learning_rate, config.discount);
        }
    }
    table
}

/// The sessions of `policy` on the evaluation stream.
fn simulate(shop: &Shop, config: &SessionPolicyConfig, seed: u64, policy: Policy, table: &QTable) -> Vec<Trajectory> {
    let mut choices = ChaCha8Rng::seed_from_u64(seed ^ 0x0c40_1ce6);
    let actions = Mix::ALL.len();
    (0..config.eval_sessions)
        .filter_map(|index| {
            let mut rng = session_rng(seed, EVAL_STREAM, index);
            let mut session = shop.start(config, &mut rng)?;
            Some(play(&mut session, &mut rng, &mut |s| match policy {
                Policy::Learned => (table.greedy(s), 1.0),
                Policy::Fixed(mix) => (Mix::ALL.iter().position(|m| *m == mix).unwrap_or(0), 1.0),
                Policy::Uniform => (choices.gen_range(0..actions), 1.0 / actions as f64),
            }))
        })
        .collect()
}

/// One policy's figures over the seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyResult {
    pub policy: String,
    /// Purchases per session: mean over seeds with the 95% interval over seeds.
    pub purchases: Estimate,
    /// Half-width of the 95% interval of purchases per session over all sessions pooled.
    pub purchases_ci95_sessions: f64,
    /// Revenue per session (the items' catalog prices).
    pub revenue: Estimate,
    pub pages: Estimate,
    /// Purchases per session relative to the static ranker, in percent (per seed, then
    /// averaged); the same sessions under both (common random numbers).
    pub purchases_vs_static_pct: Estimate,
}

/// One off-policy estimator's figures over the seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpeResult {
    pub estimator: String,
    /// The learned policy's estimated purchases per session.
    pub value: Estimate,
    /// (estimate − simulated value) / simulated value, in percent.
    pub relative_error_pct: Estimate,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionPolicyReport {
    pub config: SessionPolicyConfig,
    pub policies: Vec<PolicyResult>,
    pub ope: Vec<OpeResult>,
    /// Share of the learned policy's pages per mix (all seeds pooled).
    pub learned_mix_share: Vec<(String, f64)>,
    /// States visited while learning, of [`State::COUNT`].
    pub states_visited: usize,
    pub setup_seconds: f64,
    pub run_seconds: f64,
}

/// What one seed gave.
struct SeedRun {
    /// Per policy: the simulated sessions.
    policies: Vec<(Policy, Vec<Trajectory>)>,
    ope: Vec<(String, Option<f64>)>,
    states_visited: usize,
}

fn run_seed(shop: &Shop, config: &SessionPolicyConfig, seed: u64) -> SeedRun {
    let table = learn(shop, config, seed);
    let states_visited = (0..State::COUNT).filter(|&s| (0..table.actions()).any(|a| table.visits(s, a) > 0)).count();
    let mut policies = vec![Policy::Learned];
    policies.extend(Mix::ALL.iter().map(|&m| Policy::Fixed(m)));
    policies.push(Policy::Uniform);
    let policies: Vec<(Policy, Vec<Trajectory>)> =
        policies.into_iter().map(|p| (p, simulate(shop, config, seed, p, &table))).collect();
    let mut choices = ChaCha8Rng::seed_from_u64(seed ^ 0x0c40_1ce7);
    let logged: Vec<Trajectory> = (0..config.ope_sessions)
        .filter_map(|index| {
            let mut rng = session_rng(seed, LOG_STREAM, index);
            let mut session = shop.start(config, &mut rng)?;
            Some(play(&mut session, &mut rng, &mut |s| table.epsilon_greedy(s, config.logging_epsilon, &mut choices)))
        })
        .collect();
    let ope = off_policy(&logged, &|s, a| f64::from(u8::from(a == table.greedy(s))), &table);
    SeedRun { policies, ope, states_visited }
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = values.fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
    if count == 0 {
        0.0
    } else {
        sum / count as f64
    }
}

/// Run the protocol; each seed's shop lives in a directory under `dir` (an empty one).
pub fn evaluate(
    config: &SessionPolicyConfig,
    dir: &Path,
    recommend_config: &RecommendConfig,
    weights: &EventWeights,
    progress: &mut dyn FnMut(&str),
) -> Result<SessionPolicyReport> {
    config.validate()?;
    let (mut setup_seconds, mut run_seconds) = (0.0, 0.0);
    let mut runs = Vec::with_capacity(config.seeds);
    for k in 0..config.seeds {
        let seed = config.seed + k as u64;
        progress(&format!("seed {seed}: generating the shop and recalling candidates"));
        let started = Instant::now();
        let shop = Shop::build(config, seed, &dir.join(format!("shop-{seed}")), recommend_config, weights)?;
        setup_seconds += started.elapsed().as_secs_f64();
        progress(&format!("seed {seed}: learning, simulating and logging sessions"));
        let started = Instant::now();
        runs.push(run_seed(&shop, config, seed));
        run_seconds += started.elapsed().as_secs_f64();
    }
    Ok(summarise(config, &runs, setup_seconds, run_seconds))
}

fn summarise(
    config: &SessionPolicyConfig,
    runs: &[SeedRun],
    setup_seconds: f64,
    run_seconds: f64,
) -> SessionPolicyReport {
    let per_seed = |p: usize, f: &dyn Fn(&Trajectory) -> f64| -> Vec<f64> {
        runs.iter().map(|r| mean(r.policies[p].1.iter().map(f))).collect()
    };
    let static_index = 1; // Policy::Fixed(Mix::Exploit), after the learned one.
    let static_purchases = per_seed(static_index, &|t| t.purchases);
    let policies = runs[0]
        .policies
        .iter()
        .enumerate()
        .map(|(p, (policy, _))| {
            let purchases = per_seed(p, &|t| t.purchases);
            let pooled: Vec<f64> = runs.iter().flat_map(|r| r.policies[p].1.iter().map(|t| t.purchases)).collect();
            let pooled_mean = mean(pooled.iter().copied());
            let variance =
                pooled.iter().map(|v| (v - pooled_mean).powi(2)).sum::<f64>() / (pooled.len() as f64 - 1.0).max(1.0);
            let vs_static: Vec<f64> = purchases
                .iter()
                .zip(&static_purchases)
                .map(|(v, s)| if *s > 0.0 { 100.0 * (v - s) / s } else { 0.0 })
                .collect();
            PolicyResult {
                policy: policy.name(),
                purchases: estimate(&purchases),
                purchases_ci95_sessions: 1.96 * (variance / pooled.len().max(1) as f64).sqrt(),
                revenue: estimate(&per_seed(p, &|t| t.revenue)),
                pages: estimate(&per_seed(p, &|t| t.steps.len() as f64)),
                purchases_vs_static_pct: estimate(&vs_static),
            }
        })
        .collect();
    let learned = per_seed(0, &|t| t.purchases);
    let ope = runs[0]
        .ope
        .iter()
        .enumerate()
        .map(|(e, (name, _))| {
            let values: Vec<f64> = runs.iter().map(|r| r.ope[e].1.unwrap_or(f64::NAN)).collect();
            let errors: Vec<f64> = values
                .iter()
                .zip(&learned)
                .map(|(v, truth)| if *truth > 0.0 { 100.0 * (v - truth) / truth } else { f64::NAN })
                .collect();
            OpeResult { estimator: name.clone(), value: estimate(&values), relative_error_pct: estimate(&errors) }
        })
        .collect();
    let mut counts = vec![0usize; Mix::ALL.len()];
    for run in runs {
        for step in run.policies[0].1.iter().flat_map(|t| &t.steps) {
            counts[step.action] += 1;
        }
    }
    let total = counts.iter().sum::<usize>().max(1) as f64;
    SessionPolicyReport {
        config: config.clone(),
        policies,
        ope,
        learned_mix_share: Mix::ALL
            .iter()
            .zip(&counts)
            .map(|(m, c)| (m.name().to_string(), *c as f64 / total))
            .collect(),
        states_visited: runs.iter().map(|r| r.states_visited).min().unwrap_or(0),
        setup_seconds,
        run_seconds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SessionPolicyConfig {
        SessionPolicyConfig {
            seeds: 1,
            items: 300,
            users: 200,
            history_events: 8_000,
            candidates: 60,
            train_sessions: 3_000,
            eval_sessions: 400,
            ope_sessions: 400,
            ..SessionPolicyConfig::default()
        }
    }

    fn shop(config: &SessionPolicyConfig, dir: &Path) -> Shop {
        Shop::build(config, config.seed, dir, &RecommendConfig::default(), &EventWeights::default()).unwrap()
    }

    #[test]
    fn the_environment_is_deterministic_for_a_seed_and_the_mixes_differ() {
        let config = small();
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (first, second) = (shop(&config, a.path()), shop(&config, b.path()));
        let table = QTable::new(State::COUNT, Mix::ALL.len());
        for policy in [Policy::Uniform, Policy::Fixed(Mix::CrossSell)] {
            let one = simulate(&first, &config, 3, policy, &table);
            assert_eq!(one, simulate(&second, &config, 3, policy, &table), "{policy:?}");
            assert!(one.iter().map(|t| t.purchases).sum::<f64>() > 0.0, "{policy:?}");
        }
        // Once a session has clicked and carted, every mix orders its candidates its own
        // way: look for such a page among the first sessions.
        let distinct = |pages: &[Vec<usize>]| (0..pages.len()).all(|i| pages[i + 1..].iter().all(|p| *p != pages[i]));
        let mut found = None;
        'sessions: for index in 0..2_000 {
            let mut rng = session_rng(3, EVAL_STREAM, index);
            let Some(mut session) = first.start(&config, &mut rng) else { continue };
            loop {
                let pages: Vec<Vec<usize>> = Mix::ALL.iter().map(|&m| session.page(m)).collect();
                if distinct(&pages) {
                    found = Some(pages);
                    break 'sessions;
                }
                if session.step(Mix::Exploit, &mut rng).done {
                    break;
                }
            }
        }
        let pages = found.expect("no page where all mixes differ in 2,000 sessions");
        assert!(pages.iter().all(|p| p.len() == config.page_size));
        let mut rng = session_rng(3, EVAL_STREAM, 0);
        // Nothing shown earlier in the session comes back.
        let mut session = first.start(&config, &mut rng).expect("a shopper with a page of candidates");
        let shown = session.page(Mix::Exploit);
        session.step(Mix::Exploit, &mut rng);
        assert!(Mix::ALL.iter().all(|&m| session.page(m).iter().all(|c| !shown.contains(c))));
    }

    #[test]
    fn bad_settings_are_refused_with_their_field() {
        for (config, field) in [
            (SessionPolicyConfig { page_size: 0, ..Default::default() }, "session_policy.page_size"),
            (SessionPolicyConfig { epsilon: 1.5, ..Default::default() }, "session_policy.epsilon"),
            (SessionPolicyConfig { logging_epsilon: 0.0, ..Default::default() }, "session_policy.logging_epsilon"),
            (SessionPolicyConfig { satiation: f64::NAN, ..Default::default() }, "session_policy.satiation"),
            (SessionPolicyConfig { explore_depth: 5, ..Default::default() }, "session_policy.explore_depth"),
        ] {
            match config.validate() {
                Err(Error::Invalid(e)) => assert_eq!((e.code, e.field.as_str()), ("invalid_config", field)),
                other => panic!("{field}: {other:?}"),
            }
        }
        let both = SessionPolicyConfig { seeds: 0, discount: -1.0, ..Default::default() };
        assert_eq!(both.problems().len(), 2);
        assert!(SessionPolicyConfig::default().validate().is_ok());
    }

    #[test]
    fn the_learned_policy_beats_uniform_random_on_a_small_shop() {
        let config = SessionPolicyConfig { train_sessions: 30_000, eval_sessions: 2_000, ..small() };
        let dir = tempfile::tempdir().unwrap();
        let report =
            evaluate(&config, dir.path(), &RecommendConfig::default(), &EventWeights::default(), &mut |_| {}).unwrap();
        let of = |name: &str| report.policies.iter().find(|p| p.policy == name).unwrap();
        assert_eq!(report.policies.len(), Mix::ALL.len() + 2);
        let (learned, uniform) = (of("learned"), of("uniform random"));
        assert!(learned.purchases.mean > uniform.purchases.mean, "{report:#?}");
        assert!(report.ope.iter().all(|e| e.value.mean.is_finite()), "{report:#?}");
        assert!((report.learned_mix_share.iter().map(|m| m.1).sum::<f64>() - 1.0).abs() < 1e-9);
        // It learned something: an untrained table would always exploit.
        assert!(report.learned_mix_share[0].1 < 0.95, "{:?}", report.learned_mix_share);
    }
}
