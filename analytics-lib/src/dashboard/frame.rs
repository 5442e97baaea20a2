//! An engine from the line-level [`Sales`] frame: the completed, dated
//! lines with dense integer codes for orders and customers and one-byte
//! codes for category, state and channel; checked against `kpi::kpis` on
//! the default view before anyone is answered from it.

use std::collections::HashMap;

use chrono::{Duration, NaiveDate};
use polars::prelude::*;

use super::{Dims, Engine, IdList, Ids, Lines, NONE, Query};
use crate::error::DataError;
use crate::kpi::{self, Filter, KpiOptions, Sales, codes_and_names};

/// Why a dashboard could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// The lines do not fit the engine (sizes, dates); the message says
    /// what was expected and what was found.
    #[error("{0}")]
    Input(String),
    #[error("{what}: {source}")]
    Frame {
        what: &'static str,
        #[source]
        source: PolarsError,
    },
    #[error("while checking the dashboard against kpi::kpis: {0}")]
    Kpis(#[source] DataError),
    #[error(
        "the dashboard engine disagrees with kpi::kpis on {from}..{to}: expected {expected}; found {found}"
    )]
    Disagrees {
        from: NaiveDate,
        to: NaiveDate,
        expected: String,
        found: String,
    },
}

fn pe(what: &'static str) -> impl FnOnce(PolarsError) -> DashboardError {
    move |source| DashboardError::Frame { what, source }
}

/// An engine with the dictionaries behind its codes and the data's dates.
pub struct Built {
    pub engine: Engine,
    /// Code → value, sorted.
    pub categories: Vec<String>,
    pub states: Vec<String>,
    pub channels: Vec<String>,
    /// First and last day with a completed order.
    pub min_date: NaiveDate,
    pub max_date: NaiveDate,
    /// The default view: the last 365 days of data.
    pub default_from: NaiveDate,
    pub default_to: NaiveDate,
}

/// A text column as codes.
struct Encoded {
    codes: Vec<u32>,
    /// The distinct values in code order.
    ids: IdList,
    /// Value → code (when asked).
    index: HashMap<String, u32>,
}

/// Dense `u32` codes of an id column (by first appearance), the distinct
/// values in code order, and (when `index`) the code of each. Where the
/// rows also carry an integer key (`keys`: the sales view's `order_key` /
/// `customer_key`, one per distinct id, null where the id has none), a
/// key's first appearance is found in a vector instead of by hashing the
/// text (a few seconds at 10 M lines); ids without a key, and empty or
/// null ones, are hashed. The codes are the same either way: an id has one
/// key or none, and a key stands for one id.
fn encode(
    col: &StringChunked,
    keys: Option<&IdxCa>,
    index: bool,
) -> Result<Encoded, DashboardError> {
    let size = keys.and_then(|k| k.max()).map_or(0, |m| m as usize + 1);
    let mut by_key = vec![u32::MAX; size];
    let hashed = if keys.is_some() { 0 } else { col.len() / 2 };
    let mut unkeyed: HashMap<&str, u32> = HashMap::with_capacity(hashed);
    let mut values: Vec<&str> = Vec::new();
    let keys = keys
        .into_iter()
        .flat_map(|k| k.iter())
        .chain(std::iter::repeat(None));
    let codes = col
        .iter()
        .zip(keys)
        .map(|(v, k)| {
            let slot = match (k, v) {
                (Some(k), Some(v)) if !v.is_empty() => &mut by_key[k as usize],
                (_, v) => unkeyed.entry(v.unwrap_or("")).or_insert(u32::MAX),
            };
            if *slot == u32::MAX {
                *slot = values.len() as u32;
                values.push(v.unwrap_or(""));
            }
            *slot
        })
        .collect();
    let owned = if index {
        values
            .iter()
            .enumerate()
            .map(|(code, v)| (v.to_string(), code as u32))
            .collect()
    } else {
        HashMap::new()
    };
    Ok(Encoded {
        codes,
        ids: IdList::from_strs(values)?,
        index: owned,
    })
}

fn distinct_strings(df: &DataFrame, name: &str) -> Result<Vec<String>, DashboardError> {
    let s = df
        .column(name)
        .and_then(|c| c.as_materialized_series().unique())
        .and_then(|s| s.cast(&DataType::String))
        .map_err(pe("listing filter values"))?;
    let mut out: Vec<String> = s
        .str()
        .map_err(pe("listing filter values"))?
        .iter()
        .flatten()
        .map(str::to_string)
        .collect();
    out.sort();
    Ok(out)
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
}

fn date_bounds(df: &DataFrame) -> Result<(NaiveDate, NaiveDate), DashboardError> {
    let days = df
        .column("order_date")
        .and_then(|c| c.cast(&DataType::Int32))
        .map_err(pe("reading order dates"))?;
    let days = days.i32().map_err(pe("reading order dates"))?;
    Ok(match (days.min(), days.max()) {
        (Some(a), Some(b)) => (
            epoch() + Duration::days(i64::from(a)),
            epoch() + Duration::days(i64::from(b)),
        ),
        _ => (epoch(), epoch()),
    })
}

impl Engine {
    /// Build the engine from the service's sales. `segments` is given each
    /// customer id's dense code and answers every code's segment ([`NONE`]:
    /// none) and the number of segments. The engine is checked against
    /// `kpi::kpis` on the default view: a disagreement is an error, never
    /// a dashboard with other figures than the contract's.
    pub fn from_sales(
        sales: &Sales,
        segments: impl FnOnce(&HashMap<String, u32>) -> (Vec<u8>, usize),
    ) -> Result<Built, DashboardError> {
        let completed = sales
            .lines
            .column("completed")
            .and_then(|c| c.bool().cloned())
            .map_err(pe("reading `completed`"))?;
        // Lines without a date are in no period (as in `kpi`): left out.
        let dated = sales
            .lines
            .column("order_date")
            .map(|c| c.is_not_null())
            .map_err(pe("reading `order_date`"))?;
        let completed = &completed & &dated;
        // `items`: how many order lines a row stands for, when the rows are
        // folded records (several lines of one order and product in a row).
        let mut columns = vec![
            "order_id",
            "customer_id",
            "order_date",
            "channel",
            "category",
            "state",
            "product_id",
            "completed",
            "revenue",
        ];
        if sales.lines.schema().contains(ITEMS) {
            columns.push(ITEMS);
        }
        // The ids' integer keys where the view has them (a view built by
        // the join does; one built by hand may not).
        let keyed = ["order_key", "customer_key"]
            .iter()
            .all(|k| sales.lines.schema().contains(k));
        if keyed {
            columns.extend(["order_key", "customer_key"]);
        }
        let mut lines = sales
            .lines
            .select(columns)
            .and_then(|df| df.filter(&completed))
            .map_err(pe("keeping completed lines"))?;
        let str_col = |df: &DataFrame, name: &'static str| {
            df.column(name)
                .and_then(|c| c.str().cloned())
                .map_err(pe("reading a text column"))
        };
        let ids = |id: &'static str, key: &'static str, index: bool| {
            let text = str_col(&lines, id)?;
            let keys = keyed
                .then(|| lines.column(key).and_then(|c| c.idx().cloned()))
                .transpose()
                .map_err(pe("reading the id keys"))?;
            encode(&text, keys.as_ref(), index)
        };
        let Encoded {
            codes: order_codes,
            ids: order_ids,
            ..
        } = ids("order_id", "order_key", false)?;
        let Encoded {
            codes: customer_codes,
            ids: customer_ids,
            index: customer_index,
        } = ids("customer_id", "customer_key", true)?;
        if keyed {
            lines = lines.drop_many(["order_key", "customer_key"]);
        }
        lines
            .with_column(Column::new("order_id".into(), order_codes))
            .and_then(|df| df.with_column(Column::new("customer_id".into(), customer_codes)))
            .map_err(pe("replacing ids by codes"))?;
        lines.rechunk_mut();
        // The frame the check gives to `kpi::kpis` (integer ids: same counts).
        let compact = Sales {
            lines,
            customers: sales.customers.clone(),
            default_as_of: sales.default_as_of,
        };

        let (min_date, max_date) = date_bounds(&compact.lines)?;
        let default_to = max_date;
        let default_from = (default_to - Duration::days(364)).max(min_date);
        let categories = distinct_strings(&compact.lines, "category")?;
        let states = distinct_strings(&compact.lines, "state")?;
        let channels = distinct_strings(&compact.lines, "channel")?;
        let mut products = distinct_strings(&compact.lines, "product_id")?;
        // Lines without a product id (none after cleaning) under "".
        let no_product = compact
            .lines
            .column("product_id")
            .map_err(pe("reading product ids"))?
            .null_count()
            > 0;
        if no_product && products.binary_search(&String::new()).is_err() {
            products.insert(0, String::new());
        }
        if categories.len() >= 255 || states.len() >= 255 || channels.len() >= 255 {
            return Err(DashboardError::Input(format!(
                "at most 254 categories, states and channels, found {}, {} and {}",
                categories.len(),
                states.len(),
                channels.len()
            )));
        }
        let (segment_of, n_segments) = segments(&customer_index);
        drop(customer_index);

        let lines = lines_of(&compact.lines, &categories, &states, &channels, &products)?;
        let dims = Dims {
            categories: categories.len(),
            states: states.len(),
            channels: channels.len(),
            segments: n_segments,
        };
        let ids = Ids {
            orders: order_ids,
            customers: customer_ids,
            products: IdList::from_strs(products.iter().map(String::as_str))?,
        };
        drop(products);
        let engine = Engine::build(&lines, &ids, dims, &segment_of, min_date, max_date)?;
        drop((lines, ids));
        check(&engine, &compact, default_from, default_to)?;
        Ok(Built {
            engine,
            categories,
            states,
            channels,
            min_date,
            max_date,
            default_from,
            default_to,
        })
    }
}

/// The optional column of folded records: order lines per row.
pub const ITEMS: &str = "items";

/// The engine's input columns from the compact frame (integer ids).
fn lines_of(
    lines: &DataFrame,
    categories: &[String],
    states: &[String],
    channels: &[String],
    products: &[String],
) -> Result<Lines, DashboardError> {
    let code_of = |name: &'static str, dict: &[String]| -> Result<Vec<u8>, DashboardError> {
        let idx: HashMap<&str, u8> = dict
            .iter()
            .enumerate()
            .map(|(i, v)| (v.as_str(), i as u8))
            .collect();
        // The sales view's codes, one lookup per name, not per line (a text
        // column, in a view built by hand, is made categorical first).
        let c = lines.column(name).map_err(pe("reading a text column"))?;
        let (ca, names) = codes_and_names(c).map_err(pe("reading a categorical column"))?;
        let to: Vec<u8> = names
            .iter()
            .map(|v| idx.get(v.as_str()).copied().unwrap_or(NONE))
            .collect();
        Ok(ca
            .iter()
            .map(|v| v.and_then(|v| to.get(v as usize).copied()).unwrap_or(NONE))
            .collect())
    };
    let u32s = |name: &'static str| -> Result<Vec<u32>, DashboardError> {
        Ok(lines
            .column(name)
            .and_then(|c| c.u32().cloned())
            .map_err(pe("reading codes"))?
            .into_no_null_iter()
            .collect())
    };
    Ok(Lines {
        order: u32s("order_id")?,
        customer: u32s("customer_id")?,
        day: lines
            .column("order_date")
            .and_then(|c| c.cast(&DataType::Int32))
            .and_then(|c| c.i32().cloned())
            .map_err(pe("reading order dates"))?
            .iter()
            .map(|d| d.unwrap_or(i32::MIN))
            .collect(),
        channel: code_of("channel", channels)?,
        category: code_of("category", categories)?,
        state: code_of("state", states)?,
        product: {
            let idx: HashMap<&str, u32> = products
                .iter()
                .enumerate()
                .map(|(i, v)| (v.as_str(), i as u32))
                .collect();
            // The view's product codes (categorical, as loaded; a text
            // column is made so first): one lookup per product, not per line.
            let c = lines
                .column("product_id")
                .map_err(pe("reading product ids"))?;
            let (ca, names) = codes_and_names(c).map_err(pe("reading product ids"))?;
            let to: Vec<Option<u32>> = names.iter().map(|v| idx.get(v.as_str()).copied()).collect();
            let no_product = idx.get("").copied();
            let mut codes = Vec::with_capacity(ca.len());
            for v in ca.iter() {
                match v.map_or(no_product, |v| to.get(v as usize).copied().flatten()) {
                    Some(p) => codes.push(p),
                    None => {
                        let found = v.and_then(|v| names.get(v as usize));
                        return Err(DashboardError::Input(format!(
                            "a completed line without a known product id: expected one of the {} \
                             products, found {found:?}",
                            products.len()
                        )));
                    }
                }
            }
            codes
        },
        revenue: lines
            .column("revenue")
            .and_then(|c| c.f64().cloned())
            .map_err(pe("reading revenue"))?
            .iter()
            .map(|r| r.unwrap_or(0.0))
            .collect(),
        items: match lines.column(ITEMS) {
            Err(_) => Vec::new(),
            Ok(c) => {
                let c = c
                    .cast(&DataType::UInt32)
                    .map_err(pe("reading item counts"))?;
                let c = c.u32().map_err(pe("reading item counts"))?;
                c.iter().map(|v| v.unwrap_or(0)).collect()
            }
        },
    })
}

/// The engine must give `kpi::kpis`'s figures on the default view.
fn check(
    engine: &Engine,
    compact: &Sales,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<(), DashboardError> {
    let opts = KpiOptions::default();
    let filter = Filter {
        from: Some(from),
        to: Some(to),
        ..Filter::all()
    };
    let want = kpi::kpis(compact, &filter, &opts).map_err(DashboardError::Kpis)?;
    let got = engine.scan(&Query {
        churn_window_days: opts.churn_window_days,
        ..Query::period(from, to)
    });
    let c = &got.current;
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0);
    let churn_ok = match (c.churn_rate(), want.churn_rate_90d) {
        (Some(a), Some(b)) => close(a, b),
        (None, None) => true,
        _ => false,
    };
    if !(close(c.revenue, want.revenue)
        && c.orders == want.orders
        && c.active_customers == want.active_customers
        && churn_ok)
    {
        return Err(DashboardError::Disagrees {
            from,
            to,
            expected: format!(
                "revenue {}, orders {}, active {}, churn {:?}",
                want.revenue, want.orders, want.active_customers, want.churn_rate_90d
            ),
            found: format!(
                "revenue {}, orders {}, active {}, churn {:?}",
                c.revenue,
                c.orders,
                c.active_customers,
                c.churn_rate()
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys found in a vector give the codes, ids and index that hashing the
    /// text gives: ids with keys (out of order, repeated), without a key,
    /// empty and null, interleaved.
    #[test]
    fn keyed_encoding_matches_the_hashed_one() {
        let rows: Vec<(Option<&str>, Option<IdxSize>)> = vec![
            (Some("c-9"), Some(7)),
            (Some("c-1"), Some(0)),
            (Some("ghost"), None),
            (Some("c-9"), Some(7)),
            (None, None),
            (Some(""), Some(3)),
            (Some("c-4"), Some(2)),
            (Some("ghost"), None),
            (Some("other ghost"), None),
            (Some("c-1"), Some(0)),
            (None, None),
            (Some(""), None),
            (Some("c-4"), Some(2)),
        ];
        let text = StringChunked::new(
            "customer_id".into(),
            rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        );
        let keys = IdxCa::new(
            "customer_key".into(),
            rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        );
        for index in [false, true] {
            let hashed = encode(&text, None, index).expect("hashed");
            let keyed = encode(&text, Some(&keys), index).expect("keyed");
            assert_eq!(keyed.codes, hashed.codes);
            assert_eq!(keyed.ids, hashed.ids);
            assert_eq!(keyed.index, hashed.index);
        }
        let keyed = encode(&text, Some(&keys), true).expect("keyed");
        assert_eq!(keyed.codes, [0, 1, 2, 0, 3, 3, 4, 2, 5, 1, 3, 3, 4]);
        let ids = ["c-9", "c-1", "ghost", "", "c-4", "other ghost"];
        assert_eq!(keyed.ids, IdList::from_strs(ids).expect("ids"));
        let index: HashMap<String, u32> = ids
            .iter()
            .enumerate()
            .map(|(code, id)| (id.to_string(), code as u32))
            .collect();
        assert_eq!(keyed.index, index);
        assert!(
            encode(&text, Some(&keys), false)
                .expect("keyed")
                .index
                .is_empty()
        );
    }
}
