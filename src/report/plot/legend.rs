//! The legend panel beside a chart (or a grid): one framed box keying series
//! colours, and one keying marker shapes.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::chart::{Chart, Marker};
use super::draw::{DrawResult, INK, Sizes, draw_marker, px};
use super::font::FAMILY;
use super::style::series_colour;

/// What a legend shows: `(name, colour)` per series with data, and the
/// marker key, both in first-appearance order without repeats.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Legend {
    pub series: Vec<(String, RGBColor)>,
    pub markers: Vec<(Marker, String)>,
}

/// Series colours for `charts`: each series name gets the palette colour of
/// its first appearance's index (across all charts), so a method keeps its
/// colour in every cell of a grid. Returns one colour vector per chart.
pub(super) fn assign_colours(charts: &[&Chart]) -> (Vec<Vec<RGBColor>>, Vec<String>) {
    let mut names: Vec<String> = Vec::new();
    let colours = charts
        .iter()
        .map(|c| {
            c.series
                .iter()
                .map(|s| {
                    let i = names.iter().position(|n| *n == s.name).unwrap_or_else(|| {
                        names.push(s.name.clone());
                        names.len() - 1
                    });
                    series_colour(i)
                })
                .collect()
        })
        .collect();
    (colours, names)
}

impl Legend {
    /// The legend of `charts` drawn with `colours` (from [`assign_colours`]).
    /// Series without points or frontier are left out.
    pub fn of(charts: &[&Chart], colours: &[Vec<RGBColor>]) -> Legend {
        let mut series: Vec<(String, RGBColor)> = Vec::new();
        let mut markers: Vec<(Marker, String)> = Vec::new();
        for (chart, cols) in charts.iter().zip(colours) {
            for (s, &c) in chart.series.iter().zip(cols) {
                let has_data = !s.points.is_empty() || !s.frontier.is_empty();
                if has_data && !series.iter().any(|(n, _)| *n == s.name) {
                    series.push((s.name.clone(), c));
                }
            }
            for m in &chart.marker_legend {
                if !markers.contains(m) {
                    markers.push(m.clone());
                }
            }
        }
        Legend { series, markers }
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty() && self.markers.is_empty()
    }

    /// The panel width in pixels for `sizes`, text wider than `max_width`
    /// being cut (see [`fit`]).
    pub fn width(&self, sizes: &Sizes, max_width: f64) -> f64 {
        let style = text_style(sizes);
        let text_w = self
            .series
            .iter()
            .map(|(n, _)| n.as_str())
            .chain(self.markers.iter().map(|(_, n)| n.as_str()))
            .map(|t| text_width(&style, t))
            .fold(0.0, f64::max);
        (chrome(sizes) + text_w).min(max_width)
    }

    /// Draws the panel with its top-left corner at `origin` (absolute
    /// pixels), `width` wide.
    pub fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        origin: (f64, f64),
        width: f64,
        sizes: &Sizes,
    ) -> DrawResult<(), DB> {
        let style = text_style(sizes);
        let (pad, row) = (sizes.pad, sizes.legend * 1.6);
        let swatch = sizes.legend * 1.8;
        let text_room = width - chrome(sizes);
        let mut top = origin.1;
        let groups: [Vec<(Swatch, &str)>; 2] = [
            self.series
                .iter()
                .map(|(n, c)| (Swatch::Line(*c), n.as_str()))
                .collect(),
            self.markers
                .iter()
                .map(|(m, n)| (Swatch::Marker(*m), n.as_str()))
                .collect(),
        ];
        for group in groups.iter().filter(|g| !g.is_empty()) {
            let height = pad * 2.0 + row * group.len() as f64;
            root.draw(&Rectangle::new(
                [
                    (origin.0.round() as i32, top.round() as i32),
                    (
                        (origin.0 + width).round() as i32,
                        (top + height).round() as i32,
                    ),
                ],
                RGBColor(190, 190, 190).stroke_width(px(sizes.line_w * 0.5)),
            ))?;
            for (k, (sw, text)) in group.iter().enumerate() {
                let cy = top + pad + row * (k as f64 + 0.5);
                let x0 = origin.0 + pad;
                match sw {
                    Swatch::Line(c) => {
                        root.draw(&PathElement::new(
                            vec![
                                (x0.round() as i32, cy.round() as i32),
                                ((x0 + swatch).round() as i32, cy.round() as i32),
                            ],
                            c.stroke_width(px(sizes.line_w * 1.5)),
                        ))?;
                    }
                    Swatch::Marker(m) => {
                        let c = (x0 + swatch / 2.0, cy);
                        draw_marker(
                            root,
                            *m,
                            c,
                            sizes.marker_r,
                            RGBColor(70, 70, 70),
                            true,
                            sizes,
                        )?;
                    }
                }
                let text = fit(&style, text, text_room);
                root.draw_text(
                    &text,
                    &style.pos(Pos::new(HPos::Left, VPos::Center)),
                    ((x0 + swatch + pad).round() as i32, cy.round() as i32),
                )?;
            }
            top += height + pad * 1.5;
        }
        Ok(())
    }
}

enum Swatch {
    Line(RGBColor),
    Marker(Marker),
}

fn text_style(sizes: &Sizes) -> TextStyle<'static> {
    TextStyle::from((FAMILY, sizes.legend)).color(&INK)
}

/// Everything in a legend row but the text: paddings and the swatch.
fn chrome(sizes: &Sizes) -> f64 {
    sizes.pad * 3.0 + sizes.legend * 1.8 + 2.0
}

fn text_width(style: &TextStyle, text: &str) -> f64 {
    // the bundled font is registered before any drawing; 0.6 em per char
    // is a fallback that never triggers in practice
    style
        .font
        .box_size(text)
        .map(|(w, _)| f64::from(w))
        .unwrap_or(text.chars().count() as f64 * style.font.get_size() * 0.6)
}

/// `text`, cut and ended with "…" when wider than `room` pixels.
fn fit(style: &TextStyle, text: &str, room: f64) -> String {
    if text_width(style, text) <= room {
        return text.to_string();
    }
    let mut chars: Vec<char> = text.chars().collect();
    while !chars.is_empty() {
        chars.pop();
        let cut: String = chars.iter().collect::<String>() + "…";
        if text_width(style, &cut) <= room {
            return cut;
        }
    }
    "…".to_string()
}
