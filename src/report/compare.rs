//! `hyperscale compare`: two runs on their common trials, one verdict.
//!
//! A configuration is compared when both runs have it with the **same set
//! of trial ids** (a trial id hashes everything that makes samples
//! reproducible: model file, task version, policy, CR, W, L, sampling,
//! seed). On its problems common to both runs:
//!
//! - **accuracy** (maj@W): the mean of the per-problem differences
//!   candidate − baseline, with a paired percentile bootstrap CI over
//!   problems ([`bootstrap_ci`] of the differences). Also pooled per task ×
//!   method: each problem's difference averaged over the method's compared
//!   configurations, then bootstrapped over problems (the frontier-level
//!   change).
//! - **budgets**: the relative change of the mean KV reads, peak entries,
//!   peak bytes and runtime over those problems.
//! - **replay**: samples of the compared trials present in both runs with
//!   the same `token_hash` generated the same tokens, so their verdicts must
//!   agree: a change there is not sampling noise but a grading (or answer
//!   extraction) change, measured exactly. This is what catches a
//!   regression on runs too small for a CI over problems (the smoke run has
//!   one or two problems per task).
//!
//! Verdicts ([`RegressionVerdict`], the exit code):
//! - **regression (1)**: some accuracy CI lies entirely below
//!   `−tolerance.accuracy` (needs ≥ 2 problems: one problem has no CI), or
//!   the samples with identical tokens lost more correct verdicts than they
//!   gained, by more than `tolerance.accuracy` of them, or a
//!   counted budget (reads, peak) grew by more than `tolerance.budget`, or a
//!   gated runtime grew by more than its tolerance;
//! - **incomparable (2)**: a record format this binary cannot read, a task
//!   whose version differs, or no configuration in common — each explained
//!   (readable formats that differ are read into the current one and
//!   noted);
//! - otherwise **pass (0)**.
//!
//! Runtime is wall-clock: it moves with the machine, its load and its
//! thermal state, so it has its own tolerance, generous by default
//! ([`DEFAULT_RUNTIME_TOLERANCE`]: 3.0, a candidate up to 4× slower passes),
//! and by default it is gated only when both runs report the same hardware
//! (device, CPU model and count). Giving a runtime tolerance explicitly
//! gates it whatever the hardware.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::estimators::{BootstrapConfig, bootstrap_ci, mean};
use super::summary::{BatchRow, BudgetAxis, PointKey, ProblemRow};
use crate::record::{
    Manifest, OLDEST_READABLE_FORMAT, RECORD_FORMAT_VERSION, SampleRecord, readable_format,
};

/// Default relative runtime growth allowed (3.0 = up to 4× the baseline).
pub const DEFAULT_RUNTIME_TOLERANCE: f64 = 3.0;
/// Default relative growth of counted budgets (KV reads, peak memory).
pub const DEFAULT_BUDGET_TOLERANCE: f64 = 0.05;

/// What one run brings to a comparison.
#[derive(Debug, Clone)]
pub struct RunTables {
    pub name: String,
    pub manifest: Option<Manifest>,
    pub problems: Vec<ProblemRow>,
    /// Point id → its trial ids.
    pub trials: BTreeMap<String, BTreeSet<String>>,
    /// Task → its task versions.
    pub task_versions: BTreeMap<String, BTreeSet<String>>,
    /// Sample id → (trial, token hash, correct).
    pub samples: BTreeMap<String, (String, String, bool)>,
    /// What reading the run set aside (duplicates, error records), for the
    /// comparison's notes.
    pub notes: Vec<String>,
}

impl RunTables {
    /// `records`: the records the batches were made from (after
    /// [`super::batches::prepare`]: one per key, no error records).
    pub fn new<'a>(
        name: String,
        manifest: Option<Manifest>,
        records: impl IntoIterator<Item = &'a SampleRecord>,
        batches: &[BatchRow],
        problems: Vec<ProblemRow>,
    ) -> Self {
        let mut trials: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut task_versions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for b in batches {
            trials
                .entry(b.key.id())
                .or_default()
                .insert(b.trial.clone());
            task_versions
                .entry(b.key.task.clone())
                .or_default()
                .insert(b.task_version.clone());
        }
        RunTables {
            name,
            manifest,
            problems,
            trials,
            task_versions,
            samples: records
                .into_iter()
                .map(|r| {
                    (
                        r.sample_id.clone(),
                        (r.trial.clone(), r.token_hash.clone(), r.correct()),
                    )
                })
                .collect(),
            notes: Vec::new(),
        }
    }
}

/// Tolerances of the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tolerances {
    /// Accuracy drop allowed beyond the CI, as a fraction (0.02 = 2 points).
    pub accuracy: f64,
    /// Relative growth allowed of KV reads and peak memory.
    pub budget: f64,
    /// Relative runtime growth allowed; `None`: [`DEFAULT_RUNTIME_TOLERANCE`],
    /// gated only on the same hardware.
    pub runtime: Option<f64>,
}

impl Default for Tolerances {
    fn default() -> Self {
        Tolerances {
            accuracy: 0.0,
            budget: DEFAULT_BUDGET_TOLERANCE,
            runtime: None,
        }
    }
}

/// The exit code's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegressionVerdict {
    Pass,
    Regression,
    Incomparable,
}

impl RegressionVerdict {
    pub fn exit_code(self) -> u8 {
        match self {
            RegressionVerdict::Pass => 0,
            RegressionVerdict::Regression => 1,
            RegressionVerdict::Incomparable => 2,
        }
    }
}

/// A budget's change at one configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetChange {
    pub budget: BudgetAxis,
    pub baseline: f64,
    pub candidate: f64,
    /// `candidate / baseline − 1` (0 when both are 0).
    pub relative: f64,
    pub regression: bool,
}

/// An accuracy change with its paired CI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccuracyChange {
    pub problems: usize,
    pub baseline: f64,
    pub candidate: f64,
    pub delta: f64,
    pub ci: Option<(f64, f64)>,
    pub regression: bool,
}

/// One compared configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointComparison {
    pub key: PointKey,
    pub accuracy: AccuracyChange,
    pub budgets: Vec<BudgetChange>,
}

/// A method's configurations pooled (the frontier-level change).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodComparison {
    pub task: String,
    pub method: String,
    pub configurations: usize,
    pub accuracy: AccuracyChange,
}

/// Verdicts of the samples both runs generated identically.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplayCheck {
    /// Common samples (compared trials) with the same token hash.
    pub identical: usize,
    /// Common samples whose tokens differ.
    pub different_tokens: usize,
    /// Identical-token samples correct in the baseline only.
    pub lost: usize,
    /// Identical-token samples correct in the candidate only.
    pub gained: usize,
    pub regression: bool,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub baseline: String,
    pub candidate: String,
    pub verdict: RegressionVerdict,
    /// Why the verdict is not pass.
    pub reasons: Vec<String>,
    /// What was left out and why.
    pub notes: Vec<String>,
    pub tolerances: Tolerances,
    pub runtime_tolerance: f64,
    pub runtime_gated: bool,
    pub bootstrap: BootstrapConfig,
    pub replay: ReplayCheck,
    pub methods: Vec<MethodComparison>,
    pub points: Vec<PointComparison>,
}

fn same_hardware(a: &RunTables, b: &RunTables) -> bool {
    match (&a.manifest, &b.manifest) {
        (Some(x), Some(y)) => {
            let (x, y) = (&x.hardware, &y.hardware);
            x.device == y.device && x.cpu_model == y.cpu_model && x.cpus == y.cpus
        }
        _ => false,
    }
}

fn change(base: &[f64], cand: &[f64], tol: f64, boot: &BootstrapConfig) -> AccuracyChange {
    let diffs: Vec<f64> = cand.iter().zip(base).map(|(c, b)| c - b).collect();
    let ci = if diffs.len() >= 2 {
        bootstrap_ci(&diffs, boot)
    } else {
        None
    };
    AccuracyChange {
        problems: diffs.len(),
        baseline: mean(base).unwrap_or(f64::NAN),
        candidate: mean(cand).unwrap_or(f64::NAN),
        delta: mean(&diffs).unwrap_or(f64::NAN),
        ci,
        regression: ci.is_some_and(|(_, hi)| hi < -tol),
    }
}

/// Compare `candidate` against `baseline`.
pub fn compare(
    baseline: &RunTables,
    candidate: &RunTables,
    tol: &Tolerances,
    boot: &BootstrapConfig,
) -> Comparison {
    let runtime_gated = tol.runtime.is_some() || same_hardware(baseline, candidate);
    let runtime_tolerance = tol.runtime.unwrap_or(DEFAULT_RUNTIME_TOLERANCE);
    let mut out = Comparison {
        baseline: baseline.name.clone(),
        candidate: candidate.name.clone(),
        verdict: RegressionVerdict::Pass,
        reasons: Vec::new(),
        notes: Vec::new(),
        tolerances: *tol,
        runtime_tolerance,
        runtime_gated,
        bootstrap: *boot,
        replay: ReplayCheck::default(),
        methods: Vec::new(),
        points: Vec::new(),
    };
    let mut incomparable = Vec::new();
    for (run, which) in [(baseline, "baseline"), (candidate, "candidate")] {
        if let Some(m) = &run.manifest
            && !readable_format(m.format_version)
        {
            incomparable.push(format!(
                "{which} record format {} is not readable by this binary (formats {}–{})",
                m.format_version, OLDEST_READABLE_FORMAT, RECORD_FORMAT_VERSION
            ));
        }
        for n in &run.notes {
            out.notes.push(format!("{which}: {n}"));
        }
    }
    if let (Some(a), Some(b)) = (&baseline.manifest, &candidate.manifest)
        && a.format_version != b.format_version
    {
        out.notes.push(format!(
            "record formats differ (baseline {}, candidate {}); both are read into the current format",
            a.format_version, b.format_version
        ));
    }
    for (task, va) in &baseline.task_versions {
        if let Some(vb) = candidate.task_versions.get(task)
            && va != vb
        {
            incomparable.push(format!(
                "task `{task}` versions differ: baseline {}, candidate {} (problems or grading changed)",
                join(va),
                join(vb)
            ));
        }
    }
    // Problem rows by point id, in the baseline's order.
    let index = |rows: &[ProblemRow]| {
        let mut m: BTreeMap<String, (PointKey, BTreeMap<String, ProblemRow>)> = BTreeMap::new();
        let mut order = Vec::new();
        for r in rows {
            let id = r.key.id();
            let e = m.entry(id.clone()).or_insert_with(|| {
                order.push(id);
                (r.key.clone(), BTreeMap::new())
            });
            e.1.insert(r.problem_id.clone(), r.clone());
        }
        (m, order)
    };
    let (base_rows, order) = index(&baseline.problems);
    let (cand_rows, _) = index(&candidate.problems);
    let mut only_base = 0;
    // Per (task, method): problem → differences over configurations.
    /// Problem → (baseline, candidate) accuracies over configurations.
    type ByProblem = BTreeMap<String, (Vec<f64>, Vec<f64>)>;
    let mut pooled: BTreeMap<(String, String), (usize, ByProblem)> = BTreeMap::new();
    for id in &order {
        let (key, brows) = &base_rows[id];
        let Some((_, crows)) = cand_rows.get(id) else {
            only_base += 1;
            continue;
        };
        if baseline.trials.get(id) != candidate.trials.get(id) {
            out.notes.push(format!(
                "`{}` {} {}: not compared, its trial ids differ (sampling, seeds, policy parameters or task version changed)",
                key.task,
                key.method,
                key.label()
            ));
            continue;
        }
        let common: Vec<&String> = brows.keys().filter(|p| crows.contains_key(*p)).collect();
        let b: Vec<&ProblemRow> = common.iter().map(|p| &brows[*p]).collect();
        let c: Vec<&ProblemRow> = common.iter().map(|p| &crows[*p]).collect();
        let acc = |rows: &[&ProblemRow]| rows.iter().map(|r| r.accuracy).collect::<Vec<_>>();
        let accuracy = change(&acc(&b), &acc(&c), tol.accuracy, boot);
        let budgets = BudgetAxis::ALL
            .iter()
            .map(|&budget| {
                let m = |rows: &[&ProblemRow]| {
                    mean(
                        &rows
                            .iter()
                            .map(|r| budget.of_problem(r))
                            .collect::<Vec<_>>(),
                    )
                    .unwrap_or(0.0)
                };
                let (bm, cm) = (m(&b), m(&c));
                let relative = if bm > 0.0 {
                    cm / bm - 1.0
                } else if cm > 0.0 {
                    f64::INFINITY
                } else {
                    0.0
                };
                let limit = if budget.is_wall_clock() {
                    runtime_gated.then_some(runtime_tolerance)
                } else {
                    Some(tol.budget)
                };
                BudgetChange {
                    budget,
                    baseline: bm,
                    candidate: cm,
                    relative,
                    regression: limit.is_some_and(|l| relative > l),
                }
            })
            .collect();
        let entry = pooled
            .entry((key.task.clone(), key.method.clone()))
            .or_default();
        entry.0 += 1;
        for (p, (br, cr)) in common.iter().zip(b.iter().zip(&c)) {
            let e = entry.1.entry((*p).clone()).or_default();
            e.0.push(br.accuracy);
            e.1.push(cr.accuracy);
        }
        out.points.push(PointComparison {
            key: key.clone(),
            accuracy,
            budgets,
        });
    }
    let only_cand = cand_rows
        .keys()
        .filter(|id| !base_rows.contains_key(*id))
        .count();
    if only_base + only_cand > 0 {
        out.notes.push(format!(
            "{only_base} configuration(s) only in the baseline and {only_cand} only in the candidate are not compared"
        ));
    }
    for ((task, method), (configurations, problems)) in pooled {
        let b: Vec<f64> = problems
            .values()
            .map(|(b, _)| mean(b).unwrap_or(0.0))
            .collect();
        let c: Vec<f64> = problems
            .values()
            .map(|(_, c)| mean(c).unwrap_or(0.0))
            .collect();
        out.methods.push(MethodComparison {
            task,
            method,
            configurations,
            accuracy: change(&b, &c, tol.accuracy, boot),
        });
    }
    let compared: BTreeSet<&String> = out
        .points
        .iter()
        .filter_map(|p| baseline.trials.get(&p.key.id()))
        .flatten()
        .collect();
    for (id, (trial, hash, correct)) in &baseline.samples {
        let Some((_, h, c)) = candidate.samples.get(id) else {
            continue;
        };
        if !compared.contains(trial) {
            continue;
        }
        let r = &mut out.replay;
        if h != hash {
            r.different_tokens += 1;
            continue;
        }
        r.identical += 1;
        match (correct, c) {
            (true, false) => r.lost += 1,
            (false, true) => r.gained += 1,
            _ => {}
        }
    }
    let r = &mut out.replay;
    r.regression =
        r.lost > r.gained && (r.lost - r.gained) as f64 > tol.accuracy * r.identical as f64;
    if out.points.is_empty() && incomparable.is_empty() {
        incomparable
            .push("no configuration in common (different models, tasks, methods or grids)".into());
    }
    if !incomparable.is_empty() {
        out.verdict = RegressionVerdict::Incomparable;
        out.reasons = incomparable;
        return out;
    }
    if out.replay.regression {
        let r = &out.replay;
        out.reasons.push(format!(
            "{} of {} sample(s) with identical generated tokens lost their correct verdict ({} gained one): grading or answer extraction changed",
            r.lost, r.identical, r.gained
        ));
    }
    for m in out.methods.iter().filter(|m| m.accuracy.regression) {
        out.reasons.push(format!(
            "`{}` {}: accuracy {:+.1} points over {} configuration(s), CI entirely below −{:.1}",
            m.task,
            m.method,
            100.0 * m.accuracy.delta,
            m.configurations,
            100.0 * tol.accuracy
        ));
    }
    for p in &out.points {
        let what = format!("`{}` {} {}", p.key.task, p.key.method, p.key.label());
        if p.accuracy.regression {
            out.reasons.push(format!(
                "{what}: accuracy {:+.1} points, CI entirely below −{:.1}",
                100.0 * p.accuracy.delta,
                100.0 * tol.accuracy
            ));
        }
        for b in p.budgets.iter().filter(|b| b.regression) {
            out.reasons.push(format!(
                "{what}: {} grew {:+.1}%",
                b.budget.slug(),
                100.0 * b.relative
            ));
        }
    }
    if !out.reasons.is_empty() {
        out.verdict = RegressionVerdict::Regression;
    }
    out
}

fn join(s: &BTreeSet<String>) -> String {
    s.iter().cloned().collect::<Vec<_>>().join(", ")
}
