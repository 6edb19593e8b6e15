//! Plots as self-contained SVG (plotters' SVG backend: no fonts or files needed).

use plotters::prelude::*;

/// One curve: a label and its sample values.
pub struct Series {
    /// The legend's label.
    pub label: String,
    /// The samples (any order).
    pub values: Vec<f64>,
}

/// One CDF chart of a figure: its x axis and its curves.
#[derive(Clone)]
pub struct Panel<'a> {
    /// What x measures.
    pub x_label: &'a str,
    /// Where the x axis ends (it starts at 0).
    pub x_max: f64,
    /// The curves.
    pub series: &'a [Series],
}

/// The empirical CDF of each series on shared axes, as an SVG document: x in `x_label` units
/// from 0 to `x_max`, y the fraction of samples at or below x.
pub fn cdf_svg(
    title: &str,
    x_label: &str,
    x_max: f64,
    series: &[Series],
) -> anyhow::Result<String> {
    cdf_panels_svg(
        title,
        &[Panel {
            x_label,
            x_max,
            series,
        }],
    )
}

/// Several CDF charts side by side under one title, as an SVG document.
pub fn cdf_panels_svg(title: &str, panels: &[Panel]) -> anyhow::Result<String> {
    let charts: Vec<Chart> = panels.iter().map(|p| Chart::Cdf(p.clone())).collect();
    figure_svg(title, &charts, charts.len().max(1))
}

/// One line of a chart over time: a label and its (x, y) points.
#[derive(Clone, Debug)]
pub struct Line {
    /// The legend's label.
    pub label: String,
    /// The points, in x order.
    pub points: Vec<(f64, f64)>,
}

/// A chart of lines over time, with shaded spans (fault windows).
#[derive(Clone)]
pub struct TimePanel<'a> {
    /// What x measures.
    pub x_label: &'a str,
    /// What y measures.
    pub y_label: &'a str,
    /// Where the x axis ends (virtual ms; it starts at 0).
    pub x_max: f64,
    /// Where the y axis ends.
    pub y_max: f64,
    /// A logarithmic y axis from 1 (for latencies that span orders of magnitude).
    pub log_y: bool,
    /// The lines.
    pub lines: &'a [Line],
    /// Spans of x drawn shaded behind the lines, with a label each (the legend shows the
    /// first of each label).
    pub shaded: &'a [(f64, f64, &'a str)],
}

/// One chart of a figure.
#[derive(Clone)]
pub enum Chart<'a> {
    /// Empirical CDFs.
    Cdf(Panel<'a>),
    /// Lines over time.
    Time(TimePanel<'a>),
    /// Histograms of the series, drawn as outlines so that they can overlap.
    Histogram(Panel<'a>),
}

/// Charts under one title, `columns` to a row, as an SVG document.
pub fn figure_svg(title: &str, charts: &[Chart], columns: usize) -> anyhow::Result<String> {
    let columns = columns.clamp(1, charts.len().max(1));
    let rows = charts.len().div_ceil(columns).max(1);
    let mut svg = String::new();
    {
        let width = 900 * columns as u32;
        let height = 40 + 480 * rows as u32;
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let root = root.titled(title, ("sans-serif", 20))?;
        for (area, chart) in root.split_evenly((rows, columns)).iter().zip(charts) {
            match chart {
                Chart::Cdf(p) => draw_cdf(area, p)?,
                Chart::Histogram(p) => draw_histogram(area, p)?,
                Chart::Time(p) if p.log_y => {
                    draw_time(area, p, (1f64..p.y_max.max(2.0)).log_scale())?
                }
                Chart::Time(p) => draw_time(area, p, 0f64..p.y_max.max(1e-9))?,
            }
        }
        root.present()?;
    }
    Ok(svg)
}

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// Draws one labelled line of `color`, listed in the legend.
fn labelled_line<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    points: Vec<(f64, f64)>,
    color: RGBAColor,
    label: &str,
) -> anyhow::Result<()>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    CT: plotters::coord::CoordTranslate<From = (f64, f64)>,
{
    chart
        .draw_series(LineSeries::new(points, color.stroke_width(2)))
        .map_err(err)?
        .label(label.to_string())
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
    Ok(())
}

/// Draws the legend box at `position`.
fn legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> anyhow::Result<()>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    CT: plotters::coord::CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}

fn draw_time<DB: DrawingBackend, Y>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &TimePanel,
    y_range: Y,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
    Y: plotters::coord::ranged1d::AsRangedCoord<Value = f64>,
    Y::CoordDescType: plotters::coord::ranged1d::ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(area)
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..panel.x_max, y_range)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(panel.x_label)
        .y_desc(panel.y_label)
        .draw()
        .map_err(err)?;
    let (y_lo, y_hi) = {
        let r = chart.y_range();
        (r.start, r.end)
    };
    // One tint per label, in order of first appearance.
    const TINTS: [RGBColor; 5] = [
        RGBColor(255, 140, 0),
        RGBColor(70, 130, 220),
        RGBColor(150, 80, 200),
        RGBColor(220, 40, 40),
        RGBColor(60, 170, 90),
    ];
    let mut labelled: Vec<&str> = Vec::new();
    for &(from, to, label) in panel.shaded {
        let k = labelled
            .iter()
            .position(|l| *l == label)
            .unwrap_or(labelled.len());
        let shade = TINTS[k % TINTS.len()].mix(0.18);
        let series = chart
            .draw_series(std::iter::once(Rectangle::new(
                [(from, y_lo), (to.min(panel.x_max), y_hi)],
                shade.filled(),
            )))
            .map_err(err)?;
        if !labelled.contains(&label) {
            labelled.push(label);
            series.label(label.to_string()).legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 18, y + 5)], shade.filled())
            });
        }
    }
    for (i, line) in panel.lines.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        labelled_line(&mut chart, line.points.clone(), color, &line.label)?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}

/// How many bins a histogram has.
const BINS: usize = 30;

/// Counts of `values` in [`BINS`] equal bins over 0..`x_max` (values past it in the last).
pub fn bin_counts(values: &[f64], x_max: f64) -> Vec<usize> {
    let mut counts = vec![0; BINS];
    for &v in values {
        let i = ((v / x_max * BINS as f64).max(0.0) as usize).min(BINS - 1);
        counts[i] += 1;
    }
    counts
}

fn draw_histogram<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let counts: Vec<Vec<usize>> = panel
        .series
        .iter()
        .map(|s| bin_counts(&s.values, panel.x_max))
        .collect();
    let y_max = counts.iter().flatten().copied().max().unwrap_or(1).max(1) as f64 * 1.1;
    let width = panel.x_max / BINS as f64;
    let mut chart = ChartBuilder::on(area)
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..panel.x_max, 0f64..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(panel.x_label)
        .y_desc("seeds")
        .draw()
        .map_err(err)?;
    for (i, (s, c)) in panel.series.iter().zip(&counts).enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let mut points = vec![(0.0, 0.0)];
        for (b, &n) in c.iter().enumerate() {
            points.push((b as f64 * width, n as f64));
            points.push(((b + 1) as f64 * width, n as f64));
        }
        points.push((panel.x_max, 0.0));
        chart
            .draw_series(std::iter::once(Polygon::new(
                points.clone(),
                color.mix(0.15),
            )))
            .map_err(err)?;
        labelled_line(&mut chart, points, color, &s.label)?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}

fn draw_cdf<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let mut chart = ChartBuilder::on(area)
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..panel.x_max, 0f64..1f64)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc(panel.x_label)
        .y_desc("cumulative fraction")
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for (i, s) in panel.series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let mut v = s.values.clone();
        v.sort_by(f64::total_cmp);
        let n = v.len().max(1) as f64;
        // Samples past the axis end the curve there: its height at x_max is the share of
        // samples within it.
        let mut points = vec![(0.0, 0.0)];
        // A step per sample, but no more than about 1,000 steps: a finer curve only makes
        // the file bigger.
        let stride = v.len().div_ceil(1000).max(1);
        for (k, &x) in v.iter().enumerate().take_while(|(_, &x)| x <= panel.x_max) {
            if k % stride == 0 || k + 1 == v.len() {
                points.push((x, k as f64 / n));
                points.push((x, (k + 1) as f64 / n));
            }
        }
        if let Some(&(_, y)) = points.last() {
            points.push((panel.x_max, y));
        }
        labelled_line(&mut chart, points, color, &s.label)?;
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_split_the_axis_evenly_and_keep_outliers_in_the_last() {
        let c = bin_counts(&[0.0, 1.0, 29.5, 500.0], 30.0);
        assert_eq!((c[0], c[1], c[29]), (1, 1, 2));
        assert_eq!(c.iter().sum::<usize>(), 4);
    }

    #[test]
    fn a_time_chart_draws_its_lines_and_shades_its_spans() {
        let lines = [
            Line {
                label: "raft".into(),
                points: vec![(0.0, 5.0), (100.0, 300.0), (200.0, 6.0)],
            },
            Line {
                label: "zab".into(),
                points: vec![(0.0, 4.0), (200.0, 7.0)],
            },
        ];
        let shaded = [(50.0, 120.0, "crash"), (150.0, 180.0, "crash")];
        let s = figure_svg(
            "t",
            &[Chart::Time(TimePanel {
                x_label: "ms",
                y_label: "ms",
                x_max: 200.0,
                y_max: 1000.0,
                log_y: true,
                lines: &lines,
                shaded: &shaded,
            })],
            1,
        )
        .unwrap();
        assert!(s.contains("raft") && s.contains("zab"));
        // One legend entry for the two crash windows.
        assert_eq!(s.matches("\ncrash\n</text>").count(), 1, "{s}");
        assert!(s.matches("<polyline").count() >= 2);
        assert!(
            s.matches("<rect").count() >= 3,
            "two windows and a background"
        );
    }

    #[test]
    fn a_cdf_is_an_svg_document_with_one_curve_per_series_and_a_legend() {
        let s = cdf_svg(
            "t",
            "ms",
            100.0,
            &[
                Series {
                    label: "alpha".into(),
                    values: vec![10.0, 20.0, 30.0],
                },
                Series {
                    label: "beta".into(),
                    values: vec![50.0],
                },
            ],
        )
        .unwrap();
        assert!(s.starts_with("<svg"));
        assert!(s.contains("alpha") && s.contains("beta"));
        assert!(s.matches("<polyline").count() >= 2, "{s}");
    }
}
