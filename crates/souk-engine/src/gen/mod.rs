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
//! config always yields identical output from the same build (ChaCha8 streams seeded from
//! the config's seed; across platforms only as far as their `ln`/`exp` agree).
//!
//! Memory: items and users are held as compact index structs (~40 and ~80 bytes); events
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

/// A judged search query: see [`Generator::search_cases`].
#[derive(Debug, Clone, PartialEq)]
pub struct SearchCase {
    pub query: String,
    pub chinese: bool,
    /// (item index, grade 1–3); items not listed are irrelevant.
    pub grades: Vec<(u32, u8)>,
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
        let catalog = catalog::Catalog::generate(config.items, &mut rng_for(config.seed, STREAM_ITEMS))
            .ok_or_else(|| crate::Error::Internal("generated catalog has no items".to_string()))?;
        let mut rng = rng_for(config.seed, STREAM_USERS);
        let users: Vec<tastes::UserSpec> = (0..config.users).map(|_| tastes::generate_user(&mut rng)).collect();
        let activity: Vec<f64> = users.iter().map(|u| f64::from(u.activity)).collect();
        let users_by_activity = sample::AliasTable::new(&activity)
            .ok_or_else(|| crate::Error::Internal("no user has a positive activity".to_string()))?;
        let users_by_dominant_category = social::users_by_dominant_category(&users);
        Ok(Self { config, catalog, users, users_by_activity, users_by_dominant_category })
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
        let item = u32::try_from(item).ok().filter(|&i| (i as usize) < self.catalog.items.len())?;
        Some(user.utility(&self.catalog, item))
    }

    /// `count` search queries with graded relevance over the whole catalog, for judging
    /// search: a product type (drawn like items are) with a constraint taken from one of
    /// its items (colour, brand, material or none), rendered as a shopper types it in
    /// English or Chinese. Grades: 3 the product type with the constraint; 2 the product
    /// type without it; 1 another product of the same subcategory with the constraint.
    pub fn search_cases(&self, count: usize, chinese: bool, seed: u64) -> Vec<SearchCase> {
        use rand::Rng;
        let mut rng = rng_for(seed, 5);
        let catalog = &self.catalog;
        let mut cases = Vec::with_capacity(count);
        while cases.len() < count {
            let anchor = rng.gen_range(0..catalog.items.len()) as u32;
            let spec = catalog.items[anchor as usize];
            let constraint = text::QueryConstraint::from_item(&spec, rng.gen::<f64>());
            let query = text::QuerySpec { product_type: spec.product_type, constraint, chinese, variant: 0 };
            let rendered = text::render_query(catalog, &query);
            let wanted = catalog.product_type(anchor);
            let mut grades = Vec::new();
            for (index, item) in catalog.items.iter().enumerate() {
                let product_type = catalog.product_type(index as u32);
                let same_type = item.product_type == spec.product_type;
                let same_subcategory =
                    product_type.category == wanted.category && product_type.subcategory == wanted.subcategory;
                let satisfied = constraint.matches(item);
                let grade = match (same_type, satisfied) {
                    (true, true) => 3,
                    (true, false) => 2,
                    (false, true) if same_subcategory && constraint != text::QueryConstraint::None => 1,
                    _ => 0,
                };
                if grade > 0 {
                    grades.push((index as u32, grade));
                }
            }
            cases.push(SearchCase { query: rendered, chinese, grades });
        }
        cases
    }

    /// The id the generator gives item `index`.
    pub fn item_id_of(index: u32) -> crate::Result<ItemId> {
        Ok(item_id(index)?)
    }

    /// Emit, in order: all items, all users, all follows, then exactly `config.events`
    /// events in non-decreasing timestamp order. Calling it twice emits the same records.
    pub fn run(&self, sink: &mut dyn RecordSink, progress: &mut dyn FnMut(GenProgress)) -> crate::Result<GenSummary> {
        let mut summary = GenSummary::default();
        let mut report = |phase, done: u64, total: Option<u64>, last: bool| {
            // PROGRESS_EVERY is a power of two.
            if last || done & (PROGRESS_EVERY - 1) == 0 {
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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use xxhash_rust::xxh3::Xxh3;

    use super::*;
    use crate::input::{parse_record, record_to_json};
    use crate::model::{Event, Item};

    fn config(seed: u64) -> GenConfig {
        GenConfig { items: 300, users: 200, events: 6_000, seed }
    }

    fn generate(config: GenConfig) -> (Vec<Record>, GenSummary) {
        let mut records = Vec::new();
        let summary = Generator::new(config).unwrap().run(&mut records, &mut |_| {}).unwrap();
        (records, summary)
    }

    /// Hashes the JSONL form of every record, as `souk gen --out` would write it.
    struct HashSink(Xxh3, u64);

    impl RecordSink for HashSink {
        fn put(&mut self, record: Record) -> crate::Result<()> {
            self.0.update(record_to_json(&record).to_string().as_bytes());
            self.0.update(b"\n");
            self.1 += 1;
            Ok(())
        }
    }

    fn output_hash(generator: &Generator) -> (u64, u64) {
        let mut sink = HashSink(Xxh3::new(), 0);
        generator.run(&mut sink, &mut |_| {}).unwrap();
        (sink.0.digest(), sink.1)
    }

    #[test]
    fn same_seed_gives_identical_output_and_another_seed_does_not() {
        let first = output_hash(&Generator::new(config(7)).unwrap());
        let again = Generator::new(config(7)).unwrap();
        assert_eq!(first, output_hash(&again));
        assert_eq!(first, output_hash(&again), "running twice emits the same records");
        assert_ne!(first.0, output_hash(&Generator::new(config(8)).unwrap()).0);
        let a = Generator::new(config(7)).unwrap().ground_truth().unwrap();
        let b = Generator::new(config(7)).unwrap().ground_truth().unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn counts_are_exact_and_every_event_type_occurs() {
        let config = GenConfig { items: 400, users: 300, events: 20_000, seed: 1 };
        let (records, summary) = generate(config);
        let count = |f: fn(&Record) -> bool| records.iter().filter(|r| f(r)).count() as u64;
        assert_eq!(count(|r| matches!(r, Record::Item(_))), 400);
        assert_eq!(count(|r| matches!(r, Record::User(_))), 300);
        assert_eq!(count(|r| matches!(r, Record::Event(_))), 20_000);
        assert_eq!(count(|r| matches!(r, Record::Follow(_))), summary.follows);
        assert!(summary.follows > 300, "{} follows", summary.follows);
        assert_eq!((summary.items, summary.users, summary.events), (400, 300, 20_000));
        assert_eq!(summary.events_by_type.values().sum::<u64>(), 20_000);
        for event_type in EventType::ALL {
            assert!(summary.events_by_type.get(&event_type).is_some_and(|&n| n > 0), "no {event_type} events");
        }
        for events in [0, 1, 2, 3, 17] {
            let (records, summary) = generate(GenConfig { items: 5, users: 1, events, seed: 3 });
            assert_eq!(summary.events, events as u64);
            assert_eq!(records.iter().filter(|r| matches!(r, Record::Event(_))).count(), events);
        }
    }

    #[test]
    fn records_come_in_phase_order_and_events_in_time_order() {
        let (records, summary) = generate(config(2));
        let phase = |r: &Record| match r {
            Record::Item(_) => 0,
            Record::User(_) => 1,
            Record::Follow(_) => 2,
            Record::Event(_) => 3,
        };
        assert!(records.windows(2).all(|w| phase(&w[0]) <= phase(&w[1])));
        let events: Vec<&Event> = records
            .iter()
            .filter_map(|r| match r {
                Record::Event(e) => Some(e),
                _ => None,
            })
            .collect();
        assert!(events.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
        assert!(events[0].timestamp >= EPOCH_MS);
        let last = events[events.len() - 1].timestamp;
        // The window is filled: the last events are near its end, not weeks before it.
        assert!(last > EPOCH_MS + EVENT_WINDOW_MS - 5 * 86_400_000, "{last}");
        assert!(last < EPOCH_MS + EVENT_WINDOW_MS + 20 * 86_400_000, "{last}");
        let ids: HashSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids.len(), events.len());
        assert_eq!(events[41].id.as_str(), "gen-2-41");
        assert!(summary.sessions > 0);
    }

    #[test]
    fn every_record_is_valid_input_and_round_trips_through_jsonl() {
        let (records, _) = generate(config(3));
        let items: HashSet<String> = records
            .iter()
            .filter_map(|r| match r {
                Record::Item(item) => Some(item.id.to_string()),
                _ => None,
            })
            .collect();
        for record in &records {
            let json = record_to_json(record);
            let parsed = parse_record(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
            assert_eq!(&parsed, record, "{json}");
            if let Record::Event(event) = record {
                // References point at generated items.
                assert!(event.item.iter().chain(&event.items).all(|i| items.contains(i.as_str())));
                if event.event_type == EventType::Purchase {
                    assert!(event.quantity.is_some_and(|q| q >= 1) && event.price.is_some_and(|p| p >= 0.0));
                }
                if let EventType::Rating | EventType::Review = event.event_type {
                    assert!(event.value.is_some_and(|v| (1.0..=5.0).contains(&v)));
                }
                if event.event_type == EventType::View {
                    assert!(event.dwell_ms.is_some_and(|d| d > 0));
                }
            }
        }
    }

    fn has_han(s: &str) -> bool {
        s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
    }

    #[test]
    fn items_are_bilingual_and_priced_in_range() {
        let (records, _) = generate(GenConfig { items: 500, users: 1, events: 0, seed: 4 });
        let items: Vec<&Item> = records
            .iter()
            .filter_map(|r| match r {
                Record::Item(item) => Some(item),
                _ => None,
            })
            .collect();
        assert_eq!(items[42].id.as_str(), "i000042");
        let mut unavailable = 0;
        for item in &items {
            let zh = &item.translations["zh"];
            assert!(has_han(&zh.title), "{}", zh.title);
            assert!(zh.description.as_deref().is_some_and(has_han));
            let brand = item.brand.as_deref().unwrap();
            assert!(item.title.starts_with(brand), "{}", item.title);
            assert!(item.title.ends_with(item.category[2].as_str()), "{}", item.title);
            assert_eq!(item.category.len(), 3);
            let price = item.price.unwrap();
            assert!(price.is_finite() && price > 0.0 && (price * 100.0 - (price * 100.0).round()).abs() < 1e-6);
            assert_eq!(item.currency.as_deref(), Some("USD"));
            if let Some(color) = item.attributes.get("color").and_then(|c| c.as_str()) {
                assert!(item.title.contains(color));
                let zh_color = vocab::COLORS.iter().find(|c| c.0.en == color).unwrap().0.zh;
                assert!(zh.title.contains(zh_color), "{} / {}", item.title, zh.title);
            }
            assert!(item.created_at.is_some_and(|t| t < EPOCH_MS));
            unavailable += usize::from(!item.available);
        }
        assert!((3..=40).contains(&unavailable), "{unavailable} of 500 unavailable");
        let categories: HashSet<&str> = items.iter().map(|i| i.category[0].as_str()).collect();
        assert_eq!(categories.len(), vocab::CATEGORIES.len());
    }

    #[test]
    fn searches_have_english_and_chinese_queries() {
        let (records, _) = generate(config(5));
        let queries: Vec<&str> = records
            .iter()
            .filter_map(|r| match r {
                Record::Event(e) if e.event_type == EventType::Search => e.query.as_deref(),
                _ => None,
            })
            .collect();
        assert!(queries.len() > 100);
        assert!(queries.iter().any(|q| has_han(q)));
        assert!(queries.iter().any(|q| q.is_ascii()));
        assert!(queries.iter().all(|q| !q.trim().is_empty() && q.trim() == *q));
    }

    #[test]
    fn invalid_configs_are_refused_with_every_problem() {
        let problems = GenConfig { items: 0, users: 0, events: 10, seed: 0 }.validate().unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["items", "users"]);
        let error = Generator::new(GenConfig { items: 1, users: 0, events: 0, seed: 0 }).err().unwrap();
        assert_eq!(error.kind(), crate::ErrorKind::BadInput);
        assert!(error.to_string().contains("users"), "{error}");
    }

    #[test]
    fn ground_truth_is_versioned_and_round_trips() {
        let generator = Generator::new(config(6)).unwrap();
        let truth = generator.ground_truth().unwrap();
        assert_eq!(truth.format_version, GROUND_TRUTH_FORMAT_VERSION);
        assert_eq!(truth.config, config(6));
        assert_eq!((truth.users.len(), truth.items.len()), (200, 300));
        let top = truth.items.iter().find(|i| i.popularity_rank == 0).unwrap();
        assert_eq!(top.popularity, 1.0);
        for user in &truth.users {
            let total: f64 = user.category_weights.values().sum();
            assert!((total - 1.0).abs() < 1e-3);
            assert!(!user.favorite_brands.is_empty());
        }
        let mut json = Vec::new();
        truth.write_json(&mut json).unwrap();
        let path = std::path::Path::new("ground_truth.json");
        assert_eq!(GroundTruth::read_json(json.as_slice(), path).unwrap(), truth);
        let mut value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        value["format_version"] = 99.into();
        let error = GroundTruth::read_json(value.to_string().as_bytes(), path).unwrap_err();
        assert!(matches!(error, crate::Error::FormatVersion { found: 99, .. }), "{error}");
        assert!(generator.true_utility(0, 0).is_some_and(f64::is_finite));
        assert_eq!(generator.true_utility(200, 0), None);
        assert_eq!(generator.true_utility(0, 300), None);
    }

    #[test]
    fn progress_is_reported_for_every_phase() {
        let mut phases = Vec::new();
        Generator::new(config(1))
            .unwrap()
            .run(&mut Vec::new(), &mut |p| {
                if phases.last() != Some(&p.phase) {
                    phases.push(p.phase);
                }
            })
            .unwrap();
        assert_eq!(phases, [GenPhase::Items, GenPhase::Users, GenPhase::Follows, GenPhase::Events]);
    }
}
