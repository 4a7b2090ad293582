//! The database schema, its migrations and its format version.
//!
//! `souk_meta.format_version` says which version of the schema the database holds; an open
//! applies the migrations above it in one transaction (under an advisory lock, so that
//! replicas starting together migrate once) and refuses a database written by a newer
//! version. `souk_meta.record_format` is the codec version of `events.record`.
//!
//! Tables:
//! - `souk_head` — one row: the last change sequence number. Every write locks it first
//!   (`FOR UPDATE`) and takes its numbers from it, so numbers are handed out in commit
//!   order and a reader that has seen number N has seen every number below N.
//! - `event_ids` — every event id ever stored (erased events' ids stay): idempotent
//!   re-delivery across time partitions, which cannot hold a unique index on the id alone.
//! - `events` — partitioned by range of the event's timestamp (one partition per month,
//!   created on first use; timestamps outside 1970..2200 go to the default partition);
//!   `seq` orders them, `(user_id, seq)` indexes a user's history, `record` is the event in
//!   the event log's binary codec.
//! - `souk_changes` — catalog changes by sequence number (what replicas tail besides events).
//! - `items`, `users`, `follows`, `experiments`, `exposures`, `api_keys` — the catalog, as
//!   the embedded SQLite catalog keeps it (documents plus the columns filters need).
//! - `model_generations`, `model_files` — published model generations (see `models`).

use std::path::PathBuf;

use postgres::Client;

use super::conn::PgResult;
use crate::error::{Error, Result};
use crate::store::codec::LOG_FORMAT_VERSION;

/// Version of the schema; bump with a migration when the tables change.
pub const PG_FORMAT_VERSION: u32 = 1;

/// Advisory lock keys (one namespace per purpose, "souk" in the high bytes).
pub(super) const MIGRATION_LOCK: i64 = 0x736f_756b_0000_0001;
pub(super) const PARTITION_LOCK: i64 = 0x736f_756b_0000_0002;
/// Held (session level) by the one process training at a time.
pub const TRAINING_LOCK: i64 = 0x736f_756b_0000_0003;

/// The channel every write notifies (payload: the new last sequence number).
pub(super) const CHANNEL: &str = "souk_changes";

const V1: &str = "
CREATE TABLE souk_meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE souk_head (id int PRIMARY KEY CHECK (id = 1), last_seq bigint NOT NULL);
INSERT INTO souk_head VALUES (1, 0);
CREATE TABLE event_ids (id text PRIMARY KEY);
CREATE TABLE events (
    seq bigint NOT NULL, id text NOT NULL, user_id text NOT NULL, type smallint NOT NULL,
    ts bigint NOT NULL, record bytea NOT NULL
) PARTITION BY RANGE (ts);
CREATE TABLE events_other PARTITION OF events DEFAULT;
CREATE INDEX events_by_seq ON events (seq);
CREATE INDEX events_by_user ON events (user_id, seq);
CREATE TABLE souk_changes (seq bigint PRIMARY KEY, kind smallint NOT NULL, subject text NOT NULL);
CREATE TABLE items (
    seq bigserial, id text PRIMARY KEY, doc text NOT NULL, category text NOT NULL, brand text,
    price double precision, available boolean NOT NULL, title text, title_zh text, image text
);
CREATE TABLE users (seq bigserial, id text PRIMARY KEY, doc text NOT NULL);
CREATE TABLE follows (
    user_id text NOT NULL, other text NOT NULL, kind text NOT NULL, created_at bigint,
    PRIMARY KEY (user_id, other)
);
CREATE INDEX follows_by_other ON follows (other);
CREATE TABLE experiments (id text PRIMARY KEY, doc text NOT NULL);
CREATE TABLE exposures (
    seq bigserial, experiment text NOT NULL, request_id text NOT NULL, user_id text NOT NULL,
    arm text NOT NULL, ts bigint NOT NULL, PRIMARY KEY (experiment, request_id)
);
CREATE INDEX exposures_by_user ON exposures (user_id, seq);
CREATE TABLE api_keys (id text PRIMARY KEY, doc text NOT NULL);
CREATE TABLE model_generations (generation bigint PRIMARY KEY, checksums text NOT NULL, created_at bigint NOT NULL);
CREATE TABLE model_files (
    generation bigint NOT NULL REFERENCES model_generations ON DELETE CASCADE, ord int NOT NULL,
    name text NOT NULL, part int NOT NULL, bytes bytea NOT NULL, PRIMARY KEY (generation, ord, part)
);
";

/// Migrations by the version they lead to, oldest first.
const MIGRATIONS: &[(u32, &str)] = &[(1, V1)];

fn meta_path(key: &str) -> PathBuf {
    PathBuf::from(format!("postgresql table souk_meta ({key})"))
}

/// Bring the database's schema to [`PG_FORMAT_VERSION`], or refuse a newer one.
pub(super) fn migrate(client: &mut Client) -> Result<()> {
    const WHAT: &str = "migrating the schema";
    let mut tx = client.transaction().or_pg(WHAT)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).or_pg(WHAT)?;
    let exists: bool = tx.query_one("SELECT to_regclass('souk_meta') IS NOT NULL", &[]).or_pg(WHAT)?.get(0);
    let read = |tx: &mut postgres::Transaction<'_>, key: &str| -> Result<Option<u32>> {
        let row = tx.query_opt("SELECT value FROM souk_meta WHERE key = $1", &[&key]).or_pg(WHAT)?;
        row.map(|row| {
            let value: String = row.get(0);
            value.parse::<u32>().map_err(|_| Error::Corrupt {
                path: meta_path(key),
                message: format!("expected a version number, found {value:?}"),
            })
        })
        .transpose()
    };
    let version = if exists { read(&mut tx, "format_version")?.unwrap_or(0) } else { 0 };
    if version > PG_FORMAT_VERSION {
        return Err(Error::FormatVersion {
            path: meta_path("format_version"),
            found: version,
            expected: PG_FORMAT_VERSION,
        });
    }
    for (to, sql) in MIGRATIONS.iter().filter(|(to, _)| *to > version) {
        tx.batch_execute(sql).or_pg(WHAT)?;
        tx.execute(
            "INSERT INTO souk_meta (key, value) VALUES ('format_version', $1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&to.to_string()],
        )
        .or_pg(WHAT)?;
        tracing::info!(version = to, "migrated the PostgreSQL schema");
    }
    match read(&mut tx, "record_format")? {
        None => {
            tx.execute(
                "INSERT INTO souk_meta (key, value) VALUES ('record_format', $1)",
                &[&LOG_FORMAT_VERSION.to_string()],
            )
            .or_pg(WHAT)?;
        }
        // Older record layouts are read as they are (their records never use what came
        // later); the newest a database has held is what it says.
        Some(found) if !crate::store::codec::readable_version(found) => {
            return Err(Error::FormatVersion { path: meta_path("record_format"), found, expected: LOG_FORMAT_VERSION })
        }
        Some(found) if found < LOG_FORMAT_VERSION => {
            tx.execute(
                "UPDATE souk_meta SET value = $1 WHERE key = 'record_format'",
                &[&LOG_FORMAT_VERSION.to_string()],
            )
            .or_pg(WHAT)?;
        }
        Some(_) => {}
    }
    tx.commit().or_pg(WHAT)
}

/// The partition of the month holding `timestamp_ms` (name, first and past-the-last
/// millisecond), or `None` outside 1970..2200 (the default partition's).
pub(super) fn month_partition(timestamp_ms: i64) -> Option<(String, i64, i64)> {
    use chrono::{Datelike, TimeZone};
    let at = chrono::Utc.timestamp_millis_opt(timestamp_ms).single()?;
    if !(1970..2200).contains(&at.year()) {
        return None;
    }
    let start = chrono::Utc.with_ymd_and_hms(at.year(), at.month(), 1, 0, 0, 0).single()?;
    let (year, month) = if at.month() == 12 { (at.year() + 1, 1) } else { (at.year(), at.month() + 1) };
    let end = chrono::Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0).single()?;
    Some((format!("events_y{:04}m{:02}", at.year(), at.month()), start.timestamp_millis(), end.timestamp_millis()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_cover_their_timestamps_and_nothing_else() {
        let (name, start, end) = month_partition(1_764_979_200_000).unwrap(); // 2025-12-06
        assert_eq!(name, "events_y2025m12");
        assert!(start <= 1_764_979_200_000 && 1_764_979_200_000 < end);
        assert_eq!(month_partition(end).unwrap().1, end, "the next month starts where this one ends");
        assert_eq!(month_partition(end - 1).unwrap().0, "events_y2025m12");
        assert_eq!(month_partition(0).unwrap().0, "events_y1970m01");
        assert!(month_partition(-1).is_none());
        assert!(month_partition(i64::MAX).is_none());
    }
}
