//! The report's one-screen summary ("headline"): per task, each method's
//! hyper-scaling gain over dense on each headline budget with its CI, the
//! best (method, CR) per budget, and each method's most accurate
//! configuration. Pure: picks values out of an [`Analysis`], computes
//! nothing new, so every number it shows is one of the full tables' numbers.
//!
//! # Contract
//!
//! - Budgets, in column order: [`HEADLINE_BUDGETS`] (KV reads, peak KV
//!   memory in bytes, runtime). Peak entries is left to the full tables: it
//!   orders configurations as peak bytes does within one cache format.
//! - A method's gain on a budget is the gain of its frontier over all its
//!   CRs (`Selection { cr: None }`); `None` when the analysis has none
//!   (no dense configuration, or frontiers that do not overlap).
//! - **Best (method, CR)** on a budget: of every gain of the task on that
//!   budget (all-CR and per-CR selections), the one with the largest point
//!   estimate; ties keep the first in the analysis' order. It is a
//!   maximum of noisy estimates: read it with its CI.
//! - Extra columns: [`Headline::extra_columns`] names them and every
//!   [`MethodRow::extra`] holds one cell per name, in that order. Today the
//!   one extra column is the method's most accurate configuration; a new
//!   per-configuration figure (throughput, batch occupancy) is added in
//!   [`extra_cells`] and [`EXTRA_COLUMNS`], nowhere else.

use serde::{Deserialize, Serialize};

use super::analysis::Analysis;
use super::gain::GainEstimate;
use super::summary::{BudgetAxis, PointSummary};

/// The budgets of the headline, in column order.
pub const HEADLINE_BUDGETS: [BudgetAxis; 3] = [
    BudgetAxis::KvReads,
    BudgetAxis::PeakBytes,
    BudgetAxis::Runtime,
];

/// The extra columns' headers, in order (see [`extra_cells`]).
pub const EXTRA_COLUMNS: [&str; 1] = ["most accurate: maj@W (%)"];

/// The headline of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Headline {
    /// Budgets of the gain columns ([`HEADLINE_BUDGETS`]).
    pub budgets: Vec<BudgetAxis>,
    /// Headers of the extra columns, after the gain columns.
    pub extra_columns: Vec<String>,
    pub tasks: Vec<TaskHeadline>,
}

/// One task's headline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskHeadline {
    pub task: String,
    /// Problems of the task (the largest count over its configurations).
    pub problems: u32,
    /// Dense first, then the methods in table order.
    pub methods: Vec<MethodRow>,
    /// Per budget (aligned with [`Headline::budgets`]): the best (method, CR).
    pub best: Vec<Option<GainEstimate>>,
}

/// One method of a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodRow {
    pub method: String,
    /// Is this the reference (dense)? Its gains are all `None`.
    pub dense: bool,
    /// Per budget (aligned with [`Headline::budgets`]): the all-CR gain.
    pub gains: Vec<Option<GainEstimate>>,
    /// One value per [`Headline::extra_columns`].
    pub extra: Vec<ExtraCell>,
}

/// A value of an extra column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ExtraCell {
    /// A configuration's accuracy (maj@W, a fraction) and its s.e. over
    /// problems, with the configuration's label (`W2-L24-CR4`).
    Accuracy {
        label: String,
        accuracy: f64,
        se: Option<f64>,
    },
    /// Nothing to show.
    Empty,
}

/// The headline of `a`.
pub fn headline(a: &Analysis) -> Headline {
    let tasks = a
        .tasks()
        .into_iter()
        .map(|task| {
            let methods = a
                .methods(task)
                .into_iter()
                .map(|method| {
                    let points: Vec<&PointSummary> = a
                        .points
                        .iter()
                        .filter(|p| p.key.task == task && p.key.method == method)
                        .collect();
                    MethodRow {
                        method: method.to_string(),
                        dense: points.iter().any(|p| p.key.is_dense()),
                        gains: HEADLINE_BUDGETS
                            .iter()
                            .map(|&b| {
                                a.gains
                                    .iter()
                                    .find(|g| {
                                        g.task == task
                                            && g.budget == b
                                            && g.selection.method == method
                                            && g.selection.cr.is_none()
                                    })
                                    .cloned()
                            })
                            .collect(),
                        extra: extra_cells(&points),
                    }
                })
                .collect();
            let best = HEADLINE_BUDGETS
                .iter()
                .map(|&b| {
                    a.gains
                        .iter()
                        .filter(|g| g.task == task && g.budget == b && g.gain.gain.is_finite())
                        .fold(None::<&GainEstimate>, |best, g| match best {
                            Some(x) if x.gain.gain >= g.gain.gain => Some(x),
                            _ => Some(g),
                        })
                        .cloned()
                })
                .collect();
            TaskHeadline {
                task: task.to_string(),
                problems: a
                    .points
                    .iter()
                    .filter(|p| p.key.task == task)
                    .map(|p| p.problems)
                    .max()
                    .unwrap_or(0),
                methods,
                best,
            }
        })
        .collect();
    Headline {
        budgets: HEADLINE_BUDGETS.to_vec(),
        extra_columns: EXTRA_COLUMNS.iter().map(|s| s.to_string()).collect(),
        tasks,
    }
}

/// The extra cells of one method (its configurations, table order), one
/// per [`EXTRA_COLUMNS`] entry. Add a per-configuration figure here.
fn extra_cells(points: &[&PointSummary]) -> Vec<ExtraCell> {
    // Most accurate; ties: the smaller KV reads, then table order.
    let best =
        points
            .iter()
            .filter(|p| p.accuracy.is_finite())
            .fold(None::<&PointSummary>, |best, p| match best {
                Some(x)
                    if x.accuracy > p.accuracy
                        || (x.accuracy == p.accuracy && x.kv_reads <= p.kv_reads) =>
                {
                    Some(x)
                }
                _ => Some(p),
            });
    vec![best.map_or(ExtraCell::Empty, |p| ExtraCell::Accuracy {
        label: p.key.label(),
        accuracy: p.accuracy,
        se: p.accuracy_se,
    })]
}
