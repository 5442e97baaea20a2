//! The Snowflake backend: `snowflake-api` (Arrow results) on its own small
//! tokio runtime, behind a blocking interface.
//!
//! The tables `customers`, `products`, `orders` and `order_items` are read
//! from the session's database and schema (upper-case names are fine), each
//! with the contract's columns only; the Arrow batches go through
//! [`super::normalise`] and are then checked and cast to the contract's types
//! exactly like Parquet files are. An empty table gives the contract's schema
//! with zero rows (Snowflake sends no schema for an empty result).

use std::fmt::Write as _;

use polars::prelude::*;
use reqwest_middleware::ClientWithMiddleware;
use snowflake_api::{
    AuthArgs, AuthType, CertificateArgs, PasswordArgs, QueryResult, SnowflakeApi,
    SnowflakeApiBuilder,
};

use super::config::{SnowflakeAuth, SnowflakeConfig};
use super::normalise::batches_to_frame;
use super::{CuratedSource, Fetched, Result, Secret, SourceError};
use crate::contract::{
    CUSTOMERS, ColumnSpec, ColumnType, ORDER_ITEMS, ORDERS, PRODUCTS, TableSpec,
};
use crate::data::CuratedData;
use crate::error::DataError;

/// A Snowflake connection (the login happens on the first query).
pub struct SnowflakeSource {
    api: SnowflakeApi,
    runtime: tokio::runtime::Runtime,
    /// Values scrubbed from every error message.
    secrets: Vec<Secret>,
    description: String,
    /// What came back so far ([`SnowflakeSource::fetched`]).
    fetched: std::sync::Mutex<Fetched>,
    /// Held while a statement runs: one at a time per source (one session).
    one_at_a_time: std::sync::Mutex<()>,
}

impl std::fmt::Debug for SnowflakeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SnowflakeSource({})", self.description)
    }
}

impl SnowflakeSource {
    /// Prepare a client for `cfg` (reads the private key file if configured).
    pub fn connect(cfg: &SnowflakeConfig) -> Result<Self> {
        Self::build(cfg, None)
    }

    /// Like [`SnowflakeSource::connect`], but on a caller-supplied HTTP client
    /// (e.g. a proxy layer). Production code uses [`SnowflakeSource::connect`];
    /// the tests use this to reach the local emulator.
    pub fn connect_with_http_client(
        cfg: &SnowflakeConfig,
        client: ClientWithMiddleware,
    ) -> Result<Self> {
        Self::build(cfg, Some(client))
    }

    fn build(cfg: &SnowflakeConfig, client: Option<ClientWithMiddleware>) -> Result<Self> {
        let mut secrets = Vec::new();
        let auth_type = match &cfg.auth {
            SnowflakeAuth::Password(p) => {
                secrets.push(p.clone());
                AuthType::Password(PasswordArgs {
                    password: p.expose().to_string(),
                })
            }
            SnowflakeAuth::PrivateKeyPath(path) => {
                let pem = std::fs::read_to_string(path).map_err(|e| SourceError::Config {
                    name: "snowflake private key path",
                    env: "APP_SNOWFLAKE_PRIVATE_KEY_PATH",
                    expected: "a readable PEM file with the private key".into(),
                    found: format!("{}: {e}", path.display()),
                })?;
                let pem = Secret::new(pem);
                secrets.push(pem.clone());
                AuthType::Certificate(CertificateArgs {
                    private_key_pem: pem.expose().to_string(),
                })
            }
        };
        let auth = AuthArgs {
            account_identifier: cfg.account.clone(),
            warehouse: cfg.warehouse.clone(),
            database: cfg.database.clone(),
            schema: cfg.schema.clone(),
            username: cfg.user.clone(),
            role: cfg.role.clone(),
            auth_type,
        };
        let mut builder = SnowflakeApiBuilder::new(auth);
        if let Some(c) = client {
            builder = builder.with_client(c);
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SourceError::Snowflake {
                action: "starting the client runtime".into(),
                message: e.to_string(),
            })?;
        let mut description = format!("snowflake account {} user {}", cfg.account, cfg.user);
        if let (Some(db), Some(schema)) = (&cfg.database, &cfg.schema) {
            let _ = write!(description, " schema {db}.{schema}");
        }
        let api = builder
            .build()
            .map_err(|e| scrub(&secrets, "preparing the client", &e))?;
        Ok(SnowflakeSource {
            api,
            runtime,
            secrets,
            description,
            fetched: Default::default(),
            one_at_a_time: Default::default(),
        })
    }

    /// An error from the client, with every secret scrubbed from its text.
    fn error(&self, action: &str, e: &dyn std::fmt::Display) -> SourceError {
        scrub(&self.secrets, action, e)
    }

    /// Run a future on this source's runtime; from inside another tokio
    /// runtime (e.g. the HTTP service) it runs on a helper thread.
    fn block_on<T: Send>(&self, fut: impl std::future::Future<Output = T> + Send) -> T {
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| {
                s.spawn(|| self.runtime.block_on(fut))
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))
            })
        } else {
            self.runtime.block_on(fut)
        }
    }

    /// Run one statement and return its result, unconverted. Statements of
    /// one source (one session) run one at a time (a plain lock: no
    /// promise on which waiting statement goes next):
    /// `serve`'s dashboard asks from several threads (a page's parallel
    /// requests, several visitors, the warm-up of the default view), and
    /// the emulator refuses ("connection is busy with another call") or
    /// fails a second statement while one runs on its connection.
    fn exec(&self, sql: &str, action: &str) -> Result<QueryResult> {
        let _turn = self.one_at_a_time.lock().unwrap_or_else(|e| e.into_inner());
        self.block_on(self.api.exec(sql))
            .map_err(|e| self.error(action, &e))
    }

    /// Run a statement that returns no rows worth reading (DDL, INSERT).
    pub fn execute(&self, sql: &str) -> Result<()> {
        self.exec(sql, "running a statement").map(|_| ())
    }

    /// Run a query and return its rows normalised ([`super::normalise`]).
    /// An empty result has no columns (Snowflake sends no schema for it).
    pub fn query(&self, sql: &str) -> Result<DataFrame> {
        self.query_as(sql, "running a query")
    }

    /// Queries run, rows and bytes fetched by this source so far.
    pub fn fetched(&self) -> Fetched {
        *self.fetched.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn count(&self, rows: u64, bytes: u64) {
        let mut f = self.fetched.lock().unwrap_or_else(|p| p.into_inner());
        f.queries += 1;
        f.rows += rows;
        f.bytes += bytes;
    }

    pub(crate) fn query_as(&self, sql: &str, action: &str) -> Result<DataFrame> {
        match self.exec(sql, action)? {
            QueryResult::Arrow(batches) => {
                self.count(
                    batches.iter().map(|b| b.num_rows() as u64).sum(),
                    batches.iter().map(arrow_bytes).sum(),
                );
                batches_to_frame(&batches)
            }
            QueryResult::Empty => {
                self.count(0, 0);
                Ok(DataFrame::empty())
            }
            QueryResult::Json(j) => Err(SourceError::Snowflake {
                action: action.to_string(),
                message: format!(
                    "expected an Arrow result; found a JSON result with {} columns",
                    j.schema.len()
                ),
            }),
        }
    }

    /// Read one table of the contract, in the contract's types.
    pub fn read_table(&self, spec: &TableSpec) -> Result<DataFrame> {
        let cols: Vec<String> = spec
            .columns
            .iter()
            .map(|c| format!("{} AS \"{}\"", c.name, c.name))
            .collect();
        let sql = format!("SELECT {} FROM {}", cols.join(", "), spec.name);
        let action = format!(
            "reading table `{}` (expected columns {})",
            spec.name,
            spec.column_names().join(", ")
        );
        let df = self.query_as(&sql, &action)?;
        conform(spec, df)
    }

    /// Replace a table with the rows of `df` (contract columns, contract
    /// types): `CREATE OR REPLACE TABLE` then `INSERT … VALUES` in batches of
    /// `rows_per_insert`. For loading test or sample data; bulk loads into a
    /// real warehouse belong to `COPY INTO` from a stage.
    pub fn replace_table(
        &self,
        spec: &TableSpec,
        df: &DataFrame,
        rows_per_insert: usize,
    ) -> Result<()> {
        let ddl: Vec<String> = spec
            .columns
            .iter()
            .map(|c| {
                let ty = match c.ty {
                    ColumnType::String | ColumnType::Category => "VARCHAR",
                    ColumnType::Date => "DATE",
                    ColumnType::TimestampMicros => "TIMESTAMP_NTZ(6)",
                    ColumnType::Float64 => "DOUBLE",
                    ColumnType::Int32 => "INTEGER",
                };
                format!("{} {ty}", c.name)
            })
            .collect();
        self.exec(
            &format!("CREATE OR REPLACE TABLE {} ({})", spec.name, ddl.join(", ")),
            &format!("creating table `{}`", spec.name),
        )?;
        // In the stored types (text, not the loaded categoricals).
        let df = conform_to(spec, df.clone(), |c| c.ty.dtype())?;
        let rows_per_insert = rows_per_insert.max(1);
        let mut offset = 0;
        while offset < df.height() {
            let chunk = df.slice(offset as i64, rows_per_insert);
            let values = sql_values(&chunk).map_err(|e| SourceError::Snowflake {
                action: format!("preparing rows of `{}`", spec.name),
                message: e.to_string(),
            })?;
            self.exec(
                &format!(
                    "INSERT INTO {} ({}) VALUES {values}",
                    spec.name,
                    spec.column_names().join(", ")
                ),
                &format!("inserting rows into `{}`", spec.name),
            )?;
            offset += rows_per_insert;
        }
        Ok(())
    }
}

impl CuratedSource for SnowflakeSource {
    fn load(&self) -> Result<CuratedData> {
        Ok(CuratedData {
            customers: self.read_table(&CUSTOMERS)?.lazy(),
            products: self.read_table(&PRODUCTS)?.lazy(),
            orders: self.read_table(&ORDERS)?.lazy(),
            order_items: self.read_table(&ORDER_ITEMS)?.lazy(),
        })
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

/// Bytes of a batch's values (the used part of its buffers, not their
/// capacity): about what crossed the wire before compression.
fn arrow_bytes(batch: &arrow_array::RecordBatch) -> u64 {
    batch
        .columns()
        .iter()
        .map(|c| c.to_data().get_slice_memory_size().unwrap_or(0) as u64)
        .sum()
}

/// A client error as a [`SourceError`], with every secret (and every line
/// of a multi-line secret) replaced by `[redacted]`.
fn scrub(secrets: &[Secret], action: &str, e: &dyn std::fmt::Display) -> SourceError {
    let mut message = e.to_string();
    for s in secrets {
        for piece in secret_pieces(s.expose()) {
            message = message.replace(piece, "[redacted]");
        }
    }
    SourceError::Snowflake {
        action: action.to_string(),
        message,
    }
}

/// The secret and its lines (a PEM key could be echoed line by line).
fn secret_pieces(s: &str) -> Vec<&str> {
    let mut v: Vec<&str> = vec![s];
    v.extend(s.lines().map(str::trim).filter(|l| l.len() >= 8));
    v.retain(|p| !p.is_empty());
    v
}

/// Check a normalised result against the contract and cast it to the
/// contract's types (columns matched case-insensitively; extra ignored).
/// A frame without columns (an empty result) becomes the empty contract table.
pub fn conform(spec: &TableSpec, df: DataFrame) -> Result<DataFrame> {
    conform_to(spec, df, ColumnSpec::loaded_dtype)
}

/// [`conform`], each column cast to `dtype(column)`.
fn conform_to(
    spec: &TableSpec,
    df: DataFrame,
    dtype: impl Fn(&ColumnSpec) -> DataType,
) -> Result<DataFrame> {
    if df.width() == 0 {
        return Ok(DataFrame::empty_with_schema(&spec.schema_with(&dtype)));
    }
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    let mut columns = Vec::with_capacity(spec.columns.len());
    for c in spec.columns {
        let Some(found) = names.iter().find(|n| n.eq_ignore_ascii_case(c.name)) else {
            return Err(DataError::MissingColumn {
                table: spec.name,
                column: c.name,
                expected: c.ty.name(),
                found: names.join(", "),
            }
            .into());
        };
        let column = df
            .column(found)
            .map_err(DataError::polars(spec.name, "selecting a column"))?;
        if !c.ty.accepts(column.dtype()) {
            return Err(DataError::WrongType {
                table: spec.name,
                column: c.name,
                expected: c.ty.name(),
                found: column.dtype().to_string(),
            }
            .into());
        }
        let cast = column
            .cast(&dtype(c))
            .map_err(DataError::polars(
                spec.name,
                "casting to the contract's types",
            ))?
            .with_name(c.name.into());
        columns.push(cast);
    }
    DataFrame::new(df.height(), columns)
        .map_err(|e| DataError::polars(spec.name, "assembling the table")(e).into())
}

/// A SQL string literal (Snowflake: backslash and quote escaped).
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// `(v, …), (v, …)` for an INSERT, from a frame in contract types. Dates
/// and timestamps are plain string literals that the typed columns convert
/// (half the emulator's parsing time of explicit CASTs).
fn sql_values(df: &DataFrame) -> PolarsResult<String> {
    let cols = df.columns();
    let mut out = String::with_capacity(df.height() * 64);
    for row in 0..df.height() {
        if row > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for (i, c) in cols.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let v = c.get(row)?;
            match v {
                AnyValue::Null => out.push_str("NULL"),
                AnyValue::String(s) => out.push_str(&quote(s)),
                AnyValue::StringOwned(s) => out.push_str(&quote(&s)),
                AnyValue::Date(d) => {
                    let d = chrono::DateTime::from_timestamp(i64::from(d) * 86_400, 0)
                        .map(|t| t.date_naive().to_string())
                        .unwrap_or_default();
                    let _ = write!(out, "'{d}'");
                }
                AnyValue::Datetime(us, _, _) => {
                    let t = chrono::DateTime::from_timestamp_micros(us)
                        .map(|t| t.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f").to_string())
                        .unwrap_or_default();
                    let _ = write!(out, "'{t}'");
                }
                AnyValue::Float64(f) if f.is_finite() => {
                    let _ = write!(out, "{f:?}");
                }
                AnyValue::Float64(f) => {
                    // Snowflake reads these strings into FLOAT columns.
                    let v = if f.is_nan() {
                        "NaN"
                    } else if f > 0.0 {
                        "inf"
                    } else {
                        "-inf"
                    };
                    let _ = write!(out, "'{v}'");
                }
                AnyValue::Int32(n) => {
                    let _ = write!(out, "{n}");
                }
                other => {
                    let _ = write!(out, "{}", quote(&other.to_string()));
                }
            }
        }
        out.push(')');
    }
    Ok(out)
}
