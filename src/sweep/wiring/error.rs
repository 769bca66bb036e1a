//! Errors of the real sweep stages: each names the model, task or file it
//! hit. They reach the sweep as boxed errors (harness failures); a wrong or
//! missing answer is never one of them.

use std::path::PathBuf;

use crate::grade::{GradeError, SandboxError};
use crate::model::LoadError;
use crate::runtime::RuntimeError;
use crate::task::{RenderError, TaskError};

/// A failure of the sweep's real model, task, prompt or grading stage.
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    #[error(
        "no model at `{path}` (a model on the Hugging Face Hub is written `hf:ORG/NAME[@REV]`)"
    )]
    NoModel { path: PathBuf },
    #[error("model `{model}`")]
    Hub {
        model: String,
        /// Boxed: keeps every `Result<_, WiringError>` small.
        #[source]
        source: Box<crate::hub::HubError>,
    },
    #[error("failed to hash `{path}`")]
    Hash {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to inspect model `{path}`")]
    Inspect {
        path: PathBuf,
        #[source]
        source: LoadError,
    },
    #[error("`{path}`: invalid config.json")]
    ConfigJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("failed to load model `{path}`")]
    LoadModel {
        path: String,
        #[source]
        source: RuntimeError,
    },
    #[error("failed to build the prompt of problem `{problem}`")]
    Prompt {
        problem: String,
        #[source]
        source: RuntimeError,
    },
    #[error(transparent)]
    Task(#[from] TaskError),
    #[error("failed to load the problems of task `{task}`")]
    TaskData {
        task: String,
        #[source]
        source: crate::task::DataError,
    },
    #[error("task `{task}` was not loaded by this sweep")]
    UnknownTask { task: String },
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("task `{task}`")]
    Grade {
        task: String,
        #[source]
        source: GradeError,
    },
    #[error("the code sandbox could not be set up: {0}")]
    Sandbox(String),
    #[error(
        "the `{policy}` cache policy runs on the CPU engine only (device engines run dense and dms)"
    )]
    UnsupportedPolicy { policy: &'static str },
    #[error(transparent)]
    Policy(#[from] crate::kv::KvError),
    #[error("`{path}`: {detail}")]
    PromptModel { path: PathBuf, detail: String },
    #[error(transparent)]
    Remote(#[from] super::remote::RemoteError),
}

impl From<SandboxError> for WiringError {
    fn from(e: SandboxError) -> Self {
        WiringError::Sandbox(crate::error_chain(&e))
    }
}
