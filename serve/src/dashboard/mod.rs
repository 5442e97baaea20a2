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

mod answer;
pub mod export;
mod figures;
pub mod query;
pub mod recent;
mod segments;
pub mod tables;

pub use answer::*;
pub use figures::Board;
pub use segments::*;
use segments::{Segments, segments_or_none};

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
use analytics_lib::source::dashboard::{SegmentsAt, WarehouseDims};
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

/// Where a view's figures come from.
pub enum Figures {
    /// The per-request structures built from the completed lines (see the
    /// module docs).
    Memory(Box<engine::Engine>),
    /// One query per view (and per leaderboard or drill-down page) in the
    /// warehouse (`analytics_lib::source::dashboard`): nothing is held here
    /// but the dimensions and the segment model.
    Warehouse(Box<Warehouse>),
}

/// A dashboard answered by the warehouse.
pub struct Warehouse {
    pub source: std::sync::Arc<analytics_lib::source::Source>,
    pub dims: WarehouseDims,
    /// The live segment model (assigned in the warehouse at `as_of`).
    pub model: Option<SegmentModel>,
    pub as_of: NaiveDate,
    /// Recent answers ([`recent`]): views' figures, the page's
    /// leaderboards, drill-down pages.
    pub scans: recent::Recent<analytics_lib::dashboard::Scan>,
    pub boards: recent::Recent<Vec<analytics_lib::source::dashboard::LeaderRow>>,
    pub pages: recent::Recent<analytics_lib::source::dashboard::DrillPage>,
}

/// The warehouse did not answer a view: the dashboard says so (503), the
/// service stays up and the next view asks again.
#[derive(Debug, thiserror::Error)]
#[error("the warehouse did not answer: {0}")]
pub struct WarehouseError(pub String);

impl Warehouse {
    pub fn snowflake(&self) -> anyhow::Result<&analytics_lib::source::SnowflakeSource> {
        match self.source.as_ref() {
            analytics_lib::source::Source::Snowflake(s) => Ok(s),
            #[allow(unreachable_patterns)]
            _ => Err(anyhow!("the warehouse dashboard needs a Snowflake source")),
        }
    }

    pub fn segments(&self) -> Option<SegmentsAt<'_>> {
        self.model.as_ref().map(|model| SegmentsAt {
            model,
            as_of: self.as_of,
        })
    }
}

/// The dashboard's data, immutable once built.
pub struct DashboardData {
    pub figures: Figures,
    pub options: Options,
    pub segments: SegmentState,
    /// Per customer row of the service's lookups ([`CustomerRows`]): the
    /// segment code ([`NO_SEGMENT`]: none); empty without a segment model
    /// or without rows. The "CLV by segment" card groups the live spend
    /// model's per-row CLV with it ([`DashboardData::clv_card`]).
    segment_of_row: Vec<u8>,
    /// `year × 12 + month0` of the first month with an order (month index 0
    /// of a scan).
    pub first_month: i32,
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
            let l = segments_or_none(sales, Some(customer_index), models, rows);
            let by_code = l
                .by_code
                .clone()
                .unwrap_or_else(|| vec![NO_SEGMENT; customer_index.len()]);
            let k = l.state.model.as_ref().map_or(0, |m| m.names.len());
            loaded = Some(l);
            (by_code, k)
        })
        .context("while building the dashboard")?;
        let l = loaded.ok_or_else(|| anyhow!("the dashboard's segments were not loaded"))?;
        let engine::Built {
            engine,
            categories,
            states,
            channels,
            min_date,
            max_date,
            default_from,
            default_to,
        } = built;
        eprintln!(
            "serve: dashboard ready: {} completed lines, {} orders, {} customers, {} segments, \
             {:.0} MiB of per-request structures, in {:.1} s",
            engine.lines,
            engine.orders,
            engine.customers,
            l.state.model.as_ref().map_or(0, |m| m.names.len()),
            engine.heap_bytes() as f64 / (1024.0 * 1024.0),
            started.elapsed().as_secs_f64()
        );
        let dims = WarehouseDims {
            categories,
            states,
            channels,
            first_month: engine.first_month,
            n_months: engine.n_months,
            min_date,
            max_date,
        };
        Ok(Self::assemble(
            Figures::Memory(Box::new(engine)),
            dims,
            (default_from, default_to),
            l,
        ))
    }

    /// Prepare a dashboard that asks the warehouse for every view: its
    /// dimensions (a few rows) now, the segments from the customers'
    /// aggregates `data` computed there (one row per customer and date).
    pub fn build_warehouse(
        source: std::sync::Arc<analytics_lib::source::Source>,
        data: &dyn analytics_lib::features::FeatureData,
        models: &Path,
        rows: Option<&CustomerRows>,
    ) -> anyhow::Result<DashboardData> {
        let started = Instant::now();
        let analytics_lib::source::Source::Snowflake(sf) = source.as_ref() else {
            anyhow::bail!("the warehouse dashboard needs a Snowflake source");
        };
        let dims = sf
            .dashboard_dims()
            .context("while reading the dashboard's dimensions")?
            .ok_or_else(|| anyhow!("no completed order in the warehouse"))?;
        let l = segments_or_none(data, None, models, rows);
        let default_to = dims.max_date;
        let default_from = (default_to - Duration::days(364)).max(dims.min_date);
        eprintln!(
            "serve: dashboard ready: answered by the warehouse per view, {} categories, {} \
             states, {} segments, in {:.1} s",
            dims.categories.len(),
            dims.states.len(),
            l.state.model.as_ref().map_or(0, |m| m.names.len()),
            started.elapsed().as_secs_f64()
        );
        let warehouse = Warehouse {
            source,
            dims: dims.clone(),
            model: l.segment_model.clone(),
            as_of: data.default_as_of(),
            scans: Default::default(),
            boards: Default::default(),
            pages: Default::default(),
        };
        Ok(Self::assemble(
            Figures::Warehouse(Box::new(warehouse)),
            dims,
            (default_from, default_to),
            l,
        ))
    }

    fn assemble(
        figures: Figures,
        dims: WarehouseDims,
        (default_from, default_to): (NaiveDate, NaiveDate),
        l: Segments,
    ) -> DashboardData {
        let states = dims
            .states
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
            categories: dims.categories.clone(),
            states,
            state_codes: dims.states.clone(),
            channels: dims.channels.clone(),
            min_date: dims.min_date,
            max_date: dims.max_date,
            default_from,
            default_to,
            segments: l.options,
        };
        DashboardData {
            figures,
            options,
            segments: l.state,
            segment_of_row: l.by_row,
            first_month: dims.first_month,
            categories: dims.categories,
            states: dims.states,
            channels: dims.channels,
        }
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
}
