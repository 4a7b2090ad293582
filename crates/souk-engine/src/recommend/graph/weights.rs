//! The relations' weights, learned from the training interactions (see the module docs
//! of `recommend::graph`).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{for_shared, GraphParams};
use crate::recommend::data::Interactions;

/// Each relation's weight: see the module docs. Pairs of items one shopper consumed
/// (label 1) and pairs drawn at random by popularity (label 0), each described by its
/// per-relation cosines; a logistic regression fitted by Newton's method (ridge 1e-3 per
/// pair) gives each relation a coefficient `β_r`; `w(r) = √max(0, β_r)`, so that the
/// items' cosine weighs relation `r`'s cosine by `β_r`.
pub(super) fn learn_relation_weights(
    data: &Interactions,
    blocks: &[Vec<(u32, f32)>],
    entity_relation: &[u32],
    n_relations: usize,
    params: &GraphParams,
) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    // Rows of the design: the per-relation cosines of a pair, then the intercept.
    let width = n_relations + 1;
    let (mut rows, mut labels): (Vec<f32>, Vec<f64>) = (Vec::new(), Vec::new());
    let mut push = |a: u32, b: u32, label: f64, rows: &mut Vec<f32>| {
        let start = rows.len();
        rows.resize(start + width, 0.0);
        let (x, y) = (&blocks[a as usize], &blocks[b as usize]);
        for_shared(
            x,
            y,
            |e| e.0,
            |e| e.0,
            |p, q| {
                rows[start + entity_relation[x[p].0 as usize] as usize] += x[p].1 * y[q].1;
            },
        );
        rows[start + n_relations] = 1.0;
        labels.push(label);
    };
    let users = data.n_users();
    let step = users.div_ceil(params.max_users).max(1);
    let mut pairs = 0usize;
    for u in (0..users).step_by(step) {
        let (items, _) = data.row(u);
        if items.len() < 2 {
            continue;
        }
        for _ in 0..params.pairs_per_user.min(items.len() * (items.len() - 1) / 2) {
            let a = items[rng.gen_range(0..items.len())];
            let mut b = items[rng.gen_range(0..items.len())];
            while b == a {
                b = items[rng.gen_range(0..items.len())];
            }
            push(a, b, 1.0, &mut rows);
            pairs += 1;
        }
    }
    // As many pairs of interactions drawn at random (items by popularity).
    let nnz = data.indices.len();
    let (mut drawn, mut tries) = (0, 0);
    while drawn < pairs && tries < 4 * pairs {
        tries += 1;
        let a = data.indices[rng.gen_range(0..nnz)];
        let b = data.indices[rng.gen_range(0..nnz)];
        if a != b {
            push(a, b, 0.0, &mut rows);
            drawn += 1;
        }
    }
    let beta = logistic_regression(&rows, &labels, width, 1e-3 * labels.len() as f64);
    beta[..n_relations].iter().map(|&b| b.max(0.0).sqrt() as f32).collect()
}

/// Ridge-penalised logistic regression by Newton's method (the intercept, the last
/// column, unpenalised): the coefficients.
fn logistic_regression(rows: &[f32], labels: &[f64], width: usize, ridge: f64) -> Vec<f64> {
    let mut beta = vec![0f64; width];
    for _ in 0..25 {
        let mut gradient = vec![0f64; width];
        let mut hessian = vec![0f64; width * width];
        for (x, &y) in rows.chunks_exact(width).zip(labels) {
            let z: f64 = x.iter().zip(&beta).map(|(a, b)| f64::from(*a) * b).sum();
            let p = 1.0 / (1.0 + (-z).exp());
            let w = (p * (1.0 - p)).max(1e-9);
            for a in 0..width {
                if x[a] == 0.0 {
                    continue;
                }
                gradient[a] += (y - p) * f64::from(x[a]);
                for b in 0..width {
                    hessian[a * width + b] += w * f64::from(x[a]) * f64::from(x[b]);
                }
            }
        }
        for a in 0..width - 1 {
            gradient[a] -= ridge * beta[a];
            hessian[a * width + a] += ridge;
        }
        // A column no pair touches stays at 0.
        for a in 0..width {
            if hessian[a * width + a] == 0.0 {
                hessian[a * width + a] = 1.0;
            }
        }
        let Some(step) = solve_spd(&hessian, &gradient, width) else { break };
        let size: f64 = step.iter().map(|s| s.abs()).fold(0.0, f64::max);
        for (b, s) in beta.iter_mut().zip(&step) {
            *b += s;
        }
        if size < 1e-6 {
            break;
        }
    }
    beta
}

/// `A x = b` for a small symmetric positive-definite `A` (Cholesky); `None` when `A` is not.
fn solve_spd(a: &[f64], b: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            let sum: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            if i == j {
                let d = a[i * n + i] - sum;
                if d <= 0.0 {
                    return None;
                }
                l[i * n + i] = d.sqrt();
            } else {
                l[i * n + j] = (a[i * n + j] - sum) / l[j * n + j];
            }
        }
    }
    let mut y = vec![0f64; n];
    for i in 0..n {
        y[i] = (b[i] - (0..i).map(|k| l[i * n + k] * y[k]).sum::<f64>()) / l[i * n + i];
    }
    let mut x = vec![0f64; n];
    for i in (0..n).rev() {
        x[i] = (y[i] - (i + 1..n).map(|k| l[k * n + i] * x[k]).sum::<f64>()) / l[i * n + i];
    }
    Some(x)
}
