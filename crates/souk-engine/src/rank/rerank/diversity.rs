//! Diversity for re-ranking: filling the organic positions of the list around the fixed
//! ones, in sorted order, by maximal marginal relevance or under a window quota. See
//! [`super`] for the semantics.

use super::{Candidate, Diversity, QuotaKey, Slot, MAX_CATEGORY_DEPTH};

/// One filled position.
pub(super) struct Placed {
    pub(super) candidate: u32,
    /// For an organic position under diversity: the item's index in the pool.
    pub(super) pool_index: Option<u32>,
    pub(super) relaxed: bool,
}

/// Fill the first `page_len` of `slots`: fixed slots with their items, organic ones from
/// `pool` in order or by the diversity rule. A quota also sees the fixed items within a
/// window below the page, so that a page is a prefix of a longer one.
pub(super) fn fill(
    candidates: &[Candidate],
    score: &[f64],
    buried: &[bool],
    all_slots: &[Slot],
    page_len: usize,
    pool: &[u32],
    diversity: Option<&Diversity>,
) -> Vec<Placed> {
    let slots = &all_slots[..page_len];
    match diversity {
        None => {
            let mut organic = pool.iter();
            slots
                .iter()
                .filter_map(|slot| {
                    let candidate = match *slot {
                        Slot::Pin { candidate, .. } | Slot::Promotion { candidate } => candidate,
                        Slot::Organic => *organic.next()?,
                    };
                    Some(Placed { candidate, pool_index: None, relaxed: false })
                })
                .collect()
        }
        Some(&Diversity::Mmr { lambda }) => fill_mmr(candidates, score, buried, slots, pool, lambda),
        Some(&Diversity::Quota { by, max_per_window, window }) => {
            let quota = WindowQuota { by, max_per_window, window: window.max(1) };
            fill_quota(candidates, buried, all_slots, page_len, pool, &quota)
        }
    }
}

/// [`fill`] under [`Diversity::Quota`].
fn fill_quota(
    candidates: &[Candidate],
    buried: &[bool],
    all_slots: &[Slot],
    page_len: usize,
    pool: &[u32],
    quota: &WindowQuota,
) -> Vec<Placed> {
    let (depth, brand) = match quota.by {
        QuotaKey::Brand => (0, true),
        QuotaKey::Category(level) => (level, false),
    };
    let seen_slots = &all_slots[..all_slots.len().min(page_len.saturating_add(quota.window - 1))];
    let rows = fact_rows(candidates, seen_slots, pool, depth, brand);
    let value_of = |candidate: u32| {
        let row = &rows[candidate as usize];
        if brand {
            row.brand
        } else {
            row.category()
        }
    };
    // Value at each position the page's windows reach: known ahead for fixed slots, filled
    // as we go for organic ones.
    let mut values: Vec<u64> = seen_slots
        .iter()
        .map(|slot| match *slot {
            Slot::Pin { candidate, .. } | Slot::Promotion { candidate } => value_of(candidate),
            Slot::Organic => NO_VALUE,
        })
        .collect();
    let mut remaining = Remaining::new(pool, buried);
    let mut blocked: Vec<u64> = Vec::new();
    let mut placed = Vec::with_capacity(page_len);
    for (p, slot) in all_slots[..page_len].iter().enumerate() {
        let place = match *slot {
            Slot::Pin { candidate, .. } | Slot::Promotion { candidate } => {
                Placed { candidate, pool_index: None, relaxed: false }
            }
            Slot::Organic => {
                if remaining.group().is_empty() {
                    break;
                }
                // The best-ranked item that fits; values found not to fit are not checked twice.
                blocked.clear();
                let fitting = remaining.group().iter().position(|&r| {
                    let value = value_of(pool[r as usize]);
                    if value == NO_VALUE {
                        return true;
                    }
                    if blocked.contains(&value) {
                        return false;
                    }
                    let fits = quota.fits(&values, p, value);
                    if !fits {
                        blocked.push(value);
                    }
                    fits
                });
                let place = match fitting {
                    Some(k) => remaining.take(k, false),
                    None => remaining.take(0, true),
                };
                values[p] = value_of(place.candidate);
                place
            }
        };
        placed.push(place);
    }
    placed
}

/// Pool indices still to place, in pool order (unburied ones first).
struct Remaining<'a> {
    order: Vec<u32>,
    unburied_left: usize,
    pool: &'a [u32],
    buried: &'a [bool],
}

impl<'a> Remaining<'a> {
    fn new(pool: &'a [u32], buried: &'a [bool]) -> Self {
        let unburied_left = pool.iter().filter(|&&i| !buried[i as usize]).count();
        Self { order: (0..pool.len() as u32).collect(), unburied_left, pool, buried }
    }

    /// What the next organic position may take: the unburied items while any remain.
    fn group(&self) -> &[u32] {
        if self.unburied_left > 0 {
            &self.order[..self.unburied_left]
        } else {
            &self.order
        }
    }

    /// Take the `k`-th item of [`Self::group`].
    fn take(&mut self, k: usize, relaxed: bool) -> Placed {
        let pool_index = self.order.remove(k);
        let candidate = self.pool[pool_index as usize];
        if !self.buried[candidate as usize] {
            self.unburied_left -= 1;
        }
        Placed { candidate, pool_index: Some(pool_index), relaxed }
    }
}

/// A pool item still to place under MMR, with what its inner loop needs inline.
struct MmrEntry {
    row: FactRow,
    /// `λ · relevance`.
    relevance: f64,
    /// `λ · relevance − (1 − λ) · max similarity`: the MMR value.
    value: f64,
    /// Most similar item placed so far, in [`FactRow::similarity`] units.
    max_similarity: u32,
    pool_index: u32,
}

/// [`fill`] under [`Diversity::Mmr`]. The items still to place are kept in two arrays
/// (unburied, buried), unordered: ties go to the lower pool index, so the arrays can lose
/// items by `swap_remove` and the inner loops run over contiguous memory.
fn fill_mmr(
    candidates: &[Candidate],
    score: &[f64],
    buried: &[bool],
    slots: &[Slot],
    pool: &[u32],
    lambda: f64,
) -> Vec<Placed> {
    let relevance = relevance(score, pool);
    let mut groups: [Vec<MmrEntry>; 2] = [Vec::with_capacity(pool.len()), Vec::new()];
    for (k, &i) in pool.iter().enumerate() {
        let value = lambda * relevance[k];
        let entry = MmrEntry {
            row: FactRow::new(&candidates[i as usize], MAX_CATEGORY_DEPTH, true),
            relevance: value,
            value,
            max_similarity: 0,
            pool_index: k as u32,
        };
        groups[usize::from(buried[i as usize])].push(entry);
    }
    let similarity_weight = (1.0 - lambda) / f64::from(SIMILARITY_ONE);
    let mut placed = Vec::with_capacity(slots.len());
    for slot in slots {
        let (place, row) = match *slot {
            Slot::Pin { candidate, .. } | Slot::Promotion { candidate } => {
                let row = FactRow::new(&candidates[candidate as usize], MAX_CATEGORY_DEPTH, true);
                (Placed { candidate, pool_index: None, relaxed: false }, row)
            }
            Slot::Organic => {
                let group = if groups[0].is_empty() { &mut groups[1] } else { &mut groups[0] };
                let Some(first) = group.first() else {
                    break;
                };
                // The first maximum in pool order (NaN never wins).
                let mut best = (0, first.value, first.pool_index);
                for (k, entry) in group.iter().enumerate().skip(1) {
                    if entry.value > best.1 || (entry.value == best.1 && entry.pool_index < best.2) {
                        best = (k, entry.value, entry.pool_index);
                    }
                }
                let entry = group.swap_remove(best.0);
                let candidate = pool[entry.pool_index as usize];
                (Placed { candidate, pool_index: Some(entry.pool_index), relaxed: false }, entry.row)
            }
        };
        if lambda < 1.0 {
            for entry in groups.iter_mut().flatten() {
                if entry.max_similarity < SIMILARITY_ONE {
                    let similarity = entry.row.similarity(&row);
                    if similarity > entry.max_similarity {
                        entry.max_similarity = similarity;
                        entry.value = entry.relevance - similarity_weight * f64::from(similarity);
                    }
                }
            }
        }
        placed.push(place);
    }
    placed
}

/// Boosted scores of the pool, min–max normalised to `[0, 1]` (by pool index). Infinite
/// scores map to the ends; NaN to 0; all-equal finite scores to 1.
fn relevance(score: &[f64], pool: &[u32]) -> Vec<f64> {
    let finite = || pool.iter().map(|&i| score[i as usize]).filter(|s| s.is_finite());
    let min = finite().fold(f64::INFINITY, f64::min);
    let max = finite().fold(f64::NEG_INFINITY, f64::max);
    // Halves, so that max - min cannot overflow.
    let range = max / 2.0 - min / 2.0;
    pool.iter()
        .map(|&i| {
            let s = score[i as usize];
            if s == f64::INFINITY {
                1.0
            } else if !s.is_finite() {
                0.0
            } else if range > 0.0 {
                ((s / 2.0 - min / 2.0) / range).clamp(0.0, 1.0)
            } else {
                1.0
            }
        })
        .collect()
}

/// The quota of [`Diversity::Quota`] over page positions.
struct WindowQuota {
    by: QuotaKey,
    max_per_window: usize,
    window: usize,
}

impl WindowQuota {
    /// Whether `value` at position `p` keeps at most `max_per_window` of it in every window
    /// of `window` consecutive positions that contains `p` (`values` holds what is known:
    /// positions above `p` and fixed positions below).
    fn fits(&self, values: &[u64], p: usize, value: u64) -> bool {
        let last = values.len() - 1;
        // A window longer than the positions known covers them all, as one of that length does.
        let window = self.window.min(values.len());
        let first_start = p.saturating_sub(window - 1);
        let count_at = |q: usize| usize::from(q != p && q <= last && values[q] == value);
        // The window starting at first_start, then slide it one position at a time.
        let mut count: usize = (first_start..first_start + window).map(count_at).sum();
        if count >= self.max_per_window {
            return false;
        }
        for start in first_start + 1..=p {
            count -= count_at(start - 1);
            count += count_at(start + window - 1);
            if count >= self.max_per_window {
                return false;
            }
        }
        true
    }
}

/// No brand, no category: a quota does not count the item.
const NO_VALUE: u64 = u64::MAX;

/// Seed of brand digests, so a brand and a top-level category of the same name differ.
const BRAND_SEED: u64 = 0x62_7261_6e64;

/// The facts diversity compares, as digests, inline so that the inner loops touch one
/// small row per item. The digest of a category prefix of depth `d` chains those above it
/// (it is seeded with its parent's), so it identifies the whole path down to `d`: two
/// items share depth `d` exactly when their digests at `d` are equal. Digests are 64-bit
/// xxh3 of the ASCII-lowercased text: for the few hundred distinct values of one call a
/// collision (about 2^-64 per pair) is not a practical concern, and no map is needed.
#[derive(Clone, Copy)]
struct FactRow {
    path: [u64; MAX_CATEGORY_DEPTH],
    depth: u8,
    brand: u64,
}

const EMPTY_ROW: FactRow = FactRow { path: [NO_VALUE; MAX_CATEGORY_DEPTH], depth: 0, brand: NO_VALUE };

/// A similarity of 1 in the integer units of [`FactRow::similarity`]: twice the least
/// common multiple of 1..=8, so `shared / deeper` is exact at every depth.
const SIMILARITY_ONE: u32 = 2 * 840;

/// `840 / deeper` by the deeper path's depth (0 for none).
const UNITS_PER_LEVEL: [u32; MAX_CATEGORY_DEPTH + 1] = [0, 840, 420, 280, 210, 168, 140, 120, 105];

/// xxh3 of the ASCII-lowercased `text`, seeded.
fn folded_digest(text: &str, seed: u64) -> u64 {
    const SHORT: usize = 64;
    let bytes = text.as_bytes();
    if bytes.len() <= SHORT {
        let mut buffer = [0u8; SHORT];
        let folded = &mut buffer[..bytes.len()];
        folded.copy_from_slice(bytes);
        folded.make_ascii_lowercase();
        xxhash_rust::xxh3::xxh3_64_with_seed(folded, seed)
    } else {
        // Streaming gives the same digest as one shot over the same bytes.
        let mut hasher = xxhash_rust::xxh3::Xxh3::with_seed(seed);
        let mut buffer = [0u8; SHORT];
        for chunk in bytes.chunks(SHORT) {
            let folded = &mut buffer[..chunk.len()];
            folded.copy_from_slice(chunk);
            folded.make_ascii_lowercase();
            hasher.update(folded);
        }
        hasher.digest()
    }
}

impl FactRow {
    /// The candidate's facts, its category path cut at `depth`, its brand if asked.
    fn new(candidate: &Candidate, depth: usize, brand: bool) -> Self {
        let mut row = EMPTY_ROW;
        let mut parent = 0;
        for (d, level) in candidate.category.iter().take(depth.min(MAX_CATEGORY_DEPTH)).enumerate() {
            parent = folded_digest(level, parent);
            row.path[d] = parent;
            row.depth = d as u8 + 1;
        }
        if let Some(text) = candidate.brand.as_deref().filter(|_| brand) {
            row.brand = folded_digest(text, BRAND_SEED);
        }
        row
    }

    /// The digest of the category path (cut at the depth asked).
    fn category(&self) -> u64 {
        if self.depth == 0 {
            NO_VALUE
        } else {
            self.path[usize::from(self.depth) - 1]
        }
    }

    /// `(shared category depth / deeper path's depth + same brand) / 2`, in `[0, 1]`, times
    /// [`SIMILARITY_ONE`]: integers, so the inner loop of MMR needs no float compare.
    fn similarity(&self, other: &FactRow) -> u32 {
        // Branch-free: digests chain, so below the first differing level every level
        // differs; levels below both paths are NO_VALUE on both sides and count as equal,
        // levels below only one path differ.
        let equal: usize = self.path.iter().zip(&other.path).map(|(a, b)| usize::from(a == b)).sum();
        let deeper = usize::from(self.depth.max(other.depth));
        let shared = equal - (MAX_CATEGORY_DEPTH - deeper);
        let category = shared as u32 * UNITS_PER_LEVEL[deeper];
        let brand = if self.brand != NO_VALUE && self.brand == other.brand { SIMILARITY_ONE / 2 } else { 0 };
        category + brand
    }
}

/// [`FactRow`]s by candidate index, filled for the fixed items in `slots` and the `pool`.
fn fact_rows(candidates: &[Candidate], slots: &[Slot], pool: &[u32], depth: usize, brand: bool) -> Vec<FactRow> {
    let mut rows = vec![EMPTY_ROW; candidates.len()];
    let fixed = slots.iter().filter_map(|slot| match *slot {
        Slot::Pin { candidate, .. } | Slot::Promotion { candidate } => Some(candidate),
        Slot::Organic => None,
    });
    for i in pool.iter().copied().chain(fixed) {
        rows[i as usize] = FactRow::new(&candidates[i as usize], depth, brand);
    }
    rows
}
