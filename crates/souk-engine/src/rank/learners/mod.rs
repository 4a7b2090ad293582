//! The ranker's learners, trained on the same logged feature rows and judged on the same
//! later window ([`super::ranker`]'s promotion gate): LambdaMART ([`super::gbdt`], the
//! default), FTRL-Proximal logistic regression over bucketed features ([`ftrl_ranker`]) and
//! a small neural network trained on candle ([`mlp`]). A challenger serves only when it
//! beats LambdaMART on that window.
//!
//! - [`scale`]: per-feature scaling, missing flags and quantile buckets, stored with a model.
//! - [`RankModel`]: whichever learner won — scoring, per-feature explanations, and the
//!   artifact (the first artifact's name says which learner wrote the file; LambdaMART's
//!   files are the ones written before challengers existed).

pub mod ftrl_ranker;
pub mod mlp;
pub mod scale;

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

pub use self::ftrl_ranker::{FtrlRanker, FtrlRankerParams};
pub use self::mlp::{MlpParams, MlpRanker};
use crate::rank::gbdt::{self, Dataset, GbdtModel, GbdtParams};
use crate::recommend::artifact::{corrupt_artifact, Artifact};
use crate::Result;

/// A learner of the ranker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Learner {
    /// Gradient-boosted trees with the LambdaRank objective.
    #[default]
    LambdaMart,
    /// FTRL-Proximal logistic regression.
    Ftrl,
    /// A multilayer perceptron.
    Mlp,
}

impl Learner {
    pub fn name(self) -> &'static str {
        match self {
            Learner::LambdaMart => "lambdamart",
            Learner::Ftrl => "ftrl",
            Learner::Mlp => "mlp",
        }
    }
}

/// The `[rank.learners]` section: which learners challenge LambdaMART, and their settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LearnerSettings {
    /// Trained beside LambdaMART at every training; the best of them serves instead only
    /// when it beats LambdaMART on the later window. Empty: LambdaMART alone.
    pub challengers: Vec<Learner>,
    pub ftrl: FtrlRankerParams,
    pub mlp: MlpParams,
}

impl Default for LearnerSettings {
    fn default() -> Self {
        Self {
            challengers: vec![Learner::Ftrl, Learner::Mlp],
            ftrl: FtrlRankerParams::default(),
            mlp: MlpParams::default(),
        }
    }
}

impl LearnerSettings {
    /// Problems with these settings, each with its key below `learners.`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems: Vec<(String, String)> = self.ftrl.problems().into_iter().chain(self.mlp.problems()).collect();
        if self.challengers.contains(&Learner::LambdaMart) {
            problems.push((
                "challengers".into(),
                "lambdamart always trains; list only its challengers (\"ftrl\", \"mlp\")".into(),
            ));
        }
        problems.into_iter().map(|(key, message)| (format!("learners.{key}"), message)).collect()
    }
}

/// What the learners early-stop on: NDCG@10 over the validation requests, or with `weighted`
/// DCG@10 with each gain times its row's weight (see `GbdtParams::eval_weighted`).
pub(crate) fn validation_metric(valid: &Dataset, scores: &[f64], weighted: bool) -> f64 {
    let metric = if weighted { gbdt::mean_weighted_dcg(valid, scores, 10) } else { gbdt::mean_ndcg(valid, scores, 10) };
    metric.unwrap_or(0.0)
}

/// A trained ranking model of any learner.
#[derive(Debug, Clone)]
pub enum RankModel {
    Gbdt(GbdtModel),
    Ftrl(FtrlRanker),
    Mlp(MlpRanker),
}

impl RankModel {
    /// Train `learner` on `train`, early-stopped on `valid`.
    pub fn train(
        learner: Learner,
        gbdt_params: &GbdtParams,
        settings: &LearnerSettings,
        train: &Dataset,
        valid: Option<&Dataset>,
    ) -> Result<RankModel> {
        Ok(match learner {
            Learner::LambdaMart => RankModel::Gbdt(gbdt::train(gbdt_params, train, valid)?),
            Learner::Ftrl => {
                RankModel::Ftrl(FtrlRanker::train(&settings.ftrl, train, valid, gbdt_params.eval_weighted)?)
            }
            Learner::Mlp => RankModel::Mlp(MlpRanker::train(&settings.mlp, train, valid, gbdt_params.eval_weighted)?),
        })
    }

    pub fn learner(&self) -> Learner {
        match self {
            RankModel::Gbdt(_) => Learner::LambdaMart,
            RankModel::Ftrl(_) => Learner::Ftrl,
            RankModel::Mlp(_) => Learner::Mlp,
        }
    }

    /// The row's score: higher ranks first (only the order within a list means anything).
    pub fn predict(&self, row: &[f32]) -> f64 {
        match self {
            RankModel::Gbdt(model) => model.predict(row),
            RankModel::Ftrl(model) => model.predict(row),
            RankModel::Mlp(model) => model.predict(row),
        }
    }

    /// Per-feature contributions to the row's score, in feature order, then the part no
    /// feature accounts for: trees by Saabas's path attribution, FTRL exactly (its margin
    /// is a sum over features), the network by occlusion (see [`mlp`]).
    pub fn contributions(&self, row: &[f32]) -> Vec<f64> {
        match self {
            RankModel::Gbdt(model) => model.contributions(row),
            RankModel::Ftrl(model) => model.contributions(row),
            RankModel::Mlp(model) => model.contributions(row),
        }
    }

    /// Trees for LambdaMART, passes over the data for the others.
    pub fn size(&self) -> usize {
        match self {
            RankModel::Gbdt(model) => model.n_trees(),
            RankModel::Ftrl(model) => model.epochs() as usize,
            RankModel::Mlp(model) => model.epochs() as usize,
        }
    }

    pub fn n_features(&self) -> usize {
        match self {
            RankModel::Gbdt(model) => model.n_features(),
            RankModel::Ftrl(model) => model.n_features(),
            RankModel::Mlp(model) => model.n_features(),
        }
    }

    pub fn save(&self, writer: &mut dyn Write) -> Result<()> {
        match self {
            RankModel::Gbdt(model) => model.save(writer),
            RankModel::Ftrl(model) => model.save(writer),
            RankModel::Mlp(model) => model.save(writer),
        }
    }

    /// Read a model written by [`Self::save`] (or by [`GbdtModel::save`]).
    pub fn load(reader: &mut dyn Read) -> Result<RankModel> {
        let first = Artifact::read_from(reader)?;
        match first.name.as_str() {
            gbdt::MODEL_NAME => Ok(RankModel::Gbdt(GbdtModel::from_artifact(first)?)),
            ftrl_ranker::MODEL_NAME => Ok(RankModel::Ftrl(FtrlRanker::load_after(first, reader)?)),
            mlp::MODEL_NAME => Ok(RankModel::Mlp(MlpRanker::from_artifact(first)?)),
            other => Err(corrupt_artifact(format!("expected a ranking model, found {other:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rank::gbdt::synthetic::ranking_problem;
    use crate::rank::gbdt::{mean_ndcg, Dataset};

    fn ndcg(model: &RankModel, data: &Dataset) -> f64 {
        let scores: Vec<f64> = (0..data.n_rows()).map(|r| model.predict(data.row(r))).collect();
        mean_ndcg(data, &scores, 10).unwrap()
    }

    fn random_ndcg(data: &Dataset) -> f64 {
        let scores: Vec<f64> = (0..data.n_rows()).map(|r| ((r * 7919) % 1009) as f64).collect();
        mean_ndcg(data, &scores, 10).unwrap()
    }

    #[test]
    fn every_learner_learns_the_synthetic_ranking_problem_and_round_trips_its_artifact() {
        let train = ranking_problem(600, 20, 1);
        let valid = ranking_problem(150, 20, 2);
        let test = ranking_problem(300, 20, 3);
        let settings = LearnerSettings::default();
        let gbdt_params = GbdtParams { trees: 100, ..GbdtParams::default() };
        let baseline = random_ndcg(&test);
        let mut figures = Vec::new();
        for learner in [Learner::LambdaMart, Learner::Ftrl, Learner::Mlp] {
            let model = RankModel::train(learner, &gbdt_params, &settings, &train, Some(&valid)).unwrap();
            assert_eq!(model.learner(), learner);
            assert!(model.size() >= 1);
            let score = ndcg(&model, &test);
            figures.push((learner, score));
            // Saved and loaded, it scores every row identically.
            let mut bytes = Vec::new();
            model.save(&mut bytes).unwrap();
            let loaded = RankModel::load(&mut bytes.as_slice()).unwrap();
            assert_eq!(loaded.learner(), learner);
            for r in (0..test.n_rows()).step_by(97) {
                assert_eq!(loaded.predict(test.row(r)).to_bits(), model.predict(test.row(r)).to_bits());
            }
            // A damaged file is an error, not a panic.
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x40;
            assert!(RankModel::load(&mut bytes.as_slice()).is_err());
            // One contribution per feature, then the remainder.
            assert_eq!(model.contributions(test.row(0)).len(), test.n_features() + 1);
        }
        // Every learner orders the unseen groups far better than chance. When written:
        // random 0.377, LambdaMART 0.920, the network 0.854, FTRL 0.736.
        for (learner, score) in &figures {
            assert!(*score > baseline + 0.15, "{learner:?}: {score} vs random {baseline}; {figures:?}");
        }
    }

    #[test]
    fn ftrl_contributions_add_up_to_the_score() {
        let train = ranking_problem(300, 20, 4);
        let model =
            RankModel::train(Learner::Ftrl, &GbdtParams::default(), &LearnerSettings::default(), &train, None).unwrap();
        for r in [0, 17, 123, 4_000] {
            let row = train.row(r);
            let total: f64 = model.contributions(row).iter().sum();
            assert!((total - model.predict(row)).abs() < 1e-9, "{total} vs {}", model.predict(row));
        }
    }

    #[test]
    fn explanations_credit_the_features_relevance_depends_on() {
        use crate::rank::gbdt::synthetic::{RANKING_FEATURES, RELEVANT_RANKING_FEATURES};
        let train = ranking_problem(600, 20, 5);
        let valid = ranking_problem(150, 20, 6);
        let noise = ["noise_uniform_a", "noise_uniform_b", "noise_normal_a", "noise_normal_b"];
        for learner in [Learner::Ftrl, Learner::Mlp] {
            let model =
                RankModel::train(learner, &GbdtParams::default(), &LearnerSettings::default(), &train, Some(&valid))
                    .unwrap();
            // Mean absolute contribution per feature over 500 rows.
            let mut mean = vec![0.0; RANKING_FEATURES.len()];
            for r in 0..500 {
                for (f, c) in model.contributions(valid.row(r)).iter().take(RANKING_FEATURES.len()).enumerate() {
                    mean[f] += c.abs() / 500.0;
                }
            }
            let of = |names: &[&str]| -> f64 {
                names.iter().map(|n| mean[RANKING_FEATURES.iter().position(|f| f == n).unwrap()]).sum::<f64>()
                    / names.len() as f64
            };
            let strongest = ["threshold", "flipped_by_context"];
            assert!(RELEVANT_RANKING_FEATURES.contains(&strongest[0]));
            assert!(of(&strongest) > 3.0 * of(&noise), "{learner:?}: {mean:?}");
        }
    }

    #[test]
    fn settings_are_checked_with_their_keys() {
        let mut settings = LearnerSettings::default();
        settings.challengers.push(Learner::LambdaMart);
        settings.mlp.hidden = vec![];
        settings.ftrl.buckets = 1;
        let keys: Vec<String> = settings.problems().into_iter().map(|(k, _)| k).collect();
        assert!(keys.contains(&"learners.challengers".to_string()), "{keys:?}");
        assert!(keys.contains(&"learners.mlp.hidden".to_string()), "{keys:?}");
        assert!(keys.contains(&"learners.ftrl.buckets".to_string()), "{keys:?}");
        assert!(LearnerSettings::default().problems().is_empty());
    }
}
