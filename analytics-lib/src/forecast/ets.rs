//! Holt-Winters (additive trend, additive monthly season) on `log1p(revenue)`,
//! the second forecasting method beside the regression.
//!
//! Start: the first two years set the level (mean of year 1, moved to its
//! last month by the trend), the trend (year-2 mean − year-1 mean, per
//! month) and the 12 seasonal terms (year 1's deviations from its trend
//! line). Then for every later month `t`: one-step forecast
//! `ŷ = ℓ + b + s[t mod 12]`, and the usual updates
//! `ℓ ← α(y − s) + (1−α)(ℓ + b)`, `b ← β(ℓ_new − ℓ) + (1−β)b`,
//! `s ← γ(y − ℓ_new) + (1−γ)s`. The smoothing weights minimise the sum of
//! squared one-step errors after the first two years: a grid over
//! `α, β, γ`, then a finer search around the best point (deterministic,
//! no randomness).

/// Months of history Holt-Winters needs: two seasons to start from.
pub const MIN_MONTHS: usize = 24;
const SEASON: usize = 12;

/// A fitted Holt-Winters model: its weights and its state after the last month.
#[derive(Clone, Debug, PartialEq)]
pub struct HoltWinters {
    pub alpha: f64,
    pub beta: f64,
    pub gamma: f64,
    level: f64,
    trend: f64,
    season: [f64; SEASON],
    /// Months seen (the next forecast is month `n`).
    n: usize,
    /// Sum of squared one-step errors after the start-up years (log space).
    pub sse: f64,
}

/// Run the recursions over `y` (log values) with the given weights.
fn run(y: &[f64], alpha: f64, beta: f64, gamma: f64) -> HoltWinters {
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
    let (m1, m2) = (mean(&y[..SEASON]), mean(&y[SEASON..2 * SEASON]));
    let trend = (m2 - m1) / SEASON as f64;
    let mut season = [0.0; SEASON];
    for (m, s) in season.iter_mut().enumerate() {
        *s = y[m] - (m1 + (m as f64 - 5.5) * trend);
    }
    let mut hw = HoltWinters {
        alpha,
        beta,
        gamma,
        level: m1 + 5.5 * trend,
        trend,
        season,
        n: SEASON,
        sse: 0.0,
    };
    for (t, &v) in y.iter().enumerate().skip(SEASON) {
        let k = t % SEASON;
        let forecast = hw.level + hw.trend + hw.season[k];
        if t >= 2 * SEASON {
            hw.sse += (v - forecast).powi(2);
        }
        let level = alpha * (v - hw.season[k]) + (1.0 - alpha) * (hw.level + hw.trend);
        hw.trend = beta * (level - hw.level) + (1.0 - beta) * hw.trend;
        hw.season[k] = gamma * (v - level) + (1.0 - gamma) * hw.season[k];
        hw.level = level;
        hw.n = t + 1;
    }
    hw
}

impl HoltWinters {
    /// Fit on `y` (log values, at least [`MIN_MONTHS`]); `None` when shorter.
    pub fn fit(y: &[f64]) -> Option<HoltWinters> {
        if y.len() < MIN_MONTHS || y.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let grid = |lo: f64, hi: f64, steps: usize| -> Vec<f64> {
            (0..=steps)
                .map(|i| lo + (hi - lo) * i as f64 / steps as f64)
                .collect()
        };
        let mut best = run(y, 0.5, 0.1, 0.3);
        for &a in &grid(0.05, 0.95, 9) {
            for &b in &grid(0.0, 0.3, 6) {
                for &g in &grid(0.05, 0.95, 6) {
                    let m = run(y, a, b, g);
                    if m.sse < best.sse {
                        best = m;
                    }
                }
            }
        }
        // Finer: shrinking steps around the best point, one weight at a time.
        let mut step = 0.05;
        while step > 1e-3 {
            let mut improved = false;
            for dim in 0..3 {
                for dir in [-1.0, 1.0] {
                    let mut w = [best.alpha, best.beta, best.gamma];
                    w[dim] = (w[dim] + dir * step).clamp(0.0, 1.0);
                    let m = run(y, w[0], w[1], w[2]);
                    if m.sse < best.sse - 1e-15 {
                        best = m;
                        improved = true;
                    }
                }
            }
            if !improved {
                step /= 2.0;
            }
        }
        Some(best)
    }

    /// The forecast `h ≥ 1` months after the last month (log space).
    pub fn forecast(&self, h: usize) -> f64 {
        self.level + h as f64 * self.trend + self.season[(self.n + h - 1) % SEASON]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_an_exact_trend_and_season() {
        let season = [
            0.3, -0.1, 0.0, 0.2, -0.2, 0.1, 0.0, -0.3, 0.1, 0.2, -0.1, -0.2,
        ];
        let y: Vec<f64> = (0..48)
            .map(|t| 10.0 + 0.02 * t as f64 + season[t % 12])
            .collect();
        let hw = HoltWinters::fit(&y).expect("fit");
        for h in 1..=6 {
            let t = 48 + h - 1;
            let want = 10.0 + 0.02 * t as f64 + season[t % 12];
            assert!(
                (hw.forecast(h) - want).abs() < 1e-6,
                "h {h}: {} vs {want}",
                hw.forecast(h)
            );
        }
        assert!(HoltWinters::fit(&y[..23]).is_none());
    }
}
