//! The generator's ground truth: the latent tastes and popularity that produced the events,
//! for benchmarks that measure how much of it a model learned. Written as versioned JSON
//! (`ground_truth.json`).

use std::collections::BTreeMap;
use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

use super::catalog::{popularity, Catalog, ZIPF_EXPONENT};
use super::social::HOMOPHILY;
use super::tastes::{PriceBand, UserSpec};
use super::vocab::{BRANDS, CATEGORIES};
use super::{item_id, user_id, GenConfig, EPOCH_MS, EVENT_WINDOW_MS};

/// Bump on any incompatible change to [`GroundTruth`]'s JSON.
pub const GROUND_TRUTH_FORMAT_VERSION: u32 = 1;

/// Everything latent about a generated shop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroundTruth {
    pub format_version: u32,
    pub config: GenConfig,
    /// Start of the event window (Unix ms) and its length.
    pub epoch_ms: i64,
    pub window_ms: i64,
    /// Item popularity is `(popularity_rank + 1)^-zipf_exponent`.
    pub zipf_exponent: f64,
    /// Share of follow edges drawn among users with the same dominant category.
    pub homophily: f64,
    /// Top-level category names, in the generator's order.
    pub categories: Vec<String>,
    pub users: Vec<UserTruth>,
    pub items: Vec<ItemTruth>,
}

/// One shopper's latent tastes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserTruth {
    pub id: String,
    /// Share of the shopper's interest per top-level category; sums to 1.
    pub category_weights: BTreeMap<String, f64>,
    pub dominant_category: String,
    pub favorite_brands: Vec<BrandAffinity>,
    pub price_band: PriceBand,
    /// Width of the comfortable price window, as a fraction of a product type's log range.
    pub price_tolerance: f64,
    pub price_sensitivity: f64,
    /// Relative session rate (median 1).
    pub activity: f64,
    /// Probability that the shopper searches and reviews in Chinese.
    pub chinese_share: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrandAffinity {
    pub brand: String,
    /// Utility bonus the shopper gives this brand's items.
    pub strength: f64,
}

/// One item's latent popularity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemTruth {
    pub id: String,
    /// Relative sampling weight: 1 for the most popular item.
    pub popularity: f64,
    /// 0 is the most popular item.
    pub popularity_rank: u32,
    pub category: String,
    /// Where the price sits in its product type's log price range (0 cheapest, 1 dearest).
    pub price_position: f64,
}

/// Six significant decimals: the latents are f32, and printing their f64 widening would
/// only add noise digits.
fn rounded(value: f64) -> f64 {
    (value * 1e6).round() / 1e6
}

impl GroundTruth {
    pub(super) fn build(config: GenConfig, catalog: &Catalog, users: &[UserSpec]) -> crate::Result<Self> {
        let users = users
            .iter()
            .enumerate()
            .map(|(index, user)| {
                Ok(UserTruth {
                    id: user_id(index as u32)?.into_string(),
                    category_weights: CATEGORIES
                        .iter()
                        .zip(user.category_weights)
                        .map(|(c, w)| (c.name.en.to_string(), rounded(f64::from(w))))
                        .collect(),
                    dominant_category: CATEGORIES[usize::from(user.dominant_category)].name.en.to_string(),
                    favorite_brands: user
                        .favorites()
                        .map(|(brand, strength)| BrandAffinity {
                            brand: BRANDS[usize::from(brand)].en.to_string(),
                            strength: rounded(f64::from(strength)),
                        })
                        .collect(),
                    price_band: user.price_band,
                    price_tolerance: rounded(f64::from(user.price_tolerance)),
                    price_sensitivity: rounded(f64::from(user.price_sensitivity)),
                    activity: rounded(f64::from(user.activity)),
                    chinese_share: user.chinese_share(),
                })
            })
            .collect::<crate::Result<Vec<_>>>()?;
        let items = catalog
            .items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                Ok(ItemTruth {
                    id: item_id(index as u32)?.into_string(),
                    popularity: (popularity(item.popularity_rank) * 1e12).round() / 1e12,
                    popularity_rank: item.popularity_rank,
                    category: catalog.product_type(index as u32).category().name.en.to_string(),
                    price_position: rounded(f64::from(item.price_position)),
                })
            })
            .collect::<crate::Result<Vec<_>>>()?;
        Ok(Self {
            format_version: GROUND_TRUTH_FORMAT_VERSION,
            config,
            epoch_ms: EPOCH_MS,
            window_ms: EVENT_WINDOW_MS,
            zipf_exponent: ZIPF_EXPONENT,
            homophily: HOMOPHILY,
            categories: CATEGORIES.iter().map(|c| c.name.en.to_string()).collect(),
            users,
            items,
        })
    }

    /// Write as JSON (the `ground_truth.json` file).
    pub fn write_json(&self, writer: impl Write) -> crate::Result<()> {
        serde_json::to_writer(writer, self).map_err(std::io::Error::from)?;
        Ok(())
    }

    /// Read JSON written by [`GroundTruth::write_json`], refusing other format versions.
    pub fn read_json(reader: impl Read, path: &std::path::Path) -> crate::Result<Self> {
        let value: serde_json::Value = serde_json::from_reader(reader)
            .map_err(|e| crate::Error::Corrupt { path: path.to_path_buf(), message: e.to_string() })?;
        let found = value.get("format_version").and_then(serde_json::Value::as_u64).unwrap_or(0);
        if found != u64::from(GROUND_TRUTH_FORMAT_VERSION) {
            return Err(crate::Error::FormatVersion {
                path: path.to_path_buf(),
                found: u32::try_from(found).unwrap_or(u32::MAX),
                expected: GROUND_TRUTH_FORMAT_VERSION,
            });
        }
        serde_json::from_value(value)
            .map_err(|e| crate::Error::Corrupt { path: path.to_path_buf(), message: e.to_string() })
    }
}
