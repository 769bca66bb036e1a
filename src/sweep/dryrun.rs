//! `--dry-run`: the expanded plan as a table (one row per trial) with what
//! is left to decode and an upper bound on the tokens it will generate.

use std::collections::HashMap;
use std::fmt::Write;
use std::path::Path;

use super::expand::Expanded;
use super::options::SkippedGroup;
use super::plan::Plan;
use super::schedule::Schedule;

/// The plan, for people.
pub fn describe_plan(
    plan: &Plan,
    expanded: &Expanded,
    work: &Schedule,
    run_dir: &Path,
    skipped: &[SkippedGroup],
) -> String {
    // Per trial: records left to write, samples left to decode (by owner).
    let mut left: HashMap<&str, (u64, u64)> = HashMap::new();
    for b in &work.batches {
        let g = &expanded.groups[b.unit.group];
        let batch = &g.batches[b.batch];
        left.entry(&g.trials[batch.owner].id).or_default().1 += u64::from(batch.samples);
        for &(t, _) in &b.missing {
            left.entry(&g.trials[t].id).or_default().0 += 1;
        }
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "run `{}` → {} ({} of {} records already there)",
        plan.run_name,
        run_dir.display(),
        work.skipped_records,
        work.planned_records
    );
    let _ = writeln!(
        s,
        "model {} ({}, {}){}",
        plan.model.path,
        plan.model.device,
        plan.model.dtype,
        plan.model
            .dms
            .iter()
            .map(|d| format!("; dms cr{} {}", d.cr, d.path))
            .collect::<String>()
    );
    for t in &expanded.tasks {
        let _ = writeln!(
            s,
            "task {} version {}: {} problems",
            t.name,
            t.version,
            t.problems.len()
        );
    }
    let _ = writeln!(
        s,
        "{} trials in {} width groups, {} repeat(s), nested widths: {}",
        expanded.trials().count(),
        expanded.groups.len(),
        expanded.repeats,
        if plan.nested_widths { "yes" } else { "no" }
    );
    let _ = writeln!(
        s,
        "{:<18} {:<14} {:<10} {:>5} {:>4} {:>6} {:>6} {:>8} {:>8} {:>8}",
        "trial", "task", "method", "cr", "W", "L", "seed", "problems", "records", "decode"
    );
    for g in &expanded.groups {
        let problems = g
            .problems
            .as_ref()
            .map_or(expanded.tasks[g.task].problems.len(), Vec::len);
        for t in &g.trials {
            let (records, decode) = left.get(t.id.as_str()).copied().unwrap_or_default();
            let _ = writeln!(
                s,
                "{:<18} {:<14} {:<10} {:>5} {:>4} {:>6} {:>6} {:>8} {:>8} {:>8}",
                t.id,
                t.spec.task,
                t.method,
                t.spec.cr.map_or("-".to_string(), |c| c.to_string()),
                t.spec.width,
                t.spec.max_tokens,
                t.sampling.seed,
                problems,
                records,
                decode
            );
        }
    }
    for g in skipped {
        let _ = writeln!(
            s,
            "skipped {} ({} trials): {}",
            g.label,
            g.trials.len(),
            g.reason
        );
    }
    let _ = writeln!(
        s,
        "to do: {} records, {} samples to decode, at most {} generated tokens (every sample to L)",
        work.records_to_write(),
        work.samples,
        work.tokens
    );
    s
}
