//! Reading the dashboard's query string into a [`Selection`], field by
//! field, with the API's error shape for anything that is not accepted.

use chrono::NaiveDate;

use crate::error::ErrorBody;

use super::DashboardData;

/// How far outside the data's first and last day a period may reach: a
/// year (a whole-year view, its comparison, the forecast's months), so that
/// the work of one request stays bounded by the data, not by the dates
/// chrono can hold.
pub const DATE_MARGIN_DAYS: i64 = 366;

/// The parameters `GET /api/dashboard` accepts.
pub const PARAMETERS: [&str; 6] = ["from", "to", "category", "segment", "state", "channel"];

/// A checked filter: period, scope lists and at most one segment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selection {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub categories: Vec<String>,
    pub states: Vec<String>,
    pub channels: Vec<String>,
    /// Segment id of the live segment model.
    pub segment: Option<usize>,
}

fn parse_date(field: &str, value: &str) -> Result<NaiveDate, ErrorBody> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| {
        ErrorBody::new(format!("`{field}` is not a date"))
            .field(field)
            .expected("a date as YYYY-MM-DD, e.g. 2024-01-31")
            .found(format!("\"{}\"", short(value)))
    })
}

fn short(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    out
}

fn one_of(field: &str, value: &str, known: &[String]) -> Result<String, ErrorBody> {
    if known.iter().any(|k| k == value) {
        Ok(value.to_string())
    } else {
        let list = if known.len() > 30 {
            format!(
                "one of the {} values of /api/dashboard/options",
                known.len()
            )
        } else {
            format!("one of {}", known.join(", "))
        };
        Err(ErrorBody::new(format!("unknown {field}"))
            .field(field)
            .expected(list)
            .found(format!("\"{}\"", short(value))))
    }
}

/// The first and last day a period may reach: the data's first and last
/// day, ± [`DATE_MARGIN_DAYS`] (`None`: beyond what chrono holds). The
/// OpenAPI document states the same range (`routes/docs.rs`).
pub fn date_bounds(min: NaiveDate, max: NaiveDate) -> (Option<NaiveDate>, Option<NaiveDate>) {
    let margin = chrono::Duration::days(DATE_MARGIN_DAYS);
    (
        min.checked_sub_signed(margin),
        max.checked_add_signed(margin),
    )
}

/// Read `pairs` (the decoded query string, in order). Absent dates default
/// to the data's default period; `from` after `to` is the same period (the
/// two are put in order); `category`, `state` and `channel` repeat; an
/// empty value means "all". Values are taken as they are (no trimming, no
/// case folding): what the OpenAPI document lists is what is accepted.
pub fn parse(pairs: &[(String, String)], data: &DashboardData) -> Result<Selection, ErrorBody> {
    let mut from = None;
    let mut to = None;
    let mut sel = Selection::default();
    for (k, v) in pairs {
        let v = v.as_str();
        match k.as_str() {
            "from" | "to" => {
                if v.is_empty() {
                    continue;
                }
                let slot = if k == "from" { &mut from } else { &mut to };
                if slot.is_some() {
                    return Err(ErrorBody::new(format!("`{k}` given twice"))
                        .field(k.as_str())
                        .expected("at most one value")
                        .found(format!("a second value \"{}\"", short(v))));
                }
                *slot = Some(parse_date(k, v)?);
            }
            "category" if !v.is_empty() => {
                sel.categories
                    .push(one_of("category", v, &data.options.categories)?)
            }
            "state" if !v.is_empty() => {
                sel.states
                    .push(one_of("state", v, &data.options.state_codes)?)
            }
            "channel" if !v.is_empty() => {
                sel.channels
                    .push(one_of("channel", v, &data.options.channels)?)
            }
            "segment" if !v.is_empty() => {
                if sel.segment.is_some() {
                    return Err(ErrorBody::new("`segment` given twice")
                        .field("segment")
                        .expected("at most one segment id")
                        .found(format!("a second value \"{}\"", short(v))));
                }
                sel.segment = Some(parse_segment(v, data)?);
            }
            "category" | "state" | "channel" | "segment" => {}
            other => {
                return Err(ErrorBody::new("unknown query parameter")
                    .field(short(other))
                    .expected(format!("only {}", PARAMETERS.join(", ")))
                    .found(format!("\"{}\"", short(other))));
            }
        }
    }
    sel.from = from.unwrap_or(data.options.default_from);
    sel.to = to.unwrap_or(data.options.default_to);
    let (lo, hi) = date_bounds(data.options.min_date, data.options.max_date);
    for (field, d) in [("from", sel.from), ("to", sel.to)] {
        let inside = lo.is_none_or(|lo| d >= lo) && hi.is_none_or(|hi| d <= hi);
        if !inside {
            return Err(
                ErrorBody::new(format!("`{field}` is outside the data's range"))
                    .field(field)
                    .expected(format!(
                        "a date from {} to {} (the data's {} to {}, ± {DATE_MARGIN_DAYS} days)",
                        lo.unwrap_or(NaiveDate::MIN),
                        hi.unwrap_or(NaiveDate::MAX),
                        data.options.min_date,
                        data.options.max_date
                    ))
                    .found(d.to_string()),
            );
        }
    }
    if sel.from > sel.to {
        std::mem::swap(&mut sel.from, &mut sel.to);
    }
    sel.categories.sort();
    sel.categories.dedup();
    sel.states.sort();
    sel.states.dedup();
    sel.channels.sort();
    sel.channels.dedup();
    Ok(sel)
}

fn parse_segment(v: &str, data: &DashboardData) -> Result<usize, ErrorBody> {
    let Some(seg) = &data.segments.model else {
        return Err(ErrorBody::new(
            "no segment model is live, so there is no segment to filter by",
        )
        .field("segment")
        .expected("no `segment` parameter (train a segment model first)")
        .found(format!("\"{}\"", short(v))));
    };
    let k = seg.names.len();
    match v.parse::<usize>() {
        Ok(id) if id < k => Ok(id),
        _ => Err(ErrorBody::new("unknown segment")
            .field("segment")
            .expected(format!(
                "a segment id in 0..={} ({})",
                k.saturating_sub(1),
                seg.names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| format!("{i} = {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .found(format!("\"{}\"", short(v)))),
    }
}
