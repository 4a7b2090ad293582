//! The names of recall sources: what a reason says proposed an item, what a pipeline's
//! fusion weights are keyed by. A closed set, so that a misspelt source in a pipeline or in
//! configuration is refused, not silently weighted 0.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A recall source (or, for `pin`, the rule that placed an item). Serialised in snake case:
/// `als`, `itemknn`, `infinite_ae`…
/// The default is `popularity`, the source every page has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// Collaborative models (the registry's models that serve as recall sources).
    Als,
    Ease,
    InfiniteAe,
    Blend,
    Rp3beta,
    /// The social model: a collaborative model pulled towards the user's friends' taste.
    Social,
    /// Items the users the shopper follows interacted with lately ("friends bought").
    Friends,
    /// Item-kNN on the recent history ("because you viewed X"); for similar items, the
    /// item's neighbours.
    Itemknn,
    /// Items like those of the shopper's session still going on.
    Session,
    /// Items whose content (catalog facts, text and image vectors) is nearest to the
    /// shopper's recent items, or to the item asked about.
    Content,
    /// Items sharing catalog entities (a director, a brand, a category…) with the
    /// shopper's recent items, by relation ("same director as X").
    Graph,
    /// What shoppers sharing a new shopper's attributes (age band, gender, region…) like.
    Demographic,
    /// Popular items in the categories and brands a new shopper said they like.
    Preferences,
    /// The most popular items.
    #[default]
    Popularity,
    /// Popular lately, on the shop's clock.
    Trending,
    /// Catalog items sharing the category path or brand (similar items without neighbours).
    Catalog,
    /// Bought in the same basket as the item asked about (lift over chance).
    BoughtTogether,
    /// A pin rule placed the item.
    Pin,
    /// An exploration slot: a new or little-shown item the shop is learning about.
    Explore,
}

impl SourceKind {
    /// Every source, in declaration order.
    pub const ALL: [SourceKind; 19] = [
        Self::Als,
        Self::Ease,
        Self::InfiniteAe,
        Self::Blend,
        Self::Rp3beta,
        Self::Social,
        Self::Friends,
        Self::Itemknn,
        Self::Session,
        Self::Content,
        Self::Graph,
        Self::Demographic,
        Self::Preferences,
        Self::Popularity,
        Self::Trending,
        Self::Catalog,
        Self::BoughtTogether,
        Self::Pin,
        Self::Explore,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Als => "als",
            Self::Ease => "ease",
            Self::InfiniteAe => "infinite_ae",
            Self::Blend => "blend",
            Self::Rp3beta => "rp3beta",
            Self::Social => "social",
            Self::Friends => "friends",
            Self::Itemknn => "itemknn",
            Self::Session => "session",
            Self::Content => "content",
            Self::Graph => "graph",
            Self::Demographic => "demographic",
            Self::Preferences => "preferences",
            Self::Popularity => "popularity",
            Self::Trending => "trending",
            Self::Catalog => "catalog",
            Self::BoughtTogether => "bought_together",
            Self::Pin => "pin",
            Self::Explore => "explore",
        }
    }

    /// The source a registry model serves as (`None` for a name that is no model).
    pub fn of_model(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name && super::MODELS.contains(&name))
    }

    /// Whether this is a collaborative model's source (a factor or dense model).
    pub fn is_collaborative(self) -> bool {
        matches!(self, Self::Als | Self::Ease | Self::InfiniteAe | Self::Blend | Self::Rp3beta | Self::Social)
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_json_and_unknown_names_are_refused() {
        for kind in SourceKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<SourceKind>(&json).unwrap(), kind);
        }
        assert!(serde_json::from_str::<SourceKind>("\"alss\"").is_err());
    }

    #[test]
    fn every_registry_model_but_popularity_and_itemknn_is_a_collaborative_source() {
        for name in super::super::MODELS {
            let kind = SourceKind::of_model(name).unwrap_or_else(|| panic!("{name} has no source"));
            assert_eq!(kind.is_collaborative(), !matches!(*name, "popularity" | "itemknn"), "{name}");
        }
        assert_eq!(SourceKind::of_model("trending"), None, "not a model");
    }
}
