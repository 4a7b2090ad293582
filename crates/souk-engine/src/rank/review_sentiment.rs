//! The shop's review texts scored for sentiment, per item and per shopper: what the
//! product page shows ("what reviewers say"), what a profile says of a shopper, and — for
//! reviews that come without a star rating — pseudo-ratings in the ranker's review
//! sentiment feature.
//!
//! Built at each training ([`ReviewSentiments::build`]) from the store's `review` and
//! `rating` events with a [`SentimentHead`] over the sentence encoder:
//!
//! - The head is the configured one (trained on a labelled corpus, `souk eval --protocol
//!   sentiment --save-head`), else one learned from the shop's own reviews that come with a
//!   rating by the same shopper for the same item (4–5 stars positive, 1–3 negative: shops'
//!   ratings skew high, and a 3 is a shopper who was not pleased; at least [`MIN_LABELLED`]
//!   of each, at most [`MAX_LABELLED`] per class, sampled evenly), refitted when the
//!   labelled reviews have doubled since. Without either, no text is scored.
//! - Scores are kept per review event and reused by the next training under the same head;
//!   at most `budget` new texts are embedded per training (the rest wait for the next one),
//!   so a shop with years of reviews does not stall its first training.
//! - A review's pseudo-rating is the expected rating given the head's probability `p` of
//!   "positive": `(1 − p)·r₋ + p·r₊`, with `r₋`, `r₊` the mean ratings of the negative and
//!   positive labelled reviews (1 and 5 for a configured head). Only reviews without a
//!   rating from that shopper for that item add one, so a rated review is not counted twice.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::features::ItemStats;
use super::sentiment::SentimentHead;
use crate::error::Result;
use crate::model::EventType;
use crate::store::Storage;

/// Fewest labelled reviews of each class to learn a head from the shop's own reviews.
pub const MIN_LABELLED: usize = 20;
/// Most labelled reviews of each class embedded to learn it.
pub const MAX_LABELLED: usize = 2_000;
/// New review texts embedded per training, by default.
pub const DEFAULT_BUDGET: usize = 5_000;

/// Turns texts into the encoder's vectors (the classification form).
pub type EmbedTexts<'a> = dyn Fn(&[&str]) -> Result<Vec<Vec<f32>>> + 'a;

/// Where the head came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HeadSource {
    /// Given by the configuration.
    Configured,
    /// Learned from the shop's rated reviews.
    ShopReviews { positive: usize, negative: usize },
}

/// Text sentiment of one item's or one shopper's reviews.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TextSentiment {
    /// Review texts scored.
    pub reviews: u32,
    /// Sum of their scores (each −1…1).
    pub sum: f64,
    /// Of them, reviews with no rating from the same shopper for the same item.
    pub unrated: u32,
    pub unrated_sum: f64,
}

impl TextSentiment {
    /// Mean score (−1…1), `None` without scored reviews.
    pub fn mean(&self) -> Option<f64> {
        (self.reviews > 0).then(|| self.sum / f64::from(self.reviews))
    }
}

/// The scored reviews of a shop; see the module docs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReviewSentiments {
    pub head: Option<SentimentHead>,
    pub source: Option<HeadSource>,
    /// The labelled reviews the shop head was learned from (both classes), to know when
    /// to refit it.
    #[serde(default)]
    labelled_at_fit: usize,
    /// Score per review event id.
    scores: HashMap<String, f32>,
    /// Mean ratings of the negative and positive labelled reviews (the pseudo-ratings'
    /// ends).
    #[serde(default = "full_scale")]
    pub rating_scale: (f64, f64),
    pub items: HashMap<String, TextSentiment>,
    pub users: HashMap<String, TextSentiment>,
    /// Reviews left unscored for a later training (the budget ran out).
    pub pending: usize,
}

struct Review {
    event: String,
    user: String,
    item: String,
    text: String,
}

impl ReviewSentiments {
    /// Score the store's reviews; see the module docs. `previous` is the last training's
    /// result (its head and scores are reused), `configured` a head from the configuration.
    pub fn build(
        store: &dyn Storage,
        encoder: &str,
        embed: &EmbedTexts<'_>,
        configured: Option<&SentimentHead>,
        previous: Option<&ReviewSentiments>,
        budget: usize,
    ) -> Result<ReviewSentiments> {
        let mut ratings: HashMap<(String, String), f64> = HashMap::new();
        let mut reviews: Vec<Review> = Vec::new();
        store.scan_events(&[EventType::Rating, EventType::Review], &mut |event| {
            let Some(item) = &event.item else { return Ok(()) };
            let key = (event.user.as_str().to_string(), item.as_str().to_string());
            match event.event_type {
                EventType::Rating => {
                    if let Some(value) = event.value.filter(|v| v.is_finite()) {
                        ratings.insert(key, value);
                    }
                }
                _ => {
                    if let Some(text) = event.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
                        reviews.push(Review {
                            event: event.id.as_str().to_string(),
                            user: key.0,
                            item: key.1,
                            text: text.to_string(),
                        });
                    }
                }
            }
            Ok(())
        })?;
        let mut out = ReviewSentiments::default();
        let mut budget = budget;
        // The head: configured, kept from the last training, or learned anew.
        let labelled: Vec<(usize, bool)> = reviews
            .iter()
            .enumerate()
            .filter_map(|(i, r)| match ratings.get(&(r.user.clone(), r.item.clone())) {
                Some(&v) if v >= 4.0 => Some((i, true)),
                Some(_) => Some((i, false)),
                _ => None,
            })
            .collect();
        let reusable = |p: &&ReviewSentiments| p.head.as_ref().is_some_and(|h| h.encoder == encoder);
        if let Some(head) = configured.filter(|h| h.encoder == encoder) {
            out.head = Some(head.clone());
            out.source = Some(HeadSource::Configured);
            if let Some(p) =
                previous.filter(|p| p.source == Some(HeadSource::Configured) && p.head.as_ref() == Some(head))
            {
                out.scores = p.scores.clone();
            }
        } else if let Some(p) = previous
            .filter(reusable)
            .filter(|p| matches!(p.source, Some(HeadSource::ShopReviews { .. })))
            .filter(|p| labelled.len() < 2 * p.labelled_at_fit.max(1))
        {
            out.head = p.head.clone();
            out.source = p.source.clone();
            out.labelled_at_fit = p.labelled_at_fit;
            out.rating_scale = p.rating_scale;
            out.scores = p.scores.clone();
        } else {
            let positives: Vec<usize> = labelled.iter().filter(|(_, y)| *y).map(|(i, _)| *i).collect();
            let negatives: Vec<usize> = labelled.iter().filter(|(_, y)| !*y).map(|(i, _)| *i).collect();
            if positives.len() >= MIN_LABELLED && negatives.len() >= MIN_LABELLED {
                let mut rows: Vec<usize> = evenly(&positives, MAX_LABELLED);
                let n_positive = rows.len();
                rows.extend(evenly(&negatives, MAX_LABELLED));
                let texts: Vec<&str> = rows.iter().map(|&i| reviews[i].text.as_str()).collect();
                let vectors = embed_in_chunks(embed, &texts)?;
                budget = budget.saturating_sub(rows.len());
                let labels: Vec<bool> = (0..rows.len()).map(|k| k < n_positive).collect();
                let (head, _) = SentimentHead::fit_tuned(encoder, &vectors, &labels, 42)?;
                // The embedded texts are scored right away: they cost nothing more.
                for (k, &i) in rows.iter().enumerate() {
                    out.scores.insert(reviews[i].event.clone(), 2.0 * head.probability(&vectors[k]) - 1.0);
                }
                out.source = Some(HeadSource::ShopReviews { positive: n_positive, negative: rows.len() - n_positive });
                out.labelled_at_fit = labelled.len();
                let mean_rating = |rows: &[usize]| {
                    let sum: f64 =
                        rows.iter().map(|&i| ratings[&(reviews[i].user.clone(), reviews[i].item.clone())]).sum();
                    sum / rows.len() as f64
                };
                out.rating_scale = (mean_rating(&negatives), mean_rating(&positives));
                out.head = Some(head);
            }
        }
        let Some(head) = out.head.clone() else {
            out.pending = reviews.len();
            return Ok(out);
        };
        // Score what is new, within the budget.
        let unscored: Vec<usize> =
            (0..reviews.len()).filter(|&i| !out.scores.contains_key(&reviews[i].event)).collect();
        let now: Vec<usize> = unscored.iter().copied().take(budget).collect();
        out.pending = unscored.len() - now.len();
        let texts: Vec<&str> = now.iter().map(|&i| reviews[i].text.as_str()).collect();
        for (&i, vector) in now.iter().zip(embed_in_chunks(embed, &texts)?) {
            out.scores.insert(reviews[i].event.clone(), head.score(&vector)?);
        }
        // Forget scores of reviews no longer stored (erased shoppers), then add up.
        let stored: std::collections::HashSet<&str> = reviews.iter().map(|r| r.event.as_str()).collect();
        out.scores.retain(|event, _| stored.contains(event.as_str()));
        for review in &reviews {
            let Some(&score) = out.scores.get(&review.event) else { continue };
            let rated = ratings.contains_key(&(review.user.clone(), review.item.clone()));
            for entry in
                [out.items.entry(review.item.clone()).or_default(), out.users.entry(review.user.clone()).or_default()]
            {
                entry.reviews += 1;
                entry.sum += f64::from(score);
                if !rated {
                    entry.unrated += 1;
                    entry.unrated_sum += f64::from(score);
                }
            }
        }
        Ok(out)
    }

    /// Reviews scored so far.
    pub fn scored(&self) -> usize {
        self.scores.len()
    }

    /// Add the unrated reviews' pseudo-ratings to the item statistics.
    pub fn add_pseudo_ratings(&self, stats: &mut ItemStats) {
        let (low, high) = self.rating_scale;
        for (item, sentiment) in &self.items {
            if sentiment.unrated > 0 {
                // Σ (low + p·(high − low)) with p = (score + 1) / 2.
                let n = f64::from(sentiment.unrated);
                let p_sum = (sentiment.unrated_sum + n) / 2.0;
                stats.add_ratings(item, n, n * low + p_sum * (high - low));
            }
        }
    }
}

fn full_scale() -> (f64, f64) {
    (1.0, 5.0)
}

impl Default for ReviewSentiments {
    /// Nothing scored, pseudo-ratings on the full 1–5 scale (as a stored one without a scale
    /// reads).
    fn default() -> Self {
        ReviewSentiments {
            head: None,
            source: None,
            labelled_at_fit: 0,
            scores: HashMap::new(),
            rating_scale: full_scale(),
            items: HashMap::new(),
            users: HashMap::new(),
            pending: 0,
        }
    }
}

/// At most `n` of `rows`, spread evenly over them.
fn evenly(rows: &[usize], n: usize) -> Vec<usize> {
    if rows.len() <= n {
        return rows.to_vec();
    }
    (0..n).map(|k| rows[k * rows.len() / n]).collect()
}

fn embed_in_chunks(embed: &EmbedTexts<'_>, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(128) {
        let vectors = embed(chunk)?;
        if vectors.len() != chunk.len() {
            return Err(crate::error::Error::Internal(format!(
                "the encoder returned {} vectors for {} texts",
                vectors.len(),
                chunk.len()
            )));
        }
        out.extend(vectors);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::input::parse_event;
    use crate::store::{EmbeddedStore, StoreConfig};

    /// A toy encoder reading two words: "good" and "bad".
    fn toy(texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        Ok(texts.iter().map(|t| vec![t.matches("good").count() as f32, t.matches("bad").count() as f32, 1.0]).collect())
    }

    fn rating(id: &str, user: &str, item: &str, value: f64) -> serde_json::Value {
        json!({"id": id, "type": "rating", "user": user, "item": item, "value": value, "timestamp": 1})
    }

    fn review(id: &str, user: &str, item: &str, text: &str) -> serde_json::Value {
        json!({"id": id, "type": "review", "user": user, "item": item, "text": text, "timestamp": 2})
    }

    /// `n` rated reviews of each class on items `a` (good) and `b` (bad), plus two unrated
    /// reviews of item `c`.
    fn shop(n: usize) -> (tempfile::TempDir, EmbeddedStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), &StoreConfig::default()).unwrap();
        let mut events = Vec::new();
        for k in 0..n {
            let user = format!("u{k}");
            events.push(rating(&format!("ra{k}"), &user, "a", 5.0));
            events.push(review(&format!("wa{k}"), &user, "a", "good, really good"));
            events.push(rating(&format!("rb{k}"), &user, "b", 1.0));
            events.push(review(&format!("wb{k}"), &user, "b", "bad"));
        }
        events.push(review("wc1", "v1", "c", "good"));
        events.push(review("wc2", "v2", "c", "good and good"));
        store.append_events(events.iter().map(|e| parse_event(e).unwrap()).collect()).unwrap();
        (dir, store)
    }

    #[test]
    fn a_head_learned_from_rated_reviews_scores_every_text_and_unrated_ones_become_pseudo_ratings() {
        let (_dir, store) = shop(MIN_LABELLED);
        let built = ReviewSentiments::build(&store, "toy", &toy, None, None, DEFAULT_BUDGET).unwrap();
        assert_eq!(built.source, Some(HeadSource::ShopReviews { positive: MIN_LABELLED, negative: MIN_LABELLED }));
        assert_eq!(built.scored(), 2 * MIN_LABELLED + 2);
        assert_eq!(built.pending, 0);
        assert!(built.items["a"].mean().unwrap() > 0.5, "{:?}", built.items["a"]);
        assert!(built.items["b"].mean().unwrap() < -0.5, "{:?}", built.items["b"]);
        assert_eq!(built.items["a"].unrated, 0, "rated reviews are not pseudo-ratings");
        let c = built.items["c"];
        assert_eq!((c.reviews, c.unrated), (2, 2));
        assert!(c.unrated_sum > 1.0);
        assert_eq!(built.users["v1"].reviews, 1);
        // Item c had no rating: now it has two pseudo-ratings near 5 stars.
        let mut stats = ItemStats::new();
        built.add_pseudo_ratings(&mut stats);
        let (n, sum) = stats.ratings_of("c");
        assert_eq!(n, 2.0);
        assert!(sum / n > 4.0, "mean pseudo-rating {}", sum / n);
        assert_eq!(stats.ratings_of("a"), (0.0, 0.0));
    }

    #[test]
    fn too_few_labelled_reviews_score_nothing_and_a_configured_head_needs_none() {
        let (_dir, store) = shop(MIN_LABELLED - 1);
        let built = ReviewSentiments::build(&store, "toy", &toy, None, None, DEFAULT_BUDGET).unwrap();
        assert!(built.head.is_none());
        assert_eq!(built.scored(), 0);
        assert_eq!(built.pending, 2 * (MIN_LABELLED - 1) + 2);
        let head = SentimentHead { encoder: "toy".into(), weights: vec![2.0, -2.0, 0.0], bias: 0.0, l2: 1.0, steps: 1 };
        let configured = ReviewSentiments::build(&store, "toy", &toy, Some(&head), None, DEFAULT_BUDGET).unwrap();
        assert_eq!(configured.source, Some(HeadSource::Configured));
        assert_eq!(configured.scored(), 2 * (MIN_LABELLED - 1) + 2);
        assert!(configured.users["v2"].mean().unwrap() > 0.9);
        // A head of another encoder is not used.
        let other = SentimentHead { encoder: "other".into(), ..head };
        assert!(ReviewSentiments::build(&store, "toy", &toy, Some(&other), None, 10).unwrap().head.is_none());
    }

    #[test]
    fn the_next_training_reuses_scores_and_embeds_only_new_texts_within_its_budget() {
        let (_dir, store) = shop(MIN_LABELLED);
        let first = ReviewSentiments::build(&store, "toy", &toy, None, None, DEFAULT_BUDGET).unwrap();
        store
            .append_events(vec![
                parse_event(&review("wd1", "v3", "d", "bad bad")).unwrap(),
                parse_event(&review("wd2", "v4", "d", "bad")).unwrap(),
            ])
            .unwrap();
        let calls = std::cell::Cell::new(0);
        let counting = |texts: &[&str]| {
            calls.set(calls.get() + texts.len());
            toy(texts)
        };
        let second = ReviewSentiments::build(&store, "toy", &counting, None, Some(&first), 1).unwrap();
        assert_eq!(calls.get(), 1, "one new text within the budget of one");
        assert_eq!(second.head, first.head, "the head is kept while the labelled reviews have not doubled");
        assert_eq!((second.scored(), second.pending), (first.scored() + 1, 1));
        let third = ReviewSentiments::build(&store, "toy", &counting, None, Some(&second), 10).unwrap();
        assert_eq!((calls.get(), third.pending), (2, 0));
        assert!(third.items["d"].mean().unwrap() < 0.0);
    }
}
