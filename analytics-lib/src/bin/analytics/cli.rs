//! The command line's arguments (clap): every subcommand, its flags and
//! their parsing. `main.rs` runs them.

use std::path::{Path, PathBuf};

use anyhow::Result;
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
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Write realistic Brazilian e-commerce sales as the four curated Parquet tables.
    Generate(GenerateArgs),
    /// Validate and clean the curated tables; print the cleaning report.
    Clean(CleanArgs),
    /// The contract's KPIs (revenue, orders, ticket médio, churn, repeat rate, monthly revenue).
    Kpis(KpiArgs),
    /// Fit, evaluate (out of time) and save every model as a new live registry version.
    Train(TrainArgs),
    /// Score the live models on a data folder's out-of-time test set.
    Evaluate(EvaluateArgs),
    /// The retrain job: drift report, champion vs challenger on the same new data, promotion.
    Retrain(RetrainArgs),
    /// The model registry: list, show, promote, roll back versions.
    #[command(subcommand)]
    Models(ModelsAction),
    /// The pipeline benchmark of shared/spec/benchmark.md: seconds per stage, metrics, peak memory.
    Bench(BenchArgs),
    /// Customer lifetime value: BG/NBD + Gamma-Gamma fitted on the customers' purchase summary.
    Clv(ClvArgs),
    /// Import a public sales dataset (Olist, UCI Online Retail) as the four curated tables.
    #[command(subcommand)]
    Import(ImportSource),
}

#[derive(Subcommand)]
pub(crate) enum ImportSource {
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
pub(crate) struct TrainArgs {
    #[command(flatten)]
    pub(crate) input: InputFlags,
    /// The model registry folder (new versions go to <models>/customer_spend/vNNNN and <models>/segments/vNNNN).
    #[arg(long)]
    pub(crate) models: PathBuf,
    /// YAML parameters: `train:` (TrainParams) and `segments:` (SegmentParams) sections, e.g. params.yaml.
    #[arg(long)]
    pub(crate) params: Option<PathBuf>,
    /// Reference date (YYYY-MM-DD); default: the day after the last order.
    #[arg(long)]
    pub(crate) as_of: Option<NaiveDate>,
    /// Print the test metrics as JSON to stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(clap::Args)]
pub(crate) struct EvaluateArgs {
    #[command(flatten)]
    pub(crate) input: InputFlags,
    /// The model registry folder.
    #[arg(long)]
    pub(crate) models: PathBuf,
    /// Reference date (YYYY-MM-DD); default: the day after the last order.
    #[arg(long)]
    pub(crate) as_of: Option<NaiveDate>,
    /// Print the scores as JSON to stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(clap::Args)]
pub(crate) struct RetrainArgs {
    #[command(flatten)]
    pub(crate) input: InputFlags,
    /// The model registry folder.
    #[arg(long)]
    pub(crate) models: PathBuf,
    /// YAML parameters (`train:` and `segments:` sections), e.g. params.yaml.
    #[arg(long)]
    pub(crate) params: Option<PathBuf>,
    /// Reference date (YYYY-MM-DD); default: the day after the last order.
    #[arg(long)]
    pub(crate) as_of: Option<NaiveDate>,
    /// Relative tolerance: a challenger up to this much worse than the champion is still promoted.
    #[arg(long, default_value_t = analytics_lib::retrain::DEFAULT_TOLERANCE)]
    pub(crate) tolerance: f64,
    /// Versions kept per model (the live one and its history are always kept).
    #[arg(long, default_value_t = analytics_lib::retrain::DEFAULT_KEEP)]
    pub(crate) keep: usize,
    /// Least number of order lines after cleaning; fewer stops the run.
    #[arg(long, default_value_t = analytics_lib::retrain::DEFAULT_MIN_ROWS)]
    pub(crate) min_rows: usize,
    /// Folder of the report files; default <models>/reports.
    #[arg(long)]
    pub(crate) report_dir: Option<PathBuf>,
    /// Train even when the data's fingerprint equals the live versions' (by
    /// default such a run trains nothing and its report says so).
    #[arg(long)]
    pub(crate) force: bool,
    /// Print the report as JSON to stdout (the readable report goes to stderr either way).
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(clap::Args)]
pub(crate) struct ModelsCommon {
    /// The model registry folder.
    #[arg(long)]
    pub(crate) models: PathBuf,
    /// customer_spend or segments (list: both by default; others: customer_spend by default).
    #[arg(long)]
    pub(crate) model: Option<String>,
    /// Print JSON to stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Subcommand)]
pub(crate) enum ModelsAction {
    /// Every version with its creation time, metrics, data fingerprint and status.
    List(ModelsCommon),
    /// One version's manifest (default: the live version).
    Show {
        /// vNNNN or a number; default: the live version.
        version: Option<String>,
        #[command(flatten)]
        common: ModelsCommon,
    },
    /// Make a version live (its files are checked against its manifest first).
    Promote {
        /// vNNNN or a number, e.g. v0003 or 3.
        version: String,
        #[command(flatten)]
        common: ModelsCommon,
    },
    /// Make the previously live version live again.
    Rollback(ModelsCommon),
}

#[derive(clap::Args)]
pub(crate) struct ClvArgs {
    #[command(flatten)]
    pub(crate) input: InputFlags,
    /// Reference date (YYYY-MM-DD): purchases before it are summarised; default: the day after the last order.
    #[arg(long)]
    pub(crate) as_of: Option<NaiveDate>,
    /// Days ahead that the expected purchases and the CLV cover.
    #[arg(long, default_value_t = analytics_lib::clv::DEFAULT_HORIZON_DAYS)]
    pub(crate) horizon_days: u32,
    /// Monthly discount rate of future revenue (a month = 30 days).
    #[arg(long, default_value_t = analytics_lib::clv::DEFAULT_DISCOUNT_RATE)]
    pub(crate) discount_rate: f64,
    /// Write every customer's summary and predictions to this Parquet file (all-or-nothing).
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Print the fitted parameters and totals as JSON to stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(clap::Args)]
pub(crate) struct BenchArgs {
    /// Folder holding the curated Parquet tables (e.g. from `generate --lines 1M`).
    #[arg(long)]
    pub(crate) data: PathBuf,
    /// Print the figures as JSON to stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(clap::Args)]
pub(crate) struct KpiArgs {
    #[command(flatten)]
    pub(crate) input: InputFlags,
    /// Reference date (YYYY-MM-DD); default: the day after the last order.
    #[arg(long)]
    pub(crate) as_of: Option<NaiveDate>,
    /// Churn window in days.
    #[arg(long, default_value_t = 90)]
    pub(crate) churn_window: i64,
    /// First day of the period (YYYY-MM-DD).
    #[arg(long)]
    pub(crate) from: Option<NaiveDate>,
    /// Last day of the period, inclusive (YYYY-MM-DD).
    #[arg(long)]
    pub(crate) to: Option<NaiveDate>,
    /// Only these categories (repeatable or comma-separated).
    #[arg(long = "category", value_delimiter = ',')]
    pub(crate) categories: Vec<String>,
    /// Only customers of these states (UF codes, e.g. SP).
    #[arg(long = "state", value_delimiter = ',')]
    pub(crate) states: Vec<String>,
    /// Only these channels (web, app, store).
    #[arg(long = "channel", value_delimiter = ',')]
    pub(crate) channels: Vec<String>,
    /// Print the KPIs as JSON to stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(clap::Args)]
pub(crate) struct GenerateArgs {
    /// Number of order lines to write (suffixes k and M accepted: 100k, 1M).
    #[arg(long, value_parser = parse_count)]
    pub(crate) lines: u64,
    /// Random seed: the same seed gives byte-identical tables.
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// Output folder (created if missing; existing tables are replaced only when complete).
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Share of rows given a cleaning defect (0 = perfectly clean data).
    #[arg(long, default_value_t = 0.01)]
    pub(crate) defect_rate: f64,
    /// First day of the sales window (YYYY-MM-DD).
    #[arg(long, default_value = "2023-01-01")]
    pub(crate) start: NaiveDate,
    /// Last day of the sales window, inclusive (YYYY-MM-DD).
    #[arg(long, default_value = "2025-12-31")]
    pub(crate) end: NaiveDate,
    /// Print a JSON summary of what was written to stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(clap::Args)]
pub(crate) struct CleanArgs {
    #[command(flatten)]
    pub(crate) input: InputFlags,
    /// Also write the cleaned tables as Parquet to this folder.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Print the report as JSON to stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Parse `1000`, `100k`, `1M`, `1_000_000`.
/// Where a job's curated data comes from: `--data DIR`, else the
/// configured source.
#[derive(Clone, Debug, Default, clap::Args)]
pub(crate) struct InputFlags {
    /// Folder holding the curated Parquet tables [default: the configured
    /// source, see --source; Parquet at data/curated]; on Snowflake the KPIs
    /// are computed in the warehouse.
    #[arg(long)]
    pub(crate) data: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) source: SourceFlags,
}

impl InputFlags {
    pub(crate) fn source(&self) -> Result<analytics_lib::source::Source> {
        self.source.source(self.data.as_deref())
    }
}

/// The flags that choose the source. The `APP_*` variables are read by the
/// library (`SourceSettings::from_env`); a flag given here wins over them.
#[derive(Clone, Default, clap::Args)]
pub(crate) struct SourceFlags {
    /// Where the curated tables come from when --data is not given:
    /// parquet (data/curated) or snowflake [env: APP_SOURCE]
    #[arg(long = "source", value_parser = parse_source_kind)]
    pub(crate) source: Option<analytics_lib::source::SourceKind>,
    /// Snowflake account identifier, e.g. myorg-myaccount [env: APP_SNOWFLAKE_ACCOUNT]
    #[arg(long = "snowflake-account")]
    pub(crate) account: Option<String>,
    /// Snowflake user [env: APP_SNOWFLAKE_USER]
    #[arg(long = "snowflake-user")]
    pub(crate) user: Option<String>,
    /// Snowflake password; prefer the variable to the flag [env: APP_SNOWFLAKE_PASSWORD]
    #[arg(long = "snowflake-password")]
    pub(crate) password: Option<analytics_lib::source::Secret>,
    /// PEM file of the private key, for key-pair authentication instead of
    /// a password [env: APP_SNOWFLAKE_PRIVATE_KEY_PATH]
    #[arg(long = "snowflake-private-key-path")]
    pub(crate) private_key_path: Option<PathBuf>,
    /// Snowflake warehouse [env: APP_SNOWFLAKE_WAREHOUSE]
    #[arg(long = "snowflake-warehouse")]
    pub(crate) warehouse: Option<String>,
    /// Snowflake database holding the curated schema [env: APP_SNOWFLAKE_DATABASE]
    #[arg(long = "snowflake-database")]
    pub(crate) database: Option<String>,
    /// Snowflake schema holding the four curated tables [env: APP_SNOWFLAKE_SCHEMA]
    #[arg(long = "snowflake-schema")]
    pub(crate) schema: Option<String>,
    /// Snowflake role [env: APP_SNOWFLAKE_ROLE]
    #[arg(long = "snowflake-role")]
    pub(crate) role: Option<String>,
}

impl std::fmt::Debug for SourceFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceFlags")
            .field("source", &self.source)
            .field("snowflake", &self.snowflake())
            .finish()
    }
}

pub(crate) fn parse_source_kind(s: &str) -> Result<analytics_lib::source::SourceKind, String> {
    s.parse()
        .map_err(|e: analytics_lib::source::SourceError| e.to_string())
}

impl SourceFlags {
    pub(crate) fn snowflake(&self) -> analytics_lib::source::SnowflakeSettings {
        analytics_lib::source::SnowflakeSettings {
            account: self.account.clone(),
            user: self.user.clone(),
            password: self.password.clone(),
            private_key_path: self.private_key_path.clone(),
            warehouse: self.warehouse.clone(),
            database: self.database.clone(),
            schema: self.schema.clone(),
            role: self.role.clone(),
        }
    }

    /// `--data DIR` when given; else the environment's settings under these flags.
    pub(crate) fn source(&self, data: Option<&Path>) -> Result<analytics_lib::source::Source> {
        let settings = analytics_lib::source::SourceSettings::from_env()?
            .overlay(self.source, self.snowflake());
        Ok(analytics_lib::source::Source::from_settings(
            &settings, data,
        )?)
    }
}

pub(crate) fn parse_count(s: &str) -> Result<u64, String> {
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
