//! Customers' feature rows at one date, held compactly for lookups by id:
//! what `serve` answers `{"customer_id"}` requests from once the sales lines
//! are gone.
//!
//! [`CustomerRows::compute`] runs [`crate::features::customer_features`]
//! once, at the reference date, with **every** category of the data, and
//! keeps each customer's base features ([`BASE_FEATURES`]) densely and its
//! category shares sparsely (only the non-zero ones: most customers buy in
//! one or two categories). A model's own feature list, the spend model's
//! (`BASE_FEATURES` + `share_<c>` of its categories) or the segment model's
//! (`RFM_FEATURES` + shares), is a [`Projection`] of these rows: a share of
//! a category the data does not have is 0, exactly what `customer_features`
//! gives for that list. The values are bit for bit those of
//! `customer_features(sales, as_of, Some(list))`: a share is the category's
//! revenue over `monetary`, whatever the list (revenue outside the list
//! counts in `monetary` either way). The tests compare every customer.
//!
//! Memory: 7 × 8 bytes per customer, 10 bytes per non-zero share and the id
//! index, instead of every order line with its strings.

use std::collections::HashMap;

use chrono::NaiveDate;

use crate::error::{DataError, Result};
use crate::features::{BASE_FEATURES, CustomerFeatures, FeatureData, SHARE_PREFIX};

const NB: usize = BASE_FEATURES.len();

/// Every customer's feature rows at `as_of`, for every category of the data.
#[derive(Debug)]
pub struct CustomerRows {
    as_of: NaiveDate,
    /// The data's categories, sorted: the share codes index it.
    categories: Vec<String>,
    /// Customer id → row.
    index: HashMap<Box<str>, u32>,
    /// Row-major base features (`BASE_FEATURES` order).
    base: Vec<f64>,
    /// Row `r`'s shares: `share_cat[share_start[r]..share_start[r + 1]]`.
    share_start: Vec<u32>,
    share_cat: Vec<u16>,
    share_value: Vec<f64>,
}

/// Where each feature of a model's list comes from.
#[derive(Clone, Debug)]
pub struct Projection {
    names: Vec<String>,
    /// (output position, base column).
    base: Vec<(usize, usize)>,
    /// Output positions of the share features (zeroed before a row's
    /// non-zero shares are written).
    shares: Vec<usize>,
    /// Category code → output position, when the list has that category.
    slot_of_category: Vec<Option<usize>>,
}

impl Projection {
    /// The feature names, in output order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

impl CustomerRows {
    /// The feature rows of every customer with a completed order before
    /// `as_of`, with every category of the data (`data`: the per-line
    /// sales, or aggregates a warehouse computed at `as_of`).
    pub fn compute<D: FeatureData + ?Sized>(data: &D, as_of: NaiveDate) -> Result<Self> {
        Self::from_features(&data.customer_features(as_of, None)?)
    }

    /// The rows of customer features computed with every category.
    pub fn from_features(f: &CustomerFeatures) -> Result<Self> {
        let as_of = f.cutoff;
        let m = f.matrix()?;
        let ids = f.customer_ids()?;
        let categories = f.categories.clone();
        if categories.len() > usize::from(u16::MAX) {
            return Err(DataError::InvalidArgument {
                name: "categories",
                expected: format!("at most {} categories", u16::MAX),
                found: format!("{}", categories.len()),
            });
        }
        let names = m.names();
        let col = |n: &str| {
            names
                .iter()
                .position(|x| x == n)
                .ok_or_else(|| DataError::InvalidArgument {
                    name: "customer features",
                    expected: format!("a column `{n}`"),
                    found: format!("columns [{}]", names.join(", ")),
                })
        };
        let base_cols: Vec<usize> = BASE_FEATURES
            .iter()
            .map(|n| col(n))
            .collect::<Result<_>>()?;
        let share_cols: Vec<usize> = categories
            .iter()
            .map(|c| col(&format!("{SHARE_PREFIX}{c}")))
            .collect::<Result<_>>()?;
        let n = m.n_rows();
        let mut base = Vec::with_capacity(n * NB);
        let mut share_start = Vec::with_capacity(n + 1);
        let mut share_cat = Vec::new();
        let mut share_value = Vec::new();
        let mut index = HashMap::with_capacity(n);
        share_start.push(0u32);
        for (i, id) in ids.into_iter().enumerate() {
            let r = m.row(i);
            base.extend(base_cols.iter().map(|&j| r[j]));
            for (code, &j) in share_cols.iter().enumerate() {
                // Every value but +0.0 is kept (so -0.0 and NaN survive).
                if r[j].to_bits() != 0 {
                    share_cat.push(code as u16);
                    share_value.push(r[j]);
                }
            }
            share_start.push(u32::try_from(share_cat.len()).map_err(|_| {
                DataError::InvalidArgument {
                    name: "customer features",
                    expected: format!("at most {} non-zero shares", u32::MAX),
                    found: "more".into(),
                }
            })?);
            index.insert(id.into_boxed_str(), i as u32);
        }
        share_cat.shrink_to_fit();
        share_value.shrink_to_fit();
        Ok(CustomerRows {
            as_of,
            categories,
            index,
            base,
            share_start,
            share_cat,
            share_value,
        })
    }

    pub fn as_of(&self) -> NaiveDate {
        self.as_of
    }

    /// The data's categories, sorted.
    pub fn categories(&self) -> &[String] {
        &self.categories
    }

    /// Customers held.
    pub fn len(&self) -> usize {
        self.share_start.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held by the rows and the index (an estimate of the heap).
    pub fn heap_bytes(&self) -> usize {
        let ids: usize = self.index.keys().map(|k| k.len()).sum();
        ids + self.index.capacity() * (std::mem::size_of::<(Box<str>, u32)>() + 1)
            + self.base.capacity() * 8
            + self.share_start.capacity() * 4
            + self.share_cat.capacity() * 2
            + self.share_value.capacity() * 8
    }

    /// The row of customer `id`, if it has a completed order before `as_of`.
    pub fn find(&self, id: &str) -> Option<u32> {
        self.index.get(id).copied()
    }

    /// How the feature list `names` reads these rows: each name is a base
    /// feature or `share_<category>` (a category absent from the data reads
    /// 0); anything else is an error naming it.
    pub fn projection(&self, names: &[String]) -> Result<Projection> {
        let by_category: HashMap<&str, usize> = self
            .categories
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i))
            .collect();
        let mut p = Projection {
            names: names.to_vec(),
            base: Vec::new(),
            shares: Vec::new(),
            slot_of_category: vec![None; self.categories.len()],
        };
        for (j, name) in names.iter().enumerate() {
            if let Some(b) = BASE_FEATURES.iter().position(|n| n == name) {
                p.base.push((j, b));
            } else if let Some(c) = name.strip_prefix(SHARE_PREFIX) {
                p.shares.push(j);
                if let Some(&code) = by_category.get(c) {
                    p.slot_of_category[code] = Some(j);
                }
            } else {
                return Err(DataError::InvalidArgument {
                    name: "feature list",
                    expected: format!(
                        "base features ({}) or {SHARE_PREFIX}<category>",
                        BASE_FEATURES.join(", ")
                    ),
                    found: format!("`{name}`"),
                });
            }
        }
        Ok(p)
    }

    /// Write row `row` through `p` into `out` (`p.len()` values).
    pub fn write(&self, row: u32, p: &Projection, out: &mut [f64]) {
        let r = row as usize;
        let base = &self.base[r * NB..(r + 1) * NB];
        for &(j, b) in &p.base {
            out[j] = base[b];
        }
        for &j in &p.shares {
            out[j] = 0.0;
        }
        let (lo, hi) = (
            self.share_start[r] as usize,
            self.share_start[r + 1] as usize,
        );
        for k in lo..hi {
            if let Some(j) = p.slot_of_category[usize::from(self.share_cat[k])] {
                out[j] = self.share_value[k];
            }
        }
    }

    /// Customer `id`'s features through `p`, if it has a row.
    pub fn row(&self, id: &str, p: &Projection) -> Option<Vec<f64>> {
        let r = self.find(id)?;
        let mut out = vec![0.0; p.len()];
        self.write(r, p, &mut out);
        Some(out)
    }

    /// Mean of each feature of `p` over the customers (rows in the order
    /// `customer_features` returns them: the same additions as a mean over
    /// its matrix).
    pub fn means(&self, p: &Projection) -> Vec<f64> {
        let mut sums = vec![0.0; p.len()];
        let mut row = vec![0.0; p.len()];
        for r in 0..self.len() {
            self.write(r as u32, p, &mut row);
            sums.iter_mut().zip(&row).for_each(|(s, v)| *s += v);
        }
        let n = self.len().max(1) as f64;
        sums.iter_mut().for_each(|s| *s /= n);
        sums
    }

    /// Every customer's row through `p`, in row order, with its id
    /// (ids are not kept in row order: this sorts them back, for tests and
    /// exports).
    pub fn rows(&self, p: &Projection) -> Vec<(String, Vec<f64>)> {
        let mut ids: Vec<(&str, u32)> = self.index.iter().map(|(k, &v)| (&**k, v)).collect();
        ids.sort_unstable_by_key(|&(_, r)| r);
        ids.into_iter()
            .map(|(id, r)| {
                let mut out = vec![0.0; p.len()];
                self.write(r, p, &mut out);
                (id.to_string(), out)
            })
            .collect()
    }
}
