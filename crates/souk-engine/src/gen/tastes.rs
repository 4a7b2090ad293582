//! Synthetic shoppers: demographics, latent tastes (the ground truth a recommender should
//! recover) and the utility a shopper assigns to an item.
//!
//! A [`UserSpec`] is about 90 bytes and holds no strings; [`render_user`] produces the
//! [`User`] record with its attributes and stated onboarding preferences.

use std::collections::BTreeMap;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::catalog::{Catalog, ItemSpec};
use super::sample::{log_normal, weighted_index};
use super::user_id;
use super::vocab::{BrandTier, BRANDS, CATEGORIES};
use crate::model::{Preferences, User};

pub const NUM_CATEGORIES: usize = CATEGORIES.len();
const MAX_FAVORITE_BRANDS: usize = 3;

pub const AGE_BANDS: &[(&str, f64)] =
    &[("18-24", 0.18), ("25-34", 0.32), ("35-44", 0.24), ("45-54", 0.15), ("55+", 0.11)];
pub const GENDERS: &[(&str, f64)] = &[("female", 0.48), ("male", 0.46), ("unspecified", 0.06)];
/// Regions with their share of shoppers and the probability that a shopper there writes
/// queries and reviews in Chinese.
pub const REGIONS: &[(&str, f64, f64)] = &[
    ("US-West", 0.15, 0.03),
    ("US-East", 0.17, 0.03),
    ("UK", 0.08, 0.02),
    ("DE", 0.05, 0.01),
    ("CN-Shanghai", 0.15, 0.9),
    ("CN-Beijing", 0.14, 0.9),
    ("CN-Guangdong", 0.16, 0.9),
    ("SG", 0.10, 0.5),
];

/// The price band a shopper is most comfortable in, relative to each product type's range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceBand {
    Low,
    Mid,
    High,
}

impl PriceBand {
    /// Preferred position within a product type's (log) price range.
    pub fn centre(self) -> f64 {
        match self {
            PriceBand::Low => 0.2,
            PriceBand::Mid => 0.5,
            PriceBand::High => 0.8,
        }
    }
}

/// One shopper's latent state. Category weights sum to 1.
#[derive(Debug, Clone)]
pub struct UserSpec {
    pub category_weights: [f32; NUM_CATEGORIES],
    pub dominant_category: u8,
    pub favorite_brands: [u16; MAX_FAVORITE_BRANDS],
    pub favorite_strengths: [f32; MAX_FAVORITE_BRANDS],
    pub favorite_count: u8,
    pub price_band: PriceBand,
    pub price_tolerance: f32,
    pub price_sensitivity: f32,
    /// Relative number of sessions (log-normal, median 1).
    pub activity: f32,
    pub age_band: u8,
    pub gender: u8,
    pub region: u8,
    /// How many of the dominant categories the user stated at onboarding (0–2).
    pub stated_categories: u8,
    pub stated_brand: bool,
}

impl UserSpec {
    pub fn favorites(&self) -> impl Iterator<Item = (u16, f32)> + '_ {
        let count = usize::from(self.favorite_count);
        self.favorite_brands[..count].iter().copied().zip(self.favorite_strengths[..count].iter().copied())
    }

    /// Probability that this shopper searches and reviews in Chinese.
    pub fn chinese_share(&self) -> f64 {
        REGIONS[usize::from(self.region)].2
    }

    /// Categories ordered by weight, heaviest first.
    pub fn categories_by_weight(&self) -> [usize; NUM_CATEGORIES] {
        let mut order: [usize; NUM_CATEGORIES] = std::array::from_fn(|i| i);
        order.sort_by(|&a, &b| self.category_weights[b].total_cmp(&self.category_weights[a]).then(a.cmp(&b)));
        order
    }

    /// The shopper's latent utility for an item, before noise: category taste + brand
    /// affinity + price fit + popularity. Roughly in [-3, 5]; funnel probabilities are
    /// increasing functions of it.
    pub fn utility(&self, catalog: &Catalog, item: u32) -> f64 {
        let spec: &ItemSpec = &catalog.items[item as usize];
        let category = catalog.category_of(item);
        let max_weight = f64::from(self.category_weights[usize::from(self.dominant_category)]);
        let taste = 2.5 * f64::from(self.category_weights[category]) / max_weight;
        let brand = self.favorites().find(|(b, _)| *b == spec.brand).map_or(0.0, |(_, s)| f64::from(s));
        let distance = (f64::from(spec.price_position) - self.price_band.centre()) / f64::from(self.price_tolerance);
        let price = (-0.5 * f64::from(self.price_sensitivity) * distance * distance).max(-3.0);
        taste + brand + price + 0.8 * catalog.popularity_score(item)
    }
}

/// Demographic nudges to the category prior (e.g. parents of young children buy toys).
fn demographic_factors(age_band: usize, gender: usize) -> [f64; NUM_CATEGORIES] {
    // Order: electronics, clothing, home, beauty, sports, books, toys, food.
    let by_age: [f64; NUM_CATEGORIES] = match age_band {
        0 => [1.3, 1.4, 0.6, 1.1, 1.1, 0.8, 0.5, 1.0],
        1 => [1.1, 1.1, 1.0, 1.1, 1.0, 1.0, 0.8, 1.0],
        2 => [1.0, 0.9, 1.4, 0.9, 1.0, 1.0, 2.5, 1.1],
        3 => [0.9, 0.9, 1.5, 0.9, 0.9, 1.3, 1.2, 1.3],
        _ => [0.7, 0.8, 1.3, 0.8, 0.7, 1.6, 1.0, 1.5],
    };
    let by_gender: [f64; NUM_CATEGORIES] = match gender {
        0 => [0.8, 1.3, 1.1, 2.5, 0.8, 1.1, 1.0, 1.0],
        1 => [1.5, 0.9, 0.9, 0.3, 1.4, 1.0, 1.0, 1.0],
        _ => [1.0; NUM_CATEGORIES],
    };
    std::array::from_fn(|c| CATEGORIES[c].prior * by_age[c] * by_gender[c])
}

/// Draw one shopper's latent state.
pub fn generate_user(rng: &mut ChaCha8Rng) -> UserSpec {
    let age_band = weighted_index(rng, AGE_BANDS.iter().map(|a| a.1));
    let gender = weighted_index(rng, GENDERS.iter().map(|g| g.1));
    let region = weighted_index(rng, REGIONS.iter().map(|r| r.1));
    let prior = demographic_factors(age_band, gender);

    // A sparse Dirichlet-like draw: 1–3 dominant categories get Gamma(1)-ish mass, the rest
    // a small floor so that exploration sessions still happen.
    let dominant_count = match rng.gen::<f64>() {
        x if x < 0.45 => 1,
        x if x < 0.80 => 2,
        _ => 3,
    };
    let mut raw = [0.0f64; NUM_CATEGORIES];
    for c in &mut raw {
        *c = rng.gen_range(0.005..0.03);
    }
    let mut chosen = [false; NUM_CATEGORIES];
    for _ in 0..dominant_count {
        let c = weighted_index(rng, (0..NUM_CATEGORIES).map(|c| if chosen[c] { 0.0 } else { prior[c] }));
        chosen[c] = true;
        raw[c] += 0.3 - (1.0 - rng.gen::<f64>()).ln();
    }
    let total: f64 = raw.iter().sum();
    let category_weights: [f32; NUM_CATEGORIES] = std::array::from_fn(|c| (raw[c] / total) as f32);
    let dominant_category = (0..NUM_CATEGORIES)
        .max_by(|&a, &b| category_weights[a].total_cmp(&category_weights[b]).then(b.cmp(&a)))
        .unwrap_or(0) as u8;

    let price_band = match rng.gen::<f64>() {
        x if x < 0.35 => PriceBand::Low,
        x if x < 0.80 => PriceBand::Mid,
        _ => PriceBand::High,
    };
    let band_sensitivity = match price_band {
        PriceBand::Low => 1.5,
        PriceBand::Mid => 1.0,
        PriceBand::High => 0.6,
    };
    let preferred_tier = match price_band {
        PriceBand::Low => BrandTier::Budget,
        PriceBand::Mid => BrandTier::Mid,
        PriceBand::High => BrandTier::Premium,
    };

    // Favourite brands come mostly from the categories the shopper likes, and fit the
    // shopper's price band more often than not.
    let favorite_count = match rng.gen::<f64>() {
        x if x < 0.4 => 1,
        x if x < 0.8 => 2,
        _ => 3,
    };
    let mut favorite_brands = [0u16; MAX_FAVORITE_BRANDS];
    let mut favorite_strengths = [0f32; MAX_FAVORITE_BRANDS];
    let mut count = 0;
    for _ in 0..favorite_count * 4 {
        if count == favorite_count {
            break;
        }
        // The first favourite sells in the dominant category; later ones mostly in another
        // dominant category, occasionally anywhere.
        let category = if count == 0 {
            usize::from(dominant_category)
        } else if rng.gen_bool(0.8) {
            weighted_index(
                rng,
                (0..NUM_CATEGORIES).map(|c| if chosen[c] { f64::from(category_weights[c]) } else { 0.0 }),
            )
        } else {
            rng.gen_range(0..NUM_CATEGORIES)
        };
        let brand = weighted_index(
            rng,
            BRANDS.iter().map(|b| match (b.category == category, b.tier == preferred_tier) {
                (false, _) => 0.0,
                (true, true) => 2.0,
                (true, false) => 1.0,
            }),
        ) as u16;
        if !favorite_brands[..count].contains(&brand) {
            favorite_brands[count] = brand;
            favorite_strengths[count] = rng.gen_range(0.6..1.6);
            count += 1;
        }
    }

    let stated_categories = match rng.gen::<f64>() {
        x if x < 0.25 => 1,
        x if x < 0.35 => 2.min(dominant_count as u8),
        _ => 0,
    };
    UserSpec {
        category_weights,
        dominant_category,
        favorite_brands,
        favorite_strengths,
        favorite_count: count as u8,
        price_band,
        price_tolerance: rng.gen_range(0.12..0.35),
        price_sensitivity: (band_sensitivity * log_normal(rng, 0.0, 0.4)) as f32,
        activity: log_normal(rng, 0.0, 1.0) as f32,
        age_band: age_band as u8,
        gender: gender as u8,
        region: region as u8,
        stated_categories,
        stated_brand: stated_categories > 0 && count > 0 && rng.gen_bool(0.5),
    }
}

/// The `User` record: demographics as attributes, onboarding preferences that agree with
/// the latent tastes.
pub fn render_user(index: u32, spec: &UserSpec) -> crate::Result<User> {
    let mut user = User::new(user_id(index)?);
    let mut attributes = BTreeMap::new();
    let mut put = |name: &str, value: &str| attributes.insert(name.to_string(), Value::String(value.to_string()));
    put("age_band", AGE_BANDS[usize::from(spec.age_band)].0);
    put("gender", GENDERS[usize::from(spec.gender)].0);
    put("region", REGIONS[usize::from(spec.region)].0);
    user.attributes = attributes;
    let order = spec.categories_by_weight();
    user.preferences = Preferences {
        categories: order[..usize::from(spec.stated_categories)]
            .iter()
            .map(|&c| CATEGORIES[c].name.en.to_string())
            .collect(),
        brands: if spec.stated_brand {
            spec.favorites()
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(b, _)| BRANDS[usize::from(b)].en.to_string())
                .into_iter()
                .collect()
        } else {
            Vec::new()
        },
    };
    Ok(user)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn tastes_are_sparse_normalised_and_stated_preferences_agree() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut dominant_counts = [0usize; NUM_CATEGORIES];
        for index in 0..2_000 {
            let spec = generate_user(&mut rng);
            let total: f32 = spec.category_weights.iter().sum();
            assert!((total - 1.0).abs() < 1e-4);
            let dominant = usize::from(spec.dominant_category);
            assert!(spec.category_weights[dominant] > 0.15, "{:?}", spec.category_weights);
            dominant_counts[dominant] += 1;
            assert!(spec.favorite_count >= 1);
            // The first favourite brand sells in the dominant category.
            let (brand, _) = spec.favorites().next().unwrap();
            assert_eq!(BRANDS[usize::from(brand)].category, dominant);
            assert!(spec.activity > 0.0 && spec.price_sensitivity > 0.0);
            let user = render_user(index, &spec).unwrap();
            if let Some(first) = user.preferences.categories.first() {
                assert_eq!(first, CATEGORIES[dominant].name.en);
            }
        }
        assert!(dominant_counts.iter().all(|&n| n > 50), "every category has fans: {dominant_counts:?}");
    }
}
