//! Building the engine's structures from completed lines.

use super::*;

impl Engine {
    /// Build the engine from completed lines; `segment_of[customer]` is the
    /// customer's segment code ([`NONE`]: none); `ids` holds the text of
    /// the order, customer and product codes.
    #[allow(clippy::needless_range_loop)] // one index over parallel columns
    pub fn build(
        lines: &Lines,
        ids: &Ids,
        dims: Dims,
        segment_of: &[u8],
        min_date: NaiveDate,
        max_date: NaiveDate,
    ) -> Result<Engine, DashboardError> {
        let n = lines.order.len();
        let same = [
            lines.customer.len(),
            lines.day.len(),
            lines.channel.len(),
            lines.category.len(),
            lines.state.len(),
            lines.product.len(),
            lines.revenue.len(),
        ];
        if same.iter().any(|&l| l != n) {
            refuse!("the dashboard's line columns differ in length: {n} orders and {same:?}");
        }
        if !(lines.items.is_empty() || lines.items.len() == n) {
            refuse!(
                "the dashboard's item counts: expected none or one per row ({n}), found {}",
                lines.items.len()
            );
        }
        if lines.items.contains(&0) {
            refuse!("a row stands for 0 order lines: expected at least 1 item per row");
        }
        let n_products = ids.products.len();
        if let Some(&p) = lines.product.iter().find(|&&p| p as usize >= n_products) {
            refuse!(
                "a line's product code is {p}, expected one below the {n_products} product ids"
            );
        }
        for (what, k) in [
            ("categories", dims.categories),
            ("states", dims.states),
            ("channels", dims.channels),
            ("segments", dims.segments),
        ] {
            if k >= usize::from(NONE) {
                refuse!("the dashboard takes at most 254 {what}, found {k}");
            }
        }
        let first_day = epoch_days(min_date);
        let n_days = (epoch_days(max_date) - first_day + 1).max(1) as usize;
        if n_days > usize::from(u16::MAX) {
            refuse!(
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
            refuse!("the dashboard takes fewer than 2^32 lines, found {n}");
        }
        if ids.orders.len() < n_orders || ids.customers.len() < n_customers {
            refuse!(
                "the dashboard needs an id per code: {n_orders} orders and {n_customers} customers, \
                 found {} and {} ids",
                ids.orders.len(),
                ids.customers.len()
            );
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
                refuse!(
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
        let order_profile: Vec<u32> = sorted.iter().map(|&o| o_profile[o as usize]).collect();

        // The lines of each order, in the order of the orders; each
        // product's category (of its first line).
        let mut order_line_start = Vec::with_capacity(sorted.len() + 1);
        order_line_start.push(0u32);
        let (mut line_product, mut line_category, mut line_revenue) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let weighted = !lines.items.is_empty();
        let mut line_items = Vec::with_capacity(if weighted { n } else { 0 });
        let mut product_category = vec![nc as u8; n_products];
        let mut product_seen = vec![false; n_products];
        let mut products_one_category = true;
        let mut order_revenue = Vec::with_capacity(sorted.len());
        for &o in &sorted {
            let o = o as usize;
            let mut total = 0.0;
            for &i in &by_order[by_order_start[o] as usize..by_order_start[o + 1] as usize] {
                let (p, cat) = (
                    lines.product[i as usize],
                    slot(lines.category[i as usize], nc) as u8,
                );
                if !product_seen[p as usize] {
                    product_seen[p as usize] = true;
                    product_category[p as usize] = cat;
                }
                products_one_category &= product_category[p as usize] == cat;
                line_product.push(p);
                line_category.push(cat);
                line_revenue.push(lines.revenue[i as usize]);
                if weighted {
                    line_items.push(lines.items[i as usize]);
                }
                total += lines.revenue[i as usize];
            }
            order_revenue.push(total);
            order_line_start.push(line_product.len() as u32);
        }
        drop((product_seen, by_order, by_order_start));
        let cust_bound: Vec<f64> = cust_start
            .windows(2)
            .map(|c| {
                let (l0, l1) = (
                    order_line_start[c[0] as usize] as usize,
                    order_line_start[c[1] as usize] as usize,
                );
                line_revenue[l0..l1].iter().map(|&x| x.max(0.0)).sum()
            })
            .collect();

        // Orders by day (counting sort of the positions), then their lines
        // in that order.
        let order_day: Vec<u16> = sorted.iter().map(|&o| o_day[o as usize] as u16).collect();
        let day_order_start = offsets(order_day.iter().map(|&d| usize::from(d)), n_days);
        let mut fill = day_order_start.clone();
        let mut day_order = vec![0u32; order_day.len()];
        for (pos, &d) in order_day.iter().enumerate() {
            day_order[fill[usize::from(d)] as usize] = pos as u32;
            fill[usize::from(d)] += 1;
        }
        drop(fill);
        if n_products as u64 >= u64::from(REPEAT) {
            refuse!("the dashboard holds at most {REPEAT} products; the data has {n_products}");
        }
        let by_day = products_one_category;
        let cap = if by_day { line_product.len() } else { 0 };
        let mut day_line_start = Vec::with_capacity(if by_day { n_days + 1 } else { 0 });
        let (mut day_line_product, mut day_line_revenue, mut day_line_channel) = (
            Vec::with_capacity(cap),
            Vec::with_capacity(cap),
            Vec::with_capacity(cap),
        );
        if by_day {
            day_line_start.push(0u32);
            for d in 0..n_days {
                let day = &day_order[day_order_start[d] as usize..day_order_start[d + 1] as usize];
                for &pos in day {
                    let pos = pos as usize;
                    let ch = profile_channel[o_profile[sorted[pos] as usize] as usize];
                    let (l0, l1) = (
                        order_line_start[pos] as usize,
                        order_line_start[pos + 1] as usize,
                    );
                    for l in l0..l1 {
                        let p = line_product[l];
                        let again = line_product[l0..l].contains(&p);
                        day_line_product.push(if again { p | REPEAT } else { p });
                        day_line_revenue.push(line_revenue[l]);
                        day_line_channel.push(ch);
                    }
                }
                day_line_start.push(day_line_product.len() as u32);
            }
        }

        // The product cube, month by month: each (product, channel) cell's
        // revenue and orders with the product; then by cell.
        let stride = nch + 1;
        let n_pc = n_products * stride;
        let (mut acc_rev, mut acc_ord, mut seen) =
            (vec![0.0f64; n_pc], vec![0u32; n_pc], vec![false; n_pc]);
        let mut touched: Vec<u32> = Vec::new();
        let (mut e_cell, mut e_month, mut e_rev, mut e_ord) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for m in 0..n_months {
            let (d0, d1) = (month_start[m] as usize, month_start[m + 1] as usize);
            for &pos in &day_order[day_order_start[d0] as usize..day_order_start[d1] as usize] {
                let pos = pos as usize;
                let ch = usize::from(profile_channel[o_profile[sorted[pos] as usize] as usize]);
                let (l0, l1) = (
                    order_line_start[pos] as usize,
                    order_line_start[pos + 1] as usize,
                );
                for l in l0..l1 {
                    let p = line_product[l];
                    let cell = p as usize * stride + ch;
                    if !seen[cell] {
                        seen[cell] = true;
                        touched.push(cell as u32);
                    }
                    acc_rev[cell] += line_revenue[l];
                    acc_ord[cell] += u32::from(!(l0..l).any(|k| line_product[k] == p));
                }
            }
            touched.sort_unstable();
            for &cell in &touched {
                let c = cell as usize;
                e_cell.push(cell);
                e_month.push(m as u16);
                e_rev.push(acc_rev[c]);
                e_ord.push(acc_ord[c]);
                (acc_rev[c], acc_ord[c], seen[c]) = (0.0, 0, false);
            }
            touched.clear();
        }
        drop((acc_rev, acc_ord, seen, touched));
        let pc_start = offsets(e_cell.iter().map(|&c| c as usize), n_pc);
        let mut fill = pc_start.clone();
        let n_e = e_cell.len();
        let (mut pc_month, mut pc_revenue, mut pc_orders) =
            (vec![0u16; n_e], vec![0.0f64; n_e], vec![0u32; n_e]);
        for e in 0..n_e {
            let c = e_cell[e] as usize;
            let k = fill[c] as usize;
            (pc_month[k], pc_revenue[k], pc_orders[k]) = (e_month[e], e_rev[e], e_ord[e]);
            fill[c] += 1;
        }
        drop((fill, e_cell, e_month, e_rev, e_ord));
        let order_ids = ids.orders.permuted(sorted.iter().map(|&o| o as usize))?;
        let mut code_of_rank = vec![0usize; n_ranked];
        for &c in &present {
            code_of_rank[rank_of[c] as usize] = c;
        }
        let customer_ids = ids.customers.permuted(code_of_rank.into_iter())?;
        drop(sorted);

        drop((profile_of, cell_of));

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
            n_products,
            parallel_min: PARALLEL_MIN_ORDERS,
            one_word_months: 64,
            first_day,
            n_days,
            month_of_day,
            month_start,
            order_day,
            order_profile,
            order_line_start,
            order_revenue,
            day_line_start,
            day_line_product,
            day_line_revenue,
            day_line_channel,
            pc_start,
            pc_month,
            pc_revenue,
            pc_orders,
            products_one_category,
            product_lines_only: false,
            line_product,
            line_category,
            line_revenue,
            line_items,
            product_category,
            order_ids,
            customer_ids,
            product_ids: ids.products.clone(),
            cust_start,
            cust_bound,
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
            + self.cust_bound.len() * 8
            + self.groups.len() * size_of::<Group>()
            + self.profile_channel.len()
            + self.profile_cat_start.len() * 4
            + self.profile_cats.len()
            + self.cells.len() * size_of::<Cell>()
            + (self.day_start.len() + self.month_entry_start.len()) * 4
            + self.day_idx.len() * (2 + 8 + 4)
            + self.month_idx.len() * (2 + 8 + 4)
            + self.order_line_start.len() * 4
            + self.order_revenue.len() * 8
            + (self.day_line_start.len() + self.pc_start.len()) * 4
            + self.day_line_product.len() * (4 + 8 + 1)
            + self.pc_month.len() * (2 + 8 + 4)
            + self.line_product.len() * (4 + 1 + 8)
            + self.line_items.len() * 4
            + self.product_category.len()
            + self.order_ids.heap_bytes()
            + self.customer_ids.heap_bytes()
            + self.product_ids.heap_bytes()
    }
}
