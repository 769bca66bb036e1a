//! The chart description the plot layer renders: series of (budget, accuracy)
//! points with markers, error bars and labels, plus each series' Pareto
//! frontier; and the error type of rendering.
//!
//! These are plain values: the report builds them from its aggregates and
//! hands them to [`render`](super::render) / [`render_grid`](super::render_grid).
//! Nothing here draws.

use std::path::PathBuf;

use thiserror::Error;

/// How the x axis maps budgets to pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Even spacing of values.
    Linear,
    /// Even spacing of decades; every x must be `> 0`.
    Log10,
}

/// The file format of a rendered figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// A raster image (RGB, 8 bits per channel).
    Png,
    /// A vector image; text stays `<text>` elements.
    Svg,
}

impl ImageFormat {
    /// The conventional file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Svg => "svg",
        }
    }
}

/// The shape a point is drawn with (the report uses one shape per CR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Marker {
    Circle,
    Square,
    Triangle,
    Diamond,
    Cross,
    Star,
}

impl Marker {
    /// Every marker, in the order [`Marker::for_index`] cycles through.
    pub const ALL: [Marker; 6] = [
        Marker::Circle,
        Marker::Square,
        Marker::Triangle,
        Marker::Diamond,
        Marker::Cross,
        Marker::Star,
    ];

    /// The `i`-th marker, cycling through [`Marker::ALL`].
    pub fn for_index(i: usize) -> Marker {
        Marker::ALL[i % Marker::ALL.len()]
    }
}

/// One measured configuration: its budget `x`, accuracy `y` and the
/// standard error of `y` (drawn as a vertical bar `y ± y_err`).
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    /// Half-length of the vertical error bar; `None` draws no bar.
    pub y_err: Option<f64>,
    pub marker: Marker,
    /// A short text drawn beside the point, e.g. `"W2-L24-CR4"`.
    pub label: Option<String>,
}

/// One method: its points and its frontier, all drawn in one colour.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The legend entry.
    pub name: String,
    pub points: Vec<Point>,
    /// `(budget, best accuracy at ≤ budget)` vertices of the Pareto frontier,
    /// drawn as a post-step line (see [`step_path`](super::step_path)).
    /// Empty draws no frontier.
    pub frontier: Vec<(f64, f64)>,
}

/// One figure: accuracy (y) against a budget (x).
///
/// Colours are assigned by series index from a colour-blind-safe palette
/// (Okabe–Ito), so keep the method order the same across charts to keep a
/// method's colour; an empty series keeps its colour slot but is left out
/// of the legend.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_scale: Scale,
    /// The y axis range; `None` is `(0, 1)`. The range is widened to include
    /// every point's `y` (data is never hidden); error bars are clipped to it.
    pub y_range: Option<(f64, f64)>,
    pub series: Vec<Series>,
    /// The key for marker shapes, e.g. `(Marker::Circle, "CR 2")`. Empty
    /// draws no marker key.
    pub marker_legend: Vec<(Marker, String)>,
}

/// Why a figure could not be rendered. Every variant names the output file.
#[derive(Debug, Error)]
pub enum PlotError {
    #[error(
        "cannot plot `{path}`: series `{series}` has x = {x} at point {index}, \
         which a log10 axis cannot show (budgets must be > 0)"
    )]
    NonPositiveX {
        path: PathBuf,
        series: String,
        index: usize,
        x: f64,
    },
    #[error("cannot plot `{path}`: series `{series}` has a non-finite {what} ({value}) at {index}")]
    NonFinite {
        path: PathBuf,
        series: String,
        /// `"x"`, `"y"`, `"y_err"`, `"frontier x"` or `"frontier y"`.
        what: &'static str,
        index: usize,
        value: f64,
    },
    #[error(
        "cannot plot `{path}`: series `{series}` has a negative error bar ({value}) at point {index}"
    )]
    NegativeError {
        path: PathBuf,
        series: String,
        index: usize,
        value: f64,
    },
    #[error("cannot plot `{path}`: y range ({lo}, {hi}) is not an increasing finite interval")]
    BadYRange { path: PathBuf, lo: f64, hi: f64 },
    #[error("cannot plot `{path}`: a grid needs at least one chart and one column")]
    EmptyGrid { path: PathBuf },
    #[error("failed to create the folder for `{path}`")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to draw `{path}`: {message}")]
    Draw { path: PathBuf, message: String },
}
