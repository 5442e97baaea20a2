//! `GET /api/dashboard/export.csv`: the table behind the view as CSV, and
//! `GET /api/dashboard/orders`: a page of the drill-down as JSON.
//!
//! CSV is machine output: plain numbers (a point for decimals, no
//! grouping, as many digits as the JSON answer: the same `f64` written the
//! shortest way that reads back to it), ISO dates, shares and changes as
//! fractions (0.1 = +10 %), an empty cell where a change has nothing to
//! compare with, RFC 4180 quoting, CRLF line ends. The columns carry the
//! JSON answer's field names. A text cell that a spreadsheet would read as
//! a formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage
//! return) is prefixed with `'` (OWASP's advice for CSV exports).
//!
//! Large tables (every customer, every order) are written as the client
//! reads them, 64 KiB at a time, from the engine's ranked figures or
//! sorted positions: the whole file is never held in memory.

use std::fmt::Write as _;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, MessageBody};
use actix_web::web::Bytes;
use analytics_lib::dashboard::{CustomerFigure, OrderSort, OrdersRequest, Scope, Which};
use serde::Serialize;
use utoipa::ToSchema;

use super::tables::{CategoryRow, CustomerRow, OrderRow, ProductRow, SegmentRow, StateRow};
use super::{AppliedFilter, Board, ComparisonInfo, DashboardData, Figures, Selection};

/// The tables `export.csv` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    Categories,
    States,
    Segments,
    Products,
    Customers,
    Orders,
}

impl Table {
    pub const NAMES: [&'static str; 6] = [
        "categories",
        "states",
        "segments",
        "products",
        "customers",
        "orders",
    ];

    pub fn parse(s: &str) -> Option<Table> {
        Some(match s {
            "categories" => Table::Categories,
            "states" => Table::States,
            "segments" => Table::Segments,
            "products" => Table::Products,
            "customers" => Table::Customers,
            "orders" => Table::Orders,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        Table::NAMES[self as usize]
    }
}

/// Which orders, in which order (the drill-down and its export).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderView {
    pub sort: OrderSort,
    pub descending: bool,
    pub which: Which,
}

impl Default for OrderView {
    fn default() -> Self {
        OrderView {
            sort: OrderSort::Date,
            descending: true,
            which: Which::Current,
        }
    }
}

pub fn which_name(w: Which) -> &'static str {
    match w {
        Which::Current => "current",
        Which::Comparison => "comparison",
    }
}

// ---------------------------------------------------------------------------
// CSV cells.

fn text(out: &mut String, s: &str) {
    let formula = s.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = formula || s.contains([',', '"', '\n', '\r']);
    if quote {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    for ch in s.chars() {
        if ch == '"' {
            out.push('"');
        }
        out.push(ch);
    }
    if quote {
        out.push('"');
    }
}

fn num(out: &mut String, x: f64) {
    if x.is_finite() {
        let _ = write!(out, "{x}");
    }
}

fn int(out: &mut String, x: u64) {
    let _ = write!(out, "{x}");
}

fn opt(out: &mut String, x: Option<f64>) {
    if let Some(x) = x {
        num(out, x);
    }
}

fn opt_id(out: &mut String, x: Option<usize>) {
    if let Some(x) = x {
        int(out, x as u64);
    }
}

/// Cells of one row, separated by commas, ended by CRLF.
struct Row<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Row<'a> {
    fn new(out: &'a mut String) -> Self {
        Row { out, first: true }
    }
    fn cell(&mut self, f: impl FnOnce(&mut String)) -> &mut Self {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        f(self.out);
        self
    }
    fn text(&mut self, s: &str) -> &mut Self {
        self.cell(|o| text(o, s))
    }
    fn num(&mut self, x: f64) -> &mut Self {
        self.cell(|o| num(o, x))
    }
    fn int(&mut self, x: u64) -> &mut Self {
        self.cell(|o| int(o, x))
    }
    fn opt(&mut self, x: Option<f64>) -> &mut Self {
        self.cell(|o| opt(o, x))
    }
    fn opt_id(&mut self, x: Option<usize>) -> &mut Self {
        self.cell(|o| opt_id(o, x))
    }
    fn end(&mut self) {
        self.out.push_str("\r\n");
    }
}

fn header(names: &[&str]) -> String {
    let mut out = String::new();
    let mut row = Row::new(&mut out);
    for n in names {
        row.text(n);
    }
    row.end();
    out
}

fn category_csv(out: &mut String, r: &CategoryRow) {
    Row::new(out)
        .text(&r.category)
        .num(r.revenue)
        .int(r.orders)
        .num(r.revenue_share)
        .num(r.comparison_revenue)
        .int(r.comparison_orders)
        .opt(r.revenue_change)
        .opt(r.orders_change)
        .end();
}

fn state_csv(out: &mut String, r: &StateRow) {
    Row::new(out)
        .text(&r.state)
        .text(&r.name)
        .num(r.revenue)
        .int(r.orders)
        .int(r.customers)
        .num(r.revenue_share)
        .num(r.comparison_revenue)
        .int(r.comparison_orders)
        .int(r.comparison_customers)
        .opt(r.revenue_change)
        .opt(r.orders_change)
        .opt(r.customers_change)
        .end();
}

fn segment_csv(out: &mut String, r: &SegmentRow) {
    Row::new(out)
        .opt_id(r.segment_id)
        .text(&r.segment)
        .num(r.revenue)
        .int(r.orders)
        .int(r.customers)
        .num(r.revenue_share)
        .num(r.comparison_revenue)
        .int(r.comparison_orders)
        .int(r.comparison_customers)
        .opt(r.revenue_change)
        .opt(r.orders_change)
        .opt(r.customers_change)
        .end();
}

fn product_csv(out: &mut String, r: &ProductRow) {
    Row::new(out)
        .int(r.rank as u64)
        .text(&r.product_id)
        .text(&r.category)
        .num(r.revenue)
        .int(r.orders)
        .num(r.revenue_share)
        .num(r.comparison_revenue)
        .int(r.comparison_orders)
        .opt(r.revenue_change)
        .opt(r.orders_change)
        .end();
}

fn customer_csv(out: &mut String, r: &CustomerRow) {
    let mut row = Row::new(out);
    row.int(r.rank as u64);
    if let Some(id) = &r.customer_id {
        row.text(id);
    }
    row.text(&r.state)
        .opt_id(r.segment_id)
        .text(&r.segment)
        .num(r.revenue)
        .int(r.orders)
        .num(r.revenue_share)
        .num(r.comparison_revenue)
        .int(r.comparison_orders)
        .opt(r.revenue_change)
        .opt(r.orders_change)
        .end();
}

fn order_csv(out: &mut String, which: Which, r: &OrderRow) {
    let mut row = Row::new(out);
    row.text(which_name(which)).text(&r.order_id).text(&r.date);
    if let Some(id) = &r.customer_id {
        row.text(id);
    }
    row.text(&r.state)
        .opt_id(r.segment_id)
        .text(&r.segment)
        .text(&r.channel)
        .text(&r.categories.join("|"))
        .int(u64::from(r.items))
        .num(r.revenue)
        .end();
}

/// The columns of each table (`customer_ids`: with the customer id column).
pub fn columns(table: Table, customer_ids: bool) -> Vec<&'static str> {
    let mut c: Vec<&'static str> = match table {
        Table::Categories => vec!["category", "revenue", "orders", "revenue_share"],
        Table::States => vec![
            "state",
            "name",
            "revenue",
            "orders",
            "customers",
            "revenue_share",
        ],
        Table::Segments => vec![
            "segment_id",
            "segment",
            "revenue",
            "orders",
            "customers",
            "revenue_share",
        ],
        Table::Products => vec![
            "rank",
            "product_id",
            "category",
            "revenue",
            "orders",
            "revenue_share",
        ],
        Table::Customers => vec![
            "rank",
            "customer_id",
            "state",
            "segment_id",
            "segment",
            "revenue",
            "orders",
            "revenue_share",
        ],
        Table::Orders => {
            return [
                "period",
                "order_id",
                "date",
                "customer_id",
                "state",
                "segment_id",
                "segment",
                "channel",
                "categories",
                "items",
                "revenue",
            ]
            .into_iter()
            .filter(|n| customer_ids || *n != "customer_id")
            .collect();
        }
    };
    c.extend_from_slice(&["comparison_revenue", "comparison_orders"]);
    if matches!(table, Table::States | Table::Segments) {
        c.push("comparison_customers");
    }
    c.extend_from_slice(&["revenue_change", "orders_change"]);
    if matches!(table, Table::States | Table::Segments) {
        c.push("customers_change");
    }
    c.retain(|n| customer_ids || *n != "customer_id");
    c
}

// ---------------------------------------------------------------------------
// The body.

/// Where the rows come from.
enum Source {
    /// Rows already written.
    Text(Vec<String>),
    /// Ranked customers and the view's revenue.
    Customers {
        figures: Vec<CustomerFigure>,
        total: f64,
    },
    /// Sorted order positions under a scope.
    Orders {
        scope: Box<Scope>,
        positions: Vec<u32>,
        which: Which,
    },
}

impl Source {
    fn len(&self) -> usize {
        match self {
            Source::Text(v) => v.len(),
            Source::Customers { figures, .. } => figures.len(),
            Source::Orders { positions, .. } => positions.len(),
        }
    }
}

/// A CSV file written as it is sent.
pub struct CsvBody {
    data: Arc<DashboardData>,
    header: Option<String>,
    source: Source,
    customer_ids: bool,
    next: usize,
}

const CHUNK: usize = 64 * 1024;

impl CsvBody {
    /// Rows `next..` into `out` up to about [`CHUNK`] bytes.
    fn fill(&mut self, out: &mut String) {
        if let Some(h) = self.header.take() {
            out.push_str(&h);
        }
        let n = self.source.len();
        while self.next < n && out.len() < CHUNK {
            let i = self.next;
            match &self.source {
                Source::Text(v) => out.push_str(&v[i]),
                Source::Customers { figures, total } => {
                    if let Figures::Memory(e) = &self.data.figures {
                        let r =
                            self.data
                                .customer_row(e, i, &figures[i], *total, self.customer_ids);
                        customer_csv(out, &r);
                    }
                }
                Source::Orders {
                    scope,
                    positions,
                    which,
                } => {
                    if let Figures::Memory(e) = &self.data.figures {
                        let r = self
                            .data
                            .order_row(e, scope, positions[i], self.customer_ids);
                        order_csv(out, *which, &r);
                    }
                }
            }
            self.next += 1;
        }
    }

    /// The whole file (tests and small tables).
    pub fn into_string(mut self) -> String {
        let mut out = String::new();
        loop {
            let before = out.len();
            self.fill(&mut out);
            if out.len() == before {
                return out;
            }
        }
    }
}

impl MessageBody for CsvBody {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        let mut out = String::with_capacity(CHUNK + 1024);
        this.fill(&mut out);
        if out.is_empty() {
            Poll::Ready(None)
        } else {
            Poll::Ready(Some(Ok(Bytes::from(out))))
        }
    }
}

/// A CSV export: its file name, size in rows and body.
pub struct Csv {
    pub filename: String,
    pub rows: usize,
    pub body: CsvBody,
}

impl DashboardData {
    /// The table `table` of the view `sel` as CSV; customer ids (customers
    /// and orders) only when `customer_ids`.
    pub fn export(
        self: &Arc<Self>,
        table: Table,
        sel: &Selection,
        orders: OrderView,
        customer_ids: bool,
    ) -> anyhow::Result<Csv> {
        let q = self.query(sel, usize::from(table == Table::Products));
        let lines = |rows: Vec<String>| Source::Text(rows);
        let write = |f: &dyn Fn(&mut String)| {
            let mut s = String::new();
            f(&mut s);
            s
        };
        let source = match table {
            Table::Categories | Table::States | Table::Segments | Table::Products => {
                let scan = self.scan(&q)?;
                lines(match table {
                    Table::Categories => self
                        .category_rows(&scan)
                        .iter()
                        .map(|r| write(&|o| category_csv(o, r)))
                        .collect(),
                    Table::States => self
                        .state_rows(&scan)
                        .iter()
                        .map(|r| write(&|o| state_csv(o, r)))
                        .collect(),
                    Table::Segments => self
                        .segment_rows(&scan)
                        .iter()
                        .map(|r| write(&|o| segment_csv(o, r)))
                        .collect(),
                    _ => self
                        .product_board(&q, &scan, Board::All)?
                        .iter()
                        .map(|r| write(&|o| product_csv(o, r)))
                        .collect(),
                })
            }
            Table::Customers => match &self.figures {
                Figures::Memory(e) => Source::Customers {
                    figures: e.customers_ranked(&q),
                    total: e.scan(&q).current.revenue,
                },
                Figures::Warehouse(_) => {
                    let scan = self.scan(&q)?;
                    lines(
                        self.customer_board(&q, &scan, Board::All, customer_ids)?
                            .iter()
                            .map(|r| write(&|o| customer_csv(o, r)))
                            .collect(),
                    )
                }
            },
            Table::Orders => match &self.figures {
                Figures::Memory(e) => {
                    let (scope, positions) =
                        e.orders_sorted(&q, orders.sort, orders.descending, orders.which);
                    Source::Orders {
                        scope: Box::new(scope),
                        positions,
                        which: orders.which,
                    }
                }
                Figures::Warehouse(_) => {
                    // Every order of the view, asked for: one row each.
                    let req = OrdersRequest {
                        sort: orders.sort,
                        descending: orders.descending,
                        which: orders.which,
                        offset: 0,
                        limit: 1 << 40,
                    };
                    let (_, rows) = self.order_page_rows(&q, &req, customer_ids)?;
                    lines(
                        rows.iter()
                            .map(|r| write(&|o| order_csv(o, orders.which, r)))
                            .collect(),
                    )
                }
            },
        };
        let mut filename = format!("dashboard-{}-{}-{}", table.name(), sel.from, sel.to);
        if table == Table::Orders && orders.which == Which::Comparison {
            let _ = write!(
                filename,
                "-comparison-{}-{}",
                sel.compare_from, sel.compare_to
            );
        }
        filename.push_str(".csv");
        Ok(Csv {
            filename,
            rows: source.len(),
            body: CsvBody {
                data: self.clone(),
                header: Some(header(&columns(table, customer_ids))),
                source,
                customer_ids,
                next: 0,
            },
        })
    }

    /// A page of the drill-down (`page` from 1).
    pub fn orders_page(
        &self,
        sel: &Selection,
        view: OrderView,
        page: u64,
        page_size: u64,
        customer_ids: bool,
    ) -> anyhow::Result<OrdersAnswer> {
        let started = std::time::Instant::now();
        let q = self.query(sel, 0);
        let offset = page.saturating_sub(1).saturating_mul(page_size);
        let (total, rows) = self.order_page_rows(
            &q,
            &OrdersRequest {
                sort: view.sort,
                descending: view.descending,
                which: view.which,
                offset: usize::try_from(offset).unwrap_or(usize::MAX),
                limit: page_size as usize,
            },
            customer_ids,
        )?;
        let (from, to) = match view.which {
            Which::Current => (sel.from, sel.to),
            Which::Comparison => (sel.compare_from, sel.compare_to),
        };
        Ok(OrdersAnswer {
            filter: AppliedFilter::of(sel),
            comparison: ComparisonInfo::of(sel),
            period: which_name(view.which).to_string(),
            period_from: from.to_string(),
            period_to: to.to_string(),
            sort: view.sort.name().to_string(),
            dir: if view.descending { "desc" } else { "asc" }.to_string(),
            page,
            page_size,
            total,
            pages: total.div_ceil(page_size.max(1)),
            customer_ids,
            rows,
            compute_ms: started.elapsed().as_secs_f64() * 1e3,
        })
    }
}

/// `GET /api/dashboard/orders`: one page of the orders behind the view.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct OrdersAnswer {
    pub filter: AppliedFilter,
    pub comparison: ComparisonInfo,
    /// Whose orders: `current` (the view's period) or `comparison`.
    pub period: String,
    pub period_from: String,
    pub period_to: String,
    /// `date`, `revenue` or `items`; `asc` or `desc`.
    pub sort: String,
    pub dir: String,
    /// From 1; a page after the last has no rows.
    pub page: u64,
    pub page_size: u64,
    /// Orders behind the view, and pages of `page_size`.
    pub total: u64,
    pub pages: u64,
    /// Whether customer ids are shown to this caller.
    pub customer_ids: bool,
    pub rows: Vec<OrderRow>,
    pub compute_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(s: &str) -> String {
        let mut out = String::new();
        text(&mut out, s);
        out
    }

    #[test]
    fn text_cells_are_quoted_and_never_formulas() {
        assert_eq!(cell("SP"), "SP");
        assert_eq!(cell("cama, mesa"), "\"cama, mesa\"");
        assert_eq!(cell("a \"b\""), "\"a \"\"b\"\"\"");
        assert_eq!(cell("=1+1"), "\"'=1+1\"");
        assert_eq!(cell("-5"), "\"'-5\"");
        assert_eq!(cell("@x"), "\"'@x\"");
        assert_eq!(cell("line\nbreak"), "\"line\nbreak\"");
        assert_eq!(cell("São Paulo"), "São Paulo");
    }

    #[test]
    fn numbers_read_back_to_the_same_value() {
        for x in [0.0, 1.0, 1234.56, 0.1 + 0.2, 1e-7, 97_603_670.99, 1e21] {
            let mut out = String::new();
            num(&mut out, x);
            assert!(!out.contains('e') && !out.contains(','), "{out}");
            assert_eq!(out.parse::<f64>().ok(), Some(x), "{out}");
        }
        let mut out = String::new();
        opt(&mut out, None);
        num(&mut out, f64::NAN);
        assert_eq!(out, "");
    }

    #[test]
    fn every_table_has_comparison_columns_and_ids_only_when_allowed() {
        for name in Table::NAMES {
            let t = Table::parse(name).expect("a table");
            assert_eq!(t.name(), name);
            let with = columns(t, true);
            let without = columns(t, false);
            if t != Table::Orders {
                assert!(with.contains(&"comparison_revenue") && with.contains(&"revenue_change"));
            } else {
                assert!(with.contains(&"period"));
            }
            assert!(!without.contains(&"customer_id"), "{name}");
            assert_eq!(
                with.contains(&"customer_id"),
                matches!(t, Table::Customers | Table::Orders),
                "{name}"
            );
        }
        assert_eq!(Table::parse("Orders"), None);
    }
}
