//! `analytics`: the command line of the sales analytics platform.
//!
//! Machine output (JSON) goes to stdout only with `--json`; progress and logs
//! go to stderr. Bad input exits non-zero with a one-paragraph message.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use analytics_lib::data::generate::{GeneratorConfig, generate};
use analytics_lib::data::loader;
use anyhow::{Context, Result};
use clap::Parser;

mod bench;
mod cli;
mod registry;

use cli::*;

use bench::run_bench;
use registry::run_models;

/// mimalloc: the frames a job frees (raw tables after cleaning, cleaned
/// tables after the join) are reused and given back to the system; glibc's
/// malloc keeps them in per-thread arenas and the peak grows.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

// mimalloc's option setter (the C library the `mimalloc` crate links; its
// numbering is v3's `mi_option_e` in mimalloc.h).
#[allow(unsafe_code)]
unsafe extern "C" {
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}
const MI_OPTION_ARENA_EAGER_COMMIT: std::ffi::c_int = 4;
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

/// A batch job frees whole tables between its steps: give those pages back
/// to the system after a second (purge delay 1000 ms) and commit arena
/// memory only when used (`analytics bench` reports each stage's peak and
/// the resident memory it starts from, which shows what the allocator still
/// holds). Every page given back is zeroed by the kernel when it is faulted
/// in again, and on the 2-core development VM a fault costs several
/// microseconds: a delay of 0 made that more than half of final cleaning's
/// time; at 10 M lines, where a step outlasts 100 ms, a delay of 100 ms
/// faulted 6 M pages (17 s of system time in `analytics bench`), 1000 ms
/// 2 M (9 s) for 0.13 GiB more at the peak (3.75 GiB).
/// Transparent huge pages are turned off for the process
/// ([`analytics_lib::process::disable_transparent_huge_pages`]): on a VM
/// that hands free memory back to its host they cost 10–20× more per byte.
/// `MIMALLOC_PURGE_DELAY` / `MIMALLOC_ARENA_EAGER_COMMIT` /
/// `MIMALLOC_ALLOW_THP` in the environment take precedence; set there they
/// also apply to the first arena, which is reserved before `main`.
#[allow(unsafe_code)]
fn tune_allocator() {
    for (option, var, value) in [
        (
            MI_OPTION_ARENA_EAGER_COMMIT,
            "MIMALLOC_ARENA_EAGER_COMMIT",
            0,
        ),
        (MI_OPTION_PURGE_DELAY, "MIMALLOC_PURGE_DELAY", 1000),
    ] {
        if std::env::var_os(var).is_none() {
            // SAFETY: called first thing in main, before any other thread
            // exists; the option takes a plain integer.
            unsafe { mi_option_set(option, value) };
        }
    }
    analytics_lib::process::disable_transparent_huge_pages();
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Generate(args) => run_generate(args),
        Command::Clean(args) => run_clean(args),
        Command::Kpis(args) => run_kpis(args),
        Command::Train(args) => run_train(args),
        Command::Evaluate(args) => run_evaluate(args),
        Command::Retrain(args) => run_retrain(args),
        Command::Models(action) => run_models(action),
        Command::Bench(args) => run_bench(args),
        Command::Clv(args) => run_clv(args),
        Command::Import(source) => run_import(source),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!(
                "error: {}",
                analytics_lib::error::chain_message(err.as_ref())
            );
            ExitCode::FAILURE
        }
    }
}

fn print_json(value: &serde_json::Value) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

fn run_generate(args: GenerateArgs) -> Result<()> {
    let cfg = GeneratorConfig {
        lines: args.lines,
        seed: args.seed,
        defect_rate: args.defect_rate,
        start: args.start,
        end: args.end,
        progress: true,
        ..GeneratorConfig::default()
    };
    let t0 = Instant::now();
    let summary = generate(&cfg, &args.out).context("while generating the curated tables")?;
    eprintln!(
        "wrote {} customers, {} products, {} orders, {} order lines to {} in {:.1} s",
        summary.customers,
        summary.products,
        summary.orders,
        summary.order_items,
        args.out.display(),
        t0.elapsed().as_secs_f64()
    );
    if args.json {
        print_json(&serde_json::to_value(&summary)?)?;
    }
    Ok(())
}

fn run_clean(args: CleanArgs) -> Result<()> {
    let t0 = Instant::now();
    let source = args.input.source()?;
    if args.out.is_none() && !matches!(source, analytics_lib::source::Source::Parquet(_)) {
        // Push-down: the warehouse counts the defects; no table comes back.
        let report = source
            .cleaning_report()
            .with_context(|| format!("while cleaning in {}", source.describe()))?;
        eprintln!(
            "cleaned {} in the warehouse in {:.2} s{}",
            source.describe(),
            t0.elapsed().as_secs_f64(),
            fetched_note(&source)
        );
        if args.json {
            print_json(&report.to_json())?;
        } else {
            println!("{report}");
        }
        return Ok(());
    }
    let cleaned = source.clean()?;
    eprintln!(
        "cleaned {} in {:.2} s",
        source.describe(),
        t0.elapsed().as_secs_f64()
    );
    if let Some(out) = &args.out {
        write_tables(&cleaned.frames, out)?;
        eprintln!("wrote the cleaned tables to {}", out.display());
    }
    if args.json {
        print_json(&cleaned.report.to_json())?;
    } else {
        println!("{}", cleaned.report);
    }
    Ok(())
}

/// `; fetched …` for a warehouse source (what its queries brought back).
fn fetched_note(source: &analytics_lib::source::Source) -> String {
    source
        .fetched()
        .map(|f| format!("; fetched {f}"))
        .unwrap_or_default()
}

/// [`Source::prepare`] on a Parquet folder, saying how many defective rows
/// final cleaning removed.
fn prepare(data: &Path) -> Result<analytics_lib::source::Prepared> {
    let prepared = analytics_lib::source::Source::parquet(data).prepare()?;
    if prepared.defects_removed() > 0 {
        eprintln!(
            "final cleaning removed {} defective rows (run `analytics clean` for the report)",
            prepared.defects_removed()
        );
    }
    Ok(prepared)
}

fn run_kpis(args: KpiArgs) -> Result<()> {
    use analytics_lib::kpi::{self, Dimension, Filter, KpiOptions};
    use analytics_lib::locale;
    let filter = Filter {
        from: args.from,
        to: args.to,
        categories: args.categories,
        states: args.states,
        channels: args.channels,
        customers: None,
    };
    let opts = KpiOptions {
        as_of: args.as_of,
        churn_window_days: args.churn_window,
    };
    let source = args.input.source()?;
    let dir = match &source {
        analytics_lib::source::Source::Parquet(p) => p.dir.clone(),
        #[allow(unreachable_patterns)]
        _ => {
            // Push-down: the warehouse computes the KPIs; only they come back.
            let k = source
                .kpis(&filter, &opts)
                .with_context(|| format!("while computing the KPIs in {}", source.describe()))?;
            if args.json {
                return print_json(&serde_json::to_value(&k)?);
            }
            eprintln!("computed in the warehouse{}", fetched_note(&source));
            println!(
                "KPIs as of {} ({})",
                locale::date(k.as_of),
                source.describe()
            );
            println!("  revenue (receita)            {}", locale::brl(k.revenue));
            println!(
                "  orders (pedidos)             {}",
                locale::number(k.orders as f64, 0)
            );
            for (m, v) in &k.monthly_revenue {
                println!("  {:<8} {:>20}", locale::month(m), locale::brl(*v));
            }
            return Ok(());
        }
    };
    let sales = prepare(&dir)?.sales;
    let k = kpi::kpis(&sales, &filter, &opts).context("while computing the KPIs")?;
    if args.json {
        return print_json(&serde_json::to_value(&k)?);
    }
    let opt_pct = |x: Option<f64>| x.map(locale::percent).unwrap_or_else(|| "—".into());
    println!("KPIs as of {}", locale::date(k.as_of));
    println!("  revenue (receita)            {}", locale::brl(k.revenue));
    println!(
        "  orders (pedidos)             {}",
        locale::number(k.orders as f64, 0)
    );
    println!(
        "  average ticket (ticket médio) {}",
        k.average_ticket
            .map(locale::brl)
            .unwrap_or_else(|| "—".into())
    );
    println!(
        "  active customers             {}",
        locale::number(k.active_customers as f64, 0)
    );
    println!(
        "  churn rate ({} d)             {}",
        k.churn_window_days,
        opt_pct(k.churn_rate_90d)
    );
    println!(
        "  repeat purchase rate         {}",
        opt_pct(k.repeat_purchase_rate)
    );
    if let Some(p) = kpi::pareto_share(&sales, &filter, 0.2)? {
        println!("  revenue from top 20% buyers  {}", locale::percent(p));
    }
    println!();
    println!("Monthly revenue");
    for (m, v) in &k.monthly_revenue {
        println!("  {:<8} {:>20}", locale::month(m), locale::brl(*v));
    }
    for (title, dim) in [
        ("category", Dimension::Category),
        ("state", Dimension::State),
        ("channel", Dimension::Channel),
    ] {
        let b = kpi::breakdown(&sales, &filter, dim)?;
        println!();
        println!("Revenue by {title}");
        let names = b.column(dim.column())?.str()?.clone();
        let rev = b.column("revenue")?.f64()?.clone();
        let share = b.column("revenue_share")?.f64()?.clone();
        for ((n, r), sh) in names.iter().zip(rev.iter()).zip(share.iter()) {
            println!(
                "  {:<20} {:>20} {:>7}",
                n.unwrap_or("(unknown)"),
                locale::brl(r.unwrap_or(0.0)),
                locale::percent(sh.unwrap_or(0.0))
            );
        }
    }
    Ok(())
}

fn run_train(args: TrainArgs) -> Result<()> {
    use analytics_lib::retrain::{TrainJobOptions, params::PipelineParams, train_job};
    let params = PipelineParams::load_or_default(args.params.as_deref())?;
    let data = job_data(&args.input)?;
    let done = train_job(&TrainJobOptions {
        data,
        models: args.models.clone(),
        params,
        as_of: args.as_of,
        progress: true,
    })?;
    if done.defects_removed > 0 {
        eprintln!(
            "final cleaning removed {} defective rows (run `analytics clean` for the report)",
            done.defects_removed
        );
    }
    if let Some(f) = &done.fetched {
        eprintln!("pushed down to the warehouse: fetched {f}");
    }
    let report = &done.spend;
    let seg = &done.segments.segmentation.model;
    eprintln!(
        "trained at cutoff {} (test cutoff {}); best on validation: {}; customer_spend {} is live ({})",
        analytics_lib::locale::date(report.train_cutoff),
        analytics_lib::locale::date(report.test_cutoff),
        report.best.name(),
        done.spend_version.id,
        done.spend_version.dir.display()
    );
    eprintln!(
        "segments {} is live: k = {}, silhouette {} ({})",
        done.segments_version.id,
        seg.k(),
        seg.meta
            .silhouette
            .map(|s| analytics_lib::locale::number(s, 3))
            .unwrap_or_else(|| "—".into()),
        seg.names().join(", ")
    );
    eprintln!("selection: {}", report.selection);
    match (&report.clv, &report.clv_error) {
        (Some(m), _) => eprintln!(
            "clv: BG/NBD and Gamma-Gamma fitted on {} customers ({} repeat) in {:.2} s; saved with customer_spend {}",
            m.customers, m.repeat_customers, m.fit_seconds, done.spend_version.id
        ),
        (None, Some(e)) => eprintln!("clv: no CLV model in this version: {e}"),
        (None, None) => {}
    }
    let metrics = report.test_metrics();
    let coverage =
        |k: &str, f: fn(&analytics_lib::models::Coverage) -> f64| report.coverage.get(k).map(f);
    if args.json {
        let out: serde_json::Map<String, serde_json::Value> = metrics
            .iter()
            .map(|(k, m)| {
                (
                    k.clone(),
                    serde_json::json!({
                        "rmse": m.rmse, "mae": m.mae, "r2": m.r2,
                        "coverage_80": coverage(k, |c| c.coverage_80),
                        "coverage_95": coverage(k, |c| c.coverage_95),
                    }),
                )
            })
            .collect();
        return print_json(&serde_json::Value::Object(out));
    }
    println!(
        "Out-of-time test at cutoff {} ({} customers); intervals calibrated on the validation cutoff",
        analytics_lib::locale::date(report.test_cutoff),
        report.rows.test
    );
    println!(
        "{:<16} {:>14} {:>14} {:>8} {:>9} {:>9}",
        "model", "RMSE (R$)", "MAE (R$)", "R²", "cov. 80%", "cov. 95%"
    );
    let pct = |v: Option<f64>| {
        v.map(analytics_lib::locale::percent)
            .unwrap_or_else(|| "—".into())
    };
    for (k, m) in &metrics {
        println!(
            "{:<16} {:>14} {:>14} {:>8} {:>9} {:>9}",
            k,
            analytics_lib::locale::number(m.rmse, 2),
            analytics_lib::locale::number(m.mae, 2),
            analytics_lib::locale::number(m.r2, 3),
            pct(coverage(k, |c| c.coverage_80)),
            pct(coverage(k, |c| c.coverage_95))
        );
    }
    println!("{}", report.selection);
    Ok(())
}

/// The jobs' data: `--data DIR` (Parquet), else the configured source.
fn job_data(input: &InputFlags) -> Result<analytics_lib::retrain::JobData> {
    Ok(analytics_lib::retrain::JobData::new(input.source()?))
}

fn run_evaluate(args: EvaluateArgs) -> Result<()> {
    use analytics_lib::locale;
    let data = job_data(&args.input)?;
    let label = data.label();
    let ev = analytics_lib::retrain::evaluate_live(data, &args.models, args.as_of)?;
    if let Some(f) = &ev.fetched {
        eprintln!("fetched {f} from {label}");
    }
    if args.json {
        let mut out = serde_json::json!({
            "customer_spend": ev.customer_spend,
            "segments": ev.segments,
        });
        if let Some(f) = &ev.fetched {
            out["fetched"] = serde_json::to_value(f)?;
        }
        return print_json(&out);
    }
    println!(
        "Live models on {} (as of {})",
        label,
        locale::date(ev.as_of)
    );
    match &ev.customer_spend {
        Some(m) => println!(
            "  customer_spend {} ({}): RMSE R$ {}, MAE R$ {}, R² {} on {} customers",
            m["version"].as_str().unwrap_or("?"),
            m["model"].as_str().unwrap_or("?"),
            locale::number(m["rmse"].as_f64().unwrap_or(f64::NAN), 2),
            locale::number(m["mae"].as_f64().unwrap_or(f64::NAN), 2),
            locale::number(m["r2"].as_f64().unwrap_or(f64::NAN), 3),
            m["n"]
        ),
        None => println!("  customer_spend: no live version"),
    }
    match &ev.segments {
        Some(m) => println!(
            "  segments {}: k = {}, silhouette {} on {} of {} customers",
            m["version"].as_str().unwrap_or("?"),
            m["k"],
            locale::number(m["silhouette"].as_f64().unwrap_or(f64::NAN), 3),
            m["sample_rows"],
            m["customers"]
        ),
        None => println!("  segments: no live version"),
    }
    Ok(())
}

fn run_retrain(args: RetrainArgs) -> Result<()> {
    use analytics_lib::retrain::{RetrainOptions, params::PipelineParams, retrain};
    let mut opts = RetrainOptions::new(job_data(&args.input)?, &args.models);
    opts.params = PipelineParams::load_or_default(args.params.as_deref())?;
    opts.as_of = args.as_of;
    opts.tolerance = args.tolerance;
    opts.keep = args.keep;
    opts.min_rows = args.min_rows;
    opts.report_dir = args.report_dir;
    opts.progress = true;
    opts.force = args.force;
    let out = retrain(&opts)?;
    eprintln!("{}", out.report.to_text());
    eprintln!(
        "report written to {} and {}",
        out.json_path.display(),
        out.text_path.display()
    );
    if let Some(url) = &out.tracking_url {
        eprintln!("MLflow run: {url}");
    }
    if args.json {
        print_json(&serde_json::to_value(&out.report)?)?;
    }
    Ok(())
}

fn run_clv(args: ClvArgs) -> Result<()> {
    use analytics_lib::clv::{ClvParams, CustomerSummary};
    use analytics_lib::locale;
    let params = ClvParams::new()
        .horizon_days(args.horizon_days)
        .discount_rate(args.discount_rate);
    params.check()?;
    let source = args.input.source()?;
    let t0 = Instant::now();
    let prepared = source
        .prepare()
        .with_context(|| format!("while preparing {}", source.describe()))?;
    if prepared.defects_removed() > 0 {
        eprintln!(
            "final cleaning removed {} defective rows (run `analytics clean` for the report)",
            prepared.defects_removed()
        );
    }
    let prepare_s = t0.elapsed().as_secs_f64();
    let sales = prepared.sales;
    let as_of = args.as_of.unwrap_or(sales.default_as_of);
    let t1 = Instant::now();
    let summary = CustomerSummary::compute(&sales, as_of)
        .context("while summarising the customers' purchases")?;
    let summary_s = t1.elapsed().as_secs_f64();
    let model = params
        .fit(&summary)
        .context("while fitting BG/NBD and Gamma-Gamma")?;
    let t2 = Instant::now();
    let predictions = model
        .predict(&summary)
        .context("while predicting every customer's CLV")?;
    let predict_s = t2.elapsed().as_secs_f64();
    eprintln!(
        "clv on {} customers ({} repeat) as of {}: prepare {:.2} s, summary {:.3} s, fit {:.3} s, predict {:.3} s",
        summary.len(),
        summary.repeat_customers(),
        locale::date(as_of),
        prepare_s,
        summary_s,
        model.fit_seconds,
        predict_s
    );
    if let Some(out) = &args.out {
        let df = model.frame(&summary, &predictions)?;
        analytics_lib::data::writer::write_parquet(&df, out, "clv")
            .with_context(|| format!("while writing {}", out.display()))?;
        eprintln!("wrote {} customers to {}", summary.len(), out.display());
    }
    if args.json {
        return print_json(&model.report_json(&predictions));
    }
    let b = &model.bgnbd;
    let g = &model.gamma_gamma;
    println!(
        "Customer lifetime value as of {} over {} days (monthly discount {})",
        locale::date(as_of),
        args.horizon_days,
        locale::percent(args.discount_rate)
    );
    println!(
        "  customers {} ({} with a repeat purchase day)",
        locale::number(summary.len() as f64, 0),
        locale::number(summary.repeat_customers() as f64, 0)
    );
    println!(
        "  BG/NBD       r = {}, alpha = {} days, a = {}, b = {} (log-likelihood {})",
        locale::number(b.r, 4),
        locale::number(b.alpha, 2),
        locale::number(b.a, 4),
        locale::number(b.b, 4),
        locale::number(b.log_likelihood, 1)
    );
    println!(
        "  Gamma-Gamma  p = {}, q = {}, v = {} (mean spend per purchase day {})",
        locale::number(g.p, 4),
        locale::number(g.q, 4),
        locale::number(g.v, 2),
        locale::brl(g.population_mean())
    );
    println!(
        "  mean P(alive) {}, mean expected purchase days {}",
        locale::percent(predictions.mean_p_alive()),
        locale::number(predictions.mean_expected_purchases(), 3)
    );
    println!("  total CLV {}", locale::brl(predictions.total_clv()));
    Ok(())
}

fn write_tables(frames: &loader::CuratedFrames, out: &Path) -> Result<()> {
    analytics_lib::data::write_tables(frames, out)
        .with_context(|| format!("while writing the cleaned tables to {}", out.display()))
}

fn run_import(source: ImportSource) -> Result<()> {
    use analytics_lib::data::import;
    let (report, json) = match source {
        ImportSource::Olist { dir, out, json } => (
            import::import_olist(&dir, &out)
                .with_context(|| format!("while importing Olist from {}", dir.display()))?,
            json,
        ),
        ImportSource::OnlineRetail { file, out, json } => (
            import::import_online_retail(&file, &out).with_context(|| {
                format!("while importing Online Retail from {}", file.display())
            })?,
            json,
        ),
    };
    eprintln!(
        "imported {}: {} customers, {} products, {} orders, {} order lines to {} in {:.2} s ({} rows set aside)",
        report.dataset,
        report.written("customers"),
        report.written("products"),
        report.written("orders"),
        report.written("order_items"),
        report.out.display(),
        report.seconds,
        report.total_set_aside()
    );
    if json {
        print_json(&report.to_json())
    } else {
        println!("{report}");
        Ok(())
    }
}
