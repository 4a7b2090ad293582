//! Vector spaces for semantic search: one per embedder (`text`) or per user-supplied
//! vector name (e.g. `image`). Vectors are unit length, so inner product is cosine.
//!
//! Storage: `DIR/search/vectors/NAME.vec`, a header (`SOUKVEC1`, dimensions) and
//! append-only records `[len u32][crc32 u32][payload]`, payload = kind (1 put, 2 delete),
//! id, content hash and the vector. A batch is fsynced before it counts, so embedding
//! resumes where it stopped; a torn tail is cut on open; a file with more dead than live
//! records is rewritten (temporary file, then rename).
//!
//! Search: the inverted-file index of [`crate::recommend::ivf`] over the rows present at
//! its last build, plus an exact scan of rows added since; the index is rebuilt once the
//! unindexed rows pass a fifth of the space. Below [`crate::recommend::ivf::EXACT_BELOW`]
//! vectors the search is exact.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::error::{Error, Result};
use crate::recommend::ivf::{IvfIndex, TopK};
use crate::recommend::kernels::dot;

/// The vector space of the configured text embedder.
pub const TEXT_SPACE: &str = "text";

const MAGIC: &[u8; 8] = b"SOUKVEC1";
const PUT: u8 = 1;
const DELETE: u8 = 2;

fn corrupt(path: &Path, message: impl Into<String>) -> Error {
    Error::Corrupt { path: path.to_path_buf(), message: message.into() }
}

/// Scale `v` to unit length (zero vectors are refused by the caller).
pub fn unit(v: &[f32]) -> Vec<f32> {
    let norm = dot(v, v).sqrt();
    v.iter().map(|x| x / norm).collect()
}

#[derive(Debug, Clone)]
struct Row {
    id: Arc<str>,
    hash: u64,
    alive: bool,
}

struct Rows {
    rows: Vec<Row>,
    by_id: HashMap<Arc<str>, u32>,
    data: Vec<f32>,
    /// The index over rows `0..built`.
    ivf: Option<Arc<IvfIndex>>,
    built: usize,
    dead: usize,
}

/// One vector space; see the module docs.
pub struct VectorSpace {
    name: String,
    dim: usize,
    path: PathBuf,
    rows: RwLock<Rows>,
    file: Mutex<std::fs::File>,
}

impl std::fmt::Debug for VectorSpace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VectorSpace").field("name", &self.name).field("dim", &self.dim).finish_non_exhaustive()
    }
}

fn encode(kind: u8, id: &str, hash: u64, vector: &[f32], out: &mut Vec<u8>) {
    let mut payload = Vec::with_capacity(13 + id.len() + vector.len() * 4);
    payload.push(kind);
    payload.extend_from_slice(&(id.len() as u16).to_le_bytes());
    payload.extend_from_slice(id.as_bytes());
    payload.extend_from_slice(&hash.to_le_bytes());
    for x in vector {
        payload.extend_from_slice(&x.to_le_bytes());
    }
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
}

impl VectorSpace {
    /// Open the space stored at `path`, or create it with `dim` dimensions.
    pub fn open(name: &str, path: &Path, dim: usize) -> Result<Self> {
        let mut rows = Rows { rows: Vec::new(), by_id: HashMap::new(), data: Vec::new(), ivf: None, built: 0, dead: 0 };
        let mut dim = dim;
        let mut records = 0usize;
        if path.exists() {
            let mut bytes = Vec::new();
            fs_err::File::open(path)?.read_to_end(&mut bytes)?;
            if bytes.len() < 12 || &bytes[..8] != MAGIC {
                return Err(corrupt(path, "not a vector file"));
            }
            dim = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize;
            let mut at = 12;
            let mut good = at;
            while at + 8 <= bytes.len() {
                let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
                let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes"));
                let Some(payload) = bytes.get(at + 8..at + 8 + len) else { break };
                if crc32fast::hash(payload) != crc || payload.len() < 11 {
                    break;
                }
                let id_len = usize::from(u16::from_le_bytes([payload[1], payload[2]]));
                let Some(id) = payload.get(3..3 + id_len).and_then(|b| std::str::from_utf8(b).ok()) else { break };
                let Some(hash) = payload.get(3 + id_len..11 + id_len) else { break };
                let hash = u64::from_le_bytes(hash.try_into().expect("8 bytes"));
                let vector_bytes = &payload[(11 + id_len).min(payload.len())..];
                match payload[0] {
                    PUT if vector_bytes.len() == dim * 4 => {
                        let vector: Vec<f32> = vector_bytes
                            .chunks_exact(4)
                            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                            .collect();
                        rows.put(Arc::from(id), hash, &vector);
                    }
                    DELETE => rows.delete(id),
                    _ => break,
                }
                records += 1;
                at += 8 + len;
                good = at;
            }
            if good < bytes.len() {
                tracing::warn!(path = %path.display(), kept = good, found = bytes.len(), "cutting a torn vector file tail");
                let file = fs_err::OpenOptions::new().write(true).open(path)?;
                file.set_len(good as u64)?;
                file.sync_all()?;
            }
        }
        let live = rows.by_id.len();
        if records > 2 * live + 1024 || !path.exists() {
            // Rewrite compactly (or create): temporary file, fsync, rename.
            let temporary = path.with_extension("vec.tmp");
            let mut out = Vec::with_capacity(12 + live * (dim * 4 + 32));
            out.extend_from_slice(MAGIC);
            out.extend_from_slice(&(dim as u32).to_le_bytes());
            let mut compact =
                Rows { rows: Vec::new(), by_id: HashMap::new(), data: Vec::new(), ivf: None, built: 0, dead: 0 };
            for (row_number, row) in rows.rows.iter().enumerate() {
                if row.alive {
                    let vector = &rows.data[row_number * dim..(row_number + 1) * dim];
                    encode(PUT, &row.id, row.hash, vector, &mut out);
                    compact.put(row.id.clone(), row.hash, vector);
                }
            }
            let mut file = fs_err::File::create(&temporary)?;
            file.write_all(&out)?;
            file.sync_all()?;
            fs_err::rename(&temporary, path)?;
            if let Some(parent) = path.parent() {
                fs_err::File::open(parent)?.sync_all()?;
            }
            rows = compact;
        }
        let file = fs_err::OpenOptions::new().append(true).open(path)?.into_parts().0;
        let space = Self {
            name: name.to_string(),
            dim,
            path: path.to_path_buf(),
            rows: RwLock::new(rows),
            file: Mutex::new(file),
        };
        space.rebuild_index();
        Ok(space)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.rows.read().by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The content hash stored with an item's vector.
    pub fn hash_of(&self, id: &str) -> Option<u64> {
        let rows = self.rows.read();
        rows.by_id.get(id).map(|&r| rows.rows[r as usize].hash)
    }

    /// The vector of an item, if it has one.
    pub fn vector_of(&self, id: &str) -> Option<Vec<f32>> {
        let rows = self.rows.read();
        rows.by_id.get(id).map(|&r| rows.data[r as usize * self.dim..(r as usize + 1) * self.dim].to_vec())
    }

    /// Store vectors durably (normalised to unit length), replacing earlier ones.
    pub fn put(&self, entries: &[(&str, u64, &[f32])]) -> Result<()> {
        let mut bytes = Vec::new();
        let mut units = Vec::with_capacity(entries.len());
        for (id, hash, vector) in entries {
            if vector.len() != self.dim {
                return Err(Error::Internal(format!(
                    "vector space {}: expected {} dimensions, found {}",
                    self.name,
                    self.dim,
                    vector.len()
                )));
            }
            let v = unit(vector);
            encode(PUT, id, *hash, &v, &mut bytes);
            units.push(v);
        }
        {
            let mut file = self.file.lock();
            file.write_all(&bytes)?;
            file.sync_data()?;
        }
        let mut rows = self.rows.write();
        for ((id, hash, _), v) in entries.iter().zip(&units) {
            rows.put(Arc::from(*id), *hash, v);
        }
        Ok(())
    }

    /// Forget items' vectors durably.
    pub fn delete(&self, ids: &[&str]) -> Result<()> {
        let present: Vec<&str> = {
            let rows = self.rows.read();
            ids.iter().copied().filter(|id| rows.by_id.contains_key(*id)).collect()
        };
        if present.is_empty() {
            return Ok(());
        }
        let mut bytes = Vec::new();
        for id in &present {
            encode(DELETE, id, 0, &[], &mut bytes);
        }
        {
            let mut file = self.file.lock();
            file.write_all(&bytes)?;
            file.sync_data()?;
        }
        let mut rows = self.rows.write();
        for id in present {
            rows.delete(id);
        }
        Ok(())
    }

    /// Rebuild the inverted-file index when enough rows arrived since the last build.
    pub fn maintain(&self) {
        let (built, total) = {
            let rows = self.rows.read();
            (rows.built, rows.rows.len())
        };
        if total - built > (built / 5).max(1000) || (built == 0 && total > 0) {
            self.rebuild_index();
        }
    }

    fn rebuild_index(&self) {
        let (data, total) = {
            let rows = self.rows.read();
            (rows.data.clone(), rows.rows.len())
        };
        if total == 0 {
            return;
        }
        let index = IvfIndex::build(&data, self.dim, IvfIndex::clusters_for(total), 7);
        let mut rows = self.rows.write();
        rows.ivf = Some(Arc::new(index));
        rows.built = total;
        tracing::debug!(space = %self.name, rows = total, "vector index rebuilt");
    }

    /// The `k` nearest items to `query` (unit length) accepted by `accept`, best first.
    /// `probe` is how many indexed vectors are scored at least.
    pub fn search(&self, query: &[f32], k: usize, probe: usize, accept: &dyn Fn(&str) -> bool) -> Vec<(Arc<str>, f32)> {
        if query.len() != self.dim || k == 0 {
            return Vec::new();
        }
        let rows = self.rows.read();
        let mut top = TopK::new(k);
        if let Some(ivf) = &rows.ivf {
            let found = ivf.search(&rows.data, query, k, probe, |r| {
                let row = &rows.rows[r as usize];
                !row.alive || !accept(&row.id)
            });
            for (r, score) in found {
                top.push(r, score);
            }
        }
        for r in rows.built..rows.rows.len() {
            let row = &rows.rows[r];
            if !row.alive {
                continue;
            }
            let score = dot(query, &rows.data[r * self.dim..(r + 1) * self.dim]);
            if top.admits(score) && accept(&row.id) {
                top.push(r as u32, score);
            }
        }
        top.into_sorted().into_iter().map(|(r, s)| (rows.rows[r as usize].id.clone(), s)).collect()
    }

    /// Exact search (for tests and recall measurements).
    pub fn search_exact(&self, query: &[f32], k: usize) -> Vec<(Arc<str>, f32)> {
        let rows = self.rows.read();
        let mut top = TopK::new(k);
        for (r, row) in rows.rows.iter().enumerate() {
            if row.alive {
                let score = dot(query, &rows.data[r * self.dim..(r + 1) * self.dim]);
                if top.admits(score) {
                    top.push(r as u32, score);
                }
            }
        }
        top.into_sorted().into_iter().map(|(r, s)| (rows.rows[r as usize].id.clone(), s)).collect()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Rows {
    fn put(&mut self, id: Arc<str>, hash: u64, vector: &[f32]) {
        self.delete(&id);
        let row = self.rows.len() as u32;
        self.rows.push(Row { id: id.clone(), hash, alive: true });
        self.data.extend_from_slice(vector);
        self.by_id.insert(id, row);
    }

    fn delete(&mut self, id: &str) {
        if let Some(row) = self.by_id.remove(id) {
            self.rows[row as usize].alive = false;
            self.dead += 1;
        }
    }
}

/// The default number of indexed vectors scored per query for a space of `n`.
pub fn default_probe(n: usize, k: usize) -> usize {
    (n / 16).max(2_000).max(k * 20)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn clustered(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let centres: Vec<Vec<f32>> = (0..50).map(|_| (0..dim).map(|_| rng.gen_range(-1.0..1.0)).collect()).collect();
        (0..n)
            .map(|_| {
                let c = &centres[rng.gen_range(0..centres.len())];
                c.iter().map(|x| x + rng.gen_range(-0.6..0.6)).collect()
            })
            .collect()
    }

    #[test]
    fn approximate_search_recalls_the_exact_neighbours() {
        let dir = tempfile::tempdir().unwrap();
        let space = VectorSpace::open("text", &dir.path().join("text.vec"), 32).unwrap();
        let vectors = clustered(30_000, 32, 1);
        let ids: Vec<String> = (0..vectors.len()).map(|i| format!("i{i}")).collect();
        let entries: Vec<(&str, u64, &[f32])> =
            ids.iter().zip(&vectors).map(|(id, v)| (id.as_str(), 0, v.as_slice())).collect();
        space.put(&entries).unwrap();
        space.maintain();
        let queries = clustered(200, 32, 2);
        let mut found = 0;
        for q in &queries {
            let q = unit(q);
            let exact: Vec<Arc<str>> = space.search_exact(&q, 10).into_iter().map(|(id, _)| id).collect();
            let approximate = space.search(&q, 10, default_probe(space.len(), 10), &|_| true);
            found += approximate.iter().filter(|(id, _)| exact.contains(id)).count();
        }
        let recall = found as f64 / (queries.len() * 10) as f64;
        assert!(recall >= 0.95, "recall@10 {recall}");
    }

    #[test]
    fn vectors_survive_reopen_and_deletes_and_torn_tails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("image.vec");
        {
            let space = VectorSpace::open("image", &path, 3).unwrap();
            space.put(&[("a", 1, &[1.0, 0.0, 0.0]), ("b", 2, &[0.0, 2.0, 0.0])]).unwrap();
            space.delete(&["a"]).unwrap();
            space.put(&[("c", 3, &[0.0, 0.0, 3.0])]).unwrap();
        }
        // A torn record at the end is cut.
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(&[9, 0, 0, 0, 1, 2]).unwrap();
        let space = VectorSpace::open("image", &path, 99).unwrap();
        assert_eq!(space.dim(), 3);
        assert_eq!(space.len(), 2);
        assert_eq!(space.hash_of("b"), Some(2));
        assert_eq!(space.hash_of("a"), None);
        assert_eq!(space.vector_of("c"), Some(vec![0.0, 0.0, 1.0]));
        let best = space.search(&[0.0, 1.0, 0.0], 1, 10, &|_| true);
        assert_eq!(&*best[0].0, "b");
        assert!(space.search(&[0.0, 1.0, 0.0], 2, 10, &|id| id != "b").iter().all(|(id, _)| &**id != "b"));
    }
}
