//! `souk eval --protocol sentiment --path REVIEWS.csv`: review sentiment from text — a
//! logistic head on the configured sentence encoder (`[embed] model_path`, else the
//! multilingual model fetched into the model cache, as the demo does), judged on a
//! held-out share of the labelled reviews.

use std::io::Write;

use anyhow::{bail, Context};
use souk_engine::eval::sentiment::{self, SentimentEvalConfig, DEFAULT_TEST_SHARE};

use crate::config::Config;
use crate::embed_cmd::load_embedder;
use crate::shared::EvalArgs;

pub fn eval_sentiment(config: &Config, args: &EvalArgs) -> anyhow::Result<()> {
    let Some(path) = &args.path else {
        bail!("--protocol sentiment needs --path FILE (a CSV of labelled reviews: label, review, optionally cat)");
    };
    let test_share = match args.ratio {
        Some(ratio) if !(ratio > 0.0 && ratio < 1.0) => bail!("--ratio (the training share) must be between 0 and 1"),
        Some(ratio) => 1.0 - ratio,
        None => DEFAULT_TEST_SHARE,
    };
    let data = sentiment::read_reviews(path)?;
    let mut embed = config.embed.clone();
    if embed.model_path.is_empty() {
        match crate::model_fetch::default_model() {
            Some(model) => embed.model_path = model.to_string_lossy().into_owned(),
            None => bail!(
                "--protocol sentiment needs a sentence encoder: set [embed] model_path (or SOUK__EMBED__MODEL_PATH)"
            ),
        }
    }
    let embedder = load_embedder(&embed)?.context("no sentence encoder configured")?;
    eprintln!("souk: embedding {} reviews with {}", data.reviews.len(), embedder.id());
    // As features for a classifier, E5 wants its "query: " form (its authors' advice for
    // linear probing); the other encoders read both forms alike.
    let embed_texts = |texts: &[&str]| embedder.embed(texts, true);
    let mut last_report = std::time::Instant::now();
    let mut progress = |done: usize, total: usize| {
        if last_report.elapsed().as_secs() >= 30 || done == total {
            eprintln!("souk: embedded {done} of {total} reviews");
            last_report = std::time::Instant::now();
        }
    };
    let run = SentimentEvalConfig { test_share, seed: args.seed, write_split: args.write_split.clone() };
    let (report, head) = sentiment::evaluate(&data, embedder.id(), &embed_texts, &run, &mut progress)?;
    if let Some(file) = &args.save_head {
        let mut out = std::fs::File::create(file).with_context(|| format!("creating {}", file.display()))?;
        serde_json::to_writer(&mut out, &head)?;
        out.flush()?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let t = &report.test;
    println!(
        "protocol sentiment: {} reviews ({} empty skipped), train {}, test {} (seed {}), encoder {}",
        report.reviews, report.skipped_empty, report.train, t.reviews, report.seed, report.encoder
    );
    println!(
        "  accuracy {:.4}  auc {}  log loss {}  (l2 {}, {} Newton steps)",
        t.accuracy,
        t.auc.map_or("-".into(), |v| format!("{v:.4}")),
        t.log_loss.map_or("-".into(), |v| format!("{v:.4}")),
        report.l2,
        report.newton_steps
    );
    for (group, scores) in &report.by_group {
        println!("  {group:<12} {:>6} reviews  accuracy {:.4}", scores.reviews, scores.accuracy);
    }
    println!(
        "  embedding {:.1} s ({:.1} reviews/s), fitting {:.1} s",
        report.embed_seconds, report.reviews_per_second, report.fit_seconds
    );
    Ok(())
}
