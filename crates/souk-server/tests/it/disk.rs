use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{json, Value};
use souk_engine::serving::{Shop, ShopSettings};
use souk_engine::store::{EmbeddedStore, IoFaults, StoreConfig};
use souk_server::{AppState, ServerConfig};

use crate::TestServer;

fn server_with_faults() -> (TestServer, Arc<IoFaults>) {
    let dir = tempfile::tempdir().unwrap();
    let faults = IoFaults::new();
    let store = EmbeddedStore::open_with(dir.path(), &StoreConfig::default(), Some(faults.clone())).unwrap();
    let shop = Shop::new(Arc::new(store), ShopSettings::default());
    (TestServer::from_state(AppState::new(shop, ServerConfig::default()), dir), faults)
}

fn events(range: std::ops::Range<u32>) -> Value {
    Value::Array(
        range
            .map(|n| json!({"id": format!("e{n}"), "type": "view", "user": format!("u{}", n % 7), "item": format!("i{}", n % 13), "timestamp": n}))
            .collect(),
    )
}

#[tokio::test]
async fn a_full_disk_is_answered_507_stores_nothing_of_the_batch_and_writes_resume_without_a_restart() {
    let (server, faults) = server_with_faults();
    assert_eq!(server.json("POST", "/v1/events", events(0..50)).await.0, StatusCode::OK);
    faults.fill_after(3_000);
    let (status, body) = server.json("POST", "/v1/events", events(50..550)).await;
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{body}");
    assert_eq!(body["code"], "disk_full", "{body}");
    assert!(body["message"].as_str().unwrap().contains("nothing of it was kept"), "{body}");
    assert_eq!(server.get("/v1/stats").await.1["events"], 50, "nothing partial");
    let (status, health) = server.get("/health").await;
    assert_eq!((status, health["status"].as_str()), (StatusCode::OK, Some("degraded")));
    assert!(health["writes_refused"].as_str().unwrap().contains("disk_full"), "{health}");
    // A catalog write meets the same full disk only in the log here; it still works.
    assert_eq!(server.json("PUT", "/v1/items/i1", json!({"title": "Mug"})).await.0, StatusCode::OK);

    faults.heal();
    let (status, body) = server.json("POST", "/v1/events", events(50..550)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"accepted": 500, "duplicates": 0}));
    assert_eq!(server.get("/v1/stats").await.1["events"], 550);
    let (_, health) = server.get("/health").await;
    assert_eq!(health["status"], "ok", "{health}");
    assert!(health.get("writes_refused").is_none(), "{health}");
}

#[tokio::test]
async fn a_failing_fdatasync_is_answered_503_and_the_erasure_it_refuses_changes_nothing() {
    let (server, faults) = server_with_faults();
    assert_eq!(server.json("POST", "/v1/events", events(0..70)).await.0, StatusCode::OK);
    faults.fail_syncs(true);
    let (status, body) = server.json("POST", "/v1/events", events(70..140)).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("storage_unavailable")));
    let (status, body) = server.call("DELETE", "/v1/users/u3", None, vec![]).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("storage_unavailable")));
    assert_eq!(server.get("/v1/users/u3/events?n=100").await.1["events"].as_array().unwrap().len(), 10);
    assert_eq!(server.get("/v1/stats").await.1["events"], 70);
    assert_eq!(server.get("/health").await.1["status"], "degraded");
    faults.heal();
    assert_eq!(server.call("DELETE", "/v1/users/u3", None, vec![]).await.0, StatusCode::OK);
    assert_eq!(server.json("POST", "/v1/events", events(70..140)).await.1, json!({"accepted": 70, "duplicates": 0}));
    assert_eq!(server.get("/health").await.1["status"], "ok");
}

#[tokio::test]
async fn every_write_route_documents_the_refusals_of_a_full_or_failing_disk() {
    let server = TestServer::new(ServerConfig::default());
    let (_, doc) = server.get("/openapi.json").await;
    let responses = |path: &str, method: &str| doc["paths"][path][method]["responses"].clone();
    for (path, method) in [("/v1/events", "post"), ("/v1/items/{id}", "put"), ("/v1/users/{id}", "delete")] {
        let r = responses(path, method);
        assert!(r.get("507").is_some() && r.get("503").is_some(), "{path} {method}: {r}");
    }
    assert!(responses("/v1/search", "post").get("507").is_none());
    assert!(responses("/v1/items/{id}", "get").get("507").is_none());
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_containing(&path, needle));
        } else if std::fs::read(&path).unwrap().windows(needle.len()).any(|w| w == needle) {
            found.push(path);
        }
    }
    found
}

#[tokio::test]
async fn after_an_erasure_and_one_erasure_round_no_byte_of_the_user_is_left_in_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), &StoreConfig::default()).unwrap();
    let shop = Shop::new(Arc::new(store), ShopSettings::default())
        .with_artifacts(souk_engine::store::artifacts::ArtifactStore::new(dir.path()));
    let server = TestServer::from_state(AppState::new(shop, ServerConfig::default()), tempfile::tempdir().unwrap());
    let needle = b"erasable-shopper";
    let mut batch: Vec<Value> = (0..300)
        .map(|n| json!({"id": format!("e{n}"), "type": "purchase", "user": format!("u{}", n % 11), "item": format!("i{}", n % 23), "timestamp": n}))
        .collect();
    batch.extend((0..40).map(|n| json!({"id": format!("s{n}"), "type": "purchase", "user": "erasable-shopper", "item": format!("i{}", n % 23), "timestamp": 400 + n})));
    assert_eq!(server.json("POST", "/v1/events", Value::Array(batch)).await.0, StatusCode::OK);
    let (status, _) = server
        .json("PUT", "/v1/users/erasable-shopper", json!({"id": "erasable-shopper", "attributes": {"region": "EU"}}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = server.call("POST", "/v1/train", None, vec![]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(files_containing(dir.path(), needle).len() >= 3, "log, catalog and model generation hold the user");

    assert_eq!(server.call("DELETE", "/v1/users/erasable-shopper", None, vec![]).await.0, StatusCode::OK);
    // What the server's erasure loop does every ten seconds.
    souk_server::train_api::erasure_round(&server.state).await;
    assert_eq!(files_containing(dir.path(), needle), Vec::<std::path::PathBuf>::new());
    // The shop serves on, from the compacted log.
    assert_eq!(server.get("/v1/stats").await.1["events"], 300);
    assert_eq!(server.get("/v1/users/u3/events?n=100").await.1["events"].as_array().unwrap().len(), 27);
    assert_eq!(server.json("POST", "/v1/events", events(1_000..1_010)).await.0, StatusCode::OK);
    assert_eq!(server.get("/v1/stats").await.1["events"], 310);
}

#[tokio::test]
async fn no_compaction_starts_while_writes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let faults = IoFaults::new();
    let store = EmbeddedStore::open_with(dir.path(), &StoreConfig::default(), Some(faults.clone())).unwrap();
    let shop = Shop::new(Arc::new(store), ShopSettings::default());
    let server = TestServer::from_state(AppState::new(shop, ServerConfig::default()), tempfile::tempdir().unwrap());
    let needle = b"erasable-shopper";
    let mut batch: Vec<Value> = (0..20)
        .map(|n| json!({"id": format!("s{n}"), "type": "view", "user": "erasable-shopper", "item": format!("i{n}"), "timestamp": n}))
        .collect();
    batch.extend((0..50).map(
        |n| json!({"id": format!("e{n}"), "type": "view", "user": "u1", "item": format!("i{n}"), "timestamp": n}),
    ));
    assert_eq!(server.json("POST", "/v1/events", Value::Array(batch)).await.0, StatusCode::OK);
    assert_eq!(server.call("DELETE", "/v1/users/erasable-shopper", None, vec![]).await.0, StatusCode::OK);
    // A write fails, and the disk keeps failing: degraded, and no compaction starts.
    faults.fail_syncs(true);
    assert_eq!(server.json("POST", "/v1/events", events(100..110)).await.0, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(server.get("/health").await.1["status"], "degraded");
    souk_server::train_api::erasure_round(&server.state).await;
    assert!(!files_containing(dir.path(), needle).is_empty(), "no compaction while writes are refused");
    assert_eq!(server.get("/v1/stats").await.1["events"], 50, "the erased events are never served");
    // The disk works again. With no write since, the health check finds it so (it probes
    // the disk at most once a second), and the next round compacts.
    faults.heal();
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    assert_eq!(server.get("/health").await.1["status"], "ok");
    souk_server::train_api::erasure_round(&server.state).await;
    assert_eq!(files_containing(dir.path(), needle), Vec::<std::path::PathBuf>::new());
    assert_eq!(server.json("POST", "/v1/events", events(100..110)).await.0, StatusCode::OK);
    assert_eq!(server.get("/v1/stats").await.1["events"], 60);
}
