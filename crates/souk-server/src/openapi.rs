//! `/openapi.json`: the document utoipa generates from the handlers and wire types, with
//! what the derive cannot say added once, here: what an id may be (everywhere ids appear),
//! the 400 every `/v1` operation may answer, the disk refusals of every write, the 409 of a
//! vector whose length conflicts with its space, the bodies of `PUT` (the id comes from the
//! path), re-ranking rules and experiment definitions, and the enums, cursors and lists of
//! query parameters. Rules between values that JSON Schema cannot state are written in
//! descriptions. Schemathesis checks in CI that the served API keeps to this document
//! (`.ci/contract`).

use serde_json::{json, Map, Value};
use souk_engine::ids::MAX_ID_CHARS;
use utoipa::OpenApi;

/// Ids: non-empty, no control characters and no bidirectional embeddings, overrides or
/// isolates, not `.` or `..`, not only white space or invisible characters
/// (`souk_engine::ids::validate_id`; its length limit counts characters, as here).
pub const ID_PATTERN: &str = r"^(?!\.{1,2}$)(?![\s\u00AD\u034F\u061C\u115F\u1160\u17B4\u17B5\u180E\u200B-\u200F\u2060-\u2064\u3164\uFE00-\uFE0F\uFEFF\uFFA0]*$)[^\u0000-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]+$";

/// The schema of an id: the same wherever one appears.
pub fn id_schema() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS, "pattern": ID_PATTERN,
        "description": format!("At most {MAX_ID_CHARS} characters")})
}

/// White space as the server's trimming sees it (Unicode `White_Space`, Rust's
/// `char::is_whitespace`), for patterns that must agree with it exactly.
const WHITE_SPACE: &str = r"\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";

/// A string with something besides white space in it.
fn non_blank() -> Value {
    json!({"type": "string", "pattern": format!("[^{WHITE_SPACE}]")})
}

/// The served document of a server that has a text embedder (`semantic_search`: a
/// semantic search needs no `vector` of its own) or not.
pub fn document(semantic_search: bool) -> Value {
    let mut doc = serde_json::to_value(crate::ApiDoc::openapi()).unwrap_or_else(|_| json!({}));
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            patch_path(path, item, semantic_search);
        }
    }
    if let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut) {
        patch_schemas(schemas, semantic_search);
    }
    doc
}

fn patch_path(path: &str, item: &mut Value, semantic_search: bool) {
    let Some(item) = item.as_object_mut() else { return };
    let with_ids = path.starts_with("/v1/items/") || path.starts_with("/v1/users/");
    for (method, operation) in item.iter_mut() {
        for parameter in operation.get_mut("parameters").and_then(Value::as_array_mut).into_iter().flatten() {
            let in_path = parameter["in"] == "path";
            let name = parameter["name"].as_str().unwrap_or_default().to_string();
            if with_ids && in_path && matches!(name.as_str(), "id" | "other") {
                parameter["schema"] = id_schema();
            }
            if parameter["in"] == "query" {
                patch_query_parameter(path, &name, parameter, semantic_search);
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
        // The connection's own limits, before any route reads the request.
        responses
            .entry("414")
            .or_insert_with(|| refusal("uri_too_long: the request line is longer than the server takes (16 KiB)"));
        responses.entry("431").or_insert_with(|| {
            refusal("headers_too_large: the headers are larger than the server takes (64 KiB or 100 lines)")
        });
        let writes = matches!(method.as_str(), "post" | "put" | "delete") && path != "/v1/search";
        if writes {
            responses
                .entry("503")
                .or_insert_with(|| refusal("storage_unavailable: the disk failed the write; nothing of it was stored"));
            responses
                .entry("507")
                .or_insert_with(|| refusal("disk_full: the disk is full; nothing of the write was stored"));
        }
        // Vectors: a space's dimension is fixed by its first vector; a vector of another
        // length conflicts with what is stored (the request itself is well formed).
        let with_vectors =
            matches!((path, method.as_str()), ("/v1/items" | "/v1/search", "post") | ("/v1/items/{id}", "put"));
        if with_vectors {
            responses.entry("409").or_insert_with(|| {
                refusal("dimension_mismatch: a vector's length differs from its space's dimension, fixed by the space's first vector")
            });
        }
        if path == "/v1/search" && method == "post" {
            responses
                .entry("404")
                .or_insert_with(|| refusal("unknown_vector_space: no item has vectors in the space named by `space`"));
        }
        if path == "/v1/experiments" && method == "post" {
            set_body_schema(operation, "ExperimentIn");
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

/// What the derive cannot say of a query parameter: the ids, enums, lists and JSON values
/// among them, and the price range rule.
fn patch_query_parameter(path: &str, name: &str, parameter: &mut Value, semantic_search: bool) {
    let one_of_names = |values: &[&str]| json!({"type": "string", "enum": values});
    match name {
        "user" | "context_item" => parameter["schema"] = id_schema(),
        "q" if path == "/v1/search" => {
            parameter["schema"] = json!({"type": "string", "maxLength": crate::search_api::MAX_QUERY_CHARS})
        }
        "mode" => parameter["schema"] = one_of_names(&search_modes(semantic_search)),
        "fusion" => parameter["schema"] = one_of_names(&FUSIONS),
        "sort" => parameter["schema"] = one_of_names(&SORTS),
        "brand" if path == "/v1/search" => {
            parameter["schema"] = json!({"type": "array", "items": {"type": "string"}});
            parameter["style"] = json!("form");
            parameter["explode"] = json!(true);
        }
        "rules" => {
            if let Some(parameter) = parameter.as_object_mut() {
                parameter.remove("schema");
                parameter.insert("content".into(), json!({"application/json": {"schema": rules_schema(false)}}));
            }
        }
        "cursor" => {
            parameter["schema"] = json!({"type": "string", "pattern": souk_engine::serving::CURSOR_PATTERN,
                "maxLength": souk_engine::serving::MAX_CURSOR_CHARS});
        }
        "exclude" => {
            let ws = WHITE_SPACE;
            let part = format!("[{ws}]*(seen|purchased|disliked|none)?[{ws}]*");
            parameter["schema"] = json!({"type": "string", "pattern": format!("^{part}(,{part})*$")});
        }
        "min_price" | "max_price" => {
            parameter["description"] = json!(PRICE_RANGE_RULE);
        }
        _ => {}
    }
}

/// The price range's rule between two parameters, which JSON Schema cannot state.
const PRICE_RANGE_RULE: &str =
    "A non-negative price; `min_price` may not exceed `max_price` (answered 400 `invalid_range`)";
const FUSIONS: [&str; 2] = ["rrf", "weighted"];
const SORTS: [&str; 5] = ["relevance", "price_asc", "price_desc", "newest", "popularity"];

/// The search modes a request without a vector of its own may ask for: `semantic` needs a
/// text embedder.
fn search_modes(semantic_search: bool) -> Vec<&'static str> {
    if semantic_search {
        vec!["keyword", "semantic", "hybrid"]
    } else {
        vec!["keyword", "hybrid"]
    }
}

/// Re-ranking rules (`souk_engine::rank::rerank::Rules`). What a schema cannot state:
/// each position is fixed once over `pin` and `promotions` (400 `duplicate_position`), each
/// item pinned once (400 `duplicate_pin`), and a condition's `min_price` does not exceed
/// its `max_price` (400 `invalid_condition`).
fn rules_schema(nullable: bool) -> Value {
    use souk_engine::rank::rerank::{MAX_CATEGORY_DEPTH, MAX_POSITION};
    let text = non_blank();
    let nullable_text = json!({"anyOf": [non_blank(), {"type": "null"}]});
    let texts = json!({"type": ["array", "null"], "minItems": 1, "items": text});
    let fields = ["items", "category", "brand", "brands", "min_price", "max_price", "tag", "attribute", "available"];
    let condition = json!({"type": "object", "additionalProperties": false,
        "description": "Every part given must hold; at least one part is given",
        "properties": {
            "items": texts, "category": texts, "brand": nullable_text, "brands": texts,
            "min_price": {"type": ["number", "null"]}, "max_price": {"type": ["number", "null"]},
            "tag": nullable_text,
            "attribute": {"type": ["object", "null"], "additionalProperties": false, "required": ["name", "value"],
                "properties": {"name": text, "value": text}},
            "available": {"type": ["boolean", "null"]}},
        "anyOf": fields.iter().map(|field| {
            let mut present = Map::new();
            present.insert(field.to_string(), json!({"not": {"type": "null"}}));
            json!({"required": [field], "properties": present})
        }).collect::<Vec<_>>()});
    let position = json!({"type": "integer", "minimum": 1, "maximum": MAX_POSITION});
    let object = |required: &[&str], properties: Value| json!({"type": "object", "additionalProperties": false, "required": required, "properties": properties});
    let quota_by = json!({"oneOf": [
        {"const": "brand"},
        object(&["brand"], json!({"brand": {"type": "null"}})),
        object(&["category"], json!({"category": {"type": "integer", "minimum": 1, "maximum": MAX_CATEGORY_DEPTH}})),
    ]});
    let diversity = json!({"oneOf": [
        object(&["mmr"], json!({"mmr": object(&["lambda"], json!({"lambda": {"type": "number", "minimum": 0, "maximum": 1}}))})),
        object(&["quota"], json!({"quota": object(&["by", "max_per_window", "window"], json!({
            "by": quota_by,
            "max_per_window": {"type": "integer", "minimum": 1, "maximum": u64::MAX},
            "window": position}))})),
        {"type": "null"},
    ]});
    let mut rules = object(
        &[],
        json!({
            "filter": {"type": "array", "items": condition},
            "boost": {"type": "array", "items": object(&["when", "factor"],
                json!({"when": condition, "factor": {"type": "number", "exclusiveMinimum": 0}}))},
            "bury": {"type": "array", "items": condition},
            "pin": {"type": "array", "items": object(&["item", "position"], json!({"item": text, "position": position}))},
            "promotions": {"type": "array", "items": object(&["positions", "when"], json!({
                "positions": {"type": "array", "minItems": 1, "uniqueItems": true, "items": position},
                "when": condition}))},
            "diversity": diversity,
        }),
    );
    rules["description"] = json!(
        "Re-ranking rules. Each position is fixed once over `pin` and `promotions` \
        (else 400 `duplicate_position`), each item pinned once (400 `duplicate_pin`), and a condition's \
        `min_price` is at most its `max_price` (400 `invalid_condition`): rules JSON Schema cannot state"
    );
    if nullable {
        rules["type"] = json!(["object", "null"]);
    }
    rules
}

/// An experiment arm: its name, share and pipeline (`souk_engine::serving::PipelineConfig`).
fn arm_schema() -> Value {
    let sources: Vec<&str> = souk_engine::recommend::SourceKind::ALL.iter().map(|s| s.as_str()).collect();
    json!({"type": "object", "additionalProperties": false, "required": ["name"], "properties": {
        "name": {"type": "string", "pattern": EXPERIMENT_NAME_PATTERN},
        "share": {"type": "number", "exclusiveMinimum": 0,
            "description": "Share of the experiment's users, normalised over the arms (default 1)"},
        "sources": {"type": "object", "propertyNames": {"enum": sources},
            "additionalProperties": {"type": "number", "minimum": 0},
            "description": "Fusion weight by recall source, replacing the configured one; 0 leaves a source out"},
        "ranker": {"type": ["boolean", "null"], "description": "false serves the hand blend even when a ranker is trained"},
        "rules": rules_schema(false),
        "explore_share": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "explore_slots": {"type": ["array", "null"], "uniqueItems": true,
            "items": {"type": "integer", "minimum": 0, "maximum": 99},
            "description": "Page positions of the exploration slots, in any order ([]: none)"}}})
}

/// Experiment and arm names: 1–64 letters, digits, `_`, `-`, `.`.
const EXPERIMENT_NAME_PATTERN: &str = "^[A-Za-z0-9_.-]{1,64}$";

/// `POST /v1/experiments`: a draft's definition.
fn experiment_schema() -> Value {
    json!({"type": "object", "additionalProperties": false, "required": ["id", "surface", "arms"],
        "description": "A draft experiment; the first arm is the control. Arm names are distinct \
            (else 400 `invalid_experiment`: a rule JSON Schema cannot state)",
        "properties": {
            "id": {"type": "string", "pattern": EXPERIMENT_NAME_PATTERN},
            "surface": {"type": "string", "enum": ["recommendations", "search"]},
            "window_days": {"type": "number", "exclusiveMinimum": 0, "maximum": 365,
                "description": "Outcomes count within this many days after a user's first exposure (default 7)"},
            "arms": {"type": "array", "minItems": 2, "maxItems": souk_engine::serving::experiment::MAX_ARMS,
                "items": {"$ref": "#/components/schemas/ArmIn"}}}})
}

/// A numeric id (datasets often have them): an integer from `i64::MIN` to `u64::MAX`.
fn numeric_id() -> Value {
    json!({"type": "integer", "minimum": i64::MIN, "maximum": u64::MAX, "description": "A numeric id, kept in decimal form"})
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

fn patch_schemas(schemas: &mut Map<String, Value>, semantic_search: bool) {
    schemas.insert("ArmIn".into(), arm_schema());
    schemas.insert("ExperimentIn".into(), experiment_schema());
    // An arm as served: the same fields, `sources` always present.
    let mut arm_out = arm_schema();
    arm_out["required"] = json!(["name", "share", "sources"]);
    arm_out["description"] = json!("An arm: its name, share and pipeline configuration");
    schemas.insert("ArmOut".into(), arm_out);
    for (schema, fields) in [("ItemIn", &["id"][..]), ("UserIn", &["id"][..]), ("EventIn", &["id", "user", "item"][..])]
    {
        for field in fields {
            if let Some(property) = schemas.get_mut(schema).and_then(|s| s.pointer_mut(&format!("/properties/{field}")))
            {
                let nullable =
                    property.get("type").and_then(Value::as_array).is_some_and(|t| t.contains(&json!("null")));
                let mut any_of = vec![id_schema(), numeric_id()];
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
        let properties = &mut search["properties"];
        properties["vector"] = vector;
        properties["user"] = json!({"anyOf": [id_schema(), {"type": "null"}]});
        properties["q"] = json!({"type": ["string", "null"], "maxLength": crate::search_api::MAX_QUERY_CHARS});
        let with_null = |values: &[&str]| {
            let mut values: Vec<Value> = values.iter().map(|v| json!(v)).collect();
            values.push(Value::Null);
            json!({"type": ["string", "null"], "enum": values})
        };
        properties["mode"] = with_null(&["keyword", "semantic", "hybrid"]);
        properties["fusion"] = with_null(&FUSIONS);
        properties["sort"] = with_null(&SORTS);
        properties["rules"] = rules_schema(true);
        properties["min_price"]["description"] = json!(PRICE_RANGE_RULE);
        if !semantic_search {
            // Without a text embedder, a semantic search needs a vector of its own.
            search["if"] = json!({"properties": {"mode": {"const": "semantic"}}, "required": ["mode"]});
            search["then"] = json!({"required": ["vector"], "properties": {"vector": {"type": "array"}}});
        }
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
    let numeric_id = numeric_id();
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
        needs(json!({"const": "review"}), "text", non_blank()),
        needs(json!({"const": "search"}), "query", non_blank()),
        {"if": {"properties": {"type": {"const": "impression"}}, "required": ["type"]},
            "then": {"anyOf": [{"required": ["item"], "properties": {"item": {"not": {"type": "null"}}}},
                {"required": ["items"], "properties": {"items": {"type": "array", "minItems": 1}}}]}},
    ]);
}

/// A vector: numbers within `f32`, not all zero once stored as `f32` (a magnitude up to
/// 2^-150 becomes 0).
fn non_zero_vector() -> Value {
    let tiniest = 2f64.powi(-150);
    json!({"type": "array", "minItems": 1, "maxItems": souk_engine::input::MAX_VECTOR_DIMS,
        "items": {"type": "number", "minimum": f32::MIN, "maximum": f32::MAX},
        "contains": {"anyOf": [{"exclusiveMinimum": tiniest}, {"exclusiveMaximum": -tiniest}]}})
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
    let mut title = non_blank();
    title["maxLength"] = json!(4096);
    properties["title"] = title;
    properties["price"] = json!({"type": ["number", "null"], "minimum": 0});
    properties["currency"] = json!({"type": ["string", "null"], "maxLength": souk_engine::input::MAX_CURRENCY_CHARS});
    properties["category"] = json!({"description": "\"Electronics > Audio > Headphones\" or an array of levels",
        "oneOf": [{"type": "string"}, {"type": "array", "items": non_blank()}, {"type": "null"}]});
    properties["created_at"] = timestamp_schema(true);
    properties["attributes"] = attributes_schema();
    properties["vectors"] = json!({"type": ["object", "null"],
        "propertyNames": {"pattern": "^(?!text$)[A-Za-z0-9_-]{1,64}$",
            "description": "A vector space's name; `text` is the text embedder's own"},
        "additionalProperties": non_zero_vector()});
    properties["image"] = json!({"type": ["string", "null"], "pattern": "^\\s*(https?://|/(?!/))[^\\s\"<>\\u0000-\\u001F\\u007F-\\u009F]*\\s*$"});
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_v1_operation_documents_400_and_put_bodies_leave_the_id_to_the_path() {
        let doc = document(false);
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
