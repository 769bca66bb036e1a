//! Axis ranges, tick positions and tick labels, as pure functions.
//!
//! The log10 axis is drawn in log space (`log10(x)` is the coordinate), so
//! the tick *values* here are in data space and the renderer takes their
//! logs. Labels are short SI numbers (`1k`, `20k`, `1M`) so that budgets
//! over several decades stay readable.

use super::chart::Scale;

/// Tick values on an axis: labelled major ticks (with grid lines) and
/// unlabelled minor ticks (with faint grid lines), both ascending and inside
/// the axis range.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticks {
    pub major: Vec<f64>,
    pub minor: Vec<f64>,
}

/// The most labelled ticks an axis gets before decades are thinned.
const MAX_MAJOR: usize = 8;

/// Relative slack when deciding whether a tick lies inside `[lo, hi]`.
const EPS: f64 = 1e-9;

/// Pads the data extent `[lo, hi]` of the x axis so markers are not drawn on
/// the frame. Log10: 6% of the span in decades on each side (at least 0.15
/// decade; ±0.5 decade when all x are equal). Linear: 5% of the span (±10%
/// of `|lo|`, or ±1, when all x are equal).
///
/// Requires `lo <= hi`, and `lo > 0` for [`Scale::Log10`].
pub fn padded_range(lo: f64, hi: f64, scale: Scale) -> (f64, f64) {
    match scale {
        Scale::Log10 => {
            let (l0, l1) = (lo.log10(), hi.log10());
            let span = l1 - l0;
            let pad = if span <= 0.0 {
                0.5
            } else {
                (0.06 * span).max(0.15)
            };
            (10f64.powf(l0 - pad), 10f64.powf(l1 + pad))
        }
        Scale::Linear => {
            let span = hi - lo;
            let pad = if span <= 0.0 {
                if lo == 0.0 { 1.0 } else { 0.1 * lo.abs() }
            } else {
                0.05 * span
            };
            (lo - pad, hi + pad)
        }
    }
}

/// Ticks for a log10 axis over `[lo, hi]` (`0 < lo < hi`).
///
/// - Spanning two or more decades: majors at powers of ten (every k-th
///   decade when more than 8 fit), minors at 2..9 × each decade (or at the
///   skipped decades when thinned).
/// - Narrower: majors at 1, 2, 5 × 10^k, minors at the other integers × 10^k;
///   if fewer than two of those fit, every integer × 10^k is a major; if
///   still fewer than two, linear ticks.
pub fn log_ticks(lo: f64, hi: f64) -> Ticks {
    let inside = |v: f64| v >= lo * (1.0 - EPS) && v <= hi * (1.0 + EPS);
    let d0 = lo.log10().floor() as i32;
    let d1 = hi.log10().ceil() as i32;
    let decades: Vec<f64> = (d0..=d1).map(pow10).filter(|&v| inside(v)).collect();
    let multiples = |set: &[u32]| -> Vec<f64> {
        (d0..=d1)
            .flat_map(|d| set.iter().map(move |&m| f64::from(m) * pow10(d)))
            .filter(|&v| inside(v))
            .collect()
    };
    if decades.len() >= 2 {
        let step = decades.len().div_ceil(MAX_MAJOR);
        if step == 1 {
            return Ticks {
                major: decades,
                minor: multiples(&[2, 3, 4, 5, 6, 7, 8, 9]),
            };
        }
        let (major, minor) = decades
            .iter()
            .enumerate()
            .partition::<Vec<_>, _>(|(i, _)| i % step == 0);
        return Ticks {
            major: major.into_iter().map(|(_, &v)| v).collect(),
            minor: minor.into_iter().map(|(_, &v)| v).collect(),
        };
    }
    let major = multiples(&[1, 2, 5]);
    if major.len() >= 2 {
        return Ticks {
            major,
            minor: multiples(&[3, 4, 6, 7, 8, 9]),
        };
    }
    let major = multiples(&[1, 2, 3, 4, 5, 6, 7, 8, 9]);
    if major.len() >= 2 {
        return Ticks {
            major,
            minor: Vec::new(),
        };
    }
    Ticks {
        major: linear_ticks(lo, hi, 5),
        minor: Vec::new(),
    }
}

/// About `target` evenly spaced "nice" ticks (step 1, 2, 2.5 or 5 × 10^k)
/// inside `[lo, hi]` (`lo < hi`), ascending. Values are rounded to the step
/// so `0.1 + 0.2` prints as `0.3`.
pub fn linear_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    let span = hi - lo;
    if !span.is_finite() || span <= 0.0 {
        return vec![lo];
    }
    let step = nice_step(span / target.max(1) as f64);
    let first = (lo / step - EPS).ceil() as i64;
    let last = (hi / step + EPS).floor() as i64;
    (first..=last)
        .map(|i| round_to(i as f64 * step, step))
        .collect()
}

/// The y axis range: `given` (or `(0, 1)`), widened to include every value
/// in `ys` so no point is hidden.
pub fn y_range(given: Option<(f64, f64)>, ys: impl IntoIterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = given.unwrap_or((0.0, 1.0));
    for y in ys {
        lo = lo.min(y);
        hi = hi.max(y);
    }
    (lo, hi)
}

/// A short label for a budget tick: SI suffixes from a thousand up
/// (`1k`, `2.5k`, `10M`, `1G`), plain decimals from 0.001 to 1000
/// (`0.05`, `250`), scientific below (`1e-4`).
pub fn format_tick(v: f64) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    if v < 0.0 {
        return format!("-{}", format_tick(-v));
    }
    const SI: [(f64, &str); 4] = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")];
    for (scale, suffix) in SI {
        if v >= scale * (1.0 - EPS) {
            return format!("{}{suffix}", trim_decimals(v / scale, 2));
        }
    }
    if v >= 1e-3 * (1.0 - EPS) {
        return trim_decimals(v, 3);
    }
    let exp = (v.log10() + 1e-9).floor() as i32;
    let mant = v / pow10(exp);
    if (mant - 1.0).abs() < 1e-6 {
        format!("1e{exp}")
    } else {
        format!("{}e{exp}", trim_decimals(mant, 2))
    }
}

/// A y tick label with just enough decimals to tell ticks `step` apart.
pub fn format_with_step(v: f64, step: f64) -> String {
    let decimals = if step > 0.0 && step < 1.0 {
        // 0.1 -> 1, 0.05 -> 2, 0.25 -> 2
        let mut d = 0usize;
        while d < 6 && ((step * pow10(d as i32)).round() - step * pow10(d as i32)).abs() > 1e-6 {
            d += 1;
        }
        d
    } else {
        0
    };
    let s = format!("{v:.decimals$}");
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
        s[1..].to_string()
    } else {
        s
    }
}

/// The step between consecutive linear ticks (0 when fewer than two).
pub fn tick_step(ticks: &[f64]) -> f64 {
    match ticks {
        [a, b, ..] => b - a,
        _ => 0.0,
    }
}

fn nice_step(raw: f64) -> f64 {
    let mag = pow10(raw.log10().floor() as i32);
    let frac = raw / mag;
    let nice = if frac <= 1.0 {
        1.0
    } else if frac <= 2.0 {
        2.0
    } else if frac <= 2.5 {
        2.5
    } else if frac <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn round_to(v: f64, step: f64) -> f64 {
    // one decimal more than the step needs; dividing by an exact power of
    // ten gives the double nearest the decimal (0.6, not 0.6000000000000001)
    let decimals = (-step.log10()).ceil().max(0.0) as i32 + 1;
    let scale = pow10(decimals);
    (v * scale).round() / scale
}

fn trim_decimals(v: f64, max_decimals: usize) -> String {
    let s = format!("{v:.max_decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn pow10(e: i32) -> f64 {
    10f64.powi(e)
}

/// Which scale-space coordinate a data value maps to (`log10` or identity).
pub fn to_axis(v: f64, scale: Scale) -> f64 {
    match scale {
        Scale::Linear => v,
        Scale::Log10 => v.log10(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ticks_over_three_decades_are_the_powers_of_ten_with_2_to_9_minors() {
        let t = log_ticks(500.0, 2e6);
        assert_eq!(t.major, vec![1e3, 1e4, 1e5, 1e6]);
        // 500 is below 1e3 but a minor tick of the 1e2 decade
        assert!(t.minor.contains(&500.0));
        assert!(t.minor.contains(&2e6));
        assert!(!t.minor.contains(&3e6));
        // 500..900, then 2..9 x 1e3, 1e4, 1e5, then 2e6
        assert_eq!(t.minor.len(), 5 + 8 * 3 + 1);
        let labels: Vec<_> = t.major.iter().map(|&v| format_tick(v)).collect();
        assert_eq!(labels, ["1k", "10k", "100k", "1M"]);
    }

    #[test]
    fn log_ticks_thin_decades_beyond_eight() {
        let t = log_ticks(1.0, 1e12);
        assert_eq!(t.major, vec![1.0, 1e2, 1e4, 1e6, 1e8, 1e10, 1e12]);
        assert_eq!(t.minor, vec![10.0, 1e3, 1e5, 1e7, 1e9, 1e11]);
    }

    #[test]
    fn log_ticks_within_one_decade_use_1_2_5() {
        let t = log_ticks(1500.0, 9000.0);
        assert_eq!(t.major, vec![2000.0, 5000.0]);
        assert_eq!(
            t.minor,
            vec![3000.0, 4000.0, 6000.0, 7000.0, 8000.0, 9000.0]
        );
        // only 4000 is an integer multiple inside: linear fallback
        let t = log_ticks(3100.0, 4900.0);
        assert_eq!(t.major, vec![3500.0, 4000.0, 4500.0]);
    }

    #[test]
    fn log_ticks_narrow_range_falls_back_to_linear() {
        let t = log_ticks(4100.0, 4900.0);
        assert_eq!(t.major, vec![4200.0, 4400.0, 4600.0, 4800.0]);
    }

    #[test]
    fn linear_ticks_are_nice_and_inside() {
        assert_eq!(
            linear_ticks(0.0, 1.0, 5),
            vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
        );
        assert_eq!(linear_ticks(0.13, 0.61, 5), vec![0.2, 0.3, 0.4, 0.5, 0.6]);
        assert_eq!(linear_ticks(-3.0, 7.0, 4), vec![-2.5, 0.0, 2.5, 5.0]);
        assert_eq!(linear_ticks(2.0, 2.0, 5), vec![2.0]);
    }

    #[test]
    fn tick_labels_are_short() {
        let cases = [
            (1.0, "1"),
            (250.0, "250"),
            (1000.0, "1k"),
            (2500.0, "2.5k"),
            (1e4, "10k"),
            (1e6, "1M"),
            (3e7, "30M"),
            (1e9, "1G"),
            (0.05, "0.05"),
            (0.001, "0.001"),
            (1e-4, "1e-4"),
            (2.5e-5, "2.5e-5"),
            (0.0, "0"),
            (-2000.0, "-2k"),
        ];
        for (v, want) in cases {
            assert_eq!(format_tick(v), want, "{v}");
        }
    }

    #[test]
    fn y_labels_have_the_step_decimals() {
        assert_eq!(format_with_step(0.4, 0.2), "0.4");
        assert_eq!(format_with_step(0.25, 0.05), "0.25");
        assert_eq!(format_with_step(0.5, 0.25), "0.50");
        assert_eq!(format_with_step(3.0, 1.0), "3");
        assert_eq!(format_with_step(-0.0, 0.1), "0.0");
    }

    #[test]
    fn padding_is_symmetric_in_axis_space() {
        let (lo, hi) = padded_range(1e3, 1e6, Scale::Log10);
        assert!((1e3f64.log10() - lo.log10() - 0.18).abs() < 1e-9);
        assert!((hi.log10() - 1e6f64.log10() - 0.18).abs() < 1e-9);
        let (lo, hi) = padded_range(100.0, 100.0, Scale::Log10);
        assert!((lo - 10f64.powf(1.5)).abs() < 1e-9 && (hi - 10f64.powf(2.5)).abs() < 1e-9);
        assert_eq!(padded_range(0.0, 10.0, Scale::Linear), (-0.5, 10.5));
        assert_eq!(padded_range(5.0, 5.0, Scale::Linear), (4.5, 5.5));
        assert_eq!(padded_range(0.0, 0.0, Scale::Linear), (-1.0, 1.0));
    }

    #[test]
    fn y_range_widens_to_the_data_only() {
        assert_eq!(y_range(None, [0.2, 0.7]), (0.0, 1.0));
        assert_eq!(y_range(Some((0.2, 0.6)), [0.3, 0.65]), (0.2, 0.65));
        assert_eq!(y_range(None, [-0.1]), (-0.1, 1.0));
    }
}
