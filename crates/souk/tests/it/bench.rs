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
