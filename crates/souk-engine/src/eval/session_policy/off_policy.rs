//! Off-policy estimates of a session policy's value per session from sessions logged with
//! each page's propensity: per-decision importance sampling and its weighted form (Precup,
//! Sutton & Singh 2000), the per-decision doubly robust estimator (Jiang & Li 2016, eq. 7
//! with γ = 1), and whole-session IPW and SNIPW through [`crate::ope`].

use super::qlearn::QTable;
use super::Trajectory;
use crate::ope::{self, Estimator, LoggedRound};

/// Off-policy estimates of the value per session of the policy `target` (its probability
/// of an action in a state) from sessions logged with propensities, using `model` (a
/// Q-table) for the doubly robust estimator.
pub(super) fn off_policy(
    logged: &[Trajectory],
    target: &dyn Fn(usize, usize) -> f64,
    model: &QTable,
) -> Vec<(String, Option<f64>)> {
    let actions = model.actions();
    let target_value = |state: usize| (0..actions).map(|a| target(state, a) * model.value(state, a)).sum::<f64>();
    let n = logged.len() as f64;
    let longest = logged.iter().map(|t| t.steps.len()).max().unwrap_or(0);
    let mut whole = Vec::with_capacity(logged.len());
    let (mut pdis, mut dr) = (0.0, 0.0);
    // Per page position: Σ ρ·r and Σ ρ over all sessions, an ended session keeping its last
    // ρ with reward 0 (the end is an absorbing state), for the weighted PDIS.
    let (mut weighted_reward, mut weight_sum) = (vec![0.0; longest], vec![0.0; longest]);
    for trajectory in logged {
        let mut rho = 1.0;
        for t in 0..longest {
            let Some(step) = trajectory.steps.get(t) else {
                weight_sum[t] += rho;
                continue;
            };
            let previous = rho;
            rho *= target(step.state, step.action) / step.propensity;
            pdis += rho * step.purchases;
            dr += rho * (step.purchases - model.value(step.state, step.action)) + previous * target_value(step.state);
            weighted_reward[t] += rho * step.purchases;
            weight_sum[t] += rho;
        }
        whole.push(LoggedRound {
            reward: trajectory.purchases,
            logging_probability: trajectory.steps.iter().map(|s| s.propensity).product(),
            target_probability: trajectory.steps.iter().map(|s| target(s.state, s.action)).product(),
            model_reward: 0.0,
            model_value: 0.0,
        });
    }
    // Weighted PDIS (Precup et al. 2000): each position's weighted rewards over its weights.
    let weighted_pdis: f64 =
        weighted_reward.iter().zip(&weight_sum).filter(|(_, w)| **w > 0.0).map(|(r, w)| r / w).sum();
    vec![
        ("pdis".into(), (n > 0.0).then_some(pdis / n)),
        ("weighted-pdis".into(), (n > 0.0).then_some(weighted_pdis)),
        ("dr".into(), (n > 0.0).then_some(dr / n)),
        ("trajectory-ipw".into(), ope::estimate(Estimator::Ipw, &whole)),
        ("trajectory-snipw".into(), ope::estimate(Estimator::Snipw, &whole)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::session_policy::Step;

    /// Sessions logged by hand: (state, action, propensity, purchases) per page.
    fn logged(pages: &[&[(usize, usize, f64, f64)]]) -> Vec<Trajectory> {
        pages
            .iter()
            .map(|steps| Trajectory {
                steps: steps
                    .iter()
                    .map(|&(state, action, propensity, purchases)| Step { state, action, propensity, purchases })
                    .collect(),
                purchases: steps.iter().map(|s| s.3).sum(),
                revenue: 0.0,
            })
            .collect()
    }

    #[test]
    fn off_policy_estimates_of_the_logging_policy_are_its_mean_return() {
        let mut model = QTable::new(2, 2);
        model.update(0, 0, 0.7, None, 1.0, 1.0);
        model.update(1, 1, 0.2, None, 1.0, 1.0);
        let epsilon = 0.4;
        let sessions = logged(&[
            &[(0, 0, 0.8, 1.0), (1, 1, 0.8, 0.0)],
            &[(0, 1, 0.2, 0.0)],
            &[(0, 0, 0.8, 2.0), (1, 0, 0.2, 1.0), (1, 1, 0.8, 0.0)],
        ]);
        let behaviour = |s: usize, a: usize| model.epsilon_greedy_probability(s, a, epsilon);
        for (s, a, p, _) in sessions.iter().flat_map(|t| &t.steps).map(|x| (x.state, x.action, x.propensity, 0)) {
            assert!((behaviour(s, a) - p).abs() < 1e-12);
        }
        let mean_return = 4.0 / 3.0;
        for (name, value) in off_policy(&sessions, &behaviour, &model) {
            let value = value.unwrap();
            if name == "dr" {
                // Unbiased but not exact: the model's corrections only cancel in expectation.
                assert!(value.is_finite(), "{name}");
            } else {
                assert!((value - mean_return).abs() < 1e-12, "{name}: {value}");
            }
        }
        // A policy that never takes the logged first action of any session is worth 0 by
        // importance weighting; a greedy one weights the sessions it agrees with.
        let never = off_policy(&sessions, &|_, _| 0.0, &model);
        assert_eq!(never[0], ("pdis".to_string(), Some(0.0)));
        let greedy = off_policy(&sessions, &|s, a| f64::from(u8::from(a == model.greedy(s))), &model);
        // Session 1: 1/0.8 · 1 + 0; session 3: 1/0.8 · 2, then it leaves the greedy path.
        assert!((greedy[0].1.unwrap() - (1.25 + 2.5) / 3.0).abs() < 1e-12, "{greedy:?}");
    }
}
