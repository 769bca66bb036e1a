//! Writing figures: input checks, image sizes, the PNG (2× supersampled,
//! then box-filtered, for anti-aliased lines) and SVG backends, and the
//! grid layout with one shared legend.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::chart::{Chart, ImageFormat, PlotError, Scale};
use super::draw::{DrawResult, Sizes, draw_chart};
use super::font;
use super::legend::{Legend, assign_colours};

/// Pixel size of a stand-alone chart.
pub const CHART_SIZE: (u32, u32) = (1000, 700);
/// Pixel size of one grid cell.
pub const CELL_SIZE: (u32, u32) = (620, 440);
/// PNGs are drawn this many times larger, then averaged down.
const SUPERSAMPLE: u32 = 2;

/// Renders `chart` to `path` (~1000×700 px; the parent folder is created).
///
/// Log10 x axes need every x > 0 ([`PlotError::NonPositiveX`]); NaN or
/// infinite values and negative error bars are errors too. A chart without
/// any point or frontier renders its title and "no data to plot".
pub fn render(chart: &Chart, path: &Path, format: ImageFormat) -> Result<(), PlotError> {
    validate(chart, path)?;
    write(&Job::Single(chart), path, format)
}

/// Renders `charts` in a grid of `cols` columns (rows as needed, filled
/// row by row), each cell 620×440 px, with one legend for all cells on the
/// right. A series name keeps one colour across cells.
pub fn render_grid(
    charts: &[Chart],
    cols: usize,
    path: &Path,
    format: ImageFormat,
) -> Result<(), PlotError> {
    if charts.is_empty() || cols == 0 {
        return Err(PlotError::EmptyGrid {
            path: path.to_path_buf(),
        });
    }
    for c in charts {
        validate(c, path)?;
    }
    write(
        &Job::Grid {
            charts,
            cols: cols.min(charts.len()),
        },
        path,
        format,
    )
}

enum Job<'a> {
    Single(&'a Chart),
    Grid { charts: &'a [Chart], cols: usize },
}

impl Job<'_> {
    fn charts(&self) -> Vec<&Chart> {
        match self {
            Job::Single(c) => vec![c],
            Job::Grid { charts, .. } => charts.iter().collect(),
        }
    }

    fn sizes(&self, scale: f64) -> Sizes {
        match self {
            Job::Single(_) => Sizes::single(scale),
            Job::Grid { .. } => Sizes::cell(scale),
        }
    }

    /// The image size at scale 1.
    fn dims(&self) -> (u32, u32) {
        match self {
            Job::Single(_) => CHART_SIZE,
            Job::Grid { charts, cols } => {
                let (colours, _) = assign_colours(&self.charts());
                let legend = Legend::of(&self.charts(), &colours);
                let sizes = Sizes::cell(1.0);
                let legend_w = if legend.is_empty() {
                    0.0
                } else {
                    legend.width(&sizes, 320.0) + 3.0 * sizes.pad
                };
                let rows = charts.len().div_ceil(*cols);
                (
                    CELL_SIZE.0 * *cols as u32 + legend_w.ceil() as u32,
                    CELL_SIZE.1 * rows as u32,
                )
            }
        }
    }
}

fn validate(chart: &Chart, path: &Path) -> Result<(), PlotError> {
    if let Some((lo, hi)) = chart.y_range
        && !(lo.is_finite() && hi.is_finite() && lo < hi)
    {
        return Err(PlotError::BadYRange {
            path: path.to_path_buf(),
            lo,
            hi,
        });
    }
    for s in &chart.series {
        let non_finite = |what: &'static str, index: usize, value: f64| PlotError::NonFinite {
            path: path.to_path_buf(),
            series: s.name.clone(),
            what,
            index,
            value,
        };
        let xs = s
            .points
            .iter()
            .map(|p| p.x)
            .chain(s.frontier.iter().map(|f| f.0));
        for (i, p) in s.points.iter().enumerate() {
            for (what, v) in [("x", p.x), ("y", p.y)] {
                if !v.is_finite() {
                    return Err(non_finite(what, i, v));
                }
            }
            if let Some(e) = p.y_err {
                if !e.is_finite() {
                    return Err(non_finite("y_err", i, e));
                }
                if e < 0.0 {
                    return Err(PlotError::NegativeError {
                        path: path.to_path_buf(),
                        series: s.name.clone(),
                        index: i,
                        value: e,
                    });
                }
            }
        }
        for (i, &(x, y)) in s.frontier.iter().enumerate() {
            for (what, v) in [("frontier x", x), ("frontier y", y)] {
                if !v.is_finite() {
                    return Err(non_finite(what, i, v));
                }
            }
        }
        if chart.x_scale == Scale::Log10
            && let Some((index, x)) = xs.enumerate().find(|(_, x)| *x <= 0.0)
        {
            return Err(PlotError::NonPositiveX {
                path: path.to_path_buf(),
                series: s.name.clone(),
                index,
                x,
            });
        }
    }
    Ok(())
}

fn write(job: &Job, path: &Path, format: ImageFormat) -> Result<(), PlotError> {
    let draw_err = |message: String| PlotError::Draw {
        path: path.to_path_buf(),
        message,
    };
    if !font::ensure_registered() {
        return Err(draw_err("the bundled font failed to load".to_string()));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| PlotError::CreateDir {
            path: path.to_path_buf(),
            source,
        })?;
    }
    let (w, h) = job.dims();
    match format {
        ImageFormat::Svg => {
            let root = SVGBackend::new(path, (w, h)).into_drawing_area();
            paint(&root, job, 1.0).map_err(|e| draw_err(e.to_string()))?;
            root.present().map_err(|e| draw_err(e.to_string()))?;
        }
        ImageFormat::Png => {
            let s = SUPERSAMPLE;
            let mut big = vec![0u8; (w * s * h * s * 3) as usize];
            {
                let root = BitMapBackend::with_buffer(&mut big, (w * s, h * s)).into_drawing_area();
                paint(&root, job, f64::from(s)).map_err(|e| draw_err(e.to_string()))?;
                root.present().map_err(|e| draw_err(e.to_string()))?;
            }
            let small = downsample(&big, (w * s) as usize, (h * s) as usize, s as usize);
            image::save_buffer_with_format(
                path,
                &small,
                w,
                h,
                image::ColorType::Rgb8,
                image::ImageFormat::Png,
            )
            .map_err(|e| draw_err(e.to_string()))?;
        }
    }
    Ok(())
}

/// Paints the whole image at `scale` (pixel sizes multiplied by it).
fn paint<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    job: &Job,
    scale: f64,
) -> DrawResult<(), DB> {
    root.fill(&WHITE)?;
    let charts = job.charts();
    let (colours, _) = assign_colours(&charts);
    let legend = Legend::of(&charts, &colours);
    let sizes = job.sizes(scale);
    let (w, _) = root.dim_in_pixel();
    let legend_w = if legend.is_empty() {
        0.0
    } else {
        legend.width(&sizes, f64::from(w) * 0.3)
    };
    let body_w = if legend.is_empty() {
        w
    } else {
        (f64::from(w) - legend_w - 2.5 * sizes.pad).round() as u32
    };
    let (body, _) = root.split_horizontally(body_w);
    let cells = match job {
        Job::Single(_) => vec![body],
        Job::Grid { charts, cols } => {
            let rows = charts.len().div_ceil(*cols);
            body.split_evenly((rows, *cols))
        }
    };
    let mut legend_top = None;
    for ((chart, cols), cell) in charts.iter().zip(&colours).zip(&cells) {
        let plot_top = draw_chart(root, cell, chart, cols, &sizes)?;
        legend_top.get_or_insert(plot_top);
    }
    if !legend.is_empty() {
        let top = legend_top.flatten().unwrap_or(sizes.pad * 6.0);
        legend.draw(root, (f64::from(body_w) + sizes.pad, top), legend_w, &sizes)?;
    }
    Ok(())
}

/// Averages each `factor`×`factor` block of an RGB8 image
/// (`width`×`height`, both multiples of `factor`).
///
/// # Shapes
/// `rgb`: `[height, width, 3]` row-major → `[height / factor, width / factor, 3]`.
pub fn downsample(rgb: &[u8], width: usize, height: usize, factor: usize) -> Vec<u8> {
    let (w, h) = (width / factor, height / factor);
    let mut out = vec![0u8; w * h * 3];
    let n = (factor * factor) as u32;
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                let mut sum = 0u32;
                for dy in 0..factor {
                    let row = (y * factor + dy) * width;
                    for dx in 0..factor {
                        sum += u32::from(rgb[(row + x * factor + dx) * 3 + c]);
                    }
                }
                out[(y * w + x) * 3 + c] = ((sum + n / 2) / n) as u8;
            }
        }
    }
    out
}
