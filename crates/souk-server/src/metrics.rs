//! Prometheus metrics in the text exposition format, kept with atomics and one small map.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// Labels of a request series: method, route pattern, status.
type RequestKey = (String, String, u16);

/// Upper bounds (seconds) of the latency histogram's buckets, Prometheus' defaults with
/// finer steps below 10 ms, where Souk's answers are.
pub const LATENCY_BUCKETS: [f64; 14] =
    [0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// One route's latency histogram: requests per bucket (not cumulative; rendered
/// cumulative), the total, the sum of seconds.
#[derive(Debug, Clone, Default)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(i) = LATENCY_BUCKETS.iter().position(|&le| seconds <= le) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }
}

/// Counters of the server.
#[derive(Default)]
pub struct Metrics {
    /// (method, route, status) → (count, total seconds).
    requests: Mutex<BTreeMap<RequestKey, (u64, f64)>>,
    /// (method, route) → latency histogram.
    latency: Mutex<BTreeMap<(String, String), Histogram>>,
    pub events_stored: AtomicU64,
    pub events_duplicate: AtomicU64,
}

impl Metrics {
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        {
            let mut requests = self.requests.lock();
            let entry = requests.entry((method.to_string(), route.to_string(), status)).or_insert((0, 0.0));
            entry.0 += 1;
            entry.1 += seconds;
        }
        self.latency.lock().entry((method.to_string(), route.to_string())).or_default().observe(seconds);
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
        out.push_str("# HELP souk_http_request_duration_seconds Time to answer a request, by method and route.\n# TYPE souk_http_request_duration_seconds histogram\n");
        let latency = self.latency.lock().clone();
        for ((method, route), histogram) in &latency {
            let labels = format!("method=\"{method}\",route=\"{route}\"");
            let mut cumulative = 0;
            for (le, n) in LATENCY_BUCKETS.iter().zip(histogram.buckets) {
                cumulative += n;
                let _ = writeln!(out, "souk_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}");
            }
            let _ =
                writeln!(out, "souk_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}", histogram.count);
            let _ = writeln!(out, "souk_http_request_duration_seconds_sum{{{labels}}} {}", histogram.sum);
            let _ = writeln!(out, "souk_http_request_duration_seconds_count{{{labels}}} {}", histogram.count);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latency_histogram_is_cumulative_per_route() {
        let metrics = Metrics::default();
        for seconds in [0.0005, 0.003, 0.003, 0.2, 30.0] {
            metrics.observe_request("GET", "/v1/search", 200, seconds);
        }
        metrics.observe_request("POST", "/v1/events", 200, 0.004);
        let text = metrics.render(&[], &[]);
        let line = |le: &str| {
            format!("souk_http_request_duration_seconds_bucket{{method=\"GET\",route=\"/v1/search\",le=\"{le}\"}}")
        };
        for (le, expected) in [("0.001", 1), ("0.0025", 1), ("0.005", 3), ("0.25", 4), ("10", 4), ("+Inf", 5)] {
            assert!(text.contains(&format!("{} {expected}\n", line(le))), "le={le}: {text}");
        }
        assert!(text.contains("souk_http_request_duration_seconds_count{method=\"GET\",route=\"/v1/search\"} 5\n"));
        assert!(text.contains("souk_http_request_duration_seconds_count{method=\"POST\",route=\"/v1/events\"} 1\n"));
        assert!(text.contains("# TYPE souk_http_request_duration_seconds histogram"));
    }
}
