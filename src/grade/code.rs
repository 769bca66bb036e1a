//! The code grader (LiveCodeBench): extract the program from the answer
//! region, run it against the tests in the [`Sandbox`] through the embedded
//! Python driver (`driver.py`, LCB `testing_util.py` semantics), and turn the
//! driver's report into a [`Verdict`].
//!
//! A program that was extracted is an answer, whatever its tests did: its
//! verdict is `correct` or `incorrect` (never `no_answer`), and its
//! extracted answer and vote key are both [`program_key`], the digest of
//! the program text, so that maj@k over code votes on identical programs.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::GradeError;
use super::sandbox::{RunRequest, RunStatus, Sandbox};
use super::verdict::{DETAIL_CHARS, FailureKind, Outcome, Verdict, truncate};
use crate::task::TestCase;

/// The driver, written into every run directory.
pub const DRIVER: &str = include_str!("driver.py");

/// How the program is cut out of the completion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CodeExtract {
    /// LCB `extract_code`: the lines strictly between the last two lines that
    /// contain a code fence (default).
    #[default]
    Lcb,
    /// NeMo-Skills `preprocess_code`: the first ```` ```python ```` block,
    /// else the first fenced block.
    NemoFirstPython,
}

/// Extracts the program; `""` when there is none (then every test fails).
pub fn extract_code(text: &str, mode: CodeExtract) -> String {
    match mode {
        CodeExtract::Lcb => {
            let lines: Vec<&str> = text.split('\n').collect();
            let fences: Vec<usize> = lines
                .iter()
                .enumerate()
                .filter(|(_, l)| l.contains("```"))
                .map(|(i, _)| i)
                .collect();
            match fences.as_slice() {
                [.., open, close] => lines[open + 1..*close].join("\n"),
                _ => String::new(),
            }
        }
        CodeExtract::NemoFirstPython => {
            let text = text.trim().replace('\r', "");
            let block = |opener: &str| {
                let start = text.find(opener)? + opener.len();
                let end = text[start..].find("```")? + start;
                Some(text[start..end].trim().to_string())
            };
            block("```python")
                .or_else(|| block("```"))
                .unwrap_or_default()
        }
    }
}

/// The stated vote key of a program: `sha256:` and the first 16 bytes (hex)
/// of SHA-256 over the extracted program text exactly as it is run.
/// Identical programs vote together; programs that differ in any byte vote
/// apart (with every program distinct, NeMo's tie rule makes maj@k the mean
/// correctness of the k samples, i.e. their pass@1).
pub fn program_key(code: &str) -> String {
    use sha2::{Digest, Sha256};
    format!(
        "sha256:{}",
        hex::encode(&Sha256::digest(code.as_bytes())[..16])
    )
}

/// Settings of the code grader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CodeConfig {
    /// Per-test alarm in whole seconds (LCB `--timeout`, default 6).
    pub timeout_s: u32,
    /// Cap on what one test may print to the captured stdout (default 64 MiB).
    pub capture_bytes: usize,
    pub extract: CodeExtract,
}

impl Default for CodeConfig {
    fn default() -> Self {
        Self {
            timeout_s: 6,
            capture_bytes: 64 << 20,
            extract: CodeExtract::Lcb,
        }
    }
}

#[derive(Serialize)]
struct Job<'a> {
    mode: &'a str,
    code: &'a str,
    fn_name: Option<&'a str>,
    inputs: Vec<&'a str>,
    outputs: Vec<&'a str>,
    timeout: u32,
    output_cap: usize,
}

/// Grades one answer region against code tests.
///
/// Stdin mode when `fn_name` is `None`, call-based otherwise (as LCB decides).
/// The run's wall-clock budget is LCB's global one, `(timeout + 1) · n + 5`
/// seconds, and the same number of CPU seconds.
///
/// # Errors
/// Only when the sandbox cannot run at all; every program outcome is a verdict.
pub fn grade_code(
    sandbox: &Sandbox,
    region: Option<&str>,
    tests: &[TestCase],
    fn_name: Option<&str>,
    config: &CodeConfig,
) -> Result<Verdict, GradeError> {
    let total = tests.len();
    let code = region
        .map(|r| extract_code(r, config.extract))
        .unwrap_or_default();
    if code.trim().is_empty() {
        return Ok(Verdict {
            tests_total: Some(total),
            tests_passed: Some(0),
            ..Verdict::no_answer()
        });
    }
    let job = Job {
        mode: if fn_name.is_some() { "call" } else { "stdio" },
        code: &code,
        fn_name,
        inputs: tests.iter().map(|t| t.input.as_str()).collect(),
        outputs: tests.iter().map(|t| t.output.as_str()).collect(),
        timeout: config.timeout_s,
        output_cap: config.capture_bytes,
    };
    let budget = (u64::from(config.timeout_s) + 1) * total as u64 + 5;
    let report = run_driver(sandbox, &job, budget)?;
    let key = program_key(&code);
    Ok(Verdict {
        extracted: Some(key.clone()),
        vote_key: Some(key),
        ..report.into_verdict(total)
    })
}

/// Runs LCB's stdout comparison (`get_stripped_lines` + Decimal tokens) in
/// the driver on `(printed, expected)` pairs; the grader uses the same code.
///
/// # Errors
/// When the sandbox cannot run or the driver's answer is unreadable.
pub fn compare_stdout(sandbox: &Sandbox, pairs: &[(&str, &str)]) -> Result<Vec<bool>, GradeError> {
    #[derive(Serialize)]
    struct CompareJob<'a> {
        mode: &'a str,
        pairs: &'a [(&'a str, &'a str)],
    }
    let job = serde_json::to_vec(&CompareJob {
        mode: "compare",
        pairs,
    })
    .map_err(|e| GradeError::Driver {
        detail: e.to_string(),
    })?;
    let out = sandbox.run(&RunRequest {
        files: vec![("driver.py", DRIVER.as_bytes()), ("job.json", &job)],
        args: vec!["-I", "driver.py", "job.json"],
        wall: Duration::from_secs(60),
        cpu_seconds: 60,
    })?;
    #[derive(Deserialize)]
    struct Matches {
        matches: Vec<bool>,
    }
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str::<Matches>(text.trim())
        .map(|m| m.matches)
        .map_err(|e| GradeError::Driver {
            detail: format!(
                "{e}; status {:?}; stderr: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
        })
}

/// What the driver reported, plus how the process ended.
#[derive(Debug, Default)]
struct Report {
    passed: usize,
    failure: Option<(Option<usize>, FailureKind, String)>,
    done: bool,
    status: Option<RunStatus>,
    isolation: Option<String>,
    stderr_tail: String,
    unreadable: Option<String>,
}

#[derive(Deserialize)]
struct Line {
    test: Option<usize>,
    ok: Option<bool>,
    kind: Option<String>,
    detail: Option<String>,
    done: Option<bool>,
}

fn run_driver(sandbox: &Sandbox, job: &Job<'_>, budget_s: u64) -> Result<Report, GradeError> {
    let job = serde_json::to_vec(job).map_err(|e| GradeError::Driver {
        detail: e.to_string(),
    })?;
    let out = sandbox.run(&RunRequest {
        files: vec![("driver.py", DRIVER.as_bytes()), ("job.json", &job)],
        args: vec!["-I", "driver.py", "job.json"],
        wall: Duration::from_secs(budget_s),
        cpu_seconds: budget_s,
    })?;
    let mut report = Report {
        status: Some(out.status),
        isolation: Some(out.isolation.summary()),
        stderr_tail: String::from_utf8_lossy(&out.stderr[out.stderr.len().saturating_sub(400)..])
            .into_owned(),
        ..Report::default()
    };
    for raw in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(line) = serde_json::from_str::<Line>(raw) else {
            report.unreadable = Some(truncate(raw, 100));
            break;
        };
        if line.done == Some(true) {
            report.done = true;
        } else if line.ok == Some(true) {
            report.passed += 1;
        } else if line.ok == Some(false) {
            let kind = match line.kind.as_deref() {
                Some("wrong_answer") => FailureKind::WrongAnswer,
                Some("timeout") => FailureKind::Timeout,
                Some("memory") => FailureKind::Memory,
                Some("output_limit") => FailureKind::OutputLimit,
                _ => FailureKind::RuntimeError,
            };
            report.failure = Some((line.test, kind, line.detail.unwrap_or_default()));
            break;
        }
    }
    Ok(report)
}

impl Report {
    fn into_verdict(self, total: usize) -> Verdict {
        let base = Verdict {
            tests_total: Some(total),
            tests_passed: Some(self.passed),
            isolation: self.isolation.clone(),
            ..Verdict::answer(Outcome::Incorrect, None, None)
        };
        let fail = |kind, detail: String| Verdict {
            failed_test: Some(self.passed),
            failure: Some(kind),
            detail: Some(truncate(&detail, DETAIL_CHARS)),
            ..base.clone()
        };
        if let Some((test, kind, detail)) = self.failure {
            return Verdict {
                failed_test: Some(test.unwrap_or(self.passed)),
                ..fail(kind, detail)
            };
        }
        if self.done && self.passed == total {
            return Verdict {
                outcome: Outcome::Correct,
                ..base
            };
        }
        if let Some(raw) = self.unreadable {
            return fail(
                FailureKind::RuntimeError,
                format!("unreadable driver output: {raw}"),
            );
        }
        match self.status {
            Some(RunStatus::WallTimeout) => fail(
                FailureKind::Timeout,
                "wall-clock limit of the whole run".into(),
            ),
            Some(RunStatus::OutputLimit) => {
                fail(FailureKind::OutputLimit, "output cap of the sandbox".into())
            }
            Some(RunStatus::Signaled(sig)) if sig == libc::SIGXCPU => {
                fail(FailureKind::Timeout, "cpu-time limit".into())
            }
            Some(RunStatus::Signaled(sig)) => fail(
                FailureKind::RuntimeError,
                format!("killed by signal {sig}; stderr: {}", self.stderr_tail),
            ),
            Some(RunStatus::Exited(code)) => fail(
                FailureKind::RuntimeError,
                format!(
                    "exited with {code} without a result; stderr: {}",
                    self.stderr_tail
                ),
            ),
            None => fail(FailureKind::RuntimeError, "no result".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lcb_takes_the_last_fenced_pair() {
        let text = "```python\nfirst\n```\ntext\n```python\nsecond\nline\n```\n";
        assert_eq!(extract_code(text, CodeExtract::Lcb), "second\nline");
        assert_eq!(extract_code("no fences", CodeExtract::Lcb), "");
        assert_eq!(extract_code("```\nunclosed", CodeExtract::Lcb), "");
        // A fence anywhere on a line counts (LCB checks `in line`).
        assert_eq!(extract_code("x ```py\na\ny```", CodeExtract::Lcb), "a");
    }

    #[test]
    fn nemo_takes_the_first_python_block() {
        let text = "```\ngeneric\n```\n```python\nfirst\n```\n```python\nsecond\n```";
        assert_eq!(extract_code(text, CodeExtract::NemoFirstPython), "first");
        assert_eq!(
            extract_code("```\ng\n```", CodeExtract::NemoFirstPython),
            "g"
        );
    }

    #[test]
    fn program_keys_are_digests_of_the_exact_text() {
        let a = program_key("print(1)");
        assert_eq!(a.len(), "sha256:".len() + 32);
        assert_eq!(a, program_key("print(1)"));
        assert_ne!(a, program_key("print(1) "));
    }

    #[test]
    fn a_report_without_result_maps_the_process_status() {
        let report = Report {
            passed: 2,
            status: Some(RunStatus::WallTimeout),
            ..Report::default()
        };
        let v = report.into_verdict(5);
        assert_eq!(v.outcome, Outcome::Incorrect);
        assert_eq!(v.failure, Some(FailureKind::Timeout));
        assert_eq!(v.failed_test, Some(2));
        assert_eq!(v.tests_passed, Some(2));
    }
}
