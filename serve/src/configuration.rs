//! Settings, layered: built-in defaults, then an optional file (`--config`
//! or `APP_CONFIG`; TOML or JSON), then `APP_`-prefixed environment
//! variables, then the command-line flags (`--bind`, `--models`, `--data`).
//!
//! | setting | env | default |
//! |---|---|---|
//! | `bind` | `APP_BIND` | `127.0.0.1:8080` |
//! | `models` | `APP_MODELS` | `models` |
//! | `data` | `APP_DATA` | none (no `{"customer_id"}` lookups) |
//! | `source` | `APP_SOURCE` | `parquet` (`snowflake`: the data comes from the `[snowflake]` section) |
//! | `snowflake.account` | `APP_SNOWFLAKE_ACCOUNT` | none |
//! | `snowflake.user` | `APP_SNOWFLAKE_USER` | none |
//! | `snowflake.password` | `APP_SNOWFLAKE_PASSWORD` | none (secret: shown as `[redacted]`) |
//! | `snowflake.private_key_path` | `APP_SNOWFLAKE_PRIVATE_KEY_PATH` | none (key-pair instead of a password) |
//! | `snowflake.warehouse` / `database` / `schema` / `role` | `APP_SNOWFLAKE_WAREHOUSE` / `_DATABASE` / `_SCHEMA` / `_ROLE` | none |
//! | `max_batch` | `APP_MAX_BATCH` | 10 000 records |
//! | `max_body_bytes` | `APP_MAX_BODY_BYTES` | 0: sized to `max_batch` (2 KiB a record + 64 KiB: 19.6 MiB at 10 000); one-record routes take at most 64 KiB |
//! | `body_timeout_ms` | `APP_BODY_TIMEOUT_MS` | 10 000 (a body not received in full by then: 408) |
//! | `max_concurrent_heavy` | `APP_MAX_CONCURRENT_HEAVY` | 0: 4 per worker (batches, dashboard data and exports, `/models` beyond that: 429) |
//! | `reload_interval_ms` | `APP_RELOAD_INTERVAL_MS` | 5 000 (0: no hot reload of models nor data) |
//! | `data_refresh_secs` | `APP_DATA_REFRESH_SECS` | 3 600 (Snowflake: a new data snapshot every hour; 0: never; a Parquet folder is re-read when it changes) |
//! | `top_contributions` | `APP_TOP_CONTRIBUTIONS` | 10 |
//! | `workers` | `APP_WORKERS` | 0 (one per core) |
//! | `api_keys` | `APP_API_KEYS` | none: no authentication (`KEY[:SCOPES],…`, see `auth.rs`; secret: never echoed) |
//! | `allow_anonymous` | `APP_ALLOW_ANONYMOUS`, `--allow-anonymous` | false: without keys, only a loopback `bind` is accepted |
//! | `access_log` | `APP_ACCESS_LOG` | `stderr` (`off`, or a file appended to) |
//!
//! The service's data (the `{"customer_id"}` lookups and the dashboard) comes
//! from one source ([`Settings::source_config`]): the Parquet folder `data`
//! when it is set (it wins, like the CLI's `--data`); otherwise, with
//! `source = "snowflake"`, the four curated tables of the configured
//! Snowflake schema; otherwise none. Secrets (the password) are
//! [`Secret`]s: `[redacted]` in `Debug`, in serialised settings
//! ([`Settings::echo`], printed at start-up) and in errors.

use std::path::{Path, PathBuf};

pub use analytics_lib::source::SnowflakeSettings;
use analytics_lib::source::{SourceConfig, SourceKind, SourceSettings};
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::auth::ApiKeys;

/// Prefix of the environment variables read.
pub const ENV_PREFIX: &str = "APP_";

/// Everything the service can be told.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    pub bind: String,
    /// The model registry folder (`<models>/customer_spend/live.json` and
    /// `<models>/segments/live.json` name the live versions).
    pub models: PathBuf,
    /// Curated data folder; when set, `{"customer_id"}` requests are answered
    /// from that customer's features at the data's last day + 1.
    pub data: Option<PathBuf>,
    /// Most records in one batch request.
    pub max_batch: usize,
    /// Largest batch body accepted, in bytes; 0: sized to `max_batch`
    /// ([`Settings::batch_body_limit`]).
    pub max_body_bytes: usize,
    /// A request body must arrive in full within this many milliseconds.
    pub body_timeout_ms: u64,
    /// Heavy requests (batches; dashboard data, exports, `/models`) served
    /// at once, per kind; more are answered 429. 0: 4 per worker.
    pub max_concurrent_heavy: usize,
    /// How often the models folder is polled for a new live model; 0 turns
    /// hot reload off.
    pub reload_interval_ms: u64,
    /// How often a new data snapshot is read from Snowflake (seconds; 0:
    /// never). A Parquet folder is re-read when it changes instead.
    pub data_refresh_secs: u64,
    /// How many contributions (largest |value| first) a prediction carries.
    pub top_contributions: usize,
    /// HTTP worker threads; 0 = one per core.
    pub workers: usize,
    /// Where the data comes from when `data` is not set: `parquet` (then
    /// there is no data) or `snowflake` (the `snowflake` section).
    pub source: SourceKind,
    /// The Snowflake connection, used when `source = "snowflake"`.
    pub snowflake: SnowflakeSettings,
    /// Bearer keys (`KEY[:SCOPES]`); none: no authentication.
    pub api_keys: ApiKeys,
    /// Serve without keys on an address other than loopback.
    pub allow_anonymous: bool,
    /// Where the access log goes: `stderr`, `off` or a file (appended).
    pub access_log: String,
}

/// Bytes a batch body may take per record when the limit is sized to
/// `max_batch` (a record of ~25 features with full-precision numbers takes
/// about 1 KiB).
pub const BODY_BYTES_PER_RECORD: usize = 2 * 1024;
/// Added to the per-record allowance (the envelope, whitespace).
pub const BODY_SLACK_BYTES: usize = 64 * 1024;
/// The most a one-record body (`/predict`, `/segment`) may take.
pub const RECORD_BODY_BYTES: usize = 64 * 1024;

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bind: "127.0.0.1:8080".into(),
            models: PathBuf::from("models"),
            data: None,
            max_batch: 10_000,
            max_body_bytes: 0,
            body_timeout_ms: 10_000,
            max_concurrent_heavy: 0,
            reload_interval_ms: 5_000,
            data_refresh_secs: 3_600,
            top_contributions: 10,
            workers: 0,
            source: SourceKind::Parquet,
            snowflake: SnowflakeSettings::default(),
            api_keys: ApiKeys::default(),
            allow_anonymous: false,
            access_log: "stderr".into(),
        }
    }
}

/// What the command line set (the last layer); `None` leaves the layers below.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub bind: Option<String>,
    pub models: Option<PathBuf>,
    pub data: Option<PathBuf>,
    pub source: Option<SourceKind>,
    /// `--allow-anonymous` (only ever turns it on).
    pub allow_anonymous: bool,
}

/// Settings with the warnings met on the way (e.g. an unknown `APP_` variable).
#[derive(Clone, Debug)]
pub struct Loaded {
    pub settings: Settings,
    pub warnings: Vec<String>,
}

impl Settings {
    /// Refuse settings that cannot work, with what was expected.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.bind.trim().is_empty() {
            bail!("setting `bind`: expected an address such as 127.0.0.1:8080, found nothing");
        }
        if self.max_batch == 0 {
            bail!("setting `max_batch`: expected at least 1 record, found 0");
        }
        if self.max_body_bytes != 0 && self.max_body_bytes < 64 {
            bail!(
                "setting `max_body_bytes`: expected 0 (sized to max_batch) or at least 64 bytes, found {}",
                self.max_body_bytes
            );
        }
        if self.body_timeout_ms == 0 {
            bail!("setting `body_timeout_ms`: expected at least 1 millisecond, found 0");
        }
        self.source_config()?;
        self.check_exposure()?;
        Ok(())
    }

    /// Refuse to serve without keys on an address other than loopback,
    /// unless `allow_anonymous`: anybody who reaches the port would read
    /// every customer's predictions.
    pub fn check_exposure(&self) -> anyhow::Result<()> {
        if !self.api_keys.is_empty() || self.allow_anonymous {
            return Ok(());
        }
        use std::net::ToSocketAddrs;
        // An address that does not resolve fails at bind, with its own message.
        let Ok(addrs) = self.bind.to_socket_addrs() else {
            return Ok(());
        };
        if let Some(open) = addrs.into_iter().find(|a| !a.ip().is_loopback()) {
            bail!(
                "setting `bind`: expected a loopback address (127.0.0.1, ::1, localhost) when no API key is set, \
                 found {} ({}): set APP_API_KEYS (KEY[:SCOPES],…; see serve/README.md) or, to serve anyone \
                 who can reach the port, --allow-anonymous (APP_ALLOW_ANONYMOUS=1)",
                self.bind,
                open.ip()
            );
        }
        Ok(())
    }

    /// The largest batch body: `max_body_bytes`, or sized to `max_batch`.
    pub fn batch_body_limit(&self) -> usize {
        if self.max_body_bytes > 0 {
            self.max_body_bytes
        } else {
            self.max_batch
                .saturating_mul(BODY_BYTES_PER_RECORD)
                .saturating_add(BODY_SLACK_BYTES)
        }
    }

    /// The largest one-record body (`/predict`, `/segment`).
    pub fn record_body_limit(&self) -> usize {
        self.batch_body_limit().min(RECORD_BODY_BYTES)
    }

    /// Heavy requests served at once, per kind.
    pub fn heavy_limit(&self, workers: usize) -> usize {
        if self.max_concurrent_heavy > 0 {
            self.max_concurrent_heavy
        } else {
            4 * workers.max(1)
        }
    }

    /// Where the service's data comes from: the Parquet folder `data` when
    /// set; else the Snowflake schema when `source = "snowflake"` (an error
    /// names the missing setting); else `None` (no data).
    pub fn source_config(&self) -> anyhow::Result<Option<SourceConfig>> {
        if let Some(dir) = &self.data {
            return Ok(Some(SourceConfig::Parquet { dir: dir.clone() }));
        }
        match self.source {
            SourceKind::Parquet => Ok(None),
            SourceKind::Snowflake => Ok(Some(
                SourceSettings {
                    source: self.source,
                    snowflake: self.snowflake.clone(),
                }
                .resolve(None)
                .context("setting `source = \"snowflake\"`")?,
            )),
        }
    }

    /// The settings as one line of JSON for the start-up log (secrets
    /// `[redacted]`).
    pub fn echo(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("(settings not printable: {e})"))
    }

    /// Read a settings file: TOML (`.toml`) or JSON (`.json`); other names
    /// are read as JSON when they start with `{`, else as TOML.
    pub fn from_file(path: &Path) -> anyhow::Result<Settings> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("while reading the settings file {}", path.display()))?;
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        let json = match ext.as_deref() {
            Some("json") => true,
            Some("toml") => false,
            _ => text.trim_start().starts_with('{'),
        };
        if json {
            serde_json::from_str(&text)
                .with_context(|| format!("while parsing {} as JSON settings", path.display()))
        } else {
            toml::from_str(&text)
                .with_context(|| format!("while parsing {} as TOML settings", path.display()))
        }
    }

    /// Apply `APP_*` variables on top of `self`. Unknown `APP_` names are
    /// reported as warnings; a value that does not parse is an error.
    pub fn apply_env(
        &mut self,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Vec<String>> {
        let mut warnings = Vec::new();
        for (key, value) in env {
            let Some(name) = key.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            match name {
                "CONFIG" => {}
                "BIND" => self.bind = value,
                "MODELS" => self.models = PathBuf::from(value),
                "DATA" => self.data = (!value.is_empty()).then(|| PathBuf::from(value)),
                "MAX_BATCH" => self.max_batch = parse_env(&key, &value)?,
                "MAX_BODY_BYTES" => self.max_body_bytes = parse_env(&key, &value)?,
                "BODY_TIMEOUT_MS" => self.body_timeout_ms = parse_env(&key, &value)?,
                "MAX_CONCURRENT_HEAVY" => self.max_concurrent_heavy = parse_env(&key, &value)?,
                // The keys are never part of an error message.
                "API_KEYS" => {
                    self.api_keys = value
                        .parse()
                        .map_err(|e| anyhow::anyhow!("environment variable {key}: {e}"))?
                }
                "ALLOW_ANONYMOUS" => self.allow_anonymous = parse_bool(&key, &value)?,
                "ACCESS_LOG" => self.access_log = value,
                "RELOAD_INTERVAL_MS" => self.reload_interval_ms = parse_env(&key, &value)?,
                "DATA_REFRESH_SECS" => self.data_refresh_secs = parse_env(&key, &value)?,
                "TOP_CONTRIBUTIONS" => self.top_contributions = parse_env(&key, &value)?,
                "WORKERS" => self.workers = parse_env(&key, &value)?,
                _ => {
                    // The source's variables: read by the library's one reader.
                    let mut source = SourceSettings {
                        source: self.source,
                        snowflake: std::mem::take(&mut self.snowflake),
                    };
                    let known = source
                        .apply_env(&key, &value)
                        .with_context(|| format!("environment variable {key}"))?;
                    self.source = source.source;
                    self.snowflake = source.snowflake;
                    if !known {
                        warnings.push(format!("ignoring unknown setting {key}"));
                    }
                }
            }
        }
        Ok(warnings)
    }

    /// The command-line layer.
    pub fn apply_overrides(&mut self, o: &Overrides) {
        if let Some(b) = &o.bind {
            self.bind = b.clone();
        }
        if let Some(m) = &o.models {
            self.models = m.clone();
        }
        if let Some(d) = &o.data {
            self.data = Some(d.clone());
        }
        if let Some(s) = o.source {
            self.source = s;
        }
        if o.allow_anonymous {
            self.allow_anonymous = true;
        }
    }
}

fn parse_bool(key: &str, value: &str) -> anyhow::Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => {
            bail!("environment variable {key}: expected 1/true/yes or 0/false/no, found `{value}`")
        }
    }
}

fn parse_env<T: std::str::FromStr>(key: &str, value: &str) -> anyhow::Result<T> {
    value.trim().parse().map_err(|_| {
        anyhow::anyhow!("environment variable {key}: expected a whole number ≥ 0, found `{value}`")
    })
}

/// Every layer in order: defaults → file → `APP_*` env → command line.
/// `env` is passed in (use `std::env::vars()`) so that tests need not touch
/// the process environment.
pub fn load(
    cli: &Overrides,
    env: impl IntoIterator<Item = (String, String)>,
) -> anyhow::Result<Loaded> {
    let env: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    let file = cli.config.clone().or_else(|| {
        env.iter()
            .find(|(k, _)| k == "APP_CONFIG")
            .filter(|(_, v)| !v.is_empty())
            .map(|(_, v)| PathBuf::from(v))
    });
    let mut settings = match &file {
        Some(path) => Settings::from_file(path)?,
        None => Settings::default(),
    };
    let warnings = settings.apply_env(env)?;
    settings.apply_overrides(cli);
    settings.check()?;
    Ok(Loaded { settings, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_without_any_layer() {
        let l = load(&Overrides::default(), env(&[("PATH", "/bin")])).expect("load");
        assert_eq!(l.settings, Settings::default());
        assert_eq!(l.settings.bind, "127.0.0.1:8080");
        assert_eq!(l.settings.max_batch, 10_000);
        assert!(l.warnings.is_empty());
    }

    #[test]
    fn file_then_env_then_cli() {
        let dir = tempfile::tempdir().expect("tmp");
        let toml_path = dir.path().join("serve.toml");
        std::fs::write(
            &toml_path,
            "bind = \"0.0.0.0:9000\"\nallow_anonymous = true\nmodels = \"/m/file\"\nmax_batch = 5\ntop_contributions = 3\n",
        )
        .expect("write");
        let cli = Overrides {
            config: Some(toml_path.clone()),
            ..Overrides::default()
        };
        let l = load(&cli, env(&[])).expect("file");
        assert_eq!(l.settings.bind, "0.0.0.0:9000");
        assert_eq!(l.settings.max_batch, 5);
        assert_eq!(l.settings.top_contributions, 3);
        assert_eq!(
            l.settings.max_body_bytes,
            Settings::default().max_body_bytes
        );

        let l = load(
            &cli,
            env(&[("APP_MAX_BATCH", "7"), ("APP_MODELS", "/m/env")]),
        )
        .expect("env");
        assert_eq!(l.settings.max_batch, 7);
        assert_eq!(l.settings.models, PathBuf::from("/m/env"));
        assert_eq!(l.settings.bind, "0.0.0.0:9000");

        let cli = Overrides {
            models: Some("/m/cli".into()),
            bind: Some("127.0.0.1:0".into()),
            ..cli
        };
        let l = load(&cli, env(&[("APP_MODELS", "/m/env")])).expect("cli");
        assert_eq!(l.settings.models, PathBuf::from("/m/cli"));
        assert_eq!(l.settings.bind, "127.0.0.1:0");
        assert_eq!(l.settings.max_batch, 5);
    }

    #[test]
    fn json_file_from_app_config() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("serve.json");
        std::fs::write(&path, r#"{"max_body_bytes": 4096, "data": "/d"}"#).expect("write");
        let l = load(
            &Overrides::default(),
            env(&[("APP_CONFIG", path.to_str().expect("utf-8"))]),
        )
        .expect("json");
        assert_eq!(l.settings.max_body_bytes, 4096);
        assert_eq!(l.settings.data, Some(PathBuf::from("/d")));
    }

    #[test]
    fn bad_values_are_errors_that_say_what_was_expected() {
        let e = load(&Overrides::default(), env(&[("APP_MAX_BATCH", "lots")]))
            .expect_err("not a number");
        let msg = format!("{e:#}");
        assert!(
            msg.contains("APP_MAX_BATCH") && msg.contains("lots"),
            "{msg}"
        );
        let e = load(&Overrides::default(), env(&[("APP_MAX_BATCH", "0")])).expect_err("zero");
        assert!(format!("{e:#}").contains("max_batch"));

        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("serve.toml");
        std::fs::write(&path, "max_bach = 3\n").expect("write");
        let cli = Overrides {
            config: Some(path),
            ..Overrides::default()
        };
        let e = load(&cli, env(&[])).expect_err("unknown key");
        assert!(format!("{e:#}").contains("max_bach"), "{e:#}");
    }

    const PASSWORD: &str = "s3cr3t-Pa55word";

    #[test]
    fn snowflake_from_env_and_file_without_showing_the_password() {
        let l = load(
            &Overrides::default(),
            env(&[
                ("APP_SOURCE", "snowflake"),
                ("APP_SNOWFLAKE_ACCOUNT", "myorg-acct"),
                ("APP_SNOWFLAKE_USER", "svc"),
                ("APP_SNOWFLAKE_PASSWORD", PASSWORD),
                ("APP_SNOWFLAKE_DATABASE", "analytics"),
                ("APP_SNOWFLAKE_SCHEMA", "curated"),
            ]),
        )
        .expect("load");
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        let s = &l.settings;
        assert_eq!(s.source, SourceKind::Snowflake);
        match s.source_config().expect("resolve") {
            Some(SourceConfig::Snowflake(c)) => {
                assert_eq!(c.account, "myorg-acct");
                assert_eq!(c.schema.as_deref(), Some("curated"));
            }
            other => panic!("expected a Snowflake source, found {other:?}"),
        }
        for shown in [s.echo(), format!("{s:?}"), format!("{l:?}")] {
            assert!(!shown.contains(PASSWORD), "{shown}");
            assert!(shown.contains("[redacted]"), "{shown}");
        }
        assert!(s.echo().contains("myorg-acct"));

        // The same from a TOML file; --data still wins over it.
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("serve.toml");
        std::fs::write(
            &path,
            format!(
                "source = \"snowflake\"\n[snowflake]\naccount = \"a\"\nuser = \"u\"\npassword = \"{PASSWORD}\"\n"
            ),
        )
        .expect("write");
        let cli = Overrides {
            config: Some(path),
            ..Overrides::default()
        };
        let l = load(&cli, env(&[])).expect("file");
        assert!(matches!(
            l.settings.source_config().expect("resolve"),
            Some(SourceConfig::Snowflake(_))
        ));
        assert!(!l.settings.echo().contains(PASSWORD));
        let cli = Overrides {
            data: Some("/d".into()),
            ..cli
        };
        let l = load(&cli, env(&[])).expect("file + data");
        assert_eq!(
            l.settings.source_config().expect("resolve"),
            Some(SourceConfig::Parquet { dir: "/d".into() })
        );
    }

    #[test]
    fn an_incomplete_snowflake_source_is_refused_at_load() {
        let e = load(
            &Overrides::default(),
            env(&[
                ("APP_SOURCE", "snowflake"),
                ("APP_SNOWFLAKE_ACCOUNT", "a"),
                ("APP_SNOWFLAKE_PASSWORD", PASSWORD),
            ]),
        )
        .expect_err("no user");
        let msg = format!("{e:#}");
        assert!(msg.contains("APP_SNOWFLAKE_USER"), "{msg}");
        assert!(!msg.contains(PASSWORD), "{msg}");
        let e = load(&Overrides::default(), env(&[("APP_SOURCE", "oracle")]))
            .expect_err("unknown source");
        let msg = format!("{e:#}");
        assert!(
            msg.contains("APP_SOURCE") && msg.contains("oracle"),
            "{msg}"
        );
        // Without APP_SOURCE nothing changes: no data.
        let l = load(&Overrides::default(), env(&[])).expect("default");
        assert_eq!(l.settings.source_config().expect("resolve"), None);
    }

    const KEY: &str = "test-key-0123456789";

    #[test]
    fn without_keys_only_loopback_unless_anonymous_is_allowed() {
        for bind in ["127.0.0.1:0", "[::1]:0", "localhost:0"] {
            load(&Overrides::default(), env(&[("APP_BIND", bind)])).expect(bind);
        }
        let e = load(&Overrides::default(), env(&[("APP_BIND", "0.0.0.0:8080")]))
            .expect_err("open without keys");
        let msg = format!("{e:#}");
        assert!(
            msg.contains("0.0.0.0:8080")
                && msg.contains("APP_API_KEYS")
                && msg.contains("--allow-anonymous"),
            "{msg}"
        );
        let l = load(
            &Overrides::default(),
            env(&[
                ("APP_BIND", "0.0.0.0:8080"),
                ("APP_API_KEYS", &format!("{KEY}:read")),
            ]),
        )
        .expect("keys");
        assert_eq!(l.settings.api_keys.len(), 1);
        load(
            &Overrides::default(),
            env(&[("APP_BIND", "0.0.0.0:8080"), ("APP_ALLOW_ANONYMOUS", "1")]),
        )
        .expect("allowed by env");
        let cli = Overrides {
            allow_anonymous: true,
            bind: Some("0.0.0.0:8080".into()),
            ..Overrides::default()
        };
        load(&cli, env(&[])).expect("allowed by flag");
    }

    #[test]
    fn keys_come_from_env_or_file_and_are_never_shown() {
        let e =
            load(&Overrides::default(), env(&[("APP_API_KEYS", "abc:read")])).expect_err("short");
        let msg = format!("{e:#}");
        assert!(
            msg.contains("APP_API_KEYS") && msg.contains("at least 16"),
            "{msg}"
        );
        assert!(!msg.contains("abc"), "{msg}");
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("serve.toml");
        std::fs::write(
            &path,
            format!("api_keys = [\"{KEY}:predict\", \"{KEY}x\"]\n"),
        )
        .expect("write");
        let cli = Overrides {
            config: Some(path),
            ..Overrides::default()
        };
        let l = load(&cli, env(&[])).expect("file");
        assert_eq!(l.settings.api_keys.len(), 2);
        for shown in [l.settings.echo(), format!("{:?}", l.settings)] {
            assert!(!shown.contains(KEY), "{shown}");
            assert!(shown.contains("[redacted]:predict"), "{shown}");
        }
    }

    #[test]
    fn the_body_limit_is_sized_to_the_batch() {
        let s = Settings {
            max_batch: 100,
            ..Settings::default()
        };
        assert_eq!(
            s.batch_body_limit(),
            100 * BODY_BYTES_PER_RECORD + BODY_SLACK_BYTES
        );
        assert_eq!(s.record_body_limit(), RECORD_BODY_BYTES);
        assert_eq!(
            Settings::default().batch_body_limit(),
            10_000 * 2048 + 64 * 1024
        );
        let s = Settings {
            max_body_bytes: 4096,
            ..Settings::default()
        };
        assert_eq!((s.batch_body_limit(), s.record_body_limit()), (4096, 4096));
    }

    #[test]
    fn unknown_app_variables_are_warnings() {
        let l = load(&Overrides::default(), env(&[("APP_MAX_BATCHES", "3")])).expect("load");
        assert_eq!(l.warnings.len(), 1);
        assert!(l.warnings[0].contains("APP_MAX_BATCHES"));
    }
}
