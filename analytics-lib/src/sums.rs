//! Sums that equal polars' to the bit, computed in one pass over plain
//! columns instead of a query: [`Kahan`] (polars' grouped float `sum`) and
//! [`by_month`] (revenue per calendar month).

use std::collections::BTreeMap;

use polars::prelude::{Float64Chunked, Int32Chunked};

use crate::calendar::month_of_day;

/// A running sum with Kahan compensation, updated exactly like polars'
/// `KahanSum` (the grouped `sum` of floats): rows added in row order give
/// the bits polars' group-by gives.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Kahan {
    pub sum: f64,
    err: f64,
}

impl Kahan {
    #[inline]
    pub fn add(&mut self, v: f64) {
        let y = v - self.err;
        let s = self.sum + y;
        let e = (s - self.sum) - y;
        self.sum = s;
        if e.is_finite() {
            self.err = e;
        }
    }
}

/// Days spanned at most by the day → month table (about 1,100 years);
/// beyond it each row's month is computed on its own.
const TABLE_DAYS: i64 = 400_000;

/// The sum of `values` per calendar month of `days` (days since
/// 1970-01-01), keyed by the month number ([`crate::calendar`]): rows without a day are left out,
/// a row without a value still makes its month present (sum 0), as polars'
/// `group_by(month).agg(sum)` does. Kahan sums in row order: the same bits
/// as that query.
pub(crate) fn by_month(days: &Int32Chunked, values: &Float64Chunked) -> BTreeMap<i32, f64> {
    let (lo, hi) = days
        .iter()
        .flatten()
        .fold((i32::MAX, i32::MIN), |(a, b), d| (a.min(d), b.max(d)));
    if lo > hi {
        return BTreeMap::new();
    }
    let table: Vec<i32> = if i64::from(hi) - i64::from(lo) < TABLE_DAYS {
        (lo..=hi).map(month_of_day).collect()
    } else {
        Vec::new()
    };
    let month = |d: i32| {
        if table.is_empty() {
            month_of_day(d)
        } else {
            table[(d - lo) as usize]
        }
    };
    let first = month(lo);
    let n = (month(hi) - first + 1) as usize;
    let mut sums = vec![Kahan::default(); n];
    let mut seen = vec![false; n];
    for (d, v) in days.iter().zip(values.iter()) {
        let Some(d) = d else { continue };
        let k = (month(d) - first) as usize;
        seen[k] = true;
        if let Some(v) = v {
            sums[k].add(v);
        }
    }
    (0..n)
        .filter(|&k| seen[k])
        .map(|k| (first + k as i32, sums[k].sum))
        .collect()
}
