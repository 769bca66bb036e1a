//! From aggregated configurations to what the report shows: frontiers per
//! task × budget × method (and per CR), gains over dense with CIs, and the
//! warnings a reader must see. Pure: plain structs in, plain structs out.

use serde::{Deserialize, Serialize};

use super::estimators::BootstrapConfig;
use super::frontier::pareto_frontier;
use super::gain::{GainEstimate, Selection, TaskMatrix, gain_estimate};
use super::summary::{BudgetAxis, PointSummary, ProblemRow, fmt_num};

/// Fewer problems than this in a task draws a warning.
pub const TINY_TASK_PROBLEMS: u32 = 30;
/// A configuration with more of its samples cut at L than this draws a warning.
pub const TRUNCATION_WARN_RATE: f64 = 0.10;

/// One frontier: indices into [`Analysis::points`], by increasing budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Frontier {
    pub task: String,
    pub budget: BudgetAxis,
    pub method: String,
    /// `None`: over all the method's CRs.
    pub cr: Option<f64>,
    pub points: Vec<usize>,
}

/// Everything the report renders besides the raw tables.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub points: Vec<PointSummary>,
    pub problems: Vec<ProblemRow>,
    pub frontiers: Vec<Frontier>,
    pub gains: Vec<GainEstimate>,
    pub warnings: Vec<String>,
}

impl Analysis {
    /// Tasks in table order.
    pub fn tasks(&self) -> Vec<&str> {
        let mut t: Vec<&str> = self.points.iter().map(|p| p.key.task.as_str()).collect();
        t.dedup();
        t
    }

    /// Methods of a task, dense first, then in table order.
    pub fn methods(&self, task: &str) -> Vec<&str> {
        let mut m: Vec<&str> = Vec::new();
        for p in self.points.iter().filter(|p| p.key.task == task) {
            if !m.contains(&p.key.method.as_str()) {
                m.push(&p.key.method);
            }
        }
        m
    }

    /// The all-CR frontier of a method on a budget.
    pub fn frontier(&self, task: &str, budget: BudgetAxis, method: &str) -> Option<&Frontier> {
        self.frontiers
            .iter()
            .find(|f| f.task == task && f.budget == budget && f.method == method && f.cr.is_none())
    }
}

/// Frontiers, gains (all CRs, and per CR) and warnings. `points` must be in
/// table order (as from the aggregation).
pub fn analyse(
    mut points: Vec<PointSummary>,
    problems: Vec<ProblemRow>,
    bootstrap: &BootstrapConfig,
) -> Analysis {
    points.sort_by_key(|p| p.key.sort_key());
    let matrices = TaskMatrix::from_rows(&problems);
    let mut frontiers = Vec::new();
    let mut gains = Vec::new();
    let mut warnings = Vec::new();
    let tasks: Vec<String> = {
        let mut t: Vec<String> = points.iter().map(|p| p.key.task.clone()).collect();
        t.dedup();
        t
    };
    for task in &tasks {
        let idx: Vec<usize> = (0..points.len())
            .filter(|&i| points[i].key.task == *task)
            .collect();
        let mut selections: Vec<Selection> = Vec::new();
        for &i in &idx {
            let k = &points[i].key;
            for cr in [None, k.cr_target] {
                let s = Selection {
                    method: k.method.clone(),
                    cr,
                };
                if !selections.contains(&s) && (cr.is_none() || k.cr_target.is_some()) {
                    selections.push(s);
                }
            }
        }
        for budget in BudgetAxis::ALL {
            for s in &selections {
                let members: Vec<usize> = idx
                    .iter()
                    .copied()
                    .filter(|&i| {
                        let k = &points[i].key;
                        k.method == s.method && s.cr.is_none_or(|cr| k.cr_target == Some(cr))
                    })
                    .collect();
                let xy: Vec<(f64, f64)> = members
                    .iter()
                    .map(|&i| (budget.of_point(&points[i]), points[i].accuracy))
                    .collect();
                frontiers.push(Frontier {
                    task: task.clone(),
                    budget,
                    method: s.method.clone(),
                    cr: s.cr,
                    points: pareto_frontier(&xy)
                        .into_iter()
                        .map(|j| members[j])
                        .collect(),
                });
            }
        }
        let matrix = matrices.iter().find(|m| m.task == *task);
        let has_dense = idx.iter().any(|&i| points[i].key.is_dense());
        if !has_dense {
            warnings.push(format!(
                "`{task}`: no dense configuration, so no hyper-scaling gains"
            ));
        }
        if let Some(m) = matrix {
            if !m.dropped.is_empty() {
                warnings.push(format!(
                    "`{task}`: {} problem(s) missing from some configuration are left out of the gains: {}",
                    m.dropped.len(),
                    m.dropped.join(", ")
                ));
            }
            for budget in BudgetAxis::ALL {
                for s in selections.iter().filter(|s| {
                    idx.iter()
                        .any(|&i| !points[i].key.is_dense() && points[i].key.method == s.method)
                }) {
                    gains.extend(gain_estimate(m, s, budget, bootstrap));
                }
            }
        }
        let n = idx.iter().map(|&i| points[i].problems).max().unwrap_or(0);
        if n < TINY_TASK_PROBLEMS {
            warnings.push(format!(
                "`{task}`: only {n} problem(s); standard errors and CIs are wide, and differences within them are noise"
            ));
        }
        if task.contains("livecodebench") || task.starts_with("lcb") {
            warnings.push(format!(
                "`{task}`: graded on the public tests of its data file only (the hidden LiveCodeBench tests are not in the derived public-only file); pass rates are optimistic and not comparable with published numbers"
            ));
        }
        let truncated: Vec<String> = idx
            .iter()
            .filter(|&&i| points[i].truncated_rate > TRUNCATION_WARN_RATE)
            .map(|&i| {
                format!(
                    "{} {} ({:.0}%)",
                    points[i].key.method,
                    points[i].key.label(),
                    100.0 * points[i].truncated_rate
                )
            })
            .collect();
        if !truncated.is_empty() {
            warnings.push(format!(
                "`{task}`: generations cut at the token limit L in {} of {} configuration(s): {}; accuracy there measures L as much as the method",
                truncated.len(),
                idx.len(),
                truncated.join(", ")
            ));
        }
        for &i in &idx {
            let p = &points[i];
            if let (Some(t), Some(a)) = (p.key.cr_target, p.cr_achieved)
                && a < 0.8 * t
            {
                warnings.push(format!(
                    "`{task}` {} {}: achieved CR {} is well below the target {} (sequences too short for the budget floor?)",
                    p.key.method,
                    p.key.label(),
                    fmt_num(a),
                    fmt_num(t)
                ));
            }
        }
    }
    Analysis {
        points,
        problems,
        frontiers,
        gains,
        warnings,
    }
}
