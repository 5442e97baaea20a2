//! The dashboard's segments: the live segment model loaded and applied at
//! the data's reference date, the PCA map, the migration matrix and the
//! "CLV by segment" card.

use super::*;
use analytics_lib::features::FeatureData;

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
}

pub(super) fn no_segments(note: String) -> (SegmentState, SegmentOptions) {
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
/// code's segment (the engine's, when asked) and every customer row's (the
/// CLV card's).
pub(super) struct LoadedModel {
    pub(super) model: LoadedSegments,
    pub(super) segment_model: SegmentModel,
    pub(super) options: SegmentOptions,
    pub(super) by_code: Option<Vec<u8>>,
    pub(super) by_row: Vec<u8>,
}

/// The dashboard's segments: from the live model, or none and why.
pub(crate) struct Segments {
    pub(super) state: SegmentState,
    pub(super) options: SegmentOptions,
    pub(super) segment_model: Option<SegmentModel>,
    pub(super) by_code: Option<Vec<u8>>,
    pub(super) by_row: Vec<u8>,
}

/// [`load_segments`], or no segments with the reason (never an error: the
/// dashboard works without them).
pub(super) fn segments_or_none(
    data: &dyn FeatureData,
    customer_index: Option<&HashMap<String, u32>>,
    models: &Path,
    rows: Option<&CustomerRows>,
) -> Segments {
    let none = |note: String| {
        let (state, options) = no_segments(note);
        Segments {
            state,
            options,
            segment_model: None,
            by_code: None,
            by_row: Vec::new(),
        }
    };
    match load_segments(data, customer_index, models, rows) {
        Ok(Some(l)) => Segments {
            state: SegmentState {
                model: Some(l.model),
                note: l.options.note.clone(),
            },
            options: l.options,
            segment_model: Some(l.segment_model),
            by_code: l.by_code,
            by_row: l.by_row,
        },
        Ok(None) => none(
            "no segment model is live: train one (analytics train) to filter by segment".into(),
        ),
        Err(e) => {
            eprintln!("serve: dashboard without segments: {e:#}");
            none(crate::error::public_message(
                &format!("the live segment model could not be used: {e:#}"),
                &[models],
            ))
        }
    }
}

/// Load the live segment model, assign every customer at the data's
/// reference date, and project a sample on the first two principal components.
pub(super) fn load_segments(
    full: &dyn FeatureData,
    customer_index: Option<&HashMap<String, u32>>,
    models: &Path,
    rows: Option<&CustomerRows>,
) -> anyhow::Result<Option<LoadedModel>> {
    let Some((version, path)) = live_segment_file(models)? else {
        return Ok(None);
    };
    let model =
        SegmentModel::load(&path).with_context(|| format!("while loading {}", path.display()))?;
    let features = SegmentFeatures::compute(
        full,
        Some(full.default_as_of()),
        Some(&model.meta.categories),
    )
    .context("while computing the customers' segment features")?;
    let assigned = model
        .assign_features(&features)
        .context("while assigning customers to segments")?;
    let k = model.k();
    if k >= usize::from(NO_SEGMENT) {
        anyhow::bail!("a segment model with {k} segments: the dashboard takes at most 254");
    }
    let mut by_code = customer_index.map(|c| vec![NO_SEGMENT; c.len()]);
    let mut by_row = vec![NO_SEGMENT; rows.map_or(0, CustomerRows::len)];
    let mut sizes = vec![0usize; k];
    for (id, (seg, _)) in features.customer_ids.iter().zip(&assigned) {
        sizes[*seg] += 1;
        if let (Some(by_code), Some(&c)) = (
            by_code.as_mut(),
            customer_index.and_then(|index| index.get(id)),
        ) {
            by_code[c as usize] = *seg as u8;
        }
        if let Some(r) = rows.and_then(|rows| rows.find(id)) {
            by_row[r as usize] = *seg as u8;
        }
    }
    let migration = migration_view(&model, full, &features);
    let labels: Vec<i64> = assigned.iter().map(|(s, _)| *s as i64).collect();
    let sample = views::stratified_sample(&labels, PCA_SAMPLE, 7);
    let scaled = model
        .scaled_rows(&features, &sample)
        .context("while reading the segment features")?;
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
            analytics_lib::locale::date(full.default_as_of())
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
        segment_model: model,
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
    full: &dyn FeatureData,
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
