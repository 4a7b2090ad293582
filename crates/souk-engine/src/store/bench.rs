//! Measurements behind the storage choice (`souk bench storage`): the embedded event log
//! against SQLite holding the same events, on what Souk asks of event storage — durable
//! batch appends, reopening, a full scan for training, and a user's recent history.
//!
//! Both sides store the same encoded record per event and make every batch durable before
//! the next (`fdatasync` / `synchronous=FULL`), so the comparison is like for like.

use std::path::Path;
use std::time::Instant;

use rusqlite::{params, Connection};
use serde::Serialize;

use super::codec::{self, LogRecord};
use super::{EmbeddedStore, Storage, StoreConfig};
use crate::error::Result;
use crate::model::Event;

/// Figures of one backend.
#[derive(Debug, Clone, Serialize)]
pub struct StorageFigures {
    pub backend: String,
    pub events: usize,
    pub batch: usize,
    pub append_seconds: f64,
    pub append_events_per_second: f64,
    pub reopen_seconds: f64,
    pub full_scan_seconds: f64,
    pub user_history_queries: usize,
    pub user_history_micros_mean: f64,
    pub disk_bytes: u64,
}

fn dir_bytes(dir: &Path) -> u64 {
    walk(dir).iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum()
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
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
pub fn bench_embedded(dir: &Path, events: &[Event], batch: usize, history_queries: usize) -> Result<StorageFigures> {
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
        let id = crate::ids::UserId::parse(user.as_str(), "user")?;
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

/// The same events in SQLite: a table keyed by event id (for idempotency) with an index on
/// (user, timestamp) for history, WAL journal, `synchronous=FULL`.
pub fn bench_sqlite(dir: &Path, events: &[Event], batch: usize, history_queries: usize) -> Result<StorageFigures> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("events.sqlite3");
    let open = || -> Result<Connection> {
        let connection = Connection::open(&path)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.execute_batch(
            "CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, user TEXT NOT NULL, item TEXT, type INTEGER NOT NULL,
                 ts INTEGER NOT NULL, record BLOB NOT NULL);
             CREATE INDEX IF NOT EXISTS events_by_user ON events (user, ts);",
        )?;
        Ok(connection)
    };
    let started = Instant::now();
    {
        let mut connection = open()?;
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
    }
    let append_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let connection = open()?;
    let reopen_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut checksum = 0u64;
    {
        let mut statement = connection.prepare("SELECT user, item, ts FROM events")?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            let user = row.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
            let item = row.get_ref(1)?.as_str_or_null().map_err(rusqlite::Error::from)?;
            let ts: i64 = row.get(2)?;
            checksum = checksum.wrapping_add(user.len() as u64 + item.map_or(0, str::len) as u64 + ts as u64);
        }
    }
    let full_scan_seconds = started.elapsed().as_secs_f64();
    std::hint::black_box(checksum);
    let users = sample_users(events, history_queries);
    let started = Instant::now();
    {
        let mut statement =
            connection.prepare("SELECT record FROM events WHERE user = ?1 ORDER BY ts DESC LIMIT 50")?;
        for user in &users {
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
    }
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
    use super::*;
    use crate::ids::{EventId, ItemId, UserId};
    use crate::model::EventType;

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
