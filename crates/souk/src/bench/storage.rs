//! `souk bench storage`: the embedded event log against SQLite holding the same generated
//! events.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;
use souk_engine::gen::{GenConfig, Generator};
use souk_engine::store::bench as storage_bench;

use crate::bench::harness::Scratch;

#[derive(Debug, Args)]
pub struct StorageArgs {
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Events per durable batch.
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// Scratch directory (default: a temporary directory, removed afterwards).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

/// Collects only the events of a generated shop.
struct EventCollector(Vec<souk_engine::Event>);

impl souk_engine::RecordSink for EventCollector {
    fn put(&mut self, record: souk_engine::Record) -> souk_engine::Result<()> {
        if let souk_engine::Record::Event(event) = record {
            self.0.push(event);
        }
        Ok(())
    }
}

pub fn run(args: StorageArgs) -> anyhow::Result<()> {
    let StorageArgs { events, batch, work_dir, json } = args;
    let scratch = Scratch::new(work_dir)?;
    eprintln!("bench: generating {events} events");
    let generator = Generator::new(GenConfig { items: 20_000, users: 10_000, events, seed: 42 })?;
    let mut collector = EventCollector(Vec::with_capacity(events));
    generator.run(&mut collector, &mut |_| {})?;
    let batch = batch.max(1);
    eprintln!("bench: embedded event log");
    let embedded = storage_bench::bench_embedded(&scratch.path().join("embedded"), &collector.0, batch, 1_000)?;
    eprintln!("bench: sqlite");
    let sqlite = storage_bench::bench_sqlite(&scratch.path().join("sqlite"), &collector.0, batch, 1_000)?;
    let report = json!({"generator": {"items": 20_000, "users": 10_000, "events": events, "seed": 42}, "results": [embedded, sqlite]});
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for f in [&embedded, &sqlite] {
            println!(
                "{:<22} append {:>9.0} events/s  reopen {:>6.2}s  full scan {:>6.3}s  history {:>7.1} µs/user  disk {} MiB",
                f.backend, f.append_events_per_second, f.reopen_seconds, f.full_scan_seconds, f.user_history_micros_mean, f.disk_bytes >> 20
            );
        }
    }
    Ok(())
}
