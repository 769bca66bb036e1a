//! The values that flow out of a task: a [`Problem`], and for each sample the
//! [`Expected`] answer the grader checks against.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One benchmark problem, independent of how it is prompted or sampled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// Stable id within its task (e.g. `aime24-0`, the GPQA record id, the LCB question id).
    pub id: String,
    /// The question text as given by the source.
    pub question: String,
    /// What a correct answer is.
    pub reference: Reference,
    /// Source-specific fields kept for reports (year, difficulty, platform, contest date, …).
    pub metadata: BTreeMap<String, serde_json::Value>,
}

/// The ground truth of a problem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reference {
    /// A math answer compared after normalisation (AIME: an integer 0–999 as text).
    Math { answer: String },
    /// A multiple-choice question; the choices are ordered per sample when rendered.
    MultipleChoice {
        correct: String,
        incorrect: Vec<String>,
    },
    /// A program checked by running tests.
    Code {
        /// Public tests followed by private tests (private ones may be absent).
        tests: Vec<TestCase>,
        /// `metadata.func_name` for functional (LeetCode) problems.
        fn_name: Option<String>,
        starter_code: String,
        /// True when only the public tests are known (results must say so).
        public_only: bool,
    },
}

/// How a code test feeds its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestKind {
    /// Input on stdin, output compared on stdout.
    Stdin,
    /// `Solution().<fn_name>(*json_args)` compared with `==` to the JSON output.
    Functional,
}

/// One code test case, as in LiveCodeBench (`input`, `output`, `testtype`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestCase {
    pub input: String,
    pub output: String,
    pub kind: TestKind,
}

/// What the grader checks one sample's answer against. For multiple choice the
/// correct letter depends on the per-sample choice order, so it is produced by
/// rendering, not stored in the problem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Expected {
    Math {
        answer: String,
    },
    /// The letter (`A`–`D`) of the correct choice in this sample's order.
    Letter {
        letter: char,
    },
    Code {
        tests: Vec<TestCase>,
        fn_name: Option<String>,
    },
}
