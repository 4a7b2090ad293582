//! A [`RecordSink`] that writes into a [`Storage`] in batches (importers, the generator).

use super::Storage;
use crate::error::Result;
use crate::model::{Event, Follow, Item, Record, RecordSink, User};

/// How many records of one kind are buffered before a write.
const EVENT_BATCH: usize = 50_000;
const CATALOG_BATCH: usize = 10_000;

/// Counts of what a sink wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SinkSummary {
    pub items: u64,
    pub users: u64,
    pub follows: u64,
    pub events: u64,
    pub duplicate_events: u64,
}

/// Buffers records and writes them in batches; call [`StoreSink::finish`] at the end (a
/// sink dropped without it loses what is still buffered, which was never acknowledged).
pub struct StoreSink<'a> {
    store: &'a dyn Storage,
    items: Vec<Item>,
    users: Vec<User>,
    follows: Vec<Follow>,
    events: Vec<Event>,
    summary: SinkSummary,
}

impl<'a> StoreSink<'a> {
    pub fn new(store: &'a dyn Storage) -> Self {
        Self {
            store,
            items: Vec::new(),
            users: Vec::new(),
            follows: Vec::new(),
            events: Vec::new(),
            summary: SinkSummary::default(),
        }
    }

    fn flush_catalog(&mut self) -> Result<()> {
        if !self.items.is_empty() {
            self.summary.items += self.items.len() as u64;
            self.store.put_items(std::mem::take(&mut self.items))?;
        }
        if !self.users.is_empty() {
            self.summary.users += self.users.len() as u64;
            self.store.put_users(std::mem::take(&mut self.users))?;
        }
        if !self.follows.is_empty() {
            self.summary.follows += self.follows.len() as u64;
            self.store.put_follows(std::mem::take(&mut self.follows))?;
        }
        Ok(())
    }

    fn flush_events(&mut self) -> Result<()> {
        if !self.events.is_empty() {
            let outcome = self.store.append_events(std::mem::take(&mut self.events))?;
            self.summary.events += outcome.accepted - outcome.duplicates;
            self.summary.duplicate_events += outcome.duplicates;
        }
        Ok(())
    }

    /// Write everything still buffered and return the totals.
    pub fn finish(mut self) -> Result<SinkSummary> {
        self.flush_catalog()?;
        self.flush_events()?;
        Ok(self.summary)
    }

    /// Totals written so far.
    pub fn summary(&self) -> SinkSummary {
        self.summary
    }
}

impl RecordSink for StoreSink<'_> {
    fn put(&mut self, record: Record) -> Result<()> {
        match record {
            Record::Item(item) => self.items.push(item),
            Record::User(user) => self.users.push(user),
            Record::Follow(follow) => self.follows.push(follow),
            Record::Event(event) => self.events.push(event),
        }
        if self.items.len() >= CATALOG_BATCH || self.users.len() >= CATALOG_BATCH || self.follows.len() >= CATALOG_BATCH
        {
            self.flush_catalog()?;
        }
        if self.events.len() >= EVENT_BATCH {
            self.flush_events()?;
        }
        Ok(())
    }
}
