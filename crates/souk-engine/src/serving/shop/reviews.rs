//! What the shop's review texts say, as of the serving generation: per item (the product
//! page) and per shopper (the profile).

use super::Shop;
use crate::rank::review_sentiment::TextSentiment;

impl Shop {
    /// The text sentiment of an item's reviews, when the serving generation scored any.
    pub fn item_review_sentiment(&self, item: &str) -> Option<TextSentiment> {
        let set = self.models()?;
        set.features.as_ref()?.reviews.items.get(item).copied()
    }

    /// The text sentiment of a shopper's reviews, likewise.
    pub fn user_review_sentiment(&self, user: &str) -> Option<TextSentiment> {
        let set = self.models()?;
        set.features.as_ref()?.reviews.users.get(user).copied()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::gen::{GenConfig, Generator};
    use crate::rank::review_sentiment::HeadSource;
    use crate::search::{SearchConfig, SearchIndex, TextEmbedder};
    use crate::serving::ShopSettings;
    use crate::store::{EmbeddedStore, Storage, StoreConfig, StoreSink};

    /// A lexical encoder: character bigrams hashed into 256 dimensions, unit length.
    struct Bigrams;

    impl TextEmbedder for Bigrams {
        fn id(&self) -> &str {
            "bigrams"
        }
        fn dim(&self) -> usize {
            256
        }
        fn multilingual(&self) -> bool {
            true
        }
        fn embed(&self, texts: &[&str], _query: bool) -> crate::Result<Vec<Vec<f32>>> {
            Ok(texts
                .iter()
                .map(|text| {
                    let chars: Vec<char> = text.to_lowercase().chars().collect();
                    let mut v = vec![0.0f32; 256];
                    for pair in chars.windows(2) {
                        v[(xxhash_rust::xxh3::xxh3_64(format!("{}{}", pair[0], pair[1]).as_bytes()) % 256) as usize] +=
                            1.0;
                    }
                    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-9);
                    v.iter().map(|x| x / norm).collect()
                })
                .collect())
        }
    }

    #[test]
    fn a_training_scores_the_shops_review_texts_per_item_and_shopper() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), &StoreConfig::default()).unwrap();
        let generator = Generator::new(GenConfig { items: 120, users: 200, events: 50_000, seed: 5 }).unwrap();
        let mut sink = StoreSink::new(&store);
        generator.run(&mut sink, &mut |_| {}).unwrap();
        sink.finish().unwrap();
        let search = SearchIndex::open(&dir.path().join("search"), SearchConfig::default(), &store).unwrap();
        let store: Arc<dyn Storage> = Arc::new(store);
        let shop = Shop::new(store.clone(), ShopSettings::default()).with_search(search, Some(Arc::new(Bigrams)));
        assert!(shop.item_review_sentiment("i000001").is_none(), "nothing before a training");
        shop.train().unwrap();
        let first = shop.models().unwrap();
        let reviews = &first.features.as_ref().unwrap().reviews;
        assert!(
            matches!(reviews.source, Some(HeadSource::ShopReviews { .. })),
            "{:?} {}",
            reviews.source,
            reviews.pending
        );
        assert_eq!(reviews.pending, 0);
        // Items whose text sentiment is higher have higher mean ratings: the head read the
        // texts the way the shoppers rated.
        let mut ratings: std::collections::HashMap<String, (f64, f64)> = Default::default();
        store
            .scan_events(&[crate::EventType::Rating], &mut |event| {
                let entry = ratings.entry(event.item.unwrap().as_str().to_string()).or_default();
                entry.0 += event.value.unwrap();
                entry.1 += 1.0;
                Ok(())
            })
            .unwrap();
        let pairs: Vec<(f64, f64)> = reviews
            .items
            .iter()
            .filter(|(_, s)| s.reviews >= 2)
            .filter_map(|(item, s)| ratings.get(item).map(|(sum, n)| (s.mean().unwrap(), sum / n)))
            .collect();
        assert!(pairs.len() >= 20, "{} items with reviews", pairs.len());
        let correlation = pearson(&pairs);
        assert!(correlation > 0.5, "text sentiment vs mean rating: {correlation}");
        let (user, sentiment) = reviews.users.iter().next().unwrap();
        assert_eq!(shop.user_review_sentiment(user), Some(*sentiment));
        assert!(shop.item_review_sentiment(reviews.items.keys().next().unwrap()).is_some());
        // The next training reuses the scores (no review is new).
        shop.train().unwrap();
        let set = shop.models().unwrap();
        let again = &set.features.as_ref().unwrap().reviews;
        assert_eq!((again.scored(), again.head.as_ref()), (reviews.scored(), reviews.head.as_ref()));
    }

    fn pearson(pairs: &[(f64, f64)]) -> f64 {
        let n = pairs.len() as f64;
        let (mx, my) = (pairs.iter().map(|p| p.0).sum::<f64>() / n, pairs.iter().map(|p| p.1).sum::<f64>() / n);
        let cov: f64 = pairs.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
        let vx: f64 = pairs.iter().map(|(x, _)| (x - mx).powi(2)).sum();
        let vy: f64 = pairs.iter().map(|(_, y)| (y - my).powi(2)).sum();
        cov / (vx * vy).sqrt()
    }
}
