//! A plotters coordinate over `[lo, hi]` (already in axis space: `log10(x)`
//! for a log axis) whose grid lines are exactly the ticks we chose, not
//! plotters' own. (plotters' `WithKeyPoints` over `f64` cannot take a label
//! formatter in 0.3.7, hence this small type.)

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};

/// A linear coordinate with fixed major (labelled) and minor ticks.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct TickedAxis {
    pub lo: f64,
    pub hi: f64,
    pub major: Vec<f64>,
    pub minor: Vec<f64>,
}

impl Ranged for TickedAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let span = self.hi - self.lo;
        if span <= 0.0 {
            return (limit.0 + limit.1) / 2;
        }
        let t = (v - self.lo) / span;
        (f64::from(limit.0) + t * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.minor.clone()
        } else {
            self.major.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_linearly_onto_pixels_both_ways() {
        let a = TickedAxis {
            lo: 3.0,
            hi: 6.0,
            major: vec![3.0, 4.0, 5.0, 6.0],
            minor: vec![],
        };
        assert_eq!(a.map(&3.0, (100, 400)), 100);
        assert_eq!(a.map(&4.5, (100, 400)), 250);
        assert_eq!(a.map(&6.0, (100, 400)), 400);
        // y axes run bottom-up
        assert_eq!(a.map(&4.0, (400, 100)), 300);
    }
}
