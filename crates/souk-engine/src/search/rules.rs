//! Business rules over a search's best results: pinned items join when they pass the
//! filters, and the rules' arrangement (pins, promotion slots, boosts) replaces the order.

use std::collections::HashMap;

use super::columns::{Except, SlotFilter};
use super::explain::Explain;
use super::index::{FactsTable, SearchIndex};
use super::request::{SearchRequest, Sort};
use crate::rank::rerank::{rerank, Candidate, Effect};

impl SearchIndex {
    /// Arrange `ranked` by the request's rules and return what they did to each slot; no
    /// rules leave `ranked` as it is. Pins and promotion slots are positions in the whole
    /// list, so the arrangement is computed down to the page's end.
    pub(super) fn apply_rules(
        &self,
        ranked: &mut Vec<(u32, Explain)>,
        request: &SearchRequest,
        table: &FactsTable,
        filter: &SlotFilter,
        page_end: usize,
    ) -> HashMap<u32, Vec<Effect>> {
        let mut effects: HashMap<u32, Vec<Effect>> = HashMap::new();
        if !request.rules.is_empty() {
            let window = self.config.rerank_window.max(page_end).min(ranked.len());
            ranked.truncate(window);
            // A pinned item that did not match joins when it passes the filters.
            for pin in &request.rules.pin {
                let Some(&slot) = table.by_id.get(pin.item.as_str()) else { continue };
                if ranked.iter().any(|(s, _)| *s == slot) || !filter.accepts(&table.columns, slot, Except::Nothing) {
                    continue;
                }
                ranked.push((slot, Explain::default()));
            }
            let count = ranked.len();
            let candidates: Vec<Candidate> = ranked
                .iter()
                .enumerate()
                .filter_map(|(position, (slot, explain))| {
                    let facts = table.get(*slot)?;
                    // Sorted by a key, the order is the score: earlier is better.
                    let score = if request.sort == Sort::Relevance {
                        f64::from(explain.score)
                    } else {
                        (count - position) as f64
                    };
                    let mut candidate = Candidate::new(facts.id.to_string(), score);
                    candidate.category = facts.category.clone();
                    candidate.brand = facts.brand.clone();
                    candidate.price = facts.price;
                    candidate.available = facts.available;
                    candidate.attributes = facts.attributes.clone();
                    Some(candidate)
                })
                .collect();
            let mut by_id: HashMap<String, (u32, Explain)> = ranked
                .drain(..)
                .filter_map(|(slot, explain)| table.get(slot).map(|f| (f.id.to_string(), (slot, explain))))
                .collect();
            for out in rerank(&candidates, &request.rules, page_end) {
                if let Some((slot, mut explain)) = by_id.remove(&out.id) {
                    if request.sort == Sort::Relevance {
                        explain.score = out.score as f32;
                    }
                    effects.insert(slot, out.effects);
                    ranked.push((slot, explain));
                }
            }
        }
        effects
    }
}
