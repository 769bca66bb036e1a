//! `hyperscale data fetch` and `hyperscale tasks show`: a task's data.

use std::fmt;

use crate::cli::{DataFetchArgs, TasksShowArgs};
use crate::hub::{self, DataFetch};
use crate::task::cli as task_cli;

use super::{CommandError, inputs::load_options};

/// What `data fetch` downloaded; displayed as the files, the copies and
/// the `tasks show` that now finds them.
#[derive(Debug, Clone)]
pub struct DataFetched {
    /// The task's name.
    pub task: String,
    pub fetch: DataFetch,
}

impl fmt::Display for DataFetched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.fetch;
        writeln!(
            f,
            "{} at `{}` (commit {}):",
            d.repo.id,
            d.repo.revision,
            d.commit.as_deref().unwrap_or("unknown")
        )?;
        for path in &d.files {
            writeln!(f, "  {}", path.display())?;
        }
        for path in &d.copies {
            writeln!(f, "  copied to {}", path.display())?;
        }
        writeln!(f, "`hyperscale tasks show {}` now finds it", self.task)
    }
}

/// Runs `data fetch`: a task's official files into the Hugging Face cache.
pub fn data_fetch(args: &DataFetchArgs) -> Result<DataFetched, CommandError> {
    let task = task_cli::resolve(&args.task)?;
    let client = hub::HubClient::from_env()?;
    let fetch = hub::block_on(hub::fetch_task_data(
        &client,
        &task,
        args.revision.as_deref(),
        args.out.as_deref(),
    ))?;
    Ok(DataFetched {
        task: task.name,
        fetch,
    })
}

/// Runs `tasks show`: the task and its first `--limit` problems, as text.
pub fn tasks_show(args: &TasksShowArgs) -> Result<String, CommandError> {
    let task = task_cli::resolve(&args.task)?;
    Ok(task_cli::show(
        &task,
        &load_options(&args.data),
        args.limit,
    )?)
}
