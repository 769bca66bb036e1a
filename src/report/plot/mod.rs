//! Report figures: accuracy against a budget, one colour per method, one
//! marker shape per CR, the Pareto frontier as a post-step line, error bars
//! and placed point labels; PNG (headless, bundled font) and SVG.
//!
//! | concern | file |
//! |---|---|
//! | what to draw: [`Chart`], [`Series`], [`Point`], [`PlotError`] | [`chart`] |
//! | writing files: [`render`], [`render_grid`], checks, sizes | [`render`](mod@render) |
//! | a coordinate with our own ticks | `axis` |
//! | one chart's axes, lines, markers, labels | `draw` |
//! | legend panel, colour assignment | `legend` |
//! | frontier polyline (pure) | [`step`] |
//! | ticks, ranges, tick labels (pure) | [`ticks`] |
//! | label placement (pure) | [`labels`] |
//! | palette, marker geometry | [`style`] |
//! | bundled font registration | `font` |

mod axis;
pub mod chart;
mod draw;
mod font;
pub mod labels;
mod legend;
pub mod render;
pub mod step;
pub mod style;
pub mod ticks;

#[cfg(test)]
mod tests;

pub use chart::{Chart, ImageFormat, Marker, PlotError, Point, Scale, Series};
pub use render::{CELL_SIZE, CHART_SIZE, render, render_grid};
pub use step::step_path;
pub use ticks::{format_tick, log_ticks};
