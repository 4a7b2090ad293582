//! Trending items on the shop's own clock, and recommendations before any training.

use std::collections::HashMap;

use crate::error::Result;
use crate::hashing::DigestSet;
use crate::recommend::EventWeights;
use crate::store::Storage;

use super::*;

/// The shop's clock: the 99th percentile of the given timestamps (`None` without any).
pub(super) fn shop_clock(stamps: &mut [i64]) -> Option<i64> {
    if stamps.is_empty() {
        return None;
    }
    let k = ((stamps.len() - 1) as f64 * 0.99).round() as usize;
    Some(*stamps.select_nth_unstable(k).1)
}

/// ln(e^a + e^b) without overflow or underflow.
pub(super) fn ln_add_exp(a: f64, b: f64) -> f64 {
    let (high, low) = if a >= b { (a, b) } else { (b, a) };
    if low == f64::NEG_INFINITY {
        return high;
    }
    high + (low - high).exp().ln_1p()
}

/// How many recent interactions trending looks at.
pub const TRENDING_WINDOW_ROWS: usize = 200_000;

/// Recommendations before any model is trained: trending items, with the same exclusions,
/// filters and cursor as [`recommend`].
pub fn recommend_without_models(
    store: &dyn Storage,
    weights: &EventWeights,
    request: &RecommendRequest,
) -> Result<(Vec<Recommended>, Option<Cursor>)> {
    let mut excluded = DigestSet::default();
    for interaction in store.user_interactions(&request.user, 100_000)? {
        if excludes(request.exclude, interaction.event_type) {
            excluded.insert(xxhash_rust::xxh3::xxh3_64(interaction.item.as_bytes()));
        }
    }
    let cursor = request.cursor.clone().unwrap_or_default();
    // With rules, they arrange a wider window (as with models).
    let depth = if request.rules.is_empty() { request.n } else { RERANK_WINDOW.max(request.n * 3) };
    let wanted = depth + excluded.len() + cursor.shown.len();
    let allowed = |id: &str| !excluded.contains(&xxhash_rust::xxh3::xxh3_64(id.as_bytes())) && !cursor.contains(id);
    let mut items: Vec<Recommended> =
        trending(store, weights, 24.0 * 3.6e6, TRENDING_WINDOW_ROWS, wanted, &request.filter)?
            .into_iter()
            .filter(|r| allowed(&r.id))
            .take(depth)
            .collect();
    if !request.rules.is_empty() {
        let rules = rules_for_page(&request.rules, cursor.shown.len());
        // Pinned items join when the catalog has them and they pass the filters.
        let page = super::rules::arrange(
            store,
            std::mem::take(&mut items),
            |r| r.id.clone(),
            |r| r.score,
            &rules,
            request.n,
            |pin, floor| {
                if !allowed(&pin.item) {
                    return Ok(None);
                }
                let meta = store.items_meta(&[pin.item.as_str()])?.pop().flatten();
                Ok((meta.is_some() && request.filter.accepts(meta.as_ref())).then(|| Recommended {
                    id: pin.item.clone(),
                    score: floor,
                    reasons: vec![Reason { source: SourceKind::Pin, rank: pin.position, ..Reason::default() }],
                    ..Recommended::default()
                }))
            },
        )?;
        items = page
            .into_iter()
            .map(|(mut item, score, effects)| {
                item.score = score;
                item.effects = effects;
                item
            })
            .collect();
    }
    items.truncate(request.n);
    let mut next = cursor;
    for (rank, item) in items.iter_mut().enumerate() {
        item.reasons[0].rank = rank + 1;
        next.shown.push(item_digest(&item.id));
    }
    let next_cursor = (!items.is_empty() && next.shown.len() <= MAX_CURSOR_ITEMS).then_some(next);
    Ok((items, next_cursor))
}

/// Trending items: event weights decayed exponentially with age (half-life), over at most
/// `max_rows` recent interactions. Ages count back from the shop's own clock — the 99th
/// percentile of those interactions' timestamps — so a shop imported from the past is
/// measured against its own traffic, and a handful of newer events (one posted today)
/// count like any event at the clock instead of decaying everything else to nothing.
/// Sums are kept as logarithms, so no score underflows however old the traffic.
pub fn trending(
    store: &dyn Storage,
    weights: &EventWeights,
    half_life_ms: f64,
    max_rows: usize,
    n: usize,
    filter: &ItemFilter,
) -> Result<Vec<Recommended>> {
    let mut stamps: Vec<i64> = Vec::new();
    store.recent_interactions(max_rows, &mut |_, row| {
        stamps.push(row.timestamp);
        true
    })?;
    let Some(clock) = shop_clock(&mut stamps) else {
        return Ok(Vec::new());
    };
    let decay = std::f64::consts::LN_2 / half_life_ms;
    // Per item: ln of the decayed weighted count.
    let mut totals: HashMap<String, f64> = HashMap::new();
    store.recent_interactions(max_rows, &mut |item, row| {
        let w = f64::from(weights.weight(row));
        if w > 0.0 {
            let age = (clock - row.timestamp).max(0) as f64;
            let term = w.ln() - age * decay;
            let total = totals.entry(item.to_string()).or_insert(f64::NEG_INFINITY);
            *total = ln_add_exp(*total, term);
        }
        true
    })?;
    let mut ranked: Vec<(String, f64)> = totals.into_iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut out = Vec::new();
    for chunk in ranked.chunks(256) {
        let ids: Vec<&str> = chunk.iter().map(|(id, _)| id.as_str()).collect();
        for ((id, ln_score), meta) in chunk.iter().zip(store.items_meta(&ids)?) {
            if out.len() < n && filter.accepts(meta.as_ref()) {
                // The decayed count itself where it is representable; its logarithm's
                // order is kept by the smallest positive value below that.
                let score = ln_score.exp().max(f64::MIN_POSITIVE);
                out.push(Recommended {
                    id: id.clone(),
                    score,
                    reasons: vec![Reason {
                        source: SourceKind::Trending,
                        rank: out.len() + 1,
                        score: (score as f32).max(f32::MIN_POSITIVE),
                        because: None,
                        because_event: None,
                        because_title: None,
                        ..Reason::default()
                    }],
                    effects: Vec::new(),
                    ranker: None,
                    ..Recommended::default()
                });
            }
        }
        if out.len() >= n {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::UserId;
    use crate::ids::{EventId, ItemId};
    use crate::model::EventType;
    use crate::model::{Event, Item};
    use crate::store::{EmbeddedStore, StoreConfig};

    const DAY: i64 = 24 * 3_600_000;

    fn view(n: usize, item: &str, timestamp: i64) -> Event {
        Event::new(
            EventId::parse(format!("e{n}"), "id").unwrap(),
            EventType::View,
            UserId::parse(format!("u{}", n % 50), "user").unwrap(),
            Some(ItemId::parse(item, "item").unwrap()),
            timestamp,
        )
    }

    #[test]
    fn trending_runs_on_the_shops_clock_and_no_score_underflows() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), &StoreConfig::default()).unwrap();
        let items = ["steady", "early", "today", "ancient"];
        store.put_items(items.iter().map(|id| Item::new(ItemId::parse(*id, "id").unwrap(), *id)).collect()).unwrap();
        // A month of traffic imported from the past, oldest first.
        let start = 1_600_000_000_000i64;
        let mut events = vec![view(0, "ancient", start - 400 * DAY)];
        for k in 0..600usize {
            let t = start + (k as i64) * DAY / 20;
            events.push(view(k + 1, if k < 40 { "early" } else { "steady" }, t));
        }
        // Then one event posted today, a year after the import.
        events.push(view(10_000, "today", start + 400 * DAY));
        store.append_events(events).unwrap();
        let top = trending(&store, &EventWeights::default(), DAY as f64, 100_000, 10, &ItemFilter::default()).unwrap();
        let ids: Vec<&str> = top.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids[0], "steady", "{ids:?}");
        assert_eq!(ids.last(), Some(&"ancient"), "{ids:?}");
        assert_eq!(ids.len(), 4);
        assert!(top.iter().all(|r| r.score > 0.0 && r.reasons[0].score > 0.0), "{top:?}");
        assert!(top.windows(2).all(|w| w[0].score >= w[1].score));
        // The one new event counts as one event at the clock: below a month of steady traffic.
        let today = top.iter().find(|r| r.id == "today").unwrap();
        assert!(today.score <= 1.0 + 1e-9 && top[0].score > 5.0, "{top:?}");
    }

    #[test]
    fn the_shops_clock_ignores_a_few_outliers() {
        let mut stamps: Vec<i64> = (0..1_000).collect();
        stamps.push(1_000_000_000);
        assert!(shop_clock(&mut stamps).unwrap() < 1_000);
        assert_eq!(shop_clock(&mut []), None);
        assert!((ln_add_exp(-1000.0, -1000.0) - (-1000.0 + std::f64::consts::LN_2)).abs() < 1e-12);
    }
}
