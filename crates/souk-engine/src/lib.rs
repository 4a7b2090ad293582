//! Souk's engine: the domain model, validation, durable storage, importers and the synthetic
//! shop generator.
//!
//! The engine is a synchronous library: no HTTP, no async runtime, no environment variables.
//! Callers (the server, the CLI) hand it validated configuration and call it from worker
//! threads.

#[cfg(test)]
mod architecture_tests;
pub mod error;
pub mod eval;
pub mod fusion;
pub mod gen;
pub mod growth;
pub mod hashing;
pub mod ids;
pub mod import;
pub mod input;
pub mod model;
pub mod ope;
pub mod rank;
pub mod recommend;
pub mod search;
pub mod serving;
pub mod stats;
pub mod store;

pub use error::{Error, ErrorKind, Result, ValidationError};
pub use ids::{EventId, ItemId, UserId};
pub use model::{Event, EventType, Follow, FollowKind, Item, Record, RecordSink, User};
