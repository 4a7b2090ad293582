//! Ranking from logged impressions: the click model of learning to rank. Given what was
//! shown to whom, in which slot, and whether it was clicked, learn the probability that an
//! item shown in a slot is clicked, and judge that probability on later impressions.
//!
//! - [`features`]: the ranker's feature rows, one code path for training and serving.
//! - [`join`]: training sets from logs — impressions joined to clicks, carts and purchases;
//!   position bias from the randomised bucket.
//! - [`ftrl`]: FTRL-Proximal logistic regression over hashed sparse features, with its
//!   versioned artifact — the click model.
//! - [`gbdt`]: gradient-boosted trees — LambdaMART over dense features for ranking
//!   candidates, and binary log loss — with its versioned artifact.
//! - [`explore`]: exploration slots — Thompson sampling over Beta posteriors with a
//!   category prior, and the propensity of every pick.
//! - [`position_popularity`]: click rate per (item, slot) with a Beta prior — the baseline.
//! - [`metrics`]: AUC, log loss and calibration of click probabilities.
//! - [`online`]: the online click model — FTRL-Proximal updated from logged pages and their
//!   clicks as they arrive, whose prediction is the ranker's `online_ctr` feature.
//! - [`obd`]: the Open Bandit Dataset's csv files and the features drawn from them.
//! - [`open_bandit`]: the time-ordered evaluation protocol and its report.
//! - [`obd_policy`]: a target policy over an Open Bandit log, read from a csv file.
//! - [`off_policy`]: the `ope` protocol — IPW, SNIPW, DM and DR of a target policy on an
//!   Open Bandit log, with a cross-fitted reward model and bootstrap intervals.
//! - [`profile`]: user profiles (affinities, price band, funnel stage) for merchandisers and
//!   for the ranker's cross features.
//! - [`feature_log`]: the rows the ranker scored, logged per served page for training.
//! - [`learners`]: LambdaMART's challengers (FTRL, a small neural ranker) and the model of
//!   whichever serves.
//! - [`ranker`]: the learned ranker in serving — training from the shop's own impression
//!   logs and the feature log, and the promotion gate.
//! - [`search_ranking`]: the learned ranker's stage on the search page (feature rows from
//!   the search stages' scores, scored by the search ranker, kept for the feature log).
//! - [`simulate`]: the simulated-traffic protocol — logged traffic from a generated shop,
//!   a ranker learned from it, judged against the recall sources on a later window.
//! - [`sentiment`]: review sentiment from text — a logistic head over the sentence
//!   encoder's vectors, trained on labelled reviews.
//! - [`review_sentiment`]: the shop's review texts scored by that head, per item and per
//!   shopper, and as pseudo-ratings for reviews without stars.
//! - [`rerank`]: the last stage of recall → rank → re-rank, for recommendations and search:
//!   business rules (filter, boost, bury, pin, promotion slots) and diversity (MMR, quotas)
//!   over scored candidates, with what each rule did to each item.
//!
//! Never touches the data directory or the network; reads only files it is pointed at.
//! A trained model is data: serving is `predict` of an artifact and an example's features.

pub mod explore;
pub mod feature_log;
pub mod features;
pub mod ftrl;
pub mod gbdt;
pub mod join;
pub mod learners;
pub mod metrics;
pub mod obd;
pub mod obd_policy;
pub mod off_policy;
pub mod online;
pub mod open_bandit;
pub mod position_popularity;
pub mod profile;
pub mod ranker;
pub mod rerank;
pub mod review_sentiment;
pub mod schema;
pub mod sentiment;
