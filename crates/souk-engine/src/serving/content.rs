//! Item content vectors and the `content` recall source.
//!
//! An item's content vector fuses, each block scaled to unit length before the whole is:
//! - its catalog facts as hashed features (signed feature hashing into
//!   [`HASHED_DIM`] buckets, weighted by inverse document frequency over the catalog): the
//!   words of the title, the brand, each category path prefix, the tags, and short
//!   attribute values (`year=1995`, with the decade for numbers of four digits);
//! - the search embedder's text vector of the item (title, brand, category, description:
//!   `search::embedding_text`), where the search index's `text` space holds one;
//! - the shop's own vectors of the item (`vectors`, e.g. image embeddings), one block per
//!   name seen when the content was built.
//!
//! `serving::live_content::LiveContent` keeps every catalog item's vector in memory,
//! built from the store on first use and updated by catalog writes (and again when an item's
//! text vector arrives from the background embedding), so a new item has content the moment
//! it is stored. Similarity
//! is the inner product of unit vectors; nearest items are found by an exact scan below
//! 20,000 items and through an inverted-file index above (`recommend::ivf::LiveIndex`: a few thousand
//! rows scored per query instead of the catalog, which at 100,000 items × 512 dimensions had
//! cut recommendation throughput forty-fold).

use std::collections::{BTreeMap, HashMap};

use crate::model::Item;
use crate::recommend::content::ContentRows;
use crate::recommend::ivf::BuildEffort;
use crate::recommend::kernels::dot;
use crate::search::analyze::normalize;
use crate::search::vectors::VectorSpace;

/// Buckets of the hashed catalog features.
pub const HASHED_DIM: usize = 512;

/// Projected rows scored per content search through the index, at least (each is 128
/// values read in sequence: twice the full rows' old depth costs less than their reads).
pub(super) const CONTENT_PROBE_ITEMS: usize = 2_000;

/// K-means effort of the content index: content rows are wide (512 hashed buckets, plus
/// the text and the shop's own vectors), so its build samples less than the factor
/// indexes' do (1.8 s for 100,000 items × 512 on 2 cores).
pub const CONTENT_INDEX_EFFORT: BuildEffort = BuildEffort { sample_per_cluster: 16, iterations: 5 };

/// How the content index searches (`recommend::projected`): through the rows' strongest
/// `directions`, the best `k + extra_per_k × k` candidates scored on the full rows.
/// Chosen by `souk bench ann --space content` at 1M items × 896 (BENCHMARKS.md): 64
/// directions lose too much (recall@10 0.68 at 4 × k extra); 128 with 2 × k extra match the
/// full rows' inverted file at `k` = 100 (0.961 against 0.959) at 4.4× its queries/s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentIndexShape {
    pub directions: usize,
    pub extra_per_k: usize,
}

impl ContentIndexShape {
    /// Candidates beyond `k` scored on the full rows.
    pub fn extra(&self, k: usize) -> usize {
        self.extra_per_k * k
    }
}

/// The shape serving uses.
pub const CONTENT_INDEX: ContentIndexShape = ContentIndexShape { directions: 128, extra_per_k: 2 };

/// Attribute values longer than this (URLs, descriptions) are not features.
const MAX_ATTRIBUTE_CHARS: usize = 40;

/// The shape of content vectors: the hashed block, then the text vector (when the shop has
/// an embedder), then the shop's own vectors by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContentLayout {
    pub text_dim: usize,
    pub own: Vec<(String, usize)>,
}

impl ContentLayout {
    pub fn dim(&self) -> usize {
        HASHED_DIM + self.text_dim + self.own.iter().map(|(_, d)| d).sum::<usize>()
    }
}

/// The catalog features of an item as (feature digest, weight) pairs.
pub fn catalog_features(item: &Item) -> Vec<(u64, f32)> {
    let mut out = Vec::new();
    let mut put = |kind: &str, value: &str, weight: f32| {
        let mut bytes = Vec::with_capacity(kind.len() + 1 + value.len());
        bytes.extend_from_slice(kind.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(normalize(value).trim().as_bytes());
        out.push((xxhash_rust::xxh3::xxh3_64(&bytes), weight));
    };
    let words = words_of(&item.title);
    let title_weight = 1.0 / (words.len().max(1) as f32).sqrt();
    for word in &words {
        put("w", word, title_weight);
    }
    if let Some(brand) = &item.brand {
        put("b", brand, 1.0);
    }
    let mut path = String::new();
    for level in &item.category {
        path.push('>');
        path.push_str(level);
        put("c", &path, 1.0);
    }
    for tag in &item.tags {
        put("t", tag, 1.0);
    }
    let scalar = |value: &serde_json::Value| match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    // Knowledge-graph facts (`kg.RELATION` attributes, see `import::recbole`): all of an
    // item's entities together are worth KG_WEIGHT of one attribute, so a film with forty
    // actors and twenty award nominations is not described by them alone.
    let kg_values: usize = item
        .attributes
        .iter()
        .filter(|(name, _)| name.starts_with(KG_PREFIX))
        .map(|(_, value)| value.as_array().map_or(1, Vec::len))
        .sum();
    let kg_weight = KG_WEIGHT / (kg_values.max(1) as f32).sqrt();
    for (name, value) in &item.attributes {
        let graph = name.starts_with(KG_PREFIX);
        // A list (the knowledge graph's entities of a relation, say): each value, together
        // worth one attribute.
        if let serde_json::Value::Array(values) = value {
            let texts: Vec<String> = values.iter().filter_map(scalar).filter(|t| short_value(t)).collect();
            let weight = if graph { kg_weight } else { 1.0 / (texts.len().max(1) as f32).sqrt() };
            for text in texts {
                put("a", &format!("{name}={text}"), weight);
            }
            continue;
        }
        let Some(text) = scalar(value) else { continue };
        if !short_value(&text) {
            continue;
        }
        put("a", &format!("{name}={text}"), if graph { kg_weight } else { 1.0 });
        if !graph && text.len() == 4 && text.bytes().all(|b| b.is_ascii_digit()) {
            put("a", &format!("{name}~{}", &text[..3]), 1.0);
        }
    }
    out
}

/// Attributes holding knowledge-graph facts.
const KG_PREFIX: &str = "kg.";
/// What all of an item's knowledge-graph facts weigh together, in attributes.
const KG_WEIGHT: f32 = 0.25;

/// Whether an attribute value is short enough to be a feature (not prose, not a URL).
fn short_value(text: &str) -> bool {
    !text.is_empty() && text.chars().count() <= MAX_ATTRIBUTE_CHARS && !text.contains("://")
}

/// Words of a title: letters and digits in runs (CJK characters one by one and in pairs).
fn words_of(text: &str) -> Vec<String> {
    let normal = normalize(text);
    let mut words = Vec::new();
    let mut cjk: Vec<char> = Vec::new();
    for word in normal.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        cjk.clear();
        cjk.extend(word.chars().filter(|c| crate::search::analyze::is_cjk(*c)));
        if cjk.is_empty() {
            words.push(word.to_string());
        } else {
            words.extend(cjk.iter().map(|c| c.to_string()));
            words.extend(cjk.windows(2).map(|w| w.iter().collect::<String>()));
        }
    }
    words
}

/// Document frequencies of catalog features, for their inverse-frequency weights.
#[derive(Debug, Clone, Default)]
pub struct FeatureFrequencies {
    counts: HashMap<u64, u32>,
    documents: u32,
}

impl FeatureFrequencies {
    pub fn of<'a>(items: impl IntoIterator<Item = &'a [(u64, f32)]>) -> Self {
        let mut out = Self::default();
        for features in items {
            out.documents += 1;
            let mut seen: Vec<u64> = features.iter().map(|(h, _)| *h).collect();
            seen.sort_unstable();
            seen.dedup();
            for h in seen {
                *out.counts.entry(h).or_default() += 1;
            }
        }
        out
    }

    /// `ln(1 + N / df)`: rare features weigh more; a feature never seen weighs the most.
    fn idf(&self, feature: u64) -> f32 {
        let df = self.counts.get(&feature).copied().unwrap_or(1).max(1);
        (1.0 + f64::from(self.documents.max(1)) / f64::from(df)).ln() as f32
    }
}

/// Write the content vector of an item into `out` (`layout.dim()` values): see the module
/// docs. `text` is its text vector, when there is one.
pub fn content_vector(
    layout: &ContentLayout,
    frequencies: &FeatureFrequencies,
    features: &[(u64, f32)],
    text: Option<&[f32]>,
    own: &BTreeMap<String, Vec<f32>>,
    out: &mut [f32],
) {
    out.fill(0.0);
    let (hashed, rest) = out.split_at_mut(HASHED_DIM);
    for (feature, weight) in features {
        let bucket = (feature % HASHED_DIM as u64) as usize;
        let sign = if feature >> 63 == 0 { 1.0 } else { -1.0 };
        hashed[bucket] += sign * weight * frequencies.idf(*feature);
    }
    unit_in_place(hashed);
    let (text_block, mut rest) = rest.split_at_mut(layout.text_dim);
    if let Some(text) = text.filter(|t| t.len() == layout.text_dim) {
        text_block.copy_from_slice(text);
        unit_in_place(text_block);
    }
    for (name, dim) in &layout.own {
        let (block, tail) = rest.split_at_mut(*dim);
        if let Some(vector) = own.get(name).filter(|v| v.len() == *dim) {
            block.copy_from_slice(vector);
            unit_in_place(block);
        }
        rest = tail;
    }
    unit_in_place(out);
}

fn unit_in_place(v: &mut [f32]) {
    let norm = dot(v, v).sqrt();
    if norm > 0.0 && norm.is_finite() {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Content rows of `ids` (aligned with them; zero rows for ids without an item in `items`),
/// with frequencies and layout taken from `items` themselves: the offline form of
/// `LiveContent` (`souk eval` builds its content models from it).
pub fn content_rows_of(items: &[Item], ids: &[String], text: Option<&VectorSpace>) -> ContentRows {
    let features: Vec<Vec<(u64, f32)>> = items.iter().map(catalog_features).collect();
    let frequencies = FeatureFrequencies::of(features.iter().map(Vec::as_slice));
    let layout = layout_of(items.iter().map(|item| &item.vectors), text);
    let position: HashMap<&str, usize> = items.iter().enumerate().map(|(k, item)| (item.id.as_str(), k)).collect();
    let mut rows = ContentRows::new(layout.dim(), ids.len());
    for (i, id) in ids.iter().enumerate() {
        if let Some(&k) = position.get(id.as_str()) {
            let vector = text.and_then(|t| t.vector_of(id));
            content_vector(&layout, &frequencies, &features[k], vector.as_deref(), &items[k].vectors, rows.row_mut(i));
        }
    }
    rows
}

/// The layout of items carrying these vectors of their own.
pub(super) fn layout_of<'a>(
    vectors: impl Iterator<Item = &'a BTreeMap<String, Vec<f32>>>,
    text: Option<&VectorSpace>,
) -> ContentLayout {
    let mut own: BTreeMap<String, usize> = BTreeMap::new();
    for item_vectors in vectors {
        for (name, vector) in item_vectors {
            own.entry(name.clone()).or_insert(vector.len());
        }
    }
    ContentLayout { text_dim: text.map_or(0, |t| t.dim()), own: own.into_iter().collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, attributes: serde_json::Value) -> Item {
        crate::input::parse_item(&serde_json::json!({"id": id, "title": id, "attributes": attributes})).unwrap()
    }

    #[test]
    fn list_attributes_give_one_feature_per_value_worth_one_attribute_together() {
        let a = item("alpha", serde_json::json!({"colour": ["red", "green", "blue", "black"], "year": 1995}));
        let b = item("bravo", serde_json::json!({"colour": ["black"], "note": "https://x.test/long"}));
        let (fa, fb) = (catalog_features(&a), catalog_features(&b));
        let shared: Vec<&(u64, f32)> = fa.iter().filter(|(d, _)| fb.iter().any(|(e, _)| e == d)).collect();
        assert_eq!(shared.len(), 1, "the shared colour, and not the title words or other colours: {shared:?}");
        assert_eq!(shared[0].1, 0.5, "one of four values");
        assert_eq!(fb.iter().find(|(d, _)| *d == shared[0].0).unwrap().1, 1.0, "the only value");
        // year=1995 and its decade; no feature for a URL.
        assert_eq!(fa.len(), 1 + 4 + 2);
        assert_eq!(fb.len(), 1 + 1);
    }

    #[test]
    fn knowledge_graph_facts_weigh_a_fraction_of_one_attribute_together() {
        let film = item(
            "film",
            serde_json::json!({"kg.film.film.actor": ["m.1", "m.2", "m.3"], "kg.film.film.directed_by": "m.9",
                               "kg.film.film.initial_release": "1995", "year": 1995}),
        );
        let features = catalog_features(&film);
        // Title word, three actors, the director, the release (no decade for a fact), year and
        // its decade.
        assert_eq!(features.len(), 1 + 3 + 1 + 1 + 2);
        let facts: Vec<f32> = features.iter().map(|(_, w)| *w).filter(|w| *w < 1.0).collect();
        assert_eq!(facts.len(), 5, "{features:?}");
        // Five facts share KG_WEIGHT: each KG_WEIGHT / √5, so their norm is KG_WEIGHT.
        let norm = facts.iter().map(|w| w * w).sum::<f32>().sqrt();
        assert!((norm - KG_WEIGHT).abs() < 1e-6, "{norm}");
    }
}
