//! `souk experiment create|list|start|stop|report`: experiments on the data directory (the
//! same lifecycle and report as `/v1/experiments`; the directory lock means no server runs
//! on it meanwhile).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use clap::Subcommand;
use souk_engine::serving::experiment::Experiment;
use souk_engine::serving::experiment_report::ExperimentReport;
use souk_engine::serving::Shop;

use crate::config::Config;
use crate::shared::{open_shop, open_store};

#[derive(Debug, Subcommand)]
pub enum ExperimentCommand {
    /// Create a draft from a JSON definition file (`-` reads standard input):
    /// {"id","surface":"recommendations"|"search","arms":[{"name","share",…pipeline…}]}.
    Create {
        file: String,
        /// Print the result as one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List every experiment.
    List {
        /// Print the result as one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Start a draft.
    Start {
        id: String,
        /// Print the result as one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Stop a running experiment.
    Stop {
        id: String,
        /// Print the result as one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Users, exposures and metrics per arm, comparisons with the control, the
    /// sample-ratio check.
    Report {
        id: String,
        /// Print the result as one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn shop(config: &Config) -> anyhow::Result<Shop> {
    let store = open_store(config)?;
    Ok(open_shop(config, store, config.recommend.clone(), None))
}

pub fn run(config: &Config, command: ExperimentCommand) -> anyhow::Result<()> {
    let shop = shop(config)?;
    match command {
        ExperimentCommand::Create { file, json } => {
            let text = if file == "-" {
                std::io::read_to_string(std::io::stdin()).context("reading the definition from standard input")?
            } else {
                std::fs::read_to_string(Path::new(&file)).with_context(|| format!("reading {file}"))?
            };
            let value: serde_json::Value =
                serde_json::from_str(&text).with_context(|| format!("{file}: not a JSON document"))?;
            print_experiment(&shop.create_experiment(&value)?, json)
        }
        ExperimentCommand::List { json } => {
            let all = shop.experiments();
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else if all.is_empty() {
                println!("no experiments");
            }
            for e in all.iter().filter(|_| !json) {
                print_experiment(e, false)?;
            }
            Ok(())
        }
        ExperimentCommand::Start { id, json } => print_experiment(&shop.start_experiment(&id)?, json),
        ExperimentCommand::Stop { id, json } => print_experiment(&shop.stop_experiment(&id)?, json),
        ExperimentCommand::Report { id, json } => {
            let report = shop.experiment_report(&id)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report_table(&report));
            }
            Ok(())
        }
    }
}

fn print_experiment(e: &Experiment, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(e)?);
        return Ok(());
    }
    let arms: Vec<String> = e.arms.iter().map(|a| format!("{} ({})", a.name, a.share)).collect();
    println!("{}: {:?} on {}, arms {}", e.id, e.state, e.surface.as_str(), arms.join(", "));
    Ok(())
}

/// The report as text: arms with their metrics, then each comparison.
fn report_table(r: &ExperimentReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "experiment {} ({:?}, {}, {}-day window)", r.id, r.state, r.surface, r.window_days);
    for arm in &r.arms {
        let _ =
            writeln!(out, "arm {} (share {:.2}): {} users, {} pages", arm.name, arm.share, arm.users, arm.exposures);
        for (name, m) in &arm.metrics {
            let _ = writeln!(out, "  {name:<20} {:>10.4}  [{:.4}, {:.4}]", m.value, m.ci[0], m.ci[1]);
        }
    }
    let _ = writeln!(
        out,
        "sample ratio: chi2 {:.3}, p {:.4}{}",
        r.srm.chi2,
        r.srm.p_value,
        if r.srm.flagged { "  MISMATCH" } else { "" }
    );
    for c in &r.comparisons {
        let _ = writeln!(
            out,
            "{} vs control, {:<20} lift {:+.2}% [{:+.2}%, {:+.2}%]  p {:.4} (Holm {:.4})  P(beats control) {:.3}  CUPED −{:.0}% variance",
            c.arm,
            c.metric,
            c.lift * 100.0,
            c.ci[0] * 100.0,
            c.ci[1] * 100.0,
            c.p_value,
            c.p_value_adjusted,
            c.chance_to_beat_control,
            c.cuped_variance_reduction * 100.0
        );
    }
    for warning in &r.warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    out
}
