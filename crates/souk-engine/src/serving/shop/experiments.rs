//! A shop's experiments: their lifecycle (draft → running → stopped, each change stored
//! before it takes effect), which arm serves a user, and reports.

use serde_json::Value;

use super::Shop;
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::serving::experiment::{ArmSpec, Experiment, ExperimentState, ExperimentSurface};
use crate::serving::experiment_report::{self, ExperimentReport};
use crate::serving::page_log::now_ms;
use crate::store::Storage;

/// An experiment's arm serving one page.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub experiment: String,
    pub arm: ArmSpec,
}

/// Every stored experiment (a document that does not parse is reported, not dropped).
pub(super) fn load(store: &dyn Storage) -> Result<Vec<Experiment>> {
    store
        .experiments()?
        .into_iter()
        .map(|(id, doc)| {
            serde_json::from_str(&doc)
                .map_err(|e| Error::Internal(format!("stored experiment {id:?} is unreadable: {e}")))
        })
        .collect()
}

fn coded(code: &'static str, message: String) -> Error {
    Error::Coded { code, message }
}

impl Shop {
    /// Create (or, while it is a draft, replace) an experiment from its JSON definition.
    pub fn create_experiment(&self, definition: &Value) -> Result<Experiment> {
        let experiment = Experiment::parse(definition, now_ms())?;
        if experiment.surface == ExperimentSurface::Similar {
            return Err(Error::Invalid(crate::ValidationError::new(
                "invalid_experiment",
                "surface",
                "similar pages have no pipeline stage an arm could change yet; use recommendations or search",
            )));
        }
        let mut experiments = self.experiments.write();
        if let Some(existing) = experiments.iter().find(|e| e.id == experiment.id) {
            if existing.state != ExperimentState::Draft {
                return Err(coded(
                    "experiment_exists",
                    format!("experiment {:?} has started; create a new one to change its arms", experiment.id),
                ));
            }
        }
        self.save(&experiment)?;
        experiments.retain(|e| e.id != experiment.id);
        experiments.push(experiment.clone());
        Ok(experiment)
    }

    /// Start a draft; refused while another experiment runs on its surface.
    pub fn start_experiment(&self, id: &str) -> Result<Experiment> {
        let mut experiments = self.experiments.write();
        let current = experiments.iter().find(|e| e.id == id).ok_or_else(|| Error::not_found("experiment", id))?;
        if current.state != ExperimentState::Draft {
            return Err(coded("experiment_state", format!("experiment {id:?} is {:?}, not a draft", current.state)));
        }
        if let Some(other) =
            experiments.iter().find(|e| e.state == ExperimentState::Running && e.surface == current.surface)
        {
            return Err(coded(
                "experiment_conflict",
                format!("experiment {:?} already runs on {}; stop it first", other.id, other.surface.as_str()),
            ));
        }
        let mut started = current.clone();
        started.state = ExperimentState::Running;
        started.started_at = Some(now_ms());
        self.save(&started)?;
        replace(&mut experiments, started.clone());
        Ok(started)
    }

    /// Stop a running experiment (its report stays).
    pub fn stop_experiment(&self, id: &str) -> Result<Experiment> {
        let mut experiments = self.experiments.write();
        let current = experiments.iter().find(|e| e.id == id).ok_or_else(|| Error::not_found("experiment", id))?;
        if current.state != ExperimentState::Running {
            return Err(coded("experiment_state", format!("experiment {id:?} is {:?}, not running", current.state)));
        }
        let mut stopped = current.clone();
        stopped.state = ExperimentState::Stopped;
        stopped.stopped_at = Some(now_ms());
        self.save(&stopped)?;
        replace(&mut experiments, stopped.clone());
        Ok(stopped)
    }

    /// Every experiment, by id.
    pub fn experiments(&self) -> Vec<Experiment> {
        let mut all = self.experiments.read().clone();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    pub fn experiment(&self, id: &str) -> Result<Experiment> {
        self.experiments.read().iter().find(|e| e.id == id).cloned().ok_or_else(|| Error::not_found("experiment", id))
    }

    /// An experiment's report as of now.
    pub fn experiment_report(&self, id: &str) -> Result<ExperimentReport> {
        let experiment = self.experiment(id)?;
        experiment_report::report(&experiment, self.store())
    }

    /// The arm that serves `user` on `surface`, when an experiment runs there.
    pub(super) fn assignment(&self, surface: ExperimentSurface, user: &UserId) -> Option<Assignment> {
        let experiments = self.experiments.read();
        let running = experiments.iter().find(|e| e.state == ExperimentState::Running && e.surface == surface)?;
        Some(Assignment { experiment: running.id.clone(), arm: running.assign(user).clone() })
    }

    fn save(&self, experiment: &Experiment) -> Result<()> {
        let doc =
            serde_json::to_string(experiment).map_err(|e| Error::Internal(format!("encoding an experiment: {e}")))?;
        self.store().put_experiment(&experiment.id, &doc)
    }
}

fn replace(experiments: &mut [Experiment], experiment: Experiment) {
    if let Some(slot) = experiments.iter_mut().find(|e| e.id == experiment.id) {
        *slot = experiment;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::gen::{GenConfig, Generator};
    use crate::model::{Event, EventType};
    use crate::rank::ranker::FeatureLog;
    use crate::recommend::SourceKind;
    use crate::serving::shop::RecommendAsk;
    use crate::serving::ShopSettings;
    use crate::store::{EmbeddedStore, StoreConfig, StoreSink};
    use crate::{EventId, ItemId};

    fn open(dir: &std::path::Path) -> Shop {
        let store = EmbeddedStore::open(dir, &StoreConfig::default()).unwrap();
        // Every page logged (none shuffled), so every page's impression tells what it showed.
        let ranking = crate::rank::ranker::RankConfig { log_share: 1.0, explore_share: 0.0, ..Default::default() };
        Shop::new(Arc::new(store), ShopSettings { ranking, ..ShopSettings::default() })
            .with_page_log(FeatureLog::in_data_dir(dir))
    }

    fn user(u: usize) -> UserId {
        UserId::parse(format!("u{u:06}"), "user").unwrap()
    }

    fn wait_for_exposures(shop: &Shop, count: u64) {
        for _ in 0..2_000 {
            if shop.page_log_stats().exposures.load(Ordering::Relaxed) >= count {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        panic!("exposures were not written");
    }

    #[test]
    fn an_experiment_lives_across_a_restart_serves_its_arms_and_reports_what_they_did() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = EmbeddedStore::open(dir.path(), &StoreConfig::default()).unwrap();
            let generator = Generator::new(GenConfig { items: 120, users: 60, events: 3_000, seed: 4 }).unwrap();
            let mut sink = StoreSink::new(&store);
            generator.run(&mut sink, &mut |_| {}).unwrap();
            sink.finish().unwrap();
        }
        let definition = json!({"id": "no-knn", "surface": "recommendations",
            "arms": [{"name": "control"}, {"name": "popular", "sources": {"als": 0, "itemknn": 0, "session": 0, "content": 0, "demographic": 0, "preferences": 0}}]});
        {
            let shop = open(dir.path());
            shop.train().unwrap();
            let draft = shop.create_experiment(&definition).unwrap();
            assert_eq!(draft.state, ExperimentState::Draft);
            // A draft may be replaced; a started one may not.
            shop.create_experiment(&definition).unwrap();
            shop.start_experiment("no-knn").unwrap();
            let Err(Error::Coded { code, .. }) = shop.create_experiment(&definition) else { panic!("changed arms") };
            assert_eq!(code, "experiment_exists");
            let other = json!({"id": "second", "surface": "recommendations", "arms": [{"name": "a"}, {"name": "b"}]});
            shop.create_experiment(&other).unwrap();
            let Err(Error::Coded { code, .. }) = shop.start_experiment("second") else { panic!("two on one surface") };
            assert_eq!(code, "experiment_conflict");
            let Err(Error::NotFound { .. }) = shop.start_experiment("nope") else { panic!("unknown experiment") };
        }
        // After a restart it still runs, and each user's arm serves their pages.
        let shop = open(dir.path());
        assert_eq!(shop.experiment("no-knn").unwrap().state, ExperimentState::Running);
        shop.train().unwrap();
        let mut pages = Vec::new();
        for u in 0..60 {
            let page = shop.recommend(RecommendAsk::new(user(u), 5)).unwrap();
            let assignment = page.experiment.clone().expect("served under the experiment");
            assert_eq!(assignment.experiment, "no-knn");
            if assignment.arm.name == "popular" {
                assert!(
                    page.items.iter().all(|i| i.reasons.iter().all(|r| r.source == SourceKind::Popularity)),
                    "{page:?}"
                );
            }
            pages.push((u, assignment.arm.name.clone(), page));
        }
        wait_for_exposures(&shop, 60);
        // Control users click their first item, and every second one buys it; in the other
        // arm nobody clicks and every fifth user buys (counted within each arm, so the rates
        // hold whichever users the experiment's salt put in each arm).
        let now = crate::serving::page_log::now_ms();
        let mut events = Vec::new();
        let mut revenue = [0.0f64, 0.0];
        let mut seen_in_arm = [0usize, 0];
        for (u, arm, page) in &pages {
            let control = arm == "control";
            let k = seen_in_arm[usize::from(!control)];
            seen_in_arm[usize::from(!control)] += 1;
            let item = ItemId::parse(page.items[0].id.as_str(), "item").unwrap();
            if control {
                let mut click = Event::new(
                    EventId::parse(format!("c{u}"), "id").unwrap(),
                    EventType::Click,
                    user(*u),
                    Some(item.clone()),
                    now,
                );
                click.request_id = Some(page.request_id.clone());
                events.push(click);
            }
            if (control && k.is_multiple_of(2)) || (!control && k.is_multiple_of(5)) {
                let mut purchase = Event::new(
                    EventId::parse(format!("p{u}"), "id").unwrap(),
                    EventType::Purchase,
                    user(*u),
                    Some(item),
                    now + 1,
                );
                purchase.price = Some(10.0);
                purchase.quantity = Some(2);
                events.push(purchase);
                revenue[usize::from(!control)] += 20.0;
            }
        }
        shop.ingest(events).unwrap();
        let report = shop.experiment_report("no-knn").unwrap();
        let control = pages.iter().filter(|(_, arm, _)| arm == "control").count();
        assert_eq!(report.arms[0].users, control);
        assert_eq!(report.arms[0].users + report.arms[1].users, 60);
        assert_eq!(report.arms[0].exposures + report.arms[1].exposures, 60);
        assert_eq!(report.arms[0].metrics["ctr"].value, 1.0);
        assert_eq!(report.arms[1].metrics["ctr"].value, 0.0);
        let treated = 60 - control;
        let per_user = report.arms[0].metrics["revenue_per_user"].value;
        assert!((per_user - revenue[0] / control as f64).abs() < 1e-9, "{per_user}");
        let per_user = report.arms[1].metrics["revenue_per_user"].value;
        assert!((per_user - revenue[1] / treated as f64).abs() < 1e-9, "{per_user}");
        let conversion = report.comparisons.iter().find(|c| c.metric == "conversion").unwrap();
        assert_eq!(conversion.arm, "popular");
        assert!(conversion.difference < 0.0 && conversion.chance_to_beat_control < 0.1, "{conversion:?}");
        assert!(conversion.p_value_adjusted >= conversion.p_value);
        assert!(!report.srm.flagged, "{:?}", report.srm);
        assert!(report.warnings.iter().any(|w| w.contains("fewer than 100")), "{:?}", report.warnings);
        // What each arm showed: everyone in the popular arm saw the same few items.
        let (shown, popular) = (&report.arms[0].exposure, &report.arms[1].exposure);
        assert_eq!(shown.shows as usize, 5 * control, "{shown:?}");
        assert_eq!(popular.shows as usize, 5 * treated, "{popular:?}");
        assert!(popular.coverage < shown.coverage, "{popular:?} vs {shown:?}");
        assert!(popular.tail_share <= shown.tail_share, "{popular:?} vs {shown:?}");
        assert!(shown.calibrated_users > 0 && shown.miscalibration.is_some());
        // Stopped, it serves the shop's pipeline again; erasing a user erases their exposures.
        shop.stop_experiment("no-knn").unwrap();
        assert!(shop.recommend(RecommendAsk::new(user(1), 5)).unwrap().experiment.is_none());
        let Err(Error::Coded { code, .. }) = shop.stop_experiment("no-knn") else { panic!("stopped twice") };
        assert_eq!(code, "experiment_state");
        shop.store().erase_user(&user(0)).unwrap();
        let report = shop.experiment_report("no-knn").unwrap();
        assert_eq!(report.arms[0].users + report.arms[1].users, 59);
    }
}
