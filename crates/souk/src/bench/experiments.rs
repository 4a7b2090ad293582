//! `souk bench experiments`: calibration of the experiment statistics on simulated
//! experiments (A/A false positives, power at a known effect, the sample-ratio check) and
//! CUPED's variance reduction on revenue per user of a generated shop.

use clap::Args;
use serde_json::json;
use souk_engine::eval::experiments::{calibrate, cuped_on_shop, interleaving_efficiency, CalibrationConfig};
use souk_engine::gen::{GenConfig, Generator};
use souk_engine::store::{EmbeddedStore, Storage, StoreConfig, StoreSink};

#[derive(Debug, Args)]
pub struct ExperimentsArgs {
    /// Replications of the A/A and the power simulations.
    #[arg(long, default_value_t = 1_000)]
    replications: usize,
    /// Users per arm in each A/A replication.
    #[arg(long, default_value_t = 5_000)]
    users: usize,
    /// Relative conversion effect of the power simulation.
    #[arg(long, default_value_t = 0.05)]
    lift: f64,
    /// Events of the generated shop CUPED is measured on (2,000 items, 5,000 users).
    #[arg(long, default_value_t = 200_000)]
    events: usize,
    /// Noise of ranker A's and ranker B's scores around the true utility (B is better) in
    /// the interleaving comparison.
    #[arg(long, default_value_t = 1.0)]
    noise_a: f64,
    /// (The noise of ranker B: see --noise-a.)
    #[arg(long, default_value_t = 0.9)]
    noise_b: f64,
    /// Users of the interleaving pilot, and replications of the power check at the sizes
    /// it gives.
    #[arg(long, default_value_t = 20_000)]
    pilot: usize,
    /// Replications of the power check (see --pilot).
    #[arg(long, default_value_t = 200)]
    interleaving_replications: usize,
    /// Random seed (the same seed gives the same data and figures).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print the result as one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &ExperimentsArgs) -> anyhow::Result<()> {
    let config = CalibrationConfig {
        replications: args.replications,
        users_per_arm: args.users,
        lift: args.lift,
        seed: args.seed,
        ..CalibrationConfig::default()
    };
    let report = calibrate(&config);
    let dir = tempfile::tempdir()?;
    let store = EmbeddedStore::open(dir.path(), &StoreConfig::default())?;
    let generator = Generator::new(GenConfig { items: 2_000, users: 5_000, events: args.events, seed: args.seed })?;
    let mut sink = StoreSink::new(&store);
    generator.run(&mut sink, &mut |_| {})?;
    sink.finish()?;
    // The split time: the median purchase time, so both periods hold half the purchases.
    let mut times = Vec::new();
    store.scan_events(&[souk_engine::EventType::Purchase], &mut |e| {
        times.push(e.timestamp);
        Ok(())
    })?;
    times.sort_unstable();
    let split = times.get(times.len() / 2).copied().unwrap_or(0);
    let cuped = cuped_on_shop(&store, split)?;
    let interleaving =
        interleaving_efficiency(args.noise_a, args.noise_b, args.pilot, args.interleaving_replications, args.seed);
    let out = json!({"calibration": report, "cuped_revenue_per_user": cuped, "shop_events": args.events,
        "interleaving": interleaving});
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let aa = &report.aa;
    println!(
        "A/A, {} replications × 2 × {} users: false positives at α {}: conversion {:.3}, revenue/user {:.3}, CTR {:.3} (±{:.3} s.e.)",
        aa.replications, aa.users_per_arm, config.alpha, aa.false_positive_rate_conversion,
        aa.false_positive_rate_revenue_per_user, aa.false_positive_rate_ctr, aa.standard_error
    );
    println!(
        "sample ratio 10,400 / 9,600 at 50/50: χ² {:.1}, p {:.2e}, flagged {}",
        report.srm_52_48.chi2, report.srm_52_48.p_value, report.srm_52_48.flagged
    );
    let p = &report.power;
    println!(
        "+{:.0}% on {:.0}% conversion with {} users per arm: found in {:.3} of {} replications (formula {:.3})",
        p.lift * 100.0,
        p.base_conversion * 100.0,
        p.users_per_arm,
        p.observed_power,
        p.replications,
        p.predicted_power
    );
    println!(
        "CUPED on revenue per user ({} buyers of a generated shop, before/after the median purchase): θ {:.3}, variance −{:.1}%",
        cuped.users, cuped.theta, cuped.variance_reduction * 100.0
    );
    let il = &interleaving;
    println!(
        "interleaving vs A/B (ranker noise {} vs {}): clicks/user {:.4} vs {:.4}; interleaved pages won by B {:.3}, by A {:.3}, tied {:.3}",
        il.noise_a, il.noise_b, il.clicks_per_user_a, il.clicks_per_user_b, il.wins_b, il.wins_a, il.ties
    );
    println!(
        "users for 80% power: A/B {} (both arms), interleaving {} — {:.1}× fewer; observed power over {} replications: A/B {:.2}, interleaving {:.2}",
        il.ab_users, il.interleaving_users, il.ratio, il.replications, il.ab_power, il.interleaving_power
    );
    Ok(())
}
