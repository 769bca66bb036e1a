//! [`CommandError`]: a flag's value refused, or a stage's own error passed
//! through with its message unchanged.

use std::path::PathBuf;

/// Why a command stopped.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// A flag's value (or combination of flags) that cannot run; the
    /// message names the flag.
    #[error("{0}")]
    Usage(String),
    #[error("failed to read prompt file `{path}`")]
    ReadPrompt {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to write `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Device(#[from] crate::device::DeviceError),
    #[error(transparent)]
    Hub(#[from] crate::hub::HubError),
    #[error(transparent)]
    Fetch(#[from] crate::hub::FetchError),
    #[error(transparent)]
    Runtime(#[from] crate::runtime::RuntimeError),
    #[error(transparent)]
    Kv(#[from] crate::kv::KvError),
    #[error(transparent)]
    Task(#[from] crate::task::TaskError),
    #[error(transparent)]
    TaskData(#[from] crate::task::DataError),
    #[error(transparent)]
    Sandbox(#[from] crate::grade::SandboxError),
    #[error(transparent)]
    Grade(#[from] crate::grade::GradeError),
    #[error(transparent)]
    Sweep(#[from] crate::sweep::SweepError),
    #[error(transparent)]
    Train(#[from] crate::train::TrainError),
    #[error(transparent)]
    Throughput(#[from] crate::bench::throughput::ThroughputError),
    #[cfg(feature = "report")]
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
}

impl CommandError {
    /// A refusal naming a flag: `usage(format!("--flag …"))`.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::Usage(message.into())
    }
}
