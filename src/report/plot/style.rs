//! Colours and marker geometry: the colour-blind-safe palette series are
//! coloured from, and each [`Marker`]'s outline in pixels.

use plotters::style::RGBColor;

use super::chart::Marker;

/// Okabe & Ito's colour-blind-safe palette (2008), reordered so the first
/// colours are the most distinct on white; yellow is left out (too faint on
/// white) and grey added.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(230, 159, 0),   // orange
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(0, 0, 0),       // black
    RGBColor(128, 128, 128), // grey
];

/// The colour of the `i`-th series (cycles after 8).
pub fn series_colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// A marker's outline in pixel offsets from its centre.
#[derive(Debug, Clone, PartialEq)]
pub enum MarkerShape {
    Circle { radius: f64 },
    Polygon(Vec<(f64, f64)>),
}

/// The outline of `marker` drawn with nominal radius `r` (pixels). Shapes
/// are scaled so they look about equally heavy: a square of half-side
/// 0.89 r has the area of the circle.
pub fn marker_shape(marker: Marker, r: f64) -> MarkerShape {
    match marker {
        Marker::Circle => MarkerShape::Circle { radius: r },
        Marker::Square => {
            let s = 0.89 * r;
            MarkerShape::Polygon(vec![(-s, -s), (s, -s), (s, s), (-s, s)])
        }
        Marker::Triangle => {
            // equilateral, pointing up, centroid on the point
            let rad = 1.3 * r;
            MarkerShape::Polygon(regular(3, rad, 0.0))
        }
        Marker::Diamond => {
            let rad = 1.25 * r;
            MarkerShape::Polygon(vec![
                (0.0, -rad),
                (0.8 * rad, 0.0),
                (0.0, rad),
                (-0.8 * rad, 0.0),
            ])
        }
        Marker::Cross => {
            // a filled "x": arms of half-width w reaching out to a
            let (a, w) = (1.1 * r, 0.3 * r);
            let mut pts = Vec::with_capacity(12);
            for q in 0..4 {
                let angle = std::f64::consts::FRAC_PI_4 + q as f64 * std::f64::consts::FRAC_PI_2;
                let (ux, uy) = (angle.cos(), angle.sin());
                let (px, py) = (-uy, ux);
                // along this arm: the corner between arms, then the arm tip
                let inner = w * std::f64::consts::SQRT_2;
                let prev = angle - std::f64::consts::FRAC_PI_4;
                pts.push((inner * prev.cos(), inner * prev.sin()));
                pts.push((a * ux - w * px, a * uy - w * py));
                pts.push((a * ux + w * px, a * uy + w * py));
            }
            MarkerShape::Polygon(pts)
        }
        Marker::Star => {
            let (outer, inner) = (1.4 * r, 0.6 * r);
            let pts = (0..10)
                .map(|k| {
                    let rad = if k % 2 == 0 { outer } else { inner };
                    let angle =
                        -std::f64::consts::FRAC_PI_2 + k as f64 * std::f64::consts::PI / 5.0;
                    (rad * angle.cos(), rad * angle.sin())
                })
                .collect();
            MarkerShape::Polygon(pts)
        }
    }
}

/// `n` vertices on a circle of radius `radius`, the first at the top
/// (`-y`), turned by `turn` radians.
fn regular(n: usize, radius: f64, turn: f64) -> Vec<(f64, f64)> {
    (0..n)
        .map(|k| {
            let angle =
                -std::f64::consts::FRAC_PI_2 + turn + k as f64 * std::f64::consts::TAU / n as f64;
            (radius * angle.cos(), radius * angle.sin())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extent(shape: &MarkerShape) -> f64 {
        match shape {
            MarkerShape::Circle { radius } => *radius,
            MarkerShape::Polygon(p) => p
                .iter()
                .map(|(x, y)| x.abs().max(y.abs()))
                .fold(0.0, f64::max),
        }
    }

    #[test]
    fn every_marker_is_centred_and_about_r_in_size() {
        for m in Marker::ALL {
            let s = marker_shape(m, 10.0);
            let e = extent(&s);
            assert!((8.0..=14.0).contains(&e), "{m:?} extent {e}");
            if let MarkerShape::Polygon(p) = &s {
                let cx = p.iter().map(|q| q.0).sum::<f64>() / p.len() as f64;
                assert!(cx.abs() < 1e-9, "{m:?} not centred in x");
            }
        }
    }

    #[test]
    fn cross_has_twelve_vertices_and_star_ten() {
        let MarkerShape::Polygon(c) = marker_shape(Marker::Cross, 5.0) else {
            panic!("cross is a polygon")
        };
        assert_eq!(c.len(), 12);
        let MarkerShape::Polygon(s) = marker_shape(Marker::Star, 5.0) else {
            panic!("star is a polygon")
        };
        assert_eq!(s.len(), 10);
    }

    #[test]
    fn palette_colours_are_distinct() {
        for i in 0..PALETTE.len() {
            for j in i + 1..PALETTE.len() {
                assert_ne!(series_colour(i), series_colour(j));
            }
        }
        assert_eq!(series_colour(8), series_colour(0));
    }
}
