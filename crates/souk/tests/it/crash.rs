//! Durability: every acknowledged event survives SIGKILL, exactly once.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use crate::{run_ok, souk, Server};

const PER_BATCH: usize = 50;

fn batch(n: usize) -> Value {
    // Each batch belongs to its own user so its survival can be checked on its own.
    Value::Array(
        (0..PER_BATCH)
            .map(|i| json!({"id": format!("b{n}-e{i}"), "type": "view", "user": format!("u{n}"), "item": format!("i{}", i % 17), "timestamp": 1_700_000_000_000i64 + i as i64}))
            .collect(),
    )
}

fn user_event_ids(server: &Server, n: usize) -> Vec<String> {
    let response: Value =
        ureq::get(&server.url(&format!("/v1/users/u{n}/events?n=10000"))).call().unwrap().into_json().unwrap();
    response["events"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn acknowledged_events_survive_sigkill_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicUsize::new(0));
    let url = server.url("/v1/events");
    // Four clients post concurrently until the server dies under them.
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (acknowledged, stop, next, url) = (acknowledged.clone(), stop.clone(), next.clone(), url.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    match ureq::post(&url).send_json(batch(n)) {
                        Ok(response) => {
                            let body: Value = response.into_json().unwrap();
                            assert_eq!(body["accepted"], PER_BATCH);
                            acknowledged.lock().unwrap().insert(n);
                        }
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    // Let some batches be acknowledged, then kill mid-stream.
    while acknowledged.lock().unwrap().len() < 40 {
        std::thread::sleep(Duration::from_millis(5));
    }
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    let attempted = next.load(Ordering::Relaxed);
    assert!(acknowledged.len() >= 40);

    let server = Server::start(dir.path());
    for n in &acknowledged {
        let ids = user_event_ids(&server, *n);
        let distinct: BTreeSet<_> = ids.iter().collect();
        assert_eq!((ids.len(), distinct.len()), (PER_BATCH, PER_BATCH), "batch {n} not stored exactly once");
    }
    // Batches in flight at the kill are all-or-nothing.
    for n in 0..attempted {
        let count = user_event_ids(&server, n).len();
        assert!(count == 0 || count == PER_BATCH, "batch {n} partially stored: {count}");
    }
    let stats: Value = ureq::get(&server.url("/v1/stats")).call().unwrap().into_json().unwrap();
    let stored = stats["events"].as_u64().unwrap() as usize;
    assert!(stored >= acknowledged.len() * PER_BATCH && stored <= attempted * PER_BATCH, "stored {stored}");

    // Re-delivering everything acknowledged stores nothing twice.
    for n in &acknowledged {
        let body: Value = ureq::post(&server.url("/v1/events")).send_json(batch(*n)).unwrap().into_json().unwrap();
        assert_eq!(
            (body["accepted"].as_u64(), body["duplicates"].as_u64()),
            (Some(PER_BATCH as u64), Some(PER_BATCH as u64))
        );
    }
    let again: Value = ureq::get(&server.url("/v1/stats")).call().unwrap().into_json().unwrap();
    assert_eq!(again["events"], stats["events"]);
}

#[test]
fn a_second_server_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _server = Server::start(dir.path());
    let output =
        crate::souk().arg("--data-dir").arg(dir.path()).args(["serve", "--listen", "127.0.0.1:0"]).output().unwrap();
    assert_eq!(output.status.code(), Some(4), "expected exit code 4 (data directory in use)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("in use by another souk process"), "{stderr}");
}

#[test]
fn stats_answers_beside_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let events: Vec<Value> = (0..120)
        .map(|n| json!({"id": format!("e{n}"), "type": "view", "user": format!("u{}", n % 9), "item": format!("i{}", n % 17), "timestamp": n}))
        .collect();
    ureq::post(&server.url("/v1/events")).send_json(Value::Array(events)).unwrap();
    let served: Value = ureq::get(&server.url("/v1/stats")).call().unwrap().into_json().unwrap();
    let output = crate::souk().arg("--data-dir").arg(dir.path()).args(["stats", "--json"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let read: Value = serde_json::from_slice(&output.stdout).unwrap();
    for key in ["events", "users", "items", "events_by_type"] {
        assert_eq!(read[key], served[key], "{key}");
    }
    assert_eq!(read["events"], 120);
}

/// The byte-flip reproduction: one flipped byte in the middle of the newest (and only)
/// segment. Every command refuses with the segment and offset, nothing is cut off; `verify`
/// lists the damage; `repair` salvages every other event.
#[test]
fn a_flipped_byte_in_the_newest_segment_stops_every_open_and_repair_salvages_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = ["--items", "300", "--users", "100", "--events", "20000", "--seed", "3"];
    run_ok(souk().arg("--data-dir").arg(&data).arg("gen").args(args));
    let stats = |data: &std::path::Path| -> serde_json::Value {
        serde_json::from_slice(&run_ok(souk().arg("--data-dir").arg(data).args(["stats", "--json"])).stdout).unwrap()
    };
    let before = stats(&data)["events"].as_u64().unwrap();
    assert_eq!(before, 20_000);
    let segment = data.join("events").join("seg-00000001.log");
    let mut bytes = std::fs::read(&segment).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(&segment, &bytes).unwrap();

    for command in [&["stats", "--json"][..], &["train"][..]] {
        let output = souk().arg("--data-dir").arg(&data).args(command).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(6), "{command:?}: {stderr}");
        assert!(stderr.contains("segment 1 is damaged at byte offset"), "{stderr}");
        assert!(stderr.contains("souk repair"), "{stderr}");
    }
    assert_eq!(std::fs::read(&segment).unwrap(), bytes, "a refused open changes nothing");

    let output = souk().arg("--data-dir").arg(&data).args(["verify", "--json"]).output().unwrap();
    assert_eq!(output.status.code(), Some(6));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["ok"], false);
    let damage = report["report"]["log"]["damage"].as_array().unwrap();
    assert_eq!(damage.len(), 1, "{report}");
    assert_eq!(damage[0]["segment"], 1);
    assert_eq!(damage[0]["torn_tail"], false);
    let offset = damage[0]["offset"].as_u64().unwrap();
    assert!(offset <= middle as u64 && middle as u64 <= offset + damage[0]["bytes"].as_u64().unwrap());

    let output = run_ok(souk().arg("--data-dir").arg(&data).args(["repair", "--json"]));
    let repair: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(repair["repaired"], true);
    assert_eq!(repair["check"]["records"].as_u64().unwrap(), before - 1, "exactly the damaged event is lost");
    assert!(data.join("events.damaged-1").join("seg-00000001.log").exists());
    assert_eq!(stats(&data)["events"].as_u64().unwrap(), before - 1);
    run_ok(souk().arg("--data-dir").arg(&data).args(["verify"]));
}

#[test]
fn a_snapshot_of_a_serving_shop_restores_with_every_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("live");
    run_ok(souk().arg("--data-dir").arg(&data).args(["gen", "--items", "300", "--users", "60", "--events", "4000"]));
    let stats = |data: &std::path::Path| -> Value {
        serde_json::from_slice(&run_ok(souk().arg("--data-dir").arg(data).args(["stats", "--json"])).stdout).unwrap()
    };
    let generated = stats(&data)["events"].as_u64().unwrap();
    let server = Server::start(&data);
    for n in 0..4 {
        let response = ureq::post(&server.url("/v1/events")).send_json(batch(n)).unwrap();
        assert_eq!(response.status(), 200);
    }
    // Beside the running server (which holds the directory's lock).
    let snap = dir.path().join("snap");
    let report: Value = serde_json::from_slice(
        &run_ok(souk().arg("--data-dir").arg(&data).arg("snapshot").arg(&snap).arg("--json")).stdout,
    )
    .unwrap();
    assert_eq!(report["report"]["catalog"], true, "{report}");
    let again = souk().arg("--data-dir").arg(&data).arg("snapshot").arg(&snap).output().unwrap();
    assert_eq!(again.status.code(), Some(4), "an existing target is refused");
    drop(server);

    let restored = dir.path().join("restored");
    let output: Value = serde_json::from_slice(
        &run_ok(souk().arg("--data-dir").arg(&restored).arg("restore").arg(&snap).arg("--json")).stdout,
    )
    .unwrap();
    assert_eq!(output["ok"], true, "{output}");
    assert_eq!(stats(&restored)["events"].as_u64(), Some(generated + 4 * PER_BATCH as u64));
    let twice = souk().arg("--data-dir").arg(&restored).arg("restore").arg(&snap).output().unwrap();
    assert_eq!(twice.status.code(), Some(4), "a non-empty data directory is refused");
}
