//! The local Snowflake emulator (fakesnow in server mode) and the HTTP layer
//! that lets `snowflake-api` talk to it. Test code only: production code
//! never rewrites URLs or patches responses.
//!
//! fakesnow speaks the connectors' REST protocol over plain HTTP on
//! loopback. `snowflake-api` 0.14 always calls
//! `https://{account}.snowflakecomputing.com/…` and deserialises strict
//! response structs, so the [`EmulatorLayer`] middleware:
//!
//! * rewrites every request to `http://127.0.0.1:{port}` (same path and query);
//! * fills the response fields fakesnow leaves out — login: `sessionId`,
//!   `masterToken`, `validityInSeconds`, `masterValidityInSeconds`,
//!   `sessionInfo.roleName`; query: `returned`, `finalRoleName`, `version`;
//!   error: `age`, `internalError`, `queryId`, `sqlState` (and an error
//!   `data` object where fakesnow sends `null`).

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use analytics_lib::source::{Secret, SnowflakeAuth, SnowflakeConfig, SnowflakeSource};
use reqwest_middleware::{ClientBuilder, Middleware, Next};
use serde_json::{Value, json};

/// Where the fakesnow executable is: `FAKESNOW_BIN`, else
/// `.venv-fakesnow/bin/fakesnow` at the repository root. Neither: the test
/// fails and says how to install it.
pub fn fakesnow_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("FAKESNOW_BIN") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "FAKESNOW_BIN={} is not a file: point it at the fakesnow executable or unset it and run `make fakesnow-env`",
            p.display()
        );
        return p;
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(".venv-fakesnow")
        .join("bin")
        .join("fakesnow");
    assert!(
        p.is_file(),
        "the Snowflake emulator is not installed: expected {} (or FAKESNOW_BIN); run `make fakesnow-env` at the repository root",
        p.display()
    );
    p
}

/// A running fakesnow server, stopped on drop.
pub struct Emulator {
    child: Child,
    pub port: u16,
}

impl Emulator {
    /// Start `fakesnow -s -p <free port>` and wait until it accepts connections.
    pub fn start() -> Self {
        let bin = fakesnow_bin();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let log = std::env::temp_dir().join(format!("fakesnow-{port}.log"));
        let log_file = std::fs::File::create(&log).expect("fakesnow log file");
        let child = Command::new(&bin)
            .args(["-s", "-p", &port.to_string(), "--host", "127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log handle"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let mut emu = Emulator { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = emu.child.try_wait() {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("fakesnow exited ({status}) before listening on {port}:\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "fakesnow did not listen on port {port} within 60 s; log: {}",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        emu
    }

    /// A configuration for one schema of the emulator (any credentials work).
    pub fn config(&self, schema: &str) -> SnowflakeConfig {
        SnowflakeConfig {
            account: "testaccount".into(),
            user: "tester".into(),
            auth: SnowflakeAuth::Password(Secret::new("emulator-password")),
            warehouse: Some("compute_wh".into()),
            database: Some("analytics".into()),
            schema: Some(schema.into()),
            role: None,
        }
    }

    /// A Snowflake source on this emulator, reading `analytics.<schema>`.
    pub fn source(&self, schema: &str) -> SnowflakeSource {
        self.source_with(&self.config(schema))
    }

    pub fn source_with(&self, cfg: &SnowflakeConfig) -> SnowflakeSource {
        // uvicorn closes idle keep-alive connections after 5 s: drop ours sooner,
        // or a query after a long pause goes out on a closed connection.
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(2))
            .build()
            .expect("http client");
        let client = ClientBuilder::new(http)
            .with(EmulatorLayer { port: self.port })
            .build();
        SnowflakeSource::connect_with_http_client(cfg, client).expect("client for the emulator")
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Redirects `snowflake-api` to the emulator and completes its responses.
pub struct EmulatorLayer {
    pub port: u16,
}

fn set_default(obj: &mut Value, key: &str, v: Value) {
    if let Some(map) = obj.as_object_mut()
        && map.get(key).is_none_or(Value::is_null)
    {
        map.insert(key.to_string(), v);
    }
}

/// Fill what `snowflake-api` 0.14's response structs require.
pub fn patch_response(path: &str, body: &mut Value) {
    let success = body
        .get("success")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if !success {
        let code = body
            .get("code")
            .and_then(Value::as_str)
            .unwrap_or("000000")
            .to_string();
        if body.get("data").is_none_or(Value::is_null) {
            body["data"] = json!({ "errorCode": code });
        }
        let data = &mut body["data"];
        set_default(data, "errorCode", json!(code));
        set_default(data, "age", json!(0));
        set_default(data, "internalError", json!(false));
        set_default(data, "queryId", json!(""));
        set_default(data, "sqlState", json!(""));
        return;
    }
    let data = &mut body["data"];
    if path.ends_with("login-request") {
        let token = data.get("token").cloned().unwrap_or(json!(""));
        set_default(data, "sessionId", json!(1));
        set_default(data, "masterToken", token);
        set_default(data, "validityInSeconds", json!(3600));
        set_default(data, "masterValidityInSeconds", json!(14400));
        set_default(data, "serverVersion", json!("emulator"));
        if data.get("sessionInfo").is_none_or(Value::is_null) {
            data["sessionInfo"] = json!({});
        }
        set_default(&mut data["sessionInfo"], "roleName", json!("PUBLIC"));
    } else if path.ends_with("query-request") {
        let total = data.get("total").cloned().unwrap_or(json!(0));
        set_default(data, "returned", total);
        set_default(data, "finalRoleName", json!("PUBLIC"));
        set_default(data, "version", json!(1));
        set_default(data, "queryId", json!(""));
        set_default(data, "parameters", json!([]));
        set_default(data, "rowtype", json!([]));
        set_default(data, "statementTypeId", json!(0));
    }
}

#[async_trait::async_trait]
impl Middleware for EmulatorLayer {
    async fn handle(
        &self,
        mut req: reqwest::Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let url = req.url_mut();
        let _ = url.set_scheme("http");
        let _ = url.set_host(Some("127.0.0.1"));
        let _ = url.set_port(Some(self.port));
        let path = url.path().to_string();
        let resp = next.run(req, extensions).await?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        let body = match serde_json::from_slice::<Value>(&bytes) {
            Ok(mut v) => {
                patch_response(&path, &mut v);
                serde_json::to_vec(&v)
                    .map_err(|e| reqwest_middleware::Error::Middleware(e.into()))?
            }
            Err(_) => bytes.to_vec(),
        };
        let rebuilt = http::Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body)
            .map_err(|e| reqwest_middleware::Error::Middleware(e.into()))?;
        Ok(reqwest::Response::from(rebuilt))
    }
}
