//! Tabular Q-learning (Watkins 1989; Sutton & Barto 2018, eq. 6.8) over a compact state a
//! serving page could observe, and the ε-greedy choice with its propensity.
//!
//! The state is the page number (0, 1, 2, 3+), the session's clicks so far (0, 1, 2+),
//! whether it bought anything yet, the pages since the last click (0, 1, 2+) and the
//! shopper's history size (under 10, under 40, 40+ events): 216 states. Nothing in it is
//! latent: the shopper's tastes and price sensitivity stay hidden.

use rand::Rng;

use super::env::Observation;

/// The discretised state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State(pub usize);

impl State {
    pub const COUNT: usize = 4 * 3 * 2 * 3 * 3;

    pub fn of(observation: &Observation) -> Self {
        let page = observation.page.min(3);
        let clicks = observation.clicks.min(2);
        let purchased = usize::from(observation.purchased);
        let dry = observation.pages_since_click.min(2);
        let history = match observation.history_size {
            0..10 => 0,
            10..40 => 1,
            _ => 2,
        };
        State((((page * 3 + clicks) * 2 + purchased) * 3 + dry) * 3 + history)
    }
}

/// Action values per state, initialised to 0.
#[derive(Debug, Clone, PartialEq)]
pub struct QTable {
    actions: usize,
    values: Vec<f64>,
    visits: Vec<u32>,
}

impl QTable {
    pub fn new(states: usize, actions: usize) -> Self {
        Self { actions, values: vec![0.0; states * actions], visits: vec![0; states * actions] }
    }

    pub fn actions(&self) -> usize {
        self.actions
    }

    pub fn value(&self, state: usize, action: usize) -> f64 {
        self.values[state * self.actions + action]
    }

    pub fn visits(&self, state: usize, action: usize) -> u32 {
        self.visits[state * self.actions + action]
    }

    fn row(&self, state: usize) -> &[f64] {
        &self.values[state * self.actions..][..self.actions]
    }

    /// The best action (the lowest index among ties, so unvisited states exploit).
    pub fn greedy(&self, state: usize) -> usize {
        let row = self.row(state);
        (0..self.actions).fold(0, |best, a| if row[a] > row[best] { a } else { best })
    }

    /// `max_a Q(state, a)`.
    pub fn best_value(&self, state: usize) -> f64 {
        self.row(state).iter().copied().fold(f64::NEG_INFINITY, f64::max)
    }

    /// The probability that ε-greedy picks `action` in `state`.
    pub fn epsilon_greedy_probability(&self, state: usize, action: usize, epsilon: f64) -> f64 {
        let uniform = epsilon / self.actions as f64;
        if action == self.greedy(state) {
            1.0 - epsilon + uniform
        } else {
            uniform
        }
    }

    /// An ε-greedy draw and its propensity (what a log records with the action).
    pub fn epsilon_greedy(&self, state: usize, epsilon: f64, rng: &mut impl Rng) -> (usize, f64) {
        let action = if rng.gen_bool(epsilon) { rng.gen_range(0..self.actions) } else { self.greedy(state) };
        (action, self.epsilon_greedy_probability(state, action, epsilon))
    }

    /// The Q-learning update: `Q(s,a) += α·(r + γ·max_a' Q(s',a') − Q(s,a))`, the bootstrap
    /// term left out at the end of an episode (`next` is `None`). The step size is
    /// `max(alpha, 1/n)` for the pair's `n`-th update: a running mean at first — page rewards
    /// are noisy and the mixes' values close, so a constant step would keep the table
    /// jittering by more than their differences — and never below `alpha`, so late changes
    /// of the bootstrap targets still move it.
    pub fn update(&mut self, state: usize, action: usize, reward: f64, next: Option<usize>, alpha: f64, gamma: f64) {
        let target = reward + next.map_or(0.0, |s| gamma * self.best_value(s));
        let k = state * self.actions + action;
        self.visits[k] += 1;
        let step = alpha.max(1.0 / f64::from(self.visits[k]));
        self.values[k] += step * (target - self.values[k]);
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// A two-state toy: in state 0, action 0 ends the episode with reward 1; action 1 gives
    /// nothing now and moves to state 1, where action 0 pays 2 on average (a coin of 4 or 0)
    /// and action 1 pays 0.5. The optimum is action 1 then action 0 (value 2 against 1): it
    /// is only found by bootstrapping through the delayed, noisy reward.
    fn toy_step(state: usize, action: usize, rng: &mut ChaCha8Rng) -> (f64, Option<usize>) {
        match (state, action) {
            (0, 0) => (1.0, None),
            (0, _) => (0.0, Some(1)),
            (_, 0) => (if rng.gen_bool(0.5) { 4.0 } else { 0.0 }, None),
            _ => (0.5, None),
        }
    }

    #[test]
    fn q_learning_finds_the_delayed_reward_in_a_two_state_toy() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut table = QTable::new(2, 2);
        for _ in 0..5_000 {
            let mut state = 0;
            loop {
                let (action, propensity) = table.epsilon_greedy(state, 0.3, &mut rng);
                assert!(propensity == 0.15 || propensity == 0.85, "{propensity}");
                let (reward, next) = toy_step(state, action, &mut rng);
                table.update(state, action, reward, next, 0.02, 1.0);
                match next {
                    Some(s) => state = s,
                    None => break,
                }
            }
        }
        assert_eq!((table.greedy(0), table.greedy(1)), (1, 0), "{table:?}");
        assert!((table.value(0, 1) - 2.0).abs() < 0.3, "{table:?}");
        assert!((table.value(0, 0) - 1.0).abs() < 0.1, "{table:?}");
        // Myopic learning (γ = 0) takes the immediate reward instead.
        let mut myopic = QTable::new(2, 2);
        for _ in 0..5_000 {
            let (action, _) = myopic.epsilon_greedy(0, 0.3, &mut rng);
            let (reward, next) = toy_step(0, action, &mut rng);
            myopic.update(0, action, reward, next, 0.02, 0.0);
        }
        assert_eq!(myopic.greedy(0), 0);
    }

    #[test]
    fn states_are_distinct_and_in_range() {
        let mut seen = std::collections::HashSet::new();
        for page in 0..4 {
            for clicks in 0..3 {
                for purchased in [false, true] {
                    for pages_since_click in 0..3 {
                        for history_size in [0, 10, 40] {
                            let o = Observation { page, clicks, purchased, pages_since_click, history_size };
                            let State(s) = State::of(&o);
                            assert!(s < State::COUNT);
                            seen.insert(s);
                        }
                    }
                }
            }
        }
        assert_eq!(seen.len(), State::COUNT);
        let far = Observation { page: 9, clicks: 7, purchased: true, pages_since_click: 5, history_size: 900 };
        assert_eq!(State::of(&far).0, State::COUNT - 1);
    }
}
