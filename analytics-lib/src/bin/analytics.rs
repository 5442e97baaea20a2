//! `analytics`: the command line of the sales analytics platform.
//!
//! Machine output (JSON) goes to stdout only with `--json`; progress and logs
//! go to stderr. Bad input exits non-zero with a one-paragraph message.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use analytics_lib::clean;
use analytics_lib::data::generate::{GeneratorConfig, generate};
use analytics_lib::data::loader;
use anyhow::{Context, Result};
use chrono::NaiveDate;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "analytics",
    version,
    about = "Sales analytics and machine learning on curated e-commerce data",
    long_about = "Sales analytics and machine learning on curated e-commerce data.\n\n\
                  Reads the four curated tables (customers, products, orders, order_items) \
                  from a Parquet folder, cleans them, computes KPIs and trains models. \
                  JSON goes to stdout only with --json; progress and logs go to stderr."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write realistic Brazilian e-commerce sales as the four curated Parquet tables.
    Generate(GenerateArgs),
    /// Validate and clean the curated tables; print the cleaning report.
    Clean(CleanArgs),
    /// The contract's KPIs (revenue, orders, ticket médio, churn, repeat rate, monthly revenue).
    Kpis(KpiArgs),
    /// Fit, evaluate (out of time) and save the customer-spend models.
    Train(TrainArgs),
    /// The pipeline benchmark of shared/spec/benchmark.md: seconds per stage, metrics, peak memory.
    Bench(BenchArgs),
    /// Import a public sales dataset (Olist, UCI Online Retail) as the four curated tables.
    #[command(subcommand)]
    Import(ImportSource),
}

#[derive(Subcommand)]
enum ImportSource {
    /// Olist Brazilian e-commerce (Kaggle): the folder holding its CSV files.
    Olist {
        /// Folder with olist_orders_dataset.csv, olist_order_items_dataset.csv, … (Kaggle names).
        dir: PathBuf,
        /// Output folder for the curated Parquet tables (written all-or-nothing).
        #[arg(long)]
        out: PathBuf,
        /// Print the import report as JSON to stdout.
        #[arg(long)]
        json: bool,
    },
    /// UCI Online Retail I or II, exported as one CSV file.
    OnlineRetail {
        /// The CSV file (header InvoiceNo,… or Invoice,…).
        file: PathBuf,
        /// Output folder for the curated Parquet tables (written all-or-nothing).
        #[arg(long)]
        out: PathBuf,
        /// Print the import report as JSON to stdout.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
struct TrainArgs {
    /// Folder holding the curated Parquet tables.
    #[arg(long)]
    data: PathBuf,
    /// Folder the models are saved to (models/customer_spend/<model>.msgpack).
    #[arg(long)]
    models: PathBuf,
    /// Reference date (YYYY-MM-DD); default: the day after the last order.
    #[arg(long)]
    as_of: Option<NaiveDate>,
    /// Print the test metrics as JSON to stdout.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Folder holding the curated Parquet tables (e.g. from `generate --lines 1M`).
    #[arg(long)]
    data: PathBuf,
    /// Print the figures as JSON to stdout.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct KpiArgs {
    /// Folder holding the curated Parquet tables.
    #[arg(long)]
    data: PathBuf,
    /// Reference date (YYYY-MM-DD); default: the day after the last order.
    #[arg(long)]
    as_of: Option<NaiveDate>,
    /// Churn window in days.
    #[arg(long, default_value_t = 90)]
    churn_window: i64,
    /// First day of the period (YYYY-MM-DD).
    #[arg(long)]
    from: Option<NaiveDate>,
    /// Last day of the period, inclusive (YYYY-MM-DD).
    #[arg(long)]
    to: Option<NaiveDate>,
    /// Only these categories (repeatable or comma-separated).
    #[arg(long = "category", value_delimiter = ',')]
    categories: Vec<String>,
    /// Only customers of these states (UF codes, e.g. SP).
    #[arg(long = "state", value_delimiter = ',')]
    states: Vec<String>,
    /// Only these channels (web, app, store).
    #[arg(long = "channel", value_delimiter = ',')]
    channels: Vec<String>,
    /// Print the KPIs as JSON to stdout.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct GenerateArgs {
    /// Number of order lines to write (suffixes k and M accepted: 100k, 1M).
    #[arg(long, value_parser = parse_count)]
    lines: u64,
    /// Random seed: the same seed gives byte-identical tables.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Output folder (created if missing; existing tables are replaced only when complete).
    #[arg(long)]
    out: PathBuf,
    /// Share of rows given a cleaning defect (0 = perfectly clean data).
    #[arg(long, default_value_t = 0.01)]
    defect_rate: f64,
    /// First day of the sales window (YYYY-MM-DD).
    #[arg(long, default_value = "2023-01-01")]
    start: NaiveDate,
    /// Last day of the sales window, inclusive (YYYY-MM-DD).
    #[arg(long, default_value = "2025-12-31")]
    end: NaiveDate,
    /// Print a JSON summary of what was written to stdout.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct CleanArgs {
    /// Folder holding the curated Parquet tables.
    #[arg(long)]
    data: PathBuf,
    /// Also write the cleaned tables as Parquet to this folder.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the report as JSON to stdout.
    #[arg(long)]
    json: bool,
}

/// Parse `1000`, `100k`, `1M`, `1_000_000`.
fn parse_count(s: &str) -> Result<u64, String> {
    let t = s.trim().replace('_', "");
    let (num, mult) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1_000u64),
        Some('m' | 'M') => (&t[..t.len() - 1], 1_000_000u64),
        _ => (t.as_str(), 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            format!("expected a positive whole number such as 5000, 100k or 1M; found `{s}`")
        })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Generate(args) => run_generate(args),
        Command::Clean(args) => run_clean(args),
        Command::Kpis(args) => run_kpis(args),
        Command::Train(args) => run_train(args),
        Command::Bench(args) => run_bench(args),
        Command::Import(source) => run_import(source),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let mut msg = format!("error: {err}");
            for cause in err.chain().skip(1) {
                msg.push_str(&format!(": {cause}"));
            }
            eprintln!("{msg}");
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
    let tables = loader::load(&args.data)
        .and_then(|d| d.collect())
        .with_context(|| {
            format!(
                "while loading the curated tables from {}",
                args.data.display()
            )
        })?;
    let cleaned = clean::clean(&tables).context("while cleaning")?;
    eprintln!(
        "cleaned {} in {:.2} s",
        args.data.display(),
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

/// Load, validate and clean: the first step of every job.
fn load_clean(data: &Path) -> Result<clean::Cleaned> {
    let tables = loader::load(data)
        .and_then(|d| d.collect())
        .with_context(|| format!("while loading the curated tables from {}", data.display()))?;
    let cleaned = clean::clean(&tables).context("while cleaning")?;
    let r = &cleaned.report;
    if r.total_defects() > 0 {
        eprintln!(
            "final cleaning removed {} defective rows (run `analytics clean` for the report)",
            r.total_defects()
        );
    }
    Ok(cleaned)
}

fn run_kpis(args: KpiArgs) -> Result<()> {
    use analytics_lib::kpi::{self, Dimension, Filter, KpiOptions};
    use analytics_lib::locale;
    let cleaned = load_clean(&args.data)?;
    let sales =
        kpi::Sales::from_frames(&cleaned.frames).context("while preparing the sales lines")?;
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
    use analytics_lib::models::{TrainParams, train_all};
    let cleaned = load_clean(&args.data)?;
    let sales = analytics_lib::kpi::Sales::from_frames(&cleaned.frames)
        .context("while preparing the sales lines")?;
    let report = train_all(&sales, args.as_of, &TrainParams::default())
        .context("while training the models")?;
    let dir = args.models.join("customer_spend");
    std::fs::create_dir_all(&dir).with_context(|| format!("while creating {}", dir.display()))?;
    for m in &report.models {
        let path = dir.join(format!("{}.msgpack", m.kind().name()));
        m.save(&path)
            .with_context(|| format!("while saving {}", path.display()))?;
        let meta = dir.join(format!("{}.json", m.kind().name()));
        std::fs::write(&meta, serde_json::to_string_pretty(&m.meta)?)
            .with_context(|| format!("while writing {}", meta.display()))?;
    }
    let best = serde_json::json!({
        "best": report.best.name(),
        "chosen_on": "validation",
        "as_of": report.as_of,
        "train_cutoff": report.train_cutoff,
        "test_cutoff": report.test_cutoff,
        "data_fingerprint": report.data_fingerprint,
    });
    std::fs::write(dir.join("best.json"), serde_json::to_string_pretty(&best)?)?;
    eprintln!(
        "trained at cutoff {} (test cutoff {}); saved {} models to {}; best on validation: {}",
        analytics_lib::locale::date(report.train_cutoff),
        analytics_lib::locale::date(report.test_cutoff),
        report.models.len(),
        dir.display(),
        report.best.name()
    );
    let metrics = report.test_metrics();
    if args.json {
        let out: serde_json::Map<String, serde_json::Value> = metrics
            .iter()
            .map(|(k, m)| {
                (
                    k.clone(),
                    serde_json::json!({"rmse": m.rmse, "mae": m.mae, "r2": m.r2}),
                )
            })
            .collect();
        return print_json(&serde_json::Value::Object(out));
    }
    println!(
        "Out-of-time test at cutoff {} ({} customers)",
        analytics_lib::locale::date(report.test_cutoff),
        report.rows.test
    );
    println!(
        "{:<16} {:>14} {:>14} {:>8}",
        "model", "RMSE (R$)", "MAE (R$)", "R²"
    );
    for (k, m) in &metrics {
        println!(
            "{:<16} {:>14} {:>14} {:>8}",
            k,
            analytics_lib::locale::number(m.rmse, 2),
            analytics_lib::locale::number(m.mae, 2),
            analytics_lib::locale::number(m.r2, 3)
        );
    }
    Ok(())
}

/// Peak resident memory of this process (VmHWM), in bytes.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn run_bench(args: BenchArgs) -> Result<()> {
    use analytics_lib::kpi::{self, Filter, KpiOptions};
    use analytics_lib::models::{TrainParams, train_all};
    let total = Instant::now();
    let mut seconds = serde_json::Map::new();
    let mut rows = serde_json::Map::new();
    let mut lap = |name: &str, t: Instant| {
        seconds.insert(
            name.to_string(),
            serde_json::json!(t.elapsed().as_secs_f64()),
        );
    };

    let t = Instant::now();
    let tables = loader::load(&args.data)
        .and_then(|d| d.collect())
        .with_context(|| format!("while loading {}", args.data.display()))?;
    let cleaned = clean::clean(&tables).context("while cleaning")?;
    lap("load", t);
    for (name, n) in cleaned.frames.row_counts() {
        rows.insert(name.to_string(), serde_json::json!(n));
    }

    let t = Instant::now();
    let sales = kpi::Sales::from_frames(&cleaned.frames)?;
    let k = kpi::kpis(&sales, &Filter::all(), &KpiOptions::default())?;
    lap("kpis", t);

    // The three models through the same train_all the CLI and the retrain
    // job use. Its stage timings: `features` (all cutoffs), `train_<model>`
    // (the final fit at the training cutoff, scored on the test cutoff) and
    // `select_<model>` (the fit on the validation cutoff, reported apart).
    let report = train_all(&sales, None, &TrainParams::default()).context("while training")?;
    let stage = |key: &str| serde_json::json!(report.seconds.get(key).copied());
    seconds.insert("features".into(), stage("features"));
    for kind in ["linear", "random_forest", "xgboost"] {
        seconds.insert(format!("train_{kind}"), stage(&format!("train_{kind}")));
        seconds.insert(format!("select_{kind}"), stage(&format!("select_{kind}")));
    }
    let mut metrics = serde_json::Map::new();
    for (name, m) in report.test_metrics() {
        metrics.insert(
            name,
            serde_json::json!({"rmse": m.rmse, "mae": m.mae, "r2": m.r2}),
        );
    }
    rows.insert(
        "customers_train".into(),
        serde_json::json!(report.rows.train),
    );
    rows.insert("customers_test".into(), serde_json::json!(report.rows.test));
    // Segmentation: RFM features at as_of, then KMeans k = 5, one init,
    // ≤ 100 iterations on standardised (recency, log1p F, log1p M).
    let t = Instant::now();
    let seg_features = analytics_lib::segments::SegmentFeatures::compute(&sales, None, None)
        .context("while computing the segmentation features")?;
    let km = analytics_lib::segments::kmeans_fixed(
        &seg_features,
        &analytics_lib::segments::FixedKMeans::default(),
    )
    .context("while running KMeans")?;
    seconds.insert(
        "kmeans".into(),
        serde_json::json!(t.elapsed().as_secs_f64()),
    );
    rows.insert("customers_kmeans".into(), serde_json::json!(km.customers));
    seconds.insert(
        "total".into(),
        serde_json::json!(total.elapsed().as_secs_f64()),
    );
    let out = serde_json::json!({
        "rows": rows,
        "seconds": seconds,
        "metrics": metrics,
        "revenue": k.revenue,
        "peak_rss_bytes": peak_rss_bytes(),
    });
    if args.json {
        return print_json(&out);
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
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
