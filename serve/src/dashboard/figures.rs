//! A view's figures, leaderboards and drill-down pages from whichever
//! [`Figures`] the dashboard has: the in-memory engine, or the warehouse
//! asked per request (one query each, only aggregates and the rows shown
//! come back).

use analytics_lib::dashboard::{OrdersRequest, Scan};
use analytics_lib::source::dashboard::{LeaderRow, Leaders};

use super::*;

/// A page's leaderboard, or every row (the export).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Board {
    /// The page's top [`TOP`]: those with an order in the period.
    Page,
    /// Every product or customer with an order in either period.
    All,
}

/// A warehouse failure as [`WarehouseError`] (its message is the source's,
/// scrubbed of secrets).
fn unanswered(e: analytics_lib::source::SourceError) -> anyhow::Error {
    anyhow::Error::new(WarehouseError(e.to_string()))
}

impl DashboardData {
    /// The figures of one view (`q.top` > 0: with the engine's leaderboard
    /// sums; the warehouse ranks in [`Self::product_board`] and
    /// [`Self::customer_board`] instead).
    pub fn scan(&self, q: &engine::Query) -> anyhow::Result<Scan> {
        match &self.figures {
            Figures::Memory(e) => Ok(e.scan(q)),
            Figures::Warehouse(w) => w.scans.get_or_ask(format!("{q:?}"), || {
                w.snowflake()?
                    .dashboard_scan(q, &w.dims, w.segments())
                    .map_err(unanswered)
            }),
        }
    }

    /// The products of a view in leaderboard order; `scan` is the view's
    /// (made with `q.top` > 0), `total` its revenue.
    pub fn product_board(
        &self,
        q: &engine::Query,
        scan: &Scan,
        board: Board,
    ) -> anyhow::Result<Vec<ProductRow>> {
        let total = scan.current.revenue;
        match &self.figures {
            Figures::Memory(e) => {
                let ranked = e.products_ranked(scan);
                let kept: Vec<_> = match board {
                    Board::Page => ranked
                        .into_iter()
                        .filter(|p| p.orders > 0)
                        .take(TOP)
                        .collect(),
                    Board::All => ranked,
                };
                Ok(self.product_rows(e, &kept, total))
            }
            Figures::Warehouse(w) => Ok(Self::warehouse_board(w, q, Leaders::Products, board)?
                .iter()
                .enumerate()
                .map(|(i, p)| self.warehouse_product_row(i, p, total))
                .collect()),
        }
    }

    /// The customers of a view in leaderboard order (ids only when
    /// `customer_ids`); `scan` is the view's (made with `q.top` > 0).
    pub fn customer_board(
        &self,
        q: &engine::Query,
        scan: &Scan,
        board: Board,
        customer_ids: bool,
    ) -> anyhow::Result<Vec<CustomerRow>> {
        let total = scan.current.revenue;
        match &self.figures {
            Figures::Memory(e) => Ok(match board {
                Board::Page => self.customer_rows(e, &scan.top_customers, total, customer_ids),
                Board::All => self.customer_rows(e, &e.customers_ranked(q), total, customer_ids),
            }),
            Figures::Warehouse(w) => Ok(Self::warehouse_board(w, q, Leaders::Customers, board)?
                .iter()
                .enumerate()
                .map(|(i, c)| self.warehouse_customer_row(i, c, total, customer_ids))
                .collect()),
        }
    }

    /// A leaderboard ranked in the warehouse: the page's top [`TOP`] (with
    /// an order in the period), or every row.
    fn warehouse_board(
        w: &Warehouse,
        q: &engine::Query,
        which: Leaders,
        board: Board,
    ) -> anyhow::Result<Vec<LeaderRow>> {
        let page = board == Board::Page;
        let ask = || {
            w.snowflake()?
                .dashboard_leaders(q, &w.dims, w.segments(), which, page, page.then_some(TOP))
                .map_err(unanswered)
        };
        // Every row (an export) can be every customer: not kept.
        if page {
            w.boards.get_or_ask(format!("{which:?} {q:?}"), ask)
        } else {
            ask()
        }
    }

    /// A page of the orders behind a view and how many it has.
    pub fn order_page_rows(
        &self,
        q: &engine::Query,
        req: &OrdersRequest,
        customer_ids: bool,
    ) -> anyhow::Result<(u64, Vec<OrderRow>)> {
        match &self.figures {
            Figures::Memory(e) => {
                let got = e.orders_page(q, req);
                let rows = got
                    .rows
                    .iter()
                    .map(|r| self.order_row_of(e, r, customer_ids))
                    .collect();
                Ok((got.total, rows))
            }
            Figures::Warehouse(w) => {
                let ask = || {
                    w.snowflake()?
                        .dashboard_orders(q, &w.dims, w.segments(), req)
                        .map_err(unanswered)
                };
                // A page is kept; every order of a view (an export) is not.
                let got = if req.limit as u64 <= MAX_PAGE_SIZE {
                    w.pages.get_or_ask(format!("{req:?} {q:?}"), ask)?
                } else {
                    ask()?
                };
                let rows = got
                    .rows
                    .iter()
                    .map(|o| self.warehouse_order_row(o, customer_ids))
                    .collect();
                Ok((got.total, rows))
            }
        }
    }
}
