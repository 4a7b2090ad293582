//! GELU in its exact form, x·Φ(x) = x/2·(1 + erf(x/√2)), for f32 tensors on the CPU.
//!
//! candle's `gelu_erf` evaluates a scalar `erf` one element at a time; on MiniLM's
//! feed-forward activations (`[tokens, 1536]`) that took longer than the matrix product
//! before it, about a third of a whole forward pass. Here erf is the rational approximation
//! that Eigen and XLA use for f32 (`generic_fast_erf_float`: odd degree-13 numerator over even
//! degree-8 denominator; ±1 past ±4, where f32 erf rounds to ±1): only multiplies, adds
//! and one divide, so the compiler vectorises the loop, and rayon splits it across cores.
//! Largest error against f64 erf: 4.3e-7 on erf, 1.4e-6 on GELU over [-10, 10], below the
//! rounding of the f32 matrix products around it.

use candle_core::{bail, CpuStorage, CustomOp1, Layout, Shape, Tensor};
use rayon::prelude::*;

// The coefficients are written with the digits Eigen publishes, so they can be checked against
// its source; the compiler rounds each to the nearest f32.
/// Numerator coefficients α₁, α₃, …, α₁₃ (odd powers of x).
#[allow(clippy::excessive_precision)]
const ALPHA: [f32; 7] = [
    -1.60960333262415e-02,
    -2.95459980854025e-03,
    -7.34990630326855e-04,
    -5.69250639462346e-05,
    -2.10102402082508e-06,
    2.77068142495902e-08,
    -2.72614225801306e-10,
];
/// Denominator coefficients β₀, β₂, …, β₈ (even powers of x).
#[allow(clippy::excessive_precision)]
const BETA: [f32; 5] =
    [-1.42647390514189e-02, -7.37332916720468e-03, -1.68282697438203e-03, -2.13374055278905e-04, -1.45660718464996e-05];

/// Elements per rayon task: large enough that scheduling costs nothing next to the arithmetic.
const CHUNK: usize = 16 * 1024;

#[inline(always)]
fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = ALPHA[6];
    for &alpha in ALPHA[..6].iter().rev() {
        p = p * x2 + alpha;
    }
    let mut q = BETA[4];
    for &beta in BETA[..4].iter().rev() {
        q = q * x2 + beta;
    }
    // At ±4 the fraction gives ±(1 − 6e-8); make the tails exactly ±1, so that GELU of a large
    // negative input is 0 rather than −3e-8·|x|.
    if x.abs() >= 4.0 {
        1f32.copysign(x)
    } else {
        x * p / q
    }
}

#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

struct GeluErf;

impl CustomOp1 for GeluErf {
    fn name(&self) -> &'static str {
        "souk-gelu-erf"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(values) = storage else { bail!("gelu: expected an f32 tensor") };
        let Some((start, end)) = layout.contiguous_offsets() else { bail!("gelu: expected a contiguous tensor") };
        let input = &values[start..end];
        let mut output = vec![0f32; input.len()];
        output.par_chunks_mut(CHUNK).zip(input.par_chunks(CHUNK)).for_each(|(output, input)| {
            for (y, &x) in output.iter_mut().zip(input) {
                *y = gelu(x);
            }
        });
        Ok((CpuStorage::F32(output), layout.shape().clone()))
    }
}

/// GELU (erf form) of every element of an f32 tensor on the CPU.
pub(crate) fn gelu_erf(xs: &Tensor) -> candle_core::Result<Tensor> {
    xs.contiguous()?.apply_op1_no_bwd(&GeluErf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn matches_candles_exact_gelu() {
        let values: Vec<f32> = (-120_000..=120_000).map(|i| i as f32 * 1e-4).chain([-50.0, 50.0, 0.0]).collect();
        let xs = Tensor::from_vec(values.clone(), values.len(), &Device::Cpu).unwrap();
        let ours = gelu_erf(&xs).unwrap().to_vec1::<f32>().unwrap();
        let candles = xs.gelu_erf().unwrap().to_vec1::<f32>().unwrap();
        for ((x, a), b) in values.iter().zip(&ours).zip(&candles) {
            assert!((a - b).abs() <= 2e-6 * b.abs().max(1.0), "gelu({x}) = {a}, candle says {b}");
        }
    }

    #[test]
    fn keeps_shape_and_reads_through_views() {
        let xs = Tensor::arange(0f32, 12.0, &Device::Cpu).unwrap().reshape((3, 4)).unwrap().t().unwrap();
        let ours = gelu_erf(&xs).unwrap();
        assert_eq!(ours.dims(), &[4, 3]);
        let expected = xs.gelu_erf().unwrap().to_vec2::<f32>().unwrap();
        let ours = ours.to_vec2::<f32>().unwrap();
        for (a, b) in ours.iter().flatten().zip(expected.iter().flatten()) {
            assert!((a - b).abs() <= 2e-6 * b.abs().max(1.0), "{a} vs {b}");
        }
    }
}
