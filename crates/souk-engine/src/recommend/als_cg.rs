//! The conjugate-gradient half-step of [`super::als`]: every row `x_u` of one side is
//! re-solved against the fixed factors `Y` of the other side, one row at a time, each row's
//! whole solve in registers and the first cache level.
//!
//! Owns only numerics: no model state, no allocation inside the per-row loop (each rayon
//! task allocates its scratch once), no dependence on the thread count (rows are
//! independent, so a seed gives the same model on any number of threads).
//!
//! Cost model per row with `n = |u|` interactions and `s` CG steps: `(s + 1)·f²` for the
//! products with the shared `YᵀY + λI` and `(s + 1)·2·n·f` for the sparse corrections, all
//! fused multiply-adds on the widest vectors the CPU has (one run-time dispatch per task,
//! through `pulp`). Bytes touched per row: the `n` rows of `Y` (each read twice per step,
//! the second time from L1), the `f × f` Gram matrix (L1/L2-resident across rows) and four
//! `f`-vectors of scratch.

use pulp::{Simd, WithSimd};
use rayon::prelude::*;

/// Rows handed to one rayon task (one dispatch, one scratch allocation).
const ROWS_PER_TASK: usize = 16;

/// One half-step's fixed inputs. `rows` is CSR (`indptr`, `indices` into the rows of `y`,
/// `confidences` `c_ui ≥ 1` per entry).
pub(super) struct HalfStep<'a> {
    pub indptr: &'a [usize],
    pub indices: &'a [u32],
    pub confidences: &'a [f32],
    /// `YᵀY + λI`, f × f row-major (symmetric).
    pub gram: &'a [f32],
    /// The fixed side's factors, row-major with `f` columns.
    pub y: &'a [f32],
    pub factors: usize,
    pub cg_steps: usize,
}

impl HalfStep<'_> {
    /// Take `cg_steps` conjugate-gradient steps from the current value of every row of `x`
    /// (row-major, `f` columns) towards the solution of
    /// `(YᵀY + λI + Σ_{i∈u} (c_ui − 1) y_i y_iᵀ) x_u = Σ_{i∈u} c_ui y_i` (Hu et al. eq. 3's
    /// normal equations; Takács et al. 2011, Alg. 2, warm-started).
    pub fn run(&self, x: &mut [f32]) {
        let f = self.factors;
        debug_assert_eq!(self.gram.len(), f * f);
        debug_assert_eq!(x.len() / f + 1, self.indptr.len());
        let arch = pulp::Arch::new();
        x.par_chunks_mut(ROWS_PER_TASK * f).enumerate().for_each_init(Scratch::default, |scratch, (task, rows)| {
            arch.dispatch(Task { step: self, first_row: task * ROWS_PER_TASK, rows, scratch });
        });
    }
}

/// Per-task buffers: residual, direction, `A·p` and per-entry weights.
#[derive(Default)]
struct Scratch {
    r: Vec<f32>,
    p: Vec<f32>,
    ap: Vec<f32>,
    weights: Vec<f32>,
}

struct Task<'a, 'b> {
    step: &'a HalfStep<'a>,
    first_row: usize,
    rows: &'b mut [f32],
    scratch: &'b mut Scratch,
}

impl WithSimd for Task<'_, '_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Task { step, first_row, rows, scratch } = self;
        let f = step.factors;
        scratch.r.resize(f, 0.0);
        scratch.p.resize(f, 0.0);
        scratch.ap.resize(f, 0.0);
        for (k, xu) in rows.chunks_exact_mut(f).enumerate() {
            let u = first_row + k;
            let range = step.indptr[u]..step.indptr[u + 1];
            let entries = Entries { items: &step.indices[range.clone()], confidences: &step.confidences[range] };
            solve_row(simd, step, entries, xu, scratch);
        }
    }
}

#[derive(Clone, Copy)]
struct Entries<'a> {
    items: &'a [u32],
    confidences: &'a [f32],
}

/// Takács et al. Alg. 2 on one row: `A` is never formed; `A·v = G·v + Σ (c − 1)(y_i·v) y_i`.
#[inline(always)]
fn solve_row<S: Simd>(simd: S, step: &HalfStep<'_>, entries: Entries<'_>, x: &mut [f32], scratch: &mut Scratch) {
    let f = step.factors;
    let Scratch { r, p, ap, weights } = scratch;
    weights.resize(entries.items.len(), 0.0);
    // r = b − A x = −G x + Σ (c − (c − 1)·y_i·x) y_i
    symmetric_times(simd, step.gram, x, ap);
    for (rk, ak) in r.iter_mut().zip(ap.iter()) {
        *rk = -ak;
    }
    dots_with_rows(simd, step.y, f, entries.items, x, weights);
    for (w, &c) in weights.iter_mut().zip(entries.confidences) {
        *w = c - (c - 1.0) * *w;
    }
    add_weighted_rows(simd, step.y, f, entries.items, weights, r);
    p.copy_from_slice(r);
    let mut rs_old = dot(simd, r, r);
    for _ in 0..step.cg_steps {
        if rs_old < 1e-20 {
            break;
        }
        // ap = A p
        symmetric_times(simd, step.gram, p, ap);
        dots_with_rows(simd, step.y, f, entries.items, p, weights);
        for (w, &c) in weights.iter_mut().zip(entries.confidences) {
            *w *= c - 1.0;
        }
        add_weighted_rows(simd, step.y, f, entries.items, weights, ap);
        let p_ap = dot(simd, p, ap);
        if p_ap <= 0.0 || !p_ap.is_finite() {
            break;
        }
        let alpha = rs_old / p_ap;
        axpy(simd, alpha, p, x);
        axpy(simd, -alpha, ap, r);
        let rs_new = dot(simd, r, r);
        let beta = rs_new / rs_old;
        // p = r + β p
        scale_add(simd, beta, p, r);
        rs_old = rs_new;
    }
}

/// `out = G · v` for symmetric row-major `g` (f × f): `Σ_k v_k · G[k, :]` (row k of a
/// symmetric matrix is its column k), with the output held in registers four vectors at a
/// time and two interleaved sums over `k` so the multiply-adds do not wait on each other.
#[inline(always)]
fn symmetric_times<S: Simd>(simd: S, g: &[f32], v: &[f32], out: &mut [f32]) {
    let f = v.len();
    let (out_head, out_tail) = S::as_mut_simd_f32s(out);
    let mut block = 0;
    while block + 4 <= out_head.len() {
        symmetric_times_block::<S, 4>(simd, g, v, block, &mut out_head[block..block + 4]);
        block += 4;
    }
    while block < out_head.len() {
        symmetric_times_block::<S, 1>(simd, g, v, block, &mut out_head[block..block + 1]);
        block += 1;
    }
    let tail_start = f - out_tail.len();
    for (t, o) in out_tail.iter_mut().enumerate() {
        let column = tail_start + t;
        *o = v.iter().enumerate().map(|(k, vk)| vk * g[k * f + column]).sum();
    }
}

/// `W` output vectors of [`symmetric_times`], starting at vector `block`.
#[inline(always)]
fn symmetric_times_block<S: Simd, const W: usize>(simd: S, g: &[f32], v: &[f32], block: usize, out: &mut [S::f32s]) {
    let f = v.len();
    let columns = |row: &[f32]| -> [S::f32s; W] {
        let vectors = &S::as_simd_f32s(row).0[block..block + W];
        core::array::from_fn(|j| vectors[j])
    };
    let zero = simd.splat_f32s(0.0);
    let (mut even, mut odd) = ([zero; W], [zero; W]);
    let mut pairs = v.chunks_exact(2);
    let mut g_pairs = g.chunks_exact(2 * f);
    for (pair, rows) in (&mut pairs).zip(&mut g_pairs) {
        let (ge, go) = (columns(&rows[..f]), columns(&rows[f..]));
        let (ve, vo) = (simd.splat_f32s(pair[0]), simd.splat_f32s(pair[1]));
        for j in 0..W {
            even[j] = simd.mul_add_e_f32s(ve, ge[j], even[j]);
            odd[j] = simd.mul_add_e_f32s(vo, go[j], odd[j]);
        }
    }
    if let [last] = pairs.remainder() {
        let gl = columns(&g[(f - 1) * f..]);
        let vl = simd.splat_f32s(*last);
        for j in 0..W {
            even[j] = simd.mul_add_e_f32s(vl, gl[j], even[j]);
        }
    }
    for j in 0..W {
        out[j] = simd.add_f32s(even[j], odd[j]);
    }
}

/// `weights[j] = y_{items[j]} · v`, four rows at a time so each load of `v` serves four
/// products.
#[inline(always)]
fn dots_with_rows<S: Simd>(simd: S, y: &[f32], f: usize, items: &[u32], v: &[f32], weights: &mut [f32]) {
    let row = |i: u32| &y[i as usize * f..(i as usize + 1) * f];
    let (v_head, v_tail) = S::as_simd_f32s(v);
    let zero = simd.splat_f32s(0.0);
    let mut groups = items.chunks_exact(4);
    let mut out = weights.chunks_exact_mut(4);
    for (group, w) in (&mut groups).zip(&mut out) {
        let rows = [row(group[0]), row(group[1]), row(group[2]), row(group[3])];
        // Sliced to the same length as `v_head` so the loop below has no bounds checks.
        let n = v_head.len();
        let heads = rows.map(|r| &S::as_simd_f32s(r).0[..n]);
        let mut acc = [zero; 4];
        for k in 0..n {
            let vk = v_head[k];
            for j in 0..4 {
                acc[j] = simd.mul_add_e_f32s(heads[j][k], vk, acc[j]);
            }
        }
        for j in 0..4 {
            let tail: f32 = v_tail.iter().zip(&rows[j][f - v_tail.len()..]).map(|(a, b)| a * b).sum();
            w[j] = simd.reduce_sum_f32s(acc[j]) + tail;
        }
    }
    for (&i, w) in groups.remainder().iter().zip(out.into_remainder()) {
        *w = dot(simd, row(i), v);
    }
}

/// `out += Σ_j weights[j] · y_{items[j]}`, four rows per pass over `out`.
#[inline(always)]
fn add_weighted_rows<S: Simd>(simd: S, y: &[f32], f: usize, items: &[u32], weights: &[f32], out: &mut [f32]) {
    let row = |i: u32| &y[i as usize * f..(i as usize + 1) * f];
    let mut groups = items.chunks_exact(4);
    let mut ws = weights.chunks_exact(4);
    for (group, w) in (&mut groups).zip(&mut ws) {
        let rows = [row(group[0]), row(group[1]), row(group[2]), row(group[3])];
        let splats = [simd.splat_f32s(w[0]), simd.splat_f32s(w[1]), simd.splat_f32s(w[2]), simd.splat_f32s(w[3])];
        let (out_head, out_tail) = S::as_mut_simd_f32s(out);
        let n = out_head.len();
        let heads = rows.map(|r| &S::as_simd_f32s(r).0[..n]);
        for k in 0..n {
            let o = &mut out_head[k];
            let mut acc = simd.mul_add_e_f32s(splats[0], heads[0][k], *o);
            acc = simd.mul_add_e_f32s(splats[1], heads[1][k], acc);
            acc = simd.mul_add_e_f32s(splats[2], heads[2][k], acc);
            *o = simd.mul_add_e_f32s(splats[3], heads[3][k], acc);
        }
        let tail_start = f - out_tail.len();
        for (t, o) in out_tail.iter_mut().enumerate() {
            *o += (0..4).map(|j| w[j] * rows[j][tail_start + t]).sum::<f32>();
        }
    }
    for (&i, &w) in groups.remainder().iter().zip(ws.remainder()) {
        axpy(simd, w, row(i), out);
    }
}

/// `Σ a_k b_k` with two independent vector sums.
#[inline(always)]
fn dot<S: Simd>(simd: S, a: &[f32], b: &[f32]) -> f32 {
    let (a_head, a_tail) = S::as_simd_f32s(a);
    let (b_head, b_tail) = S::as_simd_f32s(&b[..a.len()]);
    let mut acc = [simd.splat_f32s(0.0); 2];
    let mut pairs_a = a_head.chunks_exact(2);
    let mut pairs_b = b_head.chunks_exact(2);
    for (x, y) in (&mut pairs_a).zip(&mut pairs_b) {
        acc[0] = simd.mul_add_e_f32s(x[0], y[0], acc[0]);
        acc[1] = simd.mul_add_e_f32s(x[1], y[1], acc[1]);
    }
    for (&x, &y) in pairs_a.remainder().iter().zip(pairs_b.remainder()) {
        acc[0] = simd.mul_add_e_f32s(x, y, acc[0]);
    }
    let tail: f32 = a_tail.iter().zip(b_tail).map(|(x, y)| x * y).sum();
    simd.reduce_sum_f32s(simd.add_f32s(acc[0], acc[1])) + tail
}

/// `y += alpha · x`.
#[inline(always)]
fn axpy<S: Simd>(simd: S, alpha: f32, x: &[f32], y: &mut [f32]) {
    let (y_head, y_tail) = S::as_mut_simd_f32s(y);
    let (x_head, x_tail) = S::as_simd_f32s(x);
    let a = simd.splat_f32s(alpha);
    for (yv, &xv) in y_head.iter_mut().zip(x_head) {
        *yv = simd.mul_add_e_f32s(a, xv, *yv);
    }
    for (yk, xk) in y_tail.iter_mut().zip(x_tail) {
        *yk += alpha * xk;
    }
}

/// `p = r + beta · p`.
#[inline(always)]
fn scale_add<S: Simd>(simd: S, beta: f32, p: &mut [f32], r: &[f32]) {
    let (p_head, p_tail) = S::as_mut_simd_f32s(p);
    let (r_head, r_tail) = S::as_simd_f32s(r);
    let b = simd.splat_f32s(beta);
    for (pv, &rv) in p_head.iter_mut().zip(r_head) {
        *pv = simd.mul_add_e_f32s(b, *pv, rv);
    }
    for (pk, rk) in p_tail.iter_mut().zip(r_tail) {
        *pk = rk + beta * *pk;
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn random(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
        (0..n).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
    }

    fn close(a: f32, b: f64, scale: f64) -> bool {
        (a as f64 - b).abs() <= 1e-4 * (1.0 + scale)
    }

    /// Every kernel against a plain f64 loop, for widths that are and are not multiples of
    /// any vector width and row counts that exercise the groups of four and the rest.
    fn check_kernels<S: Simd>(simd: S) {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for f in [1, 3, 8, 13, 16, 64, 70] {
            let n_rows = 9;
            let y = random(&mut rng, n_rows * f);
            let mut g = random(&mut rng, f * f);
            for a in 0..f {
                for b in 0..a {
                    g[a * f + b] = g[b * f + a];
                }
            }
            let v = random(&mut rng, f);
            let mut out = vec![0f32; f];
            symmetric_times(simd, &g, &v, &mut out);
            for (a, o) in out.iter().enumerate() {
                let want: f64 = (0..f).map(|b| g[a * f + b] as f64 * v[b] as f64).sum();
                assert!(close(*o, want, f as f64), "symmetric_times f={f}: {o} vs {want}");
            }
            for n in 0..=n_rows {
                let items: Vec<u32> = (0..n).map(|_| rng.gen_range(0..n_rows as u32)).collect();
                let row = |i: u32| &y[i as usize * f..(i as usize + 1) * f];
                let mut weights = vec![0f32; n];
                dots_with_rows(simd, &y, f, &items, &v, &mut weights);
                for (&i, w) in items.iter().zip(&weights) {
                    let want: f64 = row(i).iter().zip(&v).map(|(a, b)| *a as f64 * *b as f64).sum();
                    assert!(close(*w, want, f as f64), "dots_with_rows f={f} n={n}: {w} vs {want}");
                }
                let start = random(&mut rng, f);
                let mut sum = start.clone();
                add_weighted_rows(simd, &y, f, &items, &weights, &mut sum);
                for k in 0..f {
                    let want = start[k] as f64
                        + items.iter().zip(&weights).map(|(&i, &w)| w as f64 * row(i)[k] as f64).sum::<f64>();
                    assert!(close(sum[k], want, f as f64), "add_weighted_rows f={f} n={n}: {} vs {want}", sum[k]);
                }
            }
            let want: f64 = v.iter().zip(&y[..f]).map(|(a, b)| *a as f64 * *b as f64).sum();
            assert!(close(dot(simd, &v, &y[..f]), want, f as f64));
            let (mut p, r) = (v.clone(), y[..f].to_vec());
            scale_add(simd, 0.5, &mut p, &r);
            let before = out.clone();
            axpy(simd, 2.0, &r, &mut out);
            for k in 0..f {
                assert!(close(p[k], r[k] as f64 + 0.5 * v[k] as f64, 1.0), "scale_add f={f}");
                assert!(close(out[k], before[k] as f64 + 2.0 * r[k] as f64, 1.0), "axpy f={f}");
            }
        }
    }

    #[test]
    fn kernels_match_plain_loops() {
        check_kernels(pulp::Scalar::new());
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = pulp::x86::V3::try_new() {
            check_kernels(simd);
        }
    }

    /// `(G + Σ (c − 1) y yᵀ, Σ c y)` of one row, in f64.
    fn normal_equations(g: &[f32], y: &[f32], f: usize, items: &[u32], confidences: &[f32]) -> (Vec<f64>, Vec<f64>) {
        let mut a: Vec<f64> = g.iter().map(|&v| v as f64).collect();
        let mut b = vec![0f64; f];
        for (&i, &c) in items.iter().zip(confidences) {
            let yi = &y[i as usize * f..(i as usize + 1) * f];
            for p in 0..f {
                b[p] += c as f64 * yi[p] as f64;
                for q in 0..f {
                    a[p * f + q] += (c as f64 - 1.0) * yi[p] as f64 * yi[q] as f64;
                }
            }
        }
        (a, b)
    }

    /// Gaussian elimination with partial pivoting (tests only).
    fn direct_solve(mut a: Vec<f64>, mut b: Vec<f64>, n: usize) -> Vec<f64> {
        for col in 0..n {
            let pivot = (col..n).max_by(|&i, &j| a[i * n + col].abs().total_cmp(&a[j * n + col].abs())).unwrap();
            for k in 0..n {
                a.swap(col * n + k, pivot * n + k);
            }
            b.swap(col, pivot);
            for row in col + 1..n {
                let m = a[row * n + col] / a[col * n + col];
                for k in col..n {
                    a[row * n + k] -= m * a[col * n + k];
                }
                b[row] -= m * b[col];
            }
        }
        for row in (0..n).rev() {
            let s: f64 = (row + 1..n).map(|k| a[row * n + k] * b[k]).sum();
            b[row] = (b[row] - s) / a[row * n + row];
        }
        b
    }

    /// A random problem: `rows` CSR rows over `n_items` item factors, `YᵀY + λI`.
    struct Problem {
        f: usize,
        y: Vec<f32>,
        gram: Vec<f32>,
        indptr: Vec<usize>,
        indices: Vec<u32>,
        confidences: Vec<f32>,
    }

    fn problem(f: usize, n_items: usize, rows: usize, seed: u64) -> Problem {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let y: Vec<f32> = random(&mut rng, n_items * f).iter().map(|v| v * 0.5).collect();
        let mut gram = vec![0f32; f * f];
        for yi in y.chunks_exact(f) {
            for a in 0..f {
                for b in 0..f {
                    gram[a * f + b] += yi[a] * yi[b];
                }
            }
        }
        for a in 0..f {
            gram[a * f + a] += 0.5;
        }
        let (mut indptr, mut indices, mut confidences) = (vec![0], Vec::new(), Vec::new());
        for u in 0..rows {
            for i in 0..n_items as u32 {
                if (i as usize + u).is_multiple_of(3) || rng.gen_bool(0.2) {
                    indices.push(i);
                    confidences.push(1.0 + rng.gen_range(0.0f32..8.0));
                }
            }
            indptr.push(indices.len());
        }
        Problem { f, y, gram, indptr, indices, confidences }
    }

    fn half_step(p: &Problem, cg_steps: usize) -> HalfStep<'_> {
        HalfStep {
            indptr: &p.indptr,
            indices: &p.indices,
            confidences: &p.confidences,
            gram: &p.gram,
            y: &p.y,
            factors: p.f,
            cg_steps,
        }
    }

    #[test]
    fn enough_steps_reach_the_direct_solution_of_the_normal_equations() {
        for f in [6, 16, 21] {
            let p = problem(f, 30, 40, f as u64);
            let mut x = vec![0f32; 40 * f];
            half_step(&p, 3 * f).run(&mut x);
            for u in 0..40 {
                let range = p.indptr[u]..p.indptr[u + 1];
                let (a, b) = normal_equations(&p.gram, &p.y, f, &p.indices[range.clone()], &p.confidences[range]);
                let exact = direct_solve(a, b, f);
                let scale = exact.iter().fold(0f64, |m, v| m.max(v.abs()));
                for (k, want) in exact.iter().enumerate() {
                    let got = x[u * f + k] as f64;
                    assert!((got - want).abs() <= 2e-3 * (1.0 + scale), "f={f} row {u}: {got} vs {want}");
                }
            }
        }
    }

    #[test]
    fn three_warm_started_steps_shrink_the_error_in_the_a_norm() {
        // CG minimises ‖x − x*‖_A over a growing Krylov space that holds the steepest
        // descent direction, so three steps from a random start must lower it.
        let f = 16;
        let p = problem(f, 50, 30, 5);
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let start = random(&mut rng, 30 * f);
        let mut x = start.clone();
        half_step(&p, 3).run(&mut x);
        for u in 0..30 {
            let range = p.indptr[u]..p.indptr[u + 1];
            let (a, b) = normal_equations(&p.gram, &p.y, f, &p.indices[range.clone()], &p.confidences[range]);
            let exact = direct_solve(a.clone(), b, f);
            let a_norm = |v: &[f32]| {
                let e: Vec<f64> = v.iter().zip(&exact).map(|(x, s)| *x as f64 - s).collect();
                (0..f).map(|i| e[i] * (0..f).map(|j| a[i * f + j] * e[j]).sum::<f64>()).sum::<f64>()
            };
            let (before, after) = (a_norm(&start[u * f..(u + 1) * f]), a_norm(&x[u * f..(u + 1) * f]));
            assert!(after < before, "row {u}: {before} -> {after}");
        }
    }
}
