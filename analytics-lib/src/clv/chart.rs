//! The holdout chart: expected against actual purchases in the holdout
//! period, by repeat purchases in the calibration period (as lifetimes'
//! `plot_calibration_purchases_vs_holdout_purchases`).

use plotly::common::{HoverInfo, Line, Marker, Mode, Title};
use plotly::layout::{Axis, Layout, Margin};
use plotly::{Bar, Plot, Scatter};

use super::algorithm::HoldoutCheck;
use crate::locale;

/// Mean purchase days per customer in the holdout period, predicted (line)
/// and observed (bars), for each number of repeat purchase days in the
/// calibration period; the last group is open-ended (`7+`).
pub fn holdout_chart(check: &HoldoutCheck) -> Plot {
    let labels: Vec<String> = check
        .rows
        .iter()
        .map(|r| {
            if r.and_more {
                format!("{}+", r.frequency)
            } else {
                r.frequency.to_string()
            }
        })
        .collect();
    let text = |what: &str, pick: fn(&super::HoldoutRow) -> f64| -> Vec<String> {
        check
            .rows
            .iter()
            .zip(&labels)
            .map(|(r, l)| {
                format!(
                    "{l} repeat days before {}: {what} {} purchase days per customer ({} customers)",
                    locale::date(check.calibration_end),
                    locale::number(pick(r), 2),
                    locale::number(r.customers as f64, 0)
                )
            })
            .collect()
    };
    let (actual_text, expected_text) = (
        text("actual", |r| r.actual),
        text("expected", |r| r.expected),
    );
    let mut plot = Plot::new();
    plot.add_trace(
        Bar::new(
            labels.clone(),
            check.rows.iter().map(|r| r.actual).collect(),
        )
        .name("actual")
        .text_array(actual_text)
        .hover_info(HoverInfo::Text)
        .marker(Marker::new().color("#1f4e79")),
    );
    plot.add_trace(
        Scatter::new(labels, check.rows.iter().map(|r| r.expected).collect())
            .mode(Mode::LinesMarkers)
            .name("expected (BG/NBD)")
            .text_array(expected_text)
            .hover_info(HoverInfo::Text)
            .marker(Marker::new().color("#e07b24"))
            .line(Line::new().color("#e07b24")),
    );
    let days = (check.holdout_end - check.calibration_end).num_days();
    plot.set_layout(
        Layout::new()
            .title(Title::with_text(format!(
                "Holdout check: purchase days in the {days} days from {}, expected vs actual",
                locale::date(check.calibration_end)
            )))
            .separators(",.")
            .height(420)
            .margin(Margin::new().left(80).right(30).top(60).bottom(60))
            .x_axis(Axis::new().title(Title::with_text(
                "repeat purchase days in the calibration period",
            )))
            .y_axis(Axis::new().title(Title::with_text(
                "mean purchase days per customer in the holdout",
            ))),
    );
    plot
}
