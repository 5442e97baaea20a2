//! The engine against a line-by-line reference of the contract's
//! definitions (hash sets, no cleverness) on random data and filters,
//! period edges included.

use std::collections::HashMap;

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

const PRODUCTS: usize = 40;

/// Random lines from `min` to `max`: customers with a state and a
/// segment (some missing), orders of 1 to 4 lines of 40 products (some
/// without a category; a product may come twice in an order).
fn data(rng: &mut Rng, customers: usize, orders: usize) -> (Lines, Vec<u8>, NaiveDate, NaiveDate) {
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
    let product_category: Vec<u8> = (0..PRODUCTS).map(|_| code(rng, DIMS.categories)).collect();
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
            let p = rng.below(PRODUCTS);
            l.order.push(o as u32);
            l.customer.push(c as u32);
            l.day.push(day);
            l.channel.push(channel);
            l.category.push(product_category[p]);
            l.state.push(states[c]);
            l.product.push(p as u32);
            l.revenue.push((rng.below(100_000) as f64) / 7.0);
        }
    }
    (l, segment_of, min, max)
}

/// Ids for `data`'s codes: `o{code}`, `c{code}`, `p{code:02}`.
fn ids(l: &Lines) -> Ids {
    let n = |v: &[u32]| v.iter().map(|&x| x as usize + 1).max().unwrap_or(0);
    let list = |prefix: &str, n: usize| {
        let v: Vec<String> = (0..n).map(|i| format!("{prefix}{i:02}")).collect();
        IdList::from_strs(v.iter().map(String::as_str)).expect("ids")
    };
    Ids {
        orders: list("o", n(&l.order)),
        customers: list("c", n(&l.customer)),
        products: list("p", PRODUCTS),
    }
}

fn engine(l: &Lines, seg: &[u8], min: NaiveDate, max: NaiveDate) -> Engine {
    Engine::build(l, &ids(l), DIMS, seg, min, max).expect("engine")
}

fn code_of(id: &str) -> usize {
    id[1..].parse().expect("a code")
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

mod reference;
use reference::{Detail, Fig, OrderRef, reference};

#[track_caller]
fn close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0),
        "{what}: engine {a}, reference {b}"
    );
}

#[track_caller]
fn close_all(a: &[f64], b: &[f64], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        close(*x, *y, &format!("{what} [{i}]"));
    }
}

#[track_caller]
fn same(got: &Scan, want: &Scan, what: &str) {
    for (g, w, p) in [
        (&got.current, &want.current, "current"),
        (&got.previous, &want.previous, "comparison"),
    ] {
        close(g.revenue, w.revenue, &format!("{what}: {p} revenue"));
        let counts = |t: &Totals| (t.orders, t.active_customers, t.churn_base, t.churned);
        assert_eq!(
            counts(g),
            counts(w),
            "{what}: {p} orders, active, churn base, churned"
        );
    }
    close_all(&got.monthly, &want.monthly, &format!("{what}: monthly"));
    let present = |v: &[u64]| v.iter().map(|&n| n > 0).collect::<Vec<_>>();
    assert_eq!(
        present(&got.monthly_lines),
        present(&want.monthly_lines),
        "{what}: months"
    );
    for (g, w, name) in [
        (&got.cat_revenue, &want.cat_revenue, "category revenue"),
        (
            &got.cat_revenue_prev,
            &want.cat_revenue_prev,
            "category comparison revenue",
        ),
        (&got.state_revenue, &want.state_revenue, "state revenue"),
        (
            &got.state_revenue_prev,
            &want.state_revenue_prev,
            "state comparison revenue",
        ),
        (&got.seg_revenue, &want.seg_revenue, "segment revenue"),
        (
            &got.seg_revenue_prev,
            &want.seg_revenue_prev,
            "segment comparison revenue",
        ),
    ] {
        close_all(g, w, &format!("{what}: {name}"));
    }
    for (g, w, name) in [
        (&got.cat_orders, &want.cat_orders, "category orders"),
        (
            &got.cat_orders_prev,
            &want.cat_orders_prev,
            "category comparison orders",
        ),
        (&got.state_orders, &want.state_orders, "state orders"),
        (
            &got.state_customers,
            &want.state_customers,
            "state customers",
        ),
        (
            &got.state_orders_prev,
            &want.state_orders_prev,
            "state comparison orders",
        ),
        (
            &got.state_customers_prev,
            &want.state_customers_prev,
            "state comparison customers",
        ),
        (&got.seg_orders, &want.seg_orders, "segment orders"),
        (&got.seg_customers, &want.seg_customers, "segment customers"),
        (
            &got.seg_orders_prev,
            &want.seg_orders_prev,
            "segment comparison orders",
        ),
        (
            &got.seg_customers_prev,
            &want.seg_customers_prev,
            "segment comparison customers",
        ),
        (&got.cohort_size, &want.cohort_size, "cohort sizes"),
    ] {
        assert_eq!(g, w, "{what}: {name}");
    }
    assert_eq!(got.cohort_active, want.cohort_active, "{what}: cohorts");
}

/// Products, top customers, every customer, against the reference.
#[track_caller]
fn same_leaders(e: &Engine, q: &Query, got: &Scan, want: &Detail, what: &str) {
    let key = |f: &Fig| {
        (
            f.revenue,
            f.orders.len() as u64,
            f.revenue_prev,
            f.orders_prev.len() as u64,
        )
    };
    // Products: every one with an order in either period, most revenue first.
    let products = e.products_ranked(got);
    assert_eq!(products.len(), want.products.len(), "{what}: products");
    for (i, p) in products.iter().enumerate() {
        let code = code_of(e.product_id(p.product)) as u32;
        assert_eq!(code, p.product, "{what}: product ids are in code order");
        let w = key(&want.products[&code]);
        close(p.revenue, w.0, &format!("{what}: product {code} revenue"));
        close(
            p.revenue_prev,
            w.2,
            &format!("{what}: product {code} comparison revenue"),
        );
        assert_eq!(
            (p.orders, p.orders_prev),
            (w.1, w.3),
            "{what}: product {code} orders"
        );
        if i > 0 {
            assert!(
                products[i - 1].revenue >= p.revenue,
                "{what}: products sorted"
            );
        }
    }
    let product_sum: f64 = products.iter().map(|p| p.revenue).sum();
    close(
        product_sum,
        got.current.revenue,
        &format!("{what}: products add up"),
    );
    // Every customer, most revenue first; the top ones are the first ones.
    let all = e.customers_ranked(q);
    assert_eq!(all.len(), want.customers.len(), "{what}: customers");
    for (i, c) in all.iter().enumerate() {
        let code = code_of(e.customer_id(c.customer)) as u32;
        let w = key(&want.customers[&code]);
        close(c.revenue, w.0, &format!("{what}: customer {code} revenue"));
        close(
            c.revenue_prev,
            w.2,
            &format!("{what}: customer {code} comparison revenue"),
        );
        assert_eq!(
            (c.orders, c.orders_prev),
            (w.1, w.3),
            "{what}: customer {code} orders"
        );
        if i > 0 {
            assert!(all[i - 1].revenue >= c.revenue, "{what}: customers sorted");
        }
    }
    let n_top = all.iter().filter(|c| c.orders > 0).count().min(q.top);
    assert_eq!(got.top_customers.len(), n_top, "{what}: top customers");
    assert_eq!(
        &got.top_customers[..],
        &all[..n_top],
        "{what}: top customers"
    );
}

/// Pages of orders against the reference's orders, sorted by the key with
/// the engine's position as the tie-break.
#[track_caller]
fn same_orders(e: &Engine, q: &Query, want: &Detail, rng: &mut Rng, what: &str) {
    let position: HashMap<usize, u32> = (0..e.orders as u32)
        .map(|p| (code_of(e.order_id(p)), p))
        .collect();
    let which = if rng.chance(0.7) {
        Which::Current
    } else {
        Which::Comparison
    };
    let orders = &want.orders[usize::from(which == Which::Comparison)];
    let sort = [OrderSort::Date, OrderSort::Revenue, OrderSort::Items][rng.below(3)];
    let descending = rng.chance(0.6);
    let mut expected: Vec<(u32, &OrderRef)> = orders
        .iter()
        .map(|(&o, v)| (position[&(o as usize)], v))
        .collect();
    expected.sort_by(|a, b| {
        let by_key = match sort {
            OrderSort::Date => a.1.0.cmp(&b.1.0),
            OrderSort::Revenue => a.1.1.total_cmp(&b.1.1),
            OrderSort::Items => a.1.2.cmp(&b.1.2),
        };
        let by_key = if descending { by_key.reverse() } else { by_key };
        by_key.then(a.0.cmp(&b.0))
    });
    let sorted = e.orders_sorted(q, sort, descending, which).1;
    assert_eq!(
        sorted,
        expected.iter().map(|x| x.0).collect::<Vec<_>>(),
        "{what}: every order, sorted by {sort:?}"
    );
    let limit = 1 + rng.below(40);
    let offset = match rng.below(3) {
        0 => 0,
        1 => rng.below(expected.len() + 1),
        _ => expected.len().saturating_sub(rng.below(limit + 1)),
    };
    let req = OrdersRequest {
        sort,
        descending,
        which,
        offset,
        limit,
    };
    let page = e.orders_page(q, &req);
    // Both ways to a page give the same page (the tests' pages are all
    // within reach of one pass).
    assert_eq!(
        page,
        e.orders_page_two_passes(q, &req),
        "{what}: one pass against two ({req:?})"
    );
    assert_eq!(page.total, expected.len() as u64, "{what}: total orders");
    let want_rows: Vec<_> = expected.iter().skip(offset).take(limit).collect();
    assert_eq!(page.rows.len(), want_rows.len(), "{what}: rows of {req:?}");
    for (r, (p, (d, rev, items, cats))) in page.rows.iter().zip(want_rows) {
        assert_eq!(r.position, *p, "{what}: order at its place ({req:?})");
        assert_eq!(epoch_days(r.date), *d, "{what}: date");
        close(r.revenue, *rev, &format!("{what}: order revenue"));
        assert_eq!((r.items, &r.categories), (*items, cats), "{what}: items");
    }
}

fn query(from: NaiveDate, to: NaiveDate) -> Query {
    Query::period(from, to)
}

#[test]
fn random_filters_equal_the_line_by_line_reference() {
    let mut rng = Rng(7);
    let (l, seg, min, max) = data(&mut rng, 300, 3000);
    let mut e = engine(&l, &seg, min, max);
    let span = (max - min).num_days();
    for i in 0..300 {
        // Starts and ends on month edges, single days, periods
        // reaching before and after the data.
        let from = match i % 4 {
            0 => min + Duration::days(rng.below(span as usize) as i64),
            1 => NaiveDate::from_ymd_opt(2022 + rng.below(3) as i32, 1 + rng.below(12) as u32, 1)
                .expect("first day"),
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
        // Previous period, the same days a year earlier (overlapping the
        // current period when it is longer than a year), or any period.
        let compare = match rng.below(3) {
            0 => Comparison::Previous.period(from, to),
            1 => Comparison::YearOverYear.period(from, to),
            _ => {
                let a = min + Duration::days(rng.below(span as usize) as i64);
                Some((a, a + Duration::days(rng.below(300) as i64)))
            }
        };
        (q.compare_from, q.compare_to) = compare.expect("a comparison period");
        q.categories = mask(&mut rng, DIMS.categories);
        q.states = mask(&mut rng, DIMS.states);
        q.channels = mask(&mut rng, DIMS.channels);
        q.segment = rng.chance(0.4).then(|| rng.below(DIMS.segments) as u8);
        q.churn_window_days = if rng.chance(0.8) {
            90
        } else {
            1 + rng.below(200) as i64
        };
        q.top = [0, 1, 5, 1000][rng.below(4)];
        e.parallel_min = if i % 2 == 0 { 0 } else { usize::MAX };
        e.one_word_months = if i % 3 == 0 { 0 } else { 64 };
        // Products from the cube where it applies, or from the lines.
        e.product_lines_only = i % 5 == 1;
        let (want, detail) = reference(&l, &seg, &q, e.first_month, e.n_months);
        let what = format!(
            "query {i} ({from}..{to} vs {}..{})",
            q.compare_from, q.compare_to
        );
        let got = e.scan(&q);
        same(&got, &want, &what);
        if q.top > 0 {
            same_leaders(&e, &q, &got, &detail, &what);
        } else {
            assert!(got.product_revenue.is_empty() && got.top_customers.is_empty());
        }
        same_orders(&e, &q, &detail, &mut rng, &what);
    }
}

#[test]
fn the_comparison_period_is_the_previous_one_or_a_year_earlier() {
    let p = |a, b| Comparison::Previous.period(a, b);
    let y = |a, b| Comparison::YearOverYear.period(a, b);
    // A year: the previous 366 days (2024 is a leap year), or 2023.
    assert_eq!(
        p(date(2024, 1, 1), date(2024, 12, 31)),
        Some((date(2022, 12, 31), date(2023, 12, 31)))
    );
    assert_eq!(
        y(date(2024, 1, 1), date(2024, 12, 31)),
        Some((date(2023, 1, 1), date(2023, 12, 31)))
    );
    assert_eq!(
        p(date(2025, 1, 1), date(2025, 12, 31)),
        Some((date(2024, 1, 2), date(2024, 12, 31)))
    );
    assert_eq!(
        y(date(2025, 1, 1), date(2025, 12, 31)),
        Some((date(2024, 1, 1), date(2024, 12, 31)))
    );
    // February of a leap year against February (28 days) a year earlier.
    assert_eq!(
        y(date(2024, 2, 1), date(2024, 2, 29)),
        Some((date(2023, 2, 1), date(2023, 2, 28)))
    );
    assert_eq!(
        p(date(2024, 3, 1), date(2024, 3, 31)),
        Some((date(2024, 1, 30), date(2024, 2, 29)))
    );
    // At chrono's limits: no period, never a panic.
    assert_eq!(p(NaiveDate::MIN, NaiveDate::MIN + Duration::days(3)), None);
    assert_eq!(y(NaiveDate::MIN, NaiveDate::MIN), None);
    // Defaults: whole months and one year are compared year over year.
    let d = Comparison::default_for;
    assert_eq!(
        d(date(2025, 1, 1), date(2025, 12, 31)),
        Comparison::YearOverYear
    );
    assert_eq!(
        d(date(2024, 2, 1), date(2024, 2, 29)),
        Comparison::YearOverYear
    );
    assert_eq!(
        d(date(2025, 4, 1), date(2025, 6, 30)),
        Comparison::YearOverYear
    );
    assert_eq!(
        d(date(2024, 12, 16), date(2025, 12, 15)),
        Comparison::YearOverYear
    );
    assert_eq!(
        d(date(2024, 3, 1), date(2025, 2, 28)),
        Comparison::YearOverYear
    );
    // 365 days: compared year over year even with a 29/02 inside.
    assert_eq!(
        d(date(2024, 1, 2), date(2024, 12, 31)),
        Comparison::YearOverYear
    );
    assert_eq!(
        d(date(2025, 1, 2), date(2025, 12, 31)),
        Comparison::Previous
    );
    assert_eq!(d(date(2025, 3, 1), date(2025, 3, 30)), Comparison::Previous);
    assert_eq!(d(date(2025, 3, 10), date(2025, 4, 9)), Comparison::Previous);
    assert_eq!(
        ["previous", "yoy"].map(|n| Comparison::parse(n).map(Comparison::name)),
        [Some("previous"), Some("yoy")]
    );
    assert_eq!(Comparison::parse("year"), None);
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
        l.product = vec![0; l.order.len()];
        let (min, max) = (date(2023, 1, 1), date(2024, 12, 31));
        engine(&l, &[0], min, max)
    };
    let q = query(date(2024, 1, 1), date(2024, 6, 30));
    for (days, base, churned) in [
        (vec![date(2024, 1, 2)], 0, 0), // before the earlier window
        (vec![date(2024, 1, 3)], 1, 1), // its first day
        (vec![date(2024, 4, 1)], 1, 1), // its last day
        (vec![date(2024, 4, 1), date(2024, 4, 2)], 1, 0), // back on the later window's first day
        (vec![date(2024, 4, 1), date(2024, 6, 30)], 1, 0), // … or on its last day
        (vec![date(2024, 4, 1), date(2024, 7, 1)], 1, 1), // as_of itself is after it
        (vec![date(2024, 4, 2)], 0, 0), // only in the later window
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
    let e = engine(&l, &seg, min, max);
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
        product: vec![0],
        revenue: vec![],
        items: vec![],
    };
    let e = Engine::build(&l, &ids(&l), DIMS, &[0], date(2020, 1, 1), date(2020, 1, 1));
    assert!(e.is_err_and(|e| e.to_string().contains("differ in length")));
    let l = Lines {
        revenue: vec![1.0],
        ..l
    };
    let e = Engine::build(&l, &ids(&l), DIMS, &[0], date(2021, 1, 1), date(2021, 2, 1));
    assert!(e.is_err_and(|e| e.to_string().contains("outside 2021-01-01..=2021-02-01")));
    let bad = Lines {
        product: vec![PRODUCTS as u32],
        ..l.clone()
    };
    let e = Engine::build(
        &bad,
        &ids(&l),
        DIMS,
        &[0],
        date(2020, 1, 1),
        date(2020, 1, 1),
    );
    assert!(e.is_err_and(|e| e.to_string().contains("product code is 40")));
    let no_ids = Ids {
        orders: IdList::default(),
        ..ids(&l)
    };
    let e = Engine::build(&l, &no_ids, DIMS, &[0], date(2020, 1, 1), date(2020, 1, 1));
    assert!(e.is_err_and(|e| e.to_string().contains("an id per code")));
}

/// `l` folded as the warehouse sends it: one row per (order, product)
/// with its lines counted in `items` and their revenue summed.
fn folded(l: &Lines) -> Lines {
    let mut at: HashMap<(u32, u32), usize> = HashMap::new();
    let mut f = Lines::default();
    for i in 0..l.order.len() {
        match at.get(&(l.order[i], l.product[i])) {
            Some(&r) => {
                f.items[r] += 1;
                f.revenue[r] += l.revenue[i];
            }
            None => {
                at.insert((l.order[i], l.product[i]), f.order.len());
                f.order.push(l.order[i]);
                f.customer.push(l.customer[i]);
                f.day.push(l.day[i]);
                f.channel.push(l.channel[i]);
                f.category.push(l.category[i]);
                f.state.push(l.state[i]);
                f.product.push(l.product[i]);
                f.revenue.push(l.revenue[i]);
                f.items.push(1);
            }
        }
    }
    f
}

#[test]
fn records_folded_by_order_and_product_give_the_figures_of_the_lines() {
    let mut rng = Rng(11);
    let (l, seg, min, max) = data(&mut rng, 200, 2000);
    let f = folded(&l);
    assert!(
        f.order.len() < l.order.len(),
        "some order has a product twice ({} rows of {} lines)",
        f.order.len(),
        l.order.len()
    );
    let mut e = engine(&f, &seg, min, max);
    let span = (max - min).num_days();
    for i in 0..120 {
        let from = min + Duration::days(rng.below(span as usize) as i64);
        let to = from + Duration::days(1 + rng.below(500) as i64);
        let mut q = query(from, to);
        (q.compare_from, q.compare_to) = Comparison::Previous
            .period(from, to)
            .expect("a comparison period");
        q.categories = mask(&mut rng, DIMS.categories);
        q.states = mask(&mut rng, DIMS.states);
        q.segment = rng.chance(0.3).then(|| rng.below(DIMS.segments) as u8);
        q.churn_window_days = 90;
        q.top = [0, 5, 1000][rng.below(3)];
        e.product_lines_only = i % 2 == 1;
        // The reference reads the lines themselves, one by one.
        let (want, detail) = reference(&l, &seg, &q, e.first_month, e.n_months);
        let what = format!("folded, query {i} ({from}..{to})");
        let got = e.scan(&q);
        same(&got, &want, &what);
        if q.top > 0 {
            same_leaders(&e, &q, &got, &detail, &what);
        }
        same_orders(&e, &q, &detail, &mut rng, &what);
    }
    // Item counts that do not fit the rows are refused.
    let bad = Lines {
        items: vec![1; f.order.len() - 1],
        ..f.clone()
    };
    let e = Engine::build(&bad, &ids(&bad), DIMS, &seg, min, max);
    assert!(e.is_err_and(|e| e.to_string().contains("one per row")));
    let zero = Lines {
        items: vec![0; f.order.len()],
        ..f
    };
    let e = Engine::build(&zero, &ids(&zero), DIMS, &seg, min, max);
    assert!(e.is_err_and(|e| e.to_string().contains("at least 1 item")));
}

#[test]
fn id_lists_hold_any_text() {
    let ids = IdList::from_strs(["a", "", "ção-ü", "o123"]).expect("ids");
    assert_eq!(ids.len(), 4);
    assert_eq!(
        (0..5).map(|i| ids.get(i)).collect::<Vec<_>>(),
        ["a", "", "ção-ü", "o123", ""]
    );
    let p = ids.permuted([3, 0, 2].into_iter()).expect("permuted");
    assert_eq!(
        (p.len(), p.get(0), p.get(1), p.get(2)),
        (3, "o123", "a", "ção-ü")
    );
}

/// The top customers' pruning under a category filter: many customers, a
/// leaderboard of one to three, one or two categories, so the floor rises
/// early and most customers are skipped by their bound.
#[test]
fn top_customers_under_a_category_filter_equal_the_reference() {
    let mut rng = Rng(31);
    let (l, seg, min, max) = data(&mut rng, 2_000, 12_000);
    let mut e = engine(&l, &seg, min, max);
    for i in 0..40 {
        let from = min + Duration::days(rng.below(300) as i64);
        let mut q = query(from, from + Duration::days(200 + rng.below(400) as i64));
        let mut cats = vec![false; DIMS.categories];
        for _ in 0..1 + rng.below(2) {
            cats[rng.below(DIMS.categories)] = true;
        }
        q.categories = Some(cats);
        q.top = 1 + rng.below(3);
        e.parallel_min = if i % 2 == 0 { 0 } else { usize::MAX };
        let (want, detail) = reference(&l, &seg, &q, e.first_month, e.n_months);
        let what = format!("category query {i}");
        let got = e.scan(&q);
        same(&got, &want, &what);
        same_leaders(&e, &q, &got, &detail, &what);
    }
}

#[test]
fn drill_down_pages_cover_every_order_once() {
    let mut rng = Rng(23);
    let (l, seg, min, max) = data(&mut rng, 80, 900);
    let e = engine(&l, &seg, min, max);
    let q = query(min, max);
    for sort in [OrderSort::Date, OrderSort::Revenue, OrderSort::Items] {
        for descending in [false, true] {
            let mut seen = Vec::new();
            let mut offset = 0;
            loop {
                let req = OrdersRequest {
                    sort,
                    descending,
                    which: Which::Current,
                    offset,
                    limit: 37,
                };
                let page = e.orders_page(&q, &req);
                assert_eq!(page, e.orders_page_two_passes(&q, &req));
                assert_eq!(page, e.orders_page_one_pass(&q, &req));
                assert_eq!(page.total, 900);
                if page.rows.is_empty() {
                    break;
                }
                offset += page.rows.len();
                seen.extend(page.rows);
            }
            assert_eq!(seen.len(), 900, "{sort:?}");
            let mut positions: Vec<u32> = seen.iter().map(|r| r.position).collect();
            positions.sort_unstable();
            positions.dedup();
            assert_eq!(positions.len(), 900, "{sort:?}: each order once");
            let keys: Vec<f64> = seen
                .iter()
                .map(|r| match sort {
                    OrderSort::Date => f64::from(epoch_days(r.date)),
                    OrderSort::Revenue => r.revenue,
                    OrderSort::Items => f64::from(r.items),
                })
                .collect();
            assert!(
                keys.windows(2).all(|k| if descending {
                    k[0] >= k[1]
                } else {
                    k[0] <= k[1]
                }),
                "{sort:?} descending={descending}"
            );
        }
    }
}

/// `Engine::from_sales` on a view whose category, state and channel are
/// text (built by hand) gives the engine of the join's categorical view.
#[test]
fn dimensions_as_text_give_the_engine_of_the_categorical_view() {
    use polars::prelude::{DataType, IntoLazy, col};
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = crate::data::generate::GeneratorConfig {
        lines: 20_000,
        seed: 3,
        ..Default::default()
    };
    crate::data::generate::generate(&cfg, dir.path()).expect("generate");
    let coded = crate::source::Source::parquet(dir.path())
        .prepare()
        .expect("prepare")
        .sales;
    let text = crate::kpi::Sales {
        lines: coded
            .lines
            .clone()
            .lazy()
            .with_columns(["category", "state", "channel"].map(|c| col(c).cast(DataType::String)))
            .collect()
            .expect("as text"),
        customers: coded.customers.clone(),
        order_ids: coded.order_ids.clone(),
        default_as_of: coded.default_as_of,
    };
    let build = |sales: &crate::kpi::Sales| {
        Engine::from_sales(sales, |i| (vec![NONE; i.len()], 0)).expect("engine")
    };
    let (a, b) = (build(&coded), build(&text));
    assert!(a.categories.len() > 3 && a.states.len() > 3, "dimensions");
    assert_eq!(
        (&a.categories, &a.states, &a.channels),
        (&b.categories, &b.states, &b.channels)
    );
    for (from, to) in [(a.default_from, a.default_to), (a.min_date, a.max_date)] {
        let some: Vec<bool> = (0..a.categories.len()).map(|c| c % 2 == 0).collect();
        for categories in [None, Some(some)] {
            let q = Query {
                categories: categories.clone(),
                top: 10,
                ..query(from, to)
            };
            assert_eq!(
                format!("{:?}", a.engine.scan(&q)),
                format!("{:?}", b.engine.scan(&q)),
                "{from}..{to} categories {categories:?}"
            );
        }
    }
}
