//! One request: the scopes as masks, the cube and the customers scanned
//! (on two threads above a size), the results merged.

use super::leaders;
use super::*;

impl Engine {
    fn new_scan(&self) -> Scan {
        Scan::zeroed(
            self.n_categories,
            self.n_states,
            self.n_segments,
            self.n_months,
        )
    }

    pub(super) fn windows(&self, q: &Query) -> Windows {
        let w = q.churn_window_days.max(1) as i32;
        let f = epoch_days(q.from) - self.first_day;
        let t = epoch_days(q.to) - self.first_day;
        let pf = epoch_days(q.compare_from) - self.first_day;
        let pt = epoch_days(q.compare_to) - self.first_day;
        let m0 = self.month_of_day[f.clamp(0, self.n_days as i32 - 1) as usize];
        let (ce0, pe0) = (t + 1 - 2 * w, pt + 1 - 2 * w);
        Windows {
            f,
            t,
            pf,
            pt,
            ce0,
            ce1: t + 1 - w,
            pe0,
            pe1: pt + 1 - w,
            lo: f.min(pf).min(ce0).min(pe0),
            hi: t.max(pt),
            m0: usize::from(m0),
        }
    }

    /// Revenue and orders (per category) of cell `c` on days `a..=b`.
    fn cell_sum(&self, c: usize, a: i32, b: i32) -> (f64, u64) {
        let (a, b) = (a.max(0), b.min(self.n_days as i32 - 1));
        if a > b {
            return (0.0, 0);
        }
        // Whole months `full_lo..full_hi` inside the days, the rest by day.
        let (full_lo, full_hi) = self.whole_months(a, b);
        if full_lo >= full_hi {
            return self.days_sum(c, a, b + 1);
        }
        let (r1, o1) = self.days_sum(c, a, self.month_start[full_lo]);
        let (r2, o2) = self.months_sum(c, full_lo, full_hi);
        let (r3, o3) = self.days_sum(c, self.month_start[full_hi], b + 1);
        (r1 + r2 + r3, o1 + o2 + o3)
    }

    /// The whole months `lo..hi` inside days `a..=b` (data days; `lo >= hi`:
    /// none).
    pub(super) fn whole_months(&self, a: i32, b: i32) -> (usize, usize) {
        let (ma, mb) = (
            usize::from(self.month_of_day[a as usize]),
            usize::from(self.month_of_day[b as usize]),
        );
        let lo = if self.month_start[ma] >= a {
            ma
        } else {
            ma + 1
        };
        let hi = if self.month_start[mb + 1] <= b + 1 {
            mb + 1
        } else {
            mb
        };
        (lo, hi)
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
            let (cat, st, seg) = (
                usize::from(cell.category),
                usize::from(cell.state),
                usize::from(cell.segment),
            );
            let (rev, orders) = self.cell_sum(c, w.f, w.t);
            s.current.revenue += rev;
            s.cat_revenue[cat] += rev;
            s.cat_orders[cat] += orders;
            s.state_revenue[st] += rev;
            s.seg_revenue[seg] += rev;
            let (rev, orders) = self.cell_sum(c, w.pf, w.pt);
            s.previous.revenue += rev;
            s.cat_revenue_prev[cat] += rev;
            s.cat_orders_prev[cat] += orders;
            s.state_revenue_prev[st] += rev;
            s.seg_revenue_prev[seg] += rev;
        }
    }

    /// Whether the orders `a..b` (one customer's, by day) all come before
    /// day `lo`, the first of every window: nothing of them counts.
    fn ends_before(&self, a: usize, b: usize, lo: i32) -> bool {
        self.order_day[a..b]
            .last()
            .is_none_or(|&d| i32::from(d) < lo)
    }

    /// Whether customer `rank` can still be among the top customers of a
    /// thread whose `top`-th best revenue is `floor`: its revenue in any
    /// period and scope is at most the sum of its positive lines. Skipping
    /// the others skips reading their orders' revenue, which the scan
    /// otherwise reads scattered (a cache miss for most orders in the
    /// periods). The margin covers the rounding of the two sums.
    fn may_rank(&self, rank: usize, floor: f64) -> bool {
        let bound = self.cust_bound[rank] * (1.0 + 1e-9);
        bound >= floor || bound.is_nan()
    }

    /// The per-customer part for customers `ranges` (rank ranges with their
    /// state and segment slots): orders, active customers, churn, customers
    /// by state and segment, cohorts.
    /// With `top` > 0, also each customer's revenue in both periods: the
    /// `top` customers of most revenue are kept.
    fn customers(&self, s: &mut Scan, scope: &Scope, ranges: &[Range], top: usize) {
        match &scope.day_code {
            Some(day_code) => self.customers_one_word(s, scope, day_code, ranges, top),
            None => self.customers_wide(s, scope, ranges, top),
        }
        leaders::keep_top(&mut s.top_customers, top);
    }

    /// [`Self::customers`] when the period's months fit one 64-bit word:
    /// no branch per order but the end of the customer's period. What a
    /// day counts for (periods, churn windows, its month's cohort bit) is
    /// read from the scope's table of days ([`Scope::day_code`]), not
    /// worked out order by order.
    #[allow(clippy::needless_range_loop)] // one index over parallel columns
    fn customers_one_word(
        &self,
        s: &mut Scan,
        scope: &Scope,
        day_code: &[u16],
        ranges: &[Range],
        top: usize,
    ) {
        let (w, pm) = (&scope.w, &scope.pm);
        let (lo, hi) = (w.lo, w.hi);
        let mut floor = f64::NEG_INFINITY;
        for g in ranges {
            let (mut st_customers, mut st_orders) = (0u64, 0u64);
            let (mut st_customers_prev, mut st_orders_prev) = (0u64, 0u64);
            for r in g.lo as usize..g.hi as usize {
                let (a, b) = (self.cust_start[r] as usize, self.cust_start[r + 1] as usize);
                if self.ends_before(a, b, lo) {
                    continue;
                }
                let days = &self.order_day[a..b];
                let profiles = &self.order_profile[a..b];
                let top_wanted = top > 0 && self.may_rank(r, floor);
                let mut flags = 0u32;
                let (mut n_cur, mut n_prev) = (0u32, 0u32);
                let (mut rev_cur, mut rev_prev) = (0.0, 0.0);
                let mut bits = 0u64;
                for (k, (&d, &profile)) in days.iter().zip(profiles).enumerate() {
                    if i32::from(d) > hi {
                        break;
                    }
                    let code = u32::from(day_code[usize::from(d)]);
                    // All or nothing of the day's flags: the order's scope.
                    let fl = code & DAY_FLAGS & 0u32.wrapping_sub(u32::from(pm[profile as usize]));
                    let cur = u32::from(fl & u32::from(CUR) != 0);
                    let prev = u32::from(fl & u32::from(PREV) != 0);
                    flags |= fl;
                    n_cur += cur;
                    n_prev += prev;
                    bits |= u64::from(cur) << (code >> DAY_MONTH_SHIFT);
                    if top_wanted && (cur | prev) != 0 {
                        let x = self.scope_revenue(scope, a + k);
                        if cur != 0 {
                            rev_cur += x;
                        }
                        if prev != 0 {
                            rev_prev += x;
                        }
                    }
                }
                if flags == 0 {
                    continue;
                }
                if top_wanted && n_cur > 0 {
                    s.push_top(
                        top,
                        g,
                        r,
                        [rev_cur, rev_prev],
                        [n_cur, n_prev].map(u64::from),
                        &mut floor,
                    );
                }
                let bit = |flag: u8| u64::from(flags & u32::from(flag) != 0);
                s.current.churn_base += bit(C_EARLIER);
                s.current.churned += bit(C_EARLIER) & (bit(C_LATER) ^ 1);
                s.previous.churn_base += bit(P_EARLIER);
                s.previous.churned += bit(P_EARLIER) & (bit(P_LATER) ^ 1);
                s.previous.active_customers += bit(PREV);
                s.previous.orders += u64::from(n_prev);
                s.current.active_customers += bit(CUR);
                s.current.orders += u64::from(n_cur);
                st_customers += bit(CUR);
                st_orders += u64::from(n_cur);
                st_customers_prev += bit(PREV);
                st_orders_prev += u64::from(n_prev);
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
            s.add_group(
                g,
                [st_customers, st_orders, st_customers_prev, st_orders_prev],
            );
        }
    }

    /// [`Self::customers`] for periods of more than 64 months of data.
    #[allow(clippy::needless_range_loop)] // one index over parallel columns
    fn customers_wide(&self, s: &mut Scan, scope: &Scope, ranges: &[Range], top: usize) {
        let (w, pm) = (&scope.w, &scope.pm);
        let words = (self.n_months - w.m0).div_ceil(64).max(1);
        let mut bits = vec![0u64; words];
        let (f, t, pf, pt) = (w.f, w.t, w.pf, w.pt);
        let mut floor = f64::NEG_INFINITY;
        for g in ranges {
            let mut sums = [0u64; 4];
            for r in g.lo as usize..g.hi as usize {
                let (a, b) = (self.cust_start[r] as usize, self.cust_start[r + 1] as usize);
                if self.ends_before(a, b, w.lo) {
                    continue;
                }
                let top_wanted = top > 0 && self.may_rank(r, floor);
                let mut flags = 0u8;
                let (mut n_cur, mut n_prev) = (0u64, 0u64);
                let (mut rev_cur, mut rev_prev) = (0.0, 0.0);
                for o in a..b {
                    let d = i32::from(self.order_day[o]);
                    if d > w.hi {
                        break;
                    }
                    if d < w.lo || !pm[self.order_profile[o] as usize] {
                        continue;
                    }
                    let (cur, prev) = (d >= f && d <= t, d >= pf && d <= pt);
                    let x = if top_wanted && (cur || prev) {
                        self.scope_revenue(scope, o)
                    } else {
                        0.0
                    };
                    if cur {
                        n_cur += 1;
                        rev_cur += x;
                        flags |= CUR;
                        let m = usize::from(self.month_of_day[d as usize]) - w.m0;
                        bits[m >> 6] |= 1 << (m & 63);
                    }
                    if prev {
                        n_prev += 1;
                        rev_prev += x;
                        flags |= PREV;
                    }
                    if d >= w.ce0 && d <= t {
                        flags |= if d >= w.ce1 { C_LATER } else { C_EARLIER };
                    }
                    if d >= w.pe0 && d <= pt {
                        flags |= if d >= w.pe1 { P_LATER } else { P_EARLIER };
                    }
                }
                if flags == 0 {
                    continue;
                }
                if top_wanted && n_cur > 0 {
                    s.push_top(top, g, r, [rev_cur, rev_prev], [n_cur, n_prev], &mut floor);
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
                    sums[2] += 1;
                    sums[3] += n_prev;
                }
                if flags & CUR != 0 {
                    s.current.active_customers += 1;
                    s.current.orders += n_cur;
                    sums[0] += 1;
                    sums[1] += n_cur;
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
            s.add_group(g, sums);
        }
    }

    /// A request's scope: masks, profiles in scope, day windows and the
    /// customer ranges of the segments and states in scope.
    pub fn scope(&self, q: &Query) -> Scope {
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
        // Profile → every one of its categories in scope: its lines in
        // scope are all its lines.
        let full: Vec<bool> = match &q.categories {
            None => Vec::new(),
            Some(_) => (0..self.profile_channel.len())
                .map(|p| {
                    self.profile_cats
                        [self.profile_cat_start[p] as usize..self.profile_cat_start[p + 1] as usize]
                        .iter()
                        .all(|&c| masks.category[usize::from(c)])
                })
                .collect(),
        };
        let ranges: Vec<Range> = self
            .groups
            .iter()
            .filter(|g| masks.segment[usize::from(g.segment)] && masks.state[usize::from(g.state)])
            .map(|g| Range {
                lo: g.lo,
                hi: g.hi,
                state: g.state,
                segment: g.segment,
            })
            .collect();
        let in_scope = ranges
            .iter()
            .map(|g| (self.cust_start[g.hi as usize] - self.cust_start[g.lo as usize]) as usize)
            .sum();
        let w = self.windows(q);
        // No order can be in either period or churn window.
        let nothing = w.hi < 0 || w.lo >= self.n_days as i32;
        // The one-word pass and its table when the period's months from
        // `m0` fit a word.
        let day_code = (self.n_months - w.m0 <= self.one_word_months).then(|| self.day_codes(&w));
        Scope {
            all_categories: q.categories.is_none(),
            masks,
            pm,
            full,
            w,
            ranges,
            in_scope,
            nothing,
            day_code,
        }
    }

    /// [`Scope::day_code`] of windows `w` (whose months from `w.m0` fit
    /// one word).
    fn day_codes(&self, w: &Windows) -> Vec<u16> {
        (0..self.n_days as i32)
            .map(|d| {
                let b = |x: bool, flag: u8| if x { u16::from(flag) } else { 0 };
                let cur = (d >= w.f) & (d <= w.t);
                let flags = b(cur, CUR)
                    | b((d >= w.pf) & (d <= w.pt), PREV)
                    | b((d >= w.ce0) & (d < w.ce1), C_EARLIER)
                    | b((d >= w.ce1) & (d <= w.t), C_LATER)
                    | b((d >= w.pe0) & (d < w.pe1), P_EARLIER)
                    | b((d >= w.pe1) & (d <= w.pt), P_LATER);
                // The month's bit among the period's (0 when not in the
                // current period: the bit is only set for its orders).
                let m = if cur {
                    usize::from(self.month_of_day[d as usize]).wrapping_sub(w.m0) as u16 & 63
                } else {
                    0
                };
                flags | m << DAY_MONTH_SHIFT
            })
            .collect()
    }

    /// Run `work` over the scope's customers: in one go below
    /// `parallel_min` orders, else in chunks of customers taken by as many
    /// threads as cores (so that a thread the OS sets aside does not hold
    /// the answer back), each thread with its own `T` from `new`; the
    /// results in thread order. `work` is told each chunk's index: the
    /// chunks depend on the scope only, never on which thread took them. A
    /// panicked thread's part is redone here.
    pub(super) fn over_customers<T: Send>(
        &self,
        scope: &Scope,
        new: impl Fn() -> T + Sync,
        work: impl Fn(&mut T, usize, &[Range]) + Sync,
    ) -> Vec<T> {
        let mut first = new();
        if scope.nothing {
            return vec![first];
        }
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        if scope.in_scope < self.parallel_min.max(1) || workers < 2 {
            work(&mut first, 0, &scope.ranges);
            return vec![first];
        }
        // Chunks of about `target` orders, cut at customer boundaries.
        let target = (scope.in_scope / (8 * workers)).max(PARALLEL_MIN_ORDERS / 8);
        let mut chunks = Vec::new();
        for g in &scope.ranges {
            let mut a = g.lo;
            while a < g.hi {
                let want = self.cust_start[a as usize] as usize + target;
                let b = a + self.cust_start[a as usize..=g.hi as usize]
                    .partition_point(|&x| (x as usize) < want) as u32;
                let b = b.clamp(a + 1, g.hi);
                chunks.push(Range { lo: a, hi: b, ..*g });
                a = b;
            }
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let taken = |t: &mut T| {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(chunk) = chunks.get(i) else {
                    break;
                };
                work(t, i, std::slice::from_ref(chunk));
                done.push(i);
            }
            done
        };
        let (mine, others) = std::thread::scope(|sc| {
            let handles: Vec<_> = (1..workers)
                .map(|_| {
                    sc.spawn(|| {
                        let mut t = new();
                        let done = taken(&mut t);
                        (t, done)
                    })
                })
                .collect();
            let mine = taken(&mut first);
            (
                mine,
                handles.into_iter().map(|h| h.join()).collect::<Vec<_>>(),
            )
        });
        let mut out = vec![first];
        let mut claimed = vec![false; chunks.len()];
        for i in mine {
            claimed[i] = true;
        }
        for (t, done) in others.into_iter().flatten() {
            for i in done {
                claimed[i] = true;
            }
            out.push(t);
        }
        // A thread that panicked took chunks nobody has counted: redo them.
        let missing: Vec<usize> = (0..chunks.len()).filter(|&i| !claimed[i]).collect();
        if !missing.is_empty() {
            let mut t = new();
            for i in missing {
                work(&mut t, i, std::slice::from_ref(&chunks[i]));
            }
            out.push(t);
        }
        out
    }

    /// Every figure of one request: the cube, and one pass over the
    /// customers in scope (with the lines of their orders in either period
    /// when `q.top` > 0: products and top customers).
    pub fn scan(&self, q: &Query) -> Scan {
        let scope = self.scope(q);
        // Products from the product cube when no customer is left out (no
        // state or segment filter), else from the lines of the customers'
        // orders in the same pass.
        let product_cube = q.top > 0
            && q.states.is_none()
            && q.segment.is_none()
            && self.products_one_category
            && !self.product_lines_only;
        let product_lines = q.top > 0 && !product_cube;
        // A thread's scan: its product sums go to its scratch and parts,
        // the dense per-product figures are the merged scan's only.
        let new = || self.new_scan();
        let customer_pass = || {
            self.over_customers(&scope, new, |s, chunk, ranges| {
                self.customers(s, &scope, ranges, q.top);
                if product_lines {
                    self.leaders(s, &scope, chunk, ranges);
                }
            })
        };
        // The product cube reads the orders of the periods' edge days in
        // day order (scattered over the customers' ranges): on its own
        // thread beside the customer pass, whose chunks the other threads
        // share out, instead of after it on one.
        let (parts, products) = if product_cube {
            std::thread::scope(|sc| {
                let cube = sc.spawn(|| {
                    let mut p = Scan::default();
                    p.zero_products(self.n_products);
                    self.product_cube(&mut p, &scope);
                    p
                });
                let parts = customer_pass();
                // A panicked cube thread: do its work again here.
                let products = cube.join().ok();
                (parts, products)
            })
        } else {
            (customer_pass(), None)
        };
        let mut parts = parts.into_iter();
        let mut s = parts.next().unwrap_or_else(new);
        for b in parts {
            s = merge(s, b, q.top);
        }
        s.product_scratch = Vec::new();
        if q.top > 0 && !(product_cube && products.is_some()) {
            s.zero_products(self.n_products);
        }
        leaders::settle_products(&mut s);
        if product_cube {
            match products {
                Some(p) => {
                    s.product_revenue = p.product_revenue;
                    s.product_orders = p.product_orders;
                    s.product_revenue_prev = p.product_revenue_prev;
                    s.product_orders_prev = p.product_orders_prev;
                }
                None => self.product_cube(&mut s, &scope),
            }
        }
        self.cube(&mut s, &scope.w, &scope.masks);
        s
    }
}

/// Customers `lo..hi` (ranks), all of one state and one segment (slots).
#[derive(Clone, Copy, Debug)]
pub(super) struct Range {
    pub lo: u32,
    pub hi: u32,
    pub state: u8,
    pub segment: u8,
}

/// What a request selects, ready for the passes ([`Engine::scope`]).
pub struct Scope {
    pub(super) all_categories: bool,
    pub(super) masks: Masks,
    /// Profile → in scope (its channel, and one of its categories).
    pub(super) pm: Vec<bool>,
    /// Profile → all its categories in scope (empty without a category filter).
    pub(super) full: Vec<bool>,
    pub(super) w: Windows,
    pub(super) ranges: Vec<Range>,
    /// Orders of the customers in `ranges`, any day.
    pub(super) in_scope: usize,
    /// No order can count: no pass needed.
    pub(super) nothing: bool,
    /// Per day index, what an order in scope that day counts for: the
    /// flags [`CUR`], [`PREV`], [`C_EARLIER`], [`C_LATER`], [`P_EARLIER`],
    /// [`P_LATER`] (the bits the wide pass sets order by order); from bit
    /// [`DAY_MONTH_SHIFT`], its month's bit among the current period's
    /// months (from `w.m0`). `None` when those months take more than a
    /// word: the wide pass.
    pub(super) day_code: Option<Vec<u16>>,
}

/// The flag bits of a [`Scope::day_code`].
const DAY_FLAGS: u32 = (CUR | PREV | C_EARLIER | C_LATER | P_EARLIER | P_LATER) as u32;
/// Where a [`Scope::day_code`]'s month bit starts.
const DAY_MONTH_SHIFT: u32 = 6;

impl Scan {
    /// Zero per-product figures for `n` products (the leaderboards').
    fn zero_products(&mut self, n: usize) {
        self.product_revenue = vec![0.0; n];
        self.product_orders = vec![0; n];
        self.product_revenue_prev = vec![0.0; n];
        self.product_orders_prev = vec![0; n];
    }

    /// A candidate for the top customers (kept when among the `top` first).
    /// When the candidates are cut back to `top`, `floor` becomes the
    /// revenue of the last one kept: no customer below it can enter.
    fn push_top(
        &mut self,
        top: usize,
        g: &Range,
        rank: usize,
        rev: [f64; 2],
        orders: [u64; 2],
        floor: &mut f64,
    ) {
        self.top_customers.push(CustomerFigure {
            customer: rank as u32,
            state: g.state,
            segment: g.segment,
            revenue: rev[0],
            orders: orders[0],
            revenue_prev: rev[1],
            orders_prev: orders[1],
        });
        if self.top_customers.len() > 2 * top + 64 {
            leaders::keep_top(&mut self.top_customers, top);
            *floor = self.top_customers[top - 1].revenue;
        }
    }

    /// Add one group's customer counts (current customers and orders,
    /// comparison customers and orders) to its state and segment.
    fn add_group(&mut self, g: &Range, [c, o, cp, op]: [u64; 4]) {
        let (st, seg) = (usize::from(g.state), usize::from(g.segment));
        self.state_customers[st] += c;
        self.state_orders[st] += o;
        self.state_customers_prev[st] += cp;
        self.state_orders_prev[st] += op;
        self.seg_customers[seg] += c;
        self.seg_orders[seg] += o;
        self.seg_customers_prev[seg] += cp;
        self.seg_orders_prev[seg] += op;
    }
}

/// A request's scope as slot masks.
pub(super) struct Masks {
    pub category: Vec<bool>,
    pub state: Vec<bool>,
    pub channel: Vec<bool>,
    pub segment: Vec<bool>,
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

/// Two threads' parts of the customer pass (the cube is added after).
fn merge(mut a: Scan, b: Scan, top: usize) -> Scan {
    add_t(&mut a.current, &b.current);
    add_t(&mut a.previous, &b.previous);
    add_u(&mut a.state_orders, &b.state_orders);
    add_u(&mut a.state_customers, &b.state_customers);
    add_u(&mut a.state_orders_prev, &b.state_orders_prev);
    add_u(&mut a.state_customers_prev, &b.state_customers_prev);
    add_u(&mut a.seg_orders, &b.seg_orders);
    add_u(&mut a.seg_customers, &b.seg_customers);
    add_u(&mut a.seg_orders_prev, &b.seg_orders_prev);
    add_u(&mut a.seg_customers_prev, &b.seg_customers_prev);
    add_u(&mut a.cohort_size, &b.cohort_size);
    for (x, y) in a.cohort_active.iter_mut().zip(&b.cohort_active) {
        add_u(x, y);
    }
    a.product_parts.extend(b.product_parts);
    a.top_customers.extend(b.top_customers);
    leaders::keep_top(&mut a.top_customers, top);
    a
}
