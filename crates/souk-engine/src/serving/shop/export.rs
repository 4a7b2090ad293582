//! A user's data export: everything the shop holds about one user — their record, every
//! stored event (oldest first), the social edges they made and their experiment exposures —
//! as a sequence of records that a front end writes out one by one (the server streams them
//! as NDJSON), closed by an `end` record with the counts, so a reader can tell a complete
//! export from a cut one.

use serde::Serialize;

use super::Shop;
use crate::error::Result;
use crate::ids::UserId;
use crate::model::{Event, Follow, User};
use crate::store::Exposure;

/// One record of an export, tagged by `record`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum ExportRecord {
    /// First: whose export it is, when it was made, and their stored record (`null` when
    /// the shop knows them only from events or edges).
    User {
        id: UserId,
        exported_at: i64,
        user: Option<User>,
    },
    Event(Event),
    Follow(Follow),
    Exposure {
        experiment: String,
        arm: String,
        request_id: String,
        timestamp: i64,
    },
    /// Last: how many records of each kind came before.
    End {
        events: usize,
        follows: usize,
        exposures: usize,
    },
}

impl Shop {
    /// Write `user`'s export through `write`, record by record; `Ok(false)` (and nothing
    /// written) when the shop holds nothing about them. `now_ms` stamps the export.
    pub fn export_user(
        &self,
        user: &UserId,
        now_ms: i64,
        write: &mut dyn FnMut(ExportRecord) -> Result<()>,
    ) -> Result<bool> {
        let store = self.store();
        let record = store.get_user(user)?;
        let follows = store.follows_of(user)?;
        let mut events = store.user_events(user, usize::MAX)?;
        let exposures = store.user_exposures(user)?;
        if record.is_none() && follows.is_empty() && events.is_empty() && exposures.is_empty() {
            return Ok(false);
        }
        events.reverse();
        let counts = (events.len(), follows.len(), exposures.len());
        write(ExportRecord::User { id: user.clone(), exported_at: now_ms, user: record })?;
        for event in events {
            write(ExportRecord::Event(event))?;
        }
        for follow in follows {
            write(ExportRecord::Follow(follow))?;
        }
        for Exposure { experiment, request_id, arm, timestamp, .. } in exposures {
            write(ExportRecord::Exposure { experiment, arm, request_id, timestamp })?;
        }
        write(ExportRecord::End { events: counts.0, follows: counts.1, exposures: counts.2 })?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::Value;

    use super::*;
    use crate::input;
    use crate::store::{EmbeddedStore, Storage, StoreConfig};

    fn export(shop: &Shop, user: &str) -> Option<Vec<Value>> {
        let mut lines = Vec::new();
        let found = shop
            .export_user(&UserId::parse(user, "user").unwrap(), 42, &mut |record| {
                lines.push(serde_json::to_value(&record).unwrap());
                Ok(())
            })
            .unwrap();
        found.then_some(lines)
    }

    #[test]
    fn an_export_holds_the_record_every_event_oldest_first_the_edges_and_the_exposures() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(dir.path(), &StoreConfig::default()).unwrap());
        let shop = Shop::new(store.clone(), Default::default());
        let user = UserId::parse("ada", "user").unwrap();
        store
            .put_users(vec![
                input::parse_user(&serde_json::json!({"id": "ada", "attributes": {"region": "eu"}})).unwrap()
            ])
            .unwrap();
        let event = |id: &str, kind: &str, who: &str, item: &str, at: i64| {
            input::parse_event(&serde_json::json!({"id": id, "type": kind, "user": who, "item": item, "timestamp": at}))
                .unwrap()
        };
        shop.ingest(
            (0..5)
                .map(|k| {
                    event(
                        &format!("e{k}"),
                        if k == 4 { "purchase" } else { "view" },
                        "ada",
                        &format!("i{k}"),
                        1_000 + k,
                    )
                })
                .collect(),
        )
        .unwrap();
        // Someone else's event is not in it.
        shop.ingest(vec![event("other", "view", "bob", "i0", 2_000)]).unwrap();
        store
            .put_follows(vec![input::parse_follow(&serde_json::json!({"user": "ada", "other": "bob"})).unwrap()])
            .unwrap();
        store
            .add_exposures(&[Exposure {
                experiment: "exp".into(),
                request_id: "r1".into(),
                user: user.clone(),
                arm: "b".into(),
                timestamp: 1_500,
            }])
            .unwrap();

        let lines = export(&shop, "ada").unwrap();
        let kinds: Vec<&str> = lines.iter().map(|l| l["record"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["user", "event", "event", "event", "event", "event", "follow", "exposure", "end"]);
        assert_eq!(lines[0]["id"], "ada");
        assert_eq!(lines[0]["user"]["attributes"]["region"], "eu");
        let items: Vec<&str> = lines[1..6].iter().map(|l| l["item"].as_str().unwrap()).collect();
        assert_eq!(items, ["i0", "i1", "i2", "i3", "i4"], "oldest first");
        assert_eq!(lines[5]["type"], "purchase");
        assert_eq!(lines[6]["other"], "bob");
        assert_eq!((lines[7]["experiment"].as_str(), lines[7]["arm"].as_str()), (Some("exp"), Some("b")));
        assert_eq!(lines[8], serde_json::json!({"record": "end", "events": 5, "follows": 1, "exposures": 1}));

        // After erasure the shop holds nothing about them.
        store.erase_user(&user).unwrap();
        assert_eq!(export(&shop, "ada"), None);
        assert!(export(&shop, "bob").is_some());
    }
}
