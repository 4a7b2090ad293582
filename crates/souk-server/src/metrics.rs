//! Prometheus metrics in the text exposition format, kept with atomics and one small map.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// Labels of a request series: method, route pattern, status.
type RequestKey = (String, String, u16);

/// Counters of the server.
#[derive(Default)]
pub struct Metrics {
    /// (method, route, status) → (count, total seconds).
    requests: Mutex<BTreeMap<RequestKey, (u64, f64)>>,
    pub events_stored: AtomicU64,
    pub events_duplicate: AtomicU64,
}

impl Metrics {
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut requests = self.requests.lock();
        let entry = requests.entry((method.to_string(), route.to_string(), status)).or_insert((0, 0.0));
        entry.0 += 1;
        entry.1 += seconds;
    }

    /// Render all metrics; `counters` and `gauges` add the engine's (name, help, value).
    pub fn render(&self, counters: &[(&str, &str, f64)], gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        out.push_str("# HELP souk_http_requests_total HTTP requests by method, route and status.\n# TYPE souk_http_requests_total counter\n");
        let requests = self.requests.lock().clone();
        for ((method, route, status), (count, _)) in &requests {
            let _ = writeln!(
                out,
                "souk_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {count}"
            );
        }
        out.push_str("# HELP souk_http_request_seconds_sum Total seconds spent serving requests.\n# TYPE souk_http_request_seconds_sum counter\n");
        for ((method, route, status), (_, seconds)) in &requests {
            let _ = writeln!(
                out,
                "souk_http_request_seconds_sum{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {seconds}"
            );
        }
        for (name, help, value) in [
            (
                "souk_events_stored_total",
                "Events stored through the HTTP API.",
                self.events_stored.load(Ordering::Relaxed) as f64,
            ),
            (
                "souk_events_duplicate_total",
                "Re-delivered events recognised by id and not stored again.",
                self.events_duplicate.load(Ordering::Relaxed) as f64,
            ),
        ]
        .into_iter()
        .chain(counters.iter().copied())
        {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
        }
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        }
        out
    }
}
