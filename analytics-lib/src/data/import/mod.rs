//! Importers: public sales datasets turned into the four curated tables.
//!
//! * [`olist`]: the Brazilian e-commerce dataset of Olist (Kaggle, nine CSV
//!   files in one folder, of which seven are read);
//! * [`online_retail`]: the UCI Online Retail datasets (I and II), exported as
//!   one CSV file.
//!
//! Each importer reads the source files as text, maps every row it can to the
//! contract (`shared/spec/data-contract.md`) by rules written down in its
//! module documentation, and writes the tables with
//! [`write_tables`](crate::data::write_tables) (all-or-nothing). Rows it
//! cannot map are never dropped silently: the [`ImportReport`] counts them by
//! reason, next to the decision taken, and counts the rows written under each
//! notable mapping rule (e.g. how many Olist orders of each status became
//! `completed`). The output is meant to pass final cleaning with no defect.
//!
//! Bad input — a missing file, a missing column, a value that cannot be read
//! as the number or date the layout promises — is an [`ImportError`] that
//! names the file, the column, the row, what was expected and what was
//! found. Nothing is written then.

pub mod olist;
pub mod online_retail;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;
use polars::prelude::*;
use serde::Serialize;

use crate::error::DataError;

pub use olist::{import_olist, read_olist};
pub use online_retail::{import_online_retail, read_online_retail};

/// The category given to products whose source has none.
pub const NO_CATEGORY: &str = "sem_categoria";

/// An error that stops an import. Nothing is written when one occurs.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}: file not found: expected the {dataset} file `{file}`; found {found}")]
    MissingFile {
        path: PathBuf,
        dataset: &'static str,
        file: String,
        found: String,
    },

    #[error("{path}: cannot read the file: expected {expected}; found {found}")]
    Unreadable {
        path: PathBuf,
        expected: String,
        found: String,
    },

    #[error(
        "{path}: required column `{column}` is missing: expected {expected}; found columns [{found}]"
    )]
    MissingColumn {
        path: PathBuf,
        column: String,
        expected: String,
        found: String,
    },

    #[error("{path}: data row {row}, column `{column}`: expected {expected}; found {found}")]
    BadValue {
        path: PathBuf,
        /// 1-based data row (the header is row 0).
        row: usize,
        column: String,
        expected: &'static str,
        found: String,
    },

    #[error(
        "{path}: no rows could be mapped to the contract: expected at least one order line; found {found}"
    )]
    NothingToWrite { path: PathBuf, found: String },

    #[error("while {action}: {source}")]
    Polars {
        action: &'static str,
        #[source]
        source: PolarsError,
    },

    #[error("while writing the curated tables to {out}: {source}")]
    Write {
        out: PathBuf,
        #[source]
        source: DataError,
    },
}

pub type Result<T, E = ImportError> = std::result::Result<T, E>;

fn polars_err(action: &'static str) -> impl FnOnce(PolarsError) -> ImportError {
    move |source| ImportError::Polars { action, source }
}

// ---------------------------------------------------------------------------
// The report.

/// Rows read from one source file.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FileRows {
    pub file: String,
    pub rows: u64,
}

/// Rows handled by one rule: written under a mapping rule, or set aside.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RuleCount {
    /// Stable name of the rule, e.g. `orders_unknown_customer`.
    pub kind: &'static str,
    /// The source file (or the curated table) whose rows are counted.
    pub file: &'static str,
    pub rows: u64,
    /// What was done with these rows.
    pub decision: &'static str,
}

/// What an import read, wrote and could not map. Every rule is listed,
/// applied or not, so that two reports compare line by line.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportReport {
    /// `olist` or `online-retail`.
    pub dataset: &'static str,
    pub input: PathBuf,
    /// The output folder (empty until written).
    pub out: PathBuf,
    pub read: Vec<FileRows>,
    /// Rows written per curated table, in contract order.
    pub written: Vec<(&'static str, u64)>,
    /// Rows written under a documented mapping rule.
    pub mapped: Vec<RuleCount>,
    /// Rows not written, by reason; a row is counted once, under the first
    /// rule it breaks.
    pub set_aside: Vec<RuleCount>,
    /// Seconds spent reading, mapping and writing.
    pub seconds: f64,
}

impl ImportReport {
    /// Rows read from a source file (0 when not read).
    pub fn read(&self, file: &str) -> u64 {
        self.read
            .iter()
            .find(|f| f.file == file)
            .map_or(0, |f| f.rows)
    }

    /// Rows written to a curated table.
    pub fn written(&self, table: &str) -> u64 {
        self.written
            .iter()
            .find(|(t, _)| *t == table)
            .map_or(0, |(_, n)| *n)
    }

    /// Rows set aside under a reason (0 when none or unknown).
    pub fn set_aside(&self, kind: &str) -> u64 {
        find_count(&self.set_aside, kind)
    }

    /// Rows written under a mapping rule (0 when none or unknown).
    pub fn mapped(&self, kind: &str) -> u64 {
        find_count(&self.mapped, kind)
    }

    /// All rows set aside.
    pub fn total_set_aside(&self) -> u64 {
        self.set_aside.iter().map(|r| r.rows).sum()
    }

    /// The report as JSON: `{"dataset", "input", "out", "seconds",
    /// "rows_read": {file: n}, "rows_written": {table: n},
    /// "mapped": {kind: {"file", "rows", "decision"}}, "set_aside": {…},
    /// "total_set_aside"}`.
    pub fn to_json(&self) -> serde_json::Value {
        let rules = |list: &[RuleCount]| -> serde_json::Value {
            let m: serde_json::Map<String, serde_json::Value> = list
                .iter()
                .map(|r| {
                    (
                        r.kind.to_string(),
                        serde_json::json!({"file": r.file, "rows": r.rows, "decision": r.decision}),
                    )
                })
                .collect();
            serde_json::Value::Object(m)
        };
        let read: serde_json::Map<String, serde_json::Value> = self
            .read
            .iter()
            .map(|f| (f.file.clone(), serde_json::Value::from(f.rows)))
            .collect();
        let written: serde_json::Map<String, serde_json::Value> = self
            .written
            .iter()
            .map(|(t, n)| (t.to_string(), serde_json::Value::from(*n)))
            .collect();
        serde_json::json!({
            "dataset": self.dataset,
            "input": self.input.display().to_string(),
            "out": self.out.display().to_string(),
            "seconds": self.seconds,
            "rows_read": read,
            "rows_written": written,
            "mapped": rules(&self.mapped),
            "set_aside": rules(&self.set_aside),
            "total_set_aside": self.total_set_aside(),
        })
    }
}

fn find_count(list: &[RuleCount], kind: &str) -> u64 {
    list.iter().find(|r| r.kind == kind).map_or(0, |r| r.rows)
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Import report: {} from {}",
            self.dataset,
            self.input.display()
        )?;
        if !self.out.as_os_str().is_empty() {
            writeln!(
                f,
                "written to {} in {:.2} s",
                self.out.display(),
                self.seconds
            )?;
        }
        writeln!(f)?;
        writeln!(f, "{:<44} {:>10}", "rows read", "")?;
        for r in &self.read {
            writeln!(f, "  {:<42} {:>10}", r.file, r.rows)?;
        }
        writeln!(f, "{:<44} {:>10}", "rows written", "")?;
        for (t, n) in &self.written {
            writeln!(f, "  {:<42} {:>10}", t, n)?;
        }
        for (title, list) in [
            ("mapped by rule", &self.mapped),
            ("set aside", &self.set_aside),
        ] {
            writeln!(f)?;
            writeln!(f, "{:<36} {:<34} {:>8}  decision", title, "file", "rows")?;
            for r in list {
                writeln!(
                    f,
                    "  {:<34} {:<34} {:>8}  {}",
                    r.kind, r.file, r.rows, r.decision
                )?;
            }
        }
        write!(
            f,
            "  {:<34} {:<34} {:>8}",
            "total set aside",
            "",
            self.total_set_aside()
        )
    }
}

/// A declared rule: its name, the file whose rows it counts, the decision.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rule {
    pub kind: &'static str,
    pub file: &'static str,
    pub decision: &'static str,
}

pub(crate) const fn rule(kind: &'static str, file: &'static str, decision: &'static str) -> Rule {
    Rule {
        kind,
        file,
        decision,
    }
}

/// Counters for a fixed list of rules, reported in declaration order.
pub(crate) struct Tally {
    rules: &'static [Rule],
    counts: BTreeMap<&'static str, u64>,
}

impl Tally {
    pub fn new(rules: &'static [Rule]) -> Self {
        Tally {
            rules,
            counts: BTreeMap::new(),
        }
    }

    /// Count `n` rows under `kind` (which must be one of the declared rules;
    /// checked by the tests, which compare the whole list).
    pub fn add(&mut self, kind: &'static str, n: u64) {
        debug_assert!(
            self.rules.iter().any(|r| r.kind == kind),
            "undeclared rule {kind}"
        );
        *self.counts.entry(kind).or_default() += n;
    }

    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    pub fn finish(self) -> Vec<RuleCount> {
        self.rules
            .iter()
            .map(|r| RuleCount {
                kind: r.kind,
                file: r.file,
                rows: self.counts.get(r.kind).copied().unwrap_or(0),
                decision: r.decision,
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Reading the source files.

/// One source CSV file, read entirely as text.
pub(crate) struct SourceFile {
    pub path: PathBuf,
    pub df: DataFrame,
}

/// Read a CSV file with a header, every column as text (no inference: ids
/// like `01037` keep their zeros). Bytes that are not UTF-8 (the Kaggle
/// export of Online Retail is Latin-1) are replaced, not fatal.
pub(crate) fn read_csv(path: &Path, dataset: &'static str) -> Result<SourceFile> {
    check_file(path, dataset)?;
    read_csv_unchecked(path)
}

/// Fail unless `path` is a file, listing what its folder holds instead.
pub(crate) fn check_file(path: &Path, dataset: &'static str) -> Result<()> {
    if !path.is_file() {
        let dir = path.parent().unwrap_or(Path::new("."));
        let found = match std::fs::read_dir(dir) {
            Ok(entries) => {
                let mut names: Vec<String> = entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                const SHOWN: usize = 12;
                let more = names.len().saturating_sub(SHOWN);
                names.truncate(SHOWN);
                if names.is_empty() {
                    "an empty folder".to_string()
                } else if more > 0 {
                    format!("[{}, … {more} more] in {}", names.join(", "), dir.display())
                } else {
                    format!("[{}] in {}", names.join(", "), dir.display())
                }
            }
            Err(e) => format!("no readable folder {} ({e})", dir.display()),
        };
        return Err(ImportError::MissingFile {
            path: path.to_path_buf(),
            dataset,
            file: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            found,
        });
    }
    Ok(())
}

fn read_csv_unchecked(path: &Path) -> Result<SourceFile> {
    let unreadable = |found: String| ImportError::Unreadable {
        path: path.to_path_buf(),
        expected: "a comma-separated text file with a header row".into(),
        found,
    };
    let mut head = [0u8; 4];
    if let Ok(mut f) = std::fs::File::open(path) {
        use std::io::Read;
        if f.read_exact(&mut head).is_ok() && &head == b"PK\x03\x04" {
            return Err(unreadable(
                "a zip archive or Excel workbook (export the sheet(s) as CSV first)".into(),
            ));
        }
    }
    let mut df = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .map_parse_options(|o| o.with_encoding(CsvEncoding::LossyUtf8))
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .and_then(|r| r.finish())
        .map_err(|e| unreadable(e.to_string().lines().next().unwrap_or("").to_string()))?;
    // Header names: trimmed, without a UTF-8 byte-order mark.
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| n.trim_start_matches('\u{feff}').trim().to_string())
        .collect();
    df.set_column_names(&names)
        .map_err(|e| unreadable(e.to_string()))?;
    df.rechunk_mut();
    Ok(SourceFile {
        path: path.to_path_buf(),
        df,
    })
}

impl SourceFile {
    pub fn rows(&self) -> usize {
        self.df.height()
    }

    /// A text column, under the first of `names` the file has.
    pub fn column(&self, names: &[&str], expected: &str) -> Result<TextColumn<'_>> {
        for name in names {
            if let Ok(c) = self.df.column(name) {
                let ca = c.str().map_err(polars_err("reading a text column"))?;
                return Ok(TextColumn {
                    path: &self.path,
                    name: name.to_string(),
                    values: ca.iter().collect(),
                });
            }
        }
        let found: Vec<String> = self
            .df
            .get_column_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        Err(ImportError::MissingColumn {
            path: self.path.clone(),
            column: names.join("` or `"),
            expected: expected.to_string(),
            found: found.join(", "),
        })
    }
}

/// The values of one text column, with what is needed to name a bad value.
pub(crate) struct TextColumn<'a> {
    path: &'a Path,
    name: String,
    values: Vec<Option<&'a str>>,
}

impl<'a> TextColumn<'a> {
    /// The trimmed value of row `i` (0-based); `None` when empty.
    pub fn get(&self, i: usize) -> Option<&'a str> {
        self.values
            .get(i)
            .copied()
            .flatten()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    pub fn bad(&self, i: usize, expected: &'static str) -> ImportError {
        ImportError::BadValue {
            path: self.path.to_path_buf(),
            row: i + 1,
            column: self.name.clone(),
            expected,
            found: match self.get(i) {
                Some(v) => format!("`{v}`"),
                None => "an empty field".to_string(),
            },
        }
    }

    /// A value that must be present.
    pub fn required(&self, i: usize, expected: &'static str) -> Result<&'a str> {
        self.get(i).ok_or_else(|| self.bad(i, expected))
    }

    pub fn f64(&self, i: usize, expected: &'static str) -> Result<f64> {
        self.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| self.bad(i, expected))
    }

    /// An integer; `12.0` (a float export of an integer column) is accepted.
    pub fn i64(&self, i: usize, expected: &'static str) -> Result<i64> {
        self.get(i)
            .and_then(parse_integer)
            .ok_or_else(|| self.bad(i, expected))
    }

    /// A timestamp in one of `formats` (chrono syntax).
    pub fn timestamp(
        &self,
        i: usize,
        formats: &[&str],
        expected: &'static str,
    ) -> Result<NaiveDateTime> {
        self.get(i)
            .and_then(|v| {
                formats
                    .iter()
                    .find_map(|f| NaiveDateTime::parse_from_str(v, f).ok())
            })
            .ok_or_else(|| self.bad(i, expected))
    }
}

/// `42`, `42.0` → 42; anything else (`42.5`, `x`) → None.
pub(crate) fn parse_integer(v: &str) -> Option<i64> {
    if let Ok(n) = v.parse::<i64>() {
        return Some(n);
    }
    let x = v.parse::<f64>().ok()?;
    (x.is_finite() && x.fract() == 0.0 && x.abs() < 9.0e15).then_some(x as i64)
}

// ---------------------------------------------------------------------------
// Building the curated frames.

pub(crate) fn micros(ts: NaiveDateTime) -> i64 {
    ts.and_utc().timestamp_micros()
}

pub(crate) fn epoch_days(ts: NaiveDateTime) -> i32 {
    // Days since 1970-01-01 of the timestamp's calendar day; in range for
    // any date chrono parses from four-digit years.
    (ts.and_utc().timestamp().div_euclid(86_400)) as i32
}

/// The median of a non-empty list (the mean of the two middle values for an
/// even count).
pub(crate) fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

/// Column builders for the four curated tables.
#[derive(Default)]
pub(crate) struct Tables {
    pub customer_id: Vec<String>,
    pub signup_date: Vec<i32>,
    pub city: Vec<Option<String>>,
    pub state: Vec<Option<String>>,
    pub latitude: Vec<Option<f64>>,
    pub longitude: Vec<Option<f64>>,

    pub product_id: Vec<String>,
    pub category: Vec<String>,
    pub list_price: Vec<f64>,

    pub order_id: Vec<String>,
    pub order_customer: Vec<String>,
    pub order_ts: Vec<i64>,
    pub channel: Vec<&'static str>,
    pub payment_type: Vec<String>,
    pub status: Vec<&'static str>,

    pub line_order: Vec<String>,
    pub line_no: Vec<i32>,
    pub line_product: Vec<String>,
    pub quantity: Vec<i32>,
    pub unit_price: Vec<f64>,
    pub discount: Vec<f64>,
}

impl Tables {
    pub fn frames(self) -> Result<crate::data::CuratedFrames> {
        let err = polars_err("building the curated tables");
        let customers = DataFrame::new(
            self.customer_id.len(),
            vec![
                Column::new("customer_id".into(), self.customer_id),
                Int32Chunked::from_vec("signup_date".into(), self.signup_date)
                    .into_date()
                    .into_column(),
                Column::new("city".into(), self.city),
                Column::new("state".into(), self.state),
                Column::new("latitude".into(), self.latitude),
                Column::new("longitude".into(), self.longitude),
            ],
        )
        .map_err(err)?;
        let products = DataFrame::new(
            self.product_id.len(),
            vec![
                Column::new("product_id".into(), self.product_id),
                Column::new("category".into(), self.category),
                Column::new("list_price".into(), self.list_price),
            ],
        )
        .map_err(polars_err("building the products table"))?;
        let orders = DataFrame::new(
            self.order_id.len(),
            vec![
                Column::new("order_id".into(), self.order_id),
                Column::new("customer_id".into(), self.order_customer),
                Int64Chunked::from_vec("order_ts".into(), self.order_ts)
                    .into_datetime(TimeUnit::Microseconds, None)
                    .into_column(),
                Column::new("channel".into(), self.channel),
                Column::new("payment_type".into(), self.payment_type),
                Column::new("status".into(), self.status),
            ],
        )
        .map_err(polars_err("building the orders table"))?;
        let order_items = DataFrame::new(
            self.line_order.len(),
            vec![
                Column::new("order_id".into(), self.line_order),
                Column::new("line_no".into(), self.line_no),
                Column::new("product_id".into(), self.line_product),
                Column::new("quantity".into(), self.quantity),
                Column::new("unit_price".into(), self.unit_price),
                Column::new("discount".into(), self.discount),
            ],
        )
        .map_err(polars_err("building the order_items table"))?;
        Ok(crate::data::CuratedFrames {
            customers,
            products,
            orders,
            order_items,
        })
    }
}

/// Write the frames all-or-nothing and finish the report.
pub(crate) fn write(
    frames: &crate::data::CuratedFrames,
    report: &mut ImportReport,
    out: &Path,
    started: std::time::Instant,
) -> Result<()> {
    crate::data::write_tables(frames, out).map_err(|source| ImportError::Write {
        out: out.to_path_buf(),
        source,
    })?;
    report.out = out.to_path_buf();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(())
}

pub(crate) fn written_counts(frames: &crate::data::CuratedFrames) -> Vec<(&'static str, u64)> {
    frames
        .row_counts()
        .into_iter()
        .map(|(t, n)| (t, n as u64))
        .collect()
}
