//! Snapshots of a data directory, consistent while a server writes to it, and restore.
//!
//! What a snapshot holds, and how each part stays consistent without stopping the writer:
//! - **Events.** `SEALED` and `DURABLE` are read first, then the segments listed. Every
//!   segment but the newest is complete (a segment stops being the newest only when the log
//!   rotates, after its last write), so it is hard-linked (copied across file systems). The
//!   newest is copied as it is: its end may hold a frame being written, which the restored
//!   log's recovery truncates as a torn tail — the durable mark copied with it was read
//!   before the copy, so it never points past what was copied.
//! - **Catalog.** `VACUUM INTO` copies the SQLite database within one read transaction: one
//!   consistent state, while the server keeps writing (write-ahead log mode).
//! - **Models.** The live generation (`models/CURRENT` and its folder); a generation's files
//!   never change once it is committed.
//! - **Ranker logs and the online click model** (`rank/`): copied; a torn last line of a
//!   feature log is skipped by its reader.
//! - The search index is not copied: it is derived from the catalog and rebuilt on first
//!   serve (`souk index` builds it ahead).
//!
//! A snapshot is written into `TARGET.partial` and renamed into place when complete, so a
//! folder named `TARGET` is always a whole snapshot. Restoring copies a snapshot into an
//! absent or empty data directory the same way and checks it with [`EmbeddedStore::verify`].

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::log::segment_numbers;
use super::{DataDir, EmbeddedStore, VerifyReport};
use crate::error::{Error, Result};

/// What a snapshot or a restore wrote.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SnapshotReport {
    /// Event-log segments hard-linked (complete segments on the same file system).
    pub segments_linked: usize,
    /// Event-log segments copied (the newest, and any on another file system).
    pub segments_copied: usize,
    /// Bytes copied (hard links count nothing).
    pub bytes_copied: u64,
    pub catalog: bool,
    /// The model generation included, if the directory had one.
    pub model_generation: Option<String>,
    /// Files of `rank/` (feature logs, the online click model).
    pub rank_files: usize,
}

/// Write a snapshot of the data directory `data_dir` into `target` (which must not exist).
/// Safe while a server owns `data_dir`: nothing there is locked or changed.
pub fn snapshot(data_dir: &Path, target: &Path) -> Result<SnapshotReport> {
    let source = DataDir::new(data_dir);
    if !source.format_file().exists() {
        return Err(Error::not_found("data directory", data_dir.display().to_string()));
    }
    if target.exists() {
        return Err(Error::Coded {
            code: "conflict",
            message: format!("{} already exists; a snapshot goes into a new folder", target.display()),
        });
    }
    let partial = fresh_folder(&partial_path(target))?;
    let out = DataDir::new(&partial);
    let mut report = SnapshotReport::default();

    fs_err::copy(source.format_file(), out.format_file())?;
    copy_events(&source.events(), &out.events(), &mut report, true)?;
    if source.catalog().exists() {
        let connection = rusqlite::Connection::open(source.catalog())?;
        connection.busy_timeout(std::time::Duration::from_secs(10))?;
        let target_catalog = out.catalog();
        connection.execute("VACUUM INTO ?1", [target_catalog.to_string_lossy()])?;
        report.catalog = true;
    }
    copy_models(&source.models(), &out.models(), &mut report, true)?;
    copy_plain_folder(&source.rank(), &out.rank(), &mut report)?;
    if source.ground_truth().exists() {
        fs_err::copy(source.ground_truth(), out.ground_truth())?;
    }
    sync_tree(&partial)?;
    fs_err::rename(&partial, target)?;
    sync_parent(target)?;
    Ok(report)
}

/// Restore the snapshot `snapshot` into `data_dir` (absent or empty), then check the result:
/// every segment, the catalog and the model files. The snapshot is left as it was.
pub fn restore(snapshot: &Path, data_dir: &Path) -> Result<(SnapshotReport, VerifyReport)> {
    let source = DataDir::new(snapshot);
    if !source.format_file().exists() {
        return Err(Error::not_found("snapshot", snapshot.display().to_string()));
    }
    if data_dir.exists() && fs_err::read_dir(data_dir)?.next().is_some() {
        return Err(Error::Coded {
            code: "conflict",
            message: format!("{} is not empty; restore into a new or empty data directory", data_dir.display()),
        });
    }
    let partial = fresh_folder(&partial_path(data_dir))?;
    let out = DataDir::new(&partial);
    let mut report = SnapshotReport::default();
    fs_err::copy(source.format_file(), out.format_file())?;
    // The restored directory must not share inodes with the snapshot: every byte is copied.
    copy_events(&source.events(), &out.events(), &mut report, false)?;
    if source.catalog().exists() {
        report.bytes_copied += fs_err::copy(source.catalog(), out.catalog())?;
        report.catalog = true;
    }
    copy_models(&source.models(), &out.models(), &mut report, false)?;
    copy_plain_folder(&source.rank(), &out.rank(), &mut report)?;
    if source.ground_truth().exists() {
        fs_err::copy(source.ground_truth(), out.ground_truth())?;
    }
    sync_tree(&partial)?;
    if data_dir.exists() {
        fs_err::remove_dir(data_dir)?;
    }
    fs_err::rename(&partial, data_dir)?;
    sync_parent(data_dir)?;
    let verified = EmbeddedStore::verify(data_dir)?;
    Ok((report, verified))
}

fn partial_path(target: &Path) -> PathBuf {
    let mut name = target.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".partial");
    target.with_file_name(name)
}

/// `path` as a new empty folder (a left-over one from an interrupted run is removed).
fn fresh_folder(path: &Path) -> Result<PathBuf> {
    if path.exists() {
        fs_err::remove_dir_all(path)?;
    }
    fs_err::create_dir_all(path)?;
    Ok(path.to_path_buf())
}

/// Hard-link `from` to `to` when `link` allows and the file system does; copy otherwise.
fn link_or_copy(from: &Path, to: &Path, link: bool, report: &mut SnapshotReport) -> Result<bool> {
    if link && std::fs::hard_link(from, to).is_ok() {
        return Ok(true);
    }
    report.bytes_copied += fs_err::copy(from, to)?;
    Ok(false)
}

/// Copy the event log, again if a compaction swapped it meanwhile (the folder under the
/// name changed, or a file vanished): a copy is only kept when it came from one log.
fn copy_events(from: &Path, to: &Path, report: &mut SnapshotReport, link: bool) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let identity = || std::fs::metadata(from).ok().map(|m| (m.dev(), m.ino()));
    let mut tries = 0;
    loop {
        tries += 1;
        let before = identity();
        let mut attempt = SnapshotReport::default();
        let copied = copy_events_once(from, to, &mut attempt, link);
        let swapped = before != identity();
        match copied {
            Ok(()) if !swapped => {
                report.segments_linked += attempt.segments_linked;
                report.segments_copied += attempt.segments_copied;
                report.bytes_copied += attempt.bytes_copied;
                return Ok(());
            }
            Err(e) if !swapped && !is_not_found(&e) => return Err(e),
            Err(e) if tries >= 5 => return Err(e),
            _ if tries >= 5 => {
                return Err(Error::Internal("the event log was swapped during every try to copy it".into()))
            }
            _ => {
                tracing::info!("the event log was compacted during the snapshot's copy; copying it again");
                fs_err::remove_dir_all(to)?;
            }
        }
    }
}

fn is_not_found(error: &Error) -> bool {
    matches!(error, Error::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
}

fn copy_events_once(from: &Path, to: &Path, report: &mut SnapshotReport, link: bool) -> Result<()> {
    fs_err::create_dir_all(to)?;
    if !from.exists() {
        return Ok(());
    }
    // The lower bounds first: they never point past what is copied after them.
    for name in ["SEALED", "DURABLE"] {
        if let Ok(bytes) = std::fs::read(from.join(name)) {
            fs_err::write(to.join(name), bytes)?;
        }
    }
    let numbers = segment_numbers(from)?;
    let newest = numbers.last().copied();
    for number in numbers {
        let name = format!("seg-{number:08}.log");
        // The newest is always copied: it is still being written.
        if link_or_copy(&from.join(&name), &to.join(&name), link && Some(number) != newest, report)? {
            report.segments_linked += 1;
        } else {
            report.segments_copied += 1;
        }
    }
    Ok(())
}

fn copy_models(from: &Path, to: &Path, report: &mut SnapshotReport, link: bool) -> Result<()> {
    let current = from.join("CURRENT");
    if !current.exists() {
        return Ok(());
    }
    let name = fs_err::read_to_string(&current)?.trim().to_string();
    let generation = from.join(&name);
    if !name.starts_with("g-") || !generation.is_dir() {
        return Err(Error::Corrupt { path: current, message: format!("names a missing generation {name:?}") });
    }
    fs_err::create_dir_all(to.join(&name))?;
    for entry in fs_err::read_dir(&generation)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            link_or_copy(&entry.path(), &to.join(&name).join(entry.file_name()), link, report)?;
        }
    }
    fs_err::write(to.join("CURRENT"), format!("{name}\n"))?;
    report.model_generation = Some(name);
    Ok(())
}

fn copy_plain_folder(from: &Path, to: &Path, report: &mut SnapshotReport) -> Result<()> {
    if !from.is_dir() {
        return Ok(());
    }
    fs_err::create_dir_all(to)?;
    for entry in fs_err::read_dir(from)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            report.bytes_copied += fs_err::copy(entry.path(), to.join(entry.file_name()))?;
            report.rank_files += 1;
        }
    }
    Ok(())
}

/// `fsync` every file and folder under `root`, so a finished snapshot survives a crash.
fn sync_tree(root: &Path) -> Result<()> {
    for entry in fs_err::read_dir(root)? {
        let path = entry?.path();
        if path.is_dir() {
            sync_tree(&path)?;
        } else {
            fs_err::File::open(&path)?.sync_all()?;
        }
    }
    fs_err::File::open(root)?.sync_all()?;
    Ok(())
}

fn sync_parent(path: &Path) -> Result<()> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs_err::File::open(parent)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::ids::ItemId;
    use crate::input;
    use crate::model::Item;
    use crate::store::artifacts::ArtifactStore;
    use crate::store::{Storage, StoreConfig};

    fn events(from: u64, n: u64) -> Vec<crate::model::Event> {
        (from..from + n)
            .map(|k| {
                input::parse_event(&serde_json::json!({"id": format!("e{k}"), "type": "view",
                    "user": format!("u{}", k % 37), "item": format!("i{}", k % 101), "timestamp": 1_000 + k}))
                .unwrap()
            })
            .collect()
    }

    #[test]
    fn a_snapshot_taken_while_writing_restores_to_a_consistent_shop() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live");
        // Small segments: the snapshot spans several, and the log rotates while it runs.
        let store = Arc::new(
            EmbeddedStore::open(&live, &StoreConfig { segment_bytes: 64 * 1024, ..StoreConfig::default() }).unwrap(),
        );
        for from in (0..5_000).step_by(250) {
            store.append_events(events(from, 250)).unwrap();
        }
        let items: Vec<Item> =
            (0..101).map(|i| Item::new(ItemId::parse(format!("i{i}"), "item").unwrap(), format!("Item {i}"))).collect();
        store.put_items(items).unwrap();
        let mut generation = ArtifactStore::new(&live).begin().unwrap();
        generation.create("model.bin").unwrap().write_all(b"trained bytes").unwrap();
        let generation = generation.commit().unwrap();

        // A writer keeps appending (acknowledged batches counted) while the snapshot runs.
        let acknowledged = Arc::new(AtomicU64::new(5_000));
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (store, acknowledged, stop) = (store.clone(), acknowledged.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut next = 5_000;
                while !stop.load(Ordering::SeqCst) {
                    store.append_events(events(next, 200)).unwrap();
                    next += 200;
                    acknowledged.store(next, Ordering::SeqCst);
                }
            })
        };
        let before = acknowledged.load(Ordering::SeqCst);
        let target = dir.path().join("snap");
        let report = snapshot(&live, &target).unwrap();
        stop.store(true, Ordering::SeqCst);
        writer.join().unwrap();
        let after = acknowledged.load(Ordering::SeqCst);
        assert!(report.segments_linked >= 2, "{report:?}");
        assert_eq!(report.model_generation.as_deref(), Some(generation.name.as_str()));
        assert!(report.catalog);
        // Sealed segments are shared, not copied.
        assert!(fs_err::metadata(target.join("events/seg-00000001.log")).unwrap().nlink() >= 2);
        assert!(!partial_path(&target).exists());

        // Restored elsewhere (the live store still open): verified, and it holds every
        // event acknowledged before the snapshot began, nothing that was never written,
        // the catalog and the model generation.
        let restored = dir.path().join("restored");
        let (_, verified) = restore(&target, &restored).unwrap();
        assert!(verified.is_clean(), "{verified:?}");
        let copy = EmbeddedStore::open(&restored, &StoreConfig::default()).unwrap();
        let stats = copy.stats().unwrap();
        assert!(stats.events >= before && stats.events <= after, "{} not in {before}..={after}", stats.events);
        assert!(copy.get_item(&ItemId::parse("i100", "item").unwrap()).unwrap().is_some());
        let model = ArtifactStore::new(&restored).current().unwrap().unwrap();
        assert_eq!(
            fs_err::read(restored.join("models").join(&model.name).join("model.bin")).unwrap(),
            b"trained bytes"
        );
        // The restored directory shares no file with the snapshot.
        assert_eq!(fs_err::metadata(restored.join("events/seg-00000001.log")).unwrap().nlink(), 1);
    }

    #[test]
    fn a_snapshot_never_overwrites_and_a_restore_wants_an_empty_directory() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live");
        EmbeddedStore::open(&live, &StoreConfig::default()).unwrap().append_events(events(0, 10)).unwrap();
        let target = dir.path().join("snap");
        // A left-over partial snapshot of an interrupted run is replaced.
        fs_err::create_dir_all(partial_path(&target).join("junk")).unwrap();
        snapshot(&live, &target).unwrap();
        assert!(!target.join("junk").exists());
        let again = snapshot(&live, &target).unwrap_err();
        assert!(matches!(again, Error::Coded { code: "conflict", .. }), "{again:?}");
        let refused = restore(&target, &live).unwrap_err();
        assert!(matches!(refused, Error::Coded { code: "conflict", .. }), "{refused:?}");
        assert!(matches!(snapshot(&dir.path().join("nothing"), &dir.path().join("s2")), Err(Error::NotFound { .. })));
        // An empty folder is fine.
        let empty = dir.path().join("empty");
        fs_err::create_dir_all(&empty).unwrap();
        let (_, verified) = restore(&target, &empty).unwrap();
        assert!(verified.is_clean());
        assert_eq!(EmbeddedStore::open(&empty, &StoreConfig::default()).unwrap().stats().unwrap().events, 10);
    }
}
