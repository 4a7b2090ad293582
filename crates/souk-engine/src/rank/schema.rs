//! The ranker's feature names, in row order: the one list that the feature rows, the
//! trained models and the online click model agree on.

/// Feature names, in row order.
pub const FEATURES: &[&str] = &[
    "blend_score",
    "blend_rank_log",
    "cf_present",
    "cf_score",
    "cf_rank_log",
    "factor_score",
    "knn_present",
    "knn_score",
    "knn_rank_log",
    "popularity_present",
    "popularity_rank_log",
    "keyword_present",
    "keyword_score",
    "keyword_rank_log",
    "vector_present",
    "vector_score",
    "vector_rank_log",
    "item_events_log",
    "item_trend",
    "item_ctr",
    "item_conversion",
    "item_rating",
    "item_price_log",
    "item_price_position",
    "item_available",
    "user_events_log",
    "user_funnel_stage",
    "user_price_position",
    "category_affinity",
    "category_path_share",
    "brand_affinity",
    "price_fit",
    // The online click model's prediction at slot 1 (see `rank::online`); last, because it
    // reads the rest of the row.
    "online_ctr",
];

/// Number of features in a row.
pub const FEATURE_COUNT: usize = FEATURES.len();
