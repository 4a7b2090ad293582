//! Connections to PostgreSQL: a small pool of synchronous clients, and how the server's
//! errors become the engine's coded errors.
//!
//! The `postgres` crate's `Client` is synchronous (it drives `tokio-postgres` on a private
//! runtime of its own): the engine stays synchronous and no async type crosses this module.

use std::ops::{Deref, DerefMut};
use std::str::FromStr;

use parking_lot::Mutex;
use postgres::error::SqlState;
use postgres::{Client, NoTls};

use crate::error::{Error, Result};

/// Clients kept open between uses; a busy moment opens more and closes the extra ones.
const IDLE_CLIENTS: usize = 8;

/// See the module docs.
pub(super) struct Pool {
    config: postgres::Config,
    /// The URL without its password, for messages.
    shown: String,
    idle: Mutex<Vec<Client>>,
}

impl Pool {
    pub fn new(url: &str) -> Result<Self> {
        let config = postgres::Config::from_str(url).map_err(|e| Error::Coded {
            code: "invalid_config",
            message: format!("store.url: expected a postgres:// URL: {e}"),
        })?;
        Ok(Self { shown: redact(url), config, idle: Mutex::new(Vec::new()) })
    }

    /// The URL without its password.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// A new client of its own (not pooled): for `LISTEN` and for session-level locks.
    pub fn connect(&self) -> Result<Client> {
        self.config.connect(NoTls).map_err(|e| pg_error(e, &format!("connecting to {}", self.shown)))
    }

    pub fn get(&self) -> Result<Conn<'_>> {
        let client = loop {
            match self.idle.lock().pop() {
                Some(client) if client.is_closed() => continue,
                Some(client) => break client,
                None => break self.connect()?,
            }
        };
        Ok(Conn { pool: self, client: Some(client) })
    }
}

/// A pooled client, returned to the pool when dropped (an open transaction was rolled back
/// by then: `postgres::Transaction` rolls back on drop).
pub(super) struct Conn<'a> {
    pool: &'a Pool,
    client: Option<Client>,
}

impl Deref for Conn<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client.as_ref().expect("a pooled client is present until dropped")
    }
}

impl DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("a pooled client is present until dropped")
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let mut idle = self.pool.idle.lock();
            if !client.is_closed() && idle.len() < IDLE_CLIENTS {
                idle.push(client);
            }
        }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub(super) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((credentials, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// The engine's error for a failed database call while doing `what`: a full disk on the
/// server is `disk_full`; a connection that failed or closed, a server out of resources
/// or shutting down is `storage_unavailable` (the next call tries again); anything else
/// (a statement the server refused) is internal.
pub(super) fn pg_error(error: postgres::Error, what: &str) -> Error {
    if let Some(db) = error.as_db_error() {
        let code = db.code();
        if *code == SqlState::DISK_FULL {
            tracing::error!(error = %db, what, "the PostgreSQL server's disk is full");
            return Error::Coded {
                code: "disk_full",
                message: format!(
                    "the PostgreSQL server's disk is full, so {what} failed (nothing of it was kept); writes resume \
                     once space is freed"
                ),
            };
        }
        if matches!(&code.code()[..2], "08" | "53" | "57" | "58") {
            tracing::error!(error = %db, what, "the PostgreSQL server refused the work");
            return unavailable(what, &db.to_string());
        }
        return Error::Internal(format!("postgresql, {what}: {db}"));
    }
    tracing::error!(error = %error, what, "the PostgreSQL server could not be reached");
    unavailable(what, &error.to_string())
}

fn unavailable(what: &str, cause: &str) -> Error {
    Error::Coded {
        code: "storage_unavailable",
        message: format!(
            "the PostgreSQL store is unavailable ({cause}), so {what} failed (nothing of it was kept); the next call \
             tries again"
        ),
    }
}

/// `?` on a database call inside the store: its error, mapped (see [`pg_error`]).
pub(super) trait PgResult<T> {
    fn or_pg(self, what: &str) -> Result<T>;
}

impl<T> PgResult<T> for std::result::Result<T, postgres::Error> {
    fn or_pg(self, what: &str) -> Result<T> {
        self.map_err(|e| pg_error(e, what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(redact("postgres://souk:hunter2@db:5432/shop"), "postgres://souk:***@db:5432/shop");
        assert_eq!(redact("postgres://souk@db/shop"), "postgres://souk@db/shop");
        assert_eq!(redact("host=db user=souk"), "host=db user=souk");
    }
}
