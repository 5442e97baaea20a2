//! Sums that equal polars' to the bit, computed in one pass over plain
//! columns instead of a query: [`Kahan`] (polars' grouped float `sum`) and
//! [`by_month`] (revenue per calendar month).

use std::collections::BTreeMap;

use crate::calendar::month_of_day;
use crate::features::LineValues;

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

/// The revenue of the completed lines per calendar month of their
/// `order_date`, keyed by the month number ([`crate::calendar`]): lines
/// without a date are left out, a line without revenue still makes its month
/// present (sum 0), as polars' `filter(completed).group_by(month).agg(sum)`
/// does. Kahan sums in row order: the same bits as that query. The lines
/// are read in place (`LineValues::for_each_completed`), not filtered into
/// a copy first.
pub(crate) fn by_month(values: &LineValues) -> BTreeMap<i32, f64> {
    let (mut lo, mut hi) = (i32::MAX, i32::MIN);
    values.for_each_completed(|_, d, _| {
        lo = lo.min(d);
        hi = hi.max(d);
    });
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
    values.for_each_completed(|_, d, v| {
        let k = (month(d) - first) as usize;
        seen[k] = true;
        if let Some(v) = v {
            sums[k].add(v);
        }
    });
    (0..n)
        .filter(|&k| seen[k])
        .map(|k| (first + k as i32, sums[k].sum))
        .collect()
}
