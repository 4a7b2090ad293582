//! What a page shows of each item: titles in the page's language, brand, category,
//! price, and the titles of the items reasons cite.

use std::collections::HashMap;

use crate::error::Result;
use crate::input::Lang;
use crate::store::{ItemMeta, Storage};

use super::*;

/// Fill in what a page shows of each item (title — the Chinese one with `Lang::Zh` where the
/// catalog has it —, brand, category path, price) and the title of every item a reason
/// cites, with one lookup of the catalog facts in memory.
pub fn describe(store: &dyn Storage, items: &mut [Recommended], lang: Lang) -> Result<()> {
    let mut ids: Vec<String> = items.iter().map(|r| r.id.clone()).collect();
    ids.extend(items.iter().flat_map(|r| r.reasons.iter().filter_map(|x| x.because.clone())));
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let metas = store.items_meta(&refs)?;
    let by_id: HashMap<&str, &ItemMeta> =
        refs.iter().zip(&metas).filter_map(|(id, meta)| meta.as_ref().map(|m| (*id, m))).collect();
    let title = |meta: &ItemMeta| {
        let zh = if lang == Lang::Zh { meta.title_zh.as_deref() } else { None };
        zh.or(meta.title.as_deref()).map(str::to_string)
    };
    let titles: HashMap<&str, Option<String>> = by_id.iter().map(|(id, meta)| (*id, title(meta))).collect();
    for item in items.iter_mut() {
        if let Some(meta) = by_id.get(item.id.as_str()) {
            item.title = titles.get(item.id.as_str()).cloned().flatten();
            item.brand = meta.brand.as_deref().map(str::to_string);
            item.category = meta.category.iter().map(|c| c.to_string()).collect();
            // Prices are kept as f32 in memory: the shortest decimal that round-trips is
            // the catalog's own price (55.99, not 55.9900016784668).
            item.price = meta.price.map(|p| p.to_string().parse::<f64>().unwrap_or(f64::from(p)));
        }
        for reason in &mut item.reasons {
            reason.because_title = reason.because.as_deref().and_then(|b| titles.get(b).cloned().flatten());
        }
    }
    Ok(())
}

/// Search results' titles in the page's language: with `Lang::Zh`, the Chinese title where
/// the catalog has one (the index holds the catalog's own title).
pub fn describe_hits(store: &dyn Storage, hits: &mut [crate::search::Hit], lang: Lang) -> Result<()> {
    if lang != Lang::Zh {
        return Ok(());
    }
    let ids: Vec<&str> = hits.iter().map(|h| h.id.as_str()).collect();
    let metas = store.items_meta(&ids)?;
    for (hit, meta) in hits.iter_mut().zip(metas) {
        if let Some(zh) = meta.and_then(|m| m.title_zh) {
            hit.title = zh.to_string();
        }
    }
    Ok(())
}
