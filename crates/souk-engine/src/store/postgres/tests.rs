//! What only a shared store has: several processes on one database (the contract every
//! backend keeps is in `store::contract_tests`).

use std::time::Duration;

use super::test_db::TestDb;
use super::PgStore;
use crate::ids::{EventId, ItemId, UserId};
use crate::model::{Event, EventType, Item};
use crate::store::Storage;

fn view(id: &str, user: &str, item: &str, ts: i64) -> Event {
    Event::new(
        EventId::parse(id, "id").unwrap(),
        EventType::View,
        UserId::parse(user, "user").unwrap(),
        Some(ItemId::parse(item, "item").unwrap()),
        ts,
    )
}

fn admin(db: &TestDb) -> postgres::Client {
    postgres::Client::connect(&db.url, postgres::NoTls).unwrap()
}

#[test]
fn a_second_process_follows_what_the_first_writes() {
    let Some(db) = TestDb::create() else { return };
    let a = PgStore::open(&db.url).unwrap();
    let b = PgStore::open(&db.url).unwrap();
    assert!(b.wait_for_changes(Duration::from_millis(1)).unwrap(), "the first wait starts listening");
    a.put_items(vec![Item::new(ItemId::parse("i1", "i").unwrap(), "Mug")]).unwrap();
    a.append_events(vec![view("e1", "u1", "i1", 1), view("e2", "u2", "i1", 2)]).unwrap();
    assert!(b.wait_for_changes(Duration::from_secs(30)).unwrap(), "the write notified");
    let changes = b.changes().unwrap();
    assert_eq!(changes.events.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["e1", "e2"]);
    assert_eq!(changes.items.iter().map(|i| i.as_str()).collect::<Vec<_>>(), ["i1"]);
    assert!(b.changes().unwrap().is_empty(), "handed over once");
    assert!(a.changes().unwrap().is_empty(), "a process's own writes are not handed back");
    let u1 = UserId::parse("u1", "u").unwrap();
    assert_eq!(b.user_interactions(&u1, 5).unwrap().len(), 1);
    assert_eq!(b.items_meta(&["i1"]).unwrap()[0].as_ref().unwrap().title.as_deref(), Some("Mug"));
    // B writes while A has not looked: A's next write reads B's first, in order.
    b.append_events(vec![view("e3", "u1", "i1", 3)]).unwrap();
    b.erase_user(&UserId::parse("u2", "u").unwrap()).unwrap();
    a.append_events(vec![view("e4", "u1", "i1", 4)]).unwrap();
    assert_eq!(a.applied_seq(), b.applied_seq() + 1);
    let history: Vec<i64> = a.user_interactions(&u1, 10).unwrap().iter().map(|i| i.timestamp).collect();
    assert_eq!(history, [4, 3, 1]);
    assert_eq!(a.stats().unwrap().events, 3, "the erased user's event is gone here too");
    let changes = a.changes().unwrap();
    assert_eq!(changes.events.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["e3"]);
    assert_eq!(changes.erased_users.len(), 1);
    b.changes().unwrap();
    assert_eq!(a.stats().unwrap().events, b.stats().unwrap().events);
}

#[test]
fn concurrent_writers_store_each_id_once_and_agree() {
    let Some(db) = TestDb::create() else { return };
    let stores: Vec<PgStore> = (0..3).map(|_| PgStore::open(&db.url).unwrap()).collect();
    std::thread::scope(|scope| {
        for (w, store) in stores.iter().enumerate() {
            scope.spawn(move || {
                for batch in 0..20 {
                    // Half of every batch is shared by all writers: stored once.
                    let events: Vec<Event> = (0..20)
                        .map(|i| {
                            let id =
                                if i % 2 == 0 { format!("shared-{batch}-{i}") } else { format!("w{w}-{batch}-{i}") };
                            view(&id, &format!("u{}", i % 5), &format!("i{i}"), 1_000 + batch)
                        })
                        .collect();
                    store.append_events(events).unwrap();
                }
            });
        }
    });
    let expected = 20 * 10 + 3 * 20 * 10;
    for store in &stores {
        store.changes().unwrap();
        assert_eq!(store.stats().unwrap().events, expected);
    }
    let row =
        admin(&db).query_one("SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM events", &[]).unwrap();
    let (count, distinct, min, max): (i64, i64, i64, i64) = (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!((count, distinct, min, max), (expected as i64, expected as i64, 1, expected as i64), "no gaps");
}

#[test]
fn events_land_in_month_partitions_and_a_newer_schema_is_refused() {
    let Some(db) = TestDb::create() else { return };
    let store = PgStore::open(&db.url).unwrap();
    let december = 1_764_979_200_000; // 2025-12-06
    let january = 1_767_657_600_000; // 2026-01-06
    store
        .append_events(vec![view("d", "u", "i", december), view("j", "u", "i", january), view("old", "u", "i", -5)])
        .unwrap();
    let mut client = admin(&db);
    let count = |client: &mut postgres::Client, table: &str| -> i64 {
        client.query_one(format!("SELECT count(*) FROM ONLY {table}").as_str(), &[]).unwrap().get(0)
    };
    assert_eq!(count(&mut client, "events_y2025m12"), 1);
    assert_eq!(count(&mut client, "events_y2026m01"), 1);
    assert_eq!(count(&mut client, "events_other"), 1);
    drop(store);
    client.execute("UPDATE souk_meta SET value = '99' WHERE key = 'format_version'", &[]).unwrap();
    match PgStore::open(&db.url) {
        Err(crate::Error::FormatVersion { found: 99, .. }) => {}
        Err(other) => panic!("expected a format version error, got {other}"),
        Ok(_) => panic!("a database of a newer format opened"),
    }
}

#[test]
fn an_unreachable_server_is_storage_unavailable() {
    // A port nothing listens on (1 is reserved): no server needed for this one.
    let error = PgStore::open("postgres://souk@127.0.0.1:1/souk?connect_timeout=2").err().expect("no server");
    assert!(matches!(error, crate::Error::Coded { code: "storage_unavailable", .. }), "{error}");
}

#[test]
fn one_trainer_at_a_time_and_generations_reach_every_process() {
    use std::io::{Read, Write};

    use crate::store::artifacts::ArtifactStore;

    let Some(db) = TestDb::create() else { return };
    let a = PgStore::open(&db.url).unwrap();
    let b = PgStore::open(&db.url).unwrap();
    let shared_a = a.shared_models().unwrap();
    let shared_b = b.shared_models().unwrap();
    let lease = shared_a.training_lease().unwrap().expect("the slot is free");
    assert!(shared_b.training_lease().unwrap().is_none(), "one trainer at a time");
    drop(lease);
    assert!(shared_b.training_lease().unwrap().is_some(), "free again once the lease is dropped");

    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (local_a, local_b) = (ArtifactStore::new(dir_a.path()), ArtifactStore::new(dir_b.path()));
    let big: Vec<u8> = (0..(9u32 << 20)).map(|i| (i % 251) as u8).collect(); // two parts
    for round in 0..3u8 {
        let mut writer = local_a.begin().unwrap();
        writer.create("manifest.json").unwrap().write_all(&[b'{', round, b'}']).unwrap();
        writer.create("empty").unwrap();
        writer.create("factors.bin").unwrap().write_all(&big).unwrap();
        let generation = writer.commit().unwrap();
        assert_eq!(shared_a.publish(&generation).unwrap(), u64::from(round) + 1);
    }
    assert!(b.changes().unwrap().models, "B learns that a generation was published");
    let (number, checksums) = shared_b.newest().unwrap().unwrap();
    assert_eq!(number, 3);
    let fetched = shared_b.fetch(number, &local_b).unwrap();
    assert_eq!(fetched.checksums().unwrap(), checksums);
    assert_eq!(local_b.current().unwrap().unwrap().name, fetched.name, "live at once");
    assert_eq!(fetched.checksums().unwrap(), local_a.current().unwrap().unwrap().checksums().unwrap());
    let mut bytes = Vec::new();
    fetched.open("factors.bin").unwrap().read_to_end(&mut bytes).unwrap();
    assert!(bytes == big);
    assert!(fetched.verify().unwrap().problems.is_empty());
    let kept: i64 = admin(&db).query_one("SELECT count(*) FROM model_generations", &[]).unwrap().get(0);
    assert_eq!(kept, 2);
    assert!(shared_b.fetch(1, &local_b).is_err(), "pruned");
}
