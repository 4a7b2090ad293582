//! The deterministic synthetic shop generator behind `souk gen`.
//!
//! From a [`GenConfig`] (sizes and a seed) it builds a bilingual catalog, shoppers with
//! latent tastes, a homophilous social graph and a stream of shopping sessions, and streams
//! them as [`Record`]s into a [`RecordSink`]: all items, all users, all follows, then events
//! in non-decreasing timestamp order. The latent state is available as a [`GroundTruth`]
//! so that benchmarks can measure what a model learned.
//!
//! Owns: the vocabulary ([`vocab`]), the latent model and the funnel. Never does: IO
//! (callers pass sinks and writers), wall-clock time or global randomness — the same
//! config always yields byte-identical output, across runs and platforms.
//!
//! Memory: items and users are held as compact index structs (~40 and ~90 bytes); events
//! are produced one at a time, so 10M events need no more memory than 10k.

mod catalog;
mod sample;
mod sessions;
mod social;
mod tastes;
mod text;
mod truth;
pub mod vocab;

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::ids::{ItemId, UserId};
use crate::model::{EventType, Follow, Record, RecordSink, TimestampMs};

pub use tastes::PriceBand;
pub use truth::{BrandAffinity, GroundTruth, ItemTruth, UserTruth, GROUND_TRUTH_FORMAT_VERSION};

/// Start of the event window: 2026-01-01T00:00:00Z.
pub const EPOCH_MS: TimestampMs = 1_767_225_600_000;
/// Length of the event window: 90 days (delayed ratings may fall a little after it).
pub const EVENT_WINDOW_MS: i64 = 90 * 86_400_000;
/// Largest accepted catalog or user count; the latent state is held in memory.
pub const MAX_ENTITIES: usize = 20_000_000;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenConfig {
    pub items: usize,
    pub users: usize,
    /// Exact number of events to emit.
    pub events: usize,
    pub seed: u64,
}

impl GenConfig {
    /// Every problem at once.
    pub fn validate(&self) -> Result<(), Vec<ValidationError>> {
        let mut problems = Vec::new();
        for (field, value) in [("items", self.items), ("users", self.users)] {
            if !(1..=MAX_ENTITIES).contains(&value) {
                problems.push(ValidationError::new(
                    "invalid_config",
                    field,
                    format!("expected 1..={MAX_ENTITIES} {field}, found {value}"),
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// Which kind of record the generator is producing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GenPhase {
    Items,
    Users,
    Follows,
    Events,
}

/// Progress report, sent every [`PROGRESS_EVERY`] records and at the end of each phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenProgress {
    pub phase: GenPhase,
    /// Records of this phase emitted so far.
    pub done: u64,
    /// Records this phase will emit, where known in advance (not for follows).
    pub total: Option<u64>,
}

pub const PROGRESS_EVERY: u64 = 1 << 16;

/// Counts of what a run emitted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GenSummary {
    pub items: u64,
    pub users: u64,
    pub follows: u64,
    pub events: u64,
    /// Sessions started (the last few may have been cut by the event limit).
    pub sessions: u64,
    pub events_by_type: BTreeMap<EventType, u64>,
}

/// A generated shop: the latent state, from which [`Generator::run`] streams records.
pub struct Generator {
    config: GenConfig,
    catalog: catalog::Catalog,
    users: Vec<tastes::UserSpec>,
    users_by_activity: sample::AliasTable,
    users_by_dominant_category: Vec<Vec<u32>>,
}

/// Independent RNG streams per phase, so that e.g. the event stream does not change when
/// the follow graph's algorithm does.
const STREAM_ITEMS: u64 = 1;
const STREAM_USERS: u64 = 2;
const STREAM_FOLLOWS: u64 = 3;
const STREAM_EVENTS: u64 = 4;

fn rng_for(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

impl Generator {
    /// Draw the catalog and the shoppers' latent state. Cost: O(items + users) time and
    /// about 60 bytes per item and 100 per user.
    pub fn new(config: GenConfig) -> crate::Result<Self> {
        if let Err(mut problems) = config.validate() {
            return Err(problems.remove(0).into());
        }
        let catalog =
            catalog::Catalog::generate(config.items, &mut rng_for(config.seed, STREAM_ITEMS))
                .ok_or_else(|| {
                    crate::Error::Internal("generated catalog has no items".to_string())
                })?;
        let mut rng = rng_for(config.seed, STREAM_USERS);
        let users: Vec<tastes::UserSpec> = (0..config.users)
            .map(|_| tastes::generate_user(&mut rng))
            .collect();
        let activity: Vec<f64> = users.iter().map(|u| f64::from(u.activity)).collect();
        let users_by_activity = sample::AliasTable::new(&activity)
            .ok_or_else(|| crate::Error::Internal("no user has a positive activity".to_string()))?;
        let users_by_dominant_category = social::users_by_dominant_category(&users);
        Ok(Self {
            config,
            catalog,
            users,
            users_by_activity,
            users_by_dominant_category,
        })
    }

    pub fn config(&self) -> &GenConfig {
        &self.config
    }

    /// The latent state behind the generated records.
    pub fn ground_truth(&self) -> crate::Result<GroundTruth> {
        GroundTruth::build(self.config, &self.catalog, &self.users)
    }

    /// The latent utility of item `item` (index) for user `user` (index), before noise: what
    /// an ideal recommender would rank by. `None` for an index out of range.
    pub fn true_utility(&self, user: usize, item: usize) -> Option<f64> {
        let user = self.users.get(user)?;
        let item = u32::try_from(item)
            .ok()
            .filter(|&i| (i as usize) < self.catalog.items.len())?;
        Some(user.utility(&self.catalog, item))
    }

    /// Emit, in order: all items, all users, all follows, then exactly `config.events`
    /// events in non-decreasing timestamp order. Calling it twice emits the same records.
    pub fn run(
        &self,
        sink: &mut dyn RecordSink,
        progress: &mut dyn FnMut(GenProgress),
    ) -> crate::Result<GenSummary> {
        let mut summary = GenSummary::default();
        let mut report = |phase, done: u64, total: Option<u64>, last: bool| {
            if last || done % PROGRESS_EVERY == 0 {
                progress(GenProgress { phase, done, total });
            }
        };

        let item_count = self.catalog.items.len() as u64;
        for index in 0..self.catalog.items.len() as u32 {
            sink.put(Record::Item(self.catalog.render(index)?))?;
            summary.items += 1;
            report(GenPhase::Items, summary.items, Some(item_count), false);
        }
        report(GenPhase::Items, summary.items, Some(item_count), true);

        let user_count = self.users.len() as u64;
        for (index, user) in self.users.iter().enumerate() {
            sink.put(Record::User(tastes::render_user(index as u32, user)?))?;
            summary.users += 1;
            report(GenPhase::Users, summary.users, Some(user_count), false);
        }
        report(GenPhase::Users, summary.users, Some(user_count), true);

        let mut follows = 0u64;
        social::generate_follows(
            &self.users,
            &self.users_by_dominant_category,
            &self.users_by_activity,
            EPOCH_MS,
            &mut rng_for(self.config.seed, STREAM_FOLLOWS),
            &mut |edge| {
                sink.put(Record::Follow(Follow {
                    user: user_id(edge.user)?,
                    other: user_id(edge.other)?,
                    kind: edge.kind,
                    created_at: Some(edge.created_at),
                }))?;
                follows += 1;
                report(GenPhase::Follows, follows, None, false);
                Ok(())
            },
        )?;
        summary.follows = follows;
        report(GenPhase::Follows, summary.follows, None, true);

        let event_count = self.config.events as u64;
        let mut stream = sessions::EventStream::new(
            &self.catalog,
            &self.users,
            &self.users_by_activity,
            rng_for(self.config.seed, STREAM_EVENTS),
            event_count,
        );
        let renderer = sessions::Renderer::new(&self.catalog, self.config.seed);
        while let Some(pending) = stream.next_event() {
            let event = renderer.render(pending, summary.events)?;
            *summary.events_by_type.entry(event.event_type).or_default() += 1;
            sink.put(Record::Event(event))?;
            summary.events += 1;
            report(GenPhase::Events, summary.events, Some(event_count), false);
        }
        summary.sessions = stream.sessions;
        report(GenPhase::Events, summary.events, Some(event_count), true);
        Ok(summary)
    }
}

/// Append `n` in decimal, zero-padded to `min_width` digits, without going through
/// `fmt` (this runs several times per event).
fn push_decimal(buffer: &mut String, mut n: u64, min_width: usize) {
    let mut digits = [0u8; 20];
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        n /= 10;
        len += 1;
        if n == 0 {
            break;
        }
    }
    for _ in len..min_width {
        buffer.push('0');
    }
    for &digit in digits[..len].iter().rev() {
        buffer.push(char::from(digit));
    }
}

/// Id of item `index`: `i000042`. Zero-padded to six digits so that ids sort in catalog
/// order up to a million items.
fn item_id(index: u32) -> Result<ItemId, ValidationError> {
    let mut id = String::with_capacity(12);
    id.push('i');
    push_decimal(&mut id, u64::from(index), 6);
    ItemId::parse(id, "item")
}

/// Id of user `index`: `u000042`.
fn user_id(index: u32) -> Result<UserId, ValidationError> {
    let mut id = String::with_capacity(12);
    id.push('u');
    push_decimal(&mut id, u64::from(index), 6);
    UserId::parse(id, "user")
}
