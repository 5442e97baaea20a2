//! The OpenAPI document is the truth (issue 16): schemathesis (PyPI,
//! `.venv-schemathesis`, installed by `make schemathesis-env`, which `make
//! test` runs) generates requests from the document the real release
//! `serve` binary serves, on generated data with trained models, with keys
//! on, and runs every check (`--checks all`: server errors, status codes,
//! content types, headers, response schemas, schema-valid data accepted,
//! schema-violating data refused, methods not in the document refused,
//! authentication not ignored). Real customer ids are supplied by the hooks
//! in `serve/tests/schemathesis/hooks.py`, so that lookups are exercised.
//! At least 1,000 cases, no failure.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use analytics_lib::registry::{SEGMENTS, SPEND};

use crate::helpers::{Seg, commit_segments, commit_spend, fixture, promote};

/// The repository's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

/// The schemathesis command line, or a failure saying how to install it.
fn schemathesis_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SCHEMATHESIS_BIN") {
        return p.into();
    }
    let p = root().join(".venv-schemathesis/bin/schemathesis");
    assert!(
        p.exists(),
        "schemathesis is not installed: expected {} (or SCHEMATHESIS_BIN); run `make schemathesis-env` at the repository root",
        p.display()
    );
    p
}

/// The real `serve` binary, started on the fixture's data and a registry
/// with both models live; killed on drop.
pub struct Served {
    child: Child,
    pub port: u16,
    pub pid: u32,
    _models: tempfile::TempDir,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `serve` with `env`; returns once it listens (its port read from
/// its log) and `/health` answers.
pub fn start_serve(env: &[(&str, &str)]) -> Served {
    let f = fixture();
    let models = tempfile::TempDir::new().expect("tmp");
    promote(models.path(), SPEND, commit_spend(models.path(), &f.best));
    promote(
        models.path(),
        SEGMENTS,
        commit_segments(models.path(), Seg::Four),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_serve"))
        .args(["--bind", "127.0.0.1:0", "--models"])
        .arg(models.path())
        .arg("--data")
        .arg(&f.data)
        .env_remove("APP_API_KEYS")
        .envs([
            ("APP_RELOAD_INTERVAL_MS", "0"),
            ("APP_WORKERS", "2"),
            ("APP_ACCESS_LOG", "off"),
            ("OMP_WAIT_POLICY", "PASSIVE"),
        ])
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start serve");
    let pid = child.id();
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Read to the end, so that serve never blocks on a full pipe.
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent && let Some(addr) = line.strip_prefix("serve: listening on http://127.0.0.1:")
            {
                let _ = tx.send(Ok(addr.trim().parse::<u16>().unwrap_or(0)));
                sent = true;
            } else if !sent {
                let _ = tx.send(Err(line));
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut log = Vec::new();
    let port = loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(Ok(port)) => break port,
            Ok(Err(line)) => log.push(line),
            Err(_) => {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("serve exited ({status}):\n{}", log.join("\n"));
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "serve did not start:\n{}",
            log.join("\n")
        );
    };
    Served {
        child,
        port,
        pid,
        _models: models,
    }
}

#[test]
fn schemathesis_finds_nothing_in_at_least_1000_cases() {
    let st = schemathesis_bin();
    let key = "schemathesis-key-0123456789";
    let served = start_serve(&[("APP_API_KEYS", key)]);
    let work = tempfile::tempdir().expect("tmp");
    let ids = work.path().join("ids.txt");
    let some: Vec<&str> = fixture()
        .all_customers
        .iter()
        .step_by(7)
        .take(200)
        .map(|(id, _)| id.as_str())
        .collect();
    std::fs::write(&ids, some.join("\n")).expect("ids");
    let stats = work.path().join("stats.json");
    let junit = work.path().join("junit.xml");
    let t0 = Instant::now();
    let out = Command::new(&st)
        .current_dir(work.path())
        .arg("run")
        .arg(format!("http://127.0.0.1:{}/openapi.json", served.port))
        .args(["--checks", "all"])
        .args(["--header", &format!("Authorization: Bearer {key}")])
        // One worker: with two, hypothesis parses its lambdas' source on
        // two threads at once, and CPython 3.11's AST constructor keeps its
        // recursion depth per interpreter, not per thread, so one run in
        // many dies inside schemathesis with "SystemError: AST constructor
        // recursion depth mismatch" (cpython gh-106905) before testing
        // anything.
        .args(["--max-examples", "120", "--seed", "16", "--workers", "1"])
        .args(["--generation-database", "none", "--no-color"])
        .args(["--request-timeout", "30", "--report", "junit"])
        .arg("--report-junit-path")
        .arg(&junit)
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("PYTHONPATH", root().join("serve/tests/schemathesis"))
        .env("SCHEMATHESIS_CUSTOMER_IDS", &ids)
        .env("SCHEMATHESIS_STATS", &stats)
        .env("NO_COLOR", "1")
        .output()
        .expect("run schemathesis");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    // The summary line: "Test cases:\n  1234 generated, 1234 passed …".
    let generated = text
        .lines()
        .skip_while(|l| !l.starts_with("Test cases:"))
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok());
    eprintln!(
        "schemathesis: {} cases in {:.0} s, exit {:?}\n{}",
        generated.map_or("?".into(), |n| n.to_string()),
        t0.elapsed().as_secs_f64(),
        out.status.code(),
        text.lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(out.status.success(), "schemathesis found failures:\n{text}");
    assert!(
        !text.contains("failures,") && !text.contains(" failure,"),
        "{text}"
    );
    let generated = generated.unwrap_or_else(|| panic!("no case count in the summary:\n{text}"));
    assert!(generated >= 1_000, "only {generated} cases:\n{text}");
    let stats = std::fs::read_to_string(&stats).expect("hook stats");
    let stats: serde_json::Value = serde_json::from_str(&stats).expect("stats json");
    assert!(
        stats["lookups_answered"].as_u64() >= Some(20),
        "real customer ids were hardly looked up: {stats}"
    );
    drop(served);
}
