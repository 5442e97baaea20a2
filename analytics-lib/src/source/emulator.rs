//! **Test hooks only** (feature `test-hooks`, which `cargo build` never
//! turns on): the HTTP layer that lets `snowflake-api` talk to the local
//! Snowflake emulator (fakesnow in server mode, plain HTTP on loopback).
//! Production code never rewrites URLs or patches responses.
//!
//! `snowflake-api` 0.14 always calls `https://{account}.snowflakecomputing.com/…`
//! and deserialises strict response structs, so [`EmulatorLayer`]:
//!
//! * rewrites every request to `http://127.0.0.1:{port}` (same path and query);
//! * fills the response fields fakesnow leaves out — login: `sessionId`,
//!   `masterToken`, `validityInSeconds`, `masterValidityInSeconds`,
//!   `sessionInfo.roleName`; query: `returned`, `finalRoleName`, `version`;
//!   error: `age`, `internalError`, `queryId`, `sqlState` (and an error
//!   `data` object where fakesnow sends `null`).
//!
//! The tests use it directly ([`client`]); a binary built with the test
//! hooks (the one `cargo test` builds, which the scheduled-retrain script's
//! test and serve's tests run) sends its Snowflake source there when
//! [`EMULATOR_ENV`] names the emulator's port.

use std::time::Duration;

use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};
use serde_json::{Value, json};

use super::{Result, SourceError};

/// The variable that sends a test build's Snowflake source to the emulator
/// on `127.0.0.1:<port>`.
pub const EMULATOR_ENV: &str = "ANALYTICS_TEST_SNOWFLAKE_EMULATOR";

/// The emulator's port from [`EMULATOR_ENV`], when set.
pub fn port_from_env() -> Result<Option<u16>> {
    match std::env::var(EMULATOR_ENV) {
        Err(_) => Ok(None),
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => v.trim().parse().map(Some).map_err(|_| SourceError::Config {
            name: "snowflake emulator port",
            env: EMULATOR_ENV,
            expected: "a port number".into(),
            found: format!("`{v}`"),
        }),
    }
}

/// An HTTP client for `snowflake-api` that reaches the emulator on `port`.
pub fn client(port: u16) -> Result<ClientWithMiddleware> {
    // uvicorn closes idle keep-alive connections after 5 s: drop ours sooner,
    // or a query after a long pause goes out on a closed connection.
    let http = reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| SourceError::Snowflake {
            action: "building the emulator's HTTP client".into(),
            message: e.to_string(),
        })?;
    Ok(ClientBuilder::new(http)
        .with(EmulatorLayer { port })
        .build())
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
