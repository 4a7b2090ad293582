//! The ranker's three learners on the synthetic ranking problem: test NDCG@10, training
//! seconds, and the cost of scoring one row as serving does (`RankModel::predict`, one row
//! at a time; best of 5 passes over the test rows), and of explaining one (`contributions`).
//!
//! ```sh
//! cargo run --release -p souk-engine --example ranker_learners -- [TRAIN_GROUPS] [GROUP_SIZE]
//! ```
//!
//! Prints one JSON object per learner.

use std::hint::black_box;
use std::time::Instant;

use souk_engine::rank::gbdt::{mean_ndcg, synthetic::ranking_problem, GbdtParams};
use souk_engine::rank::learners::{Learner, LearnerSettings, RankModel};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let groups: usize = args.first().map(|a| a.parse()).transpose()?.unwrap_or(2_000);
    let size: usize = args.get(1).map(|a| a.parse()).transpose()?.unwrap_or(20);
    let train = ranking_problem(groups, size, 1);
    let valid = ranking_problem(groups / 4, size, 2);
    let test = ranking_problem(groups / 2, size, 3);
    let settings = LearnerSettings::default();
    let params = GbdtParams::default();
    for learner in [Learner::LambdaMart, Learner::Ftrl, Learner::Mlp] {
        let started = Instant::now();
        let model = RankModel::train(learner, &params, &settings, &train, Some(&valid))?;
        let train_seconds = started.elapsed().as_secs_f64();
        let scores: Vec<f64> = (0..test.n_rows()).map(|r| model.predict(test.row(r))).collect();
        let ndcg = mean_ndcg(&test, &scores, 10).unwrap_or(0.0);
        let mut predict_ns = f64::INFINITY;
        for _ in 0..5 {
            let started = Instant::now();
            for r in 0..test.n_rows() {
                black_box(model.predict(black_box(test.row(r))));
            }
            predict_ns = predict_ns.min(started.elapsed().as_nanos() as f64 / test.n_rows() as f64);
        }
        let explained = test.n_rows().min(2_000);
        let started = Instant::now();
        for r in 0..explained {
            black_box(model.contributions(black_box(test.row(r))));
        }
        let explain_ns = started.elapsed().as_nanos() as f64 / explained as f64;
        println!(
            "{}",
            serde_json::json!({
                "learner": learner.name(),
                "test_ndcg_at_10": ndcg,
                "size": model.size(),
                "train_seconds": train_seconds,
                "predict_ns_per_row": predict_ns,
                "explain_ns_per_row": explain_ns,
                "train_rows": train.n_rows(),
                "features": train.n_features(),
            })
        );
    }
    Ok(())
}
