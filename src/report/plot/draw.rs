//! Draws one [`Chart`] into a drawing area: title, axes with grid, frontier
//! step lines, error bars, markers and placed point labels. Backend-agnostic
//! (PNG and SVG share it); the legend panel is [`super::legend`].
//!
//! Everything but the mesh is drawn on the image's root area in absolute
//! pixels, mapped through the chart's coordinates, so labels can be placed
//! by measuring real text boxes.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axis::TickedAxis;
use super::chart::{Chart, Scale};
use super::font::FAMILY;
use super::labels::{LabelRequest, Obstacle, Rect, place_labels};
use super::step::step_path;
use super::style::{MarkerShape, marker_shape};
use super::ticks::{
    format_tick, format_with_step, linear_ticks, log_ticks, padded_range, tick_step, to_axis,
    y_range,
};

/// A drawing result for backend `DB`.
pub(super) type DrawResult<T, DB> =
    Result<T, DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Pixel sizes of a figure's parts, already multiplied by the render scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Sizes {
    pub title: f64,
    pub axis_label: f64,
    pub tick: f64,
    pub point_label: f64,
    pub legend: f64,
    pub marker_r: f64,
    pub line_w: f64,
    /// One "unit" of spacing (margins, paddings).
    pub pad: f64,
}

impl Sizes {
    /// A stand-alone ~1000×700 figure, times `scale`.
    pub fn single(scale: f64) -> Sizes {
        Sizes {
            title: 22.0,
            axis_label: 17.0,
            tick: 15.0,
            point_label: 11.5,
            legend: 15.0,
            marker_r: 5.5,
            line_w: 2.0,
            pad: 8.0,
        }
        .times(scale)
    }

    /// One cell of a grid, times `scale`.
    pub fn cell(scale: f64) -> Sizes {
        Sizes {
            title: 17.0,
            axis_label: 14.0,
            tick: 12.5,
            point_label: 10.0,
            legend: 14.0,
            marker_r: 4.5,
            line_w: 1.75,
            pad: 6.0,
        }
        .times(scale)
    }

    fn times(self, s: f64) -> Sizes {
        Sizes {
            title: self.title * s,
            axis_label: self.axis_label * s,
            tick: self.tick * s,
            point_label: self.point_label * s,
            legend: self.legend * s,
            marker_r: self.marker_r * s,
            line_w: self.line_w * s,
            pad: self.pad * s,
        }
    }
}

/// Text colour for titles, axes and labels.
pub(super) const INK: RGBColor = RGBColor(30, 30, 30);

/// Draws `chart` into `area` (a part of `root`); `colours[i]` is series
/// `i`'s colour. Input must already be validated (finite, x > 0 on log).
/// Returns the top of the plotting area in absolute pixels (`None` when
/// there was no data and no axes were drawn).
pub(super) fn draw_chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    area: &DrawingArea<DB, Shift>,
    chart: &Chart,
    colours: &[RGBColor],
    sizes: &Sizes,
) -> DrawResult<Option<f64>, DB> {
    let title_style = TextStyle::from((FAMILY, sizes.title)).color(&INK);
    // titled() puts the text's top at the area's edge: leave room for ascenders
    let area = area
        .margin(sizes.pad * 1.5, 0.0, 0.0, 0.0)
        .titled(&chart.title, title_style)?;
    let xs: Vec<f64> = chart
        .series
        .iter()
        .flat_map(|s| {
            s.points
                .iter()
                .map(|p| p.x)
                .chain(s.frontier.iter().map(|f| f.0))
        })
        .collect();
    if xs.is_empty() {
        let (w, h) = area.dim_in_pixel();
        let style = TextStyle::from((FAMILY, sizes.axis_label))
            .color(&INK)
            .pos(Pos::new(HPos::Center, VPos::Center));
        area.draw_text("no data to plot", &style, (w as i32 / 2, h as i32 / 2))?;
        return Ok(None);
    }
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let scale = chart.x_scale;
    let (x_lo, x_hi) = padded_range(lo, hi, scale);
    let (x_major, x_minor) = match scale {
        Scale::Log10 => {
            let t = log_ticks(x_lo, x_hi);
            (t.major, t.minor)
        }
        Scale::Linear => (linear_ticks(x_lo, x_hi, 6), Vec::new()),
    };
    let ys = chart.series.iter().flat_map(|s| {
        s.points
            .iter()
            .map(|p| p.y)
            .chain(s.frontier.iter().map(|f| f.1))
    });
    let (y_lo, y_hi) = y_range(chart.y_range, ys);
    let (y_lo, y_hi) = if y_hi > y_lo {
        (y_lo, y_hi)
    } else {
        (y_lo - 0.5, y_hi + 0.5)
    };
    let y_ticks = linear_ticks(y_lo, y_hi, 6);
    let y_step = tick_step(&y_ticks);

    let x_coord = TickedAxis {
        lo: to_axis(x_lo, scale),
        hi: to_axis(x_hi, scale),
        major: x_major.iter().map(|&v| to_axis(v, scale)).collect(),
        minor: x_minor.iter().map(|&v| to_axis(v, scale)).collect(),
    };
    let y_coord = TickedAxis {
        lo: y_lo,
        hi: y_hi,
        major: y_ticks.clone(),
        minor: Vec::new(),
    };

    let pad = sizes.pad;
    let mut ctx = ChartBuilder::on(&area)
        .margin_top(pad * 1.5)
        .margin_right(pad * 3.0)
        .margin_left(pad)
        .margin_bottom(pad)
        .x_label_area_size(sizes.tick + sizes.axis_label + pad * 3.5)
        .y_label_area_size(sizes.axis_label + pad * 3.0 + y_tick_width(&y_ticks, y_step, sizes))
        .build_cartesian_2d(x_coord, y_coord)?;

    // label a major tick by the exact value it came from, not 10^log10(v)
    let major_axis: Vec<(f64, f64)> = x_major.iter().map(|&v| (to_axis(v, scale), v)).collect();
    let x_fmt = |a: &f64| {
        major_axis
            .iter()
            .min_by(|p, q| (p.0 - a).abs().total_cmp(&(q.0 - a).abs()))
            .map(|&(_, v)| format_tick(v))
            .unwrap_or_default()
    };
    let y_fmt = |v: &f64| format_with_step(*v, y_step);
    let tick_style = TextStyle::from((FAMILY, sizes.tick)).color(&INK);
    let desc_style = TextStyle::from((FAMILY, sizes.axis_label)).color(&INK);
    ctx.configure_mesh()
        .x_desc(chart.x_label.as_str())
        .y_desc(chart.y_label.as_str())
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style(tick_style)
        .axis_desc_style(desc_style)
        .bold_line_style(RGBColor(215, 215, 215).stroke_width(px(sizes.line_w * 0.5)))
        .light_line_style(RGBColor(238, 238, 238).stroke_width(px(sizes.line_w * 0.5)))
        .axis_style(INK.stroke_width(px(sizes.line_w * 0.6)))
        .set_all_tick_mark_size(px(pad * 0.6) as i32)
        .draw()?;

    let (px_x, px_y) = ctx.plotting_area().get_pixel_range();
    let bounds = Rect {
        x0: f64::from(px_x.start),
        y0: f64::from(px_y.start),
        x1: f64::from(px_x.end),
        y1: f64::from(px_y.end),
    };
    // the frame's top and right sides (the mesh draws left and bottom)
    root.draw(&PathElement::new(
        vec![
            (px_x.start, px_y.start),
            (px_x.end - 1, px_y.start),
            (px_x.end - 1, px_y.end - 1),
        ],
        INK.stroke_width(px(sizes.line_w * 0.6)),
    ))?;

    let to_px = |x: f64, y: f64| -> (f64, f64) {
        let (a, b) = ctx.backend_coord(&(to_axis(x, scale), y));
        (f64::from(a), f64::from(b))
    };
    let mut obstacles: Vec<Obstacle> = Vec::new();

    // frontiers first, under the points
    for (s, colour) in chart.series.iter().zip(colours) {
        let path: Vec<(f64, f64)> = step_path(&s.frontier)
            .into_iter()
            .map(|(x, y)| to_px(x, y))
            .collect();
        for w in path.windows(2) {
            let (a, b) = (w[0], w[1]);
            obstacles.push(Obstacle {
                rect: Rect {
                    x0: a.0.min(b.0) - 1.5,
                    y0: a.1.min(b.1) - 1.5,
                    x1: a.0.max(b.0) + 1.5,
                    y1: a.1.max(b.1) + 1.5,
                },
                weight: 0.5,
            });
        }
        let ipath: Vec<(i32, i32)> = path
            .iter()
            .map(|&(x, y)| (x.round() as i32, y.round() as i32))
            .collect();
        root.draw(&PathElement::new(
            ipath,
            colour.stroke_width(px(sizes.line_w)),
        ))?;
    }

    // error bars, clipped to the y range
    for (s, colour) in chart.series.iter().zip(colours) {
        for p in &s.points {
            let Some(e) = p.y_err.filter(|e| *e > 0.0) else {
                continue;
            };
            let (cx, top) = to_px(p.x, (p.y + e).min(y_hi));
            let (_, bottom) = to_px(p.x, (p.y - e).max(y_lo));
            let cap = sizes.marker_r * 0.8;
            let style = colour.stroke_width(px(sizes.line_w * 0.6));
            let (cx_i, top_i, bot_i) =
                (cx.round() as i32, top.round() as i32, bottom.round() as i32);
            root.draw(&PathElement::new(vec![(cx_i, top_i), (cx_i, bot_i)], style))?;
            for y in [top_i, bot_i] {
                let c = cap.round() as i32;
                root.draw(&PathElement::new(vec![(cx_i - c, y), (cx_i + c, y)], style))?;
            }
            obstacles.push(Obstacle {
                rect: Rect {
                    x0: cx - cap,
                    y0: top,
                    x1: cx + cap,
                    y1: bottom,
                },
                weight: 0.5,
            });
        }
    }

    // markers: points on their frontier solid, dominated points faded
    let mut requests: Vec<(LabelRequest, String, RGBColor)> = Vec::new();
    let label_style = TextStyle::from((FAMILY, sizes.point_label));
    for (s, colour) in chart.series.iter().zip(colours) {
        for p in &s.points {
            let (cx, cy) = to_px(p.x, p.y);
            let on_frontier = s.frontier.is_empty()
                || s.frontier.iter().any(|f| same(f.0, p.x) && same(f.1, p.y));
            draw_marker(
                root,
                p.marker,
                (cx, cy),
                sizes.marker_r,
                *colour,
                on_frontier,
                sizes,
            )?;
            let r = sizes.marker_r * 1.3;
            obstacles.push(Obstacle {
                rect: Rect::around(cx, cy, r, r),
                weight: 1.0,
            });
            if let Some(text) = p.label.as_deref().filter(|t| !t.is_empty()) {
                let (w, h) = root.estimate_text_size(text, &label_style)?;
                requests.push((
                    LabelRequest {
                        anchor: (cx, cy),
                        size: (f64::from(w) + 2.0, f64::from(h) + 2.0),
                    },
                    text.to_string(),
                    *colour,
                ));
            }
        }
    }

    // labels left to right, so neighbours see each other
    requests.sort_by(|a, b| a.0.anchor.0.total_cmp(&b.0.anchor.0));
    let reqs: Vec<LabelRequest> = requests.iter().map(|r| r.0).collect();
    let placements = place_labels(&reqs, &obstacles, bounds, sizes.marker_r * 1.3 + 2.0);
    for ((req, text, colour), place) in requests.iter().zip(&placements) {
        let r = place.rect;
        if place.far {
            let (nx, ny) = r.nearest(req.anchor.0, req.anchor.1);
            root.draw(&PathElement::new(
                vec![
                    (req.anchor.0.round() as i32, req.anchor.1.round() as i32),
                    (nx.round() as i32, ny.round() as i32),
                ],
                RGBColor(150, 150, 150).stroke_width(1),
            ))?;
        }
        root.draw(&Rectangle::new(
            [
                (r.x0.round() as i32, r.y0.round() as i32),
                (r.x1.round() as i32, r.y1.round() as i32),
            ],
            WHITE.mix(0.75).filled(),
        ))?;
        let ink = darken(*colour);
        let style = label_style
            .clone()
            .color(&ink)
            .pos(Pos::new(HPos::Left, VPos::Top));
        root.draw_text(
            text,
            &style,
            ((r.x0 + 1.0).round() as i32, (r.y0 + 1.0).round() as i32),
        )?;
    }
    Ok(Some(bounds.y0))
}

/// Draws one marker centred at `c` (absolute pixels).
pub(super) fn draw_marker<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    marker: super::chart::Marker,
    c: (f64, f64),
    r: f64,
    colour: RGBColor,
    solid: bool,
    sizes: &Sizes,
) -> DrawResult<(), DB> {
    let fill = if solid {
        colour.filled()
    } else {
        colour.mix(0.3).filled()
    };
    let edge = if solid {
        WHITE.stroke_width(px(sizes.line_w * 0.5))
    } else {
        colour.stroke_width(px(sizes.line_w * 0.6))
    };
    let centre = (c.0.round() as i32, c.1.round() as i32);
    match marker_shape(marker, r) {
        MarkerShape::Circle { radius } => {
            let rad = radius.round() as i32;
            root.draw(&Circle::new(centre, rad, fill))?;
            root.draw(&Circle::new(centre, rad, edge))?;
        }
        MarkerShape::Polygon(pts) => {
            let pts: Vec<(i32, i32)> = pts
                .iter()
                .map(|&(dx, dy)| ((c.0 + dx).round() as i32, (c.1 + dy).round() as i32))
                .collect();
            root.draw(&Polygon::new(pts.clone(), fill))?;
            let mut closed = pts;
            if let Some(&first) = closed.first() {
                closed.push(first);
            }
            root.draw(&PathElement::new(closed, edge))?;
        }
    }
    Ok(())
}

/// The widest y tick label, so the y axis title never overlaps it.
fn y_tick_width(ticks: &[f64], step: f64, sizes: &Sizes) -> f64 {
    let longest = ticks
        .iter()
        .map(|&v| format_with_step(v, step).chars().count())
        .max()
        .unwrap_or(1);
    // digits of DejaVu Sans are 0.64 em wide
    longest as f64 * sizes.tick * 0.64
}

/// A stroke width in whole pixels (at least 1).
pub(super) fn px(w: f64) -> u32 {
    w.round().max(1.0) as u32
}

/// The series colour darkened for text on white.
fn darken(c: RGBColor) -> RGBColor {
    let f = |v: u8| (f64::from(v) * 0.7).round() as u8;
    RGBColor(f(c.0), f(c.1), f(c.2))
}

fn same(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}
