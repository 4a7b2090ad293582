//! Serving recommendations: a trained [`ModelSet`] plus the live store answer "for you",
//! "similar items" and "trending", with reasons.
//!
//! Real time without retraining: every request reads the user's latest interactions from
//! the store's memory and scores from that history (collaborative models fold it in), so
//! an event ingested a moment ago changes the next answer. Heavy models are retrained in
//! the background and swapped in whole.
//!
//! Files by concept: `model_set` (what training produces and serving swaps),
//! `recommend_config` (the `[recommend]` configuration), `label_index`, `request`
//! (what a request asks and a page answers, the cursor), `history` (a user's live
//! history), `recall` (the recall sources), `recommend_page` (the "for you" pipeline:
//! recall → fusion → ranker → rules → reasons), `similar`, `trending` (and the page
//! before any training), `describe` (what a page shows of each item), `page_log`,
//! `search_page` and `search_ranking` (the search page), `training`, `pipeline` (a page
//! pipeline's configuration as data), `live_sessions` (the session-kNN index and the
//! co-purchase counts, updated on ingest: the `session` source and "bought together"),
//! `content` (item content vectors, live, and the `content` source), `graph_walk` (the
//! `graph` source: items sharing catalog entities with the recent history), `friends` (the
//! "friends bought" source, live from the store's edges), `new_shoppers` (the
//! `demographic` and `preferences` sources for shoppers with little history), `fresh_items`
//! (catalog items the models never saw, joined to a set's item space with mapped factors),
//! and `shop`: the one entry point front ends call.
//!
//! The top of the engine: it composes models (`recommend`), ranking (`rank`), rules
//! (`rank::rerank`) and search; only `eval` sits above it.

pub mod background;
pub mod content;
mod describe;
pub mod experiment;
pub mod experiment_report;
pub mod exploration;
pub mod exposure;
mod fresh_items;
pub mod friends;
mod graph_walk;
mod history;
pub mod interleave;
pub mod jobs;
pub mod label_index;
pub mod live_content;
pub mod live_sessions;
mod model_set;
pub mod new_shoppers;
pub mod page_log;
pub mod pipeline;
pub mod recall;
mod recommend_config;
mod recommend_page;
mod request;
mod rules;
pub mod search_page;
pub mod search_ranking;
pub mod shop;
mod similar;
#[cfg(test)]
mod test_shop;
pub mod training;
mod trending;

pub use crate::recommend::SourceKind;
pub use describe::*;
pub use history::*;
pub use live_sessions::{LiveSessions, RecommendSurface};
pub use model_set::*;
pub use recommend_config::*;
pub use recommend_page::*;
pub use request::*;
pub use shop::{SearchOpener, Shop, ShopSettings};
pub use similar::*;
pub use trending::*;
