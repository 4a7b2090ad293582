//! Text embeddings for semantic search: the embedder interface, the text it sees for an
//! item, embedding the catalog into the text space and the cache of query vectors.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;

use super::analyze;
use super::index::{SearchIndex, VectorEntry};
use super::vectors::{VectorSpace, TEXT_SPACE};
use crate::error::{Error, Result};
use crate::model::Item;
use crate::store::Storage;

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
}
