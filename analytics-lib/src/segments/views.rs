//! Pictures of the segments: PCA to 2 or 3 dimensions (computed here:
//! linfa-reduction's panicked on large inputs, see [`pca`]), t-SNE
//! (linfa-tsne) on a stratified sample, and scatter charts coloured by
//! segment — plotly 2D and rotatable 3D (offline, Brazilian separators like
//! [`crate::charts`]), and a static plotters SVG.
//!
//! **Explained variance ratio** here is each component's share of the
//! *total* variance of the scaled features (σᵢ² / Σ‖xᵢ − x̄‖²), so the 2D
//! ratios sum to less than 1 when the picture leaves variance out. (linfa's
//! own `explained_variance_ratio` divides by the kept components only.)
//!
//! **t-SNE sample**: at most `sample` customers, allocated to the segments
//! in proportion to their sizes (largest remainders), drawn within each
//! segment from a seeded stream.
//!
//! **t-SNE seed**: [`TsneParams::seed`] fixes both the sample and the
//! starting layout. linfa's t-SNE draws the initial embedding from its own
//! fixed-seed generator, one point per input row in row order; the sampled
//! rows are handed to it in an order shuffled by the seed (and the result
//! put back in customer order), so each customer's starting point, hence
//! the picture, is a function of the seed. The same seed and data give the
//! same coordinates, bit for bit.

use std::collections::BTreeMap;

use linfa::prelude::*;
use linfa_tsne::TSneParams;
use ndarray::{Array2, Axis};
use plotly::common::{Marker, Mode, Title};
use plotly::layout::{Axis as PAxis, Layout, LayoutScene, Margin};
use plotly::{Plot, Scatter, Scatter3D};
use plotters::prelude::*;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::errors::{Result, SegmentError};
use super::kmeans::rows;

/// Colours of the segments, in the order of their sorted names.
const PALETTE: [&str; 10] = [
    "#1f4e79", "#e07b24", "#2e8b57", "#c0392b", "#8e44ad", "#16a085", "#d4ac0d", "#7f8c8d",
    "#34495e", "#d35400",
];
const NOISE_COLOUR: &str = "#b0b0b0";

/// Points projected to a few dimensions.
#[derive(Clone, Debug)]
pub struct Projection {
    /// `rows × dims`.
    pub coords: Array2<f64>,
    /// Each component's share of the total variance (see the module docs).
    pub explained_variance_ratio: Vec<f64>,
    /// `dims × features` (PCA only; empty for t-SNE).
    pub components: Array2<f64>,
    /// Which input rows the coordinates are of (all rows for PCA).
    pub rows: Vec<usize>,
}

/// PCA of the scaled features to `dims` (2 or 3) dimensions (components
/// fitted on at most [`PCA_FIT_ROWS`] seeded rows, all rows projected).
pub fn pca(x: &Array2<f64>, dims: usize) -> Result<Projection> {
    if !(2..=3).contains(&dims) {
        return Err(SegmentError::invalid("pca", "dims", "2 or 3", dims));
    }
    if x.ncols() <= dims || x.nrows() <= dims {
        return Err(SegmentError::input(
            "pca input",
            format!("more than {dims} features and rows"),
            format!("{} rows × {} features", x.nrows(), x.ncols()),
        ));
    }
    // linfa-reduction's PCA panicked ("NaN values in array" in
    // linfa-linalg's eigh) on the 500k-line data, so the principal axes are
    // computed here: the covariance of the features (d × d, d = 16) on a
    // seeded sample of at most PCA_FIT_ROWS rows, and its leading
    // eigenvectors by power iteration with deflation (signs fixed so the
    // largest coordinate is positive).
    let fit_rows = super::kmeans::sample_indices(x.nrows(), PCA_FIT_ROWS, 42);
    let fit_x = rows(x, &fit_rows);
    let d = x.ncols();
    let mean = fit_x
        .mean_axis(Axis(0))
        .unwrap_or_else(|| ndarray::Array1::zeros(d));
    let centred = &fit_x - &mean;
    let mut cov = centred.t().dot(&centred) / fit_x.nrows() as f64;
    let mut components = Array2::<f64>::zeros((dims, d));
    for j in 0..dims {
        let mut v = ndarray::Array1::from_shape_fn(d, |i| 1.0 + (i + j) as f64 / d as f64);
        for _ in 0..1_000 {
            let w = cov.dot(&v);
            let norm = w.dot(&w).sqrt();
            if norm.is_nan() || norm <= 1e-300 {
                break;
            }
            let w = w / norm;
            let change: f64 = (&w - &v).iter().map(|x| x * x).sum();
            v = w;
            if change < 1e-24 {
                break;
            }
        }
        let norm = v.dot(&v).sqrt().max(1e-300);
        v /= norm;
        let big = v
            .iter()
            .copied()
            .fold(0.0f64, |m, x| if x.abs() > m.abs() { x } else { m });
        if big < 0.0 {
            v *= -1.0;
        }
        let lambda = v.dot(&cov.dot(&v));
        let outer = v
            .view()
            .insert_axis(Axis(1))
            .dot(&v.view().insert_axis(Axis(0)));
        cov = cov - outer * lambda;
        components.row_mut(j).assign(&v);
    }
    let coords = (x - &mean).dot(&components.t());
    let mean_all = x
        .mean_axis(Axis(0))
        .unwrap_or_else(|| ndarray::Array1::zeros(x.ncols()));
    let total: f64 = (x - &mean_all).iter().map(|v| v * v).sum();
    let explained_variance_ratio = (0..dims)
        .map(|j| {
            let c = coords.column(j);
            let m = c.mean().unwrap_or(0.0);
            let v: f64 = c.iter().map(|v| (v - m) * (v - m)).sum();
            if total > 0.0 { v / total } else { 0.0 }
        })
        .collect();
    if coords.iter().any(|v| !v.is_finite()) {
        return Err(SegmentError::Fit {
            algorithm: "pca",
            cause: "the projection is not finite".into(),
        });
    }
    Ok(Projection {
        coords,
        explained_variance_ratio,
        components,
        rows: (0..x.nrows()).collect(),
    })
}

/// Largest number of rows [`pca`] fits its components on.
pub const PCA_FIT_ROWS: usize = 20_000;

/// t-SNE parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TsneParams {
    /// Largest number of customers embedded.
    pub sample: usize,
    /// Lowered to `(rows − 1) / 3` on small samples.
    pub perplexity: f64,
    pub max_iterations: usize,
    /// Barnes–Hut θ (0 = exact).
    pub approx_threshold: f64,
    /// Fixes the sample and the starting layout (see the module docs).
    pub seed: u64,
}

impl Default for TsneParams {
    fn default() -> Self {
        TsneParams {
            sample: 5_000,
            perplexity: 30.0,
            max_iterations: 1_000,
            approx_threshold: 0.5,
            seed: 42,
        }
    }
}

impl TsneParams {
    pub fn check(&self) -> Result<&Self> {
        if self.sample < 10 {
            return Err(SegmentError::invalid(
                "tsne",
                "sample",
                "at least 10 customers",
                self.sample,
            ));
        }
        if !(self.perplexity.is_finite() && self.perplexity >= 1.0) {
            return Err(SegmentError::invalid(
                "tsne",
                "perplexity",
                "a number ≥ 1",
                self.perplexity,
            ));
        }
        if self.max_iterations < 10 {
            return Err(SegmentError::invalid(
                "tsne",
                "max_iterations",
                "at least 10",
                self.max_iterations,
            ));
        }
        if !(self.approx_threshold.is_finite() && self.approx_threshold >= 0.0) {
            return Err(SegmentError::invalid(
                "tsne",
                "approx_threshold",
                "a number ≥ 0",
                self.approx_threshold,
            ));
        }
        Ok(self)
    }
}

/// At most `max` row indices, allocated to the groups of `labels` in
/// proportion to their sizes, seeded; sorted.
pub fn stratified_sample(labels: &[i64], max: usize, seed: u64) -> Vec<usize> {
    let n = labels.len();
    if n <= max {
        return (0..n).collect();
    }
    let mut groups: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, l) in labels.iter().enumerate() {
        groups.entry(*l).or_default().push(i);
    }
    let quota: Vec<(i64, usize, f64)> = groups
        .iter()
        .map(|(l, m)| {
            let q = m.len() as f64 * max as f64 / n as f64;
            (*l, q.floor() as usize, q - q.floor())
        })
        .collect();
    let mut take: BTreeMap<i64, usize> = quota.iter().map(|(l, q, _)| (*l, *q)).collect();
    let left = max - take.values().sum::<usize>();
    let mut by_remainder = quota.clone();
    by_remainder.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
    for (l, _, _) in by_remainder.into_iter().take(left) {
        if let Some(t) = take.get_mut(&l) {
            *t += 1;
        }
    }
    let mut out = Vec::with_capacity(max);
    for (l, mut members) in groups {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(l as u64);
        members.shuffle(&mut rng);
        out.extend(members.into_iter().take(take.get(&l).copied().unwrap_or(0)));
    }
    out.sort_unstable();
    out
}

/// t-SNE of the scaled features to 2 dimensions, on a stratified sample by
/// `labels` (one per row of `x`; noise as −1).
pub fn tsne(x: &Array2<f64>, labels: &[i64], params: &TsneParams) -> Result<Projection> {
    params.check()?;
    if labels.len() != x.nrows() {
        return Err(SegmentError::input(
            "tsne labels",
            format!("one per row ({})", x.nrows()),
            format!("{}", labels.len()),
        ));
    }
    let idx = stratified_sample(labels, params.sample, params.seed);
    if idx.len() < 10 {
        return Err(SegmentError::input(
            "tsne input",
            "at least 10 rows",
            format!("{} rows", idx.len()),
        ));
    }
    // The seeded order in which the sampled rows meet linfa's initial layout.
    let mut order: Vec<usize> = (0..idx.len()).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    rng.set_stream(u64::MAX - 1);
    order.shuffle(&mut rng);
    let shuffled: Vec<usize> = order.iter().map(|&o| idx[o]).collect();
    let mut xs = rows(x, &shuffled).as_standard_layout().into_owned();
    // bhtsne as published picks the vantage points of its neighbour search
    // with an unseeded generator: with tied or nearly tied distances
    // (customers with the same features) the neighbours it kept, and so the
    // map, changed from run to run. The workspace's copy draws them from a
    // fixed seed (vendor/bhtsne/PATCHED.md), and a seeded jitter of at most
    // 1e-9 (the features are scaled to unit spread) makes every distance
    // distinct: the map depends on the seed and the data alone.
    rng.set_stream(u64::MAX - 2);
    for v in xs.iter_mut() {
        *v += (rng.random::<f64>() * 2.0 - 1.0) * 1e-9;
    }
    let perplexity = params.perplexity.min((idx.len() - 1) as f64 / 3.0);
    let embedded = TSneParams::embedding_size(2)
        .perplexity(perplexity)
        .approx_threshold(params.approx_threshold)
        .max_iter(params.max_iterations)
        .transform(xs)
        .map_err(|e| SegmentError::Fit {
            algorithm: "tsne",
            cause: e.into(),
        })?;
    let mut coords = Array2::zeros(embedded.raw_dim());
    for (pos, &o) in order.iter().enumerate() {
        coords.row_mut(o).assign(&embedded.row(pos));
    }
    Ok(Projection {
        coords,
        explained_variance_ratio: Vec::new(),
        components: Array2::zeros((0, 0)),
        rows: idx,
    })
}

// ---------------------------------------------------------------------------
// Charts.

/// Row indices per segment name, names sorted ("noise" last), with a colour each.
fn groups(names: &[String]) -> Vec<(String, &'static str, Vec<usize>)> {
    let mut by: BTreeMap<(bool, String), Vec<usize>> = BTreeMap::new();
    for (i, n) in names.iter().enumerate() {
        by.entry((n == super::naming::NOISE, n.clone()))
            .or_default()
            .push(i);
    }
    by.into_iter()
        .enumerate()
        .map(|(c, ((noise, name), rows))| {
            let colour = if noise {
                NOISE_COLOUR
            } else {
                PALETTE[c % PALETTE.len()]
            };
            (name, colour, rows)
        })
        .collect()
}

fn check_points(coords: &Array2<f64>, names: &[String], dims: usize) -> Result<()> {
    if coords.ncols() < dims || coords.nrows() != names.len() {
        return Err(SegmentError::input(
            "scatter chart",
            format!(
                "{} rows of at least {dims} coordinates, one per segment name",
                names.len()
            ),
            format!("{} rows × {} coordinates", coords.nrows(), coords.ncols()),
        ));
    }
    Ok(())
}

fn base_layout(title: &str) -> Layout {
    Layout::new()
        .title(Title::with_text(title))
        .separators(",.")
        .height(560)
        .margin(Margin::new().left(70).right(30).top(60).bottom(60))
}

/// A 2D scatter of `coords` (rows × ≥ 2) coloured by segment name (one per
/// row). `axes` are the axis titles, e.g. `["PC1 (41,2%)", "PC2 (22,0%)"]`.
pub fn scatter_2d(
    coords: &Array2<f64>,
    names: &[String],
    title: &str,
    axes: [&str; 2],
) -> Result<Plot> {
    check_points(coords, names, 2)?;
    let mut plot = Plot::new();
    for (name, colour, rows) in groups(names) {
        let x: Vec<f64> = rows.iter().map(|&i| coords[[i, 0]]).collect();
        let y: Vec<f64> = rows.iter().map(|&i| coords[[i, 1]]).collect();
        plot.add_trace(
            Scatter::new(x, y)
                .mode(Mode::Markers)
                .name(format!(
                    "{name} ({})",
                    crate::locale::number(rows.len() as f64, 0)
                ))
                .marker(Marker::new().color(colour).size(5).opacity(0.6)),
        );
    }
    plot.set_layout(
        base_layout(title)
            .x_axis(
                PAxis::new()
                    .title(Title::with_text(axes[0]))
                    .tick_format(",.1f"),
            )
            .y_axis(
                PAxis::new()
                    .title(Title::with_text(axes[1]))
                    .tick_format(",.1f"),
            ),
    );
    Ok(plot)
}

/// A rotatable 3D scatter (plotly `Scatter3D`) coloured by segment name.
pub fn scatter_3d(
    coords: &Array2<f64>,
    names: &[String],
    title: &str,
    axes: [&str; 3],
) -> Result<Plot> {
    check_points(coords, names, 3)?;
    let mut plot = Plot::new();
    for (name, colour, rows) in groups(names) {
        let col = |j: usize| rows.iter().map(|&i| coords[[i, j]]).collect::<Vec<f64>>();
        plot.add_trace(
            Scatter3D::new(col(0), col(1), col(2))
                .mode(Mode::Markers)
                .name(format!(
                    "{name} ({})",
                    crate::locale::number(rows.len() as f64, 0)
                ))
                .marker(Marker::new().color(colour).size(3).opacity(0.7)),
        );
    }
    let axis = |t: &str| PAxis::new().title(Title::with_text(t)).tick_format(",.1f");
    plot.set_layout(
        base_layout(title).scene(
            LayoutScene::new()
                .x_axis(axis(axes[0]))
                .y_axis(axis(axes[1]))
                .z_axis(axis(axes[2])),
        ),
    );
    Ok(plot)
}

/// Axis titles of a projection: `PC1 (41,2%)` with the explained variance
/// ratio when there is one, else `prefix1`.
pub fn axis_titles(p: &Projection, prefix: &str) -> Vec<String> {
    (0..p.coords.ncols())
        .map(|j| match p.explained_variance_ratio.get(j) {
            Some(r) => format!("{prefix}{} ({})", j + 1, crate::locale::percent(*r)),
            None => format!("{prefix}{}", j + 1),
        })
        .collect()
}

fn svg_error(e: impl std::fmt::Display) -> SegmentError {
    SegmentError::input("scatter SVG", "data that can be drawn", e.to_string())
}

fn hex(c: &str) -> RGBColor {
    let v = u32::from_str_radix(c.trim_start_matches('#'), 16).unwrap_or(0);
    RGBColor((v >> 16) as u8, (v >> 8) as u8, v as u8)
}

/// A static 2D scatter (SVG) coloured by segment name, with a legend.
pub fn scatter_svg(coords: &Array2<f64>, names: &[String], title: &str) -> Result<String> {
    check_points(coords, names, 2)?;
    let range = |j: usize| {
        let c = coords.index_axis(Axis(1), j);
        let lo = c
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(f64::INFINITY, f64::min);
        let hi = c
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(f64::NEG_INFINITY, f64::max);
        if lo.is_finite() && hi > lo {
            let pad = (hi - lo) * 0.05;
            (lo - pad)..(hi + pad)
        } else {
            -1.0..1.0
        }
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(svg_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(range(0), range(1))
            .map_err(svg_error)?;
        chart
            .configure_mesh()
            .x_label_formatter(&|v| crate::locale::number(*v, 1))
            .y_label_formatter(&|v| crate::locale::number(*v, 1))
            .draw()
            .map_err(svg_error)?;
        for (name, colour, rows) in groups(names) {
            let c = hex(colour);
            chart
                .draw_series(rows.iter().map(|&i| {
                    Circle::new((coords[[i, 0]], coords[[i, 1]]), 2, c.mix(0.6).filled())
                }))
                .map_err(svg_error)?
                .label(name)
                .legend(move |(x, y)| Circle::new((x, y), 4, c.filled()));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(svg_error)?;
        root.present().map_err(svg_error)?;
    }
    Ok(svg)
}

// ---------------------------------------------------------------------------
// Choosing k and eps.

/// The elbow curve (inertia per k) and the silhouette per k side by side,
/// the chosen k marked on both.
pub fn k_choice_chart(curve: &[super::kmeans::KScore], chosen: usize) -> Result<Plot> {
    if curve.is_empty() {
        return Err(SegmentError::input(
            "k choice chart",
            "at least one k tried",
            "an empty curve",
        ));
    }
    let ks: Vec<f64> = curve.iter().map(|s| s.k as f64).collect();
    let inertia: Vec<f64> = curve.iter().map(|s| s.inertia).collect();
    let sil: Vec<Option<f64>> = curve.iter().map(|s| s.silhouette).collect();
    let at = curve.iter().position(|s| s.k == chosen);
    let mut plot = Plot::new();
    plot.add_trace(
        Scatter::new(ks.clone(), inertia.clone())
            .mode(Mode::LinesMarkers)
            .name("inertia (elbow)")
            .marker(Marker::new().color(PALETTE[0]).size(8)),
    );
    let (sk, sv): (Vec<f64>, Vec<f64>) = ks
        .iter()
        .zip(&sil)
        .filter_map(|(k, s)| s.map(|s| (*k, s)))
        .unzip();
    plot.add_trace(
        Scatter::new(sk, sv)
            .mode(Mode::LinesMarkers)
            .name("silhouette")
            .x_axis("x2")
            .y_axis("y2")
            .marker(Marker::new().color(PALETTE[1]).size(8)),
    );
    if let Some(i) = at {
        plot.add_trace(
            Scatter::new(vec![ks[i]], vec![inertia[i]])
                .mode(Mode::Markers)
                .name(format!("chosen k = {chosen}"))
                .marker(
                    Marker::new()
                        .color(PALETTE[3])
                        .size(14)
                        .symbol(plotly::common::MarkerSymbol::CircleOpen),
                ),
        );
        if let Some(s) = sil[i] {
            plot.add_trace(
                Scatter::new(vec![ks[i]], vec![s])
                    .mode(Mode::Markers)
                    .name(format!("chosen k = {chosen}"))
                    .show_legend(false)
                    .x_axis("x2")
                    .y_axis("y2")
                    .marker(
                        Marker::new()
                            .color(PALETTE[3])
                            .size(14)
                            .symbol(plotly::common::MarkerSymbol::CircleOpen),
                    ),
            );
        }
    }
    let k_axis = |t: &str| {
        PAxis::new()
            .title(Title::with_text(t))
            .tick_format("d")
            .dtick(1.0)
    };
    plot.set_layout(
        base_layout("Choosing k: elbow (left) and silhouette (right)")
            .height(420)
            .x_axis(k_axis("k (segments)").domain(&[0.0, 0.44]).anchor("y"))
            .y_axis(
                PAxis::new()
                    .title(Title::with_text("inertia (sum of squared distances)"))
                    .tick_format(",.0f")
                    .anchor("x"),
            )
            .x_axis2(k_axis("k (segments)").domain(&[0.56, 1.0]).anchor("y2"))
            .y_axis2(
                PAxis::new()
                    .title(Title::with_text("mean silhouette"))
                    .tick_format(",.2f")
                    .anchor("x2"),
            ),
    );
    Ok(plot)
}

/// The k-distance curve behind DBSCAN's `eps`, with the knee marked.
pub fn k_distance_chart(s: &super::dbscan::EpsSuggestion) -> Result<Plot> {
    if s.k_distances.is_empty() || s.knee_index >= s.k_distances.len() {
        return Err(SegmentError::input(
            "k-distance chart",
            "a non-empty curve with the knee on it",
            format!("{} points, knee at {}", s.k_distances.len(), s.knee_index),
        ));
    }
    let x: Vec<f64> = (0..s.k_distances.len()).map(|i| i as f64).collect();
    let mut plot = Plot::new();
    plot.add_trace(
        Scatter::new(x, s.k_distances.clone())
            .mode(Mode::Lines)
            .name(format!("distance to the {}th neighbour", s.min_points - 1))
            .marker(Marker::new().color(PALETTE[0])),
    );
    plot.add_trace(
        Scatter::new(vec![s.knee_index as f64], vec![s.eps])
            .mode(Mode::Markers)
            .name(format!("knee: eps = {}", crate::locale::number(s.eps, 2)))
            .marker(Marker::new().color(PALETTE[3]).size(12)),
    );
    plot.set_layout(
        base_layout("k-distance curve (sorted): DBSCAN's eps at the knee")
            .height(420)
            .x_axis(
                PAxis::new()
                    .title(Title::with_text("sampled customers, sorted"))
                    .tick_format(",.0f"),
            )
            .y_axis(
                PAxis::new()
                    .title(Title::with_text("distance (scaled units)"))
                    .tick_format(",.2f"),
            ),
    );
    Ok(plot)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::{Distribution, Normal};

    /// Our PCA finds the same principal axes and the same share of variance
    /// as linfa-reduction's on data small enough for linfa's eigen solver:
    /// five correlated features with well-separated variances.
    #[test]
    fn pca_agrees_with_linfa_reduction_on_small_data() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let n = Normal::new(0.0, 1.0).expect("unit normal");
        let x = Array2::from_shape_fn((3_000, 5), |_| 0.0);
        let mut x = x;
        for mut row in x.rows_mut() {
            let (a, b, c): (f64, f64, f64) =
                (n.sample(&mut rng), n.sample(&mut rng), n.sample(&mut rng));
            row[0] = 3.0 * a + 0.1 * c;
            row[1] = 2.0 * a + 1.5 * b;
            row[2] = 0.2 * c - b;
            row[3] = 0.5 * c;
            row[4] = a - b + 0.3 * c;
        }
        let ours = pca(&x, 2).expect("our pca");
        let theirs = linfa_reduction::Pca::params(2)
            .fit(&linfa::DatasetBase::from(x.clone()))
            .expect("linfa pca");
        // linfa's ratio divides by the kept components' variance only (see
        // the module docs); ours by the total: compare within the two kept.
        let kept: f64 = ours.explained_variance_ratio.iter().sum();
        let ratio = theirs.explained_variance_ratio();
        for j in 0..2 {
            let a = ours.components.row(j);
            let b = theirs.components().row(j);
            let cos = a.dot(&b).abs() / (a.dot(&a).sqrt() * b.dot(&b).sqrt());
            assert!(cos > 0.9999, "component {j}: |cos| = {cos}");
            let share = ours.explained_variance_ratio[j] / kept;
            assert!(
                (share - ratio[j]).abs() < 1e-3,
                "component {j}: ours {share} vs linfa {}",
                ratio[j]
            );
        }
    }
}
