//! Sentences per second and single-query latency of an embedding model on this machine.
//!
//! cargo run --release -p souk-embed --example throughput -- MODEL [SENTENCES] [BATCH_SIZE]
//!
//! MODEL is all-MiniLM-L6-v2's folder (model.safetensors, tokenizer.json, config.json,
//! 1_Pooling/) or multilingual-e5-small's `e5-small-q4.bin`. Defaults: 2,048 synthetic product
//! titles, batches of 32. `RAYON_NUM_THREADS` sets the threads.

use std::path::PathBuf;
use std::process::ExitCode;

use souk_embed::throughput::{measure_query_latency, measure_throughput, synthetic_product_titles};
use souk_embed::{E5Small, Embedder, MiniLm, TextKind};

fn parse_or(argument: Option<String>, default: usize, name: &str) -> Result<usize, String> {
    match argument {
        None => Ok(default),
        Some(text) => text.parse().map_err(|_| format!("{name} must be a positive integer, found {text:?}")),
    }
}

fn run() -> Result<(), String> {
    let mut arguments = std::env::args().skip(1);
    let model_path: PathBuf = arguments.next().ok_or("usage: throughput MODEL [SENTENCES] [BATCH_SIZE]")?.into();
    let sentences = parse_or(arguments.next(), 2048, "SENTENCES")?;
    let batch_size = parse_or(arguments.next(), 32, "BATCH_SIZE")?;

    let start = std::time::Instant::now();
    let model: Box<dyn Embedder> = if model_path.is_file() {
        Box::new(E5Small::load(&model_path).map_err(|error| error.to_string())?)
    } else {
        Box::new(MiniLm::load(&model_path).map_err(|error| error.to_string())?)
    };
    let model = model.as_ref();
    let load_seconds = start.elapsed().as_secs_f64();

    let titles = synthetic_product_titles(sentences);
    let texts: Vec<&str> = titles.iter().map(String::as_str).collect();
    let throughput = measure_throughput(model, &texts, batch_size).map_err(|error| error.to_string())?;
    let queries = ["red summer dress", "usb-c charger 65w", "cheap wireless earbuds for running", "yoga mat"];
    let latency = measure_query_latency(model, &queries, 200).map_err(|error| error.to_string())?;
    // The four queries in one call, as a server's query batcher embeds overlapping requests.
    model.embed(&queries, TextKind::Query).map_err(|error| error.to_string())?;
    let mut together: Vec<f64> = (0..100)
        .map(|_| {
            let start = std::time::Instant::now();
            model.embed(&queries, TextKind::Query).map(|_| start.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<Result<_, _>>()
        .map_err(|error| error.to_string())?;
    together.sort_by(f64::total_cmp);

    println!("model            {} ({}-d), loaded in {load_seconds:.2} s", model.id(), model.dim());
    println!("threads          {}", candle_core::utils::get_num_threads());
    println!(
        "throughput       {:.0} sentences/s ({} product titles, batch {}, {:.2} s)",
        throughput.sentences_per_second(),
        throughput.sentences,
        throughput.batch_size,
        throughput.seconds
    );
    println!(
        "single query     median {:.2} ms, p90 {:.2} ms ({} runs)",
        latency.median_ms, latency.p90_ms, latency.runs
    );
    println!("four queries     median {:.2} ms per call of 4 (100 runs)", together[50]);
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
