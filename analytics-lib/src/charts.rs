//! Charts built from the library's own results: interactive ones with plotly
//! (for notebooks, HTML reports and the dashboard) and static SVG figures
//! with plotters (for reports and the README).
//!
//! Everything renders offline: [`plotly_js`] embeds the plotly.js that the
//! `plotly` crate ships, never a CDN link. Money axes read `R$` with
//! Brazilian separators (`1.234,56`); months read `mm/aaaa`.

use std::collections::BTreeMap;

use plotly::common::{Marker, Mode, Title};
use plotly::layout::{Axis, Layout, Margin};
use plotly::{Bar, HeatMap, Plot, Scatter};
use plotters::prelude::*;
use polars::prelude::*;

use crate::data::geo;
use crate::error::{DataError, Result};
use crate::explore::Outliers;
use crate::locale;

const T: &str = "charts";
const BLUE: &str = "#1f4e79";
const ORANGE: &str = "#e07b24";

/// The plotly.js library as one `<script>` element (≈ 4.7 MB), to include
/// once per page or notebook before any interactive chart.
pub fn plotly_js() -> String {
    let all = Plot::offline_js_sources();
    // The crate appends MathJax after plotly.js; charts here need only plotly.
    match all.find("</script>") {
        Some(end) => all[..end + "</script>".len()].to_string(),
        None => all,
    }
}

fn base_layout(title: &str) -> Layout {
    Layout::new()
        .title(Title::with_text(title))
        .separators(",.")
        .height(420)
        .margin(Margin::new().left(110).right(30).top(60).bottom(60))
}

fn money_axis(title: &str) -> Axis {
    Axis::new()
        .title(Title::with_text(title))
        .tick_prefix("R$ ")
        .tick_format(",.0f")
}

/// `YYYY-MM` → the first day of the month as `YYYY-MM-01` (a plotly date).
fn month_start(ym: &str) -> String {
    format!("{ym}-01")
}

/// Monthly revenue as a line, optionally with a second series (e.g. a
/// forecast) drawn dashed.
pub fn revenue_over_time(monthly: &BTreeMap<String, f64>, title: &str) -> Plot {
    let x: Vec<String> = monthly.keys().map(|m| month_start(m)).collect();
    let y: Vec<f64> = monthly.values().copied().collect();
    let text: Vec<String> = monthly
        .iter()
        .map(|(m, v)| format!("{}: {}", locale::month(m), locale::brl(*v)))
        .collect();
    let mut plot = Plot::new();
    plot.add_trace(
        Scatter::new(x, y)
            .mode(Mode::LinesMarkers)
            .name("revenue")
            .text_array(text)
            .hover_info(plotly::common::HoverInfo::Text)
            .marker(Marker::new().color(BLUE)),
    );
    plot.set_layout(
        base_layout(title)
            .x_axis(
                Axis::new()
                    .title(Title::with_text("month"))
                    .tick_format("%m/%Y"),
            )
            .y_axis(money_axis("revenue (R$)")),
    );
    plot
}

fn strings(df: &DataFrame, column: &str) -> Result<Vec<String>> {
    Ok(df
        .column(column)
        .and_then(|c| c.cast(&DataType::String))
        .map_err(DataError::polars(T, "reading labels"))?
        .str()
        .map_err(DataError::polars(T, "reading labels"))?
        .iter()
        .map(|s| s.unwrap_or("(unknown)").to_string())
        .collect())
}

fn floats(df: &DataFrame, column: &str) -> Result<Vec<f64>> {
    Ok(df
        .column(column)
        .and_then(|c| c.cast(&DataType::Float64))
        .map_err(DataError::polars(T, "reading values"))?
        .f64()
        .map_err(DataError::polars(T, "reading values"))?
        .iter()
        .map(|v| v.unwrap_or(0.0))
        .collect())
}

/// Horizontal bars of revenue per value of a breakdown (the output of
/// [`crate::kpi::breakdown`]), largest on top.
pub fn revenue_by(breakdown: &DataFrame, dimension: &str, title: &str) -> Result<Plot> {
    let mut names = strings(breakdown, dimension)?;
    let mut rev = floats(breakdown, "revenue")?;
    names.reverse();
    rev.reverse();
    let text: Vec<String> = rev.iter().map(|v| locale::brl(*v)).collect();
    let mut plot = Plot::new();
    plot.add_trace(
        Bar::new(rev, names)
            .orientation(plotly::common::Orientation::Horizontal)
            .text_array(text)
            .marker(Marker::new().color(BLUE))
            .name("revenue"),
    );
    plot.set_layout(
        base_layout(title)
            .x_axis(money_axis("revenue (R$)"))
            .y_axis(
                Axis::new()
                    .title(Title::with_text(dimension))
                    .auto_margin(true),
            )
            .height(160 + 28 * breakdown.height()),
    );
    Ok(plot)
}

/// A histogram of equal-width bins.
#[derive(Clone, Debug)]
pub struct Histogram {
    pub edges: Vec<f64>,
    pub counts: Vec<u64>,
}

/// Bin `values` into `bins` equal-width bins between `lo` and `hi`
/// (values outside are clamped into the end bins).
pub fn histogram(values: &[f64], bins: usize, lo: f64, hi: f64) -> Histogram {
    let bins = bins.max(1);
    let width = if hi > lo {
        (hi - lo) / bins as f64
    } else {
        1.0
    };
    let mut counts = vec![0u64; bins];
    for v in values.iter().filter(|v| v.is_finite()) {
        let i = (((v - lo) / width).floor().max(0.0) as usize).min(bins - 1);
        counts[i] += 1;
    }
    Histogram {
        edges: (0..=bins).map(|i| lo + width * i as f64).collect(),
        counts,
    }
}

/// Range shown for a skewed distribution: up to the larger of the upper
/// fence and the 99th percentile, so a few extremes do not flatten it.
fn view_range(values: &[f64], o: &Outliers) -> (f64, f64) {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    let lo = v
        .first()
        .copied()
        .unwrap_or(0.0)
        .min(o.lower_fence.max(0.0));
    let p99 = crate::explore::quantile(&v, 0.99);
    (lo, p99.max(o.upper_fence) * 1.05)
}

/// Distribution of a money column with its IQR fences marked.
pub fn distribution_with_fences(
    values: &[f64],
    outliers: &Outliers,
    title: &str,
    unit: &str,
) -> Plot {
    let (lo, hi) = view_range(values, outliers);
    let h = histogram(values, 60, lo, hi);
    let centres: Vec<f64> = h.edges.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect();
    let top = h.counts.iter().copied().max().unwrap_or(1) as f64;
    let mut plot = Plot::new();
    plot.add_trace(
        Bar::new(centres, h.counts.clone())
            .name("count")
            .marker(Marker::new().color(BLUE)),
    );
    for (name, x) in [
        ("lower fence", outliers.lower_fence),
        ("upper fence", outliers.upper_fence),
    ] {
        if x >= lo && x <= hi {
            plot.add_trace(
                Scatter::new(vec![x, x], vec![0.0, top])
                    .mode(Mode::Lines)
                    .name(format!("{name} {}", locale::brl(x)))
                    .marker(Marker::new().color(ORANGE)),
            );
        }
    }
    plot.set_layout(
        base_layout(title)
            .x_axis(
                Axis::new()
                    .title(Title::with_text(unit))
                    .tick_prefix("R$ ")
                    .tick_format(",.0f"),
            )
            .y_axis(Axis::new().title(Title::with_text("count"))),
    );
    plot
}

/// Cohort retention heatmap from [`crate::kpi::cohort_retention`]: rows are
/// first-purchase cohorts, columns months since, cells the retained share.
pub fn cohort_heatmap(cohorts: &DataFrame, title: &str) -> Result<Plot> {
    let names = strings(cohorts, "cohort")?;
    let offsets = floats(cohorts, "offset")?;
    let share = floats(cohorts, "retention")?;
    let mut order: Vec<String> = names.clone();
    order.dedup();
    let max_offset = offsets.iter().copied().fold(0.0, f64::max) as usize;
    let mut z = vec![vec![None::<f64>; max_offset + 1]; order.len()];
    for ((n, o), s) in names.iter().zip(&offsets).zip(&share) {
        if let Some(r) = order.iter().position(|c| c == n) {
            z[r][*o as usize] = Some((s * 1000.0).round() / 10.0);
        }
    }
    // Oldest cohort on top: a category axis draws its first value at the bottom.
    let y: Vec<String> = order.iter().rev().map(|c| locale::month(c)).collect();
    z.reverse();
    let x: Vec<usize> = (0..=max_offset).collect();
    let mut plot = Plot::new();
    plot.add_trace(
        HeatMap::new(x, y, z)
            .color_scale(plotly::common::ColorScale::Palette(
                plotly::common::ColorScalePalette::Blues,
            ))
            .reverse_scale(true)
            .hover_template("cohort %{y}, month +%{x}: %{z:.1f}%<extra></extra>"),
    );
    plot.set_layout(
        base_layout(title)
            .height(200 + 16 * order.len())
            .x_axis(Axis::new().title(Title::with_text("months since first purchase")))
            .y_axis(
                Axis::new()
                    .title(Title::with_text("cohort (first purchase)"))
                    .type_(plotly::layout::AxisType::Category),
            ),
    );
    Ok(plot)
}

/// Revenue by state as bubbles at each state's capital on longitude and
/// latitude axes (no base map tiles: it renders offline).
pub fn state_bubble_map(by_state: &DataFrame, title: &str) -> Result<Plot> {
    let names = strings(by_state, "state")?;
    let rev = floats(by_state, "revenue")?;
    let max = rev.iter().copied().fold(0.0, f64::max).max(1.0);
    let (mut lon, mut lat, mut size, mut text, mut label) =
        (vec![], vec![], vec![], vec![], vec![]);
    for (uf, r) in names.iter().zip(&rev) {
        if let Some(s) = geo::state(uf) {
            lon.push(s.longitude);
            lat.push(s.latitude);
            size.push((8.0 + 52.0 * (r / max).sqrt()) as usize);
            text.push(format!("{} ({}): {}", s.name, s.uf, locale::brl(*r)));
            label.push(s.uf.to_string());
        }
    }
    let mut plot = Plot::new();
    plot.add_trace(
        Scatter::new(lon, lat)
            .mode(Mode::MarkersText)
            .text_array(label)
            .hover_text_array(text)
            .hover_info(plotly::common::HoverInfo::Text)
            .marker(Marker::new().size_array(size).color(BLUE).opacity(0.6))
            .name("revenue"),
    );
    plot.set_layout(
        base_layout(title)
            .height(560)
            .x_axis(
                Axis::new()
                    .title(Title::with_text("longitude (°)"))
                    .range(vec![-75.0, -33.0]),
            )
            .y_axis(
                Axis::new()
                    .title(Title::with_text("latitude (°)"))
                    .range(vec![-34.5, 6.0])
                    .scale_anchor("x"),
            ),
    );
    Ok(plot)
}

/// Horizontal bars of any labelled values (e.g. RMSE per model, importance
/// per feature), in the given order from the top. `money` puts R$ on the axis.
pub fn bar_chart(
    labels: &[String],
    values: &[f64],
    title: &str,
    value_axis: &str,
    money: bool,
) -> Plot {
    let mut labels = labels.to_vec();
    let mut values = values.to_vec();
    labels.reverse();
    values.reverse();
    let text: Vec<String> = values
        .iter()
        .map(|v| {
            if money {
                locale::brl(*v)
            } else {
                locale::number(*v, 3)
            }
        })
        .collect();
    let n = labels.len();
    let mut plot = Plot::new();
    plot.add_trace(
        Bar::new(values, labels)
            .orientation(plotly::common::Orientation::Horizontal)
            .text_array(text)
            .marker(Marker::new().color(BLUE)),
    );
    let axis = if money {
        money_axis(value_axis)
    } else {
        Axis::new().title(Title::with_text(value_axis))
    };
    plot.set_layout(
        base_layout(title)
            .x_axis(axis)
            .y_axis(Axis::new().auto_margin(true))
            .height(160 + 28 * n),
    );
    plot
}

/// Predicted against actual values (money), with the diagonal of a perfect
/// prediction.
pub fn actual_vs_predicted(actual: &[f64], predicted: &[f64], title: &str) -> Plot {
    let hi = actual
        .iter()
        .chain(predicted)
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let mut plot = Plot::new();
    plot.add_trace(
        Scatter::new(predicted.to_vec(), actual.to_vec())
            .mode(Mode::Markers)
            .name("customers")
            .marker(Marker::new().color(BLUE).opacity(0.35).size(5)),
    );
    plot.add_trace(
        Scatter::new(vec![0.0, hi], vec![0.0, hi])
            .mode(Mode::Lines)
            .name("perfect prediction")
            .marker(Marker::new().color(ORANGE)),
    );
    plot.set_layout(
        base_layout(title)
            .x_axis(money_axis("predicted 90-day spend (R$)"))
            .y_axis(money_axis("actual 90-day spend (R$)")),
    );
    plot
}

// ---------------------------------------------------------------------------
// Static SVG figures (plotters).

fn svg_error(e: impl std::fmt::Display) -> DataError {
    DataError::InvalidArgument {
        name: "chart",
        expected: "data that can be drawn".into(),
        found: e.to_string(),
    }
}

/// Monthly revenue as a static SVG line chart.
pub fn revenue_over_time_svg(monthly: &BTreeMap<String, f64>, title: &str) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 380)).into_drawing_area();
        root.fill(&WHITE).map_err(svg_error)?;
        let n = monthly.len().max(1);
        let labels: Vec<&String> = monthly.keys().collect();
        let max = monthly.values().copied().fold(0.0, f64::max).max(1.0) * 1.1;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(110)
            .build_cartesian_2d(0..n, 0.0..max)
            .map_err(svg_error)?;
        chart
            .configure_mesh()
            .x_labels(12.min(n))
            .x_label_formatter(&|i| labels.get(*i).map(|m| locale::month(m)).unwrap_or_default())
            .y_label_formatter(&|v| locale::brl(*v))
            .y_desc("revenue (R$)")
            .x_desc("month")
            .draw()
            .map_err(svg_error)?;
        chart
            .draw_series(LineSeries::new(
                monthly.values().enumerate().map(|(i, v)| (i, *v)),
                RGBColor(31, 78, 121).stroke_width(2),
            ))
            .map_err(svg_error)?;
        root.present().map_err(svg_error)?;
    }
    Ok(svg)
}

/// Revenue per breakdown value as static SVG horizontal bars.
pub fn revenue_by_svg(breakdown: &DataFrame, dimension: &str, title: &str) -> Result<String> {
    let names = strings(breakdown, dimension)?;
    let rev = floats(breakdown, "revenue")?;
    let n = names.len().max(1);
    let max = rev.iter().copied().fold(0.0, f64::max).max(1.0) * 1.15;
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (900, (90 + 26 * n) as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(svg_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(150)
            .build_cartesian_2d(0.0..max, (0..n).into_segmented())
            .map_err(svg_error)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_label_formatter(&|v| locale::brl(*v))
            .y_label_formatter(&|seg| match seg {
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                    names.get(*i).cloned().unwrap_or_default()
                }
                SegmentValue::Last => String::new(),
            })
            .y_labels(n)
            .x_desc("revenue (R$)")
            .draw()
            .map_err(svg_error)?;
        chart
            .draw_series(rev.iter().enumerate().map(|(i, v)| {
                let mut bar = Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(i)),
                        (*v, SegmentValue::Exact(i + 1)),
                    ],
                    RGBColor(31, 78, 121).filled(),
                );
                bar.set_margin(3, 3, 0, 0);
                bar
            }))
            .map_err(svg_error)?;
        root.present().map_err(svg_error)?;
    }
    Ok(svg)
}

/// A distribution with its IQR fences as a static SVG histogram.
pub fn distribution_svg(
    values: &[f64],
    outliers: &Outliers,
    title: &str,
    unit: &str,
) -> Result<String> {
    let (lo, hi) = view_range(values, outliers);
    let h = histogram(values, 60, lo, hi);
    let top = h.counts.iter().copied().max().unwrap_or(1) as f64 * 1.1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 380)).into_drawing_area();
        root.fill(&WHITE).map_err(svg_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(lo..hi, 0.0..top)
            .map_err(svg_error)?;
        chart
            .configure_mesh()
            .x_label_formatter(&|v| locale::brl(*v))
            .x_desc(unit)
            .y_desc("count")
            .draw()
            .map_err(svg_error)?;
        chart
            .draw_series(h.edges.windows(2).zip(&h.counts).map(|(w, c)| {
                Rectangle::new(
                    [(w[0], 0.0), (w[1], *c as f64)],
                    RGBColor(31, 78, 121).filled(),
                )
            }))
            .map_err(svg_error)?;
        for x in [outliers.lower_fence, outliers.upper_fence] {
            if x >= lo && x <= hi {
                chart
                    .draw_series(LineSeries::new(
                        vec![(x, 0.0), (x, top)],
                        RGBColor(224, 123, 36).stroke_width(2),
                    ))
                    .map_err(svg_error)?
                    .label(format!("IQR fence {}", locale::brl(x)));
            }
        }
        root.present().map_err(svg_error)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_counts_every_value_once() {
        let h = histogram(&[0.0, 0.5, 1.0, 9.9, 10.0, 50.0, f64::NAN], 10, 0.0, 10.0);
        assert_eq!(h.counts.iter().sum::<u64>(), 6);
        assert_eq!(h.counts[0], 2);
        assert_eq!(h.counts[9], 3, "10.0 and 50.0 clamp into the last bin");
        assert_eq!(h.edges.len(), 11);
    }

    #[test]
    fn plotly_js_is_one_local_script() {
        let js = plotly_js();
        assert!(js.starts_with("<script"));
        assert_eq!(js.matches("<script").count(), 1);
        assert!(!js.contains("<script src="));
        assert!(js.len() > 1_000_000, "plotly.js is embedded, not linked");
    }
}
