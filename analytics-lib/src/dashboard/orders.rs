//! The drill-down: the completed orders behind a view (its scope and
//! period, or its comparison period), sorted by date, revenue or items,
//! a page at a time.
//!
//! A page among the first [`ONE_PASS_ROWS`] rows (what a user paging
//! through a table asks for) costs one pass over the orders in scope: each
//! thread keeps the smallest sort keys it has seen, at most twice as many
//! as the page needs, and skips every order whose key is above the last
//! one kept once that many are kept; the threads' keys are then sorted.
//!
//! A deeper page costs two passes over the orders in scope and no copy of them:
//! the first counts the orders per *bucket* of the sort key (a day; a
//! number of items and a 256th of the positions, as the position breaks
//! ties; a 256th of a power of two of the revenue, about 0,3 % wide, from
//! 2^-20 to 2^44, with one bucket below and one above),
//! which says in which buckets the page's rows lie; the second
//! gathers the orders of those buckets only (the page and the rest of its
//! edge buckets) and sorts them exactly. Ties are broken by the order's
//! position, so pages never overlap or miss an order.

use super::scan::{Range, Scope};
use super::*;

/// Which period's orders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    Current,
    Comparison,
}

/// The drill-down's sort keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderSort {
    Date,
    Revenue,
    Items,
}

impl OrderSort {
    /// The names the API takes.
    pub const NAMES: [&'static str; 3] = ["date", "revenue", "items"];

    pub fn name(self) -> &'static str {
        match self {
            OrderSort::Date => "date",
            OrderSort::Revenue => "revenue",
            OrderSort::Items => "items",
        }
    }

    pub fn parse(s: &str) -> Option<OrderSort> {
        match s {
            "date" => Some(OrderSort::Date),
            "revenue" => Some(OrderSort::Revenue),
            "items" => Some(OrderSort::Items),
            _ => None,
        }
    }
}

/// Pages ending at most this many rows into the view take one pass
/// ([`Engine::orders_page_one_pass`]); each thread keeps up to twice as many
/// keys (16 bytes each).
pub const ONE_PASS_ROWS: usize = 10_000;

/// Sorting by revenue: a bucket per 256th of a power of two from
/// 2^[`REVENUE_LOW`] to 2^[`REVENUE_HIGH`], one for everything below (zero,
/// negative or tiny revenue) and one for everything above: 16,386 counts
/// (64 KiB a thread, in cache), of which real revenues use a few thousand.
/// (A bucket per value of the ordered bits' top 20 bits took 4 MiB a
/// thread, most of it never used, and a cache miss per order.)
const REVENUE_LOW: u64 = 1023 - 20;
const REVENUE_HIGH: u64 = 1023 + 44;
const REVENUE_SUB_BITS: u32 = 8;
const REVENUE_BUCKETS: usize = 2 + (((REVENUE_HIGH - REVENUE_LOW) as usize) << REVENUE_SUB_BITS);

/// The revenue bucket of `key` (`ordered_bits` of the revenue: for a
/// revenue ≥ +0 the top bit is set and the next 11 are its exponent).
fn revenue_bucket(key: u64) -> usize {
    let lo = (0x800 + REVENUE_LOW) << 52;
    let hi = (0x800 + REVENUE_HIGH) << 52;
    if key < lo {
        0
    } else if key >= hi {
        REVENUE_BUCKETS - 1
    } else {
        1 + ((key - lo) >> (52 - REVENUE_SUB_BITS)) as usize
    }
}
/// Sorting by items: orders of fewer than this many items are bucketed by
/// (items, position), the rest share one bucket.
const ITEM_CAP: usize = 15;
/// Position sub-buckets per number of items.
const POSITION_BUCKETS: usize = 256;

/// The buckets of one drill-down, in the page's direction. Sorting by
/// items, most orders have one or two: a bucket per number of items would
/// make the second pass gather (and sort) most of the view for any page.
/// The order's position breaks ties, so (items, position) sub-buckets
/// are in sort order too: a page gathers about 1/256 of an items value.
struct Buckets {
    sort: OrderSort,
    descending: bool,
    n: usize,
    /// Position → sub-bucket: `position >> shift` < [`POSITION_BUCKETS`].
    shift: u32,
}

impl Buckets {
    fn new(sort: OrderSort, descending: bool, n_days: usize, n_orders: usize) -> Buckets {
        let mut shift = 0;
        while (n_orders.max(1) - 1) >> shift >= POSITION_BUCKETS {
            shift += 1;
        }
        let n = match sort {
            OrderSort::Date => n_days.max(1),
            OrderSort::Revenue => REVENUE_BUCKETS,
            OrderSort::Items => ITEM_CAP * POSITION_BUCKETS + 1,
        };
        Buckets {
            sort,
            descending,
            n,
            shift,
        }
    }

    /// The bucket of the order at `o` with sort key `key`.
    fn of(&self, key: u64, o: usize) -> usize {
        let b = match self.sort {
            OrderSort::Date => key as usize,
            OrderSort::Revenue => revenue_bucket(key),
            OrderSort::Items => return self.items(key, o),
        };
        if self.descending { self.n - 1 - b } else { b }
    }

    /// Sorting by items: the items value (capped), then the position's
    /// sub-bucket; the capped values share one bucket at the far end.
    fn items(&self, key: u64, o: usize) -> usize {
        let c = (key as usize).min(ITEM_CAP);
        let sub = o >> self.shift;
        match (c == ITEM_CAP, self.descending) {
            (true, false) => self.n - 1,
            (true, true) => 0,
            (false, false) => c * POSITION_BUCKETS + sub,
            (false, true) => 1 + (ITEM_CAP - 1 - c) * POSITION_BUCKETS + sub,
        }
    }
}

/// One page of the drill-down.
#[derive(Clone, Debug)]
pub struct OrdersRequest {
    pub sort: OrderSort,
    pub descending: bool,
    pub which: Which,
    /// Rows to skip, and at most how many to return.
    pub offset: usize,
    pub limit: usize,
}

/// One order as the drill-down shows it: only its lines in scope count.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderRecord {
    /// The order's position ([`Engine::order_id`]).
    pub position: u32,
    pub date: NaiveDate,
    /// The customer's rank ([`Engine::customer_id`]).
    pub customer: u32,
    /// Slots of the customer's state and segment, and of the order's channel.
    pub state: u8,
    pub segment: u8,
    pub channel: u8,
    /// Category slots of its lines in scope, each once, in code order.
    pub categories: Vec<u8>,
    /// Lines in scope, and their revenue.
    pub items: u32,
    pub revenue: f64,
}

/// The rows asked for and how many orders the view has.
#[derive(Clone, Debug, PartialEq)]
pub struct OrdersPage {
    pub total: u64,
    pub rows: Vec<OrderRecord>,
}

/// The order at `o` with sort key `key` as a pair that sorts in page order:
/// the key in the page's direction, then the position (ties).
fn page_pair(key: u64, o: usize, descending: bool) -> (u64, u32) {
    (if descending { !key } else { key }, o as u32)
}

/// An order-preserving `u64` of a float (negative below positive).
fn ordered_bits(x: f64) -> u64 {
    let b = x.to_bits();
    if b >> 63 == 1 { !b } else { b | (1 << 63) }
}

impl Engine {
    /// Revenue and number of the lines in scope of the order at `o`.
    fn order_sums(&self, scope: &Scope, o: usize) -> (f64, u32) {
        (self.scope_revenue(scope, o), self.order_items(scope, o))
    }

    /// Number of the order lines in scope of the order at `o` (rows that
    /// fold several lines count them all).
    fn order_items(&self, scope: &Scope, o: usize) -> u32 {
        let (l0, l1) = (
            self.order_line_start[o] as usize,
            self.order_line_start[o + 1] as usize,
        );
        let all = scope.all_categories || scope.full[self.order_profile[o] as usize];
        let cats = &scope.masks.category;
        if self.line_items.is_empty() {
            if all {
                return (l1 - l0) as u32;
            }
            return self.line_category[l0..l1]
                .iter()
                .filter(|&&c| cats[usize::from(c)])
                .count() as u32;
        }
        (l0..l1)
            .filter(|&l| all || cats[usize::from(self.line_category[l])])
            .map(|l| self.line_items[l])
            .sum()
    }

    fn sort_key(&self, scope: &Scope, sort: OrderSort, o: usize, d: i32) -> u64 {
        match sort {
            OrderSort::Date => d as u64,
            OrderSort::Items => u64::from(self.order_items(scope, o)),
            OrderSort::Revenue => ordered_bits(self.scope_revenue(scope, o)),
        }
    }

    /// Each order in scope of `ranges` in the chosen period, with its day,
    /// in position order. The customers' orders are one run of positions
    /// per range, read 64 at a time into a mask without a branch (a branch
    /// per order on its day, mispredicted wherever a customer's orders
    /// straddle the period, took a third to a half of a pass).
    fn each_order(
        &self,
        scope: &Scope,
        ranges: &[Range],
        which: Which,
        mut f: impl FnMut(usize, i32),
    ) {
        let w = &scope.w;
        let (a_day, b_day) = match which {
            Which::Current => (w.f, w.t),
            Which::Comparison => (w.pf, w.pt),
        };
        for g in ranges {
            let (a, b) = (
                self.cust_start[g.lo as usize] as usize,
                self.cust_start[g.hi as usize] as usize,
            );
            // 64 orders at a time: which are in the period and profile
            // (no branch), then those.
            let mut o = a;
            while o < b {
                let end = (o + 64).min(b);
                let mut bits = 0u64;
                for (k, (&d, &p)) in self.order_day[o..end]
                    .iter()
                    .zip(&self.order_profile[o..end])
                    .enumerate()
                {
                    let d = i32::from(d);
                    let ok = (d >= a_day) & (d <= b_day) & scope.pm[p as usize];
                    bits |= u64::from(ok) << k;
                }
                while bits != 0 {
                    let i = o + bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    f(i, i32::from(self.order_day[i]));
                }
                o = end;
            }
        }
    }

    /// A page of the orders behind `q` (see the module docs).
    pub fn orders_page(&self, q: &Query, req: &OrdersRequest) -> OrdersPage {
        if req.limit > 0 && req.offset.saturating_add(req.limit) <= ONE_PASS_ROWS {
            self.orders_page_one_pass(q, req)
        } else {
            self.orders_page_two_passes(q, req)
        }
    }

    /// A page of the orders behind `q` in one pass: the `offset + limit`
    /// smallest (key, position) pairs of each thread, merged and sorted
    /// (the order of [`Engine::orders_page_two_passes`], which tests check
    /// it against). `req.limit` > 0.
    pub(super) fn orders_page_one_pass(&self, q: &Query, req: &OrdersRequest) -> OrdersPage {
        struct Smallest {
            keep: Vec<(u64, u32)>,
            /// The largest pair kept once `keep` has been cut to `need`:
            /// a pair above it cannot be among the `need` smallest.
            bound: Option<(u64, u32)>,
            total: u64,
        }
        let scope = self.scope(q);
        let need = req.offset.saturating_add(req.limit).max(1);
        let parts = self.over_customers(
            &scope,
            || Smallest {
                keep: Vec::new(),
                bound: None,
                total: 0,
            },
            |b, _, ranges| {
                self.each_order(&scope, ranges, req.which, |o, d| {
                    b.total += 1;
                    let key = self.sort_key(&scope, req.sort, o, d);
                    let pair = page_pair(key, o, req.descending);
                    if b.bound.is_some_and(|m| pair > m) {
                        return;
                    }
                    b.keep.push(pair);
                    if b.keep.len() >= 2 * need {
                        b.keep.select_nth_unstable(need - 1);
                        b.keep.truncate(need);
                        b.bound = Some(b.keep[need - 1]);
                    }
                });
            },
        );
        let total = parts.iter().map(|b| b.total).sum();
        let picked = parts.into_iter().flat_map(|b| b.keep).collect();
        let rows = self.page_rows(&scope, picked, req.offset, req.limit);
        OrdersPage { total, rows }
    }

    /// A page of the orders behind `q` in two passes (see the module docs).
    pub(super) fn orders_page_two_passes(&self, q: &Query, req: &OrdersRequest) -> OrdersPage {
        let scope = self.scope(q);
        let buckets = Buckets::new(req.sort, req.descending, self.n_days, self.order_day.len());
        let n_buckets = buckets.n;
        // Pass 1: orders per bucket (in the page's direction).
        let hists = self.over_customers(
            &scope,
            || vec![0u32; n_buckets],
            |h, _, ranges| {
                self.each_order(&scope, ranges, req.which, |o, d| {
                    h[buckets.of(self.sort_key(&scope, req.sort, o, d), o)] += 1;
                });
            },
        );
        let mut hist = vec![0u64; n_buckets];
        for h in &hists {
            for (t, &x) in hist.iter_mut().zip(h) {
                *t += u64::from(x);
            }
        }
        drop(hists);
        let total: u64 = hist.iter().sum();
        let (offset, limit) = (req.offset as u64, req.limit as u64);
        if limit == 0 || offset >= total {
            return OrdersPage {
                total,
                rows: Vec::new(),
            };
        }
        // The buckets `lo..=hi` hold rows `offset..offset + limit`; `skip`
        // rows come before bucket `lo`.
        let (mut lo, mut skip) = (0, 0u64);
        while skip + hist[lo] <= offset {
            skip += hist[lo];
            lo += 1;
        }
        let (mut hi, mut upto) = (lo, skip + hist[lo]);
        while upto < offset + limit && hi + 1 < n_buckets {
            hi += 1;
            upto += hist[hi];
        }
        // Pass 2: those buckets' orders, sorted exactly.
        let parts = self.over_customers(&scope, Vec::new, |v: &mut Vec<(u64, u32)>, _, ranges| {
            self.each_order(&scope, ranges, req.which, |o, d| {
                let key = self.sort_key(&scope, req.sort, o, d);
                let b = buckets.of(key, o);
                if (lo..=hi).contains(&b) {
                    v.push(page_pair(key, o, req.descending));
                }
            });
        });
        let picked = parts.into_iter().flatten().collect();
        let rows = self.page_rows(&scope, picked, (offset - skip) as usize, req.limit);
        OrdersPage { total, rows }
    }

    /// The rows `from..from + limit` of the candidate pairs `picked` in
    /// page order (pairs from [`page_pair`]).
    fn page_rows(
        &self,
        scope: &Scope,
        mut picked: Vec<(u64, u32)>,
        from: usize,
        limit: usize,
    ) -> Vec<OrderRecord> {
        picked.sort_unstable();
        picked
            .iter()
            .skip(from)
            .take(limit)
            .map(|&(_, o)| self.order_record(scope, o))
            .collect()
    }

    /// Every order behind `q` in the chosen period, sorted (for exports);
    /// 16 bytes a matching order while sorting, 4 after.
    pub fn orders_sorted(
        &self,
        q: &Query,
        sort: OrderSort,
        descending: bool,
        which: Which,
    ) -> (Scope, Vec<u32>) {
        let scope = self.scope(q);
        let parts = self.over_customers(&scope, Vec::new, |v: &mut Vec<(u64, u32)>, _, ranges| {
            self.each_order(&scope, ranges, which, |o, d| {
                let key = self.sort_key(&scope, sort, o, d);
                v.push(page_pair(key, o, descending));
            });
        });
        let mut all: Vec<(u64, u32)> = parts.into_iter().flatten().collect();
        all.sort_unstable();
        let out = all.iter().map(|&(_, o)| o).collect();
        (scope, out)
    }

    /// The drill-down row of the order at `position` under `scope`.
    pub fn order_record(&self, scope: &Scope, position: u32) -> OrderRecord {
        let o = position as usize;
        let rank = self.cust_start.partition_point(|&s| s as usize <= o) - 1;
        let g = &self.groups[self.groups.partition_point(|g| (g.hi as usize) <= rank)];
        let (revenue, items) = self.order_sums(scope, o);
        let p = self.order_profile[o] as usize;
        let (l0, l1) = (
            self.order_line_start[o] as usize,
            self.order_line_start[o + 1] as usize,
        );
        let mut categories: Vec<u8> = self.line_category[l0..l1]
            .iter()
            .copied()
            .filter(|&c| scope.all_categories || scope.masks.category[usize::from(c)])
            .collect();
        categories.sort_unstable();
        categories.dedup();
        OrderRecord {
            position,
            date: self.date_of(i32::from(self.order_day[o])),
            customer: rank as u32,
            state: g.state,
            segment: g.segment,
            channel: self.profile_channel[p],
            categories,
            items,
            revenue,
        }
    }

    /// The id of the order at `position`.
    pub fn order_id(&self, position: u32) -> &str {
        self.order_ids.get(position as usize)
    }

    /// The date of day index `d`.
    fn date_of(&self, d: i32) -> NaiveDate {
        NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
            + Duration::days(i64::from(self.first_day + d))
    }
}

#[cfg(test)]
mod bucket_tests {
    use super::*;

    /// Buckets never go against the sort: for orders in page order (the
    /// key in the page's direction, then the position), the buckets never
    /// decrease, including past the items cap.
    #[test]
    fn buckets_follow_the_sort_order() {
        let n_orders = 10_000;
        for sort in [OrderSort::Date, OrderSort::Revenue, OrderSort::Items] {
            for descending in [false, true] {
                let b = Buckets::new(sort, descending, 400, n_orders);
                let mut rows: Vec<(u64, usize)> = (0..n_orders)
                    .map(|o| {
                        let key = match sort {
                            OrderSort::Date => (o * 7919 % 400) as u64,
                            // Extremes now and then: below and above the
                            // buckets' range, zero, negative.
                            OrderSort::Revenue => ordered_bits(match o % 97 {
                                0 => [0.0, -0.0, 1e-30, 1e-6, 2e13, 1e300, f64::MAX, -1e300]
                                    [o / 97 % 8],
                                _ => (o * 7919 % 1000) as f64 - 100.5 + (o % 13) as f64 / 7.0,
                            }),
                            OrderSort::Items => (1 + o * 7919 % 40) as u64,
                        };
                        (key, o)
                    })
                    .collect();
                rows.sort_by_key(|&(k, o)| (if descending { !k } else { k }, o));
                let buckets: Vec<usize> = rows.iter().map(|&(k, o)| b.of(k, o)).collect();
                assert!(buckets.iter().all(|&x| x < b.n), "{sort:?} in range");
                assert!(
                    buckets.windows(2).all(|w| w[0] <= w[1]),
                    "{sort:?} descending={descending}"
                );
                if sort == OrderSort::Revenue {
                    assert_eq!(b.n, 16_386);
                    // Revenues a few per mille apart fall in different buckets.
                    let (x, y) = (ordered_bits(100.0), ordered_bits(100.5));
                    assert!(b.of(x, 0) != b.of(y, 0));
                    assert!(revenue_bucket(ordered_bits(1e-5)) > 0);
                    assert_eq!(revenue_bucket(ordered_bits(1e-7)), 0);
                    assert!(revenue_bucket(ordered_bits(1e13)) < b.n - 1);
                }
                if sort == OrderSort::Items {
                    // Past the cap, one bucket; below it, 1/256 of an items value.
                    let ones = rows.iter().filter(|r| r.0 == 1).count();
                    let widest = (0..b.n)
                        .filter(|&i| i != 0 && i != b.n - 1)
                        .map(|i| buckets.iter().filter(|&&x| x == i).count())
                        .max()
                        .unwrap_or(0);
                    assert!(widest * 100 < ones, "{widest} of {ones}");
                }
            }
        }
    }
}
