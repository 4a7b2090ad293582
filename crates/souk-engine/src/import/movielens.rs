//! MovieLens, from GroupLens: the classic 100K release (`u.data`, `u.item`, `u.user`,
//! `u.genre`) and the newer layout of the later releases (`ratings.csv`, `movies.csv`).
//!
//! - Ratings become `rating` events with the rating as `value`, the time converted from
//!   seconds to milliseconds, and the id `ml:{user}:{movie}:{seconds}` (stable across
//!   re-imports).
//! - Movies become items: the title without its trailing `(year)`, the year as attribute
//!   `year`, the genres as tags and the first genre as the one-level category (the same
//!   catalog as the RecBole copy of ML-100K gives).
//! - 100K users become users with attributes `age`, `gender`, `occupation` and `zip`.
//!
//! `u.item` of the 100K release is Latin-1; text is read as UTF-8 where valid, else
//! Latin-1. Other files of a release directory (`u1.base`, `links.csv`, ...) are ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::{
    cell, dataset_event, decode, file_name, parse_number, seconds_to_ms, unknown_file, Encoding, Format, Importer,
};
use crate::error::{Error, Result, ValidationError};
use crate::input::{parse_item, parse_user};
use crate::model::{EventType, Item, Record};

/// The genres of ML-100K in flag order, used when `u.genre` is not given.
const STANDARD_GENRES: [&str; 19] = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
];

/// Columns of `u.item` before the genre flags.
const ITEM_FIXED_COLUMNS: usize = 5;

/// The role of a file, in the order roles are imported: catalog and users before events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    Genres,
    Items,
    Movies,
    Users,
    Data,
    Ratings,
}

fn role(name: &str) -> Option<Role> {
    match name {
        "u.genre" => Some(Role::Genres),
        "u.item" => Some(Role::Items),
        "movies.csv" => Some(Role::Movies),
        "u.user" => Some(Role::Users),
        "u.data" => Some(Role::Data),
        "ratings.csv" => Some(Role::Ratings),
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
            unknown_file(path, Format::Movielens, "u.data, u.item, u.user, u.genre, ratings.csv or movies.csv")
        })?;
        planned.push((role, path));
    }
    planned.sort_by_key(|(role, _)| *role);
    let mut genres: Vec<String> = STANDARD_GENRES.iter().map(|g| g.to_string()).collect();
    for (role, path) in planned {
        match role {
            Role::Genres => genres = read_genres(importer, path)?,
            Role::Items => import_items(importer, path, &genres)?,
            Role::Movies => import_movies(importer, path)?,
            Role::Users => import_users(importer, path)?,
            Role::Data => import_ratings(importer, path, false)?,
            Role::Ratings => import_ratings(importer, path, true)?,
        }
    }
    Ok(())
}

/// `u.genre`: `name|index` per line, indexes in flag order.
fn read_genres(importer: &mut Importer<'_>, path: &Path) -> Result<Vec<String>> {
    let mut by_index: BTreeMap<usize, String> = BTreeMap::new();
    importer.scan_lines(
        path,
        false,
        Encoding::Utf8OrLatin1,
        |_, line| {
            if line.trim().is_empty() {
                return Ok(None);
            }
            let cells: Vec<&str> = line.split('|').collect();
            let name = cell(&cells, 0, "genre")?.to_string();
            let index = cell(&cells, 1, "index")?;
            let index = index.parse::<usize>().map_err(|_| {
                ValidationError::new("invalid_number", "index", format!("expected a genre index, found {index:?}"))
            })?;
            Ok(Some((index, name)))
        },
        |_, _, (index, name)| {
            by_index.insert(index, name);
            Ok(())
        },
    )?;
    // Indexes must be 0..n so that flag i is genre i.
    if by_index.keys().copied().ne(0..by_index.len()) {
        return Err(Error::Parse {
            path: path.to_path_buf(),
            line: 0,
            message: "expected genre indexes 0, 1, 2, ... without gaps".to_string(),
        });
    }
    Ok(by_index.into_values().collect())
}

/// Split "Toy Story (1995)" into "Toy Story" and 1995; titles without a year stay whole.
fn split_title_year(title: &str) -> (&str, Option<i64>) {
    let title = title.trim();
    if let Some(open) = title.rfind(" (") {
        let inner = &title[open + 2..];
        if let Some(year) = inner.strip_suffix(')') {
            if year.len() == 4 && year.bytes().all(|b| b.is_ascii_digit()) {
                return (title[..open].trim_end(), year.parse().ok());
            }
        }
    }
    (title, None)
}

/// An item from a movie's id, title with year and genres, through the HTTP validation.
fn movie_item(
    id: &str,
    title: &str,
    release_date: &str,
    genres: &[&str],
    imdb_url: &str,
) -> Result<Item, ValidationError> {
    let (title, title_year) = split_title_year(title);
    // "01-Jan-1995": the year is the last four characters.
    let release_year =
        release_date.trim().rsplit('-').next().filter(|y| y.len() == 4).and_then(|y| y.parse::<i64>().ok());
    let mut object = Map::new();
    object.insert("id".into(), json!(id));
    object.insert("title".into(), json!(title));
    if let Some(first) = genres.first() {
        object.insert("category".into(), json!([first]));
        object.insert("tags".into(), json!(genres));
    }
    let mut attributes = Map::new();
    if let Some(year) = title_year.or(release_year) {
        attributes.insert("year".into(), json!(year));
    }
    if !imdb_url.trim().is_empty() {
        attributes.insert("imdb_url".into(), json!(imdb_url.trim()));
    }
    if !attributes.is_empty() {
        object.insert("attributes".into(), Value::Object(attributes));
    }
    parse_item(&Value::Object(object))
}

/// `u.item`: `id|title|release date|video release date|IMDb URL|genre flags...`.
fn import_items(importer: &mut Importer<'_>, path: &Path, genres: &[String]) -> Result<()> {
    importer.scan_lines(
        path,
        false,
        Encoding::Utf8OrLatin1,
        |_, line| {
            if line.trim().is_empty() {
                return Ok(None);
            }
            let cells: Vec<&str> = line.split('|').collect();
            let id = cell(&cells, 0, "movie id")?;
            let title = cell(&cells, 1, "title")?;
            let release_date = cell(&cells, 2, "release date")?;
            let imdb_url = cell(&cells, 4, "IMDb URL")?;
            let flags = &cells[ITEM_FIXED_COLUMNS.min(cells.len())..];
            if flags.len() != genres.len() {
                return Err(ValidationError::new(
                    "missing_column",
                    "genres",
                    format!("expected {} genre flags, found {}", genres.len(), flags.len()),
                ));
            }
            let mut movie_genres = Vec::new();
            for (flag, genre) in flags.iter().zip(genres) {
                match flag.trim() {
                    "1" => movie_genres.push(genre.as_str()),
                    "0" => {}
                    other => {
                        return Err(ValidationError::new(
                            "invalid_number",
                            genre.as_str(),
                            format!("expected a genre flag 0 or 1, found {other:?}"),
                        ))
                    }
                }
            }
            movie_item(id, title, release_date, &movie_genres, imdb_url).map(Some)
        },
        |importer, _, item| importer.emit(Record::Item(item)),
    )
}

/// `movies.csv`: `movieId,title,genres` with a header, titles quoted when they hold commas,
/// genres separated by `|` (`(no genres listed)` for none).
fn import_movies(importer: &mut Importer<'_>, path: &Path) -> Result<()> {
    importer.start_file(path);
    let file = fs_err::File::open(path)?;
    let size = file.metadata()?.len();
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(file);
    let mut row = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut row) {
            Ok(false) => break,
            Ok(true) => {
                let line = row.position().map_or(0, csv::Position::line);
                let fields: Result<Vec<String>, ValidationError> = row
                    .iter()
                    .map(|field| decode(field, Encoding::Utf8OrLatin1).map(|text| text.into_owned()))
                    .collect();
                let item = fields.and_then(|fields| {
                    let cells: Vec<&str> = fields.iter().map(String::as_str).collect();
                    let id = cell(&cells, 0, "movieId")?;
                    let title = cell(&cells, 1, "title")?;
                    let genres: Vec<&str> = cell(&cells, 2, "genres")?
                        .split('|')
                        .map(str::trim)
                        .filter(|g| !g.is_empty() && *g != "(no genres listed)")
                        .collect();
                    movie_item(id, title, "", &genres, "")
                });
                match item {
                    Ok(item) => importer.emit(Record::Item(item))?,
                    Err(error) => importer.reject(path, line, error)?,
                }
            }
            Err(e) => {
                if let csv::ErrorKind::Io(_) = e.kind() {
                    return Err(Error::Io(std::io::Error::other(format!("{}: {e}", path.display()))));
                }
                let line = e.position().map_or(0, csv::Position::line);
                importer.reject(path, line, ValidationError::new("invalid_csv", "", e.to_string()))?;
            }
        }
    }
    importer.read_bytes(size as usize);
    Ok(())
}

/// `u.user`: `id|age|gender|occupation|zip`.
fn import_users(importer: &mut Importer<'_>, path: &Path) -> Result<()> {
    importer.scan_lines(
        path,
        false,
        Encoding::Utf8OrLatin1,
        |_, line| {
            if line.trim().is_empty() {
                return Ok(None);
            }
            let cells: Vec<&str> = line.split('|').collect();
            let id = cell(&cells, 0, "user id")?;
            let age = cell(&cells, 1, "age")?;
            let age = age.parse::<u64>().map_err(|_| {
                ValidationError::new("invalid_number", "age", format!("expected an age in years, found {age:?}"))
            })?;
            let mut attributes = Map::new();
            attributes.insert("age".into(), json!(age));
            for (index, name) in [(2, "gender"), (3, "occupation"), (4, "zip")] {
                let value = cell(&cells, index, name)?;
                if !value.is_empty() {
                    attributes.insert(name.into(), json!(value));
                }
            }
            parse_user(&json!({"id": id, "attributes": attributes})).map(Some)
        },
        |importer, _, user| importer.emit(Record::User(user)),
    )
}

/// `u.data` (`user item rating seconds`, tab-separated) or `ratings.csv`
/// (`userId,movieId,rating,timestamp` with a header).
fn import_ratings(importer: &mut Importer<'_>, path: &Path, csv_layout: bool) -> Result<()> {
    importer.scan_lines(
        path,
        csv_layout,
        Encoding::Utf8,
        |_, line| {
            if line.trim().is_empty() {
                return Ok(None);
            }
            let cells: Vec<&str> = if csv_layout { line.split(',').collect() } else { line.split('\t').collect() };
            let user = cell(&cells, 0, "user")?;
            let item = cell(&cells, 1, "item")?;
            let rating = parse_number(cell(&cells, 2, "rating")?, "rating")?;
            let seconds = cell(&cells, 3, "timestamp")?;
            let timestamp = seconds_to_ms(seconds, "timestamp")?;
            dataset_event(format!("ml:{user}:{item}:{seconds}"), EventType::Rating, user, item, Some(rating), timestamp)
                .map(Some)
        },
        |importer, _, event| importer.emit(Record::Event(event)),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::{fixture, import_to_vec, Format};
    use super::split_title_year;
    use crate::error::Error;
    use crate::model::{EventType, Record};

    #[test]
    fn titles_lose_their_year() {
        assert_eq!(split_title_year("Toy Story (1995)"), ("Toy Story", Some(1995)));
        assert_eq!(split_title_year("City of Lost Children, The (1995) "), ("City of Lost Children, The", Some(1995)));
        assert_eq!(split_title_year("Babylon 5"), ("Babylon 5", None));
        assert_eq!(split_title_year("Big Night (Stanley Tucci)"), ("Big Night (Stanley Tucci)", None));
    }

    #[test]
    fn the_100k_layout_gives_items_users_and_ratings() {
        let (report, records) = import_to_vec(Format::Movielens, &[fixture("movielens/ml-100k")], true).unwrap();
        assert_eq!((report.items, report.users, report.events), (6, 4, 10));
        assert_eq!((report.distinct_items, report.distinct_users), (6, 4));
        assert_eq!(report.files.len(), 4, "u.genre, u.item, u.user, u.data");
        assert!(report.warnings[0].contains("u1.base"), "{:?}", report.warnings);
        let Record::Item(toy_story) = &records[0] else { panic!("items come first") };
        assert_eq!(toy_story.id.as_str(), "1");
        assert_eq!(toy_story.title, "Toy Story");
        assert_eq!(toy_story.category, vec!["Animation"]);
        assert_eq!(toy_story.tags, vec!["Animation", "Children's", "Comedy"]);
        assert_eq!(toy_story.attributes.get("year"), Some(&json!(1995)));
        let Record::Item(latin1) = &records[4] else { panic!("expected an item") };
        assert_eq!(latin1.title, "Ciné Lumière, La", "decoded from Latin-1");
        let Record::Item(unknown) = &records[5] else { panic!("expected an item") };
        assert_eq!(unknown.title, "unknown");
        assert_eq!(unknown.category, vec!["unknown"]);
        assert_eq!(unknown.attributes.get("year"), None);
        let Record::User(user) = &records[6] else { panic!("users follow items") };
        assert_eq!(user.id.as_str(), "1");
        assert_eq!(user.attributes.get("age"), Some(&json!(24)));
        assert_eq!(user.attributes.get("zip"), Some(&json!("85711")));
        let Record::Event(rating) = &records[10] else { panic!("events come last") };
        assert_eq!(rating.id.as_str(), "ml:196:242:881250949");
        assert_eq!(rating.event_type, EventType::Rating);
        assert_eq!(rating.value, Some(3.0));
        assert_eq!(rating.timestamp, 881_250_949_000);
    }

    #[test]
    fn reimporting_gives_the_same_event_ids() {
        let ids = || {
            let (_, records) = import_to_vec(Format::Movielens, &[fixture("movielens/ml-100k")], true).unwrap();
            records
                .into_iter()
                .filter_map(|r| if let Record::Event(e) = r { Some(e.id) } else { None })
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(), ids());
    }

    #[test]
    fn the_csv_layout_reads_quoted_titles_and_half_stars() {
        let (report, records) =
            import_to_vec(Format::Movielens, &[fixture("movielens/ml-latest-small")], true).unwrap();
        assert_eq!((report.items, report.users, report.events), (4, 0, 5));
        let Record::Item(quoted) = &records[1] else { panic!("expected an item") };
        assert_eq!(quoted.title, "City of Lost Children, The (Cité des enfants perdus, La)");
        assert_eq!(quoted.attributes.get("year"), Some(&json!(1995)));
        let Record::Item(no_genres) = &records[3] else { panic!("expected an item") };
        assert!(no_genres.tags.is_empty() && no_genres.category.is_empty());
        let Record::Event(half) = &records[5] else { panic!("expected an event") };
        assert_eq!(half.value, Some(4.5));
        assert_eq!(half.id.as_str(), "ml:1:29:964982703");
    }

    #[test]
    fn bad_rating_lines_are_reported_with_their_number() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("u.data");
        fs_err::write(&data, "1\t2\t3\t881250949\n1\t3\tgood\t881250949\n1\t4\t5\n").unwrap();
        let err = import_to_vec(Format::Movielens, std::slice::from_ref(&data), true).unwrap_err();
        let Error::Parse { line, message, .. } = err else { panic!("expected a parse error") };
        assert_eq!(line, 2);
        assert!(message.contains("`rating`"), "{message}");
        let (report, _) = import_to_vec(Format::Movielens, &[data], false).unwrap();
        assert_eq!((report.events, report.skipped), (1, 2));
        assert!(report.warnings[1].contains("missing_column at `timestamp`"), "{:?}", report.warnings);
    }

    #[test]
    fn files_of_unknown_role_are_refused() {
        let err = import_to_vec(Format::Movielens, &[fixture("movielens/ml-100k/u1.base")], true).unwrap_err();
        assert!(err.to_string().contains("not a file of the movielens format"), "{err}");
    }
}
