//! Recommendations served from a trained model set over a generated shop.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{json, Value};
use souk_engine::gen::{GenConfig, Generator};
use souk_engine::rank::ranker::{FeatureLog, RankConfig};
use souk_engine::recommend::EventWeights;
use souk_engine::search::{SearchConfig, SearchIndex};
use souk_engine::serving::page_log::Surface;
use souk_engine::serving::{ModelSet, RecommendConfig, Shop, ShopSettings};
use souk_engine::store::{EmbeddedStore, StoreConfig, StoreSink};
use souk_server::{AppState, ServerConfig};

use crate::TestServer;

fn shop() -> TestServer {
    shop_with(None).0
}

/// A generated shop with trained models; with `ranking`, its pages log impressions and
/// feature rows for the ranker.
fn shop_with(ranking: Option<RankConfig>) -> (TestServer, Generator) {
    shop_with_search(ranking, false)
}

/// [`shop_with`], and with `search` a search index over the catalog.
fn shop_with_search(ranking: Option<RankConfig>, search: bool) -> (TestServer, Generator) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), &StoreConfig::default()).unwrap();
    let generator = Generator::new(GenConfig { items: 300, users: 80, events: 6_000, seed: 3 }).unwrap();
    let mut sink = StoreSink::new(&store);
    generator.run(&mut sink, &mut |_| {}).unwrap();
    sink.finish().unwrap();
    let settings = ShopSettings {
        recommend: RecommendConfig::default(),
        weights: EventWeights::default(),
        search: SearchConfig { commit_interval_ms: 20, ..SearchConfig::default() },
        ranking: ranking.clone().unwrap_or_default(),
        ..ShopSettings::default()
    };
    let set = ModelSet::train(&store, &settings.recommend, &settings.weights).unwrap();
    let index = search.then(|| SearchIndex::open(&dir.path().join("search"), settings.search.clone(), &store).unwrap());
    let mut shop = Shop::new(Arc::new(store), settings).with_models(Some(set));
    if ranking.is_some() {
        shop = shop.with_page_log(FeatureLog::in_data_dir(dir.path()));
    }
    if let Some(index) = index {
        shop = shop.with_search(index, None);
    }
    (TestServer::from_state(AppState::new(shop, ServerConfig::default()), dir), generator)
}

/// Waits until the store holds `count` impressions (pages log them in the background).
async fn until_impressions(server: &TestServer, count: u64) {
    let started = std::time::Instant::now();
    loop {
        let (_, stats) = server.get("/v1/stats").await;
        if stats["events_by_type"]["impression"].as_u64() >= Some(count) {
            return;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "{stats}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn ids(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn an_event_changes_the_next_recommendations_without_retraining() {
    let server = shop();
    let (status, before) = server.get("/v1/users/u000007/recommendations?n=20").await;
    assert_eq!(status, StatusCode::OK, "{before}");
    assert_eq!(ids(&before).len(), 20);
    // The user now views the first recommended item.
    let viewed = ids(&before)[0].clone();
    let (status, _) = server
        .json(
            "POST",
            "/v1/events",
            json!([{"type": "view", "user": "u000007", "item": viewed, "timestamp": "2026-06-01T00:00:00Z"}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, after) = server.get("/v1/users/u000007/recommendations?n=20").await;
    let after_ids = ids(&after);
    assert!(!after_ids.contains(&viewed), "a seen item came back");
    assert_ne!(ids(&before), after_ids);
    // And the new view explains something: "because you viewed" it.
    let because: Vec<&str> = after["items"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["reasons"].as_array().unwrap().iter().filter_map(|r| r["because"].as_str()))
        .collect();
    assert!(because.contains(&viewed.as_str()), "no reason points at the new view: {because:?}");
}

#[tokio::test]
async fn pages_never_repeat_an_item_even_when_events_arrive_between_them() {
    let server = shop();
    let mut seen = HashSet::new();
    let mut cursor: Option<String> = None;
    for page in 0..6 {
        let uri = match &cursor {
            Some(c) => format!("/v1/users/u000011/recommendations?n=15&cursor={c}"),
            None => "/v1/users/u000011/recommendations?n=15".to_string(),
        };
        let (status, body) = server.get(&uri).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        for id in ids(&body) {
            assert!(seen.insert(id.clone()), "item {id} repeated on page {page}");
        }
        // Shift the ranking between pages.
        server
            .json("POST", "/v1/events", json!([{"type": "purchase", "user": "u000011", "item": format!("i{:06}", 100 + page), "timestamp": 1_780_000_000_000i64 + page}]))
            .await;
        cursor = body["next_cursor"].as_str().map(str::to_string);
        // The text the document's pattern states: the version digit, eight hex digits per item.
        assert!(
            cursor.as_deref().is_some_and(|c| c.starts_with('2')
                && (c.len() - 1) % 8 == 0
                && c[1..].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))),
            "{cursor:?}"
        );
    }
    assert_eq!(seen.len(), 90);
    let (status, body) = server.get("/v1/users/u000011/recommendations?cursor=not-a-cursor").await;
    assert_eq!(
        (status, body["code"].as_str(), body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_cursor"), Some("cursor"))
    );
}

#[tokio::test]
async fn excluded_and_filtered_items_never_appear() {
    let server = shop();
    for user in ["u000001", "u000002", "u000003", "u000040"] {
        let (_, history) = server.get(&format!("/v1/users/{user}/events?n=10000")).await;
        let touched: HashSet<String> = history["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] != "search" && e["type"] != "impression")
            .filter_map(|e| e["item"].as_str().map(str::to_string))
            .collect();
        let (_, page) = server.get(&format!("/v1/users/{user}/recommendations?n=100")).await;
        for id in ids(&page) {
            assert!(!touched.contains(&id), "{user} was recommended {id}, which they already interacted with");
        }
        let (_, filtered) =
            server.get(&format!("/v1/users/{user}/recommendations?n=30&category=Electronics&max_price=200")).await;
        assert!(!ids(&filtered).is_empty());
        for id in ids(&filtered) {
            let (_, item) = server.get(&format!("/v1/items/{id}")).await;
            assert_eq!(item["category"][0], "Electronics", "{item}");
            assert!(item["price"].as_f64().unwrap() <= 200.0);
            assert_eq!(item["available"], true);
        }
    }
}

#[tokio::test]
async fn similar_items_and_trending_answer_with_reasons() {
    let server = shop();
    let (status, similar) = server.get("/v1/items/i000005/similar?n=5").await;
    assert_eq!(status, StatusCode::OK, "{similar}");
    let items = similar["items"].as_array().unwrap();
    assert!(!items.is_empty() && items.len() <= 5);
    assert!(items.iter().all(|i| i["id"] != "i000005" && i["reasons"][0]["because"] == "i000005"));
    let (status, trending) = server.get("/v1/trending?n=7").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&trending).len(), 7);
    assert_eq!(server.get("/v1/items/nope/similar").await.0, StatusCode::NOT_FOUND);
    assert_eq!(server.get("/v1/users/u1/recommendations?n=0").await.0, StatusCode::BAD_REQUEST);
    assert_eq!(server.get("/v1/users/u1/recommendations?exclude=everything").await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn before_training_recommendations_fall_back_to_trending_and_training_swaps_in_a_model() {
    let server = TestServer::new(ServerConfig::default());
    let events: Vec<Value> = (0..40)
        .map(|n| json!({"type": "view", "user": format!("u{}", n % 8), "item": format!("i{}", n % 6), "timestamp": 1000 + n}))
        .collect();
    server.json("POST", "/v1/events", Value::Array(events)).await;
    // Events arrived before their items: stored, counted, but nothing is served until the
    // catalog holds the items.
    let (status, page) = server.get("/v1/users/u0/recommendations?n=5&exclude=none").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&page), Vec::<String>::new(), "{page}");
    assert_eq!(server.get("/v1/stats").await.1["items_without_record"], 6);
    let catalog: Vec<Value> = (0..6)
        .map(|n| json!({"id": format!("i{n}"), "title": format!("Item {n}"), "brand": if n == 0 { "Acme" } else { "Other" }}))
        .collect();
    let (status, body) = server.json("POST", "/v1/items", Value::Array(catalog)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(server.get("/v1/stats").await.1["items_without_record"], 0);
    let (status, page) = server.get("/v1/users/u0/recommendations?n=5&exclude=none").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page["model"].is_null());
    assert_eq!(page["items"][0]["reasons"][0]["source"], "trending");
    // Rules apply to the trending fallback too.
    let rules = json!({"pin": [{"item": "i5", "position": 1}], "filter": [{"brand": "Acme"}]});
    let (status, ruled) =
        server.get(&format!("/v1/users/u0/recommendations?n=5&exclude=none&{}", rules_query(&rules))).await;
    assert_eq!(status, StatusCode::OK, "{ruled}");
    let ruled_ids = ids(&ruled);
    assert_eq!(ruled_ids[0], "i5", "{ruled}");
    assert_eq!(ruled["items"][0]["effects"][0]["rule"], "pin", "{ruled}");
    assert!(!ruled_ids.contains(&"i0".to_string()), "{ruled}");
    assert_eq!(ruled_ids.len(), 5);
    // Before any training, similar answers from the catalog (items i1..i5 share the brand).
    let (status, similar) = server.get("/v1/items/i1/similar?n=3").await;
    assert_eq!(status, StatusCode::OK, "{similar}");
    assert_eq!(ids(&similar), vec!["i2", "i3", "i4"], "{similar}");
    let (status, trained) = server.call("POST", "/v1/train", None, Vec::new()).await;
    assert_eq!(status, StatusCode::OK, "{trained}");
    assert_eq!(trained["manifest"]["users"], 8);
    let (_, page) = server.get("/v1/users/u0/recommendations?n=5&exclude=none").await;
    assert!(page["model"].is_string());
}

#[tokio::test]
async fn a_profile_reads_as_the_shoppers_tastes_with_a_preference_vector() {
    let server = shop();
    let truth =
        Generator::new(GenConfig { items: 300, users: 80, events: 6_000, seed: 3 }).unwrap().ground_truth().unwrap();
    // The most active of the first 40 shoppers.
    let mut best: Option<(u64, Value, usize)> = None;
    for (index, user) in truth.users.iter().enumerate().take(40) {
        let (status, profile) = server.get(&format!("/v1/users/{}/profile", user.id)).await;
        if status == StatusCode::NOT_FOUND {
            continue;
        }
        assert_eq!(status, StatusCode::OK, "{profile}");
        let events = profile["activity"]["events"].as_u64().unwrap();
        if best.as_ref().is_none_or(|(e, _, _)| events > *e) {
            best = Some((events, profile, index));
        }
    }
    let (events, profile, index) = best.unwrap();
    let user = &truth.users[index];
    assert!(events >= 20, "{profile:#}");
    assert_eq!(profile["user"], user.id.as_str());
    assert_eq!(profile["categories"][0]["name"], user.dominant_category.as_str(), "{profile:#}");
    assert!(["browsing", "comparing", "carting", "buying"].contains(&profile["funnel_stage"].as_str().unwrap()));
    assert_eq!(profile["preference_vector"]["model"], "als", "{profile:#}");
    assert_eq!(
        profile["preference_vector"]["values"].as_array().unwrap().len() as u64,
        profile["preference_vector"]["dimensions"].as_u64().unwrap()
    );
    let shares: f64 = profile["categories"].as_array().unwrap().iter().map(|c| c["share"].as_f64().unwrap()).sum();
    assert!(shares <= 1.0 + 1e-9 && shares > 0.5, "{shares}");

    let (status, missing) = server.get("/v1/users/nobody-here/profile").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    assert_eq!(missing["code"], "not_found");
    let (status, bad) = server.get("/v1/users/a%01b/profile").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert_eq!(bad["code"], "invalid_id");
}

fn rules_query(rules: &Value) -> String {
    let encoded: String = serde_urlencoded::to_string([("rules", rules.to_string())]).unwrap();
    encoded
}

#[tokio::test]
async fn rules_pin_filter_and_spread_recommendations() {
    let server = shop();
    let (_, plain) = server.get("/v1/users/u000007/recommendations?n=10").await;
    let plain_ids = ids(&plain);
    // Pin the fifth item first, and an item recall did not propose at 3; filter the brand
    // of the second; at most one item per brand in any 3 consecutive positions.
    let (_, item) = server.get(&format!("/v1/items/{}", plain_ids[1])).await;
    let brand = item["brand"].as_str().unwrap().to_string();
    let (_, far) = server.get("/v1/users/u000007/recommendations?n=200").await;
    let outsider = ids(&far).last().unwrap().clone();
    let rules = json!({
        "pin": [{"item": plain_ids[4], "position": 1}, {"item": outsider, "position": 3}],
        "filter": [{"brand": brand}],
        "diversity": {"quota": {"by": "brand", "max_per_window": 1, "window": 3}},
    });
    let (status, page) = server.get(&format!("/v1/users/u000007/recommendations?n=10&{}", rules_query(&rules))).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let got = ids(&page);
    assert_eq!(got.len(), 10);
    assert_eq!(got[0], plain_ids[4]);
    assert_eq!(got[2], outsider);
    assert_eq!(page["items"][0]["effects"][0], json!({"rule": "pin", "position": 1}), "{page}");
    let mut brands = Vec::new();
    for id in &got {
        let (_, item) = server.get(&format!("/v1/items/{id}")).await;
        brands.push(item["brand"].as_str().unwrap_or("").to_string());
    }
    assert!(!brands.contains(&brand), "a filtered brand came back: {brands:?}");
    // Organic positions keep the quota unless it had to be relaxed (reported).
    for (position, window) in brands.windows(3).enumerate() {
        let relaxed = (position..position + 3).any(|p| {
            page["items"][p]["effects"].as_array().is_some_and(|e| e.iter().any(|x| x["rule"] == "quota_relaxed"))
        });
        let pinned = (position..position + 3).filter(|p| *p == 0 || *p == 2).count();
        let distinct: HashSet<&String> = window.iter().collect();
        assert!(relaxed || pinned > 0 || distinct.len() == 3, "brands {window:?} at {position}: {page}");
    }
    // The next page continues without repeats, and the pins do not come back.
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, next) =
        server.get(&format!("/v1/users/u000007/recommendations?n=10&cursor={cursor}&{}", rules_query(&rules))).await;
    let next_ids = ids(&next);
    assert!(next_ids.iter().all(|id| !got.contains(id)), "{next}");

    // Bad rules are refused with the offending field.
    let bad = json!({"boost": [{"when": {"brand": "x"}, "factor": -1}]});
    let (status, error) = server.get(&format!("/v1/users/u000007/recommendations?{}", rules_query(&bad))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(error["code"], "invalid_rule");
    assert_eq!(error["field"], "rules.boost[0].factor");
    let (status, error) = server.get("/v1/users/u000007/recommendations?rules=%7Bnope").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(error["field"], "rules");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ranker_learns_from_logged_pages_and_serves_with_explanations() {
    // Every page logged, a fifth of them shuffled.
    let ranking = RankConfig { explore_share: 0.2, log_share: 1.0, ..RankConfig::default() };
    let (server, generator) = shop_with(Some(ranking));
    // The first training finds no logged traffic: no ranker yet, but pages start logging.
    let (status, trained) = server.json("POST", "/v1/train", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{trained}");
    assert!(trained["ranker"].is_null(), "{trained}");
    let item_index = |id: &str| id.trim_start_matches('i').parse::<usize>().unwrap();
    let mut clicks = Vec::new();
    for request in 0..600usize {
        let user = request * 7 % 80;
        let (status, page) = server.get(&format!("/v1/users/u{user:06}/recommendations?n=10")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let request_id = page["request_id"].as_str().unwrap().to_string();
        // Shoppers click the two items they like most, wherever they are, and buy the best.
        let mut liked: Vec<(f64, usize, String)> = ids(&page)
            .into_iter()
            .enumerate()
            .map(|(slot, id)| (generator.true_utility(user, item_index(&id)).unwrap(), slot, id))
            .collect();
        liked.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (rank, (_, slot, id)) in liked.iter().take(2).enumerate() {
            // Pages are logged at the server's clock; clicks come after.
            let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
            clicks.push(json!({"type": "click", "user": format!("u{user:06}"), "item": id, "request_id": request_id,
                "position": slot, "timestamp": ts + 10}));
            if rank == 0 {
                clicks.push(
                    json!({"type": "add_to_cart", "user": format!("u{user:06}"), "item": id, "timestamp": ts + 20}),
                );
            }
        }
    }
    // Impressions are logged in the background; wait until they are stored.
    until_impressions(&server, 600).await;
    for chunk in clicks.chunks(500) {
        let (status, body) = server.json("POST", "/v1/events", Value::Array(chunk.to_vec())).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, trained) = server.json("POST", "/v1/train", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{trained}");
    let report = &trained["ranker"];
    assert!(report.is_object(), "{trained}");
    assert!(report["requests_with_clicks"].as_u64() >= Some(500), "{report}");
    assert!(report["propensities"].is_array(), "the explore arm estimated position bias: {report}");
    assert!(report["ndcg_model"].as_f64() > report["ndcg_logged"].as_f64(), "{report}");
    assert_eq!(report["promoted"], true, "{report}");
    // LambdaMART and its two challengers trained on the same rows; the one serving has the
    // best gate measure on the later window (LambdaMART unless a challenger beat it), and it
    // beat the order shown by that measure (examination-weighted: the explore arm logged).
    let learners = report["learners"].as_array().unwrap();
    let names: Vec<&str> = learners.iter().map(|l| l["learner"].as_str().unwrap()).collect();
    assert_eq!(names, ["lambdamart", "ftrl", "mlp"], "{report}");
    let best = learners.iter().map(|l| l["gate"].as_f64().unwrap()).fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(report["gate_model"].as_f64(), Some(best), "{report}");
    let serving = learners.iter().find(|l| l["gate"].as_f64() == Some(best)).unwrap();
    assert_eq!(report["learner"], serving["learner"], "{report}");
    assert_eq!(report["gate_measure"], "ipw_dcg", "{report}");
    assert!(report["gate_model"].as_f64() > report["gate_logged"].as_f64(), "{report}");
    // Served: the ranker's score, the blend rank it started from, its top features.
    let (_, page) = server.get("/v1/users/u000007/recommendations?n=5&explain=true").await;
    let first = &page["items"][0]["ranker"];
    assert!(first["score"].as_f64().is_some() && first["blend_rank"].as_u64().is_some(), "{page}");
    assert!(first["contributions"].as_array().is_some_and(|c| !c.is_empty()), "{page}");
    // And can be turned off per request.
    let (_, plain) = server.get("/v1/users/u000007/recommendations?n=5&ranker=false").await;
    assert!(plain["items"][0].get("ranker").is_none(), "{plain}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_ranker_learns_from_logged_search_pages_and_orders_them() {
    // Every search page logged, a fifth of them shuffled.
    let ranking = RankConfig { explore_share: 0.2, log_share: 1.0, ..RankConfig::default() };
    let (server, generator) = shop_with_search(Some(ranking), true);
    let (status, trained) = server.json("POST", "/v1/train", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{trained}");
    assert!(trained["search_ranker"].is_null(), "no search traffic yet: {trained}");
    let item_index = |id: &str| id.trim_start_matches('i').parse::<usize>().unwrap();
    let cases = generator.search_cases(30, false, 11);
    let (mut clicks, mut pages) = (Vec::new(), 0u64);
    for request in 0..700usize {
        let user = request * 7 % 80;
        let case = &cases[request % cases.len()];
        let query = serde_urlencoded::to_string([("q", case.query.as_str())]).unwrap();
        let (status, page) = server.get(&format!("/v1/search?{query}&user=u{user:06}&n=10&facets=false")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let shown = ids(&page);
        if shown.is_empty() {
            continue;
        }
        pages += 1;
        if shown.len() < 2 {
            continue;
        }
        let request_id = page["request_id"].as_str().unwrap().to_string();
        // Shoppers click the two results that fit the query and their taste best, wherever
        // they are, and cart the best.
        let grade = |item: usize| case.grades.iter().find(|(i, _)| *i as usize == item).map_or(0, |(_, g)| *g);
        let mut liked: Vec<(f64, usize, String)> = shown
            .into_iter()
            .enumerate()
            .map(|(slot, id)| {
                let item = item_index(&id);
                (f64::from(grade(item)) + generator.true_utility(user, item).unwrap(), slot, id)
            })
            .collect();
        liked.sort_by(|a, b| b.0.total_cmp(&a.0));
        let ts = now_ms();
        for (rank, (_, slot, id)) in liked.iter().take(2).enumerate() {
            clicks.push(json!({"type": "click", "user": format!("u{user:06}"), "item": id, "request_id": request_id,
                "position": slot, "timestamp": ts + 10}));
            if rank == 0 {
                clicks.push(
                    json!({"type": "add_to_cart", "user": format!("u{user:06}"), "item": id, "timestamp": ts + 20}),
                );
            }
        }
    }
    assert!(pages >= 400, "only {pages} searches found anything");
    until_impressions(&server, pages).await;
    for chunk in clicks.chunks(500) {
        let (status, body) = server.json("POST", "/v1/events", Value::Array(chunk.to_vec())).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, trained) = server.json("POST", "/v1/train", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{trained}");
    // Search pages train the search ranker only.
    assert!(trained["ranker"].is_null(), "{trained}");
    let report = &trained["search_ranker"];
    assert!(report["requests_with_clicks"].as_u64() >= Some(300), "{report}");
    assert!(report["ndcg_model"].as_f64() > report["ndcg_logged"].as_f64(), "{report}");
    assert_eq!(report["promoted"], true, "{report}");

    // Served: each result carries the ranker's score and its top features, and the order
    // follows that score — except on the logged pages of the shuffled arm (a fifth here),
    // so some of a few tries must come back in score order.
    let query = serde_urlencoded::to_string([("q", cases[0].query.as_str())]).unwrap();
    let mut in_order = 0;
    for _ in 0..8 {
        let (_, page) = server.get(&format!("/v1/search?{query}&user=u000007&n=10&explain=true")).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() >= 3, "{page}");
        let scores: Vec<f64> = items.iter().map(|i| i["explain"]["ranker"].as_f64().unwrap()).collect();
        assert!(items[0]["explain"]["contributions"].as_array().is_some_and(|c| !c.is_empty()), "{page}");
        in_order += usize::from(scores.windows(2).all(|w| w[0] >= w[1]));
    }
    assert!(in_order >= 3, "{in_order} of 8 pages in the ranker's order");
    // Off per request, and without a shopper.
    let (_, plain) = server.get(&format!("/v1/search?{query}&user=u000007&n=10&explain=true&ranker=false")).await;
    assert!(plain["items"][0]["explain"].get("ranker").is_none(), "{plain}");
    let (_, anonymous) = server.get(&format!("/v1/search?{query}&n=10&explain=true")).await;
    assert!(anonymous["items"][0]["explain"].get("ranker").is_none(), "{anonymous}");
    let (status, bad) = server.get(&format!("/v1/search?{query}&ranker=maybe")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert_eq!(bad["field"], "ranker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_online_click_model_learns_from_clicks_between_trainings() {
    use souk_engine::rank::features::FEATURE_COUNT;
    use souk_engine::rank::online::{OnlineClickModel, OnlineConfig};
    let online = OnlineConfig { window_ms: 0, ..OnlineConfig::default() };
    let ranking = RankConfig { explore_share: 0.0, log_share: 1.0, online: online.clone(), ..RankConfig::default() };
    let (server, generator) = shop_with(Some(ranking));
    let (status, trained) = server.json("POST", "/v1/train", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{trained}");
    let (model, path) = server.state.shop.online_model().expect("the online click model runs with the feature log");
    let item_index = |id: &str| id.trim_start_matches('i').parse::<usize>().unwrap();
    let (mut clicks, mut clicked) = (Vec::new(), HashSet::new());
    for request in 0..200usize {
        let user = request * 7 % 80;
        let (status, page) = server.get(&format!("/v1/users/u{user:06}/recommendations?n=10")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let request_id = page["request_id"].as_str().unwrap().to_string();
        let best = ids(&page)
            .into_iter()
            .max_by(|a, b| {
                let utility = |id: &str| generator.true_utility(user, item_index(id)).unwrap();
                utility(a).total_cmp(&utility(b))
            })
            .unwrap();
        clicks.push(json!({"type": "click", "user": format!("u{user:06}"), "item": best, "request_id": request_id,
            "timestamp": now_ms() + 10}));
        clicked.insert((request_id, best));
    }
    assert_eq!(model.stats().pending_pages, 200);
    for chunk in clicks.chunks(100) {
        let (status, body) = server.json("POST", "/v1/events", Value::Array(chunk.to_vec())).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // The window (0 ms here) has closed for every page: each shown item is one example.
    assert_eq!(model.flush(now_ms() + 1), 2_000);
    let stats = model.stats();
    assert_eq!((stats.examples, stats.clicks, stats.pending_pages), (2_000, 200, 0), "{stats:?}");
    let (_, metrics) = server.get("/metrics").await;
    assert!(metrics.as_str().is_some_and(|m| m.contains("souk_online_click_examples 2000")), "{metrics}");

    // What it learned separates the clicked items from the rest on those pages.
    let requests: Vec<String> = clicked.iter().map(|(request, _)| request.clone()).collect();
    let rows = logged_rows(&server, &requests).await;
    let (mut hit, mut miss) = (Vec::new(), Vec::new());
    for ((request, item), row) in &rows {
        let p = f64::from(model.predict("recs", item, row));
        if clicked.contains(&(request.clone(), item.clone())) {
            hit.push(p)
        } else {
            miss.push(p)
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert_eq!(hit.len(), 200);
    assert!(mean(&hit) > mean(&miss) * 1.2, "clicked {} vs not {}", mean(&hit), mean(&miss));
    // Pages served from now on carry its prediction as the `online_ctr` feature.
    let (_, page) = server.get("/v1/users/u000007/recommendations?n=10").await;
    let request_id = page["request_id"].as_str().unwrap();
    let rows = logged_rows(&server, &[request_id.to_string()]).await;
    let online_ctr: Vec<f32> =
        ids(&page).iter().map(|id| rows[&(request_id.to_string(), id.clone())][FEATURE_COUNT - 1]).collect();
    assert!(online_ctr.iter().all(|p| p.is_finite() && *p > 0.0 && *p < 1.0), "{online_ctr:?}");
    assert!(online_ctr.iter().any(|p| *p != online_ctr[0]), "{online_ctr:?}");
    // Saved, it reopens as it was.
    model.save(&path).unwrap();
    let reopened = OnlineClickModel::open(online, &path).unwrap();
    let (item, row) = rows.iter().next().map(|((_, item), row)| (item.clone(), row.clone())).unwrap();
    assert_eq!(reopened.predict("recs", &item, &row), model.predict("recs", &item, &row));
}

/// The feature log once the rows of every one of `requests` are in it: pages log their rows
/// after the response, so a test waits for the write itself (bounded, then fails).
async fn logged_rows(server: &TestServer, requests: &[String]) -> HashMap<(String, String), Vec<f32>> {
    let log = server.state.shop.feature_log(Surface::Recommendations).expect("the feature log is on");
    for _ in 0..3_000 {
        let rows = log.read().unwrap();
        let logged: HashSet<&str> = rows.keys().map(|(request, _)| request.as_str()).collect();
        if requests.iter().all(|r| logged.contains(r.as_str())) {
            return rows;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the feature rows of {} pages were not written", requests.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_item_is_never_recommended_similar_or_trending_even_after_a_retrain() {
    let (server, _) = shop_with(None);
    let (_, trending) = server.get("/v1/trending?n=5").await;
    let top = ids(&trending)[0].clone();
    // Someone's page and a similar list that show it before the delete.
    let mut shown_to = None;
    for user in 0..80 {
        let (_, page) = server.get(&format!("/v1/users/u{user:06}/recommendations?n=20")).await;
        if ids(&page).contains(&top) {
            shown_to = Some(user);
            break;
        }
    }
    let user = shown_to.expect("the most popular item is on somebody's page");
    let (status, _) = server.call("DELETE", &format!("/v1/items/{top}"), None, Vec::new()).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for retrain in [false, true] {
        if retrain {
            let (status, body) = server.json("POST", "/v1/train", json!({})).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        let (_, trending) = server.get("/v1/trending?n=50").await;
        assert!(!ids(&trending).contains(&top), "retrain {retrain}: {trending}");
        let (_, page) = server.get(&format!("/v1/users/u{user:06}/recommendations?n=50")).await;
        assert!(!ids(&page).is_empty() && !ids(&page).contains(&top), "retrain {retrain}: {page}");
        for other in ids(&trending).iter().take(5) {
            let (_, similar) = server.get(&format!("/v1/items/{other}/similar?n=50")).await;
            assert!(!ids(&similar).contains(&top), "retrain {retrain}: {similar}");
        }
        let (status, _) = server.get(&format!("/v1/items/{top}/similar")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "a deleted item has no similar list");
    }
    // Stored events stay (and are counted as such).
    let (_, stats) = server.get("/v1/stats").await;
    assert_eq!(stats["items_without_record"], 1, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalog_item_without_interactions_has_similar_items_by_content_first() {
    let (server, _) = shop_with(None);
    let (status, known) = server.get("/v1/items/i000005").await;
    assert_eq!(status, StatusCode::OK, "{known}");
    let category = known["category"].clone();
    let new_item = json!({"id": "brand-new", "title": "Brand new thing", "category": category, "brand": "Nobody"});
    let (status, body) = server.json("PUT", "/v1/items/brand-new", new_item).await;
    assert!(status.is_success(), "{body}");
    let (status, similar) = server.get("/v1/items/brand-new/similar?n=8").await;
    assert_eq!(status, StatusCode::OK, "{similar}");
    let listed = ids(&similar);
    assert_eq!(listed.len(), 8, "{similar}");
    assert!(!listed.contains(&"brand-new".to_string()));
    // The deepest shared category path first, never rising down the list.
    let mut depths = Vec::new();
    for id in &listed {
        let (_, item) = server.get(&format!("/v1/items/{id}")).await;
        let shared = item["category"]
            .as_array()
            .unwrap()
            .iter()
            .zip(category.as_array().unwrap())
            .take_while(|(a, b)| a == b)
            .count();
        depths.push(shared);
    }
    // Its nearest items by content share its whole category path; most of its list stays
    // in the category (a shared title word may bring in another).
    assert_eq!(depths[..3], [category.as_array().unwrap().len(); 3], "{depths:?}");
    assert!(depths.iter().filter(|d| **d >= 1).count() >= 6, "{depths:?}");
    assert_eq!(similar["items"][0]["reasons"][0]["source"], "content", "{similar}");
    // Best first: scores never rise down the list.
    let scores: Vec<f64> = similar["items"].as_array().unwrap().iter().map(|i| i["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    // Unknown items are still 404.
    assert_eq!(server.get("/v1/items/never-heard-of/similar").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listed_items_carry_what_a_page_shows_in_the_asked_language() {
    let (server, _) = shop_with_search(None, true);
    let item = |id: String| {
        let server = &server;
        async move { server.get(&format!("/v1/items/{id}")).await.1 }
    };
    let (status, page) = server.get("/v1/users/u000003/recommendations?n=5&lang=zh").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let mut cited = 0;
    for listed in page["items"].as_array().unwrap() {
        let record = item(listed["id"].as_str().unwrap().to_string()).await;
        assert_eq!(listed["title"], record["translations"]["zh"]["title"], "{listed}");
        assert_eq!(listed["brand"], record["brand"]);
        assert_eq!(listed["category"], record["category"]);
        assert_eq!(listed["price"], record["price"]);
        for reason in listed["reasons"].as_array().unwrap() {
            if let Some(because) = reason["because"].as_str() {
                let cited_item = item(because.to_string()).await;
                assert_eq!(reason["because_title"], cited_item["translations"]["zh"]["title"], "{reason}");
                cited += 1;
            }
        }
    }
    assert!(cited > 0, "some reason cites an item: {page}");
    for path in ["/v1/trending?n=3", "/v1/items/i000005/similar?n=3"] {
        let (status, listed) = server.get(path).await;
        assert_eq!(status, StatusCode::OK, "{listed}");
        for entry in listed["items"].as_array().unwrap() {
            let record = item(entry["id"].as_str().unwrap().to_string()).await;
            assert_eq!(entry["title"], record["title"], "{path}: {entry}");
        }
    }
    let (_, zh) = server.get("/v1/trending?n=3&lang=zh").await;
    let record = item(zh["items"][0]["id"].as_str().unwrap().to_string()).await;
    assert_eq!(zh["items"][0]["title"], record["translations"]["zh"]["title"]);
    // Search answers in the asked language too.
    let (status, found) = server.get("/v1/search?q=lipstick&n=3&lang=zh").await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let hit = &found["items"][0];
    let record = item(hit["id"].as_str().unwrap().to_string()).await;
    assert_eq!(hit["title"], record["translations"]["zh"]["title"], "{hit}");
    let (status, bad) = server.get("/v1/trending?lang=fr").await;
    assert_eq!(
        (status, bad["code"].as_str(), bad["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_lang"), Some("lang"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_experiment_is_created_started_served_and_reported_over_http() {
    let server = shop();
    let definition = json!({"id": "pop", "surface": "recommendations",
        "arms": [{"name": "control", "share": 1}, {"name": "popular", "share": 1, "sources": {"als": 0, "itemknn": 0, "demographic": 0, "preferences": 0}}]});
    let (status, created) = server.json("POST", "/v1/experiments", definition.clone()).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["state"], "draft");
    assert_eq!(created["arms"][1]["sources"]["als"], 0.0);
    // Bad definitions name their field.
    let (status, bad) =
        server.json("POST", "/v1/experiments", json!({"id": "x", "surface": "search", "arms": [{"name": "a"}]})).await;
    assert_eq!(
        (status, bad["code"].as_str(), bad["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_experiment"), Some("arms"))
    );
    let (status, _) = server.json("POST", "/v1/experiments/nope/start", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, started) = server.json("POST", "/v1/experiments/pop/start", json!({})).await;
    assert_eq!((status, started["state"].as_str()), (StatusCode::OK, Some("running")), "{started}");
    let (status, again) = server.json("POST", "/v1/experiments/pop/start", json!({})).await;
    assert_eq!((status, again["code"].as_str()), (StatusCode::CONFLICT, Some("experiment_state")), "{again}");
    // Pages carry the experiment and the user's arm, the same one every time.
    let mut arms = HashMap::new();
    let mut clicks = Vec::new();
    for u in 0..40 {
        let (status, page) = server.get(&format!("/v1/users/u{u:06}/recommendations?n=5")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["experiment"], "pop");
        let arm = page["arm"].as_str().unwrap().to_string();
        if u % 3 == 0 {
            clicks.push(json!({"type": "click", "user": format!("u{u:06}"), "item": ids(&page)[0],
                "request_id": page["request_id"], "timestamp": now_ms()}));
        }
        let (_, again) = server.get(&format!("/v1/users/u{u:06}/recommendations?n=5")).await;
        assert_eq!(again["arm"].as_str(), Some(arm.as_str()));
        arms.insert(u, arm);
    }
    let (status, body) = server.json("POST", "/v1/events", Value::Array(clicks)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The report follows the contract's shape once the exposures are written.
    let mut report = Value::Null;
    for _ in 0..500 {
        let (status, body) = server.get("/v1/experiments/pop/report").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        report = body;
        let exposures: u64 = report["arms"].as_array().unwrap().iter().map(|a| a["exposures"].as_u64().unwrap()).sum();
        if exposures == 80 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let users: u64 = report["arms"].as_array().unwrap().iter().map(|a| a["users"].as_u64().unwrap()).sum();
    assert_eq!(users, 40, "{report}");
    let control = arms.values().filter(|a| *a == "control").count() as u64;
    assert_eq!(report["arms"][0]["users"].as_u64(), Some(control), "{report}");
    assert!(report["arms"][0]["metrics"]["ctr"]["ci"].is_array(), "{report}");
    assert!(report["srm"]["p_value"].is_number() && report["srm"]["flagged"].is_boolean(), "{report}");
    let comparison =
        report["comparisons"].as_array().unwrap().iter().find(|c| c["metric"] == "ctr").expect("ctr compared");
    for field in ["arm", "metric", "lift", "ci", "p_value", "chance_to_beat_control"] {
        assert!(!comparison[field].is_null(), "{field} missing in {comparison}");
    }
    let (status, stopped) = server.json("POST", "/v1/experiments/pop/stop", json!({})).await;
    assert_eq!((status, stopped["state"].as_str()), (StatusCode::OK, Some("stopped")));
    let (_, page) = server.get("/v1/users/u000001/recommendations?n=5").await;
    assert!(page.get("experiment").is_none(), "{page}");
    let (_, list) = server.get("/v1/experiments").await;
    assert_eq!(list.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn bought_together_lists_co_purchases_by_lift_and_never_the_item_itself() {
    let server = shop();
    // Three shoppers buy i000001 with i000002 (one of them i000001 twice); one buys
    // i000001 with i000003 — seen once, under the default minimum support of 2.
    let mut events = Vec::new();
    for (k, (user, items)) in [
        ("buyer-1", &["i000001", "i000002", "i000001"][..]),
        ("buyer-2", &["i000002", "i000001"][..]),
        ("buyer-3", &["i000001", "i000002"][..]),
        ("buyer-4", &["i000001", "i000003"][..]),
    ]
    .iter()
    .enumerate()
    {
        for (j, item) in items.iter().enumerate() {
            let t = 1_900_000_000_000i64 + k as i64 * 1_000 + j as i64;
            events.push(
                json!({"id": format!("b{k}-{j}"), "type": "purchase", "user": user, "item": item, "timestamp": t}),
            );
        }
    }
    let (status, body) = server.json("POST", "/v1/events", Value::Array(events)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, page) = server.get("/v1/items/i000001/bought-together?n=5&include_unavailable=true").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let listed = ids(&page);
    assert!(listed.contains(&"i000002".to_string()), "{page}");
    assert!(!listed.contains(&"i000001".to_string()) && !listed.contains(&"i000003".to_string()), "{page}");
    let first = &page["items"][0];
    assert_eq!(first["reasons"][0]["source"], "bought_together");
    assert_eq!(first["reasons"][0]["because"], "i000001");
    assert!(first["title"].is_string() && first["score"].as_f64().unwrap() > 0.0);
    let (_, loose) = server.get("/v1/items/i000001/bought-together?min_support=1&include_unavailable=true").await;
    assert!(ids(&loose).contains(&"i000003".to_string()) && !ids(&loose).contains(&"i000001".to_string()));
    assert_eq!(server.get("/v1/items/nope/bought-together").await.0, StatusCode::NOT_FOUND);
    let (status, error) = server.get("/v1/items/i000001/bought-together?min_support=0").await;
    assert_eq!((status, error["field"].as_str()), (StatusCode::BAD_REQUEST, Some("min_support")));
}

#[tokio::test]
async fn the_session_surface_answers_from_the_live_session() {
    let server = shop();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    // A view, now, of a much-bought item: its sessions tell what comes next.
    let popular = ids(&server.get("/v1/trending?n=1&include_unavailable=true").await.1)[0].clone();
    let view = json!([{"id": "s-1", "type": "view", "user": "u000004", "item": popular, "timestamp": now - 1_000}]);
    assert_eq!(server.json("POST", "/v1/events", view).await.0, StatusCode::OK);
    let (status, page) = server.get("/v1/users/u000004/recommendations?surface=session&n=5").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(!ids(&page).contains(&popular), "the viewed item is excluded: {page}");
    assert_eq!(page["items"][0]["reasons"][0]["source"], "session", "{page}");
    let (status, error) = server.get("/v1/users/u000004/recommendations?surface=later").await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_surface")));
}

/// A new visitor on a product page: the page starts from the product and says so; their
/// stated preferences shape the page too, and `matched` says which one.
#[tokio::test]
async fn a_visitor_gets_pages_from_the_product_on_screen_and_from_stated_preferences() {
    let server = shop();
    let popular = ids(&server.get("/v1/trending?n=1&include_unavailable=true").await.1)[0].clone();
    let (status, page) = server.get(&format!("/v1/users/visitor-1/recommendations?n=10&context_item={popular}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(!ids(&page).contains(&popular), "{page}");
    let because: Vec<&Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["reasons"].as_array().unwrap())
        .filter_map(|r| r.get("because"))
        .collect();
    assert!(!because.is_empty() && because.iter().all(|b| *b == popular.as_str()), "{page}");
    let (status, error) = server.get("/v1/users/visitor-1/recommendations?context_item=..").await;
    assert_eq!((status, error["field"].as_str()), (StatusCode::BAD_REQUEST, Some("context_item")), "{error}");
    // Stated preferences: a brand of the shop.
    let (_, item) = server.get(&format!("/v1/items/{popular}")).await;
    let brand = item["brand"].as_str().expect("generated items have brands").to_string();
    let (status, body) =
        server.json("PUT", "/v1/users/visitor-1", json!({"preferences": {"brands": [brand.clone()]}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, page) = server.get("/v1/users/visitor-1/recommendations?n=20").await;
    let matched: Vec<&Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["reasons"].as_array().unwrap())
        .filter(|r| r["source"] == "preferences")
        .map(|r| &r["matched"])
        .collect();
    assert!(!matched.is_empty(), "{page}");
    assert!(matched.iter().all(|m| *m == &json!([format!("brand={brand}")])), "{page}");
}

/// A new catalog item — no events, no training — is in its neighbour's similar list, has
/// similar items of its own, and is recommended, right after `PUT /v1/items/{id}` returns.
#[tokio::test]
async fn a_new_item_is_similar_and_recommendable_right_after_its_put() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), &StoreConfig::default()).unwrap();
    let generator = Generator::new(GenConfig { items: 300, users: 80, events: 8_000, seed: 5 }).unwrap();
    let mut sink = StoreSink::new(&store);
    generator.run(&mut sink, &mut |_| {}).unwrap();
    sink.finish().unwrap();
    // The item most shoppers touched, and who touched it.
    let mut touched: HashMap<String, HashSet<String>> = HashMap::new();
    souk_engine::store::Storage::scan_interactions(&store, &mut |user, item, _| {
        if let Some(item) = item {
            touched.entry(item.to_string()).or_default().insert(user.to_string());
        }
    })
    .unwrap();
    let (twin, viewers) = touched.into_iter().max_by(|a, b| a.1.len().cmp(&b.1.len()).then(b.0.cmp(&a.0))).unwrap();
    let server = TestServer::from_state(
        AppState::new(Shop::new(Arc::new(store), ShopSettings::default()), ServerConfig::default()),
        dir,
    );
    let (status, trained) = server.call("POST", "/v1/train", None, Vec::new()).await;
    assert_eq!(status, StatusCode::OK, "{trained}");

    let (status, item) = server.get(&format!("/v1/items/{twin}")).await;
    assert_eq!(status, StatusCode::OK, "{item}");
    // The same record under a new id (only the fields an item is written with).
    let fields = ["description", "category", "brand", "price", "currency", "attributes", "tags", "image"];
    let mut fresh = json!({"id": "fresh-1", "title": format!("{} (new edition)", item["title"].as_str().unwrap())});
    for field in fields {
        if !item[field].is_null() {
            fresh[field] = item[field].clone();
        }
    }
    let (status, body) = server.json("PUT", "/v1/items/fresh-1", fresh).await;
    assert!(status.is_success(), "{status} {body}");

    let (status, similar) = server.get(&format!("/v1/items/{twin}/similar?n=10")).await;
    assert_eq!(status, StatusCode::OK, "{similar}");
    let listed = similar["items"].as_array().unwrap().iter().find(|i| i["id"] == "fresh-1");
    let listed = listed.unwrap_or_else(|| panic!("the new item is not similar to its twin: {similar:#}"));
    assert!(listed["reasons"].as_array().unwrap().iter().any(|r| r["source"] == "content"), "{listed}");
    let (status, own) = server.get("/v1/items/fresh-1/similar?n=5").await;
    assert_eq!(status, StatusCode::OK, "{own}");
    assert_eq!(own["items"][0]["id"], twin.as_str(), "{own:#}");

    let brand = serde_urlencoded::to_string([("brand", item["brand"].as_str().unwrap())]).unwrap();
    let mut recommended = 0;
    for user in &viewers {
        let (status, page) = server.get(&format!("/v1/users/{user}/recommendations?n=20&{brand}")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        recommended += usize::from(ids(&page).contains(&"fresh-1".to_string()));
    }
    assert!(recommended * 2 >= viewers.len(), "recommended to {recommended} of {} who touched its twin", viewers.len());
}
