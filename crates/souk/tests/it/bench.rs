//! `souk bench` scenarios, run briefly on tiny shops: their reports have the promised shape.

use serde_json::Value;

use crate::{run_ok, souk};

#[test]
fn a_short_soak_reports_every_route_per_minute_memory_and_stalls() {
    let work = tempfile::tempdir().unwrap();
    let output = run_ok(souk().args(["bench", "soak", "--minutes", "0.1", "--clients", "2", "--items", "200"]).args([
        "--users",
        "50",
        "--events",
        "2000",
        "--batch",
        "5",
        "--json",
        "--work-dir",
        work.path().to_str().unwrap(),
    ]));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["errors"], 0, "{report}");
    let routes = report["routes"].as_object().unwrap();
    assert_eq!(routes.len(), 5, "{report}");
    for (route, figures) in routes {
        assert!(figures["requests"].as_u64().unwrap() > 0, "{route} was never asked: {report}");
        assert!(figures["latency_ms"]["p99"].as_f64().unwrap() > 0.0, "{route}: {report}");
    }
    let minutes = report["per_minute"].as_array().unwrap();
    assert_eq!(minutes.len(), 1, "{report}");
    assert!(minutes[0]["rss_bytes"].as_u64().unwrap() > 1_000_000, "{report}");
    // The ingested events were stored: the count grew past the generated shop's.
    let stored = minutes[0]["events"].as_u64().unwrap();
    assert!(stored > 2000, "{report}");
    assert!(report["rss"]["at_end_bytes"].as_u64().unwrap() > 0, "{report}");
    assert!(report["stalls"]["episodes"].is_u64(), "{report}");
}

#[test]
fn recommendation_pages_are_timed_in_process_and_no_server_needs_pages_to_time() {
    let work = tempfile::tempdir().unwrap();
    let shop = ["--items", "300", "--users", "60", "--events", "3000", "--work-dir", work.path().to_str().unwrap()];
    let output =
        run_ok(souk().args(["bench", "recommend"]).args(shop).args(["--in-process", "40", "--no-server", "--json"]));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let pages = &report["in_process"];
    assert_eq!(pages["pages"], 40, "{report}");
    assert!(pages["pages_per_second"].as_f64().unwrap() > 0.0, "{report}");
    let latency = &pages["latency_ms"];
    assert!(latency["p50"].as_f64().unwrap() > 0.0 && latency["p99"].as_f64() >= latency["p50"].as_f64(), "{report}");
    assert!(report.get("requests_per_second").is_none(), "no server was asked: {report}");
    // The shop is kept and reused.
    let again =
        run_ok(souk().args(["bench", "recommend"]).args(shop).args(["--in-process", "5", "--no-server", "--json"]));
    let again: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["setup"]["reused"], true, "{again}");
    // --no-server alone would measure nothing: a usage error.
    let refused = souk().args(["bench", "recommend", "--no-server"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(2), "{}", String::from_utf8_lossy(&refused.stderr));
}

#[test]
fn the_content_index_is_measured_against_the_exact_scan() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    run_ok(souk().args([
        "--data-dir",
        dir,
        "gen",
        "--items",
        "300",
        "--users",
        "80",
        "--events",
        "3000",
        "--seed",
        "7",
    ]));
    let output =
        run_ok(souk().args(["--data-dir", dir, "bench", "ann", "--space", "content", "--queries", "30"]).args([
            "--probes",
            "50,100",
            "--extra-per-k",
            "0,2",
            "--json",
        ]));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["vectors"]["items"], 300, "{report}");
    assert_eq!(report["vectors"]["queries"], 30, "{report}");
    let indexes = report["indexes"].as_array().unwrap();
    assert_eq!(indexes.len(), 2, "{report}");
    // Below 20,000 rows the inverted file is one cluster, scanned whole: exact, so its
    // recall against the blocked exact scan is 1 — the truth and the recall agree.
    for point in indexes[0]["curve"].as_array().unwrap() {
        assert_eq!(point["recall"].as_f64().unwrap(), 1.0, "{report}");
    }
    let projected = &indexes[1];
    assert_eq!(projected["directions"], 128, "{report}");
    let curve = projected["curve"].as_array().unwrap();
    assert_eq!(curve.len(), 4, "two extras × two depths: {report}");
    for point in curve {
        let recall = point["recall"].as_f64().unwrap();
        assert!(recall > 0.0 && recall <= 1.0, "{report}");
        assert!(point["queries_per_second"].as_f64().unwrap() > 0.0, "{report}");
    }
    // More candidates scored on the full rows never find fewer of the true neighbours.
    let recall = |extra: u64| curve.iter().find(|p| p["extra"] == extra * 10).unwrap()["recall"].as_f64().unwrap();
    assert!(recall(2) >= recall(0), "{report}");

    // The factor space writes its vectors for a reference library: it needs a folder.
    let refused = souk().args(["--data-dir", dir, "bench", "ann"]).output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--out"), "{}", String::from_utf8_lossy(&refused.stderr));
}
