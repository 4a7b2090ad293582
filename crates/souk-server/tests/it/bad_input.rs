//! Every kind of bad input gets a 4xx with a stable code and the offending field, and
//! leaves the store unchanged.

use axum::http::StatusCode;
use serde_json::{json, Value};
use souk_server::ServerConfig;

use crate::TestServer;

struct Case {
    name: &'static str,
    method: &'static str,
    uri: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: StatusCode,
    code: &'static str,
    field: Option<&'static str>,
}

fn event(overrides: Value) -> Value {
    let mut event = json!({"type": "view", "user": "u1", "item": "i1", "timestamp": 1700000000000i64});
    for (key, value) in overrides.as_object().unwrap() {
        if value.is_null() {
            event.as_object_mut().unwrap().remove(key);
        } else {
            event[key] = value.clone();
        }
    }
    event
}

fn events_case(name: &'static str, events: Value, code: &'static str, field: &'static str) -> Case {
    Case {
        name,
        method: "POST",
        uri: "/v1/events".into(),
        content_type: Some("application/json"),
        body: serde_json::to_vec(&events).unwrap(),
        status: StatusCode::BAD_REQUEST,
        code,
        field: Some(field),
    }
}

fn raw(
    name: &'static str,
    method: &'static str,
    uri: &str,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    expect: (StatusCode, &'static str, Option<&'static str>),
) -> Case {
    let (status, code, field) = expect;
    Case { name, method, uri: uri.into(), content_type, body, status, code, field }
}

fn cases() -> Vec<Case> {
    let bad = StatusCode::BAD_REQUEST;
    vec![
        events_case(
            "unknown event type",
            json!([event(json!({"type": "buy"}))]),
            "invalid_event_type",
            "events[0].type",
        ),
        events_case("missing user", json!([event(json!({"user": null}))]), "missing_field", "events[0].user"),
        events_case(
            "user of the wrong JSON type",
            json!([event(json!({"user": true}))]),
            "invalid_type",
            "events[0].user",
        ),
        events_case("item as an object", json!([event(json!({"item": {}}))]), "invalid_type", "events[0].item"),
        events_case("type as a number", json!([event(json!({"type": 3}))]), "invalid_type", "events[0].type"),
        events_case(
            "NaN price",
            json!([event(json!({"type": "purchase", "price": "NaN"}))]),
            "invalid_number",
            "events[0].price",
        ),
        events_case(
            "negative price",
            json!([event(json!({"type": "purchase", "price": -3.5}))]),
            "invalid_number",
            "events[0].price",
        ),
        events_case(
            "unparseable timestamp",
            json!([event(json!({"timestamp": "yesterday"}))]),
            "invalid_timestamp",
            "events[0].timestamp",
        ),
        events_case(
            "negative timestamp",
            json!([event(json!({"timestamp": -1}))]),
            "invalid_timestamp",
            "events[0].timestamp",
        ),
        events_case(
            "fractional timestamp",
            json!([event(json!({"timestamp": 1_700_000_000_000.5}))]),
            "invalid_timestamp",
            "events[0].timestamp",
        ),
        events_case(
            // A limit of one field, as the document's `maxItems` states (400, not 413).
            "an impression listing more items than an event takes",
            json!([event(json!({"type": "impression", "item": null,
                "items": (0..=souk_engine::input::MAX_EVENT_ITEMS).map(|i| format!("i{i}")).collect::<Vec<_>>()}))]),
            "invalid_value",
            "events[0].items",
        ),
        events_case(
            "missing timestamp",
            json!([event(json!({"timestamp": null}))]),
            "missing_field",
            "events[0].timestamp",
        ),
        events_case(
            "id with control characters",
            json!([event(json!({"user": "a\u{7}b"}))]),
            "invalid_id",
            "events[0].user",
        ),
        events_case("empty item id", json!([event(json!({"item": ""}))]), "empty_id", "events[0].item"),
        events_case("id too long", json!([event(json!({"id": "x".repeat(300)}))]), "id_too_long", "events[0].id"),
        events_case(
            "second event of a batch is bad",
            json!([event(json!({"id": "ok-1"})), event(json!({"type": "teleport"}))]),
            "invalid_event_type",
            "events[1].type",
        ),
        events_case("unknown field", json!([event(json!({"usr": "u2"}))]), "unknown_field", "events[0].usr"),
        events_case(
            "negative dwell time",
            json!([event(json!({"dwell_ms": -5}))]),
            "invalid_number",
            "events[0].dwell_ms",
        ),
        events_case(
            "propensity above one",
            json!([event(json!({"propensity": 1.5}))]),
            "invalid_number",
            "events[0].propensity",
        ),
        events_case(
            "position as a string",
            json!([event(json!({"position": "3"}))]),
            "invalid_type",
            "events[0].position",
        ),
        events_case(
            "search without a query",
            json!([event(json!({"type": "search", "item": null}))]),
            "missing_field",
            "events[0].query",
        ),
        events_case(
            "rating without a value",
            json!([event(json!({"type": "rating"}))]),
            "missing_field",
            "events[0].value",
        ),
        events_case(
            "impression item list with a number",
            json!([event(json!({"type": "impression", "item": null, "items": ["a", 1.5]}))]),
            "invalid_type",
            "events[0].items[1]",
        ),
        events_case("an event that is not an object", json!([event(json!({})), "view"]), "invalid_type", "events[1]"),
        raw(
            "body is not an array",
            "POST",
            "/v1/events",
            Some("application/json"),
            serde_json::to_vec(&event(json!({}))).unwrap(),
            (bad, "not_an_array", Some("body")),
        ),
        raw(
            "malformed JSON",
            "POST",
            "/v1/events",
            Some("application/json"),
            b"[{\"type\": \"view\",".to_vec(),
            (bad, "invalid_json", Some("body")),
        ),
        raw(
            "empty body",
            "POST",
            "/v1/events",
            Some("application/json"),
            Vec::new(),
            (bad, "empty_body", Some("body")),
        ),
        raw(
            "invalid UTF-8",
            "POST",
            "/v1/events",
            Some("application/json"),
            b"[{\"type\": \"view\", \"user\": \"\xff\xfe\"}]".to_vec(),
            (bad, "invalid_utf8", Some("body")),
        ),
        raw(
            "oversized body",
            "POST",
            "/v1/events",
            Some("application/json"),
            vec![b' '; 70 * 1024],
            (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", Some("body")),
        ),
        raw(
            "too many events",
            "POST",
            "/v1/events",
            Some("application/json"),
            serde_json::to_vec(&Value::Array((0..11).map(|_| event(json!({}))).collect())).unwrap(),
            (StatusCode::PAYLOAD_TOO_LARGE, "too_many_events", Some("events")),
        ),
        raw(
            "bad NDJSON line",
            "POST",
            "/v1/events",
            Some("application/x-ndjson"),
            format!("{}\n{{oops\n", event(json!({}))).into_bytes(),
            (bad, "invalid_json", Some("body")),
        ),
        raw(
            "negative item price",
            "PUT",
            "/v1/items/i9",
            Some("application/json"),
            br#"{"title": "Lamp", "price": -1}"#.to_vec(),
            (bad, "invalid_number", Some("price")),
        ),
        raw(
            "item without title",
            "PUT",
            "/v1/items/i9",
            Some("application/json"),
            br#"{"price": 1}"#.to_vec(),
            (bad, "missing_field", Some("title")),
        ),
        raw(
            "item id differs from path",
            "PUT",
            "/v1/items/i9",
            Some("application/json"),
            br#"{"id": "i8", "title": "Lamp"}"#.to_vec(),
            (bad, "id_mismatch", Some("id")),
        ),
        raw(
            "item category of the wrong type",
            "PUT",
            "/v1/items/i9",
            Some("application/json"),
            br#"{"title": "Lamp", "category": 5}"#.to_vec(),
            (bad, "invalid_type", Some("category")),
        ),
        raw(
            "vector with a string",
            "PUT",
            "/v1/items/i9",
            Some("application/json"),
            br#"{"title": "Lamp", "vectors": {"img": [0.1, "x"]}}"#.to_vec(),
            (bad, "invalid_type", Some("vectors.img[1]")),
        ),
        raw(
            "batch item without id",
            "POST",
            "/v1/items",
            Some("application/json"),
            br#"[{"id": "a", "title": "A"}, {"title": "B"}]"#.to_vec(),
            (bad, "missing_field", Some("items[1].id")),
        ),
        raw("follow oneself", "PUT", "/v1/users/u1/follows/u1", None, Vec::new(), (bad, "self_follow", Some("other"))),
        raw(
            "unknown follow kind",
            "PUT",
            "/v1/users/u1/follows/u2",
            Some("application/json"),
            br#"{"kind": "stalk"}"#.to_vec(),
            (bad, "invalid_follow_kind", Some("kind")),
        ),
        raw(
            "user preferences of the wrong type",
            "PUT",
            "/v1/users/u5",
            Some("application/json"),
            br#"{"preferences": {"brands": "Acme"}}"#.to_vec(),
            (bad, "invalid_type", Some("preferences.brands")),
        ),
        raw(
            "control character in a path id",
            "GET",
            "/v1/users/a%01b/events",
            None,
            Vec::new(),
            (bad, "invalid_id", Some("id")),
        ),
        raw(
            "history size out of range",
            "GET",
            "/v1/users/u1/events?n=0",
            None,
            Vec::new(),
            (bad, "invalid_number", Some("n")),
        ),
        raw(
            "a negative page size (a JSON error, not plain text)",
            "GET",
            "/v1/users/u1/recommendations?n=-1",
            None,
            Vec::new(),
            (bad, "invalid_parameter", Some("n")),
        ),
        raw(
            "a page size that is no number",
            "GET",
            "/v1/trending?n=abc&lang=en",
            None,
            Vec::new(),
            (bad, "invalid_parameter", Some("n")),
        ),
        raw(
            "a boolean that is none",
            "GET",
            "/v1/items/i1/similar?include_unavailable=maybe",
            None,
            Vec::new(),
            (bad, "invalid_parameter", Some("include_unavailable")),
        ),
        raw(
            "a history size that is no number",
            "GET",
            "/v1/users/u1/events?n=ten",
            None,
            Vec::new(),
            (bad, "invalid_parameter", Some("n")),
        ),
    ]
}

#[tokio::test]
async fn bad_input_is_refused_with_a_code_and_field_and_changes_nothing() {
    let config = ServerConfig { max_body_bytes: 64 * 1024, max_batch: 10, ..ServerConfig::default() };
    let server = TestServer::new(config);
    // Some data to protect.
    let (status, _) = server
        .json(
            "POST",
            "/v1/events",
            json!([event(json!({"id": "seed-1"})), event(json!({"id": "seed-2", "user": "u2"}))]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    server.json("PUT", "/v1/items/i1", json!({"title": "Mug", "price": 3})).await;
    let (_, before) = server.get("/v1/stats").await;
    let (_, history_before) = server.get("/v1/users/u1/events").await;

    let cases = cases();
    assert!(cases.len() >= 20);
    let mut failures = Vec::new();
    for case in &cases {
        let (status, body) = server.call(case.method, &case.uri, case.content_type, case.body.clone()).await;
        let field = body.get("field").and_then(Value::as_str);
        if status != case.status
            || body["code"] != case.code
            || field != case.field
            || body["message"].as_str().is_none_or(str::is_empty)
        {
            failures.push(format!("{}: got {status} {body}", case.name));
        }
    }
    assert!(failures.is_empty(), "{} cases failed:\n{}", failures.len(), failures.join("\n"));

    let (_, after) = server.get("/v1/stats").await;
    assert_eq!(before, after, "bad input changed the store");
    assert_eq!(history_before, server.get("/v1/users/u1/events").await.1);
    assert_eq!(server.get("/v1/items/i9").await.0, StatusCode::NOT_FOUND);
}
