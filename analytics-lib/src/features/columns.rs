//! Reading the shared sales frame's columns: by name without touching the
//! frame ([`column`]), the date / completed / revenue triple every per-line
//! aggregate reads ([`LineValues`]: the features and the CLV purchase
//! summary), and the features' coded copy of the lines ([`Lines`]).

use polars::prelude::*;
use rayon::prelude::*;

use super::*;

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
        Ok(LineValues {
            date,
            completed,
            revenue,
        })
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

/// The sales lines' columns that the features read.
pub(super) struct Lines {
    /// Order code per line (`order_key`).
    pub(super) order: Vec<u32>,
    pub(super) date: Vec<Option<i32>>,
    pub(super) completed: Vec<bool>,
    pub(super) revenue: Vec<Option<f64>>,
    /// Category code per line (`NO_CATEGORY` for a null).
    pub(super) category: Vec<u32>,
}

pub(super) const NO_CATEGORY: u32 = u32::MAX;

/// A column of the shared sales frame, found by a linear search of its
/// names. Not `DataFrame::column`: on a frame wider than 4 columns that
/// builds a hashed schema and caches it *inside* the frame. In an evcxr
/// notebook every cell is its own library with its own copy of polars'
/// global hash seed, so a schema cached by the features in one cell was not
/// found by the KPIs of a later cell ("unable to find column \"completed\";
/// valid columns: [… \"completed\" …]"). Reading the caller's frame must
/// not change it.
pub(crate) fn column<'a>(lines: &'a DataFrame, name: &str) -> Result<&'a Column> {
    lines
        .columns()
        .iter()
        .find(|c| c.name().as_str() == name)
        .ok_or_else(|| PolarsError::ColumnNotFound(format!("`{name}` in the sales lines").into()))
        .map_err(pe("reading the sales lines"))
}

pub(crate) fn column_as(lines: &DataFrame, name: &str, dtype: &DataType) -> Result<Column> {
    column(lines, name)?
        .cast(dtype)
        .map_err(pe("reading the sales lines"))
}

/// Rows of each group of `df` by `key`, in row order within a group.
fn groups_of(df: &DataFrame, key: &str) -> Result<Vec<Vec<u32>>> {
    let keys = column(df, key)?.clone();
    let gb = DataFrame::new(df.height(), vec![keys])
        .and_then(|d| d.group_by([key]).map(|g| g.into_groups()))
        .map_err(pe("grouping the sales lines"))?;
    Ok(gb
        .par_iter()
        .map(|g| {
            let mut rows: Vec<u32> = match g {
                GroupsIndicator::Idx((_, idx)) => idx.iter().copied().collect(),
                GroupsIndicator::Slice([first, len]) => (first..first + len).collect(),
            };
            if !rows.is_sorted() {
                rows.sort_unstable();
            }
            rows
        })
        .collect())
}

/// The lines' `order_key` codes (every line has one).
fn order_codes(lines: &DataFrame) -> Result<Vec<u32>> {
    let codes = column(lines, "order_key")?
        .u32()
        .map_err(pe("reading the sales lines' order codes"))?;
    if codes.null_count() > 0 {
        return Err(DataError::InvalidArgument {
            name: "sales lines",
            expected: "an order code on every line".into(),
            found: format!("{} lines without one", codes.null_count()),
        });
    }
    Ok(codes.into_no_null_iter().collect())
}

impl Lines {
    pub(super) fn read(lines: &DataFrame) -> Result<(Lines, Vec<&str>)> {
        let category = column(lines, "category")?
            .str()
            .map_err(pe("reading the sales lines"))?;
        // Category codes: one per distinct category, from polars' grouping.
        let mut codes = vec![NO_CATEGORY; lines.height()];
        let mut names = Vec::new();
        for rows in groups_of(lines, "category")? {
            if let Some(name) = rows.first().and_then(|&r| category.get(r as usize)) {
                for &r in &rows {
                    codes[r as usize] = names.len() as u32;
                }
                names.push(name);
            }
        }
        let values = LineValues::read(lines)?;
        let n = lines.height();
        let (mut date, mut completed, mut revenue) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for (d, c, r) in values.iter() {
            date.push(d);
            completed.push(c);
            revenue.push(r);
        }
        Ok((
            Lines {
                order: order_codes(lines)?,
                date,
                completed,
                revenue,
                category: codes,
            },
            names,
        ))
    }
}
