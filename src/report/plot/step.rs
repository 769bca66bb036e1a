//! The frontier drawn as a post-step line.
//!
//! A Pareto frontier vertex `(b, a)` says "accuracy `a` is achievable with a
//! budget of at most `b`", so between two vertices the achievable accuracy
//! stays at the left one's level until the next budget is reached: the line
//! goes horizontally first, then vertically.

/// The polyline of a post-step frontier through `frontier`'s vertices.
///
/// Vertices are sorted by budget (ties keep their order); between
/// consecutive vertices `(x0, y0)` and `(x1, y1)` the path visits
/// `(x1, y0)`. Repeated consecutive points are dropped. An empty frontier
/// gives an empty path, a single vertex a one-point path.
///
/// The construction is monotone-invariant in x, so it can be computed in
/// data space and then mapped to a log axis.
pub fn step_path(frontier: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut vertices = frontier.to_vec();
    vertices.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut path: Vec<(f64, f64)> = Vec::with_capacity(2 * vertices.len());
    let mut push = |p: (f64, f64)| {
        if path.last() != Some(&p) {
            path.push(p);
        }
    };
    let mut prev: Option<(f64, f64)> = None;
    for v in vertices {
        if let Some((_, y0)) = prev {
            push((v.0, y0));
        }
        push(v);
        prev = Some(v);
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_go_horizontal_then_vertical() {
        let f = [(1e3, 0.2), (1e4, 0.35), (1e5, 0.5)];
        assert_eq!(
            step_path(&f),
            vec![(1e3, 0.2), (1e4, 0.2), (1e4, 0.35), (1e5, 0.35), (1e5, 0.5)]
        );
    }

    #[test]
    fn unsorted_input_is_sorted_by_budget() {
        let f = [(1e5, 0.5), (1e3, 0.2), (1e4, 0.35)];
        assert_eq!(
            step_path(&f),
            step_path(&[(1e3, 0.2), (1e4, 0.35), (1e5, 0.5)])
        );
    }

    #[test]
    fn every_segment_is_axis_parallel_and_budget_never_decreases() {
        let f = [
            (3.0, 0.1),
            (7.0, 0.4),
            (7.0, 0.45),
            (20.0, 0.45),
            (50.0, 0.9),
        ];
        let p = step_path(&f);
        for w in p.windows(2) {
            let ((x0, y0), (x1, y1)) = (w[0], w[1]);
            assert!(x0 == x1 || y0 == y1, "diagonal segment {w:?}");
            assert!(x1 >= x0);
            assert_ne!(w[0], w[1], "repeated point");
        }
        // every vertex is on the path
        for v in f {
            assert!(p.contains(&v), "{v:?} missing");
        }
        // a same-budget tie turns into a pure vertical step
        assert_eq!(
            p,
            vec![
                (3.0, 0.1),
                (7.0, 0.1),
                (7.0, 0.4),
                (7.0, 0.45),
                (20.0, 0.45),
                (50.0, 0.45),
                (50.0, 0.9)
            ]
        );
    }

    #[test]
    fn degenerate_frontiers() {
        assert!(step_path(&[]).is_empty());
        assert_eq!(step_path(&[(2.0, 0.3)]), vec![(2.0, 0.3)]);
    }
}
