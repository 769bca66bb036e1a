//! Errors of DMS retrofitting: loading the base, reading training data,
//! writing checkpoints and logs.

use std::path::PathBuf;

use thiserror::Error;

use crate::model::LoadError;

/// Everything that can stop a training run.
#[derive(Debug, Error)]
pub enum TrainError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("invalid training setting `{field}`: {reason}")]
    Setting { field: &'static str, reason: String },
    #[error("failed to read training data `{path}`")]
    ReadData {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("training data `{path}` line {line}: {reason}")]
    BadData {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("training data has no sequence of at least 2 tokens")]
    NoData,
    #[error("failed to write `{path}`")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to serialise checkpoint `{path}`: {reason}")]
    Serialize { path: PathBuf, reason: String },
    #[error("tokenizer failed on training text: {0}")]
    Tokenize(String),
}
