//! Prediction intervals by split conformal prediction on out-of-time
//! residuals, binned by the prediction (Mondrian conformal).
//!
//! **Calibration.** The residuals `y − ŷ` of a model fitted at one cutoff
//! and scored at the next (training's validation split: fitted at
//! `as_of − 270 d`, scored at `as_of − 180 d`; never the test cutoff) are
//! grouped into bins of the prediction `ŷ` (up to [`MAX_BINS`] bins of
//! equal counts, each with at least [`MIN_PER_BIN`] rows). Customer spend
//! is zero-inflated and its spread grows with the prediction: one band for
//! everybody would be far too wide for the many small predictions and too
//! narrow for the large ones; per bin, each band has its own width and
//! asymmetry.
//!
//! **Interval.** For a level `L` (0.80, 0.95) and a bin of `n` residuals,
//! `[ŷ + r₍ₖ₎, ŷ + r₍ⱼ₎]` with `k = ⌊(n+1)(1−L)/2⌋` and
//! `j = ⌈(n+1)(1+L)/2⌉` (order statistics, clamped to `1..=n`): the split
//! conformal interval of Vovk et al., whose coverage of a new exchangeable
//! point is at least `L` per bin. The lower bound is clipped at 0 (spend is
//! never negative, so no coverage is lost).
//!
//! **Zero-inflated bins.** When at least `(1−L)/2` of a bin's actual values
//! are 0, an offset learnt from those zeros (`r = −ŷ`) would exclude 0 as
//! soon as the predictions shift between cutoffs (a training mean refitted
//! on a later cutoff, say). There the interval is one-sided instead:
//! `[0, ŷ + r₍ⱼ₎]` with `j = ⌈(n+1)L⌉`. Spend is never below 0, so every
//! miss is above the upper bound, and the split-conformal guarantee of
//! level `L` holds for the upper quantile alone (a lower bound of 0 with
//! the two-sided `j` would cover the whole lower tail and overshoot `L`).
//!
//! **Honesty.** Exchangeability across cutoffs is an assumption (the test
//! quarter can differ from the validation quarter): the coverage measured on
//! the test cutoff is reported beside every model (`coverage_80`,
//! `coverage_95`).

use serde::{Deserialize, Serialize};

use super::errors::{ModelError, Result};

/// Largest number of prediction bins.
pub const MAX_BINS: usize = 10;
/// Fewest calibration rows per bin (a 95 % interval needs at least 39 for
/// finite order statistics; 200 keep each quantile steady).
pub const MIN_PER_BIN: usize = 200;
/// The nominal levels of the served intervals.
pub const LEVELS: [f64; 2] = [0.80, 0.95];

/// An interval around a prediction.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

/// One bin of predictions: its upper edge and the residual quantiles of
/// each level (`low` ≤ 0 ≤ `high` typically).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResidualBin {
    /// Predictions up to this value (the last bin: up to +∞, stored as the
    /// largest calibration prediction) fall in this bin.
    pub upper: f64,
    pub rows: usize,
    /// Residual offsets `(low, high)` per level of [`LEVELS`].
    pub offsets: Vec<(f64, f64)>,
    /// Per level: the interval is one-sided, `[0, ŷ + high]` (the bin's
    /// actual values hold enough zeros for that level's lower tail).
    #[serde(default)]
    pub zero_low: Vec<bool>,
}

/// Measured coverage of the intervals on a set of rows.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    pub coverage_80: f64,
    pub coverage_95: f64,
    pub n: usize,
}

/// The calibrated intervals of one model: what is saved in its metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConformalIntervals {
    /// `binned split-conformal on out-of-time residuals`.
    pub method: String,
    pub levels: Vec<f64>,
    pub bins: Vec<ResidualBin>,
    pub calibration_rows: usize,
    /// Coverage on the test cutoff (filled by training).
    pub test_coverage: Option<Coverage>,
}

/// The `k`-th smallest (1-based, clamped to the slice) of sorted values.
fn order_stat(sorted: &[f64], k: isize) -> f64 {
    let i = (k.clamp(1, sorted.len() as isize) - 1) as usize;
    sorted[i]
}

impl ConformalIntervals {
    /// Calibrate on `predicted` and `actual` (same length, at least
    /// [`MIN_PER_BIN`] / 5 rows, all finite).
    pub fn calibrate(predicted: &[f64], actual: &[f64]) -> Result<Self> {
        let n = predicted.len();
        if n != actual.len() || n < MIN_PER_BIN / 5 {
            return Err(ModelError::Shape {
                model: "intervals",
                what: "calibration rows",
                expected: format!(
                    "one actual value per prediction, at least {}",
                    MIN_PER_BIN / 5
                ),
                found: format!("{n} predictions and {} actual values", actual.len()),
            });
        }
        if let Some(i) = (0..n).find(|&i| !(predicted[i].is_finite() && actual[i].is_finite())) {
            return Err(ModelError::Shape {
                model: "intervals",
                what: "calibration rows",
                expected: "finite predictions and actual values".into(),
                found: format!("{} and {} at row {i}", predicted[i], actual[i]),
            });
        }
        let mut rows: Vec<(f64, f64)> = predicted
            .iter()
            .zip(actual)
            .map(|(p, a)| (*p, a - p))
            .collect();
        rows.sort_by(|a, b| a.0.total_cmp(&b.0));
        let n_bins = (n / MIN_PER_BIN).clamp(1, MAX_BINS);
        let mut bins = Vec::with_capacity(n_bins);
        let mut start = 0;
        for b in 0..n_bins {
            let mut end = (n * (b + 1)) / n_bins;
            // Equal predictions stay in one bin.
            while end < n && end > start && rows[end].0 == rows[end - 1].0 {
                end += 1;
            }
            if end <= start {
                continue;
            }
            let mut r: Vec<f64> = rows[start..end].iter().map(|x| x.1).collect();
            r.sort_by(f64::total_cmp);
            let m = r.len() as f64;
            let zeros = rows[start..end]
                .iter()
                .filter(|(p, res)| p + res <= 0.0)
                .count() as f64;
            let zero_low = LEVELS
                .iter()
                .map(|l| zeros >= (1.0 - l) / 2.0 * m)
                .collect();
            let zero_low: Vec<bool> = zero_low;
            let offsets = LEVELS
                .iter()
                .zip(&zero_low)
                .map(|(l, &zero)| {
                    let k = ((m + 1.0) * (1.0 - l) / 2.0).floor() as isize;
                    // One-sided above 0 in a zero-inflated bin (module docs).
                    let upper = if zero { *l } else { (1.0 + l) / 2.0 };
                    let j = ((m + 1.0) * upper).ceil() as isize;
                    (order_stat(&r, k), order_stat(&r, j))
                })
                .collect();
            bins.push(ResidualBin {
                upper: rows[end - 1].0,
                rows: end - start,
                offsets,
                zero_low,
            });
            start = end;
            if start >= n {
                break;
            }
        }
        Ok(ConformalIntervals {
            method: "binned split-conformal on out-of-time residuals".into(),
            levels: LEVELS.to_vec(),
            bins,
            calibration_rows: n,
            test_coverage: None,
        })
    }

    /// Check a loaded calibration: levels as [`LEVELS`], at least one bin,
    /// finite offsets with low ≤ high.
    pub fn validate(&self) -> Result<()> {
        let ok = self.levels == LEVELS
            && !self.bins.is_empty()
            && self.bins.iter().all(|b| {
                b.upper.is_finite()
                    && b.offsets.len() == LEVELS.len()
                    && (b.zero_low.is_empty() || b.zero_low.len() == LEVELS.len())
                    && b.offsets
                        .iter()
                        .all(|(l, h)| l.is_finite() && h.is_finite() && l <= h)
            });
        if ok {
            Ok(())
        } else {
            Err(ModelError::Shape {
                model: "intervals",
                what: "saved calibration",
                expected: format!("levels {LEVELS:?} and bins of finite offsets, low ≤ high"),
                found: format!("levels {:?}, {} bins", self.levels, self.bins.len()),
            })
        }
    }

    fn bin(&self, prediction: f64) -> &ResidualBin {
        let i = self.bins.partition_point(|b| b.upper < prediction);
        &self.bins[i.min(self.bins.len() - 1)]
    }

    /// The intervals at [`LEVELS`] (80 %, 95 %) around `prediction`.
    pub fn intervals(&self, prediction: f64) -> [Interval; 2] {
        let b = self.bin(prediction);
        let at = |i: usize| {
            let (lo, hi) = b.offsets[i];
            let low = if b.zero_low.get(i).copied().unwrap_or(false) {
                0.0
            } else {
                (prediction + lo).max(0.0)
            };
            Interval {
                low,
                high: (prediction + hi).max(0.0),
            }
        };
        [at(0), at(1)]
    }

    /// Share of `actual` values inside their prediction's intervals.
    pub fn coverage(&self, predicted: &[f64], actual: &[f64]) -> Result<Coverage> {
        if predicted.len() != actual.len() || predicted.is_empty() {
            return Err(ModelError::Shape {
                model: "intervals",
                what: "coverage rows",
                expected: "one actual value per prediction, at least one".into(),
                found: format!(
                    "{} predictions and {} actual values",
                    predicted.len(),
                    actual.len()
                ),
            });
        }
        let mut inside = [0usize; 2];
        for (p, a) in predicted.iter().zip(actual) {
            for (k, iv) in self.intervals(*p).iter().enumerate() {
                if iv.low <= *a && *a <= iv.high {
                    inside[k] += 1;
                }
            }
        }
        let n = predicted.len();
        Ok(Coverage {
            coverage_80: inside[0] as f64 / n as f64,
            coverage_95: inside[1] as f64 / n as f64,
            n,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_distr::{Distribution, Normal};

    /// y = 2x + ε with ε ~ N(0, (0.5 + x)²): the noise grows with the
    /// prediction, and its level is known.
    fn noisy(n: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let z = Normal::new(0.0, 1.0).expect("normal");
        let (mut p, mut y) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for _ in 0..n {
            let x: f64 = rng.random_range(0.0..10.0);
            p.push(2.0 * x + 10.0);
            y.push(2.0 * x + 10.0 + (0.5 + x) * z.sample(&mut rng));
        }
        (p, y)
    }

    #[test]
    fn coverage_on_new_data_is_the_nominal_level_within_two_points() {
        let (p, y) = noisy(20_000, 1);
        let c = ConformalIntervals::calibrate(&p, &y).expect("calibrate");
        assert_eq!(c.bins.len(), MAX_BINS);
        let (p2, y2) = noisy(20_000, 2);
        let cov = c.coverage(&p2, &y2).expect("coverage");
        assert!((cov.coverage_80 - 0.80).abs() < 0.02, "{cov:?}");
        assert!((cov.coverage_95 - 0.95).abs() < 0.02, "{cov:?}");
        // The bins follow the noise: the 95 % half-width at x ≈ 0.5 is
        // about 1.96 · 1.0, at x ≈ 9.5 about 1.96 · 10.
        let narrow = c.intervals(11.0)[1];
        let wide = c.intervals(29.0)[1];
        assert!((narrow.high - narrow.low) / 2.0 < 3.0, "{narrow:?}");
        assert!((wide.high - wide.low) / 2.0 > 15.0, "{wide:?}");
        // One global band would over-cover the small predictions.
    }

    #[test]
    fn the_lower_bound_is_never_negative_and_bad_input_is_refused() {
        let (p, y) = noisy(1_000, 3);
        let c = ConformalIntervals::calibrate(&p, &y).expect("calibrate");
        assert!(c.intervals(0.0).iter().all(|iv| iv.low >= 0.0));
        let e = ConformalIntervals::calibrate(&[1.0; 10], &[1.0; 10]).expect_err("few");
        assert!(e.to_string().contains("at least 40"), "{e}");
        let e = ConformalIntervals::calibrate(&[f64::NAN; 50], &[1.0; 50]).expect_err("nan");
        assert!(e.to_string().contains("finite"), "{e}");
        assert!(c.validate().is_ok());
    }

    /// Zero-inflated spend (40 % of the actual values are 0, the rest
    /// log-normal around the prediction): the one-sided intervals keep the
    /// nominal coverage on new data instead of covering every zero on top.
    #[test]
    fn zero_inflated_data_is_covered_at_the_nominal_level() {
        let sample = |seed: u64| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let z = Normal::new(0.0, 1.0).expect("normal");
            let (mut p, mut y) = (Vec::new(), Vec::new());
            for _ in 0..20_000 {
                let pred: f64 = rng.random_range(50.0..500.0);
                let zero = rng.random_range(0.0..1.0) < 0.4;
                p.push(pred);
                y.push(if zero {
                    0.0
                } else {
                    pred * (0.6_f64 * z.sample(&mut rng)).exp()
                });
            }
            (p, y)
        };
        let (p, y) = sample(4);
        let c = ConformalIntervals::calibrate(&p, &y).expect("calibrate");
        assert!(c.bins.iter().all(|b| b.zero_low == [true, true]));
        let (p2, y2) = sample(5);
        let cov = c.coverage(&p2, &y2).expect("coverage");
        assert!((cov.coverage_80 - 0.80).abs() < 0.02, "{cov:?}");
        assert!((cov.coverage_95 - 0.95).abs() < 0.02, "{cov:?}");
    }

    /// Zero-inflated spend: calibrated where predictions are 100, tested
    /// where the same customers are predicted 150 (a refitted mean). The
    /// zeros stay inside the interval.
    #[test]
    fn zeros_stay_covered_when_predictions_shift() {
        let actual: Vec<f64> = (0..1_000)
            .map(|i| {
                if i % 10 < 6 {
                    0.0
                } else {
                    (i % 97) as f64 * 5.0
                }
            })
            .collect();
        let c = ConformalIntervals::calibrate(&vec![100.0; 1_000], &actual).expect("calibrate");
        let cov = c.coverage(&vec![150.0; 1_000], &actual).expect("coverage");
        assert!(
            cov.coverage_80 >= 0.80 && cov.coverage_95 >= 0.95,
            "{cov:?}"
        );
        assert_eq!(c.intervals(150.0)[0].low, 0.0);
    }
}
