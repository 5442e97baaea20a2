//! Leaderboards: revenue and orders per product and per customer, for the
//! current and the comparison period, from the lines of the orders in
//! either period (the customers in scope only, in their contiguous ranges).
//! A line counts when its order is in scope (channel, one category in
//! scope) and its own category is in scope: the same lines as the revenue
//! figure, so that products and customers add up to it.

use std::cmp::Ordering;

use super::scan::{Range, Scope};
use super::*;

/// One customer's figures in both periods.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CustomerFigure {
    /// The customer's rank ([`Engine::customer_id`]).
    pub customer: u32,
    /// State and segment slots ([`Engine::state_code`], [`Engine::segment_code`]).
    pub state: u8,
    pub segment: u8,
    pub revenue: f64,
    pub orders: u64,
    pub revenue_prev: f64,
    pub orders_prev: u64,
}

/// One product's figures in both periods.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProductFigure {
    /// The product's code ([`Engine::product_id`]).
    pub product: u32,
    /// Category slot of the product (`n_categories`: none).
    pub category: u8,
    pub revenue: f64,
    /// Orders with the product (each order once).
    pub orders: u64,
    pub revenue_prev: f64,
    pub orders_prev: u64,
}

/// Most revenue first; then most comparison revenue; then by rank or code.
fn customer_order(a: &CustomerFigure, b: &CustomerFigure) -> Ordering {
    b.revenue
        .total_cmp(&a.revenue)
        .then_with(|| b.revenue_prev.total_cmp(&a.revenue_prev))
        .then_with(|| a.customer.cmp(&b.customer))
}

fn product_order(a: &ProductFigure, b: &ProductFigure) -> Ordering {
    b.revenue
        .total_cmp(&a.revenue)
        .then_with(|| b.revenue_prev.total_cmp(&a.revenue_prev))
        .then_with(|| a.product.cmp(&b.product))
}

/// Keep the `k` first of `v` in leaderboard order, sorted.
pub(super) fn keep_top(v: &mut Vec<CustomerFigure>, k: usize) {
    if v.len() > k {
        if k == 0 {
            v.clear();
            return;
        }
        v.select_nth_unstable_by(k - 1, customer_order);
        v.truncate(k);
    }
    v.sort_unstable_by(customer_order);
}

/// One product's sums in one thread's scratch: the four figures a line
/// updates side by side, in one cache line (the products are many, and a
/// line's product is anywhere among them).
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(32))]
pub(super) struct ProductAcc {
    revenue: f64,
    revenue_prev: f64,
    orders: u64,
    orders_prev: u64,
}

/// Per-product sums of one pass (one thread's dense scratch, and the
/// products it touched since it was last emptied).
struct ProductSums<'a> {
    acc: &'a mut [ProductAcc],
    touched: &'a mut Vec<u32>,
}

/// One chunk's sums of one product.
#[derive(Clone, Copy, Debug)]
pub(super) struct ProductPart {
    product: u32,
    revenue: f64,
    orders: u64,
    revenue_prev: f64,
    orders_prev: u64,
}

/// Add the chunks' product sums up in chunk order into the scan's dense
/// arrays (empty scratch arrays after [`Engine::leaders`]).
pub(super) fn settle_products(s: &mut Scan) {
    s.product_parts.sort_by_key(|(chunk, _)| *chunk);
    for (_, part) in std::mem::take(&mut s.product_parts) {
        for p in part {
            let i = p.product as usize;
            s.product_revenue[i] += p.revenue;
            s.product_orders[i] += p.orders;
            s.product_revenue_prev[i] += p.revenue_prev;
            s.product_orders_prev[i] += p.orders_prev;
        }
    }
}

impl Engine {
    /// Revenue of the lines in scope of the order at `o`: its total (summed
    /// once at start-up, line by line) when all its categories are in
    /// scope, else the sum of its lines in scope in the same order; so the
    /// same order gives the same bits either way.
    pub(super) fn scope_revenue(&self, scope: &Scope, o: usize) -> f64 {
        if scope.all_categories || scope.full[self.order_profile[o] as usize] {
            return self.order_revenue[o];
        }
        let cats = &scope.masks.category;
        let mut rev = 0.0;
        for l in self.order_line_start[o] as usize..self.order_line_start[o + 1] as usize {
            if cats[usize::from(self.line_category[l])] {
                rev += self.line_revenue[l];
            }
        }
        rev
    }

    /// Add the lines in scope of the order at `o` to the product sums of
    /// the current period (`cur`) and of the comparison one (`prev`).
    fn add_products(
        &self,
        scope: &Scope,
        o: usize,
        cur: bool,
        prev: bool,
        p: &mut ProductSums<'_>,
    ) {
        let (l0, l1) = (
            self.order_line_start[o] as usize,
            self.order_line_start[o + 1] as usize,
        );
        let cats = &scope.masks.category;
        let all = scope.all_categories;
        let in_scope = |l: usize| all || cats[usize::from(self.line_category[l])];
        for l in l0..l1 {
            if !in_scope(l) {
                continue;
            }
            let (code, x) = (self.line_product[l], self.line_revenue[l]);
            let pc = code as usize;
            // An order counts once per product.
            let again = (l0..l).any(|k| self.line_product[k] == code && in_scope(k));
            let a = &mut p.acc[pc];
            if !again && a.orders + a.orders_prev == 0 {
                p.touched.push(code);
            }
            if cur {
                a.revenue += x;
                a.orders += u64::from(!again);
            }
            if prev {
                a.revenue_prev += x;
                a.orders_prev += u64::from(!again);
            }
        }
    }

    /// Each order of `ranges` in scope in either period: `f(order, in the
    /// current period, in the comparison one)`, and `end(rank, group)` after
    /// each customer.
    fn orders_in_periods(
        &self,
        scope: &Scope,
        ranges: &[Range],
        mut f: impl FnMut(usize, bool, bool),
        mut end: impl FnMut(usize, &Range),
    ) {
        let w = &scope.w;
        let (first, last) = (w.f.min(w.pf), w.t.max(w.pt));
        for g in ranges {
            for r in g.lo as usize..g.hi as usize {
                let (a, b) = (self.cust_start[r] as usize, self.cust_start[r + 1] as usize);
                for o in a..b {
                    let d = i32::from(self.order_day[o]);
                    if d > last {
                        break;
                    }
                    let cur = d >= w.f && d <= w.t;
                    let prev = d >= w.pf && d <= w.pt;
                    if d >= first && (cur || prev) && scope.pm[self.order_profile[o] as usize] {
                        f(o, cur, prev);
                    }
                }
                end(r, g);
            }
        }
    }

    /// The product sums of chunk `chunk` (`ranges`) from the lines of its
    /// customers' orders, kept apart (see [`settle_products`]).
    pub(super) fn leaders(&self, s: &mut Scan, scope: &Scope, chunk: usize, ranges: &[Range]) {
        let Scan {
            product_scratch,
            product_parts,
            ..
        } = s;
        if product_scratch.len() != self.n_products {
            *product_scratch = vec![ProductAcc::default(); self.n_products];
        }
        let mut touched = Vec::new();
        let mut sums = ProductSums {
            acc: product_scratch,
            touched: &mut touched,
        };
        self.orders_in_periods(
            scope,
            ranges,
            |o, cur, prev| self.add_products(scope, o, cur, prev, &mut sums),
            |_, _| {},
        );
        touched.sort_unstable();
        let part = touched
            .iter()
            .map(|&p| {
                let a = std::mem::take(&mut product_scratch[p as usize]);
                ProductPart {
                    product: p,
                    revenue: a.revenue,
                    orders: a.orders,
                    revenue_prev: a.revenue_prev,
                    orders_prev: a.orders_prev,
                }
            })
            .collect();
        product_parts.push((chunk, part));
    }

    /// Every product's sums in both periods when no customer is left out
    /// (no state or segment filter): the whole months from the product
    /// cube, the days of the partial months at the periods' edges from the
    /// lines of those days.
    pub(super) fn product_cube(&self, s: &mut Scan, scope: &Scope) {
        let w = &scope.w;
        let stride = self.n_channels + 1;
        let (cats, chans) = (&scope.masks.category, &scope.masks.channel);
        for (k, (a, b)) in [(w.f, w.t), (w.pf, w.pt)].into_iter().enumerate() {
            let (a, b) = (a.max(0), b.min(self.n_days as i32 - 1));
            if a > b {
                continue;
            }
            let (lo, hi) = self.whole_months(a, b);
            let (revenue, orders) = if k == 0 {
                (&mut s.product_revenue, &mut s.product_orders)
            } else {
                (&mut s.product_revenue_prev, &mut s.product_orders_prev)
            };
            if lo < hi {
                for p in 0..self.n_products {
                    if !cats[usize::from(self.product_category[p])] {
                        continue;
                    }
                    for ch in (0..stride).filter(|&ch| chans[ch]) {
                        let cell = p * stride + ch;
                        let (e0, e1) = (
                            self.pc_start[cell] as usize,
                            self.pc_start[cell + 1] as usize,
                        );
                        let months = &self.pc_month[e0..e1];
                        let i = e0 + months.partition_point(|&m| usize::from(m) < lo);
                        let j = e0 + months.partition_point(|&m| usize::from(m) < hi);
                        for e in i..j {
                            revenue[p] += self.pc_revenue[e];
                            orders[p] += u64::from(self.pc_orders[e]);
                        }
                    }
                }
            }
            let edges = if lo < hi {
                [(a, self.month_start[lo] - 1), (self.month_start[hi], b)]
            } else {
                [(a, b), (1, 0)]
            };
            for (da, db) in edges {
                if da.max(0) > db {
                    continue;
                }
                // The days' lines, read in order. A line in scope (its
                // product's category and its order's channel) has its order
                // in scope; a product has one category, so a repeated
                // product is in scope with its first line.
                let (l0, l1) = (
                    self.day_line_start[da.max(0) as usize] as usize,
                    self.day_line_start[db as usize + 1] as usize,
                );
                for l in l0..l1 {
                    let code = self.day_line_product[l];
                    let pc = (code & !REPEAT) as usize;
                    if !(chans[usize::from(self.day_line_channel[l])]
                        && cats[usize::from(self.product_category[pc])])
                    {
                        continue;
                    }
                    revenue[pc] += self.day_line_revenue[l];
                    orders[pc] += u64::from(code & REPEAT == 0);
                }
            }
        }
    }

    /// Every product with revenue in either period of a scan made with
    /// `top` > 0, in leaderboard order (most revenue first).
    pub fn products_ranked(&self, s: &Scan) -> Vec<ProductFigure> {
        let mut out: Vec<ProductFigure> = (0..s.product_revenue.len())
            .filter(|&p| s.product_orders[p] > 0 || s.product_orders_prev[p] > 0)
            .map(|p| ProductFigure {
                product: p as u32,
                category: self.product_category[p],
                revenue: s.product_revenue[p],
                orders: s.product_orders[p],
                revenue_prev: s.product_revenue_prev[p],
                orders_prev: s.product_orders_prev[p],
            })
            .collect();
        out.sort_unstable_by(product_order);
        out
    }

    /// Every customer in scope with an order in either period, in
    /// leaderboard order (most revenue in the current period first).
    pub fn customers_ranked(&self, q: &Query) -> Vec<CustomerFigure> {
        let scope = self.scope(q);
        let parts = self.over_customers(
            &scope,
            Vec::new,
            |v: &mut Vec<CustomerFigure>, _, ranges| {
                // As the customer pass of a scan adds them, order by order.
                let fig = std::cell::Cell::new(CustomerFigure::default());
                self.orders_in_periods(
                    &scope,
                    ranges,
                    |o, cur, prev| {
                        let (x, mut f) = (self.scope_revenue(&scope, o), fig.get());
                        if cur {
                            f.revenue += x;
                            f.orders += 1;
                        }
                        if prev {
                            f.revenue_prev += x;
                            f.orders_prev += 1;
                        }
                        fig.set(f);
                    },
                    |r, g| {
                        let f = fig.take();
                        if f.orders > 0 || f.orders_prev > 0 {
                            v.push(CustomerFigure {
                                customer: r as u32,
                                state: g.state,
                                segment: g.segment,
                                ..f
                            });
                        }
                    },
                );
            },
        );
        let mut out: Vec<CustomerFigure> = parts.into_iter().flatten().collect();
        out.sort_unstable_by(customer_order);
        out
    }

    /// The id of the customer of rank `rank`.
    pub fn customer_id(&self, rank: u32) -> &str {
        self.customer_ids.get(rank as usize)
    }

    /// The id of product `code`.
    pub fn product_id(&self, code: u32) -> &str {
        self.product_ids.get(code as usize)
    }

    /// The category code of a slot (None: no category).
    pub fn category_code(&self, slot: u8) -> Option<u8> {
        (usize::from(slot) < self.n_categories).then_some(slot)
    }

    /// The state code of a slot (None: no state).
    pub fn state_code(&self, slot: u8) -> Option<u8> {
        (usize::from(slot) < self.n_states).then_some(slot)
    }

    /// The segment code of a slot (None: no segment).
    pub fn segment_code(&self, slot: u8) -> Option<u8> {
        (usize::from(slot) < self.n_segments).then_some(slot)
    }

    /// The channel code of a slot (None: no channel).
    pub fn channel_code(&self, slot: u8) -> Option<u8> {
        (usize::from(slot) < self.n_channels).then_some(slot)
    }
}
