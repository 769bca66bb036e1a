//! [`TaskGrader`]: each sample graded by its task's grader on the answer
//! region this sweep uses for the task; code runs in one sandbox shared by
//! the grading pool, created on the first code sample.

use std::sync::{Arc, OnceLock};

use super::{TaskRegistry, WiringError};
use crate::grade::{Grader, Sandbox, SandboxConfig, Verdict};
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
            .get_or_init(|| Sandbox::new(self.config.clone()).map_err(|e| crate::error_chain(&e)))
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
        Ok(GradeOutcome::of(&verdict))
    }
}

/// The record's verdict label ([`Verdict::label`]).
pub fn verdict_label(v: &Verdict) -> String {
    v.label()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grade::{FailureKind, Outcome};
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
                outcome: Outcome::Correct,
                failure: None,
                extracted: Some("42".into()),
                vote_key: Some("42".into()),
            }
        );
        let wrong = g.grade("arith", &expected, r"\boxed{41}").unwrap();
        assert_eq!(
            (wrong.label().as_str(), wrong.is_correct()),
            ("incorrect", false)
        );
        let none = g.grade("arith", &expected, "no idea").unwrap();
        assert_eq!(none.label(), "no_answer");
        assert!(g.grade("aime24", &expected, "1").is_err());
    }

    /// LiveCodeBench extracts code from the whole output (its
    /// `extract_code` has no `</think>` handling): a truncated sample whose
    /// thinking holds a complete program is graded on that program, and a
    /// program that ran is never `no_answer`.
    #[test]
    fn code_is_extracted_from_the_whole_output_not_after_the_think_tag() {
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
            (right.label().as_str(), right.is_correct()),
            ("correct", true)
        );
        let key = crate::grade::program_key("print(int(input()) * 2)");
        assert_eq!(right.extracted.as_deref(), Some(key.as_str()));
        assert_eq!(right.vote_key.as_deref(), Some(key.as_str()));
        let wrong = "</think>```python\nprint(int(input()) + 2)\n```";
        let wrong = g.grade("livecodebench", &expected, wrong).unwrap();
        assert_eq!(wrong.outcome, Outcome::Incorrect);
        assert!(wrong.extracted.is_some());
        // No `</think>` (truncated in the thinking): still graded.
        let unfinished = g.grade("livecodebench", &expected, program).unwrap();
        assert_eq!(unfinished.outcome, Outcome::Correct);
        let crash = "```python\nraise SystemExit(3)\n```";
        let crash = g.grade("livecodebench", &expected, crash).unwrap();
        assert_eq!(crash.outcome, Outcome::Incorrect);
        assert_ne!(crash.label(), "no_answer");
        let none = g.grade("livecodebench", &expected, "no code").unwrap();
        assert_eq!(none.outcome, Outcome::NoAnswer);
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
