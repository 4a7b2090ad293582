//! `souk bench storage`: the measurements behind the storage choice, the embedded event log
//! against SQLite holding the same generated events, on what Souk asks of event storage —
//! durable batch appends, reopening, a full scan for training, and a user's recent history.
//!
//! Both sides store the same encoded record per event and make every batch durable before
//! the next (`fdatasync` / `synchronous=FULL`), so the comparison is like for like.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use rusqlite::{params, Connection};
use serde::Serialize;
use serde_json::json;
use souk_engine::gen::{GenConfig, Generator};
use souk_engine::store::codec::{self, LogRecord};
use souk_engine::store::{EmbeddedStore, Storage, StoreConfig};
use souk_engine::{Event, UserId};

use crate::bench::harness::Scratch;

#[derive(Debug, Args)]
pub struct StorageArgs {
    /// Events of the generated shop.
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Events per durable batch.
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// Scratch directory (default: a temporary directory, removed afterwards).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Print the result as one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

/// Collects only the events of a generated shop.
struct EventCollector(Vec<Event>);

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
    let embedded = bench_embedded(&scratch.path().join("embedded"), &collector.0, batch, 1_000)?;
    eprintln!("bench: sqlite");
    let sqlite = bench_sqlite(&scratch.path().join("sqlite"), &collector.0, batch, 1_000)?;
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

/// Figures of one backend.
#[derive(Debug, Clone, Serialize)]
struct StorageFigures {
    backend: String,
    events: usize,
    batch: usize,
    append_seconds: f64,
    append_events_per_second: f64,
    reopen_seconds: f64,
    full_scan_seconds: f64,
    user_history_queries: usize,
    user_history_micros_mean: f64,
    disk_bytes: u64,
}

fn dir_bytes(dir: &Path) -> u64 {
    walk(dir).iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// Users to ask for history: every `step`-th distinct user of the input.
fn sample_users(events: &[Event], count: usize) -> Vec<String> {
    let mut users: Vec<&str> = events.iter().map(|e| e.user.as_str()).collect();
    users.sort_unstable();
    users.dedup();
    let step = (users.len() / count.max(1)).max(1);
    users.into_iter().step_by(step).take(count).map(str::to_string).collect()
}

/// The embedded store (event log + in-memory index).
fn bench_embedded(
    dir: &Path,
    events: &[Event],
    batch: usize,
    history_queries: usize,
) -> anyhow::Result<StorageFigures> {
    let config = StoreConfig::default();
    let started = Instant::now();
    {
        let store = EmbeddedStore::open(dir, &config)?;
        for chunk in events.chunks(batch) {
            store.append_events(chunk.to_vec())?;
        }
    }
    let append_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let store = EmbeddedStore::open(dir, &config)?;
    let reopen_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut checksum = 0u64;
    store.scan_interactions(&mut |user, item, row| {
        checksum = checksum.wrapping_add(user.len() as u64 + item.map_or(0, str::len) as u64 + row.timestamp as u64);
    })?;
    let full_scan_seconds = started.elapsed().as_secs_f64();
    std::hint::black_box(checksum);
    let users = sample_users(events, history_queries);
    let started = Instant::now();
    for user in &users {
        let id = UserId::parse(user.as_str(), "user")?;
        std::hint::black_box(store.user_events(&id, 50)?);
    }
    let history = started.elapsed().as_secs_f64();
    Ok(StorageFigures {
        backend: "embedded event log".into(),
        events: events.len(),
        batch,
        append_seconds,
        append_events_per_second: events.len() as f64 / append_seconds,
        reopen_seconds,
        full_scan_seconds,
        user_history_queries: users.len(),
        user_history_micros_mean: history * 1e6 / users.len().max(1) as f64,
        disk_bytes: dir_bytes(dir),
    })
}

/// Open (creating if need be) the SQLite events table: keyed by event id (for
/// idempotency) with an index on (user, timestamp) for history, WAL journal,
/// `synchronous=FULL`.
fn open_sqlite(path: &Path) -> anyhow::Result<Connection> {
    let connection = Connection::open(path)?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, user TEXT NOT NULL, item TEXT, type INTEGER NOT NULL,
             ts INTEGER NOT NULL, record BLOB NOT NULL);
         CREATE INDEX IF NOT EXISTS events_by_user ON events (user, ts);",
    )?;
    Ok(connection)
}

/// Insert the events in transactions of `batch`, each committed durably.
fn sqlite_append(path: &Path, events: &[Event], batch: usize) -> anyhow::Result<()> {
    let mut connection = open_sqlite(path)?;
    let mut record = Vec::new();
    for chunk in events.chunks(batch) {
        let tx = connection.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO events (id, user, item, type, ts, record) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for event in chunk {
                record.clear();
                codec::encode_event(event, &mut record);
                insert.execute(params![
                    event.id.as_str(),
                    event.user.as_str(),
                    event.item.as_ref().map(|i| i.as_str()),
                    event.event_type as u8,
                    event.timestamp,
                    record
                ])?;
            }
        }
        tx.commit()?;
    }
    Ok(())
}

/// Read every event's user, item and time, as training would.
fn sqlite_scan(connection: &Connection) -> anyhow::Result<u64> {
    let mut checksum = 0u64;
    let mut statement = connection.prepare("SELECT user, item, ts FROM events")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let user = row.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
        let item = row.get_ref(1)?.as_str_or_null().map_err(rusqlite::Error::from)?;
        let ts: i64 = row.get(2)?;
        checksum = checksum.wrapping_add(user.len() as u64 + item.map_or(0, str::len) as u64 + ts as u64);
    }
    Ok(checksum)
}

/// Each user's 50 most recent events, decoded.
fn sqlite_histories(connection: &Connection, users: &[String]) -> anyhow::Result<()> {
    let mut statement = connection.prepare("SELECT record FROM events WHERE user = ?1 ORDER BY ts DESC LIMIT 50")?;
    for user in users {
        let mut rows = statement.query([user.as_str()])?;
        let mut history = Vec::new();
        while let Some(row) = rows.next()? {
            let bytes = row.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?;
            if let Ok(LogRecord::Event(event)) = codec::decode(bytes) {
                history.push(event);
            }
        }
        std::hint::black_box(history);
    }
    Ok(())
}

/// The same events in SQLite (see [`open_sqlite`]).
fn bench_sqlite(dir: &Path, events: &[Event], batch: usize, history_queries: usize) -> anyhow::Result<StorageFigures> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("events.sqlite3");
    let started = Instant::now();
    sqlite_append(&path, events, batch)?;
    let append_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let connection = open_sqlite(&path)?;
    let reopen_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    std::hint::black_box(sqlite_scan(&connection)?);
    let full_scan_seconds = started.elapsed().as_secs_f64();
    let users = sample_users(events, history_queries);
    let started = Instant::now();
    sqlite_histories(&connection, &users)?;
    let history = started.elapsed().as_secs_f64();
    Ok(StorageFigures {
        backend: "sqlite (events table)".into(),
        events: events.len(),
        batch,
        append_seconds,
        append_events_per_second: events.len() as f64 / append_seconds,
        reopen_seconds,
        full_scan_seconds,
        user_history_queries: users.len(),
        user_history_micros_mean: history * 1e6 / users.len().max(1) as f64,
        disk_bytes: dir_bytes(dir),
    })
}

#[cfg(test)]
mod tests {
    use souk_engine::{EventId, EventType, ItemId};

    use super::*;

    #[test]
    fn both_backends_store_and_find_the_same_events() {
        let events: Vec<Event> = (0..300)
            .map(|n| {
                Event::new(
                    EventId::parse(format!("e{n}"), "id").unwrap(),
                    EventType::Click,
                    UserId::parse(format!("u{}", n % 10), "u").unwrap(),
                    Some(ItemId::parse(format!("i{}", n % 31), "i").unwrap()),
                    n,
                )
            })
            .collect();
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let embedded = bench_embedded(a.path(), &events, 100, 5).unwrap();
        let sqlite = bench_sqlite(b.path(), &events, 100, 5).unwrap();
        assert_eq!((embedded.events, sqlite.events), (300, 300));
        assert_eq!(embedded.user_history_queries, 5);
        let store = EmbeddedStore::open(a.path(), &StoreConfig::default()).unwrap();
        assert_eq!(store.stats().unwrap().events, 300);
        let n: i64 = Connection::open(b.path().join("events.sqlite3"))
            .unwrap()
            .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 300);
    }
}
