//! Identifier newtypes and their validation.
//!
//! Ids are opaque UTF-8 strings chosen by the shop: non-empty, at most [`MAX_ID_BYTES`]
//! bytes, without control characters (they end up in URLs, logs and files).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;

/// Longest accepted id, in bytes.
pub const MAX_ID_BYTES: usize = 256;

/// Check an id and say precisely what is wrong with it.
pub fn validate_id(value: &str, field: &str) -> Result<(), ValidationError> {
    if value.is_empty() {
        return Err(ValidationError::new("empty_id", field, "expected a non-empty id, found \"\""));
    }
    if value.len() > MAX_ID_BYTES {
        return Err(ValidationError::new(
            "id_too_long",
            field,
            format!("expected at most {MAX_ID_BYTES} bytes, found {}", value.len()),
        ));
    }
    if let Some(position) = value.chars().position(char::is_control) {
        return Err(ValidationError::new(
            "invalid_id",
            field,
            format!("ids must not contain control characters (found one at character {position})"),
        ));
    }
    Ok(())
}

macro_rules! id_type {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validate and wrap; `field` names the input field in the error.
            pub fn parse(value: impl Into<String>, field: &str) -> Result<Self, ValidationError> {
                let value = value.into();
                validate_id(&value, field)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(ItemId, "Id of a catalog item.");
id_type!(UserId, "Id of a user (shopper).");
id_type!(EventId, "Id of an event; re-delivering an event with the same id stores it once.");

impl EventId {
    /// A fresh random id for an event that arrived without one (128 random bits).
    pub fn generate() -> Self {
        let bits: u128 = rand::random();
        Self(format!("g-{bits:032x}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_ids_and_rejects_bad_ones() {
        assert!(validate_id("sku-123", "id").is_ok());
        assert!(validate_id("蓝牙耳机-1", "id").is_ok());
        assert_eq!(validate_id("", "id").unwrap_err().code, "empty_id");
        assert_eq!(validate_id("a\u{0}b", "id").unwrap_err().code, "invalid_id");
        assert_eq!(validate_id("a\nb", "id").unwrap_err().code, "invalid_id");
        assert_eq!(validate_id(&"x".repeat(257), "id").unwrap_err().code, "id_too_long");
        assert!(validate_id(&"x".repeat(256), "id").is_ok());
    }

    #[test]
    fn generated_ids_are_distinct_and_valid() {
        let a = EventId::generate();
        let b = EventId::generate();
        assert_ne!(a, b);
        assert!(validate_id(a.as_str(), "id").is_ok());
    }
}
