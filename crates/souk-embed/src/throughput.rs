//! Measuring an embedder's speed: sentences per second in batches, and the latency of one
//! query on its own (what a search request pays). Used by the `throughput` example and by
//! `souk bench embed`; the numbers go to BENCHMARKS.md, never into assertions.

use std::time::Instant;

use crate::{embed_batched, EmbedError, Embedder, TextKind};

/// Result of [`measure_throughput`].
#[derive(Clone, Debug)]
pub struct Throughput {
    pub sentences: usize,
    pub batch_size: usize,
    pub seconds: f64,
}

impl Throughput {
    pub fn sentences_per_second(&self) -> f64 {
        self.sentences as f64 / self.seconds
    }
}

/// Result of [`measure_query_latency`]: wall-clock milliseconds for one text embedded alone.
#[derive(Clone, Debug)]
pub struct Latency {
    pub runs: usize,
    pub median_ms: f64,
    pub p90_ms: f64,
}

/// Embeds `texts` as passages in batches of `batch_size` through [`embed_batched`] and times
/// it, after one untimed warm-up batch (first-touch allocation, lazily built kernels).
pub fn measure_throughput(
    embedder: &dyn Embedder,
    texts: &[&str],
    batch_size: usize,
) -> Result<Throughput, EmbedError> {
    let warm_up = &texts[..texts.len().min(batch_size)];
    embedder.embed(warm_up, TextKind::Passage)?;
    let start = Instant::now();
    embed_batched(embedder, texts, TextKind::Passage, batch_size, &mut |_| {})?;
    Ok(Throughput { sentences: texts.len(), batch_size, seconds: start.elapsed().as_secs_f64() })
}

/// Embeds each of `queries` alone, as a query, `runs` times in all (cycling through them), and
/// reports the median and 90th percentile, after one untimed warm-up.
pub fn measure_query_latency(embedder: &dyn Embedder, queries: &[&str], runs: usize) -> Result<Latency, EmbedError> {
    if queries.is_empty() || runs == 0 {
        return Err(EmbedError::BadInput {
            message: format!("latency needs at least one query and one run, found {} and {runs}", queries.len()),
        });
    }
    embedder.embed(&queries[..1], TextKind::Query)?;
    let mut milliseconds = Vec::with_capacity(runs);
    for query in queries.iter().cycle().take(runs) {
        let start = Instant::now();
        embedder.embed(&[query], TextKind::Query)?;
        milliseconds.push(start.elapsed().as_secs_f64() * 1e3);
    }
    milliseconds.sort_by(f64::total_cmp);
    let at = |quantile: f64| milliseconds[((runs - 1) as f64 * quantile).round() as usize];
    Ok(Latency { runs, median_ms: at(0.5), p90_ms: at(0.9) })
}

const BRANDS: [&str; 12] =
    ["Acme", "Nordik", "Sunline", "Kato", "Brava", "Lumen", "Orbis", "Valley", "Pico", "Haldane", "Miro", "Tesso"];
const ADJECTIVES: [&str; 12] = [
    "Wireless",
    "Stainless Steel",
    "Organic Cotton",
    "Waterproof",
    "Lightweight",
    "Ergonomic",
    "Vintage",
    "Compact",
    "Heavy Duty",
    "Slim Fit",
    "Insulated",
    "Foldable",
];
const PRODUCTS: [&str; 16] = [
    "Bluetooth Headphones",
    "Water Bottle",
    "Crew Neck T-Shirt",
    "Hiking Backpack",
    "Running Shoes",
    "Office Chair",
    "Leather Wallet",
    "Desk Lamp",
    "Yoga Mat",
    "Rain Jacket",
    "Coffee Grinder",
    "Phone Case",
    "Travel Mug",
    "Camping Tent",
    "Kitchen Knife Set",
    "Winter Gloves",
];
const DETAILS: [&str; 10] =
    ["Black", "Navy, Size M", "500 ml", "Pack of 2", "for Men", "for Women", "2024 Edition", "Red", "XL", "Grey 40 L"];

/// `count` short product titles of 5–12 words (about 8–20 tokens), the same for every call:
/// "Kato Waterproof Hiking Backpack Grey 40 L". Made up, so a benchmark needs no data set.
pub fn synthetic_product_titles(count: usize) -> Vec<String> {
    (0..count)
        .map(|index| {
            // Strides coprime to each list's length walk every combination before repeating.
            format!(
                "{} {} {} {}",
                BRANDS[index % BRANDS.len()],
                ADJECTIVES[(index * 5 + index / 7) % ADJECTIVES.len()],
                PRODUCTS[(index * 3 + index / 11) % PRODUCTS.len()],
                DETAILS[(index * 7 + index / 13) % DETAILS.len()],
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_titles_are_deterministic_and_varied() {
        let titles = synthetic_product_titles(1000);
        assert_eq!(titles, synthetic_product_titles(1000));
        let distinct: std::collections::HashSet<&String> = titles.iter().collect();
        assert!(distinct.len() > 900, "only {} distinct titles", distinct.len());
        assert!(titles.iter().all(|title| (4..=14).contains(&title.split(' ').count())), "{titles:?}");
    }
}
