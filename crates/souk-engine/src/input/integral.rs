//! Serde adapters for the non-negative integer fields of typed request bodies (`n`, rule
//! positions, exploration slots), so that they take what JSON Schema's `integer` takes:
//! `12` and `12.0` alike. JSON has one number type and a client's JSON library may write
//! either; the event parser already reads integers this way ([`super::fields`]), and a body
//! read by serde must not be stricter than the document that describes it.
//!
//! Use with `#[serde(deserialize_with = "integral::one")]`, `integral::option` (with
//! `#[serde(default)]`) or `integral::list`.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// A non-negative integer written as an integer or as a float with no fractional part.
struct NonNegative(u64);

/// 2^64: every integral `f64` below it converts to `u64` exactly.
const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;

impl<'de> Deserialize<'de> for NonNegative {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NonNegativeVisitor;
        impl Visitor<'_> for NonNegativeVisitor {
            type Value = NonNegative;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative integer")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NonNegative, E> {
                Ok(NonNegative(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NonNegative, E> {
                u64::try_from(v).map(NonNegative).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<NonNegative, E> {
                if v.fract() == 0.0 && (0.0..TWO_POW_64).contains(&v) {
                    Ok(NonNegative(v as u64))
                } else {
                    Err(E::invalid_value(de::Unexpected::Float(v), &self))
                }
            }
        }
        deserializer.deserialize_any(NonNegativeVisitor)
    }
}

fn narrow<T: TryFrom<u64>, E: de::Error>(NonNegative(v): NonNegative) -> Result<T, E> {
    T::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &"an integer in range"))
}

/// One integer.
pub fn one<'de, D: Deserializer<'de>, T: TryFrom<u64>>(deserializer: D) -> Result<T, D::Error> {
    narrow(NonNegative::deserialize(deserializer)?)
}

/// An optional integer (`null` or absent: `None`; pair with `#[serde(default)]`).
pub fn option<'de, D: Deserializer<'de>, T: TryFrom<u64>>(deserializer: D) -> Result<Option<T>, D::Error> {
    Option::<NonNegative>::deserialize(deserializer)?.map(narrow).transpose()
}

/// A list of integers.
pub fn list<'de, D: Deserializer<'de>, T: TryFrom<u64>>(deserializer: D) -> Result<Vec<T>, D::Error> {
    Vec::<NonNegative>::deserialize(deserializer)?.into_iter().map(narrow).collect()
}

/// An optional list of integers (`null` or absent: `None`; pair with `#[serde(default)]`).
pub fn option_list<'de, D: Deserializer<'de>, T: TryFrom<u64>>(deserializer: D) -> Result<Option<Vec<T>>, D::Error> {
    Option::<Vec<NonNegative>>::deserialize(deserializer)?
        .map(|values| values.into_iter().map(narrow).collect())
        .transpose()
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Body {
        #[serde(deserialize_with = "super::one")]
        position: usize,
        #[serde(default, deserialize_with = "super::option")]
        n: Option<u32>,
        #[serde(default, deserialize_with = "super::list")]
        slots: Vec<usize>,
        #[serde(default, deserialize_with = "super::option_list")]
        more: Option<Vec<u8>>,
    }

    fn parse(text: &str) -> Result<Body, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn integral_floats_are_integers() {
        let body = parse(r#"{"position": 3.0, "n": 12.0, "slots": [1, 2.0, 1e2], "more": [7.0]}"#).unwrap();
        assert_eq!(body, Body { position: 3, n: Some(12), slots: vec![1, 2, 100], more: Some(vec![7]) });
        let body = parse(r#"{"position": 3, "n": null, "more": null}"#).unwrap();
        assert_eq!(body, Body { position: 3, n: None, slots: vec![], more: None });
    }

    #[test]
    fn fractions_negatives_and_overflow_are_refused() {
        for text in [
            r#"{"position": 1.5}"#,
            r#"{"position": -1}"#,
            r#"{"position": -1.0}"#,
            r#"{"position": 1e300}"#,
            r#"{"position": "3"}"#,
            r#"{"position": 1, "n": 4294967296}"#,
            r#"{"position": 1, "more": [256.0]}"#,
            r#"{"position": 1, "slots": [0.5]}"#,
        ] {
            let error = parse(text).unwrap_err();
            assert!(error.contains("invalid"), "{text}: {error}");
        }
    }
}
