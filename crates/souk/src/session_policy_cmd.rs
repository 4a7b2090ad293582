//! `souk eval --protocol session-policy`: a per-page mix policy learned by Q-learning
//! against the static ranker on simulated sessions, and its off-policy estimate.

use anyhow::{bail, Context};
use serde_json::Value;
use souk_engine::eval::exploration::Estimate;
use souk_engine::eval::session_policy::{evaluate, SessionPolicyConfig};

use crate::shared::EvalArgs;

/// `--param session_policy.KEY=VALUE` overrides (a JSON value, else a string).
fn apply_params(config: &mut SessionPolicyConfig, params: &[String]) -> anyhow::Result<()> {
    for text in params {
        let Some((key, raw)) = text.split_once('=') else {
            bail!("--param expects session_policy.key=value (e.g. session_policy.seeds=3), found {text:?}");
        };
        let Some(field) = key.strip_prefix("session_policy.") else {
            bail!("--param {text:?}: --protocol session-policy takes session_policy.KEY=VALUE");
        };
        if field == "seed" {
            bail!("--param {text:?}: use --seed");
        }
        let parsed = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
        let mut value = serde_json::to_value(&*config)?;
        value[field] = parsed;
        *config = serde_json::from_value(value).with_context(|| format!("--param {text:?}"))?;
    }
    let problems = config.problems();
    if !problems.is_empty() {
        bail!("{}", problems.iter().map(|(k, m)| format!("session_policy.{k}: {m}")).collect::<Vec<_>>().join("; "));
    }
    Ok(())
}

pub fn eval_session_policy(config: &crate::config::Config, args: &EvalArgs) -> anyhow::Result<()> {
    let mut settings = SessionPolicyConfig { seed: args.seed, ..SessionPolicyConfig::default() };
    apply_params(&mut settings, &args.params)?;
    let dir = tempfile::tempdir().context("creating a directory for the simulated shops")?;
    let report = evaluate(&settings, dir.path(), &config.recommend, &config.weights, &mut |stage| {
        eprintln!("{stage}…");
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "session policy: {} shops (seeds {}..{}) of {} items and {} shoppers; {} training, {} simulated and {} logged sessions per shop; pages of {}",
        settings.seeds,
        settings.seed,
        settings.seed + settings.seeds as u64 - 1,
        settings.items,
        settings.users,
        settings.train_sessions,
        settings.eval_sessions,
        settings.ope_sessions,
        settings.page_size
    );
    let show = |e: &Estimate, digits: usize| e.display(digits);
    println!(
        "{:<18} {:>18} {:>18} {:>18} {:>14} {:>16}",
        "policy", "purchases/session", "(sessions ±95%)", "vs static %", "pages", "revenue/session"
    );
    for p in &report.policies {
        println!(
            "{:<18} {:>18} {:>18} {:>18} {:>14} {:>16}",
            p.policy,
            show(&p.purchases, 4),
            format!("± {:.4}", p.purchases_ci95_sessions),
            show(&p.purchases_vs_static_pct, 1),
            show(&p.pages, 2),
            show(&p.revenue, 1)
        );
    }
    println!("\noff-policy estimate of the learned policy (logged ε-greedy, ε = {}):", settings.logging_epsilon);
    println!("{:<18} {:>18} {:>22}", "estimator", "purchases/session", "error vs simulated %");
    for e in &report.ope {
        println!("{:<18} {:>18} {:>22}", e.estimator, show(&e.value, 4), show(&e.relative_error_pct, 1));
    }
    let shares: Vec<String> = report.learned_mix_share.iter().map(|(m, s)| format!("{m} {:.1}%", 100.0 * s)).collect();
    println!("\nlearned policy's pages: {}", shares.join(", "));
    println!(
        "states visited while learning: {} (fewest over shops); setup {:.1} s, sessions {:.1} s",
        report.states_visited, report.setup_seconds, report.run_seconds
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_set_fields_and_refuse_unknown_or_bad_ones() {
        let mut config = SessionPolicyConfig::default();
        apply_params(&mut config, &["session_policy.seeds=3".into(), "session_policy.epsilon=0.1".into()]).unwrap();
        assert_eq!((config.seeds, config.epsilon), (3, 0.1));
        for (text, expected) in [
            ("session_policy.seedz=1", "seedz"),
            ("seeds=1", "session_policy.KEY"),
            ("session_policy.seed=3", "--seed"),
            ("session_policy.discount=2", "session_policy.discount"),
        ] {
            let error = apply_params(&mut SessionPolicyConfig::default(), &[text.to_string()]).unwrap_err();
            assert!(format!("{error:#}").contains(expected), "{text}: {error:#}");
        }
    }
}
