//! The dashboard's tables with their comparison columns: revenue by
//! category, state and segment, the product and customer leaderboards, and
//! the orders of the drill-down. One set of rows feeds the JSON answers and
//! the CSV export, so both always carry the same figures under the same
//! names.
//!
//! Customer ids appear only when the caller may see them: every builder
//! that could show one takes `customer_ids: bool` (see
//! `routes::dashboard::customer_ids_allowed`).

use analytics_lib::dashboard::{CustomerFigure, Engine, OrderRecord, ProductFigure, Scan, Scope};
use analytics_lib::source::dashboard::{DrillOrder, LeaderRow};
use serde::Serialize;
use utoipa::ToSchema;

use super::{DashboardData, geo};

/// Relative change against the comparison value (0.1 = +10 %); None when
/// there is nothing to compare with.
pub fn change(current: f64, comparison: f64) -> Option<f64> {
    (comparison != 0.0).then(|| (current - comparison) / comparison.abs())
}

fn share(x: f64, total: f64) -> f64 {
    if total != 0.0 { x / total } else { 0.0 }
}

/// Revenue by category, in the period and in the comparison period.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CategoryRow {
    pub category: String,
    pub revenue: f64,
    pub orders: u64,
    /// Share of the view's revenue.
    pub revenue_share: f64,
    pub comparison_revenue: f64,
    pub comparison_orders: u64,
    /// Relative changes (0.1 = +10 %); null without comparison figures.
    pub revenue_change: Option<f64>,
    pub orders_change: Option<f64>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct StateRow {
    /// UF code ("" for customers without a state).
    pub state: String,
    pub name: String,
    /// The capital's coordinates (the bubble's place on the map); null for
    /// a state code the data has but Brazil does not (shown without a bubble).
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub revenue: f64,
    pub orders: u64,
    pub customers: u64,
    pub revenue_share: f64,
    pub comparison_revenue: f64,
    pub comparison_orders: u64,
    pub comparison_customers: u64,
    pub revenue_change: Option<f64>,
    pub orders_change: Option<f64>,
    pub customers_change: Option<f64>,
}

/// Revenue by segment of the live segment model.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SegmentRow {
    /// Segment id; null for customers without a segment.
    pub segment_id: Option<usize>,
    pub segment: String,
    pub revenue: f64,
    pub orders: u64,
    pub customers: u64,
    pub revenue_share: f64,
    pub comparison_revenue: f64,
    pub comparison_orders: u64,
    pub comparison_customers: u64,
    pub revenue_change: Option<f64>,
    pub orders_change: Option<f64>,
    pub customers_change: Option<f64>,
}

/// A product of the leaderboard.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ProductRow {
    /// 1 = most revenue in the period.
    pub rank: usize,
    pub product_id: String,
    pub category: String,
    pub revenue: f64,
    /// Orders with the product.
    pub orders: u64,
    pub revenue_share: f64,
    pub comparison_revenue: f64,
    pub comparison_orders: u64,
    pub revenue_change: Option<f64>,
    pub orders_change: Option<f64>,
}

/// A customer of the leaderboard.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CustomerRow {
    pub rank: usize,
    /// Null when the caller may not see customer ids.
    pub customer_id: Option<String>,
    pub state: String,
    pub segment_id: Option<usize>,
    pub segment: String,
    pub revenue: f64,
    pub orders: u64,
    pub revenue_share: f64,
    pub comparison_revenue: f64,
    pub comparison_orders: u64,
    pub revenue_change: Option<f64>,
    pub orders_change: Option<f64>,
}

/// An order of the drill-down (its lines in the view's categories only).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct OrderRow {
    pub order_id: String,
    /// YYYY-MM-DD.
    pub date: String,
    /// Null when the caller may not see customer ids.
    pub customer_id: Option<String>,
    pub state: String,
    pub segment_id: Option<usize>,
    pub segment: String,
    pub channel: String,
    pub categories: Vec<String>,
    /// Lines of the order in the view.
    pub items: u32,
    /// Revenue of those lines.
    pub revenue: f64,
}

const NO_CATEGORY: &str = "(none)";
const NO_SEGMENT: &str = "(no segment)";

impl DashboardData {
    // A slot is a code below the number of values; the one past them
    // stands for a missing value.
    fn category_name(&self, slot: u8) -> String {
        self.categories
            .get(usize::from(slot))
            .cloned()
            .unwrap_or_else(|| NO_CATEGORY.to_string())
    }

    fn state_code(&self, slot: u8) -> String {
        self.states
            .get(usize::from(slot))
            .cloned()
            .unwrap_or_default()
    }

    /// Segment id and name of a slot.
    fn segment_of(&self, slot: u8) -> (Option<usize>, String) {
        self.segment_named(Some(usize::from(slot)))
    }

    /// A segment id (None, or one the model does not have: no segment)
    /// with its name.
    fn segment_named(&self, id: Option<usize>) -> (Option<usize>, String) {
        let names = self.segments.model.as_ref().map(|m| &m.names);
        match id.and_then(|i| Some((i, names?.get(i)?.clone()))) {
            Some((i, name)) => (Some(i), name),
            None => (None, NO_SEGMENT.to_string()),
        }
    }

    /// As `kpi::breakdown(.., Dimension::Category)`, with the categories
    /// that sold only in the comparison period; most revenue first.
    pub fn category_rows(&self, s: &Scan) -> Vec<CategoryRow> {
        let total = s.current.revenue;
        let mut rows: Vec<CategoryRow> = (0..=self.categories.len())
            .filter(|&i| s.cat_orders[i] > 0 || s.cat_orders_prev[i] > 0)
            .map(|i| CategoryRow {
                category: self.category_name(i as u8),
                revenue: s.cat_revenue[i],
                orders: s.cat_orders[i],
                revenue_share: share(s.cat_revenue[i], total),
                comparison_revenue: s.cat_revenue_prev[i],
                comparison_orders: s.cat_orders_prev[i],
                revenue_change: change(s.cat_revenue[i], s.cat_revenue_prev[i]),
                orders_change: change(s.cat_orders[i] as f64, s.cat_orders_prev[i] as f64),
            })
            .collect();
        rows.sort_by(|a, b| {
            b.revenue
                .total_cmp(&a.revenue)
                .then_with(|| b.comparison_revenue.total_cmp(&a.comparison_revenue))
                .then_with(|| a.category.cmp(&b.category))
        });
        rows
    }

    /// As `kpi::breakdown(.., Dimension::State)`, with the capitals'
    /// coordinates and the comparison period's figures.
    pub fn state_rows(&self, s: &Scan) -> Vec<StateRow> {
        let total = s.current.revenue;
        let mut rows: Vec<StateRow> = (0..=self.states.len())
            .filter(|&i| s.state_orders[i] > 0 || s.state_orders_prev[i] > 0)
            .map(|i| {
                let code = self.state_code(i as u8);
                let g = geo::state(&code);
                StateRow {
                    name: g.map_or_else(
                        || {
                            if code.is_empty() {
                                "(unknown state)".to_string()
                            } else {
                                code.clone()
                            }
                        },
                        |g| g.name.to_string(),
                    ),
                    latitude: g.map(|g| g.latitude),
                    longitude: g.map(|g| g.longitude),
                    state: code,
                    revenue: s.state_revenue[i],
                    orders: s.state_orders[i],
                    customers: s.state_customers[i],
                    revenue_share: share(s.state_revenue[i], total),
                    comparison_revenue: s.state_revenue_prev[i],
                    comparison_orders: s.state_orders_prev[i],
                    comparison_customers: s.state_customers_prev[i],
                    revenue_change: change(s.state_revenue[i], s.state_revenue_prev[i]),
                    orders_change: change(s.state_orders[i] as f64, s.state_orders_prev[i] as f64),
                    customers_change: change(
                        s.state_customers[i] as f64,
                        s.state_customers_prev[i] as f64,
                    ),
                }
            })
            .collect();
        rows.sort_by(|a, b| {
            b.revenue
                .total_cmp(&a.revenue)
                .then_with(|| b.comparison_revenue.total_cmp(&a.comparison_revenue))
                .then_with(|| a.state.cmp(&b.state))
        });
        rows
    }

    /// Revenue by segment, in segment order, customers without a segment
    /// last; empty without a live segment model.
    pub fn segment_rows(&self, s: &Scan) -> Vec<SegmentRow> {
        if self.segments.model.is_none() {
            return Vec::new();
        }
        let total = s.current.revenue;
        (0..s.seg_orders.len())
            .filter(|&i| s.seg_orders[i] > 0 || s.seg_orders_prev[i] > 0)
            .map(|i| {
                let (segment_id, segment) = self.segment_of(i as u8);
                SegmentRow {
                    segment_id,
                    segment,
                    revenue: s.seg_revenue[i],
                    orders: s.seg_orders[i],
                    customers: s.seg_customers[i],
                    revenue_share: share(s.seg_revenue[i], total),
                    comparison_revenue: s.seg_revenue_prev[i],
                    comparison_orders: s.seg_orders_prev[i],
                    comparison_customers: s.seg_customers_prev[i],
                    revenue_change: change(s.seg_revenue[i], s.seg_revenue_prev[i]),
                    orders_change: change(s.seg_orders[i] as f64, s.seg_orders_prev[i] as f64),
                    customers_change: change(
                        s.seg_customers[i] as f64,
                        s.seg_customers_prev[i] as f64,
                    ),
                }
            })
            .collect()
    }

    /// Leaderboard rows of products ranked by the engine; `total` is the
    /// view's revenue.
    pub fn product_rows(
        &self,
        e: &Engine,
        figures: &[ProductFigure],
        total: f64,
    ) -> Vec<ProductRow> {
        figures
            .iter()
            .enumerate()
            .map(|(i, p)| self.product_row(e, i, p, total))
            .collect()
    }

    pub fn product_row(&self, e: &Engine, i: usize, p: &ProductFigure, total: f64) -> ProductRow {
        ProductRow {
            rank: i + 1,
            product_id: e.product_id(p.product).to_string(),
            category: self.category_name(p.category),
            revenue: p.revenue,
            orders: p.orders,
            revenue_share: share(p.revenue, total),
            comparison_revenue: p.revenue_prev,
            comparison_orders: p.orders_prev,
            revenue_change: change(p.revenue, p.revenue_prev),
            orders_change: change(p.orders as f64, p.orders_prev as f64),
        }
    }

    /// Leaderboard rows of customers ranked by the engine.
    pub fn customer_rows(
        &self,
        e: &Engine,
        figures: &[CustomerFigure],
        total: f64,
        customer_ids: bool,
    ) -> Vec<CustomerRow> {
        figures
            .iter()
            .enumerate()
            .map(|(i, c)| self.customer_row(e, i, c, total, customer_ids))
            .collect()
    }

    pub fn customer_row(
        &self,
        e: &Engine,
        i: usize,
        c: &CustomerFigure,
        total: f64,
        customer_ids: bool,
    ) -> CustomerRow {
        let (segment_id, segment) = self.segment_of(c.segment);
        CustomerRow {
            rank: i + 1,
            customer_id: customer_ids.then(|| e.customer_id(c.customer).to_string()),
            state: self.state_code(c.state),
            segment_id,
            segment,
            revenue: c.revenue,
            orders: c.orders,
            revenue_share: share(c.revenue, total),
            comparison_revenue: c.revenue_prev,
            comparison_orders: c.orders_prev,
            revenue_change: change(c.revenue, c.revenue_prev),
            orders_change: change(c.orders as f64, c.orders_prev as f64),
        }
    }

    /// The drill-down row of the order at `position`.
    pub fn order_row(
        &self,
        e: &Engine,
        scope: &Scope,
        position: u32,
        customer_ids: bool,
    ) -> OrderRow {
        self.order_row_of(e, &e.order_record(scope, position), customer_ids)
    }

    pub fn order_row_of(&self, e: &Engine, r: &OrderRecord, customer_ids: bool) -> OrderRow {
        let (segment_id, segment) = self.segment_of(r.segment);
        OrderRow {
            order_id: e.order_id(r.position).to_string(),
            date: r.date.to_string(),
            customer_id: customer_ids.then(|| e.customer_id(r.customer).to_string()),
            state: self.state_code(r.state),
            segment_id,
            segment,
            channel: self
                .channels
                .get(usize::from(r.channel))
                .cloned()
                .unwrap_or_default(),
            categories: r
                .categories
                .iter()
                .map(|&c| self.category_name(c))
                .collect(),
            items: r.items,
            revenue: r.revenue,
        }
    }
    /// A leaderboard row of a product ranked in the warehouse.
    pub fn warehouse_product_row(&self, i: usize, p: &LeaderRow, total: f64) -> ProductRow {
        ProductRow {
            rank: i + 1,
            product_id: p.id.clone(),
            category: p.group.clone().unwrap_or_else(|| NO_CATEGORY.to_string()),
            revenue: p.revenue,
            orders: p.orders,
            revenue_share: share(p.revenue, total),
            comparison_revenue: p.revenue_prev,
            comparison_orders: p.orders_prev,
            revenue_change: change(p.revenue, p.revenue_prev),
            orders_change: change(p.orders as f64, p.orders_prev as f64),
        }
    }

    /// A leaderboard row of a customer ranked in the warehouse.
    pub fn warehouse_customer_row(
        &self,
        i: usize,
        c: &LeaderRow,
        total: f64,
        customer_ids: bool,
    ) -> CustomerRow {
        let (segment_id, segment) = self.segment_named(c.segment);
        CustomerRow {
            rank: i + 1,
            customer_id: customer_ids.then(|| c.id.clone()),
            state: c.group.clone().unwrap_or_default(),
            segment_id,
            segment,
            revenue: c.revenue,
            orders: c.orders,
            revenue_share: share(c.revenue, total),
            comparison_revenue: c.revenue_prev,
            comparison_orders: c.orders_prev,
            revenue_change: change(c.revenue, c.revenue_prev),
            orders_change: change(c.orders as f64, c.orders_prev as f64),
        }
    }

    /// A drill-down row of an order read from the warehouse.
    pub fn warehouse_order_row(&self, o: &DrillOrder, customer_ids: bool) -> OrderRow {
        let (segment_id, segment) = self.segment_named(o.segment);
        OrderRow {
            order_id: o.order_id.clone(),
            date: o.date.to_string(),
            customer_id: customer_ids.then(|| o.customer_id.clone()),
            state: o.state.clone().unwrap_or_default(),
            segment_id,
            segment,
            channel: o.channel.clone().unwrap_or_default(),
            categories: if o.categories.is_empty() {
                vec![NO_CATEGORY.to_string()]
            } else {
                o.categories.clone()
            },
            items: u32::try_from(o.items).unwrap_or(u32::MAX),
            revenue: o.revenue,
        }
    }
}
