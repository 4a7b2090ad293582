//! Recommendation models: training data, the model trait, and the models themselves.
//!
//! Owns: turning stored events into a weighted user × item matrix ([`Interactions`],
//! event weights from configuration), the [`Recommender`] trait every model implements,
//! and the models (popularity, item-kNN, RP3beta, implicit ALS, EASE/DLAE, ∞-AE, blends of
//! them, the content map into ALS's space and content similarity), their registry and
//! their versioned artifacts. Never touches the store's files or the network: training
//! reads an `Interactions` value, serving calls [`Recommender::score`], saving writes to a
//! caller's writer.

pub mod als;
mod als_cg;
pub mod artifact;
pub mod blend;
pub mod content;
pub mod data;
pub mod demographic;
pub mod ease;
pub mod graph;
pub mod infinite_ae;
pub mod itemknn;
pub mod ivf;
pub(crate) mod kernels;
pub mod live_index;
pub mod popularity;
pub mod projected;
pub mod registry;
pub mod rp3beta;
pub mod session_knn;
pub mod social;
mod source_kind;

pub use als::{AlsModel, AlsParams};
pub use artifact::Artifact;
pub use blend::{BlendModel, BlendParams};
pub use data::SocialEdges;
pub use data::{EventWeights, Interactions, InteractionsBuilder};
pub use ease::{EaseModel, EaseParams};
pub use graph::{GraphParams, ItemGraph};
pub use infinite_ae::{InfiniteAeModel, InfiniteAeParams};
pub use itemknn::{ItemKnnModel, ItemKnnParams};
pub use popularity::{PopularityModel, PopularityParams};
pub use registry::{default_grid, load_model, save_model, train_model, MODELS};
pub use rp3beta::{Rp3betaModel, Rp3betaParams};
pub use session_knn::{SessionKnn, SessionKnnParams};
pub use social::{SocialModel, SocialParams};
pub use source_kind::SourceKind;

/// A trained model: scores every item for a user.
///
/// `user` is the user's row in the training [`Interactions`] when the user was seen in
/// training, `None` otherwise; `history` is the user's (item index, weight) pairs — for a
/// known user normally their training row, for a new user whatever is known now (the model
/// folds it in). Implementations write one score per item into `scores` (length =
/// number of training items); higher is better. They must not allocate per item.
pub trait Recommender: Send + Sync {
    /// Short model name, e.g. `als`.
    fn name(&self) -> &str;
    fn score(&self, user: Option<u32>, history: &[(u32, f32)], scores: &mut [f32]);

    /// Scores for a serving request: `history` is the user's live history (always folded
    /// in, so that events since training count) and `user` their training row when they
    /// were seen in training. Models that know something of a user beyond the history
    /// (the social model: their friends) use `user`; the others score the history alone.
    fn score_live(&self, user: Option<u32>, history: &[(u32, f32)], scores: &mut [f32]) {
        let _ = user;
        self.score(None, history, scores);
    }

    /// The model as data, for saving (see `registry::save_model`); `None` for models that
    /// cannot be saved.
    fn to_artifact(&self) -> Option<Artifact> {
        None
    }
}
