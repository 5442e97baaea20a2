//! The answer of `GET /api/dashboard` for one selection: its types and
//! [`DashboardData::compute`], which reads every figure from one engine scan.

use super::*;

impl DashboardData {
    /// Every figure of the page for one selection; customer ids in the
    /// leaderboard only when `customer_ids`.
    pub fn compute(&self, sel: &Selection, customer_ids: bool) -> anyhow::Result<Dashboard> {
        let started = Instant::now();
        let opts = KpiOptions::default();
        let q = self.query(sel, TOP);
        let scan = self.scan(&q)?;
        let (cur, prev) = (&scan.current, &scan.previous);
        let empty = cur.orders == 0;
        let kpis = KpiCards {
            revenue: change(cur.revenue, Some(prev.revenue), false),
            orders: change(cur.orders as f64, Some(prev.orders as f64), false),
            average_ticket: opt_change(cur.average_ticket(), prev.average_ticket(), false),
            active_customers: change(
                cur.active_customers as f64,
                Some(prev.active_customers as f64),
                false,
            ),
            churn_rate: opt_change(cur.churn_rate(), prev.churn_rate(), true),
            churn_window_days: opts.churn_window_days,
            as_of: (sel.to + Duration::days(1)).to_string(),
        };
        let monthly: BTreeMap<String, f64> = scan
            .monthly
            .iter()
            .zip(&scan.monthly_lines)
            .enumerate()
            .filter(|(_, (_, n))| **n > 0)
            .map(|(i, (r, _))| (engine::month_key(self.first_month, i), *r))
            .collect();
        let top_products = self.product_board(&q, &scan, Board::Page)?;
        let top_customers = self.customer_board(&q, &scan, Board::Page, customer_ids)?;
        let out = Dashboard {
            empty,
            message: empty.then(|| {
                "No completed order matches these filters: widen the period or remove a filter."
                    .to_string()
            }),
            previous_period: Some(Period {
                from: sel.compare_from.to_string(),
                to: sel.compare_to.to_string(),
            }),
            comparison: ComparisonInfo::of(sel),
            filter: AppliedFilter::of(sel),
            kpis,
            monthly: monthly_view(&monthly, sel, self.comparison_months(&scan, sel)),
            by_category: self.category_rows(&scan),
            by_state: self.state_rows(&scan),
            by_segment: self.segment_rows(&scan),
            top_products,
            top_customers,
            customer_ids,
            cohorts: self.cohort_view(&scan, sel.to),
            compute_ms: 0.0,
        };
        Ok(Dashboard {
            compute_ms: started.elapsed().as_secs_f64() * 1e3,
            ..out
        })
    }

    /// The dotted line of the monthly chart: each month of the period
    /// beside the whole month it is compared with.
    fn comparison_months(&self, s: &engine::Scan, sel: &Selection) -> Vec<ComparisonMonth> {
        let first = self.first_month;
        // Whole months between the periods' starts (12 year over year; a
        // month for the previous month, 12 for the previous year).
        let days = (sel.from - sel.compare_from).num_days() as f64;
        let shift = ((days / (365.2425 / 12.0)).round() as i32).max(1);
        (engine::month_of(sel.from)..=engine::month_of(sel.to))
            .filter_map(|m| {
                let c = usize::try_from(m - shift - first).ok()?;
                let here = usize::try_from(m - first).ok()?;
                (here < s.monthly.len() && s.monthly_lines.get(c).is_some_and(|&n| n > 0)).then(
                    || ComparisonMonth {
                        month: engine::month_key(first, here),
                        compared_month: engine::month_key(first, c),
                        revenue: s.monthly[c],
                    },
                )
            })
            .collect()
    }

    /// As `kpi::cohort_retention`, as a matrix; offsets up to the last one
    /// with a buyer, months after `to` left empty.
    fn cohort_view(&self, s: &engine::Scan, to: NaiveDate) -> CohortView {
        let last = engine::month_of(to) - self.first_month;
        let cohorts: Vec<usize> = (0..s.cohort_size.len())
            .filter(|&c| s.cohort_size[c] > 0)
            .collect();
        let width = cohorts
            .iter()
            .filter_map(|&c| s.cohort_active[c].iter().rposition(|&a| a > 0))
            .max()
            .map_or(0, |w| w + 1);
        CohortView {
            cohorts: cohorts
                .iter()
                .map(|&c| engine::month_key(self.first_month, c))
                .collect(),
            sizes: cohorts.iter().map(|&c| s.cohort_size[c]).collect(),
            offsets: (0..width as i64).collect(),
            retention: cohorts
                .iter()
                .map(|&c| {
                    let size = s.cohort_size[c] as f64;
                    (0..width)
                        .map(|k| {
                            ((c + k) as i32 <= last).then(|| s.cohort_active[c][k] as f64 / size)
                        })
                        .collect()
                })
                .collect(),
        }
    }
}

/// `GET /api/dashboard`: everything the page draws for one filter.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Dashboard {
    /// The filter as applied (defaults filled in).
    pub filter: AppliedFilter,
    /// The comparison period (the KPIs' `previous` values and every
    /// `comparison_*` column): as `comparison.from`/`to`.
    pub previous_period: Option<Period>,
    pub comparison: ComparisonInfo,
    /// True when no completed order matches: the page shows `message`.
    pub empty: bool,
    pub message: Option<String>,
    pub kpis: KpiCards,
    pub monthly: MonthlyView,
    /// Every category, state and segment with orders in either period.
    pub by_category: Vec<CategoryRow>,
    pub by_state: Vec<StateRow>,
    /// Empty without a live segment model.
    pub by_segment: Vec<SegmentRow>,
    /// The products and customers of most revenue in the period (at most
    /// 10 each; `/api/dashboard/export.csv` has them all).
    pub top_products: Vec<ProductRow>,
    pub top_customers: Vec<CustomerRow>,
    /// Whether customer ids are shown to this caller (`customer_id` is
    /// null in every row otherwise).
    pub customer_ids: bool,
    pub cohorts: CohortView,
    /// Server time spent computing this answer, in milliseconds.
    pub compute_ms: f64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AppliedFilter {
    pub from: String,
    pub to: String,
    pub categories: Vec<String>,
    pub states: Vec<String>,
    pub channels: Vec<String>,
    pub segment: Option<usize>,
    /// `previous` or `yoy`.
    pub compare: String,
}

impl AppliedFilter {
    pub fn of(sel: &Selection) -> AppliedFilter {
        AppliedFilter {
            from: sel.from.to_string(),
            to: sel.to.to_string(),
            categories: sel.categories.clone(),
            states: sel.states.clone(),
            channels: sel.channels.clone(),
            segment: sel.segment,
            compare: sel.compare.name().to_string(),
        }
    }
}

/// What the figures are compared with.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ComparisonInfo {
    /// `previous` (the period of the same length just before) or `yoy`
    /// (the same days a year earlier).
    pub mode: String,
    /// True when the request chose it; false when it is the default for
    /// the period (year over year for whole months and for one year).
    pub asked: bool,
    /// The comparison period (YYYY-MM-DD).
    pub from: String,
    pub to: String,
    /// In words, e.g. "same period last year".
    pub label: String,
}

impl ComparisonInfo {
    pub fn of(sel: &Selection) -> ComparisonInfo {
        ComparisonInfo {
            mode: sel.compare.name().to_string(),
            asked: sel.compare_asked,
            from: sel.compare_from.to_string(),
            to: sel.compare_to.to_string(),
            label: match sel.compare {
                engine::Comparison::Previous => "previous period",
                engine::Comparison::YearOverYear => "same period last year",
            }
            .to_string(),
        }
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Period {
    pub from: String,
    pub to: String,
}

/// One KPI with its value over the previous period of the same length.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Kpi {
    /// None where the KPI is undefined (no order; nobody to churn).
    pub value: Option<f64>,
    pub previous: Option<f64>,
    /// Relative change (0.1 = +10 %); for rates, the difference in points
    /// (0.02 = +2 p.p.). None without a previous value to compare with.
    pub change: Option<f64>,
}

fn change(cur: f64, prev: Option<f64>, points: bool) -> Kpi {
    opt_change(Some(cur), prev, points)
}

fn opt_change(cur: Option<f64>, prev: Option<f64>, points: bool) -> Kpi {
    let change = match (cur, prev) {
        (Some(c), Some(p)) if points => Some(c - p),
        (Some(c), Some(p)) if p != 0.0 => Some((c - p) / p.abs()),
        _ => None,
    };
    Kpi {
        value: cur,
        previous: prev,
        change,
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct KpiCards {
    /// Revenue of completed orders, R$.
    pub revenue: Kpi,
    pub orders: Kpi,
    /// Revenue / orders (ticket médio), R$.
    pub average_ticket: Kpi,
    pub active_customers: Kpi,
    /// Churn rate at the day after `to`, over `churn_window_days`.
    pub churn_rate: Kpi,
    pub churn_window_days: i64,
    pub as_of: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MonthValue {
    /// YYYY-MM.
    pub month: String,
    pub revenue: f64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ForecastMonth {
    pub month: String,
    pub forecast: f64,
    pub lower: f64,
    pub upper: f64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BacktestPoint {
    pub month: String,
    pub actual: f64,
    pub forecast: f64,
}

/// A month of the period beside the month it is compared with.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ComparisonMonth {
    /// A month of the selected period (YYYY-MM).
    pub month: String,
    /// The month it is compared with: 12 months earlier (yoy), or as many
    /// whole months earlier as the comparison period starts before the
    /// period (rounded: a month for the previous month, 12 for a year).
    pub compared_month: String,
    /// The scope's revenue in `compared_month` (whole month).
    pub revenue: f64,
}

/// Monthly revenue of the scope over all the data, with the forecast made
/// at the end of the selected period (`analytics_lib::forecast`).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MonthlyView {
    /// Every month with revenue in the scope (actuals), any period.
    pub actual: Vec<MonthValue>,
    /// The months of the selected period, each with the revenue of the
    /// month it is compared with (the chart's dotted line); months whose
    /// compared month has no revenue are left out.
    pub comparison: Vec<ComparisonMonth>,
    /// Months after the end of the selected period: forecast and interval.
    pub forecast: Vec<ForecastMonth>,
    /// Rolling-origin backtest: one-month-ahead forecasts against actuals.
    pub backtest: Vec<BacktestPoint>,
    /// The forecast model and its backtest error, or why there is no forecast.
    pub note: String,
}

fn monthly_view(
    monthly: &BTreeMap<String, f64>,
    sel: &Selection,
    comparison: Vec<ComparisonMonth>,
) -> MonthlyView {
    let actual = monthly
        .iter()
        .map(|(m, r)| MonthValue {
            month: m.clone(),
            revenue: *r,
        })
        .collect();
    let as_of = sel.to + Duration::days(1);
    let last = format!("{:04}-{:02}", sel.to.year(), sel.to.month());
    let history: BTreeMap<String, f64> = monthly
        .iter()
        .filter(|(m, _)| m.as_str() <= last.as_str())
        .map(|(m, r)| (m.clone(), *r))
        .collect();
    match forecast::forecast(&history, as_of, &ForecastParams::default()) {
        Ok(r) => MonthlyView {
            actual,
            comparison,
            forecast: r
                .forecast
                .iter()
                .map(|p| ForecastMonth {
                    month: p.month.clone(),
                    forecast: p.forecast,
                    lower: p.lower,
                    upper: p.upper,
                })
                .collect(),
            backtest: r
                .backtest
                .months
                .iter()
                .map(|m| BacktestPoint {
                    month: m.month.clone(),
                    actual: m.actual,
                    forecast: m.forecast,
                })
                .collect(),
            note: format!(
                "{} model on log revenue, made at {}; backtest RMSE {} over {} months; interval ±{:.2} RMSE",
                r.model.name(),
                analytics_lib::locale::date(as_of),
                analytics_lib::locale::brl(r.backtest.model.rmse),
                r.backtest.months.len(),
                r.interval.z
            ),
        },
        Err(e) => MonthlyView {
            actual,
            comparison,
            forecast: Vec::new(),
            backtest: Vec::new(),
            note: format!("no forecast for this selection: {e}"),
        },
    }
}

/// Cohort retention as a matrix: one row per cohort (month of first
/// completed order in the selection), one column per month offset.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CohortView {
    /// YYYY-MM.
    pub cohorts: Vec<String>,
    /// Customers in each cohort.
    pub sizes: Vec<u64>,
    /// 0, 1, 2, … months after the first order.
    pub offsets: Vec<i64>,
    /// `retention[c][k]`: share of cohort c active k months later (None: not yet).
    pub retention: Vec<Vec<Option<f64>>>,
}
