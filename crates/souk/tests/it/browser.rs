//! The web page in a real browser: headless Chromium loads it from `souk demo`, runs its
//! scripts, and the rendered DOM is checked.
//!
//! Chromium comes from the system (`.ci/run` installs the Debian package and sets
//! `SOUK_BROWSER_TESTS=required`, which makes a missing browser a failure). Elsewhere the
//! test says it was skipped when no browser is installed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::souk;

fn chromium() -> Option<String> {
    if let Ok(path) = std::env::var("SOUK_CHROMIUM") {
        return Some(path);
    }
    ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"].into_iter().find_map(|name| {
        let found = Command::new("sh").args(["-c", &format!("command -v {name}")]).output().ok()?;
        found.status.success().then(|| String::from_utf8_lossy(&found.stdout).trim().to_string())
    })
}

/// The DOM after the page's scripts ran (Chromium's virtual time lets fetches settle).
fn rendered(browser: &str, url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--virtual-time-budget=15000", "--dump-dom", url])
        .stderr(Stdio::null())
        .output()
        .expect("running the browser");
    assert!(output.status.success(), "{browser} failed on {url}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_web_page_renders_stats_search_and_trending_in_a_browser() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var("SOUK_BROWSER_TESTS").as_deref() != Ok("required"),
            "SOUK_BROWSER_TESTS=required but no Chromium was found (install the chromium package or set SOUK_CHROMIUM)"
        );
        eprintln!("skipped: no Chromium installed (set SOUK_BROWSER_TESTS=required to make this a failure)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut child = souk()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["demo", "--listen", "127.0.0.1:0", "--items", "300", "--users", "50", "--events", "3000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("souk: listening on ").unwrap().to_string();

    // The API's own answer, to compare the page with.
    let api: serde_json::Value =
        ureq::get(&format!("{base}/v1/search?q=shirt&n=10")).call().unwrap().into_json().unwrap();
    let first = api["items"][0]["id"].as_str().expect("the demo shop has shirts").to_string();

    let dom = rendered(&browser, &format!("{base}/?q=shirt"));
    let bad = rendered(&browser, &format!("{base}/?q=shirt&mode=semantic"));
    let _ = child.kill();
    let _ = child.wait();

    // Stats cards filled from /v1/stats.
    assert!(dom.contains(r#"data-stat="events"><b>3,000</b>"#), "stats card missing:\n{dom}");
    // The search ran on load and lists the API's first result first, with its scores.
    let results = dom.split(r#"id="search-results""#).nth(1).expect("results list");
    let first_li = results.split("<li").nth(1).expect("at least one result");
    assert!(first_li.contains(&format!(r#"data-item="{first}""#)), "first result is not {first}:\n{results}");
    assert!(first_li.contains("bm25"), "no per-stage scores:\n{first_li}");
    assert!(dom.contains("results · keyword"), "no summary:\n{dom}");
    // Facets are links.
    assert!(dom.contains(r#"data-facet="brand""#), "no brand facet:\n{dom}");
    // Trending filled from /v1/trending.
    let trending = dom.split(r#"id="trending""#).nth(1).expect("trending list");
    assert!(trending.contains("data-item="), "trending is empty:\n{trending}");
    // An API error reaches the shopper as a message, not a blank page.
    assert!(bad.contains("semantic search needs a query vector"), "no error message:\n{bad}");
}
