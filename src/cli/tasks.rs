//! Flags of `tasks`, `data` and `grade`: the built-in tasks, their data
//! from the Hub, and re-grading saved completions.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::values::VoteArg;

#[derive(Debug, Args)]
pub struct GradeArgs {
    /// A built-in task name or a task `.toml` file.
    #[arg(long)]
    pub task: String,
    /// JSONL file of completions.
    #[arg(long)]
    pub completions: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// Which text is graded. Default: the task file's.
    #[arg(long, value_enum)]
    pub region: Option<crate::prompt::template::RegionMode>,
    /// The repeat of completions lines that carry no `repeat` field; a line
    /// with one is graded against its own repeat's multiple-choice order.
    #[arg(long, default_value_t = 0)]
    pub repeat: u32,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// What maj@k votes on.
    #[arg(long, value_enum, default_value_t = VoteArg::Raw)]
    pub vote: VoteArg,
    /// Run generated code even where it cannot be isolated (not root and no
    /// usable user namespaces): it then runs with your user's access to your
    /// files, network and processes. See docs/security.md.
    #[arg(long)]
    pub unsafe_no_sandbox: bool,
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Download a task's official files (its `[source.hub]`) into the
    /// Hugging Face cache, where `tasks show`, `grade` and `sweep` find them.
    Fetch(DataFetchArgs),
}

#[derive(Debug, Args)]
pub struct DataFetchArgs {
    /// A built-in task name or a task `.toml` file.
    pub task: String,
    /// Branch, tag or commit of the dataset. Default: the task file's.
    #[arg(long)]
    pub revision: Option<String>,
    /// Also copy the files into this folder (then usable with `--data DIR`).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    /// The built-in tasks with their versions and sources.
    List,
    /// Load a task's problems and show a few.
    Show(TasksShowArgs),
}

#[derive(Debug, Args)]
pub struct DataArgs {
    /// The task's data: a file, or a folder holding its files. Default:
    /// `$HYPERSCALE_DATA/<task>/…`, then `data/<task>/…`, then the Hugging
    /// Face cache (after `hyperscale data fetch <task>`).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Skip malformed lines (each listed with its reason) instead of failing.
    #[arg(long)]
    pub lenient: bool,
    /// Password of a protected zip (GPQA's `dataset.zip`); default: the task file's.
    #[arg(long)]
    pub password: Option<String>,
}

#[derive(Debug, Args)]
pub struct TasksShowArgs {
    /// A built-in task name (see `tasks list`) or a task `.toml` file.
    pub task: String,
    #[command(flatten)]
    pub data: DataArgs,
    /// How many problems to show.
    #[arg(long, default_value_t = 5)]
    pub limit: usize,
}
