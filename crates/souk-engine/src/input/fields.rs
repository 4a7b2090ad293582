//! Reading the fields of one JSON record: the field reader that reports leftovers as
//! unknown, the checks of single values (type, text length, number, id, timestamp) and the
//! limits they enforce.

use std::collections::BTreeMap;

use chrono::DateTime;
use serde_json::{Map, Value};

use crate::error::ValidationError;
use crate::ids::{ItemId, UserId};
use crate::model::TimestampMs;

/// Longest accepted free text (titles, queries, request ids), in characters (Unicode
/// scalar values, as JSON Schema's `maxLength` counts them).
pub const MAX_SHORT_TEXT_CHARS: usize = 4 * 1024;
/// Longest accepted long text (descriptions, review text), in characters.
pub const MAX_LONG_TEXT_CHARS: usize = 64 * 1024;
/// Most items one impression or search event may list.
pub const MAX_EVENT_ITEMS: usize = 1_000;
/// Largest accepted user-supplied vector.
pub const MAX_VECTOR_DIMS: usize = 4_096;
/// Latest accepted timestamp: 9999-12-31T23:59:59.999Z.
pub const MAX_TIMESTAMP_MS: i64 = 253_402_300_799_999;

pub(super) type VResult<T> = Result<T, ValidationError>;

fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(super) fn wrong_type(field: &str, expected: &str, found: &Value) -> ValidationError {
    ValidationError::new("invalid_type", field, format!("expected {expected}, found {}", json_type_name(found)))
}

/// Reads the fields of one JSON object, remembering which were consumed so that leftovers
/// can be reported as unknown.
pub(super) struct Fields<'a> {
    map: &'a Map<String, Value>,
    known: &'static [&'static str],
}

impl<'a> Fields<'a> {
    pub(super) fn new(value: &'a Value, what: &str, known: &'static [&'static str]) -> VResult<Self> {
        match value {
            Value::Object(map) => {
                for key in map.keys() {
                    if !known.contains(&key.as_str()) {
                        return Err(ValidationError::new(
                            "unknown_field",
                            key.as_str(),
                            format!("unknown field of {what}; expected one of: {}", known.join(", ")),
                        ));
                    }
                }
                Ok(Self { map, known })
            }
            other => Err(wrong_type("", &format!("{what} as a JSON object"), other)),
        }
    }

    /// The value of a field, treating `null` as absent.
    pub(super) fn get(&self, name: &'static str) -> Option<&'a Value> {
        debug_assert!(self.known.contains(&name), "field {name} not declared");
        self.map.get(name).filter(|v| !v.is_null())
    }

    pub(super) fn required(&self, name: &'static str) -> VResult<&'a Value> {
        self.get(name)
            .ok_or_else(|| ValidationError::new("missing_field", name, format!("missing required field `{name}`")))
    }

    pub(super) fn opt_str(&self, name: &'static str, max_chars: usize) -> VResult<Option<String>> {
        self.get(name).map(|v| text(v, name, max_chars)).transpose()
    }

    pub(super) fn req_str(&self, name: &'static str, max_chars: usize) -> VResult<String> {
        text(self.required(name)?, name, max_chars)
    }

    pub(super) fn opt_f64(&self, name: &'static str) -> VResult<Option<f64>> {
        self.get(name).map(|v| number(v, name)).transpose()
    }

    pub(super) fn opt_u64(&self, name: &'static str) -> VResult<Option<u64>> {
        self.get(name)
            .map(|v| match v {
                Value::Number(n) => integral(n).and_then(|i| u64::try_from(i).ok()).ok_or_else(|| {
                    ValidationError::new("invalid_number", name, format!("expected a non-negative integer, found {n}"))
                }),
                other => Err(wrong_type(name, "a non-negative integer", other)),
            })
            .transpose()
    }

    pub(super) fn opt_u32(&self, name: &'static str) -> VResult<Option<u32>> {
        match self.opt_u64(name)? {
            None => Ok(None),
            Some(n) => u32::try_from(n).map(Some).map_err(|_| {
                ValidationError::new(
                    "invalid_number",
                    name,
                    format!("expected an integer at most {}, found {n}", u32::MAX),
                )
            }),
        }
    }

    pub(super) fn opt_string_list(&self, name: &'static str) -> VResult<Vec<String>> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(values)) => {
                values.iter().enumerate().map(|(i, v)| text(v, &format!("{name}[{i}]"), MAX_SHORT_TEXT_CHARS)).collect()
            }
            Some(other) => Err(wrong_type(name, "an array of strings", other)),
        }
    }

    pub(super) fn opt_attributes(&self, name: &'static str) -> VResult<BTreeMap<String, Value>> {
        match self.get(name) {
            None => Ok(BTreeMap::new()),
            Some(Value::Object(map)) => {
                let mut out = BTreeMap::new();
                for (key, value) in map {
                    let field = format!("{name}.{key}");
                    if key.is_empty() || key.chars().any(char::is_control) {
                        return Err(ValidationError::new(
                            "invalid_attribute",
                            field,
                            "attribute names must be non-empty and free of control characters",
                        ));
                    }
                    check_attribute_value(value, &field)?;
                    out.insert(key.clone(), value.clone());
                }
                Ok(out)
            }
            Some(other) => Err(wrong_type(name, "an object of attributes", other)),
        }
    }
}

fn check_attribute_value(value: &Value, field: &str) -> VResult<()> {
    match value {
        Value::String(s) if s.len() > MAX_SHORT_TEXT_CHARS && s.chars().count() > MAX_SHORT_TEXT_CHARS => {
            Err(ValidationError::new(
                "text_too_long",
                field,
                format!("expected at most {MAX_SHORT_TEXT_CHARS} characters, found {}", s.chars().count()),
            ))
        }
        Value::String(_) | Value::Number(_) | Value::Bool(_) => Ok(()),
        Value::Array(values) => values.iter().enumerate().try_for_each(|(i, v)| match v {
            Value::String(_) | Value::Number(_) | Value::Bool(_) => Ok(()),
            other => Err(wrong_type(&format!("{field}[{i}]"), "a string, number or boolean", other)),
        }),
        other => Err(wrong_type(field, "a string, number, boolean or array of them", other)),
    }
}

fn text(value: &Value, field: &str, max_chars: usize) -> VResult<String> {
    match value {
        // A string is never longer in characters than in bytes: count only long ones.
        Value::String(s) if s.len() > max_chars && s.chars().count() > max_chars => Err(ValidationError::new(
            "text_too_long",
            field,
            format!("expected at most {max_chars} characters, found {}", s.chars().count()),
        )),
        Value::String(s) => Ok(s.clone()),
        other => Err(wrong_type(field, "a string", other)),
    }
}

pub(super) fn number(value: &Value, field: &str) -> VResult<f64> {
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(x) if x.is_finite() => Ok(x),
            _ => Err(ValidationError::new("invalid_number", field, format!("expected a finite number, found {n}"))),
        },
        Value::String(s) if s.trim().parse::<f64>().is_ok_and(|x| !x.is_finite()) => {
            Err(ValidationError::new("invalid_number", field, format!("expected a finite number, found {s:?}")))
        }
        other => Err(wrong_type(field, "a number", other)),
    }
}

/// The value of a number with no fractional part, as JSON Schema's `integer` counts them:
/// `3` and `3.0` alike (JSON has one number type, and a client's JSON library may write
/// either). `None` for a fraction, or beyond the range of `i128`.
pub(super) fn integral(n: &serde_json::Number) -> Option<i128> {
    if let Some(i) = n.as_i64() {
        return Some(i.into());
    }
    if let Some(u) = n.as_u64() {
        return Some(u.into());
    }
    let x = n.as_f64()?;
    // 2^127: every integral `f64` below it in magnitude converts exactly.
    (x.fract() == 0.0 && x.abs() < 1.7014118346046923e38).then_some(x as i128)
}

pub(super) fn non_negative(value: Option<f64>, field: &str) -> VResult<Option<f64>> {
    match value {
        Some(x) if x < 0.0 => {
            Err(ValidationError::new("invalid_number", field, format!("expected a non-negative number, found {x}")))
        }
        other => Ok(other),
    }
}

pub(super) fn id_value(value: &Value, field: &str) -> VResult<String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        // Datasets often use numeric ids; accept integers (from `i64::MIN` to `u64::MAX`) and
        // keep their decimal form. One written as a float (`7.0`, `1e3`) is taken only up to
        // 2^53 in magnitude, where a float still holds every integer: beyond, the text sent
        // (say one below `i64::MIN`) may have been rounded onto another id.
        Value::Number(n) => match integral(n) {
            Some(i)
                if (i128::from(i64::MIN)..=i128::from(u64::MAX)).contains(&i)
                    && (n.is_i64() || n.is_u64() || i.unsigned_abs() <= 1 << 53) =>
            {
                Ok(i.to_string())
            }
            _ => Err(wrong_type(field, "an id string or an integer", value)),
        },
        other => Err(wrong_type(field, "an id string", other)),
    }
}

pub(super) fn item_id(value: &Value, field: &str) -> VResult<ItemId> {
    ItemId::parse(id_value(value, field)?, field)
}

pub(super) fn user_id(value: &Value, field: &str) -> VResult<UserId> {
    UserId::parse(id_value(value, field)?, field)
}

fn invalid_timestamp(field: &str, found: String) -> ValidationError {
    ValidationError::new(
        "invalid_timestamp",
        field,
        format!("expected an RFC 3339 date-time or Unix milliseconds, found {found}"),
    )
}

/// Check that Unix milliseconds lie in 1970..=9999.
pub(super) fn timestamp_from_millis(ms: i64, field: &str) -> VResult<TimestampMs> {
    if !(0..=MAX_TIMESTAMP_MS).contains(&ms) {
        return Err(invalid_timestamp(field, format!("{ms} (outside 1970..=9999)")));
    }
    Ok(ms)
}

/// Parse a timestamp string: RFC 3339, or Unix milliseconds as digits.
pub(super) fn timestamp_from_str(s: &str, field: &str) -> VResult<TimestampMs> {
    let trimmed = s.trim();
    let ms = if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        trimmed.parse::<i64>().map_err(|_| invalid_timestamp(field, format!("{s:?}")))?
    } else {
        DateTime::parse_from_rfc3339(trimmed)
            .map_err(|_| invalid_timestamp(field, format!("{s:?}")))?
            .timestamp_millis()
    };
    timestamp_from_millis(ms, field)
}

/// Parse a timestamp: an RFC 3339 string or Unix milliseconds (an integer, or a string of
/// digits).
pub fn parse_timestamp(value: &Value, field: &str) -> VResult<TimestampMs> {
    match value {
        Value::Number(n) => timestamp_from_millis(
            integral(n).and_then(|i| i64::try_from(i).ok()).ok_or_else(|| invalid_timestamp(field, n.to_string()))?,
            field,
        ),
        Value::String(s) => timestamp_from_str(s, field),
        other => Err(wrong_type(field, "an RFC 3339 string or Unix milliseconds", other)),
    }
}
