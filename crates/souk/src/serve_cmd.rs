//! `souk serve` and `souk demo`: the HTTP API over the data directory (the demo first fills
//! an empty one with a generated shop and trains it).

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use souk_engine::gen::{GenConfig, Generator};
use souk_engine::search::{SearchIndex, TextEmbedder};
use souk_engine::serving::SearchOpener;
use souk_engine::store::DataDir;
use souk_engine::store::{Storage, StoreSink};

use crate::config::Config;
use crate::embed_cmd::load_embedder;
use crate::shared::{generate, open_search, open_shop, open_store, saved_models, write_ground_truth};

#[derive(Debug, Args)]
pub struct DemoSize {
    /// Catalog items of the generated shop.
    #[arg(long, default_value_t = 2_000)]
    pub items: usize,
    /// Shoppers of the generated shop.
    #[arg(long, default_value_t = 500)]
    pub users: usize,
    /// Events of the generated shop.
    #[arg(long, default_value_t = 50_000)]
    pub events: usize,
    /// Random seed (the same seed gives the same data and figures).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// Serve the data directory; with `demo`, first fill an empty data directory with a
/// generated shop. With `fetch_model` and no configured embedding model, fetch the default
/// one (see [`crate::model_fetch`]).
pub fn serve(config: &Config, demo: Option<&DemoSize>, fetch_model: bool) -> anyhow::Result<()> {
    refuse_open_access(config)?;
    let store = open_store(config)?;
    if let Some(size) = demo {
        fill_demo_shop(config, store.as_ref(), size)?;
    }
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    // The search index is derived data that its open may write: on a full disk the server
    // starts without it (search answers 503 `search_unavailable`) rather than not at all,
    // and searches try the open again every SEARCH_RETRY until it succeeds.
    let search = match open_search(config, store.as_ref()) {
        Err(e) if e.chain().any(|c| c.downcast_ref::<souk_engine::Error>().is_some_and(is_disk_full)) => {
            tracing::warn!(error = %format!("{e:#}"), "the disk is full: serving without the search index until it can open");
            None
        }
        other => Some(other?),
    };
    let search_opener: SearchOpener = {
        let (store, dir, settings) = (store.clone(), DataDir::new(&config.data_dir).search(), config.search.clone());
        Box::new(move || SearchIndex::open(&dir, settings.clone(), store.as_ref()))
    };
    let mut embed = config.embed.clone();
    let mut fetched = false;
    if embed.model_path.is_empty() && fetch_model && search.is_some() {
        if let Some(path) = crate::model_fetch::default_model() {
            embed.model_path = path.to_string_lossy().into_owned();
            fetched = true;
        }
    }
    let embedder = match load_embedder(&embed) {
        // A cached model that does not load must not keep the shop from serving.
        Err(e) if fetched => {
            eprintln!(
                "souk: semantic search is off: the cached model {} does not load ({e:#}); delete it to fetch it again",
                embed.model_path
            );
            None
        }
        other => other?,
    };
    if let (Some(embedder), Some(search)) = (&embedder, &search) {
        embed_in_background(search, &store, embedder, config.embed.batch_size);
    }
    let models = saved_models(config)?;
    let shop = open_shop(config, store, config.recommend.clone(), models);
    let shop = match search {
        Some(search) => shop.with_search(search, embedder),
        None => shop.with_search_opener(search_opener, embedder, SEARCH_RETRY),
    };
    // A replica serves the generation the trainer published, not an older one of its own.
    if let Err(e) = shop.adopt_shared_models() {
        tracing::warn!(error = %e, "the shared model generation could not be loaded; serving the local one");
    }
    let mut score_reviews_later = false;
    if demo.is_some() && shop.models().is_none() {
        eprintln!("souk: training the demo shop's recommendation models");
        // The same training as `souk train`: without logged traffic no ranker is trained
        // yet, but the feature context is, so pages start logging feature rows. The review
        // texts wait for a second training, in the background once the shop serves.
        shop.train_quick().context("training")?;
        score_reviews_later = shop.has_embedder();
    }
    match shop.models() {
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
    let state = souk_server::AppState::new(shop, config.server.clone()).with_auth(&config.auth);
    if !config.store.url.is_empty() {
        let shop = state.shop.clone();
        std::thread::Builder::new()
            .name("souk-follow".into())
            .spawn(move || follow_shared_store(&shop))
            .context("starting the store follower")?;
    }
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&config.server.listen)
            .await
            .with_context(|| format!("listening on {}", config.server.listen))?;
        let address = listener.local_addr()?;
        println!("souk: listening on http://{address}");
        std::io::stdout().flush()?;
        tracing::info!(%address, data_dir = %config.data_dir.display(), "serving");
        if score_reviews_later {
            if let Err(e) = state.shop.train_in_background() {
                tracing::warn!(error = %e, "the demo's second training (review texts) did not start");
            }
        }
        tokio::spawn(souk_server::train_api::online_loop(state.clone(), std::time::Duration::from_secs(5)));
        tokio::spawn(souk_server::train_api::erasure_loop(state.clone(), ERASURE_CHECK));
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

/// A replica over a shared store: apply what other replicas write, woken by the store's
/// notifications and looking at least once per [`FOLLOW_WAIT`] (a lost notification then
/// costs at most that much delay). Runs for the life of the process.
fn follow_shared_store(shop: &souk_engine::serving::Shop) {
    loop {
        if let Err(e) = shop.follow_store_after(FOLLOW_WAIT) {
            tracing::warn!(error = %e, "following the shared store failed; trying again");
            std::thread::sleep(FOLLOW_WAIT);
        }
    }
}

/// The longest a replica goes without looking at the shared store.
const FOLLOW_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// How often searches try to open a search index that could not open at start.
const SEARCH_RETRY: std::time::Duration = std::time::Duration::from_secs(10);

/// How often the server looks for an erasure still on disk: it compacts the event log at once
/// (erased events leave it within this plus one compaction, a pass over the log) and trains
/// when a stored model generation may hold the user (they leave it within this plus one
/// training).
const ERASURE_CHECK: std::time::Duration = std::time::Duration::from_secs(10);

/// A server reachable from other machines must not let anyone in: without a master key it
/// listens on the loopback address only.
fn refuse_open_access(config: &Config) -> anyhow::Result<()> {
    let address: std::net::SocketAddr =
        config.server.listen.parse().with_context(|| format!("server.listen {:?}", config.server.listen))?;
    if address.ip().is_loopback() && config.auth.master_key.is_none() {
        tracing::warn!(%address, "no master key: every route is open to whoever can reach this address (this machine only)");
    }
    if !address.ip().is_loopback() && config.auth.master_key.is_none() {
        return Err(crate::ConfigProblems(vec![crate::config::Problem {
            key: "auth.master_key".into(),
            message: format!(
                "refusing to listen on {address} without a master key: anyone who can reach it could erase users and retrain; set SOUK_MASTER_KEY (or [auth] master_key), or listen on 127.0.0.1"
            ),
        }])
        .into());
    }
    Ok(())
}

/// Generate the demo shop into an empty data directory (a filled one is served as it is).
fn fill_demo_shop(config: &Config, store: &dyn Storage, size: &DemoSize) -> anyhow::Result<()> {
    let stats = store.stats()?;
    if stats.events == 0 && stats.catalog_items == 0 {
        eprintln!(
            "souk: building a demo shop ({} items, {} users, {} events, seed {}) in {}",
            size.items,
            size.users,
            size.events,
            size.seed,
            config.data_dir.display()
        );
        let generator =
            Generator::new(GenConfig { items: size.items, users: size.users, events: size.events, seed: size.seed })?;
        let mut sink = StoreSink::new(store);
        generate(&generator, size.events, &mut sink, false)?;
        sink.finish()?;
        write_ground_truth(&generator, &DataDir::new(&config.data_dir).ground_truth())?;
    } else {
        eprintln!("souk: the data directory already holds a shop; serving it as it is");
    }
    Ok(())
}

/// Embed what is missing in the background: keyword search serves meanwhile.
fn embed_in_background(
    search: &Arc<SearchIndex>,
    store: &Arc<dyn Storage>,
    embedder: &Arc<dyn TextEmbedder>,
    batch: usize,
) {
    let (search, store, embedder) = (search.clone(), store.clone(), embedder.clone());
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

/// Whether `error` says the disk is full.
fn is_disk_full(error: &souk_engine::Error) -> bool {
    matches!(error, souk_engine::Error::Io(e) if matches!(e.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded))
}
