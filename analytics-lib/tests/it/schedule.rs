//! The scheduled retrain (`scripts/scheduled-retrain.sh`, what
//! `.github/workflows/retrain.yml` runs) end to end, as the schedule runs
//! it: every run on a **fresh clone** of a git repository, with the model
//! registry kept in a local DVC remote and its pointers committed back, the
//! data from the Snowflake emulator (pushed down) or pulled from the DVC
//! remote.
//!
//! 1. Snowflake, first run: trains, promotes, stores the registry.
//! 2. Snowflake, same data, fresh clone: the registry comes back from the
//!    remote and the run trains nothing (the data's fingerprint is the live
//!    versions').
//! 3. Parquet pulled with DVC, same tables: the same fingerprint (push-down
//!    and local features are bit-identical), nothing trained either.
//! 4. New data pushed to the remote: the next run trains against the stored
//!    champion (live_before is the first run's version).
//! 5. A broken source: the script fails and the stored registry is unchanged.
//!
//! Needs git, DVC (`make dvc-env`) and fakesnow (`make fakesnow-env`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use analytics_lib::data::generate::{GeneratorConfig, generate};
use serde_json::Value;
use tempfile::TempDir;

use crate::helpers::assert_mentions;
use crate::snowflake::bulk_load;
use crate::snowflake::emulator::Emulator;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn dvc_bin() -> PathBuf {
    let p = root().join(".venv-dvc").join("bin").join("dvc");
    assert!(
        p.is_file(),
        "DVC is not installed: expected {} (run `make dvc-env` at the repository root)",
        p.display()
    );
    p
}

#[track_caller]
fn run<C: std::borrow::BorrowMut<Command>>(dir: &Path, mut cmd: C) -> Output {
    let cmd = cmd.borrow_mut();
    let out = cmd.current_dir(dir).output().expect("run a command");
    assert!(
        out.status.success(),
        "{cmd:?} in {} failed:\n--- stdout\n{}\n--- stderr\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn git(args: &[&str]) -> Command {
    let mut c = Command::new("git");
    c.args(args)
        .env("GIT_AUTHOR_NAME", "schedule test")
        .env("GIT_AUTHOR_EMAIL", "schedule@test.invalid")
        .env("GIT_COMMITTER_NAME", "schedule test")
        .env("GIT_COMMITTER_EMAIL", "schedule@test.invalid");
    c
}

fn dvc(args: &[&str]) -> Command {
    let mut c = Command::new(dvc_bin());
    c.args(args).env("DVC_NO_ANALYTICS", "1");
    c
}

/// The project's params.yaml with small models: the test is about the
/// schedule, not the fit.
fn small_params() -> String {
    let text = std::fs::read_to_string(root().join("params.yaml")).expect("params.yaml");
    let mut out = text.clone();
    for (from, to) in [
        ("n_trees: 100", "n_trees: 8"),
        ("rounds: 200", "rounds: 10"),
        ("n_runs: 10", "n_runs: 2"),
        ("k_max: 8", "k_max: 5"),
        ("silhouette_sample: 5000", "silhouette_sample: 1000"),
    ] {
        assert!(out.contains(from), "params.yaml has no `{from}`");
        out = out.replace(from, to);
    }
    out
}

struct Schedule {
    tmp: TempDir,
    origin: PathBuf,
    emu: Emulator,
    runs: usize,
}

impl Schedule {
    /// A bare `origin` holding the project's script and the DVC setup
    /// (a local remote), like the repository a scheduled workflow checks out.
    fn new() -> Self {
        let tmp = TempDir::new().expect("tmp");
        let origin = tmp.path().join("origin.git");
        let remote = tmp.path().join("dvc-remote");
        std::fs::create_dir_all(&remote).expect("remote");
        run(
            tmp.path(),
            git(&["init", "-q", "--bare", "-b", "main"]).arg(&origin),
        );
        let seed = tmp.path().join("seed");
        run(tmp.path(), git(&["clone", "-q"]).arg(&origin).arg(&seed));
        std::fs::create_dir_all(seed.join("scripts")).expect("scripts");
        std::fs::copy(
            root().join("scripts/scheduled-retrain.sh"),
            seed.join("scripts/scheduled-retrain.sh"),
        )
        .expect("copy the script");
        std::fs::copy(root().join(".gitignore"), seed.join(".gitignore")).expect("gitignore");
        std::fs::create_dir_all(seed.join("models")).expect("models");
        std::fs::write(seed.join("models/README.md"), "the registry\n").expect("readme");
        std::fs::write(seed.join("params.yaml"), small_params()).expect("params");
        run(&seed, dvc(&["init", "-q"]));
        run(&seed, dvc(&["remote", "add", "-d", "storage"]).arg(&remote));
        run(&seed, git(&["add", "-A"]));
        run(&seed, git(&["commit", "-q", "-m", "project"]));
        run(&seed, git(&["push", "-q", "origin", "main"]));
        Schedule {
            origin,
            emu: Emulator::start(),
            runs: 0,
            tmp,
        }
    }

    /// A fresh clone of `origin` (a new runner).
    fn checkout(&mut self) -> PathBuf {
        self.runs += 1;
        let dir = self.tmp.path().join(format!("run-{}", self.runs));
        run(
            self.tmp.path(),
            git(&["clone", "-q"]).arg(&self.origin).arg(&dir),
        );
        dir
    }

    /// Generate tables (2 % defects) into `data/curated` of a fresh clone,
    /// track and push them with DVC, and load the same tables into the
    /// emulator's `schema`.
    fn publish_data(&mut self, seed: u64, schema: &str) {
        let dir = self.checkout();
        let data = dir.join("data/curated");
        let cfg = GeneratorConfig {
            lines: 6_000,
            seed,
            defect_rate: 0.02,
            progress: false,
            ..GeneratorConfig::default()
        };
        generate(&cfg, &data).expect("generate");
        run(&dir, dvc(&["add", "-q", "data/curated"]));
        run(&dir, dvc(&["push", "-q", "data/curated.dvc"]));
        run(&dir, git(&["add", "data/curated.dvc"]));
        run(&dir, git(&["commit", "-q", "-m", "curated data"]));
        run(&dir, git(&["push", "-q", "origin", "main"]));
        bulk_load(&self.emu.source(schema), &data);
    }

    /// The script on a fresh clone; `snowflake`: the schema to read, else
    /// the data is pulled with DVC. Its output and JSON report.
    fn retrain(&mut self, snowflake: Option<&str>) -> (Output, Option<Value>) {
        let dir = self.checkout();
        let mut c = Command::new("bash");
        c.arg("scripts/scheduled-retrain.sh")
            .env("ANALYTICS_BIN", env!("CARGO_BIN_EXE_analytics"))
            .env("DVC", dvc_bin())
            .env("COMMIT", "1")
            .env("PUSH", "1")
            .env("OMP_WAIT_POLICY", "PASSIVE")
            .env("GIT_AUTHOR_NAME", "schedule test")
            .env("GIT_AUTHOR_EMAIL", "schedule@test.invalid")
            .env("GIT_COMMITTER_NAME", "schedule test")
            .env("GIT_COMMITTER_EMAIL", "schedule@test.invalid")
            .env_remove("MLFLOW_TRACKING_URI")
            .env_remove("APP_SOURCE")
            .env_remove("DVC_REMOTE_URL")
            .current_dir(&dir);
        if let Some(schema) = snowflake {
            let cfg = self.emu.config(schema);
            c.env("APP_SOURCE", "snowflake")
                .env("APP_SNOWFLAKE_ACCOUNT", &cfg.account)
                .env("APP_SNOWFLAKE_USER", &cfg.user)
                .env("APP_SNOWFLAKE_PASSWORD", "emulator-password")
                .env("APP_SNOWFLAKE_WAREHOUSE", "compute_wh")
                .env("APP_SNOWFLAKE_DATABASE", "analytics")
                .env("APP_SNOWFLAKE_SCHEMA", schema)
                .env(
                    "ANALYTICS_TEST_SNOWFLAKE_EMULATOR",
                    self.emu.port.to_string(),
                );
        }
        let out = c.output().expect("run the script");
        let report = std::fs::read(dir.join("retrain-report.json"))
            .ok()
            .map(|b| serde_json::from_slice(&b).expect("JSON report"));
        (out, report)
    }

    /// The registry pointers committed on `origin`'s main.
    fn stored_pointers(&self) -> String {
        let out = run(
            self.tmp.path(),
            git(&["--git-dir"])
                .arg(&self.origin)
                .args(["show", "main:models/customer_spend.dvc"]),
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

#[track_caller]
fn succeeded(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "the scheduled retrain failed:\n{err}");
    err
}

#[test]
fn the_scheduled_retrain_runs_end_to_end_on_fresh_clones() {
    let mut s = Schedule::new();
    s.publish_data(23, "week1");

    // 1. Snowflake: the first run trains and stores the registry.
    let (out, report) = s.retrain(Some("week1"));
    let log = succeeded(&out);
    assert_mentions(
        &log,
        &[
            "no registry stored yet",
            "data: Snowflake (pushed down",
            "storing the registry",
        ],
    );
    let r = report.expect("report");
    assert!(r["skipped"].is_null(), "{r}");
    assert_eq!(r["decision"]["customer_spend"], "promoted");
    assert_eq!(r["decision"]["segments"], "promoted");
    assert!(
        r["data"]["source"]
            .as_str()
            .unwrap_or("")
            .starts_with("snowflake account"),
        "{r}"
    );
    let fetched = r["data"]["fetched"]["rows"].as_u64().expect("fetched rows");
    let customers = r["data"]["customers_segments"].as_u64().expect("customers");
    // One row per customer and cutoff (four), one per customer (CLV summary).
    assert!(fetched <= 5 * customers + 100, "{fetched} rows fetched");
    let fingerprint = r["data"]["fingerprint"].clone();
    let first_pointers = s.stored_pointers();
    assert!(first_pointers.contains("md5"), "{first_pointers}");

    // 2. A new runner, the same data: the registry is restored, nothing trained.
    let (out, report) = s.retrain(Some("week1"));
    let log = succeeded(&out);
    assert!(!log.contains("no registry stored yet"), "{log}");
    let r = report.expect("report");
    assert_mentions(
        r["skipped"].as_str().expect("skipped"),
        &["unchanged", "v0001"],
    );
    assert_eq!(r["data"]["fingerprint"], fingerprint);

    // 3. The same tables pulled with DVC: the same fingerprint, nothing trained.
    let (out, report) = s.retrain(None);
    let log = succeeded(&out);
    assert_mentions(&log, &["data: dvc pull data/curated"]);
    let r = report.expect("report");
    assert!(r["skipped"].is_string(), "{r}");
    assert_eq!(r["data"]["fingerprint"], fingerprint);
    assert!(r["data"]["fetched"].is_null());

    // 4. New data: trained against the stored champion.
    s.publish_data(24, "week2");
    let (out, report) = s.retrain(None);
    succeeded(&out);
    let r = report.expect("report");
    assert!(r["skipped"].is_null(), "{r}");
    assert_ne!(r["data"]["fingerprint"], fingerprint);
    for model in ["customer_spend", "segments"] {
        let m = &r["models"][model];
        assert_eq!(m["live_before"], "v0001", "{model}: {m}");
        assert_eq!(m["champion"]["version"], "v0001", "{model}: {m}");
        assert_eq!(m["challenger"]["version"], "v0002", "{model}: {m}");
    }
    let pointers = s.stored_pointers();
    assert_ne!(pointers, first_pointers, "the new registry was stored");

    // 5. A broken source: the run fails, the stored registry stays.
    let (out, _) = s.retrain(Some("no_such_schema"));
    assert!(!out.status.success());
    assert_mentions(
        &String::from_utf8_lossy(&out.stderr),
        &["analytics retrain failed", "stored registry is unchanged"],
    );
    assert_eq!(s.stored_pointers(), pointers);
}
