//! Which source to read: configuration from the command line, `APP_`
//! environment variables or a serde document.
//!
//! Secrets (the Snowflake password, the private key's contents) live in
//! [`Secret`], whose `Debug`, `Display` and `Serialize` never show the value.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Result, SourceError};

/// The default curated Parquet folder.
pub const DEFAULT_DATA_DIR: &str = "data/curated";

/// A secret string: shown as `[redacted]` everywhere (Debug, Display,
/// serialisation). Read it only to hand it to the client.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value, for the one place that needs it (the login).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

const REDACTED: &str = "[redacted]";

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

/// Which backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// A folder of curated Parquet files (the default).
    #[default]
    Parquet,
    /// Tables in a Snowflake schema.
    Snowflake,
}

/// How to log in to Snowflake.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnowflakeAuth {
    Password(Secret),
    /// Key-pair authentication: a PEM file with the unencrypted PKCS#8 private key.
    PrivateKeyPath(PathBuf),
}

/// A Snowflake connection. The tables `customers`, `products`, `orders` and
/// `order_items` are read from `database.schema`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnowflakeConfig {
    /// Account identifier, e.g. `myorg-myaccount` (the host is
    /// `<account>.snowflakecomputing.com`).
    pub account: String,
    pub user: String,
    pub auth: SnowflakeAuth,
    pub warehouse: Option<String>,
    pub database: Option<String>,
    pub schema: Option<String>,
    pub role: Option<String>,
}

/// A resolved source configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SourceConfig {
    Parquet { dir: PathBuf },
    Snowflake(SnowflakeConfig),
}

impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig::Parquet {
            dir: PathBuf::from(DEFAULT_DATA_DIR),
        }
    }
}

/// Command-line arguments (each with its `APP_` environment variable) that
/// choose the source. Flatten them into a command with
/// `#[command(flatten)] source: SourceArgs`, then
/// `Source::from_args(&args.source, data)?`, where `data` is the command's
/// own `--data DIR` (given: that Parquet folder; omitted: the configured source).
#[derive(Clone, Default, PartialEq, Eq, clap::Args)]
pub struct SourceArgs {
    /// Where the curated tables come from (when `--data` is not given)
    #[arg(long = "source", env = "APP_SOURCE", value_enum, default_value_t = SourceKind::Parquet)]
    pub source: SourceKind,
    /// Snowflake account identifier (e.g. myorg-myaccount)
    #[arg(long = "snowflake-account", env = "APP_SNOWFLAKE_ACCOUNT")]
    pub account: Option<String>,
    /// Snowflake user
    #[arg(long = "snowflake-user", env = "APP_SNOWFLAKE_USER")]
    pub user: Option<String>,
    /// Snowflake password (prefer the environment variable to the flag)
    #[arg(
        long = "snowflake-password",
        env = "APP_SNOWFLAKE_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<Secret>,
    /// PEM file of the private key, for key-pair authentication instead of a password
    #[arg(
        long = "snowflake-private-key-path",
        env = "APP_SNOWFLAKE_PRIVATE_KEY_PATH"
    )]
    pub private_key_path: Option<PathBuf>,
    /// Snowflake warehouse
    #[arg(long = "snowflake-warehouse", env = "APP_SNOWFLAKE_WAREHOUSE")]
    pub warehouse: Option<String>,
    /// Snowflake database holding the curated schema
    #[arg(long = "snowflake-database", env = "APP_SNOWFLAKE_DATABASE")]
    pub database: Option<String>,
    /// Snowflake schema holding the four curated tables
    #[arg(long = "snowflake-schema", env = "APP_SNOWFLAKE_SCHEMA")]
    pub schema: Option<String>,
    /// Snowflake role
    #[arg(long = "snowflake-role", env = "APP_SNOWFLAKE_ROLE")]
    pub role: Option<String>,
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(Secret::new(s))
    }
}

impl fmt::Debug for SourceArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceArgs")
            .field("source", &self.source)
            .field("account", &self.account)
            .field("user", &self.user)
            .field("password", &self.password)
            .field("private_key_path", &self.private_key_path)
            .field("warehouse", &self.warehouse)
            .field("database", &self.database)
            .field("schema", &self.schema)
            .field("role", &self.role)
            .finish()
    }
}

fn non_empty(v: &Option<String>) -> Option<String> {
    v.as_ref()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn required(v: &Option<String>, name: &'static str, env: &'static str) -> Result<String> {
    non_empty(v).ok_or_else(|| SourceError::Config {
        name,
        env,
        expected: "a value (the Snowflake source needs it)".into(),
        found: "nothing".into(),
    })
}

impl SourceArgs {
    /// Resolve the arguments. `data` is the command's `--data DIR`: when
    /// given it wins (a Parquet folder); otherwise `--source`/`APP_SOURCE`
    /// decides, Parquet reading [`DEFAULT_DATA_DIR`].
    pub fn resolve(&self, data: Option<&Path>) -> Result<SourceConfig> {
        if let Some(dir) = data {
            return Ok(SourceConfig::Parquet {
                dir: dir.to_path_buf(),
            });
        }
        match self.source {
            SourceKind::Parquet => Ok(SourceConfig::default()),
            SourceKind::Snowflake => {
                let password = self.password.clone().filter(|p| !p.is_empty());
                let auth = match (password, &self.private_key_path) {
                    (Some(_), Some(_)) => {
                        return Err(SourceError::Config {
                            name: "snowflake password / private key path",
                            env: "APP_SNOWFLAKE_PASSWORD / APP_SNOWFLAKE_PRIVATE_KEY_PATH",
                            expected: "exactly one of the two".into(),
                            found: "both".into(),
                        });
                    }
                    (Some(p), None) => SnowflakeAuth::Password(p),
                    (None, Some(path)) => SnowflakeAuth::PrivateKeyPath(path.clone()),
                    (None, None) => {
                        return Err(SourceError::Config {
                            name: "snowflake password / private key path",
                            env: "APP_SNOWFLAKE_PASSWORD / APP_SNOWFLAKE_PRIVATE_KEY_PATH",
                            expected: "one of the two".into(),
                            found: "neither".into(),
                        });
                    }
                };
                Ok(SourceConfig::Snowflake(SnowflakeConfig {
                    account: required(&self.account, "snowflake account", "APP_SNOWFLAKE_ACCOUNT")?,
                    user: required(&self.user, "snowflake user", "APP_SNOWFLAKE_USER")?,
                    auth,
                    warehouse: non_empty(&self.warehouse),
                    database: non_empty(&self.database),
                    schema: non_empty(&self.schema),
                    role: non_empty(&self.role),
                }))
            }
        }
    }
}
