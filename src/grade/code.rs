//! The code grader (LiveCodeBench): extract the program from the answer
//! region, run it on the test inputs in the [`Sandbox`] through the embedded
//! Python driver (`driver.py`, LCB `testing_util.py` semantics), and compare
//! what it printed or returned with the expected outputs here, in the harness
//! ([`super::compare`]): the untrusted process never holds an expected output
//! and nothing it writes counts as a verdict.
//!
//! A program that was extracted is an answer, whatever its tests did: its
//! verdict is `correct` or `incorrect` (never `no_answer`), and its
//! extracted answer and vote key are both [`program_key`], the digest of
//! the program text, so that maj@k over code votes on identical programs.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::compare::{Compared, PyValue, compare_stdout, parse_expected};
use super::error::GradeError;
use super::sandbox::{Flow, RunOutput, RunRequest, RunStatus, Sandbox};
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
    timeout: u32,
    output_cap: usize,
}

/// Grades one answer region against code tests.
///
/// Stdin mode when `fn_name` is `None`, call-based otherwise (as LCB decides).
/// The program gets the inputs only; its outputs (or return values) come
/// back as frames and are compared here ([`super::compare`]), test by test
/// as they arrive; the run is stopped at the first failure, as LCB stops.
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
    let expected = match Expected::new(tests, fn_name.is_some()) {
        Ok(e) => e,
        // LCB decodes every expected output before the first test: a bad one
        // is a runtime error of the whole run.
        Err(detail) => {
            let key = program_key(&code);
            return Ok(Verdict {
                extracted: Some(key.clone()),
                vote_key: Some(key),
                ..Judge::new(Expected::Stdout(Vec::new()), 0).verdict_with(
                    total,
                    FailureKind::RuntimeError,
                    None,
                    detail,
                )
            });
        }
    };
    let job = Job {
        mode: if fn_name.is_some() { "call" } else { "stdio" },
        code: &code,
        fn_name,
        inputs: tests.iter().map(|t| t.input.as_str()).collect(),
        timeout: config.timeout_s,
        output_cap: config.capture_bytes,
    };
    let budget = (u64::from(config.timeout_s) + 1) * total as u64 + 5;
    let job = serde_json::to_vec(&job).map_err(|e| GradeError::Driver {
        detail: e.to_string(),
    })?;
    let mut judge = Judge::new(expected, config.capture_bytes);
    let out = sandbox.run_streaming(
        &RunRequest {
            files: vec![("driver.py", DRIVER.as_bytes()), ("job.json", &job)],
            args: vec!["-I", "driver.py", "job.json"],
            wall: Duration::from_secs(budget),
            cpu_seconds: budget,
        },
        &mut |chunk| judge.feed(chunk),
    )?;
    let key = program_key(&code);
    Ok(Verdict {
        extracted: Some(key.clone()),
        vote_key: Some(key),
        ..judge.finish(total, &out)
    })
}

/// The expected outputs, decoded once before the run.
enum Expected<'a> {
    Stdout(Vec<&'a str>),
    Values(Vec<PyValue>),
}

impl<'a> Expected<'a> {
    fn new(tests: &'a [TestCase], call: bool) -> Result<Self, String> {
        if !call {
            return Ok(Self::Stdout(
                tests.iter().map(|t| t.output.as_str()).collect(),
            ));
        }
        tests
            .iter()
            .enumerate()
            .map(|(i, t)| {
                parse_expected(&t.output)
                    .map_err(|e| format!("expected output of test {i} is not JSON: {e}"))
            })
            .collect::<Result<_, _>>()
            .map(Self::Values)
    }

    fn len(&self) -> usize {
        match self {
            Self::Stdout(v) => v.len(),
            Self::Values(v) => v.len(),
        }
    }
}

/// Reads the driver's frames as they arrive and compares each test's output
/// with the expected one; stops the run at the first failure or when every
/// test has passed.
struct Judge<'a> {
    expected: Expected<'a>,
    /// Largest frame accepted: the capture cap in characters, as UTF-8.
    max_frame: usize,
    buf: Vec<u8>,
    passed: usize,
    failure: Option<(Option<usize>, FailureKind, String)>,
}

/// Longest frame header (`KIND TEST LENGTH`).
const HEADER_MAX: usize = 64;

impl<'a> Judge<'a> {
    fn new(expected: Expected<'a>, capture_chars: usize) -> Self {
        Self {
            expected,
            max_frame: capture_chars.saturating_mul(4).saturating_add(4096),
            buf: Vec::new(),
            passed: 0,
            failure: None,
        }
    }

    fn decided(&self) -> bool {
        self.failure.is_some() || self.passed == self.expected.len()
    }

    fn feed(&mut self, chunk: &[u8]) -> Flow {
        if self.decided() {
            return Flow::Stop;
        }
        self.buf.extend_from_slice(chunk);
        while !self.decided() {
            let Some(nl) = self.buf.iter().take(HEADER_MAX).position(|&b| b == b'\n') else {
                if self.buf.len() >= HEADER_MAX {
                    self.protocol("a frame header");
                }
                break;
            };
            let header = String::from_utf8_lossy(&self.buf[..nl]).into_owned();
            let Some((kind, test, len)) = parse_header(&header) else {
                self.protocol(&header);
                break;
            };
            if len > self.max_frame {
                self.fail(
                    Some(self.passed),
                    FailureKind::OutputLimit,
                    format!("a frame of {len} bytes"),
                );
                break;
            }
            if self.buf.len() < nl + 1 + len {
                break;
            }
            let payload: Vec<u8> = self.buf.drain(..nl + 1 + len).skip(nl + 1).collect();
            self.frame(kind, test, &payload);
        }
        if self.decided() {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }

    fn protocol(&mut self, what: &str) {
        let what = truncate(what, 100);
        self.fail(
            Some(self.passed),
            FailureKind::RuntimeError,
            format!("unreadable driver output: {what}"),
        );
    }

    fn fail(&mut self, test: Option<usize>, kind: FailureKind, detail: String) {
        self.failure = Some((test, kind, detail));
    }

    /// One frame. Frames must come for tests 0, 1, 2, … in order; an error
    /// before the first test is `-`.
    fn frame(&mut self, kind: &str, test: Option<usize>, payload: &[u8]) {
        let text = String::from_utf8_lossy(payload);
        let i = self.passed;
        if test != Some(i) && !(kind == "ERR" && test.is_none() && i == 0) {
            self.protocol(&format!(
                "{kind} frame for test {test:?} while expecting {i}"
            ));
            return;
        }
        match (kind, &self.expected) {
            ("ERR", _) => {
                let (k, detail) = text.split_once('\n').unwrap_or((&text, ""));
                let kind = match k {
                    "timeout" => FailureKind::Timeout,
                    "memory" => FailureKind::Memory,
                    "output_limit" => FailureKind::OutputLimit,
                    _ => FailureKind::RuntimeError,
                };
                self.fail(test, kind, detail.to_string());
            }
            ("OUT", Expected::Stdout(gold)) => match compare_stdout(&text, gold[i]) {
                Compared::Match => self.passed += 1,
                Compared::Mismatch => self.fail(
                    Some(i),
                    FailureKind::WrongAnswer,
                    format!(
                        "output: {} | expected: {}",
                        truncate(&text, 150),
                        truncate(gold[i], 150)
                    ),
                ),
                Compared::Error => self.fail(
                    Some(i),
                    FailureKind::RuntimeError,
                    "InvalidOperation: a signalling NaN compared".into(),
                ),
            },
            ("VAL", Expected::Values(gold)) => match decode_value(&text) {
                Some(v) if v.equals(&gold[i]) => self.passed += 1,
                Some(v) => {
                    let detail = format!(
                        "output: {} | expected: {}",
                        truncate(&v.repr(), 150),
                        truncate(&gold[i].repr(), 150)
                    );
                    self.fail(Some(i), FailureKind::WrongAnswer, detail);
                }
                None => self.protocol(&text),
            },
            _ => self.protocol(&format!("a {kind} frame in this mode")),
        }
    }

    fn verdict_with(
        &self,
        total: usize,
        kind: FailureKind,
        test: Option<usize>,
        detail: String,
    ) -> Verdict {
        Verdict {
            tests_total: Some(total),
            tests_passed: Some(self.passed),
            failed_test: Some(test.unwrap_or(self.passed)),
            failure: Some(kind),
            detail: Some(truncate(&detail, DETAIL_CHARS)),
            ..Verdict::answer(Outcome::Incorrect, None, None)
        }
    }

    /// The verdict once the run is over: the judged frames first, else how
    /// the process ended.
    fn finish(mut self, total: usize, out: &RunOutput) -> Verdict {
        if !self.decided() && !self.buf.is_empty() && out.status != RunStatus::OutputLimit {
            let rest = String::from_utf8_lossy(&self.buf).into_owned();
            self.protocol(&format!("an incomplete frame `{rest}`"));
        }
        let isolation = Some(out.isolation.summary());
        if let Some((test, kind, detail)) = self.failure.clone() {
            return Verdict {
                isolation,
                ..self.verdict_with(total, kind, test, detail)
            };
        }
        if self.passed == total {
            return Verdict {
                tests_total: Some(total),
                tests_passed: Some(total),
                isolation,
                ..Verdict::answer(Outcome::Correct, None, None)
            };
        }
        let tail = String::from_utf8_lossy(&out.stderr[out.stderr.len().saturating_sub(400)..])
            .into_owned();
        let (kind, detail) = match out.status {
            RunStatus::WallTimeout => (
                FailureKind::Timeout,
                "wall-clock limit of the whole run".to_string(),
            ),
            RunStatus::OutputLimit => (
                FailureKind::OutputLimit,
                "output cap of the sandbox".to_string(),
            ),
            RunStatus::MemoryLimit => (
                FailureKind::Memory,
                "memory cap of the program's process group".to_string(),
            ),
            RunStatus::Signaled(sig) if sig == libc::SIGXCPU => {
                (FailureKind::Timeout, "cpu-time limit".to_string())
            }
            RunStatus::Signaled(sig) => (
                FailureKind::RuntimeError,
                format!("killed by signal {sig}; stderr: {tail}"),
            ),
            RunStatus::Exited(code) => (
                FailureKind::RuntimeError,
                format!(
                    "exited with {code} without a result for test {}; stderr: {tail}",
                    self.passed
                ),
            ),
            RunStatus::Stopped => (
                FailureKind::RuntimeError,
                "stopped by the harness without a result".to_string(),
            ),
        };
        Verdict {
            isolation,
            ..self.verdict_with(total, kind, None, detail)
        }
    }
}

/// `KIND TEST LENGTH` with TEST a number or `-`.
fn parse_header(header: &str) -> Option<(&str, Option<usize>, usize)> {
    let mut parts = header.split(' ');
    let kind = parts
        .next()
        .filter(|k| matches!(*k, "OUT" | "VAL" | "ERR"))?;
    let test = match parts.next()? {
        "-" => None,
        t => Some(t.parse().ok()?),
    };
    let len = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((kind, test, len))
}

/// The driver's encoding of a return value (`driver.py` `_encode`).
fn decode_value(text: &str) -> Option<PyValue> {
    fn conv(v: &serde_json::Value) -> Option<PyValue> {
        use serde_json::Value as J;
        Some(match v {
            J::Null => PyValue::None,
            J::Bool(b) => PyValue::Bool(*b),
            J::String(s) => PyValue::Str(s.clone()),
            J::Array(items) => PyValue::List(items.iter().map(conv).collect::<Option<_>>()?),
            J::Object(map) if map.len() == 1 => {
                let (tag, inner) = map.iter().next()?;
                match (tag.as_str(), inner) {
                    ("int", J::String(d)) => {
                        let digits = d.strip_prefix('-').unwrap_or(d);
                        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                            return None;
                        }
                        PyValue::Int(d.clone())
                    }
                    ("float", J::String(r)) => PyValue::Float(r.parse().ok()?),
                    ("tuple", J::Array(items)) => {
                        PyValue::Tuple(items.iter().map(conv).collect::<Option<_>>()?)
                    }
                    ("dict", J::Array(pairs)) => PyValue::Dict(
                        pairs
                            .iter()
                            .map(|p| match p {
                                J::Array(kv) if kv.len() == 2 => {
                                    Some((conv(&kv[0])?, conv(&kv[1])?))
                                }
                                _ => None,
                            })
                            .collect::<Option<_>>()?,
                    ),
                    ("opaque", J::String(t)) => PyValue::Opaque(t.clone()),
                    _ => return None,
                }
            }
            _ => return None,
        })
    }
    conv(&serde_json::from_str(text).ok()?)
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
    fn forged_frames_count_only_as_the_programs_output() {
        let gold = ["7\n", "8\n"];
        let mut judge = Judge::new(Expected::Stdout(gold.to_vec()), 1 << 20);
        // A claimed verdict is not a frame.
        assert_eq!(judge.feed(b"{\"test\":0,\"ok\":true}\n"), Flow::Stop);
        assert_eq!(
            judge.failure.as_ref().map(|f| f.1),
            Some(FailureKind::RuntimeError)
        );
        let mut judge = Judge::new(Expected::Stdout(gold.to_vec()), 1 << 20);
        assert_eq!(judge.feed(b"OUT 0 2\n7\nOUT 1 2\n9\n"), Flow::Stop);
        assert_eq!(judge.passed, 1);
        assert_eq!(
            judge.failure.as_ref().map(|f| f.1),
            Some(FailureKind::WrongAnswer)
        );
        // Out of order or repeated frames are a protocol failure.
        let mut judge = Judge::new(Expected::Stdout(gold.to_vec()), 1 << 20);
        judge.feed(b"OUT 1 2\n8\n");
        assert_eq!(judge.passed, 0);
        assert!(judge.failure.is_some());
    }

    #[test]
    fn values_decode_and_compare_with_python_equality() {
        let tests = [TestCase {
            input: String::new(),
            output: "[1, 2]".into(),
            kind: crate::task::TestKind::Functional,
        }];
        let gold = Expected::new(&tests, true).unwrap();
        let mut judge = Judge::new(gold, 1 << 20);
        let frame = br#"[{"int": "1"}, {"float": "2.0"}]"#;
        let mut bytes = format!("VAL 0 {}\n", frame.len()).into_bytes();
        bytes.extend_from_slice(frame);
        assert_eq!(judge.feed(&bytes), Flow::Stop);
        assert_eq!(judge.passed, 1);
        assert_eq!(
            decode_value(r#"{"opaque": "E"}"#),
            Some(PyValue::Opaque("E".into()))
        );
        assert_eq!(decode_value(r#"{"int": "1x"}"#), None);
    }
}
