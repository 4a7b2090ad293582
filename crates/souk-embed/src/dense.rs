//! Dense (fully connected) layers that are fast on a handful of tokens.
//!
//! A search request embeds one short query: 5 to 15 tokens. A general matrix product (candle's
//! `gemm`) first repacks the weight matrix into its own blocked layout on every call, and for
//! so few rows that copy costs more than the arithmetic: profiling one query through
//! all-MiniLM-L6-v2 showed about 54% of the time in packing and 25% in the multiply kernels.
//! Without the packing, what remains is memory traffic: a few tokens do a few multiply-adds
//! per weight, so the time goes into streaming every weight from memory once per query
//! (42 MB of f32 for all-MiniLM-L6-v2's dense layers, more than a 32 MB last-level cache).
//!
//! The weights never change, so [`DenseLayer`] keeps a copy in half precision (21 MB for
//! MiniLM, which a last-level cache can keep between queries), laid out in blocks of [`BLOCK`]
//! output rows, and for at most [`SMALL_ROWS`] rows computes every output as dot products from
//! it: each block is read once, widened to f32, kept in cache while every token is multiplied
//! by it, with the arithmetic in f32 on the widest vectors the CPU has (chosen at run time
//! through `pulp`, without `unsafe` here). Larger inputs (catalog batches) keep candle's f32
//! product, which is faster once the packing is shared by many rows.
//!
//! Half-precision weights move a query's vector by float noise only: cosine ≥ 0.99999 to the
//! f32 product on the reference sentences (`tests::small_inputs_match_the_general_product`
//! bounds the layer error; the model tests bound the sentence vectors).

use candle_core::{Module, Tensor};
use candle_nn::Linear;
use half::f16;
use pulp::{Arch, Simd, WithSimd};

/// Inputs with at most this many rows (tokens over the whole batch) take the dot-product path.
pub(crate) const SMALL_ROWS: usize = 48;

/// Weight rows multiplied together: independent accumulators keep the fused multiply-adds
/// in flight, and `BLOCK` rows of a 1,536-wide layer (48 KB) still fit the first-level cache.
const BLOCK: usize = 8;

/// Columns stored together per row inside a block: one 256-bit vector of f32.
const CHUNK: usize = 8;

/// A dense layer `y = x·Wᵀ + b` with both a candle [`Linear`] (for large inputs) and a
/// half-precision copy of its weights laid out for the dot-product kernel (for small ones).
///
/// The copy is cut into blocks of [`BLOCK`] output rows; inside a block, columns go in chunks
/// of [`CHUNK`], and each chunk holds the `BLOCK` rows' values one after the other
/// (`[block][chunk][row][column in chunk]`). The kernel then reads one block front to back
/// with fixed offsets: every weight it multiplies next is at a constant distance from the
/// last, so no address depends on the one before (with one row after another, the eight row
/// pointers formed a chain of additions that held the multiply-adds to one per cycle).
/// Rows and columns are padded with zeros to whole blocks and chunks.
pub(crate) struct DenseLayer {
    linear: Linear,
    /// IEEE half-precision bit patterns in the block layout; subnormals flushed to zero
    /// (see [`half_bits`]).
    weight: Vec<u16>,
    bias: Vec<f32>,
    in_dim: usize,
    out_dim: usize,
    /// `in_dim` rounded up to whole chunks.
    padded_in: usize,
}

impl DenseLayer {
    /// `weight` is `[out, in]`, `bias` `[out]`, both f32.
    pub(crate) fn new(weight: Tensor, bias: Tensor) -> candle_core::Result<DenseLayer> {
        let (out_dim, in_dim) = weight.dims2()?;
        if bias.dims1()? != out_dim {
            candle_core::bail!("bias of {} values for {out_dim} outputs", bias.dims1()?)
        }
        let rows = weight.to_vec2::<f32>()?;
        let padded_in = in_dim.div_ceil(CHUNK) * CHUNK;
        let blocks = out_dim.div_ceil(BLOCK);
        let mut weight_copy = vec![0u16; blocks * BLOCK * padded_in];
        for (o, row) in rows.iter().enumerate() {
            let (block, r) = (o / BLOCK, o % BLOCK);
            for (k, &value) in row.iter().enumerate() {
                let (chunk, c) = (k / CHUNK, k % CHUNK);
                weight_copy[block * BLOCK * padded_in + (chunk * BLOCK + r) * CHUNK + c] = half_bits(value);
            }
        }
        let bias_copy = bias.to_vec1::<f32>()?;
        Ok(DenseLayer {
            linear: Linear::new(weight, Some(bias)),
            weight: weight_copy,
            bias: bias_copy,
            in_dim,
            out_dim,
            padded_in,
        })
    }

    /// `y = x·Wᵀ + b` for `xs` `[..., in]`, returning `[..., out]`, where `live` (one flag per row of `xs`, when given) names
    /// the rows anyone will read: the others (a batch's padding) are not computed on the
    /// small-input path and come back as zeros. Whether the small path is taken depends on
    /// the live rows.
    pub(crate) fn forward_rows(&self, xs: &Tensor, live: Option<&[bool]>) -> candle_core::Result<Tensor> {
        let dims = xs.dims();
        let rows = xs.elem_count() / self.in_dim.max(1);
        let live = live.filter(|l| l.len() == rows);
        let computed = live.map_or(rows, |l| l.iter().filter(|&&x| x).count());
        if dims.last() != Some(&self.in_dim) || computed > SMALL_ROWS {
            return self.linear.forward(xs);
        }
        let input = xs.flatten_all()?.to_vec1::<f32>()?;
        let mut output = vec![0f32; rows * self.out_dim];
        self.multiply(&input, rows, live, &mut output);
        let mut shape = dims.to_vec();
        if let Some(last) = shape.last_mut() {
            *last = self.out_dim;
        }
        Tensor::from_vec(output, shape, xs.device())
    }

    /// `output[r·out + o] = bias[o] + Σₖ input[r·in + k] · weight[o·in + k]`.
    /// Rows not `live` are skipped (left as they are in `output`).
    fn multiply(&self, input: &[f32], rows: usize, live: Option<&[bool]>, output: &mut [f32]) {
        // The input rows, zero-padded to whole chunks like the weights.
        let padded = if self.padded_in == self.in_dim {
            std::borrow::Cow::Borrowed(input)
        } else {
            let mut padded = vec![0f32; rows * self.padded_in];
            for (target, source) in padded.chunks_exact_mut(self.padded_in).zip(input.chunks_exact(self.in_dim)) {
                target[..self.in_dim].copy_from_slice(source);
            }
            std::borrow::Cow::Owned(padded)
        };
        let rows: Vec<usize> = (0..rows).filter(|&r| live.is_none_or(|l| l[r])).collect();
        Arch::new().dispatch(DotProducts { layer: self, input: &padded, rows: &rows, output });
    }
}

struct DotProducts<'a> {
    layer: &'a DenseLayer,
    /// `rows × padded_in`.
    input: &'a [f32],
    /// The rows to compute.
    rows: &'a [usize],
    output: &'a mut [f32],
}

impl WithSimd for DotProducts<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let DotProducts { layer, input, rows, output } = self;
        let (padded_in, out_dim) = (layer.padded_in, layer.out_dim);
        let block_len = BLOCK * padded_in;
        let mut widened = vec![0f32; block_len];
        for (block_index, block) in layer.weight.chunks_exact(block_len).enumerate() {
            widen(block, &mut widened);
            let start = block_index * BLOCK;
            let count = BLOCK.min(out_dim - start);
            for &row in rows {
                let x = &input[row * padded_in..(row + 1) * padded_in];
                let sums = dots_block(simd, x, &widened);
                let out = &mut output[row * out_dim + start..row * out_dim + start + count];
                for (index, value) in out.iter_mut().enumerate() {
                    *value = sums[index] + layer.bias[start + index];
                }
            }
        }
    }
}

/// The half-precision bit pattern of `value`, with the values half precision can only hold as
/// subnormals (|value| < 6.1·10⁻⁵) flushed to zero: they change a dot product by less than
/// rounding does, and [`widen`] then never meets a subnormal (slow on some CPUs).
fn half_bits(value: f32) -> u16 {
    if value.abs() < f16::MIN_POSITIVE.to_f32() {
        0
    } else {
        f16::from_f32(value).to_bits()
    }
}

/// Half-precision bits to f32, for finite normal values and zeros (all [`half_bits`] makes).
/// The half goes to the top 16 bits of a 32-bit word; an arithmetic shift right by 3 moves its
/// exponent and mantissa into f32 position (copying the sign into the three bits after it,
/// which the mask clears), and a multiplication by 2¹¹² re-biases the exponent. Branch-free,
/// so the loop vectorises with the features of the caller (AVX2 inside [`DotProducts`]).
#[inline(always)]
fn widen(source: &[u16], target: &mut [f32]) {
    const REBIAS: f32 = 5.192_297e33; // 2^112
    for (value, &bits) in target.iter_mut().zip(source) {
        let shifted = ((u32::from(bits) << 16) as i32 >> 3) as u32;
        *value = f32::from_bits(shifted & 0x8fff_ffff) * REBIAS;
    }
}

/// The dot products of `x` (`padded_in` values) with the [`BLOCK`] rows of a widened block in
/// the block layout.
#[inline(always)]
fn dots_block<S: Simd>(simd: S, x: &[f32], block: &[f32]) -> [f32; BLOCK] {
    let mut accumulators = [simd.splat_f32s(0.0); BLOCK];
    // Left over where a vector is wider than a chunk (or for a scalar fallback's remainder).
    let mut tails = [0f32; BLOCK];
    for (xs, ws) in x.chunks_exact(CHUNK).zip(block.chunks_exact(CHUNK * BLOCK)) {
        let (x_head, x_tail) = S::as_simd_f32s(xs);
        for (index, accumulator) in accumulators.iter_mut().enumerate() {
            let w = &ws[index * CHUNK..(index + 1) * CHUNK];
            let (w_head, w_tail) = S::as_simd_f32s(w);
            for (&a, &b) in x_head.iter().zip(w_head) {
                *accumulator = simd.mul_add_e_f32s(a, b, *accumulator);
            }
            tails[index] += x_tail.iter().zip(w_tail).map(|(a, b)| a * b).sum::<f32>();
        }
    }
    std::array::from_fn(|index| simd.reduce_sum_f32s(accumulators[index]) + tails[index])
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    fn layer(out_dim: usize, in_dim: usize) -> DenseLayer {
        // Multiples of 1/64 below 1 are exact in half precision, so only the order of summation
        // differs between the two paths.
        let weight: Vec<f32> = (0..out_dim * in_dim).map(|i| ((i * 37 % 101) as f32 - 50.0) / 64.0).collect();
        let bias: Vec<f32> = (0..out_dim).map(|i| (i as f32 - 3.0) / 7.0).collect();
        DenseLayer::new(
            Tensor::from_vec(weight, (out_dim, in_dim), &Device::Cpu).unwrap(),
            Tensor::from_vec(bias, out_dim, &Device::Cpu).unwrap(),
        )
        .unwrap()
    }

    fn input(rows: usize, in_dim: usize) -> Tensor {
        let values: Vec<f32> = (0..rows * in_dim).map(|i| ((i * 13 % 29) as f32 - 14.0) / 11.0).collect();
        Tensor::from_vec(values, (1, rows, in_dim), &Device::Cpu).unwrap()
    }

    /// The dot-product path agrees with candle's matrix product, including output counts that
    /// are not a multiple of the block and input widths that are not a multiple of the vector.
    #[test]
    fn small_inputs_match_the_general_product() {
        for (out_dim, in_dim) in [(384, 384), (1536, 384), (13, 37), (3, 5)] {
            let layer = layer(out_dim, in_dim);
            for rows in [1, 7, SMALL_ROWS] {
                let xs = input(rows, in_dim);
                let ours = layer.forward_rows(&xs, None).unwrap();
                let reference = layer.linear.forward(&xs).unwrap();
                assert_eq!(ours.dims(), reference.dims());
                let ours = ours.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                let reference = reference.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                for (a, b) in ours.iter().zip(&reference) {
                    assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{out_dim}×{in_dim}, {rows} rows: {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn half_precision_round_trips() {
        for value in [0.0f32, -0.0, 1.0, -1.0, 0.5, 65504.0, -3.140625, 6.103_515_6e-5, 1e-3, -0.333_251_95] {
            let mut widened = [f32::NAN];
            widen(&[half_bits(value)], &mut widened);
            assert_eq!(widened[0], f16::from_f32(value).to_f32(), "{value}");
        }
        // Values only a subnormal half could hold are flushed to zero.
        let mut widened = [f32::NAN; 2];
        widen(&[half_bits(3e-5), half_bits(-1e-7)], &mut widened);
        assert_eq!(widened, [0.0, 0.0]);
    }

    #[test]
    fn large_inputs_take_the_general_product() {
        let layer = layer(16, 8);
        let xs = input(SMALL_ROWS + 1, 8);
        let ours = layer.forward_rows(&xs, None).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let reference = layer.linear.forward(&xs).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(ours, reference);
    }
}
