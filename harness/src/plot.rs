//! Plots as self-contained SVG (plotters' SVG backend: no fonts or files needed).

use plotters::prelude::*;

/// One curve: a label and its sample values.
pub struct Series {
    /// The legend's label.
    pub label: String,
    /// The samples (any order).
    pub values: Vec<f64>,
}

/// One chart of a figure: its x axis and its curves.
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
    let mut svg = String::new();
    {
        let width = 900 * panels.len().max(1) as u32;
        let root = SVGBackend::with_string(&mut svg, (width, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let root = root.titled(title, ("sans-serif", 20))?;
        for (area, panel) in root
            .split_evenly((1, panels.len().max(1)))
            .iter()
            .zip(panels)
        {
            draw_cdf(area, panel)?;
        }
        root.present()?;
    }
    Ok(svg)
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
        for (k, &x) in v.iter().enumerate().take_while(|(_, &x)| x <= panel.x_max) {
            points.push((x, k as f64 / n));
            points.push((x, (k + 1) as f64 / n));
        }
        if let Some(&(_, y)) = points.last() {
            points.push((panel.x_max, y));
        }
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .label(s.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
