//! A reader-writer lock that reports slow waits and long holds: the embedded store's
//! index lock, which ingest and catalog writes take to write and recommendation pages to
//! read, so that one slow holder pauses every one of them. A wait for the lock or a hold
//! of it longer than [`SLOW`] is logged at WARN (target `souk::lock`) with the place in the
//! source that asked for it, and counted.

use std::ops::{Deref, DerefMut};
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Waits and holds longer than this are reported.
pub const SLOW: Duration = Duration::from_millis(100);

/// See the module docs.
#[derive(Debug, Default)]
pub struct TimedLock<T> {
    inner: RwLock<T>,
    slow: AtomicU64,
}

impl<T> TimedLock<T> {
    pub fn new(value: T) -> Self {
        Self { inner: RwLock::new(value), slow: AtomicU64::new(0) }
    }

    /// How many slow waits and holds were reported.
    #[cfg(test)]
    pub fn slow_count(&self) -> u64 {
        self.slow.load(Ordering::Relaxed)
    }

    #[track_caller]
    pub fn read(&self) -> TimedRead<'_, T> {
        self.reading(Location::caller(), RwLock::read)
    }

    /// A short read on the request path: it does not queue behind a writer that waits for
    /// another reader (parking_lot's `read_recursive`), so a write waiting for a long
    /// reader — a training's scan piece on a low-priority thread — holds up the writer
    /// alone, not every page. Only for reads held briefly: a stream of them could keep a
    /// writer out, which the brief holds (microseconds) and the gaps between them do not.
    #[track_caller]
    pub fn read_brief(&self) -> TimedRead<'_, T> {
        self.reading(Location::caller(), RwLock::read_recursive)
    }

    /// A read taken by `take`, its wait and hold reported.
    fn reading<'a>(
        &'a self,
        at: &'static Location<'static>,
        take: impl FnOnce(&'a RwLock<T>) -> RwLockReadGuard<'a, T>,
    ) -> TimedRead<'a, T> {
        let asked = Instant::now();
        let guard = take(&self.inner);
        self.check("waited for", "read", at, asked.elapsed());
        TimedRead { guard, lock: self, at, since: Instant::now() }
    }

    #[track_caller]
    pub fn write(&self) -> TimedWrite<'_, T> {
        let at = Location::caller();
        let asked = Instant::now();
        let guard = self.inner.write();
        self.check("waited for", "write", at, asked.elapsed());
        TimedWrite { guard, lock: self, at, since: Instant::now() }
    }

    fn check(&self, what: &str, mode: &str, at: &Location<'_>, took: Duration) {
        if took > SLOW {
            self.slow.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                target: "souk::lock",
                ms = took.as_secs_f64() * 1e3,
                at = %format!("{}:{}", at.file(), at.line()),
                "{what} the index lock ({mode}) for longer than {} ms",
                SLOW.as_millis()
            );
        }
    }
}

/// A read guard that reports a long hold when dropped.
pub struct TimedRead<'a, T> {
    guard: RwLockReadGuard<'a, T>,
    lock: &'a TimedLock<T>,
    at: &'static Location<'static>,
    since: Instant,
}

impl<T> Deref for TimedRead<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> Drop for TimedRead<'_, T> {
    fn drop(&mut self) {
        self.lock.check("held", "read", self.at, self.since.elapsed());
    }
}

/// A write guard that reports a long hold when dropped.
pub struct TimedWrite<'a, T> {
    guard: RwLockWriteGuard<'a, T>,
    lock: &'a TimedLock<T>,
    at: &'static Location<'static>,
    since: Instant,
}

impl<T> Deref for TimedWrite<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for TimedWrite<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T> Drop for TimedWrite<'_, T> {
    fn drop(&mut self) {
        self.lock.check("held", "write", self.at, self.since.elapsed());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_brief_read_passes_a_writer_waiting_for_a_long_reader_and_a_plain_read_does_not() {
        let lock = TimedLock::new(0u32);
        std::thread::scope(|scope| {
            let long = lock.read();
            let (tx, rx) = std::sync::mpsc::channel();
            let shared = &lock;
            let writer = scope.spawn(move || {
                tx.send(()).unwrap();
                *shared.write() = 1;
            });
            rx.recv().unwrap();
            // Wait until the writer is parked behind the long reader.
            while lock.inner.try_write().is_some() || lock.inner.try_read().is_some() {
                std::thread::yield_now();
            }
            assert!(lock.inner.try_read().is_none(), "a plain read queues behind the waiting writer");
            assert_eq!(*lock.read_brief(), 0, "a brief read goes ahead of it");
            drop(long);
            writer.join().unwrap();
        });
        assert_eq!(*lock.read(), 1);
    }

    #[test]
    fn a_long_hold_and_the_wait_behind_it_are_counted_and_short_ones_are_not() {
        let lock = TimedLock::new(0u32);
        *lock.write() += 1;
        assert_eq!(*lock.read(), 1);
        assert_eq!(lock.slow_count(), 0);
        let shared = &lock;
        std::thread::scope(|scope| {
            let mut held = shared.write();
            let (tx, rx) = std::sync::mpsc::channel();
            let waiter = scope.spawn(move || {
                tx.send(()).unwrap();
                *shared.read()
            });
            rx.recv().unwrap();
            // Both the hold and the reader's wait behind it last longer than SLOW.
            std::thread::sleep(SLOW + Duration::from_millis(150));
            *held = 2;
            drop(held);
            assert_eq!(waiter.join().unwrap(), 2);
        });
        assert_eq!(lock.slow_count(), 2, "the hold and the wait");
    }
}
