//! `souk eval --protocol exploration`: which policy fills the exploration slots, by
//! simulated clicks and regret on generated shops.

use anyhow::{bail, Context};
use serde_json::Value;
use souk_engine::eval::exploration::{evaluate, Estimate, ExplorationConfig};

use crate::shared::EvalArgs;

/// `--param exploration.KEY=VALUE` overrides (a JSON value, else a string).
fn apply_params(config: &mut ExplorationConfig, params: &[String]) -> anyhow::Result<()> {
    for text in params {
        let Some((key, raw)) = text.split_once('=') else {
            bail!("--param expects exploration.key=value (e.g. exploration.pages=20000), found {text:?}");
        };
        let Some(field) = key.strip_prefix("exploration.") else {
            bail!("--param {text:?}: --protocol exploration takes exploration.KEY=VALUE");
        };
        if field == "seed" {
            bail!("--param {text:?}: use --seed");
        }
        let parsed = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
        let mut value = serde_json::to_value(&*config)?;
        value[field] = parsed;
        *config = serde_json::from_value(value).with_context(|| format!("--param {text:?}"))?;
    }
    Ok(())
}

pub fn eval_exploration(args: &EvalArgs) -> anyhow::Result<()> {
    let mut config = ExplorationConfig { seed: args.seed, ..ExplorationConfig::default() };
    apply_params(&mut config, &args.params)?;
    let report = evaluate(&config, &mut |stage| eprintln!("{stage}…"))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "exploration: {} shops of {} items ({} new), {} pages of {} with slots at {:?}; cohort rho target {}",
        config.seeds,
        config.items,
        report.cohort_items,
        config.pages,
        config.page_size,
        config.slots,
        config.rank_target
    );
    let show = |e: &Estimate, digits: usize| e.display(digits);
    println!(
        "{:<18} {:>16} {:>16} {:>14} {:>16} {:>14} {:>24}",
        "policy", "clicks", "expected vs none %", "regret %", "cohort share %", "cohort rho", "cohort shows to rho"
    );
    for p in &report.policies {
        let policy = serde_json::to_value(p.policy)?.as_str().unwrap_or_default().to_string();
        let to_rank = match &p.cohort_shows_to_rank {
            Some(e) => format!("{} ({}/{})", show(e, 0), p.reached, config.seeds),
            None => format!("not reached (0/{})", config.seeds),
        };
        let share = Estimate { mean: 100.0 * p.cohort_show_share.mean, ci95: 100.0 * p.cohort_show_share.ci95 };
        println!(
            "{:<18} {:>16} {:>16} {:>14} {:>16} {:>14} {:>24}",
            policy,
            show(&p.clicks, 0),
            show(&p.clicks_vs_none_pct, 2),
            show(&p.regret_pct, 2),
            show(&share, 2),
            show(&p.cohort_rank_correlation, 3),
            to_rank
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_set_fields_and_refuse_unknown_ones() {
        let mut config = ExplorationConfig::default();
        apply_params(&mut config, &["exploration.pages=100".into(), "exploration.slots=[2,5]".into()]).unwrap();
        assert_eq!((config.pages, config.slots.clone()), (100, vec![2, 5]));
        for (text, expected) in
            [("exploration.pagez=1", "pagez"), ("pages=1", "exploration.KEY"), ("exploration.seed=3", "--seed")]
        {
            let error = apply_params(&mut ExplorationConfig::default(), &[text.to_string()]).unwrap_err();
            assert!(format!("{error:#}").contains(expected), "{text}: {error:#}");
        }
    }
}
