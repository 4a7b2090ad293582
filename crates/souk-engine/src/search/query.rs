//! From a shopper's query to a keyword query: units, synonyms, typo tolerance and which
//! words may be dropped.
//!
//! Every unit (or a group of units a synonym covers) becomes one required clause that
//! matches through any of its alternatives:
//! - the whole term in any text field (field weights below);
//! - all of its jieba search-mode parts (蓝牙耳机 → 蓝牙 and 耳机);
//! - all of its character bigrams in the gram field (处理 finds 待处理);
//! - a synonym phrase (all of its terms);
//! - for Latin words of 5+ letters that no item contains, terms within edit distance 1
//!   (2 from 9 letters): typo tolerance where it cannot hide an exact match.
//!
//! A unit no item contains in any form, and common English function words, are dropped
//! from the required set when other units remain; both are reported.

use std::collections::HashMap;
use std::path::Path;

use tantivy::query::{BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{Searcher, Term};

use super::analyze::{normalize, Analyzer, QueryUnit};
use super::lazy_union::LazyUnion;
use crate::error::{Error, Result};

/// English words that carry no product meaning in a shop query.
const STOP_WORDS: &[&str] = &["a", "an", "and", "for", "in", "of", "on", "or", "the", "to", "with"];

/// Text fields and their weights.
#[derive(Debug, Clone, Copy)]
pub struct TextFields {
    pub title: Field,
    pub brand: Field,
    pub category: Field,
    pub attributes: Field,
    pub description: Field,
    pub grams: Field,
}

impl TextFields {
    fn weighted(&self) -> [(Field, f32); 5] {
        [(self.title, 3.0), (self.brand, 2.0), (self.category, 2.0), (self.attributes, 1.5), (self.description, 1.0)]
    }
}

/// Synonyms: `a, b, c` makes the phrases equivalent; `a => b, c` lets `a` also match `b`
/// and `c`. Lines starting with `#` are comments. Phrases are normalised like text.
#[derive(Debug, Clone, Default)]
pub struct Synonyms {
    map: HashMap<String, Vec<String>>,
    longest: usize,
}

fn phrase_key(phrase: &str) -> String {
    normalize(phrase).split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Synonyms {
    pub fn parse(text: &str, source: &Path) -> Result<Self> {
        let mut synonyms = Self::default();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |message: &str| Error::Parse {
                path: source.to_path_buf(),
                line: number as u64 + 1,
                message: message.to_string(),
            };
            let list =
                |s: &str| -> Vec<String> { s.split(',').map(phrase_key).filter(|p| !p.is_empty()).collect::<Vec<_>>() };
            if let Some((from, to)) = line.split_once("=>") {
                let (from, to) = (list(from), list(to));
                if from.is_empty() || to.is_empty() {
                    return Err(bad("expected `phrase => alternative, …`"));
                }
                for f in from {
                    synonyms.add(f, to.iter().cloned());
                }
            } else {
                let group = list(line);
                if group.len() < 2 {
                    return Err(bad("expected at least two comma-separated phrases"));
                }
                for phrase in &group {
                    synonyms.add(phrase.clone(), group.iter().filter(|p| *p != phrase).cloned());
                }
            }
        }
        Ok(synonyms)
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = fs_err::read_to_string(path)?;
        Self::parse(&text, path)
    }

    fn add(&mut self, phrase: String, alternatives: impl Iterator<Item = String>) {
        self.longest = self.longest.max(phrase.split(' ').count());
        let entry = self.map.entry(phrase).or_default();
        for alternative in alternatives {
            if !entry.contains(&alternative) {
                entry.push(alternative);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Alternatives of the phrase made of `units` (joined with spaces, or without for
    /// Chinese).
    fn lookup(&self, units: &[QueryUnit]) -> Option<&Vec<String>> {
        let spaced = units.iter().map(|u| u.surface.as_str()).collect::<Vec<_>>().join(" ");
        self.map.get(&spaced).or_else(|| self.map.get(&units.iter().map(|u| u.surface.as_str()).collect::<String>()))
    }
}

/// A built query and what was done to the shopper's words.
pub struct BuiltQuery {
    /// All required clauses (the strict query).
    pub strict: Box<dyn Query>,
    /// Any clause (used when the strict query matches nothing).
    pub relaxed: Option<Box<dyn Query>>,
    /// Normalised words that were dropped (function words, words no item contains).
    pub ignored: Vec<String>,
    /// Words matched through typo tolerance.
    pub fuzzy: Vec<String>,
    /// Words expanded by synonyms.
    pub expanded: Vec<String>,
}

fn doc_freq(searcher: &Searcher, field: Field, text: &str) -> u64 {
    searcher.doc_freq(&Term::from_field_text(field, text)).unwrap_or(0)
}

/// `term` in each text field that holds it, and whether any does. A field without the term
/// would add nothing to a score, but its empty scorer would cost the union over the fields
/// its specialised form (and every match a virtual call); a term in no field is a clause
/// that matches nothing.
fn term_anywhere(fields: &TextFields, searcher: &Searcher, term: &str, lazy: bool) -> (Box<dyn Query>, bool) {
    let clauses: Vec<Box<dyn Query>> = fields
        .weighted()
        .iter()
        .filter(|&&(field, _)| doc_freq(searcher, field, term) > 0)
        .map(|&(field, weight)| {
            let query: Box<dyn Query> =
                Box::new(TermQuery::new(Term::from_field_text(field, term), IndexRecordOption::WithFreqs));
            Box::new(BoostQuery::new(query, weight)) as Box<dyn Query>
        })
        .collect();
    let known = !clauses.is_empty();
    (any_of(clauses, lazy), known)
}

/// The union of `queries`: lazily scored inside a conjunction of words (`lazy`, see
/// [`LazyUnion`]), else tantivy's.
fn any_of(queries: Vec<Box<dyn Query>>, lazy: bool) -> Box<dyn Query> {
    if lazy {
        LazyUnion::of(queries)
    } else {
        Box::new(BooleanQuery::new(queries.into_iter().map(|q| (Occur::Should, q)).collect()))
    }
}

fn all_of(queries: Vec<Box<dyn Query>>, boost: f32) -> Box<dyn Query> {
    let clauses = queries.into_iter().map(|q| (Occur::Must, q)).collect();
    Box::new(BoostQuery::new(Box::new(BooleanQuery::new(clauses)), boost))
}

/// How a unit can match, and whether anything in the index could match it.
struct UnitClause {
    query: Box<dyn Query>,
    known: bool,
    fuzzy: bool,
}

fn unit_clause(fields: &TextFields, searcher: &Searcher, unit: &QueryUnit, lazy: bool) -> UnitClause {
    let mut alternatives: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    let (whole, mut known) = term_anywhere(fields, searcher, &unit.term, lazy);
    alternatives.push((Occur::Should, whole));
    if !unit.parts.is_empty() {
        let parts: Vec<(Box<dyn Query>, bool)> =
            unit.parts.iter().map(|p| term_anywhere(fields, searcher, p, lazy)).collect();
        known |= parts.iter().all(|(_, known)| *known);
        alternatives.push((Occur::Should, all_of(parts.into_iter().map(|(query, _)| query).collect(), 0.8)));
    }
    if !unit.grams.is_empty() {
        known |= unit.grams.iter().all(|g| doc_freq(searcher, fields.grams, g) > 0);
        let grams = unit
            .grams
            .iter()
            .map(|g| {
                Box::new(TermQuery::new(Term::from_field_text(fields.grams, g), IndexRecordOption::WithFreqs))
                    as Box<dyn Query>
            })
            .collect();
        alternatives.push((Occur::Should, all_of(grams, 0.5)));
    }
    let letters = unit.term.chars().count();
    let fuzzy = !known && unit.latin && letters >= 5;
    if fuzzy {
        let distance = if letters >= 9 { 2 } else { 1 };
        for &(field, weight) in &fields.weighted() {
            let query = FuzzyTermQuery::new(Term::from_field_text(field, &unit.term), distance, true);
            alternatives.push((Occur::Should, Box::new(BoostQuery::new(Box::new(query), weight * 0.5))));
        }
    }
    UnitClause { query: any_of(alternatives.into_iter().map(|(_, q)| q).collect(), lazy), known, fuzzy }
}

/// Build the query for `text`; `None` when it has no words (browse everything).
pub fn build(
    analyzer: &Analyzer,
    synonyms: &Synonyms,
    fields: &TextFields,
    searcher: &Searcher,
    text: &str,
) -> Option<BuiltQuery> {
    let all_units = analyzer.query_units(text);
    if all_units.is_empty() {
        return None;
    }
    let mut ignored = Vec::new();
    let has_content = all_units.iter().any(|u| !STOP_WORDS.contains(&u.surface.as_str()));
    let units: Vec<QueryUnit> = all_units
        .into_iter()
        .filter(|u| {
            let drop = has_content && STOP_WORDS.contains(&u.surface.as_str());
            if drop {
                ignored.push(u.surface.clone());
            }
            !drop
        })
        .collect();
    // Inside a conjunction of words, each word's alternatives are scored lazily.
    let lazy = units.len() > 1;

    // Groups of units: a synonym phrase covers several; other units stand alone.
    let mut groups: Vec<(Box<dyn Query>, bool, String)> = Vec::new();
    let (mut fuzzy, mut expanded) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < units.len() {
        let mut matched = None;
        for n in (1..=synonyms.longest.min(units.len() - i)).rev() {
            if let Some(alternatives) = synonyms.lookup(&units[i..i + n]) {
                matched = Some((n, alternatives));
                break;
            }
        }
        let n = matched.as_ref().map_or(1, |(n, _)| *n);
        let clauses: Vec<UnitClause> = units[i..i + n].iter().map(|u| unit_clause(fields, searcher, u, lazy)).collect();
        let mut known = clauses.iter().all(|c| c.known);
        for (unit, clause) in units[i..i + n].iter().zip(&clauses) {
            if clause.fuzzy {
                fuzzy.push(unit.surface.clone());
            }
        }
        let any_fuzzy = clauses.iter().any(|c| c.fuzzy);
        let own: Box<dyn Query> = if clauses.len() == 1 {
            clauses.into_iter().next().map(|c| c.query).expect("one clause")
        } else {
            all_of(clauses.into_iter().map(|c| c.query).collect(), 1.0)
        };
        let surface = units[i..i + n].iter().map(|u| u.surface.as_str()).collect::<Vec<_>>().join(" ");
        let query = match matched {
            Some((_, alternatives)) => {
                expanded.push(surface.clone());
                let mut options: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Should, own)];
                for alternative in alternatives {
                    let alt_units = analyzer.query_units(alternative);
                    if alt_units.is_empty() {
                        continue;
                    }
                    let terms: Vec<(Box<dyn Query>, bool)> =
                        alt_units.iter().map(|u| term_anywhere(fields, searcher, &u.term, lazy)).collect();
                    known |= terms.iter().all(|(_, known)| *known);
                    options.push((Occur::Should, all_of(terms.into_iter().map(|(query, _)| query).collect(), 0.9)));
                }
                any_of(options.into_iter().map(|(_, q)| q).collect(), lazy)
            }
            None => own,
        };
        groups.push((query, known || any_fuzzy, surface));
        i += n;
    }

    // Drop groups nothing matches when something else can still match.
    if groups.iter().any(|(_, usable, _)| *usable) {
        groups.retain(|(_, usable, surface)| {
            if !usable {
                ignored.push(surface.clone());
            }
            *usable
        });
    }
    let relaxed = (groups.len() > 1).then(|| {
        // Clone by rebuilding: tantivy queries are boxed trait objects with box_clone.
        let clauses = groups.iter().map(|(q, _, _)| (Occur::Should, q.box_clone())).collect();
        Box::new(BooleanQuery::new(clauses)) as Box<dyn Query>
    });
    let strict = Box::new(BooleanQuery::new(groups.into_iter().map(|(q, _, _)| (Occur::Must, q)).collect()));
    Some(BuiltQuery { strict, relaxed, ignored, fuzzy, expanded })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synonym_files_parse_both_forms_and_reject_bad_lines() {
        let synonyms = Synonyms::parse("# comment\ntv, television\ncell phone => smartphone, mobile\n", Path::new("s"))
            .expect("valid");
        assert_eq!(synonyms.map["tv"], vec!["television"]);
        assert_eq!(synonyms.map["television"], vec!["tv"]);
        assert_eq!(synonyms.map["cell phone"], vec!["smartphone", "mobile"]);
        assert!(!synonyms.map.contains_key("smartphone"));
        assert_eq!(synonyms.longest, 2);
        let error = Synonyms::parse("ok, fine\nlonely\n", Path::new("s")).unwrap_err();
        assert!(error.to_string().contains(":2:"), "{error}");
    }
}
