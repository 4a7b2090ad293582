//! Last.fm listening data, in two layouts of the same HetRec 2011 Last.fm 2K release:
//!
//! - the LightGCN split: `data1.txt` (train) and `test1.txt` (test), `user\titem\tx`
//!   without header (ids as written, 1-based), and `trustnetwork.txt`, `user\tuser`;
//! - the original release: `user_artists.dat` (`userID artistID weight`), `artists.dat`
//!   (`id name url pictureURL`), `user_friends.dat` (`userID friendID`), `tags.dat`
//!   (`tagID tagValue`, Latin-1) and `user_taggedartists.dat` (`userID artistID tagID day
//!   month year`), all tab-separated with a header row.
//!
//! Listens become `view` events whose `value` is the listen count (the third column of the
//! LightGCN files). Ids are `lfm:{user}:{artist}` for the original release and
//! `lfm:{file}:{user}:{item}` for the LightGCN split (`lfm:data1:...`, `lfm:test1:...`), so
//! a pair present in both train and test stays two events. The data is undated: each listen
//! is stamped with its line number in milliseconds since the epoch, which keeps file order
//! and is the same on every import; test rows add one day ([`TEST_OFFSET_MS`]) so every test
//! row sorts after every train row. Social edges become follows: `trust` for the LightGCN
//! network, `friend` for the original release (both list each pair in both directions).
//! Artists become items titled with the artist's name, tagged with the
//! [`MAX_ARTIST_TAGS`] tags users applied to them most often, with `url` and `picture_url`
//! attributes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::{cell, dataset_event, file_name, parse_number, unknown_file, Encoding, Format, Importer};
use crate::error::Result;
use crate::input::{parse_follow, parse_item};
use crate::model::{EventType, Record};

/// Added to the timestamps of the LightGCN test rows: one day, far more milliseconds than
/// the train file has lines.
pub const TEST_OFFSET_MS: i64 = 86_400_000;

/// Most tags kept per artist.
pub const MAX_ARTIST_TAGS: usize = 10;

/// The role of a file, in import order: tag names and counts are needed to build artists;
/// the catalog comes before listens, listens before social edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    Tags,
    TagAssignments,
    Artists,
    Listens,
    Train,
    Test,
    Friends,
    Trust,
}

fn role(name: &str) -> Option<Role> {
    match name {
        "tags.dat" => Some(Role::Tags),
        "user_taggedartists.dat" => Some(Role::TagAssignments),
        "artists.dat" => Some(Role::Artists),
        "user_artists.dat" => Some(Role::Listens),
        "data1.txt" => Some(Role::Train),
        "test1.txt" => Some(Role::Test),
        "user_friends.dat" => Some(Role::Friends),
        "trustnetwork.txt" => Some(Role::Trust),
        _ => None,
    }
}

pub(super) fn in_directory(name: &str) -> bool {
    role(name).is_some()
}

pub(super) fn run(importer: &mut Importer<'_>, files: &[PathBuf]) -> Result<()> {
    let mut planned = Vec::new();
    for path in files {
        let role = role(&file_name(path)).ok_or_else(|| {
            unknown_file(
                path,
                Format::Lastfm,
                "data1.txt, test1.txt, trustnetwork.txt, user_artists.dat, artists.dat, \
                 user_friends.dat, tags.dat or user_taggedartists.dat",
            )
        })?;
        planned.push((role, path));
    }
    planned.sort_by_key(|(role, _)| *role);
    let mut tag_names: HashMap<String, String> = HashMap::new();
    // artist id -> tag id -> times applied.
    let mut tag_counts: HashMap<String, HashMap<String, u32>> = HashMap::new();
    for (role, path) in planned {
        match role {
            Role::Tags => read_tag_names(importer, path, &mut tag_names)?,
            Role::TagAssignments => read_tag_counts(importer, path, &mut tag_counts)?,
            Role::Artists => {
                let top_tags = top_tags(&tag_names, &tag_counts);
                import_artists(importer, path, &top_tags)?;
            }
            Role::Listens => import_listens(importer, path, true, None, 0)?,
            Role::Train => import_listens(importer, path, false, Some("data1"), 0)?,
            Role::Test => import_listens(importer, path, false, Some("test1"), TEST_OFFSET_MS)?,
            Role::Friends => import_edges(importer, path, true, "friend")?,
            Role::Trust => import_edges(importer, path, false, "trust")?,
        }
    }
    Ok(())
}

/// Split a tab-separated line; `None` for blank lines.
fn cells(line: &str) -> Option<Vec<&str>> {
    (!line.trim().is_empty()).then(|| line.split('\t').collect())
}

fn read_tag_names(importer: &mut Importer<'_>, path: &Path, names: &mut HashMap<String, String>) -> Result<()> {
    importer.scan_lines(
        path,
        true,
        Encoding::Utf8OrLatin1,
        |_, line| {
            let Some(cells) = cells(line) else {
                return Ok(None);
            };
            let id = cell(&cells, 0, "tagID")?.to_string();
            let name = cell(&cells, 1, "tagValue")?.to_string();
            Ok((!name.is_empty()).then_some((id, name)))
        },
        |_, _, (id, name)| {
            names.insert(id, name);
            Ok(())
        },
    )
}

fn read_tag_counts(
    importer: &mut Importer<'_>,
    path: &Path,
    counts: &mut HashMap<String, HashMap<String, u32>>,
) -> Result<()> {
    importer.scan_lines(
        path,
        true,
        Encoding::Utf8,
        |_, line| {
            let Some(cells) = cells(line) else {
                return Ok(None);
            };
            let artist = cell(&cells, 1, "artistID")?.to_string();
            let tag = cell(&cells, 2, "tagID")?.to_string();
            Ok(Some((artist, tag)))
        },
        |_, _, (artist, tag)| {
            *counts.entry(artist).or_default().entry(tag).or_default() += 1;
            Ok(())
        },
    )
}

/// Each artist's most applied tag names, most applied first (ties by name, for stable
/// output); tag ids without a name are dropped.
fn top_tags(
    names: &HashMap<String, String>,
    counts: &HashMap<String, HashMap<String, u32>>,
) -> HashMap<String, Vec<String>> {
    counts
        .iter()
        .map(|(artist, tags)| {
            let mut named: Vec<(u32, &str)> =
                tags.iter().filter_map(|(tag, count)| names.get(tag).map(|name| (*count, name.as_str()))).collect();
            named.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
            let mut top: Vec<String> = Vec::new();
            for (_, name) in named {
                if top.len() == MAX_ARTIST_TAGS {
                    break;
                }
                if !top.iter().any(|t| t == name) {
                    top.push(name.to_string());
                }
            }
            (artist.clone(), top)
        })
        .collect()
}

fn import_artists(importer: &mut Importer<'_>, path: &Path, top_tags: &HashMap<String, Vec<String>>) -> Result<()> {
    importer.scan_lines(
        path,
        true,
        Encoding::Utf8OrLatin1,
        |_, line| {
            let Some(cells) = cells(line) else {
                return Ok(None);
            };
            let id = cell(&cells, 0, "id")?;
            let name = cell(&cells, 1, "name")?;
            let mut object = Map::new();
            object.insert("id".into(), json!(id));
            object.insert("title".into(), json!(name));
            if let Some(tags) = top_tags.get(id).filter(|tags| !tags.is_empty()) {
                object.insert("tags".into(), json!(tags));
            }
            let mut attributes = Map::new();
            for (index, attribute) in [(2, "url"), (3, "picture_url")] {
                if let Some(value) = cells.get(index).map(|v| v.trim()).filter(|v| !v.is_empty()) {
                    attributes.insert(attribute.into(), json!(value));
                }
            }
            if !attributes.is_empty() {
                object.insert("attributes".into(), Value::Object(attributes));
            }
            parse_item(&Value::Object(object)).map(Some)
        },
        |importer, _, item| importer.emit(Record::Item(item)),
    )
}

/// Listens: `user item count` lines; `split` names the LightGCN file in the event id.
fn import_listens(
    importer: &mut Importer<'_>,
    path: &Path,
    header: bool,
    split: Option<&str>,
    offset_ms: i64,
) -> Result<()> {
    importer.scan_lines(
        path,
        header,
        Encoding::Utf8,
        |line_number, line| {
            let Some(cells) = cells(line) else {
                return Ok(None);
            };
            let user = cell(&cells, 0, "user")?;
            let item = cell(&cells, 1, "item")?;
            let count = parse_number(cell(&cells, 2, "weight")?, "weight")?;
            let id = match split {
                Some(split) => format!("lfm:{split}:{user}:{item}"),
                None => format!("lfm:{user}:{item}"),
            };
            let timestamp = offset_ms + line_number as i64;
            dataset_event(id, EventType::View, user, item, Some(count), timestamp).map(Some)
        },
        |importer, _, event| importer.emit(Record::Event(event)),
    )
}

fn import_edges(importer: &mut Importer<'_>, path: &Path, header: bool, kind: &str) -> Result<()> {
    importer.scan_lines(
        path,
        header,
        Encoding::Utf8,
        |_, line| {
            let Some(cells) = cells(line) else {
                return Ok(None);
            };
            let user = cell(&cells, 0, "user")?;
            let other = cell(&cells, 1, "other")?;
            parse_follow(&json!({"user": user, "other": other, "kind": kind})).map(Some)
        },
        |importer, _, follow| importer.emit(Record::Follow(follow)),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::{fixture, import_to_vec, Format};
    use super::TEST_OFFSET_MS;
    use crate::error::Error;
    use crate::model::{Event, EventType, FollowKind, Record};

    fn events(records: &[Record]) -> Vec<&Event> {
        records.iter().filter_map(|r| if let Record::Event(e) = r { Some(e) } else { None }).collect()
    }

    #[test]
    fn the_lightgcn_split_gives_listens_and_trust() {
        let (report, records) = import_to_vec(Format::Lastfm, &[fixture("lastfm/lightgcn")], true).unwrap();
        assert_eq!((report.items, report.events, report.follows), (0, 7, 4));
        assert_eq!(report.distinct_users, 6, "users of listens and of the trust network");
        let listens = events(&records);
        assert_eq!(listens[0].id.as_str(), "lfm:data1:424:4076");
        assert_eq!(listens[0].event_type, EventType::View);
        assert_eq!(listens[0].value, Some(993.0));
        assert_eq!(listens[0].timestamp, 1);
        // The same pair in train and test stays two events, test after train.
        let test = listens.iter().find(|e| e.id.as_str() == "lfm:test1:424:4076").unwrap();
        assert_eq!(test.timestamp, TEST_OFFSET_MS + 1);
        assert!(listens.iter().all(|e| e.timestamp < TEST_OFFSET_MS || e.id.as_str().starts_with("lfm:test1:")));
        let Record::Follow(trust) = &records[7] else { panic!("follows come last") };
        assert_eq!((trust.user.as_str(), trust.other.as_str(), trust.kind), ("1", "258", FollowKind::Trust));
    }

    #[test]
    fn the_hetrec_release_gives_tagged_artists_listens_and_friends() {
        let (report, records) = import_to_vec(Format::Lastfm, &[fixture("lastfm/hetrec")], true).unwrap();
        assert_eq!((report.items, report.events, report.follows), (3, 5, 4));
        assert_eq!(report.distinct_items, 4, "artist 99 is listened to but not listed");
        let Record::Item(malice) = &records[0] else { panic!("artists come first") };
        assert_eq!(malice.title, "MALICE MIZER");
        assert_eq!(malice.tags, vec!["j-rock", "visual kei", "gothic"]);
        assert_eq!(malice.attributes.get("url"), Some(&json!("http://www.last.fm/music/MALICE+MIZER")));
        let Record::Item(accented) = &records[2] else { panic!("expected an artist") };
        assert_eq!(accented.title, "Björk");
        assert_eq!(accented.tags, vec!["électronique"], "tags.dat is Latin-1");
        let listens = events(&records);
        assert_eq!(listens[0].id.as_str(), "lfm:2:51");
        assert_eq!(listens[0].value, Some(13883.0));
        assert_eq!(listens[0].timestamp, 2, "line 1 is the header");
        let Record::Follow(friend) = &records[8] else { panic!("follows come last") };
        assert_eq!(friend.kind, FollowKind::Friend);
    }

    #[test]
    fn reimporting_gives_the_same_records() {
        let once = import_to_vec(Format::Lastfm, &[fixture("lastfm/hetrec")], true).unwrap().1;
        let twice = import_to_vec(Format::Lastfm, &[fixture("lastfm/hetrec")], true).unwrap().1;
        assert_eq!(once, twice);
    }

    #[test]
    fn self_friendship_is_a_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let friends = dir.path().join("user_friends.dat");
        fs_err::write(&friends, "userID\tfriendID\n2\t275\n3\t3\n4\n").unwrap();
        let err = import_to_vec(Format::Lastfm, std::slice::from_ref(&friends), true).unwrap_err();
        let Error::Parse { line, message, .. } = err else { panic!("expected a parse error") };
        assert_eq!(line, 3);
        assert!(message.contains("self_follow at `other`"), "{message}");
        let (report, _) = import_to_vec(Format::Lastfm, &[friends], false).unwrap();
        assert_eq!((report.follows, report.skipped), (1, 2));
    }
}
