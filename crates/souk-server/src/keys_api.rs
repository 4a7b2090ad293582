//! `/v1/keys`: API keys with scopes (the master key or an admin key manages them).

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use souk_engine::serving::shop::keys::{ApiKey, Scope};
use utoipa::ToSchema;

use crate::body::{json_value, read_limited, Path};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// A new key: the secret is shown only in this response.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedKeyOut {
    pub id: String,
    /// `Authorization: Bearer KEY`.
    pub key: String,
    /// `ingest`, `search`, `admin`.
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The key's own rate limit (requests per second), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_second: Option<f64>,
}

/// A key as listed (without its secret).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KeyOut {
    pub id: String,
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub created_at: i64,
    /// The key's own rate limit (requests per second), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_second: Option<f64>,
}

fn scopes_out(key: &ApiKey) -> Vec<String> {
    key.scopes.iter().map(|s| s.as_str().to_string()).collect()
}

/// Create a key: `{"scopes": ["ingest" | "search" | "admin", …], "name"?, "rate_per_second"?}`
/// (a rate of its own, over `[auth] rate_per_second`).
#[utoipa::path(post, path = "/v1/keys", tag = "keys",
    request_body(content = Object, description = r#"{"scopes":["ingest"|"search"|"admin"…],"name"?,"rate_per_second"?}"#),
    responses((status = 200, body = CreatedKeyOut), (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn post_key(State(state): State<AppState>, body: Body) -> ApiResult<Json<CreatedKeyOut>> {
    const FIELDS: [&str; 3] = ["scopes", "name", "rate_per_second"];
    let value = json_value(&read_limited(body, state.config.max_body_bytes).await?)?;
    let Value::Object(map) = value else {
        return Err(ApiError::bad_request("invalid_type", "expected a JSON object", "body"));
    };
    if let Some(unknown) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ApiError::bad_request("unknown_field", format!("unknown field {unknown:?}"), unknown.clone()));
    }
    let rate = match map.get("rate_per_second") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_f64(),
        Some(_) => return Err(ApiError::bad_request("invalid_type", "expected a number", "rate_per_second")),
    };
    let (scopes, name) = scopes_and_name(&map)?;
    let (key, secret) = state.blocking(move |shop| shop.create_key_with(scopes, name, rate)).await?;
    Ok(Json(CreatedKeyOut {
        scopes: scopes_out(&key),
        id: key.id,
        key: secret,
        name: key.name,
        rate_per_second: key.rate_per_second,
    }))
}

type ScopesAndName = (Vec<Scope>, Option<String>);

fn scopes_and_name(map: &serde_json::Map<String, Value>) -> ApiResult<ScopesAndName> {
    let Some(Value::Array(list)) = map.get("scopes") else {
        return Err(ApiError::bad_request("missing_field", "a key needs a list of scopes", "scopes"));
    };
    let scopes = list
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let field = format!("scopes[{i}]");
            match s {
                Value::String(s) => Scope::parse(s, &field).map_err(ApiError::validation),
                _ => Err(ApiError::bad_request("invalid_scope", "expected ingest, search or admin", field)),
            }
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let name = match map.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(name.clone()),
        Some(_) => return Err(ApiError::bad_request("invalid_type", "expected a string", "name")),
    };
    Ok((scopes, name))
}

/// Every key, without secrets.
#[utoipa::path(get, path = "/v1/keys", tag = "keys", responses((status = 200, body = Vec<KeyOut>)))]
pub async fn list_keys(State(state): State<AppState>) -> Json<Vec<KeyOut>> {
    Json(
        state
            .shop
            .keys()
            .into_iter()
            .map(|k| KeyOut {
                scopes: scopes_out(&k),
                id: k.id,
                name: k.name,
                created_at: k.created_at,
                rate_per_second: k.rate_per_second,
            })
            .collect(),
    )
}

/// Revoke a key (at once: the next request with it is refused).
#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "keys",
    params(("id" = String, Path, description = "Key id")),
    responses((status = 204, description = "Revoked"), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete_key(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let key = id.clone();
    if state.blocking(move |shop| shop.delete_key(&key)).await? {
        state.limits.forget(&id);
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("key", &id))
    }
}
