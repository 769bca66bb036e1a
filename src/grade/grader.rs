//! [`Grader`]: the grading policy a task file names, as a serde-tagged enum,
//! and the one entry point that grades an answer region against an
//! [`Expected`].
//!
//! In a task file (`[grader]`, read by `task::file::GraderFile`; the mode is
//! not written there but follows from the kind, see [`Grader::for_task`]):
//!
//! ```toml
//! [grader]
//! kind = "math"                 # or "multiple-choice", "code"
//! fallback_last_number = false  # math only: true grades the last number when nothing is boxed
//! # test_timeout_s = 6.0        # code only: per-test timeout in seconds
//! ```

use serde::{Deserialize, Serialize};

use super::choice::{ChoiceMode, grade_choice};
use super::code::{CodeConfig, grade_code};
use super::error::GradeError;
use super::math::{MathMode, grade_math};
use super::sandbox::Sandbox;
use super::verdict::Verdict;
use crate::task::{Expected, GraderSpec};

/// How a task's samples are graded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Grader {
    /// Final answer in `\boxed{}` compared with the gold answer.
    Math {
        #[serde(default)]
        mode: MathMode,
    },
    /// `Answer: X` compared with the expected letter.
    MultipleChoice {
        #[serde(default)]
        mode: ChoiceMode,
    },
    /// The last fenced program run against the tests in the sandbox.
    Code {
        #[serde(default)]
        config: CodeConfig,
    },
}

impl Grader {
    /// The grader a task file asks for: math tasks follow NeMo-Skills unless
    /// they fall back to the last number (`arith`), multiple choice follows
    /// simple-evals, code keeps the task's per-test timeout.
    pub fn for_task(spec: &GraderSpec) -> Self {
        match spec {
            GraderSpec::Math {
                fallback_last_number: true,
            } => Grader::Math {
                mode: MathMode::Arith,
            },
            GraderSpec::Math { .. } => Grader::Math {
                mode: MathMode::Nemo,
            },
            GraderSpec::MultipleChoice => Grader::MultipleChoice {
                mode: ChoiceMode::SimpleEvals,
            },
            GraderSpec::Code { test_timeout } => Grader::Code {
                config: CodeConfig {
                    timeout_s: test_timeout.as_secs().clamp(1, u64::from(u32::MAX)) as u32,
                    ..CodeConfig::default()
                },
            },
        }
    }

    /// Short name for messages and reports.
    pub fn name(&self) -> &'static str {
        match self {
            Grader::Math { .. } => "math",
            Grader::MultipleChoice { .. } => "multiple_choice",
            Grader::Code { .. } => "code",
        }
    }

    /// Grades one answer region (`None`: the sample has none, e.g. no
    /// `</think>`) against what the sample expects.
    ///
    /// # Errors
    /// [`GradeError::Mismatch`] when the expected answer is of another kind
    /// than the grader, [`GradeError::NoSandbox`] for code without a sandbox,
    /// and sandbox failures. Never for anything the model wrote.
    pub fn grade(
        &self,
        region: Option<&str>,
        expected: &Expected,
        sandbox: Option<&Sandbox>,
    ) -> Result<Verdict, GradeError> {
        match (self, expected) {
            (Grader::Math { mode }, Expected::Math { answer }) => {
                Ok(grade_math(region, answer, *mode))
            }
            (Grader::MultipleChoice { mode }, Expected::Letter { letter }) => {
                Ok(grade_choice(region, *letter, *mode))
            }
            (Grader::Code { config }, Expected::Code { tests, fn_name }) => {
                let sandbox = sandbox.ok_or(GradeError::NoSandbox)?;
                grade_code(sandbox, region, tests, fn_name.as_deref(), config)
            }
            (grader, expected) => Err(GradeError::Mismatch {
                grader: grader.name(),
                expected: match expected {
                    Expected::Math { .. } => "math",
                    Expected::Letter { .. } => "letter",
                    Expected::Code { .. } => "code",
                },
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grade::Outcome;

    #[test]
    fn parses_from_toml_with_defaults() {
        #[derive(Deserialize)]
        struct File {
            grader: Grader,
        }
        let f: File = toml::from_str("[grader]\nkind = \"math\"\n").unwrap();
        assert_eq!(
            f.grader,
            Grader::Math {
                mode: MathMode::Nemo
            }
        );
        let f: File = toml::from_str("[grader]\nkind = \"math\"\nmode = \"arith\"\n").unwrap();
        assert_eq!(
            f.grader,
            Grader::Math {
                mode: MathMode::Arith
            }
        );
        let f: File =
            toml::from_str("[grader]\nkind = \"code\"\n[grader.config]\ntimeout_s = 30\n").unwrap();
        let Grader::Code { config } = f.grader else {
            panic!("expected a code grader");
        };
        assert_eq!(config.timeout_s, 30);
        assert_eq!(config.capture_bytes, CodeConfig::default().capture_bytes);
    }

    #[test]
    fn mismatched_expected_is_an_error_not_a_verdict() {
        let g = Grader::Math {
            mode: MathMode::Nemo,
        };
        let err = g
            .grade(Some("x"), &Expected::Letter { letter: 'A' }, None)
            .unwrap_err();
        assert!(err.to_string().contains("letter"), "{err}");
        let v = g
            .grade(
                Some(r"\boxed{5}"),
                &Expected::Math { answer: "5".into() },
                None,
            )
            .unwrap();
        assert_eq!(v.outcome, Outcome::Correct);
    }
}
