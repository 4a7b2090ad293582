//! How a shop learns: a training (every model, both rankers, a new generation) swapped in
//! whole while the old set keeps serving, and the online click model taught the pages whose
//! click window closed.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use super::Shop;
use crate::error::{Error, Result};
use crate::rank::ranker::{GateMeasure, RankerReport};
use crate::serving::background;
use crate::serving::jobs::{Job, JobHandle, JobKind};
use crate::serving::page_log::now_ms;
use crate::serving::training::{self, ReviewTexts, Trained, Training};
use crate::serving::ModelSet;
use crate::serving::ModelSetManifest;

/// Rounds of online learning between saves of the online click model.
const ONLINE_SAVE_EVERY: usize = 10;

/// What a training produced.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    /// The saved generation's name (`None`: kept in memory only).
    pub generation: Option<String>,
    pub manifest: ModelSetManifest,
    pub ranker: Option<RankerReport>,
    pub search_ranker: Option<RankerReport>,
}

impl Shop {
    /// Train every model and both rankers, save the generation and serve it, as a `train`
    /// job. One training at a time: a second one while the first runs is refused
    /// (`training_in_progress`).
    pub fn train(&self) -> Result<TrainReport> {
        let job = self.queue_training()?;
        self.run_training(job, true)
    }

    /// [`Shop::train`] that leaves the review texts for the next training (they cost a run
    /// of the sentence encoder each): for a first training someone is waiting on.
    pub fn train_quick(&self) -> Result<TrainReport> {
        let job = self.queue_training()?;
        self.run_training(job, false)
    }

    /// [`Shop::train`] beside serving: the training's threads run at a lower CPU priority
    /// (`serving::background`), so requests keep their latency while it runs.
    pub fn train_beside_serving(&self) -> Result<TrainReport> {
        let job = self.queue_training()?;
        background::beside_serving("souk-train", || self.run_training(job, true))?
    }

    /// Queue a training and run it beside serving on threads of its own (see
    /// [`Shop::train_beside_serving`]); returns the job to follow (`jobs()`). Refused like
    /// [`Shop::train`] while one is queued or running.
    pub fn train_in_background(self: &Arc<Self>) -> Result<Job> {
        let job = self.queue_training()?;
        let id = job.id().to_string();
        let shop = self.clone();
        std::thread::Builder::new()
            .name("souk-train-job".into())
            .spawn(move || {
                let outcome = background::beside_serving("souk-train", || shop.run_training(job, true));
                if let Err(e) = outcome.and_then(|trained| trained) {
                    tracing::warn!(error = %e, "background training failed");
                }
            })
            .map_err(|e| Error::Internal(format!("starting the training thread: {e}")))?;
        self.jobs.get(&id).ok_or_else(|| Error::Internal("a queued job vanished".into()))
    }

    fn queue_training(&self) -> Result<JobHandle> {
        self.jobs.queue(JobKind::Train, true, "waiting to start").ok_or_else(in_progress)
    }

    fn run_training(&self, job: JobHandle, score_reviews: bool) -> Result<TrainReport> {
        let Some(_guard) = self.training.try_lock() else {
            job.fail("a training is already running");
            return Err(in_progress());
        };
        // Over a shared store, one process of all trains at a time.
        let _lease = match self.store.shared_models() {
            Some(shared) => match shared.training_lease() {
                Ok(Some(lease)) => Some(lease),
                Ok(None) => {
                    job.fail("another process sharing the store is training");
                    return Err(in_progress_elsewhere());
                }
                Err(e) => {
                    job.fail(e.to_string());
                    return Err(e);
                }
            },
            None => None,
        };
        job.start("starting");
        match self.train_now(&job, score_reviews) {
            Ok(report) => {
                job.done(describe_report(&report));
                Ok(report)
            }
            Err(e) => {
                job.fail(e.to_string());
                Err(e)
            }
        }
    }

    fn train_now(&self, job: &JobHandle, score_reviews: bool) -> Result<TrainReport> {
        // Read before the store is: an erasure after this point waits for the next training.
        let erasure = self.artifacts.as_ref().and_then(|a| a.erasure_token());
        let serving = self.models();
        let settings = &self.settings;
        // Content vectors afresh (frequencies over today's catalog, the embedder's layout),
        // built beside the serving ones.
        self.content.rebuild(self.store(), self.text_space().as_deref())?;
        let content = |ids: &[String]| self.content_rows(ids);
        let configured_head = self.sentiment_head()?;
        let embed = |texts: &[&str]| match &self.embedder {
            // As classifier features E5 wants its "query: " form (its authors' advice).
            Some(embedder) => embedder.embed(texts, true),
            None => Ok(Vec::new()),
        };
        let reviews = self.embedder.as_ref().filter(|_| score_reviews).map(|embedder| ReviewTexts {
            encoder: embedder.id(),
            embed: &embed,
            head: configured_head.as_ref(),
            budget: settings.ranking.review_texts_per_training,
        });
        let training = Training {
            reviews: reviews.as_ref(),
            content: Some(&content),
            config: &settings.recommend,
            weights: &settings.weights,
            rank: &settings.ranking,
            log: self.logs.as_ref().map(|l| l.recommendations.as_ref()),
            search_log: self.logs.as_ref().map(|l| l.search.as_ref()),
            serving: serving.as_deref(),
            artifacts: self.artifacts.as_ref(),
            now_ms: now_ms(),
            progress: &|share, step| job.progress(share, step),
        };
        let Trained { set, generation, ranker, search_ranker } = training::train(self.store(), &training)?;
        let report = TrainReport { generation, manifest: set.manifest.clone(), ranker, search_ranker };
        if let Some(search) = self.search.current() {
            search.set_popularity(popularity_of(&set));
        }
        self.swap_in(set);
        tracing::info!(generation = report.generation.as_deref().unwrap_or("in-memory"), "model set swapped");
        if let (Some(artifacts), Some(_)) = (&self.artifacts, &report.generation) {
            artifacts.finish_erasure(erasure).map_err(|e| crate::store::refused_write(e, "the erasure"))?;
            if let (Some(shared), Some(generation)) = (self.store.shared_models(), artifacts.current()?) {
                shared.publish(&generation)?;
            }
        }
        Ok(report)
    }

    /// The configured review-sentiment head (`rank.sentiment_head`), if any.
    fn sentiment_head(&self) -> Result<Option<crate::rank::sentiment::SentimentHead>> {
        let path = &self.settings.ranking.sentiment_head;
        if path.is_empty() {
            return Ok(None);
        }
        let file = std::fs::File::open(path)
            .map_err(|e| Error::Internal(format!("rank.sentiment_head: cannot open {path}: {e}")))?;
        serde_json::from_reader(std::io::BufReader::new(file))
            .map(Some)
            .map_err(|e| Error::Internal(format!("rank.sentiment_head: {path} is not a sentiment head: {e}")))
    }

    /// Remove erased users' events from the event log on disk now, while serving (the
    /// store's compaction); `None` when none waited, or when none may start now.
    ///
    /// No compaction starts while the store reports refused writes (a full or failing
    /// disk, `/health` `degraded`): it writes a copy of the whole log, which such a disk
    /// would refuse as well, and the room it takes is the room writes wait for. The erased
    /// events stay on disk (never served) until a write succeeds again.
    pub fn compact_erased_events(&self) -> Result<Option<crate::store::compact::CompactReport>> {
        if let Some(reason) = self.store().writes_refused() {
            tracing::info!(%reason, "no compaction while writes are refused");
            return Ok(None);
        }
        self.store().compact_erased()
    }

    /// Whether a stored model generation may still hold an erased user: the next
    /// [`Shop::train`] removes it (the server trains for it at once).
    pub fn erasure_pending(&self) -> bool {
        self.artifacts.as_ref().is_some_and(|a| a.erasure_token().is_some())
    }

    /// Every job of the shop still remembered, newest first.
    pub fn jobs(&self) -> Vec<Job> {
        self.jobs.list()
    }

    pub fn job(&self, id: &str) -> Result<Job> {
        self.jobs.get(id).ok_or_else(|| Error::not_found("job", id))
    }

    /// Whether events arrived since the serving set was trained (or there is none yet and
    /// there are events).
    pub fn has_untrained_events(&self) -> Result<bool> {
        let events = self.store().event_count()?;
        let trained_on = self.models().map(|m| m.manifest.events);
        Ok(events > 0 && trained_on != Some(events))
    }

    /// Teach the online click model the pages whose click window closed by now, and save
    /// it every [`ONLINE_SAVE_EVERY`] rounds that learned something (and once it goes
    /// quiet). Returns how many examples (shown items) it learned from.
    pub fn learn_online(&self) -> Result<usize> {
        // The feature logs' age limit holds also while no page is logged.
        if let Some(logs) = &self.logs {
            logs.recommendations.prune_if_due()?;
            logs.search.prune_if_due()?;
        }
        let Some(online) = self.online() else {
            return Ok(0);
        };
        let learned = online.model.flush(now_ms());
        let mut unsaved = online.unsaved.lock();
        if learned > 0 {
            *unsaved += 1;
        }
        if *unsaved >= ONLINE_SAVE_EVERY || (*unsaved > 0 && learned == 0) {
            online.model.save(&online.path)?;
            *unsaved = 0;
        }
        Ok(learned)
    }
}

/// Popularity for search (sort and ties) from a trained model set: users per item on a
/// log scale, the most popular item at 1.
pub(super) fn popularity_of(set: &ModelSet) -> HashMap<Arc<str>, f32> {
    let max = set.popularity.iter().copied().fold(0f32, f32::max);
    let scale = (1.0 + max).ln().max(f32::MIN_POSITIVE);
    set.item_ids.iter().zip(&set.popularity).map(|(id, p)| (Arc::from(id.as_str()), (1.0 + p).ln() / scale)).collect()
}

fn in_progress() -> Error {
    Error::Coded { code: "training_in_progress", message: "a training is already running".into() }
}

fn in_progress_elsewhere() -> Error {
    Error::Coded {
        code: "training_in_progress",
        message: "another process sharing the store is training; its generation reaches this one when published".into(),
    }
}

/// A finished training in one line: the generation, what it learned from, the rankers.
fn describe_report(report: &TrainReport) -> String {
    let m = &report.manifest;
    let mut text = format!(
        "{}: {} models on {} events ({} users, {} items)",
        report.generation.as_deref().unwrap_or("in memory"),
        m.models.len() + 1,
        m.events,
        m.users,
        m.items
    );
    for (name, ranker) in [("ranker", &report.ranker), ("search ranker", &report.search_ranker)] {
        if let Some(r) = ranker {
            let verdict = if r.promoted { "promoted" } else { "kept the current order" };
            let measure = match r.gate_measure {
                GateMeasure::IpwDcg => "examination-weighted DCG@10",
                GateMeasure::Ndcg => "NDCG@10",
            };
            text.push_str(&format!(
                "; {name} ({}) {measure} {:.3} vs shown {:.3}, {verdict}",
                r.learner.name(),
                r.gate_model,
                r.gate_logged
            ));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::gen::{GenConfig, Generator};
    use crate::ids::UserId;
    use crate::serving::ShopSettings;
    use crate::store::artifacts::ArtifactStore;
    use crate::store::{DataDir, EmbeddedStore, StoreConfig, StoreSink};

    /// Every file under `dir` whose bytes contain `needle`.
    fn files_containing(dir: &Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
        let mut found = Vec::new();
        for entry in fs_err::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                found.extend(files_containing(&path, needle));
            } else if fs_err::read(&path).unwrap().windows(needle.len()).any(|w| w == needle) {
                found.push(path);
            }
        }
        found
    }

    #[test]
    fn an_erased_user_leaves_every_model_generation_at_the_next_training_and_the_log_at_the_next_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), &StoreConfig::default()).unwrap();
        let generator = Generator::new(GenConfig { items: 120, users: 40, events: 2_500, seed: 3 }).unwrap();
        let mut sink = StoreSink::new(&store);
        generator.run(&mut sink, &mut |_| {}).unwrap();
        sink.finish().unwrap();
        let shop = Shop::new(Arc::new(store), ShopSettings::default()).with_artifacts(ArtifactStore::new(dir.path()));
        shop.train().unwrap();
        shop.train().unwrap();
        let models = DataDir::new(dir.path()).models();
        let user = UserId::parse("u000005", "user").unwrap();
        let needle = user.as_str().as_bytes();
        assert_eq!(files_containing(&models, needle).len(), 2, "both kept generations hold the user");
        assert!(!shop.erasure_pending());

        shop.erase_user(&user).unwrap();
        assert!(shop.erasure_pending());
        assert_eq!(files_containing(&models, needle).len(), 2, "until the next training");
        shop.train().unwrap();
        assert_eq!(files_containing(&models, needle), Vec::<std::path::PathBuf>::new());
        assert!(!shop.erasure_pending());
        // The event log drops the user's events while the shop serves: then no byte of the
        // user's id is left anywhere in the data directory, without a restart.
        assert!(!files_containing(dir.path(), needle).is_empty(), "the log still holds the erased events");
        assert!(shop.compact_erased_events().unwrap().is_some_and(|report| report.removed_events > 0));
        assert_eq!(files_containing(dir.path(), needle), Vec::<std::path::PathBuf>::new());
        assert_eq!(shop.compact_erased_events().unwrap(), None);
        // Another user is still in the live generation.
        assert_eq!(files_containing(&models, b"u000006").len(), 1);
    }
}
