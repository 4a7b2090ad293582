//! The one error type of the crate. Each variant says where the problem arose: a model file that
//! is absent or unreadable (not found / IO), a file that is present but wrong (bad config, bad
//! weights, bad tokenizer: corruption), a caller's mistake (bad input) or a failure while
//! computing (tensor: internal).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// A file the model needs is not in its directory.
    #[error("model file {path} is missing")]
    MissingFile { path: PathBuf },

    /// A model file exists but could not be read.
    #[error("cannot read model file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A configuration file is not valid JSON, lacks a field, or asks for something this crate
    /// does not implement.
    #[error("bad model config {path}: {message}")]
    BadConfig { path: PathBuf, message: String },

    /// The weights file is not what the config describes: unreadable, a tensor missing, or a
    /// shape that does not match.
    #[error("bad model weights {path}: {message}")]
    BadWeights { path: PathBuf, message: String },

    /// The tokenizer could not be loaded, or failed on an input.
    #[error("tokenizer failed: {message}")]
    Tokenizer { message: String },

    /// The caller asked for something impossible (for example a batch size of zero).
    #[error("bad input: {message}")]
    BadInput { message: String },

    /// A tensor operation failed while embedding; with a correctly loaded model this is a bug.
    #[error("tensor operation failed: {0}")]
    Tensor(#[from] candle_core::Error),
}

impl EmbedError {
    pub(crate) fn bad_config(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> EmbedError {
        EmbedError::BadConfig { path: path.into(), message: message.to_string() }
    }

    pub(crate) fn bad_weights(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> EmbedError {
        EmbedError::BadWeights { path: path.into(), message: message.to_string() }
    }

    pub(crate) fn tokenizer(message: impl std::fmt::Display) -> EmbedError {
        EmbedError::Tokenizer { message: message.to_string() }
    }
}
