//! Configuration: typed sections with defaults, layered as defaults < TOML file <
//! environment (`SOUK__SECTION__KEY`, plus `SOUK_DATA_DIR`) < command-line flags, then
//! validated with every problem reported at once.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use souk_engine::rank::ranker::RankConfig;
use souk_engine::rank::rerank::Rules;
use souk_engine::recommend::EventWeights;
use souk_engine::search::SearchConfig;
use souk_engine::serving::RecommendConfig;
use souk_engine::store::StoreConfig;
use souk_server::{AuthConfig, ServerConfig};

/// Logging settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter, e.g. `info` or `souk=debug,tower_http=info`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: "text".into(), level: "info".into() }
    }
}

/// The text embedder for semantic search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbedConfig {
    /// The sentence-embedding model: a directory in the all-MiniLM-L6-v2 layout
    /// (`model.safetensors`, `tokenizer.json`, `config.json`; English) or a
    /// multilingual-e5-small `e5-small-q4.bin` file (English and Chinese); empty: no
    /// semantic search (keyword only).
    pub model_path: String,
    /// Texts embedded per batch.
    pub batch_size: usize,
    /// Search queries that arrive together are embedded in one pass of at most this many
    /// (1: every query alone).
    pub query_batch: usize,
    /// Query passes that may run at the same time (0: one per core).
    pub query_passes: usize,
}

impl Default for EmbedConfig {
    fn default() -> Self {
        Self { model_path: String::new(), batch_size: 32, query_batch: 16, query_passes: 0 }
    }
}

impl EmbedConfig {
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if !self.model_path.is_empty() && !Path::new(&self.model_path).exists() {
            problems.push(("embed.model_path".into(), format!("no such file or directory: {}", self.model_path)));
        }
        if !(1..=1024).contains(&self.batch_size) {
            problems.push(("embed.batch_size".into(), format!("expected 1..=1024, found {}", self.batch_size)));
        }
        if !(1..=256).contains(&self.query_batch) {
            problems.push(("embed.query_batch".into(), format!("expected 1..=256, found {}", self.query_batch)));
        }
        if self.query_passes > 64 {
            problems.push(("embed.query_passes".into(), format!("expected 0..=64, found {}", self.query_passes)));
        }
        problems
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub data_dir: PathBuf,
    pub log: LogConfig,
    pub server: ServerConfig,
    pub store: StoreConfig,
    /// How much each event type counts as interest (training and serving).
    pub weights: EventWeights,
    pub recommend: RecommendConfig,
    pub search: SearchConfig,
    pub embed: EmbedConfig,
    /// Business rules applied to every recommendation and search page (requests add
    /// their own `rules`).
    pub rerank: Rules,
    /// The learned ranker: feature logging, exploration, learner parameters.
    pub rank: RankConfig,
    /// Access control: the master key (also `SOUK_MASTER_KEY`).
    pub auth: AuthConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./souk-data"),
            log: LogConfig::default(),
            server: ServerConfig::default(),
            store: StoreConfig::default(),
            weights: EventWeights::default(),
            recommend: RecommendConfig::default(),
            search: SearchConfig::default(),
            embed: EmbedConfig::default(),
            rerank: Rules::default(),
            rank: RankConfig::default(),
            auth: AuthConfig::default(),
        }
    }
}

/// Values given on the command line (highest precedence).
#[derive(Debug, Default, Clone)]
pub struct FlagOverrides {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
}

/// A problem with the merged configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

fn type_name(value: &toml::Value) -> &'static str {
    match value {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a float",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a date-time",
        toml::Value::Array(_) => "an array",
        toml::Value::Table(_) => "a table",
    }
}

/// Merge `layer` into `base`, checking every key and type against `shape` (the defaults).
fn merge(
    base: &mut toml::Table,
    layer: toml::Table,
    shape: &toml::Table,
    prefix: &str,
    source: &str,
    problems: &mut Vec<Problem>,
) {
    for (key, value) in layer {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        let Some(expected) = shape.get(&key) else {
            let known: Vec<&str> = shape.keys().map(String::as_str).collect();
            problems.push(Problem {
                key: path,
                message: format!("unknown key (in {source}); expected one of: {}", known.join(", ")),
            });
            continue;
        };
        match (expected, value) {
            (toml::Value::Table(sub_shape), toml::Value::Table(sub_layer)) => {
                if let Some(toml::Value::Table(sub_base)) = base.get_mut(&key) {
                    merge(sub_base, sub_layer, sub_shape, &path, source, problems);
                }
            }
            (toml::Value::Float(_), toml::Value::Integer(i)) => {
                base.insert(key, toml::Value::Float(i as f64));
            }
            (expected, value) if std::mem::discriminant(expected) == std::mem::discriminant(&value) => {
                base.insert(key, value);
            }
            (expected, value) => problems.push(Problem {
                key: path,
                message: format!("expected {} (in {source}), found {}", type_name(expected), type_name(&value)),
            }),
        }
    }
}

/// Interpret an environment value as TOML when it parses as such (numbers, booleans),
/// otherwise as a plain string.
fn env_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .filter(|v| !matches!(v, toml::Value::Table(_)))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

/// Set `keys` (a path of nested tables) to `value`, creating tables on the way.
fn insert_path(table: &mut toml::Table, keys: &[String], value: toml::Value) {
    match keys {
        [] => {}
        [last] => {
            table.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = table.entry(first.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            if let toml::Value::Table(sub) = entry {
                insert_path(sub, rest, value);
            }
        }
    }
}

/// Build the configuration from all layers. Returns the configuration and every problem.
pub fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    flags: &FlagOverrides,
) -> anyhow::Result<(Config, Vec<Problem>)> {
    let mut merged = toml::Table::try_from(Config::default()).context("serialising the default configuration")?;
    // The keys a layer may set: every default, and the optional ones without a default.
    let mut defaults = merged.clone();
    if let Some(toml::Value::Table(auth)) = defaults.get_mut("auth") {
        auth.insert("master_key".into(), toml::Value::String(String::new()));
    }
    let mut problems = Vec::new();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
        match toml::from_str::<toml::Table>(&text) {
            Ok(table) => merge(&mut merged, table, &defaults, "", &path.display().to_string(), &mut problems),
            Err(e) => problems
                .push(Problem { key: path.display().to_string(), message: format!("not valid TOML: {}", e.message()) }),
        }
    }
    let mut env_layer = toml::Table::new();
    for (name, raw) in env {
        let keys: Vec<String> = if name == "SOUK_DATA_DIR" {
            vec!["data_dir".into()]
        } else if name == "SOUK_MASTER_KEY" {
            vec!["auth".into(), "master_key".into()]
        } else if let Some(rest) = name.strip_prefix("SOUK__") {
            rest.split("__").map(str::to_lowercase).collect()
        } else {
            continue;
        };
        let value = if keys.last().is_some_and(|k| k == "data_dir" || k == "master_key") {
            toml::Value::String(raw)
        } else {
            env_value(&raw)
        };
        insert_path(&mut env_layer, &keys, value);
    }
    merge(&mut merged, env_layer, &defaults, "", "environment", &mut problems);
    let mut config: Config = match toml::Value::Table(merged).try_into() {
        Ok(config) => config,
        Err(e) => {
            problems.push(Problem { key: "config".into(), message: e.to_string() });
            Config::default()
        }
    };
    if let Some(dir) = &flags.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(listen) = &flags.listen {
        config.server.listen = listen.clone();
    }
    problems.extend(validate(&config));
    Ok((config, problems))
}

fn validate(config: &Config) -> Vec<Problem> {
    let mut problems: Vec<Problem> = config
        .server
        .problems()
        .into_iter()
        .chain(config.store.problems())
        .chain(config.weights.problems())
        .chain(config.recommend.problems())
        .chain(config.search.problems())
        .chain(config.embed.problems())
        .chain(config.rerank.problems().into_iter().map(|e| (format!("rerank.{}", e.field), e.message)))
        .chain(config.rank.problems())
        .chain(config.auth.problems())
        .map(|(key, message)| Problem { key, message })
        .collect();
    if !matches!(config.log.format.as_str(), "text" | "json") {
        problems.push(Problem {
            key: "log.format".into(),
            message: format!("expected \"text\" or \"json\", found {:?}", config.log.format),
        });
    }
    if tracing_subscriber::EnvFilter::try_new(&config.log.level).is_err() {
        problems.push(Problem {
            key: "log.level".into(),
            message: format!("not a valid log filter: {:?}", config.log.level),
        });
    }
    if config.data_dir.as_os_str().is_empty() {
        problems.push(Problem { key: "data_dir".into(), message: "expected a directory path, found \"\"".into() });
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_reference_config_parses_without_problems() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../souk.example.toml");
        let (config, problems) = load(Some(&path), Vec::new(), &FlagOverrides::default()).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(config, Config::default(), "the reference config documents the defaults");
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("souk.toml");
        std::fs::write(&file, "data_dir = \"from-file\"\n[server]\nlisten = \"127.0.0.1:1\"\nmax_batch = 5\n").unwrap();
        let (config, problems) = load(
            Some(&file),
            env(&[("SOUK__SERVER__MAX_BATCH", "7"), ("SOUK_DATA_DIR", "from-env"), ("PATH", "/bin")]),
            &FlagOverrides { data_dir: None, listen: Some("127.0.0.1:2".into()) },
        )
        .unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(config.data_dir, PathBuf::from("from-env"));
        assert_eq!(config.server.max_batch, 7);
        assert_eq!(config.server.listen, "127.0.0.1:2");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("souk.toml");
        std::fs::write(
            &file,
            "colour = 1\n[server]\nmax_batch = \"many\"\nlisten = \"nowhere\"\n[log]\nformat = \"xml\"\n",
        )
        .unwrap();
        let (_, problems) =
            load(Some(&file), env(&[("SOUK__STORE__SEGMENT_BYTES", "12")]), &FlagOverrides::default()).unwrap();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        for expected in ["colour", "server.max_batch", "server.listen", "log.format", "store.segment_bytes"] {
            assert!(keys.contains(&expected), "missing {expected} in {keys:?}");
        }
    }
}
