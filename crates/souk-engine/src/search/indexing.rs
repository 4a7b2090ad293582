//! Writing items into the search index: checking their own vectors, turning an item into
//! a pre-analysed document, adding, replacing and deleting items.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use tantivy::tokenizer::{PreTokenizedString, Token};
use tantivy::{TantivyDocument, Term};

use super::facts::{self, Facts};
use super::index::{tantivy_error, SearchIndex, VectorEntry};
use super::vectors::TEXT_SPACE;
use crate::error::{Error, Result, ValidationError};
use crate::model::Item;

fn pre_tokenized(terms: Vec<String>) -> PreTokenizedString {
    let tokens = terms
        .into_iter()
        .enumerate()
        .map(|(position, text)| Token { offset_from: 0, offset_to: 0, position, text, position_length: 1 })
        .collect();
    PreTokenizedString { text: String::new(), tokens }
}

impl SearchIndex {
    /// Check items' own vectors against the spaces they go to, before storing the items.
    pub fn check_vectors(&self, items: &[Item]) -> Result<()> {
        let spaces = self.spaces.read();
        for (index, item) in items.iter().enumerate() {
            for (name, vector) in &item.vectors {
                if name == TEXT_SPACE {
                    return Err(Error::Invalid(ValidationError::new(
                        "invalid_vector",
                        format!("items[{index}].vectors.{name}"),
                        "the name `text` is reserved for the text embedder",
                    )));
                }
                if let Some(space) = spaces.get(name) {
                    if space.dim() != vector.len() {
                        return Err(Error::Invalid(ValidationError::new(
                            "dimension_mismatch",
                            format!("items[{index}].vectors.{name}"),
                            format!("expected {} dimensions, found {}", space.dim(), vector.len()),
                        )));
                    }
                }
                if vector.iter().all(|x| *x == 0.0) {
                    return Err(Error::Invalid(ValidationError::new(
                        "invalid_vector",
                        format!("items[{index}].vectors.{name}"),
                        "a vector must not be all zeros",
                    )));
                }
            }
        }
        Ok(())
    }

    fn document(&self, item: &Item, slot: u32, hash: u64) -> TantivyDocument {
        let f = &self.fields;
        let a = &self.analyzer;
        let mut grams = Vec::new();
        let mut analyze = |texts: &[&str]| {
            let mut terms = Vec::new();
            for text in texts {
                a.index_terms(text, &mut terms, &mut grams);
            }
            pre_tokenized(terms)
        };
        let mut titles = vec![item.title.as_str()];
        titles.extend(item.translations.values().map(|t| t.title.as_str()));
        let mut descriptions: Vec<&str> = item.description.iter().map(String::as_str).collect();
        descriptions.extend(item.translations.values().filter_map(|t| t.description.as_deref()));
        let mut attribute_texts: Vec<String> = Vec::new();
        for value in item.attributes.values() {
            let mut values = Vec::new();
            facts::attribute_values(value, false, &mut values);
            attribute_texts.extend(values);
        }
        attribute_texts.extend(item.tags.iter().cloned());
        let attribute_refs: Vec<&str> = attribute_texts.iter().map(String::as_str).collect();
        let category: Vec<&str> = item.category.iter().map(String::as_str).collect();
        let brand: Vec<&str> = item.brand.iter().map(String::as_str).collect();

        let mut doc = TantivyDocument::default();
        doc.add_text(f.id, item.id.as_str());
        doc.add_u64(f.slot, u64::from(slot));
        doc.add_u64(f.hash, hash);
        doc.add_pre_tokenized_text(f.text.title, analyze(&titles));
        doc.add_pre_tokenized_text(f.text.brand, analyze(&brand));
        doc.add_pre_tokenized_text(f.text.category, analyze(&category));
        doc.add_pre_tokenized_text(f.text.attributes, analyze(&attribute_refs));
        doc.add_pre_tokenized_text(f.text.description, analyze(&descriptions));
        doc.add_pre_tokenized_text(f.text.grams, pre_tokenized(grams));
        doc
    }

    /// Index new or changed items (visible after the next commit). Unchanged items are
    /// skipped; items' own vectors go to their spaces.
    pub fn index_items(&self, items: Vec<Item>) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let prepared: Vec<(Item, Facts)> = {
            let table = self.facts.read();
            items
                .into_iter()
                .map(|item| {
                    let facts = Facts::of(&item);
                    (item, facts)
                })
                .filter(|(_, facts)| table.by_id(&facts.id).is_none_or(|old| old.hash != facts.hash))
                .collect()
        };
        if prepared.is_empty() {
            return Ok(());
        }
        // Analyse in parallel, then add in order.
        use rayon::prelude::*;
        let first_slot = {
            let mut table = self.facts.write();
            let first = table.slots.len();
            table.slots.resize(first + prepared.len(), None);
            first as u32
        };
        let documents: Vec<TantivyDocument> = prepared
            .par_iter()
            .enumerate()
            .map(|(n, (item, facts))| self.document(item, first_slot + n as u32, facts.hash))
            .collect();
        {
            let popularity = self.popularity.read().clone();
            let writer = self.writer.lock();
            let mut table = self.facts.write();
            let mut retired = self.retired.lock();
            for ((n, (item, facts)), document) in prepared.iter().enumerate().zip(documents) {
                writer.delete_term(Term::from_field_text(self.fields.id, item.id.as_str()));
                writer.add_document(document).map_err(tantivy_error)?;
                let slot = first_slot + n as u32;
                if let Some(old) = table.by_id.insert(facts.id.clone(), slot) {
                    retired.push(old);
                }
                table.put(slot, facts.clone(), popularity.get(&facts.id).copied().unwrap_or(0.0));
            }
            self.dirty.store(true, Ordering::Release);
        }
        // Items' own vectors.
        let mut by_space: BTreeMap<&str, Vec<VectorEntry<'_>>> = BTreeMap::new();
        for (item, facts) in &prepared {
            for (name, vector) in &item.vectors {
                by_space.entry(name).or_default().push((item.id.as_str(), facts.hash, vector));
            }
        }
        for (name, entries) in by_space {
            let space = self.space(name, entries[0].2.len())?;
            space.put(&entries)?;
        }
        Ok(())
    }

    /// Remove items (visible after the next commit).
    pub fn delete_items(&self, ids: &[&str]) -> Result<()> {
        {
            let writer = self.writer.lock();
            let mut table = self.facts.write();
            let mut retired = self.retired.lock();
            for id in ids {
                writer.delete_term(Term::from_field_text(self.fields.id, id));
                if let Some(slot) = table.by_id.remove(*id) {
                    retired.push(slot);
                }
            }
            self.dirty.store(true, Ordering::Release);
        }
        for space in self.spaces.read().values() {
            space.delete(ids)?;
        }
        Ok(())
    }
}
