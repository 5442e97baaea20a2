//! Comparison, segments, leaderboards, drill-down and exports (issue 18).

use super::*;

/// The last whole calendar year of the fixture's data.
fn last_whole_year(o: &Value) -> (NaiveDate, NaiveDate) {
    let max = date(&o["max_date"]);
    let y = if max.month() == 12 && max.day() == 31 {
        max.year()
    } else {
        max.year() - 1
    };
    (
        NaiveDate::from_ymd_opt(y, 1, 1).expect("date"),
        NaiveDate::from_ymd_opt(y, 12, 31).expect("date"),
    )
}

fn period(from: NaiveDate, to: NaiveDate) -> Filter {
    Filter {
        from: Some(from),
        to: Some(to),
        ..Filter::all()
    }
}

#[tokio::test]
async fn comparison_is_the_previous_period_or_the_same_period_last_year() {
    let app = spawn_app().await;
    let o = options(&app).await;
    let (from, to) = last_whole_year(&o);
    let cat = o["categories"][2].as_str().expect("category").to_string();
    for (compare, mode, asked) in [
        ("", "yoy", false),
        ("&compare=yoy", "yoy", true),
        ("&compare=previous", "previous", true),
    ] {
        let path = format!(
            "/api/dashboard?from={from}&to={to}&category={}{compare}",
            urlencode(&cat)
        );
        let (s, d) = get_json(&app, &path).await;
        assert_eq!(s, 200, "{path}: {d}");
        let c = &d["comparison"];
        assert_eq!(
            (c["mode"].as_str(), c["asked"].as_bool()),
            (Some(mode), Some(asked)),
            "{c}"
        );
        assert_eq!(d["filter"]["compare"], json!(mode));
        let filter = Filter {
            categories: vec![cat.clone()],
            ..period(from, to)
        };
        check_kpis(&d, &filter);
        check_figures(&d, &filter);
        // The dotted line: each month of the year beside the month a year
        // earlier (whole months), with that month's revenue in the scope.
        let actual: HashMap<String, f64> = d["monthly"]["actual"]
            .as_array()
            .expect("actual")
            .iter()
            .map(|m| {
                (
                    m["month"].as_str().expect("month").to_string(),
                    m["revenue"].as_f64().expect("rev"),
                )
            })
            .collect();
        let months = d["monthly"]["comparison"].as_array().expect("comparison");
        assert_eq!(months.len(), 12, "{}", d["monthly"]["comparison"]);
        for (i, m) in months.iter().enumerate() {
            assert_eq!(m["month"], json!(format!("{}-{:02}", from.year(), i + 1)));
            assert_eq!(
                m["compared_month"],
                json!(format!("{}-{:02}", from.year() - 1, i + 1))
            );
            let want = actual[m["compared_month"].as_str().expect("month")];
            assert_eq!(m["revenue"].as_f64(), Some(want), "{m}");
        }
    }
    // Defaults: a whole month is compared year over year; 30 days that are
    // not a calendar month with the 30 days before.
    let month_end = NaiveDate::from_ymd_opt(to.year(), 6, 30).expect("date");
    let (_, d) = get_json(
        &app,
        &format!("/api/dashboard?from={}-06-01&to={month_end}", to.year()),
    )
    .await;
    assert_eq!(d["comparison"]["mode"], json!("yoy"));
    assert_eq!(
        d["comparison"]["from"],
        json!(format!("{}-06-01", to.year() - 1))
    );
    let (_, d) = get_json(
        &app,
        &format!(
            "/api/dashboard?from={}-06-05&to={}-07-04",
            to.year(),
            to.year()
        ),
    )
    .await;
    assert_eq!(d["comparison"]["mode"], json!("previous"));
    assert_eq!(d["comparison"]["to"], json!(format!("{}-06-04", to.year())));
    let months = d["monthly"]["comparison"].as_array().expect("comparison");
    assert_eq!(
        months[0]["compared_month"],
        json!(format!("{}-05", to.year()))
    );
}

#[tokio::test]
async fn a_bad_comparison_is_a_400_naming_the_field_on_every_route() {
    let app = spawn_app().await;
    for route in [
        "/api/dashboard?",
        "/api/dashboard/orders?",
        "/api/dashboard/export.csv?table=categories&",
    ] {
        for (query, found) in [
            ("compare=month", "month"),
            ("compare=YoY", "YoY"),
            ("compare=yoy&compare=previous", "previous"),
        ] {
            let (s, b) = get_json(&app, &format!("{route}{query}")).await;
            assert_eq!(s, 400, "{route}{query}: {b}");
            assert_eq!(b["field"], json!("compare"), "{b}");
            assert!(
                b["expected"]
                    .as_str()
                    .is_some_and(|e| e.contains("previous") && e.contains("yoy")),
                "{b}"
            );
            assert!(
                b["found"].as_str().is_some_and(|f| f.contains(found)),
                "{b}"
            );
        }
    }
}

#[tokio::test]
async fn segment_rows_equal_the_kpi_functions_on_each_segments_customers() {
    let app = spawn_app().await;
    let o = options(&app).await;
    let members = segment_members();
    let (from, to) = last_whole_year(&o);
    let (s, d) = get_json(
        &app,
        &format!("/api/dashboard?from={from}&to={to}&state=SP"),
    )
    .await;
    assert_eq!(s, 200, "{d}");
    let rows = d["by_segment"].as_array().expect("by_segment");
    let total = d["kpis"]["revenue"]["value"].as_f64().expect("revenue");
    for (id, customers) in members.into_iter().enumerate() {
        let filter = Filter {
            states: vec!["SP".into()],
            customers: Some(customers),
            ..period(from, to)
        };
        let cmp = comparison_filter(&d, &filter);
        let (want, want_cmp) = on_thread(move || {
            let o = KpiOptions::default();
            (
                kpi::kpis(sales(), &filter, &o).expect("kpis"),
                kpi::kpis(sales(), &cmp, &o).expect("kpis"),
            )
        });
        let Some(row) = rows.iter().find(|r| r["segment_id"] == json!(id)) else {
            assert_eq!(
                (want.orders, want_cmp.orders),
                (0, 0),
                "segment {id} missing: {rows:?}"
            );
            continue;
        };
        assert_eq!(row["segment"], o["segments"]["segments"][id]["name"]);
        close(
            row["revenue"].as_f64().expect("revenue"),
            want.revenue,
            "segment revenue",
        );
        assert_eq!(row["orders"].as_u64(), Some(want.orders), "{row}");
        assert_eq!(
            row["customers"].as_u64(),
            Some(want.active_customers),
            "{row}"
        );
        close(
            row["comparison_revenue"].as_f64().expect("rev"),
            want_cmp.revenue,
            "segment comparison",
        );
        assert_eq!(
            row["comparison_orders"].as_u64(),
            Some(want_cmp.orders),
            "{row}"
        );
        assert_eq!(
            row["comparison_customers"].as_u64(),
            Some(want_cmp.active_customers),
            "{row}"
        );
        close(
            row["revenue_share"].as_f64().expect("share"),
            want.revenue / total,
            "share",
        );
    }
}

/// Id → (revenue, orders).
type Figures = HashMap<String, (f64, u64)>;

/// Revenue and distinct orders per product, and per customer, of the lines
/// in `filter` (completed), from the full sales frame.
fn by_product_and_customer(filter: &Filter) -> (Figures, Figures) {
    let f = filter.clone();
    on_thread(move || {
        use polars::prelude::{IntoLazy, col};
        let s = sales();
        let products = f
            .apply(s)
            .filter(col("completed"))
            .group_by([col("product_id")])
            .agg([
                col("revenue").sum(),
                // One code per order (the lines hold no id text).
                col("order_key").n_unique().alias("orders"),
            ])
            .collect()
            .expect("by product");
        let (ids, rev, orders) = (
            strs(&products, "product_id"),
            nums(&products, "revenue"),
            nums(&products, "orders"),
        );
        let p = (0..ids.len())
            .map(|i| (ids[i].clone().expect("id"), (rev[i], orders[i] as u64)))
            .collect();
        let tickets = kpi::order_tickets(s, &f).expect("tickets").lazy();
        let customers = tickets
            .group_by([col("customer_id")])
            .agg([
                col("revenue").sum(),
                col("order_id").count().alias("orders"),
            ])
            .collect()
            .expect("by customer");
        let (ids, rev, orders) = (
            strs(&customers, "customer_id"),
            nums(&customers, "revenue"),
            nums(&customers, "orders"),
        );
        let c = (0..ids.len())
            .map(|i| (ids[i].clone().expect("id"), (rev[i], orders[i] as u64)))
            .collect();
        (p, c)
    })
}

#[tokio::test]
async fn leaderboards_are_the_products_and_customers_of_most_revenue() {
    let app = spawn_app().await;
    let o = options(&app).await;
    let (from, to) = last_whole_year(&o);
    let channel = o["channels"][0].as_str().expect("channel").to_string();
    for query in [
        format!("from={from}&to={to}"),
        format!(
            "from={from}&to={to}&compare=previous&channel={}",
            urlencode(&channel)
        ),
        format!(
            "from={from}&to={to}&category={}&category={}&segment=1",
            urlencode(o["categories"][0].as_str().expect("c")),
            urlencode(o["categories"][3].as_str().expect("c"))
        ),
    ] {
        let (s, d) = get_json(&app, &format!("/api/dashboard?{query}")).await;
        assert_eq!(s, 200, "{query}: {d}");
        assert_eq!(d["customer_ids"], json!(true), "authentication is off");
        let f = &d["filter"];
        let members = f["segment"]
            .as_u64()
            .map(|k| segment_members()[k as usize].clone());
        let filter = Filter {
            categories: serde_json::from_value(f["categories"].clone()).expect("categories"),
            channels: serde_json::from_value(f["channels"].clone()).expect("channels"),
            customers: members,
            ..period(from, to)
        };
        let cmp = comparison_filter(&d, &filter);
        let (products, customers) = by_product_and_customer(&filter);
        let (products_cmp, customers_cmp) = by_product_and_customer(&cmp);
        let total = d["kpis"]["revenue"]["value"].as_f64().expect("revenue");
        for (key, id_field, want, want_cmp) in [
            ("top_products", "product_id", &products, &products_cmp),
            ("top_customers", "customer_id", &customers, &customers_cmp),
        ] {
            let rows = d[key].as_array().expect("rows");
            assert_eq!(rows.len(), want.len().min(10), "{key} ({query})");
            // The first ten by revenue (ties by id are not expected here).
            let mut ranked: Vec<(&String, &(f64, u64))> = want.iter().collect();
            ranked.sort_by(|a, b| b.1.0.total_cmp(&a.1.0));
            for (i, (row, (id, (rev, orders)))) in rows.iter().zip(ranked).enumerate() {
                assert_eq!(row["rank"], json!(i + 1));
                assert_eq!(row[id_field], json!(id), "{key} #{} ({query})", i + 1);
                close(
                    row["revenue"].as_f64().expect("rev"),
                    *rev,
                    &format!("{key} {id}"),
                );
                assert_eq!(row["orders"].as_u64(), Some(*orders), "{key} {id}");
                close(
                    row["revenue_share"].as_f64().expect("share"),
                    rev / total,
                    "share",
                );
                let (crev, cord) = want_cmp.get(id).copied().unwrap_or((0.0, 0));
                close(
                    row["comparison_revenue"].as_f64().expect("rev"),
                    crev,
                    &format!("{key} {id} comparison"),
                );
                assert_eq!(row["comparison_orders"].as_u64(), Some(cord), "{key} {id}");
                match row["revenue_change"].as_f64() {
                    Some(c) => close(c, (rev - crev) / crev, "change"),
                    None => assert_eq!(crev, 0.0, "{row}"),
                }
            }
        }
        // Each top product's category is its own.
        for row in d["top_products"].as_array().expect("rows") {
            assert!(
                o["categories"]
                    .as_array()
                    .expect("c")
                    .contains(&row["category"]),
                "{row}"
            );
        }
    }
}

async fn orders_page(app: &TestApp, query: &str) -> Value {
    let (s, d) = get_json(app, &format!("/api/dashboard/orders?{query}")).await;
    assert_eq!(s, 200, "{query}: {d}");
    d
}

#[tokio::test]
async fn drill_down_pages_are_the_orders_behind_the_view() {
    let app = spawn_app().await;
    let o = options(&app).await;
    let (from, to) = last_whole_year(&o);
    let cat = o["categories"][1].as_str().expect("category").to_string();
    let base = format!("from={from}&to={to}&category={}&state=SP", urlencode(&cat));
    let filter = Filter {
        categories: vec![cat.clone()],
        states: vec!["SP".into()],
        ..period(from, to)
    };
    let f = filter.clone();
    let tickets = on_thread(move || kpi::order_tickets(sales(), &f).expect("tickets"));
    let want: HashMap<String, (f64, f64, String)> = {
        let (ids, rev, lines, dates) = (
            strs(&tickets, "order_id"),
            nums(&tickets, "revenue"),
            nums(&tickets, "lines"),
            tickets
                .column("order_date")
                .and_then(|c| c.cast(&DataType::String))
                .expect("dates"),
        );
        let dates = dates.str().expect("text").clone();
        (0..ids.len())
            .map(|i| {
                let d = dates.get(i).expect("date").to_string();
                (ids[i].clone().expect("id"), (rev[i], lines[i], d))
            })
            .collect()
    };
    assert!(want.len() > 50, "enough orders to page: {}", want.len());
    for (sort, dir) in [("date", "desc"), ("revenue", "asc"), ("items", "desc")] {
        let mut seen = Vec::new();
        let mut page = 1;
        loop {
            let d = orders_page(
                &app,
                &format!("{base}&sort={sort}&dir={dir}&page={page}&page_size=40"),
            )
            .await;
            assert_eq!(d["total"].as_u64(), Some(want.len() as u64), "{sort}");
            assert_eq!(d["pages"].as_u64(), Some(want.len().div_ceil(40) as u64));
            assert_eq!(
                (d["sort"].as_str(), d["dir"].as_str()),
                (Some(sort), Some(dir))
            );
            let rows = d["rows"].as_array().expect("rows").clone();
            if rows.is_empty() {
                break;
            }
            assert!(rows.len() <= 40);
            seen.extend(rows);
            page += 1;
        }
        assert_eq!(seen.len(), want.len(), "{sort}: every order once");
        let mut ids: Vec<&str> = seen
            .iter()
            .map(|r| r["order_id"].as_str().expect("id"))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), want.len(), "{sort}: no order twice");
        for r in &seen {
            let (rev, lines, day) = &want[r["order_id"].as_str().expect("id")];
            close(r["revenue"].as_f64().expect("rev"), *rev, "order revenue");
            assert_eq!(r["items"].as_f64(), Some(*lines), "{r}");
            assert_eq!(r["date"].as_str(), Some(day.as_str()), "{r}");
            assert_eq!(r["state"], json!("SP"));
            assert_eq!(r["categories"], json!([cat]));
            assert!(r["customer_id"].as_str().is_some_and(|c| !c.is_empty()));
        }
        let key = |r: &Value| match sort {
            "date" => r["date"].as_str().expect("date").to_string(),
            "revenue" => format!("{:020.4}", r["revenue"].as_f64().expect("rev")),
            _ => format!("{:06}", r["items"].as_u64().expect("items")),
        };
        let keys: Vec<String> = seen.iter().map(key).collect();
        assert!(
            keys.windows(2).all(|k| if dir == "asc" {
                k[0] <= k[1]
            } else {
                k[0] >= k[1]
            }),
            "{sort} {dir}: {keys:?}"
        );
    }
    // The comparison period's orders; a page after the last is empty.
    let (_, d) = get_json(&app, &format!("/api/dashboard?{base}")).await;
    let p = orders_page(&app, &format!("{base}&period=comparison&page_size=1")).await;
    assert_eq!(
        p["total"].as_f64(),
        d["kpis"]["orders"]["previous"].as_f64()
    );
    assert_eq!(p["period_from"], d["comparison"]["from"]);
    let p = orders_page(&app, &format!("{base}&page=100000")).await;
    assert_eq!(p["rows"], json!([]));
    assert_eq!(p["total"].as_u64(), Some(want.len() as u64));
    // Bounded, checked parameters.
    for (query, field) in [
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=x", "page"),
        ("page_size=0", "page_size"),
        ("page_size=201", "page_size"),
        ("sort=price", "sort"),
        ("dir=up", "dir"),
        ("period=last", "period"),
        ("page=1&page=2", "page"),
        ("table=orders", "table"),
    ] {
        let (s, b) = get_json(&app, &format!("/api/dashboard/orders?{query}")).await;
        assert_eq!(s, 400, "{query}: {b}");
        assert_eq!(b["field"], json!(field), "{query}: {b}");
        assert!(b["expected"].as_str().is_some_and(|e| !e.is_empty()), "{b}");
    }
    let p = orders_page(&app, "page_size=200").await;
    assert_eq!(p["rows"].as_array().map(Vec::len), Some(200));
}

/// A CSV file as rows of cells (RFC 4180 quoting).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut cell) = (Vec::new(), Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    assert!(
        row.is_empty() && cell.is_empty(),
        "the file ends with a line end"
    );
    rows
}

async fn csv(app: &TestApp, query: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let r = app.get(&format!("/api/dashboard/export.csv?{query}")).await;
    assert_eq!(r.status().as_u16(), 200, "{query}");
    let h = r.headers();
    assert_eq!(h["content-type"], "text/csv; charset=utf-8");
    let cd = h["content-disposition"].to_str().expect("ascii");
    assert!(
        cd.starts_with("attachment; filename=\"dashboard-") && cd.ends_with(".csv\""),
        "{cd}"
    );
    let text = r.text().await.expect("body");
    assert!(text.contains("\r\n"), "CRLF line ends");
    let mut rows = parse_csv(&text);
    let header = rows.remove(0);
    (header, rows)
}

/// A CSV cell equals a JSON value: the same number, the same text, or
/// empty for null.
#[track_caller]
fn same_cell(cell: &str, v: &Value, what: &str) {
    match v {
        Value::Null => assert_eq!(cell, "", "{what}"),
        Value::Number(n) => assert_eq!(
            cell.parse::<f64>().ok(),
            n.as_f64(),
            "{what}: CSV {cell}, JSON {n}"
        ),
        Value::String(s) => assert_eq!(cell, s, "{what}"),
        Value::Array(a) => {
            let parts: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
            assert_eq!(cell, parts.join("|"), "{what}");
        }
        other => panic!("{what}: unexpected {other}"),
    }
}

#[track_caller]
fn same_rows(header: &[String], rows: &[Vec<String>], json_rows: &[Value], what: &str) {
    assert_eq!(rows.len(), json_rows.len(), "{what}: rows");
    for (r, j) in rows.iter().zip(json_rows) {
        assert_eq!(r.len(), header.len(), "{what}: cells");
        for (name, cell) in header.iter().zip(r) {
            let v = if name == "period" {
                &Value::Null
            } else {
                &j[name.as_str()]
            };
            if name != "period" {
                assert!(
                    j.get(name.as_str()).is_some(),
                    "{what}: JSON has no {name}: {j}"
                );
                same_cell(cell, v, &format!("{what}: {name}"));
            }
        }
    }
}

#[tokio::test]
async fn exports_carry_the_figures_of_the_answers() {
    let app = spawn_app().await;
    let o = options(&app).await;
    let (from, to) = last_whole_year(&o);
    let cat = o["categories"][0].as_str().expect("category").to_string();
    let base = format!(
        "from={from}&to={to}&compare=previous&category={}",
        urlencode(&cat)
    );
    let (_, d) = get_json(&app, &format!("/api/dashboard?{base}")).await;
    for (table, key) in [
        ("categories", "by_category"),
        ("states", "by_state"),
        ("segments", "by_segment"),
    ] {
        let (header, rows) = csv(&app, &format!("table={table}&{base}")).await;
        for c in [
            "revenue",
            "comparison_revenue",
            "comparison_orders",
            "revenue_change",
        ] {
            assert!(header.iter().any(|h| h == c), "{table}: {header:?}");
        }
        same_rows(&header, &rows, d[key].as_array().expect("rows"), table);
    }
    // Products and customers: every one with orders in either period; the
    // first ten are the leaderboard.
    let (products, customers) = by_product_and_customer(&Filter {
        categories: vec![cat.clone()],
        ..period(from, to)
    });
    let cmp = comparison_filter(
        &d,
        &Filter {
            categories: vec![cat.clone()],
            ..period(from, to)
        },
    );
    let (products_cmp, customers_cmp) = by_product_and_customer(&cmp);
    for (table, key, id, now, before) in [
        (
            "products",
            "top_products",
            "product_id",
            &products,
            &products_cmp,
        ),
        (
            "customers",
            "top_customers",
            "customer_id",
            &customers,
            &customers_cmp,
        ),
    ] {
        let (header, rows) = csv(&app, &format!("table={table}&{base}")).await;
        let top = d[key].as_array().expect("rows");
        same_rows(&header, &rows[..top.len()], top, table);
        let mut all: Vec<&String> = now.keys().chain(before.keys()).collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(
            rows.len(),
            all.len(),
            "{table}: every one with orders in either period"
        );
        let col = header.iter().position(|h| h == id).expect("id column");
        let rev = header
            .iter()
            .position(|h| h == "comparison_revenue")
            .expect("column");
        for r in &rows {
            let want = before.get(&r[col]).map_or(0.0, |x| x.0);
            close(
                r[rev].parse().expect("a number"),
                want,
                &format!("{table} {}", r[col]),
            );
        }
    }
    // Orders: the drill-down's pages, every one; the comparison period's too.
    for extra in ["sort=revenue&dir=desc", "period=comparison"] {
        let (header, rows) = csv(&app, &format!("table=orders&{base}&{extra}")).await;
        let mut pages = Vec::new();
        for page in 1.. {
            let p = orders_page(&app, &format!("{base}&{extra}&page={page}&page_size=200")).await;
            let r = p["rows"].as_array().expect("rows").clone();
            if r.is_empty() {
                break;
            }
            pages.extend(r);
        }
        same_rows(&header, &rows, &pages, "orders");
        let period = if extra.starts_with("period") {
            "comparison"
        } else {
            "current"
        };
        assert!(rows.iter().all(|r| r[0] == period), "{extra}");
        assert!(
            rows.iter()
                .all(|r| r[2].len() == 10 && r[2].as_bytes()[4] == b'-'),
            "ISO dates"
        );
    }
}

#[tokio::test]
async fn a_bad_export_is_a_400_with_the_json_error_body() {
    let app = spawn_app().await;
    for (query, field, found) in [
        ("table=nope", "table", "nope"),
        ("table=Orders", "table", "Orders"),
        ("", "table", "no `table`"),
        ("table=", "table", "no `table`"),
        ("table=orders&table=states", "table", "states"),
        ("table=categories&sort=price", "sort", "price"),
        ("table=orders&sort=price", "sort", "price"),
        ("table=orders&page=2", "page", "page"),
        ("table=orders&from=2024-02-30", "from", "2024-02-30"),
    ] {
        let r = app.get(&format!("/api/dashboard/export.csv?{query}")).await;
        assert_eq!(
            r.headers()["content-type"].to_str().ok(),
            Some("application/json"),
            "{query}"
        );
        let (s, b) = json_of(r).await;
        assert_eq!(s.as_u16(), 400, "{query}: {b}");
        assert_eq!(b["field"], json!(field), "{query}: {b}");
        assert!(b["error"].as_str().is_some_and(|e| !e.is_empty()), "{b}");
        if field == "table" && !query.contains("&table=") {
            assert!(
                b["expected"].as_str().is_some_and(|e| {
                    [
                        "categories",
                        "states",
                        "segments",
                        "products",
                        "customers",
                        "orders",
                    ]
                    .iter()
                    .all(|t| e.contains(t))
                }),
                "{query}: {b}"
            );
        }
        assert!(
            b["found"].as_str().is_some_and(|f| f.contains(found)),
            "{query}: {b}"
        );
    }
    // The orders table's `period`, `sort` and `dir` are ignored by the
    // other tables (the OpenAPI document cannot tie one parameter to the
    // value of another, and what it allows is accepted).
    for (with, without) in [
        ("table=categories&sort=revenue&dir=asc", "table=categories"),
        ("table=states&period=comparison", "table=states"),
    ] {
        let a = app.get(&format!("/api/dashboard/export.csv?{with}")).await;
        assert_eq!(a.status().as_u16(), 200, "{with}");
        let a = a.text().await.expect("text");
        let b = app
            .get(&format!("/api/dashboard/export.csv?{without}"))
            .await;
        assert_eq!(a, b.text().await.expect("text"), "{with}");
    }
}

/// The one boolean the routes pass: without it, no customer id anywhere.
#[test]
fn customer_ids_are_left_out_for_a_caller_who_may_not_see_them() {
    use serve::dashboard::DashboardData;
    use serve::dashboard::export::{OrderView, Table};
    let (data, ids) = on_thread(|| {
        let models = tempfile::TempDir::new().expect("tmp");
        let data = DashboardData::build(sales(), models.path(), None).expect("dashboard");
        let ids = on_thread(|| {
            kpi::order_tickets(sales(), &Filter::all())
                .expect("tickets")
                .column("customer_id")
                .expect("ids")
                .str()
                .expect("text")
                .iter()
                .flatten()
                .map(str::to_string)
                .collect::<std::collections::HashSet<_>>()
        });
        (std::sync::Arc::new(data), ids)
    });
    let sel = serve::dashboard::query::parse(&[], &data).expect("default view");
    let d = data.compute(&sel, false).expect("figures");
    assert!(!d.customer_ids && !d.top_customers.is_empty());
    assert!(d.top_customers.iter().all(|c| c.customer_id.is_none()));
    let page = data
        .orders_page(&sel, OrderView::default(), 1, 50, false)
        .expect("a page");
    assert!(!page.rows.is_empty() && page.rows.iter().all(|r| r.customer_id.is_none()));
    for table in [Table::Customers, Table::Orders] {
        let text = data
            .export(table, &sel, OrderView::default(), false)
            .expect("export")
            .body
            .into_string();
        let rows = parse_csv(&text);
        assert!(!rows[0].iter().any(|h| h == "customer_id"), "{:?}", rows[0]);
        assert!(rows.len() > 10);
        let leaked = rows.iter().flatten().find(|c| ids.contains(c.as_str()));
        assert_eq!(leaked, None, "{table:?}");
        // Allowed: the column is there, with the ids.
        let text = data
            .export(table, &sel, OrderView::default(), true)
            .expect("export")
            .body
            .into_string();
        let rows = parse_csv(&text);
        let col = rows[0]
            .iter()
            .position(|h| h == "customer_id")
            .expect("column");
        assert!(rows[1..].iter().all(|r| ids.contains(&r[col])));
    }
}

/// With API keys, the `customers` scope decides (the `Caller` of the
/// request): a key without it gets no customer id in the leaderboard, the
/// drill-down or an export; a key with it gets them all.
#[tokio::test]
async fn with_keys_customer_ids_follow_the_customers_scope() {
    const READ: &str = "dash-read-only-key-0123456789";
    const FULL: &str = "dash-read-customers-key-0123456789";
    let app = crate::helpers::spawn_app_with(|s| {
        s.api_keys = format!("{READ}:read,{FULL}:read+customers")
            .parse()
            .expect("keys")
    })
    .await;
    let get = |path: &'static str, key: &'static str| {
        app.client
            .get(format!("{}{path}", app.address))
            .bearer_auth(key)
            .send()
    };
    for (key, allowed) in [(READ, false), (FULL, true)] {
        let r = get("/api/dashboard", key).await.expect("request");
        assert_eq!(r.status(), 200);
        let d: Value = r.json().await.expect("json");
        assert_eq!(d["customer_ids"], json!(allowed), "{key}");
        let top = d["top_customers"].as_array().expect("top customers");
        assert!(!top.is_empty());
        assert!(
            top.iter().all(|c| c["customer_id"].is_string() == allowed),
            "{key}: {top:?}"
        );
        let r = get("/api/dashboard/orders?page_size=50", key)
            .await
            .expect("request");
        assert_eq!(r.status(), 200);
        let o: Value = r.json().await.expect("json");
        assert_eq!(o["customer_ids"], json!(allowed), "{key}");
        let rows = o["rows"].as_array().expect("rows");
        assert!(!rows.is_empty());
        assert!(rows.iter().all(|r| r["customer_id"].is_string() == allowed));
        for path in [
            "/api/dashboard/export.csv?table=customers",
            "/api/dashboard/export.csv?table=orders",
        ] {
            let r = get(path, key).await.expect("request");
            assert_eq!(r.status(), 200);
            let text = r.text().await.expect("text");
            let header = text.lines().next().expect("header");
            assert_eq!(
                header.split(',').any(|h| h == "customer_id"),
                allowed,
                "{key} {path}: {header}"
            );
        }
    }
    // Without a key: refused, not answered without ids.
    let r = app
        .client
        .get(format!("{}/api/dashboard", app.address))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 401);
}
