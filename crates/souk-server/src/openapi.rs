//! `/openapi.json`: the document utoipa generates from the handlers and wire types, with
//! what the derive cannot say added once, here: what an id may be (everywhere ids appear),
//! the 400 every `/v1` operation may answer, the disk refusals of every write, and the
//! bodies of `PUT` (the id comes from the path). Schemathesis checks in CI that the served
//! API keeps to this document (`.ci/contract`).

use serde_json::{json, Map, Value};
use souk_engine::ids::MAX_ID_BYTES;
use utoipa::OpenApi;

/// Ids: non-empty, no control characters and no bidirectional embeddings, overrides or
/// isolates, not `.` or `..`, not only white space or invisible characters
/// (`souk_engine::ids::validate_id`; the length limit there is in bytes, here in characters).
pub const ID_PATTERN: &str = r"^(?!\.{1,2}$)(?![\s\u00AD\u034F\u061C\u115F\u1160\u17B4\u17B5\u180E\u200B-\u200F\u2060-\u2064\u3164\uFE00-\uFE0F\uFEFF\uFFA0]*$)[^\u0000-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]+$";

/// The schema of an id: the same wherever one appears.
pub fn id_schema() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": MAX_ID_BYTES, "pattern": ID_PATTERN,
        "description": format!("At most {MAX_ID_BYTES} bytes of UTF-8")})
}

/// The served document.
pub fn document() -> Value {
    let mut doc = serde_json::to_value(crate::ApiDoc::openapi()).unwrap_or_else(|_| json!({}));
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            patch_path(path, item);
        }
    }
    if let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut) {
        patch_schemas(schemas);
    }
    doc
}

fn patch_path(path: &str, item: &mut Value) {
    let Some(item) = item.as_object_mut() else { return };
    let with_ids = path.starts_with("/v1/items/") || path.starts_with("/v1/users/");
    for (method, operation) in item.iter_mut() {
        for parameter in operation.get_mut("parameters").and_then(Value::as_array_mut).into_iter().flatten() {
            let in_path = parameter["in"] == "path";
            let name = parameter["name"].as_str().unwrap_or_default();
            if with_ids && in_path && matches!(name, "id" | "other") {
                parameter["schema"] = id_schema();
            }
        }
        if !path.starts_with("/v1/") {
            continue;
        }
        let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else { continue };
        responses.entry("400").or_insert_with(|| {
            refusal("A parameter, path segment or body is malformed or out of range (`code` and `field` say which)")
        });
        if path.contains('{') {
            responses.entry("404").or_insert_with(|| refusal("not_found: nothing has this id"));
        }
        let writes = matches!(method.as_str(), "post" | "put" | "delete") && path != "/v1/search";
        if writes {
            responses
                .entry("503")
                .or_insert_with(|| refusal("storage_unavailable: the disk failed the write; nothing of it was stored"));
            responses
                .entry("507")
                .or_insert_with(|| refusal("disk_full: the disk is full; nothing of the write was stored"));
        }
        if path == "/v1/items/{id}" && method == "put" {
            set_body_schema(operation, "ItemPut");
        }
        if path == "/v1/keys" && method == "post" {
            if let Some(content) = operation.pointer_mut("/requestBody/content/application~1json") {
                content["schema"] = key_body_schema();
            }
        }
        if path == "/v1/users/{id}" && method == "put" {
            set_body_schema(operation, "UserPut");
            operation["requestBody"]["required"] = json!(false);
        }
    }
}

/// `POST /v1/keys`: the scopes, a name and a rate of its own.
fn key_body_schema() -> Value {
    json!({"type": "object", "additionalProperties": false, "required": ["scopes"], "properties": {
        "scopes": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": ["ingest", "search", "admin"]}},
        "name": {"type": ["string", "null"], "maxLength": 200},
        "rate_per_second": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 1_000_000}}})
}

fn refusal(description: &str) -> Value {
    json!({"description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}})
}

fn set_body_schema(operation: &mut Value, name: &str) {
    if let Some(content) = operation.pointer_mut("/requestBody/content/application~1json") {
        content["schema"] = json!({"$ref": format!("#/components/schemas/{name}")});
    }
}

fn patch_schemas(schemas: &mut Map<String, Value>) {
    for (schema, fields) in [("ItemIn", &["id"][..]), ("UserIn", &["id"][..]), ("EventIn", &["id", "user", "item"][..])]
    {
        for field in fields {
            if let Some(property) = schemas.get_mut(schema).and_then(|s| s.pointer_mut(&format!("/properties/{field}")))
            {
                let nullable =
                    property.get("type").and_then(Value::as_array).is_some_and(|t| t.contains(&json!("null")));
                let mut any_of =
                    vec![id_schema(), json!({"type": "integer", "description": "A numeric id, kept in decimal form"})];
                if nullable {
                    any_of.push(json!({"type": "null"}));
                }
                *property = json!({"anyOf": any_of});
            }
        }
    }
    // Request bodies: the engine refuses fields it does not know.
    for name in ["ItemIn", "UserIn", "EventIn", "FollowIn", "TranslationIn", "PreferencesIn", "SearchBody"] {
        if let Some(schema) = schemas.get_mut(name) {
            schema["additionalProperties"] = json!(false);
        }
    }
    if let Some(event) = schemas.get_mut("EventIn") {
        patch_event(event);
    }
    if let Some(item) = schemas.get_mut("ItemIn") {
        patch_item(item);
    }
    if let Some(search) = schemas.get_mut("SearchBody") {
        let mut vector = non_zero_vector();
        vector["type"] = json!(["array", "null"]);
        search["properties"]["vector"] = vector;
    }
    if let Some(user) = schemas.get_mut("UserIn") {
        user["properties"]["attributes"] = attributes_schema();
    }
    if let Some(follow) = schemas.get_mut("FollowIn") {
        follow["properties"]["kind"] = json!({"type": ["string", "null"], "enum": ["follow", "friend", "trust", null]});
    }
    // `PUT` bodies: the item or user without its id (given in the path; a body may repeat it).
    for (from, to) in [("ItemIn", "ItemPut"), ("UserIn", "UserPut")] {
        let Some(mut schema) = schemas.get(from).cloned() else { continue };
        if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
            properties.remove("id");
        }
        if let Some(required) = schema.get_mut("required").and_then(Value::as_array_mut) {
            required.retain(|name| name != "id");
        }
        schema["description"] = json!(format!("{from} without `id`: the path names it (a body may repeat it)"));
        schemas.insert(to.to_string(), schema);
    }
}

/// The rules of `input::parse_event` a schema can state: the type names, which types need
/// an item, a value, a text or a query, and the ranges of amounts and probabilities.
fn patch_event(event: &mut Value) {
    let types: Vec<&str> = souk_engine::EventType::ALL.iter().map(|t| t.as_str()).collect();
    let properties = &mut event["properties"];
    properties["type"] = json!({"type": "string", "enum": types});
    properties["timestamp"] = timestamp_schema(false);
    properties["position"] = json!({"type": ["integer", "null"], "minimum": 0, "maximum": u32::MAX});
    properties["price"] = json!({"type": ["number", "null"], "minimum": 0});
    properties["propensity"] = json!({"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 1});
    properties["quantity"] = json!({"type": ["integer", "null"], "minimum": 1, "maximum": u32::MAX});
    properties["dwell_ms"] = json!({"type": ["integer", "null"], "minimum": 0, "maximum": u64::MAX});
    let numeric_id = json!({"type": "integer", "description": "A numeric id, kept in decimal form"});
    properties["items"] =
        json!({"type": ["array", "null"], "items": {"anyOf": [id_schema(), numeric_id]}, "maxItems": 1_000});
    properties["propensities"] = json!({"type": ["array", "null"], "maxItems": 1_000,
        "items": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        "description": "One per item of `items`, in (0, 1]: the probability with which the logging policy put each item at its position"});
    let with_item: Vec<&str> = types.iter().copied().filter(|t| !matches!(*t, "search" | "impression")).collect();
    let needs = |types: Value, field: &str, schema: Value| {
        json!({"if": {"properties": {"type": types}, "required": ["type"]},
            "then": {"required": [field], "properties": {field: schema}}})
    };
    event["allOf"] = json!([
        needs(json!({"enum": with_item}), "item", id_schema()),
        needs(json!({"const": "rating"}), "value", json!({"type": "number"})),
        needs(json!({"const": "review"}), "text", json!({"type": "string", "pattern": "\\S"})),
        needs(json!({"const": "search"}), "query", json!({"type": "string", "pattern": "\\S"})),
        {"if": {"properties": {"type": {"const": "impression"}}, "required": ["type"]},
            "then": {"anyOf": [{"required": ["item"]}, {"required": ["items"], "properties": {"items": {"minItems": 1}}}]}},
    ]);
}

/// A vector: finite numbers, not all zero.
fn non_zero_vector() -> Value {
    json!({"type": "array", "minItems": 1, "maxItems": souk_engine::input::MAX_VECTOR_DIMS,
        "items": {"type": "number", "minimum": f32::MIN, "maximum": f32::MAX}, "contains": {"not": {"const": 0}}})
}

/// A time: RFC 3339 (from 1970 on) or Unix milliseconds (up to the end of year 9999).
fn timestamp_schema(nullable: bool) -> Value {
    let mut one_of = vec![
        json!({"type": "string", "format": "date-time", "pattern": "^(19[7-9][0-9]|[2-9][0-9]{3})-"}),
        json!({"type": "integer", "minimum": 0, "maximum": souk_engine::input::MAX_TIMESTAMP_MS}),
    ];
    if nullable {
        one_of.push(json!({"type": "null"}));
    }
    json!({"description": "RFC 3339 date-time or Unix milliseconds", "oneOf": one_of})
}

/// Attributes: non-empty names without control characters; strings, numbers or booleans.
fn attributes_schema() -> Value {
    json!({"type": ["object", "null"],
        "propertyNames": {"minLength": 1, "pattern": "^[^\\u0000-\\u001F\\u007F-\\u009F]+$"},
        "additionalProperties": {"type": ["string", "number", "boolean"]}})
}

/// The rules of `input::parse_item` a schema can state.
fn patch_item(item: &mut Value) {
    let properties = &mut item["properties"];
    properties["title"] = json!({"type": "string", "pattern": "\\S", "maxLength": 4096});
    properties["price"] = json!({"type": ["number", "null"], "minimum": 0});
    properties["currency"] = json!({"type": ["string", "null"], "maxLength": 16});
    properties["category"] = json!({"description": "\"Electronics > Audio > Headphones\" or an array of levels",
        "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}, {"type": "null"}]});
    properties["created_at"] = timestamp_schema(true);
    properties["attributes"] = attributes_schema();
    properties["vectors"] = json!({"type": ["object", "null"],
        "propertyNames": {"pattern": "^[A-Za-z0-9_-]{1,64}$"},
        "additionalProperties": non_zero_vector()});
    properties["image"] = json!({"type": ["string", "null"], "pattern": "^\\s*(https?://|/(?!/))[^\\s\"<>\\u0000-\\u001F\\u007F-\\u009F]*\\s*$"});
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_v1_operation_documents_400_and_put_bodies_leave_the_id_to_the_path() {
        let doc = document();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                if path.starts_with("/v1/") {
                    assert!(operation["responses"].get("400").is_some(), "{method} {path}");
                }
            }
        }
        let put = &doc["paths"]["/v1/items/{id}"]["put"]["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(put["$ref"], "#/components/schemas/ItemPut");
        let item_put = &doc["components"]["schemas"]["ItemPut"];
        assert!(item_put["properties"].get("id").is_none() && item_put["properties"].get("title").is_some());
        assert_eq!(doc["components"]["schemas"]["EventIn"]["properties"]["user"]["anyOf"][0]["pattern"], ID_PATTERN);
    }
}
