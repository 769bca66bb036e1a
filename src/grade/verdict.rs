//! [`Verdict`]: what grading one sample produced. A wrong answer, a missing
//! answer, a crash or a timeout of generated code are all verdicts (model
//! failures are data); only a failure of the harness itself is an error.
//!
//! The struct is flat on purpose: every field is a scalar or an optional
//! scalar, so a verdict serialises to one JSON object or one table row.

use serde::{Deserialize, Serialize};

/// The outcome of grading one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The extracted answer matches the reference (code: every test passed).
    Correct,
    /// An answer was extracted and it is wrong (code: some test failed).
    Incorrect,
    /// Nothing gradable was found: no answer region, no `\boxed{}`, no
    /// `Answer: X` line, no fenced code block. Counts as incorrect.
    NoAnswer,
    /// The harness could not grade this sample (the sandbox failed to start).
    /// Counts as incorrect in every estimator and is reported separately.
    Error,
}

/// Why generated code failed, in the order LiveCodeBench's `testing_util.py`
/// distinguishes them (its result codes in brackets) plus the limits this
/// sandbox adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// Output differs from the expected output [-2].
    WrongAnswer,
    /// An exception, a compile error, a missing method, or death by a signal [-4].
    RuntimeError,
    /// A test ran past its per-test limit [-3], the CPU limit was hit, or the
    /// whole program ran past its wall-clock budget [-1].
    Timeout,
    /// `MemoryError` under the address-space limit.
    Memory,
    /// The program wrote more than the output cap.
    OutputLimit,
    /// The sandbox or the driver failed for a reason that is not the
    /// program's (only used with [`Outcome::Error`]).
    SandboxError,
}

/// Grading of one sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub outcome: Outcome,
    /// The raw extracted answer: the `\boxed{}` content, the letter, or for
    /// code the program's digest ([`super::code::program_key`]; the code
    /// itself stays in the completion). `None`: nothing was extracted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extracted: Option<String>,
    /// The normalised key majority voting may use instead of `extracted`:
    /// the parsed integer or normalised string (math), the letter (multiple
    /// choice), the program digest (code). `None` when nothing was extracted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vote_key: Option<String>,
    /// Code: tests that passed before the first failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests_passed: Option<usize>,
    /// Code: number of tests the problem has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests_total: Option<usize>,
    /// Code: index (0-based) of the first test that did not pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_test: Option<usize>,
    /// Code: why the first failing test failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureKind>,
    /// Code: a short human-readable detail (exception repr, signal, …), at
    /// most a few hundred characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Code: the protections the sandbox had in force for this run, as
    /// [`super::Isolation::summary`] writes them (`net+pid+uid`, …, `none`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<String>,
}

impl Verdict {
    /// A verdict with only an outcome and the extracted answer.
    pub fn answer(outcome: Outcome, extracted: Option<String>, vote_key: Option<String>) -> Self {
        Self {
            outcome,
            extracted,
            vote_key,
            tests_passed: None,
            tests_total: None,
            failed_test: None,
            failure: None,
            detail: None,
            isolation: None,
        }
    }

    /// Nothing gradable was found.
    pub fn no_answer() -> Self {
        Self::answer(Outcome::NoAnswer, None, None)
    }

    /// Records a harness failure for one sample as data, so that a sweep can
    /// go on; the detail names what failed.
    pub fn sandbox_error(detail: impl Into<String>) -> Self {
        Self {
            failure: Some(FailureKind::SandboxError),
            detail: Some(truncate(&detail.into(), DETAIL_CHARS)),
            ..Self::answer(Outcome::Error, None, None)
        }
    }

    /// True only for [`Outcome::Correct`].
    pub fn is_correct(&self) -> bool {
        self.outcome == Outcome::Correct
    }

    /// The record's verdict label; see [`label`].
    pub fn label(&self) -> String {
        label(self.outcome, self.failure)
    }
}

/// The record's human-readable verdict label: the outcome's serde name
/// (`correct`, `incorrect`, `no_answer`, `error`), except that code failing
/// other than by a wrong answer is labelled by its failure (`timeout`,
/// `runtime_error`, `memory`, `output_limit`). A wrong answer is always
/// `incorrect` (never `wrong`).
pub fn label(outcome: Outcome, failure: Option<FailureKind>) -> String {
    match (outcome, failure) {
        (Outcome::Incorrect, Some(f)) if f != FailureKind::WrongAnswer => f.name().to_string(),
        (o, _) => o.name().to_string(),
    }
}

impl Outcome {
    /// The serde name (`correct`, `incorrect`, `no_answer`, `error`).
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Correct => "correct",
            Outcome::Incorrect => "incorrect",
            Outcome::NoAnswer => "no_answer",
            Outcome::Error => "error",
        }
    }

    /// Reads a verdict label back (records of format 1 carry only the
    /// label): every label [`label`] writes. The failure is `Some` for the
    /// code failure labels.
    /// `None` for a label that is none of these (e.g. an ungraded record).
    pub fn from_label(label: &str) -> Option<(Outcome, Option<FailureKind>)> {
        Some(match label {
            "correct" => (Outcome::Correct, None),
            "incorrect" => (Outcome::Incorrect, None),
            "no_answer" => (Outcome::NoAnswer, None),
            "error" => (Outcome::Error, None),
            "wrong_answer" => (Outcome::Incorrect, Some(FailureKind::WrongAnswer)),
            "runtime_error" => (Outcome::Incorrect, Some(FailureKind::RuntimeError)),
            "timeout" => (Outcome::Incorrect, Some(FailureKind::Timeout)),
            "memory" => (Outcome::Incorrect, Some(FailureKind::Memory)),
            "output_limit" => (Outcome::Incorrect, Some(FailureKind::OutputLimit)),
            "sandbox_error" => (Outcome::Error, Some(FailureKind::SandboxError)),
            _ => return None,
        })
    }
}

impl FailureKind {
    /// The serde name (`wrong_answer`, `runtime_error`, …).
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::WrongAnswer => "wrong_answer",
            FailureKind::RuntimeError => "runtime_error",
            FailureKind::Timeout => "timeout",
            FailureKind::Memory => "memory",
            FailureKind::OutputLimit => "output_limit",
            FailureKind::SandboxError => "sandbox_error",
        }
    }
}

/// Longest `detail` kept in a verdict, in characters.
pub const DETAIL_CHARS: usize = 300;

/// Keeps the first and last halves of `s` when it is longer than `max` characters.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    let head: String = s.chars().take(max / 2).collect();
    let tail: String = s.chars().skip(n - max / 2).collect();
    format!("{head}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_flat_and_skips_empty_fields() {
        let v = Verdict::answer(Outcome::Correct, Some("73".into()), Some("73".into()));
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(
            json,
            r#"{"outcome":"correct","extracted":"73","vote_key":"73"}"#
        );
        let back: Verdict = serde_json::from_str(&json).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn labels_read_back_and_match_the_serde_names() {
        for o in [
            Outcome::Correct,
            Outcome::Incorrect,
            Outcome::NoAnswer,
            Outcome::Error,
        ] {
            assert_eq!(serde_json::to_value(o).unwrap(), o.name());
            assert_eq!(Outcome::from_label(o.name()).map(|x| x.0), Some(o));
        }
        for f in [
            FailureKind::WrongAnswer,
            FailureKind::RuntimeError,
            FailureKind::Timeout,
            FailureKind::Memory,
            FailureKind::OutputLimit,
            FailureKind::SandboxError,
        ] {
            assert_eq!(serde_json::to_value(f).unwrap(), f.name());
        }
        let mut v = Verdict::answer(Outcome::Incorrect, None, None);
        v.failure = Some(FailureKind::Timeout);
        assert_eq!(v.label(), "timeout");
        assert_eq!(
            Outcome::from_label("timeout"),
            Some((Outcome::Incorrect, Some(FailureKind::Timeout)))
        );
        v.failure = Some(FailureKind::WrongAnswer);
        assert_eq!(v.label(), "incorrect");
        // A wrong answer's label is `incorrect`; there is no other name.
        assert_eq!(
            Outcome::from_label("incorrect"),
            Some((Outcome::Incorrect, None))
        );
        assert_eq!(Outcome::from_label("wrong"), None);
        assert_eq!(Outcome::from_label(""), None);
    }

    #[test]
    fn truncate_keeps_both_ends() {
        assert_eq!(truncate("abcdef", 10), "abcdef");
        assert_eq!(truncate("abcdefghij", 4), "ab…ij");
    }
}
