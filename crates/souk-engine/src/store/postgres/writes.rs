//! Writes: every one takes its sequence numbers under the lock of `souk_head`, records
//! what replicas must learn in `events` or `souk_changes`, notifies the channel and
//! commits (PostgreSQL's `synchronous_commit`: durable when this returns), then applies
//! itself to this process's index.
//!
//! Events go in with two statements whatever the batch size: the batch's new ids are
//! claimed in `event_ids` (`INSERT … SELECT unnest($1) ON CONFLICT DO NOTHING RETURNING`),
//! then the new events are streamed with `COPY … FROM STDIN (FORMAT binary)`.
//! Cost: one round trip per statement, the rows' bytes once; writers queue on the head row,
//! so one batch is written at a time (see ARCHITECTURE.md, "Limits").

use std::collections::{HashMap, HashSet};
use std::ops::RangeInclusive;

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;
use postgres::Transaction;

use super::conn::PgResult;
use super::schema::{month_partition, CHANNEL, PARTITION_LOCK};
use super::tail::{ChangeKind, EDGE_SEPARATOR};
use super::PgStore;
use crate::error::{Error, Result};
use crate::ids::{ItemId, UserId};
use crate::model::{Event, Follow, Item, User};
use crate::store::catalog::{ItemFacts, CATEGORY_SEPARATOR};
use crate::store::codec;
use crate::store::disk::{track, Part};
use crate::store::index::{event_id_digest, EventIndex};
use crate::store::{AppendOutcome, EraseReport, Exposure};

/// Lock the head row: the last sequence number handed out. Held until commit.
pub(super) fn lock_head(tx: &mut Transaction<'_>, what: &str) -> Result<i64> {
    Ok(tx.query_one("SELECT last_seq FROM souk_head WHERE id = 1 FOR UPDATE", &[]).or_pg(what)?.get(0))
}

/// Move the head to `head` and wake every replica (delivered at commit).
fn advance_head(tx: &mut Transaction<'_>, head: i64, what: &str) -> Result<()> {
    tx.execute("UPDATE souk_head SET last_seq = $1 WHERE id = 1", &[&head]).or_pg(what)?;
    tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &head.to_string()]).or_pg(what)?;
    Ok(())
}

/// Record catalog changes after `last`; returns the new head.
pub(super) fn record_changes(
    tx: &mut Transaction<'_>,
    last: i64,
    changes: &[(ChangeKind, String)],
    what: &str,
) -> Result<i64> {
    if changes.is_empty() {
        return Ok(last);
    }
    let seqs: Vec<i64> = (1..=changes.len() as i64).map(|i| last + i).collect();
    let kinds: Vec<i16> = changes.iter().map(|(kind, _)| *kind as i16).collect();
    let subjects: Vec<&str> = changes.iter().map(|(_, subject)| subject.as_str()).collect();
    tx.execute(
        "INSERT INTO souk_changes (seq, kind, subject) SELECT * FROM unnest($1::int8[], $2::int2[], $3::text[])",
        &[&seqs, &kinds, &subjects],
    )
    .or_pg(what)?;
    let head = last + changes.len() as i64;
    advance_head(tx, head, what)?;
    Ok(head)
}

fn edge(user: &str, other: &str) -> String {
    format!("{user}{EDGE_SEPARATOR}{other}")
}

/// The last of each id in `records`, in first-seen order (an upsert may not touch a row
/// twice in one statement; the embedded catalog keeps the last too).
fn last_of_each<'a, T, K: std::hash::Hash + Eq>(records: &'a [T], id: impl Fn(&'a T) -> K) -> Vec<&'a T> {
    let mut at: HashMap<K, usize> = HashMap::with_capacity(records.len());
    let mut out: Vec<&T> = Vec::with_capacity(records.len());
    for record in records {
        match at.get(&id(record)) {
            Some(i) => out[*i] = record,
            None => {
                at.insert(id(record), out.len());
                out.push(record);
            }
        }
    }
    out
}

fn encode_doc<T: serde::Serialize>(value: &T, what: &str) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Internal(format!("encoding {what}: {e}")))
}

impl PgStore {
    /// Commit a write that took sequence numbers `own`, marking them as this process's
    /// first: a tail that reads them before the writer applies them does not hand them over
    /// as another process's.
    pub(super) fn commit_own(&self, tx: Transaction<'_>, own: RangeInclusive<i64>, what: &str) -> Result<()> {
        if own.is_empty() {
            return tx.commit().or_pg(what);
        }
        self.own_writes.lock().push(own.clone());
        let committed = tx.commit().or_pg(what);
        if committed.is_err() {
            self.own_writes.lock().retain(|range| *range != own);
        }
        committed
    }

    /// Run a catalog write: `write` changes the tables and says what changed; the changes
    /// get sequence numbers, the transaction commits, and `local` applies it here.
    fn catalog_write<T>(
        &self,
        what: &str,
        write: impl FnOnce(&mut Transaction<'_>) -> Result<(T, Vec<(ChangeKind, String)>)>,
        local: impl FnOnce(&mut EventIndex, &T),
    ) -> Result<T> {
        let result = (|| {
            let mut client = self.pool.get()?;
            let mut tx = client.transaction().or_pg(what)?;
            let last = lock_head(&mut tx, what)?;
            let (value, changes) = write(&mut tx)?;
            let head = record_changes(&mut tx, last, &changes, what)?;
            self.commit_own(tx, last + 1..=head, what)?;
            Ok((value, last, head))
        })();
        let (value, last, head) = track(&self.health, Part::Catalog, what, result)?;
        if head > last {
            self.applied_own(last + 1..=head, |index| local(index, &value))?;
        }
        Ok(value)
    }

    /// Create the month partitions `events` lacks for these timestamps (in a short
    /// transaction of their own: creating a partition locks the parent table).
    fn ensure_partitions(&self, timestamps: impl Iterator<Item = i64>) -> Result<()> {
        const WHAT: &str = "creating event partitions";
        let mut missing: Vec<(String, i64, i64)> = Vec::new();
        {
            let known = self.partitions.lock();
            let mut seen = HashSet::new();
            for ts in timestamps {
                if let Some(partition) = month_partition(ts) {
                    if !known.contains(&partition.0) && seen.insert(partition.0.clone()) {
                        missing.push(partition);
                    }
                }
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let mut client = self.pool.get()?;
        let mut tx = client.transaction().or_pg(WHAT)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK]).or_pg(WHAT)?;
        for (name, start, end) in &missing {
            // Names and bounds are computed here, never taken from input.
            tx.batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {name} PARTITION OF events FOR VALUES FROM ({start}) TO ({end})"
            ))
            .or_pg(WHAT)?;
        }
        tx.commit().or_pg(WHAT)?;
        self.partitions.lock().extend(missing.into_iter().map(|(name, _, _)| name));
        Ok(())
    }

    pub(super) fn append(&self, events: Vec<Event>) -> Result<AppendOutcome> {
        const WHAT: &str = "the batch of events";
        if events.is_empty() {
            return Ok(AppendOutcome::default());
        }
        let mut in_batch = HashSet::with_capacity(events.len());
        let unique: Vec<&Event> = events.iter().filter(|e| in_batch.insert(e.id.as_str())).collect();
        let result = (|| {
            self.ensure_partitions(unique.iter().map(|e| e.timestamp))?;
            let mut client = self.pool.get()?;
            let mut tx = client.transaction().or_pg(WHAT)?;
            let last = lock_head(&mut tx, WHAT)?;
            let ids: Vec<&str> = unique.iter().map(|e| e.id.as_str()).collect();
            let fresh: HashSet<String> = tx
                .query(
                    "INSERT INTO event_ids (id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING RETURNING id",
                    &[&ids],
                )
                .or_pg(WHAT)?
                .into_iter()
                .map(|row| row.get(0))
                .collect();
            let kept: Vec<&Event> = unique.iter().copied().filter(|e| fresh.contains(e.id.as_str())).collect();
            if kept.is_empty() {
                tx.commit().or_pg(WHAT)?;
                return Ok((kept, last));
            }
            let sink = tx
                .copy_in("COPY events (seq, id, user_id, type, ts, record) FROM STDIN (FORMAT binary)")
                .or_pg(WHAT)?;
            let types = [Type::INT8, Type::TEXT, Type::TEXT, Type::INT2, Type::INT8, Type::BYTEA];
            let mut writer = BinaryCopyInWriter::new(sink, &types);
            let mut record = Vec::with_capacity(128);
            for (i, event) in kept.iter().enumerate() {
                record.clear();
                codec::encode_event(event, &mut record);
                let seq = last + 1 + i as i64;
                let kind = event.event_type as i16;
                writer
                    .write(&[&seq, &event.id.as_str(), &event.user.as_str(), &kind, &event.timestamp, &record])
                    .or_pg(WHAT)?;
            }
            writer.finish().or_pg(WHAT)?;
            advance_head(&mut tx, last + kept.len() as i64, WHAT)?;
            self.commit_own(tx, last + 1..=last + kept.len() as i64, WHAT)?;
            Ok((kept, last))
        })();
        let (kept, last) = track(&self.health, Part::Log, WHAT, result)?;
        if !kept.is_empty() {
            let head = last + kept.len() as i64;
            self.applied_own(last + 1..=head, |index| {
                for (i, event) in kept.iter().enumerate() {
                    index.insert_event(event, event_id_digest(event.id.as_str()), (last + 1 + i as i64) as u64);
                }
            })?;
        }
        let stored: HashSet<&str> = kept.iter().map(|e| e.id.as_str()).collect();
        let mut first = HashSet::with_capacity(events.len());
        let keep: Vec<bool> =
            events.iter().map(|e| stored.contains(e.id.as_str()) && first.insert(e.id.as_str())).collect();
        Ok(AppendOutcome::from_kept(&keep))
    }

    pub(super) fn write_items(&self, items: Vec<Item>) -> Result<()> {
        const WHAT: &str = "the items";
        if items.is_empty() {
            return Ok(());
        }
        let items = last_of_each(&items, |item| item.id.as_str());
        self.catalog_write(
            WHAT,
            |tx| {
                let mut ids = Vec::with_capacity(items.len());
                let mut docs = Vec::with_capacity(items.len());
                let mut categories = Vec::with_capacity(items.len());
                let mut brands = Vec::with_capacity(items.len());
                let mut prices = Vec::with_capacity(items.len());
                let mut available = Vec::with_capacity(items.len());
                let mut titles = Vec::with_capacity(items.len());
                let mut titles_zh = Vec::with_capacity(items.len());
                let mut images = Vec::with_capacity(items.len());
                for item in &items {
                    ids.push(item.id.as_str());
                    docs.push(encode_doc(item, "item")?);
                    categories.push(item.category.join(CATEGORY_SEPARATOR));
                    brands.push(item.brand.as_deref());
                    prices.push(item.price);
                    available.push(item.available);
                    titles.push(item.title.as_str());
                    titles_zh.push(item.translations.get("zh").map(|t| t.title.as_str()));
                    images.push(item.image.as_deref());
                }
                tx.execute(
                    "INSERT INTO items (id, doc, category, brand, price, available, title, title_zh, image)
                     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[],
                                          $6::bool[], $7::text[], $8::text[], $9::text[])
                     ON CONFLICT (id) DO UPDATE SET doc = excluded.doc, category = excluded.category,
                         brand = excluded.brand, price = excluded.price, available = excluded.available,
                         title = excluded.title, title_zh = excluded.title_zh, image = excluded.image",
                    &[&ids, &docs, &categories, &brands, &prices, &available, &titles, &titles_zh, &images],
                )
                .or_pg(WHAT)?;
                let changes = items.iter().map(|item| (ChangeKind::ItemPut, item.id.to_string())).collect();
                Ok(((), changes))
            },
            |index, ()| {
                for item in &items {
                    index.set_item_facts(&ItemFacts::of(item));
                }
            },
        )
    }

    pub(super) fn remove_item(&self, id: &ItemId) -> Result<bool> {
        const WHAT: &str = "the deletion";
        self.catalog_write(
            WHAT,
            |tx| {
                let existed = tx.execute("DELETE FROM items WHERE id = $1", &[&id.as_str()]).or_pg(WHAT)? > 0;
                let changes = if existed { vec![(ChangeKind::ItemDeleted, id.to_string())] } else { Vec::new() };
                Ok((existed, changes))
            },
            |index, _| index.remove_item_facts(id.as_str()),
        )
    }

    pub(super) fn write_users(&self, users: Vec<User>) -> Result<()> {
        const WHAT: &str = "the users";
        if users.is_empty() {
            return Ok(());
        }
        let users = last_of_each(&users, |user| user.id.as_str());
        self.catalog_write(
            WHAT,
            |tx| {
                let ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
                let docs = users.iter().map(|u| encode_doc(u, "user")).collect::<Result<Vec<_>>>()?;
                tx.execute(
                    "INSERT INTO users (id, doc) SELECT * FROM unnest($1::text[], $2::text[])
                     ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
                    &[&ids, &docs],
                )
                .or_pg(WHAT)?;
                Ok(((), users.iter().map(|u| (ChangeKind::UserPut, u.id.to_string())).collect()))
            },
            |index, ()| {
                for user in &users {
                    index.set_user_in_catalog(user.id.as_str(), true);
                }
            },
        )
    }

    pub(super) fn erase(&self, id: &UserId) -> Result<EraseReport> {
        const WHAT: &str = "the erasure";
        let user = id.as_str();
        self.catalog_write(
            WHAT,
            |tx| {
                // The events go at once (their ids stay in `event_ids`, so a late
                // re-delivery is not stored again); PostgreSQL's VACUUM reclaims the space.
                let events = tx.execute("DELETE FROM events WHERE user_id = $1", &[&user]).or_pg(WHAT)?;
                let user_record = tx.execute("DELETE FROM users WHERE id = $1", &[&user]).or_pg(WHAT)? > 0;
                let edges: Vec<(String, String)> = tx
                    .query("DELETE FROM follows WHERE user_id = $1 OR other = $1 RETURNING user_id, other", &[&user])
                    .or_pg(WHAT)?
                    .into_iter()
                    .map(|row| (row.get(0), row.get(1)))
                    .collect();
                tx.execute("DELETE FROM exposures WHERE user_id = $1", &[&user]).or_pg(WHAT)?;
                let mut changes = vec![(ChangeKind::UserErased, user.to_string())];
                changes.extend(edges.iter().map(|(a, b)| (ChangeKind::FollowRemoved, edge(a, b))));
                let report = EraseReport { user_record, events, social_edges: edges.len() as u64 };
                Ok(((report, edges), changes))
            },
            |index, (_, edges)| {
                index.erase_user_events(id);
                index.set_user_in_catalog(user, false);
                for (a, b) in edges {
                    index.count_follow(a, b, false);
                }
            },
        )
        .map(|(report, _)| report)
    }

    pub(super) fn write_follows(&self, follows: Vec<Follow>) -> Result<()> {
        const WHAT: &str = "the follows";
        if follows.is_empty() {
            return Ok(());
        }
        let follows = last_of_each(&follows, |f| (f.user.as_str(), f.other.as_str()));
        self.catalog_write(
            WHAT,
            |tx| {
                let users: Vec<&str> = follows.iter().map(|f| f.user.as_str()).collect();
                let others: Vec<&str> = follows.iter().map(|f| f.other.as_str()).collect();
                let kinds: Vec<&str> = follows.iter().map(|f| f.kind.as_str()).collect();
                let created: Vec<Option<i64>> = follows.iter().map(|f| f.created_at).collect();
                let added: Vec<(String, String)> = tx
                    .query(
                        "INSERT INTO follows (user_id, other, kind, created_at)
                         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[])
                         ON CONFLICT (user_id, other) DO UPDATE SET kind = excluded.kind,
                             created_at = excluded.created_at
                         RETURNING user_id, other, (xmax = 0) AS inserted",
                        &[&users, &others, &kinds, &created],
                    )
                    .or_pg(WHAT)?
                    .into_iter()
                    .filter(|row| row.get::<_, bool>(2))
                    .map(|row| (row.get(0), row.get(1)))
                    .collect();
                let changes = added.iter().map(|(a, b)| (ChangeKind::FollowAdded, edge(a, b))).collect();
                Ok((added, changes))
            },
            |index, added| {
                for (a, b) in added {
                    index.count_follow(a, b, true);
                }
            },
        )?;
        Ok(())
    }

    pub(super) fn remove_follow(&self, user: &UserId, other: &UserId) -> Result<bool> {
        const WHAT: &str = "the deletion";
        self.catalog_write(
            WHAT,
            |tx| {
                let existed = tx
                    .execute(
                        "DELETE FROM follows WHERE user_id = $1 AND other = $2",
                        &[&user.as_str(), &other.as_str()],
                    )
                    .or_pg(WHAT)?
                    > 0;
                let changes = if existed {
                    vec![(ChangeKind::FollowRemoved, edge(user.as_str(), other.as_str()))]
                } else {
                    Vec::new()
                };
                Ok((existed, changes))
            },
            |index, _| index.count_follow(user.as_str(), other.as_str(), false),
        )
    }

    /// Create or replace a document in `experiments` or `api_keys`.
    pub(super) fn put_document(&self, table: DocumentTable, id: &str, doc: &str) -> Result<()> {
        let what = table.what();
        self.catalog_write(
            what,
            |tx| {
                let sql = format!(
                    "INSERT INTO {} (id, doc) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
                    table.name()
                );
                tx.execute(sql.as_str(), &[&id, &doc]).or_pg(what)?;
                Ok(((), vec![(table.change(), id.to_string())]))
            },
            |_, ()| {},
        )
    }

    pub(super) fn delete_document(&self, table: DocumentTable, id: &str) -> Result<bool> {
        let what = "the deletion";
        self.catalog_write(
            what,
            |tx| {
                let sql = format!("DELETE FROM {} WHERE id = $1", table.name());
                let existed = tx.execute(sql.as_str(), &[&id]).or_pg(what)? > 0;
                Ok((existed, if existed { vec![(table.change(), id.to_string())] } else { Vec::new() }))
            },
            |_, _| {},
        )
    }

    /// Record exposures (a request id already recorded for its experiment is kept as it
    /// was). Replicas read exposures when a report asks: no change to tail.
    pub(super) fn insert_exposures(&self, exposures: &[Exposure]) -> Result<()> {
        const WHAT: &str = "the exposures";
        let result = (|| {
            let experiments: Vec<&str> = exposures.iter().map(|e| e.experiment.as_str()).collect();
            let requests: Vec<&str> = exposures.iter().map(|e| e.request_id.as_str()).collect();
            let users: Vec<&str> = exposures.iter().map(|e| e.user.as_str()).collect();
            let arms: Vec<&str> = exposures.iter().map(|e| e.arm.as_str()).collect();
            let timestamps: Vec<i64> = exposures.iter().map(|e| e.timestamp).collect();
            // `WITH ORDINALITY` keeps the batch's order in `seq` (the order reports read).
            self.pool
                .get()?
                .execute(
                    "INSERT INTO exposures (experiment, request_id, user_id, arm, ts)
                     SELECT experiment, request_id, user_id, arm, ts
                     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[])
                          WITH ORDINALITY AS t(experiment, request_id, user_id, arm, ts, n)
                     ORDER BY n
                     ON CONFLICT (experiment, request_id) DO NOTHING",
                    &[&experiments, &requests, &users, &arms, &timestamps],
                )
                .or_pg(WHAT)?;
            Ok(())
        })();
        track(&self.health, Part::Catalog, WHAT, result)
    }
}

/// The tables that hold one document per id.
#[derive(Debug, Clone, Copy)]
pub(super) enum DocumentTable {
    Experiments,
    ApiKeys,
}

impl DocumentTable {
    pub(super) fn name(self) -> &'static str {
        match self {
            DocumentTable::Experiments => "experiments",
            DocumentTable::ApiKeys => "api_keys",
        }
    }

    fn what(self) -> &'static str {
        match self {
            DocumentTable::Experiments => "the experiment",
            DocumentTable::ApiKeys => "the key",
        }
    }

    fn change(self) -> ChangeKind {
        match self {
            DocumentTable::Experiments => ChangeKind::Experiment,
            DocumentTable::ApiKeys => ChangeKind::ApiKey,
        }
    }
}
