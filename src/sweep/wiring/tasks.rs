//! [`TaskRegistry`]: tasks resolved by name (a built-in task or a task
//! `.toml` file), their problems loaded from the configured data path, and
//! the grading each task gets in this sweep, shared with the renderer and
//! the grader.
//!
//! A task's version is `<task-file format>-<hash>` over the task file's text,
//! the answer region it is graded under and its problems (references
//! included), so editing a prompt, a data file or the region gives new trial
//! ids.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::WiringError;
use crate::generate::StopCriteria;
use crate::grade::Grader;
use crate::prompt::template::RegionMode;
use crate::sweep::{BoxError, LoadedTask, PromptContext, RenderedPrompt, TaskPlan, TaskSource};
use crate::task::{LoadOptions, Problem, SampleCtx, Task, cli as task_cli};

/// A task as this sweep runs it.
#[derive(Debug, Clone)]
pub struct RegisteredTask {
    pub task: Task,
    /// The config's override, else the task's default.
    pub region: RegionMode,
    pub grader: Grader,
}

/// Tasks loaded by the sweep, by configured name. Thread-safe: the grader
/// reads it from the grading pool.
#[derive(Debug, Default)]
pub struct TaskRegistry {
    tasks: Mutex<HashMap<String, Arc<RegisteredTask>>>,
}

impl TaskRegistry {
    /// A task [`TaskSource::load`] has loaded.
    pub fn get(&self, name: &str) -> Result<Arc<RegisteredTask>, WiringError> {
        let tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks
            .get(name)
            .cloned()
            .ok_or_else(|| WiringError::UnknownTask {
                task: name.to_string(),
            })
    }

    /// `problem` of the context's task rendered as a chat prompt:
    /// `tokenize` turns the user message into the prompt's tokens and
    /// gives the EOS ids generation stops at.
    pub fn chat_prompt(
        &self,
        problem: &Problem,
        ctx: &PromptContext<'_>,
        tokenize: impl FnOnce(&str) -> Result<(Vec<u32>, Vec<u32>), BoxError>,
    ) -> Result<RenderedPrompt, BoxError> {
        let entry = self.get(ctx.task)?;
        let rendered = entry
            .task
            .render(problem, SampleCtx { repeat: ctx.repeat })?;
        let (tokens, eos_ids) = tokenize(&rendered.user_message)?;
        Ok(RenderedPrompt {
            tokens,
            expected: rendered.expected,
            stop: StopCriteria {
                eos_ids,
                stop_strings: Vec::new(),
            },
        })
    }

    fn load_task(&self, plan: &TaskPlan) -> Result<LoadedTask, WiringError> {
        let task = task_cli::resolve(&plan.name)?;
        let options = match &plan.data {
            Some(path) => LoadOptions::with_data(path),
            None => LoadOptions::from_env(),
        };
        let report = task
            .load_problems(&options)
            .map_err(|source| WiringError::TaskData {
                task: plan.name.clone(),
                source,
            })?;
        let region = plan.answer_region.unwrap_or(task.answer_region);
        let text = task_text(&plan.name).unwrap_or_default();
        let version = task_version(task.version, &text, region, &report.problems);
        let registered = RegisteredTask {
            grader: Grader::for_task(&task.grader),
            region,
            task,
        };
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(plan.name.clone(), Arc::new(registered));
        Ok(LoadedTask {
            version,
            problems: report.problems,
        })
    }
}

impl TaskSource for TaskRegistry {
    fn load(&self, task: &TaskPlan) -> Result<LoadedTask, BoxError> {
        Ok(self.load_task(task)?)
    }
}

/// The text of the task file `name` resolves to (as [`task_cli::resolve`]
/// resolves it): the file's, or the built-in one's.
fn task_text(name: &str) -> Option<String> {
    let path = Path::new(name);
    if name.ends_with(".toml") || path.is_file() {
        std::fs::read_to_string(path).ok()
    } else {
        Task::builtin_text(name).map(str::to_string)
    }
}

/// `<format>-<first 12 hex digits of SHA-256>` of the task file text, the
/// region label and the problems as JSON, each followed by a newline.
pub fn task_version(format: u32, text: &str, region: RegionMode, problems: &[Problem]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(text.as_bytes());
    hasher.update(b"\n");
    let region = serde_json::to_string(&region).unwrap_or_default();
    hasher.update(region.as_bytes());
    hasher.update(b"\n");
    for p in problems {
        // Problems are plain data: serialising cannot fail.
        hasher.update(serde_json::to_vec(p).unwrap_or_default());
        hasher.update(b"\n");
    }
    format!("{format}-{}", &hex::encode(hasher.finalize())[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(name: &str) -> TaskPlan {
        TaskPlan {
            name: name.into(),
            data: None,
            limit: None,
            problems: None,
            answer_region: None,
            selected: true,
        }
    }

    #[test]
    fn arith_loads_with_its_own_region_and_a_stable_version() {
        let registry = TaskRegistry::default();
        let a = registry.load_task(&plan("arith")).unwrap();
        let b = TaskRegistry::default().load_task(&plan("arith")).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.problems.len(), 100);
        let text = Task::builtin_text("arith").unwrap();
        assert_eq!(
            a.version,
            task_version(1, text, RegionMode::Whole, &a.problems)
        );
        assert_eq!(registry.get("arith").unwrap().region, RegionMode::Whole);
        assert!(registry.get("aime24").is_err());
    }

    #[test]
    fn region_override_and_problems_change_the_version() {
        let text = "t";
        let p = TaskRegistry::default()
            .load_task(&plan("arith"))
            .unwrap()
            .problems;
        let base = task_version(1, text, RegionMode::Strict, &p);
        assert_ne!(base, task_version(1, text, RegionMode::Whole, &p));
        assert_ne!(base, task_version(1, "u", RegionMode::Strict, &p));
        assert_ne!(base, task_version(1, text, RegionMode::Strict, &p[1..]));
        assert!(base.starts_with("1-") && base.len() == 14, "{base}");

        let registry = TaskRegistry::default();
        let mut whole = plan("arith");
        whole.answer_region = Some(RegionMode::Strict);
        let v = registry.load_task(&whole).unwrap().version;
        assert_ne!(
            v,
            TaskRegistry::default()
                .load_task(&plan("arith"))
                .unwrap()
                .version
        );
        assert_eq!(registry.get("arith").unwrap().region, RegionMode::Strict);
    }

    #[test]
    fn a_data_path_is_read_exactly() {
        let data = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/aime24/nemo_skills_aime24_test.jsonl");
        let mut p = plan("aime24");
        p.data = Some(data.display().to_string());
        let loaded = TaskRegistry::default().load_task(&p).unwrap();
        assert_eq!(loaded.problems.len(), 30);
        p.data = Some("no/such/file.jsonl".into());
        let err = crate::error_chain(&TaskRegistry::default().load_task(&p).unwrap_err());
        assert!(
            err.contains("aime24") && err.contains("no/such/file.jsonl"),
            "{err}"
        );
    }
}
