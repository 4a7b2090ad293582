//! The engine's architecture invariants that a test can check, read from the source:
//! modules form layers and nothing imports from a module above it (or beside it), and no
//! two files import each other, directly or around a circle. Test code is left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The engine's top-level modules, lowest layer first. A module may use the modules of
/// lower layers only.
const LAYERS: &[&[&str]] = &[
    &["error"],
    &["hashing", "ids", "fusion", "stats", "ope"],
    &["growth"],
    &["model"],
    &["input"],
    &["store"],
    &["import", "gen"],
    &["recommend"],
    &["rank"],
    &["search"],
    &["serving"],
    &["eval"],
];

/// What the crate root re-exports, by the module that defines it.
const ROOT_REEXPORTS: &[(&str, &str)] = &[
    ("Error", "error"),
    ("ErrorKind", "error"),
    ("Result", "error"),
    ("ValidationError", "error"),
    ("EventId", "ids"),
    ("ItemId", "ids"),
    ("UserId", "ids"),
    ("Event", "model"),
    ("EventType", "model"),
    ("Follow", "model"),
    ("FollowKind", "model"),
    ("Item", "model"),
    ("Record", "model"),
    ("RecordSink", "model"),
    ("User", "model"),
];

fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir` as its module path (`rank/features`, `store/mod` → `store`).
fn modules(dir: &Path, prefix: &str, out: &mut BTreeMap<String, PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let module = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
        if path.is_dir() {
            modules(&path, &module, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let module = if name == "mod" { prefix.to_string() } else { module };
            out.insert(module, path);
        }
    }
}

/// The non-test, non-comment text of a file.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    code.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// Module paths named after `crate::` or `super::` in `code`, resolved to known modules
/// (the longest known prefix of each path).
fn references(module: &str, code: &str, known: &BTreeMap<String, PathBuf>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let parent = |m: &str| m.rsplit_once('/').map_or(String::new(), |(p, _)| p.to_string());
    // `super` of `a/b.rs` is `a`; of `a/b/mod.rs` (module `a/b`) it is `a` too.
    let super_base = parent(module);
    for (anchor, base) in [("crate::", String::new()), ("super::", super_base)] {
        let mut rest = code;
        while let Some(at) = rest.find(anchor) {
            let before = rest[..at].chars().last();
            rest = &rest[at + anchor.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let segments: Vec<&str> = rest
                .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .next()
                .unwrap_or_default()
                .split("::")
                .filter(|s| !s.is_empty())
                .collect();
            let mut path = base.clone();
            let mut resolved = None;
            for segment in &segments {
                path = if path.is_empty() { segment.to_string() } else { format!("{path}/{segment}") };
                if known.contains_key(&path) {
                    resolved = Some(path.clone());
                }
            }
            match resolved {
                Some(target) => {
                    out.insert(target);
                }
                None if anchor == "crate::" => {
                    if let Some((_, owner)) = ROOT_REEXPORTS.iter().find(|(name, _)| Some(name) == segments.first()) {
                        out.insert(owner.to_string());
                    }
                }
                None => {}
            }
        }
    }
    out
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut known = BTreeMap::new();
    modules(&source_dir(), "", &mut known);
    known.remove("lib");
    known.remove("architecture_tests");
    known
        .iter()
        .map(|(module, path)| {
            let mut refs = references(module, &code_of(path), &known);
            refs.remove(module);
            (module.clone(), refs)
        })
        .collect()
}

fn top(module: &str) -> &str {
    module.split('/').next().unwrap_or(module)
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&top(module)))
}

#[test]
fn every_module_has_a_layer_and_imports_only_from_below() {
    let graph = graph();
    let mut problems = Vec::new();
    for (module, refs) in &graph {
        let Some(from) = layer_of(module) else {
            problems.push(format!("{module}: its top-level module is in no layer of LAYERS"));
            continue;
        };
        for target in refs.iter().filter(|t| top(t) != top(module)) {
            match layer_of(target) {
                Some(to) if to < from => {}
                _ => problems.push(format!("{module} uses {target}, which is not in a lower layer")),
            }
        }
    }
    assert!(problems.is_empty(), "layering broken:\n{}", problems.join("\n"));
}

#[test]
fn no_files_import_each_other_around_a_circle() {
    let graph = graph();
    // Tarjan's strongly connected components.
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        circles: Vec<Vec<&'a str>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.graph.contains_key(w) {
                continue;
            }
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[w].min(s.low[v]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.index[w].min(s.low[v]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w);
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                s.circles.push(component);
            }
        }
    }
    let mut state = State {
        graph: &graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        circles: Vec::new(),
    };
    for v in graph.keys() {
        if !state.index.contains_key(v.as_str()) {
            visit(&mut state, v);
        }
    }
    let circles: Vec<String> = state.circles.iter().map(|c| c.join(" <-> ")).collect();
    assert!(circles.is_empty(), "import circles:\n{}", circles.join("\n"));
}

#[test]
fn the_checks_see_real_imports() {
    // The reader must find known edges, or the two tests above prove nothing.
    let graph = graph();
    assert!(graph["serving/recommend_page"].contains("rank/features"), "{:?}", graph["serving/recommend_page"]);
    assert!(graph["rank/online"].contains("rank/schema"), "{:?}", graph["rank/online"]);
    assert!(graph["store/embedded"].contains("error"), "{:?}", graph["store/embedded"]);
}
