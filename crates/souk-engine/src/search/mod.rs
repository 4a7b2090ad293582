//! Search: keyword (BM25 with Chinese segmentation, stemming, typo tolerance and
//! synonyms), semantic (vectors from an embedder or the shop's own), hybrid fusion, facets,
//! filters, sorting and a personal touch.
//!
//! The keyword index is tantivy in `DIR/search/keyword`, fed with terms from
//! [`analyze::Analyzer`] (pre-tokenised, so indexing and querying share one analysis). Item
//! facts for filters and facets live in memory ([`facts`]), keyed by a slot number stored in
//! each document. Vectors live in [`vectors`]. The index is derived data: on open it is
//! reconciled with the catalog (items added, changed or deleted while it was closed are
//! brought up to date) and rebuilt from scratch when missing, damaged or written by another
//! format or dictionary.
//!
//! Writes are applied at once and become visible at the next commit, which a background
//! thread makes every `commit_interval_ms` (default 500 ms) when something changed.

pub mod analyze;
pub mod facts;
pub mod query;
pub mod relevance;
pub mod vectors;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::query::{AllQuery, Query};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, FAST, INDEXED, STORED, STRING,
};
use tantivy::tokenizer::{PreTokenizedString, Token};
use tantivy::{
    DocId, Index, IndexReader, IndexWriter, ReloadPolicy, Score, SegmentOrdinal, SegmentReader, TantivyDocument, Term,
};

use self::analyze::{Analyzer, QueryUnit};
use self::facts::{count_facets, Except, FacetNames, FilterKeys};
pub use self::facts::{Affinity, FacetCount, Facets, Facts, Filters, PriceBucket};
use self::query::{Synonyms, TextFields};
use self::vectors::VectorSpace;
use crate::error::{Error, Result, ValidationError};
use crate::fusion;
use crate::model::Item;
use crate::rank::rerank::{rerank, Candidate, Effect, Rules};
use crate::store::Storage;

/// Version of the on-disk search index; a different version is rebuilt from the catalog.
pub const SEARCH_FORMAT_VERSION: u32 = 1;
/// The vector space of the configured text embedder.
pub const TEXT_SPACE: &str = "text";

/// Search settings (`[search]` in the configuration file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    /// How often pending catalog changes are committed (made visible), in milliseconds.
    pub commit_interval_ms: u64,
    /// A synonyms file (`tv, television` or `cell phone => smartphone`, one rule a line);
    /// empty for none.
    pub synonyms: String,
    /// A file of extra jieba dictionary words (`word [frequency]` a line): brands, product
    /// words; empty for none. Changing it rebuilds the index.
    pub user_dictionary: String,
    /// `k` of reciprocal-rank fusion.
    pub rrf_k: f32,
    /// Keyword share in weighted fusion (0 = semantic only, 1 = keyword only).
    pub hybrid_alpha: f32,
    /// Nearest neighbours taken from the vector index per search.
    pub semantic_candidates: usize,
    /// Weight of the shopper's category and brand affinity when re-ranking.
    pub personal_weight: f32,
    /// How many of the best results the personal touch may reorder.
    pub rerank_window: usize,
    /// Query embeddings kept for repeated queries (least recently used dropped first);
    /// 0 embeds every query.
    pub query_cache: usize,
}

impl Default for SearchConfig {
    fn default() -> Self {
        Self {
            commit_interval_ms: 500,
            synonyms: String::new(),
            user_dictionary: String::new(),
            rrf_k: 60.0,
            hybrid_alpha: 0.5,
            semantic_candidates: 200,
            personal_weight: 0.3,
            rerank_window: 100,
            query_cache: 10_000,
        }
    }
}

impl SearchConfig {
    /// Problems with this configuration, each with the offending key.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if !(10..=60_000).contains(&self.commit_interval_ms) {
            problems.push((
                "search.commit_interval_ms".into(),
                format!("expected 10..=60000, found {}", self.commit_interval_ms),
            ));
        }
        if !(self.rrf_k.is_finite() && self.rrf_k > 0.0) {
            problems.push(("search.rrf_k".into(), format!("expected a positive number, found {}", self.rrf_k)));
        }
        if !(0.0..=1.0).contains(&self.hybrid_alpha) {
            problems.push(("search.hybrid_alpha".into(), format!("expected 0..=1, found {}", self.hybrid_alpha)));
        }
        if !(1..=10_000).contains(&self.semantic_candidates) {
            problems.push((
                "search.semantic_candidates".into(),
                format!("expected 1..=10000, found {}", self.semantic_candidates),
            ));
        }
        if !(self.personal_weight.is_finite() && self.personal_weight >= 0.0) {
            problems.push((
                "search.personal_weight".into(),
                format!("expected a non-negative number, found {}", self.personal_weight),
            ));
        }
        for (key, path) in [("search.synonyms", &self.synonyms), ("search.user_dictionary", &self.user_dictionary)] {
            if !path.is_empty() && !Path::new(path).is_file() {
                problems.push((key.into(), format!("no such file: {path}")));
            }
        }
        problems
    }
}

/// Which matches a search uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchMode {
    Keyword,
    Semantic,
    Hybrid,
}

/// How keyword and semantic rankings are combined.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "method")]
pub enum Fusion {
    /// Reciprocal-rank fusion: Σ 1 / (k + rank).
    Rrf { k: f32 },
    /// alpha × BM25 / max BM25 + (1 − alpha) × min-max normalised cosine.
    Weighted { alpha: f32 },
}

/// Result order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    Relevance,
    PriceAsc,
    PriceDesc,
    Newest,
    Popularity,
}

impl std::str::FromStr for Sort {
    type Err = ();

    fn from_str(s: &str) -> std::result::Result<Self, ()> {
        match s {
            "relevance" => Ok(Sort::Relevance),
            "price_asc" => Ok(Sort::PriceAsc),
            "price_desc" => Ok(Sort::PriceDesc),
            "newest" => Ok(Sort::Newest),
            "popularity" => Ok(Sort::Popularity),
            _ => Err(()),
        }
    }
}

/// A search.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub query: String,
    pub mode: SearchMode,
    pub fusion: Fusion,
    /// The query embedded by the caller (semantic and hybrid), unit length or not.
    pub query_vector: Option<Vec<f32>>,
    /// The vector space to search ([`TEXT_SPACE`] or a user-supplied vector name).
    pub space: String,
    pub filters: Filters,
    pub sort: Sort,
    pub offset: usize,
    pub limit: usize,
    pub facets: bool,
    pub explain: bool,
    /// The shopper's affinities, for the personal touch.
    pub affinity: Option<Affinity>,
    /// Re-ranking rules (configured merged with the request's), already validated.
    pub rules: Rules,
}

impl SearchRequest {
    pub fn keyword(query: impl Into<String>) -> Self {
        Self {
            query: query.into(),
            mode: SearchMode::Keyword,
            fusion: Fusion::Rrf { k: 60.0 },
            query_vector: None,
            space: TEXT_SPACE.to_string(),
            filters: Filters::default(),
            sort: Sort::Relevance,
            offset: 0,
            limit: 10,
            facets: false,
            explain: false,
            affinity: None,
            rules: Rules::default(),
        }
    }
}

/// Per-stage scores of one result.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Explain {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bm25: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyword_rank: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector_rank: Option<usize>,
    pub fusion: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub personal: Option<f32>,
    /// The query's words found in the result's title, brand, category or attributes (as
    /// typed, normalised); matches through the description, synonyms or typo tolerance are
    /// not listed here (the response's `expanded` and `fuzzy` name those words).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub matched: Vec<String>,
    /// The learned ranker's score, when a [`RankingStage`] ordered the result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ranker: Option<f32>,
    /// The ranker's largest feature contributions to that score (with `explain`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub contributions: Vec<(String, f64)>,
    pub score: f32,
}

/// A learned ranking stage between recall (keyword, vector, fusion, personal touch) and the
/// business rules: it sees the best results in relevance order and may score them.
pub trait RankingStage {
    /// Scores (higher first) for `candidates` — id and per-stage scores, best first — and,
    /// per candidate, the contributions to report; `None` keeps the order as it is (a stage
    /// that only records what it saw).
    fn score(&mut self, candidates: &[(&str, &Explain)]) -> Result<Option<Vec<StageScore>>>;
}

/// A [`RankingStage`]'s score of one candidate and its largest feature contributions.
pub type StageScore = (f32, Vec<(String, f64)>);

/// How many of the best results a [`RankingStage`] sees at least (also at least the page and
/// the rules' window, `search.rerank_window`).
pub const RANKING_WINDOW: usize = 100;

/// One result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    pub id: String,
    pub score: f32,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub category: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<Explain>,
    /// What re-ranking rules did to the item; empty when none applied.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub effects: Vec<Effect>,
}

/// The answer to a search.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchResponse {
    /// Matching items after filters.
    pub total: usize,
    pub hits: Vec<Hit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facets: Option<Facets>,
    /// The mode actually used (hybrid falls back to keyword without a query vector).
    pub mode: SearchMode,
    /// No item matched every word, so items matching some words are shown.
    pub relaxed: bool,
    /// Words left out of matching (function words, words no item contains).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<String>,
    /// Words matched with typo tolerance.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fuzzy: Vec<String>,
    /// Words expanded with synonyms.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expanded: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
struct Fields {
    id: Field,
    slot: Field,
    hash: Field,
    text: TextFields,
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let id = builder.add_text_field("id", STRING | STORED);
    let slot = builder.add_u64_field("slot", FAST | STORED);
    let hash = builder.add_u64_field("hash", STORED | INDEXED);
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default().set_tokenizer("raw").set_index_option(IndexRecordOption::WithFreqs),
    );
    let text = TextFields {
        title: builder.add_text_field("title", text.clone()),
        brand: builder.add_text_field("brand", text.clone()),
        category: builder.add_text_field("category", text.clone()),
        attributes: builder.add_text_field("attributes", text.clone()),
        description: builder.add_text_field("description", text.clone()),
        grams: builder.add_text_field("grams", text),
    };
    (builder.build(), Fields { id, slot, hash, text })
}

fn tantivy_error(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("search index: {e}"))
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Meta {
    format_version: u32,
    /// Hash of the user dictionary: other words mean other terms, so a rebuild.
    dictionary: u64,
}

#[derive(Default)]
struct FactsTable {
    slots: Vec<Option<Arc<Facts>>>,
    by_id: HashMap<Arc<str>, u32>,
    names: FacetNames,
}

impl FactsTable {
    fn get(&self, slot: u32) -> Option<&Arc<Facts>> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }

    fn by_id(&self, id: &str) -> Option<&Arc<Facts>> {
        self.by_id.get(id).and_then(|&slot| self.get(slot))
    }
}

/// Embeddings of recent queries, so a repeated query (shoppers repeat the head queries
/// all day) costs a lookup instead of a run of the language model. Least recently used
/// entries go first; keyed by the model and the exact query text.
pub struct QueryVectorCache {
    capacity: usize,
    inner: Mutex<QueryCacheInner>,
}

/// (model id, query text).
type QueryKey = (String, String);

#[derive(Default)]
struct QueryCacheInner {
    /// Key → (vector, last use).
    entries: HashMap<QueryKey, (Arc<Vec<f32>>, u64)>,
    /// Last use → key, oldest first.
    order: BTreeMap<u64, QueryKey>,
    clock: u64,
}

impl QueryVectorCache {
    pub fn new(capacity: usize) -> Self {
        Self { capacity, inner: Mutex::new(QueryCacheInner::default()) }
    }

    /// The cached vector of `query` under `model`, marked as just used.
    pub fn get(&self, model: &str, query: &str) -> Option<Arc<Vec<f32>>> {
        if self.capacity == 0 {
            return None;
        }
        let mut inner = self.inner.lock();
        inner.clock += 1;
        let now = inner.clock;
        let key = (model.to_string(), query.to_string());
        let (vector, used) = inner.entries.get_mut(&key)?;
        let (vector, previous) = (vector.clone(), std::mem::replace(used, now));
        inner.order.remove(&previous);
        inner.order.insert(now, key);
        Some(vector)
    }

    pub fn put(&self, model: &str, query: &str, vector: Arc<Vec<f32>>) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.inner.lock();
        inner.clock += 1;
        let now = inner.clock;
        let key = (model.to_string(), query.to_string());
        if let Some((_, previous)) = inner.entries.insert(key.clone(), (vector, now)) {
            inner.order.remove(&previous);
        }
        inner.order.insert(now, key);
        while inner.entries.len() > self.capacity {
            let Some((_, oldest)) = inner.order.pop_first() else { break };
            inner.entries.remove(&oldest);
        }
    }

    pub fn len(&self) -> usize {
        self.inner.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Counts of an index, for stats and logs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SearchStats {
    pub items: usize,
    pub vector_spaces: BTreeMap<String, usize>,
    pub synonyms: usize,
}

/// See the module docs.
pub struct SearchIndex {
    dir: PathBuf,
    config: SearchConfig,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    fields: Fields,
    analyzer: Analyzer,
    synonyms: Synonyms,
    facts: RwLock<FactsTable>,
    /// Slots of replaced or deleted versions, freed after the next commit.
    retired: Mutex<Vec<u32>>,
    dirty: AtomicBool,
    spaces: RwLock<BTreeMap<String, Arc<VectorSpace>>>,
    popularity: RwLock<Arc<HashMap<Arc<str>, f32>>>,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex").field("dir", &self.dir).finish_non_exhaustive()
    }
}

/// Dictionary words with optional frequencies.
type Words = Vec<(String, Option<usize>)>;
/// (item id, content hash, vector) to store in a space.
type VectorEntry<'a> = (&'a str, u64, &'a [f32]);

fn read_dictionary(path: Option<&Path>) -> Result<(Words, u64)> {
    let Some(path) = path else { return Ok((Vec::new(), 0)) };
    let text = fs_err::read_to_string(path)?;
    let mut words = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split_whitespace();
        let word = parts.next().unwrap_or_default().to_string();
        let freq = match parts.next() {
            Some(f) => Some(f.parse::<usize>().map_err(|_| Error::Parse {
                path: path.to_path_buf(),
                line: number as u64 + 1,
                message: format!("expected `word [frequency]`, found {line:?}"),
            })?),
            None => None,
        };
        words.push((word, freq));
    }
    Ok((words, xxhash_rust::xxh3::xxh3_64(text.as_bytes())))
}

struct DocRef {
    slot: u32,
    hash: u64,
}

/// Collects every match as (slot, score).
struct MatchCollector;

struct SegmentMatches {
    slots: Column<u64>,
    out: Vec<(u32, f32)>,
}

impl Collector for MatchCollector {
    type Fruit = Vec<(u32, f32)>;
    type Child = SegmentMatches;

    fn for_segment(&self, _: SegmentOrdinal, segment: &SegmentReader) -> tantivy::Result<SegmentMatches> {
        Ok(SegmentMatches { slots: segment.fast_fields().u64("slot")?, out: Vec::new() })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, fruits: Vec<Vec<(u32, f32)>>) -> tantivy::Result<Vec<(u32, f32)>> {
        Ok(fruits.concat())
    }
}

impl SegmentCollector for SegmentMatches {
    type Fruit = Vec<(u32, f32)>;

    fn collect(&mut self, doc: DocId, score: Score) {
        if let Some(slot) = self.slots.first(doc) {
            self.out.push((slot as u32, score));
        }
    }

    fn harvest(self) -> Vec<(u32, f32)> {
        self.out
    }
}

fn pre_tokenized(terms: Vec<String>) -> PreTokenizedString {
    let tokens = terms
        .into_iter()
        .enumerate()
        .map(|(position, text)| Token { offset_from: 0, offset_to: 0, position, text, position_length: 1 })
        .collect();
    PreTokenizedString { text: String::new(), tokens }
}

/// The text the text embedder sees for an item: title, brand, category path, description,
/// and with `translations` the translated titles too.
pub fn embedding_text(item: &Item, translations: bool) -> String {
    let mut text = item.title.clone();
    if let Some(brand) = &item.brand {
        text.push_str(". ");
        text.push_str(brand);
    }
    if !item.category.is_empty() {
        text.push_str(". ");
        text.push_str(&item.category.join(" > "));
    }
    if translations {
        for t in item.translations.values() {
            text.push_str(". ");
            text.push_str(&t.title);
        }
    }
    if let Some(description) = &item.description {
        text.push_str(". ");
        text.push_str(description);
    }
    text
}

/// A text embedder as search sees it: the server and the CLI plug a real model in.
pub trait TextEmbedder: Send + Sync {
    /// A stable name of the model (vectors of another model are recomputed).
    fn id(&self) -> &str;
    fn dim(&self) -> usize;
    /// Whether the model reads Chinese (then translated titles are embedded too).
    fn multilingual(&self) -> bool;
    /// Embed texts; `query` selects the query form for models with query/passage prefixes.
    fn embed(&self, texts: &[&str], query: bool) -> Result<Vec<Vec<f32>>>;
}

/// Whether `embedder` can say anything about `query`: an English-only model is not asked
/// about Chinese (or other CJK) queries, which then use keywords alone.
pub fn embedder_reads(embedder: &dyn TextEmbedder, query: &str) -> bool {
    !query.trim().is_empty() && (embedder.multilingual() || !query.chars().any(analyze::is_cjk))
}

/// The content hash of an embedded text: model and text (another model means new vectors).
fn text_hash(embedder: &dyn TextEmbedder, text: &str) -> u64 {
    let mut bytes = Vec::with_capacity(embedder.id().len() + 1 + text.len());
    bytes.extend_from_slice(embedder.id().as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(text.as_bytes());
    xxhash_rust::xxh3::xxh3_64(&bytes)
}

/// Progress of [`SearchIndex::embed_missing`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EmbedProgress {
    pub done: usize,
    pub total: usize,
}

impl SearchIndex {
    /// Open (or build) the index in `dir` (normally `DATA_DIR/search`) and reconcile it
    /// with the catalog of `store`.
    pub fn open(dir: &Path, config: SearchConfig, store: &dyn Storage) -> Result<Arc<Self>> {
        let started = std::time::Instant::now();
        let optional = |path: &str| (!path.is_empty()).then(|| PathBuf::from(path));
        let (words, dictionary) = read_dictionary(optional(&config.user_dictionary).as_deref())?;
        let analyzer = Analyzer::new(words.iter().map(|(w, f)| (w.as_str(), *f)));
        let synonyms = match optional(&config.synonyms) {
            Some(path) => Synonyms::load(&path)?,
            None => Synonyms::default(),
        };
        let keyword_dir = dir.join("keyword");
        let meta_path = dir.join("META.json");
        let expected = Meta { format_version: SEARCH_FORMAT_VERSION, dictionary };
        let found: Option<Meta> = std::fs::read(&meta_path).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let (schema, fields) = schema();
        let mut index = None;
        if found.as_ref() == Some(&expected) {
            match Index::open_in_dir(&keyword_dir) {
                Ok(i) if i.schema() == schema => index = Some(i),
                Ok(_) => tracing::warn!("search index has another schema; rebuilding"),
                Err(e) => tracing::warn!(error = %e, "search index unreadable; rebuilding"),
            }
        } else if found.is_some() || keyword_dir.exists() {
            tracing::info!("search index written by another format or dictionary; rebuilding");
        }
        let index = match index {
            Some(index) => index,
            None => {
                if keyword_dir.exists() {
                    fs_err::remove_dir_all(&keyword_dir)?;
                }
                fs_err::create_dir_all(&keyword_dir)?;
                let index = Index::create_in_dir(&keyword_dir, schema).map_err(tantivy_error)?;
                let temporary = dir.join("META.json.tmp");
                fs_err::write(&temporary, serde_json::to_vec(&expected).expect("meta serialises"))?;
                fs_err::rename(&temporary, &meta_path)?;
                index
            }
        };
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4);
        let writer: IndexWriter =
            index.writer_with_num_threads(threads, 64_000_000 * threads).map_err(tantivy_error)?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into().map_err(tantivy_error)?;

        // What the index holds now.
        let mut indexed: HashMap<String, DocRef> = HashMap::new();
        {
            let searcher = reader.searcher();
            for segment in searcher.segment_readers() {
                let store = segment.get_store_reader(64).map_err(tantivy_error)?;
                for doc in segment.doc_ids_alive() {
                    let document: TantivyDocument = store.get(doc).map_err(tantivy_error)?;
                    let id = document.get_first(fields.id).and_then(|v| v.as_str()).unwrap_or_default().to_string();
                    let slot = document.get_first(fields.slot).and_then(|v| v.as_u64()).unwrap_or(u64::MAX);
                    let hash = document.get_first(fields.hash).and_then(|v| v.as_u64()).unwrap_or(0);
                    indexed.insert(id, DocRef { slot: slot as u32, hash });
                }
            }
        }
        let next_slot = indexed.values().map(|d| d.slot + 1).max().unwrap_or(0);
        let this = Self {
            dir: dir.to_path_buf(),
            config,
            reader,
            writer: Mutex::new(writer),
            fields,
            analyzer,
            synonyms,
            facts: RwLock::new(FactsTable {
                slots: vec![None; next_slot as usize],
                by_id: HashMap::new(),
                names: FacetNames::default(),
            }),
            retired: Mutex::new(Vec::new()),
            dirty: AtomicBool::new(false),
            spaces: RwLock::new(BTreeMap::new()),
            popularity: RwLock::new(Arc::new(HashMap::new())),
        };
        this.open_spaces()?;

        // Reconcile with the catalog: keep unchanged documents, reindex the rest.
        let mut changed = Vec::new();
        let mut seen = 0usize;
        let mut kept = 0usize;
        store.scan_items(&mut |item| {
            seen += 1;
            let facts = Facts::of(&item);
            match indexed.remove(item.id.as_str()) {
                Some(doc) if doc.hash == facts.hash => {
                    kept += 1;
                    let mut table = this.facts.write();
                    let id = facts.id.clone();
                    let mut facts = facts;
                    table.names.assign(&mut facts);
                    table.slots[doc.slot as usize] = Some(Arc::new(facts));
                    table.by_id.insert(id, doc.slot);
                }
                _ => changed.push(item),
            }
            if changed.len() >= 10_000 {
                this.index_items(std::mem::take(&mut changed))?;
            }
            Ok(())
        })?;
        this.index_items(changed)?;
        // Documents of items no longer in the catalog.
        {
            let writer = this.writer.lock();
            for id in indexed.keys() {
                writer.delete_term(Term::from_field_text(fields.id, id));
                this.dirty.store(true, Ordering::Release);
            }
        }
        let gone: Vec<&str> = indexed.keys().map(String::as_str).collect();
        for space in this.spaces.read().values() {
            space.delete(&gone)?;
        }
        this.commit()?;
        tracing::info!(
            items = seen,
            unchanged = kept,
            removed = indexed.len(),
            seconds = started.elapsed().as_secs_f64(),
            "search index ready"
        );
        let this = Arc::new(this);
        Self::spawn_committer(Arc::downgrade(&this), Duration::from_millis(this.config.commit_interval_ms));
        Ok(this)
    }

    fn open_spaces(&self) -> Result<()> {
        let dir = self.dir.join("vectors");
        fs_err::create_dir_all(&dir)?;
        let mut spaces = self.spaces.write();
        for entry in fs_err::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) == Some("vec") {
                let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
                let space = VectorSpace::open(&name, &path, 0)?;
                spaces.insert(name, Arc::new(space));
            }
        }
        Ok(())
    }

    fn spawn_committer(index: Weak<Self>, every: Duration) {
        std::thread::Builder::new()
            .name("search-commit".into())
            .spawn(move || loop {
                std::thread::sleep(every);
                let Some(index) = index.upgrade() else { return };
                if index.dirty.load(Ordering::Acquire) {
                    if let Err(e) = index.commit() {
                        tracing::error!(error = %e, "search index commit failed");
                    }
                }
                for space in index.spaces.read().values() {
                    space.maintain();
                }
            })
            .expect("spawning the search commit thread");
    }

    /// The vector space `name`, created with `dim` dimensions when absent.
    pub fn space(&self, name: &str, dim: usize) -> Result<Arc<VectorSpace>> {
        if let Some(space) = self.spaces.read().get(name) {
            if space.dim() != dim {
                return Err(Error::Invalid(ValidationError::new(
                    "invalid_vector",
                    format!("vectors.{name}"),
                    format!("expected {} dimensions, found {dim}", space.dim()),
                )));
            }
            return Ok(space.clone());
        }
        let valid = !name.is_empty()
            && name.len() <= 64
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err(Error::Invalid(ValidationError::new(
                "invalid_vector",
                format!("vectors.{name}"),
                "vector names are 1–64 characters of letters, digits, '_' and '-'",
            )));
        }
        let mut spaces = self.spaces.write();
        let path = self.dir.join("vectors").join(format!("{name}.vec"));
        let space = Arc::new(VectorSpace::open(name, &path, dim)?);
        spaces.insert(name.to_string(), space.clone());
        Ok(space)
    }

    /// A vector space if it exists.
    pub fn existing_space(&self, name: &str) -> Option<Arc<VectorSpace>> {
        self.spaces.read().get(name).cloned()
    }

    /// Check items' own vectors against the spaces they go to, before storing the items.
    pub fn check_vectors(&self, items: &[Item]) -> Result<()> {
        let spaces = self.spaces.read();
        for (index, item) in items.iter().enumerate() {
            for (name, vector) in &item.vectors {
                if name == TEXT_SPACE {
                    return Err(Error::Invalid(ValidationError::new(
                        "invalid_vector",
                        format!("items[{index}].vectors.{name}"),
                        "the name `text` is reserved for the text embedder",
                    )));
                }
                if let Some(space) = spaces.get(name) {
                    if space.dim() != vector.len() {
                        return Err(Error::Invalid(ValidationError::new(
                            "invalid_vector",
                            format!("items[{index}].vectors.{name}"),
                            format!("expected {} dimensions, found {}", space.dim(), vector.len()),
                        )));
                    }
                }
                if vector.iter().all(|x| *x == 0.0) {
                    return Err(Error::Invalid(ValidationError::new(
                        "invalid_vector",
                        format!("items[{index}].vectors.{name}"),
                        "a vector must not be all zeros",
                    )));
                }
            }
        }
        Ok(())
    }

    fn document(&self, item: &Item, slot: u32, hash: u64) -> TantivyDocument {
        let f = &self.fields;
        let a = &self.analyzer;
        let mut grams = Vec::new();
        let mut analyze = |texts: &[&str]| {
            let mut terms = Vec::new();
            for text in texts {
                a.index_terms(text, &mut terms, &mut grams);
            }
            pre_tokenized(terms)
        };
        let mut titles = vec![item.title.as_str()];
        titles.extend(item.translations.values().map(|t| t.title.as_str()));
        let mut descriptions: Vec<&str> = item.description.iter().map(String::as_str).collect();
        descriptions.extend(item.translations.values().filter_map(|t| t.description.as_deref()));
        let mut attribute_texts: Vec<String> = Vec::new();
        for value in item.attributes.values() {
            let mut values = Vec::new();
            facts::attribute_values(value, false, &mut values);
            attribute_texts.extend(values);
        }
        attribute_texts.extend(item.tags.iter().cloned());
        let attribute_refs: Vec<&str> = attribute_texts.iter().map(String::as_str).collect();
        let category: Vec<&str> = item.category.iter().map(String::as_str).collect();
        let brand: Vec<&str> = item.brand.iter().map(String::as_str).collect();

        let mut doc = TantivyDocument::default();
        doc.add_text(f.id, item.id.as_str());
        doc.add_u64(f.slot, u64::from(slot));
        doc.add_u64(f.hash, hash);
        doc.add_pre_tokenized_text(f.text.title, analyze(&titles));
        doc.add_pre_tokenized_text(f.text.brand, analyze(&brand));
        doc.add_pre_tokenized_text(f.text.category, analyze(&category));
        doc.add_pre_tokenized_text(f.text.attributes, analyze(&attribute_refs));
        doc.add_pre_tokenized_text(f.text.description, analyze(&descriptions));
        doc.add_pre_tokenized_text(f.text.grams, pre_tokenized(grams));
        doc
    }

    /// Index new or changed items (visible after the next commit). Unchanged items are
    /// skipped; items' own vectors go to their spaces.
    pub fn index_items(&self, items: Vec<Item>) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let prepared: Vec<(Item, Facts)> = {
            let table = self.facts.read();
            items
                .into_iter()
                .map(|item| {
                    let facts = Facts::of(&item);
                    (item, facts)
                })
                .filter(|(_, facts)| table.by_id(&facts.id).is_none_or(|old| old.hash != facts.hash))
                .collect()
        };
        if prepared.is_empty() {
            return Ok(());
        }
        // Analyse in parallel, then add in order.
        use rayon::prelude::*;
        let first_slot = {
            let mut table = self.facts.write();
            let first = table.slots.len();
            table.slots.resize(first + prepared.len(), None);
            first as u32
        };
        let documents: Vec<TantivyDocument> = prepared
            .par_iter()
            .enumerate()
            .map(|(n, (item, facts))| self.document(item, first_slot + n as u32, facts.hash))
            .collect();
        {
            let writer = self.writer.lock();
            let mut table = self.facts.write();
            let mut retired = self.retired.lock();
            for ((n, (item, facts)), document) in prepared.iter().enumerate().zip(documents) {
                writer.delete_term(Term::from_field_text(self.fields.id, item.id.as_str()));
                writer.add_document(document).map_err(tantivy_error)?;
                let slot = first_slot + n as u32;
                let id = facts.id.clone();
                let mut facts = facts.clone();
                table.names.assign(&mut facts);
                table.slots[slot as usize] = Some(Arc::new(facts));
                if let Some(old) = table.by_id.insert(id, slot) {
                    retired.push(old);
                }
            }
            self.dirty.store(true, Ordering::Release);
        }
        // Items' own vectors.
        let mut by_space: BTreeMap<&str, Vec<VectorEntry<'_>>> = BTreeMap::new();
        for (item, facts) in &prepared {
            for (name, vector) in &item.vectors {
                by_space.entry(name).or_default().push((item.id.as_str(), facts.hash, vector));
            }
        }
        for (name, entries) in by_space {
            let space = self.space(name, entries[0].2.len())?;
            space.put(&entries)?;
        }
        Ok(())
    }

    /// Remove items (visible after the next commit).
    pub fn delete_items(&self, ids: &[&str]) -> Result<()> {
        {
            let writer = self.writer.lock();
            let mut table = self.facts.write();
            let mut retired = self.retired.lock();
            for id in ids {
                writer.delete_term(Term::from_field_text(self.fields.id, id));
                if let Some(slot) = table.by_id.remove(*id) {
                    retired.push(slot);
                }
            }
            self.dirty.store(true, Ordering::Release);
        }
        for space in self.spaces.read().values() {
            space.delete(ids)?;
        }
        Ok(())
    }

    /// Make every change so far visible now.
    pub fn commit(&self) -> Result<()> {
        let retired = {
            let mut writer = self.writer.lock();
            self.dirty.store(false, Ordering::Release);
            writer.commit().map_err(tantivy_error)?;
            std::mem::take(&mut *self.retired.lock())
        };
        self.reader.reload().map_err(tantivy_error)?;
        let mut table = self.facts.write();
        for slot in retired {
            if let Some(entry) = table.slots.get_mut(slot as usize) {
                *entry = None;
            }
        }
        Ok(())
    }

    /// Replace the popularity scores used for `sort=popularity` and to break ties.
    pub fn set_popularity(&self, scores: HashMap<Arc<str>, f32>) {
        *self.popularity.write() = Arc::new(scores);
    }

    pub fn stats(&self) -> SearchStats {
        SearchStats {
            items: self.facts.read().by_id.len(),
            vector_spaces: self.spaces.read().iter().map(|(name, s)| (name.clone(), s.len())).collect(),
            synonyms: self.synonyms.len(),
        }
    }

    /// Facts of an item, if indexed.
    pub fn facts(&self, id: &str) -> Option<Arc<Facts>> {
        self.facts.read().by_id(id).cloned()
    }

    /// A shopper's affinity from (item, weight) pairs of their behaviour.
    pub fn affinity<'a>(&self, interactions: impl Iterator<Item = (&'a str, f32)>) -> Affinity {
        let table = self.facts.read();
        let pairs: Vec<(Arc<Facts>, f32)> =
            interactions.filter_map(|(id, w)| table.by_id(id).map(|f| (f.clone(), w))).collect();
        Affinity::from_interactions(pairs.iter().map(|(f, w)| (f.as_ref(), *w)))
    }

    /// Embed these items' text where their vector is missing or stale.
    pub fn embed_items(&self, items: &[Item], embedder: &dyn TextEmbedder) -> Result<usize> {
        let space = self.text_space(embedder)?;
        let todo: Vec<(&str, u64, String)> = items
            .iter()
            .filter_map(|item| {
                let text = embedding_text(item, embedder.multilingual());
                let hash = text_hash(embedder, &text);
                (space.hash_of(item.id.as_str()) != Some(hash)).then_some((item.id.as_str(), hash, text))
            })
            .collect();
        for chunk in todo.chunks(32) {
            let texts: Vec<&str> = chunk.iter().map(|(_, _, t)| t.as_str()).collect();
            let vectors = embedder.embed(&texts, false)?;
            let entries: Vec<VectorEntry<'_>> =
                chunk.iter().zip(&vectors).map(|((id, hash, _), v)| (*id, *hash, v.as_slice())).collect();
            space.put(&entries)?;
        }
        Ok(todo.len())
    }

    /// Embed every catalog item whose text vector is missing or stale, in batches of
    /// `batch`, each stored durably before the next starts (so an interrupted run resumes).
    pub fn embed_missing(
        &self,
        store: &dyn Storage,
        embedder: &dyn TextEmbedder,
        batch: usize,
        progress: &mut dyn FnMut(EmbedProgress),
    ) -> Result<EmbedProgress> {
        let space = self.text_space(embedder)?;
        let mut todo: Vec<(String, u64, String)> = Vec::new();
        let mut total = 0usize;
        store.scan_items(&mut |item| {
            total += 1;
            let text = embedding_text(&item, embedder.multilingual());
            let hash = text_hash(embedder, &text);
            if space.hash_of(item.id.as_str()) != Some(hash) {
                todo.push((item.id.into_string(), hash, text));
            }
            Ok(())
        })?;
        let mut state = EmbedProgress { done: total - todo.len(), total };
        progress(state);
        for chunk in todo.chunks(batch.max(1)) {
            let texts: Vec<&str> = chunk.iter().map(|(_, _, t)| t.as_str()).collect();
            let vectors = embedder.embed(&texts, false)?;
            if vectors.len() != chunk.len() || vectors.iter().any(|v| v.len() != embedder.dim()) {
                return Err(Error::Internal(format!(
                    "the embedder returned {} vectors for {} texts (dimensions must be {})",
                    vectors.len(),
                    chunk.len(),
                    embedder.dim()
                )));
            }
            let entries: Vec<VectorEntry<'_>> =
                chunk.iter().zip(&vectors).map(|((id, hash, _), v)| (id.as_str(), *hash, v.as_slice())).collect();
            space.put(&entries)?;
            state.done += chunk.len();
            progress(state);
        }
        space.maintain();
        Ok(state)
    }

    /// The text space for this embedder; a space written by a model with other dimensions
    /// is dropped (its vectors are useless to this one).
    fn text_space(&self, embedder: &dyn TextEmbedder) -> Result<Arc<VectorSpace>> {
        if let Some(space) = self.existing_space(TEXT_SPACE) {
            if space.dim() != embedder.dim() {
                tracing::info!(from = space.dim(), to = embedder.dim(), "text embedder changed; re-embedding");
                let path = space.path().to_path_buf();
                self.spaces.write().remove(TEXT_SPACE);
                drop(space);
                fs_err::remove_file(path)?;
            }
        }
        self.space(TEXT_SPACE, embedder.dim())
    }

    /// The surfaces of `units` that `facts` (title, brand, category path, attribute values)
    /// contains: the whole term, all of its search-mode parts, or all of its characters
    /// and bigrams — the ways the keyword query matches a unit, short of synonyms and typos.
    fn matched_words(&self, units: &[QueryUnit], facts: &Facts) -> Vec<String> {
        let (mut terms, mut grams) = (Vec::new(), Vec::new());
        for text in std::iter::once(facts.title.as_str())
            .chain(facts.brand.as_deref())
            .chain(facts.category.iter().map(String::as_str))
            .chain(facts.attributes.iter().map(|(_, value)| value.as_str()))
        {
            self.analyzer.index_terms(text, &mut terms, &mut grams);
        }
        let terms: HashSet<&str> = terms.iter().map(String::as_str).collect();
        let grams: HashSet<&str> = grams.iter().map(String::as_str).collect();
        let all_in = |wanted: &[String], set: &HashSet<&str>| {
            !wanted.is_empty() && wanted.iter().all(|w| set.contains(w.as_str()))
        };
        let mut matched: Vec<String> = Vec::new();
        for unit in units {
            let found =
                terms.contains(unit.term.as_str()) || all_in(&unit.parts, &terms) || all_in(&unit.grams, &grams);
            if found && !matched.contains(&unit.surface) {
                matched.push(unit.surface.clone());
            }
        }
        matched
    }

    /// Run a search.
    pub fn search(&self, request: &SearchRequest) -> Result<SearchResponse> {
        self.search_ranked(request, None)
    }

    /// [`SearchIndex::search`] with a learned ranking stage over the best
    /// [`RANKING_WINDOW`] results (relevance order only; a sort by key ignores it).
    pub fn search_ranked(
        &self,
        request: &SearchRequest,
        stage: Option<&mut dyn RankingStage>,
    ) -> Result<SearchResponse> {
        let keys = FilterKeys::new(&request.filters);
        let searcher = self.reader.searcher();
        let mut response = SearchResponse {
            total: 0,
            hits: Vec::new(),
            facets: None,
            mode: request.mode,
            relaxed: false,
            ignored: Vec::new(),
            fuzzy: Vec::new(),
            expanded: Vec::new(),
        };
        let blank = request.query.trim().is_empty();
        let vector_query = match (&request.query_vector, request.mode) {
            (_, SearchMode::Keyword) => None,
            (Some(v), _) if !blank || request.mode == SearchMode::Semantic => Some(v),
            (None, SearchMode::Semantic) => {
                return Err(Error::Invalid(ValidationError::new(
                    "semantic_unavailable",
                    "mode",
                    "semantic search needs a query vector: configure a text embedder or send `vector`",
                )))
            }
            _ => None,
        };
        if request.mode == SearchMode::Hybrid && vector_query.is_none() {
            response.mode = SearchMode::Keyword;
        }
        let use_keywords = response.mode != SearchMode::Semantic;

        // Keyword matches.
        let mut keyword: Vec<(u32, f32)> = Vec::new();
        if use_keywords {
            match query::build(&self.analyzer, &self.synonyms, &self.fields.text, &searcher, &request.query) {
                None => keyword = searcher.search(&AllQuery, &MatchCollector).map_err(tantivy_error)?,
                Some(built) => {
                    keyword =
                        searcher.search(built.strict.as_ref() as &dyn Query, &MatchCollector).map_err(tantivy_error)?;
                    if keyword.is_empty() {
                        if let Some(relaxed) = &built.relaxed {
                            keyword = searcher
                                .search(relaxed.as_ref() as &dyn Query, &MatchCollector)
                                .map_err(tantivy_error)?;
                            response.relaxed = !keyword.is_empty();
                        }
                    }
                    response.ignored = built.ignored;
                    response.fuzzy = built.fuzzy;
                    response.expanded = built.expanded;
                }
            }
        }

        let table = self.facts.read();
        let popularity = self.popularity.read().clone();
        let pop = |facts: &Facts| popularity.get(&facts.id).copied().unwrap_or(0.0);

        // Vector matches, filtered inside the index walk.
        let mut semantic: Vec<(u32, f32)> = Vec::new();
        if let Some(vector) = vector_query {
            let space = self.existing_space(&request.space).ok_or_else(|| {
                Error::Invalid(ValidationError::new(
                    "unknown_vector_space",
                    "space",
                    format!("no item has vectors named {:?}", request.space),
                ))
            })?;
            if vector.len() != space.dim() {
                return Err(Error::Invalid(ValidationError::new(
                    "invalid_vector",
                    "vector",
                    format!("expected {} dimensions, found {}", space.dim(), vector.len()),
                )));
            }
            let query = vectors::unit(vector);
            let k = self.config.semantic_candidates.max(request.offset + request.limit);
            let accept = |id: &str| table.by_id(id).is_some_and(|f| keys.accepts(f, Except::Nothing));
            let found = space.search(&query, k, vectors::default_probe(space.len(), k), &accept);
            semantic = found.into_iter().filter_map(|(id, s)| table.by_id.get(&*id).map(|&slot| (slot, s))).collect();
        }

        // Facets over every candidate (each facet ignoring its own filter).
        if request.facets {
            let mut all: Vec<&Facts> =
                keyword.iter().filter_map(|(slot, _)| table.get(*slot).map(|f| f.as_ref())).collect();
            if !semantic.is_empty() {
                let keyword_slots: std::collections::HashSet<u32, ahash::RandomState> =
                    keyword.iter().map(|(s, _)| *s).collect();
                all.extend(
                    semantic
                        .iter()
                        .filter(|(s, _)| !keyword_slots.contains(s))
                        .filter_map(|(s, _)| table.get(*s).map(|f| f.as_ref())),
                );
            }
            response.facets = Some(count_facets(&all, &keys, &table.names));
        }
        keyword.retain(|(slot, _)| table.get(*slot).is_some_and(|f| keys.accepts(f, Except::Nothing)));

        // Semantic candidates passed the filters inside the index walk; the total counts
        // the union of both match sets.
        let in_semantic: HashMap<u32, usize, ahash::RandomState> =
            semantic.iter().enumerate().map(|(rank, (s, _))| (*s, rank)).collect();
        let mut keyword_scores_of_semantic: HashMap<u32, f32, ahash::RandomState> = HashMap::default();
        for (slot, score) in &keyword {
            if in_semantic.contains_key(slot) {
                keyword_scores_of_semantic.insert(*slot, *score);
            }
        }
        response.total = keyword.len() + semantic.len() - keyword_scores_of_semantic.len();

        // Only the best `depth` keyword matches need an exact order (the page, the window
        // the personal touch may reorder, the ranks fusion reads); sorting by another key
        // orders every match.
        let by_key = request.sort != Sort::Relevance;
        let personal = request.affinity.as_ref().filter(|a| !a.is_empty() && self.config.personal_weight > 0.0);
        let page_end = request.offset + request.limit;
        let mut depth = page_end;
        if personal.is_some() {
            depth = depth.max(self.config.rerank_window);
        }
        if response.mode == SearchMode::Hybrid {
            depth = depth.max(self.config.semantic_candidates).max(1_000);
        }
        let popularity_of = |slot: u32| table.get(slot).map_or(0.0, |f| pop(f));
        let id_of = |slot: u32| table.get(slot).map(|f| f.id.clone());
        let keyword_order = |a: &(u32, f32), b: &(u32, f32)| {
            b.1.total_cmp(&a.1)
                .then_with(|| popularity_of(b.0).total_cmp(&popularity_of(a.0)))
                .then_with(|| id_of(a.0).cmp(&id_of(b.0)))
        };
        if !by_key && keyword.len() > depth {
            keyword.select_nth_unstable_by(depth, keyword_order);
            keyword.truncate(depth);
        }
        keyword.sort_unstable_by(keyword_order);
        let max_bm25 = keyword.first().map_or(0.0, |k| k.1);

        let mut candidates: HashMap<u32, Explain, ahash::RandomState> =
            HashMap::with_capacity_and_hasher(keyword.len() + semantic.len(), ahash::RandomState::new());
        for (rank, (slot, score)) in keyword.iter().enumerate() {
            let entry = candidates.entry(*slot).or_default();
            entry.bm25 = Some(*score);
            entry.keyword_rank = Some(rank + 1);
        }
        let (min_cos, max_cos) =
            semantic.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), (_, s)| (lo.min(*s), hi.max(*s)));
        for (rank, (slot, score)) in semantic.iter().enumerate() {
            let entry = candidates.entry(*slot).or_default();
            entry.vector = Some(*score);
            entry.vector_rank = Some(rank + 1);
            if entry.bm25.is_none() {
                // A keyword match below the ranked depth: its score is exact, its rank
                // counts as just past the depth.
                if let Some(score) = keyword_scores_of_semantic.get(slot) {
                    entry.bm25 = Some(*score);
                    entry.keyword_rank = Some(depth + 1);
                }
            }
        }
        for explain in candidates.values_mut() {
            explain.fusion = match response.mode {
                SearchMode::Keyword => explain.bm25.unwrap_or(0.0),
                SearchMode::Semantic => explain.vector.unwrap_or(0.0),
                SearchMode::Hybrid => match request.fusion {
                    Fusion::Rrf { k } => {
                        let term = |rank: Option<usize>| rank.map_or(0.0, |r| fusion::reciprocal_rank(f64::from(k), r));
                        (term(explain.keyword_rank) + term(explain.vector_rank)) as f32
                    }
                    Fusion::Weighted { alpha } => {
                        let kw = explain.bm25.map_or(0.0, |s| fusion::max_scaled(s, max_bm25));
                        let vec = explain.vector.map_or(0.0, |s| fusion::min_max(s, min_cos, max_cos));
                        alpha * kw + (1.0 - alpha) * vec
                    }
                },
            };
            explain.score = explain.fusion;
        }
        let mut ranked: Vec<(u32, Explain)> = candidates.into_iter().collect();
        let relevance = |a: &(u32, Explain), b: &(u32, Explain)| {
            b.1.score
                .total_cmp(&a.1.score)
                .then_with(|| popularity_of(b.0).total_cmp(&popularity_of(a.0)))
                .then_with(|| id_of(a.0).cmp(&id_of(b.0)))
        };
        ranked.sort_unstable_by(relevance);

        // The personal touch: reorder the best results by the shopper's affinities.
        if let Some(affinity) = personal {
            let window = self.config.rerank_window.max(page_end).min(ranked.len());
            let max = ranked.first().map_or(0.0, |r| r.1.score);
            for (slot, explain) in &mut ranked[..window] {
                let personal = table.get(*slot).map_or(0.0, |f| affinity.score(f));
                explain.personal = Some(personal);
                let base = if max > 0.0 { explain.fusion / max } else { 0.0 };
                explain.score = base + self.config.personal_weight * personal;
            }
            ranked[..window].sort_unstable_by(relevance);
        }

        // The learned ranker reorders the best results.
        if let Some(stage) = stage.filter(|_| request.sort == Sort::Relevance) {
            // Everything the rules may arrange is scored by the ranker, so they compare like
            // with like.
            let window = RANKING_WINDOW.max(self.config.rerank_window).max(page_end).min(ranked.len());
            let seen: Vec<(&str, &Explain)> = ranked[..window]
                .iter()
                .filter_map(|(slot, explain)| table.get(*slot).map(|f| (&*f.id, explain)))
                .collect();
            let scored = if seen.len() == window { stage.score(&seen)? } else { None };
            if let Some(scores) = scored.filter(|scores| scores.len() == window) {
                for ((_, explain), (score, contributions)) in ranked[..window].iter_mut().zip(scores) {
                    explain.ranker = Some(score);
                    explain.score = score;
                    explain.contributions = if request.explain { contributions } else { Vec::new() };
                }
                // Stable: equal scores keep the relevance order. Results past the window
                // keep their place after it.
                ranked[..window].sort_by(|a, b| b.1.score.total_cmp(&a.1.score));
            }
        }

        let order = |f: &Facts, key: Sort| -> f64 {
            match key {
                Sort::PriceAsc => f.price.unwrap_or(f64::INFINITY),
                Sort::PriceDesc => -f.price.unwrap_or(f64::NEG_INFINITY),
                Sort::Newest => -(f.created_at.unwrap_or(i64::MIN) as f64),
                Sort::Popularity => -f64::from(pop(f)),
                Sort::Relevance => 0.0,
            }
        };
        if request.sort != Sort::Relevance {
            // Stable: equal keys keep relevance order.
            ranked.sort_by(|a, b| {
                let (fa, fb) = (table.get(a.0), table.get(b.0));
                let (ka, kb) = (
                    fa.map_or(f64::INFINITY, |f| order(f, request.sort)),
                    fb.map_or(f64::INFINITY, |f| order(f, request.sort)),
                );
                ka.total_cmp(&kb)
            });
        }
        // Business rules over the best results: pins and promotion slots are positions in
        // the whole list, so the arrangement is computed down to the page's end.
        let mut effects: HashMap<u32, Vec<Effect>> = HashMap::new();
        if !request.rules.is_empty() {
            let window = self.config.rerank_window.max(page_end).min(ranked.len());
            ranked.truncate(window);
            // A pinned item that did not match joins when it passes the filters.
            for pin in &request.rules.pin {
                let Some(&slot) = table.by_id.get(pin.item.as_str()) else { continue };
                if ranked.iter().any(|(s, _)| *s == slot)
                    || !table.get(slot).is_some_and(|f| keys.accepts(f, Except::Nothing))
                {
                    continue;
                }
                ranked.push((slot, Explain::default()));
            }
            let count = ranked.len();
            let candidates: Vec<Candidate> = ranked
                .iter()
                .enumerate()
                .filter_map(|(position, (slot, explain))| {
                    let facts = table.get(*slot)?;
                    // Sorted by a key, the order is the score: earlier is better.
                    let score = if request.sort == Sort::Relevance {
                        f64::from(explain.score)
                    } else {
                        (count - position) as f64
                    };
                    let mut candidate = Candidate::new(facts.id.to_string(), score);
                    candidate.category = facts.category.clone();
                    candidate.brand = facts.brand.clone();
                    candidate.price = facts.price;
                    candidate.available = facts.available;
                    candidate.attributes = facts.attributes.clone();
                    Some(candidate)
                })
                .collect();
            let mut by_id: HashMap<String, (u32, Explain)> = ranked
                .drain(..)
                .filter_map(|(slot, explain)| table.get(slot).map(|f| (f.id.to_string(), (slot, explain))))
                .collect();
            for out in rerank(&candidates, &request.rules, page_end) {
                if let Some((slot, mut explain)) = by_id.remove(&out.id) {
                    if request.sort == Sort::Relevance {
                        explain.score = out.score as f32;
                    }
                    effects.insert(slot, out.effects);
                    ranked.push((slot, explain));
                }
            }
        }
        let units = if request.explain && !blank { self.analyzer.query_units(&request.query) } else { Vec::new() };
        response.hits = ranked
            .into_iter()
            .skip(request.offset)
            .take(request.limit)
            .filter_map(|(slot, mut explain)| {
                let facts = table.get(slot)?;
                if !units.is_empty() {
                    explain.matched = self.matched_words(&units, facts);
                }
                Some(Hit {
                    id: facts.id.to_string(),
                    score: explain.score,
                    title: facts.title.clone(),
                    brand: facts.brand.clone(),
                    category: facts.category.clone(),
                    price: facts.price,
                    explain: request.explain.then_some(explain),
                    effects: effects.remove(&slot).unwrap_or_default(),
                })
            })
            .collect();
        Ok(response)
    }
}

#[cfg(test)]
mod tests;
