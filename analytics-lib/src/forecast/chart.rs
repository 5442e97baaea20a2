//! The forecast chart: actuals, backtest, forecast and its interval (plotly).

use super::*;

// ---------------------------------------------------------------------------
// The chart.

pub(super) const BLUE: &str = "#1f4e79";
pub(super) const ORANGE: &str = "#e07b24";
pub(super) const GREY: &str = "#7f7f7f";
pub(super) const GREEN: &str = "#2e7d32";
pub(super) const GREEN_BAND: &str = "rgba(46, 125, 50, 0.18)";
pub(super) const HELD_OUT: &str = "rgba(127, 127, 127, 0.15)";

pub(super) fn hover(month: &str, what: &str, v: f64) -> String {
    format!("{}: {what} {}", locale::month(month), locale::brl(v))
}

pub(super) fn first_day(ym: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(&month_start(ym), "%Y-%m-%d").ok()
}

/// Actuals, the backtest's one-step forecasts over the shaded held-out
/// months, the seasonal-naive baseline, and the forecast with its interval
/// band; money axis in R$ with Brazilian separators.
pub fn forecast_chart(report: &ForecastReport) -> Plot {
    let mut plot = Plot::new();
    let xs = |ms: &mut dyn Iterator<Item = &String>| ms.map(|m| month_start(m)).collect::<Vec<_>>();

    let h = &report.history;
    plot.add_trace(
        Scatter::new(
            xs(&mut h.iter().map(|m| &m.month)),
            h.iter().map(|m| m.revenue).collect(),
        )
        .mode(Mode::LinesMarkers)
        .name("actual revenue")
        .text_array(
            h.iter()
                .map(|m| hover(&m.month, "actual", m.revenue))
                .collect(),
        )
        .hover_info(HoverInfo::Text)
        .marker(Marker::new().color(BLUE))
        .line(Line::new().color(BLUE)),
    );

    let bt = &match (&report.method, &report.holt_winters) {
        (ForecastMethod::HoltWinters, Some(b)) => b,
        _ => &report.backtest,
    }
    .months;
    plot.add_trace(
        Scatter::new(
            xs(&mut bt.iter().map(|m| &m.month)),
            bt.iter().map(|m| m.forecast).collect(),
        )
        .mode(Mode::LinesMarkers)
        .name("backtest forecast (held out, 1 month ahead)")
        .text_array(
            bt.iter()
                .map(|m| hover(&m.month, "backtest forecast", m.forecast))
                .collect(),
        )
        .hover_info(HoverInfo::Text)
        .marker(Marker::new().color(ORANGE))
        .line(Line::new().color(ORANGE).dash(DashType::Dash)),
    );
    plot.add_trace(
        Scatter::new(
            xs(&mut bt.iter().map(|m| &m.month)),
            bt.iter().map(|m| m.baseline).collect(),
        )
        .mode(Mode::LinesMarkers)
        .name("seasonal naive (same month last year)")
        .text_array(
            bt.iter()
                .map(|m| hover(&m.month, "seasonal naive", m.baseline))
                .collect(),
        )
        .hover_info(HoverInfo::Text)
        .marker(Marker::new().color(GREY))
        .line(Line::new().color(GREY).dash(DashType::Dot)),
    );

    let fc = &report.forecast;
    // The band: the upper edge (invisible), then the lower edge filled up to it.
    plot.add_trace(
        Scatter::new(
            xs(&mut fc.iter().map(|p| &p.month)),
            fc.iter().map(|p| p.upper).collect(),
        )
        .mode(Mode::Lines)
        .name("interval upper")
        .show_legend(false)
        .text_array(
            fc.iter()
                .map(|p| hover(&p.month, "upper bound", p.upper))
                .collect(),
        )
        .hover_info(HoverInfo::Text)
        .line(Line::new().color(GREEN_BAND).width(0.0)),
    );
    plot.add_trace(
        Scatter::new(
            xs(&mut fc.iter().map(|p| &p.month)),
            fc.iter().map(|p| p.lower).collect(),
        )
        .mode(Mode::Lines)
        .name(format!(
            "forecast interval (±{}·RMSE·√step)",
            report.interval.z
        ))
        .fill(Fill::ToNextY)
        .fill_color(GREEN_BAND)
        .text_array(
            fc.iter()
                .map(|p| hover(&p.month, "lower bound", p.lower))
                .collect(),
        )
        .hover_info(HoverInfo::Text)
        .line(Line::new().color(GREEN_BAND).width(0.0)),
    );
    // The forecast line starts at the last actual month, to read as a continuation.
    let mut fx = Vec::new();
    let mut fy = Vec::new();
    let mut ft = Vec::new();
    if let Some(last) = h.last() {
        fx.push(month_start(&last.month));
        fy.push(last.revenue);
        ft.push(hover(&last.month, "actual", last.revenue));
    }
    for p in fc {
        fx.push(month_start(&p.month));
        fy.push(p.forecast);
        ft.push(format!(
            "{} ({} – {})",
            hover(&p.month, "forecast", p.forecast),
            locale::brl(p.lower),
            locale::brl(p.upper)
        ));
    }
    plot.add_trace(
        Scatter::new(fx, fy)
            .mode(Mode::LinesMarkers)
            .name("forecast")
            .text_array(ft)
            .hover_info(HoverInfo::Text)
            .marker(Marker::new().color(GREEN))
            .line(Line::new().color(GREEN).dash(DashType::Dash)),
    );

    // Shade the held-out months (half a month either side of their points).
    let mut shapes = Vec::new();
    if let (Some(a), Some(b)) = (
        bt.first().and_then(|m| first_day(&m.month)),
        bt.last().and_then(|m| first_day(&m.month)),
    ) {
        shapes.push(
            Shape::new()
                .shape_type(ShapeType::Rect)
                .x_ref("x")
                .y_ref("paper")
                .x0((a - Duration::days(15)).format("%Y-%m-%d").to_string())
                .x1((b + Duration::days(15)).format("%Y-%m-%d").to_string())
                .y0(0.0)
                .y1(1.0)
                .fill_color(HELD_OUT)
                .layer(ShapeLayer::Below)
                .line(ShapeLine::new().width(0.0)),
        );
    }

    let s = match (&report.method, &report.holt_winters) {
        (ForecastMethod::HoltWinters, Some(b)) => b,
        _ => &report.backtest,
    };
    let num = |m: Option<f64>| {
        m.map(|v| locale::number(v, 2))
            .unwrap_or_else(|| "n/a".into())
    };
    let method = match report.method {
        ForecastMethod::Regression => format!("{} regression", report.model),
        ForecastMethod::HoltWinters => "Holt-Winters".to_string(),
    };
    let title = format!(
        "Monthly revenue forecast ({method}) — backtest MASE {} vs seasonal naive {}, interval coverage {}",
        num(s.mase),
        num(s.baseline_mase),
        s.coverage
            .map(locale::percent)
            .unwrap_or_else(|| "n/a".into())
    );
    plot.set_layout(
        Layout::new()
            .title(Title::with_text(title))
            .separators(",.")
            .height(420)
            .margin(Margin::new().left(110).right(30).top(60).bottom(60))
            .shapes(shapes)
            .x_axis(
                Axis::new()
                    .title(Title::with_text("month (shaded: held-out backtest months)"))
                    .tick_format("%m/%Y"),
            )
            .y_axis(
                Axis::new()
                    .title(Title::with_text("revenue (R$)"))
                    .tick_prefix("R$ ")
                    .tick_format(",.0f"),
            ),
    );
    plot
}
