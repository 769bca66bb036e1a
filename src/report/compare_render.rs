//! Renderings of a [`Comparison`]: markdown sized for a CI step summary, and
//! JSON (the struct itself) for machines.

use std::fmt::Write as _;

use super::compare::{AccuracyChange, BudgetChange, Comparison, RegressionVerdict};
use super::summary::BudgetAxis;

/// The comparison as pretty JSON (non-finite numbers become `null`).
pub fn compare_json(c: &Comparison) -> String {
    serde_json::to_string_pretty(c).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

fn pts(x: f64) -> String {
    if x.is_finite() {
        format!("{:.1}", 100.0 * x)
    } else {
        "–".into()
    }
}

fn ci(a: &AccuracyChange) -> String {
    a.ci.map_or("–".into(), |(lo, hi)| {
        format!("[{:+.1}, {:+.1}]", 100.0 * lo, 100.0 * hi)
    })
}

fn rel(b: Option<&BudgetChange>, redact: bool) -> String {
    match b {
        Some(b) if redact && b.budget.is_wall_clock() => "~".into(),
        Some(b) if b.relative.is_finite() => {
            format!(
                "{:+.1}%{}",
                100.0 * b.relative,
                if b.regression { " ✗" } else { "" }
            )
        }
        Some(_) => "new".into(),
        None => "–".into(),
    }
}

/// Markdown for a CI step summary. `redact` hides runtime changes (for
/// snapshot tests: wall-clock varies between identical runs).
pub fn compare_markdown(c: &Comparison, redact: bool) -> String {
    let mut out = String::new();
    let (word, mark) = match c.verdict {
        RegressionVerdict::Pass => ("PASS", "✅"),
        RegressionVerdict::Regression => ("REGRESSION", "❌"),
        RegressionVerdict::Incomparable => ("INCOMPARABLE", "⚠️"),
    };
    let _ = writeln!(
        out,
        "## hyperscale compare: `{}` → `{}`\n\n{mark} **{word}** (exit {})\n",
        c.baseline,
        c.candidate,
        c.verdict.exit_code()
    );
    for r in &c.reasons {
        let _ = writeln!(out, "- {r}");
    }
    if !c.reasons.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "Tolerances: accuracy {:.1} points beyond a {:.0}% paired bootstrap CI over problems ({} draws, seed {}); KV reads and peak memory +{:.0}%; runtime +{:.0}% ({}).\n",
        100.0 * c.tolerances.accuracy,
        100.0 * c.bootstrap.level,
        c.bootstrap.resamples,
        c.bootstrap.seed,
        100.0 * c.tolerances.budget,
        100.0 * c.runtime_tolerance,
        if c.runtime_gated {
            "gated"
        } else {
            "not gated: different or unknown hardware"
        }
    );
    if c.verdict == RegressionVerdict::Incomparable {
        return out;
    }
    let r = &c.replay;
    let _ = writeln!(
        out,
        "Replay: {} common sample(s) generated identical tokens, {} differ; on identical tokens {} verdict(s) went correct → incorrect and {} incorrect → correct.\n",
        r.identical, r.different_tokens, r.lost, r.gained
    );
    let _ = writeln!(out, "### Methods (pooled over their configurations)\n");
    let _ = writeln!(
        out,
        "| task | method | configurations | problems | baseline | candidate | Δ points | CI |\n|---|---|---:|---:|---:|---:|---:|---|"
    );
    for m in &c.methods {
        let a = &m.accuracy;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {:+.1}{} | {} |",
            m.task,
            m.method,
            m.configurations,
            a.problems,
            pts(a.baseline),
            pts(a.candidate),
            100.0 * a.delta,
            if a.regression { " ✗" } else { "" },
            ci(a)
        );
    }
    let _ = writeln!(out, "\n### Configurations\n");
    let _ = writeln!(
        out,
        "| task | method | point | problems | baseline maj@W | candidate | Δ points | CI | KV reads | peak entries | peak bytes | runtime |\n|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|"
    );
    for p in &c.points {
        let a = &p.accuracy;
        let b = |x: BudgetAxis| rel(p.budgets.iter().find(|b| b.budget == x), redact);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {:+.1}{} | {} | {} | {} | {} | {} |",
            p.key.task,
            p.key.method,
            p.key.label(),
            a.problems,
            pts(a.baseline),
            pts(a.candidate),
            100.0 * a.delta,
            if a.regression { " ✗" } else { "" },
            ci(a),
            b(BudgetAxis::KvReads),
            b(BudgetAxis::PeakEntries),
            b(BudgetAxis::PeakBytes),
            b(BudgetAxis::Runtime),
        );
    }
    if !c.notes.is_empty() {
        let _ = writeln!(out, "\n### Not compared\n");
        for n in &c.notes {
            let _ = writeln!(out, "- {n}");
        }
    }
    out
}
