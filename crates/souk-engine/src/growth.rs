//! Containers that grow in pieces, for state that grows with every stored event.
//!
//! A `Vec` doubles by allocating twice its size and copying everything in it; a hash set
//! doubles by rehashing every entry. Under the store's index lock that is a stall for every
//! reader and writer: measured with mimalloc, a `Vec` of 40-byte rows takes 386 ms to grow
//! past 4,194,304 rows and 788 ms past 8,388,608, and a set of 128-bit digests 81 ms past
//! 3,670,016 and 178 ms past 7,340,032 — a pause in serving at every doubling, longer each
//! time. Here a vector grows by fixed-size chunks (an append never moves what is stored)
//! and a digest set is split into shards that grow one at a time (a resize rehashes 1/256
//! of the entries). Hand-rolled: each is a few lines over `Vec` and `HashSet`, and the
//! crates that offer this (segmented or incrementally-resizing collections) bring more API
//! than the index needs.

use std::ops::{Index, IndexMut};

use crate::hashing::{DigestSet, IdMap};

const CHUNK_BITS: u32 = 16;
/// Elements per chunk: 65,536 (2.6 MB of 40-byte rows).
const CHUNK: usize = 1 << CHUNK_BITS;

/// An append-only-growing vector stored as fixed-size chunks: `push` never copies earlier
/// elements (the first chunk grows like a `Vec` up to [`CHUNK`] elements, so a small store
/// stays small).
#[derive(Clone)]
pub struct ChunkedVec<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for ChunkedVec<T> {
    fn default() -> Self {
        Self { chunks: Vec::new(), len: 0 }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for ChunkedVec<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T> ChunkedVec<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, value: T) {
        match self.chunks.last_mut() {
            Some(chunk) if chunk.len() < CHUNK => chunk.push(value),
            _ => {
                // The first chunk starts small; every later one at its full size.
                let mut chunk = if self.chunks.is_empty() { Vec::new() } else { Vec::with_capacity(CHUNK) };
                chunk.push(value);
                self.chunks.push(chunk);
            }
        }
        self.len += 1;
    }

    pub fn get(&self, index: usize) -> Option<&T> {
        self.chunks.get(index >> CHUNK_BITS).and_then(|chunk| chunk.get(index & (CHUNK - 1)))
    }

    pub fn last(&self) -> Option<&T> {
        self.chunks.last().and_then(|chunk| chunk.last())
    }

    /// Elements in order; reversible.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + '_ {
        self.chunks.iter().flatten()
    }

    pub fn iter_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut T> + '_ {
        self.chunks.iter_mut().flatten()
    }
}

impl<T> Index<usize> for ChunkedVec<T> {
    type Output = T;

    fn index(&self, index: usize) -> &T {
        &self.chunks[index >> CHUNK_BITS][index & (CHUNK - 1)]
    }
}

impl<T> IndexMut<usize> for ChunkedVec<T> {
    fn index_mut(&mut self, index: usize) -> &mut T {
        &mut self.chunks[index >> CHUNK_BITS][index & (CHUNK - 1)]
    }
}

impl<'a, T> IntoIterator for &'a ChunkedVec<T> {
    type Item = &'a T;
    type IntoIter = std::iter::Flatten<std::slice::Iter<'a, Vec<T>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.chunks.iter().flatten()
    }
}

const SHARDS: usize = 256;

/// A set of uniformly random 128-bit digests in 256 shards chosen by the digest's top byte.
/// Shards fill at nearly the same rate, but each crosses its resize threshold at its own
/// insert, so the rehash work of one doubling is spread over many inserts.
#[derive(Debug)]
pub struct ShardedDigestSet {
    shards: Box<[DigestSet<u128>]>,
    len: usize,
}

impl Default for ShardedDigestSet {
    fn default() -> Self {
        Self { shards: (0..SHARDS).map(|_| DigestSet::default()).collect(), len: 0 }
    }
}

impl ShardedDigestSet {
    fn shard(digest: u128) -> usize {
        (digest >> 120) as usize
    }

    /// Adds the digest; false if it was there already.
    pub fn insert(&mut self, digest: u128) -> bool {
        let added = self.shards[Self::shard(digest)].insert(digest);
        self.len += usize::from(added);
        added
    }

    pub fn contains(&self, digest: u128) -> bool {
        self.shards[Self::shard(digest)].contains(&digest)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Extend<u128> for ShardedDigestSet {
    fn extend<I: IntoIterator<Item = u128>>(&mut self, digests: I) {
        for digest in digests {
            self.insert(digest);
        }
    }
}

/// A map from id strings to values in 256 shards chosen by a keyed hash of the id: the
/// interner's map from names to numbers, which doubles at every power of two of users or
/// items otherwise (a stall of 148–202 ms at a million).
#[derive(Debug)]
pub struct ShardedIdMap<V> {
    router: ahash::RandomState,
    shards: Box<[IdMap<Box<str>, V>]>,
}

impl<V> Default for ShardedIdMap<V> {
    fn default() -> Self {
        Self { router: ahash::RandomState::new(), shards: (0..SHARDS).map(|_| IdMap::default()).collect() }
    }
}

impl<V> ShardedIdMap<V> {
    fn shard(&self, key: &str) -> usize {
        (self.router.hash_one(key) >> 56) as usize
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        self.shards[self.shard(key)].get(key)
    }

    /// Sets the value of `key`, returning the one it replaces.
    pub fn insert(&mut self, key: Box<str>, value: V) -> Option<V> {
        let shard = self.shard(&key);
        self.shards[shard].insert(key, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_vec_matches_a_vec_across_chunk_boundaries() {
        let mut chunked = ChunkedVec::default();
        let mut plain = Vec::new();
        for i in 0..(2 * CHUNK + 17) as u64 {
            chunked.push(i * 3);
            plain.push(i * 3);
        }
        assert_eq!(chunked.len(), plain.len());
        assert_eq!(chunked.chunks.len(), 3);
        for probe in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, plain.len() - 1] {
            assert_eq!(chunked[probe], plain[probe]);
            assert_eq!(chunked.get(probe), plain.get(probe));
        }
        assert_eq!(chunked.get(plain.len()), None);
        assert_eq!(chunked.last(), plain.last());
        assert!(chunked.iter().eq(plain.iter()));
        assert!(chunked.iter().rev().eq(plain.iter().rev()));
        assert!((&chunked).into_iter().eq(plain.iter()));
        chunked[CHUNK] = 7;
        for value in chunked.iter_mut().rev().take(3) {
            *value = 1;
        }
        assert_eq!(chunked[CHUNK], 7);
        assert_eq!(chunked.iter().rev().take(4).copied().collect::<Vec<_>>(), [1, 1, 1, plain[plain.len() - 4]]);
    }

    #[test]
    fn sharded_id_map_is_a_map() {
        let mut map = ShardedIdMap::default();
        for i in 0..10_000u32 {
            assert_eq!(map.insert(format!("u{i}").into(), i), None);
        }
        assert_eq!(map.insert("u17".into(), 7), Some(17));
        assert_eq!(map.get("u17"), Some(&7));
        assert_eq!(map.get("u9999"), Some(&9_999));
        assert_eq!(map.get("u10000"), None);
        let used = map.shards.iter().filter(|s| !s.is_empty()).count();
        assert!(used > SHARDS / 2, "ids spread over the shards ({used} of {SHARDS} used)");
    }

    #[test]
    fn full_chunks_never_reallocate() {
        let mut chunked = ChunkedVec::default();
        for i in 0..CHUNK + 1 {
            chunked.push(i);
        }
        let first = chunked.chunks[1].as_ptr();
        assert_eq!(chunked.chunks[1].capacity(), CHUNK);
        for i in 0..CHUNK - 1 {
            chunked.push(i);
        }
        assert_eq!(chunked.chunks[1].as_ptr(), first, "a later chunk is allocated once at full size");
        assert_eq!(chunked.chunks.len(), 2);
    }

    #[test]
    fn empty_chunked_vec() {
        let chunked = ChunkedVec::<u8>::default();
        assert!(chunked.is_empty());
        assert_eq!(chunked.get(0), None);
        assert_eq!(chunked.last(), None);
        assert_eq!(chunked.iter().next(), None);
    }

    #[test]
    fn sharded_set_is_a_set() {
        let mut set = ShardedDigestSet::default();
        let digests: Vec<u128> = (0..10_000u64).map(|i| xxhash_rust::xxh3::xxh3_128(&i.to_le_bytes())).collect();
        for d in &digests {
            assert!(set.insert(*d));
        }
        assert!(!set.insert(digests[5]), "a second insert is refused");
        assert_eq!(set.len(), digests.len());
        assert!(digests.iter().all(|d| set.contains(*d)));
        assert!(!set.contains(xxhash_rust::xxh3::xxh3_128(b"absent")));
        set.extend([digests[0], 42]);
        assert_eq!(set.len(), digests.len() + 1);
        // Digests spread over the shards.
        assert!(set.shards.iter().all(|s| !s.is_empty()));
    }
}
