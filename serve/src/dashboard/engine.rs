//! The dashboard's per-request engine: the contract's KPI definitions (as in
//! `analytics_lib::kpi`) evaluated on structures built once at start-up,
//! instead of one polars query (or one scan of every line) per figure.
//!
//! Two structures, both built from the completed order lines:
//!
//! * **A revenue cube.** One cell per (segment, state, channel, category)
//!   that has lines; in each cell, revenue and orders per day and per
//!   calendar month (sparse, sorted). Revenue of a period is the sum of the
//!   whole months inside it plus the days of the partial months at its
//!   edges, so a filter change reads a few dozen numbers per cell instead of
//!   every line. Orders per category add up across cells and days because an
//!   order has one day, one customer (state, segment) and one channel. This
//!   gives revenue (current and previous period), the category breakdown,
//!   revenue by state and the monthly series.
//! * **Orders grouped by customer.** One record per completed order (day,
//!   and a *profile*: its channel and the set of its lines' categories,
//!   interned), customers sorted by (segment, state) so that a segment or
//!   state filter is a few contiguous customer ranges, and each customer's
//!   orders sorted by day. Everything that counts distinct orders or
//!   customers (orders, active customers, churn, customers by state, the
//!   cohort matrix) is settled per customer in one pass over these 6-byte
//!   records, current and previous period together, on two threads.
//!
//! The results equal `kpi::kpis`, `kpi::breakdown`, `kpi::cohort_retention`
//! and `kpi::monthly_revenue` on the same data and filter (up to the order of
//! floating-point additions): [`super::DashboardData::build`] checks the
//! default view against `kpi::kpis` at start-up, the unit tests below check
//! random filters against a line-by-line reference, and the API tests check
//! several filters against the functions on the full frame.

use std::collections::HashMap;

use anyhow::bail;
use chrono::{Datelike, Duration, NaiveDate};

/// Code of a missing value (category, state, channel or segment).
pub const NONE: u8 = u8::MAX;

/// Below this many orders one thread scans them all.
const PARALLEL_MIN_ORDERS: usize = 200_000;

/// Completed order lines as plain columns, in any row order: what the
/// engine is built from. Codes index the dictionaries of [`Dims`]
/// ([`NONE`]: missing); `order` and `customer` are dense codes from 0.
#[derive(Clone, Debug, Default)]
pub struct Lines {
    pub order: Vec<u32>,
    pub customer: Vec<u32>,
    /// Days since 1970-01-01.
    pub day: Vec<i32>,
    pub channel: Vec<u8>,
    pub category: Vec<u8>,
    /// The customer's state.
    pub state: Vec<u8>,
    pub revenue: Vec<f64>,
}

/// Sizes of the dictionaries behind the codes (at most 254 each).
#[derive(Clone, Copy, Debug)]
pub struct Dims {
    pub categories: usize,
    pub states: usize,
    pub channels: usize,
    pub segments: usize,
}

/// One cell of the revenue cube (codes as slots: `n` = missing).
#[derive(Clone, Copy, Debug)]
struct Cell {
    segment: u8,
    state: u8,
    channel: u8,
    category: u8,
}

/// Customers `lo..hi` (ranks) share a segment and a state (slots).
#[derive(Clone, Copy, Debug)]
struct Group {
    segment: u8,
    state: u8,
    lo: u32,
    hi: u32,
}

/// The structures, immutable once built.
pub struct Engine {
    /// Completed lines the engine was built from.
    pub lines: usize,
    pub orders: usize,
    pub customers: usize,
    /// `year × 12 + month0` of month index 0.
    pub first_month: i32,
    pub n_months: usize,
    pub n_categories: usize,
    pub n_states: usize,
    n_channels: usize,
    n_segments: usize,
    /// Below this many orders in scope one thread does all.
    parallel_min: usize,
    /// Periods of at most this many months of data take the one-word path
    /// (64; the tests lower it to check the general one).
    one_word_months: usize,
    /// Days since epoch of day index 0 (the first day with an order).
    first_day: i32,
    n_days: usize,
    /// Day index → month index.
    month_of_day: Vec<u16>,
    /// Month index → day index of its first day, clamped to `0..=n_days`
    /// (`n_months + 1` entries).
    month_start: Vec<i32>,
    // Orders, grouped by customer rank, each customer's sorted by day.
    order_day: Vec<u16>,
    order_profile: Vec<u32>,
    /// Customer rank → its orders `cust_start[r]..cust_start[r + 1]`.
    cust_start: Vec<u32>,
    groups: Vec<Group>,
    /// Profile → channel slot, and category slots
    /// `profile_cats[profile_cat_start[p]..profile_cat_start[p + 1]]`.
    profile_channel: Vec<u8>,
    profile_cat_start: Vec<u32>,
    profile_cats: Vec<u8>,
    // The revenue cube: per cell, entries by day and by month.
    cells: Vec<Cell>,
    day_start: Vec<u32>,
    day_idx: Vec<u16>,
    day_revenue: Vec<f64>,
    day_orders: Vec<u32>,
    month_entry_start: Vec<u32>,
    month_idx: Vec<u16>,
    month_revenue: Vec<f64>,
    month_orders: Vec<u32>,
}

/// What one request asks: scope masks (by code; None = all) and the period.
pub struct Query {
    pub categories: Option<Vec<bool>>,
    pub states: Option<Vec<bool>>,
    pub channels: Option<Vec<bool>>,
    pub segment: Option<u8>,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub churn_window_days: i64,
}

/// Headline figures of one period.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Totals {
    pub revenue: f64,
    pub orders: u64,
    pub active_customers: u64,
    /// Customers active in the earlier churn window, and those of them not
    /// active in the later one.
    pub churn_base: u64,
    pub churned: u64,
}

impl Totals {
    pub fn average_ticket(&self) -> Option<f64> {
        (self.orders > 0).then(|| self.revenue / self.orders as f64)
    }
    pub fn churn_rate(&self) -> Option<f64> {
        (self.churn_base > 0).then(|| self.churned as f64 / self.churn_base as f64)
    }
}

/// Everything one request yields.
#[derive(Clone, Debug, Default)]
pub struct Scan {
    pub current: Totals,
    pub previous: Totals,
    /// Revenue per month index, in scope, any period, and whether lines are
    /// behind it (> 0; a month without lines is absent from
    /// `kpi::monthly_revenue`).
    pub monthly: Vec<f64>,
    pub monthly_lines: Vec<u64>,
    /// Per category code (+1 slot for missing): revenue, orders.
    pub cat_revenue: Vec<f64>,
    pub cat_orders: Vec<u64>,
    /// Per state code (+1 slot): revenue, orders, customers.
    pub state_revenue: Vec<f64>,
    pub state_orders: Vec<u64>,
    pub state_customers: Vec<u64>,
    /// Cohort (month index of first order in the period) → size, and
    /// active customers by month offset.
    pub cohort_size: Vec<u64>,
    pub cohort_active: Vec<Vec<u64>>,
}

fn epoch_days(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()).num_days() as i32
}

pub fn month_key(first_month: i32, idx: usize) -> String {
    let m = first_month + idx as i32;
    format!("{:04}-{:02}", m.div_euclid(12), m.rem_euclid(12) + 1)
}

pub fn month_of(d: NaiveDate) -> i32 {
    d.year() * 12 + d.month0() as i32
}

/// Slot of a code in a dictionary of `n` values: `n` for missing.
fn slot(code: u8, n: usize) -> usize {
    if code == NONE || usize::from(code) >= n {
        n
    } else {
        usize::from(code)
    }
}

/// Slot mask (`n + 1` entries) of an optional code mask: the missing slot
/// is in scope only without a filter.
fn slot_mask(m: &Option<Vec<bool>>, n: usize) -> Vec<bool> {
    match m {
        None => vec![true; n + 1],
        Some(m) => (0..=n).map(|i| i < n && m.get(i) == Some(&true)).collect(),
    }
}

/// Start offsets (`n + 1` entries) of a counting sort by `key`.
fn offsets(keys: impl Iterator<Item = usize>, n: usize) -> Vec<u32> {
    let mut start = vec![0u32; n + 1];
    for k in keys {
        start[k + 1] += 1;
    }
    for i in 0..n {
        start[i + 1] += start[i];
    }
    start
}

/// The day windows of one request, as day indices.
#[derive(Clone, Copy)]
struct Windows {
    /// Current period `[f, t]`; previous `[pf, f)`.
    f: i32,
    t: i32,
    pf: i32,
    /// Churn of the current period: earlier `[ce0, ce1)`, later `[ce1, t]`;
    /// of the previous one: earlier `[pe0, pe1)`, later `[pe1, f)`.
    ce0: i32,
    ce1: i32,
    pe0: i32,
    pe1: i32,
    /// No order before this day matters.
    lo: i32,
    /// Month index of the period's first month with data (cohort bit 0).
    m0: usize,
}

const CUR: u8 = 1;
const PREV: u8 = 2;
const C_EARLIER: u8 = 4;
const C_LATER: u8 = 8;
const P_EARLIER: u8 = 16;
const P_LATER: u8 = 32;

impl Engine {
    /// Build the engine from completed lines; `segment_of[customer]` is the
    /// customer's segment code ([`NONE`]: none).
    #[allow(clippy::needless_range_loop)] // one index over parallel columns
    pub fn build(
        lines: &Lines,
        dims: Dims,
        segment_of: &[u8],
        min_date: NaiveDate,
        max_date: NaiveDate,
    ) -> anyhow::Result<Engine> {
        let n = lines.order.len();
        let same = [
            lines.customer.len(),
            lines.day.len(),
            lines.channel.len(),
            lines.category.len(),
            lines.state.len(),
            lines.revenue.len(),
        ];
        if same.iter().any(|&l| l != n) {
            bail!("the dashboard's line columns differ in length: {n} orders and {same:?}");
        }
        for (what, k) in [
            ("categories", dims.categories),
            ("states", dims.states),
            ("channels", dims.channels),
            ("segments", dims.segments),
        ] {
            if k >= usize::from(NONE) {
                bail!("the dashboard takes at most 254 {what}, found {k}");
            }
        }
        let first_day = epoch_days(min_date);
        let n_days = (epoch_days(max_date) - first_day + 1).max(1) as usize;
        if n_days > usize::from(u16::MAX) {
            bail!(
                "the dashboard takes at most {} days of orders, found {n_days} ({min_date} to {max_date})",
                u16::MAX
            );
        }
        let first_month = month_of(min_date);
        let n_months = (month_of(max_date) - first_month + 1).max(1) as usize;
        let mut month_of_day = Vec::with_capacity(n_days);
        let mut month_start = vec![0i32; n_months + 1];
        for i in 0..n_days {
            let m = (month_of(min_date + Duration::days(i as i64)) - first_month) as usize;
            if i > 0 && m != usize::from(month_of_day[i - 1]) {
                month_start[m] = i as i32;
            }
            month_of_day.push(m as u16);
        }
        month_start[n_months] = n_days as i32;

        let (nc, ns, nch, nseg) = (dims.categories, dims.states, dims.channels, dims.segments);
        let n_orders = lines
            .order
            .iter()
            .map(|&o| o as usize + 1)
            .max()
            .unwrap_or(0);
        let n_customers = lines
            .customer
            .iter()
            .map(|&c| c as usize + 1)
            .max()
            .unwrap_or(0);
        if n_orders > u32::MAX as usize - 1 || n > u32::MAX as usize - 1 {
            bail!("the dashboard takes fewer than 2^32 lines, found {n}");
        }

        // Per order: day, channel, customer; per customer: state, segment.
        let mut o_day = vec![i32::MIN; n_orders];
        let mut o_chan = vec![0u8; n_orders];
        let mut o_cust = vec![0u32; n_orders];
        let mut c_state = vec![ns as u8; n_customers];
        let mut c_has = vec![false; n_customers];
        for i in 0..n {
            let (o, c) = (lines.order[i] as usize, lines.customer[i] as usize);
            let d = lines.day[i] - first_day;
            if !(0..n_days as i32).contains(&d) {
                bail!(
                    "an order line dated outside {min_date}..={max_date} ({} days after 1970-01-01)",
                    lines.day[i]
                );
            }
            o_day[o] = d;
            o_chan[o] = slot(lines.channel[i], nch) as u8;
            o_cust[o] = c as u32;
            c_state[c] = slot(lines.state[i], ns) as u8;
            c_has[c] = true;
        }
        let c_seg: Vec<u8> = (0..n_customers)
            .map(|c| slot(segment_of.get(c).copied().unwrap_or(NONE), nseg) as u8)
            .collect();

        // Lines by order (counting sort): each order's categories → profile,
        // and its (category, revenue) records → the cube.
        let by_order_start = offsets(lines.order.iter().map(|&o| o as usize), n_orders);
        let mut fill = by_order_start.clone();
        let mut by_order = vec![0u32; n];
        for (i, &o) in lines.order.iter().enumerate() {
            by_order[fill[o as usize] as usize] = i as u32;
            fill[o as usize] += 1;
        }
        drop(fill);
        let mut profile_of: HashMap<Vec<u8>, u32> = HashMap::new();
        let mut profile_channel = Vec::new();
        let mut profile_cat_start = vec![0u32];
        let mut profile_cats = Vec::new();
        let mut o_profile = vec![0u32; n_orders];
        let key_of = |c: usize, ch: usize, cat: usize| -> u32 {
            let g = (usize::from(c_seg[c]) * (ns + 1) + usize::from(c_state[c])) * (nch + 1);
            ((g + ch) * (nc + 1) + cat) as u32
        };
        let mut cell_of: HashMap<u32, u32> = HashMap::new();
        let mut cells = Vec::new();
        let mut rec_cell = Vec::with_capacity(n);
        let mut rec_day = Vec::with_capacity(n);
        let mut rec_rev = Vec::with_capacity(n);
        let mut cats: Vec<(u8, f64)> = Vec::new();
        let mut key: Vec<u8> = Vec::new();
        for o in 0..n_orders {
            let rows = &by_order[by_order_start[o] as usize..by_order_start[o + 1] as usize];
            if rows.is_empty() {
                continue;
            }
            cats.clear();
            cats.extend(rows.iter().map(|&i| {
                (
                    slot(lines.category[i as usize], nc) as u8,
                    lines.revenue[i as usize],
                )
            }));
            cats.sort_by_key(|&(c, _)| c);
            key.clear();
            key.push(o_chan[o]);
            let (c, ch) = (o_cust[o] as usize, usize::from(o_chan[o]));
            let mut k = 0;
            while k < cats.len() {
                let cat = cats[k].0;
                let mut rev = 0.0;
                while k < cats.len() && cats[k].0 == cat {
                    rev += cats[k].1;
                    k += 1;
                }
                key.push(cat);
                let ck = key_of(c, ch, usize::from(cat));
                let id = *cell_of.entry(ck).or_insert_with(|| {
                    cells.push(Cell {
                        segment: c_seg[c],
                        state: c_state[c],
                        channel: ch as u8,
                        category: cat,
                    });
                    (cells.len() - 1) as u32
                });
                rec_cell.push(id);
                rec_day.push(o_day[o] as u16);
                rec_rev.push(rev);
            }
            o_profile[o] = match profile_of.get(key.as_slice()) {
                Some(&p) => p,
                None => {
                    let p = profile_channel.len() as u32;
                    profile_channel.push(key[0]);
                    profile_cats.extend_from_slice(&key[1..]);
                    profile_cat_start.push(profile_cats.len() as u32);
                    profile_of.insert(key.clone(), p);
                    p
                }
            };
        }
        drop((by_order, by_order_start, profile_of, cell_of));

        // The cube: records by cell (counting sort), by day within a cell.
        let n_cells = cells.len();
        let rec_start = offsets(rec_cell.iter().map(|&c| c as usize), n_cells);
        let mut fill = rec_start.clone();
        let mut recs = vec![(0u16, 0.0f64); rec_cell.len()];
        for (r, &c) in rec_cell.iter().enumerate() {
            recs[fill[c as usize] as usize] = (rec_day[r], rec_rev[r]);
            fill[c as usize] += 1;
        }
        drop((fill, rec_cell, rec_day, rec_rev));
        let mut day_start = Vec::with_capacity(n_cells + 1);
        let (mut day_idx, mut day_revenue, mut day_orders) = (Vec::new(), Vec::new(), Vec::new());
        let mut month_entry_start = Vec::with_capacity(n_cells + 1);
        let (mut month_idx, mut month_revenue, mut month_orders) =
            (Vec::new(), Vec::new(), Vec::new());
        for c in 0..n_cells {
            day_start.push(day_idx.len() as u32);
            month_entry_start.push(month_idx.len() as u32);
            let rs = &mut recs[rec_start[c] as usize..rec_start[c + 1] as usize];
            rs.sort_by_key(|r| r.0);
            let (d0, m0) = (day_idx.len(), month_idx.len());
            for &(d, rev) in rs.iter() {
                if day_idx.len() > d0 && day_idx[day_idx.len() - 1] == d {
                    let k = day_idx.len() - 1;
                    day_revenue[k] += rev;
                    day_orders[k] += 1;
                } else {
                    day_idx.push(d);
                    day_revenue.push(rev);
                    day_orders.push(1u32);
                }
                let m = month_of_day[usize::from(d)];
                if month_idx.len() > m0 && month_idx[month_idx.len() - 1] == m {
                    let k = month_idx.len() - 1;
                    month_revenue[k] += rev;
                    month_orders[k] += 1;
                } else {
                    month_idx.push(m);
                    month_revenue.push(rev);
                    month_orders.push(1u32);
                }
            }
        }
        day_start.push(day_idx.len() as u32);
        month_entry_start.push(month_idx.len() as u32);
        drop(recs);

        // Customers ranked by (segment, state, code); orders by (rank, day).
        let n_groups = (nseg + 1) * (ns + 1);
        let group_of = |c: usize| usize::from(c_seg[c]) * (ns + 1) + usize::from(c_state[c]);
        let present: Vec<usize> = (0..n_customers).filter(|&c| c_has[c]).collect();
        let g_start = offsets(present.iter().map(|&c| group_of(c)), n_groups);
        let mut fill = g_start.clone();
        let mut rank_of = vec![u32::MAX; n_customers];
        for &c in &present {
            let g = group_of(c);
            rank_of[c] = fill[g];
            fill[g] += 1;
        }
        drop(fill);
        let groups: Vec<Group> = (0..n_groups)
            .filter(|&g| g_start[g + 1] > g_start[g])
            .map(|g| Group {
                segment: (g / (ns + 1)) as u8,
                state: (g % (ns + 1)) as u8,
                lo: g_start[g],
                hi: g_start[g + 1],
            })
            .collect();
        let n_ranked = present.len();
        let live_orders: Vec<usize> = (0..n_orders).filter(|&o| o_day[o] != i32::MIN).collect();
        let cust_start = offsets(
            live_orders
                .iter()
                .map(|&o| rank_of[o_cust[o] as usize] as usize),
            n_ranked,
        );
        let mut fill = cust_start.clone();
        let mut sorted = vec![0u32; live_orders.len()];
        for &o in &live_orders {
            let r = rank_of[o_cust[o] as usize] as usize;
            sorted[fill[r] as usize] = o as u32;
            fill[r] += 1;
        }
        drop(fill);
        for r in 0..n_ranked {
            sorted[cust_start[r] as usize..cust_start[r + 1] as usize]
                .sort_unstable_by_key(|&o| (o_day[o as usize], o));
        }
        let order_day = sorted.iter().map(|&o| o_day[o as usize] as u16).collect();
        let order_profile = sorted.iter().map(|&o| o_profile[o as usize]).collect();

        Ok(Engine {
            lines: n,
            orders: live_orders.len(),
            customers: n_ranked,
            first_month,
            n_months,
            n_categories: nc,
            n_states: ns,
            n_channels: nch,
            n_segments: nseg,
            parallel_min: PARALLEL_MIN_ORDERS,
            one_word_months: 64,
            first_day,
            n_days,
            month_of_day,
            month_start,
            order_day,
            order_profile,
            cust_start,
            groups,
            profile_channel,
            profile_cat_start,
            profile_cats,
            cells,
            day_start,
            day_idx,
            day_revenue,
            day_orders,
            month_entry_start,
            month_idx,
            month_revenue,
            month_orders,
        })
    }

    /// Bytes held by the per-request structures (for the start-up line).
    pub fn heap_bytes(&self) -> usize {
        self.month_of_day.len() * 2
            + self.month_start.len() * 4
            + self.order_day.len() * 2
            + self.order_profile.len() * 4
            + self.cust_start.len() * 4
            + self.groups.len() * size_of::<Group>()
            + self.profile_channel.len()
            + self.profile_cat_start.len() * 4
            + self.profile_cats.len()
            + self.cells.len() * size_of::<Cell>()
            + (self.day_start.len() + self.month_entry_start.len()) * 4
            + self.day_idx.len() * (2 + 8 + 4)
            + self.month_idx.len() * (2 + 8 + 4)
    }

    fn new_scan(&self) -> Scan {
        Scan {
            monthly: vec![0.0; self.n_months],
            monthly_lines: vec![0; self.n_months],
            cat_revenue: vec![0.0; self.n_categories + 1],
            cat_orders: vec![0; self.n_categories + 1],
            state_revenue: vec![0.0; self.n_states + 1],
            state_orders: vec![0; self.n_states + 1],
            state_customers: vec![0; self.n_states + 1],
            cohort_size: vec![0; self.n_months],
            cohort_active: vec![vec![0; self.n_months]; self.n_months],
            ..Scan::default()
        }
    }

    fn windows(&self, q: &Query) -> Windows {
        let w = q.churn_window_days.max(1) as i32;
        let f = epoch_days(q.from) - self.first_day;
        let t = epoch_days(q.to) - self.first_day;
        let len = t - f + 1;
        let m0 = self.month_of_day[f.clamp(0, self.n_days as i32 - 1) as usize];
        Windows {
            f,
            t,
            pf: f - len,
            ce0: t + 1 - 2 * w,
            ce1: t + 1 - w,
            pe0: f - 2 * w,
            pe1: f - w,
            lo: (f - len).min(f - 2 * w),
            m0: usize::from(m0),
        }
    }

    /// Revenue and orders (per category) of cell `c` on days `a..=b`.
    fn cell_sum(&self, c: usize, a: i32, b: i32) -> (f64, u64) {
        let (a, b) = (a.max(0), b.min(self.n_days as i32 - 1));
        if a > b {
            return (0.0, 0);
        }
        let (ma, mb) = (
            usize::from(self.month_of_day[a as usize]),
            usize::from(self.month_of_day[b as usize]),
        );
        // Whole months `full_lo..full_hi` inside the days, the rest by day.
        let full_lo = if self.month_start[ma] >= a {
            ma
        } else {
            ma + 1
        };
        let full_hi = if self.month_start[mb + 1] <= b + 1 {
            mb + 1
        } else {
            mb
        };
        if full_lo >= full_hi {
            return self.days_sum(c, a, b + 1);
        }
        let (r1, o1) = self.days_sum(c, a, self.month_start[full_lo]);
        let (r2, o2) = self.months_sum(c, full_lo, full_hi);
        let (r3, o3) = self.days_sum(c, self.month_start[full_hi], b + 1);
        (r1 + r2 + r3, o1 + o2 + o3)
    }

    /// Day entries of cell `c` in `[a, b)`.
    fn days_sum(&self, c: usize, a: i32, b: i32) -> (f64, u64) {
        if a >= b {
            return (0.0, 0);
        }
        let (s, e) = (self.day_start[c] as usize, self.day_start[c + 1] as usize);
        let days = &self.day_idx[s..e];
        let i = days.partition_point(|&d| i32::from(d) < a);
        let j = i + days[i..].partition_point(|&d| i32::from(d) < b);
        let rev = self.day_revenue[s + i..s + j].iter().sum();
        let orders = self.day_orders[s + i..s + j]
            .iter()
            .map(|&o| u64::from(o))
            .sum();
        (rev, orders)
    }

    /// Month entries of cell `c` in `[a, b)`.
    fn months_sum(&self, c: usize, a: usize, b: usize) -> (f64, u64) {
        let (s, e) = (
            self.month_entry_start[c] as usize,
            self.month_entry_start[c + 1] as usize,
        );
        let months = &self.month_idx[s..e];
        let i = months.partition_point(|&m| usize::from(m) < a);
        let j = i + months[i..].partition_point(|&m| usize::from(m) < b);
        let rev = self.month_revenue[s + i..s + j].iter().sum();
        let orders = self.month_orders[s + i..s + j]
            .iter()
            .map(|&o| u64::from(o))
            .sum();
        (rev, orders)
    }

    /// The cube's part of a request: revenue figures and orders per category.
    #[allow(clippy::needless_range_loop)] // one index over parallel columns
    fn cube(&self, s: &mut Scan, w: &Windows, masks: &Masks) {
        for (c, cell) in self.cells.iter().enumerate() {
            if !(masks.segment[usize::from(cell.segment)]
                && masks.state[usize::from(cell.state)]
                && masks.channel[usize::from(cell.channel)]
                && masks.category[usize::from(cell.category)])
            {
                continue;
            }
            let (ms, me) = (
                self.month_entry_start[c] as usize,
                self.month_entry_start[c + 1] as usize,
            );
            for e in ms..me {
                let m = usize::from(self.month_idx[e]);
                s.monthly[m] += self.month_revenue[e];
                s.monthly_lines[m] += 1;
            }
            let (rev, orders) = self.cell_sum(c, w.f, w.t);
            s.current.revenue += rev;
            s.cat_revenue[usize::from(cell.category)] += rev;
            s.cat_orders[usize::from(cell.category)] += orders;
            s.state_revenue[usize::from(cell.state)] += rev;
            s.previous.revenue += self.cell_sum(c, w.pf, w.f - 1).0;
        }
    }

    /// The per-customer part for customers `ranges` (rank ranges with their
    /// state slot): orders, active customers, churn, customers by state,
    /// cohorts.
    fn customers(&self, s: &mut Scan, w: &Windows, pm: &[bool], ranges: &[(u32, u32, u8)]) {
        if self.n_months - w.m0 <= self.one_word_months {
            self.customers_one_word(s, w, pm, ranges);
        } else {
            self.customers_wide(s, w, pm, ranges);
        }
    }

    /// [`Self::customers`] when the period's months fit one 64-bit word:
    /// no branch per order but the end of the customer's period.
    #[allow(clippy::needless_range_loop)] // one index over parallel columns
    fn customers_one_word(
        &self,
        s: &mut Scan,
        w: &Windows,
        pm: &[bool],
        ranges: &[(u32, u32, u8)],
    ) {
        let (f, t, pf, lo) = (w.f, w.t, w.pf, w.lo);
        let (ce0, ce1, pe0, pe1) = (w.ce0, w.ce1, w.pe0, w.pe1);
        let m0 = w.m0 as u32;
        for &(r_lo, r_hi, state) in ranges {
            let (mut st_customers, mut st_orders) = (0u64, 0u64);
            for r in r_lo as usize..r_hi as usize {
                let (a, b) = (self.cust_start[r] as usize, self.cust_start[r + 1] as usize);
                let mut flags = 0u32;
                let (mut n_cur, mut n_prev) = (0u32, 0u32);
                let mut bits = 0u64;
                for o in a..b {
                    let d = i32::from(self.order_day[o]);
                    if d > t {
                        break;
                    }
                    let ok = u32::from(pm[self.order_profile[o] as usize] & (d >= lo));
                    let cur = u32::from(d >= f) & ok;
                    let prev = u32::from((d >= pf) & (d < f)) & ok;
                    let ce = u32::from((d >= ce0) & (d < ce1)) & ok;
                    let cl = u32::from(d >= ce1) & ok;
                    let pe = u32::from((d >= pe0) & (d < pe1)) & ok;
                    let pl = u32::from((d >= pe1) & (d < f)) & ok;
                    flags |= cur | prev << 1 | ce << 2 | cl << 3 | pe << 4 | pl << 5;
                    n_cur += cur;
                    n_prev += prev;
                    let m = u32::from(self.month_of_day[d as usize]).wrapping_sub(m0) & 63;
                    bits |= u64::from(cur) << m;
                }
                if flags == 0 {
                    continue;
                }
                let bit = |k: u32| u64::from((flags >> k) & 1);
                s.current.churn_base += bit(2);
                s.current.churned += bit(2) & (bit(3) ^ 1);
                s.previous.churn_base += bit(4);
                s.previous.churned += bit(4) & (bit(5) ^ 1);
                s.previous.active_customers += bit(1);
                s.previous.orders += u64::from(n_prev);
                s.current.active_customers += bit(0);
                s.current.orders += u64::from(n_cur);
                st_customers += bit(0);
                st_orders += u64::from(n_cur);
                if bits != 0 {
                    let first = w.m0 + bits.trailing_zeros() as usize;
                    s.cohort_size[first] += 1;
                    let row = &mut s.cohort_active[first];
                    let mut x = bits >> (first - w.m0);
                    while x != 0 {
                        row[x.trailing_zeros() as usize] += 1;
                        x &= x - 1;
                    }
                }
            }
            s.state_customers[usize::from(state)] += st_customers;
            s.state_orders[usize::from(state)] += st_orders;
        }
    }

    /// [`Self::customers`] for periods of more than 64 months of data.
    #[allow(clippy::needless_range_loop)] // one index over parallel columns
    fn customers_wide(&self, s: &mut Scan, w: &Windows, pm: &[bool], ranges: &[(u32, u32, u8)]) {
        let words = (self.n_months - w.m0).div_ceil(64).max(1);
        let mut bits = vec![0u64; words];
        let (f, t, pf) = (w.f, w.t, w.pf);
        for &(lo, hi, state) in ranges {
            let st = usize::from(state);
            for r in lo as usize..hi as usize {
                let (a, b) = (self.cust_start[r] as usize, self.cust_start[r + 1] as usize);
                let mut flags = 0u8;
                let (mut n_cur, mut n_prev) = (0u64, 0u64);
                for o in a..b {
                    let d = i32::from(self.order_day[o]);
                    if d > t {
                        break;
                    }
                    if d < w.lo || !pm[self.order_profile[o] as usize] {
                        continue;
                    }
                    if d >= f {
                        n_cur += 1;
                        flags |= CUR;
                        let m = usize::from(self.month_of_day[d as usize]) - w.m0;
                        bits[m >> 6] |= 1 << (m & 63);
                    } else if d >= pf {
                        n_prev += 1;
                        flags |= PREV;
                    }
                    if d >= w.ce0 {
                        flags |= if d >= w.ce1 { C_LATER } else { C_EARLIER };
                    }
                    if d >= w.pe0 && d < f {
                        flags |= if d >= w.pe1 { P_LATER } else { P_EARLIER };
                    }
                }
                if flags == 0 {
                    continue;
                }
                if flags & C_EARLIER != 0 {
                    s.current.churn_base += 1;
                    s.current.churned += u64::from(flags & C_LATER == 0);
                }
                if flags & P_EARLIER != 0 {
                    s.previous.churn_base += 1;
                    s.previous.churned += u64::from(flags & P_LATER == 0);
                }
                if flags & PREV != 0 {
                    s.previous.active_customers += 1;
                    s.previous.orders += n_prev;
                }
                if flags & CUR != 0 {
                    s.current.active_customers += 1;
                    s.current.orders += n_cur;
                    s.state_customers[st] += 1;
                    s.state_orders[st] += n_cur;
                    let mut first = usize::MAX;
                    for (wi, word) in bits.iter_mut().enumerate() {
                        let mut x = *word;
                        while x != 0 {
                            let m = w.m0 + wi * 64 + x.trailing_zeros() as usize;
                            if first == usize::MAX {
                                first = m;
                                s.cohort_size[m] += 1;
                            }
                            s.cohort_active[first][m - first] += 1;
                            x &= x - 1;
                        }
                        *word = 0;
                    }
                }
            }
        }
    }

    /// Every figure of one request: the cube, and one pass over the
    /// customers in scope, in chunks taken by as many threads as cores (so
    /// that a thread the OS sets aside does not hold the answer back).
    pub fn scan(&self, q: &Query) -> Scan {
        let masks = Masks {
            category: slot_mask(&q.categories, self.n_categories),
            state: slot_mask(&q.states, self.n_states),
            channel: slot_mask(&q.channels, self.n_channels),
            segment: (0..=self.n_segments)
                .map(|i| {
                    q.segment
                        .is_none_or(|k| usize::from(k) == i && i < self.n_segments)
                })
                .collect(),
        };
        let pm: Vec<bool> = (0..self.profile_channel.len())
            .map(|p| {
                masks.channel[usize::from(self.profile_channel[p])]
                    && self.profile_cats
                        [self.profile_cat_start[p] as usize..self.profile_cat_start[p + 1] as usize]
                        .iter()
                        .any(|&c| masks.category[usize::from(c)])
            })
            .collect();
        let w = self.windows(q);
        let orders_of = |lo: u32, hi: u32| {
            (self.cust_start[hi as usize] - self.cust_start[lo as usize]) as usize
        };
        let ranges: Vec<(u32, u32, u8)> = self
            .groups
            .iter()
            .filter(|g| masks.segment[usize::from(g.segment)] && masks.state[usize::from(g.state)])
            .map(|g| (g.lo, g.hi, g.state))
            .collect();
        let in_scope: usize = ranges.iter().map(|&(lo, hi, _)| orders_of(lo, hi)).sum();
        let mut s = self.new_scan();
        self.cube(&mut s, &w, &masks);
        if w.t < 0 || w.lo >= self.n_days as i32 {
            // No order can be in either period or churn window.
            return s;
        }
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        if in_scope < self.parallel_min.max(1) || workers < 2 {
            self.customers(&mut s, &w, &pm, &ranges);
            return s;
        }
        // Chunks of about `target` orders, cut at customer boundaries.
        let target = (in_scope / (8 * workers)).max(PARALLEL_MIN_ORDERS / 8);
        let mut chunks = Vec::new();
        for &(lo, hi, st) in &ranges {
            let mut a = lo;
            while a < hi {
                let want = self.cust_start[a as usize] as usize + target;
                let b = a + self.cust_start[a as usize..=hi as usize]
                    .partition_point(|&x| (x as usize) < want) as u32;
                let b = b.clamp(a + 1, hi);
                chunks.push((a, b, st));
                a = b;
            }
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let work = |s: &mut Scan| {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(chunk) = chunks.get(i) else {
                    break;
                };
                self.customers(s, &w, &pm, std::slice::from_ref(chunk));
            }
        };
        let others = std::thread::scope(|sc| {
            let handles: Vec<_> = (1..workers)
                .map(|_| {
                    sc.spawn(|| {
                        let mut b = self.new_scan();
                        work(&mut b);
                        b
                    })
                })
                .collect();
            work(&mut s);
            handles.into_iter().map(|h| h.join()).collect::<Vec<_>>()
        });
        let mut failed = false;
        for b in others {
            match b {
                Ok(b) => s = merge(s, b),
                Err(_) => failed = true,
            }
        }
        if failed {
            let mut s = self.new_scan();
            self.cube(&mut s, &w, &masks);
            self.customers(&mut s, &w, &pm, &ranges);
            return s;
        }
        s
    }
}

/// A request's scope as slot masks.
struct Masks {
    category: Vec<bool>,
    state: Vec<bool>,
    channel: Vec<bool>,
    segment: Vec<bool>,
}

fn add_f(a: &mut [f64], b: &[f64]) {
    a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
}
fn add_u(a: &mut [u64], b: &[u64]) {
    a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
}
fn add_t(a: &mut Totals, b: &Totals) {
    a.revenue += b.revenue;
    a.orders += b.orders;
    a.active_customers += b.active_customers;
    a.churn_base += b.churn_base;
    a.churned += b.churned;
}

fn merge(mut a: Scan, b: Scan) -> Scan {
    add_t(&mut a.current, &b.current);
    add_t(&mut a.previous, &b.previous);
    add_f(&mut a.monthly, &b.monthly);
    add_u(&mut a.monthly_lines, &b.monthly_lines);
    add_f(&mut a.cat_revenue, &b.cat_revenue);
    add_u(&mut a.cat_orders, &b.cat_orders);
    add_f(&mut a.state_revenue, &b.state_revenue);
    add_u(&mut a.state_orders, &b.state_orders);
    add_u(&mut a.state_customers, &b.state_customers);
    add_u(&mut a.cohort_size, &b.cohort_size);
    for (x, y) in a.cohort_active.iter_mut().zip(&b.cohort_active) {
        add_u(x, y);
    }
    a
}

#[cfg(test)]
mod tests {
    //! The engine against a line-by-line reference of the contract's
    //! definitions (hash sets, no cleverness) on random data and filters,
    //! period edges included.

    use std::collections::{BTreeMap, HashMap, HashSet};

    use super::*;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn chance(&mut self, p: f64) -> bool {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
        }
    }

    const DIMS: Dims = Dims {
        categories: 5,
        states: 4,
        channels: 3,
        segments: 3,
    };

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("a date")
    }

    /// Random lines from `min` to `max`: customers with a state and a
    /// segment (some missing), orders of 1 to 4 lines (some categories missing).
    fn data(
        rng: &mut Rng,
        customers: usize,
        orders: usize,
    ) -> (Lines, Vec<u8>, NaiveDate, NaiveDate) {
        let (min, max) = (date(2022, 3, 17), date(2024, 8, 9));
        let span = (max - min).num_days() as usize + 1;
        let code = |rng: &mut Rng, n: usize| {
            if rng.chance(0.05) {
                NONE
            } else {
                rng.below(n) as u8
            }
        };
        let states: Vec<u8> = (0..customers).map(|_| code(rng, DIMS.states)).collect();
        let segment_of: Vec<u8> = (0..customers).map(|_| code(rng, DIMS.segments)).collect();
        let mut l = Lines::default();
        for o in 0..orders {
            // Few customers buy often, so churn and cohorts have repeaters.
            let c = if rng.chance(0.5) {
                rng.below(customers / 10 + 1)
            } else {
                rng.below(customers)
            };
            let mut day = epoch_days(min) + rng.below(span) as i32;
            if o == 0 {
                day = epoch_days(min);
            } else if o == 1 {
                day = epoch_days(max);
            }
            let channel = rng.below(DIMS.channels) as u8;
            for _ in 0..1 + rng.below(4) {
                l.order.push(o as u32);
                l.customer.push(c as u32);
                l.day.push(day);
                l.channel.push(channel);
                l.category.push(code(rng, DIMS.categories));
                l.state.push(states[c]);
                l.revenue.push((rng.below(100_000) as f64) / 7.0);
            }
        }
        (l, segment_of, min, max)
    }

    fn mask(rng: &mut Rng, n: usize) -> Option<Vec<bool>> {
        rng.chance(0.5).then(|| {
            let mut m: Vec<bool> = (0..n).map(|_| rng.chance(0.4)).collect();
            if rng.chance(0.9) {
                m[rng.below(n)] = true;
            }
            m
        })
    }

    /// The reference: every figure from the lines, one definition at a time.
    fn reference(l: &Lines, seg: &[u8], q: &Query, first_month: i32, n_months: usize) -> Scan {
        let ok = |m: &Option<Vec<bool>>, code: u8| match m {
            None => true,
            Some(m) => code != NONE && m[usize::from(code)],
        };
        let rows: Vec<usize> = (0..l.order.len())
            .filter(|&i| {
                ok(&q.categories, l.category[i])
                    && ok(&q.states, l.state[i])
                    && ok(&q.channels, l.channel[i])
                    && q.segment.is_none_or(|k| seg[l.customer[i] as usize] == k)
            })
            .collect();
        let day = |d: NaiveDate| epoch_days(d);
        let (f, t) = (day(q.from), day(q.to));
        let len = t - f + 1;
        let w = q.churn_window_days as i32;
        let totals = |f: i32, t: i32| {
            let r: Vec<usize> = rows
                .iter()
                .copied()
                .filter(|&i| l.day[i] >= f && l.day[i] <= t)
                .collect();
            let active = |a: i32, b: i32| -> HashSet<u32> {
                rows.iter()
                    .filter(|&&i| l.day[i] >= a && l.day[i] < b)
                    .map(|&i| l.customer[i])
                    .collect()
            };
            let earlier = active(t + 1 - 2 * w, t + 1 - w);
            let later = active(t + 1 - w, t + 1);
            Totals {
                revenue: r.iter().map(|&i| l.revenue[i]).sum(),
                orders: r.iter().map(|&i| l.order[i]).collect::<HashSet<_>>().len() as u64,
                active_customers: r
                    .iter()
                    .map(|&i| l.customer[i])
                    .collect::<HashSet<_>>()
                    .len() as u64,
                churn_base: earlier.len() as u64,
                churned: earlier.difference(&later).count() as u64,
            }
        };
        let month = |d: i32| {
            let nd =
                NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch") + Duration::days(i64::from(d));
            (month_of(nd) - first_month) as usize
        };
        let mut s = Scan {
            current: totals(f, t),
            previous: totals(f - len, f - 1),
            monthly: vec![0.0; n_months],
            monthly_lines: vec![0; n_months],
            cat_revenue: vec![0.0; DIMS.categories + 1],
            cat_orders: vec![0; DIMS.categories + 1],
            state_revenue: vec![0.0; DIMS.states + 1],
            state_orders: vec![0; DIMS.states + 1],
            state_customers: vec![0; DIMS.states + 1],
            cohort_size: vec![0; n_months],
            cohort_active: vec![vec![0; n_months]; n_months],
        };
        let mut cat_orders: HashMap<usize, HashSet<u32>> = HashMap::new();
        let mut state_orders: HashMap<usize, HashSet<u32>> = HashMap::new();
        let mut state_customers: HashMap<usize, HashSet<u32>> = HashMap::new();
        let mut months: BTreeMap<u32, HashSet<usize>> = BTreeMap::new();
        for &i in &rows {
            let m = month(l.day[i]);
            s.monthly[m] += l.revenue[i];
            s.monthly_lines[m] += 1;
            if l.day[i] < f || l.day[i] > t {
                continue;
            }
            let c = slot(l.category[i], DIMS.categories);
            let st = slot(l.state[i], DIMS.states);
            s.cat_revenue[c] += l.revenue[i];
            cat_orders.entry(c).or_default().insert(l.order[i]);
            s.state_revenue[st] += l.revenue[i];
            state_orders.entry(st).or_default().insert(l.order[i]);
            state_customers.entry(st).or_default().insert(l.customer[i]);
            months.entry(l.customer[i]).or_default().insert(m);
        }
        for (c, o) in cat_orders {
            s.cat_orders[c] = o.len() as u64;
        }
        for (st, o) in state_orders {
            s.state_orders[st] = o.len() as u64;
        }
        for (st, o) in state_customers {
            s.state_customers[st] = o.len() as u64;
        }
        for ms in months.values() {
            let first = *ms.iter().min().expect("a month");
            s.cohort_size[first] += 1;
            for &m in ms {
                s.cohort_active[first][m - first] += 1;
            }
        }
        s
    }

    #[track_caller]
    fn close(a: f64, b: f64, what: &str) {
        assert!(
            (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0),
            "{what}: engine {a}, reference {b}"
        );
    }

    #[track_caller]
    fn same(got: &Scan, want: &Scan, what: &str) {
        for (g, w, p) in [
            (&got.current, &want.current, "current"),
            (&got.previous, &want.previous, "previous"),
        ] {
            close(g.revenue, w.revenue, &format!("{what}: {p} revenue"));
            let counts = |t: &Totals| (t.orders, t.active_customers, t.churn_base, t.churned);
            assert_eq!(
                counts(g),
                counts(w),
                "{what}: {p} orders, active, churn base, churned"
            );
        }
        for (a, b) in got.monthly.iter().zip(&want.monthly) {
            close(*a, *b, &format!("{what}: monthly"));
        }
        let present = |v: &[u64]| v.iter().map(|&n| n > 0).collect::<Vec<_>>();
        assert_eq!(
            present(&got.monthly_lines),
            present(&want.monthly_lines),
            "{what}: months"
        );
        for (a, b) in got.cat_revenue.iter().zip(&want.cat_revenue) {
            close(*a, *b, &format!("{what}: category revenue"));
        }
        for (a, b) in got.state_revenue.iter().zip(&want.state_revenue) {
            close(*a, *b, &format!("{what}: state revenue"));
        }
        assert_eq!(got.cat_orders, want.cat_orders, "{what}: category orders");
        assert_eq!(got.state_orders, want.state_orders, "{what}: state orders");
        assert_eq!(
            got.state_customers, want.state_customers,
            "{what}: state customers"
        );
        assert_eq!(got.cohort_size, want.cohort_size, "{what}: cohort sizes");
        assert_eq!(got.cohort_active, want.cohort_active, "{what}: cohorts");
    }

    fn query(from: NaiveDate, to: NaiveDate) -> Query {
        Query {
            categories: None,
            states: None,
            channels: None,
            segment: None,
            from,
            to,
            churn_window_days: 90,
        }
    }

    #[test]
    fn random_filters_equal_the_line_by_line_reference() {
        let mut rng = Rng(7);
        let (l, seg, min, max) = data(&mut rng, 300, 3000);
        let mut e = Engine::build(&l, DIMS, &seg, min, max).expect("engine");
        let span = (max - min).num_days();
        for i in 0..300 {
            // Starts and ends on month edges, single days, periods
            // reaching before and after the data.
            let from = match i % 4 {
                0 => min + Duration::days(rng.below(span as usize) as i64),
                1 => {
                    NaiveDate::from_ymd_opt(2022 + rng.below(3) as i32, 1 + rng.below(12) as u32, 1)
                        .expect("first day")
                }
                2 => min - Duration::days(rng.below(400) as i64),
                _ => min + Duration::days(rng.below(span as usize + 200) as i64),
            };
            let len = match rng.below(5) {
                0 => 1,
                1 => 30,
                2 => 1 + rng.below(800) as i64,
                3 => (from + Duration::days(40))
                    .with_day(1)
                    .map_or(30, |d| (d - from).num_days()),
                _ => 365,
            };
            let to = from + Duration::days(len - 1);
            let mut q = query(from, to);
            q.categories = mask(&mut rng, DIMS.categories);
            q.states = mask(&mut rng, DIMS.states);
            q.channels = mask(&mut rng, DIMS.channels);
            q.segment = rng.chance(0.4).then(|| rng.below(DIMS.segments) as u8);
            q.churn_window_days = if rng.chance(0.8) {
                90
            } else {
                1 + rng.below(200) as i64
            };
            e.parallel_min = if i % 2 == 0 { 0 } else { usize::MAX };
            e.one_word_months = if i % 3 == 0 { 0 } else { 64 };
            let want = reference(&l, &seg, &q, e.first_month, e.n_months);
            same(&e.scan(&q), &want, &format!("query {i} ({from}..{to})"));
        }
    }

    #[test]
    fn churn_counts_the_days_at_the_window_edges() {
        // One customer buying on given days; the period ends on 2024-06-30,
        // so as_of = 2024-07-01, later window [04-02, 07-01), earlier [01-03, 04-02).
        let build = |days: &[NaiveDate]| {
            let mut l = Lines::default();
            for (o, d) in days.iter().enumerate() {
                l.order.push(o as u32);
                l.customer.push(0);
                l.day.push(epoch_days(*d));
                l.channel.push(0);
                l.category.push(0);
                l.state.push(0);
                l.revenue.push(10.0);
            }
            let (min, max) = (date(2023, 1, 1), date(2024, 12, 31));
            Engine::build(&l, DIMS, &[0], min, max).expect("engine")
        };
        let q = query(date(2024, 1, 1), date(2024, 6, 30));
        for (days, base, churned) in [
            (vec![date(2024, 1, 2)], 0, 0), // before the earlier window
            (vec![date(2024, 1, 3)], 1, 1), // its first day
            (vec![date(2024, 4, 1)], 1, 1), // its last day
            (vec![date(2024, 4, 1), date(2024, 4, 2)], 1, 0), // back on the later window's first day
            (vec![date(2024, 4, 1), date(2024, 6, 30)], 1, 0), // … or on its last day
            (vec![date(2024, 4, 1), date(2024, 7, 1)], 1, 1), // as_of itself is after it
            (vec![date(2024, 4, 2)], 0, 0),                   // only in the later window
        ] {
            let got = build(&days).scan(&q).current;
            assert_eq!((got.churn_base, got.churned), (base, churned), "{days:?}");
        }
        // The previous period (2023-07-04..=2023-12-31) has its own as_of, 2024-01-01.
        let e = build(&[date(2023, 9, 1)]);
        let p = e.scan(&q).previous;
        assert_eq!(
            (p.churn_base, p.churned, p.active_customers, p.orders),
            (1, 1, 1, 1)
        );
        let e = build(&[date(2023, 9, 1), date(2023, 12, 31)]);
        let p = e.scan(&q).previous;
        assert_eq!((p.churn_base, p.churned, p.orders), (1, 0, 2));
    }

    #[test]
    fn an_empty_selection_has_no_figures_but_the_monthly_series() {
        let mut rng = Rng(11);
        let (l, seg, min, max) = data(&mut rng, 50, 400);
        let e = Engine::build(&l, DIMS, &seg, min, max).expect("engine");
        for (from, to) in [
            (date(2000, 1, 1), date(2000, 1, 31)),
            (date(2030, 1, 1), date(2030, 12, 31)),
        ] {
            let s = e.scan(&query(from, to));
            assert_eq!(s.current, Totals::default(), "{from}..{to}");
            assert!(s.cohort_size.iter().all(|&n| n == 0));
            assert!(
                s.monthly_lines.iter().any(|&n| n > 0),
                "the monthly series covers all periods"
            );
        }
        // A segment nobody is in, a category mask with nothing: nothing at all.
        let mut q = query(min, max);
        q.categories = Some(vec![false; DIMS.categories]);
        let s = e.scan(&q);
        assert_eq!((s.current.orders, s.current.revenue), (0, 0.0));
        assert!(s.monthly_lines.iter().all(|&n| n == 0));
    }

    #[test]
    fn bad_input_is_refused_with_what_was_expected() {
        let l = Lines {
            order: vec![0],
            customer: vec![0],
            day: vec![epoch_days(date(2020, 1, 1))],
            channel: vec![0],
            category: vec![0],
            state: vec![0],
            revenue: vec![],
        };
        let e = Engine::build(&l, DIMS, &[0], date(2020, 1, 1), date(2020, 1, 1));
        assert!(e.is_err_and(|e| e.to_string().contains("differ in length")));
        let l = Lines {
            revenue: vec![1.0],
            ..l
        };
        let e = Engine::build(&l, DIMS, &[0], date(2021, 1, 1), date(2021, 2, 1));
        assert!(e.is_err_and(|e| e.to_string().contains("outside 2021-01-01..=2021-02-01")));
    }
}
