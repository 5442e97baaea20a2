//! Which source to read: one settings type ([`SourceSettings`]) that a
//! settings file (serde), the `APP_*` environment variables (read here and
//! nowhere else) and a binary's flags fill in, resolved into a
//! [`SourceConfig`]. The command-line flags themselves live in the binaries
//! (clap is not a dependency of the library).
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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

impl SourceKind {
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Parquet => "parquet",
            SourceKind::Snowflake => "snowflake",
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for SourceKind {
    type Err = SourceError;
    /// `parquet` or `snowflake` (any case; empty: `parquet`).
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "parquet" => Ok(SourceKind::Parquet),
            "snowflake" => Ok(SourceKind::Snowflake),
            _ => Err(SourceError::Config {
                name: "source",
                env: "APP_SOURCE",
                expected: "`parquet` or `snowflake`".into(),
                found: format!("`{s}`"),
            }),
        }
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(Secret::new(s))
    }
}

/// The Snowflake connection as given (`[snowflake]` in a settings file,
/// `APP_SNOWFLAKE_*` variables, `--snowflake-*` flags): every field
/// optional until [`SourceSettings::resolve`] checks them. The four curated
/// tables are read from `database.schema`. Give either `password` or
/// `private_key_path`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnowflakeSettings {
    /// Account identifier, e.g. `myorg-myaccount`.
    pub account: Option<String>,
    pub user: Option<String>,
    /// Never shown: `[redacted]` in `Debug` and serialised settings.
    pub password: Option<Secret>,
    /// PEM file of the unencrypted PKCS#8 private key (key-pair authentication).
    pub private_key_path: Option<PathBuf>,
    pub warehouse: Option<String>,
    pub database: Option<String>,
    pub schema: Option<String>,
    pub role: Option<String>,
}

impl fmt::Debug for SnowflakeSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnowflakeSettings")
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

/// Where the curated data comes from, as given: the backend and the
/// Snowflake connection. [`SourceSettings::from_env`] reads `APP_SOURCE`
/// and `APP_SNOWFLAKE_*`; a binary lays its flags over that with
/// [`SourceSettings::overlay`]; [`SourceSettings::resolve`] checks it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourceSettings {
    pub source: SourceKind,
    pub snowflake: SnowflakeSettings,
}

/// The variables [`SourceSettings::apply_env`] knows.
pub const SOURCE_ENV: [&str; 9] = [
    "APP_SOURCE",
    "APP_SNOWFLAKE_ACCOUNT",
    "APP_SNOWFLAKE_USER",
    "APP_SNOWFLAKE_PASSWORD",
    "APP_SNOWFLAKE_PRIVATE_KEY_PATH",
    "APP_SNOWFLAKE_WAREHOUSE",
    "APP_SNOWFLAKE_DATABASE",
    "APP_SNOWFLAKE_SCHEMA",
    "APP_SNOWFLAKE_ROLE",
];

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

fn given(value: &str) -> Option<String> {
    let v = value.trim();
    (!v.is_empty()).then(|| v.to_string())
}

impl SourceSettings {
    /// The settings of the process environment (`APP_SOURCE`,
    /// `APP_SNOWFLAKE_*`); unset or empty variables leave the defaults.
    pub fn from_env() -> Result<SourceSettings> {
        let mut s = SourceSettings::default();
        for key in SOURCE_ENV {
            if let Ok(value) = std::env::var(key) {
                s.apply_env(key, &value)?;
            }
        }
        Ok(s)
    }

    /// Apply one environment variable (its full name, `APP_…`); `Ok(false)`
    /// when it is not one of [`SOURCE_ENV`]. An empty value unsets.
    pub fn apply_env(&mut self, key: &str, value: &str) -> Result<bool> {
        let sf = &mut self.snowflake;
        match key {
            "APP_SOURCE" => self.source = value.parse()?,
            "APP_SNOWFLAKE_ACCOUNT" => sf.account = given(value),
            "APP_SNOWFLAKE_USER" => sf.user = given(value),
            "APP_SNOWFLAKE_PASSWORD" => {
                sf.password = (!value.is_empty()).then(|| Secret::new(value));
            }
            "APP_SNOWFLAKE_PRIVATE_KEY_PATH" => {
                sf.private_key_path = given(value).map(PathBuf::from)
            }
            "APP_SNOWFLAKE_WAREHOUSE" => sf.warehouse = given(value),
            "APP_SNOWFLAKE_DATABASE" => sf.database = given(value),
            "APP_SNOWFLAKE_SCHEMA" => sf.schema = given(value),
            "APP_SNOWFLAKE_ROLE" => sf.role = given(value),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Lay `top` over `self`: its backend when given, and each Snowflake
    /// field it sets.
    pub fn overlay(mut self, source: Option<SourceKind>, top: SnowflakeSettings) -> SourceSettings {
        if let Some(k) = source {
            self.source = k;
        }
        let sf = &mut self.snowflake;
        macro_rules! take {
            ($($f:ident),*) => { $( if top.$f.is_some() { sf.$f = top.$f; } )* };
        }
        take!(
            account,
            user,
            password,
            private_key_path,
            warehouse,
            database,
            schema,
            role
        );
        self
    }

    /// Resolve and check. `data` is a command's `--data DIR`: when given it
    /// wins (a Parquet folder); otherwise `source` decides, Parquet reading
    /// [`DEFAULT_DATA_DIR`].
    pub fn resolve(&self, data: Option<&Path>) -> Result<SourceConfig> {
        if let Some(dir) = data {
            return Ok(SourceConfig::Parquet {
                dir: dir.to_path_buf(),
            });
        }
        match self.source {
            SourceKind::Parquet => Ok(SourceConfig::default()),
            SourceKind::Snowflake => Ok(SourceConfig::Snowflake(self.snowflake.resolve()?)),
        }
    }
}

impl SnowflakeSettings {
    /// The connection these settings describe; an error names the missing
    /// or contradictory setting and its variable.
    pub fn resolve(&self) -> Result<SnowflakeConfig> {
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
        Ok(SnowflakeConfig {
            account: required(&self.account, "snowflake account", "APP_SNOWFLAKE_ACCOUNT")?,
            user: required(&self.user, "snowflake user", "APP_SNOWFLAKE_USER")?,
            auth,
            warehouse: non_empty(&self.warehouse),
            database: non_empty(&self.database),
            schema: non_empty(&self.schema),
            role: non_empty(&self.role),
        })
    }
}
