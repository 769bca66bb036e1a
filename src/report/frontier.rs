//! Pareto frontiers of accuracy against a budget, and the hyper-scaling gain
//! of one frontier over another (pure functions on `(budget, accuracy)`
//! pairs; no dataframes).
//!
//! # Definitions
//!
//! - A configuration (method, CR, W, L) is an **operating point**
//!   `(b, a)`: its mean budget per problem `b` (KV reads, peak KV memory or
//!   runtime; see [`super::BudgetAxis`]) and its mean accuracy `a`.
//! - Point `p` **dominates** `q` when `b_p ≤ b_q` and `a_p ≥ a_q` with at
//!   least one inequality strict. The **Pareto frontier** of a set of points
//!   is the set of points that nothing dominates, sorted by budget; along it
//!   both budget and accuracy strictly increase. Exact duplicates keep one
//!   copy. Points with a non-finite or non-positive budget (no log position)
//!   or a non-finite accuracy are left out.
//! - The frontier is *drawn* as a step line: `F(b) = max{a_i : b_i ≤ b}` is
//!   the best accuracy reachable spending at most `b`.
//! - The frontier **curve** is the frontier extended flat from its last
//!   point to the largest budget any of the set's configurations spent (a
//!   method whose accuracy stops rising still covers the budgets it was
//!   measured at: `F(b)` stays at its best accuracy there).
//! - For the **gain** the curve is *interpolated* linearly in
//!   `u = log10(b)` between consecutive frontier points (the issue's "at equal
//!   budget, interpolated on a log-budget axis"), and is undefined outside
//!   `[b_first, b_last]` (no extrapolation).
//! - **Hyper-scaling gain** of frontier `M` over frontier `D` (dense):
//!   `G = 1/(u_hi − u_lo) ∫_{u_lo}^{u_hi} (M(u) − D(u)) du`, the mean
//!   accuracy difference over the overlapping log-budget range
//!   `[u_lo, u_hi] = [max(first budgets), min(largest budgets)]` of the two
//!   curves. The integrand
//!   is piecewise linear between the union of both curves' breakpoints, so
//!   the trapezoid rule over those breakpoints is exact. When the range is a
//!   single point the gain is the difference there; when the frontiers do not
//!   overlap it is undefined (`None`).

use serde::{Deserialize, Serialize};

/// Indices into `points` (`(budget, accuracy)`) of the Pareto frontier,
/// ordered by increasing budget (and so increasing accuracy).
pub fn pareto_frontier(points: &[(f64, f64)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..points.len())
        .filter(|&i| {
            let (b, a) = points[i];
            b.is_finite() && b > 0.0 && a.is_finite()
        })
        .collect();
    // Budget ascending, accuracy descending: the first of equal budgets is
    // the best one, and a stable sort keeps the earliest of exact duplicates.
    order.sort_by(|&i, &j| {
        points[i]
            .0
            .total_cmp(&points[j].0)
            .then(points[j].1.total_cmp(&points[i].1))
    });
    let mut best = f64::NEG_INFINITY;
    let mut out = Vec::new();
    for i in order {
        if points[i].1 > best {
            best = points[i].1;
            out.push(i);
        }
    }
    out
}

/// The frontier's points themselves, ordered by budget.
pub fn frontier_points(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    pareto_frontier(points)
        .into_iter()
        .map(|i| points[i])
        .collect()
}

/// The frontier curve the gain integrates: the frontier's points, plus
/// `(largest valid budget, last frontier accuracy)` when some configuration
/// spent more than the last frontier point (see the module docs).
pub fn frontier_curve(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut curve = frontier_points(points);
    let max_b = points
        .iter()
        .filter(|(b, a)| b.is_finite() && *b > 0.0 && a.is_finite())
        .map(|&(b, _)| b)
        .fold(f64::NEG_INFINITY, f64::max);
    if let Some(&(last_b, last_a)) = curve.last()
        && max_b > last_b
    {
        curve.push((max_b, last_a));
    }
    curve
}

/// The step value `max{a_i : b_i ≤ b}` of a frontier (as drawn); `None`
/// below the first budget.
pub fn step_at(frontier: &[(f64, f64)], b: f64) -> Option<f64> {
    frontier
        .iter()
        .take_while(|(fb, _)| *fb <= b)
        .map(|&(_, a)| a)
        .last()
}

/// A frontier (budgets strictly increasing) interpolated linearly in
/// `log10(budget)` at `b`; `None` outside `[first, last]` budget.
pub fn interpolate_log(frontier: &[(f64, f64)], b: f64) -> Option<f64> {
    let (first, last) = (frontier.first()?, frontier.last()?);
    if !(b >= first.0 && b <= last.0) {
        return None;
    }
    let u = b.log10();
    for w in frontier.windows(2) {
        let ((b0, a0), (b1, a1)) = (w[0], w[1]);
        if b <= b1 {
            let (u0, u1) = (b0.log10(), b1.log10());
            if u1 == u0 {
                return Some(a1);
            }
            return Some(a0 + (a1 - a0) * (u - u0) / (u1 - u0));
        }
    }
    Some(first.1) // a one-point frontier at exactly b
}

/// The gain of one frontier over another and the budget range it averages.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FrontierGain {
    /// Mean accuracy difference (method − reference) over the range.
    pub gain: f64,
    /// The overlapping budget range `[lo, hi]` (budget units, not logs).
    pub lo: f64,
    pub hi: f64,
}

/// The hyper-scaling gain of `method` over `reference` (both frontiers as
/// returned by [`frontier_points`]); see the module docs. `None` when either
/// is empty or their budget ranges do not overlap.
pub fn mean_gain(method: &[(f64, f64)], reference: &[(f64, f64)]) -> Option<FrontierGain> {
    let lo = method.first()?.0.max(reference.first()?.0);
    let hi = method.last()?.0.min(reference.last()?.0);
    if lo > hi {
        return None;
    }
    let diff = |b: f64| Some(interpolate_log(method, b)? - interpolate_log(reference, b)?);
    if lo == hi {
        return Some(FrontierGain {
            gain: diff(lo)?,
            lo,
            hi,
        });
    }
    let mut cuts: Vec<f64> = method
        .iter()
        .chain(reference)
        .map(|&(b, _)| b)
        .filter(|&b| b > lo && b < hi)
        .chain([lo, hi])
        .collect();
    cuts.sort_by(f64::total_cmp);
    cuts.dedup();
    let mut area = 0.0;
    for w in cuts.windows(2) {
        let (u0, u1) = (w[0].log10(), w[1].log10());
        area += (u1 - u0) * (diff(w[0])? + diff(w[1])?) / 2.0;
    }
    Some(FrontierGain {
        gain: area / (hi.log10() - lo.log10()),
        lo,
        hi,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontier_drops_dominated_and_unplottable_points() {
        let pts = [
            (10.0, 0.5),
            (5.0, 0.2),
            (20.0, 0.4), // dominated by (10, 0.5)
            (10.0, 0.3), // same budget, worse
            (40.0, 0.9),
            (0.0, 1.0), // no log position
            (f64::NAN, 1.0),
            (40.0, 0.9), // duplicate
        ];
        assert_eq!(pareto_frontier(&pts), vec![1, 0, 4]);
        let f = frontier_points(&pts);
        assert_eq!(step_at(&f, 4.0), None);
        assert_eq!(step_at(&f, 30.0), Some(0.5));
    }

    #[test]
    fn the_curve_extends_flat_to_the_largest_budget() {
        // Accuracy never rises: the frontier is the cheapest point, the
        // curve covers up to 40.
        let pts = [(10.0, 0.0), (40.0, 0.0), (20.0, 0.0)];
        assert_eq!(frontier_curve(&pts), vec![(10.0, 0.0), (40.0, 0.0)]);
        let rising = [(10.0, 0.1), (40.0, 0.5)];
        assert_eq!(frontier_curve(&rising), rising.to_vec());
    }

    #[test]
    fn log_interpolation_is_linear_in_decades() {
        let f = [(10.0, 0.0), (1000.0, 1.0)];
        // 100 is half-way between 10 and 1000 in log10.
        assert!((interpolate_log(&f, 100.0).unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(interpolate_log(&f, 9.0), None);
        assert_eq!(interpolate_log(&[(5.0, 0.3)], 5.0), Some(0.3));
    }

    #[test]
    fn gain_golden_by_hand() {
        // u = log10 b. Dense: u=2 → .2, 3 → .4, 4 → .5.
        // Method: u=1 → .1, 2 → .3, 4 → .7 (so .5 at u=3).
        // Overlap [2, 4]; differences .1 (u=2), .1 (u=3), .2 (u=4);
        // trapezoids (.1+.1)/2 + (.1+.2)/2 = .25 over 2 decades = .125.
        let dense = [(100.0, 0.2), (1000.0, 0.4), (10000.0, 0.5)];
        let method = [(10.0, 0.1), (100.0, 0.3), (10000.0, 0.7)];
        let g = mean_gain(&method, &dense).unwrap();
        assert!((g.gain - 0.125).abs() < 1e-12, "{g:?}");
        assert_eq!((g.lo, g.hi), (100.0, 10000.0));
        // Antisymmetric.
        assert!((mean_gain(&dense, &method).unwrap().gain + 0.125).abs() < 1e-12);
        // Disjoint ranges have no gain; touching ranges compare one point.
        assert_eq!(mean_gain(&[(1.0, 0.5)], &[(2.0, 0.5)]), None);
        let touch = mean_gain(&[(1.0, 0.1), (2.0, 0.6)], &[(2.0, 0.5), (3.0, 0.9)]).unwrap();
        assert!((touch.gain - 0.1).abs() < 1e-12);
    }
}
