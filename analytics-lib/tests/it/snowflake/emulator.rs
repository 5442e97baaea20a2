//! The local Snowflake emulator (fakesnow in server mode), started and
//! stopped per test. The HTTP layer that lets `snowflake-api` talk to it is
//! the library's test hook `analytics_lib::source::emulator` (feature
//! `test-hooks`). Test code only: production code never rewrites URLs or
//! patches responses.
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

use analytics_lib::source::emulator;
use analytics_lib::source::{Secret, SnowflakeAuth, SnowflakeConfig, SnowflakeSource};

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
        let client = emulator::client(self.port).expect("http client");
        SnowflakeSource::connect_with_http_client(cfg, client).expect("client for the emulator")
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
