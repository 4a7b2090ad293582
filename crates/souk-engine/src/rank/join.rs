//! Training sets from logs: each item an impression showed, joined to what followed.
//!
//! - An impression event (`type: impression`, with `request_id` and the shown `items` in
//!   display order) yields one [`LabeledImpression`] per shown item, its position being its
//!   index. Impressions without a request id cannot be joined and are skipped.
//! - A click with the same request id and item marks that row clicked (within the window).
//! - An add-to-cart or purchase of the item by the same user, within the window after the
//!   impression, is credited to the latest clicked impression of that item (last-click
//!   attribution): a purchase nobody clicked through to is not credited to a list.
//!
//! [`examination_propensities`] estimates position bias from the randomised share of
//! traffic: where the logging policy shuffled what it showed, an item's chance to sit in a
//! slot is independent of its appeal, so the click rate per slot relative to the first slot
//! is the probability that a shopper looks at that slot at all. Those propensities weight
//! the clicked rows of all traffic by their inverse (Joachims et al. 2017).

use std::collections::HashMap;

use crate::model::{Event, EventType};
use crate::recommend::EventWeights;

/// One shown item and what the shopper did with it.
#[derive(Debug, Clone, PartialEq)]
pub struct LabeledImpression {
    pub request_id: String,
    pub user: String,
    pub item: String,
    /// Zero-based slot.
    pub position: u32,
    pub shown_at: i64,
    /// The experiment arm or logging-policy bucket that served it.
    pub arm: Option<String>,
    pub clicked: bool,
    pub carted: bool,
    pub purchased: bool,
}

impl LabeledImpression {
    /// Graded relevance: 3 purchased, 2 carted, 1 clicked, 0 shown only.
    pub fn grade(&self) -> u8 {
        if self.purchased {
            3
        } else if self.carted {
            2
        } else {
            u8::from(self.clicked)
        }
    }

    /// The configured event weights of what happened (click + cart + purchase).
    pub fn gain(&self, weights: &EventWeights) -> f64 {
        let mut gain = 0.0;
        if self.clicked {
            gain += f64::from(weights.click);
        }
        if self.carted {
            gain += f64::from(weights.add_to_cart);
        }
        if self.purchased {
            gain += f64::from(weights.purchase);
        }
        gain
    }
}

/// Join impressions to the clicks, carts and purchases that followed within `window_ms`.
/// Events may come in any order; rows come out in impression order (time, then slot).
pub fn join_impressions<'a>(events: impl IntoIterator<Item = &'a Event>, window_ms: i64) -> Vec<LabeledImpression> {
    let mut events: Vec<&Event> = events.into_iter().collect();
    // Impressions before the events of the same millisecond, so a click logged with its
    // impression's timestamp still joins.
    events.sort_by_key(|e| (e.timestamp, e.event_type != EventType::Impression));
    let mut rows: Vec<LabeledImpression> = Vec::new();
    let mut by_request_item: HashMap<(String, String), usize> = HashMap::new();
    // (user, item) → rows in time order.
    let mut by_user_item: HashMap<(String, String), Vec<usize>> = HashMap::new();
    for event in events {
        match event.event_type {
            EventType::Impression => {
                let Some(request) = &event.request_id else { continue };
                for (position, item) in event.items.iter().enumerate() {
                    let row = rows.len();
                    rows.push(LabeledImpression {
                        request_id: request.clone(),
                        user: event.user.as_str().to_string(),
                        item: item.as_str().to_string(),
                        position: position as u32,
                        shown_at: event.timestamp,
                        arm: event.arm.clone(),
                        clicked: false,
                        carted: false,
                        purchased: false,
                    });
                    by_request_item.insert((request.clone(), item.as_str().to_string()), row);
                    by_user_item
                        .entry((event.user.as_str().to_string(), item.as_str().to_string()))
                        .or_default()
                        .push(row);
                }
            }
            EventType::Click => {
                let (Some(request), Some(item)) = (&event.request_id, &event.item) else { continue };
                if let Some(&row) = by_request_item.get(&(request.clone(), item.as_str().to_string())) {
                    if event.timestamp - rows[row].shown_at <= window_ms {
                        rows[row].clicked = true;
                    }
                }
            }
            EventType::AddToCart | EventType::Purchase => {
                let Some(item) = &event.item else { continue };
                let key = (event.user.as_str().to_string(), item.as_str().to_string());
                let Some(candidates) = by_user_item.get(&key) else { continue };
                let credited = candidates.iter().rev().copied().find(|&row| {
                    let age = event.timestamp - rows[row].shown_at;
                    rows[row].clicked && (0..=window_ms).contains(&age)
                });
                if let Some(row) = credited {
                    if event.event_type == EventType::Purchase {
                        rows[row].purchased = true;
                    } else {
                        rows[row].carted = true;
                    }
                }
            }
            _ => {}
        }
    }
    rows
}

/// Probability that a shopper examines each slot, relative to the first, from the rows of
/// the randomised `arm`: click rate per slot over the first slot's, made non-increasing and
/// kept at least `floor`. `None` when the arm has no click in the first slot.
pub fn examination_propensities(rows: &[LabeledImpression], arm: &str, slots: usize, floor: f64) -> Option<Vec<f64>> {
    let mut shown = vec![0f64; slots];
    let mut clicks = vec![0f64; slots];
    for row in rows.iter().filter(|r| r.arm.as_deref() == Some(arm)) {
        let slot = row.position as usize;
        if slot < slots {
            shown[slot] += 1.0;
            clicks[slot] += f64::from(u8::from(row.clicked));
        }
    }
    let first = clicks[0] / shown[0].max(1.0);
    if first <= 0.0 {
        return None;
    }
    let mut out = Vec::with_capacity(slots);
    let mut previous: f64 = 1.0;
    for slot in 0..slots {
        let rate = if shown[slot] > 0.0 { clicks[slot] / shown[slot] / first } else { previous };
        let value = rate.min(previous).max(floor);
        out.push(value);
        previous = value;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{EventId, ItemId, UserId};

    fn event(id: &str, event_type: EventType, user: &str, item: Option<&str>, timestamp: i64) -> Event {
        Event::new(
            EventId::parse(id, "id").unwrap(),
            event_type,
            UserId::parse(user, "user").unwrap(),
            item.map(|i| ItemId::parse(i, "item").unwrap()),
            timestamp,
        )
    }

    fn impression(id: &str, user: &str, request: &str, items: &[&str], timestamp: i64) -> Event {
        let mut e = event(id, EventType::Impression, user, None, timestamp);
        e.request_id = Some(request.into());
        e.items = items.iter().map(|i| ItemId::parse(*i, "item").unwrap()).collect();
        e
    }

    fn click(id: &str, user: &str, request: &str, item: &str, timestamp: i64) -> Event {
        let mut e = event(id, EventType::Click, user, Some(item), timestamp);
        e.request_id = Some(request.into());
        e
    }

    #[test]
    fn clicks_join_by_request_and_purchases_credit_the_last_clicked_impression() {
        let events = vec![
            // Out of order on purpose.
            event("p1", EventType::Purchase, "u1", Some("b"), 5_000),
            impression("i1", "u1", "r1", &["a", "b", "c"], 1_000),
            click("c1", "u1", "r1", "b", 1_500),
            event("k1", EventType::AddToCart, "u1", Some("b"), 2_000),
            impression("i2", "u1", "r2", &["b", "d"], 3_000),
            // A purchase of an item shown but never clicked is not credited.
            event("p2", EventType::Purchase, "u1", Some("d"), 3_500),
            // Another user's click on r1's item does not count for u1.
            click("c2", "u2", "r9", "a", 1_600),
            // Too late: outside the window.
            click("c3", "u1", "r2", "d", 3_000 + 60_001),
        ];
        let rows = join_impressions(&events, 60_000);
        let summary: Vec<(&str, &str, u32, u8)> =
            rows.iter().map(|r| (r.request_id.as_str(), r.item.as_str(), r.position, r.grade())).collect();
        assert_eq!(
            summary,
            [("r1", "a", 0, 0), ("r1", "b", 1, 3), ("r1", "c", 2, 0), ("r2", "b", 0, 0), ("r2", "d", 1, 0)]
        );
        assert!(rows[1].carted && rows[1].clicked);
        assert_eq!(rows[1].gain(&EventWeights::default()), 2.0 + 4.0 + 10.0);
    }

    #[test]
    fn propensities_come_from_the_randomised_arm_and_never_increase() {
        let mut rows = Vec::new();
        let mut push = |arm: &str, position: u32, clicked: bool| {
            rows.push(LabeledImpression {
                request_id: "r".into(),
                user: "u".into(),
                item: "i".into(),
                position,
                shown_at: 0,
                arm: Some(arm.into()),
                clicked,
                carted: false,
                purchased: false,
            });
        };
        // Randomised arm: 40% clicks in slot 0, 20% in slot 1, 24% (noise) in slot 2.
        for i in 0..100 {
            push("explore", 0, i < 40);
            push("explore", 1, i < 20);
            push("explore", 2, i < 24);
            // The production arm clicks everything in slot 2; it must be ignored.
            push("blend", 2, true);
        }
        let p = examination_propensities(&rows, "explore", 4, 0.05).unwrap();
        assert_eq!(p, vec![1.0, 0.5, 0.5, 0.5]);
        assert!(examination_propensities(&rows, "nobody", 4, 0.05).is_none());
    }
}
