//! Integration tests of the HTTP API, driven in-process through `router(state)`.

mod api;
mod bad_input;
mod disk;
mod recommend;
mod search;
mod sockets;
mod storefront;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use souk_engine::serving::{Shop, ShopSettings};
use souk_engine::store::{EmbeddedStore, StoreConfig};
use souk_server::{router, AppState, ServerConfig};
use tower::ServiceExt;

/// A server over a fresh data directory.
pub struct TestServer {
    pub state: AppState,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub fn new(config: ServerConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), &StoreConfig::default()).unwrap();
        let shop = Shop::new(Arc::new(store), ShopSettings::default());
        Self { state: AppState::new(shop, config), _dir: dir }
    }

    pub fn from_state(state: AppState, dir: tempfile::TempDir) -> Self {
        Self { state, _dir: dir }
    }

    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        self.call_with_key(method, uri, content_type, body, None).await
    }

    /// [`TestServer::call`] with `Authorization: Bearer KEY`.
    pub async fn call_with_key(
        &self,
        method: &str,
        uri: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
        key: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut builder = Request::builder().method(method).uri(uri);
        if let Some(key) = key {
            builder = builder.header("authorization", format!("Bearer {key}"));
        }
        if let Some(ct) = content_type {
            builder = builder.header("content-type", ct);
        }
        let response = router(self.state.clone()).oneshot(builder.body(Body::from(body)).unwrap()).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, value)
    }

    pub async fn json(&self, method: &str, uri: &str, body: Value) -> (StatusCode, Value) {
        self.call(method, uri, Some("application/json"), serde_json::to_vec(&body).unwrap()).await
    }

    pub async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.call("GET", uri, None, Vec::new()).await
    }
}
