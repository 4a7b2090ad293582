//! Shopper-written text: search queries built from what the shopper is looking for, and
//! review texts whose sentiment follows the rating, in English or Chinese.
//!
//! Sessions keep a compact [`QuerySpec`] / template number; the text is produced only when
//! the event is emitted.

use super::catalog::{Catalog, ItemSpec, NONE};
use super::vocab::{Product, BRANDS, COLORS};

/// What a search is restricted to, besides the product type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryConstraint {
    None,
    /// Index into `COLORS`.
    Color(u8),
    /// Index into `BRANDS`.
    Brand(u16),
    /// Index into the product type's subcategory `materials`.
    Material(u8),
}

impl QueryConstraint {
    /// Whether an item satisfies the constraint (a search engine would rank it first).
    pub fn matches(self, item: &ItemSpec) -> bool {
        match self {
            QueryConstraint::None => true,
            QueryConstraint::Color(color) => item.color == color,
            QueryConstraint::Brand(brand) => item.brand == brand,
            QueryConstraint::Material(material) => item.material == material,
        }
    }

    /// A constraint taken from an item the shopper has in mind: `choice` in [0, 1) picks
    /// which attribute the shopper types.
    pub fn from_item(item: &ItemSpec, choice: f64) -> Self {
        match choice {
            x if x < 0.25 && item.color != NONE => QueryConstraint::Color(item.color),
            x if (0.25..0.45).contains(&x) => QueryConstraint::Brand(item.brand),
            x if (0.45..0.60).contains(&x) && item.material != NONE => QueryConstraint::Material(item.material),
            _ => QueryConstraint::None,
        }
    }
}

/// A search query before rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuerySpec {
    pub product_type: u16,
    pub constraint: QueryConstraint,
    pub chinese: bool,
    /// Wording variant for unconstrained queries: plain, "best …", or "cheap …".
    pub variant: u8,
}

/// The product name as a shopper types it in English: lower case, but acronyms ("RC")
/// kept.
pub fn lower_product_name(product: &Product) -> String {
    let mut out = String::with_capacity(product.name.en.len());
    for (index, word) in product.name.en.split(' ').enumerate() {
        if index > 0 {
            out.push(' ');
        }
        if word.len() > 1 && word.chars().all(|c| c.is_ascii_uppercase()) {
            out.push_str(word);
        } else {
            out.push_str(&word.to_lowercase());
        }
    }
    out
}

pub fn render_query(catalog: &Catalog, query: &QuerySpec) -> String {
    let product_type = &catalog.product_types[usize::from(query.product_type)];
    let product = product_type.product;
    let material = |m: u8| product_type.subcategory().materials.get(usize::from(m));
    let color = |c: u8| COLORS.get(usize::from(c)).map(|c| c.0);
    if query.chinese {
        let name = product.name.zh;
        match query.constraint {
            QueryConstraint::Color(c) => format!("{}{name}", color(c).map_or("", |c| c.zh)),
            QueryConstraint::Material(m) => format!("{}{name}", material(m).map_or("", |m| m.zh)),
            QueryConstraint::Brand(b) => match BRANDS.get(usize::from(b)) {
                Some(brand) => match brand.zh {
                    Some(zh) => format!("{zh}{name}"),
                    None => format!("{} {name}", brand.en),
                },
                None => name.to_string(),
            },
            QueryConstraint::None => match query.variant {
                1 => format!("{name}推荐"),
                2 => format!("平价{name}"),
                _ => name.to_string(),
            },
        }
    } else {
        let name = lower_product_name(product);
        match query.constraint {
            QueryConstraint::Color(c) => {
                format!("{} {name}", color(c).map_or(String::new(), |c| c.en.to_lowercase()))
            }
            QueryConstraint::Material(m) => {
                format!("{} {name}", material(m).map_or(String::new(), |m| m.en.to_lowercase()))
            }
            QueryConstraint::Brand(b) => match BRANDS.get(usize::from(b)) {
                Some(brand) => format!("{} {name}", brand.en.to_lowercase()),
                None => name,
            },
            QueryConstraint::None => match query.variant {
                1 => format!("best {name}"),
                2 => format!("cheap {name}"),
                _ => name,
            },
        }
        .trim()
        .to_string()
    }
}

// Review templates by sentiment; `{p}` stands for the product name.
const REVIEWS_EN_POSITIVE: &[&str] = &[
    "Great {p}, exactly as described. Would buy again.",
    "Really happy with this {p}. The quality is excellent for the price.",
    "Arrived quickly and the {p} is even better than I expected.",
    "Love it. Solid build and it looks great.",
];
const REVIEWS_EN_NEUTRAL: &[&str] = &[
    "It's okay. The {p} does the job but nothing special.",
    "Decent for the price, though the quality could be better.",
    "An average {p}. Some things I like, some I don't.",
];
const REVIEWS_EN_NEGATIVE: &[&str] = &[
    "Disappointed. The {p} did not match the description.",
    "Poor quality, not worth the money. Returning it.",
    "Broke after a week. Would not recommend this {p}.",
];
const REVIEWS_ZH_POSITIVE: &[&str] = &[
    "{p}很好，和描述一致，会回购。",
    "质量非常好，性价比很高，推荐购买！",
    "物流很快，{p}比预期的还要好。",
    "很喜欢，做工精细，颜值也高。",
];
const REVIEWS_ZH_NEUTRAL: &[&str] =
    &["还行吧，这款{p}中规中矩。", "价格还可以，质量一般。", "整体一般，有优点也有不足。"];
const REVIEWS_ZH_NEGATIVE: &[&str] =
    &["很失望，{p}和描述不符。", "质量太差，不值这个价，已申请退货。", "用了一周就坏了，不推荐这款{p}。"];

/// Review text for a rating of 1–5; `template` picks among the wordings.
pub fn render_review(product: &Product, rating: u8, chinese: bool, template: u8) -> String {
    let templates = match (chinese, rating) {
        (false, 4..) => REVIEWS_EN_POSITIVE,
        (false, 3) => REVIEWS_EN_NEUTRAL,
        (false, _) => REVIEWS_EN_NEGATIVE,
        (true, 4..) => REVIEWS_ZH_POSITIVE,
        (true, 3) => REVIEWS_ZH_NEUTRAL,
        (true, _) => REVIEWS_ZH_NEGATIVE,
    };
    let template = templates[usize::from(template) % templates.len()];
    if chinese {
        template.replace("{p}", product.name.zh)
    } else {
        template.replace("{p}", &lower_product_name(product))
    }
}

#[cfg(test)]
mod tests {
    use super::super::vocab::CATEGORIES;
    use super::*;

    #[test]
    fn product_names_are_lowered_but_acronyms_kept() {
        let find = |en: &str| {
            CATEGORIES
                .iter()
                .flat_map(|c| c.subcategories)
                .flat_map(|s| s.products)
                .find(|p| p.name.en == en)
                .copied()
                .unwrap()
        };
        assert_eq!(lower_product_name(&find("RC Car")), "RC car");
        assert_eq!(lower_product_name(&find("T-Shirt")), "t-shirt");
        assert_eq!(lower_product_name(&find("Bluetooth Headphones")), "bluetooth headphones");
    }

    #[test]
    fn reviews_follow_the_rating_and_language() {
        let product = CATEGORIES[0].subcategories[0].products[0];
        assert!(render_review(&product, 5, false, 0).contains("bluetooth headphones"));
        assert!(render_review(&product, 1, false, 0).starts_with("Disappointed"));
        assert!(render_review(&product, 5, true, 0).contains("蓝牙耳机"));
        assert!(render_review(&product, 2, true, 1).contains("质量太差"));
        for rating in 1..=5 {
            for template in 0..8 {
                assert!(!render_review(&product, rating, template % 2 == 0, template).contains("{p}"));
            }
        }
    }
}
