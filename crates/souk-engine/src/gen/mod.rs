//! Synthetic shop generator.
