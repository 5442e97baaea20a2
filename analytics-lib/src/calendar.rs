//! Calendar months as one number, `12 × year + month − 1` (so that months
//! subtract and index arrays), and their `YYYY-MM` keys: one definition
//! for the KPIs, the forecast and the dashboard.

use chrono::{Datelike, Duration, NaiveDate};

/// The month number of a date.
pub fn month_of(d: NaiveDate) -> i32 {
    d.year() * 12 + d.month0() as i32
}

/// The month number of a day counted from 1970-01-01.
pub fn month_of_day(day: i32) -> i32 {
    month_of(
        NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default() + Duration::days(i64::from(day)),
    )
}

/// `YYYY-MM` of a month number.
pub fn month_key(m: i32) -> String {
    format!("{:04}-{:02}", m.div_euclid(12), m.rem_euclid(12) + 1)
}
