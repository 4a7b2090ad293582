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
    json!({"type": "string", "minLength": 1, "maxLength": MAX_ID_BYTES / 4, "pattern": ID_PATTERN,
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
        if path == "/v1/users/{id}" && method == "put" {
            set_body_schema(operation, "UserPut");
            operation["requestBody"]["required"] = json!(false);
        }
    }
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
                *property = id_schema();
                if nullable {
                    property["type"] = json!(["string", "null"]);
                }
            }
        }
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
        assert_eq!(doc["components"]["schemas"]["EventIn"]["properties"]["user"]["pattern"], ID_PATTERN);
    }
}
