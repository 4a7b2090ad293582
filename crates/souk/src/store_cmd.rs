//! `souk verify` and `souk repair`: checking a data directory and salvaging a damaged event
//! log. Both take the directory lock, so they run while no server holds it.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use souk_engine::rank::online::OnlineClickModel;
use souk_engine::store::verify::{LogCheck, RepairReport};
use souk_engine::store::{EmbeddedStore, VerifyReport};

use crate::config::Config;

/// Damage found: the command's report says where (the binary exits with 6, "stored data is
/// damaged").
#[derive(Debug)]
pub struct DamageFound(pub String);

impl std::fmt::Display for DamageFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DamageFound {}

fn describe_log(log: &LogCheck, out: &mut String) {
    let _ = writeln!(out, "event log: {} segments, {} bytes, {} valid records", log.segments, log.bytes, log.records);
    for problem in &log.problems {
        let _ = writeln!(out, "  DAMAGED: {problem}");
    }
    for damage in &log.damage {
        if damage.torn_tail {
            let _ = writeln!(
                out,
                "  torn tail: segment {} from byte {} ({} bytes of an unacknowledged write; the next open truncates it)",
                damage.segment, damage.offset, damage.bytes
            );
        } else {
            let _ = writeln!(
                out,
                "  DAMAGED: segment {} bytes {}..{} ({} bytes hold no valid frame)",
                damage.segment,
                damage.offset,
                damage.offset + damage.bytes,
                damage.bytes
            );
        }
    }
}

pub fn verify(config: &Config, json: bool) -> anyhow::Result<()> {
    embedded_only(config, "verify")?;
    let report: VerifyReport = EmbeddedStore::verify(&config.data_dir)
        .with_context(|| format!("verifying the data directory {}", config.data_dir.display()))?;
    // The online click model lives beside the feature logs, outside the model generations:
    // its file carries its own checksum (the model artifact format).
    let online_path = OnlineClickModel::path_in(&config.data_dir);
    let online = OnlineClickModel::verify_saved(&online_path).map_err(|e| e.to_string());
    let clean = report.is_clean() && online.is_ok();
    if json {
        let online = match &online {
            Ok(saved) => serde_json::json!({"saved": saved, "problems": []}),
            Err(problem) => serde_json::json!({"saved": true, "problems": [problem]}),
        };
        println!("{}", serde_json::json!({"ok": clean, "report": report, "online_model": online}));
    } else {
        let mut out = String::new();
        let _ = writeln!(out, "data directory: {}", config.data_dir.display());
        describe_log(&report.log, &mut out);
        if report.catalog.is_empty() {
            let _ = writeln!(out, "catalog: ok (integrity_check)");
        }
        for problem in &report.catalog {
            let _ = writeln!(out, "catalog: DAMAGED: {problem}");
        }
        match &report.models.generation {
            Some(name) if report.models.problems.is_empty() => {
                let _ = writeln!(out, "models: {name}, {} files, checksums ok", report.models.files);
            }
            None if report.models.problems.is_empty() => {
                let _ = writeln!(out, "models: none trained");
            }
            _ => {}
        }
        for problem in &report.models.problems {
            let _ = writeln!(out, "models: DAMAGED: {problem}");
        }
        let _ = match &online {
            Ok(true) => writeln!(out, "online click model: ok (checksum)"),
            Ok(false) => writeln!(out, "online click model: none saved"),
            Err(problem) => writeln!(out, "online click model: DAMAGED: {problem}"),
        };
        print!("{out}");
    }
    if clean {
        return Ok(());
    }
    let mut advice = String::from("the data directory is damaged");
    if !report.log.is_clean() {
        advice.push_str("; `souk repair` salvages every valid event into a new log");
    }
    if !report.catalog.is_empty() {
        advice.push_str("; restore the catalog from a snapshot or re-import it");
    }
    if !report.models.problems.is_empty() {
        advice.push_str("; `souk train` writes a new model generation");
    }
    if online.is_err() {
        advice.push_str(&format!("; delete {} and the online click model starts afresh", online_path.display()));
    }
    Err(DamageFound(advice).into())
}

pub fn snapshot(config: &Config, target: &Path, json: bool) -> anyhow::Result<()> {
    embedded_only(config, "snapshot")?;
    let report = souk_engine::store::snapshot::snapshot(&config.data_dir, target)
        .with_context(|| format!("writing a snapshot of {} into {}", config.data_dir.display(), target.display()))?;
    if json {
        println!("{}", serde_json::json!({"snapshot": target, "report": report}));
    } else {
        println!(
            "snapshot written to {}: {} event segments ({} hard-linked), catalog {}, models {}, {} ranker files, {} copied",
            target.display(),
            report.segments_linked + report.segments_copied,
            report.segments_linked,
            if report.catalog { "yes" } else { "none" },
            report.model_generation.as_deref().unwrap_or("none"),
            report.rank_files,
            human_bytes(report.bytes_copied),
        );
    }
    Ok(())
}

pub fn restore(config: &Config, snapshot: &Path, json: bool) -> anyhow::Result<()> {
    embedded_only(config, "restore")?;
    let (report, verified) = souk_engine::store::snapshot::restore(snapshot, &config.data_dir)
        .with_context(|| format!("restoring {} into {}", snapshot.display(), config.data_dir.display()))?;
    if json {
        println!("{}", serde_json::json!({"ok": verified.is_clean(), "restored": report, "verify": verified}));
    } else {
        println!(
            "restored {} into {}: {} event records, catalog {}, models {}; build the search index with `souk index`",
            snapshot.display(),
            config.data_dir.display(),
            verified.log.records,
            if report.catalog { "yes" } else { "none" },
            report.model_generation.as_deref().unwrap_or("none"),
        );
    }
    if !verified.is_clean() {
        return Err(DamageFound("the restored data directory is damaged; `souk verify` says where".into()).into());
    }
    Ok(())
}

fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / f64::from(1u32 << 30)),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1u32 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} bytes"),
    }
}

pub fn repair(config: &Config, json: bool) -> anyhow::Result<()> {
    embedded_only(config, "repair")?;
    let report: RepairReport = EmbeddedStore::repair(&config.data_dir, &config.store)
        .with_context(|| format!("repairing the data directory {}", config.data_dir.display()))?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    let mut out = String::new();
    describe_log(&report.check, &mut out);
    if report.repaired {
        let _ = writeln!(
            out,
            "repaired: kept {} records; lost {} damaged bytes{}",
            report.check.records,
            report.check.damaged_bytes(),
            if report.check.problems.is_empty() { "" } else { " and the unreadable segments above" }
        );
        if let Some(kept) = &report.kept_damaged {
            let _ = writeln!(out, "the damaged log is kept in {} (delete it when done)", kept.display());
        }
    } else {
        let _ = writeln!(out, "nothing to repair");
    }
    print!("{out}");
    Ok(())
}

/// These commands work on the embedded store's files; with `store.url` the system of record
/// is a PostgreSQL database, which its own tools check, back up and restore.
fn embedded_only(config: &Config, command: &str) -> anyhow::Result<()> {
    if config.store.url.is_empty() {
        return Ok(());
    }
    Err(crate::ConfigProblems(vec![crate::config::Problem {
        key: "store.url".into(),
        message: format!(
            "souk {command} works on the embedded store, but store.url puts the system of record in PostgreSQL: use \
             its tools (pg_dump, pg_restore, pg_amcheck)"
        ),
    }])
    .into())
}
