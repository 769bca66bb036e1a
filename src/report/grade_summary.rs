//! [`GradeSummary`]: per-problem verdicts and the estimators over a set of
//! graded samples (what `hyperscale grade` prints), with a text rendering;
//! the JSON rendering is the struct serialised.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::batches::VoteOn;
use super::estimators::{
    BootstrapConfig, bootstrap_ci, majority_at_k, mean, mean_pass_at_k, std_err,
    std_err_across_runs,
};
use crate::grade::{FailureKind, GradeError, GradedSample, Outcome, Regrade, regrade_file};

/// One sample's verdict, compactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRow {
    /// The sample's repeat (omitted when 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub repeat: u32,
    pub sample: u64,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vote_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_test: Option<usize>,
}

fn is_zero(x: &u32) -> bool {
    *x == 0
}

/// The scores of one problem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProblemScore {
    pub problem_id: String,
    pub n: u64,
    pub correct: u64,
    pub no_answer: u64,
    pub errors: u64,
    /// `correct / n`.
    pub pass_at_1: f64,
    /// maj@n of this problem (all samples vote); `None` without vote keys.
    pub maj_at_n: Option<f64>,
    /// Samples in (repeat, sample) order.
    pub samples: Vec<SampleRow>,
}

/// An estimator's value at one `k`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AtK {
    pub k: u64,
    pub value: f64,
}

/// Per-problem verdicts and benchmark-level estimators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradeSummary {
    /// Problems in order of first appearance.
    pub problems: Vec<ProblemScore>,
    pub samples: u64,
    /// Mean over problems of `c/n`.
    pub pass_at_1: Option<f64>,
    /// Standard error of `pass_at_1` over problems: the sample standard
    /// deviation (ddof 1) of the per-problem c/n over √m.
    pub pass_at_1_std_err: Option<f64>,
    /// NeMo-Skills' `std_err_across_runs` of `pass_at_1`: run i is the i-th
    /// sample of every problem; the standard deviation (ddof 1) of the run
    /// means over √k. `None` below two samples per problem or with unequal
    /// counts.
    #[serde(default)]
    pub pass_at_1_std_err_across_runs: Option<f64>,
    /// Bootstrap CI of `pass_at_1` over problems.
    pub pass_at_1_ci: Option<(f64, f64)>,
    pub bootstrap: BootstrapConfig,
    /// Unbiased pass@k for k = 1, 2, 4, … up to the smallest `n`.
    pub pass_at_k: Vec<AtK>,
    /// maj@k over the first k samples, same ks; empty when no sample has a
    /// vote key.
    pub maj_at_k: Vec<AtK>,
    /// What maj@k voted on.
    #[serde(default)]
    pub vote: VoteOn,
    /// Fraction of samples without an extracted answer.
    pub no_answer_rate: f64,
    /// Samples the harness could not grade ([`Outcome::Error`]).
    pub errors: u64,
}

/// Summarises graded samples, maj@k voting on the raw extracted answer
/// (see [`summarize_with`]).
pub fn summarize(graded: &[GradedSample], bootstrap: &BootstrapConfig) -> GradeSummary {
    summarize_with(graded, bootstrap, VoteOn::Raw)
}

/// Summarises graded samples (any order; samples are ordered by their
/// `(repeat, sample)` within each problem), maj@k voting on `vote`: the raw
/// extracted answer (NeMo-Skills) or the normalised key.
pub fn summarize_with(
    graded: &[GradedSample],
    bootstrap: &BootstrapConfig,
    vote: VoteOn,
) -> GradeSummary {
    let key = |g: &GradedSample| match vote {
        VoteOn::Raw => g.verdict.extracted.clone(),
        VoteOn::Normalised => g.verdict.vote_key.clone(),
    };
    let mut order: Vec<&str> = Vec::new();
    let mut by_problem: BTreeMap<&str, Vec<&GradedSample>> = BTreeMap::new();
    for g in graded {
        let entry = by_problem.entry(&g.problem_id).or_default();
        if entry.is_empty() {
            order.push(&g.problem_id);
        }
        entry.push(g);
    }
    let mut problems = Vec::with_capacity(order.len());
    let mut votes: Vec<Vec<(Option<String>, bool)>> = Vec::with_capacity(order.len());
    for id in order {
        let mut samples = by_problem.remove(id).unwrap_or_default();
        samples.sort_by_key(|g| (g.repeat, g.sample));
        let count = |o: Outcome| samples.iter().filter(|g| g.verdict.outcome == o).count() as u64;
        let n = samples.len() as u64;
        let correct = count(Outcome::Correct);
        let v: Vec<(Option<String>, bool)> = samples
            .iter()
            .map(|g| (key(g), g.verdict.is_correct()))
            .collect();
        problems.push(ProblemScore {
            problem_id: id.to_string(),
            n,
            correct,
            no_answer: count(Outcome::NoAnswer),
            errors: count(Outcome::Error),
            pass_at_1: correct as f64 / n as f64,
            maj_at_n: v
                .iter()
                .any(|(key, _)| key.is_some())
                .then(|| majority_at_k(&v, v.len())),
            samples: samples
                .iter()
                .map(|g| SampleRow {
                    repeat: g.repeat,
                    sample: g.sample,
                    outcome: g.verdict.outcome,
                    vote_key: key(g),
                    failure: g.verdict.failure,
                    failed_test: g.verdict.failed_test,
                })
                .collect(),
        });
        votes.push(v);
    }
    let per_problem: Vec<f64> = problems.iter().map(|p| p.pass_at_1).collect();
    let per_run: Vec<Vec<f64>> = votes
        .iter()
        .map(|v| v.iter().map(|&(_, c)| if c { 1.0 } else { 0.0 }).collect())
        .collect();
    let counts: Vec<(u64, u64)> = problems.iter().map(|p| (p.n, p.correct)).collect();
    let min_n = problems.iter().map(|p| p.n).min().unwrap_or(0);
    let ks: Vec<u64> = std::iter::successors(Some(1u64), |k| k.checked_mul(2))
        .take_while(|&k| k <= min_n)
        .collect();
    let total = graded.len() as u64;
    let no_answer: u64 = problems.iter().map(|p| p.no_answer).sum();
    let any_key = votes.iter().flatten().any(|(k, _)| k.is_some());
    GradeSummary {
        samples: total,
        pass_at_1: mean(&per_problem),
        pass_at_1_std_err: std_err(&per_problem),
        pass_at_1_std_err_across_runs: std_err_across_runs(&per_run),
        pass_at_1_ci: bootstrap_ci(&per_problem, bootstrap),
        bootstrap: *bootstrap,
        pass_at_k: ks
            .iter()
            .filter_map(|&k| mean_pass_at_k(&counts, k).map(|value| AtK { k, value }))
            .collect(),
        // Without any vote key a majority vote is undefined, not zero.
        maj_at_k: ks
            .iter()
            .filter(|_| any_key)
            .filter_map(|&k| {
                let values: Vec<f64> = votes.iter().map(|v| majority_at_k(v, k as usize)).collect();
                mean(&values).map(|value| AtK { k, value })
            })
            .collect(),
        vote,
        no_answer_rate: if total == 0 {
            0.0
        } else {
            no_answer as f64 / total as f64
        },
        errors: problems.iter().map(|p| p.errors).sum(),
        problems,
    }
}

/// Output format of `hyperscale grade`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GradeFormat {
    /// [`render_text`].
    Text,
    /// The [`GradeSummary`] as pretty JSON.
    Json,
}

/// `hyperscale grade --completions FILE [--json]` as a library function:
/// reads the completions, grades each against the task's expected answers,
/// summarises (maj@k on the raw extracted answer), and renders.
///
/// # Errors
/// As [`regrade_file`]: unreadable or malformed completions (naming
/// `file:line:field`), a duplicated `(problem_id, repeat, sample)`, problems
/// the task does not know, grader mismatches.
pub fn grade_report(
    path: &Path,
    task: &Regrade<'_>,
    format: GradeFormat,
    bootstrap: &BootstrapConfig,
) -> Result<String, GradeError> {
    grade_report_with(path, task, format, bootstrap, VoteOn::Raw)
}

/// [`grade_report`] with maj@k voting on `vote`.
///
/// # Errors
/// As [`grade_report`].
pub fn grade_report_with(
    path: &Path,
    task: &Regrade<'_>,
    format: GradeFormat,
    bootstrap: &BootstrapConfig,
    vote: VoteOn,
) -> Result<String, GradeError> {
    let graded = regrade_file(path, task)?;
    let summary = summarize_with(&graded, bootstrap, vote);
    Ok(match format {
        GradeFormat::Text => render_text(&summary),
        GradeFormat::Json => render_json(&summary),
    })
}

/// The summary as pretty JSON (non-finite numbers become `null`).
pub fn render_json(summary: &GradeSummary) -> String {
    serde_json::to_string_pretty(summary).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// Renders the summary as a plain-text table followed by the estimators.
///
/// Sample marks: `+` correct, `-` incorrect, `?` no answer, `!` grading
/// error; then the vote key (math, letters) or the failure and the failed
/// test (code).
pub fn render_text(summary: &GradeSummary) -> String {
    let mut out = String::new();
    let width = summary
        .problems
        .iter()
        .map(|p| p.problem_id.chars().count())
        .max()
        .unwrap_or(0)
        .max("problem".len());
    let _ = writeln!(
        out,
        "{:<width$}  {:>3}  {:>7}  {:>6}  verdicts",
        "problem", "n", "correct", "pass@1"
    );
    for p in &summary.problems {
        let marks: Vec<String> = p.samples.iter().map(sample_mark).collect();
        let _ = writeln!(
            out,
            "{:<width$}  {:>3}  {:>7}  {:>6.3}  {}",
            p.problem_id,
            p.n,
            p.correct,
            p.pass_at_1,
            marks.join(" ")
        );
    }
    let _ = writeln!(
        out,
        "\nproblems {}, samples {}, no answer {:.1}%, grading errors {}",
        summary.problems.len(),
        summary.samples,
        100.0 * summary.no_answer_rate,
        summary.errors
    );
    if let Some(p1) = summary.pass_at_1 {
        let mut line = format!("pass@1  {p1:.4}");
        if let Some(se) = summary.pass_at_1_std_err {
            let _ = write!(line, " ± {se:.4} (s.e. over problems)");
        }
        if let Some(se) = summary.pass_at_1_std_err_across_runs {
            let _ = write!(line, " ± {se:.4} (s.e. across runs, NeMo)");
        }
        if let Some((lo, hi)) = summary.pass_at_1_ci {
            let b = &summary.bootstrap;
            let _ = write!(
                line,
                ", {:.0}% CI [{lo:.4}, {hi:.4}] (bootstrap {}, seed {})",
                100.0 * b.level,
                b.resamples,
                b.seed
            );
        }
        let _ = writeln!(out, "{line}");
    }
    for AtK { k, value } in summary.pass_at_k.iter().filter(|a| a.k > 1) {
        let _ = writeln!(out, "pass@{k:<3} {value:.4}");
    }
    for AtK { k, value } in &summary.maj_at_k {
        let _ = writeln!(out, "maj@{k:<4} {value:.4}");
    }
    if !summary.maj_at_k.is_empty() {
        let _ = writeln!(out, "maj@k votes on {}", summary.vote.describe());
    }
    out
}

fn sample_mark(row: &SampleRow) -> String {
    let mark = match row.outcome {
        Outcome::Correct => '+',
        Outcome::Incorrect => '-',
        Outcome::NoAnswer => '?',
        Outcome::Error => '!',
    };
    let mut s = if row.repeat == 0 {
        format!("{}:{mark}", row.sample)
    } else {
        format!("{}/{}:{mark}", row.repeat, row.sample)
    };
    if let Some(kind) = row.failure {
        let name = serde_json::to_value(kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        s.push_str(&name);
        if let Some(t) = row.failed_test {
            let _ = write!(s, "@t{t}");
        }
    } else if let Some(key) = &row.vote_key {
        // A program digest is long: its first 8 hex digits are enough here.
        match key.strip_prefix("sha256:") {
            Some(hex) => {
                let _ = write!(s, "#{}", &hex[..hex.len().min(8)]);
            }
            None => s.push_str(key),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grade::Verdict;

    fn g(id: &str, sample: u64, outcome: Outcome, key: Option<&str>) -> GradedSample {
        GradedSample {
            problem_id: id.into(),
            repeat: 0,
            sample,
            verdict: Verdict::answer(outcome, key.map(str::to_string), key.map(str::to_string)),
        }
    }

    #[test]
    fn summary_counts_and_estimators() {
        let graded = vec![
            g("b", 1, Outcome::Incorrect, Some("72")),
            g("a", 0, Outcome::Correct, Some("73")),
            g("b", 0, Outcome::Correct, Some("5")),
            g("a", 1, Outcome::NoAnswer, None),
        ];
        let s = summarize(&graded, &BootstrapConfig::default());
        assert_eq!(s.problems[0].problem_id, "b");
        assert_eq!(s.problems[0].samples[0].sample, 0);
        assert_eq!(s.pass_at_1, Some(0.5));
        assert_eq!(s.no_answer_rate, 0.25);
        assert_eq!(
            s.pass_at_k.iter().map(|a| a.k).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(s.pass_at_k[1].value, 1.0);
        // maj@2: a → only "73" votes → 1; b → 1–1 tie → 0.5.
        assert_eq!(s.maj_at_k[1].value, 0.75);
    }

    /// Defect: maj@k voted on the normalised key; NeMo-Skills votes on the
    /// raw extracted string (`073` and `73` are different answers). Raw is
    /// the default; the normalised vote is kept behind a switch.
    #[test]
    fn maj_at_k_votes_on_the_raw_extracted_string_by_default() {
        let v = |sample, raw: &str, correct| GradedSample {
            problem_id: "p".into(),
            repeat: 0,
            sample,
            verdict: Verdict::answer(
                if correct {
                    Outcome::Correct
                } else {
                    Outcome::Incorrect
                },
                Some(raw.into()),
                Some(raw.trim_start_matches('0').into()),
            ),
        };
        // "073" and "73" are right, "12" wrong twice.
        let graded = [
            v(0, "073", true),
            v(1, "73", true),
            v(2, "12", false),
            v(3, "12", false),
        ];
        let raw = summarize(&graded, &BootstrapConfig::default());
        assert_eq!(raw.vote, VoteOn::Raw);
        // Raw: "12" wins 2–1–1.
        assert_eq!(raw.maj_at_k.last().unwrap(), &AtK { k: 4, value: 0.0 });
        let norm = summarize_with(&graded, &BootstrapConfig::default(), VoteOn::Normalised);
        // Normalised: "73" ties "12" 2–2 → ½.
        assert_eq!(norm.maj_at_k.last().unwrap(), &AtK { k: 4, value: 0.5 });
        assert!(render_text(&raw).contains("maj@k votes on the raw extracted answer"));
    }

    /// Defect: only the standard error over problems was reported. NeMo's
    /// `std_err_across_runs` is reported beside it, each named.
    #[test]
    fn both_standard_errors_are_reported_and_named() {
        let graded = vec![
            g("a", 0, Outcome::Correct, Some("1")),
            g("a", 1, Outcome::Incorrect, Some("2")),
            g("b", 0, Outcome::Correct, Some("1")),
            g("b", 1, Outcome::Correct, Some("1")),
        ];
        let s = summarize(&graded, &BootstrapConfig::default());
        // Over problems: values ½, 1 → sd √(1/8), se ¼.
        assert!((s.pass_at_1_std_err.unwrap() - 0.25).abs() < 1e-12);
        // Across runs: run means 1, ½ → sd √(1/8), se √(1/8)/√2 = ¼.
        assert!((s.pass_at_1_std_err_across_runs.unwrap() - 0.25).abs() < 1e-12);
        let text = render_text(&s);
        assert!(text.contains("(s.e. over problems)"), "{text}");
        assert!(text.contains("(s.e. across runs, NeMo)"), "{text}");
    }
}
