//! The `souk` binary: command-line parsing, configuration, logging and the subcommands.
//! Thin: the work happens in `souk-engine` and `souk-server`.

mod bench;
mod commands;
mod config;
mod embed_cmd;
mod rank_cmd;
mod recommend_cmd;
mod search_cmd;
mod store_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

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
    /// Serve the HTTP API and the web page.
    Serve {
        /// Address to listen on (default 127.0.0.1:7700).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Import files into the data directory.
    Import {
        /// One of jsonl, csv, movielens, recbole, lastfm, taobao.
        #[arg(long)]
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
        #[arg(long)]
        json: bool,
    },
    /// Salvage every valid event of a damaged event log into a new log (the damaged one is
    /// kept beside it) and say what was lost.
    Repair {
        #[arg(long)]
        json: bool,
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
        #[arg(long)]
        json: bool,
    },
    /// Build or bring up to date the search index (and, with --embed, the text vectors of
    /// every item, resumably).
    Index {
        /// Also embed items for semantic search (needs embed.model_path).
        #[arg(long)]
        embed: bool,
        #[arg(long)]
        json: bool,
    },
    /// Offline evaluation with full ranking under a named protocol.
    Eval(recommend_cmd::EvalArgs),
    /// Generate a synthetic shop (deterministic for a seed) into the data directory, or
    /// as files with --out.
    Gen(GenArgs),
    /// Build a demo shop on the embedded default (if the data directory is empty) and serve it.
    Demo {
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

#[derive(Debug, Args)]
pub struct GenArgs {
    #[arg(long, default_value_t = 1_000)]
    pub items: usize,
    #[arg(long, default_value_t = 500)]
    pub users: usize,
    #[arg(long, default_value_t = 20_000)]
    pub events: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Write JSONL files and the ground truth into this directory instead of importing.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DemoSize {
    #[arg(long, default_value_t = 2_000)]
    pub items: usize,
    #[arg(long, default_value_t = 500)]
    pub users: usize,
    #[arg(long, default_value_t = 50_000)]
    pub events: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Merge all layers, print the result and every problem; exit 3 if there are any.
    Check,
}

/// Exit codes: 0 success, 1 failure, 2 usage (clap), 3 invalid configuration, 4 data
/// directory in use, 5 bad input data, 6 stored data is damaged (`souk verify` says where).
pub mod exit {
    pub const FAILURE: u8 = 1;
    pub const CONFIG: u8 = 3;
    pub const LOCKED: u8 = 4;
    pub const BAD_INPUT: u8 = 5;
    pub const DAMAGED: u8 = 6;
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("souk: error: {error:#}");
            ExitCode::from(commands::exit_code(&error))
        }
    }
}
