//! Durability: every acknowledged event survives SIGKILL, exactly once.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use crate::Server;

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
