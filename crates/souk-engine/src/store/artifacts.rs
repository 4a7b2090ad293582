//! Model artifacts on disk: generations of files replaced atomically.
//!
//! ```text
//! DIR/models/CURRENT          name of the live generation (written last, atomically)
//! DIR/models/g-00000007/      one generation: whatever files the trainer wrote
//! ```
//! A generation is written into `g-N.tmp/`, every file synced, renamed to `g-N/`, and only
//! then `CURRENT` switched (write `CURRENT.tmp`, sync, rename, sync the directory). A
//! crash at any point leaves the previous generation live. The two newest generations are
//! kept so a reader that opened the previous one can finish.
//!
//! Every generation holds `CHECKSUMS`: one line `crc32 bytes name` per file, written at
//! commit, so `souk verify` checks every model file whatever its format.
//!
//! Erasure: a model generation holds the users it was trained on. Erasing a user writes
//! `ERASURE_PENDING` (a token that changes with every erasure); the next training, once
//! committed, removes every other generation and — when no erasure happened since that
//! training read the store — the marker ([`ArtifactStore::finish_erasure`]). Until then the
//! marker asks for that training (the server retrains for it within seconds).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};

/// The checksum list of a generation.
const CHECKSUMS: &str = "CHECKSUMS";
/// Present while a generation on disk may still hold an erased user.
const ERASURE_PENDING: &str = "ERASURE_PENDING";

/// What checking the live generation found (`souk verify`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ModelCheck {
    pub generation: Option<String>,
    pub files: u64,
    pub problems: Vec<String>,
}

fn file_checksum(path: &Path) -> Result<(u32, u64)> {
    let mut file = File::open(path).map_err(|e| io_error(path, e))?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buffer).map_err(|e| io_error(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        bytes += n as u64;
    }
    Ok((hasher.finalize(), bytes))
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::Io(std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// The `models` directory of a data directory.
#[derive(Debug, Clone)]
pub struct ArtifactStore {
    dir: PathBuf,
}

/// A generation being written; nothing is visible until [`GenerationWriter::commit`].
pub struct GenerationWriter {
    root: PathBuf,
    number: u64,
    tmp: PathBuf,
    files: Vec<PathBuf>,
}

/// A committed generation, for reading.
#[derive(Debug, Clone)]
pub struct Generation {
    pub name: String,
    dir: PathBuf,
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

fn generation_name(number: u64) -> String {
    format!("g-{number:08}")
}

impl ArtifactStore {
    pub fn new(data_dir: &Path) -> Self {
        Self { dir: super::DataDir::new(data_dir).models() }
    }

    fn generations(&self) -> Result<Vec<u64>> {
        let mut numbers = Vec::new();
        if !self.dir.exists() {
            return Ok(numbers);
        }
        for entry in fs_err::read_dir(&self.dir)? {
            let name = entry?.file_name().to_string_lossy().to_string();
            if let Some(n) = name.strip_prefix("g-").and_then(|n| n.parse::<u64>().ok()) {
                numbers.push(n);
            }
        }
        numbers.sort_unstable();
        Ok(numbers)
    }

    /// Record that a user was erased: every generation now on disk may hold them. Durable
    /// when this returns. Nothing to do while no generation exists.
    pub fn mark_erasure(&self) -> Result<()> {
        if self.generations()?.is_empty() {
            return Ok(());
        }
        let previous = self.erasure_token().unwrap_or(0);
        let token = previous.max(now_nanos()) + 1;
        let tmp = self.dir.join(format!("{ERASURE_PENDING}.tmp"));
        {
            let mut file = File::create(&tmp).map_err(|e| io_error(&tmp, e))?;
            file.write_all(token.to_string().as_bytes())?;
            file.sync_all()?;
        }
        fs_err::rename(&tmp, self.dir.join(ERASURE_PENDING))?;
        fs_err::File::open(&self.dir)?.sync_all()?;
        Ok(())
    }

    /// The token of the latest erasure not yet trained away, if any. A training reads it
    /// before it reads the store and hands it to [`ArtifactStore::finish_erasure`].
    pub fn erasure_token(&self) -> Option<u128> {
        fs_err::read_to_string(self.dir.join(ERASURE_PENDING)).ok().and_then(|t| t.trim().parse().ok())
    }

    /// After a training committed a generation: when an erasure is pending, remove every
    /// generation but the live one, and clear the marker if no erasure happened since the
    /// training read `token` (a later one waits for the next training).
    pub fn finish_erasure(&self, token: Option<u128>) -> Result<()> {
        let Some(pending) = self.erasure_token() else { return Ok(()) };
        let Some(live) = self.current()? else { return Ok(()) };
        for number in self.generations()? {
            let name = generation_name(number);
            if name != live.name {
                fs_err::remove_dir_all(self.dir.join(name))?;
            }
        }
        fs_err::File::open(&self.dir)?.sync_all()?;
        if token == Some(pending) {
            fs_err::remove_file(self.dir.join(ERASURE_PENDING))?;
            fs_err::File::open(&self.dir)?.sync_all()?;
        }
        Ok(())
    }

    /// Start writing a new generation.
    pub fn begin(&self) -> Result<GenerationWriter> {
        fs_err::create_dir_all(&self.dir)?;
        let number = self.generations()?.last().map_or(1, |n| n + 1);
        let tmp = self.dir.join(format!("{}.tmp", generation_name(number)));
        if tmp.exists() {
            fs_err::remove_dir_all(&tmp)?;
        }
        fs_err::create_dir_all(&tmp)?;
        Ok(GenerationWriter { root: self.dir.clone(), number, tmp, files: Vec::new() })
    }

    /// Check the live generation's files (no generation: nothing to check).
    pub fn verify_current(&self) -> Result<ModelCheck> {
        match self.current() {
            Ok(Some(generation)) => generation.verify(),
            Ok(None) => Ok(ModelCheck::default()),
            Err(e) => Ok(ModelCheck { generation: None, files: 0, problems: vec![e.to_string()] }),
        }
    }

    /// The live generation, if any.
    pub fn current(&self) -> Result<Option<Generation>> {
        let path = self.dir.join("CURRENT");
        if !path.exists() {
            return Ok(None);
        }
        let name = fs_err::read_to_string(&path)?.trim().to_string();
        let dir = self.dir.join(&name);
        if !name.starts_with("g-") || !dir.is_dir() {
            return Err(Error::Corrupt { path, message: format!("names a missing generation {name:?}") });
        }
        Ok(Some(Generation { name, dir }))
    }
}

fn check_file_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(Error::Internal(format!("invalid artifact file name {name:?}")));
    }
    Ok(())
}

impl GenerationWriter {
    /// Create a file in the generation.
    pub fn create(&mut self, name: &str) -> Result<BufWriter<File>> {
        check_file_name(name)?;
        let path = self.tmp.join(name);
        let file = File::create(&path)
            .map_err(|e| Error::Io(std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))))?;
        self.files.push(path);
        Ok(BufWriter::with_capacity(1 << 20, file))
    }

    /// Make the generation durable and live.
    pub fn commit(self) -> Result<Generation> {
        let mut sums = String::new();
        for path in &self.files {
            fs_err::File::open(path)?.sync_all()?;
            let (crc, bytes) = file_checksum(path)?;
            let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            sums.push_str(&format!("{crc:08x} {bytes} {name}\n"));
        }
        {
            let path = self.tmp.join(CHECKSUMS);
            let mut file = File::create(&path).map_err(|e| io_error(&path, e))?;
            file.write_all(sums.as_bytes())?;
            file.sync_all()?;
        }
        let name = generation_name(self.number);
        let dir = self.root.join(&name);
        fs_err::rename(&self.tmp, &dir)?;
        let current_tmp = self.root.join("CURRENT.tmp");
        {
            let mut file = fs_err::File::create(&current_tmp)?;
            file.write_all(name.as_bytes())?;
            file.sync_all()?;
        }
        fs_err::rename(&current_tmp, self.root.join("CURRENT"))?;
        fs_err::File::open(&self.root)?.sync_all()?;
        // Keep this generation and the one before it.
        let store = ArtifactStore { dir: self.root.clone() };
        for old in store.generations()?.into_iter().filter(|n| *n + 1 < self.number) {
            let _ = fs_err::remove_dir_all(self.root.join(generation_name(old)));
        }
        Ok(Generation { name, dir })
    }
}

impl Generation {
    /// Check every file against the generation's checksum list.
    pub fn verify(&self) -> Result<ModelCheck> {
        let mut check = ModelCheck { generation: Some(self.name.clone()), ..ModelCheck::default() };
        let list = self.dir.join(CHECKSUMS);
        if !list.exists() {
            check.problems.push(format!("{}: no checksum list (written by an older build; retrain)", self.name));
            return Ok(check);
        }
        for line in fs_err::read_to_string(&list)?.lines().filter(|l| !l.is_empty()) {
            let mut parts = line.splitn(3, ' ');
            let (Some(crc), Some(bytes), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
                check.problems.push(format!("{}: unreadable checksum line {line:?}", self.name));
                continue;
            };
            check.files += 1;
            let path = self.dir.join(name);
            if !path.is_file() {
                check.problems.push(format!("{}/{name}: missing", self.name));
                continue;
            }
            let (found_crc, found_bytes) = file_checksum(&path)?;
            if format!("{found_crc:08x}") != crc || found_bytes.to_string() != bytes {
                check.problems.push(format!(
                    "{}/{name}: checksum mismatch (stored {crc}, {bytes} bytes; found {found_crc:08x}, {found_bytes} bytes)",
                    self.name
                ));
            }
        }
        Ok(check)
    }

    /// The generation's checksum list (`crc32 bytes name` per file): equal lists, equal
    /// generations — how a replica tells whether it has a shared generation already.
    pub fn checksums(&self) -> Result<String> {
        Ok(fs_err::read_to_string(self.dir.join(CHECKSUMS))?)
    }

    /// The generation's files in the order they were written (from the checksum list).
    pub fn file_names(&self) -> Result<Vec<String>> {
        Ok(self.checksums()?.lines().filter_map(|line| line.splitn(3, ' ').nth(2)).map(str::to_string).collect())
    }

    pub fn open(&self, name: &str) -> Result<BufReader<File>> {
        check_file_name(name)?;
        let path = self.dir.join(name);
        let file = File::open(&path)
            .map_err(|e| Error::Io(std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))))?;
        Ok(BufReader::with_capacity(1 << 20, file))
    }

    pub fn exists(&self, name: &str) -> bool {
        self.dir.join(name).is_file()
    }
}

/// Model generations kept where every process sharing a store can read them (see
/// [`super::Storage::shared_models`]): one trainer at a time, generations numbered in the
/// order they were published, each copied into a process's own `models` directory before
/// it serves it.
pub trait SharedModels: Send + Sync {
    /// Take the one training slot of every process sharing the store, or `None` when
    /// another process holds it. The slot is held until the lease is dropped.
    fn training_lease(&self) -> Result<Option<TrainingLease>>;
    /// Publish a committed generation; returns its shared number.
    fn publish(&self, generation: &Generation) -> Result<u64>;
    /// The newest published generation: its number and checksum list.
    fn newest(&self) -> Result<Option<(u64, String)>>;
    /// Copy published generation `number` into `into` and make it the live one there.
    fn fetch(&self, number: u64, into: &ArtifactStore) -> Result<Generation>;
}

/// Held while this process trains for every process sharing a store (see
/// [`SharedModels::training_lease`]).
pub struct TrainingLease(#[allow(dead_code)] Box<dyn std::any::Any + Send>);

impl TrainingLease {
    pub fn new(holder: Box<dyn std::any::Any + Send>) -> Self {
        Self(holder)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn generations_switch_atomically_and_old_ones_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::new(dir.path());
        assert!(store.current().unwrap().is_none());
        for round in 1..=4u8 {
            let mut writer = store.begin().unwrap();
            writer.create("a.bin").unwrap().write_all(&[round]).unwrap();
            // An uncommitted generation is invisible.
            if round > 1 {
                let live = store.current().unwrap().unwrap();
                let mut byte = [0u8];
                live.open("a.bin").unwrap().read_exact(&mut byte).unwrap();
                assert_eq!(byte[0], round - 1);
            }
            writer.commit().unwrap();
        }
        let live = store.current().unwrap().unwrap();
        assert_eq!(live.name, "g-00000004");
        assert_eq!(store.generations().unwrap(), vec![3, 4]);
        assert!(store.begin().unwrap().create("../escape").is_err());
    }

    #[test]
    fn an_erasure_is_trained_away_only_by_a_training_that_began_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::new(dir.path());
        store.mark_erasure().unwrap();
        assert_eq!(store.erasure_token(), None, "no generation, nothing to erase from");
        let commit = |byte: u8| {
            let mut writer = store.begin().unwrap();
            writer.create("users.txt").unwrap().write_all(&[byte]).unwrap();
            writer.commit().unwrap()
        };
        commit(1);
        commit(2);
        store.mark_erasure().unwrap();
        let first = store.erasure_token().unwrap();
        // A training that read the store before a second erasure...
        let read_before = store.erasure_token();
        store.mark_erasure().unwrap();
        assert!(store.erasure_token().unwrap() > first);
        commit(3);
        store.finish_erasure(read_before).unwrap();
        // ...leaves only its own generation, and the marker for the next training.
        assert_eq!(store.generations().unwrap(), vec![3]);
        assert!(store.erasure_token().is_some());
        let read_after = store.erasure_token();
        commit(4);
        store.finish_erasure(read_after).unwrap();
        assert_eq!(store.generations().unwrap(), vec![4]);
        assert_eq!(store.erasure_token(), None);
        // Without a pending erasure, the previous generation is kept as usual.
        commit(5);
        store.finish_erasure(None).unwrap();
        assert_eq!(store.generations().unwrap(), vec![4, 5]);
    }

    #[test]
    fn verify_finds_a_changed_model_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::new(dir.path());
        let mut writer = store.begin().unwrap();
        writer.create("a.bin").unwrap().write_all(&[1, 2, 3, 4]).unwrap();
        writer.create("b.json").unwrap().write_all(b"{}").unwrap();
        let live = writer.commit().unwrap();
        let check = store.verify_current().unwrap();
        assert_eq!((check.files, check.problems.len()), (2, 0), "{check:?}");
        fs_err::write(live.dir.join("a.bin"), [1, 2, 9, 4]).unwrap();
        let check = store.verify_current().unwrap();
        assert_eq!(check.problems.len(), 1);
        assert!(check.problems[0].contains("a.bin"), "{check:?}");
    }
}
