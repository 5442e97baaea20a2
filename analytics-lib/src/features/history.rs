//! [`CustomerHistory`]: the sales lines grouped by customer once, and the
//! one-pass aggregates behind [`super::customer_features`] at each cutoff.

use chrono::{Duration, NaiveDate};
use polars::prelude::*;
use rayon::prelude::*;

use super::columns::{NO_CATEGORY, category_codes, column, customer_codes, order_codes};
use super::*;
use crate::sums::Kahan;

/// The sales lines grouped by customer once, for features at several
/// cutoffs (training computes them at three): reading the columns, coding
/// the categories and grouping the lines by customer is done here once
/// instead of at every cutoff.
///
/// The grouping sorts on the lines' `customer_key` (the customer's row in
/// [`Sales::customers`], which are sorted by id; [`pack_by_customer`]): no
/// hashing of ids, and the customers come out in id order. The lines the
/// features read are *copied* into that order, packed (24 bytes a line), so
/// every cutoff reads them front to back: at millions of lines, a walk
/// through row numbers into five line columns missed the cache on every
/// line, at every cutoff.
pub struct CustomerHistory<'a> {
    default_as_of: NaiveDate,
    /// The completed, dated lines (the only ones a feature reads), grouped
    /// by customer in id order, in row order within a customer.
    lines: Vec<Line>,
    /// Category names by code.
    categories: Vec<String>,
    /// The id of each customer with such lines, in id order.
    ids: Vec<&'a str>,
    /// Customer `g`'s lines are `lines[start[g]..start[g + 1]]`.
    start: Vec<usize>,
}

/// One completed, dated sales line, as the features read it.
#[derive(Clone, Copy, Debug, Default)]
struct Line {
    /// The line's revenue; `has_revenue` is false for a null.
    revenue: f64,
    /// Days since 1970-01-01.
    day: i32,
    /// The order's code (`order_key`).
    order: u32,
    /// The category's code, `NO_CATEGORY` for a null.
    category: u32,
    has_revenue: bool,
}

impl<'a> CustomerHistory<'a> {
    pub fn new(sales: &'a Sales) -> Result<Self> {
        let lines = &sales.lines;
        let (category, categories) = category_codes(lines)?;
        let keys = customer_codes(lines)?;
        let orders = order_codes(lines)?;
        let values = LineValues::read(lines)?;
        let ids = column(&sales.customers, "customer_id")?
            .str()
            .map_err(pe("reading the customer ids"))?;
        if let Some(&k) = keys.iter().find(|&&k| k as usize >= ids.len()) {
            return Err(DataError::InvalidArgument {
                name: "sales lines",
                expected: format!("customer codes below {}", ids.len()),
                found: format!("code {k}"),
            });
        }
        // The lines a feature reads (completed, with a date), packed in
        // customer order; `count[k]..count[k + 1]` are customer k's.
        let (packed, count) = pack_by_customer(ids.len(), &values, &keys, &orders, &category);
        // Keep the customers that have such lines.
        let mut kept_ids = Vec::new();
        let mut start = vec![0usize];
        for (k, id) in ids.iter().enumerate() {
            if count[k + 1] > count[k] {
                kept_ids.push(id.unwrap_or_default());
                start.push(count[k + 1]);
            }
        }
        Ok(CustomerHistory {
            default_as_of: sales.default_as_of,
            lines: packed,
            categories,
            ids: kept_ids,
            start,
        })
    }

    /// The lines of customer `g` (in id order), in row order.
    fn lines_of(&self, g: usize) -> &[Line] {
        &self.lines[self.start[g]..self.start[g + 1]]
    }

    /// [`customer_features`] at `cutoff`.
    pub fn at(&self, cutoff: NaiveDate, categories: Option<&[String]>) -> Result<CustomerFeatures> {
        if let Some(c) = categories {
            check_categories(c)?;
        }
        let categories = match categories {
            Some(c) => c.to_vec(),
            None => self.categories_before(cutoff)?,
        };
        let frame = self.frame_at(cutoff, &categories)?;
        Ok(CustomerFeatures {
            cutoff,
            categories,
            frame,
        })
    }
}

/// The completed, dated lines copied into customer order, in row order
/// within a customer, and each customer's first slot (`customers + 1`
/// entries, the total last). A radix sort in two passes, so that no pass
/// writes at random across the whole array (at 10 M lines that missed the
/// cache on every line): the first appends each line to its *bucket* of
/// 2^shift customers (about 256 KiB of lines), in row order; the second
/// counts and places the lines of one bucket within its range. Buckets are
/// shared out among the threads, each reading all lines in the first pass.
fn pack_by_customer(
    customers: usize,
    values: &LineValues,
    keys: &[u32],
    orders: &[u32],
    category: &[u32],
) -> (Vec<Line>, Vec<usize>) {
    let mut count = vec![0usize; customers + 1];
    if customers == 0 {
        return (Vec::new(), count);
    }
    let per_customer = (keys.len() / customers).max(1);
    let target = (256 * 1024 / std::mem::size_of::<Line>() / per_customer).max(1);
    let shift = usize::BITS - 1 - target.leading_zeros();
    let buckets = customers.div_ceil(1 << shift);
    // Lines per bucket, then each bucket's first slot.
    let mut bucket_first = vec![0usize; buckets + 1];
    values.for_each_completed(|r, _, _| bucket_first[(keys[r] as usize >> shift) + 1] += 1);
    for b in 1..=buckets {
        bucket_first[b] += bucket_first[b - 1];
    }
    let total = bucket_first[buckets];
    let mut packed: Vec<Line> = (0..total)
        .into_par_iter()
        .map(|_| Line::default())
        .collect();
    let mut bucket_keys = vec![0u32; total];
    {
        // Pass 1: every thread appends the lines of its buckets.
        let parts = rayon::current_num_threads().clamp(1, 8).min(buckets);
        let bounds: Vec<usize> = (0..=parts).map(|p| p * buckets / parts).collect();
        let mut jobs = Vec::with_capacity(parts);
        let (mut lines_rest, mut keys_rest) = (packed.as_mut_slice(), bucket_keys.as_mut_slice());
        for p in 0..parts {
            let len = bucket_first[bounds[p + 1]] - bucket_first[bounds[p]];
            let (l, lt) = lines_rest.split_at_mut(len);
            let (k, kt) = keys_rest.split_at_mut(len);
            jobs.push((bounds[p]..bounds[p + 1], l, k));
            (lines_rest, keys_rest) = (lt, kt);
        }
        jobs.into_par_iter().for_each(|(range, lines, bkeys)| {
            let base = bucket_first[range.start];
            let mut next: Vec<usize> = bucket_first[range.clone()]
                .iter()
                .map(|f| f - base)
                .collect();
            values.for_each_completed(|r, day, revenue| {
                let k = keys[r];
                let b = (k as usize) >> shift;
                if !range.contains(&b) {
                    return;
                }
                let slot = &mut next[b - range.start];
                lines[*slot] = Line {
                    revenue: revenue.unwrap_or(0.0),
                    day,
                    order: orders[r],
                    category: category[r],
                    has_revenue: revenue.is_some(),
                };
                bkeys[*slot] = k;
                *slot += 1;
            });
        });
    }
    // Pass 2: in each bucket, its customers' counts and first slots, and
    // its lines in customer order (stable: row order within a customer).
    let mut regions = Vec::with_capacity(buckets);
    let (mut lines_rest, mut count_rest) = (packed.as_mut_slice(), &mut count[1..]);
    for b in 0..buckets {
        let len = bucket_first[b + 1] - bucket_first[b];
        let (l, lt) = lines_rest.split_at_mut(len);
        let width = ((b + 1) << shift).min(customers) - (b << shift);
        let (c, ct) = count_rest.split_at_mut(width);
        regions.push((b, l, c));
        (lines_rest, count_rest) = (lt, ct);
    }
    regions.into_par_iter().for_each_init(
        Vec::new,
        |scratch: &mut Vec<Line>, (b, region, ends)| {
            let lo = b << shift;
            let base = bucket_first[b];
            let keys_of = &bucket_keys[base..base + region.len()];
            // `ends[i]`: the slot after customer lo + i's lines, global.
            let mut next = vec![0usize; ends.len()];
            for &k in keys_of {
                next[k as usize - lo] += 1;
            }
            let mut at = 0;
            for (n, end) in next.iter_mut().zip(ends.iter_mut()) {
                let first = at;
                at += *n;
                *end = base + at;
                *n = first;
            }
            scratch.clear();
            scratch.extend_from_slice(region);
            for (line, &k) in scratch.iter().zip(keys_of) {
                let slot = &mut next[k as usize - lo];
                region[*slot] = *line;
                *slot += 1;
            }
        },
    );
    (packed, count)
}

/// One customer's aggregates over its completed lines dated before
/// `cutoff + 90 d` (the share columns' sums are in [`Scratch`]).
#[derive(Default)]
struct Customer {
    last: i32,
    first: i32,
    frequency: u32,
    orders_90d: u32,
    monetary: Kahan,
    revenue_90d: Kahan,
    target: Kahan,
}

/// A thread's buffers, reused from customer to customer.
#[derive(Default)]
struct Scratch {
    orders: Vec<u32>,
    recent: Vec<u32>,
    /// Per share column: the category's revenue in the history. A
    /// category the customer never bought stays at the empty sum, whose
    /// rounding is the 0 of "no such category".
    spent: Vec<Kahan>,
    /// The row [`CustomerHistory::row`] wrote last.
    row: Vec<f64>,
}

/// What one cutoff's rows are computed from: the day numbers of the
/// cutoff and of its windows, and the share column of each category code.
struct RowPlan {
    t: i32,
    recent_start: i32,
    target_end: i32,
    /// The share column of each category code (`usize::MAX`: none).
    column_of: Vec<usize>,
    shares: usize,
}

impl RowPlan {
    /// A row's width: the base features, the shares, the target.
    fn width(&self) -> usize {
        BASE_FEATURES.len() + self.shares + 1
    }
}

/// Rows written per parallel block.
const BLOCK: usize = 1 << 14;

impl CustomerHistory<'_> {
    fn plan(&self, cutoff: NaiveDate, categories: &[String]) -> RowPlan {
        let mut column_of = vec![usize::MAX; self.categories.len()];
        for (j, cat) in categories.iter().enumerate() {
            if let Some(k) = self.categories.iter().position(|c| c == cat) {
                column_of[k] = j;
            }
        }
        RowPlan {
            t: epoch_days(cutoff),
            recent_start: epoch_days(cutoff - Duration::days(HORIZON_DAYS)),
            target_end: epoch_days(cutoff + Duration::days(HORIZON_DAYS)),
            column_of,
            shares: categories.len(),
        }
    }

    /// The customers with history at `cutoff` (a completed, dated line
    /// before it), in id order; none is an error (nothing to train on or
    /// score).
    fn kept(&self, plan: &RowPlan, cutoff: NaiveDate) -> Result<Vec<usize>> {
        let kept: Vec<usize> = (0..self.ids.len())
            .into_par_iter()
            .filter(|&g| self.lines_of(g).iter().any(|l| l.day < plan.t))
            .collect();
        if kept.is_empty() {
            return Err(no_order_before(cutoff));
        }
        Ok(kept)
    }

    /// Customer `g`'s row at the plan's cutoff, written into `s.row` (its
    /// [`RowPlan::width`] values: the base features, the shares, the
    /// target), each line read once, front to back.
    fn row(&self, g: usize, plan: &RowPlan, s: &mut Scratch) {
        let (t, recent_start, target_end) = (plan.t, plan.recent_start, plan.target_end);
        s.orders.clear();
        s.recent.clear();
        s.spent.fill(Kahan::default());
        let mut c = Customer {
            last: i32::MIN,
            first: i32::MAX,
            ..Default::default()
        };
        for line in self.lines_of(g) {
            let day = line.day;
            if day >= target_end {
                continue;
            }
            let rev = line.has_revenue.then_some(line.revenue);
            if day >= t {
                if let Some(v) = rev {
                    c.target.add(v);
                }
                continue;
            }
            c.last = c.last.max(day);
            c.first = c.first.min(day);
            let recent = day >= recent_start;
            let o = line.order;
            // Lines of one order are usually next to each other.
            if s.orders.last() != Some(&o) {
                s.orders.push(o);
            }
            if recent && s.recent.last() != Some(&o) {
                s.recent.push(o);
            }
            let Some(v) = rev else { continue };
            c.monetary.add(v);
            if recent {
                c.revenue_90d.add(v);
            }
            if line.category != NO_CATEGORY {
                match plan.column_of[line.category as usize] {
                    usize::MAX => {}
                    j => s.spent[j].add(v),
                }
            }
        }
        let distinct = |v: &mut Vec<u32>| {
            if v.len() > 1 {
                v.sort_unstable();
                v.dedup();
            }
            v.len() as u32
        };
        c.frequency = distinct(&mut s.orders);
        c.orders_90d = distinct(&mut s.recent);
        let m = round_money(c.monetary.sum);
        let base = [
            f64::from(t - c.last),
            f64::from(c.frequency),
            m,
            f64::from(t - c.first),
            m / f64::from(c.frequency),
            f64::from(c.orders_90d),
            round_money(c.revenue_90d.sum),
        ];
        let share = (0..plan.shares).map(|j| {
            if m > 0.0 {
                round_money(s.spent[j].sum) / m
            } else {
                0.0
            }
        });
        let row = base
            .into_iter()
            .chain(share)
            .chain([round_money(c.target.sum)]);
        for (slot, v) in s.row.iter_mut().zip(row) {
            *slot = v;
        }
    }

    /// A thread's buffers for the plan's rows.
    fn scratch(plan: &RowPlan) -> Scratch {
        Scratch {
            spent: vec![Kahan::default(); plan.shares],
            row: vec![0.0; plan.width()],
            ..Default::default()
        }
    }

    /// One row per customer with a line before `cutoff`, sorted by
    /// `customer_id`: each customer's lines are read once, front to back, and
    /// its row is written straight into the columns (parallel blocks of
    /// customers); the share columns are those of `categories`.
    fn frame_at(&self, cutoff: NaiveDate, categories: &[String]) -> Result<DataFrame> {
        let plan = self.plan(cutoff, categories);
        let kept = self.kept(&plan, cutoff)?;
        let n = kept.len();
        let ids: Vec<&str> = kept.iter().map(|&g| self.ids[g]).collect();
        let width = plan.width();
        let mut values: Vec<Vec<f64>> = (0..width).map(|_| vec![0.0; n]).collect();
        let mut blocks: Vec<(&[usize], Vec<&mut [f64]>)> = Vec::with_capacity(n.div_ceil(BLOCK));
        let mut rests: Vec<&mut [f64]> = values.iter_mut().map(|c| c.as_mut_slice()).collect();
        for rows in kept.chunks(BLOCK) {
            let mut cols = Vec::with_capacity(width);
            for rest in rests.iter_mut() {
                let (head, tail) = std::mem::take(rest).split_at_mut(rows.len());
                cols.push(head);
                *rest = tail;
            }
            blocks.push((rows, cols));
        }
        blocks.into_par_iter().for_each_init(
            || Self::scratch(&plan),
            |s, (rows, mut cols)| {
                for (i, &g) in rows.iter().enumerate() {
                    self.row(g, &plan, s);
                    for (col, &v) in cols.iter_mut().zip(&s.row) {
                        col[i] = v;
                    }
                }
            },
        );
        let names = feature_names(categories)
            .into_iter()
            .chain([TARGET.to_string()]);
        let mut columns = vec![Column::new("customer_id".into(), ids)];
        columns.extend(
            names
                .zip(values)
                .map(|(name, v)| Column::new(name.into(), v)),
        );
        DataFrame::new(n, columns).map_err(pe("assembling customer features"))
    }

    /// [`FeatureData::training_rows`] from the grouped lines: the rows of
    /// [`Self::frame_at`] written straight into the row-major matrix, the
    /// target and the baseline (no frame, no second copy: at millions of
    /// customers that halves the fresh memory a cutoff touches).
    fn rows_at(&self, cutoff: NaiveDate, categories: &[String]) -> Result<TrainingRows> {
        check_categories(categories)?;
        let plan = self.plan(cutoff, categories);
        let kept = self.kept(&plan, cutoff)?;
        let n = kept.len();
        let features = plan.width() - 1;
        let baseline_at = BASE_FEATURES
            .iter()
            .position(|&f| f == BASELINE)
            .expect("the baseline is a base feature");
        let mut x = vec![0.0; n * features];
        let mut y = vec![0.0; n];
        let mut baseline = vec![0.0; n];
        x.par_chunks_mut(BLOCK * features)
            .zip(y.par_chunks_mut(BLOCK))
            .zip(baseline.par_chunks_mut(BLOCK))
            .zip(kept.par_chunks(BLOCK))
            .for_each_init(
                || Self::scratch(&plan),
                |s, (((x, y), baseline), rows)| {
                    for (i, &g) in rows.iter().enumerate() {
                        self.row(g, &plan, s);
                        x[i * features..(i + 1) * features].copy_from_slice(&s.row[..features]);
                        y[i] = s.row[features];
                        baseline[i] = s.row[baseline_at];
                    }
                },
            );
        Ok(TrainingRows {
            x: FeatureMatrix::new(feature_names(categories), x)?,
            y,
            baseline,
        })
    }
}

impl FeatureData for CustomerHistory<'_> {
    fn default_as_of(&self) -> NaiveDate {
        self.default_as_of
    }

    /// From the grouped lines: the categories of completed lines dated
    /// before `cutoff` (as [`categories_before`] on the lines).
    fn categories_before(&self, cutoff: NaiveDate) -> Result<Vec<String>> {
        let t = epoch_days(cutoff);
        let mut seen = vec![false; self.categories.len()];
        for line in &self.lines {
            if line.category != NO_CATEGORY && line.day < t {
                seen[line.category as usize] = true;
            }
        }
        let mut cats: Vec<String> = self
            .categories
            .iter()
            .zip(seen)
            .filter(|(_, s)| *s)
            .map(|(c, _)| c.to_string())
            .collect();
        cats.sort();
        Ok(cats)
    }

    fn customer_features(
        &self,
        cutoff: NaiveDate,
        categories: Option<&[String]>,
    ) -> Result<CustomerFeatures> {
        self.at(cutoff, categories)
    }

    fn training_rows(&self, cutoff: NaiveDate, categories: &[String]) -> Result<TrainingRows> {
        self.rows_at(cutoff, categories)
    }

    fn for_cutoffs(&self) -> Result<Box<dyn FeatureData + '_>> {
        Ok(Box::new(Borrowed(self)))
    }
}
