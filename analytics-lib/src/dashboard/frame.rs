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

/// Where the lines' ids come from: their own text, with the view's
/// integer keys when they have them (`order_key` / `customer_key`, one per
/// distinct id, null where the id has none), or the keys alone with the id
/// of each key (the join's view: `Sales::order_ids`, the sorted
/// customers' ids).
enum IdSource<'a> {
    Text(&'a StringChunked, Option<&'a IdxCa>),
    /// The ids in one chunk.
    Keys(&'a IdxCa, &'a StringChunked),
}

/// Codes handed out by first appearance: by key in a vector, by text in a
/// hash map (ids without a key, and empty or null ones).
struct Coder<'a> {
    by_key: Vec<u32>,
    hashed: HashMap<&'a str, u32>,
    values: Vec<&'a str>,
}

/// A key not seen yet.
const UNSEEN: u32 = u32::MAX;
/// A key whose id is empty or null: coded as the ids without a key are.
const EMPTY: u32 = u32::MAX - 1;

impl<'a> Coder<'a> {
    fn hashed(&mut self, v: Option<&'a str>) -> u32 {
        let v = v.unwrap_or("");
        let values = &mut self.values;
        *self.hashed.entry(v).or_insert_with(|| {
            values.push(v);
            (values.len() - 1) as u32
        })
    }

    /// The code of key `k`, whose id `id` gives (asked at its first
    /// appearance only).
    fn keyed(&mut self, k: IdxSize, id: impl FnOnce() -> Option<&'a str>) -> u32 {
        match self.by_key[k as usize] {
            UNSEEN => match id() {
                Some(v) if !v.is_empty() => {
                    let code = self.values.len() as u32;
                    self.values.push(v);
                    self.by_key[k as usize] = code;
                    code
                }
                v => {
                    self.by_key[k as usize] = EMPTY;
                    self.hashed(v)
                }
            },
            EMPTY => self.hashed(None),
            code => code,
        }
    }
}

/// Dense `u32` codes of an id column (by first appearance), the distinct
/// values in code order, and (when `index`) the code of each. A key's
/// first appearance is found in a vector instead of by hashing the text (a
/// few seconds at 10 M lines); ids without a key, and empty or null ones,
/// are hashed. The codes are the same either way: an id has one key or
/// none, and a key stands for one id.
fn encode(source: IdSource<'_>, index: bool) -> Result<Encoded, DashboardError> {
    let (len, keys) = match source {
        IdSource::Text(col, keys) => (col.len(), keys),
        IdSource::Keys(keys, _) => (keys.len(), Some(keys)),
    };
    let size = keys.and_then(|k| k.max()).map_or(0, |m| m as usize + 1);
    let mut coder = Coder {
        by_key: vec![UNSEEN; size],
        hashed: HashMap::with_capacity(if keys.is_some() { 0 } else { len / 2 }),
        values: Vec::new(),
    };
    let codes = match source {
        IdSource::Text(col, keys) => {
            let keys = keys
                .into_iter()
                .flat_map(|k| k.iter())
                .chain(std::iter::repeat(None));
            col.iter()
                .zip(keys)
                .map(|(v, k)| match (k, v) {
                    (Some(k), Some(v)) if !v.is_empty() => coder.keyed(k, || Some(v)),
                    (_, v) => coder.hashed(v),
                })
                .collect()
        }
        IdSource::Keys(keys, ids) => {
            if keys.max().is_some_and(|m| m as usize >= ids.len()) {
                return Err(DashboardError::Input(format!(
                    "an id key below the {} ids it codes; found key {}",
                    ids.len(),
                    keys.max().unwrap_or_default()
                )));
            }
            debug_assert!(ids.chunks().len() <= 1);
            let ids = ids.downcast_iter().next();
            keys.iter()
                .map(|k| match k {
                    Some(k) => coder.keyed(k, || ids.and_then(|a| a.get(k as usize))),
                    None => coder.hashed(None),
                })
                .collect()
        }
    };
    let values = coder.values;
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
        // The ids: the lines' text where they carry it (a view built by
        // hand, or the customers of tables that were not cleaned), else
        // their integer keys (the join's view), looked up by key.
        let (order_text, customer_text) =
            (sales.has_text("order_id"), sales.has_text("customer_id"));
        let keyed = sales.coded();
        let mut columns = Vec::with_capacity(13);
        if order_text {
            columns.push("order_id");
        }
        if customer_text {
            columns.push("customer_id");
        }
        columns.extend([
            "order_date",
            "channel",
            "category",
            "state",
            "product_id",
            "completed",
            "revenue",
        ]);
        // `items`: how many order lines a row stands for, when the rows are
        // folded records (several lines of one order and product in a row).
        if kpi::find(&sales.lines, ITEMS).is_ok() {
            columns.push(ITEMS);
        }
        if keyed {
            columns.extend(["order_key", "customer_key"]);
        }
        let mut lines = sales
            .lines
            .select(columns)
            .and_then(|df| df.filter(&completed))
            .map_err(pe("keeping completed lines"))?;
        let str_col = |df: &DataFrame, name: &str| {
            kpi::find(df, name)
                .and_then(|c| c.str().cloned())
                .map_err(pe("reading a text column"))
        };
        let key_col = |df: &DataFrame, name: &str| {
            df.column(name)
                .and_then(|c| c.idx().cloned())
                .map_err(pe("reading the id keys"))
        };
        // The ids of the keys, one chunk each (read by key).
        let order_names = (!order_text).then(|| sales.order_ids.rechunk().into_owned());
        let customer_names = if customer_text {
            None
        } else {
            Some(
                str_col(&sales.customers, "customer_id")?
                    .rechunk()
                    .into_owned(),
            )
        };
        let ids = |id: &str, key: &str, names: &Option<StringChunked>, index: bool| {
            let keys = keyed.then(|| key_col(&lines, key)).transpose()?;
            match (names, keys) {
                (Some(names), Some(keys)) => encode(IdSource::Keys(&keys, names), index),
                (Some(_), None) => Err(DashboardError::Input(format!(
                    "the sales lines' `{id}` as text or `{key}` as a key; found neither"
                ))),
                (None, keys) => encode(IdSource::Text(&str_col(&lines, id)?, keys.as_ref()), index),
            }
        };
        let Encoded {
            codes: order_codes,
            ids: order_ids,
            ..
        } = ids("order_id", "order_key", &order_names, false)?;
        let Encoded {
            codes: customer_codes,
            ids: customer_ids,
            index: customer_index,
        } = ids("customer_id", "customer_key", &customer_names, true)?;
        drop((order_names, customer_names));
        let replaced: Vec<&str> = ["order_id", "customer_id", "order_key", "customer_key"]
            .into_iter()
            .filter(|n| lines.schema().contains(n))
            .collect();
        lines = lines.drop_many(replaced);
        lines
            .insert_column(0, Column::new("order_id".into(), order_codes))
            .and_then(|df| df.insert_column(1, Column::new("customer_id".into(), customer_codes)))
            .map_err(pe("replacing ids by codes"))?;
        lines.rechunk_mut();
        // The frame the check gives to `kpi::kpis` (integer ids: same counts).
        let compact = Sales {
            lines,
            customers: sales.customers.clone(),
            order_ids: StringChunked::default(),
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
            let hashed = encode(IdSource::Text(&text, None), index).expect("hashed");
            let keyed = encode(IdSource::Text(&text, Some(&keys)), index).expect("keyed");
            assert_eq!(keyed.codes, hashed.codes);
            assert_eq!(keyed.ids, hashed.ids);
            assert_eq!(keyed.index, hashed.index);
        }
        let keyed = encode(IdSource::Text(&text, Some(&keys)), true).expect("keyed");
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
            encode(IdSource::Text(&text, Some(&keys)), false)
                .expect("keyed")
                .index
                .is_empty()
        );
    }

    /// Keys alone, with the id of each key (the join's view, whose lines
    /// hold no id text), give the codes, ids and index of the same ids as
    /// text: keys out of order and repeated, a key whose id is empty, a
    /// line without a key, ids no line uses; a key beyond the ids is refused.
    #[test]
    fn keys_with_their_ids_encode_as_the_text_does() {
        let names = StringChunked::new(
            "customer_id".into(),
            [
                Some("c-1"),
                Some("unused"),
                Some("c-4"),
                Some(""),
                None,
                Some("also unused"),
                Some("c-7"),
                Some("c-9"),
            ],
        );
        let keys: Vec<Option<IdxSize>> = vec![
            Some(7),
            Some(0),
            Some(7),
            Some(3),
            Some(2),
            None,
            Some(0),
            Some(4),
            Some(6),
            Some(3),
            Some(2),
        ];
        let text = StringChunked::new(
            "customer_id".into(),
            keys.iter()
                .map(|k| k.and_then(|k| names.get(k as usize)))
                .collect::<Vec<_>>(),
        );
        let keys = IdxCa::new("customer_key".into(), keys);
        for index in [false, true] {
            let by_keys = encode(IdSource::Keys(&keys, &names), index).expect("by keys");
            for with in [None, Some(&keys)] {
                let by_text = encode(IdSource::Text(&text, with), index).expect("by text");
                assert_eq!(by_keys.codes, by_text.codes);
                assert_eq!(by_keys.ids, by_text.ids);
                assert_eq!(by_keys.index, by_text.index);
            }
        }
        let coded = encode(IdSource::Keys(&keys, &names), false).expect("by keys");
        assert_eq!(coded.codes, [0, 1, 0, 2, 3, 2, 1, 2, 4, 2, 3]);
        let ids = ["c-9", "c-1", "", "c-4", "c-7"];
        assert_eq!(coded.ids, IdList::from_strs(ids).expect("ids"));
        let short = names.slice(0, 7);
        let e = encode(IdSource::Keys(&keys, &short), false)
            .err()
            .expect("a key beyond the ids")
            .to_string();
        assert!(e.contains("7 ids") && e.contains("key 7"), "{e}");
    }
}
