//! Rendering tests: real PNG/SVG files in a temp dir, degenerate inputs, and
//! a realistic demo figure (`cargo test --release --lib plot::tests::demo
//! -- --ignored`, written to `$HYPERSCALE_PLOT_DEMO_DIR` or the temp dir)
//! for looking at.

use std::path::{Path, PathBuf};

use super::*;

/// A small deterministic generator (splitmix64) so the demo data is seeded.
struct Mix(u64);

impl Mix {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The upper-left Pareto frontier of `points`: ascending budget, strictly
/// increasing accuracy.
fn pareto(points: &[Point]) -> Vec<(f64, f64)> {
    let mut v: Vec<(f64, f64)> = points.iter().map(|p| (p.x, p.y)).collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
    let mut out: Vec<(f64, f64)> = Vec::new();
    for p in v {
        if out.last().is_none_or(|l| p.1 > l.1) {
            out.push(p);
        }
    }
    out
}

/// Four methods over W ∈ {1, 2, 4} × CR ∈ {2, 4, 8} (dense: CR 1) at one
/// length, KV reads over ~3 decades, accuracy saturating in log budget.
fn demo_chart(title: &str, seed: u64, label_all: bool) -> Chart {
    let mut rng = Mix(seed);
    let methods = [("dense", 0.0), ("DMS", 0.02), ("TOVA", 0.07), ("H2O", 0.11)];
    let crs = [2u32, 4, 8];
    let series = methods
        .iter()
        .map(|&(name, penalty)| {
            let mut points = Vec::new();
            for w in [1u32, 2, 4] {
                let cr_set: Vec<u32> = if name == "dense" {
                    vec![1]
                } else {
                    crs.to_vec()
                };
                for cr in cr_set {
                    let budget =
                        2.0e4 * f64::from(w) * 16.0 / f64::from(cr) * (1.0 + 0.2 * rng.next_f64());
                    let base = 0.75 / (1.0 + (-(budget.log10() - 4.3) * 1.6).exp());
                    let y = (base - penalty * f64::from(cr).log2() + 0.03 * (rng.next_f64() - 0.5))
                        .clamp(0.0, 1.0);
                    points.push(Point {
                        x: budget,
                        y,
                        y_err: Some(0.02 + 0.02 * rng.next_f64()),
                        marker: Marker::for_index(
                            crs.iter().position(|&c| c == cr).map_or(0, |i| i + 1),
                        ),
                        label: Some(format!("W{w}-L16k-CR{cr}")),
                    });
                }
            }
            let frontier = pareto(&points);
            if !label_all {
                for p in &mut points {
                    if !frontier.contains(&(p.x, p.y)) {
                        p.label = None;
                    }
                }
            }
            Series {
                name: name.to_string(),
                points,
                frontier,
            }
        })
        .collect();
    Chart {
        title: title.to_string(),
        x_label: "KV-cache reads per problem".to_string(),
        y_label: "pass@1".to_string(),
        x_scale: Scale::Log10,
        y_range: None,
        series,
        marker_legend: vec![
            (Marker::Circle, "CR 1 (dense)".to_string()),
            (Marker::Square, "CR 2".to_string()),
            (Marker::Triangle, "CR 4".to_string()),
            (Marker::Diamond, "CR 8".to_string()),
        ],
    }
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// The SVG's `<text>` contents, XML entities left as they are.
fn svg_texts(p: &Path) -> Vec<String> {
    let svg = std::fs::read_to_string(p).expect("read svg");
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            t.split_once('>')
                .and_then(|(_, rest)| rest.split_once("</text>"))
        })
        .map(|(inner, _)| inner.trim().to_string())
        .collect()
}

#[test]
fn png_and_svg_are_written_with_title_legend_and_ticks() {
    let dir = tmp();
    let chart = demo_chart("AIME 2024: accuracy vs KV reads", 7, false);
    let png = dir.path().join("a/b/chart.png");
    let svg = dir.path().join("chart.svg");
    render(&chart, &png, ImageFormat::Png).expect("png");
    render(&chart, &svg, ImageFormat::Svg).expect("svg");
    assert!(size(&png) > 20_000, "png is {} bytes", size(&png));
    let png_bytes = std::fs::read(&png).expect("read png");
    assert_eq!(&png_bytes[..8], b"\x89PNG\r\n\x1a\n");
    // IHDR: width and height as written
    assert_eq!(
        u32::from_be_bytes(png_bytes[16..20].try_into().unwrap()),
        CHART_SIZE.0
    );
    assert_eq!(
        u32::from_be_bytes(png_bytes[20..24].try_into().unwrap()),
        CHART_SIZE.1
    );
    let texts = svg_texts(&svg);
    for want in [
        "AIME 2024: accuracy vs KV reads",
        "KV-cache reads per problem",
        "pass@1",
        "dense",
        "DMS",
        "TOVA",
        "H2O",
        "CR 2",
        "CR 8",
        "100k",
        "1M",
    ] {
        assert!(
            texts.iter().any(|t| t == want),
            "no <text>{want}</text> in {texts:?}"
        );
    }
    // the frontier points are labelled
    assert!(
        texts.iter().any(|t| t.starts_with("W4-L16k-CR")),
        "{texts:?}"
    );
}

#[test]
fn grid_is_sized_per_cell_plus_legend() {
    let dir = tmp();
    let charts: Vec<Chart> = (0..3)
        .map(|i| demo_chart(&format!("task {i}"), i, false))
        .collect();
    let png = dir.path().join("grid.png");
    let svg = dir.path().join("grid.svg");
    render_grid(&charts, 2, &png, ImageFormat::Png).expect("png");
    render_grid(&charts, 2, &svg, ImageFormat::Svg).expect("svg");
    let bytes = std::fs::read(&png).expect("read png");
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!(h, 2 * CELL_SIZE.1);
    assert!(
        w > 2 * CELL_SIZE.0 && w < 2 * CELL_SIZE.0 + 330,
        "width {w}"
    );
    let texts = svg_texts(&svg);
    for t in ["task 0", "task 1", "task 2"] {
        assert!(texts.iter().any(|x| x == t), "{t} missing");
    }
    // one shared legend: each method name once
    assert_eq!(texts.iter().filter(|t| *t == "TOVA").count(), 1);
}

#[test]
fn zero_budget_on_a_log_axis_is_an_error_naming_series_and_file() {
    let mut chart = demo_chart("t", 1, false);
    chart.series[2].points[1].x = 0.0;
    let path = PathBuf::from("never/written.png");
    let err = render(&chart, &path, ImageFormat::Png).expect_err("x = 0 on log10");
    let msg = err.to_string();
    assert!(
        matches!(err, PlotError::NonPositiveX { index: 1, .. }),
        "{err:?}"
    );
    assert!(
        msg.contains("never/written.png") && msg.contains("TOVA"),
        "{msg}"
    );
    assert!(!path.exists());
    // the same chart on a linear axis is fine
    chart.x_scale = Scale::Linear;
    let dir = tmp();
    render(&chart, &dir.path().join("lin.svg"), ImageFormat::Svg).expect("linear x = 0");
}

#[test]
fn bad_values_are_errors() {
    let path = Path::new("x.svg");
    let mut c = demo_chart("t", 1, false);
    c.series[0].points[0].y = f64::NAN;
    assert!(matches!(
        render(&c, path, ImageFormat::Svg),
        Err(PlotError::NonFinite { what: "y", .. })
    ));
    let mut c = demo_chart("t", 1, false);
    c.series[1].points[0].y_err = Some(-0.1);
    assert!(matches!(
        render(&c, path, ImageFormat::Svg),
        Err(PlotError::NegativeError { .. })
    ));
    let mut c = demo_chart("t", 1, false);
    c.series[1].frontier.push((-1.0, 0.5));
    assert!(matches!(
        render(&c, path, ImageFormat::Svg),
        Err(PlotError::NonPositiveX { .. })
    ));
    let mut c = demo_chart("t", 1, false);
    c.y_range = Some((0.5, 0.5));
    assert!(matches!(
        render(&c, path, ImageFormat::Svg),
        Err(PlotError::BadYRange { .. })
    ));
    assert!(matches!(
        render_grid(&[], 2, path, ImageFormat::Svg),
        Err(PlotError::EmptyGrid { .. })
    ));
    assert!(matches!(
        render_grid(&[c.clone()], 0, path, ImageFormat::Svg),
        Err(PlotError::EmptyGrid { .. })
    ));
    assert!(!path.exists());
}

#[test]
fn degenerate_charts_still_render() {
    let dir = tmp();
    let one = |x: f64| Point {
        x,
        y: 0.4,
        y_err: None,
        marker: Marker::Star,
        label: Some("only".to_string()),
    };
    let base = Chart {
        title: "degenerate".to_string(),
        x_label: "x".to_string(),
        y_label: "y".to_string(),
        x_scale: Scale::Log10,
        y_range: Some((0.2, 0.6)),
        series: vec![],
        marker_legend: vec![],
    };
    let cases: Vec<(&str, Vec<Series>)> = vec![
        ("no-series", vec![]),
        (
            "empty-series",
            vec![Series {
                name: "empty".to_string(),
                points: vec![],
                frontier: vec![],
            }],
        ),
        (
            "one-point",
            vec![Series {
                name: "one".to_string(),
                points: vec![one(5e3)],
                frontier: vec![(5e3, 0.4)],
            }],
        ),
        (
            "same-x",
            vec![Series {
                name: "same".to_string(),
                points: vec![one(5e3), Point { y: 0.9, ..one(5e3) }],
                frontier: vec![(5e3, 0.9)],
            }],
        ),
    ];
    for (name, series) in cases {
        for scale in [Scale::Log10, Scale::Linear] {
            let chart = Chart {
                series: series.clone(),
                x_scale: scale,
                ..base.clone()
            };
            for format in [ImageFormat::Png, ImageFormat::Svg] {
                let path = dir
                    .path()
                    .join(format!("{name}-{scale:?}.{}", format.extension()));
                render(&chart, &path, format).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(size(&path) > 300, "{name} {format:?} too small");
            }
        }
    }
    // an empty series gets no legend entry; a chart with no data says so
    let texts = svg_texts(&dir.path().join("empty-series-Log10.svg"));
    assert!(texts.iter().any(|t| t == "no data to plot"), "{texts:?}");
    let texts = svg_texts(&dir.path().join("no-series-Log10.svg"));
    assert!(texts.iter().any(|t| t == "no data to plot"), "{texts:?}");
    assert!(!texts.iter().any(|t| t == "empty"), "{texts:?}");
    // y range widened to show the 0.9 point (ticks past the given 0.6)
    let texts = svg_texts(&dir.path().join("same-x-Log10.svg"));
    assert!(texts.iter().any(|t| t == "0.8"), "{texts:?}");
}

#[test]
fn downsample_averages_blocks() {
    // 4x2 image, factor 2 -> 2x1
    let px = |v: u8| [v, v, v];
    let rows = [
        [px(0), px(100), px(10), px(10)],
        [px(50), px(50), px(30), px(31)],
    ];
    let rgb: Vec<u8> = rows.iter().flatten().flatten().copied().collect();
    let out = render::downsample(&rgb, 4, 2, 2);
    // (0+100+50+50)/4 = 50; (10+10+30+31)/4 = 20.25 -> 20
    assert_eq!(out, vec![50, 50, 50, 20, 20, 20]);
}

/// Writes demo figures for eyeballing; not a check.
#[test]
#[ignore = "writes demo images for a person to look at"]
fn demo() {
    let dir = std::env::var_os("HYPERSCALE_PLOT_DEMO_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let chart = demo_chart("AIME 2024 — pass@1 vs KV-cache reads", 7, true);
    let sparse = demo_chart(
        "AIME 2024 — pass@1 vs KV-cache reads (frontier labels)",
        7,
        false,
    );
    for format in [ImageFormat::Png, ImageFormat::Svg] {
        let ext = format.extension();
        render(&chart, &dir.join(format!("demo-all-labels.{ext}")), format).expect("demo");
        render(&sparse, &dir.join(format!("demo.{ext}")), format).expect("demo");
        let charts: Vec<Chart> = ["AIME 2024", "GPQA Diamond", "LiveCodeBench"]
            .iter()
            .enumerate()
            .map(|(i, t)| demo_chart(t, 11 + i as u64, false))
            .collect();
        render_grid(&charts, 2, &dir.join(format!("demo-grid.{ext}")), format).expect("grid");
    }
    println!("demo figures in {}", dir.display());
}
