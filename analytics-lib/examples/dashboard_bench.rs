//! The dashboard engine's scan timed without HTTP: the part of
//! `GET /api/dashboard` that grows with the data (`compute_ms` is this scan
//! plus building the JSON). For A/B work on `analytics_lib::dashboard`
//! between builds; `bench/dashboard.py` is the benchmark of record.
//!
//! ```text
//! cargo run --profile release -p analytics-lib --example dashboard_bench -- target/bench-data/10M
//! ```
//!
//! Prepares the folder ([`Source::prepare`]) and builds the engine without
//! segments (as `make bench-dashboard` does by default), then scans `N`
//! (default 100) seeded views like the benchmark's filter changes: a period
//! of 30 days to two years, 0–3 categories, a state and a channel a quarter
//! of the time each, previous period or year over year, and the
//! leaderboards (the top `TOP` customers and every product; `TOP` default
//! 10, 0 skips them). Each view is scanned `REPEAT` times (default 5); its
//! median is its time. Prints p50/p99/max of those medians, their sum and
//! the CPU time of the whole timed part (every thread), then the slowest
//! views.

use std::path::PathBuf;
use std::time::Instant;

use analytics_lib::dashboard::{Comparison, Engine, NONE, Query};
use analytics_lib::source::Source;
use chrono::Duration;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

/// The allocator `serve` runs with (its huge pages and purges shape the
/// scan's time).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env_usize(name: &str, default: usize) -> Result<usize, String> {
    match std::env::var(name) {
        Ok(s) => s
            .parse()
            .map_err(|_| format!("{name}: expected a whole number, found `{s}`")),
        Err(_) => Ok(default),
    }
}

/// User + system CPU seconds of this process (all threads; Linux, 100
/// clock ticks a second).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|x| x.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// A quarter of the time, one of `names` at random as a filter's mask
/// (named in `label`).
fn maybe_one(
    rng: &mut StdRng,
    names: &[String],
    what: &str,
    label: &mut String,
) -> Option<Vec<bool>> {
    if !rng.random_bool(0.25) || names.is_empty() {
        return None;
    }
    let i = rng.random_range(0..names.len());
    let mut mask = vec![false; names.len()];
    mask[i] = true;
    *label += &format!(" {what}={}", names[i]);
    Some(mask)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: dashboard_bench DATA_FOLDER (e.g. target/bench-data/10M)")?,
    );
    let n = env_usize("N", 100)?.max(1);
    let repeat = env_usize("REPEAT", 5)?.max(1);
    let top = env_usize("TOP", 10)?;
    let t = Instant::now();
    let prepared = Source::parquet(&dir).prepare()?;
    let prepare = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let built = Engine::from_sales(&prepared.sales, |index| (vec![NONE; index.len()], 0))?;
    drop(prepared);
    eprintln!(
        "prepared in {prepare:.1} s, engine built in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let engine = &built.engine;
    let (lo, hi) = (built.min_date, built.max_date);
    let span = (hi - lo).num_days();
    let mut rng = StdRng::seed_from_u64(7);
    let mut views = Vec::with_capacity(n);
    for _ in 0..n {
        let length = *[30i64, 90, 182, 365, 730].choose(&mut rng).unwrap_or(&365);
        let from = lo + Duration::days(rng.random_range(0..(span - length.min(span)).max(1)));
        let to = (from + Duration::days(length - 1)).min(hi);
        let mut q = Query::period(from, to);
        let compare = if rng.random_bool(0.5) {
            Comparison::Previous
        } else {
            Comparison::YearOverYear
        };
        if let Some((cf, ct)) = compare.period(from, to) {
            (q.compare_from, q.compare_to) = (cf, ct);
        }
        let k = *[0usize, 1, 1, 2, 3].choose(&mut rng).unwrap_or(&0);
        let mut label = format!("{from}..{to} {}", compare.name());
        if k > 0 {
            let mut cats = vec![false; built.categories.len()];
            for c in rand::seq::index::sample(&mut rng, built.categories.len(), k.min(cats.len())) {
                cats[c] = true;
                label += &format!(" category={}", built.categories[c]);
            }
            q.categories = Some(cats);
        }
        q.states = maybe_one(&mut rng, &built.states, "state", &mut label);
        q.channels = maybe_one(&mut rng, &built.channels, "channel", &mut label);
        q.top = top;
        views.push((label, q));
    }
    engine.scan(&views[0].1); // warm-up
    let cpu0 = cpu_seconds();
    let t = Instant::now();
    let mut times: Vec<(f64, &str)> = Vec::with_capacity(n);
    let mut check = 0.0;
    for (label, q) in &views {
        let mut ms: Vec<f64> = (0..repeat)
            .map(|_| {
                let t = Instant::now();
                let s = engine.scan(q);
                check += s.current.revenue;
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        ms.sort_by(f64::total_cmp);
        times.push((ms[ms.len() / 2], label));
    }
    let wall = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let mut sorted: Vec<f64> = times.iter().map(|x| x.0).collect();
    sorted.sort_by(f64::total_cmp);
    let pct =
        |p: f64| sorted[((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1];
    println!(
        "{n} views x {repeat}: median scan p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; sum of medians {:.0} ms; \
wall {:.2} s, CPU {:.2} s ({:.1} ms a scan); revenue checksum {check:.2}",
        pct(0.5),
        pct(0.99),
        sorted[sorted.len() - 1],
        sorted.iter().sum::<f64>(),
        wall,
        cpu,
        cpu * 1e3 / (n * repeat) as f64,
    );
    times.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (ms, label) in times.iter().take(8) {
        println!("  {ms:7.1} ms  {label}");
    }
    Ok(())
}
