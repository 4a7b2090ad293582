//! `souk bench`: measured runs whose figures go into BENCHMARKS.md, one file per scenario,
//! all over the measuring harness ([`harness`]).
//!
//! Each measured phase runs in its own process so that its peak memory (VmHWM) is its own.

mod ann;
mod ann_content;
mod experiments;
mod harness;
mod ingest;
mod recommend;
mod rerank;
mod scale;
mod search;
mod soak;
mod storage;
mod train;

use std::path::PathBuf;

use clap::Subcommand;

use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Re-ranking: business rules and diversity over scored candidates, timed per call in
    /// this process (no server), against a plain sort of the same candidates.
    Rerank(rerank::RerankArgs),
    /// Recommendation latency under concurrency against `souk serve` on a generated shop.
    Recommend(recommend::RecommendArgs),
    /// Search: index build time (with and without embeddings) and latency under
    /// concurrency per mode against `souk serve` on a generated shop.
    Search(search::SearchArgs),
    /// Training time and peak memory of each model on the data directory (or a split).
    Train(train::TrainArgs),
    /// Ingest throughput: bulk JSONL import, then HTTP batches, each durable when acknowledged.
    Ingest(ingest::IngestArgs),
    /// Event storage: the embedded event log against SQLite on the same events.
    Storage(storage::StorageArgs),
    /// A long mixed load (ingest, search, recommendations, similar items, catalog writes)
    /// against `souk serve`: throughput and latency per route per minute, the server's memory
    /// over time, and stalls (requests slow at the same moment).
    Soak(soak::SoakArgs),
    /// Experiment statistics on simulated experiments: A/A false positives, power at a known
    /// effect, the sample-ratio check; CUPED on a generated shop.
    Experiments(experiments::ExperimentsArgs),
    /// A large shop's whole life on this machine (default 1M items, 1M users, 20M events):
    /// generate, import, train, index, embed (a timed share), then recommendations and search
    /// under concurrency and during a retraining; each phase's time and peak memory.
    Scale(scale::ScaleArgs),
    /// Vector search: the factor model's inverted-file index against an exact scan on the
    /// live model's vectors (recall@k and queries/s per probe depth, build time, memory), the
    /// vectors written out for a reference library.
    Ann(ann::AnnArgs),
}

#[derive(Debug, Subcommand)]
pub enum Phase {
    /// Import a JSONL file into the data directory and report throughput and peak memory.
    Import { file: PathBuf },
}

pub fn run(config: &Config, command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Rerank(args) => rerank::run(&args),
        BenchCommand::Recommend(args) => recommend::run(config, args),
        BenchCommand::Search(args) => search::run(config, args),
        BenchCommand::Train(args) => train::run(config, &args),
        BenchCommand::Ingest(args) => ingest::run(args),
        BenchCommand::Storage(args) => storage::run(args),
        BenchCommand::Soak(args) => soak::run(args),
        BenchCommand::Experiments(args) => experiments::run(&args),
        BenchCommand::Scale(args) => scale::run(args),
        BenchCommand::Ann(args) => ann::run(config, &args),
    }
}

/// A measured phase in this process, started by a scenario as a child.
pub fn run_phase(config: &Config, phase: Phase) -> anyhow::Result<()> {
    match phase {
        Phase::Import { file } => ingest::import_phase(config, file),
    }
}
