//! `/v1/items`: the catalog.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::Value;
use souk_engine::{input, ItemId};

use crate::body::{is_ndjson, json_list, json_value, read_limited, Path};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::wire::{Accepted, ItemOut};

pub fn path_item_id(id: &str) -> ApiResult<ItemId> {
    ItemId::parse(id, "id").map_err(ApiError::validation)
}

/// Fill a missing `id` from the path, or check that the body's id matches it.
pub fn reconcile_id(value: &mut Value, path_id: &str) -> ApiResult<()> {
    let Value::Object(map) = value else {
        return Err(ApiError::bad_request("invalid_type", "expected a JSON object", "body"));
    };
    match map.get("id") {
        None | Some(Value::Null) => {
            map.insert("id".into(), Value::String(path_id.to_string()));
            Ok(())
        }
        Some(Value::String(id)) if id == path_id => Ok(()),
        Some(other) => Err(ApiError::bad_request(
            "id_mismatch",
            format!("the body's id {other} differs from the id in the path {path_id:?}"),
            "id",
        )),
    }
}

/// Create or replace an item.
#[utoipa::path(put, path = "/v1/items/{id}", tag = "items",
    params(("id" = String, Path, description = "Item id")),
    request_body = crate::wire::ItemIn,
    responses((status = 200, description = "Stored", body = ItemOut), (status = 400, body = crate::error::ErrorBody)))]
pub async fn put_item(State(state): State<AppState>, Path(id): Path<String>, body: Body) -> ApiResult<Json<ItemOut>> {
    path_item_id(&id)?;
    let mut value = json_value(&read_limited(body, state.config.max_body_bytes).await?)?;
    reconcile_id(&mut value, &id)?;
    let item = input::parse_item(&value).map_err(ApiError::validation)?;
    let stored = ItemOut::from(item.clone());
    state.blocking(move |shop| shop.put_items(vec![item])).await?;
    Ok(Json(stored))
}

/// Create or replace a batch of items (JSON array or NDJSON).
#[utoipa::path(post, path = "/v1/items", tag = "items",
    request_body = Vec<crate::wire::ItemIn>,
    responses((status = 200, description = "Stored", body = Accepted), (status = 400, body = crate::error::ErrorBody)))]
pub async fn post_items(State(state): State<AppState>, headers: HeaderMap, body: Body) -> ApiResult<Json<Accepted>> {
    let bytes = read_limited(body, state.config.max_body_bytes).await?;
    let values = json_list(&bytes, is_ndjson(&headers), "items")?;
    if values.len() > state.config.max_batch {
        return Err(ApiError::new(
            "too_many_items",
            format!("expected at most {} items per request, found {}", state.config.max_batch, values.len()),
            Some("items".into()),
        ));
    }
    let items = values
        .iter()
        .enumerate()
        .map(|(i, v)| input::parse_item(v).map_err(|e| ApiError::validation(e.within(&format!("items[{i}]")))))
        .collect::<ApiResult<Vec<_>>>()?;
    let accepted = items.len() as u64;
    state.blocking(move |shop| shop.put_items(items)).await?;
    Ok(Json(Accepted { accepted, duplicates: 0 }))
}

/// Read an item, with its live event counts.
#[utoipa::path(get, path = "/v1/items/{id}", tag = "items",
    params(("id" = String, Path, description = "Item id")),
    responses((status = 200, body = ItemOut), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_item(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<ItemOut>> {
    let item_id = path_item_id(&id)?;
    let (item, counts, reviews) = state
        .blocking(move |shop| {
            let reviews = shop.item_review_sentiment(item_id.as_str());
            Ok((shop.store().get_item(&item_id)?, shop.store().item_counts(&item_id)?, reviews))
        })
        .await?;
    let item = item.ok_or_else(|| ApiError::not_found("item", &id))?;
    let mut out = ItemOut::from(item);
    out.event_counts = counts.map(|c| c.by_type);
    out.review_sentiment = reviews.filter(|r| r.reviews > 0).map(Into::into);
    Ok(Json(out))
}

/// Remove an item from the catalog (its past events stay, for learning).
#[utoipa::path(delete, path = "/v1/items/{id}", tag = "items",
    params(("id" = String, Path, description = "Item id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete_item(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let item_id = path_item_id(&id)?;
    let deleted = state.blocking(move |shop| shop.delete_item(&item_id)).await?;
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("item", &id))
    }
}
