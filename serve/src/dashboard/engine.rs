//! The dashboard's per-request engine: the contract's KPI definitions (as in
//! `analytics_lib::kpi`) evaluated in one sequential scan over columns built
//! at start-up, instead of one polars query per figure.
//!
//! Rows are the completed order lines, sorted by (customer, order), with
//! every dimension as a small integer code. Because an order's lines and a
//! customer's orders are contiguous, distinct orders are counted by "order
//! changed since the last row in scope", and every per-customer figure
//! (active, churned, cohort) is settled when the customer changes, without
//! any hash set. Two threads scan halves cut at a customer boundary.
//!
//! The results equal `kpi::kpis`, `kpi::breakdown`, `kpi::cohort_retention`
//! and `kpi::monthly_revenue` on the same data and filter (up to the order of
//! floating-point additions): [`super::DashboardData::build`] checks the
//! default view against `kpi::kpis` at start-up, and the API tests check
//! several filters against the functions on the full frame.

use chrono::{Datelike, Duration, NaiveDate};

/// Code of a missing value (category, state or segment).
pub const NONE: u8 = u8::MAX;

/// The columns, sorted by (customer, order).
pub struct Engine {
    pub day: Vec<i32>,
    /// Month index from `first_month`.
    pub month: Vec<u16>,
    pub category: Vec<u8>,
    pub state: Vec<u8>,
    pub channel: Vec<u8>,
    pub order: Vec<u32>,
    pub customer: Vec<u32>,
    pub revenue: Vec<f64>,
    /// Segment of each customer code ([`NONE`]: none).
    pub segment_of: Vec<u8>,
    /// `year × 12 + month0` of month index 0.
    pub first_month: i32,
    pub n_months: usize,
    pub n_categories: usize,
    pub n_states: usize,
}

/// What one request asks: scope masks and the two periods (days since epoch).
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

/// Everything one scan yields.
#[derive(Clone, Debug, Default)]
pub struct Scan {
    pub current: Totals,
    pub previous: Totals,
    /// Revenue per month index, in scope, any period, and lines behind it
    /// (a month without lines is absent from `kpi::monthly_revenue`).
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

fn days(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()).num_days() as i32
}

pub fn month_key(first_month: i32, idx: usize) -> String {
    let m = first_month + idx as i32;
    format!("{:04}-{:02}", m.div_euclid(12), m.rem_euclid(12) + 1)
}

pub fn month_of(d: NaiveDate) -> i32 {
    d.year() * 12 + d.month0() as i32
}

struct Window {
    from: i32,
    to: i32,
    /// Churn windows: earlier `[e0, e1)`, later `[e1, as_of)`.
    e0: i32,
    e1: i32,
    as_of: i32,
}

impl Window {
    fn new(from: NaiveDate, to: NaiveDate, w: i64) -> Self {
        let as_of = to + Duration::days(1);
        Window {
            from: days(from),
            to: days(to),
            e0: days(as_of - Duration::days(2 * w)),
            e1: days(as_of - Duration::days(w)),
            as_of: days(as_of),
        }
    }
}

/// Per-customer flags while its rows are scanned.
#[derive(Default)]
struct Cust {
    earlier: bool,
    later: bool,
    p_earlier: bool,
    p_later: bool,
    active: bool,
    p_active: bool,
    state: u8,
    /// Months with an order in the period (bit per month index).
    months: Vec<u64>,
    any_month: bool,
}

impl Engine {
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

    /// Scan rows `lo..hi` (which start and end at customer boundaries).
    #[allow(clippy::needless_range_loop)] // one index over parallel columns
    fn scan_range(&self, q: &Query, lo: usize, hi: usize) -> Scan {
        let mut s = self.new_scan();
        let cur = Window::new(q.from, q.to, q.churn_window_days);
        let len = (q.to - q.from).num_days() + 1;
        let prev = Window::new(
            q.from - Duration::days(len),
            q.from - Duration::days(1),
            q.churn_window_days,
        );
        let words = self.n_months.div_ceil(64).max(1);
        let mut c = Cust {
            months: vec![0; words],
            ..Cust::default()
        };
        let mut cust = u32::MAX;
        let mut last_order = u32::MAX;
        let mut last_order_prev = u32::MAX;
        let mut cat_last = vec![u32::MAX; self.n_categories + 1];
        let mut state_last = vec![u32::MAX; self.n_states + 1];
        let slot = |code: u8, n: usize| if code == NONE { n } else { code as usize };
        for i in lo..hi {
            let cu = self.customer[i];
            if cu != cust {
                if cust != u32::MAX {
                    settle(&mut s, &mut c, self.n_states);
                }
                cust = cu;
            }
            if let Some(k) = q.segment
                && self.segment_of[cu as usize] != k
            {
                continue;
            }
            let cat = self.category[i];
            if let Some(m) = &q.categories
                && (cat == NONE || !m[cat as usize])
            {
                continue;
            }
            let st = self.state[i];
            if let Some(m) = &q.states
                && (st == NONE || !m[st as usize])
            {
                continue;
            }
            if let Some(m) = &q.channels
                && !m[self.channel[i] as usize]
            {
                continue;
            }
            let rev = self.revenue[i];
            let d = self.day[i];
            let mi = self.month[i] as usize;
            let order = self.order[i];
            s.monthly[mi] += rev;
            s.monthly_lines[mi] += 1;
            c.state = st;
            if d >= cur.e0 && d < cur.as_of {
                if d < cur.e1 {
                    c.earlier = true;
                } else {
                    c.later = true;
                }
            }
            if d >= prev.e0 && d < prev.as_of {
                if d < prev.e1 {
                    c.p_earlier = true;
                } else {
                    c.p_later = true;
                }
            }
            if d >= cur.from && d <= cur.to {
                s.current.revenue += rev;
                if order != last_order {
                    s.current.orders += 1;
                    last_order = order;
                }
                c.active = true;
                let ck = slot(cat, self.n_categories);
                s.cat_revenue[ck] += rev;
                if cat_last[ck] != order {
                    s.cat_orders[ck] += 1;
                    cat_last[ck] = order;
                }
                let sk = slot(st, self.n_states);
                s.state_revenue[sk] += rev;
                if state_last[sk] != order {
                    s.state_orders[sk] += 1;
                    state_last[sk] = order;
                }
                c.months[mi / 64] |= 1u64 << (mi % 64);
                c.any_month = true;
            } else if d >= prev.from && d <= prev.to {
                s.previous.revenue += rev;
                if order != last_order_prev {
                    s.previous.orders += 1;
                    last_order_prev = order;
                }
                c.p_active = true;
            }
        }
        if cust != u32::MAX {
            settle(&mut s, &mut c, self.n_states);
        }
        s
    }

    /// One scan over every row, on two threads.
    pub fn scan(&self, q: &Query) -> Scan {
        let n = self.customer.len();
        let mut mid = n / 2;
        while mid > 0 && mid < n && self.customer[mid] == self.customer[mid - 1] {
            mid += 1;
        }
        if n < 200_000 {
            return self.scan_range(q, 0, n);
        }
        let (a, b) = std::thread::scope(|sc| {
            let h = sc.spawn(|| self.scan_range(q, mid, n));
            let a = self.scan_range(q, 0, mid);
            (a, h.join())
        });
        match b {
            Ok(b) => merge(a, b),
            Err(_) => self.scan_range(q, 0, n),
        }
    }
}

fn settle(s: &mut Scan, c: &mut Cust, n_states: usize) {
    if c.earlier {
        s.current.churn_base += 1;
        if !c.later {
            s.current.churned += 1;
        }
    }
    if c.p_earlier {
        s.previous.churn_base += 1;
        if !c.p_later {
            s.previous.churned += 1;
        }
    }
    if c.active {
        s.current.active_customers += 1;
        let sk = if c.state == NONE {
            n_states
        } else {
            c.state as usize
        };
        s.state_customers[sk] += 1;
    }
    if c.p_active {
        s.previous.active_customers += 1;
    }
    if c.any_month {
        let mut first = None;
        for (w, bits) in c.months.iter_mut().enumerate() {
            let mut b = *bits;
            while b != 0 {
                let m = w * 64 + b.trailing_zeros() as usize;
                let f = *first.get_or_insert(m);
                if f == m {
                    s.cohort_size[f] += 1;
                }
                s.cohort_active[f][m - f] += 1;
                b &= b - 1;
            }
            *bits = 0;
        }
    }
    let months = std::mem::take(&mut c.months);
    *c = Cust {
        months,
        ..Cust::default()
    };
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
