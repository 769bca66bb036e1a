//! Errors of loading a model: every message names the file and the tensor or
//! field at fault.

use std::path::PathBuf;

/// A model, tokenizer or configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("failed to read `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}`: missing tensor `{name}`")]
    MissingTensor { path: PathBuf, name: String },
    #[error("`{path}`: tensor `{name}` has shape {got:?}, expected {expected:?}")]
    ShapeMismatch {
        path: PathBuf,
        name: String,
        expected: Vec<usize>,
        got: Vec<usize>,
    },
    #[error("`{path}` is truncated: {detail}")]
    Truncated { path: PathBuf, detail: String },
    #[error("`{path}`: tensor `{name}` has unsupported type {kind}")]
    UnsupportedType {
        path: PathBuf,
        name: String,
        kind: String,
    },
    #[error("`{path}`: field `{field}`: {reason}")]
    BadField {
        path: PathBuf,
        field: String,
        reason: String,
    },
    #[error("`{path}`: {detail}")]
    Format { path: PathBuf, detail: String },
}
