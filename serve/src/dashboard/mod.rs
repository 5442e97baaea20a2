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
pub mod query;
mod segments;
pub mod tables;

pub use answer::*;
pub use segments::*;
use segments::{load_segments, no_segments};

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
