//! RecBole atomic files: tab-separated, with a typed header row of `name:type` cells where
//! the type is `token`, `token_seq` (space-separated tokens), `float` or `float_seq`.
//!
//! - `.item` (`item_id` + any columns): the first title-like column (`title`,
//!   `movie_title`, `name`, ...) gives the title (the id when there is none), the first
//!   class-like column (`class`, `genre`, `categories`, ...) the tags and, from its first
//!   token, the one-level category; `release_year`/`year` becomes attribute `year`; every
//!   other column is an attribute (numbers for `float`, lists for `*_seq`).
//! - `.user` (`user_id` + any columns): users with every other column as an attribute.
//! - `.inter` (`user_id`, `item_id`, optional `rating` and `timestamp`): `rating` events
//!   carrying the rating when the file has a rating column, else `view` events. Seconds
//!   become milliseconds; files without time use the line number as milliseconds since the
//!   epoch, which keeps file order. Ids are `rb:{user}:{item}:{seconds}` (or
//!   `rb:{user}:{item}:L{line}` without time), stable across re-imports.
//! - `.kg` (`head_id`, `relation_id`, `tail_id`) and `.link` (`item_id`, `entity_id`): a
//!   knowledge graph, stored with the items it describes: an item whose entity heads a
//!   triple gets the tail entity under the attribute `kg.RELATION` (a list), so the item
//!   graph — items joined through shared entities — reaches everything that reads catalog
//!   facts (content vectors and their neighbours, the content map of new items). The report
//!   counts links and triples. [`read_kg`] returns the triples with entities that are
//!   linked to items resolved to their item ids.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::{
    cell, collect_files, dataset_event, file_name, parse_number, read_header, seconds_to_ms, unknown_file, Encoding,
    Format, ImportOptions, Importer,
};
use crate::error::{Error, Result, ValidationError};
use crate::ids::ItemId;
use crate::input::{parse_item, parse_user};
use crate::model::{EventType, Record};

/// One end of a knowledge-graph triple.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KgNode {
    /// An entity linked to a catalog item by the `.link` file.
    Item(ItemId),
    /// An entity of the graph that is not an item (an actor, a director, a genre, ...).
    Entity(String),
}

/// A knowledge-graph fact: `head` is related to `tail` by `relation`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KgTriple {
    pub head: KgNode,
    pub relation: String,
    pub tail: KgNode,
}

/// The role of a file, in import order: catalog and users before interactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    Item,
    User,
    Inter,
    Link,
    Kg,
}

fn role(name: &str) -> Option<Role> {
    match name.rsplit_once('.')?.1 {
        "item" => Some(Role::Item),
        "user" => Some(Role::User),
        "inter" => Some(Role::Inter),
        "link" => Some(Role::Link),
        "kg" => Some(Role::Kg),
        _ => None,
    }
}

pub(super) fn in_directory(name: &str) -> bool {
    role(name).is_some()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldType {
    Token,
    TokenSeq,
    Float,
    FloatSeq,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Column {
    name: String,
    field_type: FieldType,
}

/// The typed header row: tab-separated `name:type` cells, e.g. `user_id:token`.
fn read_columns(path: &Path) -> Result<Vec<Column>> {
    let header = read_header(path, Encoding::Utf8OrLatin1)?;
    let bad = |message: String| Error::Parse { path: path.to_path_buf(), line: 1, message };
    header
        .split('\t')
        .map(|cell| {
            let (name, field_type) = cell
                .trim()
                .rsplit_once(':')
                .ok_or_else(|| bad(format!("invalid_header: expected `name:type` columns, found {cell:?}")))?;
            let field_type = match field_type {
                "token" => FieldType::Token,
                "token_seq" => FieldType::TokenSeq,
                "float" => FieldType::Float,
                "float_seq" => FieldType::FloatSeq,
                other => {
                    return Err(bad(format!(
                        "invalid_header: column {name:?} has type {other:?}; expected token, \
                         token_seq, float or float_seq"
                    )))
                }
            };
            Ok(Column { name: name.to_string(), field_type })
        })
        .collect()
}

fn find(columns: &[Column], name: &str) -> Option<usize> {
    columns.iter().position(|c| c.name == name)
}

fn require(path: &Path, columns: &[Column], name: &str) -> Result<usize> {
    find(columns, name).ok_or_else(|| Error::Parse {
        path: path.to_path_buf(),
        line: 1,
        message: format!(
            "missing_column: expected a `{name}` column, found {}",
            columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
        ),
    })
}

/// A cell as a JSON attribute value, or `None` when empty.
fn typed_value(text: &str, column: &Column) -> Result<Option<Value>, ValidationError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let value = match column.field_type {
        FieldType::Token => json!(text),
        FieldType::TokenSeq => json!(text.split_whitespace().collect::<Vec<_>>()),
        FieldType::Float => json!(parse_number(text, &column.name)?),
        FieldType::FloatSeq => {
            json!(text.split_whitespace().map(|x| parse_number(x, &column.name)).collect::<Result<Vec<_>, _>>()?)
        }
    };
    Ok(Some(value))
}

pub(super) fn run(importer: &mut Importer<'_>, files: &[PathBuf]) -> Result<()> {
    let mut planned = Vec::new();
    for path in files {
        let role = role(&file_name(path))
            .ok_or_else(|| unknown_file(path, Format::Recbole, "a .inter, .item, .user, .kg or .link file"))?;
        planned.push((role, path));
    }
    planned.sort_by_key(|(role, _)| *role);
    // The knowledge graph first: items carry their facts as `kg.RELATION` attributes.
    let graph = item_graph(importer, &planned)?;
    for (role, path) in planned {
        match role {
            Role::Item => import_items(importer, path, &graph)?,
            Role::User => import_users(importer, path)?,
            Role::Inter => import_interactions(importer, path)?,
            Role::Link | Role::Kg => {}
        }
    }
    Ok(())
}

/// Knowledge-graph facts of linked items, by item id: for every `.kg` triple whose head
/// entity a `.link` row ties to an item (the first link of an entity wins), the tail
/// entity under the attribute `kg.RELATION` (a list, in file order, without repeats).
/// Triples whose head is no item — RecBole lists each fact in both directions
/// (`film.film.directed_by` and `film.director.film`) — add nothing the item's own side
/// does not hold. Counts links and triples in the report.
fn item_graph(importer: &mut Importer<'_>, planned: &[(Role, &PathBuf)]) -> Result<ItemGraph> {
    let mut entity_items: HashMap<String, String> = HashMap::new();
    for (_, path) in planned.iter().filter(|(role, _)| *role == Role::Link) {
        read_links(importer, path, |importer, item, entity| {
            importer.report.kg_links += 1;
            entity_items.entry(entity).or_insert_with(|| item.as_str().to_string());
            Ok(())
        })?;
    }
    let mut graph = ItemGraph::new();
    for (_, path) in planned.iter().filter(|(role, _)| *role == Role::Kg) {
        read_triples(importer, path, |importer, [head, relation, tail]| {
            importer.report.kg_triples += 1;
            if let Some(item) = entity_items.get(&head) {
                let facts = graph.entry(item.clone()).or_default().entry(format!("kg.{relation}")).or_default();
                if !facts.contains(&tail) {
                    facts.push(tail);
                }
            }
            Ok(())
        })?;
    }
    Ok(graph)
}

/// Item id → `kg.RELATION` → entities.
type ItemGraph = HashMap<String, BTreeMap<String, Vec<String>>>;

/// Columns holding an item's title, most specific first.
const TITLE_COLUMNS: &[&str] =
    &["title", "movie_title", "item_title", "book_title", "name", "item_name", "product_name"];
/// Columns holding an item's classes.
const CLASS_COLUMNS: &[&str] = &["class", "genre", "genres", "categories", "category"];
/// Columns holding a year, stored as attribute `year`.
const YEAR_COLUMNS: &[&str] = &["release_year", "year"];

fn import_items(importer: &mut Importer<'_>, path: &Path, graph: &ItemGraph) -> Result<()> {
    let columns = read_columns(path)?;
    let id_column = require(path, &columns, "item_id")?;
    let title_column = TITLE_COLUMNS
        .iter()
        .find_map(|name| find(&columns, name))
        .or_else(|| columns.iter().position(|c| c.name.contains("title") || c.name.ends_with("name")));
    let class_column = CLASS_COLUMNS.iter().find_map(|name| find(&columns, name));
    let columns = &columns;
    importer.scan_lines(
        path,
        true,
        Encoding::Utf8OrLatin1,
        |_, line| {
            if line.trim().is_empty() {
                return Ok(None);
            }
            let cells: Vec<&str> = line.split('\t').collect();
            let id = cell(&cells, id_column, "item_id")?;
            let mut object = Map::new();
            let mut attributes = Map::new();
            object.insert("id".into(), json!(id));
            let title = match title_column {
                Some(index) => cells.get(index).map_or("", |t| t.trim()),
                None => "",
            };
            // Items without a title keep their id as one: a title is required.
            object.insert("title".into(), json!(if title.is_empty() { id } else { title }));
            for (index, column) in columns.iter().enumerate() {
                if index == id_column || Some(index) == title_column {
                    continue;
                }
                let Some(text) = cells.get(index) else {
                    continue;
                };
                if Some(index) == class_column {
                    let classes: Vec<&str> = text.split_whitespace().collect();
                    if let Some(first) = classes.first() {
                        object.insert("category".into(), json!([first]));
                        object.insert("tags".into(), json!(classes));
                    }
                } else if YEAR_COLUMNS.contains(&column.name.as_str()) {
                    if let Some(year) = typed_value(text, column)? {
                        let year = match &year {
                            Value::String(s) => s.parse::<i64>().map_or(year, Value::from),
                            Value::Number(n) if n.as_f64().is_some_and(|y| y.fract() == 0.0) => {
                                json!(n.as_f64().unwrap_or_default() as i64)
                            }
                            _ => year,
                        };
                        attributes.insert("year".into(), year);
                    }
                } else if let Some(value) = typed_value(text, column)? {
                    attributes.insert(column.name.clone(), value);
                }
            }
            for (relation, entities) in graph.get(id).into_iter().flatten() {
                attributes.insert(relation.clone(), json!(entities));
            }
            if !attributes.is_empty() {
                object.insert("attributes".into(), Value::Object(attributes));
            }
            parse_item(&Value::Object(object)).map(Some)
        },
        |importer, _, item| importer.emit(Record::Item(item)),
    )
}

fn import_users(importer: &mut Importer<'_>, path: &Path) -> Result<()> {
    let columns = read_columns(path)?;
    let id_column = require(path, &columns, "user_id")?;
    let columns = &columns;
    importer.scan_lines(
        path,
        true,
        Encoding::Utf8OrLatin1,
        |_, line| {
            if line.trim().is_empty() {
                return Ok(None);
            }
            let cells: Vec<&str> = line.split('\t').collect();
            let id = cell(&cells, id_column, "user_id")?;
            let mut attributes = Map::new();
            for (index, column) in columns.iter().enumerate() {
                if index == id_column {
                    continue;
                }
                if let Some(value) = cells.get(index).map(|t| typed_value(t, column)).transpose()?.flatten() {
                    attributes.insert(column.name.clone(), value);
                }
            }
            parse_user(&json!({"id": id, "attributes": attributes})).map(Some)
        },
        |importer, _, user| importer.emit(Record::User(user)),
    )
}

fn import_interactions(importer: &mut Importer<'_>, path: &Path) -> Result<()> {
    let columns = read_columns(path)?;
    let user_column = require(path, &columns, "user_id")?;
    let item_column = require(path, &columns, "item_id")?;
    let rating_column = find(&columns, "rating");
    let time_column = find(&columns, "timestamp");
    let used = [Some(user_column), Some(item_column), rating_column, time_column];
    let ignored: Vec<&str> = columns
        .iter()
        .enumerate()
        .filter(|(index, _)| !used.contains(&Some(*index)))
        .map(|(_, c)| c.name.as_str())
        .collect();
    if !ignored.is_empty() {
        importer.warn(format!("{}: ignored columns {}", path.display(), ignored.join(", ")));
    }
    let event_type = if rating_column.is_some() { EventType::Rating } else { EventType::View };
    importer.scan_lines(
        path,
        true,
        Encoding::Utf8,
        |line_number, line| {
            if line.trim().is_empty() {
                return Ok(None);
            }
            let cells: Vec<&str> = line.split('\t').collect();
            let user = cell(&cells, user_column, "user_id")?;
            let item = cell(&cells, item_column, "item_id")?;
            let value =
                rating_column.map(|index| parse_number(cell(&cells, index, "rating")?, "rating")).transpose()?;
            let (id, timestamp) = match time_column {
                Some(index) => {
                    let seconds = cell(&cells, index, "timestamp")?;
                    (format!("rb:{user}:{item}:{seconds}"), seconds_to_ms(seconds, "timestamp")?)
                }
                None => (format!("rb:{user}:{item}:L{line_number}"), line_number as i64),
            };
            dataset_event(id, event_type, user, item, value, timestamp).map(Some)
        },
        |importer, _, event| importer.emit(Record::Event(event)),
    )
}

/// `.link` rows as (item id, entity id).
fn read_links(
    importer: &mut Importer<'_>,
    path: &Path,
    consume: impl FnMut(&mut Importer<'_>, ItemId, String) -> Result<()>,
) -> Result<()> {
    let columns = read_columns(path)?;
    let item_column = require(path, &columns, "item_id")?;
    let entity_column = require(path, &columns, "entity_id")?;
    let mut consume = consume;
    importer.scan_lines(
        path,
        true,
        Encoding::Utf8,
        |_, line| {
            if line.trim().is_empty() {
                return Ok(None);
            }
            let cells: Vec<&str> = line.split('\t').collect();
            let item = ItemId::parse(cell(&cells, item_column, "item_id")?, "item_id")?;
            let entity = non_empty(cell(&cells, entity_column, "entity_id")?, "entity_id")?;
            Ok(Some((item, entity)))
        },
        |importer, _, (item, entity)| consume(importer, item, entity),
    )
}

/// `.kg` rows as (head, relation, tail) entity ids.
fn read_triples(
    importer: &mut Importer<'_>,
    path: &Path,
    consume: impl FnMut(&mut Importer<'_>, [String; 3]) -> Result<()>,
) -> Result<()> {
    let columns = read_columns(path)?;
    let head_column = require(path, &columns, "head_id")?;
    let relation_column = require(path, &columns, "relation_id")?;
    let tail_column = require(path, &columns, "tail_id")?;
    let mut consume = consume;
    importer.scan_lines(
        path,
        true,
        Encoding::Utf8,
        |_, line| {
            if line.trim().is_empty() {
                return Ok(None);
            }
            let cells: Vec<&str> = line.split('\t').collect();
            Ok(Some([
                non_empty(cell(&cells, head_column, "head_id")?, "head_id")?,
                non_empty(cell(&cells, relation_column, "relation_id")?, "relation_id")?,
                non_empty(cell(&cells, tail_column, "tail_id")?, "tail_id")?,
            ]))
        },
        |importer, _, triple| consume(importer, triple),
    )
}

fn non_empty(text: &str, field: &str) -> Result<String, ValidationError> {
    if text.is_empty() {
        return Err(ValidationError::new("empty_id", field, "expected a non-empty id, found \"\""));
    }
    Ok(text.to_string())
}

/// Read the knowledge graph of RecBole `.kg` and `.link` files (paths may be directories)
/// and resolve every entity linked to an item to that item. When one entity is linked to
/// several items, the first link in file order wins. Bad lines fail with [`Error::Parse`].
pub fn read_kg(paths: &[PathBuf]) -> Result<Vec<KgTriple>> {
    let (files, _) = collect_files(paths, |name| matches!(role(name), Some(Role::Kg | Role::Link)))?;
    let options = ImportOptions::default();
    let mut sink: Vec<Record> = Vec::new();
    let mut progress = |_: u64, _: u64| {};
    let mut importer = Importer::new(&options, &mut sink, &mut progress, &files)?;
    let mut entity_items: HashMap<String, ItemId> = HashMap::new();
    for path in files.iter().filter(|p| role(&file_name(p)) == Some(Role::Link)) {
        read_links(&mut importer, path, |_, item, entity| {
            entity_items.entry(entity).or_insert(item);
            Ok(())
        })?;
    }
    let node = |entity: String| match entity_items.get(&entity) {
        Some(item) => KgNode::Item(item.clone()),
        None => KgNode::Entity(entity),
    };
    let mut triples = Vec::new();
    for path in &files {
        match role(&file_name(path)) {
            Some(Role::Kg) => {}
            Some(Role::Link) => continue,
            _ => return Err(unknown_file(path, Format::Recbole, "a .kg or .link file")),
        }
        read_triples(&mut importer, path, |_, [head, relation, tail]| {
            triples.push(KgTriple { head: node(head), relation, tail: node(tail) });
            Ok(())
        })?;
    }
    Ok(triples)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::{fixture, import_to_vec, Format};
    use super::{read_kg, KgNode};
    use crate::error::Error;
    use crate::ids::ItemId;
    use crate::model::{EventType, Record};

    #[test]
    fn atomic_files_give_items_users_and_ratings() {
        let (report, records) = import_to_vec(Format::Recbole, &[fixture("recbole/ml-mini")], true).unwrap();
        assert_eq!((report.items, report.users, report.events), (4, 3, 8));
        assert_eq!((report.distinct_items, report.distinct_users), (4, 3));
        assert_eq!((report.kg_triples, report.kg_links), (5, 3));
        let Record::Item(toy_story) = &records[0] else { panic!("items come first") };
        assert_eq!(toy_story.title, "Toy Story");
        assert_eq!(toy_story.category, vec!["Animation"]);
        assert_eq!(toy_story.tags, vec!["Animation", "Children's", "Comedy"]);
        assert_eq!(toy_story.attributes.get("year"), Some(&json!(1995)));
        // The knowledge graph: facts whose head is the item's entity, under kg.RELATION.
        assert_eq!(toy_story.attributes.get("kg.film.film.genre"), Some(&json!(["m.0hcr"])));
        let Record::Item(golden_eye) = &records[1] else { panic!("items come first") };
        assert_eq!(golden_eye.attributes.get("kg.film.film.directed_by"), Some(&json!(["m.03_gd"])));
        assert!(
            !golden_eye.attributes.contains_key("kg.film.actor.film"),
            "a triple headed by an entity that is no item adds nothing"
        );
        let Record::Item(four_rooms) = &records[2] else { panic!("items come first") };
        assert!(four_rooms.attributes.keys().all(|k| !k.starts_with("kg.")), "an item without a link has no facts");
        let Record::User(user) = &records[4] else { panic!("users follow items") };
        assert_eq!(user.attributes.get("age"), Some(&json!("24")));
        assert_eq!(user.attributes.get("zip_code"), Some(&json!("85711")));
        let Record::Event(rating) = &records[7] else { panic!("events come last") };
        assert_eq!(rating.id.as_str(), "rb:196:242:881250949");
        assert_eq!(rating.event_type, EventType::Rating);
        assert_eq!(rating.value, Some(3.0));
        assert_eq!(rating.timestamp, 881_250_949_000);
    }

    #[test]
    fn items_without_titles_are_named_by_id_and_typed_columns_kept() {
        let (report, records) = import_to_vec(Format::Recbole, &[fixture("recbole/shop/shop.item")], true).unwrap();
        assert_eq!(report.items, 2);
        let Record::Item(item) = &records[0] else { panic!("expected an item") };
        assert_eq!(item.title, "a1");
        assert_eq!(item.price, None, "price is an attribute");
        assert_eq!(item.attributes.get("price"), Some(&json!(9.5)));
        assert_eq!(item.attributes.get("embedding"), Some(&json!([0.5, -1.0])));
        assert_eq!(item.attributes.get("brand"), Some(&json!("acme")));
    }

    #[test]
    fn interactions_without_rating_or_time_are_views_in_file_order() {
        let (report, records) = import_to_vec(Format::Recbole, &[fixture("recbole/shop/shop.inter")], true).unwrap();
        assert_eq!(report.events, 3);
        assert!(report.warnings[0].contains("ignored columns session_id"), "{:?}", report.warnings);
        let Record::Event(first) = &records[0] else { panic!("expected an event") };
        assert_eq!(first.event_type, EventType::View);
        assert_eq!(first.id.as_str(), "rb:u1:a1:L2");
        assert_eq!(first.timestamp, 2);
    }

    #[test]
    fn bad_rows_are_parse_errors_with_line_numbers() {
        let err = import_to_vec(Format::Recbole, &[fixture("recbole/bad/bad.inter")], true).unwrap_err();
        let Error::Parse { line, message, .. } = err else { panic!("expected a parse error") };
        assert_eq!(line, 3);
        assert!(message.contains("invalid_number at `rating`"), "{message}");
        let (report, _) = import_to_vec(Format::Recbole, &[fixture("recbole/bad/bad.inter")], false).unwrap();
        assert_eq!((report.events, report.skipped), (2, 3));
        let err = import_to_vec(Format::Recbole, &[fixture("recbole/bad/bad.item")], true).unwrap_err();
        assert!(matches!(&err, Error::Parse { line: 1, message, .. } if message.contains("vector")), "{err}");
    }

    #[test]
    fn knowledge_graph_entities_resolve_to_items() {
        let triples = read_kg(&[fixture("recbole/ml-mini")]).unwrap();
        assert_eq!(triples.len(), 5);
        assert_eq!(triples[0].head, KgNode::Item(ItemId::parse("1", "item").unwrap()));
        assert_eq!(triples[0].relation, "film.film.genre");
        assert_eq!(triples[0].tail, KgNode::Entity("m.0hcr".to_string()));
        let items = triples.iter().flat_map(|t| [&t.head, &t.tail]).filter(|n| matches!(n, KgNode::Item(_))).count();
        assert_eq!(items, 4);
    }
}
