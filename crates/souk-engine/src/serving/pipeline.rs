//! A page pipeline's configuration as data: which recall sources take part and with what
//! weight in fusion, whether the learned ranker orders the page, the re-ranking rules it
//! adds, and the share of logged pages served in the explore arm's random order. A shop
//! serves with its configured pipeline; an experiment arm carries another one (it
//! serialises as JSON: `{"sources":{"als":1,"itemknn":0},"ranker":false}`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::input::integral;
use crate::rank::rerank::Rules;
use crate::recommend::SourceKind;

/// See the module documentation. Every field has a default: `{}` is the shop's pipeline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Fusion weight by recall source (`als`, `ease`, `itemknn`, `session`, `popularity`…),
    /// replacing the configured weight of each source named; 0 leaves a source out. An
    /// unknown source name is refused.
    pub sources: BTreeMap<SourceKind, f64>,
    /// `Some(false)` serves the hand blend even when a ranker is trained.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ranker: Option<bool>,
    /// Rules added to the shop's (a request adds its own on top).
    #[serde(skip_serializing_if = "Rules::is_empty")]
    pub rules: Rules,
    /// Share of logged pages served in a random order (`None`: `[rank] explore_share`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explore_share: Option<f64>,
    /// Page positions of the exploration slots on logged pages (`None`: `[rank.explore]
    /// slots`; `[]`: no exploration slots).
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "integral::option_list")]
    pub explore_slots: Option<Vec<usize>>,
}

impl PipelineConfig {
    /// Check every field; errors name it (e.g. `sources.als`).
    pub fn validate(&self) -> Result<(), ValidationError> {
        for (source, weight) in &self.sources {
            if !weight.is_finite() || *weight < 0.0 {
                return Err(ValidationError::new(
                    "invalid_number",
                    format!("sources.{source}"),
                    format!("expected a non-negative weight, found {weight}"),
                ));
            }
        }
        if let Some(share) = self.explore_share {
            if !(0.0..=1.0).contains(&share) {
                return Err(ValidationError::new(
                    "invalid_number",
                    "explore_share",
                    format!("expected 0..=1, found {share}"),
                ));
            }
        }
        if let Some(slots) = &self.explore_slots {
            if slots.windows(2).any(|w| w[0] >= w[1]) || slots.iter().any(|s| *s >= 100) {
                return Err(ValidationError::new(
                    "invalid_value",
                    "explore_slots",
                    format!("expected ascending page positions below 100, found {slots:?}"),
                ));
            }
        }
        self.rules.validate().map_err(|e| e.within("rules"))
    }

    /// The fusion weights this pipeline serves with, over the configured ones.
    pub fn source_weights(&self, configured: &BTreeMap<SourceKind, f64>) -> BTreeMap<SourceKind, f64> {
        let mut weights = configured.clone();
        weights.extend(self.sources.iter().map(|(k, v)| (*k, *v)));
        weights
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipeline_round_trips_as_json_and_overrides_only_what_it_names() {
        let text = r#"{"sources":{"itemknn":0,"als":2.5},"ranker":false,"explore_share":0.1,"explore_slots":[3],
            "rules":{"pin":[{"item":"i1","position":1}]}}"#;
        let pipeline: PipelineConfig = serde_json::from_str(text).unwrap();
        pipeline.validate().unwrap();
        let again: PipelineConfig = serde_json::from_str(&serde_json::to_string(&pipeline).unwrap()).unwrap();
        assert_eq!(again, pipeline);
        let configured: BTreeMap<SourceKind, f64> =
            [(SourceKind::Als, 1.0), (SourceKind::Popularity, 0.2)].into_iter().collect();
        let weights = pipeline.source_weights(&configured);
        assert_eq!(weights[&SourceKind::Als], 2.5);
        assert_eq!(weights[&SourceKind::Itemknn], 0.0);
        assert_eq!(weights[&SourceKind::Popularity], 0.2);
        // `{}` is the shop's own pipeline, and serialises back to `{"sources":{}}`.
        let default: PipelineConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(default, PipelineConfig::default());
        assert_eq!(default.source_weights(&configured), configured);
    }

    #[test]
    fn bad_fields_are_named() {
        let bad = |text: &str| serde_json::from_str::<PipelineConfig>(text).unwrap().validate().unwrap_err().field;
        assert_eq!(bad(r#"{"sources":{"als":-1}}"#), "sources.als");
        assert_eq!(bad(r#"{"explore_share":1.5}"#), "explore_share");
        assert_eq!(bad(r#"{"explore_slots":[4,2]}"#), "explore_slots");
        assert_eq!(bad(r#"{"rules":{"pin":[{"item":"i1","position":0}]}}"#), "rules.pin[0].position");
        assert!(serde_json::from_str::<PipelineConfig>(r#"{"ranker":true,"surprise":1}"#).is_err());
        let misspelt = serde_json::from_str::<PipelineConfig>(r#"{"sources":{"alss":1}}"#).unwrap_err();
        assert!(misspelt.to_string().contains("alss"), "{misspelt}");
    }
}
