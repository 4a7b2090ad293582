//! Suggestions as a shopper types: prefix matches over the catalog's titles (English and
//! Chinese) and over the queries shoppers searched for — only queries at least two
//! different shoppers searched, so what one person typed is never shown to another.
//!
//! A [`Suggester`] is an immutable snapshot built from the store (a full catalog scan and a
//! scan of the logged `search` events) and rebuilt by its owner now and then. Each text is
//! normalised like the analyzer does (NFKD, no marks, lower case) and findable from the
//! start of every word — and, in CJK runs, from every character, capped per text: "head"
//! finds "Wireless Headphones" ("phones" does not) and "耳机" finds "无线耳机". Cost: one
//! `(text, offset)` pair of 8 bytes per
//! word start; a lookup is a binary search plus a scan of the matching range, capped at
//! [`MAX_CANDIDATES`].

use std::collections::HashMap;

use super::analyze::{is_cjk, normalize};
use crate::error::Result;
use crate::model::EventType;
use crate::store::Storage;

/// Matches looked at per lookup (a one-letter prefix may match most of the catalog; the
/// best of the first ones in text order is good enough then).
pub const MAX_CANDIDATES: usize = 20_000;
/// Word starts indexed per text.
const MAX_STARTS: usize = 16;
/// Queries longer than this are not offered back.
const MAX_QUERY_CHARS: usize = 80;

/// Where a suggestion comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuggestionKind {
    /// A query shoppers searched for.
    Query,
    /// A catalog item's title.
    Item,
}

impl SuggestionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SuggestionKind::Query => "query",
            SuggestionKind::Item => "item",
        }
    }
}

/// One suggestion.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    pub text: String,
    pub kind: SuggestionKind,
    /// The item whose title this is.
    pub item: Option<String>,
    /// The title's language (`en` or a translation's code); queries: `zh` when they hold CJK.
    pub lang: String,
    /// How often it was searched (queries).
    pub count: u64,
}

struct Entry {
    suggestion: Suggestion,
    key: String,
    /// Queries: ln(1 + searches) + 1, so a searched query outranks a title; items: their
    /// popularity in 0..=1.
    weight: f32,
}

/// See the module documentation.
#[derive(Default)]
pub struct Suggester {
    entries: Vec<Entry>,
    /// (entry, byte offset of a word start in its key), sorted by the key from there on.
    starts: Vec<(u32, u32)>,
}

impl Suggester {
    /// From the catalog's titles in English and Chinese (weighted by `popularity`, 0..=1;
    /// the store keeps them in memory) and the logged searches.
    pub fn from_store(store: &dyn Storage, popularity: &dyn Fn(&str) -> f32) -> Result<Self> {
        let mut titles = Vec::new();
        store.scan_item_meta(&mut |id, meta| {
            if !meta.available {
                return;
            }
            let weight = popularity(id);
            for (title, lang) in [(&meta.title, "en"), (&meta.title_zh, "zh")] {
                if let Some(title) = title {
                    titles.push((id.to_string(), title.to_string(), lang.to_string(), weight));
                }
            }
        })?;
        // normalised query → (as first typed, searches, first searcher, searched by another).
        let mut queries: HashMap<String, (String, u64, String, bool)> = HashMap::new();
        store.scan_events(&[EventType::Search], &mut |event| {
            if let Some(query) = event.query.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
                if query.chars().count() <= MAX_QUERY_CHARS {
                    let user = event.user.as_str();
                    let entry = queries
                        .entry(normalize(query))
                        .or_insert_with(|| (query.to_string(), 0, user.to_string(), false));
                    entry.1 += 1;
                    entry.3 |= entry.2 != user;
                }
            }
            Ok(())
        })?;
        // A query one shopper alone typed is theirs: never offered to others.
        let shared = queries.into_values().filter(|q| q.3).map(|(query, count, _, _)| (query, count)).collect();
        Ok(Self::build(titles, shared))
    }

    /// From titles `(item, title, lang, popularity)` and queries `(query, searches)`.
    pub fn build(titles: Vec<(String, String, String, f32)>, queries: Vec<(String, u64)>) -> Self {
        let mut entries = Vec::with_capacity(titles.len() + queries.len());
        for (query, count) in queries {
            let lang = if query.chars().any(is_cjk) { "zh" } else { "en" };
            entries.push(Entry {
                key: normalize(&query),
                suggestion: Suggestion {
                    text: query,
                    kind: SuggestionKind::Query,
                    item: None,
                    lang: lang.into(),
                    count,
                },
                weight: 1.0 + (count as f32).ln_1p(),
            });
        }
        for (item, title, lang, popularity) in titles {
            entries.push(Entry {
                key: normalize(&title),
                suggestion: Suggestion { text: title, kind: SuggestionKind::Item, item: Some(item), lang, count: 0 },
                weight: popularity.clamp(0.0, 1.0),
            });
        }
        let mut starts = Vec::new();
        for (e, entry) in entries.iter().enumerate() {
            starts.extend(word_starts(&entry.key).into_iter().map(|o| (e as u32, o as u32)));
        }
        starts.sort_unstable_by(|a, b| {
            let key = |&(e, o): &(u32, u32)| &entries[e as usize].key[o as usize..];
            key(a).cmp(key(b))
        });
        Self { entries, starts }
    }

    /// How many texts it knows.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Up to `n` suggestions for what was typed: texts with a word starting with it, those
    /// starting with it first, then by weight; texts in `lang` before others when tied.
    /// Nothing typed: the most searched queries.
    pub fn suggest(&self, typed: &str, n: usize, lang: &str) -> Vec<Suggestion> {
        let prefix = normalize(typed.trim());
        let mut candidates: Vec<(bool, f32, usize)> = Vec::new();
        if prefix.is_empty() {
            candidates.extend(
                self.entries
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| e.suggestion.kind == SuggestionKind::Query)
                    .map(|(i, e)| (true, e.weight, i)),
            );
        } else {
            let key = |&(e, o): &(u32, u32)| &self.entries[e as usize].key[o as usize..];
            let first = self.starts.partition_point(|s| key(s) < prefix.as_str());
            for start in self.starts[first..].iter().take_while(|s| key(s).starts_with(&prefix)).take(MAX_CANDIDATES) {
                let entry = &self.entries[start.0 as usize];
                candidates.push((start.1 == 0, entry.weight, start.0 as usize));
            }
        }
        candidates.sort_by(|a, b| {
            let in_lang = |i: usize| self.entries[i].suggestion.lang == lang;
            b.0.cmp(&a.0)
                .then(b.1.total_cmp(&a.1))
                .then(in_lang(b.2).cmp(&in_lang(a.2)))
                .then(self.entries[a.2].key.len().cmp(&self.entries[b.2].key.len()))
                .then(a.2.cmp(&b.2))
        });
        let mut seen = std::collections::HashSet::new();
        candidates
            .into_iter()
            .filter(|c| seen.insert(self.entries[c.2].key.as_str()))
            .take(n)
            .map(|c| self.entries[c.2].suggestion.clone())
            .collect()
    }
}

/// Byte offsets where a word starts: after a non-alphanumeric character, and at every CJK
/// character (CJK is written without spaces); at most [`MAX_STARTS`].
fn word_starts(key: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut previous: Option<char> = None;
    for (offset, c) in key.char_indices() {
        let starts_word = c.is_alphanumeric() && (is_cjk(c) || !previous.is_some_and(|p| p.is_alphanumeric()));
        if starts_word {
            starts.push(offset);
            if starts.len() == MAX_STARTS {
                break;
            }
        }
        previous = Some(c);
    }
    starts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn title(item: &str, text: &str, lang: &str, popularity: f32) -> (String, String, String, f32) {
        (item.into(), text.into(), lang.into(), popularity)
    }

    fn texts(found: &[Suggestion]) -> Vec<&str> {
        found.iter().map(|s| s.text.as_str()).collect()
    }

    #[test]
    fn prefixes_of_any_word_match_searched_queries_first_then_popular_titles() {
        let suggester = Suggester::build(
            vec![
                title("i1", "Acme Wireless Headphones", "en", 0.2),
                title("i1", "Acme 无线耳机", "zh", 0.2),
                title("i2", "Headphone Stand", "en", 0.9),
                title("i3", "Café Table", "en", 0.5),
            ],
            vec![("headphones".into(), 12), ("head torch".into(), 1), ("耳机".into(), 3)],
        );
        assert_eq!(suggester.len(), 7);
        let found = suggester.suggest("Head", 10, "en");
        assert_eq!(texts(&found), ["headphones", "head torch", "Headphone Stand", "Acme Wireless Headphones"]);
        assert_eq!(found[0].kind, SuggestionKind::Query);
        assert_eq!(found[0].count, 12);
        assert_eq!(found[3].item.as_deref(), Some("i1"));
        // Inside a word does not match; accents and case do not matter.
        assert!(suggester.suggest("phones", 10, "en").is_empty());
        assert_eq!(texts(&suggester.suggest("cafe", 10, "en")), ["Café Table"]);
        // Chinese: from any character, the query first.
        let found = suggester.suggest("耳", 10, "zh");
        assert_eq!(texts(&found), ["耳机", "Acme 无线耳机"]);
        assert_eq!(found[1].lang, "zh");
        // Nothing typed: the most searched queries; `n` caps.
        assert_eq!(texts(&suggester.suggest("  ", 2, "en")), ["headphones", "耳机"]);
        assert!(suggester.suggest("zzz", 10, "en").is_empty());
    }

    #[test]
    fn word_starts_are_capped_and_skip_inner_letters() {
        assert_eq!(word_starts("ab cd-ef"), [0, 3, 6]);
        assert_eq!(word_starts("无线耳机").len(), 4);
        assert_eq!(word_starts(&"x ".repeat(40)).len(), MAX_STARTS);
    }
}
