//! all-MiniLM-L6-v2 (and any sentence-transformers folder of the same shape: a BERT
//! checkpoint, a WordPiece `tokenizer.json`, mean pooling, normalisation).
//!
//! The folder holds `config.json` (the BERT shape), `model.safetensors` (weights under
//! `BertModel` names), `tokenizer.json`, `1_Pooling/config.json` and, optionally,
//! `sentence_bert_config.json` (`max_seq_length`; 256 for this model). The tokenizer file ships
//! with truncation at 128 and fixed padding to 128 built in; sentence-transformers overrides
//! both when it encodes, and so do we: truncation at `max_seq_length`, no padding (batches are
//! padded to their own longest sequence).
//!
//! Weights are read into memory with a plain read (about 90 MB), not mapped: mapping a file is
//! `unsafe`, and loading happens once per process.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use serde::Deserialize;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::bert::{embed_sequences, BertConfig, BertEncoder, HiddenActivation};
use crate::{EmbedError, Embedder, TextKind};

/// The identifier [`Embedder::id`] reports for a [`MiniLm`].
pub const MINILM_ID: &str = "all-MiniLM-L6-v2";

/// A loaded sentence-transformers BERT model with mean pooling. Cheap to share: `embed` takes
/// `&self` and may run on many threads at once.
pub struct MiniLm {
    encoder: BertEncoder,
    tokenizer: Tokenizer,
    max_seq_length: usize,
    lowercase: bool,
    pad_id: u32,
}

/// The fields of Hugging Face's `config.json` that shape a BERT encoder.
#[derive(Deserialize)]
struct HfBertConfig {
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    hidden_act: String,
    max_position_embeddings: usize,
    type_vocab_size: usize,
    layer_norm_eps: f64,
    #[serde(default)]
    pad_token_id: u32,
    #[serde(default)]
    position_embedding_type: Option<String>,
    #[serde(default)]
    model_type: Option<String>,
}

/// `1_Pooling/config.json`. Every mode is listed so that a model asking for one we do not
/// implement is refused instead of silently mean-pooled.
#[derive(Deserialize)]
struct PoolingConfig {
    word_embedding_dimension: usize,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
    #[serde(default)]
    pooling_mode_weightedmean_tokens: bool,
    #[serde(default)]
    pooling_mode_lasttoken: bool,
}

/// `sentence_bert_config.json`.
#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: usize,
    #[serde(default)]
    do_lower_case: bool,
}

/// The path of a file that must exist in the model folder.
fn required_file(dir: &Path, name: &str) -> Result<PathBuf, EmbedError> {
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(EmbedError::MissingFile { path })
    }
}

fn read_bytes(path: &Path) -> Result<Vec<u8>, EmbedError> {
    std::fs::read(path).map_err(|source| EmbedError::Io { path: path.to_path_buf(), source })
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, EmbedError> {
    let bytes = read_bytes(path)?;
    serde_json::from_slice(&bytes).map_err(|error| EmbedError::bad_config(path, error))
}

impl MiniLm {
    /// Loads the model folder `dir`, checking every file before any weight is used: a missing
    /// file, a config this encoder cannot run, or weights that do not fit the config each give
    /// an error naming the file.
    pub fn load(dir: &Path) -> Result<MiniLm, EmbedError> {
        if !dir.is_dir() {
            return Err(EmbedError::MissingFile { path: dir.to_path_buf() });
        }
        let config_path = required_file(dir, "config.json")?;
        let weights_path = required_file(dir, "model.safetensors")?;
        let tokenizer_path = required_file(dir, "tokenizer.json")?;
        let pooling_path = required_file(dir, "1_Pooling/config.json")?;

        let hf: HfBertConfig = read_json(&config_path)?;
        let config = bert_config(&hf).map_err(|message| EmbedError::bad_config(&config_path, message))?;

        let pooling: PoolingConfig = read_json(&pooling_path)?;
        check_pooling(&pooling, config.hidden_size)
            .map_err(|message| EmbedError::bad_config(&pooling_path, message))?;

        // Without sentence_bert_config.json, sentence-transformers uses the longest input the
        // position table allows; so do we.
        let sentence_bert_path = dir.join("sentence_bert_config.json");
        let (max_seq_length, lowercase) = if sentence_bert_path.is_file() {
            let sentence_bert: SentenceBertConfig = read_json(&sentence_bert_path)?;
            if sentence_bert.max_seq_length == 0 || sentence_bert.max_seq_length > config.max_tokens() {
                return Err(EmbedError::bad_config(
                    &sentence_bert_path,
                    format!(
                        "max_seq_length must be between 1 and the model's {} positions, found {}",
                        config.max_tokens(),
                        sentence_bert.max_seq_length
                    ),
                ));
            }
            (sentence_bert.max_seq_length, sentence_bert.do_lower_case)
        } else {
            (config.max_tokens(), false)
        };

        let tokenizer = load_tokenizer(&tokenizer_path, max_seq_length, config.vocab_size)?;

        let weights = read_bytes(&weights_path)?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)
            .map_err(|error| EmbedError::bad_weights(&weights_path, error))?;
        let encoder = BertEncoder::load(&vb, config).map_err(|error| EmbedError::bad_weights(&weights_path, error))?;

        Ok(MiniLm { encoder, tokenizer, max_seq_length, lowercase, pad_id: hf.pad_token_id })
    }

    /// Longest input in tokens, `[CLS]` and `[SEP]` included; longer texts are cut at the end.
    pub fn max_seq_length(&self) -> usize {
        self.max_seq_length
    }
}

fn bert_config(hf: &HfBertConfig) -> Result<BertConfig, String> {
    if let Some(model_type) = &hf.model_type {
        if model_type != "bert" {
            return Err(format!("expected model_type \"bert\", found {model_type:?}"));
        }
    }
    if let Some(kind) = &hf.position_embedding_type {
        if kind != "absolute" {
            return Err(format!("expected position_embedding_type \"absolute\", found {kind:?}"));
        }
    }
    let hidden_activation = HiddenActivation::from_hf_name(&hf.hidden_act)
        .ok_or_else(|| format!("expected hidden_act gelu, gelu_new or relu, found {:?}", hf.hidden_act))?;
    let config = BertConfig {
        vocab_size: hf.vocab_size,
        hidden_size: hf.hidden_size,
        num_hidden_layers: hf.num_hidden_layers,
        num_attention_heads: hf.num_attention_heads,
        intermediate_size: hf.intermediate_size,
        hidden_activation,
        max_position_embeddings: hf.max_position_embeddings,
        type_vocab_size: hf.type_vocab_size,
        layer_norm_eps: hf.layer_norm_eps,
        position_offset: 0,
    };
    config.validate()?;
    Ok(config)
}

fn check_pooling(pooling: &PoolingConfig, hidden_size: usize) -> Result<(), String> {
    let other_modes = pooling.pooling_mode_cls_token
        || pooling.pooling_mode_max_tokens
        || pooling.pooling_mode_mean_sqrt_len_tokens
        || pooling.pooling_mode_weightedmean_tokens
        || pooling.pooling_mode_lasttoken;
    if !pooling.pooling_mode_mean_tokens || other_modes {
        return Err("expected mean pooling only (pooling_mode_mean_tokens alone set)".to_string());
    }
    if pooling.word_embedding_dimension != hidden_size {
        return Err(format!(
            "word_embedding_dimension {} differs from the model's hidden_size {hidden_size}",
            pooling.word_embedding_dimension
        ));
    }
    Ok(())
}

fn load_tokenizer(path: &Path, max_seq_length: usize, vocab_size: usize) -> Result<Tokenizer, EmbedError> {
    let mut tokenizer = Tokenizer::from_file(path)
        .map_err(|error| EmbedError::tokenizer(format!("cannot load {}: {error}", path.display())))?;
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: max_seq_length,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
            direction: TruncationDirection::Right,
        }))
        .map_err(|error| EmbedError::tokenizer(format!("cannot truncate at {max_seq_length} tokens: {error}")))?;
    let tokenizer_vocab = tokenizer.get_vocab_size(true);
    if tokenizer_vocab > vocab_size {
        return Err(EmbedError::tokenizer(format!(
            "{} has {tokenizer_vocab} tokens but the model embeds only {vocab_size}",
            path.display()
        )));
    }
    Ok(tokenizer)
}

impl Embedder for MiniLm {
    fn id(&self) -> &str {
        MINILM_ID
    }

    fn dim(&self) -> usize {
        self.encoder.config().hidden_size
    }

    /// MiniLM was trained without prefixes: queries and passages are encoded alike.
    fn embed(&self, texts: &[&str], _kind: TextKind) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = if self.lowercase {
            let lowered: Vec<String> = texts.iter().map(|text| text.to_lowercase()).collect();
            self.tokenizer.encode_batch(lowered, true)
        } else {
            self.tokenizer.encode_batch(texts.to_vec(), true)
        }
        .map_err(EmbedError::tokenizer)?;
        let sequences: Vec<&[u32]> = encodings.iter().map(|encoding| encoding.get_ids()).collect();
        Ok(embed_sequences(&self.encoder, &sequences, self.pad_id)?)
    }
}
