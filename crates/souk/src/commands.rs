//! The subcommands.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use souk_engine::gen::{GenConfig, Generator};
use souk_engine::import::{self, Format, ImportOptions};
use souk_engine::rank::ranker::FeatureLog;
use souk_engine::search::SearchIndex;
use souk_engine::serving::ModelSet;
use souk_engine::store::artifacts::ArtifactStore;
use souk_engine::store::{EmbeddedStore, Storage, StoreSink};
use souk_engine::{ErrorKind, Record, RecordSink};

use crate::config::{self, Config, FlagOverrides};
use crate::{exit, Cli, Command, ConfigCommand, GenArgs};

/// A configuration with problems; carries the exit code.
#[derive(Debug)]
struct ConfigProblems(Vec<config::Problem>);

impl std::fmt::Display for ConfigProblems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "invalid configuration ({} problems):", self.0.len())?;
        for problem in &self.0 {
            writeln!(f, "  {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigProblems {}

/// Choose the exit code for an error chain.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    if error.downcast_ref::<ConfigProblems>().is_some() {
        return exit::CONFIG;
    }
    if error.downcast_ref::<crate::store_cmd::DamageFound>().is_some() {
        return exit::DAMAGED;
    }
    for cause in error.chain() {
        if let Some(e) = cause.downcast_ref::<souk_engine::Error>() {
            return match e.kind() {
                ErrorKind::BadInput => exit::BAD_INPUT,
                ErrorKind::Conflict => exit::LOCKED,
                ErrorKind::Corrupt => exit::DAMAGED,
                ErrorKind::NotFound | ErrorKind::Internal => exit::FAILURE,
            };
        }
        if let Some(e) = cause.downcast_ref::<souk_engine::ValidationError>() {
            let _ = e;
            return exit::BAD_INPUT;
        }
    }
    exit::FAILURE
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        // The search library reports every segment merge at info: quiet unless asked.
        let level = &config.log.level;
        let directives = if level.contains("tantivy") { level.clone() } else { format!("{level},tantivy=warn") };
        tracing_subscriber::EnvFilter::new(directives)
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // Ignore a second initialisation (tests run several commands in one process).
    let _ = if config.log.format == "json" { builder.json().try_init() } else { builder.try_init() };
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let listen = match &cli.command {
        Command::Serve { listen } | Command::Demo { listen, .. } => listen.clone(),
        _ => None,
    };
    let flags = FlagOverrides { data_dir: cli.data_dir.clone(), listen };
    let (config, problems) = config::load(cli.config.as_deref(), std::env::vars(), &flags)?;
    if let Command::Config { command: ConfigCommand::Check } = &cli.command {
        let text = toml::to_string_pretty(&config).context("printing the configuration")?;
        println!("{text}");
        if problems.is_empty() {
            eprintln!("configuration is valid");
            return Ok(());
        }
        return Err(ConfigProblems(problems).into());
    }
    if !problems.is_empty() {
        return Err(ConfigProblems(problems).into());
    }
    init_logging(&config);
    match cli.command {
        Command::Serve { .. } => serve(&config, None),
        Command::Import { format, paths, skip_bad, json } => import(&config, &format, &paths, skip_bad, json),
        Command::Stats { json } => stats(&config, json),
        Command::Verify { json } => crate::store_cmd::verify(&config, json),
        Command::Repair { json } => crate::store_cmd::repair(&config, json),
        Command::Train { models, json } => crate::recommend_cmd::train(&config, models.as_deref(), json),
        Command::Eval(args) => crate::recommend_cmd::eval(&config, &args),
        Command::Index { embed, json } => crate::search_cmd::index(&config, embed, json),
        Command::Gen(args) => gen(&config, &args),
        Command::Demo { size, .. } => {
            let args = GenArgs {
                items: size.items,
                users: size.users,
                events: size.events,
                seed: size.seed,
                out: None,
                json: false,
            };
            serve(&config, Some(&args))
        }
        Command::Config { .. } => Ok(()),
        Command::Bench { command } => crate::bench::run(&config, command),
        Command::BenchPhase { phase } => crate::bench::run_phase(&config, phase),
    }
}

pub fn open_store(config: &Config) -> anyhow::Result<EmbeddedStore> {
    EmbeddedStore::open(&config.data_dir, &config.store)
        .with_context(|| format!("opening the data directory {}", config.data_dir.display()))
}

fn progress_bar(total: u64, template: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

fn import(config: &Config, format: &str, paths: &[PathBuf], skip_bad: bool, json: bool) -> anyhow::Result<()> {
    let format: Format = format.parse().map_err(|e: souk_engine::ValidationError| anyhow::anyhow!(e.message))?;
    for path in paths {
        if !path.exists() {
            bail!("no such file or directory: {}", path.display());
        }
    }
    let store = open_store(config)?;
    let started = std::time::Instant::now();
    let bar = progress_bar(0, "{spinner} importing [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}");
    let mut sink = StoreSink::new(&store);
    let options = ImportOptions { strict: !skip_bad };
    let report = import::import_paths(format, paths, &options, &mut sink, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .with_context(|| format!("importing {format} from {}", display_paths(paths)))?;
    let written = sink.finish().context("writing the last batch")?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let stats = store.stats()?;
    if json {
        let value = serde_json::json!({
            "format": format.as_str(),
            "files": report.files,
            "bytes": report.bytes,
            "read": {"items": report.items, "users": report.users, "events": report.events, "follows": report.follows,
                     "distinct_users": report.distinct_users, "distinct_items": report.distinct_items,
                     "kg_triples": report.kg_triples, "skipped": report.skipped},
            "stored": written,
            "seconds": seconds,
            "warnings": report.warnings,
            "stats": stats,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!(
            "imported {} events ({} already stored), {} items, {} users, {} social edges from {} in {:.2}s",
            written.events,
            written.duplicate_events,
            written.items,
            written.users,
            written.follows,
            display_paths(paths),
            seconds
        );
        if report.skipped > 0 {
            println!("skipped {} bad lines", report.skipped);
        }
        if report.kg_triples > 0 {
            println!("read {} knowledge-graph triples", report.kg_triples);
        }
        for warning in &report.warnings {
            println!("warning: {warning}");
        }
        println!(
            "store now holds {} events, {} items, {} users, {} social edges",
            stats.events, stats.items, stats.users, stats.social_edges
        );
    }
    Ok(())
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

fn stats(config: &Config, json: bool) -> anyhow::Result<()> {
    let store = open_store(config)?;
    let stats = store.stats()?;
    if json {
        println!("{}", serde_json::to_string(&stats)?);
    } else {
        println!("data directory: {}", config.data_dir.display());
        println!("items:         {}", stats.items);
        println!("users:         {}", stats.users);
        println!("events:        {}", stats.events);
        for (event_type, count) in &stats.events_by_type {
            if *count > 0 {
                println!("  {event_type:<17}{count}");
            }
        }
        println!("social edges:  {}", stats.social_edges);
        println!(
            "event log:     {} bytes; catalog: {} bytes",
            stats.storage.event_log_bytes, stats.storage.catalog_bytes
        );
    }
    Ok(())
}

/// Writes generated records as JSONL files, one per kind.
pub struct FileSink {
    items: std::io::BufWriter<std::fs::File>,
    users: std::io::BufWriter<std::fs::File>,
    follows: std::io::BufWriter<std::fs::File>,
    events: std::io::BufWriter<std::fs::File>,
}

impl FileSink {
    pub fn create(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let open = |name: &str| -> anyhow::Result<_> {
            let path = dir.join(name);
            Ok(std::io::BufWriter::with_capacity(
                1 << 20,
                std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?,
            ))
        };
        Ok(Self {
            items: open("items.jsonl")?,
            users: open("users.jsonl")?,
            follows: open("follows.jsonl")?,
            events: open("events.jsonl")?,
        })
    }

    pub fn finish(mut self) -> anyhow::Result<()> {
        for writer in [&mut self.items, &mut self.users, &mut self.follows, &mut self.events] {
            writer.flush()?;
            writer.get_ref().sync_all()?;
        }
        Ok(())
    }
}

impl RecordSink for FileSink {
    fn put(&mut self, record: Record) -> souk_engine::Result<()> {
        let writer = match &record {
            Record::Item(_) => &mut self.items,
            Record::User(_) => &mut self.users,
            Record::Follow(_) => &mut self.follows,
            Record::Event(_) => &mut self.events,
        };
        serde_json::to_writer(&mut *writer, &souk_engine::input::record_to_json(&record))
            .map_err(|e| souk_engine::Error::Io(e.into()))?;
        writer.write_all(b"\n")?;
        Ok(())
    }
}

/// Generate a shop into `sink`, with a progress bar over events.
pub fn generate(
    generator: &Generator,
    events: usize,
    sink: &mut dyn RecordSink,
    quiet: bool,
) -> anyhow::Result<souk_engine::gen::GenSummary> {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        progress_bar(events as u64, "{spinner} generating [{bar:30}] {pos}/{len} events {per_sec} eta {eta}")
    };
    let summary = generator
        .run(sink, &mut |progress| {
            if progress.phase == souk_engine::gen::GenPhase::Events {
                bar.set_position(progress.done);
            }
        })
        .context("generating the shop")?;
    bar.finish_and_clear();
    Ok(summary)
}

fn gen(config: &Config, args: &GenArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let generator =
        Generator::new(GenConfig { items: args.items, users: args.users, events: args.events, seed: args.seed })
            .context("configuring the generator")?;
    let (summary, target) = match &args.out {
        Some(dir) => {
            let mut sink = FileSink::create(dir)?;
            let summary = generate(&generator, args.events, &mut sink, args.json)?;
            sink.finish()?;
            write_ground_truth(&generator, &dir.join("ground_truth.json"))?;
            (summary, dir.clone())
        }
        None => {
            let store = open_store(config)?;
            let mut sink = StoreSink::new(&store);
            let summary = generate(&generator, args.events, &mut sink, args.json)?;
            sink.finish().context("writing the last batch")?;
            write_ground_truth(&generator, &config.data_dir.join("ground_truth.json"))?;
            (summary, config.data_dir.clone())
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        println!("{}", serde_json::json!({"summary": summary, "seconds": seconds, "target": target}));
    } else {
        println!("generated {summary:?} into {} in {seconds:.2}s", target.display());
    }
    Ok(())
}

pub fn write_ground_truth(generator: &Generator, path: &Path) -> anyhow::Result<()> {
    let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut writer = std::io::BufWriter::new(file);
    generator.ground_truth()?.write_json(&mut writer).with_context(|| format!("writing {}", path.display()))?;
    writer.flush()?;
    Ok(())
}

/// Serve the data directory; with `demo`, first fill an empty data directory with a
/// generated shop.
fn serve(config: &Config, demo: Option<&GenArgs>) -> anyhow::Result<()> {
    let store = Arc::new(open_store(config)?);
    if let Some(args) = demo {
        let stats = store.stats()?;
        if stats.events == 0 && stats.catalog_items == 0 {
            eprintln!(
                "souk: building a demo shop ({} items, {} users, {} events, seed {}) in {}",
                args.items,
                args.users,
                args.events,
                args.seed,
                config.data_dir.display()
            );
            let generator = Generator::new(GenConfig {
                items: args.items,
                users: args.users,
                events: args.events,
                seed: args.seed,
            })?;
            let mut sink = StoreSink::new(store.as_ref());
            generate(&generator, args.events, &mut sink, false)?;
            sink.finish()?;
            write_ground_truth(&generator, &config.data_dir.join("ground_truth.json"))?;
        } else {
            eprintln!("souk: the data directory already holds a shop; serving it as it is");
        }
    }
    let artifacts = ArtifactStore::new(&config.data_dir);
    let mut models = ModelSet::load(&artifacts).context("loading the trained models")?;
    if models.is_none() && demo.is_some() {
        eprintln!("souk: training the demo shop's recommendation models");
        let mut set = ModelSet::train(store.as_ref(), &config.recommend, &config.weights).context("training")?;
        // Without logged traffic no ranker is trained, but feature rows start being logged.
        let log = FeatureLog::in_data_dir(&config.data_dir);
        set.train_ranker(store.as_ref(), &log, &config.rank.gbdt, None, unix_now_ms())
            .context("training the ranker")?;
        set.save(&artifacts).context("saving the models")?;
        models = Some(set);
    }
    match &models {
        Some(set) => tracing::info!(
            users = set.manifest.users,
            items = set.manifest.items,
            trained_at_ms = set.manifest.trained_at_ms,
            "loaded models"
        ),
        None => tracing::info!(
            "no trained models yet: recommendations fall back to trending until `souk train` or POST /v1/train"
        ),
    }
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    let settings = souk_server::RecommendSettings { config: config.recommend.clone(), weights: config.weights.clone() };
    let search = open_search(config, store.as_ref())?;
    if let Some(set) = &models {
        search.set_popularity(souk_server::search_api::popularity_of(set));
    }
    let embedder = crate::embed_cmd::load_embedder(&config.embed)?;
    if let Some(embedder) = &embedder {
        // Embed what is missing in the background: keyword search serves meanwhile.
        let (search, store, embedder, batch) =
            (search.clone(), store.clone(), embedder.clone(), config.embed.batch_size);
        std::thread::spawn(move || {
            let started = std::time::Instant::now();
            let result = search.embed_missing(store.as_ref(), embedder.as_ref(), batch, &mut |p| {
                if p.done % 10_000 < batch || p.done == p.total {
                    tracing::info!(done = p.done, total = p.total, "embedding items");
                }
            });
            match result {
                Ok(p) => tracing::info!(items = p.total, seconds = started.elapsed().as_secs_f64(), "items embedded"),
                Err(e) => tracing::error!(error = %e, "embedding items failed"),
            }
        });
    }
    let state = souk_server::AppState::with_models(store, config.server.clone(), settings, models.map(Arc::new))
        .with_artifacts(artifacts)
        .with_search(search, config.search.clone(), embedder)
        .with_rules(config.rerank.clone())
        .with_ranking(config.rank.clone(), FeatureLog::in_data_dir(&config.data_dir));
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&config.server.listen)
            .await
            .with_context(|| format!("listening on {}", config.server.listen))?;
        let address = listener.local_addr()?;
        println!("souk: listening on http://{address}");
        std::io::stdout().flush()?;
        tracing::info!(%address, data_dir = %config.data_dir.display(), "serving");
        tokio::spawn(souk_server::train_api::online_loop(state.clone(), std::time::Duration::from_secs(5)));
        if config.recommend.retrain_seconds > 0 {
            tokio::spawn(souk_server::train_api::retrain_loop(
                state.clone(),
                std::time::Duration::from_secs(config.recommend.retrain_seconds),
            ));
        }
        souk_server::serve(listener, state, shutdown_signal()).await.context("serving HTTP")?;
        tracing::info!("stopped");
        anyhow::Ok(())
    })
}

/// Open the search index of the data directory, reconciling it with the catalog.
pub fn open_search(config: &Config, store: &dyn Storage) -> anyhow::Result<Arc<SearchIndex>> {
    SearchIndex::open(&config.data_dir.join("search"), config.search.clone(), store).context("opening the search index")
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {},
                    _ = terminate.recv() => {},
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

/// Milliseconds since the Unix epoch.
fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
