//! The glue between a page and the re-ranking rules, once for every page that carries
//! rules: pinned items that recall did not propose join the window (when the page admits
//! them), the catalog facts the rules match on are looked up, the rules arrange the page,
//! and every item comes back with its new score and what the rules did to it.

use std::collections::HashMap;

use crate::error::Result;
use crate::rank::rerank::{rerank, Effect, Pin, Rules};
use crate::store::Storage;

use super::candidate_of;

/// Arrange `window` (best first) into a page of `n` under `rules`. `pinned` turns a pin whose
/// item is not in the window into an entry (scored `floor`, below the window) or refuses it
/// (unknown, excluded, shown before, filtered out).
pub(super) fn arrange<T>(
    store: &dyn Storage,
    mut window: Vec<T>,
    id_of: impl Fn(&T) -> String,
    score_of: impl Fn(&T) -> f64,
    rules: &Rules,
    n: usize,
    mut pinned: impl FnMut(&Pin, f64) -> Result<Option<T>>,
) -> Result<Vec<(T, f64, Vec<Effect>)>> {
    let floor = window.last().map_or(0.0, |x| score_of(x).min(0.0));
    let mut ids: Vec<String> = window.iter().map(&id_of).collect();
    for pin in &rules.pin {
        if ids.contains(&pin.item) {
            continue;
        }
        if let Some(entry) = pinned(pin, floor)? {
            ids.push(id_of(&entry));
            window.push(entry);
        }
    }
    let metas = store.items_meta(&ids.iter().map(String::as_str).collect::<Vec<_>>())?;
    let candidates: Vec<_> = window
        .iter()
        .zip(&ids)
        .zip(metas)
        .map(|((x, id), meta)| candidate_of(id.clone(), score_of(x), meta.as_ref()))
        .collect();
    let mut by_id: HashMap<String, T> = ids.into_iter().zip(window).collect();
    let mut page = Vec::with_capacity(n);
    for out in rerank(&candidates, rules, n) {
        if let Some(entry) = by_id.remove(out.id.as_str()) {
            page.push((entry, out.score, out.effects));
        }
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ItemId;
    use crate::model::Item;
    use crate::store::{EmbeddedStore, StoreConfig};

    #[test]
    fn pins_join_below_the_window_and_every_item_carries_its_effects() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), &StoreConfig::default()).unwrap();
        let items = ["a", "b", "c", "p"].map(|id| Item::new(ItemId::parse(id, "id").unwrap(), id));
        store.put_items(items.to_vec()).unwrap();
        let window = vec![("a", 3.0), ("b", 2.0), ("c", 1.0)];
        let rules: Rules = serde_json::from_value(serde_json::json!({
            "pin": [{"item": "p", "position": 1}, {"item": "refused", "position": 2}]
        }))
        .unwrap();
        let mut asked = Vec::new();
        let page = arrange(
            &store,
            window,
            |x| x.0.to_string(),
            |x| x.1,
            &rules,
            3,
            |pin, floor| {
                asked.push((pin.item.clone(), floor));
                Ok((pin.item == "p").then_some(("p", floor)))
            },
        )
        .unwrap();
        assert_eq!(asked, vec![("p".to_string(), 0.0), ("refused".to_string(), 0.0)]);
        let ids: Vec<&str> = page.iter().map(|(x, _, _)| x.0).collect();
        assert_eq!(ids, vec!["p", "a", "b"]);
        assert_eq!(page[0].2, vec![Effect::Pin { position: 1 }]);
        assert!(page[1].2.is_empty());
    }
}
