//! Storage.

pub mod codec;
