//! `/v1/search` over the checked-in bilingual test catalog.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{json, Value};
use souk_engine::search::{SearchConfig, SearchIndex};
use souk_engine::serving::{Shop, ShopSettings};
use souk_engine::store::{EmbeddedStore, StoreConfig};
use souk_server::{AppState, ServerConfig};

use crate::TestServer;

fn catalog() -> Vec<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/search/catalog.jsonl");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| {
            let mut value: Value = serde_json::from_str(line).unwrap();
            value.as_object_mut().unwrap().remove("kind");
            value
        })
        .collect()
}

fn server() -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path(), &StoreConfig::default()).unwrap());
    let settings = SearchConfig { commit_interval_ms: 20, ..SearchConfig::default() };
    let index = SearchIndex::open(&dir.path().join("search"), settings.clone(), store.as_ref()).unwrap();
    let shop = Shop::new(store, ShopSettings { search: settings, ..ShopSettings::default() }).with_search(index, None);
    TestServer::from_state(AppState::new(shop, ServerConfig::default()), dir)
}

async fn until(server: &TestServer, uri: &str, test: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let (status, body) = server.get(uri).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if test(&body) {
            return body;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{uri}: never satisfied; last {body}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn ids(body: &Value) -> Vec<String> {
    body["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_filters_facets_explains_and_logs() {
    let server = server();
    let (status, body) = server.json("POST", "/v1/items", Value::Array(catalog())).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // New items become searchable without a restart.
    let body =
        until(&server, "/v1/search?q=%E8%93%9D%E7%89%99%E8%80%B3%E6%9C%BA", |b| b["total"].as_u64() > Some(0)).await;
    assert_eq!(ids(&body)[..2], ["z02", "z03"], "蓝牙耳机: {body}");
    assert!(body["request_id"].as_str().is_some_and(|r| !r.is_empty()));
    assert_eq!(body["mode"], "keyword");
    assert!(body["facets"]["brand"].as_array().is_some_and(|b| !b.is_empty()), "{body}");

    // Filters (repeated brands, category path, price), sorting and explanations.
    let (_, body) = server.get("/v1/search?category=Electronics&brand=Sony,Samsung&sort=price_asc&explain=true").await;
    assert_eq!(ids(&body), vec!["e01", "e04"]);
    let (_, body) = server.get("/v1/search?category=Electronics&brand=Sony&brand=Samsung&sort=price_asc").await;
    assert_eq!(ids(&body), vec!["e01", "e04"], "brand repeats: {body}");
    let (_, body) = server.get("/v1/search?q=wireless&explain=true&n=1").await;
    assert!(body["items"][0]["explain"]["bm25"].as_f64().is_some_and(|s| s > 0.0), "{body}");
    assert_eq!(body["items"].as_array().unwrap().len(), 1);
    assert_eq!(body["total"], 2);
    // The words that matched, as reasons: stemmed English, a brand, Chinese compounds.
    let (_, body) = server.get("/v1/search?q=sony%20headphone&explain=true").await;
    assert_eq!(body["items"][0]["explain"]["matched"], json!(["sony", "headphone"]), "{body}");
    let (_, body) =
        server.get("/v1/search?q=%E8%93%9D%E7%89%99%E8%80%B3%E6%9C%BA%20%E5%8D%8E%E4%B8%BA&explain=true").await;
    assert_eq!(body["items"][0]["id"], "z02", "{body}");
    let matched = body["items"][0]["explain"]["matched"].as_array().unwrap();
    assert!(matched.contains(&json!("华为")) && matched.len() >= 2, "{body}");
    let (_, body) = server.get("/v1/search?q=wireless").await;
    assert!(body["items"][0].get("explain").is_none(), "{body}");
    let (_, body) = server.get("/v1/search?attr.color=White&include_unavailable=true&n=50").await;
    let mut white = ids(&body);
    white.sort();
    assert_eq!(white, vec!["e02", "e07", "e18"]);
    let (_, body) = server.get("/v1/search?q=espresso").await;
    assert_eq!(body["total"], 0, "unavailable items are hidden by default");
    let (_, body) = server.get("/v1/search?q=espresso&include_unavailable=true").await;
    assert_eq!(ids(&body), vec!["e20"]);

    // A search by a known user is logged as search + impression with the request id.
    let (_, body) = server.get("/v1/search?q=headphones&user=u1").await;
    let request_id = body["request_id"].as_str().unwrap().to_string();
    let events = until(&server, "/v1/users/u1/events", |b| b["events"].as_array().is_some_and(|e| e.len() >= 2)).await;
    let events = events["events"].as_array().unwrap();
    let search = events.iter().find(|e| e["type"] == "search").expect("a search event");
    assert_eq!(search["query"], "headphones");
    assert_eq!(search["request_id"], request_id.as_str());
    let impression = events.iter().find(|e| e["type"] == "impression").expect("an impression event");
    assert_eq!(impression["items"], json!(["e01"]));

    // The personal touch: a shopper who bought Sony items sees Sony first among 耳机.
    let purchase = json!([{"type": "purchase", "user": "u2", "item": "e01", "timestamp": 1_700_000_000_000i64}]);
    assert_eq!(server.json("POST", "/v1/events", purchase).await.0, StatusCode::OK);
    let (_, plain) = server.get("/v1/search?q=%E8%80%B3%E6%9C%BA").await;
    let (_, personal) = server.get("/v1/search?q=%E8%80%B3%E6%9C%BA&user=u2&explain=true").await;
    assert_eq!(ids(&personal)[0], "z04", "plain {:?}, personal {:?}", ids(&plain), ids(&personal));
    assert!(personal["personal"]["brands"]["sony"].as_f64() == Some(1.0), "{personal}");

    // A deleted item leaves search.
    assert_eq!(server.call("DELETE", "/v1/items/z04", None, Vec::new()).await.0, StatusCode::NO_CONTENT);
    until(&server, "/v1/search?q=WH-1000XM5", |b| !ids(b).contains(&"z04".to_string())).await;
}

#[tokio::test]
async fn own_vectors_search_through_post() {
    let server = server();
    let items = json!([
        {"id": "a", "title": "Red chair", "vectors": {"image": [1.0, 0.0, 0.0]}},
        {"id": "b", "title": "Blue chair", "image": "/img/blue.jpg", "vectors": {"image": [0.0, 1.0, 0.0]}},
        {"id": "c", "title": "Green lamp", "vectors": {"image": [0.0, 0.0, 1.0]}}
    ]);
    assert_eq!(server.json("POST", "/v1/items", items).await.0, StatusCode::OK);
    // A vector of another size than its space's is a conflict with what is stored (409,
    // the request itself is well formed), and nothing is stored.
    let bad = json!([{"id": "d", "title": "Odd", "vectors": {"image": [1.0, 0.0]}}]);
    let (status, body) = server.json("POST", "/v1/items", bad).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        (body["code"].as_str(), body["field"].as_str()),
        (Some("dimension_mismatch"), Some("items[0].vectors.image"))
    );
    assert_eq!(server.get("/v1/items/d").await.0, StatusCode::NOT_FOUND);
    let (status, body) = server.json("PUT", "/v1/items/d", json!({"title": "Odd", "vectors": {"image": [1.0]}})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("dimension_mismatch")), "{body}");
    let (status, body) =
        server.json("POST", "/v1/search", json!({"mode": "semantic", "space": "image", "vector": [1.0]})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("dimension_mismatch")), "{body}");
    // A longer query vector than any space may have is malformed.
    let long = vec![1.0; souk_engine::input::MAX_VECTOR_DIMS + 1];
    let (status, body) =
        server.json("POST", "/v1/search", json!({"mode": "semantic", "space": "image", "vector": long})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_vector")), "{body}");

    let query = json!({"mode": "semantic", "space": "image", "vector": [0.1, 0.9, 0.0], "n": 2, "explain": true});
    let started = Instant::now();
    loop {
        let (status, body) = server.json("POST", "/v1/search", query.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["total"].as_u64() > Some(0) {
            assert_eq!(ids(&body), vec!["b", "a"]);
            assert!(body["items"][0]["explain"]["vector"].as_f64().is_some());
            assert_eq!(body["items"][0]["image"], "/img/blue.jpg", "hits carry the catalog's picture");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Hybrid with a keyword: "chair" and the vector agree on b.
    let hybrid = json!({"q": "chair", "mode": "hybrid", "space": "image", "vector": [0.0, 1.0, 0.0]});
    let (_, body) = server.json("POST", "/v1/search", hybrid).await;
    assert_eq!(body["mode"], "hybrid");
    assert_eq!(ids(&body)[0], "b");
}

#[tokio::test]
async fn bad_search_input_gets_stable_codes() {
    let server = server();
    for (uri, code, field) in [
        ("/v1/search?n=0", "invalid_number", "n"),
        ("/v1/search?n=abc", "invalid_parameter", "n"),
        ("/v1/search?n=101", "invalid_number", "n"),
        ("/v1/search?offset=20000", "invalid_number", "offset"),
        ("/v1/search?mode=fuzzy", "invalid_parameter", "mode"),
        ("/v1/search?fusion=max", "invalid_parameter", "fusion"),
        ("/v1/search?alpha=2", "invalid_parameter", "alpha"),
        ("/v1/search?sort=cheapest", "invalid_parameter", "sort"),
        ("/v1/search?min_price=-1", "invalid_number", "min_price"),
        ("/v1/search?min_price=10&max_price=5", "invalid_range", "min_price"),
        ("/v1/search?colour=red", "unknown_parameter", "colour"),
        ("/v1/search?explain=maybe", "invalid_parameter", "explain"),
        ("/v1/search?q=x&mode=semantic", "semantic_unavailable", "mode"),
        ("/v1/search?user=%00bad", "invalid_id", "user"),
        // One value where the document says one: a list is refused, not cut to its last.
        ("/v1/search?lang=en&lang=zh", "invalid_parameter", "lang"),
        ("/v1/search?q=a&n=2&q=b", "invalid_parameter", "q"),
    ] {
        let (status, body) = server.get(uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(body["code"], code, "{uri}: {body}");
        assert_eq!(body["field"], field, "{uri}: {body}");
    }
    let (status, body) = server.json("POST", "/v1/search", json!({"q": "x", "colour": "red"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "invalid_body");
    let (status, body) = server.json("POST", "/v1/search", json!({"vector": [0.0, 0.0]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "vector");
    // Values are judged before narrowing to f32: beyond the document's range is refused,
    // not rounded into it.
    for (body, field) in [
        (json!({"vector": [3.402_823_5e38]}), "vector"),
        (json!({"vector": [1e-50]}), "vector"),
        (json!({"fusion": "weighted", "alpha": 1.000_000_000_000_000_2}), "alpha"),
    ] {
        let (status, answer) = server.json("POST", "/v1/search", body.clone()).await;
        assert_eq!((status, answer["field"].as_str()), (StatusCode::BAD_REQUEST, Some(field)), "{body}: {answer}");
    }
    let (status, body) =
        server.json("POST", "/v1/search", json!({"mode": "semantic", "space": "nope", "vector": [1.0]})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["code"], "unknown_vector_space");

    // Without a search index the endpoint says so.
    let plain = TestServer::new(ServerConfig::default());
    let (status, body) = plain.get("/v1/search?q=x").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "search_unavailable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_pin_bury_and_filter_search_results() {
    let server = server();
    let (status, body) = server.json("POST", "/v1/items", Value::Array(catalog())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let plain = until(&server, "/v1/search?category=Electronics&n=20", |b| b["total"].as_u64() > Some(3)).await;
    let plain_ids = ids(&plain);
    // Pin the sixth result at 1, bury the first, filter the brand of the second (through
    // POST, rules as an object).
    let (_, second) = server.get(&format!("/v1/items/{}", plain_ids[1])).await;
    let brand = second["brand"].as_str().unwrap().to_string();
    let rules = json!({
        "pin": [{"item": plain_ids[5], "position": 1}],
        "bury": [{"items": [plain_ids[0]]}],
        "filter": [{"brand": brand}],
    });
    let (status, ruled) =
        server.json("POST", "/v1/search", json!({"category": "Electronics", "n": 20, "rules": rules})).await;
    assert_eq!(status, StatusCode::OK, "{ruled}");
    let got = ids(&ruled);
    assert_eq!(got[0], plain_ids[5], "{ruled}");
    assert_eq!(ruled["items"][0]["effects"][0], json!({"rule": "pin", "position": 1}));
    assert_eq!(got.last(), Some(&plain_ids[0]), "buried item last: {ruled}");
    assert!(ruled["items"].as_array().unwrap().iter().all(|i| i["brand"] != brand.as_str()), "{ruled}");
    // The same through GET, and a bad rule names its field.
    let query: String = serde_urlencoded::to_string([("rules", rules.to_string())]).unwrap();
    let (_, via_get) = server.get(&format!("/v1/search?category=Electronics&n=20&{query}")).await;
    assert_eq!(ids(&via_get), got);
    // A pinned item outside the filters never shows (z02 is not under Electronics).
    let outside = json!({"pin": [{"item": "z02", "position": 1}]});
    let (_, body) = server.json("POST", "/v1/search", json!({"category": "Electronics", "rules": outside})).await;
    assert!(!ids(&body).contains(&"z02".to_string()), "{body}");
    let (_, body) = server.json("POST", "/v1/search", json!({"q": "wireless", "rules": outside})).await;
    assert_eq!(ids(&body)[0], "z02", "a pinned item joins results it did not match: {body}");
    let bad = json!({"pin": [{"item": "z02", "position": 0}]});
    let (status, error) = server.json("POST", "/v1/search", json!({"q": "x", "rules": bad})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(error["code"], "invalid_rule");
    assert_eq!(error["field"], "rules.pin[0].position");
}
