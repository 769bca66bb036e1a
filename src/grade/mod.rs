//! Grading: answer extraction, the math / multiple-choice / code graders, the
//! sandbox that runs generated code, and re-grading saved completions.
//!
//! ```text
//! answer region ─extract─▶ answer ─compare(Expected)─▶ Verdict
//!                 (code) ─▶ program ─Sandbox(driver.py, inputs)─▶ outputs ─compare─▶ Verdict
//! ```
//!
//! | concern | file |
//! |---|---|
//! | the result value | [`verdict`] |
//! | `\boxed{}` and last-number extraction | [`boxed`] |
//! | math normalisation and comparison (NeMo-Skills parity by default) | [`math`] |
//! | NeMo-Skills `math_equal`: literal stage and math-verify fallback | [`nemo`] |
//! | `normalize_latex` (latex2sympy2_extended), rule for rule | [`latex_norm`] |
//! | exact evaluation of the LaTeX arithmetic subset; `verify`'s equality | [`latex_parse`], [`latex_value`] |
//! | multiple choice (simple-evals regex by default) | [`choice`] |
//! | code extraction and LCB-semantics test runs | [`code`] (+ `driver.py`) |
//! | LCB's output comparison, in the harness | [`compare`] |
//! | the sandbox: namespaces, filesystem view, limits, memory cap, output caps, kill | [`sandbox`], [`isolation`], `mounts`, `memory`, [`interpreter`], `collect`, `run_uid` |
//! | the grading policy named by a task file | [`grader`] |
//! | `hyperscale grade` over a completions file | [`regrade`] |
//!
//! Model failures (no answer, wrong answer, crash, timeout) are [`Verdict`]s;
//! only harness failures are [`GradeError`]s.

pub mod boxed;
pub mod choice;
pub mod code;
mod collect;
pub mod compare;
pub mod error;
pub mod grader;
pub mod interpreter;
pub mod isolation;
pub mod latex_norm;
pub mod latex_parse;
pub mod latex_value;
pub mod math;
mod memory;
mod mounts;
pub mod nemo;
pub mod regrade;
mod run_uid;
pub mod sandbox;
pub mod verdict;

pub use choice::{ChoiceMode, extract_choice, grade_choice};
pub use code::{CodeConfig, CodeExtract, extract_code, grade_code, program_key};
pub use compare::{Compared, PyValue, compare_stdout, parse_expected};
pub use error::{GradeError, SandboxError};
pub use grader::Grader;
pub use isolation::Isolation;
pub use math::{MathMode, Rational, grade_math, normalise, parse_rational};
pub use regrade::{CompletionLine, GradedSample, Regrade, read_completions, regrade, regrade_file};
pub use sandbox::{Flow, Limits, RunOutput, RunRequest, RunStatus, Sandbox, SandboxConfig};
pub use verdict::{FailureKind, Outcome, Verdict};
