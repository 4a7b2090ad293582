//! Items similar to an item: item-kNN neighbours and content neighbours fused, then catalog
//! items sharing its category path or brand (so an item without interactions — and one
//! without content — has an answer).

use std::collections::{HashMap, HashSet};

use super::live_content::LiveContent;
use crate::error::Result;
use crate::fusion;
use crate::search::vectors::VectorSpace;
use crate::store::{ItemMeta, Storage};

use super::*;

/// Items similar to `item`, best first: its item-kNN neighbours and its nearest items by
/// content (`content`: the live content vectors and the text vectors they read), fused by
/// reciprocal rank — an item without interactions has content neighbours alone, and a new
/// item is among its content neighbours' lists at once —, then, when those are fewer than
/// `n`, catalog items that share its category path (deepest first) or brand, by
/// popularity. `None` when the catalog does not hold the item (unknown or deleted).
pub fn similar(
    set: Option<&ModelSet>,
    store: &dyn Storage,
    item: &str,
    n: usize,
    filter: &ItemFilter,
    content: Option<(&LiveContent, Option<&VectorSpace>)>,
) -> Result<Option<Vec<Recommended>>> {
    let Some(target) = store.items_meta(&[item])?.pop().flatten() else {
        return Ok(None);
    };
    let mut lists: Vec<(SourceKind, Vec<(String, f32)>)> = Vec::new();
    if let Some((set, &i)) = set.and_then(|set| set.item_index.get(item).map(|i| (set, i))) {
        let (neighbours, sims) = set.knn.neighbours_of(i);
        let ids: Vec<&str> = neighbours.iter().map(|j| set.item_id(*j)).collect();
        let metas = store.items_meta(&ids)?;
        let mut knn: Vec<(String, f32)> = neighbours
            .iter()
            .zip(sims)
            .zip(metas)
            .filter(|((j, _), meta)| **j != i && filter.accepts(meta.as_ref()))
            .map(|((j, s), _)| (set.item_id(*j).to_string(), *s))
            .collect();
        knn.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        knn.truncate(n);
        lists.push((SourceKind::Itemknn, knn));
    }
    if let Some((live, text)) = content {
        if let Some(vector) = live.vector_of(store, text, item)? {
            let nearest =
                live.nearest(store, text, &vector, n * 4 + 1, &mut |id| (id != item).then(|| id.to_string()))?;
            let ids: Vec<&str> = nearest.iter().map(|(id, _)| id.as_str()).collect();
            let verdicts = store.items_match(&ids, &|meta| filter.accepts(meta))?;
            let mut list: Vec<(String, f32)> =
                nearest.into_iter().zip(verdicts).filter(|(_, ok)| *ok).map(|(found, _)| found).collect();
            list.truncate(n);
            lists.push((SourceKind::Content, list));
        }
    }
    let mut out = fused(&lists, item);
    out.truncate(n);
    if out.len() < n {
        let taken: HashSet<String> = out.iter().map(|r| r.id.clone()).collect();
        let mut alike: Vec<(u32, f32, String)> = Vec::new();
        store.scan_item_meta(&mut |id, meta| {
            let affinity = catalog_affinity(&target, meta);
            if affinity > 0 && id != item && !taken.contains(id) && filter.accepts(Some(meta)) {
                let popularity =
                    set.and_then(|set| set.item_index.get(id).map(|j| set.popularity[*j as usize])).unwrap_or(0.0);
                alike.push((affinity, popularity, id.to_string()));
            }
        })?;
        alike.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.total_cmp(&a.1)).then_with(|| a.2.cmp(&b.2)));
        // Below every kNN neighbour, in the fallback's own order.
        let floor = out.last().map_or(0.0, |r| r.score.min(0.0));
        let room = n - out.len();
        for (k, (_, _, id)) in alike.into_iter().take(room).enumerate() {
            out.push(similar_item(id, floor - (k + 1) as f64 * 1e-6, SourceKind::Catalog, item));
        }
    }
    // The catalog fallback's reasons rank by their place on the page.
    for (rank, r) in out.iter_mut().enumerate() {
        if r.reasons[0].rank == 0 {
            r.reasons[0].rank = rank + 1;
        }
    }
    Ok(Some(out))
}

/// The lists fused by reciprocal rank (one reason per list an item is in), best first.
fn fused(lists: &[(SourceKind, Vec<(String, f32)>)], item: &str) -> Vec<Recommended> {
    let mut by_id: HashMap<&str, (f64, Vec<Reason>)> = HashMap::new();
    for (source, list) in lists {
        for (rank, (id, s)) in list.iter().enumerate() {
            let entry = by_id.entry(id.as_str()).or_default();
            entry.0 += fusion::reciprocal_rank(fusion::RRF_K, rank + 1);
            entry.1.push(Reason {
                source: *source,
                rank: rank + 1,
                score: *s,
                because: Some(item.to_string()),
                ..Reason::default()
            });
        }
    }
    let mut out: Vec<Recommended> = by_id
        .into_iter()
        .map(|(id, (score, reasons))| Recommended { id: id.to_string(), score, reasons, ..Recommended::default() })
        .collect();
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
    out
}

/// How much two items have in common in the catalog: two points per shared category level
/// (from the top), one for the same brand; 0 for nothing.
pub(super) fn catalog_affinity(a: &ItemMeta, b: &ItemMeta) -> u32 {
    let levels = a.category.iter().zip(b.category.iter()).take_while(|(x, y)| x.eq_ignore_ascii_case(y)).count();
    let brand = match (&a.brand, &b.brand) {
        (Some(x), Some(y)) if x.eq_ignore_ascii_case(y) => 1,
        _ => 0,
    };
    2 * levels as u32 + brand
}

pub(super) fn similar_item(id: String, score: f64, source: SourceKind, because: &str) -> Recommended {
    Recommended {
        id,
        score,
        reasons: vec![Reason {
            source,
            rank: 0,
            score: score as f32,
            because: Some(because.to_string()),
            because_event: None,
            because_title: None,
            ..Reason::default()
        }],
        effects: Vec::new(),
        ranker: None,
        ..Recommended::default()
    }
}
