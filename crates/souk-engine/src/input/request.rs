//! Request parameters shared by every page: the language a page is shown in and the price
//! range of its filters, each validated here once.

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
        match text.map(str::trim) {
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
    fn a_price_range_is_checked_once_for_every_filter() {
        assert_eq!(parse_price_range(Some(1.0), Some(2.0)), Ok((Some(1.0), Some(2.0))));
        assert_eq!(parse_price_range(None, None), Ok((None, None)));
        let code = |min, max| parse_price_range(min, max).map_err(|e| (e.code, e.field));
        assert_eq!(code(Some(-1.0), None), Err(("invalid_number", "min_price".to_string())));
        assert_eq!(code(None, Some(f64::NAN)), Err(("invalid_number", "max_price".to_string())));
        assert_eq!(code(Some(5.0), Some(2.0)), Err(("invalid_range", "min_price".to_string())));
    }
}
