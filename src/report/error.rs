//! Errors of the report stage, each naming the file or run it concerns.

use std::path::PathBuf;

use crate::record::RecordError;

/// A report or comparison that cannot be produced.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("`{dir}` holds no sample records (expected `{file}`)")]
    NoRecords { dir: PathBuf, file: String },
    #[error("failed to write `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to draw `{path}`: {message}")]
    Plot { path: PathBuf, message: String },
    #[cfg(feature = "report")]
    #[error("dataframe operation failed")]
    Polars(#[from] polars::error::PolarsError),
}

impl ReportError {
    /// Only the `report` feature's writers write files.
    #[cfg(feature = "report")]
    pub(crate) fn write(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ReportError::Write {
            path: path.into(),
            source,
        }
    }
}
