//! The search index itself: its on-disk layout (tantivy schema, format and dictionary
//! stamp), opening and reconciling it with the catalog, the background commit, the vector
//! spaces it holds and its in-memory facts table.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, FAST, INDEXED, STORED, STRING,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use super::analyze::Analyzer;
use super::columns::FacetColumns;
use super::config::SearchConfig;
use super::facts::{Affinity, Facts};
use super::query::{Synonyms, TextFields};
use super::slot_maps::SlotMaps;
use super::vectors::VectorSpace;
use crate::error::{Error, Result, ValidationError};
use crate::store::Storage;

/// Version of the on-disk search index; a different version is rebuilt from the catalog.
pub const SEARCH_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy)]
pub(super) struct Fields {
    pub(super) id: Field,
    pub(super) slot: Field,
    pub(super) hash: Field,
    pub(super) text: TextFields,
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

pub(super) fn tantivy_error(e: impl std::fmt::Display) -> Error {
    let message = format!("search index: {e}");
    // Tantivy keeps the OS error only as text; a full disk must stay recognisable.
    if ["(os error 28)", "(os error 122)"].iter().any(|full| message.contains(full)) {
        return Error::Io(std::io::Error::new(std::io::ErrorKind::StorageFull, message));
    }
    Error::Internal(message)
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Meta {
    format_version: u32,
    /// Hash of the user dictionary: other words mean other terms, so a rebuild.
    dictionary: u64,
}

#[derive(Default)]
pub(super) struct FactsTable {
    pub(super) slots: Vec<Option<Arc<Facts>>>,
    pub(super) by_id: HashMap<Arc<str>, u32>,
    pub(super) columns: FacetColumns,
}

impl FactsTable {
    pub(super) fn get(&self, slot: u32) -> Option<&Arc<Facts>> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }

    pub(super) fn by_id(&self, id: &str) -> Option<&Arc<Facts>> {
        self.by_id.get(id).and_then(|&slot| self.get(slot))
    }

    /// Hold `facts` at `slot`, in the slots and the columns, with its popularity.
    pub(super) fn put(&mut self, slot: u32, facts: Facts, popularity: f32) {
        self.columns.put(slot, &facts, popularity);
        self.slots[slot as usize] = Some(Arc::new(facts));
    }

    /// Free a slot.
    pub(super) fn clear(&mut self, slot: u32) {
        if let Some(entry) = self.slots.get_mut(slot as usize) {
            *entry = None;
        }
        self.columns.clear(slot);
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
    pub(super) dir: PathBuf,
    pub(super) config: SearchConfig,
    pub(super) reader: IndexReader,
    pub(super) writer: Mutex<IndexWriter>,
    pub(super) fields: Fields,
    pub(super) analyzer: Analyzer,
    pub(super) synonyms: Synonyms,
    pub(super) facts: RwLock<FactsTable>,
    /// Slots of replaced or deleted versions, freed after the next commit.
    pub(super) retired: Mutex<Vec<u32>>,
    pub(super) dirty: AtomicBool,
    pub(super) spaces: RwLock<BTreeMap<String, Arc<VectorSpace>>>,
    pub(super) popularity: RwLock<Arc<HashMap<Arc<str>, f32>>>,
    pub(super) slot_maps: SlotMaps,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex").field("dir", &self.dir).finish_non_exhaustive()
    }
}

/// Dictionary words with optional frequencies.
type Words = Vec<(String, Option<usize>)>;
/// (item id, content hash, vector) to store in a space.
pub(super) type VectorEntry<'a> = (&'a str, u64, &'a [f32]);

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
                columns: FacetColumns::default(),
            }),
            retired: Mutex::new(Vec::new()),
            dirty: AtomicBool::new(false),
            spaces: RwLock::new(BTreeMap::new()),
            popularity: RwLock::new(Arc::new(HashMap::new())),
            slot_maps: SlotMaps::default(),
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
                    let popularity = this.popularity.read().get(&facts.id).copied().unwrap_or(0.0);
                    let mut table = this.facts.write();
                    table.by_id.insert(facts.id.clone(), doc.slot);
                    table.put(doc.slot, facts, popularity);
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
                    "dimension_mismatch",
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

    /// Make every change so far visible now.
    pub fn commit(&self) -> Result<()> {
        let retired = {
            let mut writer = self.writer.lock();
            self.dirty.store(false, Ordering::Release);
            writer.commit().map_err(tantivy_error)?;
            std::mem::take(&mut *self.retired.lock())
        };
        self.reader.reload().map_err(tantivy_error)?;
        self.slot_maps.keep_only(&self.reader.searcher());
        let mut table = self.facts.write();
        for slot in retired {
            table.clear(slot);
        }
        Ok(())
    }

    /// Replace the popularity scores used for `sort=popularity` and to break ties.
    pub fn set_popularity(&self, scores: HashMap<Arc<str>, f32>) {
        let scores = Arc::new(scores);
        *self.popularity.write() = scores.clone();
        // The scores of the slots held now are looked up under the read lock (at 1M items
        // that takes a tenth of a second, which searches must not wait for); a slot filled
        // since took its score from the new map when it was put. Never both locks at once:
        // a search takes the facts, then the popularity.
        let values: Vec<(u32, f32)> = {
            let table = self.facts.read();
            let score = |facts: &Arc<Facts>| scores.get(&facts.id).copied().unwrap_or(0.0);
            table.slots.iter().enumerate().filter_map(|(slot, f)| Some((slot as u32, score(f.as_ref()?)))).collect()
        };
        self.facts.write().columns.set_popularity(&values);
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
}
