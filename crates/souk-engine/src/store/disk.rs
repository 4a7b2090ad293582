//! Writes the disk refuses: what the caller is told, and the store's write health.
//!
//! A write that cannot be made durable is answered `disk_full` (HTTP 507: `ENOSPC`,
//! `EDQUOT`, `SQLITE_FULL`) or `storage_unavailable` (HTTP 503: any other IO failure), and
//! nothing of the refused batch is kept (the event log cuts it back, the catalog rolls its
//! transaction back). The store remembers the last failure of the event log and of the
//! catalog until that part's next successful write; `/health` reports it (`degraded`).
//! Nothing stays refused: every write tries the disk again.

use parking_lot::Mutex;

use crate::error::Error;

/// Whether `error` says the disk (or the user's quota) is full.
pub(crate) fn is_disk_full(error: &Error) -> bool {
    match error {
        Error::Io(e) => matches!(e.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded),
        Error::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => e.code == rusqlite::ErrorCode::DiskFull,
        Error::Coded { code, .. } => *code == "disk_full",
        _ => false,
    }
}

/// Whether `error` is the disk failing a read or write (as opposed to bad input, a bug or
/// damaged data).
pub(crate) fn is_storage_failure(error: &Error) -> bool {
    match error {
        Error::Io(_) => true,
        Error::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
            e.code,
            rusqlite::ErrorCode::DiskFull
                | rusqlite::ErrorCode::SystemIoFailure
                | rusqlite::ErrorCode::CannotOpen
                | rusqlite::ErrorCode::ReadOnly
        ),
        _ => false,
    }
}

/// The coded error a caller gets for a write of `what` that failed with `error` (other
/// errors pass unchanged). The cause, with its path, is logged here; the message names no
/// file.
pub(crate) fn refused_write(error: Error, what: &str) -> Error {
    if !is_storage_failure(&error) {
        return error;
    }
    tracing::error!(error = %error, what, "a write to the data directory failed; nothing of it was kept");
    if is_disk_full(&error) {
        Error::Coded {
            code: "disk_full",
            message: format!(
                "the disk is full: {what} was not stored (nothing of it was kept); writes resume by themselves \
                 once space is freed"
            ),
        }
    } else {
        Error::Coded {
            code: "storage_unavailable",
            message: format!(
                "the disk failed a write: {what} was not stored (nothing of it was kept); the next write tries again"
            ),
        }
    }
}

/// The last write failure of each part of the store, until that part's next success.
#[derive(Debug, Default)]
pub(crate) struct WriteHealth {
    log: Mutex<Option<String>>,
    catalog: Mutex<Option<String>>,
}

/// The part of the store a write went to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Part {
    Log,
    Catalog,
}

impl WriteHealth {
    fn slot(&self, part: Part) -> &Mutex<Option<String>> {
        match part {
            Part::Log => &self.log,
            Part::Catalog => &self.catalog,
        }
    }

    /// Record a failure (a coded storage error from [`refused_write`]; others are ignored).
    pub(crate) fn failed(&self, part: Part, error: &Error) {
        if let Error::Coded { code: code @ ("disk_full" | "storage_unavailable"), .. } = error {
            self.degrade(part, format!("{code}: the last write failed at {}", chrono::Utc::now().to_rfc3339()));
        }
    }

    /// Mark `part` degraded for `reason`.
    pub(crate) fn degrade(&self, part: Part, reason: String) {
        let name = match part {
            Part::Log => "event log",
            Part::Catalog => "catalog",
        };
        *self.slot(part).lock() = Some(format!("{name} {reason}"));
    }

    pub(crate) fn succeeded(&self, part: Part) {
        let mut slot = self.slot(part).lock();
        if slot.take().is_some() {
            tracing::info!(?part, "writes succeed again");
        }
    }

    /// Why writes are failing, if they are.
    pub(crate) fn reason(&self) -> Option<String> {
        let reasons: Vec<String> = [&self.log, &self.catalog].iter().filter_map(|slot| slot.lock().clone()).collect();
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }
}

/// Apply `result` of a write to `part` to `health`: a storage failure becomes its coded
/// error and degrades the part, a success clears it.
pub(crate) fn track<T>(health: &WriteHealth, part: Part, what: &str, result: crate::Result<T>) -> crate::Result<T> {
    match result {
        Ok(value) => {
            health.succeeded(part);
            Ok(value)
        }
        Err(error) => {
            let error = refused_write(error, what);
            health.failed(part, &error);
            Err(error)
        }
    }
}
