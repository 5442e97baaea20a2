//! Reading the shared sales frame's columns: by name without touching the
//! frame ([`column`]), the date / completed / revenue triple every per-line
//! aggregate reads ([`LineValues`]: the features and the CLV purchase
//! summary), and the integer codes the features group and count on.

use polars::prelude::*;

use super::*;
use crate::kpi::codes_and_names;

/// The three columns every per-line aggregate reads (`order_date`,
/// `completed`, `revenue`), cast once to their types: one home for their
/// names, casts and error text.
pub(crate) struct LineValues {
    /// Days since 1970-01-01 (the physical value of a polars `Date`).
    date: Int32Chunked,
    completed: BooleanChunked,
    revenue: Float64Chunked,
}

impl LineValues {
    pub(crate) fn read(lines: &DataFrame) -> Result<Self> {
        let date = column_as(lines, "order_date", &DataType::Date)?;
        let date = date
            .date()
            .map(|d| d.physical().clone())
            .map_err(pe("reading the sales lines"))?;
        let completed = column_as(lines, "completed", &DataType::Boolean)?;
        let completed = completed
            .bool()
            .cloned()
            .map_err(pe("reading the sales lines"))?;
        let revenue = column_as(lines, "revenue", &DataType::Float64)?;
        let revenue = revenue
            .f64()
            .cloned()
            .map_err(pe("reading the sales lines"))?;
        // One array each (a no-op on the joined frame), so that
        // `for_each_completed` reads them side by side.
        let (mut date, mut completed, mut revenue) = (date, completed, revenue);
        date.rechunk_mut();
        completed.rechunk_mut();
        revenue.rechunk_mut();
        Ok(LineValues {
            date,
            completed,
            revenue,
        })
    }

    /// `f(row, day, revenue)` for every completed line with a date, in row
    /// order: straight from the arrays and their validity bits (the
    /// iterators of `iter` cost more than the work at millions of lines).
    pub(crate) fn for_each_completed(&self, mut f: impl FnMut(usize, i32, Option<f64>)) {
        let (Some(d), Some(c), Some(r)) = (
            self.date.downcast_iter().next(),
            self.completed.downcast_iter().next(),
            self.revenue.downcast_iter().next(),
        ) else {
            return;
        };
        let (days, day_ok) = (d.values().as_slice(), d.validity());
        let (done, done_ok) = (c.values(), c.validity());
        let (revenue, revenue_ok) = (r.values().as_slice(), r.validity());
        let n = days.len().min(done.len()).min(revenue.len());
        for i in 0..n {
            if !done.get_bit(i)
                || done_ok.is_some_and(|b| !b.get_bit(i))
                || day_ok.is_some_and(|b| !b.get_bit(i))
            {
                continue;
            }
            let rev = revenue_ok.is_none_or(|b| b.get_bit(i)).then(|| revenue[i]);
            f(i, days[i], rev);
        }
    }

    /// Per line, in row order: the day (days since 1970-01-01), whether the
    /// line is completed (a null is not) and its revenue.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Option<i32>, bool, Option<f64>)> + '_ {
        self.date
            .iter()
            .zip(self.completed.iter())
            .zip(self.revenue.iter())
            .map(|((d, c), r)| (d, c == Some(true), r))
    }
}

pub(super) const NO_CATEGORY: u32 = u32::MAX;

/// A column of the shared sales frame, by [`crate::kpi::find`] (a linear
/// search of the names: reading the caller's frame must not cache a
/// schema in it).
pub(crate) fn column<'a>(lines: &'a DataFrame, name: &str) -> Result<&'a Column> {
    crate::kpi::find(lines, name).map_err(pe("reading the sales lines"))
}

pub(crate) fn column_as(lines: &DataFrame, name: &str, dtype: &DataType) -> Result<Column> {
    column(lines, name)?
        .cast(dtype)
        .map_err(pe("reading the sales lines"))
}

/// `f(row)` for every row whose `mask` is true (a null is not), in row
/// order, straight from the mask's bits.
pub(crate) fn for_each_true(mask: &BooleanChunked, mut f: impl FnMut(usize)) {
    let mut offset = 0;
    for arr in mask.downcast_iter() {
        let (bits, ok) = (arr.values(), arr.validity());
        for i in 0..arr.len() {
            if bits.get_bit(i) && ok.is_none_or(|b| b.get_bit(i)) {
                f(offset + i);
            }
        }
        offset += arr.len();
    }
}

/// The lines' `order_key` codes (every line has one), in place.
pub(super) fn order_codes(lines: &DataFrame) -> Result<std::borrow::Cow<'_, [u32]>> {
    u32_codes(lines, "order_key", "an order code on every line")
}

/// The lines' `customer_key` codes, in place; every line must have one.
pub(super) fn customer_codes(lines: &DataFrame) -> Result<std::borrow::Cow<'_, [u32]>> {
    u32_codes(
        lines,
        "customer_key",
        "every line's customer in the customers table (cleaned data, as Source::prepare gives)",
    )
}

fn u32_codes<'a>(
    lines: &'a DataFrame,
    name: &str,
    expected: &str,
) -> Result<std::borrow::Cow<'a, [u32]>> {
    match codes_without_nulls(lines, name)? {
        Some(codes) => Ok(codes),
        None => Err(DataError::InvalidArgument {
            name: "sales lines",
            expected: expected.into(),
            found: format!(
                "{} lines without a `{name}`",
                column(lines, name)?.null_count()
            ),
        }),
    }
}

/// An integer code column of the lines (`order_key`, `customer_key`), in
/// place when it is one array; `None` when a line has no code (callers on
/// the codes then take their path on the ids). A missing column or another
/// type is an error.
pub(crate) fn codes_without_nulls<'a>(
    lines: &'a DataFrame,
    name: &str,
) -> Result<Option<std::borrow::Cow<'a, [u32]>>> {
    let codes = column(lines, name)?
        .u32()
        .map_err(pe("reading the sales lines' integer codes"))?;
    if codes.null_count() > 0 {
        return Ok(None);
    }
    Ok(Some(match codes.cont_slice() {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => std::borrow::Cow::Owned(codes.into_no_null_iter().collect()),
    }))
}

/// A code per line for its category (`NO_CATEGORY` for a null) and the
/// category names by code: the sales view's categorical codes as they are
/// (a text column, in a view built by hand, is made categorical first).
pub(super) fn category_codes(lines: &DataFrame) -> Result<(Vec<u32>, Vec<String>)> {
    let (ca, names) = codes_and_names(column(lines, "category")?)
        .map_err(pe("reading the sales lines' categories"))?;
    let mut codes = Vec::with_capacity(ca.len());
    for arr in ca.downcast_iter() {
        match arr.validity().filter(|v| v.unset_bits() > 0) {
            None => codes.extend_from_slice(arr.values()),
            Some(v) => codes.extend(
                arr.values()
                    .iter()
                    .zip(v.iter())
                    .map(|(&c, ok)| if ok { c } else { NO_CATEGORY }),
            ),
        }
    }
    Ok((codes, names))
}
