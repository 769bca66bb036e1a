//! The task as run: [`Task`], parsed from TOML into a [`TaskFile`] and
//! validated (`validate.rs`) by [`Task::from_toml`]. Built-in task files (`tasks/*.toml`) are embedded in
//! the binary, so `Task::builtin("aime24")` works without the repository.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::choices::ChoiceSchedule;
use super::error::TaskError;
use super::file::TaskFile;
use super::source::Source;
use super::validate::validate;
use crate::hub::Repo;
use crate::prompt::template::{RegionMode, Template};

/// The built-in task files, by name.
const BUILTIN: [(&str, &str); 5] = [
    ("aime24", include_str!("../../tasks/aime24.toml")),
    ("aime25", include_str!("../../tasks/aime25.toml")),
    (
        "gpqa-diamond",
        include_str!("../../tasks/gpqa-diamond.toml"),
    ),
    (
        "livecodebench",
        include_str!("../../tasks/livecodebench.toml"),
    ),
    ("arith", include_str!("../../tasks/arith.toml")),
];

/// A validated task: where its problems come from, how they are prompted and
/// graded, and its default sampling.
#[derive(Debug, Clone)]
pub struct Task {
    pub name: String,
    /// Task-file format version it was read from.
    pub version: u32,
    pub description: String,
    pub source: Source,
    pub prompt: PromptSpec,
    /// Default answer region; a run may override it (e.g. `whole` for a
    /// model that does not think in tags).
    pub answer_region: RegionMode,
    pub grader: GraderSpec,
    /// Where `hyperscale data fetch` downloads the official files; the
    /// loader also looks for them in the Hub cache.
    pub hub: Option<HubSource>,
    pub sampling: SamplingDefaults,
}

/// A validated `[source.hub]`: a repository at a revision and the files
/// the loader reads from it (all of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubSource {
    pub repo: Repo,
    pub files: Vec<String>,
}

/// How problems become user messages; the variant matches the task's data.
#[derive(Debug, Clone)]
pub enum PromptSpec {
    /// `{{problem}}`.
    Math { template: Template },
    /// `{{question}}`, `{{A}}`…`{{D}}`, options ordered per repeat.
    MultipleChoice {
        template: Template,
        choices: ChoiceSchedule,
    },
    /// `with_starter`: `{{question}}`, `{{starter_code}}`; `stdin`: `{{question}}`.
    Code {
        with_starter: Template,
        stdin: Template,
    },
}

/// Which grader a task uses, with its options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GraderSpec {
    /// Last `\boxed{…}`, normalised, integer compare.
    Math {
        /// Grade the last number when nothing is boxed (Qwen-style).
        fallback_last_number: bool,
    },
    /// simple-evals `Answer: X` regex, first match.
    MultipleChoice,
    /// Run the extracted program against the tests.
    Code { test_timeout: Duration },
}

/// Default decoding settings of a task.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingDefaults {
    pub temperature: f64,
    pub top_p: f64,
    /// `None`: no top-k cut.
    pub top_k: Option<u32>,
    pub max_new_tokens: u32,
    /// Samples per problem.
    pub samples: u32,
}

impl Task {
    /// Reads and validates a task file.
    pub fn load(path: &Path) -> Result<Self, TaskError> {
        let text = std::fs::read_to_string(path).map_err(|source| TaskError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// A built-in task by name (`aime24`, `aime25`, `gpqa-diamond`,
    /// `livecodebench`, `arith`).
    pub fn builtin(name: &str) -> Result<Self, TaskError> {
        let (_, text) =
            BUILTIN
                .iter()
                .find(|(n, _)| *n == name)
                .ok_or_else(|| TaskError::UnknownBuiltin {
                    name: name.to_string(),
                    known: Self::builtin_names().join(", "),
                })?;
        Self::from_toml(text, &PathBuf::from(format!("<builtin>/tasks/{name}.toml")))
    }

    /// Names of the built-in tasks.
    pub fn builtin_names() -> Vec<&'static str> {
        BUILTIN.iter().map(|(n, _)| *n).collect()
    }

    /// The built-in task file text, as embedded.
    pub fn builtin_text(name: &str) -> Option<&'static str> {
        BUILTIN.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }

    /// Parses TOML text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self, TaskError> {
        let file: TaskFile = toml::from_str(text).map_err(|e| TaskError::Parse {
            path: origin.to_path_buf(),
            source: Box::new(e),
        })?;
        validate(file, origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_validates() {
        for name in Task::builtin_names() {
            let task = Task::builtin(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(task.name, name);
            assert_eq!(task.version, crate::task::file::TASK_FILE_VERSION);
        }
        assert!(matches!(
            Task::builtin("aime23"),
            Err(TaskError::UnknownBuiltin { .. })
        ));
    }

    #[test]
    fn load_reads_a_file_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mine.toml");
        let text = Task::builtin_text("arith")
            .unwrap()
            .replace("name = \"arith\"", "name = \"mine\"");
        std::fs::write(&path, text).unwrap();
        assert_eq!(Task::load(&path).unwrap().name, "mine");
        assert!(matches!(
            Task::load(&dir.path().join("none.toml")),
            Err(TaskError::Read { .. })
        ));
    }
}
