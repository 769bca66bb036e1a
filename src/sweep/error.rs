//! Errors of the sweep stage. Config mistakes are one line naming the key;
//! harness failures name the trial, problem or sample they hit. A wrong or
//! truncated answer is not an error: it is a verdict in the record.

use std::path::PathBuf;

use crate::record::RecordError;

/// An error from an implementation behind one of the sweep's boundary traits
/// (model catalog, task source, renderer, generator, grader).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A config that cannot be run: `file: key: message`, one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {key}: {message}")]
pub struct ConfigError {
    /// The config file (or `command line` for filters).
    pub file: String,
    /// Dotted key path, e.g. `grid.methods[1].cr`, or a flag such as `--tasks`.
    pub key: String,
    pub message: String,
}

/// Why a sweep stopped.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("failed to read config `{path}`")]
    ReadConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(
        "`{dir}` holds a run of a different config ({difference}); pass --new-run to start a new run there (the old one is moved aside)"
    )]
    ConfigChanged { dir: PathBuf, difference: String },
    #[error(
        "`{dir}` was written with record format {found}, this binary writes {expected}; pass --new-run"
    )]
    FormatMismatch {
        dir: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("failed to move the previous run `{from}` to `{to}`")]
    MoveAside {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to render problem `{problem}` of task `{task}`")]
    Render {
        task: String,
        problem: String,
        #[source]
        source: BoxError,
    },
    #[error("generation failed in trial {trial} ({label}) on problem `{problem}`")]
    Generate {
        trial: String,
        label: String,
        problem: String,
        #[source]
        source: BoxError,
    },
    #[error("generator broke its contract in trial {trial} on problem `{problem}`: {message}")]
    GeneratorContract {
        trial: String,
        problem: String,
        message: String,
    },
    #[error("grading sample `{sample_id}` failed")]
    Grade {
        sample_id: String,
        #[source]
        source: BoxError,
    },
    #[error("the sweep's async runtime failed: {0}")]
    Runtime(String),
    /// A record arrived after the session was closed (by a signal).
    #[error("the session was closed; no more records are written")]
    Closed,
    /// Every sample of the session is an error record: nothing was measured.
    #[error(
        "every one of the {records} records this session wrote in `{dir}` is an error record (the engine failed on every sample); fix the engine, then run the same command again: a resume retries error records"
    )]
    AllFailed { dir: PathBuf, records: u64 },
}
