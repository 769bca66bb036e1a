//! Errors of the results directory: IO and malformed files, each naming the
//! file (and line) it concerns.

use std::path::PathBuf;

/// A results file that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("failed to {action} `{path}`")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` line {line}: malformed record: {message}")]
    Malformed {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("`{path}` line {line}: duplicate record `{sample_id}` (first on line {first})")]
    Duplicate {
        path: PathBuf,
        line: usize,
        first: usize,
        sample_id: String,
    },
    #[error("`{path}`: malformed manifest: {message}")]
    Manifest { path: PathBuf, message: String },
    #[error("failed to write `{path}`: {message}")]
    Parquet { path: PathBuf, message: String },
    /// Another process (or another open in this one) holds the run
    /// directory's lock.
    #[error(
        "`{dir}` is in use by another sweep ({holder}); wait for it to finish or stop it, then run again"
    )]
    Locked { dir: PathBuf, holder: String },
}

impl RecordError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        RecordError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
