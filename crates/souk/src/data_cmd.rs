//! `souk import`, `souk stats` and `souk gen`: filling the data directory and saying what it
//! holds.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use souk_engine::gen::{GenConfig, Generator};
use souk_engine::import::{self, Format, ImportOptions};
use souk_engine::store::DataDir;
use souk_engine::store::StoreSink;

use crate::config::Config;
use crate::shared::{generate, open_store, progress_bar, write_ground_truth, FileSink};

#[derive(Debug, Args)]
pub struct GenArgs {
    /// Catalog items of the generated shop.
    #[arg(long, default_value_t = 1_000)]
    pub items: usize,
    /// Shoppers of the generated shop.
    #[arg(long, default_value_t = 500)]
    pub users: usize,
    /// Events of the generated shop.
    #[arg(long, default_value_t = 20_000)]
    pub events: usize,
    /// Random seed (the same seed gives the same data and figures).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Write JSONL files and the ground truth into this directory instead of importing.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn import(config: &Config, format: &str, paths: &[PathBuf], skip_bad: bool, json: bool) -> anyhow::Result<()> {
    let format: Format = format.parse().map_err(|e: souk_engine::ValidationError| anyhow::anyhow!(e.message))?;
    for path in paths {
        if !path.exists() {
            bail!("no such file or directory: {}", path.display());
        }
    }
    let store = open_store(config)?;
    let started = std::time::Instant::now();
    let bar = progress_bar(0, "{spinner} importing [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}");
    let mut sink = StoreSink::new(store.as_ref());
    let options = ImportOptions { strict: !skip_bad };
    let report = import::import_paths(format, paths, &options, &mut sink, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .with_context(|| format!("importing {format} from {}", display_paths(paths)))?;
    let written = sink.finish().context("writing the last batch")?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let stats = store.stats()?;
    if json {
        let value = serde_json::json!({
            "format": format.as_str(),
            "files": report.files,
            "bytes": report.bytes,
            "read": {"items": report.items, "users": report.users, "events": report.events, "follows": report.follows,
                     "distinct_users": report.distinct_users, "distinct_items": report.distinct_items,
                     "kg_triples": report.kg_triples, "skipped": report.skipped},
            "stored": written,
            "seconds": seconds,
            "warnings": report.warnings,
            "stats": stats,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!(
            "imported {} events ({} already stored), {} items, {} users, {} social edges from {} in {:.2}s",
            written.events,
            written.duplicate_events,
            written.items,
            written.users,
            written.follows,
            display_paths(paths),
            seconds
        );
        if report.skipped > 0 {
            println!("skipped {} bad lines", report.skipped);
        }
        if report.kg_triples > 0 {
            println!("read {} knowledge-graph triples", report.kg_triples);
        }
        for warning in &report.warnings {
            println!("warning: {warning}");
        }
        println!(
            "store now holds {} events, {} items, {} users, {} social edges",
            stats.events, stats.items, stats.users, stats.social_edges
        );
    }
    Ok(())
}

/// Whether `error` is the data directory's lock held by another process.
fn is_locked(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|cause| matches!(cause.downcast_ref::<souk_engine::Error>(), Some(souk_engine::Error::Locked { .. })))
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

pub fn stats(config: &Config, json: bool) -> anyhow::Result<()> {
    let stats = match open_store(config) {
        Ok(store) => store.stats()?,
        // A running server holds the data directory: read it beside the server instead.
        Err(e) if is_locked(&e) => {
            eprintln!("souk: the data directory is in use (a running server): reading it without opening it");
            souk_engine::store::read_only::stats(&config.data_dir)
                .with_context(|| format!("reading the data directory {}", config.data_dir.display()))?
        }
        Err(e) => return Err(e),
    };
    if json {
        println!("{}", serde_json::to_string(&stats)?);
    } else {
        println!("data directory: {}", config.data_dir.display());
        println!("items:         {}", stats.items);
        println!("users:         {}", stats.users);
        println!("events:        {}", stats.events);
        for (event_type, count) in &stats.events_by_type {
            if *count > 0 {
                println!("  {event_type:<17}{count}");
            }
        }
        println!("social edges:  {}", stats.social_edges);
        println!(
            "event log:     {} bytes; catalog: {} bytes",
            stats.storage.event_log_bytes, stats.storage.catalog_bytes
        );
    }
    Ok(())
}

pub fn gen(config: &Config, args: &GenArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let generator =
        Generator::new(GenConfig { items: args.items, users: args.users, events: args.events, seed: args.seed })
            .context("configuring the generator")?;
    let (summary, target) = match &args.out {
        Some(dir) => {
            let mut sink = FileSink::create(dir)?;
            let summary = generate(&generator, args.events, &mut sink, args.json)?;
            sink.finish()?;
            write_ground_truth(&generator, &dir.join("ground_truth.json"))?;
            (summary, dir.clone())
        }
        None => {
            let store = open_store(config)?;
            let mut sink = StoreSink::new(store.as_ref());
            let summary = generate(&generator, args.events, &mut sink, args.json)?;
            sink.finish().context("writing the last batch")?;
            write_ground_truth(&generator, &DataDir::new(&config.data_dir).ground_truth())?;
            (summary, config.data_dir.clone())
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        println!("{}", serde_json::json!({"summary": summary, "seconds": seconds, "target": target}));
    } else {
        println!("{}", gen_summary_text(&summary, &target.display().to_string(), seconds));
    }
    Ok(())
}

/// `souk gen`'s summary for a person: counts with thousands separators, events by type
/// (largest first), the time in seconds.
fn gen_summary_text(summary: &souk_engine::gen::GenSummary, target: &str, seconds: f64) -> String {
    let mut by_type: Vec<(String, u64)> = summary.events_by_type.iter().map(|(t, n)| (t.to_string(), *n)).collect();
    by_type.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let types: Vec<String> = by_type.iter().map(|(t, n)| format!("{} {t}", thousands(*n))).collect();
    format!(
        "generated {} items, {} users, {} follows and {} events in {} sessions into {target} in {seconds:.1} s\n  events: {}",
        thousands(summary.items),
        thousands(summary.users),
        thousands(summary.follows),
        thousands(summary.events),
        thousands(summary.sessions),
        types.join(", ")
    )
}

/// `1234567` → `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
