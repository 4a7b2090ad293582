//! What the storefront and the admin console read besides pages: the shoppers, suggestions,
//! events over time, jobs; and the embedded files themselves.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use souk_engine::gen::{GenConfig, Generator};
use souk_engine::serving::{Shop, ShopSettings};
use souk_engine::store::{EmbeddedStore, StoreConfig, StoreSink};
use souk_server::{router, AppState, ServerConfig};
use tower::ServiceExt;

use crate::TestServer;

/// A generated shop without models.
fn generated() -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), &StoreConfig::default()).unwrap();
    let generator = Generator::new(GenConfig { items: 200, users: 40, events: 3_000, seed: 11 }).unwrap();
    let mut sink = StoreSink::new(&store);
    generator.run(&mut sink, &mut |_| {}).unwrap();
    sink.finish().unwrap();
    let shop = Shop::new(Arc::new(store), ShopSettings::default());
    TestServer::from_state(AppState::new(shop, ServerConfig::default()), dir)
}

#[tokio::test]
async fn shoppers_suggestions_and_activity_answer_from_the_data() {
    let server = generated();
    let (status, listed) = server.get("/v1/users?limit=3").await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let users = listed["users"].as_array().unwrap();
    assert_eq!(users.len(), 3);
    assert!(users.windows(2).all(|w| w[0]["events"].as_u64() >= w[1]["events"].as_u64()), "{listed}");
    let top = users[0]["id"].as_str().unwrap();
    let (_, history) = server.get(&format!("/v1/users/{top}/events?n=10000")).await;
    assert_eq!(users[0]["events"].as_u64(), Some(history["events"].as_array().unwrap().len() as u64));
    assert!(users[0]["top_categories"][0]["share"].as_f64().unwrap() > 0.0, "{listed}");
    let (status, error) = server.get("/v1/users?limit=0").await;
    assert_eq!((status, error["field"].as_str()), (StatusCode::BAD_REQUEST, Some("limit")));

    // Suggestions: a title found by the start of its second word, in either language.
    let (_, item) = server.get("/v1/items/i000007").await;
    let title = item["title"].as_str().unwrap();
    let word = title.split_whitespace().nth(1).unwrap_or(title);
    let (status, found) = server.get(&format!("/v1/suggest?q={}&n=50", &word[..word.len().min(4)])).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let texts: Vec<&str> =
        found["suggestions"].as_array().unwrap().iter().map(|s| s["text"].as_str().unwrap()).collect();
    assert!(
        texts.iter().all(|t| t
            .to_lowercase()
            .split_whitespace()
            .any(|w| w.starts_with(&word[..word.len().min(4)].to_lowercase()))),
        "{texts:?}"
    );
    let zh = item["translations"]["zh"]["title"].as_str().unwrap();
    let prefix: String = zh.chars().take(2).collect();
    let (_, found) = server.get(&format!("/v1/suggest?q={}&lang=zh&n=50", urlencode(&prefix))).await;
    assert!(found["suggestions"].as_array().unwrap().iter().any(|s| s["lang"] == "zh"), "{found}");
    let (status, error) = server.get("/v1/suggest?q=a&n=0").await;
    assert_eq!((status, error["field"].as_str()), (StatusCode::BAD_REQUEST, Some("n")));
    let (status, error) = server.get("/v1/suggest?q=a&lang=fr").await;
    assert_eq!((status, error["field"].as_str()), (StatusCode::BAD_REQUEST, Some("lang")));

    // Events over time add up to the stats.
    let (status, activity) = server.get("/v1/stats/activity?buckets=20").await;
    assert_eq!(status, StatusCode::OK, "{activity}");
    let (_, stats) = server.get("/v1/stats").await;
    for (kind, series) in activity["series"].as_object().unwrap() {
        let sum: u64 = series.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).sum();
        assert_eq!(Some(sum), stats["events_by_type"][kind].as_u64(), "{kind}");
    }
    assert!(activity["bucket_ms"].as_i64().unwrap() >= 60_000);
}

#[tokio::test]
async fn a_training_started_without_waiting_is_a_job_followed_to_its_end() {
    let server = generated();
    let (status, job) = server.json("POST", "/v1/train?wait=false", serde_json::json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    assert_eq!(job["kind"], "train");
    assert!(["queued", "running", "done"].contains(&job["state"].as_str().unwrap()), "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    let mut progress = Vec::new();
    let done = loop {
        let (status, job) = server.get(&format!("/v1/jobs/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{job}");
        progress.push(job["progress"].as_f64().unwrap());
        match job["state"].as_str().unwrap() {
            "done" => break job,
            "failed" => panic!("the training failed: {job}"),
            _ => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
        }
    };
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "progress never goes back: {progress:?}");
    assert_eq!(done["progress"], 1.0);
    assert!(done["finished_at"].as_i64() >= done["started_at"].as_i64(), "{done}");
    assert!(done["message"].as_str().unwrap().contains("events"), "{done}");
    let (_, jobs) = server.get("/v1/jobs").await;
    assert_eq!(jobs["jobs"][0]["id"], id.as_str());
    // The trained set serves.
    let (_, page) = server.get("/v1/users/u000001/recommendations?n=3").await;
    assert!(page["model"].is_string(), "{page}");
    let (status, error) = server.get("/v1/jobs/train-0-0").await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
}

#[tokio::test]
async fn the_pages_and_their_files_are_served_with_types_and_validators() {
    let server = TestServer::new(ServerConfig::default());
    let fetch = |uri: &'static str, etag: Option<String>| {
        let state = server.state.clone();
        async move {
            let mut request = Request::builder().uri(uri);
            if let Some(etag) = etag {
                request = request.header(header::IF_NONE_MATCH, etag);
            }
            router(state).oneshot(request.body(Body::empty()).unwrap()).await.unwrap()
        }
    };
    for (uri, kind, marker) in [
        ("/", "text/html", "/web/shop.js"),
        ("/admin", "text/html", "/web/admin.js"),
        ("/web/shop.js", "text/javascript", "from \"/web/common.js\""),
        ("/web/style.css", "text/css", "@media"),
    ] {
        let response = fetch(uri, None).await;
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
        let headers = response.headers().clone();
        assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with(kind), "{uri}: {headers:?}");
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
        let body = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
        assert!(String::from_utf8_lossy(&body).contains(marker), "{uri}");
        // Unchanged: 304 without a body.
        let etag = headers[header::ETAG].to_str().unwrap().to_string();
        assert_eq!(fetch(uri, Some(etag)).await.status(), StatusCode::NOT_MODIFIED, "{uri}");
        assert_eq!(fetch(uri, Some("\"other\"".into())).await.status(), StatusCode::OK, "{uri}");
    }
    let (status, error) = server.get("/web/nothing.js").await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    // Nothing the pages load comes from another host.
    for file in ["/", "/admin", "/web/shop.js", "/web/admin.js", "/web/common.js", "/web/style.css"] {
        let (_, body) = server.get(file).await;
        // (The SVG namespace is a name, not a fetch.)
        let text = body.as_str().unwrap().replace("http://www.w3.org/2000/svg", "");
        assert!(!text.contains("https://") && !text.contains("http://"), "{file} names another host");
    }
}

fn urlencode(text: &str) -> String {
    serde_urlencoded::to_string([("q", text)]).unwrap().trim_start_matches("q=").to_string()
}
