use axum::http::StatusCode;
use serde_json::json;
use souk_server::ServerConfig;

use crate::TestServer;

#[tokio::test]
async fn events_are_stored_once_and_counted() {
    let server = TestServer::new(ServerConfig::default());
    let events = json!([
        {"id": "e1", "type": "view", "user": "u1", "item": "i1", "timestamp": "2026-01-01T00:00:00Z", "dwell_ms": 5000},
        {"id": "e2", "type": "purchase", "user": "u1", "item": "i1", "quantity": 2, "price": 9.99, "timestamp": 1767225600000i64},
        {"type": "search", "user": "u2", "query": "蓝牙耳机", "items": ["i1", "i2"], "request_id": "r1", "timestamp": 1},
    ]);
    let (status, body) = server.json("POST", "/v1/events", events.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"accepted": 3, "duplicates": 0}));
    // Re-delivery: the two events with ids are recognised, the one without gets a new id.
    let (_, body) = server.json("POST", "/v1/events", events).await;
    assert_eq!(body, json!({"accepted": 3, "duplicates": 2}));
    let (_, stats) = server.get("/v1/stats").await;
    assert_eq!(stats["events"], 4);
    assert_eq!(stats["events_by_type"]["search"], 2, "{stats}");
    assert_eq!(stats["users"], 2);
    // i2 was only listed in a search result: not an item any event is about.
    assert_eq!(stats["items"], 1);
    let (status, history) = server.get("/v1/users/u1/events?n=1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(history["events"][0]["id"], "e2");
    assert_eq!(history["events"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn ndjson_bodies_are_accepted() {
    let server = TestServer::new(ServerConfig::default());
    let body = "{\"type\":\"click\",\"user\":\"u\",\"item\":\"i\",\"timestamp\":1}\n\n{\"type\":\"dislike\",\"user\":\"u\",\"item\":\"j\",\"timestamp\":2}\n";
    let (status, body) = server.call("POST", "/v1/events", Some("application/x-ndjson"), body.into()).await;
    assert_eq!((status, body["accepted"].as_u64()), (StatusCode::OK, Some(2)));
}

#[tokio::test]
async fn items_users_and_follows_round_trip() {
    let server = TestServer::new(ServerConfig::default());
    let item = json!({"title": "Wireless Headphones", "category": "Electronics > Audio", "brand": "Acme", "price": 59.5,
                      "attributes": {"color": "blue"}, "translations": {"zh": {"title": "无线耳机"}}});
    let (status, stored) = server.json("PUT", "/v1/items/sku-1", item).await;
    assert_eq!(status, StatusCode::OK, "{stored}");
    let (status, fetched) = server.get("/v1/items/sku-1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched["category"], json!(["Electronics", "Audio"]));
    assert_eq!(fetched["translations"]["zh"]["title"], "无线耳机");
    let (status, body) = server
        .json("POST", "/v1/items", json!([{"id": "sku-2", "title": "Cable"}, {"id": "sku-3", "title": "Case"}]))
        .await;
    assert_eq!((status, body["accepted"].as_u64()), (StatusCode::OK, Some(2)));
    assert_eq!(server.call("DELETE", "/v1/items/sku-2", None, vec![]).await.0, StatusCode::NO_CONTENT);
    assert_eq!(server.get("/v1/items/sku-2").await.0, StatusCode::NOT_FOUND);
    assert_eq!(server.call("DELETE", "/v1/items/sku-2", None, vec![]).await.0, StatusCode::NOT_FOUND);

    let (status, _) = server
        .json("PUT", "/v1/users/u1", json!({"attributes": {"region": "EU"}, "preferences": {"brands": ["Acme"]}}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        server.json("PUT", "/v1/users/u1/follows/u2", json!({"kind": "friend"})).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(server.call("PUT", "/v1/users/u1/follows/u3", None, vec![]).await.0, StatusCode::NO_CONTENT);
    let (_, user) = server.get("/v1/users/u1").await;
    assert_eq!(user["preferences"]["brands"], json!(["Acme"]));
    assert_eq!(user["follows"], json!([{"other": "u2", "kind": "friend"}, {"other": "u3", "kind": "follow"}]));
    let (_, stats) = server.get("/v1/stats").await;
    assert_eq!(
        (stats["social_edges"].as_u64(), stats["users"].as_u64(), stats["items"].as_u64()),
        (Some(2), Some(3), Some(2))
    );
    assert_eq!(server.call("DELETE", "/v1/users/u1/follows/u3", None, vec![]).await.0, StatusCode::NO_CONTENT);

    server.json("POST", "/v1/events", json!([{"type": "view", "user": "u1", "item": "sku-1", "timestamp": 1}])).await;
    let (status, erased) = server.call("DELETE", "/v1/users/u1", None, vec![]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(erased, json!({"user_record": true, "events": 1, "social_edges": 1}));
    assert_eq!(server.get("/v1/users/u1").await.0, StatusCode::NOT_FOUND);
    let (_, stats) = server.get("/v1/stats").await;
    assert_eq!((stats["events"].as_u64(), stats["social_edges"].as_u64()), (Some(0), Some(0)));
}

#[tokio::test]
async fn service_endpoints_answer() {
    let server = TestServer::new(ServerConfig::default());
    let (status, health) = server.get("/health").await;
    assert_eq!((status, health["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (status, doc) = server.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/v1/events",
        "/v1/items/{id}",
        "/v1/users/{id}",
        "/v1/users/{id}/follows/{other}",
        "/v1/stats",
        "/health",
        "/metrics",
    ] {
        assert!(doc["paths"].get(path).is_some(), "openapi lacks {path}");
    }
    server.get("/v1/stats").await;
    let (status, metrics) = server.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let text = metrics.as_str().unwrap();
    assert!(text.contains("souk_http_requests_total{method=\"GET\",route=\"/v1/stats\",status=\"200\"} 1"), "{text}");
    assert!(text.contains("souk_events 0"));
    assert!(
        text.contains("souk_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/stats\",le=\"+Inf\"} 1"),
        "{text}"
    );
    let (status, page) = server.get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.as_str().unwrap().contains("<title>Souk</title>"));
    let (status, body) = server.get("/v2/nothing").await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("no_route")));
    // A known path with a method it does not answer: 405 with the JSON error body.
    let (status, body) = server.json("DELETE", "/v1/stats", serde_json::json!({})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed")));
    assert!(body["message"].as_str().is_some_and(|m| m.contains("DELETE")), "{body}");
}

/// Every route the router answers, as `(METHOD, path)`, read from its definition in
/// `lib.rs` (`.route("PATH", get(..).post(..))`).
fn router_routes() -> std::collections::BTreeSet<(String, String)> {
    let source = include_str!("../../src/lib.rs");
    let mut routes = std::collections::BTreeSet::new();
    let mut rest = source;
    while let Some(at) = rest.find(".route(\"") {
        rest = &rest[at + ".route(\"".len()..];
        let path_end = rest.find('"').unwrap();
        let path = rest[..path_end].to_string();
        // The method chain runs to the end of the `.route(` call: the next line break.
        let chain = &rest[path_end..rest.find('\n').unwrap_or(rest.len())];
        for method in ["get", "post", "put", "delete", "patch"] {
            let needle = format!("{method}(");
            if chain.match_indices(&needle).any(|(i, _)| i == 0 || !chain.as_bytes()[i - 1].is_ascii_alphanumeric()) {
                routes.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    routes
}

#[tokio::test]
async fn every_route_is_in_the_openapi_document_with_typed_responses() {
    let server = TestServer::new(ServerConfig::default());
    let (status, doc) = server.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let mut documented = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let routes = router_routes();
    assert!(routes.len() > 20, "the reader must see the router: {routes:?}");
    let undocumented: Vec<_> = routes.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&routes).collect();
    assert!(undocumented.is_empty() && unserved.is_empty(), "undocumented {undocumented:?}, unserved {unserved:?}");
    // Recommendation pages are typed down to their reasons.
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["RecommendedItem"]["properties"]["reasons"]["items"]["$ref"], "#/components/schemas/ReasonOut");
    assert!(schemas["ReasonOut"]["properties"]["because_title"].is_object(), "{}", schemas["ReasonOut"]);
    // So are search pages: facets, explanations, effects and the personal touch.
    let search = &schemas["SearchOut"]["properties"];
    assert_eq!(search["facets"]["$ref"], "#/components/schemas/FacetsOut", "{search}");
    assert!(schemas["FacetsOut"]["properties"]["price"]["items"]["$ref"].is_string(), "{}", schemas["FacetsOut"]);
    let item = &schemas["SearchItem"]["properties"];
    assert!(item["explain"].to_string().contains("ExplainOut"), "{item}");
    assert_eq!(item["effects"]["items"]["$ref"], "#/components/schemas/EffectOut", "{item}");
    assert!(search["personal"].to_string().contains("PersonalOut"), "{search}");
    // Every success that carries a body says what it is.
    let mut untyped = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                if !status.starts_with('2') || status == "204" {
                    continue;
                }
                let typed = response["content"]
                    .as_object()
                    .is_some_and(|content| content.values().all(|media| media["schema"].is_object()));
                if !typed {
                    untyped.push(format!("{method} {path} {status}"));
                }
            }
        }
    }
    assert!(untyped.is_empty(), "successes without a schema: {untyped:?}");
    assert!(schemas["ProfileOut"]["properties"]["funnel_stage"].is_object(), "{}", schemas["ProfileOut"]);
    assert!(schemas["TrainReportOut"]["properties"]["manifest"].is_object(), "{}", schemas["TrainReportOut"]);
}

#[tokio::test]
async fn with_a_master_key_every_v1_route_needs_a_key_with_its_scope() {
    let mut server = TestServer::new(ServerConfig::default());
    let master = "master-key-of-this-test-0123456789";
    server.state = server
        .state
        .clone()
        .with_auth(&souk_server::AuthConfig { master_key: Some(master.into()), ..Default::default() });
    let events = serde_json::to_vec(&json!([{"type": "view", "user": "u1", "item": "i1", "timestamp": 1}])).unwrap();
    let post = |key: Option<&'static str>| {
        let events = events.clone();
        let server = &server;
        async move { server.call_with_key("POST", "/v1/events", Some("application/json"), events, key).await }
    };
    assert_eq!(server.get("/health").await.0, StatusCode::OK, "health stays open");
    let (status, body) = post(None).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("missing_key")), "{body}");
    let (status, body) = post(Some("not-a-key")).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_key")), "{body}");
    assert_eq!(
        server.call_with_key("POST", "/v1/events", Some("application/json"), events.clone(), Some(master)).await.0,
        StatusCode::OK
    );
    // The master key creates a search-only key; it reads pages and cannot write.
    let create = serde_json::to_vec(&json!({"scopes": ["search"], "name": "storefront"})).unwrap();
    let (status, created) =
        server.call_with_key("POST", "/v1/keys", Some("application/json"), create.clone(), Some(master)).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let key = created["key"].as_str().unwrap().to_string();
    assert_eq!(created["scopes"], json!(["search"]));
    let (status, _) = server.call_with_key("GET", "/v1/trending?n=3", None, Vec::new(), Some(&key)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) =
        server.call_with_key("POST", "/v1/events", Some("application/json"), events.clone(), Some(&key)).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("insufficient_scope")), "{body}");
    let (status, _) = server.call_with_key("POST", "/v1/keys", Some("application/json"), create, Some(&key)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only admin keys make keys");
    let (status, bad) = server
        .call_with_key("POST", "/v1/keys", Some("application/json"), br#"{"scopes":["root"]}"#.to_vec(), Some(master))
        .await;
    assert_eq!((status, bad["field"].as_str()), (StatusCode::BAD_REQUEST, Some("scopes[0]")), "{bad}");
    // Listed without secrets; revoked at once.
    let (_, list) = server.call_with_key("GET", "/v1/keys", None, Vec::new(), Some(master)).await;
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert!(!list.to_string().contains(&key), "{list}");
    let id = created["id"].as_str().unwrap();
    let (status, _) = server.call_with_key("DELETE", &format!("/v1/keys/{id}"), None, Vec::new(), Some(master)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = server.call_with_key("GET", "/v1/trending?n=3", None, Vec::new(), Some(&key)).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_key")));
}

#[tokio::test]
async fn a_cross_site_plain_text_or_form_post_is_refused_and_stores_nothing() {
    let server = TestServer::new(ServerConfig::default());
    let body = br#"[{"type":"view","user":"u1","item":"i1","timestamp":1}]"#.to_vec();
    for content_type in [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let (status, error) = server.call("POST", "/v1/events", Some(content_type), body.clone()).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("unsupported_media_type")),
            "{content_type}"
        );
    }
    let (_, stats) = server.get("/v1/stats").await;
    assert_eq!(stats["events"], 0);
    assert_eq!(server.call("POST", "/v1/events", Some("application/json"), body).await.0, StatusCode::OK);
}

#[tokio::test]
async fn every_route_answers_each_credential_as_its_scope_says() {
    use souk_engine::serving::shop::keys::Scope;
    let mut server = TestServer::new(ServerConfig::default());
    let master = "the-master-key-of-the-route-table";
    server.state = server
        .state
        .clone()
        .with_auth(&souk_server::AuthConfig { master_key: Some(master.into()), ..Default::default() });
    let mut keys = Vec::new();
    for scope in [Scope::Ingest, Scope::Search, Scope::Admin] {
        let (key, secret) = server.state.shop.create_key(vec![scope], None).unwrap();
        keys.push((scope, key, secret));
    }
    let (revoked, revoked_secret) = server.state.shop.create_key(vec![Scope::Admin], None).unwrap();
    server.state.shop.delete_key(&revoked.id).unwrap();
    let routes = router_routes();
    assert!(routes.len() > 25, "{routes:?}");
    for (method, path) in routes.iter().filter(|(_, p)| p.starts_with("/v1/")) {
        let uri = path.replace("{id}", "x1").replace("{other}", "x2");
        let body = if method == "GET" || method == "DELETE" { Vec::new() } else { b"{}".to_vec() };
        let content_type = (!body.is_empty()).then_some("application/json");
        let call = |key: Option<String>| {
            let (uri, body) = (uri.clone(), body.clone());
            let server = &server;
            async move { server.call_with_key(method, &uri, content_type, body, key.as_deref()).await }
        };
        let needed = souk_server::auth::required_scope(&method.parse().unwrap(), path);
        let (status, error) = call(None).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("missing_key")),
            "{method} {path}"
        );
        let (status, _) = call(Some(revoked_secret.clone())).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} with a revoked key");
        for (scope, _, secret) in &keys {
            let (status, error) = call(Some(secret.clone())).await;
            let allowed = *scope == needed || *scope == Scope::Admin;
            if allowed {
                assert!(
                    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                    "{method} {path} {scope:?}: {status} {error}"
                );
            } else {
                assert_eq!(
                    (status, error["code"].as_str()),
                    (StatusCode::FORBIDDEN, Some("insufficient_scope")),
                    "{method} {path} {scope:?}"
                );
            }
        }
        let (status, error) = call(Some(master.to_string())).await;
        assert!(
            status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
            "{method} {path} master: {status} {error}"
        );
    }
    // Open without a key: health, metrics, the document and the pages with their files
    // (the pages ask for a key when the API refuses them).
    for uri in ["/health", "/metrics", "/openapi.json", "/", "/admin", "/web/shop.js", "/web/style.css"] {
        assert_eq!(server.get(uri).await.0, StatusCode::OK, "{uri}");
    }
}

#[tokio::test]
async fn a_users_export_streams_every_record_and_ends_with_the_counts() {
    let server = TestServer::new(ServerConfig::default());
    assert_eq!(server.get("/v1/users/ada/export").await.0, StatusCode::NOT_FOUND);
    server.json("PUT", "/v1/users/ada", json!({"attributes": {"region": "EU"}})).await;
    server.call("PUT", "/v1/users/ada/follows/bob", None, vec![]).await;
    // Enough events that the stream spans several chunks.
    let events: Vec<_> = (0..2_000)
        .map(|k| json!({"id": format!("e{k}"), "type": "view", "user": "ada", "item": format!("i{}", k % 50), "timestamp": 1_000 + k}))
        .collect();
    assert_eq!(server.json("POST", "/v1/events", json!(events)).await.0, StatusCode::OK);
    server.json("POST", "/v1/events", json!([{"type": "view", "user": "bob", "item": "i1", "timestamp": 5}])).await;

    let request = axum::http::Request::get("/v1/users/ada/export").body(axum::body::Body::empty()).unwrap();
    let response = tower::ServiceExt::oneshot(souk_server::router(server.state.clone()), request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let bytes = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    let lines: Vec<serde_json::Value> =
        std::str::from_utf8(&bytes).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1 + 2_000 + 1 + 1, "user, events, follow, end");
    assert_eq!((lines[0]["record"].as_str(), lines[0]["id"].as_str()), (Some("user"), Some("ada")));
    assert_eq!(lines[0]["user"]["attributes"]["region"], "EU");
    let times: Vec<i64> = lines[1..2_001].iter().map(|l| l["timestamp"].as_i64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "every event, oldest first");
    assert!(lines[1..2_001].iter().all(|l| l["record"] == "event" && l["user"] == "ada"));
    assert_eq!(lines[2_001]["other"], "bob");
    assert_eq!(lines[2_002], json!({"record": "end", "events": 2000, "follows": 1, "exposures": 0}));

    assert_eq!(server.call("DELETE", "/v1/users/ada", None, vec![]).await.0, StatusCode::OK);
    let (status, body) = server.get("/v1/users/ada/export").await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{body}");
}

#[tokio::test]
async fn a_key_over_its_rate_gets_429_with_retry_after_and_the_master_key_is_not_limited() {
    let mut server = TestServer::new(ServerConfig::default());
    let master = "master-key-of-the-rate-limit-test";
    server.state = server.state.clone().with_auth(&souk_server::AuthConfig {
        master_key: Some(master.into()),
        rate_per_second: 0.0,
        rate_burst: 0,
    });
    let create = serde_json::to_vec(&json!({"scopes": ["search"], "rate_per_second": 0.2})).unwrap();
    let (status, created) =
        server.call_with_key("POST", "/v1/keys", Some("application/json"), create, Some(master)).await;
    assert_eq!((status, created["rate_per_second"].as_f64()), (StatusCode::OK, Some(0.2)), "{created}");
    let key = created["key"].as_str().unwrap().to_string();
    let get = |key: String| {
        let router = souk_server::router(server.state.clone());
        async move {
            let request = axum::http::Request::get("/v1/trending?n=2")
                .header("authorization", format!("Bearer {key}"))
                .body(axum::body::Body::empty())
                .unwrap();
            tower::ServiceExt::oneshot(router, request).await.unwrap()
        }
    };
    assert_eq!(get(key.clone()).await.status(), StatusCode::OK, "a burst of one");
    let limited = get(key.clone()).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=5).contains(&retry), "{retry}");
    let body = http_body_util::BodyExt::collect(limited.into_body()).await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["code"], "rate_limited");
    for _ in 0..20 {
        assert_eq!(get(master.to_string()).await.status(), StatusCode::OK);
    }
    // Listed with its rate; a bad rate is refused with the field named.
    let (_, list) = server.call_with_key("GET", "/v1/keys", None, Vec::new(), Some(master)).await;
    assert_eq!(list[0]["rate_per_second"], 0.2);
    let bad = serde_json::to_vec(&json!({"scopes": ["search"], "rate_per_second": -1})).unwrap();
    let (status, error) = server.call_with_key("POST", "/v1/keys", Some("application/json"), bad, Some(master)).await;
    assert_eq!((status, error["field"].as_str()), (StatusCode::BAD_REQUEST, Some("rate_per_second")), "{error}");
}

#[tokio::test]
async fn cross_origin_access_is_off_unless_an_origin_is_configured() {
    let preflight = |server: &TestServer, origin: &str| {
        let router = souk_server::router(server.state.clone());
        let request = axum::http::Request::builder()
            .method("OPTIONS")
            .uri("/v1/events")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .body(axum::body::Body::empty())
            .unwrap();
        async move { tower::ServiceExt::oneshot(router, request).await.unwrap() }
    };
    let closed = TestServer::new(ServerConfig::default());
    let response = preflight(&closed, "https://shop.example").await;
    assert!(response.headers().get("access-control-allow-origin").is_none());
    let open =
        TestServer::new(ServerConfig { cors_origins: vec!["https://shop.example".into()], ..ServerConfig::default() });
    let response = preflight(&open, "https://shop.example").await;
    assert_eq!(response.headers()["access-control-allow-origin"], "https://shop.example");
    let response = preflight(&open, "https://evil.example").await;
    assert!(response.headers().get("access-control-allow-origin").is_none(), "only the configured origin");
    assert!(ServerConfig { cors_origins: vec!["shop.example/path".into()], ..ServerConfig::default() }
        .problems()
        .iter()
        .any(|(key, _)| key == "server.cors_origins[0]"));
}

#[tokio::test]
async fn an_items_picture_is_on_every_list_that_shows_the_item() {
    let server = TestServer::new(ServerConfig::default());
    let items = json!([
        {"id": "a", "title": "Trail running shoe", "category": "Sports > Running", "image": "https://cdn.example/a.jpg"},
        {"id": "b", "title": "Road running shoe", "category": "Sports > Running", "image": "/img/b.png"},
    ]);
    assert_eq!(server.json("POST", "/v1/items", items).await.0, StatusCode::OK);
    let (status, item) = server.get("/v1/items/a").await;
    assert_eq!((status, item["image"].as_str()), (StatusCode::OK, Some("https://cdn.example/a.jpg")));
    let (_, similar) = server.get("/v1/items/a/similar?n=3").await;
    assert_eq!(similar["items"][0]["id"], "b", "{similar}");
    assert_eq!(similar["items"][0]["image"], "/img/b.png");
    let (_, bad) = server.json("PUT", "/v1/items/c", json!({"title": "C", "image": "javascript:alert(1)"})).await;
    assert_eq!((bad["code"].as_str(), bad["field"].as_str()), (Some("invalid_value"), Some("image")), "{bad}");
}

#[tokio::test]
async fn integers_written_as_integral_floats_are_taken_as_integers() {
    // JSON Schema's `integer` (the document's word for timestamps, quantities and numeric ids)
    // counts `2429999358.0` as an integer; so does ingest.
    let server = TestServer::new(ServerConfig::default());
    let events =
        json!([{"type": "purchase", "user": 42.0, "item": "i1", "quantity": 2.0, "timestamp": 2_429_999_358.0}]);
    let (status, body) = server.json("POST", "/v1/events", events).await;
    assert_eq!((status, body["accepted"].as_u64()), (StatusCode::OK, Some(1)), "{body}");
    let (status, history) = server.get("/v1/users/42/events").await;
    assert_eq!(status, StatusCode::OK, "{history}");
    assert_eq!(history["events"][0]["timestamp"], 2_429_999_358i64, "{history}");
    let (status, item) = server.json("PUT", "/v1/items/i1", json!({"title": "Lamp", "created_at": 1.7e12})).await;
    assert_eq!((status, item["created_at"].as_i64()), (StatusCode::OK, Some(1_700_000_000_000)), "{item}");
}

#[tokio::test]
async fn the_document_states_search_parameters_and_experiment_bodies() {
    let server = TestServer::new(ServerConfig::default());
    let (_, doc) = server.get("/openapi.json").await;
    let search = &doc["paths"]["/v1/search"]["get"]["parameters"];
    let parameter = |name: &str| search.as_array().unwrap().iter().find(|p| p["name"] == name).cloned().unwrap();
    for p in search.as_array().unwrap() {
        assert_eq!((p["in"].as_str(), p["required"].as_bool()), (Some("query"), Some(false)), "{p}");
    }
    // This server has no text embedder: a search without a vector cannot be semantic.
    assert_eq!(parameter("mode")["schema"]["enum"], json!(["keyword", "hybrid"]));
    assert_eq!(parameter("brand")["schema"]["type"], "array");
    assert!(parameter("rules")["content"]["application/json"]["schema"]["properties"]["pin"].is_object());
    let body = &doc["components"]["schemas"]["SearchBody"];
    assert_eq!(body["then"]["required"], json!(["vector"]), "{body}");
    let experiment = &doc["paths"]["/v1/experiments"]["post"]["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(experiment["$ref"], "#/components/schemas/ExperimentIn");
    let arm = &doc["components"]["schemas"]["ArmIn"];
    assert!(arm["properties"]["sources"]["propertyNames"]["enum"]
        .as_array()
        .is_some_and(|s| s.contains(&json!("als"))));
    // A definition the document describes is taken: slots in any order.
    let definition = json!({"id": "slots", "surface": "recommendations", "window_days": 3,
        "arms": [{"name": "control"}, {"name": "explore", "share": 0.5, "explore_slots": [7, 2], "ranker": null,
                  "sources": {"als": 0}, "rules": {"pin": [{"item": "i1", "position": 1}]}}]});
    let (status, created) = server.json("POST", "/v1/experiments", definition).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["arms"][1]["explore_slots"], json!([2, 7]), "{created}");
}
