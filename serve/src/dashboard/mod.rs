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

pub mod export;
pub mod query;
pub mod tables;

/// The engine lives in the library, beside `kpi` (`analytics_lib::dashboard`).
pub use analytics_lib::dashboard as engine;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use analytics_lib::data::geo;
use analytics_lib::forecast::{self, ForecastParams};
use analytics_lib::kpi::{KpiOptions, Sales};
use analytics_lib::lookup::CustomerRows;
use analytics_lib::segments::{SegmentFeatures, SegmentModel, views};
use anyhow::{Context, anyhow};
use chrono::{Datelike, Duration, NaiveDate};
use serde::Serialize;
use utoipa::ToSchema;

pub use query::Selection;
pub use tables::{CategoryRow, CustomerRow, OrderRow, ProductRow, SegmentRow, StateRow};

/// Rows of each leaderboard in the dashboard's answer (the export has all).
pub const TOP: usize = 10;
/// Rows of a drill-down page: at most, and by default.
pub const MAX_PAGE_SIZE: u64 = 200;
/// The highest page number accepted (past the last page: no rows).
pub const MAX_PAGE: u64 = 1_000_000_000;
pub const DEFAULT_PAGE_SIZE: u64 = 25;

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
    /// Per customer row of the service's lookups ([`CustomerRows`]): the
    /// segment code ([`NO_SEGMENT`]: none); empty without a segment model
    /// or without rows. The "CLV by segment" card groups the live spend
    /// model's per-row CLV with it ([`DashboardData::clv_card`]).
    segment_of_row: Vec<u8>,
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
    /// Who moved between the segments over the last
    /// [`MIGRATION_DAYS`](analytics_lib::segments::migration::MIGRATION_DAYS)
    /// days (the live model applied at both dates); null without a segment
    /// model or when the data has no customer at the earlier date.
    pub migration: Option<MigrationView>,
}

/// The segment migration card: customers in segment `segments[i]` at
/// `from` and in `segments[j]` at `to` (`counts[i][j]`).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MigrationView {
    /// The earlier and the later date (the data's reference date), YYYY-MM-DD.
    pub from: String,
    pub to: String,
    pub days: i64,
    /// Segment names in id order: the rows and the columns.
    pub segments: Vec<String>,
    pub counts: Vec<Vec<u64>>,
    /// `counts[i][j]` / customers of segment `i` at `from` (0 for an empty row).
    pub row_shares: Vec<Vec<f64>>,
    /// Customers per segment at `from`, and at `to` (new customers included).
    pub from_sizes: Vec<u64>,
    pub to_sizes: Vec<u64>,
    /// Per segment at `to`: customers whose first completed order is after `from`.
    pub new_customers: Vec<u64>,
    /// Share of the earlier customers still in the same segment.
    pub stayed_share: f64,
}

/// `GET /api/dashboard/clv`: the customers' lifetime value per segment of
/// the live segment model, from the live spend model's CLV model.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ClvCard {
    /// False when there is no CLV model or no segment model (see `note`).
    pub available: bool,
    pub note: String,
    /// The customer_spend version whose CLV model gave the values.
    pub model_version: Option<String>,
    /// The segment model the customers are grouped by.
    pub segments_version: Option<String>,
    /// CLV horizon in days (discounted revenue over it).
    pub horizon_days: Option<u32>,
    /// One row per segment in id order, then customers without a segment.
    pub rows: Vec<ClvSegmentRow>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ClvSegmentRow {
    /// Null for the customers without a segment.
    pub segment_id: Option<usize>,
    pub segment: String,
    /// Customers with a CLV value in this segment.
    pub customers: usize,
    /// Σ CLV over the horizon (R$).
    pub total_clv: f64,
    /// Share of every customer's CLV (0 to 1).
    pub share_of_clv: f64,
    pub mean_clv: Option<f64>,
    /// Mean probability of still being a customer.
    pub mean_p_alive: Option<f64>,
    /// Mean expected purchase days over the horizon.
    pub mean_expected_purchases: Option<f64>,
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
    /// `rows`: the service's customer rows, to which the CLV card's
    /// segments are laid out (none: no CLV card).
    pub fn build(
        sales: &Sales,
        models: &Path,
        rows: Option<&CustomerRows>,
    ) -> anyhow::Result<DashboardData> {
        let started = Instant::now();
        let mut loaded = None;
        let built = engine::Engine::from_sales(sales, |customer_index| {
            let (state, options, segment_of, by_row) =
                match load_segments(sales, customer_index, models, rows) {
                    Ok(Some(l)) => (
                        SegmentState {
                            model: Some(l.model),
                            note: l.options.note.clone(),
                        },
                        l.options,
                        l.by_code,
                        l.by_row,
                    ),
                    Ok(None) => {
                        let (s, o) = no_segments(
                            "no segment model is live: train one (analytics train) to filter by \
                             segment"
                                .into(),
                        );
                        (s, o, vec![NO_SEGMENT; customer_index.len()], Vec::new())
                    }
                    Err(e) => {
                        eprintln!("serve: dashboard without segments: {e:#}");
                        let (s, o) = no_segments(crate::error::public_message(
                            &format!("the live segment model could not be used: {e:#}"),
                            &[models],
                        ));
                        (s, o, vec![NO_SEGMENT; customer_index.len()], Vec::new())
                    }
                };
            let k = state.model.as_ref().map_or(0, |m| m.names.len());
            loaded = Some((state, options, by_row));
            (segment_of, k)
        })
        .context("while building the dashboard")?;
        let (segments, seg_options, segment_of_row) =
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
            segment_of_row,
            categories,
            states: state_codes,
            channels,
        })
    }

    /// The "CLV by segment" card: the live spend model's per-row CLV
    /// values ([`crate::model::ClvValues`], recomputed whenever a version
    /// is promoted or re-bound to new data) summed per segment of the live
    /// segment model. Not available, with the reason in `note`, without a
    /// segment model, a spend model, or a CLV model in its version.
    pub fn clv_card(&self, live: Option<&crate::model::LiveModel>) -> ClvCard {
        let seg = &self.options.segments;
        let mut card = ClvCard {
            available: false,
            note: String::new(),
            model_version: live.map(|l| l.version.clone()),
            segments_version: seg.version.clone(),
            horizon_days: None,
            rows: Vec::new(),
        };
        let Some(model) = &self.segments.model else {
            card.note = format!("no segments: {}", self.segments.note);
            return card;
        };
        let Some(live) = live else {
            card.note = "no customer_spend model is live: train one (analytics train)".into();
            return card;
        };
        let Some(values) = &live.clv else {
            card.note = format!(
                "the live customer_spend version {} has no CLV model (clv.json): train or retrain \
                 to fit one",
                live.version
            );
            return card;
        };
        card.horizon_days = Some(values.horizon_days);
        if values.len() != self.segment_of_row.len() {
            card.note = "the CLV values are being recomputed for a new data snapshot: try again \
                         in a moment"
                .into();
            return card;
        }
        let customers = self
            .segment_of_row
            .iter()
            .enumerate()
            .filter_map(|(r, &s)| {
                let (clv, p_alive, purchases) = values.all(r)?;
                let s = (s != NO_SEGMENT).then_some(usize::from(s));
                Some((s, clv, p_alive, purchases))
            });
        match analytics_lib::clv::segment_clv_rows(&model.names, customers) {
            Ok(rows) => {
                card.available = true;
                card.note = format!(
                    "CLV over {} days (discounted) from the CLV model of customer_spend {}, \
                     customers grouped by segment model {}",
                    values.horizon_days,
                    live.version,
                    seg.version.as_deref().unwrap_or("?")
                );
                card.rows = rows
                    .into_iter()
                    .map(|r| ClvSegmentRow {
                        segment_id: r.segment,
                        segment: r.name,
                        customers: r.customers,
                        total_clv: r.total_clv,
                        share_of_clv: r.share_of_clv,
                        mean_clv: r.mean_clv,
                        mean_p_alive: r.mean_p_alive,
                        mean_expected_purchases: r.mean_expected_purchases,
                    })
                    .collect();
            }
            Err(e) => card.note = format!("CLV by segment could not be computed: {e}"),
        }
        card
    }

    fn mask(values: &[String], chosen: &[String]) -> Option<Vec<bool>> {
        (!chosen.is_empty()).then(|| values.iter().map(|v| chosen.contains(v)).collect())
    }

    /// The engine's query for a selection (`top`: leaderboard rows, 0: none).
    pub fn query(&self, sel: &Selection, top: usize) -> engine::Query {
        engine::Query {
            categories: Self::mask(&self.categories, &sel.categories),
            states: Self::mask(&self.states, &sel.states),
            channels: Self::mask(&self.channels, &sel.channels),
            segment: sel.segment.map(|k| k as u8),
            from: sel.from,
            to: sel.to,
            compare_from: sel.compare_from,
            compare_to: sel.compare_to,
            churn_window_days: KpiOptions::default().churn_window_days,
            top,
        }
    }

    /// Every figure of the page for one selection; customer ids in the
    /// leaderboard only when `customer_ids`.
    pub fn compute(&self, sel: &Selection, customer_ids: bool) -> anyhow::Result<Dashboard> {
        let started = Instant::now();
        let opts = KpiOptions::default();
        let scan = self.engine.scan(&self.query(sel, TOP));
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
        let products = self.engine.products_ranked(&scan);
        let top_products: Vec<_> = products
            .iter()
            .filter(|p| p.orders > 0)
            .take(TOP)
            .copied()
            .collect();
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
            top_products: self.product_rows(&top_products, cur.revenue),
            top_customers: self.customer_rows(&scan.top_customers, cur.revenue, customer_ids),
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
        let first = self.engine.first_month;
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
            migration: None,
        },
    )
}

/// What [`load_segments`] gives: the model, the options, every customer
/// code's segment (the engine's) and every customer row's (the CLV card's).
struct LoadedModel {
    model: LoadedSegments,
    options: SegmentOptions,
    by_code: Vec<u8>,
    by_row: Vec<u8>,
}

/// Load the live segment model, assign every customer at the data's
/// reference date, and project a sample on the first two principal components.
fn load_segments(
    full: &Sales,
    customer_index: &HashMap<String, u32>,
    models: &Path,
    rows: Option<&CustomerRows>,
) -> anyhow::Result<Option<LoadedModel>> {
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
    let mut by_row = vec![NO_SEGMENT; rows.map_or(0, CustomerRows::len)];
    let mut sizes = vec![0usize; k];
    for (id, (seg, _)) in features.customer_ids.iter().zip(&assigned) {
        sizes[*seg] += 1;
        if let Some(&c) = customer_index.get(id) {
            by_code[c as usize] = *seg as u8;
        }
        if let Some(r) = rows.and_then(|rows| rows.find(id)) {
            by_row[r as usize] = *seg as u8;
        }
    }
    let migration = migration_view(&model, full, &features);
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
        migration,
    };
    Ok(Some(LoadedModel {
        model: LoadedSegments { names },
        options: opts,
        by_code,
        by_row,
    }))
}

/// The migration card: `model` applied at `as_of − MIGRATION_DAYS` and at
/// the data's reference date (`now`'s features). None (and a line in the
/// log) when it cannot be computed, e.g. no customer at the earlier date.
fn migration_view(
    model: &SegmentModel,
    full: &Sales,
    now: &SegmentFeatures,
) -> Option<MigrationView> {
    use analytics_lib::segments::migration::{MIGRATION_DAYS, MigrationMatrix};
    let earlier = now.as_of - Duration::days(MIGRATION_DAYS);
    let m = SegmentFeatures::compute(full, Some(earlier), Some(&model.meta.categories))
        .map_err(anyhow::Error::from)
        .and_then(|before| Ok(MigrationMatrix::between(model, &before, now)?));
    match m {
        Ok(m) => Some(MigrationView {
            from: m.from.to_string(),
            to: m.to.to_string(),
            days: MIGRATION_DAYS,
            stayed_share: m.stayed_share(),
            segments: m.segments,
            counts: m.counts,
            row_shares: m.row_shares,
            from_sizes: m.from_sizes,
            to_sizes: m.to_sizes,
            new_customers: m.new_customers,
        }),
        Err(e) => {
            eprintln!("serve: dashboard: no segment migration card: {e:#}");
            None
        }
    }
}

// ---------------------------------------------------------------------------
// The answer.

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
