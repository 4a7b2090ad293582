//! An index over rows that keep changing after it was built (content vectors as the catalog
//! changes, fresh items' mapped factors): rows appended since (past `covered`) and rows
//! rewritten since (`changed`) are scanned exactly by every search, the rest through the
//! index — an [`IvfIndex`] over the full rows, or a [`ProjectedIndex`] for wide ones. Below
//! [`EXACT_BELOW`] rows there is no index (see [`exact_search`](super::ivf::exact_search));
//! [`LiveIndex::worn`] says when enough rows bypass it that it should be rebuilt.

use super::ivf::{scan_into, BuildEffort, IvfIndex, TopK, EXACT_BELOW};
use super::kernels::dot_rows;
use super::projected::ProjectedIndex;

/// What the indexed rows are searched through.
#[derive(Debug, Clone)]
enum Base {
    Full(IvfIndex),
    Projected { index: ProjectedIndex, extra_per_k: usize },
}

/// The number of `dim`-wide rows, when there are enough for an index.
fn indexed_rows(rows: &[f32], dim: usize) -> Option<usize> {
    Some(rows.len().checked_div(dim).unwrap_or(0)).filter(|&n| n >= EXACT_BELOW)
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct LiveIndex {
    base: Base,
    /// Rows `0..covered` were indexed.
    covered: usize,
    /// Per indexed row: its indexed copy is out of date (the row is in `rewritten`).
    stale: Vec<bool>,
    rewritten: Vec<u32>,
}

impl LiveIndex {
    /// An index over `rows` (`dim` wide), or `None` for fewer than [`EXACT_BELOW`] rows.
    pub fn build(rows: &[f32], dim: usize, seed: u64, effort: BuildEffort) -> Option<Self> {
        let n = indexed_rows(rows, dim)?;
        let ivf = IvfIndex::build_with(rows, dim, IvfIndex::clusters_for(n), seed, effort);
        Some(Self::over(Base::Full(ivf), n))
    }

    /// An index over `rows` (`dim` wide) through their `reduced` principal directions (see
    /// [`ProjectedIndex`]), each search scoring its best `k + extra_per_k × k` candidates on
    /// the full rows; `None` for fewer than [`EXACT_BELOW`] rows.
    pub fn build_projected(
        rows: &[f32],
        dim: usize,
        reduced: usize,
        extra_per_k: usize,
        seed: u64,
        effort: BuildEffort,
    ) -> Option<Self> {
        let n = indexed_rows(rows, dim)?;
        let index = ProjectedIndex::build(rows, dim, reduced, IvfIndex::clusters_for(n), seed, effort)?;
        Some(Self::over(Base::Projected { index, extra_per_k }, n))
    }

    fn over(base: Base, n: usize) -> Self {
        Self { base, covered: n, stale: vec![false; n], rewritten: Vec::new() }
    }

    /// Keep a copy of the indexed rows in cluster order (see [`IvfIndex::with_copy`]): for
    /// narrow rows such as factors. Rows rewritten later are still read from their owner.
    pub fn with_copy(self, rows: &[f32]) -> Self {
        match self.base {
            Base::Full(ivf) => Self { base: Base::Full(ivf.with_copy(rows)), ..self },
            Base::Projected { .. } => self,
        }
    }

    /// Row `i` was rewritten (rows past the indexed ones need no word).
    pub fn changed(&mut self, i: usize) {
        if let Some(stale) = self.stale.get_mut(i).filter(|s| !**s) {
            *stale = true;
            self.rewritten.push(i as u32);
        }
    }

    /// Whether enough of the `rows` rows bypass the index that it should be rebuilt.
    pub fn worn(&self, rows: usize) -> bool {
        self.rewritten.len() + rows.saturating_sub(self.covered) > (self.covered / 10).max(2_000)
    }

    /// The `k` best rows of `rows` (`dim` wide) for `query` by inner product among those
    /// `skip` lets through, best first: at least `probe_items` indexed rows scored, and
    /// every row the index does not hold correctly.
    pub fn search(
        &self,
        rows: &[f32],
        dim: usize,
        query: &[f32],
        k: usize,
        probe_items: usize,
        skip: &mut dyn FnMut(u32) -> bool,
    ) -> Vec<(u32, f32)> {
        let mut top = TopK::new(k);
        let mut indexed = |i: u32| self.stale[i as usize] || skip(i);
        let found = match &self.base {
            Base::Full(ivf) => ivf.search(rows, query, k, probe_items, &mut indexed),
            Base::Projected { index, extra_per_k } => {
                index.search(rows, query, k, probe_items, extra_per_k * k, &mut indexed)
            }
        };
        for (i, s) in found {
            top.push(i, s);
        }
        let mut score = [0f32];
        for &i in &self.rewritten {
            dot_rows(query, &rows[i as usize * dim..(i as usize + 1) * dim], &mut score);
            if top.admits(score[0]) && !skip(i) {
                top.push(i, score[0]);
            }
        }
        let n = rows.len().checked_div(dim).unwrap_or(0);
        if n > self.covered {
            scan_into(&mut top, &rows[self.covered * dim..n * dim], dim, self.covered as u32, query, skip);
        }
        top.into_sorted()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recommend::ivf::exact_search;
    use crate::recommend::ivf::tests::unit_rows;

    #[test]
    fn a_live_index_needs_a_large_row_set() {
        assert!(LiveIndex::build(&unit_rows(100, 8, 1), 8, 1, BuildEffort::default()).is_none());
    }

    #[test]
    fn a_live_index_finds_most_exact_neighbours_and_follows_rewritten_and_appended_rows() {
        for base in ["full", "copy", "projected"] {
            live_index_follows_its_rows(base);
        }
    }

    fn live_index_follows_its_rows(base: &str) {
        let dim = 32;
        let n = EXACT_BELOW + 500;
        let mut data = unit_rows(n, dim, 2);
        let effort = BuildEffort { sample_per_cluster: 16, iterations: 5 };
        let mut index = match base {
            // Through as many directions as dimensions (a rotation): what is tested here
            // is the plumbing; the projection's recall is `projected`'s own test.
            "projected" => LiveIndex::build_projected(&data, dim, dim, 1, 3, effort),
            _ => LiveIndex::build(&data, dim, 3, effort),
        }
        .expect("large enough for an index");
        if base == "copy" {
            index = index.with_copy(&data);
        }
        let queries = 20;
        let mut found = 0;
        for q in 0..queries {
            let query = data[q * 97 * dim..(q * 97 + 1) * dim].to_vec();
            let exact: Vec<u32> = exact_search(&data, dim, &query, 10, &mut |_| false).iter().map(|x| x.0).collect();
            let approx = index.search(&data, dim, &query, 10, 2_000, &mut |_| false);
            found += approx.iter().filter(|(i, _)| exact.contains(i)).count();
        }
        assert!(found >= queries * 10 * 8 / 10, "recall@10 {}", found as f32 / (queries * 10) as f32);
        assert!(!index.worn(n));

        // Row 5 is rewritten to a copy of row 3, and a copy is appended.
        let query = data[3 * dim..4 * dim].to_vec();
        data[5 * dim..6 * dim].copy_from_slice(&query);
        index.changed(5);
        data.extend_from_slice(&query);
        let best: Vec<u32> = index.search(&data, dim, &query, 3, 2_000, &mut |_| false).iter().map(|x| x.0).collect();
        for i in [3, 5, n as u32] {
            assert!(best.contains(&i), "{i} missing from {best:?}");
        }
        // Skipped rows never come back.
        let best = index.search(&data, dim, &query, 3, 2_000, &mut |i| i == 5 || i == 3);
        assert!(best.iter().all(|(i, _)| *i != 5 && *i != 3), "{best:?}");
        // Many appended rows wear it out.
        assert!(index.worn(n + n / 10 + 1));
    }
}
