//! Secrets never show: not in Debug output, serialised configuration, the
//! command line's help, nor error messages (even when the failure echoes them).

use std::path::Path;

use analytics_lib::source::{
    Secret, SnowflakeAuth, SnowflakeConfig, SnowflakeSettings, SnowflakeSource, Source,
    SourceConfig, SourceKind, SourceSettings,
};
use reqwest_middleware::{ClientBuilder, Middleware, Next};

use super::emulator::Emulator;

const PASSWORD: &str = "hunter2-Sup3r-s3cret";

/// Snowflake settings as a file, the environment and the flags give them.
fn settings(password: Option<&str>, key: Option<&str>) -> SourceSettings {
    SourceSettings {
        source: SourceKind::Snowflake,
        snowflake: SnowflakeSettings {
            account: Some("myorg-acct".into()),
            user: Some("analyst".into()),
            database: Some("sales".into()),
            schema: Some("curated".into()),
            password: password.map(Secret::new),
            private_key_path: key.map(Into::into),
            ..Default::default()
        },
    }
}

#[test]
fn the_password_is_never_printed_by_debug_serde_or_help() {
    let s = settings(Some(PASSWORD), None);
    let cfg = s.resolve(None).expect("resolves");
    let SourceConfig::Snowflake(sf) = &cfg else {
        panic!("expected a Snowflake config, found {cfg:?}");
    };
    assert_eq!(sf.auth, SnowflakeAuth::Password(Secret::new(PASSWORD)));
    assert_eq!(sf.database.as_deref(), Some("sales"));
    for text in [
        format!("{s:?}"),
        format!("{:?}", s.snowflake),
        serde_json::to_string(&s).expect("json"),
        format!("{cfg:?}"),
        format!("{cfg:#?}"),
        serde_json::to_string(&cfg).expect("json"),
        format!("{}", Secret::new(PASSWORD)),
    ] {
        assert!(!text.contains(PASSWORD), "secret leaked: {text}");
        assert!(
            text.contains("[redacted]"),
            "no redaction marker in: {text}"
        );
    }
    // The command line's help names the variables (and shows no value).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_analytics"))
        .args(["kpis", "--help"])
        .env("APP_SNOWFLAKE_PASSWORD", PASSWORD)
        .output()
        .expect("analytics kpis --help");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{help}");
    assert!(
        help.contains("APP_SNOWFLAKE_PASSWORD") && help.contains("APP_SOURCE"),
        "{help}"
    );
    assert!(!help.contains(PASSWORD));

    // A serialised configuration reads back (secrets are given, never written).
    let json = r#"{"kind":"snowflake","account":"a","user":"u","auth":{"password":"pw"},
        "warehouse":null,"database":"d","schema":"s","role":null}"#;
    let back: SourceConfig = serde_json::from_str(json).expect("config from json");
    let SourceConfig::Snowflake(sf) = back else {
        panic!("expected snowflake");
    };
    assert_eq!(sf.auth, SnowflakeAuth::Password(Secret::new("pw")));
}

#[test]
fn the_environment_is_read_in_one_place_and_flags_win() {
    let mut s = SourceSettings::default();
    for (k, v) in [
        ("APP_SOURCE", "Snowflake"),
        ("APP_SNOWFLAKE_ACCOUNT", "env-acct"),
        ("APP_SNOWFLAKE_USER", "env-user"),
        ("APP_SNOWFLAKE_PASSWORD", PASSWORD),
    ] {
        assert!(s.apply_env(k, v).expect("valid"), "{k}");
    }
    assert!(!s.apply_env("APP_BIND", "x").expect("not ours"));
    let e = s
        .apply_env("APP_SOURCE", "csv")
        .expect_err("bad kind")
        .to_string();
    assert!(
        e.contains("APP_SOURCE") && e.contains("parquet") && e.contains("csv"),
        "{e}"
    );
    let flags = SnowflakeSettings {
        user: Some("flag-user".into()),
        ..Default::default()
    };
    let s = s.overlay(None, flags);
    let SourceConfig::Snowflake(sf) = s.resolve(None).expect("resolves") else {
        panic!("expected snowflake");
    };
    assert_eq!(
        (sf.account.as_str(), sf.user.as_str()),
        ("env-acct", "flag-user")
    );
    let s = s.overlay(Some(SourceKind::Parquet), SnowflakeSettings::default());
    assert_eq!(s.resolve(None).expect("parquet"), SourceConfig::default());
}

#[test]
fn configuration_errors_name_the_missing_setting() {
    let missing_auth = settings(None, None)
        .resolve(None)
        .expect_err("no credentials");
    let text = missing_auth.to_string();
    assert!(
        text.contains("APP_SNOWFLAKE_PASSWORD") && text.contains("APP_SNOWFLAKE_PRIVATE_KEY_PATH"),
        "{text}"
    );

    let both = settings(Some(PASSWORD), Some("/k.pem"))
        .resolve(None)
        .expect_err("both credentials");
    assert!(both.to_string().contains("both") && !both.to_string().contains(PASSWORD));

    let mut no_user = settings(Some(PASSWORD), None);
    no_user.snowflake.user = None;
    let no_user = no_user.resolve(None).expect_err("no user");
    assert!(
        no_user.to_string().contains("APP_SNOWFLAKE_USER"),
        "{no_user}"
    );

    // --data wins over the configured source; the default is the Parquet folder.
    let cfg = settings(Some(PASSWORD), None).resolve(Some(Path::new("x/curated")));
    assert_eq!(
        cfg.expect("parquet"),
        SourceConfig::Parquet {
            dir: "x/curated".into()
        }
    );
    assert_eq!(
        SourceSettings::default().resolve(None).expect("default"),
        SourceConfig::default()
    );
}

/// A failing HTTP layer that echoes the whole login request (password
/// included) in its error, as a careless proxy or server might.
struct EchoingFailure;

#[async_trait::async_trait]
impl Middleware for EchoingFailure {
    async fn handle(
        &self,
        req: reqwest::Request,
        _: &mut http::Extensions,
        _: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let body = req
            .body()
            .and_then(|b| b.as_bytes())
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        Err(reqwest_middleware::Error::Middleware(anyhow::anyhow!(
            "login refused for request {body}"
        )))
    }
}

fn sf_config(auth: SnowflakeAuth) -> SnowflakeConfig {
    SnowflakeConfig {
        account: "myorg-acct".into(),
        user: "analyst".into(),
        auth,
        warehouse: None,
        database: Some("sales".into()),
        schema: Some("curated".into()),
        role: None,
    }
}

#[test]
fn errors_are_scrubbed_of_the_password_and_the_private_key() {
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(EchoingFailure)
        .build();
    let sf = SnowflakeSource::connect_with_http_client(
        &sf_config(SnowflakeAuth::Password(Secret::new(PASSWORD))),
        client,
    )
    .expect("client");
    let err = sf
        .query("SELECT 1")
        .expect_err("the layer refuses")
        .to_string();
    assert!(err.contains("login refused"), "the cause is kept: {err}");
    assert!(
        err.contains("[redacted]"),
        "the echoed password is redacted: {err}"
    );
    assert!(!err.contains(PASSWORD), "password leaked: {err}");
    assert!(!format!("{sf:?}").contains(PASSWORD));
    let source = Source::Snowflake(Box::new(sf));
    assert!(!format!("{source:?}").contains(PASSWORD) && source.describe().contains("myorg-acct"));

    // A key file that is not a valid key: the error never quotes its contents.
    let dir = tempfile::TempDir::new().expect("temp dir");
    let key = dir.path().join("key.pem");
    let body = "-----BEGIN PRIVATE KEY-----\nTm90QVJlYWxLZXlCdXRTZWNyZXRBbnl3YXk=\n-----END PRIVATE KEY-----\n";
    std::fs::write(&key, body).expect("write key");
    let emu = Emulator::start();
    let sf = emu.source_with(&sf_config(SnowflakeAuth::PrivateKeyPath(key.clone())));
    let err = sf
        .query("SELECT 1")
        .expect_err("not a valid key")
        .to_string();
    assert!(
        !err.contains("Tm90QVJlYWxLZXlCdXRTZWNyZXRBbnl3YXk="),
        "key leaked: {err}"
    );

    // A missing key file: the path is named (it is not a secret).
    let missing = SnowflakeSource::connect(&sf_config(SnowflakeAuth::PrivateKeyPath(
        dir.path().join("absent.pem"),
    )))
    .expect_err("no such file")
    .to_string();
    assert!(
        missing.contains("absent.pem") && missing.contains("APP_SNOWFLAKE_PRIVATE_KEY_PATH"),
        "{missing}"
    );
}
