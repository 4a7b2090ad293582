//! Turning external JSON records (HTTP bodies, JSONL import lines) into validated domain
//! values, with a stable error code and the exact field path for every problem.
//!
//! This module is the only place that decides what a valid item, user, event or follow
//! looks like. It never touches storage. Unknown fields are refused (`unknown_field`), so a
//! misspelt field is an error rather than silently lost data.

use std::collections::BTreeMap;

use serde_json::Value;

mod fast;
mod fields;
pub mod integral;
mod request;

use self::fields::{id_value, item_id, non_negative, number, user_id, wrong_type, Fields, VResult};
pub use self::fields::{
    parse_timestamp, MAX_EVENT_ITEMS, MAX_LONG_TEXT_CHARS, MAX_SHORT_TEXT_CHARS, MAX_TIMESTAMP_MS, MAX_VECTOR_DIMS,
};
pub use request::{parse_price_range, FilterParams, ItemFilter, Lang};

use crate::error::ValidationError;
use crate::ids::EventId;
use crate::model::{Event, EventType, Follow, FollowKind, Item, Preferences, Record, Translation, User};

fn invalid_json(error: &serde_json::Error) -> ValidationError {
    ValidationError::new("invalid_json", "", format!("malformed JSON at column {}: {error}", error.column()))
}

/// Parse one event from JSON text: the fast path when the event is valid, the careful
/// path (with its precise errors) otherwise.
pub fn parse_event_json(json: &str) -> VResult<Event> {
    if let Some(event) = fast::try_parse_event(json, false) {
        return Ok(event);
    }
    let value: Value = serde_json::from_str(json).map_err(|e| invalid_json(&e))?;
    parse_event(&value)
}

/// Parse one line of Souk's JSONL format (see [`parse_record`]) from JSON text, events
/// through the fast path.
pub fn parse_record_json(json: &str) -> VResult<Record> {
    if let Some(event) = fast::try_parse_event(json, true) {
        return Ok(Record::Event(event));
    }
    let value: Value = serde_json::from_str(json).map_err(|e| invalid_json(&e))?;
    parse_record(&value)
}

pub const EVENT_FIELDS: &[&str] = &[
    "id",
    "type",
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
];

/// Parse one event. An event without an `id` gets a generated one.
pub fn parse_event(value: &Value) -> VResult<Event> {
    parse_event_with(value, EVENT_FIELDS)
}

fn parse_event_with(value: &Value, known: &'static [&'static str]) -> VResult<Event> {
    let f = Fields::new(value, "an event", known)?;
    let event_type = match f.required("type")? {
        Value::String(s) => s.parse::<EventType>().map_err(|()| {
            ValidationError::new(
                "invalid_event_type",
                "type",
                format!(
                    "unknown event type {s:?}; expected one of: {}",
                    EventType::ALL.map(EventType::as_str).join(", ")
                ),
            )
        })?,
        other => return Err(wrong_type("type", "an event type string", other)),
    };
    let id = match f.get("id") {
        Some(v) => EventId::parse(id_value(v, "id")?, "id")?,
        None => EventId::generate(),
    };
    let user = user_id(f.required("user")?, "user")?;
    let timestamp = parse_timestamp(f.required("timestamp")?, "timestamp")?;
    let item = f.get("item").map(|v| item_id(v, "item")).transpose()?;
    let items = match f.get("items") {
        None => Vec::new(),
        Some(Value::Array(values)) => {
            if values.len() > MAX_EVENT_ITEMS {
                // A field's limit (400), not a batch's size (413 `too_many_items`).
                return Err(ValidationError::new(
                    "invalid_value",
                    "items",
                    format!("expected at most {MAX_EVENT_ITEMS} items, found {}", values.len()),
                ));
            }
            values.iter().enumerate().map(|(i, v)| item_id(v, &format!("items[{i}]"))).collect::<VResult<Vec<_>>>()?
        }
        Some(other) => return Err(wrong_type("items", "an array of item ids", other)),
    };
    let mut event = Event::new(id, event_type, user, item, timestamp);
    event.items = items;
    event.value = f.opt_f64("value")?;
    event.dwell_ms = f.opt_u64("dwell_ms")?;
    event.query = f.opt_str("query", MAX_SHORT_TEXT_CHARS)?;
    event.text = f.opt_str("text", MAX_LONG_TEXT_CHARS)?;
    event.request_id = f.opt_str("request_id", MAX_SHORT_TEXT_CHARS)?;
    event.position = f.opt_u32("position")?;
    event.propensity = f.opt_f64("propensity")?;
    event.propensities = match f.get("propensities") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(values)) => values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_f64()
                    .filter(|p| p.is_finite())
                    .ok_or_else(|| wrong_type(&format!("propensities[{i}]"), "a probability", v))
            })
            .collect::<VResult<Vec<_>>>()?,
        Some(other) => return Err(wrong_type("propensities", "an array of probabilities", other)),
    };
    event.arm = f.opt_str("arm", MAX_SHORT_TEXT_CHARS)?;
    event.quantity = f.opt_u32("quantity")?;
    event.price = non_negative(f.opt_f64("price")?, "price")?;
    check_event_shape(&event)?;
    Ok(event)
}

/// The per-type rules: which fields each event type needs.
fn check_event_shape(event: &Event) -> VResult<()> {
    let missing = |field: &'static str, why: &str| {
        Err(ValidationError::new("missing_field", field, format!("missing required field `{field}` ({why})")))
    };
    if event.event_type.needs_item() && event.item.is_none() {
        return missing("item", &format!("a {} event is about one item", event.event_type));
    }
    match event.event_type {
        EventType::Impression if event.items.is_empty() && event.item.is_none() => {
            return missing("items", "an impression lists the items shown");
        }
        EventType::Search if event.query.as_deref().is_none_or(|q| q.trim().is_empty()) => {
            return missing("query", "a search event carries its query");
        }
        EventType::Review if event.text.as_deref().is_none_or(|t| t.trim().is_empty()) => {
            return missing("text", "a review event carries its text");
        }
        EventType::Rating if event.value.is_none() => {
            return missing("value", "a rating event carries its value");
        }
        _ => {}
    }
    if let Some(p) = event.propensity {
        if !(p > 0.0 && p <= 1.0) {
            return Err(ValidationError::new(
                "invalid_number",
                "propensity",
                format!("expected a probability in (0, 1], found {p}"),
            ));
        }
    }
    if !event.propensities.is_empty() && event.propensities.len() != event.items.len() {
        return Err(ValidationError::new(
            "invalid_value",
            "propensities",
            format!(
                "expected one propensity per shown item ({}), found {}",
                event.items.len(),
                event.propensities.len()
            ),
        ));
    }
    if let Some((i, p)) = event.propensities.iter().enumerate().find(|(_, p)| !(**p > 0.0 && **p <= 1.0)) {
        return Err(ValidationError::new(
            "invalid_number",
            format!("propensities[{i}]"),
            format!("expected a probability in (0, 1], found {p}"),
        ));
    }
    if event.quantity == Some(0) {
        return Err(ValidationError::new("invalid_number", "quantity", "expected a quantity of at least 1, found 0"));
    }
    Ok(())
}

pub const ITEM_FIELDS: &[&str] = &[
    "id",
    "title",
    "description",
    "category",
    "brand",
    "price",
    "currency",
    "attributes",
    "tags",
    "available",
    "created_at",
    "translations",
    "vectors",
    "image",
];

/// Longest accepted currency, in characters (a code such as `EUR`, or a symbol).
pub const MAX_CURRENCY_CHARS: usize = 16;

/// Longest accepted picture URL.
const MAX_IMAGE_URL_BYTES: usize = 2048;

/// A picture's address: `http(s)://…` or a path on the shop's own site (`/…`), without white
/// space or control characters (a page puts it in an `src` attribute as it is).
fn image_url(url: String, field: &str) -> VResult<String> {
    let scheme_ok =
        url.starts_with("https://") || url.starts_with("http://") || (url.starts_with('/') && !url.starts_with("//"));
    if !scheme_ok || url.chars().any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '<' || c == '>') {
        return Err(ValidationError::new(
            "invalid_value",
            field,
            "expected an http(s):// URL or a path starting with / (no spaces, quotes or angle brackets)",
        ));
    }
    Ok(url)
}

/// Parse one catalog item.
pub fn parse_item(value: &Value) -> VResult<Item> {
    parse_item_with(value, ITEM_FIELDS)
}

fn parse_item_with(value: &Value, known: &'static [&'static str]) -> VResult<Item> {
    let f = Fields::new(value, "an item", known)?;
    let id = item_id(f.required("id")?, "id")?;
    let title = f.req_str("title", MAX_SHORT_TEXT_CHARS)?;
    if title.trim().is_empty() {
        return Err(ValidationError::new("empty_text", "title", "expected a non-empty title"));
    }
    let mut item = Item::new(id, title);
    item.description = f.opt_str("description", MAX_LONG_TEXT_CHARS)?;
    item.category = match f.get("category") {
        None => Vec::new(),
        Some(Value::String(path)) => split_category_path(path),
        Some(Value::Array(_)) => f.opt_string_list("category")?,
        Some(other) => return Err(wrong_type("category", "a category path string or an array of levels", other)),
    };
    if item.category.iter().any(|level| level.trim().is_empty()) {
        return Err(ValidationError::new("invalid_category", "category", "category levels must be non-empty"));
    }
    item.brand = f.opt_str("brand", MAX_SHORT_TEXT_CHARS)?;
    item.price = non_negative(f.opt_f64("price")?, "price")?;
    item.currency = f.opt_str("currency", MAX_SHORT_TEXT_CHARS)?;
    if item.currency.as_ref().is_some_and(|c| c.chars().count() > MAX_CURRENCY_CHARS) {
        return Err(ValidationError::new(
            "text_too_long",
            "currency",
            format!("expected a currency of at most {MAX_CURRENCY_CHARS} characters"),
        ));
    }
    item.attributes = f.opt_attributes("attributes")?;
    item.tags = f.opt_string_list("tags")?;
    item.available = match f.get("available") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(wrong_type("available", "a boolean", other)),
    };
    item.created_at = f.get("created_at").map(|v| parse_timestamp(v, "created_at")).transpose()?;
    item.image =
        f.opt_str("image", MAX_IMAGE_URL_BYTES)?.map(|url| image_url(url.trim().to_string(), "image")).transpose()?;
    item.translations = match f.get("translations") {
        None => BTreeMap::new(),
        Some(Value::Object(map)) => {
            let mut out = BTreeMap::new();
            for (lang, v) in map {
                let field = format!("translations.{lang}");
                let t = Fields::new(v, "a translation", &["title", "description"]).map_err(|e| e.within(&field))?;
                let translation = Translation {
                    title: t.req_str("title", MAX_SHORT_TEXT_CHARS).map_err(|e| e.within(&field))?,
                    description: t.opt_str("description", MAX_LONG_TEXT_CHARS).map_err(|e| e.within(&field))?,
                };
                out.insert(lang.clone(), translation);
            }
            out
        }
        Some(other) => return Err(wrong_type("translations", "an object keyed by language", other)),
    };
    item.vectors = match f.get("vectors") {
        None => BTreeMap::new(),
        Some(Value::Object(map)) => {
            let mut out = BTreeMap::new();
            for (name, v) in map {
                let field = format!("vectors.{name}");
                out.insert(name.clone(), parse_vector(v, &field)?);
            }
            out
        }
        Some(other) => return Err(wrong_type("vectors", "an object of named vectors", other)),
    };
    Ok(item)
}

fn parse_vector(value: &Value, field: &str) -> VResult<Vec<f32>> {
    let Value::Array(values) = value else {
        return Err(wrong_type(field, "an array of numbers", value));
    };
    if values.is_empty() || values.len() > MAX_VECTOR_DIMS {
        return Err(ValidationError::new(
            "invalid_vector",
            field,
            format!("expected 1..={MAX_VECTOR_DIMS} dimensions, found {}", values.len()),
        ));
    }
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let x = number(v, &format!("{field}[{i}]"))?;
            f32_value(x).ok_or_else(|| {
                ValidationError::new("invalid_number", format!("{field}[{i}]"), format!("{x} is out of f32 range"))
            })
        })
        .collect()
}

/// A number stored as `f32`: `None` beyond `f32::MAX` in magnitude (even where narrowing
/// would round it down to `f32::MAX`), so that the range a document states is the range
/// taken.
pub fn f32_value(x: f64) -> Option<f32> {
    (x.abs() <= f64::from(f32::MAX)).then_some(x as f32)
}

/// Split "Electronics > Audio > Headphones" into its levels.
pub fn split_category_path(path: &str) -> Vec<String> {
    path.split('>').map(|level| level.trim().to_string()).filter(|l| !l.is_empty()).collect()
}

pub const USER_FIELDS: &[&str] = &["id", "attributes", "preferences"];

/// Parse one user.
pub fn parse_user(value: &Value) -> VResult<User> {
    parse_user_with(value, USER_FIELDS)
}

fn parse_user_with(value: &Value, known: &'static [&'static str]) -> VResult<User> {
    let f = Fields::new(value, "a user", known)?;
    let mut user = User::new(user_id(f.required("id")?, "id")?);
    user.attributes = f.opt_attributes("attributes")?;
    if let Some(p) = f.get("preferences") {
        let pf = Fields::new(p, "preferences", &["categories", "brands"]).map_err(|e| e.within("preferences"))?;
        user.preferences = Preferences {
            categories: pf.opt_string_list("categories").map_err(|e| e.within("preferences"))?,
            brands: pf.opt_string_list("brands").map_err(|e| e.within("preferences"))?,
        };
    }
    Ok(user)
}

pub const FOLLOW_FIELDS: &[&str] = &["user", "other", "kind", "created_at"];

fn parse_follow_fields(f: &Fields<'_>, kind_field: Option<&'static str>) -> VResult<Follow> {
    let user = user_id(f.required("user")?, "user")?;
    let other = user_id(f.required("other")?, "other")?;
    if user == other {
        return Err(ValidationError::new("self_follow", "other", "a user cannot follow themselves"));
    }
    let kind = match kind_field.and_then(|name| f.get(name)) {
        None => FollowKind::Follow,
        Some(Value::String(s)) => s.parse().map_err(|()| {
            ValidationError::new(
                "invalid_follow_kind",
                kind_field.unwrap_or("kind"),
                format!("expected follow, friend or trust, found {s:?}"),
            )
        })?,
        Some(other) => return Err(wrong_type(kind_field.unwrap_or("kind"), "a string", other)),
    };
    let created_at = f.get("created_at").map(|v| parse_timestamp(v, "created_at")).transpose()?;
    Ok(Follow { user, other, kind, created_at })
}

/// Parse one follow edge (`{"user","other","kind"?,"created_at"?}`).
pub fn parse_follow(value: &Value) -> VResult<Follow> {
    let f = Fields::new(value, "a follow", FOLLOW_FIELDS)?;
    parse_follow_fields(&f, Some("kind"))
}

const JSONL_EVENT_FIELDS: &[&str] = &[
    "kind",
    "id",
    "type",
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
];
const JSONL_ITEM_FIELDS: &[&str] = &[
    "kind",
    "id",
    "title",
    "description",
    "category",
    "brand",
    "price",
    "currency",
    "attributes",
    "tags",
    "available",
    "created_at",
    "translations",
    "vectors",
    "image",
];
const JSONL_USER_FIELDS: &[&str] = &["kind", "id", "attributes", "preferences"];
const JSONL_FOLLOW_FIELDS: &[&str] = &["kind", "user", "other", "follow_kind", "created_at"];

/// Parse one line of Souk's own JSONL format: an object with `"kind"` of `item`, `user`,
/// `event` or `follow` and that record's fields (a follow's edge kind is `follow_kind`).
pub fn parse_record(value: &Value) -> VResult<Record> {
    let kind = match value {
        Value::Object(map) => match map.get("kind") {
            Some(Value::String(kind)) => kind.as_str(),
            Some(other) => return Err(wrong_type("kind", "a string", other)),
            None => {
                return Err(ValidationError::new(
                    "missing_field",
                    "kind",
                    "missing required field `kind` (item, user, event or follow)",
                ))
            }
        },
        other => return Err(wrong_type("", "a record as a JSON object", other)),
    };
    match kind {
        "item" => parse_item_with(value, JSONL_ITEM_FIELDS).map(Record::Item),
        "user" => parse_user_with(value, JSONL_USER_FIELDS).map(Record::User),
        "event" => parse_event_with(value, JSONL_EVENT_FIELDS).map(Record::Event),
        "follow" => {
            let f = Fields::new(value, "a follow", JSONL_FOLLOW_FIELDS)?;
            parse_follow_fields(&f, Some("follow_kind")).map(Record::Follow)
        }
        other => Err(ValidationError::new(
            "invalid_record_kind",
            "kind",
            format!("expected item, user, event or follow, found {other:?}"),
        )),
    }
}

/// Write a record in the JSONL format [`parse_record`] reads.
pub fn record_to_json(record: &Record) -> Value {
    // Serialising these types cannot fail: every map key is a string.
    let to_value = |r: Result<Value, serde_json::Error>| r.unwrap_or(Value::Null);
    let (kind, mut value) = match record {
        Record::Item(item) => ("item", to_value(serde_json::to_value(item))),
        Record::User(user) => ("user", to_value(serde_json::to_value(user))),
        Record::Event(event) => ("event", to_value(serde_json::to_value(event))),
        Record::Follow(follow) => {
            let mut v = serde_json::json!({
                "user": follow.user, "other": follow.other, "follow_kind": follow.kind.as_str()
            });
            if let Some(at) = follow.created_at {
                v["created_at"] = at.into();
            }
            ("follow", v)
        }
    };
    if let Value::Object(map) = &mut value {
        map.insert("kind".to_string(), Value::String(kind.to_string()));
    }
    value
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parses_a_full_event() {
        let e = parse_event(&json!({
            "id": "e1", "type": "purchase", "user": "u1", "item": "i1", "quantity": 2,
            "price": 9.5, "timestamp": "2026-01-02T03:04:05Z", "request_id": "r", "position": 3
        }))
        .unwrap();
        assert_eq!(e.event_type, EventType::Purchase);
        assert_eq!(e.timestamp, 1_767_323_045_000);
        assert_eq!(e.quantity, Some(2));
        assert_eq!(e.position, Some(3));
    }

    #[test]
    fn text_limits_count_characters_as_the_document_does() {
        let item = |title: String| parse_item(&json!({"id": "i1", "title": title}));
        assert!(item("耳机".repeat(MAX_SHORT_TEXT_CHARS / 2)).is_ok(), "4,096 characters of 3 bytes each");
        let error = item("耳".repeat(MAX_SHORT_TEXT_CHARS + 1)).unwrap_err();
        assert_eq!((error.code, error.field.as_str()), ("text_too_long", "title"));
        let review = |text: String| {
            parse_event(&json!({"type": "review", "user": "u", "item": "i", "text": text, "timestamp": 1}))
        };
        assert!(review("好".repeat(MAX_LONG_TEXT_CHARS)).is_ok());
        assert_eq!(review("好".repeat(MAX_LONG_TEXT_CHARS + 1)).unwrap_err().code, "text_too_long");
        let attribute =
            |value: String| parse_item(&json!({"id": "i1", "title": "t", "attributes": {"material": value}}));
        assert!(attribute("棉".repeat(MAX_SHORT_TEXT_CHARS)).is_ok());
        assert_eq!(attribute("棉".repeat(MAX_SHORT_TEXT_CHARS + 1)).unwrap_err().code, "text_too_long");
    }

    #[test]
    fn integers_written_as_integral_floats_are_integers() {
        // JSON Schema's `integer` (and many JSON writers) take `1.7e12` and `3.0` as integers.
        let e = parse_event(&json!({
            "type": "purchase", "user": 7.0, "item": 1e3, "quantity": 2.0, "dwell_ms": 1.5e4,
            "position": 0.0, "timestamp": 2_429_999_358.0
        }))
        .unwrap();
        assert_eq!((e.user.as_str(), e.item.as_ref().map(|i| i.as_str())), ("7", Some("1000")));
        assert_eq!((e.quantity, e.dwell_ms, e.position, e.timestamp), (Some(2), Some(15_000), Some(0), 2_429_999_358));
        // Written as integers, the ends of the range keep their decimal form.
        for id in [i64::MIN.to_string(), u64::MAX.to_string(), "-9007199254740993".to_string()] {
            let text = format!(r#"{{"type": "view", "user": {id}, "item": 1, "timestamp": 1}}"#);
            let e = parse_event(&serde_json::from_str(&text).unwrap()).unwrap();
            assert_eq!(e.user.as_str(), id);
        }
        for (field, bad, code) in [
            ("timestamp", json!(1.5), "invalid_timestamp"),
            ("quantity", json!(2.5), "invalid_number"),
            ("dwell_ms", json!(-1.0), "invalid_number"),
            ("position", json!(4_294_967_296.0), "invalid_number"),
            ("user", json!(1.5), "invalid_type"),
            ("user", json!(1e20), "invalid_type"),
            // One below i64::MIN, which reads as the float -2^63: refused, not taken as i64::MIN.
            ("user", serde_json::from_str("-9223372036854775809").unwrap(), "invalid_type"),
            ("item", json!(9_007_199_254_740_994.0), "invalid_type"),
        ] {
            let mut event = json!({"type": "purchase", "user": "u1", "item": "i1", "quantity": 1, "timestamp": 1});
            event[field] = bad.clone();
            let err = parse_event(&event).unwrap_err();
            assert_eq!((err.code, err.field.as_str()), (code, field), "{field}: {bad}");
        }
    }

    #[test]
    fn an_event_lists_at_most_the_items_a_field_takes() {
        let items: Vec<String> = (0..=MAX_EVENT_ITEMS).map(|i| format!("i{i}")).collect();
        let err =
            parse_event(&json!({"type": "impression", "user": "u1", "items": items, "timestamp": 1})).unwrap_err();
        assert_eq!((err.code, err.field.as_str()), ("invalid_value", "items"));
        let fits = &items[..MAX_EVENT_ITEMS];
        assert!(parse_event(&json!({"type": "impression", "user": "u1", "items": fits, "timestamp": 1})).is_ok());
    }

    #[test]
    fn an_impression_carries_one_propensity_per_shown_item() {
        let impression = |propensities: Value| {
            json!({"type": "impression", "user": "u1", "items": ["a", "b"], "timestamp": 1,
                   "propensities": propensities})
        };
        let e = parse_event(&impression(json!([0.9, 0.05]))).unwrap();
        assert_eq!(e.propensities, vec![0.9, 0.05]);
        let fast = fast::try_parse_event(&impression(json!([0.9, 0.05])).to_string(), false).unwrap();
        assert_eq!(fast.propensities, vec![0.9, 0.05]);
        for (bad, code, field) in [
            (json!([0.9]), "invalid_value", "propensities"),
            (json!([0.9, 0.0]), "invalid_number", "propensities[1]"),
            (json!([1.5, 0.5]), "invalid_number", "propensities[0]"),
            (json!([0.5, "x"]), "invalid_type", "propensities[1]"),
            (json!(0.5), "invalid_type", "propensities"),
        ] {
            let err = parse_event(&impression(bad.clone())).unwrap_err();
            assert_eq!((err.code, err.field.as_str()), (code, field), "{bad}");
            assert!(fast::try_parse_event(&impression(bad).to_string(), false).is_none());
        }
        assert!(parse_event(&impression(Value::Null)).unwrap().propensities.is_empty());
    }

    #[test]
    fn an_item_image_is_a_web_url_or_a_local_path() {
        let item = |image: &str| parse_item(&json!({"id": "i1", "title": "Lamp", "image": image}));
        assert_eq!(
            item(" https://cdn.example/lamp.jpg ").unwrap().image.as_deref(),
            Some("https://cdn.example/lamp.jpg")
        );
        assert_eq!(item("/img/lamp.png").unwrap().image.as_deref(), Some("/img/lamp.png"));
        for bad in ["javascript:alert(1)", "//evil.example/x.png", "lamp.png", "https://a b"] {
            let error = item(bad).unwrap_err();
            assert_eq!((error.code, error.field.as_str()), ("invalid_value", "image"), "{bad}");
        }
        let record = parse_record(&json!({"kind": "item", "id": "i2", "title": "Desk", "image": "/d.png"})).unwrap();
        let Record::Item(desk) = record else { panic!("an item") };
        assert_eq!(desk.image.as_deref(), Some("/d.png"));
        assert_eq!(parse_item(&json!({"id": "i3", "title": "Chair"})).unwrap().image, None);
    }

    #[test]
    fn timestamps_accept_rfc3339_and_millis() {
        assert_eq!(parse_timestamp(&json!(1_000), "t").unwrap(), 1_000);
        assert_eq!(parse_timestamp(&json!("1000"), "t").unwrap(), 1_000);
        assert_eq!(parse_timestamp(&json!("1970-01-01T00:00:01+00:00"), "t").unwrap(), 1_000);
        assert_eq!(parse_timestamp(&json!("yesterday"), "t").unwrap_err().code, "invalid_timestamp");
        assert_eq!(parse_timestamp(&json!(-5), "t").unwrap_err().code, "invalid_timestamp");
        assert_eq!(parse_timestamp(&json!(1.5), "t").unwrap_err().code, "invalid_timestamp");
    }

    #[test]
    fn events_need_what_their_type_needs() {
        let check = |v: Value, code: &str, field: &str| {
            let err = parse_event(&v).unwrap_err();
            assert_eq!((err.code, err.field.as_str()), (code, field), "{v}");
        };
        check(json!({"type":"view","user":"u","timestamp":1}), "missing_field", "item");
        check(json!({"type":"search","user":"u","timestamp":1}), "missing_field", "query");
        check(json!({"type":"review","user":"u","item":"i","timestamp":1}), "missing_field", "text");
        check(json!({"type":"rating","user":"u","item":"i","timestamp":1}), "missing_field", "value");
        check(json!({"type":"impression","user":"u","timestamp":1}), "missing_field", "items");
        check(json!({"type":"buy","user":"u","item":"i","timestamp":1}), "invalid_event_type", "type");
        check(json!({"type":"view","user":"u","item":"i","timestamp":1,"usr":1}), "unknown_field", "usr");
        check(json!({"type":"view","user":"u","item":"i","timestamp":1,"items":[1, null]}), "invalid_type", "items[1]");
    }

    #[test]
    fn items_validate_prices_and_categories() {
        let item = parse_item(&json!({"id":"i","title":"Phone","category":"A > B","price":3})).unwrap();
        assert_eq!(item.category, vec!["A", "B"]);
        let err = parse_item(&json!({"id":"i","title":"Phone","price":-1})).unwrap_err();
        assert_eq!((err.code, err.field.as_str()), ("invalid_number", "price"));
        let err = parse_item(&json!({"id":"i","title":"Phone","price":"NaN"})).unwrap_err();
        assert_eq!((err.code, err.field.as_str()), ("invalid_number", "price"));
        let err = parse_item(&json!({"id":"i","title":"P","translations":{"zh":{}}})).unwrap_err();
        assert_eq!(err.field, "translations.zh.title");
    }

    #[test]
    fn an_items_picture_is_an_http_url_or_a_site_path() {
        for ok in ["https://cdn.example/p/1.jpg", "http://x.example/a.png?w=200", "/images/1.webp"] {
            let item = parse_item(&json!({"id":"i","title":"P","image":ok})).unwrap();
            assert_eq!(item.image.as_deref(), Some(ok));
        }
        for bad in ["javascript:alert(1)", "//evil.example/x.png", "https://x/a b.png", "https://x/\"a", "img.png", ""]
        {
            let err = parse_item(&json!({"id":"i","title":"P","image":bad})).unwrap_err();
            assert_eq!((err.code, err.field.as_str()), ("invalid_value", "image"), "{bad}");
        }
        let err = parse_item(&json!({"id":"i","title":"P","image":7})).unwrap_err();
        assert_eq!(err.field, "image");
    }

    #[test]
    fn records_round_trip_through_jsonl() {
        let records = [
            json!({"kind":"item","id":"i1","title":"Cup","translations":{"zh":{"title":"杯子"}}}),
            json!({"kind":"user","id":"u1","preferences":{"brands":["Acme"]}}),
            json!({"kind":"event","id":"e","type":"view","user":"u1","item":"i1","timestamp":5}),
            json!({"kind":"follow","user":"u1","other":"u2","follow_kind":"trust"}),
        ];
        for value in records {
            let record = parse_record(&value).unwrap();
            let again = parse_record(&record_to_json(&record)).unwrap();
            assert_eq!(record, again);
        }
    }
}
