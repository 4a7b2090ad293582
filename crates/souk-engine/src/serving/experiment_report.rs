//! An experiment's report: who was exposed to which arm, what they did after, and whether
//! the arms differ.
//!
//! The unit is the user. A user belongs to the arm of their exposures (assignment is
//! deterministic) from their first exposure on. Outcomes are attributed two ways: clicks by
//! the request id of the pages they were served (a click on an experiment page counts for
//! that page), carts and purchases by user within `window_days` after the first exposure
//! (the same span before it is the pre-exposure period CUPED uses).
//!
//! Metrics per arm: `ctr` (pages with a click / pages, a ratio metric with the delta
//! method), `add_to_cart_rate` and `conversion` (share of users who carted / bought),
//! `purchases_per_user`, `revenue_per_user` (price × quantity of the purchases). Against the
//! control (the first arm): difference, relative lift with its interval, Welch's p-value,
//! the chance to beat control, and the Holm-adjusted p-value over every (arm, metric) pair;
//! user-level metrics are compared after CUPED with the same metric before exposure. A
//! sample-ratio-mismatch test checks the users per arm against the shares. What each arm
//! showed — coverage, Gini of exposure, tail share, calibration — comes from
//! [`super::exposure`].

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use super::experiment::{Experiment, ExperimentState};
use super::exposure::{self, CatalogView, Exposure, ShopperExposure};
use crate::error::Result;
use crate::model::{Event, EventType};
use crate::stats::{self, Sample, Srm};
use crate::store::Storage;

/// Every metric of a report, in report order.
pub const METRICS: &[&str] = &["ctr", "add_to_cart_rate", "conversion", "purchases_per_user", "revenue_per_user"];
/// Fewer users than this in an arm gives a warning: intervals are not yet trustworthy.
pub const MIN_USERS: usize = 100;
/// Fewer converting users than this in an arm gives a warning for the rate metrics.
pub const MIN_CONVERSIONS: usize = 10;
/// A user's events read for attribution, at most.
const USER_EVENTS: usize = 100_000;

/// A metric's value in one arm.
#[derive(Debug, Clone, Serialize)]
pub struct MetricValue {
    pub value: f64,
    /// 95% interval.
    pub ci: [f64; 2],
}

/// One arm's users, exposures and metrics.
#[derive(Debug, Clone, Serialize)]
pub struct ArmReport {
    pub name: String,
    /// Its share of the traffic (normalised).
    pub share: f64,
    pub users: usize,
    /// Pages served under it.
    pub exposures: usize,
    pub metrics: BTreeMap<String, MetricValue>,
    /// What it showed, over its logged pages: coverage, Gini, tail share, calibration.
    pub exposure: Exposure,
}

/// One arm against the control on one metric.
#[derive(Debug, Clone, Serialize)]
pub struct ComparisonReport {
    pub arm: String,
    pub metric: String,
    /// Treatment − control.
    pub difference: f64,
    /// Relative lift: treatment / control − 1, with its 95% interval.
    pub lift: f64,
    pub ci: [f64; 2],
    /// Welch's two-sided p-value.
    pub p_value: f64,
    /// Holm-adjusted over every comparison of the report.
    pub p_value_adjusted: f64,
    pub chance_to_beat_control: f64,
    /// Variance removed by CUPED (0 when not applied: ratio metrics, no pre-exposure data).
    pub cuped_variance_reduction: f64,
}

/// A whole report.
#[derive(Debug, Clone, Serialize)]
pub struct ExperimentReport {
    pub id: String,
    pub state: ExperimentState,
    pub surface: String,
    pub window_days: f64,
    pub arms: Vec<ArmReport>,
    pub srm: Srm,
    pub comparisons: Vec<ComparisonReport>,
    /// What makes the figures less trustworthy (few users, few conversions, a sample-ratio
    /// mismatch).
    pub warnings: Vec<String>,
}

/// What one exposed user did.
#[derive(Debug, Default, Clone)]
struct UserOutcome {
    arm: usize,
    first_exposure: i64,
    requests: HashSet<String>,
    pages: f64,
    clicked_pages: f64,
    carts: f64,
    purchases: f64,
    revenue: f64,
    /// The same measures over the window before the first exposure.
    carts_before: f64,
    purchases_before: f64,
    revenue_before: f64,
    /// Items shown on the arm's logged pages, and the history before the experiment.
    seen: ShopperExposure,
}

impl UserOutcome {
    /// (numerator, denominator, pre-exposure covariate) of a metric.
    fn metric(&self, metric: &str) -> (f64, f64, f64) {
        let any = |x: f64| if x > 0.0 { 1.0 } else { 0.0 };
        match metric {
            "ctr" => (self.clicked_pages, self.pages, 0.0),
            "add_to_cart_rate" => (any(self.carts), 1.0, any(self.carts_before)),
            "conversion" => (any(self.purchases), 1.0, any(self.purchases_before)),
            "purchases_per_user" => (self.purchases, 1.0, self.purchases_before),
            _ => (self.revenue, 1.0, self.revenue_before),
        }
    }
}

/// What purchases paid: price × quantity, the catalog price when the event carries none
/// (looked up once per item; 0 for an item the catalog does not price).
pub struct Paid<'a> {
    store: &'a dyn Storage,
    prices: HashMap<String, f64>,
}

impl<'a> Paid<'a> {
    pub fn new(store: &'a dyn Storage) -> Self {
        Self { store, prices: HashMap::new() }
    }

    /// The amount a purchase event paid.
    pub fn of(&mut self, event: &Event) -> Result<f64> {
        let price = match (event.price, &event.item) {
            (Some(price), _) => price,
            (None, Some(item)) => match self.prices.get(item.as_str()) {
                Some(price) => *price,
                None => {
                    let meta = self.store.items_meta(&[item.as_str()])?.pop().flatten();
                    let price = meta.and_then(|m| m.price).map_or(0.0, f64::from);
                    self.prices.insert(item.as_str().to_string(), price);
                    price
                }
            },
            (None, None) => 0.0,
        };
        Ok(price * f64::from(event.quantity.unwrap_or(1)))
    }
}

/// The report of `experiment` from its exposures and the exposed users' events.
pub fn report(experiment: &Experiment, store: &dyn Storage) -> Result<ExperimentReport> {
    let arms: HashMap<&str, usize> = experiment.arms.iter().enumerate().map(|(i, a)| (a.name.as_str(), i)).collect();
    let mut users: HashMap<String, UserOutcome> = HashMap::new();
    let mut exposures = vec![0usize; experiment.arms.len()];
    for exposure in store.exposures(&experiment.id)? {
        let Some(&arm) = arms.get(exposure.arm.as_str()) else { continue };
        exposures[arm] += 1;
        let outcome = users.entry(exposure.user.as_str().to_string()).or_insert_with(|| UserOutcome {
            arm,
            first_exposure: exposure.timestamp,
            ..UserOutcome::default()
        });
        outcome.first_exposure = outcome.first_exposure.min(exposure.timestamp);
        outcome.pages += 1.0;
        outcome.requests.insert(exposure.request_id);
    }
    let window = (experiment.window_days * 86_400_000.0) as i64;
    let mut paid = Paid::new(store);
    for (user, outcome) in &mut users {
        let user = crate::ids::UserId::parse(user.as_str(), "user")?;
        let mut clicked: HashSet<&str> = HashSet::new();
        let events = store.user_events(&user, USER_EVENTS)?;
        for event in &events {
            let on_arm_page = event.request_id.as_deref().filter(|r| outcome.requests.contains(*r));
            match (event.event_type, on_arm_page) {
                (EventType::Click, Some(request)) => {
                    clicked.insert(request);
                }
                (EventType::Impression, Some(_)) => {
                    outcome.seen.shown.extend(event.items.iter().map(|i| i.as_str().to_string()));
                }
                (EventType::View | EventType::Click | EventType::AddToCart | EventType::Purchase, _)
                    if event.timestamp < outcome.first_exposure =>
                {
                    if let Some(item) = &event.item {
                        outcome.seen.history.push(item.as_str().to_string());
                    }
                }
                _ => {}
            }
            let offset = event.timestamp - outcome.first_exposure;
            let after = (0..=window).contains(&offset);
            let before = (-window..0).contains(&offset);
            if !(after || before) {
                continue;
            }
            let (carts, purchases, revenue) = match event.event_type {
                EventType::AddToCart => (1.0, 0.0, 0.0),
                EventType::Purchase => (0.0, 1.0, paid.of(event)?),
                _ => continue,
            };
            if after {
                outcome.carts += carts;
                outcome.purchases += purchases;
                outcome.revenue += revenue;
            } else {
                outcome.carts_before += carts;
                outcome.purchases_before += purchases;
                outcome.revenue_before += revenue;
            }
        }
        outcome.clicked_pages = clicked.len() as f64;
    }
    let catalog = CatalogView::load(store)?;
    Ok(summarise(experiment, &users.into_values().collect::<Vec<_>>(), &exposures, &catalog))
}

/// Per-arm estimates, comparisons with the control, SRM and warnings.
fn summarise(
    experiment: &Experiment,
    users: &[UserOutcome],
    exposures: &[usize],
    catalog: &CatalogView,
) -> ExperimentReport {
    let shares = experiment.shares();
    let by_arm: Vec<Vec<&UserOutcome>> =
        (0..experiment.arms.len()).map(|a| users.iter().filter(|u| u.arm == a).collect()).collect();
    let mut warnings = Vec::new();
    let mut arms = Vec::new();
    for (a, spec) in experiment.arms.iter().enumerate() {
        let mut metrics = BTreeMap::new();
        for metric in METRICS {
            let (num, den, _) = columns(&by_arm[a], metric);
            if let Some(e) = stats::estimate(&Sample { numerators: &num, denominators: &den }) {
                metrics.insert(metric.to_string(), MetricValue { value: e.value, ci: e.ci });
            }
        }
        if by_arm[a].len() < MIN_USERS {
            warnings.push(format!("arm {:?} has {} users (fewer than {MIN_USERS})", spec.name, by_arm[a].len()));
        }
        let converted = by_arm[a].iter().filter(|u| u.purchases > 0.0).count();
        if converted < MIN_CONVERSIONS {
            warnings
                .push(format!("arm {:?} has {converted} converting users (fewer than {MIN_CONVERSIONS})", spec.name));
        }
        arms.push(ArmReport {
            name: spec.name.clone(),
            share: shares[a],
            users: by_arm[a].len(),
            exposures: exposures[a],
            metrics,
            exposure: exposure::measure(catalog, &by_arm[a].iter().map(|u| &u.seen).collect::<Vec<_>>()),
        });
    }
    let counts: Vec<u64> = by_arm.iter().map(|u| u.len() as u64).collect();
    let srm = stats::srm(&counts, &shares);
    if srm.flagged {
        warnings.push(format!(
            "sample-ratio mismatch (p = {:.2e}): users per arm {counts:?} do not fit the shares; the assignment or the exposure logging is broken, so the comparisons are not trustworthy",
            srm.p_value
        ));
    }
    let mut comparisons = Vec::new();
    for (a, spec) in experiment.arms.iter().enumerate().skip(1) {
        for metric in METRICS {
            if let Some(c) = compare(&by_arm[a], &by_arm[0], users, metric) {
                comparisons.push(ComparisonReport { arm: spec.name.clone(), metric: metric.to_string(), ..c });
            }
        }
    }
    let adjusted = stats::holm(&comparisons.iter().map(|c| c.p_value).collect::<Vec<_>>());
    for (c, p) in comparisons.iter_mut().zip(adjusted) {
        c.p_value_adjusted = p;
    }
    ExperimentReport {
        id: experiment.id.clone(),
        state: experiment.state,
        surface: experiment.surface.as_str().to_string(),
        window_days: experiment.window_days,
        arms,
        srm,
        comparisons,
        warnings,
    }
}

/// Numerators, denominators and covariates of a metric over some users.
fn columns(users: &[&UserOutcome], metric: &str) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut out = (Vec::with_capacity(users.len()), Vec::with_capacity(users.len()), Vec::with_capacity(users.len()));
    for u in users {
        let (n, d, x) = u.metric(metric);
        out.0.push(n);
        out.1.push(d);
        out.2.push(x);
    }
    out
}

/// A treatment arm against the control on one metric (CUPED for user-level metrics when the
/// pre-exposure covariate varies).
fn compare(
    treatment: &[&UserOutcome],
    control: &[&UserOutcome],
    everyone: &[UserOutcome],
    metric: &str,
) -> Option<ComparisonReport> {
    let (mut t_num, t_den, t_cov) = columns(treatment, metric);
    let (mut c_num, c_den, c_cov) = columns(control, metric);
    let raw_t = stats::estimate(&Sample { numerators: &t_num, denominators: &t_den })?;
    let raw_c = stats::estimate(&Sample { numerators: &c_num, denominators: &c_den })?;
    let mut reduction = 0.0;
    if metric != "ctr" {
        let all: Vec<&UserOutcome> = everyone.iter().collect();
        let (y, _, x) = columns(&all, metric);
        if let Some(cuped) = stats::cuped(&y, &x) {
            t_num = cuped.adjust(&t_num, &t_cov);
            c_num = cuped.adjust(&c_num, &c_cov);
        }
    }
    let t = stats::estimate(&Sample { numerators: &t_num, denominators: &t_den })?;
    let c = stats::estimate(&Sample { numerators: &c_num, denominators: &c_den })?;
    let raw_variance = raw_t.variance + raw_c.variance;
    if raw_variance > 0.0 {
        reduction = (1.0 - (t.variance + c.variance) / raw_variance).max(0.0);
    }
    // The adjusted means differ from the raw ones by −θ·(the arm's covariate mean − the
    // pooled one): the same in expectation, with the covariate's noise taken out.
    let comparison = stats::compare(&t, &c)?;
    Some(ComparisonReport {
        arm: String::new(),
        metric: String::new(),
        difference: comparison.difference,
        lift: comparison.lift,
        ci: comparison.lift_ci,
        p_value: comparison.p_value,
        p_value_adjusted: comparison.p_value,
        chance_to_beat_control: comparison.chance_to_beat_control,
        cuped_variance_reduction: reduction,
    })
}
