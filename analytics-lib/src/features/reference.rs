//! The previous polars formulation of the customer features, kept (tests
//! only) as the reference the one-pass [`super::CustomerHistory`] is
//! checked against, to the bit.

use chrono::{Duration, NaiveDate};
use polars::prelude::*;

use super::*;

/// The previous polars formulation of [`customer_features`], kept as the
/// reference the one-pass version is checked against (to the bit).
pub(crate) fn customer_features_polars(
    sales: &Sales,
    cutoff: NaiveDate,
    categories: Option<&[String]>,
) -> Result<CustomerFeatures> {
    let categories: Vec<String> = match categories {
        Some(c) => {
            check_categories(c)?;
            c.to_vec()
        }
        None => categories_before(sales, cutoff)?,
    };
    let horizon = Duration::days(HORIZON_DAYS);
    let recent_start = cutoff - horizon;
    let target_end = cutoff + horizon;

    let completed = sales.lines_with_ids()?.lazy().filter(col("completed"));
    // Everything the features see: completed lines strictly before the cutoff.
    let history = completed.clone().filter(col("order_date").lt(lit(cutoff)));
    let recent = col("order_date").gt_eq(lit(recent_start));

    let mut aggs = vec![
        col("order_date")
            .max()
            .cast(DataType::Int32)
            .alias("__last"),
        col("order_date")
            .min()
            .cast(DataType::Int32)
            .alias("__first"),
        col("order_id")
            .n_unique()
            .cast(DataType::Float64)
            .alias("frequency"),
        col("revenue").sum().alias("monetary"),
        col("order_id")
            .filter(recent.clone())
            .n_unique()
            .cast(DataType::Float64)
            .alias("orders_90d"),
        col("revenue").filter(recent).sum().alias("revenue_90d"),
    ];
    for (i, cat) in categories.iter().enumerate() {
        aggs.push(
            col("revenue")
                .filter(col("category").eq(lit(cat.as_str())))
                .sum()
                .alias(format!("__cat{i}")),
        );
    }

    let target = completed
        .filter(
            col("order_date")
                .gt_eq(lit(cutoff))
                .and(col("order_date").lt(lit(target_end))),
        )
        .group_by([col("customer_id")])
        .agg([col("revenue").sum().alias(TARGET)]);

    // The money sums rounded (as `customer_features` rounds them), then
    // everything derived from them.
    let mut sums = history
        .group_by([col("customer_id")])
        .agg(aggs)
        .join(
            target,
            [col("customer_id")],
            [col("customer_id")],
            JoinArgs::new(JoinType::Left),
        )
        .collect()
        .map_err(pe("computing customer features"))?;
    let money: Vec<String> = ["monetary", "revenue_90d", TARGET]
        .iter()
        .map(|s| s.to_string())
        .chain((0..categories.len()).map(|i| format!("__cat{i}")))
        .collect();
    for name in money {
        let rounded: Float64Chunked = sums
            .column(&name)
            .and_then(|c| c.f64().cloned())
            .map_err(pe("rounding money sums"))?
            .iter()
            .map(|v| v.map(round_money))
            .collect();
        sums.with_column(Column::new(name.as_str().into(), rounded.into_series()))
            .map_err(pe("rounding money sums"))?;
    }

    let t = epoch_days(cutoff);
    let mut select = vec![
        col("customer_id"),
        (lit(t) - col("__last"))
            .cast(DataType::Float64)
            .alias("recency_days"),
        col("frequency"),
        col("monetary"),
        (lit(t) - col("__first"))
            .cast(DataType::Float64)
            .alias("tenure_days"),
        (col("monetary") / col("frequency")).alias("average_ticket"),
        col("orders_90d"),
        col("revenue_90d"),
    ];
    for (i, cat) in categories.iter().enumerate() {
        select.push(
            when(col("monetary").gt(lit(0.0)))
                .then(col(format!("__cat{i}")) / col("monetary"))
                .otherwise(lit(0.0))
                .alias(format!("{SHARE_PREFIX}{cat}")),
        );
    }
    select.push(col(TARGET).fill_null(lit(0.0)).alias(TARGET));

    let frame = sums
        .lazy()
        .select(select)
        .sort(["customer_id"], SortMultipleOptions::default())
        .collect()
        .map_err(pe("computing customer features"))?;
    if frame.height() == 0 {
        return Err(no_order_before(cutoff));
    }
    Ok(CustomerFeatures {
        cutoff,
        categories,
        frame,
    })
}
