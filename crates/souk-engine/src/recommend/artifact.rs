//! The on-disk form of a trained model: a versioned, checksummed container of the model's
//! name, its training parameters (JSON) and its numeric arrays.
//!
//! Owns: the byte layout and its validation. Knows nothing about what the arrays mean —
//! each model turns itself into an [`Artifact`] and back. Never opens files: callers hand
//! it a reader or writer.
//!
//! Layout (all integers little-endian):
//! ```text
//! magic        8 bytes  "SOUKRECM"
//! version      u32      FORMAT_VERSION
//! name         u32 length + UTF-8 bytes
//! params       u32 length + UTF-8 JSON bytes
//! array count  u32
//! each array   u8 kind (0 = f32, 1 = u32), u64 element count, raw elements
//! checksum     u32      CRC-32 of every byte before it
//! ```

use std::io::{Read, Write};
use std::path::PathBuf;

use crate::{Error, Result};

/// First bytes of every model artifact.
pub const MAGIC: &[u8; 8] = b"SOUKRECM";
/// Bumped whenever the layout above or any model's array list changes meaning.
pub const FORMAT_VERSION: u32 = 1;

/// Refuse absurd lengths before allocating: a corrupt length must not become an
/// out-of-memory abort. 2^34 elements = 64 GiB of f32, far above any model we train.
const MAX_ELEMENTS: u64 = 1 << 34;
const MAX_TEXT: u32 = 1 << 26;

/// One numeric array of a model.
#[derive(Debug, Clone, PartialEq)]
pub enum Array {
    F32(Vec<f32>),
    U32(Vec<u32>),
}

/// A model as data: what [`crate::recommend::registry::save_model`] writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Artifact {
    /// The registry name of the model, e.g. `als`.
    pub name: String,
    /// The parameters it was trained with, plus any shape information it needs to load.
    pub params: serde_json::Value,
    pub arrays: Vec<Array>,
}

fn corrupt(message: impl Into<String>) -> Error {
    Error::Corrupt { path: PathBuf::from("model artifact"), message: message.into() }
}

/// A writer that keeps a running CRC-32 of what passes through it.
struct Checksummed<W> {
    inner: W,
    hasher: crc32fast::Hasher,
}

impl<W: Write> Checksummed<W> {
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.hasher.update(bytes);
        self.inner.write_all(bytes)?;
        Ok(())
    }
}

/// A reader that keeps a running CRC-32 of what passes through it.
struct Verified<R> {
    inner: R,
    hasher: crc32fast::Hasher,
}

impl<R: Read> Verified<R> {
    fn take(&mut self, buf: &mut [u8]) -> Result<()> {
        self.inner.read_exact(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => corrupt("truncated"),
            _ => Error::Io(e),
        })?;
        self.hasher.update(buf);
        Ok(())
    }

    fn u32(&mut self) -> Result<u32> {
        let mut b = [0u8; 4];
        self.take(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self) -> Result<u64> {
        let mut b = [0u8; 8];
        self.take(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn text(&mut self, what: &str) -> Result<String> {
        let len = self.u32()?;
        if len > MAX_TEXT {
            return Err(corrupt(format!("{what} length {len} exceeds {MAX_TEXT}")));
        }
        let mut buf = vec![0u8; len as usize];
        self.take(&mut buf)?;
        String::from_utf8(buf).map_err(|_| corrupt(format!("{what} is not UTF-8")))
    }

    /// Read `count` 4-byte little-endian words in chunks, so a lying length fails at the
    /// end of the input instead of allocating it all up front.
    fn words(&mut self, count: u64) -> Result<Vec<[u8; 4]>> {
        let mut out = Vec::with_capacity(count.min(1 << 20) as usize);
        let mut remaining = count;
        let mut buf = vec![0u8; 4 * (1 << 16)];
        while remaining > 0 {
            let n = remaining.min(1 << 16) as usize;
            self.take(&mut buf[..4 * n])?;
            out.extend(buf[..4 * n].chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]));
            remaining -= n as u64;
        }
        Ok(out)
    }
}

impl Artifact {
    pub fn write_to(&self, writer: &mut dyn Write) -> Result<()> {
        let mut w = Checksummed { inner: writer, hasher: crc32fast::Hasher::new() };
        w.put(MAGIC)?;
        w.put(&FORMAT_VERSION.to_le_bytes())?;
        let params = serde_json::to_string(&self.params).map_err(|e| Error::Internal(e.to_string()))?;
        for text in [self.name.as_bytes(), params.as_bytes()] {
            w.put(&(text.len() as u32).to_le_bytes())?;
            w.put(text)?;
        }
        w.put(&(self.arrays.len() as u32).to_le_bytes())?;
        let mut bytes = Vec::new();
        for array in &self.arrays {
            bytes.clear();
            let (kind, len) = match array {
                Array::F32(v) => {
                    bytes.extend(v.iter().flat_map(|x| x.to_le_bytes()));
                    (0u8, v.len())
                }
                Array::U32(v) => {
                    bytes.extend(v.iter().flat_map(|x| x.to_le_bytes()));
                    (1u8, v.len())
                }
            };
            w.put(&[kind])?;
            w.put(&(len as u64).to_le_bytes())?;
            w.put(&bytes)?;
        }
        let sum = w.hasher.clone().finalize();
        w.inner.write_all(&sum.to_le_bytes())?;
        w.inner.flush()?;
        Ok(())
    }

    pub fn read_from(reader: &mut dyn Read) -> Result<Artifact> {
        let mut r = Verified { inner: reader, hasher: crc32fast::Hasher::new() };
        let mut magic = [0u8; 8];
        r.take(&mut magic)?;
        if &magic != MAGIC {
            return Err(corrupt("not a souk model artifact (bad magic bytes)"));
        }
        let version = r.u32()?;
        if version != FORMAT_VERSION {
            return Err(Error::FormatVersion {
                path: PathBuf::from("model artifact"),
                found: version,
                expected: FORMAT_VERSION,
            });
        }
        let name = r.text("model name")?;
        let params = r.text("params")?;
        let params: serde_json::Value =
            serde_json::from_str(&params).map_err(|e| corrupt(format!("params are not JSON: {e}")))?;
        let count = r.u32()?;
        let mut arrays = Vec::with_capacity(count.min(64) as usize);
        for k in 0..count {
            let mut kind = [0u8; 1];
            r.take(&mut kind)?;
            let len = r.u64()?;
            if len > MAX_ELEMENTS {
                return Err(corrupt(format!("array {k} length {len} exceeds {MAX_ELEMENTS}")));
            }
            let words = r.words(len)?;
            arrays.push(match kind[0] {
                0 => Array::F32(words.into_iter().map(f32::from_le_bytes).collect()),
                1 => Array::U32(words.into_iter().map(u32::from_le_bytes).collect()),
                other => return Err(corrupt(format!("array {k} has unknown kind {other}"))),
            });
        }
        let expected = r.hasher.clone().finalize();
        let mut sum = [0u8; 4];
        r.inner.read_exact(&mut sum).map_err(|_| corrupt("truncated (missing checksum)"))?;
        let found = u32::from_le_bytes(sum);
        if found != expected {
            return Err(corrupt(format!("checksum mismatch: stored {found:08x}, computed {expected:08x}")));
        }
        Ok(Artifact { name, params, arrays })
    }

    /// Take the next array as f32, with the length the model expects.
    pub(crate) fn f32_array(arrays: &mut std::vec::IntoIter<Array>, what: &str, len: usize) -> Result<Vec<f32>> {
        match arrays.next() {
            Some(Array::F32(v)) if v.len() == len => Ok(v),
            Some(Array::F32(v)) => Err(corrupt(format!("{what}: expected {len} values, found {}", v.len()))),
            Some(Array::U32(_)) => Err(corrupt(format!("{what}: expected f32 values, found u32"))),
            None => Err(corrupt(format!("{what}: missing"))),
        }
    }

    /// Take the next array as u32, with the length the model expects.
    pub(crate) fn u32_array(arrays: &mut std::vec::IntoIter<Array>, what: &str, len: usize) -> Result<Vec<u32>> {
        match arrays.next() {
            Some(Array::U32(v)) if v.len() == len => Ok(v),
            Some(Array::U32(v)) => Err(corrupt(format!("{what}: expected {len} values, found {}", v.len()))),
            Some(Array::F32(_)) => Err(corrupt(format!("{what}: expected u32 values, found f32"))),
            None => Err(corrupt(format!("{what}: missing"))),
        }
    }

    /// A `usize` shape field of `params`.
    pub(crate) fn shape(&self, key: &str) -> Result<usize> {
        self.params
            .get(key)
            .and_then(|v| v.as_u64())
            .map(|v| v as usize)
            .ok_or_else(|| corrupt(format!("params.{key}: expected a non-negative integer")))
    }

    /// The model's training parameters: `params` without the shape fields.
    pub(crate) fn model_params<P: serde::de::DeserializeOwned>(&self, shape_keys: &[&str]) -> Result<P> {
        let mut params = self.params.clone();
        if let Some(map) = params.as_object_mut() {
            for key in shape_keys {
                map.remove(*key);
            }
        }
        serde_json::from_value(params).map_err(|e| corrupt(format!("params: {e}")))
    }
}

pub(crate) fn corrupt_artifact(message: impl Into<String>) -> Error {
    corrupt(message)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn arb_array() -> impl Strategy<Value = Array> {
        prop_oneof![
            proptest::collection::vec(any::<f32>().prop_filter("finite", |x| x.is_finite()), 0..50)
                .prop_map(Array::F32),
            proptest::collection::vec(any::<u32>(), 0..50).prop_map(Array::U32),
        ]
    }

    proptest! {
        #[test]
        fn roundtrip(name in "[a-z0-9_]{0,12}", k in 0u32..1000, arrays in proptest::collection::vec(arb_array(), 0..5)) {
            let a = Artifact { name, params: serde_json::json!({ "k": k }), arrays };
            let mut bytes = Vec::new();
            a.write_to(&mut bytes).unwrap();
            let b = Artifact::read_from(&mut bytes.as_slice()).unwrap();
            prop_assert_eq!(a, b);
        }

        #[test]
        fn any_single_byte_flip_is_detected(arrays in proptest::collection::vec(arb_array(), 1..3), at in any::<prop::sample::Index>()) {
            let a = Artifact { name: "als".into(), params: serde_json::json!({}), arrays };
            let mut bytes = Vec::new();
            a.write_to(&mut bytes).unwrap();
            let at = at.index(bytes.len());
            bytes[at] ^= 0x5a;
            prop_assert!(Artifact::read_from(&mut bytes.as_slice()).is_err());
        }

        #[test]
        fn truncation_is_an_error_not_a_panic(cut in any::<prop::sample::Index>()) {
            let a = Artifact { name: "ease".into(), params: serde_json::json!({"n": 3}), arrays: vec![Array::F32(vec![1.0; 9])] };
            let mut bytes = Vec::new();
            a.write_to(&mut bytes).unwrap();
            let cut = cut.index(bytes.len());
            prop_assert!(Artifact::read_from(&mut &bytes[..cut]).is_err());
        }
    }

    #[test]
    fn other_versions_are_refused_with_the_version() {
        let a = Artifact { name: "x".into(), params: serde_json::json!(null), arrays: vec![] };
        let mut bytes = Vec::new();
        a.write_to(&mut bytes).unwrap();
        bytes[8] = 9;
        match Artifact::read_from(&mut bytes.as_slice()) {
            Err(Error::FormatVersion { found: 9, expected: FORMAT_VERSION, .. }) => {}
            other => panic!("expected a format version error, got {other:?}"),
        }
    }
}
