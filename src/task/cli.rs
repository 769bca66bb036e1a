//! `hyperscale tasks list|show`: what tasks exist and what a task loads, as
//! text. The binary parses arguments and prints; these functions do the work.

use std::fmt::Write as _;
use std::path::Path;

use super::error::{DataError, TaskError};
use super::load::{LoadOptions, LoadReport};
use super::problem::{Problem, Reference};
use super::source::Source;
use super::spec::{GraderSpec, Task};
use crate::prompt::template::RegionMode;

/// Characters of question text shown per problem.
const HEAD_CHARS: usize = 72;

/// A task argument: a path to a `.toml` task file, or a built-in name.
pub fn resolve(arg: &str) -> Result<Task, TaskError> {
    let path = Path::new(arg);
    if arg.ends_with(".toml") || path.is_file() {
        Task::load(path)
    } else {
        Task::builtin(arg)
    }
}

/// One line per built-in task: name, source format, samples, description.
pub fn list() -> String {
    let mut out = String::new();
    for name in Task::builtin_names() {
        match Task::builtin(name) {
            Ok(task) => {
                let _ = writeln!(
                    out,
                    "{:<14} {:<14} {:>3} samples  {}",
                    task.name,
                    format_name(&task.source),
                    task.sampling.samples,
                    task.description
                );
            }
            Err(e) => {
                let _ = writeln!(out, "{name:<14} invalid: {}", crate::error_chain(&e));
            }
        }
    }
    out
}

/// The task's settings, what loading found (files, counts, skipped lines) and
/// the first `limit` problems. GPQA question text is never shown, only lengths.
pub fn show(task: &Task, opts: &LoadOptions, limit: usize) -> Result<String, DataError> {
    let report = task.load_problems(opts)?;
    Ok(describe(task, &report, limit))
}

/// [`show`] for an already loaded report.
pub fn describe(task: &Task, report: &LoadReport, limit: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "task {} (version {}): {}",
        task.name, task.version, task.description
    );
    let _ = writeln!(out, "source: {}", source_line(&task.source));
    for file in &report.files {
        let _ = writeln!(out, "  read {}", file.display());
    }
    let _ = writeln!(
        out,
        "grader: {}; answer region: {}",
        grader_line(&task.grader),
        region_name(task.answer_region)
    );
    let s = &task.sampling;
    let _ = writeln!(
        out,
        "sampling: temperature {} top_p {} top_k {} max_new_tokens {} samples {}",
        s.temperature,
        s.top_p,
        s.top_k.map_or("off".to_string(), |k| k.to_string()),
        s.max_new_tokens,
        s.samples
    );
    let _ = writeln!(
        out,
        "problems: {} (skipped {}, filtered out {})",
        report.problems.len(),
        report.skipped.len(),
        report.filtered_out
    );
    for skip in &report.skipped {
        let _ = writeln!(
            out,
            "  skipped {}:{}: {}",
            skip.file.display(),
            skip.line,
            skip.reason
        );
    }
    for problem in report.problems.iter().take(limit) {
        let _ = writeln!(out, "  {}", problem_line(problem));
    }
    if report.problems.len() > limit {
        let _ = writeln!(out, "  … {} more", report.problems.len() - limit);
    }
    out
}

fn problem_line(p: &Problem) -> String {
    let meta = |key: &str| {
        p.metadata
            .get(key)
            .map(|v| v.to_string().trim_matches('"').to_string())
    };
    match &p.reference {
        Reference::MultipleChoice { correct, incorrect } => format!(
            "{}  question {} chars, options {} chars",
            p.id,
            p.question.chars().count(),
            std::iter::once(correct)
                .chain(incorrect)
                .map(|o| o.chars().count().to_string())
                .collect::<Vec<_>>()
                .join("/")
        ),
        Reference::Math { answer } => {
            let extra = meta("difficulty").map_or(String::new(), |d| format!("  difficulty {d}"));
            format!("{}  answer {answer}{extra}  {}", p.id, head(&p.question))
        }
        Reference::Code {
            tests,
            fn_name,
            public_only,
            ..
        } => format!(
            "{}  {} {}  {} tests{}  {}  {}",
            p.id,
            meta("platform").unwrap_or_default(),
            meta("contest_date").map_or(String::new(), |d| d.chars().take(10).collect()),
            tests.len(),
            if *public_only { " (public only)" } else { "" },
            fn_name.as_deref().unwrap_or("stdin"),
            head(&p.question)
        ),
    }
}

/// The first `HEAD_CHARS` characters with line breaks shown as `⏎`.
fn head(text: &str) -> String {
    let mut out: String = text.chars().take(HEAD_CHARS).collect();
    if text.chars().count() > HEAD_CHARS {
        out.push('…');
    }
    format!("\"{}\"", out.replace('\n', "⏎"))
}

fn format_name(source: &Source) -> &'static str {
    match source {
        Source::Aime { .. } => "aime-jsonl",
        Source::Gpqa { .. } => "gpqa",
        Source::LiveCodeBench { .. } => "livecodebench",
        Source::Arith(_) => "arith",
    }
}

fn source_line(source: &Source) -> String {
    match source {
        Source::Aime { dir, files } => format!("aime-jsonl in {dir}/: {}", files.join(" | ")),
        Source::Gpqa {
            dir,
            files,
            zip_member,
            ..
        } => {
            format!(
                "gpqa in {dir}/: {} (zip member {zip_member})",
                files.join(" | ")
            )
        }
        Source::LiveCodeBench {
            dir,
            release,
            files,
            window,
        } => format!(
            "livecodebench {release} in {dir}/: {} | {}; contest dates {}..{}",
            release.files().join("+"),
            files.join(" | "),
            window.from,
            window.to
        ),
        Source::Arith(c) => format!(
            "arith seed {} × {} per difficulty {:?}",
            c.seed, c.per_difficulty, c.difficulties
        ),
    }
}

fn grader_line(grader: &GraderSpec) -> String {
    match grader {
        GraderSpec::Math {
            fallback_last_number,
        } => format!("math (fallback to last number: {fallback_last_number})"),
        GraderSpec::MultipleChoice => "multiple-choice".to_string(),
        GraderSpec::Code { test_timeout } => {
            format!("code ({} s per test)", test_timeout.as_secs_f64())
        }
    }
}

fn region_name(mode: RegionMode) -> &'static str {
    match mode {
        RegionMode::Strict => "strict (after the last </think>; none without it)",
        RegionMode::Lenient => "lenient (after the last </think>, else all)",
        RegionMode::Whole => "whole text",
    }
}
