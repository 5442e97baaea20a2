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
        let nd = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch") + Duration::days(i64::from(d));
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
