//! Hyper-scaling gains with bootstrap CIs over problems.
//!
//! The point estimate is [`mean_gain`] of the method's frontier curve over
//! the dense one ([`frontier_curve`]), both built from the configurations' means over the task's
//! common problems. The CI resamples **problems** with replacement (seeded
//! ChaCha8, as [`bootstrap_ci`](super::bootstrap_ci)): one draw of problem
//! indices is shared by every configuration of the task, so the comparison
//! stays paired; each configuration's mean accuracy *and* mean budget are
//! recomputed on the draw, both frontiers are rebuilt, and the gain is
//! recomputed. The CI is the percentile interval of the draws where the
//! gain is defined (the frontiers overlap); it is `None` when fewer than
//! half of the draws define it or when the task has fewer than two problems.

use std::collections::{BTreeMap, BTreeSet};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::estimators::{BootstrapConfig, quantile};
use super::frontier::{FrontierGain, frontier_curve, mean_gain};
use super::summary::{BudgetAxis, PointKey, ProblemRow};

/// One task's configurations with their per-problem values, restricted to
/// the problems every configuration has.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskMatrix {
    pub task: String,
    /// The common problems, sorted.
    pub problems: Vec<String>,
    /// Problems some configuration lacks (left out of gains).
    pub dropped: Vec<String>,
    /// Per configuration: its rows aligned with `problems`.
    pub points: Vec<(PointKey, Vec<ProblemRow>)>,
}

impl TaskMatrix {
    /// One matrix per task, tasks sorted, configurations in input order.
    pub fn from_rows(rows: &[ProblemRow]) -> Vec<TaskMatrix> {
        /// Per configuration (input order): problem id → its row.
        type Columns<'a> = Vec<(PointKey, BTreeMap<&'a str, &'a ProblemRow>)>;
        let mut tasks: BTreeMap<&str, Columns<'_>> = BTreeMap::new();
        for r in rows {
            let points = tasks.entry(&r.key.task).or_default();
            match points.iter_mut().find(|(k, _)| *k == r.key) {
                Some((_, m)) => {
                    m.insert(&r.problem_id, r);
                }
                None => points.push((r.key.clone(), BTreeMap::from([(r.problem_id.as_str(), r)]))),
            }
        }
        tasks
            .into_iter()
            .map(|(task, points)| {
                let all: BTreeSet<&str> =
                    points.iter().flat_map(|(_, m)| m.keys().copied()).collect();
                let (common, dropped): (Vec<&str>, Vec<&str>) = all
                    .into_iter()
                    .partition(|p| points.iter().all(|(_, m)| m.contains_key(p)));
                TaskMatrix {
                    task: task.to_string(),
                    problems: common.iter().map(|p| p.to_string()).collect(),
                    dropped: dropped.iter().map(|p| p.to_string()).collect(),
                    points: points
                        .into_iter()
                        .map(|(k, m)| (k, common.iter().map(|p| m[p].clone()).collect()))
                        .collect(),
                }
            })
            .collect()
    }
}

/// Which configurations of a task form the method's frontier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    pub method: String,
    /// `None`: all of the method's CRs; `Some(cr)`: that CR only.
    pub cr: Option<f64>,
}

impl Selection {
    fn contains(&self, k: &PointKey) -> bool {
        k.method == self.method && self.cr.is_none_or(|cr| k.cr_target == Some(cr))
    }
}

/// A gain with its CI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GainEstimate {
    pub task: String,
    pub selection: Selection,
    pub budget: BudgetAxis,
    /// The point estimate and its budget range.
    pub gain: FrontierGain,
    /// Percentile bootstrap CI over problems.
    pub ci: Option<(f64, f64)>,
    pub problems: usize,
    /// Draws in which the frontiers overlapped.
    pub defined_draws: usize,
    pub bootstrap: BootstrapConfig,
}

/// The gain of `selection`'s frontier over the task's dense frontier on
/// `budget`; `None` without dense or selected configurations, or without
/// overlap.
pub fn gain_estimate(
    m: &TaskMatrix,
    selection: &Selection,
    budget: BudgetAxis,
    bootstrap: &BootstrapConfig,
) -> Option<GainEstimate> {
    let chosen: Vec<&Vec<ProblemRow>> = m
        .points
        .iter()
        .filter(|(k, _)| selection.contains(k) && !k.is_dense())
        .map(|(_, v)| v)
        .collect();
    let dense: Vec<&Vec<ProblemRow>> = m
        .points
        .iter()
        .filter(|(k, _)| k.is_dense())
        .map(|(_, v)| v)
        .collect();
    let n = m.problems.len();
    if chosen.is_empty() || dense.is_empty() || n == 0 {
        return None;
    }
    let weights = vec![1.0; n];
    let gain = gain_with(&chosen, &dense, budget, &weights)?;
    let mut draws = Vec::new();
    if n >= 2 && bootstrap.resamples > 0 {
        let mut rng = ChaCha8Rng::seed_from_u64(bootstrap.seed);
        for _ in 0..bootstrap.resamples {
            let mut w = vec![0.0; n];
            for _ in 0..n {
                w[rng.random_range(0..n)] += 1.0;
            }
            if let Some(g) = gain_with(&chosen, &dense, budget, &w) {
                draws.push(g.gain);
            }
        }
    }
    draws.sort_by(f64::total_cmp);
    let alpha = (1.0 - bootstrap.level) / 2.0;
    let ci = (!draws.is_empty() && 2 * draws.len() >= bootstrap.resamples)
        .then(|| (quantile(&draws, alpha), quantile(&draws, 1.0 - alpha)));
    Some(GainEstimate {
        task: m.task.clone(),
        selection: selection.clone(),
        budget,
        gain,
        ci,
        problems: n,
        defined_draws: draws.len(),
        bootstrap: *bootstrap,
    })
}

/// The gain with problems weighted by `w` (a bootstrap draw's counts).
fn gain_with(
    chosen: &[&Vec<ProblemRow>],
    dense: &[&Vec<ProblemRow>],
    budget: BudgetAxis,
    w: &[f64],
) -> Option<FrontierGain> {
    let total: f64 = w.iter().sum();
    let point = |rows: &Vec<ProblemRow>| {
        let b: f64 = rows
            .iter()
            .zip(w)
            .map(|(r, w)| w * budget.of_problem(r))
            .sum();
        let a: f64 = rows.iter().zip(w).map(|(r, w)| w * r.accuracy).sum();
        (b / total, a / total)
    };
    let frontier = |set: &[&Vec<ProblemRow>]| {
        let pts: Vec<(f64, f64)> = set.iter().map(|r| point(r)).collect();
        frontier_curve(&pts)
    };
    mean_gain(&frontier(chosen), &frontier(dense))
}
