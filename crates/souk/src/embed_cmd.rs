//! The text embedder: loading the configured model for semantic search.

use std::sync::Arc;

use souk_engine::search::TextEmbedder;

use crate::config::EmbedConfig;

/// The configured text embedder, or `None` when `embed.model_dir` is empty.
pub fn load_embedder(config: &EmbedConfig) -> anyhow::Result<Option<Arc<dyn TextEmbedder>>> {
    if config.model_dir.is_empty() {
        return Ok(None);
    }
    anyhow::bail!("embed.model_dir is set but this build has no text embedder")
}
