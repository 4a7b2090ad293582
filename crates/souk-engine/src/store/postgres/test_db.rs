//! A throwaway database for tests, on the server `SOUK_POSTGRES_URL` names.
//!
//! Without `SOUK_POSTGRES_URL` (or with a server that does not answer) a test says it was
//! skipped and passes — unless `SOUK_POSTGRES_TESTS=required` (set by `.ci/run`), which
//! makes a missing server a failure.

use std::sync::atomic::{AtomicU32, Ordering};

/// See the module docs. Dropped, it drops its database.
pub struct TestDb {
    admin: String,
    name: String,
    pub url: String,
}

fn required() -> bool {
    std::env::var("SOUK_POSTGRES_TESTS").as_deref() == Ok("required")
}

/// `url` with its database name replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority_start = head.find("://").map_or(0, |i| i + 3);
    let base = match head[authority_start..].find('/') {
        Some(slash) => &head[..authority_start + slash],
        None => head,
    };
    format!("{base}/{name}{query}")
}

impl TestDb {
    /// A fresh database, or `None` (after saying why) when no server is configured.
    pub fn create() -> Option<Self> {
        let Ok(admin) = std::env::var("SOUK_POSTGRES_URL") else {
            assert!(!required(), "SOUK_POSTGRES_TESTS=required but SOUK_POSTGRES_URL is not set");
            eprintln!("skipped: no PostgreSQL server (set SOUK_POSTGRES_URL, and SOUK_POSTGRES_TESTS=required to make this a failure)");
            return None;
        };
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let name = format!("souk_test_{}_{}_{nanos}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        match postgres::Client::connect(&admin, postgres::NoTls) {
            Ok(mut client) => {
                client.batch_execute(&format!("CREATE DATABASE {name}")).expect("creating a test database");
            }
            Err(e) => {
                assert!(!required(), "SOUK_POSTGRES_TESTS=required but the server does not answer: {e}");
                eprintln!("skipped: the PostgreSQL server at SOUK_POSTGRES_URL does not answer: {e}");
                return None;
            }
        }
        let url = with_database(&admin, &name);
        Some(Self { admin, name, url })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_name_is_replaced_and_the_rest_kept() {
        assert_eq!(with_database("postgres://u@h:5432/postgres", "t1"), "postgres://u@h:5432/t1");
        assert_eq!(with_database("postgres://u@h", "t1"), "postgres://u@h/t1");
        assert_eq!(
            with_database("postgresql://u:p@h/db?sslmode=disable", "t1"),
            "postgresql://u:p@h/t1?sslmode=disable"
        );
    }
}
