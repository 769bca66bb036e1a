//! Errors of the task stage: reading a task file ([`TaskError`]), loading its
//! data ([`DataError`]) and rendering a problem ([`RenderError`]).

use std::path::PathBuf;

use thiserror::Error;

use crate::prompt::template::TemplateError;

/// A task file that cannot be read or is not valid.
#[derive(Debug, Error)]
pub enum TaskError {
    #[error("failed to read task file `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid task file `{path}`")]
    Parse {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("task file `{path}` has version {found}; this build reads version {supported}")]
    Version {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("task file `{path}`: field `{field}`: {reason}")]
    Invalid {
        path: PathBuf,
        field: String,
        reason: String,
    },
    #[error("task file `{path}`: field `{field}`")]
    Template {
        path: PathBuf,
        field: String,
        #[source]
        source: TemplateError,
    },
    #[error("unknown task `{name}` (built-in tasks: {known})")]
    UnknownBuiltin { name: String, known: String },
}

/// Data that cannot be found or read. Messages name the file, the 1-based line
/// (for CSV: the line the record starts on) and the field.
#[derive(Debug, Error)]
pub enum DataError {
    #[error(
        "no data for task `{task}`: looked for {}{}",
        list(.searched),
        if *.fetch { format!(" (download it with `hyperscale data fetch {task}`)") } else { String::new() }
    )]
    NotFound {
        task: String,
        searched: Vec<PathBuf>,
        /// The task has a `[source.hub]`: `data fetch` can get it.
        fetch: bool,
    },
    #[error("task `{task}` is generated and reads no data (got `{path}`)")]
    Generated { task: String, path: PathBuf },
    #[error("failed to read `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: field `{field}`: {reason}", .path.display())]
    Field {
        path: PathBuf,
        line: usize,
        field: String,
        reason: String,
    },
    #[error("{}:{line}: {reason}", .path.display())]
    Line {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("failed to open zip archive `{path}`")]
    Zip {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    #[error(
        "cannot decrypt `{member}` in `{path}`: {detail} (wrong password? set it with the task's `zip_password` or --password)"
    )]
    ZipDecrypt {
        path: PathBuf,
        member: String,
        detail: String,
    },
    #[error("`{path}` has no problems")]
    Empty { path: PathBuf },
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| format!("`{}`", p.display()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A problem that cannot be rendered with this task.
#[derive(Debug, Error)]
pub enum RenderError {
    #[error("task `{task}` renders {expected} problems; problem `{problem}` is {found}")]
    WrongKind {
        task: String,
        problem: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error(
        "problem `{problem}`: metadata field `{field}` is missing or not a non-negative integer"
    )]
    Metadata {
        problem: String,
        field: &'static str,
    },
    #[error("problem `{problem}`")]
    Template {
        problem: String,
        #[source]
        source: TemplateError,
    },
}
