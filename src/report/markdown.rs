//! `report.md`: the summary (per task, each method's gain over dense on each
//! headline budget with its CI, the best (method, CR) per budget) and the
//! plots first; then warnings, run metadata, the full tables (gains folded,
//! per-task tables with the frontier members marked, achieved vs target CR)
//! and the definitions. Pure: renders an [`Analysis`].

use std::fmt::Write as _;

use super::analysis::Analysis;
use super::batches::VoteOn;
use super::gain::GainEstimate;
use super::headline::{ExtraCell, Headline, headline};
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

/// The whole `report.md`, in reading order: a one-line digest, the
/// summary ([`headline`]) and the plots first (the first screen), then the
/// warnings, the run's metadata, the full tables (the long gains table
/// folded in `<details>`), and the definitions.
pub fn render_markdown(info: &RunInfo, a: &Analysis, opts: &RenderOptions) -> String {
    let r = opts.redact;
    let mut out = String::new();
    let _ = writeln!(out, "# Hyper-scaling report: `{}`\n", info.name);
    let warnings = if a.warnings.is_empty() {
        "no warnings".to_string()
    } else {
        format!("**{} warning(s)**: see Warnings below", a.warnings.len())
    };
    let _ = writeln!(
        out,
        "{} configuration(s) over {} task(s) from {} record(s); {warnings}.\n",
        a.points.len(),
        a.tasks().len(),
        info.records
    );
    // The first screen: the summary table beside the first plot.
    let (lead, rest) = match opts.plots.split_first() {
        Some((first, rest)) => (Some(first), rest),
        None => (None, &[][..]),
    };
    summary(&mut out, &headline(a), a, r, lead);
    if !rest.is_empty() {
        let _ = writeln!(out, "## Plots\n");
        for p in rest {
            let _ = writeln!(out, "### {}\n\n{}\n", p.title, image(p));
        }
    }
    if !a.warnings.is_empty() {
        let _ = writeln!(out, "## Warnings\n");
        for w in &a.warnings {
            let _ = writeln!(out, "- {w}");
        }
        out.push('\n');
    }
    let _ = writeln!(out, "## Run\n");
    metadata(&mut out, info, a, r);
    let _ = writeln!(out, "## Full tables\n");
    gains(&mut out, a, r);
    for task in a.tasks() {
        task_table(&mut out, a, task, r);
    }
    achieved_cr(&mut out, a);
    out.push_str(DEFINITIONS);
    out
}

/// A gain in points with its CI: `+9.8 [-12.9, +48.6]` (the CI `–` when
/// undefined), as the full gains table writes them.
pub fn gain_points(g: &GainEstimate) -> (String, String) {
    (
        format!("{:+.1}", 100.0 * g.gain.gain),
        g.ci.map_or("–".into(), |(lo, hi)| {
            format!("[{:+.1}, {:+.1}]", 100.0 * lo, 100.0 * hi)
        }),
    )
}

/// A budget's name in the summary's column headers.
fn budget_title(b: BudgetAxis) -> &'static str {
    match b {
        BudgetAxis::KvReads => "KV reads",
        BudgetAxis::PeakEntries => "peak KV entries",
        BudgetAxis::PeakBytes => "peak KV memory",
        BudgetAxis::Runtime => "runtime",
    }
}

/// A plot as a markdown image, its alt text the title without backticks.
fn image(p: &PlotRef) -> String {
    format!("![{}]({})", p.title.replace('`', ""), p.path)
}

/// The summary section: one row per task × method, then one per task with
/// the best (method, CR) per budget; with `lead`, the table and that plot
/// in one `<div class="lead">` (side by side in the HTML when they fit).
fn summary(out: &mut String, h: &Headline, a: &Analysis, r: bool, lead: Option<&PlotRef>) {
    let _ = writeln!(out, "## Summary\n");
    let level = a.gains.first().map_or(String::new(), |g| {
        format!("{:.0}% ", 100.0 * g.bootstrap.level)
    });
    let _ = writeln!(
        out,
        "Each budget's column: the gain over dense in accuracy points (maj@W) — the method's frontier minus dense's at equal budget, averaged over the budget range both cover on a log axis — and its {level}bootstrap CI over problems. Above 0: the method buys accuracy at equal cost. **best**: the (method, CR) with the largest gain on that budget. `–`: no gain (no dense configuration, or no overlap).\n"
    );
    if lead.is_some() {
        let _ = writeln!(out, "<div class=\"lead\">\n");
    }
    let mut header = String::from("| task | method |");
    let mut rule = String::from("|---|---|");
    for &b in &h.budgets {
        let _ = write!(header, " {} |", budget_title(b));
        rule.push_str("---|");
    }
    for c in &h.extra_columns {
        let _ = write!(header, " {c} |");
        rule.push_str("---|");
    }
    let _ = writeln!(out, "{header}\n{rule}");
    let hidden = |b: BudgetAxis| r && b.is_wall_clock();
    for t in &h.tasks {
        let task = format!(
            "`{}` ({} problem{})",
            t.task,
            t.problems,
            if t.problems == 1 { "" } else { "s" }
        );
        for m in &t.methods {
            let mut row = format!("| {task} | {} |", m.method);
            for (g, &b) in m.gains.iter().zip(&h.budgets) {
                let cell = if m.dense {
                    "reference".to_string()
                } else if hidden(b) {
                    REDACTED.into()
                } else {
                    g.as_ref().map_or("–".into(), gain_cell)
                };
                let _ = write!(row, " {cell} |");
            }
            for e in &m.extra {
                let _ = write!(row, " {} |", extra_cell(e));
            }
            let _ = writeln!(out, "{row}");
        }
        let mut row = format!("| {task} | **best** |");
        for (g, &b) in t.best.iter().zip(&h.budgets) {
            let cell = if hidden(b) {
                REDACTED.into()
            } else {
                g.as_ref().map_or("–".into(), |g| {
                    format!("{}: {}", selection(g), gain_cell(g))
                })
            };
            let _ = write!(row, " {cell} |");
        }
        for _ in &h.extra_columns {
            row.push_str(" |");
        }
        let _ = writeln!(out, "{row}");
    }
    out.push('\n');
    if let Some(p) = lead {
        let _ = writeln!(out, "{}\n\n</div>\n", image(p));
    }
}

/// A summary cell: `-0.4 [-0.8, +0.0]`, or `+0.0 (no CI)` without one.
pub fn gain_cell(g: &GainEstimate) -> String {
    let (gain, ci) = gain_points(g);
    match g.ci {
        Some(_) => format!("{gain} {ci}"),
        None => format!("{gain} (no CI)"),
    }
}

/// `tova CR 2`, or `tova` for the gain over all its CRs.
pub fn selection(g: &GainEstimate) -> String {
    match g.selection.cr {
        Some(cr) => format!("{} CR {}", g.selection.method, fmt_num(cr)),
        None => g.selection.method.clone(),
    }
}

/// An extra column's cell: `W2-L24-CR4: 50.0 ± 12.5`.
pub fn extra_cell(e: &ExtraCell) -> String {
    match e {
        ExtraCell::Accuracy {
            label,
            accuracy,
            se,
        } => format!("{label}: {}", with_se(*accuracy, *se)),
        ExtraCell::Empty => "–".into(),
    }
}

fn metadata(out: &mut String, info: &RunInfo, a: &Analysis, r: bool) {
    let _ = writeln!(out, "| item | value |\n|---|---|");
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
    let _ = writeln!(out, "### Hyper-scaling gains over dense\n");
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
        "<details><summary>Every gain: {} row(s), task × method × CR (all: every CR of the method) × budget</summary>\n",
        a.gains.len()
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
            let (gain, ci) = gain_points(g);
            (
                gain,
                ci,
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
    out.push_str("\n</details>\n\n");
}

fn task_table(out: &mut String, a: &Analysis, task: &str, r: bool) {
    // Batch occupancy only where records carry it (format 3).
    let occupancy = a
        .points
        .iter()
        .any(|p| p.key.task == task && p.occupancy.is_some());
    let _ = writeln!(out, "### `{task}`\n");
    let _ = writeln!(
        out,
        "Frontier marks: **R** KV reads, **M** peak memory (entries), **T** runtime.\n"
    );
    let (occ_head, occ_rule) = if occupancy {
        (" occupancy |", "---:|")
    } else {
        ("", "")
    };
    let _ = writeln!(
        out,
        "| method | CR target / achieved | W | L | problems | pass@1 ± s.e. (problems) | s.e. across runs | maj@W ± s.e. (problems) | pass@W | no answer | tokens | cut at L | KV reads | peak entries | peak bytes | runtime s | tok/s |{occ_head} frontier |"
    );
    let _ = writeln!(
        out,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|{occ_rule}---|"
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
        let occ = if occupancy {
            format!(
                " {} |",
                p.occupancy.map_or("–".into(), |o| format!("{o:.1}"))
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "| {} | {cr} | {} | {} | {} | {} | {} | {} | {} | {:.0}% | {:.1} | {:.0}% | {} | {} | {} | {} | {} |{occ} {marks} |",
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
    let _ = writeln!(out, "### Achieved vs target compression\n");
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
- **Plots**: maj@W (%) against each budget on a log axis, ± one standard error over problems; one colour per method, one marker per CR; each method's frontier as a step line, its points labelled W-L-CR. The first plot stands beside the summary.
- **Frontier**: the configurations no other configuration of the method beats on both accuracy (maj@W) and budget; drawn as a step line.
- **Gain**: the method's frontier minus dense's, both interpolated linearly in log10(budget), averaged over the budget range both cover; the CI resamples problems (shared across configurations) and rebuilds both frontiers.
";
