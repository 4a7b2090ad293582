//! The synthetic catalog: compact item specs drawn from the vocabulary, their latent
//! popularity, the popularity-weighted pools sessions sample from, and rendering a spec into
//! a bilingual [`Item`].
//!
//! Items are held as [`ItemSpec`]s (about 40 bytes each, no strings); text is produced only
//! when an item is emitted.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use super::item_id;
use super::sample::{log_normal, weighted_index, AliasTable};
use super::vocab::{
    Brand, Category, Product, SizeKind, Subcategory, Term, APPAREL_SIZES, BRANDS, CATEGORIES, COLORS, SHOE_SIZES,
};
use super::EPOCH_MS;
use crate::model::{Item, Translation};

/// Marks an absent optional attribute in an [`ItemSpec`].
pub const NONE: u8 = u8::MAX;
/// Exponent of the Zipf law of item popularity: weight = (rank + 1)^-s.
pub const ZIPF_EXPONENT: f64 = 0.9;
/// Items are created up to this many days before the event window starts.
const MAX_ITEM_AGE_DAYS: u32 = 720;
const DAY_MS: i64 = 86_400_000;

/// A leaf of the category tree, flattened: product type index → its place in the tree.
#[derive(Debug, Clone, Copy)]
pub struct ProductType {
    pub category: usize,
    pub subcategory: usize,
    pub product: &'static Product,
}

impl ProductType {
    pub fn category(&self) -> &'static Category {
        &CATEGORIES[self.category]
    }

    pub fn subcategory(&self) -> &'static Subcategory {
        &CATEGORIES[self.category].subcategories[self.subcategory]
    }
}

/// Every product type in vocabulary order.
pub fn product_types() -> Vec<ProductType> {
    let mut out = Vec::new();
    for (category, c) in CATEGORIES.iter().enumerate() {
        for (subcategory, s) in c.subcategories.iter().enumerate() {
            out.extend(s.products.iter().map(|product| ProductType { category, subcategory, product }));
        }
    }
    out
}

/// One generated item, without strings. Optional attributes use [`NONE`].
#[derive(Debug, Clone, Copy)]
pub struct ItemSpec {
    pub product_type: u16,
    pub brand: u16,
    /// Index into [`COLORS`].
    pub color: u8,
    /// Index into the subcategory's `materials`.
    pub material: u8,
    /// Index into the category's `styles`.
    pub style: u8,
    /// Index into the product type's size scale.
    pub size: u8,
    pub selling_point: u8,
    pub description_variant: u8,
    pub available: bool,
    pub price_cents: u32,
    /// Where the price sits in its product type's range, on a log scale: 0 cheapest, 1 dearest.
    pub price_position: f32,
    /// 0 is the most popular item.
    pub popularity_rank: u32,
    pub created_at: i64,
}

/// A set of items with popularity-proportional O(1) sampling.
#[derive(Debug, Clone)]
pub struct ItemPool {
    items: Vec<u32>,
    table: AliasTable,
}

impl ItemPool {
    fn new(items: Vec<u32>, specs: &[ItemSpec]) -> Option<Self> {
        let weights: Vec<f64> = items.iter().map(|&i| popularity(specs[i as usize].popularity_rank)).collect();
        AliasTable::new(&weights).map(|table| Self { items, table })
    }

    pub fn sample(&self, rng: &mut ChaCha8Rng) -> u32 {
        self.items[self.table.sample(rng)]
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }
}

/// Latent popularity of the item at `rank`: 1 for the most popular, Zipf-decaying.
pub fn popularity(rank: u32) -> f64 {
    (f64::from(rank) + 1.0).powf(-ZIPF_EXPONENT)
}

/// The catalog: specs plus the pools sessions draw candidates from.
pub struct Catalog {
    pub product_types: Vec<ProductType>,
    pub items: Vec<ItemSpec>,
    pub by_category: Vec<Option<ItemPool>>,
    pub by_product_type: Vec<Option<ItemPool>>,
    pub all: ItemPool,
    /// ln(items + 1), to normalise popularity ranks into (0, 1].
    log_item_count: f64,
}

impl Catalog {
    pub fn generate(count: usize, rng: &mut ChaCha8Rng) -> Option<Self> {
        let product_types = product_types();
        let brands_by_category: Vec<Vec<u16>> = (0..CATEGORIES.len())
            .map(|c| (0..BRANDS.len() as u16).filter(|&b| BRANDS[usize::from(b)].category == c).collect())
            .collect();
        // Popularity ranks are a random permutation, independent of everything else, so
        // that a model has to learn them from behaviour.
        let mut ranks: Vec<u32> = (0..count as u32).collect();
        ranks.shuffle(rng);
        let items: Vec<ItemSpec> =
            ranks.iter().map(|&rank| generate_item(&product_types, &brands_by_category, rank, rng)).collect();

        let mut category_members = vec![Vec::new(); CATEGORIES.len()];
        let mut product_members = vec![Vec::new(); product_types.len()];
        for (index, item) in items.iter().enumerate() {
            let product_type = usize::from(item.product_type);
            category_members[product_types[product_type].category].push(index as u32);
            product_members[product_type].push(index as u32);
        }
        let by_category = category_members.into_iter().map(|m| ItemPool::new(m, &items)).collect();
        let by_product_type = product_members.into_iter().map(|m| ItemPool::new(m, &items)).collect();
        let all = ItemPool::new((0..count as u32).collect(), &items)?;
        Some(Self {
            product_types,
            items,
            by_category,
            by_product_type,
            all,
            log_item_count: (count as f64 + 1.0).ln(),
        })
    }

    pub fn product_type(&self, item: u32) -> &ProductType {
        &self.product_types[usize::from(self.items[item as usize].product_type)]
    }

    pub fn category_of(&self, item: u32) -> usize {
        self.product_type(item).category
    }

    /// Popularity on a log scale normalised into (0, 1]: 1 for the top item.
    pub fn popularity_score(&self, item: u32) -> f64 {
        1.0 - (f64::from(self.items[item as usize].popularity_rank) + 1.0).ln() / self.log_item_count
    }

    /// Render item `index` as a catalog [`Item`] with an English title and description and
    /// a Chinese translation.
    pub fn render(&self, index: u32) -> crate::Result<Item> {
        let spec = &self.items[index as usize];
        let product_type = self.product_type(index);
        let category = product_type.category();
        let subcategory = product_type.subcategory();
        let product = product_type.product;
        let brand: &Brand = &BRANDS[usize::from(spec.brand)];
        let style = category.styles.get(usize::from(spec.style));
        let color = COLORS.get(usize::from(spec.color)).map(|(term, _)| term);
        let material = subcategory.materials.get(usize::from(spec.material));
        let size = size_label(product.size, spec.size);
        let selling_point = &category.selling_points[usize::from(spec.selling_point) % category.selling_points.len()];

        let mut title = String::with_capacity(64);
        let mut title_zh = String::with_capacity(64);
        title.push_str(brand.en);
        title_zh.push_str(brand.zh_name());
        for term in [style, color, material].into_iter().flatten() {
            title.push(' ');
            title.push_str(term.en);
            title_zh.push(' ');
            title_zh.push_str(term.zh);
        }
        title.push(' ');
        title.push_str(product.name.en);
        title_zh.push(' ');
        title_zh.push_str(product.name.zh);

        let description =
            english_description(spec, brand, product, subcategory, style, color, material, size, selling_point);
        let description_zh = chinese_description(spec, brand, product, style, color, material, size, selling_point);

        let mut item = Item::new(item_id(index)?, title);
        item.description = Some(description);
        item.category =
            vec![category.name.en.to_string(), subcategory.name.en.to_string(), product.name.en.to_string()];
        item.brand = Some(brand.en.to_string());
        item.price = Some(f64::from(spec.price_cents) / 100.0);
        item.currency = Some("USD".to_string());
        let mut attributes = BTreeMap::new();
        let mut put = |name: &str, value: &str| attributes.insert(name.to_string(), Value::String(value.to_string()));
        if let Some(color) = color {
            put("color", color.en);
        }
        if let Some(material) = material {
            put("material", material.en);
        }
        if let Some(style) = style {
            put("style", style.en);
        }
        if let Some(size) = size {
            put("size", size);
        }
        item.attributes = attributes;
        item.tags = vec![product.name.en.to_lowercase(), subcategory.name.en.to_lowercase()];
        if let Some(style) = style {
            item.tags.push(style.en.to_lowercase());
        }
        if f64::from(spec.popularity_rank) < self.items.len() as f64 / 100.0 {
            item.tags.push("bestseller".to_string());
        }
        if spec.created_at > EPOCH_MS - 30 * DAY_MS {
            item.tags.push("new arrival".to_string());
        }
        item.available = spec.available;
        item.created_at = Some(spec.created_at);
        item.translations.insert("zh".to_string(), Translation { title: title_zh, description: Some(description_zh) });
        Ok(item)
    }
}

fn size_label(kind: SizeKind, index: u8) -> Option<&'static str> {
    match kind {
        SizeKind::None => None,
        SizeKind::Apparel => APPAREL_SIZES.get(usize::from(index)).copied(),
        SizeKind::Shoe => SHOE_SIZES.get(usize::from(index)).copied(),
    }
}

fn generate_item(
    product_types: &[ProductType],
    brands_by_category: &[Vec<u16>],
    popularity_rank: u32,
    rng: &mut ChaCha8Rng,
) -> ItemSpec {
    // Product types are drawn uniformly within a category, and categories in proportion to
    // their size, so a catalog of N items covers the vocabulary evenly.
    let product_type_index = rng.gen_range(0..product_types.len());
    let product_type = &product_types[product_type_index];
    let category = product_type.category();
    let subcategory = product_type.subcategory();
    let product = product_type.product;
    let brands = &brands_by_category[product_type.category];
    let brand = brands[rng.gen_range(0..brands.len())];
    let color = if subcategory.colored { weighted_index(rng, COLORS.iter().map(|c| c.1)) as u8 } else { NONE };
    let material =
        if subcategory.materials.is_empty() { NONE } else { rng.gen_range(0..subcategory.materials.len()) as u8 };
    let style = if rng.gen_bool(0.6) { rng.gen_range(0..category.styles.len()) as u8 } else { NONE };
    let size = match product.size {
        SizeKind::None => NONE,
        SizeKind::Apparel => rng.gen_range(0..APPAREL_SIZES.len()) as u8,
        SizeKind::Shoe => rng.gen_range(0..SHOE_SIZES.len()) as u8,
    };

    // Log-normal around the middle of the range (shifted by the brand's tier), clamped to
    // the range: most items are mid-priced, a few are bargains or luxuries.
    let (low, high) = (product.min_price.ln(), product.max_price.ln());
    let centre = (low + high) / 2.0 + BRANDS[usize::from(brand)].tier.price_factor().ln();
    let price = log_normal(rng, centre, (high - low) / 5.0).clamp(product.min_price, product.max_price);
    // Shops price at x.99 above $10 and to the cent below.
    let price_cents = if price >= 10.0 {
        // 349.99 rather than 350.99 at the top of a $350 range.
        let whole = price.floor() as u32;
        if f64::from(whole) + 0.99 <= product.max_price {
            whole * 100 + 99
        } else {
            whole * 100 - 1
        }
    } else {
        (price * 100.0).round() as u32
    };
    let price_position = (((f64::from(price_cents) / 100.0).ln() - low) / (high - low)).clamp(0.0, 1.0) as f32;

    // Newer items are a bit more common than old ones; a handful are brand new.
    let age_days = (f64::from(MAX_ITEM_AGE_DAYS) * rng.gen::<f64>().powi(2)) as i64;
    let created_at = EPOCH_MS - age_days * DAY_MS - rng.gen_range(0..DAY_MS);
    ItemSpec {
        product_type: product_type_index as u16,
        brand,
        color,
        material,
        style,
        size,
        selling_point: rng.gen_range(0..category.selling_points.len()) as u8,
        description_variant: rng.gen_range(0..2),
        available: rng.gen_bool(0.97),
        price_cents,
        price_position,
        popularity_rank,
        created_at: created_at.max(0),
    }
}

/// "A …" / "An …", or nothing before a plural product name ("Jeans", "Headphones").
fn article(phrase: &str) -> &'static str {
    if phrase.ends_with('s') && !phrase.ends_with("ss") {
        return "";
    }
    match phrase.chars().next().map(|c| c.to_ascii_lowercase()) {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "An ",
        _ => "A ",
    }
}

#[allow(clippy::too_many_arguments)]
fn english_description(
    spec: &ItemSpec,
    brand: &Brand,
    product: &Product,
    subcategory: &Subcategory,
    style: Option<&Term>,
    color: Option<&Term>,
    material: Option<&Term>,
    size: Option<&str>,
    selling_point: &Term,
) -> String {
    let mut out = String::with_capacity(160);
    let named = match style {
        Some(style) => format!("{} {}", style.en, product.name.en),
        None => product.name.en.to_string(),
    };
    if spec.description_variant == 0 {
        out.push_str(&format!("{}{named} by {}.", article(&named), brand.en));
    } else {
        out.push_str(&format!("Meet the {} {named}, part of our {} range.", brand.en, subcategory.name.en));
    }
    match (material, color) {
        (Some(m), Some(c)) => {
            out.push_str(&format!(" Made of {}, finished in {}.", m.en.to_lowercase(), c.en.to_lowercase()))
        }
        (Some(m), None) => out.push_str(&format!(" Made of {}.", m.en.to_lowercase())),
        (None, Some(c)) => out.push_str(&format!(" Available in {}.", c.en.to_lowercase())),
        (None, None) => {}
    }
    if let Some(size) = size {
        out.push_str(&format!(" Size {size}."));
    }
    out.push(' ');
    out.push_str(selling_point.en);
    out
}

#[allow(clippy::too_many_arguments)]
fn chinese_description(
    spec: &ItemSpec,
    brand: &Brand,
    product: &Product,
    style: Option<&Term>,
    color: Option<&Term>,
    material: Option<&Term>,
    size: Option<&str>,
    selling_point: &Term,
) -> String {
    let mut out = String::with_capacity(160);
    let style = style.map_or("", |s| s.zh);
    if spec.description_variant == 0 {
        out.push_str(&format!("{}出品的{style}{}。", brand.zh_name(), product.name.zh));
    } else {
        out.push_str(&format!("这款{style}{}来自{}。", product.name.zh, brand.zh_name()));
    }
    match (material, color) {
        (Some(m), Some(c)) => out.push_str(&format!("{}，{}材质。", c.zh, m.zh)),
        (Some(m), None) => out.push_str(&format!("采用{}材质。", m.zh)),
        (None, Some(c)) => out.push_str(&format!("颜色：{}。", c.zh)),
        (None, None) => {}
    }
    if let Some(size) = size {
        out.push_str(&format!("尺码：{size}。"));
    }
    out.push_str(selling_point.zh);
    out
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn articles_fit_the_product_name() {
        assert_eq!(article("Bookshelf"), "A ");
        assert_eq!(article("Insulated Bottle"), "An ");
        assert_eq!(article("Jeans"), "");
        assert_eq!(article("Portable Bluetooth Headphones"), "");
    }

    #[test]
    fn items_respect_their_product_type_and_pools_sample_by_popularity() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let catalog = Catalog::generate(3_000, &mut rng).unwrap();
        let mut ranks: Vec<u32> = catalog.items.iter().map(|i| i.popularity_rank).collect();
        ranks.sort_unstable();
        assert!(ranks.iter().enumerate().all(|(i, &r)| r == i as u32), "ranks are a permutation");
        for (index, item) in catalog.items.iter().enumerate() {
            let product = catalog.product_type(index as u32).product;
            let price = f64::from(item.price_cents) / 100.0;
            assert!(product.min_price - 0.01 <= price && price <= product.max_price, "{price} {product:?}");
            assert!((0.0..=1.0).contains(&item.price_position));
            assert!(item.created_at < EPOCH_MS);
        }
        // Each product type's pool holds only that type, and popular items come up more.
        let (type_index, pool) =
            catalog.by_product_type.iter().enumerate().find_map(|(t, p)| p.as_ref().map(|p| (t, p))).unwrap();
        let draws: Vec<u32> = (0..2_000).map(|_| pool.sample(&mut rng)).collect();
        assert!(draws.iter().all(|&i| usize::from(catalog.items[i as usize].product_type) == type_index));
        let top = *draws.iter().min_by_key(|&&i| catalog.items[i as usize].popularity_rank).unwrap();
        let top_share = draws.iter().filter(|&&i| i == top).count() as f64 / draws.len() as f64;
        assert!(top_share > 1.5 / pool.len() as f64, "top item share {top_share} of {} items", pool.len());
        // Rendering keeps the attributes consistent with the spec.
        let item = catalog.render(0).unwrap();
        assert_eq!(item.price, Some(f64::from(catalog.items[0].price_cents) / 100.0));
        assert!(item.description.as_deref().is_some_and(|d| d.contains(item.brand.as_deref().unwrap())));
    }
}
