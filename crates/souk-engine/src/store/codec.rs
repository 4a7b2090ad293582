//! Binary encoding of log records (format version [`LOG_FORMAT_VERSION`]).
//!
//! A record is `kind: u8` followed by its body. Strings are a LEB128 length and UTF-8 bytes;
//! integers are LEB128 (zig-zag for signed); floats are little-endian IEEE 754. An event
//! body starts with a 16-bit presence mask for its optional fields, so absent fields cost
//! nothing. Cost: one pass over the bytes, one allocation per string.

use crate::error::ValidationError;
use crate::ids::{EventId, ItemId, UserId};
use crate::model::{Event, EventType};

/// Version written in every segment header; bump on any change to this file's layout.
pub const LOG_FORMAT_VERSION: u32 = 2;
/// The oldest layout still read: version 1 lacks only [`Event::propensities`] (its records
/// never set that bit), so its segments are read as they are; the writer starts a new
/// segment before it appends to one (see `EventLog::append`).
pub const OLDEST_LOG_FORMAT_VERSION: u32 = 1;

/// Whether segments of layout `version` can be read.
pub fn readable_version(version: u32) -> bool {
    (OLDEST_LOG_FORMAT_VERSION..=LOG_FORMAT_VERSION).contains(&version)
}

const KIND_EVENT: u8 = 1;
const KIND_ERASE_USER: u8 = 2;
const KIND_KNOWN_IDS: u8 = 3;

/// One entry of the event log.
// Records are decoded one at a time and consumed at once; boxing the event would only add
// an allocation per record on replay.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum LogRecord {
    Event(Event),
    /// Every earlier event of this user is erased (privacy erasure).
    EraseUser {
        user: UserId,
        timestamp: i64,
    },
    /// Digests of event ids whose events were erased and compacted away: they stay known
    /// so that a late re-delivery is not stored again. Digests, not ids: nothing of the
    /// erased data can be read back from them.
    KnownIds(Vec<u128>),
}

const HAS_ITEM: u16 = 1 << 0;
const HAS_ITEMS: u16 = 1 << 1;
const HAS_VALUE: u16 = 1 << 2;
const HAS_DWELL: u16 = 1 << 3;
const HAS_QUERY: u16 = 1 << 4;
const HAS_TEXT: u16 = 1 << 5;
const HAS_REQUEST: u16 = 1 << 6;
const HAS_POSITION: u16 = 1 << 7;
const HAS_PROPENSITY: u16 = 1 << 8;
const HAS_ARM: u16 = 1 << 9;
const HAS_QUANTITY: u16 = 1 << 10;
const HAS_PRICE: u16 = 1 << 11;
/// Since version 2.
const HAS_PROPENSITIES: u16 = 1 << 12;

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

/// Whether `byte` is the kind byte of some record (a cheap first test when searching
/// damaged bytes for the next frame).
pub fn is_record_kind(byte: u8) -> bool {
    matches!(byte, KIND_EVENT | KIND_ERASE_USER | KIND_KNOWN_IDS)
}

/// Append the encoding of `record` to `out`.
pub fn encode(record: &LogRecord, out: &mut Vec<u8>) {
    match record {
        LogRecord::Event(event) => encode_event(event, out),
        LogRecord::EraseUser { user, timestamp } => {
            out.push(KIND_ERASE_USER);
            put_str(out, user.as_str());
            put_varint(out, zigzag(*timestamp));
        }
        LogRecord::KnownIds(digests) => {
            out.push(KIND_KNOWN_IDS);
            put_varint(out, digests.len() as u64);
            for d in digests {
                out.extend_from_slice(&d.to_le_bytes());
            }
        }
    }
}

/// Append the encoding of an event record to `out`.
pub fn encode_event(e: &Event, out: &mut Vec<u8>) {
    out.push(KIND_EVENT);
    out.push(e.event_type as u8);
    let mut mask = 0u16;
    for (present, bit) in [
        (e.item.is_some(), HAS_ITEM),
        (!e.items.is_empty(), HAS_ITEMS),
        (e.value.is_some(), HAS_VALUE),
        (e.dwell_ms.is_some(), HAS_DWELL),
        (e.query.is_some(), HAS_QUERY),
        (e.text.is_some(), HAS_TEXT),
        (e.request_id.is_some(), HAS_REQUEST),
        (e.position.is_some(), HAS_POSITION),
        (e.propensity.is_some(), HAS_PROPENSITY),
        (e.arm.is_some(), HAS_ARM),
        (e.quantity.is_some(), HAS_QUANTITY),
        (e.price.is_some(), HAS_PRICE),
        (!e.propensities.is_empty(), HAS_PROPENSITIES),
    ] {
        if present {
            mask |= bit;
        }
    }
    out.extend_from_slice(&mask.to_le_bytes());
    put_varint(out, zigzag(e.timestamp));
    put_str(out, e.id.as_str());
    put_str(out, e.user.as_str());
    if let Some(item) = &e.item {
        put_str(out, item.as_str());
    }
    if !e.items.is_empty() {
        put_varint(out, e.items.len() as u64);
        for item in &e.items {
            put_str(out, item.as_str());
        }
    }
    if let Some(v) = e.value {
        out.extend_from_slice(&v.to_le_bytes());
    }
    if let Some(v) = e.dwell_ms {
        put_varint(out, v);
    }
    for s in [&e.query, &e.text, &e.request_id].into_iter().flatten() {
        put_str(out, s);
    }
    if let Some(v) = e.position {
        put_varint(out, u64::from(v));
    }
    if let Some(v) = e.propensity {
        out.extend_from_slice(&v.to_le_bytes());
    }
    if let Some(s) = &e.arm {
        put_str(out, s);
    }
    if let Some(v) = e.quantity {
        put_varint(out, u64::from(v));
    }
    if let Some(v) = e.price {
        out.extend_from_slice(&v.to_le_bytes());
    }
    if !e.propensities.is_empty() {
        put_varint(out, e.propensities.len() as u64);
        for p in &e.propensities {
            out.extend_from_slice(&p.to_le_bytes());
        }
    }
}

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("undecodable log record: {0}")]
pub struct DecodeError(pub String);

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < n {
            return Err(DecodeError(format!("expected {n} more bytes, found {}", self.bytes.len())));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError("varint longer than 10 bytes".into()))
    }

    fn f64(&mut self) -> Result<f64, DecodeError> {
        let bytes: [u8; 8] = self.take(8)?.try_into().map_err(|_| DecodeError("short f64".into()))?;
        Ok(f64::from_le_bytes(bytes))
    }

    fn str(&mut self) -> Result<&'a str, DecodeError> {
        let len = usize::try_from(self.varint()?).map_err(|_| DecodeError("length overflow".into()))?;
        std::str::from_utf8(self.take(len)?).map_err(|e| DecodeError(format!("invalid utf-8: {e}")))
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        self.str().map(str::to_string)
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        u32::try_from(self.varint()?).map_err(|_| DecodeError("u32 overflow".into()))
    }
}

fn id_error(e: ValidationError) -> DecodeError {
    DecodeError(format!("stored id is invalid: {e}"))
}

/// Decode one record (the whole of `bytes`).
pub fn decode(bytes: &[u8]) -> Result<LogRecord, DecodeError> {
    let mut r = Reader { bytes };
    let record = match r.u8()? {
        KIND_EVENT => LogRecord::Event(decode_event_body(&mut r)?),
        KIND_ERASE_USER => {
            let user = UserId::parse(r.string()?, "user").map_err(id_error)?;
            let timestamp = unzigzag(r.varint()?);
            LogRecord::EraseUser { user, timestamp }
        }
        KIND_KNOWN_IDS => {
            let n = usize::try_from(r.varint()?).map_err(|_| DecodeError("length overflow".into()))?;
            if n > r.bytes.len() / 16 {
                return Err(DecodeError(format!("{n} digests do not fit in {} bytes", r.bytes.len())));
            }
            let mut digests = Vec::with_capacity(n);
            for _ in 0..n {
                let bytes: [u8; 16] = r.take(16)?.try_into().map_err(|_| DecodeError("short digest".into()))?;
                digests.push(u128::from_le_bytes(bytes));
            }
            LogRecord::KnownIds(digests)
        }
        other => return Err(DecodeError(format!("unknown record kind {other}"))),
    };
    if !r.bytes.is_empty() {
        return Err(DecodeError(format!("{} trailing bytes", r.bytes.len())));
    }
    Ok(record)
}

fn decode_event_body(r: &mut Reader<'_>) -> Result<Event, DecodeError> {
    let type_byte = r.u8()?;
    let event_type =
        EventType::from_u8(type_byte).ok_or_else(|| DecodeError(format!("unknown event type {type_byte}")))?;
    let mask = u16::from_le_bytes([r.u8()?, r.u8()?]);
    let timestamp = unzigzag(r.varint()?);
    let id = EventId::parse(r.string()?, "id").map_err(id_error)?;
    let user = UserId::parse(r.string()?, "user").map_err(id_error)?;
    let item = if mask & HAS_ITEM != 0 { Some(ItemId::parse(r.string()?, "item").map_err(id_error)?) } else { None };
    let mut event = Event::new(id, event_type, user, item, timestamp);
    if mask & HAS_ITEMS != 0 {
        let n = r.varint()?;
        for _ in 0..n {
            event.items.push(ItemId::parse(r.string()?, "items").map_err(id_error)?);
        }
    }
    if mask & HAS_VALUE != 0 {
        event.value = Some(r.f64()?);
    }
    if mask & HAS_DWELL != 0 {
        event.dwell_ms = Some(r.varint()?);
    }
    if mask & HAS_QUERY != 0 {
        event.query = Some(r.string()?);
    }
    if mask & HAS_TEXT != 0 {
        event.text = Some(r.string()?);
    }
    if mask & HAS_REQUEST != 0 {
        event.request_id = Some(r.string()?);
    }
    if mask & HAS_POSITION != 0 {
        event.position = Some(r.u32()?);
    }
    if mask & HAS_PROPENSITY != 0 {
        event.propensity = Some(r.f64()?);
    }
    if mask & HAS_ARM != 0 {
        event.arm = Some(r.string()?);
    }
    if mask & HAS_QUANTITY != 0 {
        event.quantity = Some(r.u32()?);
    }
    if mask & HAS_PRICE != 0 {
        event.price = Some(r.f64()?);
    }
    if mask & HAS_PROPENSITIES != 0 {
        let n = r.varint()?;
        if n > event.items.len() as u64 {
            return Err(DecodeError(format!("{n} propensities for {} items", event.items.len())));
        }
        for _ in 0..n {
            event.propensities.push(r.f64()?);
        }
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn id_strategy() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9_\\-蓝牙]{1,12}"
    }

    fn event_strategy() -> impl Strategy<Value = Event> {
        (
            (
                0u8..11,
                id_strategy(),
                id_strategy(),
                proptest::option::of(id_strategy()),
                prop::collection::vec(id_strategy(), 0..4),
            ),
            (
                proptest::option::of(-1e9f64..1e9),
                proptest::option::of(any::<u64>()),
                proptest::option::of(".{0,20}"),
                proptest::option::of(".{0,20}"),
            ),
            (
                proptest::option::of(any::<u32>()),
                proptest::option::of(0.001f64..1.0),
                proptest::option::of(1u32..100),
                proptest::option::of(0f64..1e6),
                any::<i64>(),
            ),
        )
            .prop_map(
                |(
                    (t, id, user, item, items),
                    (value, dwell, query, text),
                    (position, propensity, quantity, price, ts),
                )| {
                    let mut e = Event::new(
                        EventId::parse(id, "id").unwrap(),
                        EventType::from_u8(t).unwrap(),
                        UserId::parse(user, "user").unwrap(),
                        item.map(|i| ItemId::parse(i, "item").unwrap()),
                        ts,
                    );
                    e.items = items.into_iter().map(|i| ItemId::parse(i, "items").unwrap()).collect();
                    e.value = value;
                    e.dwell_ms = dwell;
                    e.query = query;
                    e.text = text.clone();
                    e.request_id = text.map(|t| format!("r{t}"));
                    e.position = position;
                    e.propensity = propensity;
                    e.arm = quantity.map(|q| format!("arm{q}"));
                    e.quantity = quantity;
                    e.price = price;
                    // Propensities for a prefix of the items (any count up to all of them).
                    let shown = dwell.map_or(0, |d| (d % 5) as usize).min(e.items.len());
                    e.propensities = (0..shown).map(|i| 1.0 / (i as f64 + 1.5)).collect();
                    e
                },
            )
    }

    proptest! {
        #[test]
        fn events_round_trip(event in event_strategy()) {
            let record = LogRecord::Event(event);
            let mut bytes = Vec::new();
            encode(&record, &mut bytes);
            prop_assert_eq!(decode(&bytes).unwrap(), record);
        }

        #[test]
        fn truncated_records_never_decode(event in event_strategy(), cut in 0usize..1000) {
            let mut bytes = Vec::new();
            encode(&LogRecord::Event(event), &mut bytes);
            let cut = cut % bytes.len();
            prop_assert!(decode(&bytes[..cut]).is_err());
        }

        #[test]
        fn varints_round_trip(value in any::<i64>()) {
            let mut bytes = Vec::new();
            put_varint(&mut bytes, zigzag(value));
            let mut r = Reader { bytes: &bytes };
            prop_assert_eq!(unzigzag(r.varint().unwrap()), value);
        }
    }

    #[test]
    fn a_version_1_record_decodes_without_propensities() {
        // Bytes as version 1 wrote them: the mask never sets bit 12.
        let mut e = Event::new(
            EventId::parse("e1", "id").unwrap(),
            EventType::Impression,
            UserId::parse("u1", "user").unwrap(),
            None,
            7,
        );
        e.items = vec![ItemId::parse("a", "items").unwrap(), ItemId::parse("b", "items").unwrap()];
        let mut v1 = Vec::new();
        encode(&LogRecord::Event(e.clone()), &mut v1);
        assert_eq!(decode(&v1).unwrap(), LogRecord::Event(e.clone()));
        e.propensities = vec![0.9, 0.05];
        let mut v2 = Vec::new();
        encode(&LogRecord::Event(e.clone()), &mut v2);
        assert_eq!(v2.len(), v1.len() + 1 + 16);
        assert_eq!(decode(&v2).unwrap(), LogRecord::Event(e));
        assert!(readable_version(1) && readable_version(2) && !readable_version(3) && !readable_version(0));
    }

    #[test]
    fn known_id_records_round_trip() {
        let record = LogRecord::KnownIds(vec![0, 1, u128::MAX, 42 << 70]);
        let mut bytes = Vec::new();
        encode(&record, &mut bytes);
        assert_eq!(decode(&bytes).unwrap(), record);
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn erase_records_round_trip() {
        let record = LogRecord::EraseUser { user: UserId::parse("u1", "u").unwrap(), timestamp: 42 };
        let mut bytes = Vec::new();
        encode(&record, &mut bytes);
        assert_eq!(decode(&bytes).unwrap(), record);
    }
}
