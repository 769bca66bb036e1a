//! `report.md`: run metadata, warnings, the gains, per-task tables with the
//! frontier members marked, achieved vs target CR, the plots, and the
//! definitions. Pure: renders an [`Analysis`].

use std::fmt::Write as _;

use super::analysis::Analysis;
use super::batches::VoteOn;
use super::summary::{BudgetAxis, PointSummary, fmt_num};
use crate::record::Manifest;

/// What the report says about the run itself.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// The run directory's name.
    pub name: String,
    pub manifest: Option<Manifest>,
    /// Records in the file, duplicates and error records included.
    pub records: usize,
    /// Records left out because their key was seen before.
    pub duplicates: usize,
    /// Error records (generation failed) left out of every accuracy.
    pub generation_errors: usize,
    /// What maj@W votes on.
    pub vote: VoteOn,
}

/// An image the report shows, path relative to the report.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotRef {
    pub title: String,
    pub path: String,
}

/// Rendering switches.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// Replace what varies between identical runs (dates, hardware, git
    /// revision, wall-clock runtimes and anything derived from them) with
    /// `~`: for snapshot tests.
    pub redact: bool,
    pub plots: Vec<PlotRef>,
}

const REDACTED: &str = "~";

/// Accuracy (a fraction) as percentage points with one decimal.
fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:.1}", 100.0 * x)
    } else {
        "–".into()
    }
}

/// A count in engineering style: 1234567 → `1.23M`.
pub fn si(x: f64) -> String {
    if !x.is_finite() {
        return "–".into();
    }
    let (v, unit) = match x.abs() {
        a if a >= 1e9 => (x / 1e9, "G"),
        a if a >= 1e6 => (x / 1e6, "M"),
        a if a >= 1e3 => (x / 1e3, "k"),
        _ => (x, ""),
    };
    format!("{}{unit}", fmt_sig(v))
}

fn fmt_sig(v: f64) -> String {
    match v.abs() {
        a if a >= 100.0 => format!("{v:.0}"),
        a if a >= 10.0 => format!("{v:.1}"),
        _ => format!("{v:.2}"),
    }
}

fn wall(x: f64, redact: bool) -> String {
    if redact {
        REDACTED.into()
    } else if x.is_finite() {
        fmt_sig(x)
    } else {
        "–".into()
    }
}

fn with_se(v: f64, se: Option<f64>) -> String {
    match se {
        Some(se) => format!("{} ± {}", pct(v), pct(se)),
        None => pct(v),
    }
}

fn budget_value(b: BudgetAxis, p: &PointSummary, redact: bool) -> String {
    match b {
        BudgetAxis::Runtime => wall(p.runtime_s, redact),
        BudgetAxis::PeakBytes => format!("{}B", si(p.peak_bytes)),
        _ => si(b.of_point(p)),
    }
}

/// The whole `report.md`.
pub fn render_markdown(info: &RunInfo, a: &Analysis, opts: &RenderOptions) -> String {
    let r = opts.redact;
    let mut out = String::new();
    let _ = writeln!(out, "# Hyper-scaling report: `{}`\n", info.name);
    metadata(&mut out, info, a, r);
    if !a.warnings.is_empty() {
        let _ = writeln!(out, "## Warnings\n");
        for w in &a.warnings {
            let _ = writeln!(out, "- {w}");
        }
        out.push('\n');
    }
    gains(&mut out, a, r);
    for task in a.tasks() {
        task_table(&mut out, a, task, r);
    }
    achieved_cr(&mut out, a);
    if !opts.plots.is_empty() {
        let _ = writeln!(out, "## Plots\n");
        for p in &opts.plots {
            let _ = writeln!(out, "### {}\n\n![{}]({})\n", p.title, p.title, p.path);
        }
    }
    out.push_str(DEFINITIONS);
    out
}

fn metadata(out: &mut String, info: &RunInfo, a: &Analysis, r: bool) {
    let _ = writeln!(out, "| | |\n|---|---|");
    let row = |out: &mut String, k: &str, v: String| {
        let _ = writeln!(out, "| {k} | {v} |");
    };
    if let Some(m) = &info.manifest {
        row(out, "run", format!("`{}`", m.run));
        row(out, "config", format!("`{}`", m.config_file));
        row(
            out,
            "binary",
            format!(
                "hyperscale {} (record format {})",
                m.crate_version, m.format_version
            ),
        );
        let rev = m.git_revision.clone().unwrap_or_else(|| "unknown".into());
        row(
            out,
            "git revision",
            if r {
                REDACTED.into()
            } else {
                format!("`{rev}`")
            },
        );
        let hw = &m.hardware;
        row(
            out,
            "hardware",
            if r {
                REDACTED.into()
            } else {
                format!(
                    "{} · {} CPUs ({}) · {}/{}",
                    hw.device,
                    hw.cpus,
                    hw.cpu_model.as_deref().unwrap_or("unknown CPU"),
                    hw.os,
                    hw.arch
                )
            },
        );
        let when = format!(
            "{} → {} ({} session(s))",
            m.started_at,
            m.ended_at.as_deref().unwrap_or("unfinished"),
            m.sessions.len()
        );
        row(out, "when", if r { REDACTED.into() } else { when });
        for (model, id) in &m.identities.models {
            row(out, "model", format!("`{model}` = `{id}`"));
        }
        for (task, v) in &m.identities.tasks {
            row(out, "task version", format!("`{task}` {v}"));
        }
    } else {
        row(out, "run", format!("`{}` (no manifest.json)", info.name));
    }
    row(
        out,
        "records",
        format!(
            "{} ({} duplicate(s) left out, {} error record(s) excluded from accuracy)",
            info.records, info.duplicates, info.generation_errors
        ),
    );
    row(out, "maj@W votes on", info.vote.describe().to_string());
    row(
        out,
        "configurations",
        format!("{} over {} task(s)", a.points.len(), a.tasks().len()),
    );
    out.push('\n');
}

fn gains(out: &mut String, a: &Analysis, r: bool) {
    let _ = writeln!(out, "## Hyper-scaling gains over dense\n");
    if a.gains.is_empty() {
        let _ = writeln!(
            out,
            "No gains: a task needs a dense configuration and a compressed one whose frontiers overlap on a budget.\n"
        );
        return;
    }
    let b = a.gains[0].bootstrap;
    let _ = writeln!(
        out,
        "Mean accuracy difference (points) between the method's frontier and dense's, averaged over their common budget range on a log axis; {:.0}% bootstrap CI over problems ({} draws, seed {}).\n",
        100.0 * b.level,
        b.resamples,
        b.seed
    );
    let _ = writeln!(
        out,
        "| task | method | CR | budget | gain (points) | CI | budget range | problems |\n|---|---|---|---|---:|---|---|---:|"
    );
    for g in &a.gains {
        let wallclock = r && g.budget.is_wall_clock();
        let (gain, ci, range) = if wallclock {
            (REDACTED.into(), REDACTED.into(), REDACTED.into())
        } else {
            (
                format!("{:+.1}", 100.0 * g.gain.gain),
                g.ci.map_or("–".into(), |(lo, hi)| {
                    format!("[{:+.1}, {:+.1}]", 100.0 * lo, 100.0 * hi)
                }),
                match g.budget {
                    BudgetAxis::Runtime => {
                        format!("{}–{} s", fmt_sig(g.gain.lo), fmt_sig(g.gain.hi))
                    }
                    _ => format!("{}–{}", si(g.gain.lo), si(g.gain.hi)),
                },
            )
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {gain} | {ci} | {range} | {} |",
            g.task,
            g.selection.method,
            g.selection.cr.map_or("all".into(), fmt_num),
            g.budget.slug(),
            g.problems
        );
    }
    out.push('\n');
}

fn task_table(out: &mut String, a: &Analysis, task: &str, r: bool) {
    let _ = writeln!(out, "## `{task}`\n");
    let _ = writeln!(
        out,
        "Frontier marks: **R** KV reads, **M** peak memory (entries), **T** runtime.\n"
    );
    let _ = writeln!(
        out,
        "| method | CR target / achieved | W | L | problems | pass@1 ± s.e. (problems) | s.e. across runs | maj@W ± s.e. (problems) | pass@W | no answer | tokens | cut at L | KV reads | peak entries | peak bytes | runtime s | tok/s | frontier |"
    );
    let _ = writeln!(
        out,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for (i, p) in a
        .points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.key.task == task)
    {
        let marks: String = [
            (BudgetAxis::KvReads, 'R'),
            (BudgetAxis::PeakEntries, 'M'),
            (BudgetAxis::Runtime, 'T'),
        ]
        .iter()
        // Runtime membership depends on wall-clock: not in redacted output.
        .filter(|(b, _)| !(r && b.is_wall_clock()))
        .filter(|(b, _)| {
            a.frontier(task, *b, &p.key.method)
                .is_some_and(|f| f.points.contains(&i))
        })
        .map(|&(_, c)| c)
        .collect();
        let problems = if p.generation_errors > 0 {
            format!(
                "{} ({} error records excluded)",
                p.problems, p.generation_errors
            )
        } else {
            p.problems.to_string()
        };
        let cr = match (p.key.cr_target, p.cr_achieved) {
            (Some(t), Some(x)) => format!("{} / {}", fmt_num(t), fmt_sig(x)),
            (Some(t), None) => format!("{} / –", fmt_num(t)),
            (None, Some(x)) => format!("– / {}", fmt_sig(x)),
            (None, None) => "–".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {cr} | {} | {} | {} | {} | {} | {} | {} | {:.0}% | {:.1} | {:.0}% | {} | {} | {} | {} | {} | {marks} |",
            p.key.method,
            p.key.width,
            p.key.max_tokens,
            problems,
            with_se(p.pass_at_1, p.pass_at_1_se),
            p.pass_at_1_se_runs.map_or("–".into(), pct),
            with_se(p.accuracy, p.accuracy_se),
            pct(p.pass_at_w),
            100.0 * p.no_answer_rate,
            p.generated_tokens,
            100.0 * p.truncated_rate,
            budget_value(BudgetAxis::KvReads, p, r),
            budget_value(BudgetAxis::PeakEntries, p, r),
            budget_value(BudgetAxis::PeakBytes, p, r),
            budget_value(BudgetAxis::Runtime, p, r),
            wall(p.tokens_per_s, r),
        );
    }
    out.push('\n');
}

fn achieved_cr(out: &mut String, a: &Analysis) {
    let _ = writeln!(out, "## Achieved vs target compression\n");
    let _ = writeln!(
        out,
        "Achieved CR = decode KV reads dense attention would have made ÷ those made (reads-weighted over a configuration's samples). Short generations sit below target: the budget floor (`min_tokens`) and the prompt dominate.\n"
    );
    let _ = writeln!(
        out,
        "| method | CR target | achieved (min – max over configurations) | configurations |\n|---|---:|---|---:|"
    );
    let mut seen: Vec<(String, Option<u64>)> = Vec::new();
    for p in &a.points {
        let id = (
            p.key.method.clone(),
            p.key.cr_target.map(|c| (c * 1000.0).round() as u64),
        );
        if seen.contains(&id) {
            continue;
        }
        seen.push(id.clone());
        let same: Vec<f64> = a
            .points
            .iter()
            .filter(|q| {
                q.key.method == p.key.method
                    && q.key.cr_target.map(|c| (c * 1000.0).round() as u64) == id.1
            })
            .filter_map(|q| q.cr_achieved)
            .collect();
        let lo = same.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = same.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let achieved = if same.is_empty() {
            "–".into()
        } else {
            format!("{} – {}", fmt_sig(lo), fmt_sig(hi))
        };
        let _ = writeln!(
            out,
            "| {} | {} | {achieved} | {} |",
            p.key.method,
            p.key.cr_target.map_or("–".into(), fmt_num),
            same.len()
        );
    }
    out.push('\n');
}

const DEFINITIONS: &str = "## Definitions\n
- **Configuration**: task × method × CR × W (samples per problem) × L (most new tokens); seeds and repeats are pooled.
- **Outcome**: every number counts the grader's typed outcome stored in the record (`correct`, `incorrect`, `no_answer`, `error`), never whether an answer string was extracted. A wrong answer is `incorrect`; code that ran and failed is `incorrect` (its failure kind kept beside it), never `no_answer`.
- **pass@1**: mean over problems of c/n. **pass@W**: one of the W samples correct (mean over W-batches).
- **maj@W**: majority vote over the W samples of a batch (NeMo-Skills: samples without an answer dropped, ties scored by the mean correctness of the tied answers). Math and multiple choice vote on the extracted answer (the raw string by default, as NeMo-Skills; the run table says which); **code votes on the program digest** (SHA-256 of the extracted program): identical programs vote together, and when every program differs the tie rule makes maj@W the batch's c/W. maj@1 = pass@1 for every task. The frontiers and gains plot maj@W, for code too.
- **± s.e. (problems)**: sample standard deviation (ddof 1) of the per-problem values over √(problems). **s.e. across runs**: NeMo-Skills' `std_err_across_runs` of pass@1: run i is the i-th sample of every problem, the standard deviation (ddof 1) of the run means over √(runs); – below two samples per problem.
- **no answer**: samples whose outcome is `no_answer` (no `\\boxed{}`, no `Answer:` line, no fenced program).
- **Error records** (generation failed after every retry: no text) are left out of every number and counted in the records row and the problems column; **duplicate records** (a key `trial:problem:repeat:sample` seen before) are scored once, from the first record, and counted in the records row and the warnings.
- **Budgets per problem** (a W-batch's cost, mean over problems): **KV reads** = Σ over the W samples of the KV entries read by decode steps (the shared prefill is left out: every method pays it); **peak memory** = peak resident KV entries of the W-batch (shared prompt once), and in bytes; **runtime** = wall seconds of prefill + decode.
- **Frontier**: the configurations no other configuration of the method beats on both accuracy (maj@W) and budget; drawn as a step line.
- **Gain**: the method's frontier minus dense's, both interpolated linearly in log10(budget), averaged over the budget range both cover; the CI resamples problems (shared across configurations) and rebuilds both frontiers.
";
