//! Greedy placement of point labels in pixel space, so labels overlap
//! neither each other nor the markers and lines when there is room.
//!
//! Each label tries candidate boxes around its point, nearest ring first
//! (right, upper right, lower right, above, below, left, …), and takes the
//! first box that is free and inside the plot; when none is free it takes
//! the box with the least overlap. Labels are placed one by one in the order
//! given, each seeing the ones placed before it as obstacles.

/// An axis-aligned box in pixels (`x0 <= x1`, `y0 <= y1`, y grows down).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x0: f64,
    pub y0: f64,
    pub x1: f64,
    pub y1: f64,
}

impl Rect {
    /// The box of half-size `(hw, hh)` around `(cx, cy)`.
    pub fn around(cx: f64, cy: f64, hw: f64, hh: f64) -> Rect {
        Rect {
            x0: cx - hw,
            y0: cy - hh,
            x1: cx + hw,
            y1: cy + hh,
        }
    }

    /// The area shared with `other` (0 when disjoint or only touching).
    pub fn overlap(&self, other: &Rect) -> f64 {
        let w = self.x1.min(other.x1) - self.x0.max(other.x0);
        let h = self.y1.min(other.y1) - self.y0.max(other.y0);
        if w > 0.0 && h > 0.0 { w * h } else { 0.0 }
    }

    /// The area of `self` outside `bounds`.
    pub fn outside(&self, bounds: &Rect) -> f64 {
        self.area() - self.overlap(bounds)
    }

    pub fn area(&self) -> f64 {
        (self.x1 - self.x0).max(0.0) * (self.y1 - self.y0).max(0.0)
    }

    /// The point of `self` nearest to `(x, y)`.
    pub fn nearest(&self, x: f64, y: f64) -> (f64, f64) {
        (x.clamp(self.x0, self.x1), y.clamp(self.y0, self.y1))
    }
}

/// Something a label should stay off, with how much an overlap costs
/// (1 for other labels and markers; lines and error bars cost less).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Obstacle {
    pub rect: Rect,
    pub weight: f64,
}

/// A label to place: the point it belongs to and its text box size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabelRequest {
    /// The point's pixel position.
    pub anchor: (f64, f64),
    /// `(width, height)` of the text in pixels.
    pub size: (f64, f64),
}

/// Where a label went.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    pub rect: Rect,
    /// Whether the label sits beyond the nearest ring of candidates, so a
    /// thin leader line should tie it to its point.
    pub far: bool,
}

/// Places every label (see the module doc). `gap` is the clearance between
/// a point and its nearest candidate boxes (marker radius plus a margin);
/// `bounds` is the plot area. Returns one placement per request, in order.
pub fn place_labels(
    requests: &[LabelRequest],
    obstacles: &[Obstacle],
    bounds: Rect,
    gap: f64,
) -> Vec<Placement> {
    let mut placed: Vec<Rect> = Vec::with_capacity(requests.len());
    let mut out = Vec::with_capacity(requests.len());
    for req in requests {
        let mut best: Option<(f64, Placement)> = None;
        'search: for (ring, candidate) in candidates(req, gap) {
            let cost = cost(&candidate, obstacles, &placed, &bounds);
            let placement = Placement {
                rect: candidate,
                far: ring > 0,
            };
            // prefer near rings: a tiny penalty per ring breaks ties
            let cost = cost + ring as f64 * 1e-3;
            if best.as_ref().is_none_or(|(c, _)| cost < *c) {
                best = Some((cost, placement));
            }
            if cost < 1.0 {
                break 'search;
            }
        }
        // candidates() is never empty
        let (_, placement) = best.unwrap_or((
            0.0,
            Placement {
                rect: Rect::around(req.anchor.0, req.anchor.1, 0.0, 0.0),
                far: false,
            },
        ));
        placed.push(placement.rect);
        out.push(placement);
    }
    out
}

fn cost(candidate: &Rect, obstacles: &[Obstacle], placed: &[Rect], bounds: &Rect) -> f64 {
    let mut c = 10.0 * candidate.outside(bounds);
    for o in obstacles {
        c += o.weight * candidate.overlap(&o.rect);
    }
    for p in placed {
        // a label over a label is the worst outcome short of leaving the plot
        c += 4.0 * candidate.overlap(p);
    }
    c
}

/// Candidate boxes with their ring index: ring 0 hugs the point, rings 1..3
/// step further out. Within a ring: right, upper right, lower right, above,
/// below, left, upper left, lower left.
fn candidates(req: &LabelRequest, gap: f64) -> impl Iterator<Item = (usize, Rect)> + '_ {
    let (ax, ay) = req.anchor;
    let (w, h) = req.size;
    (0..4usize).flat_map(move |ring| {
        let d = gap + ring as f64 * (h + 2.0);
        // (left edge, top edge) of each candidate
        let spots = [
            (ax + d, ay - h / 2.0),
            (ax + d * 0.7, ay - d * 0.7 - h),
            (ax + d * 0.7, ay + d * 0.7),
            (ax - w / 2.0, ay - d - h),
            (ax - w / 2.0, ay + d),
            (ax - d - w, ay - h / 2.0),
            (ax - d * 0.7 - w, ay - d * 0.7 - h),
            (ax - d * 0.7 - w, ay + d * 0.7),
        ];
        spots.into_iter().map(move |(x0, y0)| {
            (
                ring,
                Rect {
                    x0,
                    y0,
                    x1: x0 + w,
                    y1: y0 + h,
                },
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds() -> Rect {
        Rect {
            x0: 0.0,
            y0: 0.0,
            x1: 400.0,
            y1: 300.0,
        }
    }

    #[test]
    fn a_lone_label_goes_right_of_its_point() {
        let r = LabelRequest {
            anchor: (100.0, 100.0),
            size: (40.0, 10.0),
        };
        let p = place_labels(&[r], &[], bounds(), 6.0);
        assert_eq!(
            p[0].rect,
            Rect {
                x0: 106.0,
                y0: 95.0,
                x1: 146.0,
                y1: 105.0
            }
        );
        assert!(!p[0].far);
    }

    #[test]
    fn a_label_at_the_right_edge_flips_inside() {
        let r = LabelRequest {
            anchor: (395.0, 100.0),
            size: (40.0, 10.0),
        };
        let p = place_labels(&[r], &[], bounds(), 6.0);
        assert_eq!(p[0].rect.outside(&bounds()), 0.0);
        assert!(p[0].rect.x1 <= 395.0);
    }

    #[test]
    fn crowded_points_get_disjoint_labels() {
        // ten points on a short diagonal, closer than a label is wide
        let reqs: Vec<_> = (0..10)
            .map(|i| LabelRequest {
                anchor: (150.0 + 8.0 * i as f64, 150.0 - 6.0 * i as f64),
                size: (60.0, 11.0),
            })
            .collect();
        let markers: Vec<_> = reqs
            .iter()
            .map(|r| Obstacle {
                rect: Rect::around(r.anchor.0, r.anchor.1, 5.0, 5.0),
                weight: 1.0,
            })
            .collect();
        let p = place_labels(&reqs, &markers, bounds(), 7.0);
        for (i, a) in p.iter().enumerate() {
            assert_eq!(a.rect.outside(&bounds()), 0.0, "label {i} leaves the plot");
            for m in &markers {
                // under one square pixel: float noise on touching edges
                assert!(a.rect.overlap(&m.rect) < 1.0, "label {i} covers a marker");
            }
            for b in &p[i + 1..] {
                assert!(a.rect.overlap(&b.rect) < 1.0, "labels overlap: {a:?} {b:?}");
            }
        }
    }

    #[test]
    fn rect_overlap_and_outside() {
        let a = Rect::around(0.0, 0.0, 2.0, 1.0);
        let b = Rect::around(1.0, 0.0, 2.0, 1.0);
        assert_eq!(a.overlap(&b), 3.0 * 2.0);
        assert_eq!(a.overlap(&Rect::around(10.0, 0.0, 1.0, 1.0)), 0.0);
        let inner = Rect {
            x0: -1.0,
            y0: -10.0,
            x1: 10.0,
            y1: 10.0,
        };
        assert_eq!(a.outside(&inner), 1.0 * 2.0);
        assert_eq!(a.nearest(5.0, 0.5), (2.0, 0.5));
    }
}
