//! The text embedder: loading the configured model for semantic search.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use souk_embed::{E5Small, Embedder, MiniLm, QueryBatcher, TextKind, E5_SMALL_ID};
use souk_engine::search::TextEmbedder;

use crate::config::EmbedConfig;

/// A sentence-embedding model as search sees it.
struct SearchEmbedder {
    model: Box<dyn Embedder>,
    multilingual: bool,
}

impl TextEmbedder for SearchEmbedder {
    fn id(&self) -> &str {
        self.model.id()
    }

    fn dim(&self) -> usize {
        self.model.dim()
    }

    fn multilingual(&self) -> bool {
        self.multilingual
    }

    fn embed(&self, texts: &[&str], query: bool) -> souk_engine::Result<Vec<Vec<f32>>> {
        let kind = if query { TextKind::Query } else { TextKind::Passage };
        self.model.embed(texts, kind).map_err(|e| souk_engine::Error::Internal(format!("text embedder: {e}")))
    }
}

/// The configured text embedder, or `None` when `embed.model_path` is empty: a directory
/// holds all-MiniLM-L6-v2 (English), a file multilingual-e5-small (4-bit, covers Chinese).
pub fn load_embedder(config: &EmbedConfig) -> anyhow::Result<Option<Arc<dyn TextEmbedder>>> {
    if config.model_path.is_empty() {
        return Ok(None);
    }
    let started = std::time::Instant::now();
    let path = Path::new(&config.model_path);
    let passes = match config.query_passes {
        0 => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        passes => passes,
    };
    let (model, multilingual): (Box<dyn Embedder>, bool) = if path.is_dir() {
        let model = MiniLm::load(path).with_context(|| format!("loading the text embedder from {}", path.display()))?;
        (Box::new(QueryBatcher::new(model, config.query_batch, passes)?), false)
    } else {
        let model =
            E5Small::load(path).with_context(|| format!("loading the text embedder from {}", path.display()))?;
        debug_assert_eq!(model.id(), E5_SMALL_ID);
        (Box::new(QueryBatcher::new(model, config.query_batch, passes)?), true)
    };
    tracing::info!(
        model = model.id(),
        dim = model.dim(),
        multilingual,
        seconds = started.elapsed().as_secs_f64(),
        "text embedder loaded"
    );
    Ok(Some(Arc::new(SearchEmbedder { model, multilingual })))
}
