//! The engine's reference: every figure computed from the lines, one
//! definition at a time, without the engine's cube or order records.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::*;

/// One customer's, product's or order's figures in the reference (by code).
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Fig {
    pub(super) revenue: f64,
    pub(super) orders: HashSet<u32>,
    pub(super) revenue_prev: f64,
    pub(super) orders_prev: HashSet<u32>,
}

/// An order's (day, revenue, lines, categories) of its lines in scope.
pub(super) type OrderRef = (i32, f64, u32, Vec<u8>);

/// The reference's leaderboards and orders.
pub(super) struct Detail {
    /// Customer code → figures; product code → figures.
    pub(super) customers: HashMap<u32, Fig>,
    pub(super) products: HashMap<u32, Fig>,
    /// Order code → (day, revenue, lines, categories) of its lines in
    /// scope, per period.
    pub(super) orders: [BTreeMap<u32, OrderRef>; 2],
}

/// The reference: every figure from the lines, one definition at a time.
pub(super) fn reference(
    l: &Lines,
    seg: &[u8],
    q: &Query,
    first_month: i32,
    n_months: usize,
) -> (Scan, Detail) {
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
    let (pf, pt) = (day(q.compare_from), day(q.compare_to));
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
    let (nc, ns, ng) = (DIMS.categories + 1, DIMS.states + 1, DIMS.segments + 1);
    let mut s = Scan {
        current: totals(f, t),
        previous: totals(pf, pt),
        monthly: vec![0.0; n_months],
        monthly_lines: vec![0; n_months],
        cat_revenue: vec![0.0; nc],
        cat_orders: vec![0; nc],
        cat_revenue_prev: vec![0.0; nc],
        cat_orders_prev: vec![0; nc],
        state_revenue: vec![0.0; ns],
        state_orders: vec![0; ns],
        state_customers: vec![0; ns],
        state_revenue_prev: vec![0.0; ns],
        state_orders_prev: vec![0; ns],
        state_customers_prev: vec![0; ns],
        seg_revenue: vec![0.0; ng],
        seg_orders: vec![0; ng],
        seg_customers: vec![0; ng],
        seg_revenue_prev: vec![0.0; ng],
        seg_orders_prev: vec![0; ng],
        seg_customers_prev: vec![0; ng],
        cohort_size: vec![0; n_months],
        cohort_active: vec![vec![0; n_months]; n_months],
        ..Scan::default()
    };
    // Distinct orders and customers per (period, dimension, slot).
    let mut sets: HashMap<(usize, &str, usize, bool), HashSet<u32>> = HashMap::new();
    let mut months: BTreeMap<u32, HashSet<usize>> = BTreeMap::new();
    let mut detail = Detail {
        customers: HashMap::new(),
        products: HashMap::new(),
        orders: [BTreeMap::new(), BTreeMap::new()],
    };
    for &i in &rows {
        let m = month(l.day[i]);
        s.monthly[m] += l.revenue[i];
        s.monthly_lines[m] += 1;
        let c = slot(l.category[i], DIMS.categories);
        let st = slot(l.state[i], DIMS.states);
        let sg = slot(seg[l.customer[i] as usize], DIMS.segments);
        let (o, cu, p, x) = (l.order[i], l.customer[i], l.product[i], l.revenue[i]);
        for (k, (a, b)) in [(f, t), (pf, pt)].into_iter().enumerate() {
            if l.day[i] < a || l.day[i] > b {
                continue;
            }
            let (cat_rev, state_rev, seg_rev) = if k == 0 {
                (&mut s.cat_revenue, &mut s.state_revenue, &mut s.seg_revenue)
            } else {
                (
                    &mut s.cat_revenue_prev,
                    &mut s.state_revenue_prev,
                    &mut s.seg_revenue_prev,
                )
            };
            cat_rev[c] += x;
            state_rev[st] += x;
            seg_rev[sg] += x;
            sets.entry((k, "cat", c, true)).or_default().insert(o);
            sets.entry((k, "state", st, true)).or_default().insert(o);
            sets.entry((k, "state", st, false)).or_default().insert(cu);
            sets.entry((k, "seg", sg, true)).or_default().insert(o);
            sets.entry((k, "seg", sg, false)).or_default().insert(cu);
            for fig in [
                detail.customers.entry(cu).or_default(),
                detail.products.entry(p).or_default(),
            ] {
                if k == 0 {
                    fig.revenue += x;
                    fig.orders.insert(o);
                } else {
                    fig.revenue_prev += x;
                    fig.orders_prev.insert(o);
                }
            }
            let e = detail.orders[k]
                .entry(o)
                .or_insert((l.day[i], 0.0, 0, Vec::new()));
            e.1 += x;
            e.2 += 1;
            if !e.3.contains(&(c as u8)) {
                e.3.push(c as u8);
                e.3.sort_unstable();
            }
        }
        if l.day[i] >= f && l.day[i] <= t {
            months.entry(l.customer[i]).or_default().insert(m);
        }
    }
    let n_of = |k: usize, dim: &str, slot: usize, orders: bool| {
        sets.get(&(k, dim, slot, orders))
            .map_or(0, |s| s.len() as u64)
    };
    for c in 0..nc {
        s.cat_orders[c] = n_of(0, "cat", c, true);
        s.cat_orders_prev[c] = n_of(1, "cat", c, true);
    }
    for st in 0..ns {
        s.state_orders[st] = n_of(0, "state", st, true);
        s.state_customers[st] = n_of(0, "state", st, false);
        s.state_orders_prev[st] = n_of(1, "state", st, true);
        s.state_customers_prev[st] = n_of(1, "state", st, false);
    }
    for g in 0..ng {
        s.seg_orders[g] = n_of(0, "seg", g, true);
        s.seg_customers[g] = n_of(0, "seg", g, false);
        s.seg_orders_prev[g] = n_of(1, "seg", g, true);
        s.seg_customers_prev[g] = n_of(1, "seg", g, false);
    }
    for ms in months.values() {
        let first = *ms.iter().min().expect("a month");
        s.cohort_size[first] += 1;
        for &m in ms {
            s.cohort_active[first][m - first] += 1;
        }
    }
    (s, detail)
}
