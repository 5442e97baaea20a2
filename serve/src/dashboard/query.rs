//! Reading the dashboard's query string into a [`Selection`], field by
//! field, with the API's error shape for anything that is not accepted.

use analytics_lib::dashboard::Comparison;
use chrono::NaiveDate;

use crate::error::ErrorBody;

use super::DashboardData;

/// How far outside the data's first and last day a period may reach: a
/// year (a whole-year view, its comparison, the forecast's months), so that
/// the work of one request stays bounded by the data, not by the dates
/// chrono can hold.
pub const DATE_MARGIN_DAYS: i64 = 366;

/// The parameters `GET /api/dashboard` accepts (and every dashboard route).
pub const PARAMETERS: [&str; 7] = [
    "from", "to", "category", "segment", "state", "channel", "compare",
];

/// A checked filter: period, scope lists, at most one segment, and the
/// period the figures are compared with.
#[derive(Clone, Debug, PartialEq)]
pub struct Selection {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub categories: Vec<String>,
    pub states: Vec<String>,
    pub channels: Vec<String>,
    /// Segment id of the live segment model.
    pub segment: Option<usize>,
    pub compare: Comparison,
    /// True when `compare` was asked for; false when it is the period's
    /// default ([`Comparison::default_for`]).
    pub compare_asked: bool,
    /// The comparison period.
    pub compare_from: NaiveDate,
    pub compare_to: NaiveDate,
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
/// empty value means "all"; `compare` is `previous` or `yoy` (default:
/// year over year for whole months and a whole year, else previous).
/// Values are taken as they are (no trimming, no case folding): what the
/// OpenAPI document lists is what is accepted.
pub fn parse(pairs: &[(String, String)], data: &DashboardData) -> Result<Selection, ErrorBody> {
    parse_with(pairs, data, &[]).map(|(sel, _)| sel)
}

/// A route's own parameters (name, value as given), in order.
pub type Extras<'a> = Vec<(&'a str, &'a str)>;

/// [`parse`] for a route that also takes the parameters `extra`: they are
/// returned (name, value as given), in order, for the route to check.
pub fn parse_with<'a>(
    pairs: &'a [(String, String)],
    data: &DashboardData,
    extra: &[&str],
) -> Result<(Selection, Extras<'a>), ErrorBody> {
    let mut from = None;
    let mut to = None;
    let mut compare = None;
    let mut rest = Vec::new();
    let (mut categories, mut states, mut channels, mut segment) =
        (Vec::new(), Vec::new(), Vec::new(), None);
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
                categories.push(one_of("category", v, &data.options.categories)?)
            }
            "state" if !v.is_empty() => states.push(one_of("state", v, &data.options.state_codes)?),
            "channel" if !v.is_empty() => {
                channels.push(one_of("channel", v, &data.options.channels)?)
            }
            "segment" if !v.is_empty() => {
                if segment.is_some() {
                    return Err(ErrorBody::new("`segment` given twice")
                        .field("segment")
                        .expected("at most one segment id")
                        .found(format!("a second value \"{}\"", short(v))));
                }
                segment = Some(parse_segment(v, data)?);
            }
            "compare" if !v.is_empty() => {
                if compare.is_some() {
                    return Err(ErrorBody::new("`compare` given twice")
                        .field("compare")
                        .expected("at most one of previous, yoy")
                        .found(format!("a second value \"{}\"", short(v))));
                }
                compare = Some(Comparison::parse(v).ok_or_else(|| {
                    ErrorBody::new("unknown comparison")
                        .field("compare")
                        .expected(format!(
                            "one of {} (the previous period of the same length, or the same \
                             period a year earlier)",
                            Comparison::NAMES.join(", ")
                        ))
                        .found(format!("\"{}\"", short(v)))
                })?);
            }
            "category" | "state" | "channel" | "segment" | "compare" => {}
            other if extra.contains(&other) => rest.push((other, v)),
            other => {
                let mut known = PARAMETERS.to_vec();
                known.extend_from_slice(extra);
                return Err(ErrorBody::new("unknown query parameter")
                    .field(short(other))
                    .expected(format!("only {}", known.join(", ")))
                    .found(format!("\"{}\"", short(other))));
            }
        }
    }
    let mut from = from.unwrap_or(data.options.default_from);
    let mut to = to.unwrap_or(data.options.default_to);
    let (lo, hi) = date_bounds(data.options.min_date, data.options.max_date);
    for (field, d) in [("from", from), ("to", to)] {
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
    if from > to {
        std::mem::swap(&mut from, &mut to);
    }
    let mut sel = Selection {
        from,
        to,
        categories,
        states,
        channels,
        segment,
        compare: compare.unwrap_or_else(|| Comparison::default_for(from, to)),
        compare_asked: compare.is_some(),
        compare_from: from,
        compare_to: to,
    };
    // Within a year of the data, so always a date chrono holds.
    let Some((cf, ct)) = sel.compare.period(sel.from, sel.to) else {
        return Err(
            ErrorBody::new("the comparison period is outside the calendar")
                .field("compare")
                .expected("a period whose comparison is a valid date")
                .found(format!("{} to {}", sel.from, sel.to)),
        );
    };
    (sel.compare_from, sel.compare_to) = (cf, ct);
    sel.categories.sort();
    sel.categories.dedup();
    sel.states.sort();
    sel.states.dedup();
    sel.channels.sort();
    sel.channels.dedup();
    Ok((sel, rest))
}

/// At most one value of a route parameter: the last one of `rest` named
/// `name`, or an error when it is given twice.
pub fn single<'a>(rest: &[(&str, &'a str)], name: &str) -> Result<Option<&'a str>, ErrorBody> {
    let mut found = rest.iter().filter(|(k, v)| *k == name && !v.is_empty());
    let first = found.next().map(|(_, v)| *v);
    if let Some((_, v)) = found.next() {
        return Err(ErrorBody::new(format!("`{name}` given twice"))
            .field(name)
            .expected("at most one value")
            .found(format!("a second value \"{}\"", short(v))));
    }
    Ok(first)
}

/// A route parameter that takes one of `names`.
pub fn choice<'a>(name: &str, value: &str, names: &[&'a str]) -> Result<&'a str, ErrorBody> {
    names.iter().copied().find(|n| *n == value).ok_or_else(|| {
        ErrorBody::new(format!("unknown {name}"))
            .field(name)
            .expected(format!("one of {}", names.join(", ")))
            .found(format!("\"{}\"", short(value)))
    })
}

/// A whole number in `min..=max` for the route parameter `name`.
pub fn number_in(name: &str, value: &str, min: u64, max: u64) -> Result<u64, ErrorBody> {
    match value.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ErrorBody::new(format!("`{name}` is out of range"))
            .field(name)
            .expected(format!("a whole number from {min} to {max}"))
            .found(format!("\"{}\"", short(value)))),
    }
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
