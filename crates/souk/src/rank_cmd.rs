//! `souk eval --protocol open-bandit`: the click model (FTRL-Proximal) against the
//! popularity-by-position baseline on an Open Bandit Dataset directory, time-ordered;
//! `souk eval --protocol ope`: off-policy evaluation of a target policy on such a log.
//! Thin: reading, the protocols and the reports live in `souk_engine::rank`.

use anyhow::{bail, Context};
use serde_json::Value;
use souk_engine::eval::simulate::{simulate, SimulationConfig};
use souk_engine::rank::obd::ObdLog;
use souk_engine::rank::obd_policy::EvaluationPolicy;
use souk_engine::rank::off_policy::{self, OffPolicyConfig};
use souk_engine::rank::open_bandit::{self, OpenBanditConfig};

use crate::shared::EvalArgs;

/// The sections `--param SECTION.KEY=VALUE` can set; `open-bandit` is the protocol itself
/// (`validation_ratio`, `bootstrap_resamples`).
const SECTIONS: &[&str] = &["ftrl", "features", "popularity-by-position", "open-bandit"];

/// Apply `--param ftrl.alpha=0.05`-style overrides (the value is JSON, or else a string);
/// unknown sections and keys are refused by name.
fn apply_params(config: &mut OpenBanditConfig, overrides: &[String]) -> anyhow::Result<()> {
    let mut value = serde_json::to_value(&*config)?;
    for text in overrides {
        let Some((section, field, raw)) =
            text.split_once('=').and_then(|(key, raw)| key.split_once('.').map(|(s, f)| (s, f, raw)))
        else {
            bail!("--param expects section.key=value (e.g. ftrl.alpha=0.05), found {text:?}");
        };
        if !SECTIONS.contains(&section) {
            bail!("--param {text:?}: unknown section {section:?}; expected one of {}", SECTIONS.join(", "));
        }
        let parsed = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
        if section == "open-bandit" {
            value[field] = parsed;
        } else {
            value[section][field] = parsed;
        }
        // Checked one at a time so the error names the override at fault.
        *config = serde_json::from_value(value.clone()).with_context(|| format!("--param {text:?}"))?;
    }
    Ok(())
}

pub fn eval_open_bandit(args: &EvalArgs) -> anyhow::Result<()> {
    let Some(dir) = &args.path else {
        bail!("--protocol open-bandit needs --path DIR, a directory of the Open Bandit Dataset such as obd/random/all");
    };
    let mut config = OpenBanditConfig::default();
    if let Some(ratio) = args.ratio {
        config.ratio = ratio;
    }
    config.ftrl.seed = args.seed;
    config.seed = args.seed;
    apply_params(&mut config, &args.params)?;
    let problems = config.problems();
    if !problems.is_empty() {
        bail!("{}", problems.iter().map(|(k, m)| format!("{k}: {m}")).collect::<Vec<_>>().join("; "));
    }
    let log = ObdLog::read_dir(dir).with_context(|| format!("reading the Open Bandit log in {}", dir.display()))?;
    let report = open_bandit::run(&log, &config, args.tune)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

/// The sections `--param SECTION.KEY=VALUE` can set for `--protocol ope`; `ope` is the
/// protocol itself (`reward_model`, `folds`, `bootstrap_resamples`, `confidence`).
const OPE_SECTIONS: &[&str] = &["ope", "ftrl", "features", "popularity-by-position"];

/// Apply `--param` overrides to the ope configuration, as [`apply_params`] does.
fn apply_ope_params(config: &mut OffPolicyConfig, overrides: &[String]) -> anyhow::Result<()> {
    let mut value = serde_json::to_value(&*config)?;
    for text in overrides {
        let Some((section, field, raw)) =
            text.split_once('=').and_then(|(key, raw)| key.split_once('.').map(|(s, f)| (s, f, raw)))
        else {
            bail!("--param expects section.key=value (e.g. ope.bootstrap_resamples=1000), found {text:?}");
        };
        if !OPE_SECTIONS.contains(&section) {
            bail!("--param {text:?}: unknown section {section:?}; expected one of {}", OPE_SECTIONS.join(", "));
        }
        let parsed = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
        if section == "ope" {
            if field == "seed" {
                bail!("--param {text:?}: set the seed with --seed");
            }
            value[field] = parsed;
        } else {
            value[section][field] = parsed;
        }
        *config = serde_json::from_value(value.clone()).with_context(|| format!("--param {text:?}"))?;
    }
    Ok(())
}

/// `souk eval --protocol ope --path LOG_DIR --policy FILE`.
pub fn eval_off_policy(args: &EvalArgs) -> anyhow::Result<()> {
    let (Some(dir), Some(policy_path)) = (&args.path, &args.policy) else {
        bail!(
            "--protocol ope needs --path DIR (an Open Bandit Dataset directory such as obd/random/all) \
             and --policy FILE (csv: round,position,item,probability)"
        );
    };
    if args.ratio.is_some() || args.tune {
        bail!("--ratio and --tune are not used by --protocol ope");
    }
    let mut config = OffPolicyConfig { seed: args.seed, ..OffPolicyConfig::default() };
    config.ftrl.seed = args.seed;
    apply_ope_params(&mut config, &args.params)?;
    let problems = config.problems();
    if !problems.is_empty() {
        bail!("{}", problems.iter().map(|(k, m)| format!("{k}: {m}")).collect::<Vec<_>>().join("; "));
    }
    let log = ObdLog::read_dir(dir).with_context(|| format!("reading the Open Bandit log in {}", dir.display()))?;
    let policy = EvaluationPolicy::read(policy_path, &log)
        .with_context(|| format!("reading the policy file {}", policy_path.display()))?;
    let report = off_policy::run(&log, &policy, &config)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

/// Sections of `--param` for `--protocol simulated-ranking`.
const SIMULATION_SECTIONS: &[&str] = &["simulation", "gbdt", "learners"];

/// `souk eval --protocol simulated-ranking`: the learned ranker against the recall sources
/// and the hand blend on simulated traffic (see `souk_engine::eval::simulate`).
pub fn eval_simulated(config: &crate::config::Config, args: &EvalArgs) -> anyhow::Result<()> {
    let mut simulation = SimulationConfig { seed: args.seed, ..SimulationConfig::default() };
    let mut params = config.rank.gbdt.clone();
    let mut learners = config.rank.learners.clone();
    for text in &args.params {
        let Some((section, field, raw)) =
            text.split_once('=').and_then(|(key, raw)| key.split_once('.').map(|(s, f)| (s, f, raw)))
        else {
            bail!("--param expects section.key=value (e.g. simulation.train_requests=5000), found {text:?}");
        };
        let parsed = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
        match section {
            "simulation" => {
                let mut value = serde_json::to_value(&simulation)?;
                value[field] = parsed;
                simulation = serde_json::from_value(value).with_context(|| format!("--param {text:?}"))?;
            }
            "gbdt" => {
                let mut value = serde_json::to_value(&params)?;
                value[field] = parsed;
                params = serde_json::from_value(value).with_context(|| format!("--param {text:?}"))?;
            }
            // `learners.challengers=[]`, `learners.mlp.hidden=[64,32]`, `learners.ftrl.alpha=0.1`.
            "learners" => {
                let mut value = serde_json::to_value(&learners)?;
                let mut slot = &mut value;
                for key in field.split('.') {
                    let Some(object) = slot.as_object_mut() else {
                        bail!("--param {text:?}: {key:?} is not a section of the learners' settings");
                    };
                    slot = object.entry(key).or_insert(Value::Null);
                }
                *slot = parsed;
                learners = serde_json::from_value(value).with_context(|| format!("--param {text:?}"))?;
            }
            _ => bail!(
                "--param {text:?}: unknown section {section:?}; expected one of {}",
                SIMULATION_SECTIONS.join(", ")
            ),
        }
    }
    let problems = simulation.problems();
    if !problems.is_empty() {
        bail!("{}", problems.iter().map(|(k, m)| format!("simulation.{k}: {m}")).collect::<Vec<_>>().join("; "));
    }
    params.validate().map_err(|e| anyhow::anyhow!("gbdt.{}: {}", e.field, e.message))?;
    if let Some((key, message)) = learners.problems().into_iter().next() {
        bail!("{key}: {message}");
    }
    let dir = tempfile::tempdir().context("creating a directory for the simulated shop")?;
    let report =
        simulate(&simulation, dir.path(), &config.recommend, &config.weights, &params, &learners, &mut |stage| {
            eprintln!("{stage}…");
        })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "simulated traffic: {} logged requests ({} rows, {} clicks, {} carts, {} purchases), {} judged",
            report.logged_requests,
            report.logged_rows,
            report.clicks,
            report.carts,
            report.purchases,
            report.test_requests
        );
        let slots = |v: &[f64]| v.iter().map(|p| format!("{p:.2}")).collect::<Vec<_>>().join(" ");
        println!(
            "examination per slot: true {} | estimated {}",
            slots(&report.true_examination),
            slots(&report.estimated_examination)
        );
        println!("ranker: {} trees in {:.1} s", report.ranker_trees, report.ranker_train_seconds);
        for (name, seconds) in &report.challenger_train_seconds {
            println!("{name}: trained in {seconds:.1} s");
        }
        println!("{:<12} {:>12} {:>8}", "method", "NDCG@10", "se");
        for m in &report.methods {
            println!("{:<12} {:>12.4} {:>8.4}", m.method, m.ndcg_at_10, m.se);
        }
        println!("the promotion gate's view of the later window (logged grades of the shown items):");
        println!("{:<12} {:>14} {:>20} {:>22}", "order", "NDCG@10", "weighted DCG@10", "on randomised lists");
        for ((plain, weighted), explore) in report.gate.iter().zip(&report.gate_ipw).zip(&report.gate_explore) {
            println!(
                "{:<12} {:>14.4} {:>20.4} {:>22.4}",
                plain.method, plain.ndcg_at_10, weighted.ndcg_at_10, explore.ndcg_at_10
            );
        }
        println!("the gate (weighted DCG@10) would serve: {}", report.gate_choice);
        println!(
            "ranker lift: {:+.1}% over the best single source, {:+.1}% over the hand blend",
            100.0 * report.lift_over_best_source,
            100.0 * report.lift_over_blend
        );
        let top: Vec<String> = report.top_features.iter().map(|(f, g)| format!("{f} {g:.0}")).collect();
        println!("top features by gain: {}", top.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_override_each_section_and_refuse_unknown_keys() {
        let mut config = OpenBanditConfig::default();
        let overrides = [
            "ftrl.alpha=0.2",
            "ftrl.bits=18",
            "features.crosses=false",
            "popularity-by-position.prior_strength=50",
            "open-bandit.bootstrap_resamples=0",
        ];
        apply_params(&mut config, &overrides.map(String::from)).unwrap();
        assert_eq!(config.bootstrap_resamples, 0);
        assert_eq!((config.ftrl.alpha, config.ftrl.bits), (0.2, 18));
        assert!(!config.features.crosses);
        assert_eq!(config.baseline.prior_strength, 50.0);

        for (text, expected) in [
            ("ftrl.alhpa=1", "alhpa"),
            ("als.factors=3", "unknown section \"als\""),
            ("alpha=3", "expects section.key=value"),
            ("ftrl.bits=many", "ftrl"),
            ("open-bandit.ratios=0.5", "ratios"),
        ] {
            let error = apply_params(&mut OpenBanditConfig::default(), &[text.to_string()]).unwrap_err();
            assert!(format!("{error:#}").contains(expected), "{text}: {error:#}");
        }
    }

    #[test]
    fn ope_params_override_each_section_and_refuse_unknown_keys() {
        let mut config = OffPolicyConfig::default();
        let overrides = [
            "ope.reward_model=popularity-by-position",
            "ope.folds=5",
            "ope.bootstrap_resamples=1000",
            "ftrl.bits=16",
            "features.affinity=false",
            "popularity-by-position.prior_strength=30",
        ];
        apply_ope_params(&mut config, &overrides.map(String::from)).unwrap();
        assert_eq!(config.reward_model, off_policy::RewardModelKind::PopularityByPosition);
        assert_eq!((config.folds, config.bootstrap_resamples, config.ftrl.bits), (5, 1000, 16));
        assert!(!config.features.affinity);
        assert_eq!(config.baseline.prior_strength, 30.0);
        for (text, expected) in [
            ("ope.reward_model=gbdt", "gbdt"),
            ("ope.resamples=3", "resamples"),
            ("ope.seed=3", "--seed"),
            ("open-bandit.ratio=0.5", "unknown section \"open-bandit\""),
        ] {
            let error = apply_ope_params(&mut OffPolicyConfig::default(), &[text.to_string()]).unwrap_err();
            assert!(format!("{error:#}").contains(expected), "{text}: {error:#}");
        }
    }
}
