//! Recall sources for shoppers with little history: what shoppers sharing their attributes
//! liked (`demographic`, from the set's [`DemographicPrior`]) and popular items in the
//! categories and brands they said they like at onboarding (`preferences`). Both join a
//! "for you" page while the shopper has interacted with fewer than [`NEW_SHOPPER_ITEMS`]
//! items; past that, their own history speaks louder than anything their profile says.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use crate::error::Result;
use crate::model::{Preferences, User};
use crate::recommend::demographic::{attribute_groups, DemographicPrior};
use crate::store::ItemMeta;

use super::label_index::LabelIndex;
use super::recall::{Recall, RecallSource};
use super::{ModelSet, Reason, SourceKind};

/// Shoppers with fewer history items than this get the new-shopper sources.
pub const NEW_SHOPPER_ITEMS: usize = 5;

/// The sources that read the shopper's whole history (see `RecommendConfig::history_ramp`;
/// the session source, which reads the session going on, keeps its weight).
pub const HISTORY_SOURCES: [SourceKind; 9] = [
    SourceKind::Als,
    SourceKind::Ease,
    SourceKind::InfiniteAe,
    SourceKind::Blend,
    SourceKind::Rp3beta,
    SourceKind::Social,
    SourceKind::Itemknn,
    SourceKind::Content,
    SourceKind::Graph,
];

/// The share of their fusion weight the history sources have for a shopper with `items`
/// items of history: `min(1, items / ramp)` (1 with `ramp` 0).
pub fn history_share(items: usize, ramp: usize) -> f64 {
    if ramp == 0 {
        1.0
    } else {
        (items as f64 / ramp as f64).min(1.0)
    }
}

/// `weights` for a shopper with `items` items of history (see [`history_share`]).
pub fn history_weights(
    weights: &BTreeMap<SourceKind, f64>,
    items: usize,
    ramp: usize,
) -> Cow<'_, BTreeMap<SourceKind, f64>> {
    let share = history_share(items, ramp);
    if share >= 1.0 {
        return Cow::Borrowed(weights);
    }
    let mut scaled = weights.clone();
    for kind in HISTORY_SOURCES {
        let weight = scaled.entry(kind).or_insert(1.0);
        *weight *= share;
    }
    Cow::Owned(scaled)
}

/// How many of the most popular items the preferences source looks through for matches
/// (through the set's [`LabelIndex`] of them).
const PREFERENCE_SCAN: usize = 20_000;

/// The new-shopper sources for this user record (none without a record, or without
/// attributes the prior knows and stated preferences).
pub fn new_shopper_sources<'a>(set: &'a ModelSet, user: Option<&User>) -> Vec<Box<dyn RecallSource + 'a>> {
    let Some(user) = user else { return Vec::new() };
    let mut sources: Vec<Box<dyn RecallSource + 'a>> = Vec::new();
    if let Some(prior) = set.demographic.as_deref() {
        let groups = attribute_groups(&user.attributes);
        if prior.knows_any(&groups) {
            sources.push(Box::new(DemographicSource { prior, groups }));
        }
    }
    if !user.preferences.is_empty() {
        sources.push(Box::new(PreferencesSource::new(&user.preferences)));
    }
    sources
}

/// Items the shopper's attribute groups over-index on (see [`DemographicPrior`]).
pub struct DemographicSource<'a> {
    prior: &'a DemographicPrior,
    groups: Vec<String>,
}

impl RecallSource for DemographicSource<'_> {
    fn kind(&self) -> SourceKind {
        SourceKind::Demographic
    }

    fn recall(&self, recall: &Recall<'_>) -> Result<Vec<(u32, f32)>> {
        recall.fetched_then_accepted(&|k| Ok(self.prior.top(&self.groups, k, &mut |i| (recall.rejected)(i))))
    }

    fn explain(&self, item: u32, reason: &mut Reason) {
        reason.matched = self.prior.lifting_groups(&self.groups, item).into_iter().map(str::to_string).collect();
    }
}

/// Popular items in a stated category (any level of the item's path) or of a stated
/// brand, compared without regard to case.
pub struct PreferencesSource {
    categories: Vec<String>,
    brands: Vec<String>,
    /// The preference each recalled item matched (`category=…` or `brand=…`).
    matched: RefCell<HashMap<u32, String>>,
}

impl PreferencesSource {
    pub fn new(preferences: &Preferences) -> Self {
        let lower = |values: &[String]| -> Vec<String> {
            values.iter().map(|v| v.trim().to_lowercase()).filter(|v| !v.is_empty()).collect()
        };
        Self {
            categories: lower(&preferences.categories),
            brands: lower(&preferences.brands),
            matched: RefCell::new(HashMap::new()),
        }
    }

    /// The stated preference `meta` matches, if any.
    fn matches(&self, meta: &ItemMeta) -> Option<String> {
        if let Some(brand) = meta.brand.as_deref().filter(|b| self.brands.iter().any(|p| same_lowered(b, p))) {
            return Some(format!("brand={brand}"));
        }
        let level = meta.category.iter().find(|level| self.categories.iter().any(|p| same_lowered(level, p)))?;
        Some(format!("category={level}"))
    }

    /// Whether `meta` matches a stated preference (without allocating: this runs on
    /// thousands of items per request).
    fn matches_any(&self, meta: &ItemMeta) -> bool {
        meta.brand.as_deref().is_some_and(|b| self.brands.iter().any(|p| same_lowered(b, p)))
            || meta.category.iter().any(|level| self.categories.iter().any(|p| same_lowered(level, p)))
    }
}

/// Whether `label` lowercased is `lowered`.
fn same_lowered(label: &str, lowered: &str) -> bool {
    if label.is_ascii() {
        label.eq_ignore_ascii_case(lowered) && !lowered.bytes().any(|b| b.is_ascii_uppercase())
    } else {
        label.chars().flat_map(char::to_lowercase).eq(lowered.chars())
    }
}

impl RecallSource for PreferencesSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Preferences
    }

    fn recall(&self, recall: &Recall<'_>) -> Result<Vec<(u32, f32)>> {
        const BATCH: usize = 256;
        let set = recall.set;
        let labels = match set.labels.get() {
            Some(labels) => labels,
            None => {
                let built = LabelIndex::build(recall.store, &set.item_ids, &set.popularity_order, PREFERENCE_SCAN)?;
                // Two first requests at once build it twice; one is kept.
                let _ = set.labels.set(built);
                set.labels.get().expect("set above")
            }
        };
        let stated: Vec<&str> = self.brands.iter().chain(&self.categories).map(String::as_str).collect();
        // The index proposes; the catalog decides (filters, and the labels as they are now).
        let mut proposed = labels
            .positions(&stated)
            .into_iter()
            .map(|position| set.popularity_order[position as usize])
            .filter(|&i| !(recall.rejected)(i))
            .peekable();
        let mut out = Vec::with_capacity(recall.want);
        let mut batch = Vec::with_capacity(BATCH);
        let test = |meta: Option<&ItemMeta>| recall.filter.accepts(meta) && meta.is_some_and(|m| self.matches_any(m));
        while proposed.peek().is_some() && out.len() < recall.want {
            batch.clear();
            batch.extend(proposed.by_ref().take(BATCH));
            let ids: Vec<&str> = batch.iter().map(|&i| set.item_ids[i as usize].as_str()).collect();
            let verdicts = recall.store.items_match(&ids, &test)?;
            out.extend(batch.iter().zip(verdicts).filter(|(_, ok)| *ok).map(|(&i, _)| (i, set.popularity[i as usize])));
        }
        out.truncate(recall.want);
        // What each matched, for its reason (read again for these few only).
        let ids: Vec<&str> = out.iter().map(|&(i, _)| set.item_ids[i as usize].as_str()).collect();
        let mut matched = self.matched.borrow_mut();
        for (&(i, _), meta) in out.iter().zip(recall.store.items_meta(&ids)?) {
            if let Some(preference) = meta.as_ref().and_then(|m| self.matches(m)) {
                matched.insert(i, preference);
            }
        }
        Ok(out)
    }

    fn explain(&self, item: u32, reason: &mut Reason) {
        if let Some(preference) = self.matched.borrow().get(&item) {
            reason.matched = vec![preference.clone()];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::GenConfig;
    use crate::ids::UserId;
    use crate::serving::{recommend, RecommendConfig, RecommendRequest};
    use crate::store::{EmbeddedStore, Storage};

    #[test]
    fn history_sources_ramp_up_with_the_history() {
        let weights: BTreeMap<SourceKind, f64> =
            [(SourceKind::Als, 1.0), (SourceKind::Popularity, 0.2), (SourceKind::Session, 1.5)].into_iter().collect();
        let at = |items, ramp| history_weights(&weights, items, ramp).into_owned();
        // A quarter of the way: history sources (listed or not) at a quarter, the others as set.
        let quarter = at(1, 4);
        assert_eq!(quarter[&SourceKind::Als], 0.25);
        assert_eq!(quarter[&SourceKind::Itemknn], 0.25);
        assert_eq!(quarter[&SourceKind::Popularity], 0.2);
        assert_eq!(quarter[&SourceKind::Session], 1.5);
        // Full weight at and past the ramp, and always without one.
        assert!(matches!(history_weights(&weights, 4, 4), Cow::Borrowed(_)));
        assert_eq!(at(9, 4), weights);
        assert_eq!(at(1, 0), weights);
        assert_eq!(history_share(3, 10), 0.3);
    }

    fn user(id: &str) -> UserId {
        UserId::parse(id, "user").unwrap()
    }

    fn shop(dir: &std::path::Path) -> (EmbeddedStore, ModelSet) {
        crate::serving::test_shop::trained_shop(dir, GenConfig { items: 300, users: 400, events: 15_000, seed: 7 })
    }

    #[test]
    fn stated_preferences_match_labels_without_regard_to_case() {
        // Preferences are kept lowercased; labels come as the catalog spells them.
        assert!(same_lowered("Nike", "nike"));
        assert!(same_lowered("NIKE", "nike"));
        assert!(!same_lowered("Nike", "nik"));
        assert!(!same_lowered("Nikes", "nike"));
        assert!(same_lowered("ÉCLAIR", "éclair"));
        assert!(!same_lowered("ÉCLAIR", "eclair"));
        assert!(same_lowered("童装", "童装"));
        assert!(!same_lowered("童装", "女装"));
        assert!(!same_lowered("", "nike"));
        let source =
            PreferencesSource::new(&Preferences { categories: vec!["Shoes".into()], brands: vec![" ACME ".into()] });
        let meta = |category: &[&str], brand: Option<&str>| ItemMeta {
            category: category.iter().map(|c| std::sync::Arc::from(*c)).collect(),
            brand: brand.map(std::sync::Arc::from),
            ..ItemMeta::default()
        };
        assert!(source.matches_any(&meta(&["Clothing", "SHOES"], None)));
        assert_eq!(source.matches(&meta(&["Clothing", "SHOES"], None)).as_deref(), Some("category=SHOES"));
        assert!(source.matches_any(&meta(&[], Some("Acme"))));
        assert_eq!(source.matches(&meta(&["shoes"], Some("Acme"))).as_deref(), Some("brand=Acme"));
        assert!(!source.matches_any(&meta(&["Clothing"], Some("Other"))));
        assert_eq!(source.matches(&meta(&["Clothing"], Some("Other"))), None);
    }

    #[test]
    fn a_visitor_on_a_product_page_gets_what_goes_with_it_and_not_the_product() {
        let dir = tempfile::tempdir().unwrap();
        let (store, set) = shop(dir.path());
        let config = RecommendConfig::default();
        let on_screen = set.popularity_order.iter().copied().find(|&i| !set.knn.neighbours_of(i).0.is_empty()).unwrap();
        let id = set.item_ids[on_screen as usize].clone();
        let mut request = RecommendRequest::new(user("stranger"), 20);
        request.context_item = Some(crate::ids::ItemId::parse(id.as_str(), "context_item").unwrap());
        let page = recommend(&set, &store, &config, &request).unwrap();
        assert!(page.items.iter().all(|item| item.id != id), "the product itself is not listed");
        let cited: Vec<&Reason> =
            page.items.iter().flat_map(|item| &item.reasons).filter(|r| r.source == SourceKind::Itemknn).collect();
        assert!(!cited.is_empty(), "its neighbours are recalled");
        assert!(cited.iter().all(|r| r.because.as_deref() == Some(id.as_str())), "{cited:?}");
        // Nothing was stored: without the context the visitor is a stranger again.
        let page = recommend(&set, &store, &config, &RecommendRequest::new(user("stranger"), 20)).unwrap();
        assert!(page.items.iter().flat_map(|i| &i.reasons).all(|r| r.source == SourceKind::Popularity));
        // An item the set does not know is only left out.
        request.context_item = Some(crate::ids::ItemId::parse("not-in-the-shop", "context_item").unwrap());
        assert!(!recommend(&set, &store, &config, &request).unwrap().items.is_empty());
    }

    #[test]
    fn a_new_shopper_gets_the_profile_sources_with_what_they_matched_until_their_history_grows() {
        let dir = tempfile::tempdir().unwrap();
        let (store, set) = shop(dir.path());
        let config = RecommendConfig::default();
        let prior = set.demographic.as_ref().expect("generated shoppers have attributes");
        // A stated category that some items have below their root.
        let mut category = None;
        store
            .scan_item_meta(&mut |_, meta| {
                if category.is_none() && meta.category.len() > 1 {
                    category = Some(meta.category[1].to_string());
                }
            })
            .unwrap();
        let category = category.unwrap();
        let mut newbie = crate::model::User::new(user("newbie"));
        for (name, value) in [("age_band", "25-34"), ("gender", "female"), ("region", "UK"), ("zip", "unheard-of")] {
            newbie.attributes.insert(name.into(), serde_json::json!(value));
        }
        assert!(prior.knows_any(&attribute_groups(&newbie.attributes)));
        newbie.preferences.categories = vec![category.to_uppercase()];
        store.put_users(vec![newbie.clone()]).unwrap();

        let page = recommend(&set, &store, &config, &RecommendRequest::new(user("newbie"), 20)).unwrap();
        let reasons: Vec<&Reason> = page.items.iter().flat_map(|item| &item.reasons).collect();
        let preferred: Vec<&str> = page
            .items
            .iter()
            .filter(|item| item.reasons.iter().any(|r| r.source == SourceKind::Preferences))
            .map(|item| item.id.as_str())
            .collect();
        assert!(!preferred.is_empty(), "{reasons:?}");
        for id in &preferred {
            let meta = store.items_meta(&[id]).unwrap().pop().flatten().unwrap();
            assert!(meta.category.iter().any(|c| c.as_ref() == category.as_str()), "{id} is not in {category}");
        }
        let said = format!("category={category}");
        assert!(reasons.iter().filter(|r| r.source == SourceKind::Preferences).all(|r| r.matched == [said.clone()]));
        let demographic: Vec<&&Reason> = reasons.iter().filter(|r| r.source == SourceKind::Demographic).collect();
        assert!(!demographic.is_empty(), "{reasons:?}");
        let groups = attribute_groups(&newbie.attributes);
        assert!(demographic.iter().all(|r| r.matched.iter().all(|m| groups.contains(m) && m != "zip=unheard-of")));
        assert!(demographic.iter().any(|r| !r.matched.is_empty()), "some pick over-indexes for a group");

        // Without a record: popularity alone.
        let page = recommend(&set, &store, &config, &RecommendRequest::new(user("stranger"), 10)).unwrap();
        assert!(page.items.iter().flat_map(|i| &i.reasons).all(|r| r.source == SourceKind::Popularity));

        // Once the shopper has interacted with enough items, their own history speaks.
        let events: Vec<crate::model::Event> = page
            .items
            .iter()
            .take(NEW_SHOPPER_ITEMS)
            .enumerate()
            .map(|(k, item)| {
                crate::input::parse_event(&serde_json::json!({
                    "id": format!("newbie-{k}"), "type": "purchase", "user": "newbie",
                    "item": item.id, "timestamp": 1_700_000_000_000i64 + k as i64,
                }))
                .unwrap()
            })
            .collect();
        store.append_events(events).unwrap();
        let page = recommend(&set, &store, &config, &RecommendRequest::new(user("newbie"), 20)).unwrap();
        assert!(page.history_size >= NEW_SHOPPER_ITEMS);
        assert!(page
            .items
            .iter()
            .flat_map(|i| &i.reasons)
            .all(|r| !matches!(r.source, SourceKind::Demographic | SourceKind::Preferences)));
    }
}
