//! What a page shows of each item: one [`ItemCard`](crate::model::ItemCard) per listed item
//! on every surface (titles in the page's language, brand, category, price, picture), and
//! the titles of the items reasons cite.

use std::collections::HashMap;

use crate::error::Result;
use crate::input::Lang;
use crate::store::{ItemMeta, Storage};

use super::*;

/// Fill each item's card from the catalog's facts in memory (the Chinese title with
/// `Lang::Zh` where the catalog has one) and the title of every item a reason cites, with
/// one lookup.
pub fn describe(store: &dyn Storage, items: &mut [Recommended], lang: Lang) -> Result<()> {
    let mut ids: Vec<String> = items.iter().map(|r| r.id.clone()).collect();
    ids.extend(items.iter().flat_map(|r| r.reasons.iter().filter_map(|x| x.because.clone())));
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let metas = store.items_meta(&refs)?;
    let by_id: HashMap<&str, &ItemMeta> =
        refs.iter().zip(&metas).filter_map(|(id, meta)| meta.as_ref().map(|m| (*id, m))).collect();
    for item in items.iter_mut() {
        if let Some(meta) = by_id.get(item.id.as_str()) {
            item.card = meta.card(lang);
        }
        for reason in &mut item.reasons {
            reason.because_title = reason
                .because
                .as_deref()
                .and_then(|b| by_id.get(b))
                .and_then(|meta| meta.title_in(lang))
                .map(str::to_string);
        }
    }
    Ok(())
}

/// Search hits' cards from the catalog, like every other listed item's (the index holds the
/// catalog's own title and no picture).
pub fn describe_hits(store: &dyn Storage, hits: &mut [crate::search::Hit], lang: Lang) -> Result<()> {
    let ids: Vec<&str> = hits.iter().map(|h| h.id.as_str()).collect();
    let metas = store.items_meta(&ids)?;
    for (hit, meta) in hits.iter_mut().zip(metas) {
        if let Some(meta) = meta {
            hit.card = meta.card(lang);
        }
    }
    Ok(())
}
