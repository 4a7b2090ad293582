//! The storage contract: one suite that every backend of [`Storage`] passes — the
//! embedded store always, the PostgreSQL store when a server is configured (see
//! `postgres::test_db`).

use std::collections::BTreeMap;

use super::{AppendOutcome, EraseReport, Exposure, Storage};
use crate::ids::{EventId, ItemId, UserId};
use crate::model::{Event, EventType, Follow, FollowKind, Item, Translation, User};

/// A place a store lives; `open` may be called again to reopen what is there.
pub(super) trait Backend {
    fn open(&self) -> Box<dyn Storage>;
}

struct Embedded(tempfile::TempDir);

impl Backend for Embedded {
    fn open(&self) -> Box<dyn Storage> {
        Box::new(super::EmbeddedStore::open(self.0.path(), &super::StoreConfig::default()).unwrap())
    }
}

#[cfg(feature = "postgres")]
struct Postgres(super::postgres::test_db::TestDb);

#[cfg(feature = "postgres")]
impl Backend for Postgres {
    fn open(&self) -> Box<dyn Storage> {
        Box::new(super::PgStore::open(&self.0.url).unwrap())
    }
}

fn user(id: &str) -> UserId {
    UserId::parse(id, "user").unwrap()
}

fn item_id(id: &str) -> ItemId {
    ItemId::parse(id, "item").unwrap()
}

fn event(id: &str, event_type: EventType, u: &str, item: &str, ts: i64) -> Event {
    Event::new(EventId::parse(id, "id").unwrap(), event_type, user(u), Some(item_id(item)), ts)
}

fn view(id: &str, u: &str, item: &str, ts: i64) -> Event {
    event(id, EventType::View, u, item, ts)
}

fn follow(a: &str, b: &str, kind: FollowKind) -> Follow {
    Follow { user: user(a), other: user(b), kind, created_at: Some(7) }
}

fn events_and_catalog_survive_reopen_and_duplicates_are_stored_once(backend: &dyn Backend) {
    {
        let store = backend.open();
        let outcome = store
            .append_events(vec![view("a", "u1", "i1", 1), view("b", "u1", "i2", 2), view("a", "u1", "i1", 1)])
            .unwrap();
        assert_eq!(outcome, AppendOutcome { accepted: 3, duplicates: 1, duplicate_at: vec![2] });
        let outcome = store.append_events(vec![view("b", "u1", "i2", 2), view("c", "u2", "i1", 3)]).unwrap();
        assert_eq!(outcome, AppendOutcome { accepted: 2, duplicates: 1, duplicate_at: vec![0] });
        store.put_items(vec![Item::new(item_id("i3"), "Mug")]).unwrap();
        store.put_follows(vec![follow("u1", "u3", FollowKind::Follow)]).unwrap();
    }
    let store = backend.open();
    let stats = store.stats().unwrap();
    assert_eq!((stats.events, stats.items, stats.users, stats.social_edges), (3, 3, 3, 1));
    assert_eq!(store.event_count().unwrap(), 3);
    assert_eq!(stats.events_by_type["view"], 3);
    assert_eq!((stats.catalog_items, stats.items_without_record), (1, 2));
    let recent = store.user_events(&user("u1"), 10).unwrap();
    assert_eq!(recent.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["b", "a"]);
    assert_eq!(store.user_events(&user("u1"), 1).unwrap().len(), 1);
    assert_eq!(store.item_counts(&item_id("i1")).unwrap().unwrap().total, 2);
    assert!(store.item_counts(&item_id("nope")).unwrap().is_none());
    // Ids stay known across the reopen.
    assert_eq!(store.append_events(vec![view("a", "u1", "i1", 1)]).unwrap().duplicates, 1);
}

fn erasing_a_user_removes_events_edges_and_record_for_good(backend: &dyn Backend) {
    let u1 = user("u1");
    {
        let store = backend.open();
        store.put_users(vec![User::new(u1.clone())]).unwrap();
        store.append_events(vec![view("a", "u1", "i1", 1), view("b", "u2", "i1", 2)]).unwrap();
        store.put_follows(vec![follow("u2", "u1", FollowKind::Friend)]).unwrap();
        store
            .add_exposures(&[Exposure {
                experiment: "x".into(),
                request_id: "r1".into(),
                user: u1.clone(),
                arm: "a".into(),
                timestamp: 1,
            }])
            .unwrap();
        let report = store.erase_user(&u1).unwrap();
        assert_eq!(report, EraseReport { user_record: true, events: 1, social_edges: 1 });
        assert!(store.user_interactions(&u1, 10).unwrap().is_empty());
        assert!(store.user_exposures(&u1).unwrap().is_empty());
        // A late re-delivery of an erased event is not stored again.
        assert_eq!(store.append_events(vec![view("a", "u1", "i1", 1)]).unwrap().duplicates, 1);
    }
    let store = backend.open();
    let stats = store.stats().unwrap();
    assert_eq!((stats.events, stats.users, stats.social_edges), (1, 1, 0));
    assert_eq!(store.event_count().unwrap(), 1, "erased events are not counted");
    assert!(store.user_events(&u1, 10).unwrap().is_empty());
    assert!(store.get_user(&u1).unwrap().is_none());
    assert_eq!(store.item_counts(&item_id("i1")).unwrap().unwrap().total, 1);
    // The user may come back: new events are theirs to keep.
    assert_eq!(store.append_events(vec![view("d", "u1", "i2", 5)]).unwrap().duplicates, 0);
    assert_eq!(store.user_events(&u1, 10).unwrap().len(), 1);
}

fn items_are_written_read_replaced_and_deleted(backend: &dyn Backend) {
    let store = backend.open();
    let mut mug = Item::new(item_id("mug"), "Mug");
    mug.category = vec!["Home".into(), "Kitchen".into()];
    mug.brand = Some("Acme".into());
    mug.price = Some(55.99);
    mug.image = Some("https://img.example/mug.jpg".into());
    mug.attributes = BTreeMap::from([("colour".to_string(), serde_json::json!("red"))]);
    mug.translations.insert("zh".into(), Translation { title: "杯子".into(), description: None });
    mug.vectors.insert("image".into(), vec![0.25, -1.5]);
    let first = Item::new(item_id("cup"), "Cup, first version");
    let cup = Item::new(item_id("cup"), "Cup");
    store.put_items(vec![first, mug.clone(), cup.clone(), Item::new(item_id("bowl"), "Bowl")]).unwrap();
    assert_eq!(store.get_item(&item_id("mug")).unwrap().as_ref(), Some(&mug));
    assert_eq!(store.get_item(&item_id("cup")).unwrap().unwrap().title, "Cup", "the last of a batch wins");
    assert!(store.get_item(&item_id("nope")).unwrap().is_none());
    let meta = store.items_meta(&["mug", "nope"]).unwrap();
    let facts = meta[0].as_ref().unwrap();
    assert_eq!(
        (facts.title.as_deref(), facts.title_zh.as_deref(), facts.brand.as_deref(), facts.price),
        (Some("Mug"), Some("杯子"), Some("Acme"), Some(55.99))
    );
    assert_eq!(facts.category.iter().map(|c| c.as_ref()).collect::<Vec<_>>(), ["Home", "Kitchen"]);
    assert_eq!(facts.image.as_deref(), Some("https://img.example/mug.jpg"));
    assert!(meta[1].is_none());
    assert_eq!(store.items_match(&["mug", "nope"], &|m| m.is_some()).unwrap(), [true, false]);
    // Replacing keeps the insertion order.
    store.put_items(vec![Item::new(item_id("mug"), "Big mug")]).unwrap();
    assert!(store.delete_item(&item_id("bowl")).unwrap());
    assert!(!store.delete_item(&item_id("bowl")).unwrap());
    let mut scanned = Vec::new();
    store
        .scan_items(&mut |item| {
            scanned.push((item.id.to_string(), item.title));
            Ok(())
        })
        .unwrap();
    // Insertion order: where an id first arrived (its first version in the batch).
    assert_eq!(scanned, [("cup".to_string(), "Cup".to_string()), ("mug".to_string(), "Big mug".to_string())]);
    let mut with_meta = Vec::new();
    store.scan_item_meta(&mut |id, _| with_meta.push(id.to_string())).unwrap();
    with_meta.sort();
    assert_eq!(with_meta, ["cup", "mug"]);
    drop(store);
    let store = backend.open();
    assert_eq!(store.items_meta(&["mug", "bowl"]).unwrap()[0].as_ref().unwrap().title.as_deref(), Some("Big mug"));
    assert!(store.items_meta(&["bowl"]).unwrap()[0].is_none());
    assert_eq!(store.stats().unwrap().catalog_items, 2);
}

fn users_and_follows_are_kept_and_replaced(backend: &dyn Backend) {
    let store = backend.open();
    let mut ann = User::new(user("ann"));
    ann.attributes.insert("region".into(), serde_json::json!("north"));
    store.put_users(vec![ann.clone(), User::new(user("bob"))]).unwrap();
    assert_eq!(store.get_user(&user("ann")).unwrap().as_ref(), Some(&ann));
    // A replaced record keeps its place; scans see the newest version.
    ann.preferences.brands = vec!["Acme".into()];
    store.put_users(vec![ann.clone()]).unwrap();
    let mut scanned = Vec::new();
    store
        .scan_users(&mut |u| {
            scanned.push(u);
            Ok(())
        })
        .unwrap();
    assert_eq!(scanned, [ann.clone(), User::new(user("bob"))]);
    store
        .put_follows(vec![
            follow("ann", "bob", FollowKind::Follow),
            follow("ann", "cat", FollowKind::Follow),
            follow("ann", "bob", FollowKind::Friend),
        ])
        .unwrap();
    store.put_follows(vec![follow("ann", "cat", FollowKind::Trust)]).unwrap();
    let follows = store.follows_of(&user("ann")).unwrap();
    assert_eq!(
        follows.iter().map(|f| (f.other.as_str(), f.kind)).collect::<Vec<_>>(),
        [("bob", FollowKind::Friend), ("cat", FollowKind::Trust)]
    );
    assert_eq!(store.stats().unwrap().social_edges, 2);
    assert!(store.delete_follow(&user("ann"), &user("cat")).unwrap());
    assert!(!store.delete_follow(&user("ann"), &user("cat")).unwrap());
    let stats = store.stats().unwrap();
    assert_eq!((stats.social_edges, stats.users, stats.catalog_users), (1, 2, 2));
    drop(store);
    let store = backend.open();
    let stats = store.stats().unwrap();
    assert_eq!((stats.social_edges, stats.users), (1, 2), "cat left with the edge");
}

fn experiments_exposures_and_keys_are_documents(backend: &dyn Backend) {
    let store = backend.open();
    store.put_experiment("b", r#"{"v":1}"#).unwrap();
    store.put_experiment("a", r#"{"v":1}"#).unwrap();
    store.put_experiment("b", r#"{"v":2}"#).unwrap();
    assert_eq!(
        store.experiments().unwrap(),
        [("a".to_string(), r#"{"v":1}"#.to_string()), ("b".to_string(), r#"{"v":2}"#.to_string())]
    );
    let exposure = |request: &str, u: &str, arm: &str| Exposure {
        experiment: "a".into(),
        request_id: request.into(),
        user: user(u),
        arm: arm.into(),
        timestamp: 3,
    };
    store.add_exposures(&[exposure("r2", "u1", "x"), exposure("r1", "u2", "y")]).unwrap();
    store.add_exposures(&[exposure("r2", "u1", "changed"), exposure("r3", "u1", "x")]).unwrap();
    let arms: Vec<_> = store.exposures("a").unwrap().into_iter().map(|e| (e.request_id, e.arm)).collect();
    assert_eq!(arms, [("r2".into(), "x".into()), ("r1".into(), "y".into()), ("r3".into(), "x".into())]);
    assert_eq!(store.user_exposures(&user("u1")).unwrap().len(), 2);
    assert!(store.exposures("none").unwrap().is_empty());
    store.put_api_key("k1", "doc1").unwrap();
    store.put_api_key("k0", "doc0").unwrap();
    assert_eq!(store.api_keys().unwrap().len(), 2);
    assert!(store.delete_api_key("k1").unwrap());
    assert!(!store.delete_api_key("k1").unwrap());
    assert_eq!(store.api_keys().unwrap(), [("k0".to_string(), "doc0".to_string())]);
}

fn interactions_are_read_in_order_from_memory_and_events_by_type(backend: &dyn Backend) {
    let store = backend.open();
    let mut search = Event::new(EventId::parse("s", "id").unwrap(), EventType::Search, user("u1"), None, 3);
    search.query = Some("mug".into());
    search.items = vec![item_id("i1"), item_id("i2")];
    store
        .append_events(vec![
            view("v1", "u1", "i1", 1),
            event("c1", EventType::AddToCart, "u1", "i2", 2),
            search,
            event("p1", EventType::Purchase, "u2", "i2", 4),
        ])
        .unwrap();
    let history: Vec<_> = store.user_interactions(&user("u1"), 10).unwrap().into_iter().map(|i| i.item).collect();
    assert_eq!(history, ["i2", "i1"], "newest first, searches left out");
    let mut rows = Vec::new();
    store.scan_interactions(&mut |u, item, _| rows.push((u.to_string(), item.map(str::to_string)))).unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[2], ("u1".to_string(), None));
    let mut recent = Vec::new();
    store
        .recent_interactions(2, &mut |item, row| {
            recent.push((item.to_string(), row.event_type));
            true
        })
        .unwrap();
    assert_eq!(recent, [("i2".to_string(), EventType::Purchase), ("i2".to_string(), EventType::AddToCart)]);
    let mut ids = Vec::new();
    store
        .scan_events(&[EventType::Search, EventType::Purchase], &mut |e| {
            ids.push(e.id.to_string());
            Ok(())
        })
        .unwrap();
    assert_eq!(ids, ["s", "p1"]);
    let stored = store.user_events(&user("u1"), 1).unwrap();
    assert_eq!(stored[0].query.as_deref(), Some("mug"));
    assert_eq!(stored[0].items.len(), 2);
}

/// Each case once per backend: `embedded::case` and `postgres::case`.
macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(
                #[test]
                fn $case() {
                    super::$case(&super::Embedded(tempfile::tempdir().unwrap()));
                }
            )*
        }

        #[cfg(feature = "postgres")]
        mod postgres {
            $(
                #[test]
                fn $case() {
                    if let Some(db) = crate::store::postgres::test_db::TestDb::create() {
                        super::$case(&super::Postgres(db));
                    }
                }
            )*
        }
    };
}

contract!(
    events_and_catalog_survive_reopen_and_duplicates_are_stored_once,
    erasing_a_user_removes_events_edges_and_record_for_good,
    items_are_written_read_replaced_and_deleted,
    users_and_follows_are_kept_and_replaced,
    experiments_exposures_and_keys_are_documents,
    interactions_are_read_in_order_from_memory_and_events_by_type,
);
