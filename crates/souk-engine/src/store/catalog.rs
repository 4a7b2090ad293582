//! The catalog: items, users and social edges in an embedded SQLite database
//! (`catalog.sqlite3`, WAL journal, `synchronous=FULL`: a committed transaction is on
//! stable storage before the call returns).
//!
//! Records are stored as JSON documents keyed by id, so adding an optional field to the
//! model needs no migration; the schema version lives in the `meta` table and is checked
//! on open.

use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension};

use super::Exposure;
use crate::error::{Error, Result};
use crate::ids::{ItemId, UserId};
use crate::model::{Follow, FollowKind, Item, User};

/// Version of the catalog schema; bump with a migration when the tables change.
pub const CATALOG_FORMAT_VERSION: u32 = 4;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, doc TEXT NOT NULL,
    category TEXT NOT NULL, brand TEXT, price REAL, available INTEGER NOT NULL,
    title TEXT, title_zh TEXT, image TEXT
);
CREATE TABLE IF NOT EXISTS users (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS follows (
    user TEXT NOT NULL, other TEXT NOT NULL, kind TEXT NOT NULL, created_at INTEGER,
    PRIMARY KEY (user, other)
);
CREATE INDEX IF NOT EXISTS follows_by_other ON follows (other);
CREATE TABLE IF NOT EXISTS experiments (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS exposures (
    experiment TEXT NOT NULL, request_id TEXT NOT NULL, user TEXT NOT NULL, arm TEXT NOT NULL,
    timestamp INTEGER NOT NULL, PRIMARY KEY (experiment, request_id)
);
CREATE INDEX IF NOT EXISTS exposures_by_user ON exposures (user);
CREATE TABLE IF NOT EXISTS api_keys (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
";

/// Rows of a document scan read per hold of the connection (a few milliseconds).
const SCAN_PAGE: usize = 1_024;

/// Joins category levels in the `category` column (a control character: never in a level).
pub const CATEGORY_SEPARATOR: &str = "\u{1f}";

/// The fields of an item that filtering and ranking need, read without parsing documents.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemFacts<'a> {
    pub id: &'a str,
    pub category: Vec<&'a str>,
    pub brand: Option<&'a str>,
    pub price: Option<f64>,
    pub available: bool,
    pub title: Option<&'a str>,
    /// The Chinese title (`translations.zh.title`), where the catalog has one.
    pub title_zh: Option<&'a str>,
    /// The item's picture (a URL), where the catalog has one.
    pub image: Option<&'a str>,
}

impl<'a> ItemFacts<'a> {
    pub fn of(item: &'a Item) -> Self {
        Self {
            id: item.id.as_str(),
            category: item.category.iter().map(String::as_str).collect(),
            brand: item.brand.as_deref(),
            price: item.price,
            available: item.available,
            title: Some(item.title.as_str()),
            title_zh: item.translations.get("zh").map(|t| t.title.as_str()),
            image: item.image.as_deref(),
        }
    }
}

/// Version 1 → 2: titles in their own columns (filled from the documents), so that opening
/// the store keeps every item's title in memory without parsing documents.
fn migrate_titles(connection: &Connection) -> Result<()> {
    connection.execute_batch(
        "BEGIN;
         ALTER TABLE items ADD COLUMN title TEXT;
         ALTER TABLE items ADD COLUMN title_zh TEXT;
         UPDATE items SET title = json_extract(doc, '$.title'),
                          title_zh = json_extract(doc, '$.translations.zh.title');
         UPDATE meta SET value = '2' WHERE key = 'format_version';
         COMMIT;",
    )?;
    Ok(())
}

/// Version 3 → 4: the item's picture in its own column (filled from the documents).
fn migrate_images(connection: &Connection) -> Result<()> {
    connection.execute_batch(
        "BEGIN;
         ALTER TABLE items ADD COLUMN image TEXT;
         UPDATE items SET image = json_extract(doc, '$.image');
         UPDATE meta SET value = '4' WHERE key = 'format_version';
         COMMIT;",
    )?;
    Ok(())
}

fn integrity_problems(connection: &Connection, quick: bool) -> rusqlite::Result<Vec<String>> {
    let pragma = if quick { "PRAGMA quick_check" } else { "PRAGMA integrity_check" };
    let mut statement = connection.prepare(pragma)?;
    let rows = statement.query_map([], |row| row.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows.into_iter().filter(|row| row != "ok").collect())
}

/// See the module docs.
pub struct Catalog {
    path: PathBuf,
    connection: Mutex<Connection>,
}

fn corrupt(path: &Path, message: String) -> Error {
    Error::Corrupt { path: path.to_path_buf(), message }
}

impl Catalog {
    /// Open (or create) the catalog. `exclusive` keeps SQLite's WAL index in this
    /// process's memory instead of the shared-memory file beside the database (exclusive
    /// locking mode): what an open on a full disk, where that file cannot grow, needs. The
    /// data directory's lock already keeps other processes out.
    pub fn open(path: &Path, exclusive: bool) -> Result<Self> {
        let connection = Connection::open(path)?;
        if exclusive {
            connection.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
        }
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        // Erased users' rows are overwritten, not just unlinked.
        connection.pragma_update(None, "secure_delete", "ON")?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        // A damaged file must stop the open here, not fail requests later.
        let problems = integrity_problems(&connection, true)
            .map_err(|e| corrupt(path, format!("the catalog database cannot be read: {e}")))?;
        if !problems.is_empty() {
            return Err(corrupt(
                path,
                format!("the catalog database is damaged (SQLite quick_check: {})", problems.join("; ")),
            ));
        }
        connection.execute_batch(SCHEMA)?;
        let version: Option<String> = connection
            .query_row("SELECT value FROM meta WHERE key = 'format_version'", [], |row| row.get(0))
            .optional()?;
        match version {
            None => {
                connection.execute(
                    "INSERT INTO meta (key, value) VALUES ('format_version', ?1)",
                    [CATALOG_FORMAT_VERSION.to_string()],
                )?;
            }
            Some(v) => {
                let found = v.parse::<u32>().map_err(|_| corrupt(path, format!("unreadable format version {v:?}")))?;
                if found == 1 {
                    migrate_titles(&connection)?;
                }
                if found == 1 || found == 2 {
                    // Version 2 → 3 added the experiments, exposures and API keys tables
                    // (created above by the schema).
                    connection.execute("UPDATE meta SET value = '3' WHERE key = 'format_version'", [])?;
                }
                if (1..=3).contains(&found) {
                    migrate_images(&connection)?;
                } else if found != CATALOG_FORMAT_VERSION {
                    return Err(Error::FormatVersion {
                        path: path.to_path_buf(),
                        found,
                        expected: CATALOG_FORMAT_VERSION,
                    });
                }
            }
        }
        Ok(Self { path: path.to_path_buf(), connection: Mutex::new(connection) })
    }

    /// The catalog at `path` through a read-only connection, beside a process that has it
    /// open for writing (nothing is created, migrated or locked). Fails if there is none.
    pub fn open_read_only(path: &Path) -> Result<Self> {
        let connection = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(Self { path: path.to_path_buf(), connection: Mutex::new(connection) })
    }

    /// SQLite's integrity check of the file at `path`, read-only (`quick`: the faster form
    /// that skips index-content checks). Empty when the database is sound.
    pub fn integrity_problems(path: &Path, quick: bool) -> Result<Vec<String>> {
        let connection = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        match integrity_problems(&connection, quick) {
            Ok(problems) => Ok(problems),
            Err(e) => Ok(vec![format!("the database cannot be read: {e}")]),
        }
    }

    /// Insert or replace items in one transaction.
    pub fn put_items(&self, items: &[Item]) -> Result<()> {
        let mut connection = self.connection.lock();
        let tx = connection.transaction()?;
        {
            let mut statement = tx.prepare_cached(
                "INSERT INTO items (id, doc, category, brand, price, available, title, title_zh, image)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT(id) DO UPDATE SET doc = excluded.doc, category = excluded.category,
                     brand = excluded.brand, price = excluded.price, available = excluded.available,
                     title = excluded.title, title_zh = excluded.title_zh, image = excluded.image",
            )?;
            for item in items {
                let doc = serde_json::to_string(item).map_err(|e| Error::Internal(format!("encoding item: {e}")))?;
                statement.execute(params![
                    item.id.as_str(),
                    doc,
                    item.category.join(CATEGORY_SEPARATOR),
                    item.brand,
                    item.price,
                    item.available,
                    item.title,
                    item.translations.get("zh").map(|t| t.title.as_str()),
                    item.image
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn get_item(&self, id: &ItemId) -> Result<Option<Item>> {
        let doc: Option<String> = self
            .connection
            .lock()
            .query_row("SELECT doc FROM items WHERE id = ?1", [id.as_str()], |row| row.get(0))
            .optional()?;
        doc.map(|doc| serde_json::from_str(&doc).map_err(|e| corrupt(&self.path, format!("item {id}: {e}"))))
            .transpose()
    }

    pub fn delete_item(&self, id: &ItemId) -> Result<bool> {
        Ok(self.connection.lock().execute("DELETE FROM items WHERE id = ?1", [id.as_str()])? > 0)
    }

    /// Insert or replace users in one transaction.
    pub fn put_users(&self, users: &[User]) -> Result<()> {
        let mut connection = self.connection.lock();
        let tx = connection.transaction()?;
        {
            let mut statement = tx.prepare_cached(
                "INSERT INTO users (id, doc) VALUES (?1, ?2) ON CONFLICT(id) DO UPDATE SET doc = excluded.doc",
            )?;
            for user in users {
                let doc = serde_json::to_string(user).map_err(|e| Error::Internal(format!("encoding user: {e}")))?;
                statement.execute(params![user.id.as_str(), doc])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn get_user(&self, id: &UserId) -> Result<Option<User>> {
        let doc: Option<String> = self
            .connection
            .lock()
            .query_row("SELECT doc FROM users WHERE id = ?1", [id.as_str()], |row| row.get(0))
            .optional()?;
        doc.map(|doc| serde_json::from_str(&doc).map_err(|e| corrupt(&self.path, format!("user {id}: {e}"))))
            .transpose()
    }

    /// Delete a user and every social edge touching them, in one transaction. Returns
    /// whether the user row existed and the edges removed.
    pub fn erase_user(&self, id: &UserId) -> Result<(bool, Vec<(UserId, UserId)>)> {
        let mut connection = self.connection.lock();
        let tx = connection.transaction()?;
        let existed = tx.execute("DELETE FROM users WHERE id = ?1", [id.as_str()])? > 0;
        let edges = {
            let mut statement = tx.prepare("SELECT user, other FROM follows WHERE user = ?1 OR other = ?1")?;
            let rows =
                statement.query_map([id.as_str()], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))?;
            let mut edges = Vec::new();
            for row in rows {
                let (a, b) = row?;
                edges.push((self.stored_user_id(a)?, self.stored_user_id(b)?));
            }
            edges
        };
        tx.execute("DELETE FROM follows WHERE user = ?1 OR other = ?1", [id.as_str()])?;
        tx.execute("DELETE FROM exposures WHERE user = ?1", [id.as_str()])?;
        tx.commit()?;
        // The deleted rows' pages are overwritten (secure_delete) in the database file, but
        // the write-ahead log still holds the pages as they were until a checkpoint: copy
        // the log into the database and empty it now, so the user's data leaves the disk.
        connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok((existed, edges))
    }

    /// Create or replace an experiment's document.
    pub fn put_experiment(&self, id: &str, doc: &str) -> Result<()> {
        self.connection.lock().execute(
            "INSERT INTO experiments (id, doc) VALUES (?1, ?2) ON CONFLICT(id) DO UPDATE SET doc = excluded.doc",
            params![id, doc],
        )?;
        Ok(())
    }

    /// Create or replace an API key's document (the key's hash, never the key).
    pub fn put_api_key(&self, id: &str, doc: &str) -> Result<()> {
        self.connection.lock().execute(
            "INSERT INTO api_keys (id, doc) VALUES (?1, ?2) ON CONFLICT(id) DO UPDATE SET doc = excluded.doc",
            params![id, doc],
        )?;
        Ok(())
    }

    /// Every API key's document, by id.
    pub fn api_keys(&self) -> Result<Vec<(String, String)>> {
        let connection = self.connection.lock();
        let mut statement = connection.prepare_cached("SELECT id, doc FROM api_keys ORDER BY id")?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Remove an API key; false when there was none.
    pub fn delete_api_key(&self, id: &str) -> Result<bool> {
        Ok(self.connection.lock().execute("DELETE FROM api_keys WHERE id = ?1", [id])? > 0)
    }

    /// Every experiment's document, by id.
    pub fn experiments(&self) -> Result<Vec<(String, String)>> {
        let connection = self.connection.lock();
        let mut statement = connection.prepare_cached("SELECT id, doc FROM experiments ORDER BY id")?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Record exposures in one transaction (a page's request id is recorded once).
    pub fn add_exposures(&self, exposures: &[Exposure]) -> Result<()> {
        let mut connection = self.connection.lock();
        let tx = connection.transaction()?;
        {
            let mut statement = tx.prepare_cached(
                "INSERT OR IGNORE INTO exposures (experiment, request_id, user, arm, timestamp)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for e in exposures {
                statement.execute(params![e.experiment, e.request_id, e.user.as_str(), e.arm, e.timestamp])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// A user's exposures in every experiment, in the order they were recorded.
    pub fn user_exposures(&self, user: &UserId) -> Result<Vec<Exposure>> {
        let connection = self.connection.lock();
        let mut statement = connection.prepare_cached(
            "SELECT experiment, request_id, arm, timestamp FROM exposures WHERE user = ?1 ORDER BY rowid",
        )?;
        let rows = statement.query_map([user.as_str()], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, String>(2)?, row.get::<_, i64>(3)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (experiment, request_id, arm, timestamp) = row?;
            out.push(Exposure { experiment, request_id, user: user.clone(), arm, timestamp });
        }
        Ok(out)
    }

    /// An experiment's exposures in the order they were recorded.
    pub fn exposures(&self, experiment: &str) -> Result<Vec<Exposure>> {
        let connection = self.connection.lock();
        let mut statement = connection.prepare_cached(
            "SELECT request_id, user, arm, timestamp FROM exposures WHERE experiment = ?1 ORDER BY rowid",
        )?;
        let rows = statement.query_map([experiment], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, String>(2)?, row.get::<_, i64>(3)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (request_id, user, arm, timestamp) = row?;
            out.push(Exposure {
                experiment: experiment.to_string(),
                request_id,
                user: self.stored_user_id(user)?,
                arm,
                timestamp,
            });
        }
        Ok(out)
    }

    fn stored_user_id(&self, id: String) -> Result<UserId> {
        UserId::parse(id, "user").map_err(|e| corrupt(&self.path, e.to_string()))
    }

    /// Insert or update social edges in one transaction; returns, per edge, whether it is new.
    pub fn put_follows(&self, follows: &[Follow]) -> Result<Vec<bool>> {
        let mut connection = self.connection.lock();
        let tx = connection.transaction()?;
        let mut new = Vec::with_capacity(follows.len());
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO follows (user, other, kind, created_at) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut update =
                tx.prepare_cached("UPDATE follows SET kind = ?3, created_at = ?4 WHERE user = ?1 AND other = ?2")?;
            for f in follows {
                let args = params![f.user.as_str(), f.other.as_str(), f.kind.as_str(), f.created_at];
                let inserted = insert.execute(args)? > 0;
                if !inserted {
                    update.execute(args)?;
                }
                new.push(inserted);
            }
        }
        tx.commit()?;
        Ok(new)
    }

    pub fn delete_follow(&self, user: &UserId, other: &UserId) -> Result<bool> {
        Ok(self
            .connection
            .lock()
            .execute("DELETE FROM follows WHERE user = ?1 AND other = ?2", [user.as_str(), other.as_str()])?
            > 0)
    }

    /// Edges leaving `user`.
    pub fn follows_of(&self, user: &UserId) -> Result<Vec<Follow>> {
        let connection = self.connection.lock();
        let mut statement =
            connection.prepare_cached("SELECT other, kind, created_at FROM follows WHERE user = ?1 ORDER BY other")?;
        let rows = statement.query_map([user.as_str()], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, Option<i64>>(2)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (other, kind, created_at) = row?;
            let kind: FollowKind =
                kind.parse().map_err(|()| corrupt(&self.path, format!("unknown follow kind {kind:?}")))?;
            out.push(Follow { user: user.clone(), other: self.stored_user_id(other)?, kind, created_at });
        }
        Ok(out)
    }

    /// Visit every item in insertion order, stopping at the first error `visit` returns.
    /// Read in pages (see [`SCAN_PAGE`]): a write during the scan may or may not be seen.
    pub fn scan_items(&self, visit: &mut dyn FnMut(Item) -> Result<()>) -> Result<()> {
        self.scan_documents("items", "item", visit)
    }

    /// Visit every user record in insertion order, in pages like [`Catalog::scan_items`].
    pub fn scan_users(&self, visit: &mut dyn FnMut(User) -> Result<()>) -> Result<()> {
        self.scan_documents("users", "user", visit)
    }

    /// Visit the JSON documents of `table`'s rows in `seq` order, a page at a time: the
    /// connection is held while a page is read, never while `visit` runs (a training's
    /// low-priority thread scanning a million users had held it for seconds, and every
    /// request that reads the catalog waited). A document that does not parse is
    /// corruption, named by its `kind` and id.
    fn scan_documents<T: serde::de::DeserializeOwned>(
        &self,
        table: &str,
        kind: &str,
        visit: &mut dyn FnMut(T) -> Result<()>,
    ) -> Result<()> {
        let sql = format!("SELECT seq, id, doc FROM {table} WHERE seq > ?1 ORDER BY seq LIMIT ?2");
        self.scan_pages(
            &sql,
            |row| Ok((row.get::<_, String>(1)?, row.get::<_, String>(2)?)),
            |(id, doc)| {
                let value: T =
                    serde_json::from_str(&doc).map_err(|e| corrupt(&self.path, format!("{kind} {id}: {e}")))?;
                visit(value)
            },
        )
    }

    /// The rows of `sql` (`… WHERE key > ?1 ORDER BY key LIMIT ?2`, an integer key in the
    /// first column), [`SCAN_PAGE`] at a time: the connection is held while a page is
    /// read, never while `visit` runs.
    fn scan_pages<R>(
        &self,
        sql: &str,
        read: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<R>,
        mut visit: impl FnMut(R) -> Result<()>,
    ) -> Result<()> {
        let mut after = i64::MIN;
        loop {
            let page: Vec<(i64, R)> = {
                let connection = self.connection.lock();
                let mut statement = connection.prepare_cached(sql)?;
                let rows = statement
                    .query_map(rusqlite::params![after, SCAN_PAGE as i64], |row| Ok((row.get(0)?, read(row)?)))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let Some(last) = page.last().map(|(key, _)| *key) else { return Ok(()) };
            let full = page.len() == SCAN_PAGE;
            for (_, row) in page {
                visit(row)?;
            }
            if !full {
                return Ok(());
            }
            after = last;
        }
    }

    /// Visit every item (its facts), user id and edge (for rebuilding the in-memory index).
    pub fn scan_ids(
        &self,
        mut item: impl FnMut(ItemFacts<'_>),
        mut user: impl FnMut(&str),
        mut follow: impl FnMut(&str, &str),
    ) -> Result<()> {
        let connection = self.connection.lock();
        let mut statement = connection
            .prepare("SELECT id, category, brand, price, available, title, title_zh, image FROM items ORDER BY seq")?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            let category = row.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?;
            item(ItemFacts {
                id: row.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?,
                category: if category.is_empty() { Vec::new() } else { category.split(CATEGORY_SEPARATOR).collect() },
                brand: row.get_ref(2)?.as_str_or_null().map_err(rusqlite::Error::from)?,
                price: row.get::<_, Option<f64>>(3)?,
                available: row.get::<_, bool>(4)?,
                title: row.get_ref(5)?.as_str_or_null().map_err(rusqlite::Error::from)?,
                title_zh: row.get_ref(6)?.as_str_or_null().map_err(rusqlite::Error::from)?,
                image: row.get_ref(7)?.as_str_or_null().map_err(rusqlite::Error::from)?,
            });
        }
        let mut statement = connection.prepare("SELECT id FROM users ORDER BY seq")?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            user(row.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?);
        }
        let mut statement = connection.prepare("SELECT user, other FROM follows")?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            follow(
                row.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?,
                row.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?,
            );
        }
        Ok(())
    }

    /// Visit every edge as (user, other), in the table's order.
    /// Visit every edge in insertion order, in pages like [`Catalog::scan_items`]: the
    /// connection is free while `visit` runs.
    pub fn scan_follows(&self, visit: &mut dyn FnMut(&str, &str)) -> Result<()> {
        self.scan_pages(
            "SELECT rowid, user, other FROM follows WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
            |row| Ok((row.get::<_, String>(1)?, row.get::<_, String>(2)?)),
            |(user, other)| {
                visit(&user, &other);
                Ok(())
            },
        )
    }

    pub fn count(&self, table: CatalogTable) -> Result<u64> {
        let sql = match table {
            CatalogTable::Items => "SELECT COUNT(*) FROM items",
            CatalogTable::Users => "SELECT COUNT(*) FROM users",
            CatalogTable::Follows => "SELECT COUNT(*) FROM follows",
        };
        let n: i64 = self.connection.lock().query_row(sql, [], |row| row.get(0))?;
        Ok(n as u64)
    }

    /// Bytes of the database and its write-ahead log.
    pub fn size_bytes(&self) -> u64 {
        let wal = PathBuf::from(format!("{}-wal", self.path.display()));
        [self.path.as_path(), wal.as_path()].iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum()
    }
}

/// The catalog's tables, for counting.
#[derive(Debug, Clone, Copy)]
pub enum CatalogTable {
    Items,
    Users,
    Follows,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scan_visits_every_document_once_in_order_and_leaves_the_catalog_usable_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(&dir.path().join("catalog.sqlite3"), false).unwrap();
        let n = 2 * SCAN_PAGE + 7;
        let item = |k: usize, title: &str| {
            crate::input::parse_item(&serde_json::json!({"id": format!("i{k:05}"), "title": title})).unwrap()
        };
        catalog.put_items(&(0..n).map(|k| item(k, "first")).collect::<Vec<_>>()).unwrap();
        let mut seen = Vec::new();
        catalog
            .scan_items(&mut |it| {
                seen.push((it.id.as_str().to_string(), it.title.clone()));
                if seen.len() == 1 {
                    // The connection is free while a visitor runs: a write from inside
                    // the scan goes through (it waited for the whole scan before), an
                    // update of a row not yet read is seen, a new row is seen once.
                    catalog.put_items(&[item(n - 1, "updated"), item(n, "new")]).unwrap();
                    assert_eq!(catalog.count(CatalogTable::Items).unwrap(), n as u64 + 1);
                }
                Ok(())
            })
            .unwrap();
        let expected: Vec<String> = (0..=n).map(|k| format!("i{k:05}")).collect();
        assert_eq!(seen.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(), expected);
        assert_eq!(seen[n - 1].1, "updated");
        assert_eq!(seen[0].1, "first");
    }

    #[test]
    fn an_erased_user_leaves_no_byte_in_the_catalog_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite3");
        let catalog = Catalog::open(&path, false).unwrap();
        let marker = "erase-me-7f3a9c";
        let user: User =
            serde_json::from_value(serde_json::json!({"id": marker, "attributes": {"city": marker}})).unwrap();
        catalog.put_users(&[user]).unwrap();
        let other = UserId::parse("someone-else", "user").unwrap();
        let id = UserId::parse(marker, "user").unwrap();
        catalog
            .put_follows(&[Follow {
                user: id.clone(),
                other: other.clone(),
                kind: FollowKind::Friend,
                created_at: None,
            }])
            .unwrap();
        catalog
            .add_exposures(&[Exposure {
                experiment: "e".into(),
                request_id: "r-1".into(),
                user: id.clone(),
                arm: "a".into(),
                timestamp: 1,
            }])
            .unwrap();
        let holds = |bytes: &[u8]| bytes.windows(marker.len()).any(|w| w == marker.as_bytes());
        let on_disk = || {
            std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| std::fs::read(e.unwrap().path()).unwrap())
                .any(|bytes| holds(&bytes))
        };
        assert!(on_disk(), "written somewhere first");
        catalog.erase_user(&id).unwrap();
        assert!(!on_disk(), "the database and its write-ahead log no longer hold the user");
        assert!(catalog.get_user(&id).unwrap().is_none());
    }

    #[test]
    fn a_version_1_catalog_gains_title_and_image_columns_from_its_documents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite3");
        {
            let old = Connection::open(&path).unwrap();
            old.execute_batch(
                r#"CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                 CREATE TABLE items (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, doc TEXT NOT NULL,
                     category TEXT NOT NULL, brand TEXT, price REAL, available INTEGER NOT NULL);
                 INSERT INTO meta VALUES ('format_version', '1');
                 INSERT INTO items (id, doc, category, brand, price, available) VALUES ('i1',
                     '{"id":"i1","title":"Red shoe","image":"/img/red.jpg","translations":{"zh":{"title":"红鞋"}}}', '', NULL, NULL, 1);"#,
            )
            .unwrap();
        }
        let catalog = Catalog::open(&path, false).unwrap();
        let mut seen = Vec::new();
        catalog
            .scan_ids(
                |facts| {
                    seen.push((facts.title.map(str::to_string), facts.title_zh.map(str::to_string)));
                    assert_eq!(facts.image, Some("/img/red.jpg"));
                },
                |_| {},
                |_, _| {},
            )
            .unwrap();
        assert_eq!(seen, vec![(Some("Red shoe".to_string()), Some("红鞋".to_string()))]);
        assert_eq!(catalog.get_item(&ItemId::parse("i1", "id").unwrap()).unwrap().unwrap().title, "Red shoe");
        drop(catalog);
        let version: String = Connection::open(&path)
            .unwrap()
            .query_row("SELECT value FROM meta WHERE key = 'format_version'", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, CATALOG_FORMAT_VERSION.to_string());
    }

    #[test]
    fn a_damaged_catalog_file_stops_the_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite3");
        {
            let catalog = Catalog::open(&path, false).unwrap();
            let items: Vec<Item> = (0..2_000)
                .map(|n| Item::new(ItemId::parse(format!("i{n}"), "id").unwrap(), format!("item number {n}")))
                .collect();
            catalog.put_items(&items).unwrap();
            let connection = catalog.connection.lock();
            connection.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
        }
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
        let error = Catalog::open(&path, false).err().expect("a cut catalog must not open");
        assert!(matches!(error, Error::Corrupt { .. }), "{error}");
    }
}
