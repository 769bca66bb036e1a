//! [`TaskGrader`]: each sample graded by its task's grader on the answer
//! region this sweep uses for the task; code runs in one sandbox shared by
//! the grading pool, created on the first code sample.

use std::sync::{Arc, OnceLock};

use super::{TaskRegistry, WiringError};
use crate::grade::{FailureKind, Grader, Outcome, Sandbox, SandboxConfig, Verdict};
use crate::prompt::template::answer_region;
use crate::sweep::{BoxError, GradeOutcome, SampleGrader};
use crate::task::Expected;

/// Grades samples of the tasks in a [`TaskRegistry`].
pub struct TaskGrader {
    tasks: Arc<TaskRegistry>,
    config: SandboxConfig,
    /// Set up once; an error is kept and reported for every code sample.
    sandbox: OnceLock<Result<Sandbox, String>>,
}

impl TaskGrader {
    pub fn new(tasks: Arc<TaskRegistry>, config: SandboxConfig) -> Self {
        TaskGrader {
            tasks,
            config,
            sandbox: OnceLock::new(),
        }
    }

    fn sandbox(&self) -> Result<&Sandbox, WiringError> {
        self.sandbox
            .get_or_init(|| Sandbox::new(self.config.clone()).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| WiringError::Sandbox(e.clone()))
    }

    /// The verdict of `text` on `task`.
    pub fn verdict(
        &self,
        task: &str,
        expected: &Expected,
        text: &str,
    ) -> Result<Verdict, WiringError> {
        let entry = self.tasks.get(task)?;
        let sandbox = match entry.grader {
            Grader::Code { .. } => Some(self.sandbox()?),
            _ => None,
        };
        let region = answer_region(text, entry.region);
        entry
            .grader
            .grade(region, expected, sandbox)
            .map_err(|source| WiringError::Grade {
                task: task.to_string(),
                source,
            })
    }
}

impl SampleGrader for TaskGrader {
    fn grade(&self, task: &str, expected: &Expected, text: &str) -> Result<GradeOutcome, BoxError> {
        let verdict = self.verdict(task, expected, text)?;
        Ok(GradeOutcome {
            verdict: verdict_label(&verdict),
            is_correct: verdict.is_correct(),
            // The majority-vote key (normalised), else the raw extraction.
            extracted: verdict.vote_key.clone().or(verdict.extracted),
        })
    }
}

/// The record's verdict label: the outcome (`correct`, `incorrect`,
/// `no_answer`, `error`), except that code failing other than by a wrong
/// answer is labelled by its failure (`timeout`, `runtime_error`, `memory`,
/// `output_limit`).
pub fn verdict_label(v: &Verdict) -> String {
    match (v.outcome, v.failure) {
        (Outcome::Incorrect, Some(f)) if f != FailureKind::WrongAnswer => snake_name(&f),
        (o, _) => snake_name(&o),
    }
}

/// The serde name of a unit enum variant.
fn snake_name<T: serde::Serialize>(x: &T) -> String {
    match serde_json::to_value(x) {
        Ok(serde_json::Value::String(s)) => s,
        _ => "unknown".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::{TaskPlan, TaskSource};

    fn grader_with(task: &str, data: Option<&str>) -> TaskGrader {
        let registry = Arc::new(TaskRegistry::default());
        let data = data.map(|d| {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
            root.join(d).display().to_string()
        });
        registry
            .load(&TaskPlan {
                name: task.into(),
                data,
                limit: None,
                problems: None,
                answer_region: None,
                selected: true,
            })
            .unwrap();
        TaskGrader::new(registry, SandboxConfig::default())
    }

    #[test]
    fn arith_grades_the_whole_text_with_the_last_number_fallback() {
        let g = grader_with("arith", None);
        let expected = Expected::Math {
            answer: "42".into(),
        };
        let right = g.grade("arith", &expected, "so the total is 42").unwrap();
        assert_eq!(
            right,
            GradeOutcome {
                verdict: "correct".into(),
                is_correct: true,
                extracted: Some("42".into()),
            }
        );
        let wrong = g.grade("arith", &expected, r"\boxed{41}").unwrap();
        assert_eq!(
            (wrong.verdict.as_str(), wrong.is_correct),
            ("incorrect", false)
        );
        let none = g.grade("arith", &expected, "no idea").unwrap();
        assert_eq!(none.verdict, "no_answer");
        assert!(g.grade("aime24", &expected, "1").is_err());
    }

    #[test]
    fn code_runs_in_the_sandbox_after_the_think_tag() {
        let g = grader_with(
            "livecodebench",
            Some("tests/data/livecodebench/lcb_v5_2408_2501_derived_public_only.jsonl"),
        );
        let expected = Expected::Code {
            tests: vec![crate::task::TestCase {
                input: "21\n".into(),
                output: "42\n".into(),
                kind: crate::task::TestKind::Stdin,
            }],
            fn_name: None,
        };
        let program = "```python\nprint(int(input()) * 2)\n```";
        let right = g
            .grade("livecodebench", &expected, &format!("hmm</think>{program}"))
            .unwrap();
        assert_eq!(
            (right.verdict.as_str(), right.is_correct),
            ("correct", true)
        );
        let wrong = "</think>```python\nprint(int(input()) + 2)\n```";
        let wrong = g.grade("livecodebench", &expected, wrong).unwrap();
        assert_eq!(wrong.verdict, "incorrect");
        // The task's strict region: no `</think>`, no answer.
        let unfinished = g.grade("livecodebench", &expected, program).unwrap();
        assert_eq!(unfinished.verdict, "no_answer");
    }

    #[test]
    fn code_failures_are_labelled_by_kind() {
        let mut v = Verdict::answer(Outcome::Incorrect, None, None);
        v.failure = Some(FailureKind::Timeout);
        assert_eq!(verdict_label(&v), "timeout");
        v.failure = Some(FailureKind::WrongAnswer);
        assert_eq!(verdict_label(&v), "incorrect");
        assert_eq!(verdict_label(&Verdict::sandbox_error("x")), "error");
    }
}
