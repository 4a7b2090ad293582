//! The storefront and the admin console in a real browser: headless Chromium, driven over
//! the DevTools protocol, walks `souk demo` as a shopper and an operator would — search in
//! English and Chinese with suggestions, a facet applied and cleared, the next page, a
//! product added to the cart and the recommendations that change, another shopper, the
//! admin console with a training's progress and the charts — with no console error.
//! Screenshots are kept under the target directory (their paths are printed).
//!
//! Chromium comes from the system (`.ci/run` installs the Debian package and sets
//! `SOUK_BROWSER_TESTS=required`, which makes a missing browser a failure). Elsewhere the
//! test says it was skipped when no browser is installed.

mod cdp;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::souk;
use cdp::Browser;

fn chromium() -> Option<String> {
    if let Ok(path) = std::env::var("SOUK_CHROMIUM") {
        return Some(path);
    }
    ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"].into_iter().find_map(|name| {
        let found = Command::new("sh").args(["-c", &format!("command -v {name}")]).output().ok()?;
        found.status.success().then(|| String::from_utf8_lossy(&found.stdout).trim().to_string())
    })
}

fn get(url: &str) -> Value {
    ureq::get(url).call().unwrap_or_else(|e| panic!("{url}: {e}")).into_json().unwrap()
}

/// The ids of the cards in a rail or grid.
fn ids(browser: &mut Browser, container: &str) -> Vec<String> {
    let found = browser.eval(&format!("[...document.querySelectorAll('{container} .card')].map(c => c.dataset.item)"));
    serde_json::from_value(found).unwrap()
}

/// A word of the demo's English titles that finds more than one page of results.
fn english_query(base: &str) -> (String, u64) {
    let all = get(&format!("{base}/v1/search?q=&n=100&facets=false"));
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for item in all["items"].as_array().unwrap() {
        for word in item["title"].as_str().unwrap().split_whitespace() {
            if word.len() >= 4 && word.chars().all(|c| c.is_ascii_alphabetic()) {
                *counts.entry(word.to_lowercase()).or_default() += 1;
            }
        }
    }
    let mut words: Vec<(String, usize)> = counts.into_iter().collect();
    words.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    words
        .into_iter()
        .take(15)
        .map(|(word, _)| {
            let total = get(&format!("{base}/v1/search?q={word}&n=1&facets=false"))["total"].as_u64().unwrap();
            (word, total)
        })
        .find(|(_, total)| *total > 24)
        .expect("a word with more than a page of results")
}

#[test]
fn a_shopper_and_an_operator_walk_the_storefront_and_the_admin_console() {
    let Some(binary) = chromium() else {
        assert!(
            std::env::var("SOUK_BROWSER_TESTS").as_deref() != Ok("required"),
            "SOUK_BROWSER_TESTS=required but no Chromium was found (install the chromium package or set SOUK_CHROMIUM)"
        );
        eprintln!("skipped: no Chromium installed (set SOUK_BROWSER_TESTS=required to make this a failure)");
        return;
    };
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&shots).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut child = souk()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["demo", "--listen", "127.0.0.1:0", "--items", "600", "--users", "60", "--events", "6000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("souk: listening on ").unwrap().to_string();
    let (word, total) = english_query(&base);

    let mut browser = Browser::launch(&binary);
    // Home: the most active shopper is chosen, their rails have reasons.
    browser.navigate(&format!("{base}/"));
    browser.wait_for("document.querySelector('#for-you .card .reason')", "the for-you rail with reasons");
    let shopper = browser.eval("localStorage.getItem('souk.user')").as_str().unwrap().to_string();
    let listed = get(&format!("{base}/v1/users?limit=1"));
    assert_eq!(listed["users"][0]["id"], shopper.as_str(), "the most active shopper is the first one shown");
    browser.click("#for-you .card .why");
    browser.wait_for("document.querySelector('#for-you .why-panel td')", "the why? view of a card");
    browser.screenshot(&shots.join("1-home.png"));

    // Suggestions as the shopper types, then the English search.
    browser.eval("document.getElementById('q').focus()");
    browser.type_text(&word[..3]);
    let suggested = browser.wait_for(
        "document.querySelectorAll('#suggestions li').length && document.getElementById('suggestions').textContent",
        "suggestions",
    );
    assert!(suggested.as_str().unwrap().to_lowercase().contains(&word[..3]), "{suggested}");
    browser.screenshot(&shots.join("2-suggestions.png"));
    browser.eval(&format!(
        "document.getElementById('q').value = {word:?}; document.getElementById('search-form').requestSubmit()"
    ));
    let shown = browser.wait_for("document.querySelector('#result-count')?.dataset.total", "English results");
    assert_eq!(shown.as_str().unwrap(), total.to_string(), "the page shows the API's total for {word:?}");
    let first_page = ids(&mut browser, "#results");
    assert_eq!(first_page.len(), 24);

    // A brand facet: every result is of that brand; then cleared.
    let brand =
        browser.eval("document.querySelector('[data-facet=brand]').dataset.value").as_str().unwrap().to_string();
    browser.click("[data-facet=brand]");
    browser.wait_for("document.querySelector('.facet.selected[data-facet=brand]')", "the selected brand");
    let brands = browser.eval("[...document.querySelectorAll('#results .card-meta span')].map(s => s.textContent)");
    let brands: Vec<String> = serde_json::from_value(brands).unwrap();
    assert!(!brands.is_empty() && brands.iter().all(|b| *b == brand), "{brand}: {brands:?}");
    browser.screenshot(&shots.join("3-facet.png"));
    browser.click("[data-clear=brand]");
    browser.wait_for(
        "!document.querySelector('.facet.selected[data-facet=brand]') && document.querySelector('#results')",
        "the brand cleared",
    );
    assert_eq!(browser.eval("document.querySelector('#result-count').dataset.total"), total.to_string());

    // The next page shows other items.
    browser.click("#next-page");
    browser.wait_for("document.querySelector('#page-label')?.dataset.page === '2'", "page 2");
    let second_page = ids(&mut browser, "#results");
    assert!(!second_page.is_empty() && second_page.iter().all(|id| !first_page.contains(id)), "{second_page:?}");

    // 中文: Chinese UI strings, a Chinese query, Chinese titles.
    let zh_title = get(&format!("{base}/v1/search?q={word}&n=1&lang=zh&facets=false"))["items"][0]["title"]
        .as_str()
        .unwrap()
        .to_string();
    let zh_query: String = zh_title.chars().filter(|c| ('\u{4e00}'..='\u{9fff}').contains(c)).take(2).collect();
    assert_eq!(zh_query.chars().count(), 2, "the demo has Chinese titles: {zh_title}");
    browser.click("#lang-zh");
    browser.wait_for("document.getElementById('search-button').textContent === '搜索'", "Chinese UI strings");
    browser.eval(&format!(
        "document.getElementById('q').value = {zh_query:?}; document.getElementById('search-form').requestSubmit()"
    ));
    browser.wait_for(
        &format!(
            "location.hash.includes({:?}) && document.querySelector('#results .card-title')",
            urlencode(&zh_query)
        ),
        "Chinese results",
    );
    let titles = browser.eval("[...document.querySelectorAll('#results .card-title')].map(t => t.textContent)");
    let titles: Vec<String> = serde_json::from_value(titles).unwrap();
    assert!(titles.iter().all(|t| t.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))), "{titles:?}");
    browser.screenshot(&shots.join("4-chinese.png"));
    browser.click("#lang-en");
    browser.wait_for("document.getElementById('search-button').textContent === 'Search'", "English UI strings");

    // A recommended product, added to the cart: the next recommendations change.
    browser.click("#home-link");
    browser.wait_for("location.hash === '#/' && document.querySelector('#for-you .card')", "home");
    let before = ids(&mut browser, "#for-you");
    let chosen = before[0].clone();
    browser.click("#for-you .card .card-link");
    browser.wait_for(
        &format!(
            "document.querySelector('#product')?.dataset.item === {chosen:?} && document.querySelector('#now-for-you')"
        ),
        "the product page",
    );
    assert!(browser.eval("document.querySelectorAll('#similar .card').length").as_u64().unwrap() > 0);
    browser.click("#add-to-cart");
    browser.wait_for("document.getElementById('cart-status').textContent", "the cart confirmation");
    browser.wait_for("document.querySelector('#now-for-you')?.dataset.version === '2'", "refreshed recommendations");
    browser.screenshot(&shots.join("5-product.png"));
    // Real events were stored: the click from the rail (with its request id), the view and
    // the cart (impressions of the pages shown are logged beside them).
    let events = get(&format!("{base}/v1/users/{shopper}/events?n=30"));
    let actions: Vec<(&str, &str)> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] != "impression" && e["type"] != "search")
        .map(|e| (e["type"].as_str().unwrap(), e["item"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(actions[0], ("add_to_cart", chosen.as_str()), "{events}");
    for kind in ["view", "click"] {
        assert!(actions[..3].contains(&(kind, chosen.as_str())), "no {kind} of {chosen}: {actions:?}");
    }
    browser.click("#home-link");
    browser.wait_for("location.hash === '#/' && document.querySelector('#for-you .card')", "home again");
    let after = ids(&mut browser, "#for-you");
    assert!(!after.contains(&chosen) && after != before, "before {before:?}, after {after:?}");

    // Another shopper, then a new visitor.
    let other = listed_user(&base, &shopper);
    browser.eval(&format!(
        "{{ const s = document.getElementById('shopper'); s.value = {other:?}; s.dispatchEvent(new Event('change')) }}"
    ));
    browser.wait_for(&format!("localStorage.getItem('souk.user') === {other:?}"), "the shopper switched");
    browser.wait_for("document.querySelector('#for-you .card')", "the other shopper's rail");
    assert_ne!(ids(&mut browser, "#for-you"), after, "another shopper sees other recommendations");
    browser.eval(
        "{ const s = document.getElementById('shopper'); s.value = '__new'; s.dispatchEvent(new Event('change')) }",
    );
    browser.wait_for(
        "document.querySelector('#visitor-note') && document.querySelector('#for-you .card')",
        "a new visitor",
    );
    // The visitor picks a category at onboarding: the first page follows it, and says so.
    let root = browser.wait_for("document.querySelector('#onboard [data-onboard]')?.dataset.onboard", "onboarding");
    let root = root.as_str().unwrap().to_string();
    browser.click(&format!("#onboard [data-onboard={root:?}]"));
    browser.click("#onboard-save");
    let said = browser.wait_for(
        "[...document.querySelectorAll('#for-you .card .reason')].map(r => r.textContent).find(t => t.includes('which you said you like'))",
        "a pick from the stated category",
    );
    assert!(said.as_str().unwrap().contains(&root), "{said} does not name {root}");
    let visitor = browser.eval("localStorage.getItem('souk.user')").as_str().unwrap().to_string();
    let stated = get(&format!("{base}/v1/users/{visitor}"));
    assert_eq!(stated["preferences"]["categories"], serde_json::json!([root]), "{stated}");
    browser.screenshot(&shots.join("5b-onboarding.png"));

    // At phone width the storefront still lays out (one column of facets, two of results).
    browser.viewport(390, 844, true);
    browser.navigate(&format!("{base}/#/search?q={word}"));
    browser.wait_for("document.querySelector('#results .card')", "results at phone width");
    let columns =
        browser.eval("getComputedStyle(document.querySelector('#results')).gridTemplateColumns.split(' ').length");
    assert_eq!(columns, 2, "two columns at phone width");
    browser.screenshot(&shots.join("6-phone.png"));
    browser.viewport(1280, 900, false);

    // The admin console: stats, the events chart, a training's progress to done.
    browser.navigate(&format!("{base}/admin"));
    browser.wait_for("document.querySelector('[data-stat=events] b')", "the stats");
    let lines = browser.wait_for("document.querySelectorAll('#activity-chart polyline').length", "the events chart");
    assert!(lines.as_u64().unwrap() >= 3, "a line per event type: {lines}");
    // The demo's own training is a job already; the one started here is new.
    let earlier: Vec<String> =
        get(&format!("{base}/v1/jobs"))["jobs"].as_array().unwrap().iter().map(|j| j["id"].to_string()).collect();
    browser.click("#train");
    let job = browser.wait_for(
        &format!(
            "[...document.querySelectorAll('#jobs-table tr[data-job]')].map(r => r.dataset.job).find(id => id.startsWith('train') && ![{}].includes(id))",
            earlier.join(",")
        ),
        "the new train job",
    );
    let job = job.as_str().unwrap().to_string();
    // Its row is watched until it is done; every state it showed is kept.
    let states = browser.wait_for(
        &format!(
            "(() => {{ const r = document.querySelector('tr[data-job={job:?}]'); if (!r) return null; \
             window.seen = (window.seen || []).concat([[r.dataset.state, r.dataset.progress]]); \
             return r.dataset.state === 'done' ? window.seen : null; }})()"
        ),
        "the training to finish",
    );
    let states: Vec<(String, String)> = serde_json::from_value(states).unwrap();
    assert!(states.iter().all(|(s, _)| ["queued", "running", "done"].contains(&s.as_str())), "{states:?}");
    assert_eq!(states.last().unwrap(), &("done".to_string(), "1".to_string()), "{states:?}");
    let bar = browser.eval(&format!("document.querySelector('tr[data-job={job:?}] .bar > div').style.width"));
    assert_eq!(bar, "100%");
    let api_job = get(&format!("{base}/v1/jobs/{job}"));
    assert_eq!((api_job["state"].as_str(), api_job["progress"].as_f64()), (Some("done"), Some(1.0)), "{api_job}");
    browser
        .wait_for("document.getElementById('model').textContent.includes('Serving since')", "the serving generation");
    browser.screenshot(&shots.join("7-admin.png"));

    let errors = std::mem::take(&mut browser.errors);
    drop(browser);
    let _ = child.kill();
    let _ = child.wait();
    assert!(errors.is_empty(), "the pages reported errors: {errors:#?}");
}

/// A listed shopper other than `not`.
fn listed_user(base: &str, not: &str) -> String {
    let users = get(&format!("{base}/v1/users?limit=5"));
    users["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .find(|u| *u != not)
        .unwrap()
        .to_string()
}

/// How `URLSearchParams` writes a value.
fn urlencode(text: &str) -> String {
    serde_urlencoded::to_string([("q", text)]).unwrap().trim_start_matches("q=").to_string()
}
