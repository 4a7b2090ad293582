//! The fast path for events: a typed, borrowing deserialisation that avoids building a
//! `serde_json::Value` tree (the bulk of ingest cost: one map node and one allocation per
//! field).
//!
//! It only ever *accepts*: any problem at all — a wrong JSON type, an unknown field, a
//! failed rule — sends the input through [`super::parse_event`], so error codes, fields and
//! their order are defined in one place. A property test checks that both paths accept the
//! same inputs and build the same events.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::check_event_shape;
use super::fields::{
    timestamp_from_millis, timestamp_from_str, MAX_EVENT_ITEMS, MAX_LONG_TEXT_CHARS, MAX_SHORT_TEXT_CHARS,
};
use crate::ids::{EventId, ItemId, UserId};
use crate::model::{Event, EventType};

/// An id given as a string or an integer.
struct IdText<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for IdText<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl<'de> Visitor<'de> for IdVisitor {
            type Value = IdText<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an id string or integer")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(IdText(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(IdText(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(IdText(Cow::Owned(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(IdText(Cow::Owned(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(IdText(Cow::Owned(v.to_string())))
            }
        }
        deserializer.deserialize_any(IdVisitor)
    }
}

/// A timestamp given as Unix milliseconds or a string.
enum RawTimestamp<'a> {
    Millis(i64),
    Text(Cow<'a, str>),
}

impl<'de: 'a, 'a> Deserialize<'de> for RawTimestamp<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TsVisitor;
        impl<'de> Visitor<'de> for TsVisitor {
            type Value = RawTimestamp<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a timestamp")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(RawTimestamp::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawTimestamp::Text(Cow::Owned(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(RawTimestamp::Millis(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                i64::try_from(v).map(RawTimestamp::Millis).map_err(|_| E::custom("timestamp out of range"))
            }
        }
        deserializer.deserialize_any(TsVisitor)
    }
}

/// Deserialise a field so that "present with null" differs from "absent".
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<Cow<'de, str>>>, D::Error> {
    Option::<Cow<'de, str>>::deserialize(deserializer).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent<'a> {
    /// `None`: absent; `Some(None)`: `null`.
    #[serde(default, borrow, deserialize_with = "present")]
    kind: Option<Option<Cow<'a, str>>>,
    #[serde(default, borrow)]
    id: Option<IdText<'a>>,
    #[serde(rename = "type", borrow)]
    event_type: Cow<'a, str>,
    #[serde(borrow)]
    user: IdText<'a>,
    #[serde(default, borrow)]
    item: Option<IdText<'a>>,
    #[serde(default, borrow)]
    items: Option<Vec<IdText<'a>>>,
    #[serde(default)]
    value: Option<f64>,
    #[serde(default)]
    dwell_ms: Option<u64>,
    #[serde(default, borrow)]
    query: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    request_id: Option<Cow<'a, str>>,
    #[serde(default)]
    position: Option<u32>,
    #[serde(default)]
    propensity: Option<f64>,
    #[serde(default)]
    propensities: Option<Vec<f64>>,
    #[serde(default, borrow)]
    arm: Option<Cow<'a, str>>,
    #[serde(default)]
    quantity: Option<u32>,
    #[serde(default)]
    price: Option<f64>,
    #[serde(borrow)]
    timestamp: RawTimestamp<'a>,
}

fn short(text: Option<Cow<'_, str>>, max: usize) -> Option<Option<String>> {
    match text {
        None => Some(None),
        // Within `max` bytes is within `max` characters; a longer text takes the careful
        // path, which counts characters.
        Some(t) if t.len() <= max => Some(Some(t.into_owned())),
        Some(_) => None,
    }
}

/// Try the fast path on one JSON text. `Some(event)` only if the input is valid; `None`
/// means "use the careful path" (which then explains what is wrong). `record` allows the
/// JSONL `"kind": "event"` field.
pub fn try_parse_event(json: &str, record: bool) -> Option<Event> {
    let raw: RawEvent<'_> = serde_json::from_str(json).ok()?;
    match (&raw.kind, record) {
        (None, false) => {}
        (Some(Some(kind)), true) if kind == "event" => {}
        _ => return None,
    }
    let event_type: EventType = raw.event_type.parse().ok()?;
    let id = match raw.id {
        Some(id) => EventId::parse(id.0.into_owned(), "id").ok()?,
        None => EventId::generate(),
    };
    let user = UserId::parse(raw.user.0.into_owned(), "user").ok()?;
    let timestamp = match raw.timestamp {
        RawTimestamp::Millis(ms) => timestamp_from_millis(ms, "timestamp").ok()?,
        RawTimestamp::Text(text) => timestamp_from_str(&text, "timestamp").ok()?,
    };
    let item = match raw.item {
        Some(item) => Some(ItemId::parse(item.0.into_owned(), "item").ok()?),
        None => None,
    };
    let mut event = Event::new(id, event_type, user, item, timestamp);
    if let Some(items) = raw.items {
        if items.len() > MAX_EVENT_ITEMS {
            return None;
        }
        event.items =
            items.into_iter().map(|i| ItemId::parse(i.0.into_owned(), "items").ok()).collect::<Option<_>>()?;
    }
    if raw.value.is_some_and(|v| !v.is_finite()) {
        return None;
    }
    event.value = raw.value;
    event.dwell_ms = raw.dwell_ms;
    event.query = short(raw.query, MAX_SHORT_TEXT_CHARS)?;
    event.text = short(raw.text, MAX_LONG_TEXT_CHARS)?;
    event.request_id = short(raw.request_id, MAX_SHORT_TEXT_CHARS)?;
    event.position = raw.position;
    if raw.propensity.is_some_and(|p| !p.is_finite()) {
        return None;
    }
    event.propensity = raw.propensity;
    if let Some(propensities) = raw.propensities {
        if propensities.iter().any(|p| !p.is_finite()) {
            return None;
        }
        event.propensities = propensities;
    }
    event.arm = short(raw.arm, MAX_SHORT_TEXT_CHARS)?;
    event.quantity = raw.quantity;
    match raw.price {
        Some(p) if !p.is_finite() || p < 0.0 => return None,
        price => event.price = price,
    }
    check_event_shape(&event).ok()?;
    Some(event)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{json, Map, Value};

    use super::*;
    use crate::input::{parse_event, parse_record};
    use crate::model::Record;

    fn any_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(json!("u1")),
            Just(json!("i-9")),
            Just(json!("蓝牙耳机")),
            Just(json!("")),
            Just(json!("a\u{7}b")),
            Just(json!("NaN")),
            Just(json!("2026-01-02T03:04:05Z")),
            Just(json!("12345")),
            Just(json!("x".repeat(300))),
            Just(json!(0)),
            Just(json!(3)),
            Just(json!(-1)),
            Just(json!(1.5)),
            Just(json!(0.25)),
            Just(json!(1_767_323_045_000i64)),
            Just(json!(u64::MAX)),
            Just(json!(true)),
            Just(Value::Null),
            Just(json!(["i1", "i2"])),
            Just(json!(["i1", 7])),
            Just(json!([])),
            Just(json!({})),
        ]
    }

    fn event_type() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(json!("view")),
            Just(json!("click")),
            Just(json!("purchase")),
            Just(json!("search")),
            Just(json!("impression")),
            Just(json!("rating")),
            Just(json!("review")),
            Just(json!("buy")),
            Just(json!(4)),
        ]
    }

    const FIELDS: [&str; 18] = [
        "kind",
        "id",
        "user",
        "item",
        "items",
        "value",
        "dwell_ms",
        "query",
        "text",
        "request_id",
        "position",
        "propensity",
        "propensities",
        "arm",
        "quantity",
        "price",
        "timestamp",
        "usr",
    ];

    fn event_object() -> impl Strategy<Value = Value> {
        (
            proptest::option::weighted(0.95, event_type()),
            prop::collection::vec((0usize..FIELDS.len(), any_value()), 0..12),
            any::<bool>(),
        )
            .prop_map(|(event_type, fields, with_basics)| {
                let mut map = Map::new();
                if with_basics {
                    map.insert("user".into(), json!("u1"));
                    map.insert("item".into(), json!("i1"));
                    map.insert("timestamp".into(), json!(5));
                }
                for (field, value) in fields {
                    map.insert(FIELDS[field].into(), value);
                }
                if let Some(t) = event_type {
                    map.insert("type".into(), t);
                }
                Value::Object(map)
            })
    }

    fn without_generated_id(mut event: Event) -> Event {
        if event.id.as_str().starts_with("g-") {
            event.id = EventId::parse("generated", "id").unwrap();
        }
        event
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn fast_and_careful_paths_accept_the_same_events(value in event_object()) {
            let text = value.to_string();
            let careful = parse_event(&value).map(without_generated_id);
            let fast = try_parse_event(&text, false).map(without_generated_id);
            match (&careful, &fast) {
                (Ok(a), Some(b)) => prop_assert_eq!(a, b),
                (Err(_), None) => {}
                _ => prop_assert!(false, "paths disagree on {}: careful {:?}, fast {:?}", text, careful, fast),
            }
            // The JSONL record form, where `kind` is required.
            let careful = parse_record(&value).map(|r| match r { Record::Event(e) => Record::Event(without_generated_id(e)), other => other });
            let fast = try_parse_event(&text, true).map(|e| Record::Event(without_generated_id(e)));
            if let Some(fast) = fast {
                prop_assert_eq!(careful.ok(), Some(fast));
            }
        }
    }

    #[test]
    fn a_null_kind_is_still_an_unknown_field_of_an_http_event() {
        // Found by the property test: `"kind": null` must not slip through the fast path.
        let text = r#"{"item":"i1","kind":null,"timestamp":5,"type":"view","user":"u1"}"#;
        assert!(try_parse_event(text, false).is_none());
        assert!(try_parse_event(text, true).is_none());
        assert_eq!(crate::input::parse_event_json(text).unwrap_err().code, "unknown_field");
    }

    #[test]
    fn a_valid_event_takes_the_fast_path() {
        let text = r#"{"id":"e1","type":"search","user":"u","query":"蓝牙 \"耳机\"","items":["a",7],"timestamp":"2026-01-01T00:00:00Z"}"#;
        let event = try_parse_event(text, false).expect("fast path");
        assert_eq!(event.query.as_deref(), Some("蓝牙 \"耳机\""));
        assert_eq!(event.items.len(), 2);
        assert!(try_parse_event(text, true).is_none(), "records need kind");
    }
}
