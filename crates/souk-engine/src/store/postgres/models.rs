//! Model generations in the database, so that every replica serves what one trainer made.
//!
//! Why the database and not a shared directory: the replicas already share it (no second
//! system to run, mount and back up), a generation is published in one transaction (all
//! its files or none), and it carries a sequence number like any other change, so replicas
//! learn of it the way they learn of events. The cost: a generation's bytes pass through
//! PostgreSQL once per publish and once per replica (the ALS factors of 1M items at rank
//! 64 are about 256 MB); files are stored in 8 MiB `bytea` parts (a value may not pass
//! 1 GB, and parts keep both ends' buffers small). Two generations are kept.
//!
//! One trainer: the training lease is a session-level advisory lock on a connection of its
//! own, released when the lease (the connection) is dropped — also when the process dies.

use std::io::{Read, Write};

use postgres::fallible_iterator::FallibleIterator;

use super::conn::PgResult;
use super::schema::TRAINING_LOCK;
use super::tail::ChangeKind;
use super::PgStore;
use crate::error::{Error, Result};
use crate::store::artifacts::{ArtifactStore, Generation, SharedModels, TrainingLease};
use crate::store::disk::{track, Part};

/// Bytes per stored part of a file.
const PART_BYTES: usize = 8 << 20;
/// Published generations kept (the newest and the one before, as on disk).
const KEPT: i64 = 2;

impl SharedModels for PgStore {
    fn training_lease(&self) -> Result<Option<TrainingLease>> {
        let mut client = self.pool.connect()?;
        let held: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&TRAINING_LOCK])
            .or_pg("taking the training lease")?
            .get(0);
        Ok(held.then(|| TrainingLease::new(Box::new(client))))
    }

    fn publish(&self, generation: &Generation) -> Result<u64> {
        const WHAT: &str = "publishing the model generation";
        let checksums = generation.checksums()?;
        let names = generation.file_names()?;
        let result = (|| {
            let mut client = self.pool.get()?;
            let mut tx = client.transaction().or_pg(WHAT)?;
            let last = super::writes::lock_head(&mut tx, WHAT)?;
            let number: i64 =
                tx.query_one("SELECT coalesce(max(generation), 0) + 1 FROM model_generations", &[]).or_pg(WHAT)?.get(0);
            tx.execute(
                "INSERT INTO model_generations (generation, checksums, created_at) VALUES ($1, $2, $3)",
                &[&number, &checksums, &chrono::Utc::now().timestamp_millis()],
            )
            .or_pg(WHAT)?;
            let insert = tx
                .prepare("INSERT INTO model_files (generation, ord, name, part, bytes) VALUES ($1, $2, $3, $4, $5)")
                .or_pg(WHAT)?;
            let mut buffer = vec![0u8; PART_BYTES];
            for (ord, name) in names.iter().enumerate() {
                let mut file = generation.open(name)?;
                let mut part = 0i32;
                loop {
                    let filled = fill(&mut file, &mut buffer)?;
                    if filled == 0 && part > 0 {
                        break;
                    }
                    let bytes = &buffer[..filled];
                    tx.execute(&insert, &[&number, &(ord as i32), name, &part, &bytes]).or_pg(WHAT)?;
                    part += 1;
                    if filled < PART_BYTES {
                        break;
                    }
                }
            }
            tx.execute("DELETE FROM model_generations WHERE generation <= $1", &[&(number - KEPT)]).or_pg(WHAT)?;
            let head =
                super::writes::record_changes(&mut tx, last, &[(ChangeKind::Generation, number.to_string())], WHAT)?;
            self.commit_own(tx, last + 1..=head, WHAT)?;
            Ok((number, last))
        })();
        let (number, last) = track(&self.health, Part::Catalog, WHAT, result)?;
        self.applied_own(last + 1..=last + 1, |_| {})?;
        tracing::info!(generation = number, local = generation.name, "published the model generation");
        Ok(number as u64)
    }

    fn newest(&self) -> Result<Option<(u64, String)>> {
        let row = self
            .pool
            .get()?
            .query_opt("SELECT generation, checksums FROM model_generations ORDER BY generation DESC LIMIT 1", &[])
            .or_pg("reading model generations")?;
        Ok(row.map(|row| (row.get::<_, i64>(0) as u64, row.get(1))))
    }

    fn fetch(&self, number: u64, into: &ArtifactStore) -> Result<Generation> {
        const WHAT: &str = "fetching the model generation";
        let number = i64::try_from(number).map_err(|_| Error::Internal(format!("generation {number} out of range")))?;
        let mut writer = into.begin()?;
        let mut client = self.pool.get()?;
        let mut tx = client.transaction().or_pg(WHAT)?;
        let mut rows = tx
            .query_raw(
                "SELECT name, part, bytes FROM model_files WHERE generation = $1 ORDER BY ord, part",
                [&number as &(dyn postgres::types::ToSql + Sync)],
            )
            .or_pg(WHAT)?;
        let mut current: Option<(String, std::io::BufWriter<std::fs::File>)> = None;
        let mut files = 0;
        while let Some(row) = rows.next().or_pg(WHAT)? {
            let name: &str = row.get(0);
            if current.as_ref().is_none_or(|(open, _)| open != name) {
                if let Some((_, mut file)) = current.take() {
                    file.flush()?;
                }
                current = Some((name.to_string(), writer.create(name)?));
                files += 1;
            }
            if let Some((_, file)) = current.as_mut() {
                file.write_all(row.get::<_, &[u8]>(2))?;
            }
        }
        if let Some((_, mut file)) = current.take() {
            file.flush()?;
        }
        drop(rows);
        tx.commit().or_pg(WHAT)?;
        if files == 0 {
            return Err(Error::not_found("model generation", number.to_string()));
        }
        writer.commit()
    }
}

/// Read until `buffer` is full or the file ends; returns the bytes read.
fn fill(file: &mut impl Read, buffer: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}
