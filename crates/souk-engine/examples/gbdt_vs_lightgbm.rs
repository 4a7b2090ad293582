//! Souk's LambdaMART on the synthetic ranking problem, written out for LightGBM to train on
//! the same rows (`bench/gbdt_vs_lightgbm.py` reads what this writes).
//!
//! ```sh
//! cargo run --release -p souk-engine --example gbdt_vs_lightgbm -- DIR [TRAIN_GROUPS] [GROUP_SIZE] [THREADS]
//! python3 bench/gbdt_vs_lightgbm.py DIR
//! ```
//!
//! Writes `DIR/{train,valid,test}.csv` (`group,label,features…`, NaN as `nan`),
//! `DIR/params.json` (the parameters both learners use), `DIR/souk_test_scores.txt`,
//! `DIR/souk_model.bin`, and prints one JSON object: test NDCG@10, training seconds,
//! prediction cost (best of 5 passes). With `--predict-only` it loads the saved model
//! instead of training, to time prediction alone.

use std::fmt::Write as _;
use std::time::Instant;

use souk_engine::rank::gbdt::{self, synthetic::ranking_problem, Dataset, GbdtModel, GbdtParams};

fn write_csv(path: &std::path::Path, data: &Dataset) -> std::io::Result<()> {
    let mut out = String::with_capacity(data.n_rows() * data.n_features() * 10);
    out.push_str("group,label");
    for name in data.feature_names() {
        let _ = write!(out, ",{name}");
    }
    out.push('\n');
    for (q, range) in data.groups().enumerate() {
        for i in range {
            let _ = write!(out, "{q},{}", data.labels()[i]);
            for v in data.row(i) {
                // `{:?}` writes the shortest text that reads back as the same f32.
                if v.is_nan() {
                    out.push_str(",nan");
                } else {
                    let _ = write!(out, ",{v:?}");
                }
            }
            out.push('\n');
        }
    }
    std::fs::write(path, out)
}

/// CPU seconds this process has used (user + system, all threads), from `/proc/self/stat`;
/// NaN where that file does not exist. Less disturbed than wall time by other processes.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return f64::NAN };
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (ticks(11) + ticks(12)) / 100.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().collect();
    // `--predict-only`: load DIR/souk_model.bin instead of training (to time prediction alone).
    let predict_only = args.iter().any(|a| a == "--predict-only");
    args.retain(|a| a != "--predict-only");
    let Some(dir) = args.get(1).map(std::path::PathBuf::from) else {
        return Err("usage: gbdt_vs_lightgbm DIR [TRAIN_GROUPS] [GROUP_SIZE] [THREADS]".into());
    };
    let train_groups: usize = args.get(2).map_or(Ok(4000), |s| s.parse())?;
    let group_size: usize = args.get(3).map_or(Ok(100), |s| s.parse())?;
    let threads: usize = args.get(4).map_or(Ok(2), |s| s.parse())?;
    rayon::ThreadPoolBuilder::new().num_threads(threads).build_global()?;
    std::fs::create_dir_all(&dir)?;

    let train = ranking_problem(train_groups, group_size, 1);
    let valid = ranking_problem((train_groups / 8).max(1), group_size, 2);
    let test = ranking_problem((train_groups / 4).max(1), group_size, 3);
    for (name, data) in [("train", &train), ("valid", &valid), ("test", &test)] {
        write_csv(&dir.join(format!("{name}.csv")), data)?;
    }
    let params = GbdtParams { trees: 1000, learning_rate: 0.05, early_stopping_rounds: 50, ..GbdtParams::default() };
    std::fs::write(dir.join("params.json"), serde_json::to_string_pretty(&params)?)?;

    let model_path = dir.join("souk_model.bin");
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let model = if predict_only {
        GbdtModel::load(&mut std::io::BufReader::new(std::fs::File::open(&model_path)?))?
    } else {
        let model = gbdt::train(&params, &train, Some(&valid))?;
        model.save(&mut std::io::BufWriter::new(std::fs::File::create(&model_path)?))?;
        model
    };
    let train_seconds = started.elapsed().as_secs_f64();
    let train_cpu_seconds = cpu_seconds() - cpu_before;

    // Best of 5 passes over the test rows: the least disturbed by other processes.
    let mut scores = Vec::new();
    let mut predict_ns_per_row = f64::MAX;
    let mut batch = Vec::new();
    let mut batch_ns_per_row = f64::MAX;
    for _ in 0..5 {
        let started = Instant::now();
        scores = (0..test.n_rows()).map(|i| model.predict(test.row(i))).collect();
        predict_ns_per_row = predict_ns_per_row.min(started.elapsed().as_nanos() as f64 / test.n_rows() as f64);
        let started = Instant::now();
        batch = model.predict_batch(test.rows());
        batch_ns_per_row = batch_ns_per_row.min(started.elapsed().as_nanos() as f64 / test.n_rows() as f64);
    }
    assert_eq!(batch, scores, "predict_batch and predict disagree");
    let ndcg10 = gbdt::mean_ndcg(&test, &scores, 10).unwrap_or(f64::NAN);
    let text: String = scores.iter().map(|s| format!("{s:?}\n")).collect();
    std::fs::write(dir.join("souk_test_scores.txt"), text)?;

    let summary = serde_json::json!({
        "learner": "souk",
        "rows": { "train": train.n_rows(), "valid": valid.n_rows(), "test": test.n_rows() },
        "group_size": group_size,
        "threads": threads,
        "test_ndcg@10": ndcg10,
        "train_seconds": train_seconds,
        "train_cpu_seconds": train_cpu_seconds,
        "trees": model.n_trees(),
        "iterations": model.history().validation.len(),
        "predict_ns_per_row": predict_ns_per_row,
        "predict_ns_per_row_per_tree": predict_ns_per_row / model.n_trees().max(1) as f64,
        "predict_batch_ns_per_row": batch_ns_per_row,
    });
    println!("{summary}");
    Ok(())
}
