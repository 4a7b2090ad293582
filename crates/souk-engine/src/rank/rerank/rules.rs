//! The shape of re-ranking rules — the `[rerank]` section of the configuration and the
//! `rules` of a request — with their merging, their validation, and the matching of
//! candidates against their conditions. See [`super`] for what the rules do.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::hashing::IdMap;
use crate::input::integral;

/// Largest position a pin or promotion slot may name: far beyond any page, small enough
/// that a position list cannot be used to make the engine do unbounded work.
pub const MAX_POSITION: usize = 10_000;

/// Beyond this many ids, a condition's `items` list is hashed once per call instead of
/// scanned per candidate.
const ITEM_SET_THRESHOLD: usize = 16;

/// Deepest category level diversity looks at: MMR compares paths down to it, a quota may
/// cut at most there. Deeper levels are ignored.
pub const MAX_CATEGORY_DEPTH: usize = 8;

/// One scored candidate with the catalog facts the rules look at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub id: String,
    /// The ranker's score: higher is better, any real number.
    pub score: f64,
    /// Category path, top level first.
    #[serde(default)]
    pub category: Vec<String>,
    #[serde(default)]
    pub brand: Option<String>,
    #[serde(default)]
    pub price: Option<f64>,
    #[serde(default = "available_by_default")]
    pub available: bool,
    #[serde(default)]
    pub tags: Vec<String>,
    /// `(name, value)` pairs.
    #[serde(default)]
    pub attributes: Vec<(String, String)>,
}

fn available_by_default() -> bool {
    true
}

impl Candidate {
    /// A candidate with an id and a score and no facts (available).
    pub fn new(id: impl Into<String>, score: f64) -> Self {
        Self {
            id: id.into(),
            score,
            category: Vec::new(),
            brand: None,
            price: None,
            available: true,
            tags: Vec::new(),
            attributes: Vec::new(),
        }
    }
}

/// A set of facts a candidate may have; every part given must hold (AND). A condition with
/// no part is invalid (it would match everything).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The candidate's id is one of these (exact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<String>>,
    /// The candidate's category path starts with this prefix, e.g. `["Electronics", "Audio"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    /// The candidate's brand is one of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brands: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_price: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_price: Option<f64>,
    /// The candidate carries this tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The candidate has this attribute with this value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute: Option<AttributeCondition>,
    /// The candidate's availability is this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available: Option<bool>,
}

/// An attribute with a value, e.g. `{ "name": "color", "value": "red" }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeCondition {
    pub name: String,
    pub value: String,
}

fn same_text(rule: &str, fact: &str) -> bool {
    rule.trim().eq_ignore_ascii_case(fact)
}

impl Condition {
    /// Whether no part is given.
    pub fn is_empty(&self) -> bool {
        let Condition { items, category, brand, brands, min_price, max_price, tag, attribute, available } = self;
        items.is_none()
            && category.is_none()
            && brand.is_none()
            && brands.is_none()
            && min_price.is_none()
            && max_price.is_none()
            && tag.is_none()
            && attribute.is_none()
            && available.is_none()
    }

    /// Whether the candidate satisfies every part given.
    pub fn matches(&self, candidate: &Candidate) -> bool {
        self.items.as_ref().is_none_or(|items| items.contains(&candidate.id)) && self.matches_facts(candidate)
    }

    /// [`Self::matches`] without the `items` part.
    fn matches_facts(&self, candidate: &Candidate) -> bool {
        if let Some(prefix) = &self.category {
            if prefix.len() > candidate.category.len()
                || !prefix.iter().zip(&candidate.category).all(|(rule, fact)| same_text(rule, fact))
            {
                return false;
            }
        }
        let brand = candidate.brand.as_deref();
        if self.brand.as_ref().is_some_and(|rule| !brand.is_some_and(|fact| same_text(rule, fact))) {
            return false;
        }
        if self.brands.as_ref().is_some_and(|rules| !brand.is_some_and(|fact| rules.iter().any(|r| same_text(r, fact))))
        {
            return false;
        }
        if self.min_price.is_some_and(|min| candidate.price.is_none_or(|p| p < min)) {
            return false;
        }
        if self.max_price.is_some_and(|max| candidate.price.is_none_or(|p| p > max)) {
            return false;
        }
        if self.tag.as_ref().is_some_and(|rule| !candidate.tags.iter().any(|fact| same_text(rule, fact))) {
            return false;
        }
        if let Some(rule) = &self.attribute {
            if !candidate
                .attributes
                .iter()
                .any(|(name, value)| same_text(&rule.name, name) && same_text(&rule.value, value))
            {
                return false;
            }
        }
        self.available.is_none_or(|a| a == candidate.available)
    }

    fn problems(&self, path: &str, out: &mut Vec<ValidationError>) {
        let invalid = |field: String, message: String| ValidationError::new("invalid_condition", field, message);
        if self.is_empty() {
            out.push(ValidationError::new(
                "empty_condition",
                path,
                "expected at least one of items, category, brand, brands, min_price, max_price, tag, attribute, \
                 available, found none",
            ));
            return;
        }
        for (key, list) in [("items", &self.items), ("category", &self.category), ("brands", &self.brands)] {
            let Some(list) = list else { continue };
            if list.is_empty() {
                out.push(invalid(format!("{path}.{key}"), "expected at least one value, found an empty list".into()));
            }
            for (i, value) in list.iter().enumerate() {
                if value.trim().is_empty() {
                    out.push(invalid(
                        format!("{path}.{key}[{i}]"),
                        "expected a non-blank value, found a blank one".into(),
                    ));
                }
            }
        }
        for (key, value) in [("brand", &self.brand), ("tag", &self.tag)] {
            if value.as_ref().is_some_and(|v| v.trim().is_empty()) {
                out.push(invalid(format!("{path}.{key}"), "expected a non-blank value, found a blank one".into()));
            }
        }
        if let Some(attribute) = &self.attribute {
            for (key, value) in [("name", &attribute.name), ("value", &attribute.value)] {
                if value.trim().is_empty() {
                    out.push(invalid(
                        format!("{path}.attribute.{key}"),
                        "expected a non-blank value, found a blank one".into(),
                    ));
                }
            }
        }
        for (key, value) in [("min_price", self.min_price), ("max_price", self.max_price)] {
            if let Some(value) = value.filter(|v| !v.is_finite()) {
                out.push(invalid(format!("{path}.{key}"), format!("expected a finite number, found {value}")));
            }
        }
        if let (Some(min), Some(max)) = (self.min_price, self.max_price) {
            if min > max {
                out.push(invalid(
                    format!("{path}.max_price"),
                    format!("expected at least min_price {min}, found {max}"),
                ));
            }
        }
    }
}

/// Multiply the score of matching candidates by `factor` (sign-aware, see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Boost {
    pub when: Condition,
    /// Positive and finite: above 1 raises, below 1 lowers.
    pub factor: f64,
}

/// Place `item` at `position` (1-based), if it is an eligible candidate (not filtered).
///
/// The item must be among the candidates: re-ranking has no catalog to check an unknown
/// id against the filters, so a caller that wants to pin an item the ranker did not
/// recall adds it to the candidates (with any score). A pin of an id that is not an
/// eligible candidate does nothing. When fewer candidates are eligible than the position,
/// the item goes to the end of the list instead (pins beyond the end keep their order by
/// position), so a short list still shows it; a position beyond the page `n` keeps the
/// item off the page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pin {
    pub item: String,
    #[serde(deserialize_with = "integral::one")]
    pub position: usize,
}

/// Reserve `positions` (1-based) for the best-ranked candidates matching `when`, e.g.
/// sponsored slots at 3 and 7.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Promotion {
    #[serde(deserialize_with = "integral::list")]
    pub positions: Vec<usize>,
    pub when: Condition,
}

/// How to spread similar items apart (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Diversity {
    /// Maximal marginal relevance; `lambda` in `[0, 1]` weighs relevance against novelty.
    Mmr { lambda: f64 },
    /// At most `max_per_window` items sharing a value of `by` within any `window`
    /// consecutive positions, while other candidates remain.
    Quota {
        by: QuotaKey,
        #[serde(deserialize_with = "integral::one")]
        max_per_window: usize,
        #[serde(deserialize_with = "integral::one")]
        window: usize,
    },
}

/// The value a quota counts: `"brand"`, or `{ "category": N }` — the category path cut at
/// level `N` (1 is the top level; a shorter path counts as itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaKey {
    Brand,
    Category(#[serde(deserialize_with = "integral::one")] usize),
}

/// Every re-ranking rule; the `[rerank]` section of the configuration and the `rules` of a
/// request have this shape. See the module docs for how they combine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rules {
    /// Candidates matching any of these never appear.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filter: Vec<Condition>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub boost: Vec<Boost>,
    /// Candidates matching any of these go after all others.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bury: Vec<Condition>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pin: Vec<Pin>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub promotions: Vec<Promotion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diversity: Option<Diversity>,
}

impl Rules {
    /// Whether no rule is set (re-ranking would keep the ranker's order).
    pub fn is_empty(&self) -> bool {
        self.filter.is_empty()
            && self.boost.is_empty()
            && self.bury.is_empty()
            && self.pin.is_empty()
            && self.promotions.is_empty()
            && self.diversity.is_none()
    }

    /// The rules of a request added to the configured ones:
    ///
    /// - filters, boosts and burials of both apply (a request cannot lift a configured
    ///   filter; boosts matching the same item compound);
    /// - at a position both fix, the request's pin or promotion slot wins and the
    ///   configured one is dropped (a configured promotion left without slots is dropped);
    ///   an item both pin goes where the request says;
    /// - the request's diversity, if it has one, replaces the configured one.
    ///
    /// Merging two valid rule sets gives a valid one.
    pub fn merge(config: &Rules, request: &Rules) -> Rules {
        let mut request_positions: HashSet<usize> = request.pin.iter().map(|p| p.position).collect();
        request_positions.extend(request.promotions.iter().flat_map(|p| p.positions.iter().copied()));
        let request_items: HashSet<&str> = request.pin.iter().map(|p| p.item.as_str()).collect();

        let pin = config
            .pin
            .iter()
            .filter(|p| !request_positions.contains(&p.position) && !request_items.contains(p.item.as_str()))
            .chain(&request.pin)
            .cloned()
            .collect();
        let promotions = config
            .promotions
            .iter()
            .filter_map(|promotion| {
                let positions: Vec<usize> =
                    promotion.positions.iter().copied().filter(|p| !request_positions.contains(p)).collect();
                (!positions.is_empty()).then(|| Promotion { positions, when: promotion.when.clone() })
            })
            .chain(request.promotions.iter().cloned())
            .collect();
        Rules {
            filter: config.filter.iter().chain(&request.filter).cloned().collect(),
            boost: config.boost.iter().chain(&request.boost).cloned().collect(),
            bury: config.bury.iter().chain(&request.bury).cloned().collect(),
            pin,
            promotions,
            diversity: request.diversity.clone().or_else(|| config.diversity.clone()),
        }
    }

    /// Every problem with these rules, each with a stable code and the path of the
    /// offending field (`boost[1].factor`, `diversity.quota.window`, …).
    pub fn problems(&self) -> Vec<ValidationError> {
        let mut out = Vec::new();
        for (i, condition) in self.filter.iter().enumerate() {
            condition.problems(&format!("filter[{i}]"), &mut out);
        }
        for (i, boost) in self.boost.iter().enumerate() {
            if !(boost.factor.is_finite() && boost.factor > 0.0) {
                out.push(invalid_rule(
                    format!("boost[{i}].factor"),
                    format!("expected a positive finite factor, found {}", boost.factor),
                ));
            }
            boost.when.problems(&format!("boost[{i}].when"), &mut out);
        }
        for (i, condition) in self.bury.iter().enumerate() {
            condition.problems(&format!("bury[{i}]"), &mut out);
        }

        // Which field first fixed each position, for duplicate reports.
        let mut fixed: IdMap<usize, String> = IdMap::default();
        let mut pinned: IdMap<&str, String> = IdMap::default();
        let mut check_position = |field: String, position: usize, out: &mut Vec<ValidationError>| {
            if !(1..=MAX_POSITION).contains(&position) {
                out.push(invalid_rule(field, format!("expected a position in 1..={MAX_POSITION}, found {position}")));
            } else if let Some(first) = fixed.get(&position) {
                out.push(ValidationError::new(
                    "duplicate_position",
                    field,
                    format!("expected each position fixed once, found position {position} already fixed by {first}"),
                ));
            } else {
                fixed.insert(position, field);
            }
        };
        for (i, pin) in self.pin.iter().enumerate() {
            if pin.item.trim().is_empty() {
                out.push(invalid_rule(format!("pin[{i}].item"), "expected an item id, found a blank one".into()));
            } else if let Some(first) = pinned.get(pin.item.as_str()) {
                out.push(ValidationError::new(
                    "duplicate_pin",
                    format!("pin[{i}].item"),
                    format!("expected each item pinned once, found {} already pinned by {first}", pin.item),
                ));
            } else {
                pinned.insert(&pin.item, format!("pin[{i}]"));
            }
            check_position(format!("pin[{i}].position"), pin.position, &mut out);
        }
        for (i, promotion) in self.promotions.iter().enumerate() {
            if promotion.positions.is_empty() {
                out.push(invalid_rule(
                    format!("promotions[{i}].positions"),
                    "expected at least one position, found none".into(),
                ));
            }
            for (k, &position) in promotion.positions.iter().enumerate() {
                check_position(format!("promotions[{i}].positions[{k}]"), position, &mut out);
            }
            promotion.when.problems(&format!("promotions[{i}].when"), &mut out);
        }

        match &self.diversity {
            Some(Diversity::Mmr { lambda }) if !(0.0..=1.0).contains(lambda) => {
                out.push(invalid_rule("diversity.mmr.lambda".into(), format!("expected 0..=1, found {lambda}")));
            }
            None | Some(Diversity::Mmr { .. }) => {}
            Some(Diversity::Quota { by, max_per_window, window }) => {
                if let QuotaKey::Category(level) = by {
                    if !(1..=MAX_CATEGORY_DEPTH).contains(level) {
                        out.push(invalid_rule(
                            "diversity.quota.by.category".into(),
                            format!(
                                "expected a category level in 1..={MAX_CATEGORY_DEPTH} (1 is the top), found {level}"
                            ),
                        ));
                    }
                }
                if *max_per_window == 0 {
                    out.push(invalid_rule(
                        "diversity.quota.max_per_window".into(),
                        "expected at least 1, found 0".into(),
                    ));
                }
                if !(1..=MAX_POSITION).contains(window) {
                    out.push(invalid_rule(
                        "diversity.quota.window".into(),
                        format!("expected 1..={MAX_POSITION}, found {window}"),
                    ));
                }
            }
        }
        out
    }

    /// `Ok` when [`Self::problems`] is empty; else the first problem (its code and field),
    /// with every other one appended to its message.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let mut problems = self.problems().into_iter();
        let Some(mut first) = problems.next() else {
            return Ok(());
        };
        for problem in problems {
            first.message.push_str(&format!("; {}: {}", problem.field, problem.message));
        }
        Err(first)
    }
}

fn invalid_rule(field: String, message: String) -> ValidationError {
    ValidationError::new("invalid_rule", field, message)
}

/// A condition ready to test many candidates: a long `items` list becomes a hash set.
pub(super) struct Matcher<'r> {
    condition: &'r Condition,
    items: Option<HashSet<&'r str, ahash::RandomState>>,
}

impl<'r> Matcher<'r> {
    pub(super) fn new(condition: &'r Condition) -> Self {
        let items = condition
            .items
            .as_ref()
            .filter(|items| items.len() > ITEM_SET_THRESHOLD)
            .map(|items| items.iter().map(String::as_str).collect());
        Self { condition, items }
    }

    pub(super) fn matches(&self, candidate: &Candidate) -> bool {
        match &self.items {
            Some(items) => items.contains(candidate.id.as_str()) && self.condition.matches_facts(candidate),
            None => self.condition.matches(candidate),
        }
    }
}

pub(super) fn matchers(conditions: &[Condition]) -> Vec<Matcher<'_>> {
    conditions.iter().map(Matcher::new).collect()
}
