//! Requests over a real socket to `souk_server::serve`: the refusals that hyper or axum
//! would answer before (or beside) the handlers are JSON errors of the error table too.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use serde_json::Value;
use souk_server::connections::{MAX_HEADERS, MAX_HEADER_BYTES, MAX_URI_BYTES};
use souk_server::ServerConfig;

use crate::TestServer;

/// A response as read off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: Option<String>,
    body: String,
}

impl Answer {
    /// The error code of a JSON error body, or a description of what came instead.
    fn code(&self) -> String {
        if self.content_type.as_deref() != Some("application/json") {
            return format!("not JSON ({:?}): {:?}", self.content_type, self.body);
        }
        match serde_json::from_str::<Value>(&self.body) {
            Ok(body) if body["message"].as_str().is_some_and(|m| !m.is_empty()) => {
                body["code"].as_str().unwrap_or("(no code)").to_string()
            }
            _ => format!("not an error body: {:?}", self.body),
        }
    }
}

/// Send `head` (the request line and headers, without the blank line) and `body`, then
/// read the whole answer (the connection is closed after it).
fn send(address: SocketAddr, head: &str, body: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(address).unwrap();
    let mut request = format!("{head}\r\nHost: localhost\r\nConnection: close\r\n");
    if !body.is_empty() {
        request.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    // The server may answer (and close) before it has read a refused body.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let content_type = head
        .lines()
        .find_map(|line| line.split_once(':').filter(|(name, _)| name.eq_ignore_ascii_case("content-type")))
        .map(|(_, value)| value.trim().to_string());
    Answer { status, content_type, body: body.to_string() }
}

/// Run `check` against a served test shop (64 KiB bodies at most), then shut it down.
async fn with_server(check: impl FnOnce(SocketAddr) + Send + 'static) {
    let server = TestServer::new(ServerConfig { max_body_bytes: 64 * 1024, ..ServerConfig::default() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(souk_server::serve(listener, server.state.clone(), async {
        let _ = stopped.await;
    }));
    tokio::task::spawn_blocking(move || check(address)).await.unwrap();
    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heads_over_the_limits_are_refused_with_json() {
    with_server(|address| {
        // Within the limits: a long URI and many large headers are read.
        let long_query = "x".repeat(MAX_URI_BYTES - 200);
        let ok = send(address, &format!("GET /health?pad={long_query} HTTP/1.1"), b"");
        assert_eq!(ok.status, 200, "{ok:?}");
        let headers: String = (0..MAX_HEADERS - 5).map(|i| format!("X-Pad-{i}: {}\r\n", "v".repeat(400))).collect();
        let ok = send(address, &format!("GET /health HTTP/1.1\r\n{}", headers.trim_end()), b"");
        assert_eq!(ok.status, 200, "{ok:?}");

        // A URI one byte too long, and one just under hyper's own limit of 64 KiB.
        for length in [MAX_URI_BYTES + 1, 60 * 1024] {
            let path = format!("/v1/search?q={}", "a".repeat(length - "/v1/search?q=".len()));
            let answer = send(address, &format!("GET {path} HTTP/1.1"), b"");
            assert_eq!((answer.status, answer.code()), (414, "uri_too_long".to_string()), "URI of {length} bytes");
        }
        // One huge header; headers that are large together; too many small ones (more than
        // hyper's default of 100, which it would refuse with an empty body).
        let huge = format!("GET /v1/stats HTTP/1.1\r\nX-Huge: {}", "h".repeat(MAX_HEADER_BYTES + 1));
        let together: String = (0..40).map(|i| format!("X-Part-{i}: {}\r\n", "p".repeat(2000))).collect();
        let together = format!("GET /v1/stats HTTP/1.1\r\n{}", together.trim_end());
        let many: String = (0..MAX_HEADERS + 50).map(|i| format!("X-Many-{i}: m\r\n")).collect();
        let many = format!("GET /v1/stats HTTP/1.1\r\n{}", many.trim_end());
        for (name, head) in [("one huge header", huge), ("large together", together), ("too many", many)] {
            let answer = send(address, &head, b"");
            assert_eq!((answer.status, answer.code()), (431, "headers_too_large".to_string()), "{name}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framework_refusals_and_bad_path_ids_are_json_over_a_socket() {
    with_server(|address| {
        let cases: Vec<(&str, String, Vec<u8>, u16, &str)> = vec![
            ("a method the route lacks", "DELETE /v1/stats HTTP/1.1".into(), Vec::new(), 405, "method_not_allowed"),
            ("no such route", "GET /v2/nothing HTTP/1.1".into(), Vec::new(), 404, "no_route"),
            (
                "a body over the limit",
                "POST /v1/events HTTP/1.1".into(),
                vec![b' '; 100 * 1024],
                413,
                "payload_too_large",
            ),
            ("a number that is none", "GET /v1/trending?n=abc HTTP/1.1".into(), Vec::new(), 400, "invalid_parameter"),
            (
                "a negative number",
                "GET /v1/users/u1/recommendations?n=-1 HTTP/1.1".into(),
                Vec::new(),
                400,
                "invalid_parameter",
            ),
            ("a path segment that is not UTF-8", "GET /v1/items/%FF HTTP/1.1".into(), Vec::new(), 400, "invalid_utf8"),
            ("the id `.`", "GET /v1/items/. HTTP/1.1".into(), Vec::new(), 400, "invalid_id"),
            ("the id `..`, encoded", "GET /v1/items/%2E%2E HTTP/1.1".into(), Vec::new(), 400, "invalid_id"),
            (
                "an id of a zero-width space",
                "PUT /v1/items/%E2%80%8B HTTP/1.1".into(),
                br#"{"title": "Ghost"}"#.to_vec(),
                400,
                "invalid_id",
            ),
            (
                "an id of direction marks",
                "GET /v1/users/%E2%80%8E%E2%80%8F HTTP/1.1".into(),
                Vec::new(),
                400,
                "invalid_id",
            ),
            (
                "a right-to-left override inside an id",
                "PUT /v1/users/a%E2%80%AEb HTTP/1.1".into(),
                b"{}".to_vec(),
                400,
                "invalid_id",
            ),
            ("a follow of `..`", "PUT /v1/users/u1/follows/%2E%2E HTTP/1.1".into(), Vec::new(), 400, "invalid_id"),
        ];
        let mut failures = Vec::new();
        for (name, head, body, status, code) in cases {
            let answer = send(address, &head, &body);
            if (answer.status, answer.code().as_str()) != (status, code) {
                failures.push(format!("{name}: expected {status} {code}, got {answer:?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    })
    .await;
}
