//! The sales dashboard's data: built once at start-up from the curated data
//! the service already holds, then filtered on every request.
//!
//! Figures follow the contract's KPI definitions exactly as
//! `analytics_lib::kpi` computes them (`kpis`, `breakdown`,
//! `cohort_retention`, `monthly_revenue`), and the forecast is
//! `analytics_lib::forecast::forecast`. Per request, the figures come from
//! [`engine::Engine`], built at start-up from the completed lines: a
//! revenue cube by (segment, state, channel, category) with day and month
//! entries, and one 6-byte record per order grouped by customer for the
//! distinct counts (orders, active customers, churn, cohorts). That is what
//! makes a filter change take milliseconds on 10 M lines instead of a polars
//! query per figure. Start-up checks the engine against `kpi::kpis` on the
//! default view (and refuses to serve a dashboard that disagrees); the
//! engine's unit tests compare random filters with a line-by-line reference,
//! and the API tests compare several filters with the functions on the full
//! frame.
//!
//! Segments come from the live segment model of the registry, assigned at
//! the data's reference date with `SegmentModel::assign_features`.

pub mod query;

/// The engine lives in the library, beside `kpi` (`analytics_lib::dashboard`).
pub use analytics_lib::dashboard as engine;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use analytics_lib::data::geo;
use analytics_lib::forecast::{self, ForecastParams};
use analytics_lib::kpi::{Filter, KpiOptions, Sales};
use analytics_lib::segments::{SegmentFeatures, SegmentModel, views};
use anyhow::{Context, anyhow};
use chrono::{Datelike, Duration, NaiveDate};
use serde::Serialize;
use utoipa::ToSchema;

pub use query::Selection;

/// Customers shown on the PCA map (a stratified sample).
pub const PCA_SAMPLE: usize = 1500;
/// Marks a line whose customer has no segment.
const NO_SEGMENT: u8 = u8::MAX;

/// The dashboard's data, immutable once built.
pub struct DashboardData {
    /// The per-request structures built from the completed lines (see the module docs).
    pub engine: engine::Engine,
    pub options: Options,
    pub segments: SegmentState,
    /// Code → value of the coded columns.
    pub categories: Vec<String>,
    pub states: Vec<String>,
    pub channels: Vec<String>,
}

/// What the filters can take, and the defaults.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Options {
    /// Categories present in the data, sorted.
    pub categories: Vec<String>,
    /// States (UF) present in the data, with name and capital coordinates.
    pub states: Vec<StateInfo>,
    #[serde(skip)]
    pub state_codes: Vec<String>,
    pub channels: Vec<String>,
    /// First and last day with an order (YYYY-MM-DD).
    #[schema(value_type = String)]
    pub min_date: NaiveDate,
    #[schema(value_type = String)]
    pub max_date: NaiveDate,
    /// The period shown without `from`/`to`: the last 365 days of data.
    #[schema(value_type = String)]
    pub default_from: NaiveDate,
    #[schema(value_type = String)]
    pub default_to: NaiveDate,
    /// The live segment model, if any.
    pub segments: SegmentOptions,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct StateInfo {
    pub code: String,
    pub name: String,
    /// The capital's coordinates; null for a state code the data has but
    /// Brazil does not (shown without a bubble).
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SegmentOptions {
    /// False when no segment model is live: no segment filter, no PCA map.
    pub available: bool,
    /// Why there is no segment model, or where it comes from.
    pub note: String,
    pub version: Option<String>,
    pub segments: Vec<SegmentEntry>,
    pub pca: Option<PcaMap>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SegmentEntry {
    pub id: usize,
    pub name: String,
    /// Customers of the data in this segment.
    pub customers: usize,
}

/// Customers on the first two principal components of the segment model's
/// scaled features.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PcaMap {
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    pub segment: Vec<usize>,
    pub explained_variance_ratio: Vec<f64>,
    /// Customers with features (the sample is drawn from them).
    pub customers: usize,
}

/// The live segment model as the dashboard uses it.
pub struct SegmentState {
    pub model: Option<LoadedSegments>,
    pub note: String,
}

pub struct LoadedSegments {
    pub names: Vec<String>,
}

/// The live segment model's file, through the model registry
/// (`<models>/segments/live.json` → `<models>/segments/vNNNN/segments.msgpack`).
pub fn live_segment_file(models: &Path) -> anyhow::Result<Option<(String, PathBuf)>> {
    use analytics_lib::registry::{Registry, SEGMENTS, segment_artifact};
    let reg = Registry::open(models)
        .with_context(|| format!("while opening the model registry {}", models.display()))?;
    let Some(version) = reg.live_version(SEGMENTS)? else {
        return Ok(None);
    };
    let Some(dir) = reg.live_dir(SEGMENTS)? else {
        return Ok(None);
    };
    Ok(Some((version.to_string(), segment_artifact(&dir))))
}

impl DashboardData {
    /// Prepare the dashboard from the service's sales and the live segment
    /// model under `models` (none: the dashboard says so, it is no error).
    pub fn build(sales: &Sales, models: &Path) -> anyhow::Result<DashboardData> {
        let started = Instant::now();
        let mut loaded = None;
        let built = engine::Engine::from_sales(sales, |customer_index| {
            let (state, options, segment_of) = match load_segments(sales, customer_index, models) {
                Ok(Some((model, opts, by_code))) => (
                    SegmentState {
                        model: Some(model),
                        note: opts.note.clone(),
                    },
                    opts,
                    by_code,
                ),
                Ok(None) => {
                    let (s, o) = no_segments(
                        "no segment model is live: train one (analytics train) to filter by segment"
                            .into(),
                    );
                    (s, o, vec![NO_SEGMENT; customer_index.len()])
                }
                Err(e) => {
                    eprintln!("serve: dashboard without segments: {e:#}");
                    let (s, o) = no_segments(crate::error::public_message(
                        &format!("the live segment model could not be used: {e:#}"),
                        &[models],
                    ));
                    (s, o, vec![NO_SEGMENT; customer_index.len()])
                }
            };
            let k = state.model.as_ref().map_or(0, |m| m.names.len());
            loaded = Some((state, options));
            (segment_of, k)
        })
        .context("while building the dashboard")?;
        let (segments, seg_options) =
            loaded.ok_or_else(|| anyhow!("the dashboard's segments were not loaded"))?;
        let engine::Built {
            engine,
            categories,
            states: state_codes,
            channels,
            min_date,
            max_date,
            default_from,
            default_to,
        } = built;

        let states = state_codes
            .iter()
            .map(|uf| {
                let s = geo::state(uf);
                StateInfo {
                    code: uf.clone(),
                    name: s.map_or_else(|| uf.clone(), |s| s.name.to_string()),
                    latitude: s.map(|s| s.latitude),
                    longitude: s.map(|s| s.longitude),
                }
            })
            .collect();
        let options = Options {
            categories: categories.clone(),
            states,
            state_codes: state_codes.clone(),
            channels: channels.clone(),
            min_date,
            max_date,
            default_from,
            default_to,
            segments: seg_options,
        };
        eprintln!(
            "serve: dashboard ready: {} completed lines, {} orders, {} customers, {} segments, \
             {:.0} MiB of per-request structures, in {:.1} s",
            engine.lines,
            engine.orders,
            engine.customers,
            segments.model.as_ref().map_or(0, |m| m.names.len()),
            engine.heap_bytes() as f64 / (1024.0 * 1024.0),
            started.elapsed().as_secs_f64()
        );
        Ok(DashboardData {
            engine,
            options,
            segments,
            categories,
            states: state_codes,
            channels,
        })
    }

    fn mask(values: &[String], chosen: &[String]) -> Option<Vec<bool>> {
        (!chosen.is_empty()).then(|| values.iter().map(|v| chosen.contains(v)).collect())
    }

    /// Every figure of the page for one selection.
    pub fn compute(&self, sel: &Selection) -> anyhow::Result<Dashboard> {
        let started = Instant::now();
        let opts = KpiOptions::default();
        let q = engine::Query {
            categories: Self::mask(&self.categories, &sel.categories),
            states: Self::mask(&self.states, &sel.states),
            channels: Self::mask(&self.channels, &sel.channels),
            segment: sel.segment.map(|k| k as u8),
            from: sel.from,
            to: sel.to,
            churn_window_days: opts.churn_window_days,
        };
        let scan = self.engine.scan(&q);
        let period = Filter {
            from: Some(sel.from),
            to: Some(sel.to),
            ..Filter::all()
        };
        let previous = period.previous_period();
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
            .map(|(i, (r, _))| (engine::month_key(self.engine.first_month, i), *r))
            .collect();
        let filter = AppliedFilter {
            from: sel.from.to_string(),
            to: sel.to.to_string(),
            categories: sel.categories.clone(),
            states: sel.states.clone(),
            channels: sel.channels.clone(),
            segment: sel.segment,
        };
        let out = Dashboard {
            empty,
            message: empty.then(|| {
                "No completed order matches these filters: widen the period or remove a filter."
                    .to_string()
            }),
            previous_period: previous.as_ref().and_then(|p| {
                Some(Period {
                    from: p.from?.to_string(),
                    to: p.to?.to_string(),
                })
            }),
            filter,
            kpis,
            monthly: monthly_view(&monthly, sel),
            by_category: self.category_rows(&scan),
            by_state: self.state_rows(&scan),
            cohorts: self.cohort_view(&scan, sel.to),
            compute_ms: 0.0,
        };
        Ok(Dashboard {
            compute_ms: started.elapsed().as_secs_f64() * 1e3,
            ..out
        })
    }

    /// As `kpi::breakdown(.., Dimension::Category)`: largest revenue first.
    fn category_rows(&self, s: &engine::Scan) -> Vec<CategoryRow> {
        let total = s.current.revenue;
        let mut rows: Vec<CategoryRow> = (0..=self.categories.len())
            .filter(|&i| s.cat_orders[i] > 0)
            .map(|i| CategoryRow {
                category: self
                    .categories
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| "(none)".into()),
                revenue: s.cat_revenue[i],
                orders: s.cat_orders[i],
                revenue_share: if total != 0.0 {
                    s.cat_revenue[i] / total
                } else {
                    0.0
                },
            })
            .collect();
        rows.sort_by(|a, b| {
            b.revenue
                .total_cmp(&a.revenue)
                .then_with(|| a.category.cmp(&b.category))
        });
        rows
    }

    /// As `kpi::breakdown(.., Dimension::State)`, with the capitals' coordinates.
    fn state_rows(&self, s: &engine::Scan) -> Vec<StateRow> {
        let mut rows: Vec<StateRow> = (0..=self.states.len())
            .filter(|&i| s.state_orders[i] > 0)
            .map(|i| {
                let code = self.states.get(i).cloned().unwrap_or_default();
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
                }
            })
            .collect();
        rows.sort_by(|a, b| {
            b.revenue
                .total_cmp(&a.revenue)
                .then_with(|| a.state.cmp(&b.state))
        });
        rows
    }

    /// As `kpi::cohort_retention`, as a matrix; offsets up to the last one
    /// with a buyer, months after `to` left empty.
    fn cohort_view(&self, s: &engine::Scan, to: NaiveDate) -> CohortView {
        let last = engine::month_of(to) - self.engine.first_month;
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
                .map(|&c| engine::month_key(self.engine.first_month, c))
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

fn no_segments(note: String) -> (SegmentState, SegmentOptions) {
    (
        SegmentState {
            model: None,
            note: note.clone(),
        },
        SegmentOptions {
            available: false,
            note,
            version: None,
            segments: Vec::new(),
            pca: None,
        },
    )
}

/// Load the live segment model, assign every customer at the data's
/// reference date, and project a sample on the first two principal components.
#[allow(clippy::type_complexity)]
fn load_segments(
    full: &Sales,
    customer_index: &HashMap<String, u32>,
    models: &Path,
) -> anyhow::Result<Option<(LoadedSegments, SegmentOptions, Vec<u8>)>> {
    let Some((version, path)) = live_segment_file(models)? else {
        return Ok(None);
    };
    let model =
        SegmentModel::load(&path).with_context(|| format!("while loading {}", path.display()))?;
    let features =
        SegmentFeatures::compute(full, Some(full.default_as_of), Some(&model.meta.categories))
            .context("while computing the customers' segment features")?;
    let assigned = model
        .assign_features(&features)
        .context("while assigning customers to segments")?;
    let k = model.k();
    if k >= usize::from(NO_SEGMENT) {
        anyhow::bail!("a segment model with {k} segments: the dashboard takes at most 254");
    }
    let mut by_code = vec![NO_SEGMENT; customer_index.len()];
    let mut sizes = vec![0usize; k];
    for (id, (seg, _)) in features.customer_ids.iter().zip(&assigned) {
        sizes[*seg] += 1;
        if let Some(&c) = customer_index.get(id) {
            by_code[c as usize] = *seg as u8;
        }
    }
    let labels: Vec<i64> = assigned.iter().map(|(s, _)| *s as i64).collect();
    let sample = views::stratified_sample(&labels, PCA_SAMPLE, 7);
    let refs: Vec<&str> = model.feature_names().iter().map(String::as_str).collect();
    let raw = features
        .select(&refs)
        .context("while reading the segment features")?;
    let raw = raw.select(ndarray::Axis(0), &sample);
    let scaled = model.scaler.transform(&raw)?;
    let pca = match views::pca(&scaled, 2) {
        Ok(p) => Some(PcaMap {
            x: p.coords.column(0).to_vec(),
            y: p.coords.column(1).to_vec(),
            segment: p.rows.iter().map(|&r| assigned[sample[r]].0).collect(),
            explained_variance_ratio: p.explained_variance_ratio.clone(),
            customers: features.n_customers(),
        }),
        Err(e) => {
            eprintln!("serve: dashboard: no PCA map: {e}");
            None
        }
    };
    let names = model.names();
    let opts = SegmentOptions {
        available: true,
        note: format!(
            "segment model {version} ({} segments), customers assigned at {}",
            k,
            analytics_lib::locale::date(full.default_as_of)
        ),
        version: Some(version),
        segments: names
            .iter()
            .enumerate()
            .map(|(id, name)| SegmentEntry {
                id,
                name: name.clone(),
                customers: sizes[id],
            })
            .collect(),
        pca,
    };
    Ok(Some((LoadedSegments { names }, opts, by_code)))
}

// ---------------------------------------------------------------------------
// The answer.

/// `GET /api/dashboard`: everything the page draws for one filter.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Dashboard {
    /// The filter as applied (defaults filled in).
    pub filter: AppliedFilter,
    /// The previous period of the same length (for the KPI changes).
    pub previous_period: Option<Period>,
    /// True when no completed order matches: the page shows `message`.
    pub empty: bool,
    pub message: Option<String>,
    pub kpis: KpiCards,
    pub monthly: MonthlyView,
    pub by_category: Vec<CategoryRow>,
    pub by_state: Vec<StateRow>,
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

/// Monthly revenue of the scope over all the data, with the forecast made
/// at the end of the selected period (`analytics_lib::forecast`).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MonthlyView {
    /// Every month with revenue in the scope (actuals), any period.
    pub actual: Vec<MonthValue>,
    /// Months after the end of the selected period: forecast and interval.
    pub forecast: Vec<ForecastMonth>,
    /// Rolling-origin backtest: one-month-ahead forecasts against actuals.
    pub backtest: Vec<BacktestPoint>,
    /// The forecast model and its backtest error, or why there is no forecast.
    pub note: String,
}

fn monthly_view(monthly: &BTreeMap<String, f64>, sel: &Selection) -> MonthlyView {
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
            forecast: Vec::new(),
            backtest: Vec::new(),
            note: format!("no forecast for this selection: {e}"),
        },
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CategoryRow {
    pub category: String,
    pub revenue: f64,
    pub orders: u64,
    pub revenue_share: f64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct StateRow {
    /// UF code.
    pub state: String,
    pub name: String,
    /// The capital's coordinates (the bubble's place on the map).
    /// The capital's coordinates; null for a state code the data has but
    /// Brazil does not (shown without a bubble).
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub revenue: f64,
    pub orders: u64,
    pub customers: u64,
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
