//! Secrets never show: not in Debug output, serialised configuration, the
//! command line's help, nor error messages (even when the failure echoes them).

use std::path::Path;

use analytics_lib::source::{
    Secret, SnowflakeAuth, SnowflakeConfig, SnowflakeSource, Source, SourceArgs, SourceConfig,
    SourceKind,
};
use clap::{CommandFactory, Parser};
use reqwest_middleware::{ClientBuilder, Middleware, Next};

use super::emulator::Emulator;

const PASSWORD: &str = "hunter2-Sup3r-s3cret";

#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    source: SourceArgs,
}

fn args(extra: &[&str]) -> Cli {
    let mut argv = vec![
        "analytics",
        "--source",
        "snowflake",
        "--snowflake-account",
        "myorg-acct",
        "--snowflake-user",
        "analyst",
        "--snowflake-database",
        "sales",
        "--snowflake-schema",
        "curated",
    ];
    argv.extend_from_slice(extra);
    Cli::try_parse_from(argv).expect("valid arguments")
}

#[test]
fn the_password_is_never_printed_by_debug_serde_or_help() {
    let cli = args(&["--snowflake-password", PASSWORD]);
    assert_eq!(cli.source.source, SourceKind::Snowflake);
    let cfg = cli.source.resolve(None).expect("resolves");
    let SourceConfig::Snowflake(sf) = &cfg else {
        panic!("expected a Snowflake config, found {cfg:?}");
    };
    assert_eq!(sf.auth, SnowflakeAuth::Password(Secret::new(PASSWORD)));
    assert_eq!(sf.database.as_deref(), Some("sales"));
    for text in [
        format!("{cli:?}"),
        format!("{:?}", cli.source),
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
    let help = Cli::command().render_long_help().to_string();
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
fn configuration_errors_name_the_missing_setting() {
    let missing_auth = args(&[]).source.resolve(None).expect_err("no credentials");
    let text = missing_auth.to_string();
    assert!(
        text.contains("APP_SNOWFLAKE_PASSWORD") && text.contains("APP_SNOWFLAKE_PRIVATE_KEY_PATH"),
        "{text}"
    );

    let both = args(&[
        "--snowflake-password",
        PASSWORD,
        "--snowflake-private-key-path",
        "/k.pem",
    ])
    .source
    .resolve(None)
    .expect_err("both credentials");
    assert!(both.to_string().contains("both") && !both.to_string().contains(PASSWORD));

    let no_user = Cli::try_parse_from([
        "analytics",
        "--source",
        "snowflake",
        "--snowflake-account",
        "a",
        "--snowflake-password",
        PASSWORD,
    ])
    .expect("parses")
    .source
    .resolve(None)
    .expect_err("no user");
    assert!(
        no_user.to_string().contains("APP_SNOWFLAKE_USER"),
        "{no_user}"
    );

    // --data wins over the configured source; the default is the Parquet folder.
    let cfg = args(&["--snowflake-password", PASSWORD])
        .source
        .resolve(Some(Path::new("x/curated")));
    assert_eq!(
        cfg.expect("parquet"),
        SourceConfig::Parquet {
            dir: "x/curated".into()
        }
    );
    let default = Cli::try_parse_from(["analytics", "--source", "parquet"]).expect("parses");
    assert_eq!(
        default.source.resolve(None).expect("default"),
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
