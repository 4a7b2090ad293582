//! Search over the checked-in bilingual test catalog (`testdata/search`): the recall
//! suites, facets, filters, sorting, pagination, visibility of changes, rebuilding and
//! hybrid fusion.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::error::Error;
use crate::input::parse_record_json;
use crate::model::{Item, Record};
use crate::store::{EmbeddedStore, Storage, StoreConfig};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/search")
}

fn catalog() -> Vec<Item> {
    let text = std::fs::read_to_string(testdata().join("catalog.jsonl")).expect("test catalog");
    text.lines()
        .map(|line| match parse_record_json(line).expect("valid record") {
            Record::Item(item) => item,
            other => panic!("expected an item, found {other:?}"),
        })
        .collect()
}

fn config() -> SearchConfig {
    SearchConfig {
        synonyms: testdata().join("synonyms.txt").display().to_string(),
        user_dictionary: testdata().join("user_dictionary.txt").display().to_string(),
        commit_interval_ms: 50,
        ..SearchConfig::default()
    }
}

struct Shop {
    dir: tempfile::TempDir,
    store: EmbeddedStore,
    index: Arc<SearchIndex>,
}

fn shop() -> Shop {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("data"), &StoreConfig::default()).unwrap();
    store.put_items(catalog()).unwrap();
    let index = SearchIndex::open(&dir.path().join("data/search"), config(), &store).unwrap();
    Shop { dir, store, index }
}

fn ids(response: &SearchResponse) -> Vec<&str> {
    response.hits.iter().map(|h| h.id.as_str()).collect()
}

fn search(index: &SearchIndex, query: &str) -> SearchResponse {
    index.search(&SearchRequest { limit: 10, ..SearchRequest::keyword(query) }).unwrap()
}

#[test]
fn recall_suites_pass_in_chinese_and_english() {
    let shop = shop();
    let cases = std::fs::read_to_string(testdata().join("recall.tsv")).unwrap();
    let mut failures = Vec::new();
    let (mut zh, mut en) = (0, 0);
    for line in cases.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let columns: Vec<&str> = line.split('\t').collect();
        let [lang, kind, query, expected, top] = columns[..] else { panic!("bad case line {line:?}") };
        let top: usize = top.parse().unwrap();
        match lang {
            "zh" => zh += 1,
            _ => en += 1,
        }
        let response = search(&shop.index, query);
        let found = ids(&response);
        for id in expected.split(',') {
            if !found.iter().take(top).any(|f| *f == id) {
                failures.push(format!("[{lang} {kind}] {query:?}: expected {id} in the top {top}, got {found:?}"));
            }
        }
    }
    assert!(zh >= 40 && en >= 20, "suite sizes {zh} / {en}");
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn a_word_nothing_contains_finds_nothing_rather_than_everything() {
    let shop = shop();
    let response = search(&shop.index, "zzzqqq");
    assert_eq!(response.total, 0, "{:?}", ids(&response));
    let response = search(&shop.index, "sony zzzqqq");
    // No item has both words, so the one that matches counts.
    assert_eq!(ids(&response), vec!["e01"]);
    assert!(response.relaxed);
}

#[test]
fn facets_filters_sorting_and_pages() {
    let shop = shop();
    let mut request = SearchRequest { facets: true, limit: 3, ..SearchRequest::keyword("") };
    request.filters.category = vec!["electronics".into()];
    let response = shop.index.search(&request).unwrap();
    let electronics = 8;
    assert_eq!(response.total, electronics);
    let facets = response.facets.as_ref().unwrap();
    let audio = facets.category.iter().find(|c| c.value == "Electronics > Audio").unwrap();
    assert_eq!(audio.count, 2);
    assert_eq!(facets.category.iter().map(|c| c.count).sum::<u64>(), electronics as u64);
    assert!(facets.price.iter().map(|b| b.count).sum::<u64>() == electronics as u64);

    // Pages cover every match exactly once.
    let mut seen = Vec::new();
    for page in 0..4 {
        let response = shop.index.search(&SearchRequest { offset: page * 3, ..request.clone() }).unwrap();
        seen.extend(response.hits.into_iter().map(|h| h.id));
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len());
    assert_eq!(seen.len(), electronics);

    // Brand filter, price range, sorting by price.
    request.filters.brands = vec!["sony".into(), "Samsung".into()];
    request.sort = Sort::PriceAsc;
    request.limit = 10;
    let response = shop.index.search(&request).unwrap();
    assert_eq!(ids(&response), vec!["e01", "e04"]);
    // The brand facet ignores the brand filter (multi-select).
    assert!(response.facets.unwrap().brand.len() > 2);
    request.filters.max_price = Some(500.0);
    assert_eq!(ids(&shop.index.search(&request).unwrap()), vec!["e01"]);

    // Attribute filter and availability.
    let mut request = SearchRequest::keyword("");
    request.filters.attributes = vec![("color".into(), "white".into())];
    request.limit = 50;
    let mut white = ids(&shop.index.search(&request).unwrap()).into_iter().map(String::from).collect::<Vec<_>>();
    white.sort();
    assert_eq!(white, vec!["e02", "e07", "e18"]);
    let mut request = SearchRequest::keyword("espresso");
    assert_eq!(shop.index.search(&request).unwrap().total, 1);
    request.filters.available_only = true;
    assert_eq!(shop.index.search(&request).unwrap().total, 0);

    // Newest first.
    let response = shop.index.search(&SearchRequest { sort: Sort::Newest, ..SearchRequest::keyword("耳机") }).unwrap();
    assert_eq!(ids(&response), vec!["z05", "z04", "z03", "z02"]);
}

#[test]
fn popularity_sorts_and_breaks_ties_for_items_indexed_before_and_after_it_is_set() {
    let shop = shop();
    let scores = |pairs: &[(&str, f32)]| pairs.iter().map(|(id, p)| (Arc::from(*id), *p)).collect();
    shop.index.set_popularity(scores(&[("e07", 5.0), ("z02", 9.0), ("e01", 1.0), ("n1", 7.0)]));
    let by_popularity = SearchRequest { sort: Sort::Popularity, limit: 3, ..SearchRequest::keyword("") };
    assert_eq!(ids(&shop.index.search(&by_popularity).unwrap()), vec!["z02", "e07", "e01"]);
    // A query without words scores every item alike: popularity breaks the tie.
    let blank = SearchRequest { limit: 2, ..SearchRequest::keyword("") };
    assert_eq!(ids(&shop.index.search(&blank).unwrap()), vec!["z02", "e07"]);
    // An item indexed after the scores were set takes its score.
    let item = Item::new(crate::ItemId::parse("n1", "id").unwrap(), "Trail Running Backpack 20L");
    shop.index.index_items(vec![item]).unwrap();
    wait_for(&shop.index, "backpack", true);
    assert_eq!(ids(&shop.index.search(&by_popularity).unwrap()), vec!["z02", "n1", "e07"]);
    // New scores replace the old ones.
    shop.index.set_popularity(scores(&[("e01", 3.0)]));
    assert_eq!(ids(&shop.index.search(&blank).unwrap())[0], "e01");
}

fn wait_for(index: &SearchIndex, query: &str, present: bool) -> Duration {
    let started = Instant::now();
    loop {
        let found = search(index, query).total > 0;
        if found == present {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{query:?} never became {present}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn catalog_changes_become_visible_and_the_index_reconciles_and_rebuilds() {
    let shop = shop();
    let mut item = Item::new(crate::ItemId::parse("n1", "id").unwrap(), "Trail Running Backpack 20L");
    item.brand = Some("Osprey".into());
    shop.store.put_items(vec![item.clone()]).unwrap();
    shop.index.index_items(vec![item.clone()]).unwrap();
    wait_for(&shop.index, "backpack", true);
    // An update replaces the old text.
    item.title = "Trail Running Vest 5L".into();
    shop.index.index_items(vec![item.clone()]).unwrap();
    wait_for(&shop.index, "backpack", false);
    assert_eq!(ids(&search(&shop.index, "vest")), vec!["n1"]);
    shop.index.delete_items(&["n1"]).unwrap();
    wait_for(&shop.index, "vest", false);
    // Each segment's slots are read once and forgotten with the segment.
    let searcher = shop.index.reader.searcher();
    let live: Vec<_> = searcher.segment_readers().iter().map(|s| s.segment_id()).collect();
    let cached = shop.index.slot_maps.cached();
    assert!(!cached.is_empty() && cached.iter().all(|id| live.contains(id)), "{cached:?} within {live:?}");

    // Changes made while the index is closed are reconciled on open.
    let Shop { dir, store, index } = shop;
    drop(index);
    std::thread::sleep(Duration::from_millis(100));
    let mut changed = Item::new(crate::ItemId::parse("e01", "id").unwrap(), "Sony Portable Bluetooth Speaker");
    changed.brand = Some("Sony".into());
    store.put_items(vec![changed]).unwrap();
    store.delete_item(&crate::ItemId::parse("e13", "id").unwrap()).unwrap();
    let search_dir = dir.path().join("data/search");
    let index = SearchIndex::open(&search_dir, config(), &store).unwrap();
    assert_eq!(ids(&search(&index, "speaker")), vec!["e01"]);
    assert_eq!(search(&index, "headphones").total, 0);
    assert_eq!(search(&index, "logitech").total, 0);
    drop(index);
    std::thread::sleep(Duration::from_millis(100));

    // A lost or damaged index is rebuilt from the catalog.
    std::fs::remove_dir_all(search_dir.join("keyword")).unwrap();
    let index = SearchIndex::open(&search_dir, config(), &store).unwrap();
    assert_eq!(ids(&search(&index, "speaker")), vec!["e01"]);
    assert_eq!(ids(&search(&index, "蓝牙耳机"))[..2], ["z02", "z03"]);
    drop(index);
    std::thread::sleep(Duration::from_millis(100));
    std::fs::write(search_dir.join("META.json"), b"{not json").unwrap();
    let index = SearchIndex::open(&search_dir, config(), &store).unwrap();
    assert_eq!(index.stats().items, catalog().len());
}

/// Vectors that place items on a few axes by category, so semantic matches are known.
fn toy_vector(item: &Item) -> Vec<f32> {
    let top = item.category.first().map(String::as_str).unwrap_or("");
    let mut v = vec![0.05f32; 4];
    match top {
        "Electronics" | "数码" => v[0] = 1.0,
        "Home" | "家用电器" | "厨具" => v[1] = 1.0,
        "Clothing" | "女装" | "Shoes" | "运动户外" => v[2] = 1.0,
        _ => v[3] = 1.0,
    }
    if item.title.contains("Headphones") {
        v[3] = 1.0;
    }
    v
}

#[test]
fn semantic_and_hybrid_fusion_with_explanations() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("data"), &StoreConfig::default()).unwrap();
    let items: Vec<Item> = catalog()
        .into_iter()
        .map(|mut item| {
            item.vectors.insert("toy".into(), toy_vector(&item));
            item
        })
        .collect();
    store.put_items(items).unwrap();
    let index = SearchIndex::open(&dir.path().join("data/search"), config(), &store).unwrap();
    let probe = vec![0.05, 0.05, 0.05, 1.0];
    let near_headphones = {
        let mut v = probe.clone();
        v[0] = 1.0;
        v
    };

    let semantic = SearchRequest {
        mode: SearchMode::Semantic,
        query_vector: Some(near_headphones.clone()),
        space: "toy".into(),
        explain: true,
        ..SearchRequest::keyword("")
    };
    let response = index.search(&semantic).unwrap();
    assert_eq!(response.mode, SearchMode::Semantic);
    assert_eq!(response.hits[0].id, "e01");
    assert!(response.hits[0].explain.as_ref().unwrap().vector.is_some());

    // Hybrid: "wireless" matches e01, e13, z04, z14, z22 by keyword (e13's short title
    // scores best); the vector is nearest to e01; fusion puts the item good on both first.
    for fusion in [Fusion::Rrf { k: 60.0 }, Fusion::Weighted { alpha: 0.5 }] {
        let request = SearchRequest {
            mode: SearchMode::Hybrid,
            fusion,
            query_vector: Some(near_headphones.clone()),
            space: "toy".into(),
            explain: true,
            ..SearchRequest::keyword("wireless")
        };
        let response = index.search(&request).unwrap();
        assert_eq!(response.mode, SearchMode::Hybrid);
        assert_eq!(response.hits[0].id, "e01", "{fusion:?}: {:?}", ids(&response));
        let explain = response.hits[0].explain.as_ref().unwrap();
        assert!(explain.bm25.is_some() && explain.vector.is_some() && explain.fusion > 0.0);
        let scores: Vec<f32> = response.hits.iter().map(|h| h.score).collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
        // The total counts the union of both match sets once.
        let keyword_total = index.search(&SearchRequest::keyword("wireless")).unwrap().total;
        let vector_total = index.search(&SearchRequest { query: "wireless".into(), ..semantic.clone() }).unwrap().total;
        let everything = index.search(&SearchRequest { limit: 1_000, ..request.clone() }).unwrap();
        assert_eq!(everything.total, everything.hits.len());
        assert!(
            everything.total >= keyword_total.max(vector_total),
            "{} {keyword_total} {vector_total}",
            everything.total
        );
        assert!(everything.total < keyword_total + vector_total, "shared matches count once");
    }
    let keyword_only = index.search(&SearchRequest { explain: true, ..SearchRequest::keyword("wireless") }).unwrap();
    assert_eq!(keyword_only.hits[0].id, "e13", "the keyword ranking alone differs");

    // Hybrid without a query vector falls back to keyword; semantic without one is refused.
    let fallback = SearchRequest { mode: SearchMode::Hybrid, ..SearchRequest::keyword("wireless") };
    assert_eq!(index.search(&fallback).unwrap().mode, SearchMode::Keyword);
    let refused = SearchRequest { mode: SearchMode::Semantic, ..SearchRequest::keyword("wireless") };
    assert!(matches!(index.search(&refused), Err(Error::Invalid(e)) if e.code == "semantic_unavailable"));
    let wrong = SearchRequest { query_vector: Some(vec![1.0; 3]), ..semantic.clone() };
    assert!(
        matches!(index.search(&wrong), Err(Error::Invalid(e)) if e.field == "vector" && e.code == "dimension_mismatch")
    );

    // Mismatched dimensions are refused before anything is stored.
    let mut bad = catalog().remove(0);
    bad.vectors.insert("toy".into(), vec![1.0; 7]);
    assert!(matches!(index.check_vectors(&[bad]), Err(Error::Invalid(e)) if e.code == "dimension_mismatch"));
}

#[test]
fn the_personal_touch_reorders_by_affinity() {
    let shop = shop();
    let plain = search(&shop.index, "耳机");
    // A shopper who buys Sony things.
    let affinity = shop.index.affinity([("e01", 1.0f32), ("z04", 1.0)].into_iter());
    let request = SearchRequest { affinity: Some(affinity), explain: true, ..SearchRequest::keyword("耳机") };
    let personal = shop.index.search(&request).unwrap();
    assert_eq!(personal.hits[0].id, "z04", "plain order {:?}", ids(&plain));
    assert!(personal.hits[0].explain.as_ref().unwrap().personal.unwrap() > 0.0);
    assert_eq!(personal.total, plain.total);
}

#[test]
fn the_query_vector_cache_keeps_the_most_recently_used() {
    let cache = QueryVectorCache::new(2);
    cache.put("m", "a", Arc::new(vec![1.0]));
    cache.put("m", "b", Arc::new(vec![2.0]));
    // Using "a" makes "b" the oldest; a third query drops it.
    assert_eq!(cache.get("m", "a").as_deref(), Some(&vec![1.0]));
    cache.put("m", "c", Arc::new(vec![3.0]));
    assert_eq!(cache.len(), 2);
    assert!(cache.get("m", "b").is_none());
    assert!(cache.get("other-model", "a").is_none(), "keyed by model too");
    assert_eq!(cache.get("m", "c").as_deref(), Some(&vec![3.0]));
    let off = QueryVectorCache::new(0);
    off.put("m", "a", Arc::new(vec![1.0]));
    assert!(off.get("m", "a").is_none() && off.is_empty());
}
