//! `hyperscale data fetch <task>`: download a task's official files (its
//! `[source.hub]`) into the Hub cache, where the task loader finds them
//! (see [`crate::task::load`]), and optionally copy them to a folder.

use std::path::{Path, PathBuf};

use super::client::HubClient;
use super::error::HubError;
use super::repo::Repo;
use crate::task::{Source, Task};

/// What a fetch produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFetch {
    pub repo: Repo,
    /// The commit the revision resolved to.
    pub commit: Option<String>,
    /// The files in the cache snapshot, in the task file's order.
    pub files: Vec<PathBuf>,
    /// Copies made under `--out`.
    pub copies: Vec<PathBuf>,
}

/// Why a task's data cannot be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("task `{task}` is generated from a seed and has no data to fetch")]
    Generated { task: String },
    #[error(
        "task `{task}` has no `[source.hub]` in its task file, so there is nothing to fetch; give its data with --data or put it under $HYPERSCALE_DATA/{dir}/ or data/{dir}/"
    )]
    NoHubSource { task: String, dir: String },
    #[error(transparent)]
    Hub(#[from] HubError),
    #[error("failed to copy `{from}` to `{to}`")]
    Copy {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Downloads (or finds in the cache) every file of `task`'s `[source.hub]`
/// at `revision` (default: the task file's), then copies them into `out`
/// (by file name) when given.
pub async fn fetch_task_data(
    client: &HubClient,
    task: &Task,
    revision: Option<&str>,
    out: Option<&Path>,
) -> Result<DataFetch, FetchError> {
    let hub = match (&task.hub, &task.source) {
        (_, Source::Arith(_)) => {
            return Err(FetchError::Generated {
                task: task.name.clone(),
            });
        }
        (Some(hub), _) => hub,
        (None, source) => {
            return Err(FetchError::NoHubSource {
                task: task.name.clone(),
                dir: source_dir(source).to_string(),
            });
        }
    };
    let mut repo = hub.repo.clone();
    if let Some(rev) = revision {
        repo.revision = rev.to_string();
    }
    let resolved = client.resolve(&repo).await?;
    let files = client.files(&resolved, &hub.files).await?;
    let mut copies = Vec::new();
    if let Some(out) = out {
        std::fs::create_dir_all(out).map_err(|source| FetchError::Copy {
            from: PathBuf::new(),
            to: out.to_path_buf(),
            source,
        })?;
        for (name, from) in hub.files.iter().zip(&files) {
            let to = out.join(Path::new(name).file_name().unwrap_or_default());
            std::fs::copy(from, &to).map_err(|source| FetchError::Copy {
                from: from.clone(),
                to: to.clone(),
                source,
            })?;
            copies.push(to);
        }
    }
    Ok(DataFetch {
        commit: resolved.commit().map(str::to_string),
        repo,
        files,
        copies,
    })
}

fn source_dir(source: &Source) -> &str {
    match source {
        Source::Aime { dir, .. } | Source::Gpqa { dir, .. } | Source::LiveCodeBench { dir, .. } => {
            dir
        }
        Source::Arith(_) => "",
    }
}
