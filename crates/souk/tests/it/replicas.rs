//! Scale-out: two `souk serve` replicas over one PostgreSQL database. What one replica is
//! told — items, events, a training — reaches the pages the other serves.
//!
//! Needs a PostgreSQL server (`SOUK_POSTGRES_URL`; see `souk_engine::store::postgres::test_db`):
//! skipped with a message without one, a failure when `SOUK_POSTGRES_TESTS=required`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use souk_engine::store::postgres::test_db::TestDb;

use crate::Server;

/// How long a change may take to reach the other replica before the test fails (the
/// design's bound is about a second: a notification, or the follower's once-a-second look).
const DEADLINE: Duration = Duration::from_secs(30);

fn get(server: &Server, path: &str) -> Value {
    ureq::get(&server.url(path)).call().unwrap().into_json().unwrap()
}

/// Poll `check` until it holds or the deadline passes; returns how long it took.
fn eventually(what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < DEADLINE, "{what}: not seen within {DEADLINE:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

fn first_recommended(server: &Server, user: &str) -> Option<String> {
    let page = get(server, &format!("/v1/users/{user}/recommendations?n=3"));
    page["items"].as_array()?.first()?["id"].as_str().map(str::to_string)
}

#[test]
fn two_replicas_over_one_database_serve_each_others_writes() {
    let Some(db) = TestDb::create() else { return };
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let env = [("SOUK__STORE__URL", db.url.as_str())];
    let a = Server::start_with(dir_a.path(), &env);
    let b = Server::start_with(dir_b.path(), &env);

    // The catalog, written through A, reaches B's search index.
    let items: Vec<Value> = (0..8)
        .map(|i| json!({"id": format!("i{i}"), "title": format!("Teapot number {i}"), "category": "Kitchen > Tea", "price": 10 + i}))
        .collect();
    ureq::post(&a.url("/v1/items")).send_json(Value::Array(items)).unwrap();
    let took = eventually("items written to A found by B's search", || {
        get(&b, "/v1/search?q=teapot&n=20")["total"].as_u64() == Some(8)
    });
    eprintln!("catalog change reached replica B in {took:?}");

    // Events posted to A change the page B serves: i5 becomes what everyone buys.
    let events: Vec<Value> = (0..12)
        .map(|u| json!({"id": format!("p{u}"), "type": "purchase", "user": format!("buyer{u}"), "item": "i5", "timestamp": 1_764_979_200_000i64 + u}))
        .chain((0..3).map(|u| json!({"id": format!("v{u}"), "type": "view", "user": format!("viewer{u}"), "item": "i2", "timestamp": 1_764_979_200_000i64 + u})))
        .collect();
    let body: Value = ureq::post(&a.url("/v1/events")).send_json(Value::Array(events)).unwrap().into_json().unwrap();
    assert_eq!(body["accepted"], 15);
    let took = eventually("events posted to A changing B's recommendations", || {
        first_recommended(&b, "newcomer").as_deref() == Some("i5")
    });
    eprintln!("events reached replica B's recommendations in {took:?}");
    assert_eq!(get(&b, "/v1/stats")["events"], 15);

    // An erasure through B reaches A.
    ureq::delete(&b.url("/v1/users/buyer0")).call().unwrap();
    eventually("an erasure through B reaching A", || get(&a, "/v1/stats")["events"] == 14);

    // A trains; B serves the generation A published.
    let trained: Value = ureq::post(&a.url("/v1/train")).call().unwrap().into_json().unwrap();
    assert!(trained["generation"].is_string(), "{trained}");
    let model = get(&a, "/v1/users/buyer1/recommendations?n=3")["model"].clone();
    assert!(model.is_string(), "A serves its trained models");
    eventually("A's generation served by B", || get(&b, "/v1/users/buyer1/recommendations?n=3")["model"] == model);
}
