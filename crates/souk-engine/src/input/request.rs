//! Request parameters shared by every page: the language a page is shown in and the catalog
//! filter (its price range among them), each validated here once.

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;

/// A price range of a request's filters (`min_price`, `max_price`): each bound a finite,
/// non-negative number, the lower not above the upper.
pub fn parse_price_range(min: Option<f64>, max: Option<f64>) -> Result<(Option<f64>, Option<f64>), ValidationError> {
    for (name, value) in [("min_price", min), ("max_price", max)] {
        if value.is_some_and(|v| !v.is_finite() || v < 0.0) {
            return Err(ValidationError::new("invalid_number", name, "expected a non-negative price"));
        }
    }
    if let (Some(low), Some(high)) = (min, max) {
        if low > high {
            return Err(ValidationError::new(
                "invalid_range",
                "min_price",
                format!("min_price {low} exceeds max_price {high}"),
            ));
        }
    }
    Ok((min, max))
}

/// Which catalog items a page may list — one type for recommendations, similar items,
/// trending and search; every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ItemFilter {
    /// A category path prefix, e.g. `["Electronics", "Audio"]` (empty: any).
    pub category: Vec<String>,
    /// Any of these brands (empty: any), compared without case.
    pub brands: Vec<String>,
    pub min_price: Option<f64>,
    pub max_price: Option<f64>,
    /// Leave out items marked unavailable (what shoppers see).
    pub available_only: bool,
    /// (name, value) pairs; pairs with the same name are alternatives, different names
    /// must all hold. Judged against the search index's item facts.
    pub attributes: Vec<(String, String)>,
}

/// A filter's parameters as a request gives them (query strings and JSON bodies alike).
#[derive(Debug, Clone, Default)]
pub struct FilterParams<'a> {
    /// A category path, levels separated by `>` (`Electronics > Audio`).
    pub category: Option<&'a str>,
    pub brands: Vec<String>,
    pub min_price: Option<f64>,
    pub max_price: Option<f64>,
    /// Include items marked unavailable (default false).
    pub include_unavailable: Option<bool>,
    pub attributes: Vec<(String, String)>,
}

impl ItemFilter {
    /// The filter of a request's parameters, validated (the price range, once for every
    /// surface); blank brands and attribute values are dropped.
    pub fn parse(params: FilterParams<'_>) -> Result<ItemFilter, ValidationError> {
        let (min_price, max_price) = parse_price_range(params.min_price, params.max_price)?;
        let nonblank = |s: &String| !s.trim().is_empty();
        Ok(ItemFilter {
            category: params.category.map(super::split_category_path).unwrap_or_default(),
            brands: params.brands.into_iter().filter(nonblank).map(|b| b.trim().to_string()).collect(),
            min_price,
            max_price,
            available_only: !params.include_unavailable.unwrap_or(false),
            attributes: params.attributes.into_iter().filter(|(n, v)| nonblank(n) && nonblank(v)).collect(),
        })
    }

    /// Only available items, nothing else asked.
    pub fn available() -> ItemFilter {
        ItemFilter { available_only: true, ..ItemFilter::default() }
    }
}

/// The language a page is shown in (`lang=`): English titles, or Chinese ones where the
/// catalog has them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    En,
    Zh,
}

impl Lang {
    /// `en` or `zh` (absent: `en`).
    pub fn parse(text: Option<&str>, field: &str) -> Result<Lang, ValidationError> {
        // Exactly as the document's pattern `^(en|zh)?$` states: no padding.
        match text {
            None | Some("") | Some("en") => Ok(Lang::En),
            Some("zh") => Ok(Lang::Zh),
            Some(other) => {
                Err(ValidationError::new("invalid_lang", field, format!("expected en or zh, found {other:?}")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_language_is_en_or_zh_as_written() {
        assert_eq!(Lang::parse(None, "lang").unwrap(), Lang::En);
        assert_eq!(Lang::parse(Some(""), "lang").unwrap(), Lang::En);
        assert_eq!(Lang::parse(Some("zh"), "lang").unwrap(), Lang::Zh);
        for bad in [" zh", "zh ", "ZH", "fr"] {
            assert_eq!(Lang::parse(Some(bad), "lang").unwrap_err().code, "invalid_lang", "{bad:?}");
        }
    }

    #[test]
    fn a_filter_is_parsed_once_with_its_price_range_checked() {
        let params = FilterParams {
            category: Some("Electronics > Audio"),
            brands: vec!["Sony".into(), " ".into()],
            min_price: Some(10.0),
            max_price: None,
            include_unavailable: None,
            attributes: vec![("color".into(), "red".into()), ("size".into(), "".into())],
        };
        let filter = ItemFilter::parse(params).unwrap();
        assert_eq!(filter.category, vec!["Electronics", "Audio"]);
        assert_eq!(filter.brands, vec!["Sony"]);
        assert_eq!((filter.min_price, filter.max_price), (Some(10.0), None));
        assert!(filter.available_only);
        assert_eq!(filter.attributes, vec![("color".to_string(), "red".to_string())]);
        let bad = FilterParams { min_price: Some(5.0), max_price: Some(1.0), ..FilterParams::default() };
        assert_eq!(ItemFilter::parse(bad).unwrap_err().code, "invalid_range");
        let all = FilterParams { include_unavailable: Some(true), ..FilterParams::default() };
        assert_eq!(ItemFilter::parse(all).unwrap(), ItemFilter::default());
    }

    #[test]
    fn a_price_range_is_checked_once_for_every_filter() {
        assert_eq!(parse_price_range(Some(1.0), Some(2.0)), Ok((Some(1.0), Some(2.0))));
        assert_eq!(parse_price_range(None, None), Ok((None, None)));
        let code = |min, max| parse_price_range(min, max).map_err(|e| (e.code, e.field));
        assert_eq!(code(Some(-1.0), None), Err(("invalid_number", "min_price".to_string())));
        assert_eq!(code(None, Some(f64::NAN)), Err(("invalid_number", "max_price".to_string())));
        assert_eq!(code(Some(5.0), Some(2.0)), Err(("invalid_range", "min_price".to_string())));
    }
}
