//! The customer-spend features from the warehouse: aggregates computed in
//! SQL at a few cutoffs ([`super::features_sql`]), one row per customer and
//! cutoff, turned into the same [`CustomerFeatures`] as the local lines give.

use super::*;
use crate::features::{
    BASE_FEATURES, CustomerFeatures, FeatureData, HORIZON_DAYS, SHARE_PREFIX, TARGET,
    check_categories, feature_names, no_order_before, round_money,
};

/// Customer aggregates computed in the warehouse at a few cutoffs, with
/// the revenue per category of every category of the data: the
/// features at those cutoffs for any category list are derived from
/// them ([`FeatureData`]), as [`crate::features::customer_features`]
/// derives them from the lines. One row per customer and cutoff came
/// back.
#[derive(Clone, Debug)]
pub struct WarehouseFeatures {
    pub summary: Summary,
    /// Per cutoff: `customer_id`, the aggregates of [`features_sql`]
    /// (`cat_i` for the i-th of `summary.categories`), sorted by id.
    frames: BTreeMap<NaiveDate, DataFrame>,
    /// The CLV purchase summary, when fetched ([`Self::with_clv_summary`]).
    clv: Option<crate::clv::CustomerSummary>,
}

impl WarehouseFeatures {
    /// These aggregates with the CLV purchase summary computed in the
    /// warehouse at `as_of` (one more row per customer), which
    /// [`FeatureData::clv_summary`] then answers.
    pub fn with_clv_summary(mut self, summary: crate::clv::CustomerSummary) -> Self {
        self.clv = Some(summary);
        self
    }

    /// The cutoffs held.
    pub fn cutoffs(&self) -> Vec<NaiveDate> {
        self.frames.keys().copied().collect()
    }

    /// Customers with a completed order before `cutoff` (0 when the
    /// cutoff was not fetched).
    pub fn customers_at(&self, cutoff: NaiveDate) -> usize {
        self.frames.get(&cutoff).map_or(0, DataFrame::height)
    }
}

impl SnowflakeSource {
    /// The customer aggregates at each of `cutoffs`, in one query (one
    /// row per customer and cutoff comes back).
    pub fn warehouse_features(
        &self,
        summary: Summary,
        cutoffs: &[NaiveDate],
    ) -> Result<WarehouseFeatures> {
        const ACTION: &str = "computing customer features";
        let mut cutoffs = cutoffs.to_vec();
        cutoffs.sort();
        cutoffs.dedup();
        let names: Vec<String> = summary.categories.iter().map(|(c, _)| c.clone()).collect();
        let mut frames: BTreeMap<NaiveDate, DataFrame> =
            cutoffs.iter().map(|&c| (c, DataFrame::empty())).collect();
        if !cutoffs.is_empty() {
            let df = self.query_as(&features_sql(&cutoffs, &names, HORIZON_DAYS), ACTION)?;
            if df.height() > 0 {
                let at = dates(&df, "cutoff", ACTION)?;
                for &c in &cutoffs {
                    let mask: BooleanChunked = at.iter().map(|d| *d == Some(c)).collect();
                    let part = df
                        .filter(&mask)
                        .and_then(|p| p.drop("cutoff"))
                        .and_then(|p| p.sort(["customer_id"], SortMultipleOptions::default()))
                        .map_err(pe(ACTION))?;
                    frames.insert(c, part);
                }
            }
        }
        Ok(WarehouseFeatures {
            summary,
            frames,
            clv: None,
        })
    }

    /// Customer-spend features at `cutoff` ([`crate::features::customer_features`]),
    /// computed in Snowflake: one row per customer comes back.
    pub fn customer_features(
        &self,
        cutoff: NaiveDate,
        categories: Option<&[String]>,
    ) -> Result<CustomerFeatures> {
        let w = self.warehouse_features(self.summary()?, &[cutoff])?;
        Ok(w.customer_features(cutoff, categories)?)
    }

    /// The CLV purchase summary at `as_of`, computed in the warehouse
    /// ([`clv_summary_sql`]): the same figures as
    /// [`crate::clv::CustomerSummary::compute`] on the cleaned lines.
    pub fn clv_summary(&self, as_of: NaiveDate) -> Result<crate::clv::CustomerSummary> {
        const ACTION: &str = "computing the CLV purchase summary";
        let df = self.query_as(&clv_summary_sql(as_of), ACTION)?;
        if df.height() == 0 {
            return Err(SourceError::Data(DataError::InvalidArgument {
                name: "as_of",
                expected: "a date after at least one completed order".into(),
                found: format!("no completed order before {as_of}"),
            }));
        }
        let df = df
            .sort(["customer_id"], SortMultipleOptions::default())
            .map_err(pe(ACTION))?;
        let ids = df
            .column("customer_id")
            .and_then(|c| c.cast(&DataType::String))
            .map_err(pe(ACTION))?;
        let ids: Vec<String> = ids
            .str()
            .map_err(pe(ACTION))?
            .iter()
            .map(|v| v.unwrap_or_default().to_string())
            .collect();
        let frequency = f64s(&df, "frequency", ACTION)?;
        let repeat = f64s(&df, "repeat_revenue", ACTION)?;
        Ok(crate::clv::CustomerSummary {
            as_of,
            customer_ids: ids,
            monetary_value: frequency
                .iter()
                .zip(&repeat)
                .map(|(&x, &r)| if x > 0.0 { r / x } else { 0.0 })
                .collect(),
            frequency: frequency.iter().map(|&x| x as u32).collect(),
            recency: f64s(&df, "recency", ACTION)?,
            t: f64s(&df, "t", ACTION)?,
        })
    }
}

impl FeatureData for WarehouseFeatures {
    fn default_as_of(&self) -> NaiveDate {
        self.summary.default_as_of
    }

    /// The summary fetched with [`WarehouseFeatures::with_clv_summary`]
    /// (none fetched: `None`, as for any data without purchase days).
    fn clv_summary(
        &self,
        as_of: NaiveDate,
    ) -> Option<crate::clv::Result<crate::clv::CustomerSummary>> {
        let s = self.clv.as_ref()?;
        Some(if s.as_of == as_of {
            Ok(s.clone())
        } else {
            Err(crate::clv::ClvError::data(
                "CLV purchase summary",
                format!("one computed in the warehouse at {as_of}"),
                s.as_of,
            ))
        })
    }

    fn categories_before(&self, cutoff: NaiveDate) -> crate::error::Result<Vec<String>> {
        Ok(self
            .summary
            .categories
            .iter()
            .filter(|(_, first)| *first < cutoff)
            .map(|(c, _)| c.clone())
            .collect())
    }

    fn customer_features(
        &self,
        cutoff: NaiveDate,
        categories: Option<&[String]>,
    ) -> crate::error::Result<CustomerFeatures> {
        let categories: Vec<String> = match categories {
            Some(c) => {
                check_categories(c)?;
                c.to_vec()
            }
            None => self.categories_before(cutoff)?,
        };
        let Some(df) = self.frames.get(&cutoff) else {
            return Err(DataError::InvalidArgument {
                name: "cutoff",
                expected: format!(
                    "one of the cutoffs computed in the warehouse ({})",
                    self.cutoffs()
                        .iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                found: cutoff.to_string(),
            });
        };
        if df.height() == 0 {
            return Err(no_order_before(cutoff));
        }
        let perr = |e: PolarsError| DataError::polars("snowflake", "shaping customer features")(e);
        // Money sums rounded as the local features round them
        // (`crate::features::round_money`): the same bits whatever the
        // order of the warehouse's additions.
        let money = |n: &str| {
            col(n).cast(DataType::Float64).map(
                |c| {
                    let out: Float64Chunked = c.f64()?.iter().map(|v| v.map(round_money)).collect();
                    Ok(out.with_name(c.name().clone()).into_column())
                },
                |_, field| Ok(field.clone()),
            )
        };
        let f = |n: &str| match n {
            "monetary" | "revenue_90d" | "target" => money(n),
            n if n.starts_with("cat_") => money(n),
            n => col(n).cast(DataType::Float64),
        };
        let monetary = f("monetary");
        let mut select = vec![col("customer_id").cast(DataType::String)];
        for n in BASE_FEATURES {
            select.push(match n {
                "average_ticket" => (f("monetary") / f("frequency")).alias(n),
                _ => f(n).alias(n),
            });
        }
        for c in &categories {
            let spent = match self.summary.categories.iter().position(|(k, _)| k == c) {
                Some(i) => f(&format!("cat_{i}")),
                None => lit(0.0),
            };
            select.push(
                when(monetary.clone().gt(lit(0.0)))
                    .then(spent / monetary.clone())
                    .otherwise(lit(0.0))
                    .alias(format!("{SHARE_PREFIX}{c}")),
            );
        }
        select.push(f("target").alias(TARGET));
        let frame = df.clone().lazy().select(select).collect().map_err(perr)?;
        debug_assert_eq!(
            frame.width(),
            feature_names(&categories).len() + 2,
            "customer_id, features, target"
        );
        Ok(CustomerFeatures {
            cutoff,
            categories,
            frame,
        })
    }
}
