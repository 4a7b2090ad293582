//! Identifier newtypes and their validation.
//!
//! Ids are opaque UTF-8 strings chosen by the shop: non-empty, at most [`MAX_ID_CHARS`]
//! characters, without control characters (they end up in URLs, logs and files).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;

/// Longest accepted id, in characters (Unicode scalar values, as JSON Schema's
/// `maxLength` counts them: at most four times as many bytes).
pub const MAX_ID_CHARS: usize = 256;

/// Check an id and say precisely what is wrong with it.
pub fn validate_id(value: &str, field: &str) -> Result<(), ValidationError> {
    if value.is_empty() {
        return Err(ValidationError::new("empty_id", field, "expected a non-empty id, found \"\""));
    }
    // Never longer in characters than in bytes: count only long ones.
    if value.len() > MAX_ID_CHARS && value.chars().count() > MAX_ID_CHARS {
        return Err(ValidationError::new(
            "id_too_long",
            field,
            format!("expected at most {MAX_ID_CHARS} characters, found {}", value.chars().count()),
        ));
    }
    if let Some(position) = value.chars().position(char::is_control) {
        return Err(ValidationError::new(
            "invalid_id",
            field,
            format!("ids must not contain control characters (found one at character {position})"),
        ));
    }
    if let Some(position) = value.chars().position(is_bidi_control) {
        return Err(ValidationError::new(
            "invalid_id",
            field,
            format!(
                "ids must not contain bidirectional embedding, override or isolate characters (found one at character {position})"
            ),
        ));
    }
    if value == "." || value == ".." {
        return Err(ValidationError::new("invalid_id", field, format!("{value:?} is not an id")));
    }
    if value.chars().all(is_invisible) {
        return Err(ValidationError::new(
            "invalid_id",
            field,
            "expected an id with at least one visible character, found only spaces or invisible characters",
        ));
    }
    Ok(())
}

/// Bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069): they
/// make an id display as another one.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters that print nothing: white space, the format characters that only steer
/// shaping or direction (zero-width space and joiners, direction marks, word joiner,
/// invisible operators, byte-order mark, soft hyphen) and variation selectors.
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2060}'..='\u{2064}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{E0100}'..='\u{E01EF}'
        )
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
        // Characters, not bytes: 256 three-byte characters are an id, 257 are not.
        assert!(validate_id(&"货".repeat(256), "id").is_ok());
        let error = validate_id(&"货".repeat(257), "id").unwrap_err();
        assert_eq!((error.code, error.message.as_str()), ("id_too_long", "expected at most 256 characters, found 257"));
    }

    #[test]
    fn dots_invisible_ids_and_bidi_controls_are_refused() {
        for bad in
            [".", "..", " ", "\u{3000}", "\u{200B}", "\u{200E}\u{200F}", "\u{FEFF}\u{2060}", "\u{00AD}", "a\u{202E}b"]
        {
            assert_eq!(validate_id(bad, "id").map_err(|e| e.code), Err("invalid_id"), "{bad:?}");
        }
        // Visible text with marks or joiners inside stays valid, as do dotted names.
        for good in ["...", ".hidden", "a.b", "שלום\u{200F}", "👩\u{200D}💻", "a b", "x\u{FE0F}"] {
            assert!(validate_id(good, "id").is_ok(), "{good:?}");
        }
    }

    #[test]
    fn generated_ids_are_distinct_and_valid() {
        let a = EventId::generate();
        let b = EventId::generate();
        assert_ne!(a, b);
        assert!(validate_id(a.as_str(), "id").is_ok());
    }
}
