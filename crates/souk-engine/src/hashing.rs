//! Hashers for the hot maps of the engine.
//!
//! Ids come from outside (HTTP, files), so maps keyed by id strings use `ahash` with a
//! random key: fast and resistant to collision flooding. Maps keyed by values that are
//! already uniformly random digests (xxh3 of an id) need no hashing at all.

use std::hash::{BuildHasherDefault, Hasher};

/// A hash map keyed by strings from outside.
pub type IdMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;

/// Hasher for keys that are already uniformly random digests: passes them through.
#[derive(Default)]
pub struct PrehashedHasher(u64);

impl Hasher for PrehashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }

    fn write_u128(&mut self, value: u128) {
        self.0 = (value as u64) ^ ((value >> 64) as u64);
    }
}

/// A set of digests.
pub type DigestSet<T> = std::collections::HashSet<T, BuildHasherDefault<PrehashedHasher>>;
