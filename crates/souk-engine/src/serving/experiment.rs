//! Experiments: arms with traffic shares on a surface, each arm a [`PipelineConfig`], users
//! assigned deterministically by hashing (the experiment's salt, the user id). An
//! experiment is a draft until started, runs until stopped, and is stored durably (the
//! store's experiment documents); a running experiment's arms cannot change — start a new
//! one. Pages served under an arm are recorded as exposures (`Storage::add_exposures`), and
//! [`super::experiment_report`] attributes outcomes to them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::pipeline::PipelineConfig;
use crate::error::ValidationError;
use crate::ids::UserId;

/// Where an experiment's arms serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExperimentSurface {
    /// "For you" pages (`/v1/users/{id}/recommendations`).
    Recommendations,
    /// Search pages of a known shopper (`/v1/search?user=`).
    Search,
    /// Similar items asked for on behalf of a shopper (`/v1/items/{id}/similar?user=`).
    Similar,
}

impl ExperimentSurface {
    pub fn as_str(self) -> &'static str {
        match self {
            ExperimentSurface::Recommendations => "recommendations",
            ExperimentSurface::Search => "search",
            ExperimentSurface::Similar => "similar",
        }
    }
}

/// Where an experiment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExperimentState {
    Draft,
    Running,
    Stopped,
}

/// One arm: its name, its share of the traffic and the pipeline it serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmSpec {
    pub name: String,
    /// Share of the experiment's users (normalised over the arms).
    pub share: f64,
    pub pipeline: PipelineConfig,
}

/// An experiment. The first arm is the control.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Experiment {
    pub id: String,
    pub surface: ExperimentSurface,
    pub arms: Vec<ArmSpec>,
    pub state: ExperimentState,
    /// The assignment's hashing salt, fixed at creation.
    pub salt: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub stopped_at: Option<i64>,
    /// Outcomes count within this many days after a user's first exposure (and the same
    /// span before it is the pre-exposure period of CUPED).
    pub window_days: f64,
}

/// Default attribution window, in days.
pub const DEFAULT_WINDOW_DAYS: f64 = 7.0;
/// Most arms an experiment may have.
pub const MAX_ARMS: usize = 10;

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ValidationError {
    ValidationError::new("invalid_experiment", field, message)
}

/// Whether an experiment or arm name is well formed: 1–64 letters, digits, `_`, `-`, `.`.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
}

impl Experiment {
    /// A draft from its JSON definition: `{"id", "surface", "arms": [{"name", "share",
    /// …pipeline configuration…}], "window_days"?}`. An arm without a configuration serves
    /// the shop's pipeline.
    pub fn parse(value: &Value, now_ms: i64) -> Result<Experiment, ValidationError> {
        let Value::Object(map) = value else {
            return Err(invalid("body", "expected a JSON object"));
        };
        if let Some(unknown) = map.keys().find(|k| !["id", "surface", "arms", "window_days"].contains(&k.as_str())) {
            return Err(invalid(unknown.clone(), format!("unknown field {unknown:?}")));
        }
        let id = match map.get("id") {
            Some(Value::String(id)) if valid_name(id) => id.clone(),
            Some(other) => {
                return Err(invalid("id", format!("expected 1–64 letters, digits, _ - or ., found {other}")))
            }
            None => return Err(ValidationError::new("missing_field", "id", "an experiment needs an id")),
        };
        let surface: ExperimentSurface = match map.get("surface") {
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|_| invalid("surface", format!("expected recommendations, search or similar, found {v}")))?,
            None => return Err(ValidationError::new("missing_field", "surface", "an experiment needs a surface")),
        };
        let window_days = match map.get("window_days") {
            None => DEFAULT_WINDOW_DAYS,
            Some(v) => match v.as_f64() {
                Some(days) if days.is_finite() && days > 0.0 && days <= 365.0 => days,
                _ => return Err(invalid("window_days", format!("expected a number of days in (0, 365], found {v}"))),
            },
        };
        let Some(Value::Array(arms)) = map.get("arms") else {
            return Err(ValidationError::new("missing_field", "arms", "an experiment needs a list of arms"));
        };
        if !(2..=MAX_ARMS).contains(&arms.len()) {
            return Err(invalid("arms", format!("expected 2 to {MAX_ARMS} arms, found {}", arms.len())));
        }
        let mut parsed: Vec<ArmSpec> = Vec::with_capacity(arms.len());
        for (i, arm) in arms.iter().enumerate() {
            let arm = parse_arm(arm).map_err(|e| e.within(&format!("arms[{i}]")))?;
            if parsed.iter().any(|a| a.name == arm.name) {
                return Err(invalid(format!("arms[{i}].name"), format!("arm {:?} appears twice", arm.name)));
            }
            parsed.push(arm);
        }
        Ok(Experiment {
            salt: format!("{id}:{now_ms}"),
            id,
            surface,
            arms: parsed,
            state: ExperimentState::Draft,
            created_at: now_ms,
            started_at: None,
            stopped_at: None,
            window_days,
        })
    }

    /// The arm a user is in: a 53-bit hash of (salt, user) as a number in [0, 1), laid
    /// over the arms' cumulative shares. Deterministic; independent across experiments.
    pub fn assign(&self, user: &UserId) -> &ArmSpec {
        let u = unit_hash(&self.salt, user.as_str());
        let total: f64 = self.arms.iter().map(|a| a.share).sum();
        let mut cumulative = 0.0;
        for arm in &self.arms {
            cumulative += arm.share / total;
            if u < cumulative {
                return arm;
            }
        }
        &self.arms[self.arms.len() - 1]
    }

    /// The arms' shares, normalised to sum 1.
    pub fn shares(&self) -> Vec<f64> {
        let total: f64 = self.arms.iter().map(|a| a.share).sum();
        self.arms.iter().map(|a| a.share / total).collect()
    }
}

fn parse_arm(value: &Value) -> Result<ArmSpec, ValidationError> {
    let Value::Object(map) = value else {
        return Err(invalid("", "expected an object with name, share and a pipeline configuration"));
    };
    let mut map = map.clone();
    let name = match map.remove("name") {
        Some(Value::String(name)) if valid_name(&name) => name,
        Some(other) => return Err(invalid("name", format!("expected 1–64 letters, digits, _ - or ., found {other}"))),
        None => return Err(ValidationError::new("missing_field", "name", "an arm needs a name")),
    };
    let share = match map.remove("share") {
        None => 1.0,
        Some(v) => match v.as_f64() {
            Some(share) if share.is_finite() && share > 0.0 => share,
            _ => return Err(invalid("share", format!("expected a positive number, found {v}"))),
        },
    };
    let mut pipeline: PipelineConfig = serde_json::from_value(Value::Object(map)).map_err(|e| {
        let message = e.to_string();
        let field = message.split('`').nth(1).unwrap_or("pipeline").to_string();
        invalid(field, message)
    })?;
    // Slot positions are a set: any order is taken (a position given twice is still refused).
    if let Some(slots) = &mut pipeline.explore_slots {
        slots.sort_unstable();
    }
    pipeline.validate()?;
    Ok(ArmSpec { name, share, pipeline })
}

/// A number in [0, 1) from hashing `salt` and `key`.
pub fn unit_hash(salt: &str, key: &str) -> f64 {
    let mut bytes = Vec::with_capacity(salt.len() + key.len() + 1);
    bytes.extend_from_slice(salt.as_bytes());
    bytes.push(0xff);
    bytes.extend_from_slice(key.as_bytes());
    (xxhash_rust::xxh3::xxh3_64(&bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn experiment(shares: &[f64]) -> Experiment {
        let arms: Vec<Value> =
            shares.iter().enumerate().map(|(i, s)| json!({"name": format!("arm{i}"), "share": s})).collect();
        Experiment::parse(&json!({"id": "e1", "surface": "recommendations", "arms": arms}), 1_000).unwrap()
    }

    #[test]
    fn a_definition_parses_with_pipelines_and_bad_ones_name_their_field() {
        let e = Experiment::parse(
            &json!({"id": "rank-off", "surface": "search", "window_days": 3,
                "arms": [{"name": "control"}, {"name": "no-ranker", "share": 1, "ranker": false,
                          "sources": {"itemknn": 2}}]}),
            5,
        )
        .unwrap();
        assert_eq!((e.surface, e.state, e.window_days), (ExperimentSurface::Search, ExperimentState::Draft, 3.0));
        assert_eq!(e.arms[0].pipeline, PipelineConfig::default());
        assert_eq!(e.arms[1].pipeline.ranker, Some(false));
        let field = |v: Value| Experiment::parse(&v, 0).unwrap_err().field;
        assert_eq!(field(json!({"surface": "search", "arms": []})), "id");
        assert_eq!(field(json!({"id": "a b", "surface": "search", "arms": []})), "id");
        assert_eq!(field(json!({"id": "x", "surface": "home", "arms": []})), "surface");
        assert_eq!(field(json!({"id": "x", "surface": "search", "arms": [{"name": "a"}]})), "arms");
        assert_eq!(
            field(json!({"id": "x", "surface": "search", "arms": [{"name": "a"}, {"name": "a"}]})),
            "arms[1].name"
        );
        assert_eq!(
            field(json!({"id": "x", "surface": "search", "arms": [{"name": "a"}, {"name": "b", "share": 0}]})),
            "arms[1].share"
        );
        assert_eq!(
            field(json!({"id": "x", "surface": "search", "arms": [{"name": "a"}, {"name": "b", "explore_share": 3}]})),
            "arms[1].explore_share"
        );
        assert_eq!(
            field(json!({"id": "x", "surface": "search", "arms": [{"name": "a"}, {"name": "b", "colour": 3}]})),
            "arms[1].colour"
        );
        assert_eq!(field(json!({"id": "x", "surface": "search", "arms": [], "extra": 1})), "extra");
        // Exploration slots are a set of positions: taken in any order, each once.
        let slots = |slots: Value| json!({"id": "x", "surface": "search", "arms": [{"name": "a"}, {"name": "b", "explore_slots": slots}]});
        let e = Experiment::parse(&slots(json!([7, 2])), 0).unwrap();
        assert_eq!(e.arms[1].pipeline.explore_slots, Some(vec![2, 7]));
        assert_eq!(field(slots(json!([2, 7, 2]))), "arms[1].explore_slots");
    }

    #[test]
    fn assignment_follows_the_shares() {
        let e = experiment(&[1.0, 3.0]);
        let mut counts = [0usize; 2];
        for u in 0..20_000 {
            let arm = e.assign(&UserId::parse(format!("user-{u}"), "user").unwrap());
            counts[usize::from(arm.name == "arm1")] += 1;
        }
        // 5,000 expected in arm0; the binomial standard deviation is about 61.
        assert!((4_750..5_250).contains(&counts[0]), "{counts:?}");
        // Another experiment (another salt) splits the same users independently.
        let mut other = experiment(&[1.0, 1.0]);
        other.salt = "other".into();
        let same = (0..2_000)
            .filter(|u| {
                let user = UserId::parse(format!("user-{u}"), "user").unwrap();
                (e.assign(&user).name == "arm0") == (other.assign(&user).name == "arm0")
            })
            .count();
        // Independent: P(same) = 0.25·0.5 + 0.75·0.5 = 0.5.
        assert!((850..1_150).contains(&same), "{same}");
    }

    proptest! {
        #[test]
        fn assignment_is_deterministic_and_always_an_arm(user in "[a-z0-9]{1,20}", shares in proptest::collection::vec(0.01f64..10.0, 2..6)) {
            let e = experiment(&shares);
            let user = UserId::parse(user, "user").unwrap();
            let first = e.assign(&user).name.clone();
            prop_assert_eq!(&e.assign(&user).name, &first);
            let reparsed: Experiment = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
            prop_assert_eq!(&reparsed.assign(&user).name, &first);
        }
    }
}
