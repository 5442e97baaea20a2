//! Display helpers for notebooks on the evcxr Jupyter kernel.
//!
//! evcxr shows rich output printed between `EVCXR_BEGIN_CONTENT <mime>` and
//! `EVCXR_END_CONTENT`, but keeps only the last block of each MIME type per
//! cell. So a cell collects its prose, charts and tables in one [`Cell`],
//! which prints a single HTML block when it goes out of scope:
//!
//! ```no_run
//! # use analytics_lib::notebook;
//! {
//!     let mut cell = notebook::Cell::new();
//!     cell.say("Revenue grew <b>12%</b>.");
//!     // cell.chart(&plot); cell.table(&df, &[], 10);
//! } // printed here
//! ```
//!
//! The HTML survives nbconvert's export and works offline: call [`init`]
//! once (it embeds plotly.js) before the first chart. Prose with computed
//! numbers goes through [`Cell::say`], so no number in a report is typed by
//! hand.

use std::sync::atomic::{AtomicUsize, Ordering};

use plotly::Plot;
use polars::prelude::*;

use crate::charts;
use crate::locale;

static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

fn emit(mime: &str, content: &str) {
    println!("EVCXR_BEGIN_CONTENT {mime}\n{content}\nEVCXR_END_CONTENT");
}

/// A page-unique element id. evcxr reloads the library for every cell, so a
/// counter alone would repeat: the clock makes it unique across cells.
fn unique_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "chart-{nanos:x}-{}",
        NEXT_ID.fetch_add(1, Ordering::Relaxed)
    )
}

/// Embed plotly.js in the notebook (once, before the first chart).
pub fn init() {
    emit("text/html", &charts::plotly_js());
}

/// The output of one notebook cell, printed as one HTML block on drop.
#[derive(Default)]
pub struct Cell {
    html: String,
}

impl Cell {
    pub fn new() -> Self {
        Cell::default()
    }

    /// A paragraph of prose (HTML allowed) whose numbers the cell computed.
    pub fn say(&mut self, html: &str) -> &mut Self {
        self.html.push_str(&format!("<p>{html}</p>\n"));
        self
    }

    /// An interactive plotly chart.
    pub fn chart(&mut self, plot: &Plot) -> &mut Self {
        self.html.push_str(&plot.to_inline_html(Some(&unique_id())));
        self.html.push('\n');
        self
    }

    /// A static SVG figure, inline.
    pub fn svg(&mut self, svg: &str) -> &mut Self {
        self.html
            .push_str(&format!("<div class=\"figure\">{svg}</div>\n"));
        self
    }

    /// A frame as a table, formatted the Brazilian way (see [`table_html`]).
    pub fn table(
        &mut self,
        df: &DataFrame,
        formats: &[(&str, Format)],
        max_rows: usize,
    ) -> &mut Self {
        self.html.push_str(&table_html(df, formats, max_rows));
        self
    }

    /// Raw HTML.
    pub fn html(&mut self, html: &str) -> &mut Self {
        self.html.push_str(html);
        self
    }

    /// Print now (also done on drop).
    pub fn flush(&mut self) {
        if !self.html.is_empty() {
            emit("text/html", &std::mem::take(&mut self.html));
        }
    }
}

impl Drop for Cell {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Show one interactive chart as a cell's only output.
pub fn show(plot: &Plot) {
    Cell::new().chart(plot);
}

/// Show one paragraph as a cell's only output.
pub fn say(html: &str) {
    Cell::new().say(html);
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// How a table column is formatted.
#[derive(Clone, Copy, Debug)]
pub enum Format {
    Text,
    Integer,
    Decimal,
    Money,
    Percent,
}

/// Render a frame as an HTML table, formatting the named columns the
/// Brazilian way (others: integers grouped, floats with 2 decimals).
pub fn table_html(df: &DataFrame, formats: &[(&str, Format)], max_rows: usize) -> String {
    let mut html = String::from("<table><thead><tr>");
    for name in df.get_column_names() {
        html.push_str(&format!("<th>{}</th>", escape(name)));
    }
    html.push_str("</tr></thead><tbody>");
    for i in 0..df.height().min(max_rows) {
        html.push_str("<tr>");
        for c in df.columns() {
            let fmt = formats
                .iter()
                .find(|(n, _)| *n == c.name().as_str())
                .map(|(_, f)| *f)
                .unwrap_or(if c.dtype().is_float() {
                    Format::Decimal
                } else if c.dtype().is_integer() {
                    Format::Integer
                } else {
                    Format::Text
                });
            let v = c.get(i).ok();
            let as_f64 = v.as_ref().and_then(|v| v.extract::<f64>());
            let cell = match (fmt, as_f64) {
                (Format::Money, Some(x)) => locale::brl(x),
                (Format::Percent, Some(x)) => locale::percent(x),
                (Format::Decimal, Some(x)) => locale::number(x, 2),
                (Format::Integer, Some(x)) => locale::number(x, 0),
                _ => match v {
                    Some(AnyValue::Null) | None => "—".to_string(),
                    Some(AnyValue::Date(days)) => {
                        chrono::NaiveDate::from_num_days_from_ce_opt(days + 719_163)
                            .map(locale::date)
                            .unwrap_or_else(|| days.to_string())
                    }
                    Some(AnyValue::String(s)) => s.to_string(),
                    Some(other) => other.to_string(),
                },
            };
            let align = if matches!(fmt, Format::Text) {
                "left"
            } else {
                "right"
            };
            html.push_str(&format!(
                "<td style=\"text-align:{align}\">{}</td>",
                escape(&cell)
            ));
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table>");
    if df.height() > max_rows {
        html.push_str(&format!(
            "<p><em>{} of {} rows shown</em></p>",
            max_rows,
            df.height()
        ));
    }
    html
}

/// Show a frame as a cell's only output.
pub fn table(df: &DataFrame, formats: &[(&str, Format)], max_rows: usize) {
    Cell::new().table(df, formats, max_rows);
}
