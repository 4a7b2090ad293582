//! Search: keyword (BM25 with Chinese segmentation, stemming, typo tolerance and
//! synonyms), semantic (vectors from an embedder or the shop's own), hybrid fusion, facets,
//! filters, sorting and a personal touch.
//!
//! The keyword index is tantivy in `DIR/search/keyword`, fed with terms from
//! [`analyze::Analyzer`] (pre-tokenised, so indexing and querying share one analysis). Item
//! facts live in memory ([`facts`]; what filters and facets read, also in per-slot columns:
//! `columns`), keyed by a slot number stored in each document. Vectors live in [`vectors`].
//! The index is derived data: on open it is reconciled with the catalog (items added, changed or deleted while it was closed are
//! brought up to date) and rebuilt from scratch when missing, damaged or written by another
//! format or dictionary.
//!
//! Writes are applied at once and become visible at the next commit, which a background
//! thread makes every `commit_interval_ms` (default 500 ms) when something changed.

pub mod analyze;
mod columns;
mod config;
mod embed;
mod explain;
pub mod facts;
mod fuse;
mod index;
mod indexing;
mod keyword;
mod lazy_union;
mod order;
mod pipeline;
pub mod query;
mod recall;
pub mod relevance;
mod request;
mod rules;
mod semantic;
mod slot_maps;
pub mod suggest;
pub mod vectors;

pub use self::config::SearchConfig;
pub use self::embed::{embedder_reads, embedding_text, EmbedProgress, QueryVectorCache, TextEmbedder};
pub use self::explain::{Explain, RankingStage, StageScore, RANKING_WINDOW};
pub use self::facts::{Affinity, FacetCount, Facets, Facts, PriceBucket};
pub use self::index::{SearchIndex, SearchStats, SEARCH_FORMAT_VERSION};
pub use self::request::{Fusion, Hit, SearchMode, SearchRequest, SearchResponse, Sort};
pub use self::vectors::TEXT_SPACE;

#[cfg(test)]
mod tests;
