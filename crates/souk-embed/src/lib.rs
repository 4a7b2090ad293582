//! Sentence embeddings on the CPU: text in, unit-length `f32` vectors out.
//!
//! [`Embedder`] is the contract the rest of Souk sees. Both models run one small BERT encoder
//! of our own on candle (`bert`): [`MiniLm`] for all-MiniLM-L6-v2 (English; f32 safetensors,
//! WordPiece through the tokenizers crate) and [`E5Small`] for multilingual-e5-small (Chinese
//! too; 4-bit weights and a unigram vocabulary in one "E5S1" file, `e5`). Loading reads a model folder; embedding is a pure function
//! of the loaded weights and the input texts: this crate never touches the network, never
//! writes files, and reads no environment variables.
//!
//! Threads: MiniLM's heavy work (candle's f32 matrix products, GELU, batch tokenisation) runs on
//! the current rayon pool, so a caller bounds it with `ThreadPool::install`; otherwise it uses
//! the global pool, every core, which is what batch embedding wants. candle splits each matrix
//! product into `RAYON_NUM_THREADS` parts (default: the physical cores), and its 4-bit matrix
//! product (E5) runs on a pool of its own of `CANDLE_NUM_THREADS` threads (default: the same),
//! which only those variables bound.

mod batcher;
mod bert;
mod dense;
mod e5;
mod error;
mod gelu;
mod minilm;
pub mod throughput;

use std::num::NonZeroUsize;

pub use batcher::QueryBatcher;
pub use e5::{E5Small, E5_SMALL_ID};
pub use error::EmbedError;
pub use minilm::{MiniLm, MINILM_ID};

/// What a text is, for models trained with different prefixes for the two sides of a search
/// (E5: "query: " / "passage: "). Models without prefixes ignore it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TextKind {
    /// What a shopper types.
    Query,
    /// What is searched: a product title, a description.
    Passage,
}

/// A sentence-embedding model.
pub trait Embedder: Send + Sync {
    /// Names the model; vectors from embedders with different ids are not comparable.
    fn id(&self) -> &str;

    /// Length of every vector this embedder returns.
    fn dim(&self) -> usize;

    /// One L2-normalised vector of length [`Embedder::dim`] per text, in order. Texts longer
    /// than the model's input are truncated; an empty text is valid.
    fn embed(&self, texts: &[&str], kind: TextKind) -> Result<Vec<Vec<f32>>, EmbedError>;
}

/// Embeds `texts` in batches of at most `batch_size`, calling `progress` with the number of
/// texts done after each batch. Texts are grouped by length first (the result keeps the input
/// order), so each batch pads little; that alone is often worth 2× on mixed-length input.
pub fn embed_batched(
    embedder: &dyn Embedder,
    texts: &[&str],
    kind: TextKind,
    batch_size: usize,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<Vec<f32>>, EmbedError> {
    let batch_size = NonZeroUsize::new(batch_size)
        .ok_or_else(|| EmbedError::BadInput { message: "batch size must be at least 1, found 0".to_string() })?;
    // Length in bytes stands in for length in tokens: it costs nothing and orders them closely.
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&index| texts[index].len());
    let mut vectors: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
    let mut done = 0;
    for chunk in order.chunks(batch_size.get()) {
        let batch: Vec<&str> = chunk.iter().map(|&index| texts[index]).collect();
        let embedded = embedder.embed(&batch, kind)?;
        if embedded.len() != batch.len() {
            return Err(EmbedError::BadInput {
                message: format!(
                    "embedder {} returned {} vectors for {} texts",
                    embedder.id(),
                    embedded.len(),
                    batch.len()
                ),
            });
        }
        for (&index, vector) in chunk.iter().zip(embedded) {
            vectors[index] = vector;
        }
        done += chunk.len();
        progress(done);
    }
    Ok(vectors)
}

/// Cosine similarity of two vectors of equal length (for unit vectors, their dot product).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm_a = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let norm_b = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm_a == 0.0 || norm_b == 0.0 {
        0.0
    } else {
        dot / (norm_a * norm_b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Embeds a text as (length, 1), normalised, and records every batch it is given.
    struct LengthEmbedder {
        batches: std::sync::Mutex<Vec<Vec<String>>>,
    }

    impl Embedder for LengthEmbedder {
        fn id(&self) -> &str {
            "length"
        }
        fn dim(&self) -> usize {
            2
        }
        fn embed(&self, texts: &[&str], _kind: TextKind) -> Result<Vec<Vec<f32>>, EmbedError> {
            self.batches.lock().unwrap().push(texts.iter().map(|text| text.to_string()).collect());
            Ok(texts
                .iter()
                .map(|text| {
                    let x = text.len() as f32;
                    let norm = (x * x + 1.0).sqrt();
                    vec![x / norm, 1.0 / norm]
                })
                .collect())
        }
    }

    #[test]
    fn batched_keeps_input_order_and_reports_progress() {
        let embedder = LengthEmbedder { batches: Default::default() };
        let texts = ["ccc", "a", "bbbbb", "dd", ""];
        let mut reported = Vec::new();
        let vectors = embed_batched(&embedder, &texts, TextKind::Passage, 2, &mut |done| reported.push(done)).unwrap();
        let direct = embedder.embed(&texts, TextKind::Passage).unwrap();
        assert_eq!(vectors, direct);
        assert_eq!(reported, vec![2, 4, 5]);
        let batches = embedder.batches.lock().unwrap();
        // Grouped by length: the two shortest first.
        assert_eq!(batches[0], vec!["", "a"]);
        assert_eq!(batches.iter().take(3).map(Vec::len).collect::<Vec<_>>(), vec![2, 2, 1]);
    }

    #[test]
    fn batched_refuses_batch_size_zero() {
        let embedder = LengthEmbedder { batches: Default::default() };
        let error = embed_batched(&embedder, &["a"], TextKind::Query, 0, &mut |_| {}).unwrap_err();
        assert_eq!(error.to_string(), "bad input: batch size must be at least 1, found 0");
    }

    #[test]
    fn cosine_of_parallel_orthogonal_and_zero_vectors() {
        assert!((cosine(&[1.0, 2.0], &[2.0, 4.0]) - 1.0).abs() < 1e-6);
        assert_eq!(cosine(&[1.0, 0.0], &[0.0, 3.0]), 0.0);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
    }
}
