//! Fresh data without a restart (`serve/src/snapshot.rs`): a Parquet
//! folder replaced under load is swapped in atomically (no request fails,
//! lookups switch to the new data, `/ready` and `/models` show the new
//! snapshot); a snapshot that fails validation is refused and the live one
//! stays; the dashboard follows a promoted segment model.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use analytics_lib::data::generate::{GeneratorConfig, generate};
use analytics_lib::features::customer_features;
use analytics_lib::registry::SEGMENTS;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::helpers::{Seg, TestApp, json_of, spawn};

/// Generated tables: the same seed and dates, so the customers of the
/// smaller set are the first ones of the larger (with the same orders).
fn tables(dir: &Path, lines: u64) -> PathBuf {
    let cfg = GeneratorConfig {
        lines,
        seed: 11,
        defect_rate: 0.01,
        progress: false,
        ..GeneratorConfig::default()
    };
    generate(&cfg, dir).expect("generate");
    dir.to_path_buf()
}

fn customers(dir: &Path) -> Vec<String> {
    let dir = dir.to_path_buf();
    std::thread::spawn(move || {
        let sales = analytics_lib::retrain::prepare(&dir)
            .expect("prepare")
            .sales;
        customer_features(&sales, sales.default_as_of, None)
            .expect("features")
            .customer_ids()
            .expect("ids")
    })
    .join()
    .expect("customers")
}

/// Point the symlink `link` at `target` atomically (a new link renamed over it).
fn point(link: &Path, target: &Path) {
    let tmp = link.with_extension("next");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).expect("symlink");
    std::fs::rename(&tmp, link).expect("rename the link");
}

async fn ready(app: &TestApp) -> Value {
    app.get("/ready").await.json().await.expect("json")
}

async fn until(app: &TestApp, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let r = ready(app).await;
        if ok(&r) {
            return r;
        }
        assert!(Instant::now() < deadline, "{what}: /ready is still {r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn predict(app: &TestApp, id: &str) -> u16 {
    app.post_json("/predict", &json!({"customer_id": id}))
        .await
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replaced_folder_is_swapped_in_under_load_and_a_bad_one_refused() {
    let tmp = TempDir::new().expect("tmp");
    let v1 = tables(&tmp.path().join("v1"), 6_000);
    let v2 = tables(&tmp.path().join("v2"), 12_000);
    // A bad snapshot: the orders table without its status column.
    let bad = tmp.path().join("bad");
    std::fs::create_dir_all(&bad).expect("bad");
    for f in std::fs::read_dir(&v2).expect("v2").flatten() {
        std::fs::copy(f.path(), bad.join(f.file_name())).expect("copy");
    }
    {
        use analytics_lib::polars::prelude::*;
        let file = std::fs::File::open(bad.join("orders.parquet")).expect("open");
        let mut df = ParquetReader::new(file)
            .finish()
            .expect("read")
            .drop("status")
            .expect("drop");
        let file = std::fs::File::create(bad.join("orders.parquet")).expect("create");
        ParquetWriter::new(file).finish(&mut df).expect("write");
    }
    let (old, new) = (customers(&v1), customers(&v2));
    let common = old[0].clone();
    assert!(new.contains(&common), "the first customer is in both");
    let only_new = new
        .iter()
        .find(|c| !old.contains(c))
        .expect("a customer only in the new data")
        .clone();

    let link = tmp.path().join("curated");
    std::os::unix::fs::symlink(&v1, &link).expect("link");
    let app = Arc::new(
        spawn(
            |s| {
                s.data = Some(link.clone());
                s.reload_interval_ms = 100;
            },
            |_| {},
        )
        .await,
    );
    let first = until(&app, "ready", |r| r["status"] == "ready").await;
    let fp1 = first["data"]["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_string();
    assert!(
        first["data"]["source"]
            .as_str()
            .unwrap_or("")
            .contains("parquet")
    );
    assert!(first["data"]["loaded_at"].is_string() && first["data"]["as_of"].is_string());
    assert_eq!(predict(&app, &only_new).await, 404, "not in the first data");

    // Requests in a loop from several tasks while the folder is replaced.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut tasks = Vec::new();
    for t in 0..4 {
        let (app, stop, ok, failed) = (app.clone(), stop.clone(), ok.clone(), failed.clone());
        let id = common.clone();
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let status = if t % 2 == 0 {
                    predict(&app, &id).await
                } else {
                    app.post_json("/segment", &json!({"customer_id": id}))
                        .await
                        .status()
                        .as_u16()
                };
                if status == 200 {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    point(&link, &v2);
    let swapped = until(&app, "the new snapshot", |r| {
        r["data"]["fingerprint"].as_str().is_some_and(|f| f != fp1)
    })
    .await;
    // Lookups switch to the new data (the models are re-bound after the swap).
    let deadline = Instant::now() + Duration::from_secs(30);
    while predict(&app, &only_new).await != 200 {
        assert!(Instant::now() < deadline, "the new customer is never found");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("task");
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert_eq!(
        failed, 0,
        "{failed} failed requests during the swap ({ok} ok)"
    );
    assert!(ok > 50, "only {ok} requests ran");
    let fp2 = swapped["data"]["fingerprint"].clone();
    let models: Value = app.get("/models").await.json().await.expect("json");
    assert_eq!(models["data"]["fingerprint"], fp2);
    assert_eq!(
        app.post_json("/segment", &json!({"customer_id": only_new}))
            .await
            .status()
            .as_u16(),
        200
    );

    // A bad snapshot: refused, the live one stays and still answers.
    point(&link, &bad);
    let refused = until(&app, "the refusal", |r| r["data"]["refused"].is_string()).await;
    assert_eq!(refused["data"]["fingerprint"], fp2);
    let why = refused["data"]["refused"].as_str().unwrap_or("");
    assert!(why.contains("status"), "{why}");
    assert_eq!(predict(&app, &only_new).await, 200);
    assert_eq!(refused["status"], "ready");
}

async fn options(app: &TestApp) -> Value {
    app.get("/api/dashboard/options")
        .await
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn the_dashboard_follows_a_promoted_segment_model() {
    let mut three = None;
    let app = spawn(
        |s| s.reload_interval_ms = 100,
        |models| three = Some(crate::helpers::commit_segments(models, Seg::Three)),
    )
    .await;
    let before = options(&app).await;
    assert_eq!(
        before["segments"]["segments"].as_array().map(Vec::len),
        Some(4)
    );
    let three = three.expect("committed");
    assert_ne!(before["segments"]["version"], json!(three.to_string()));

    app.promote(SEGMENTS, three);
    let deadline = Instant::now() + Duration::from_secs(90);
    let after = loop {
        let o = options(&app).await;
        if o["segments"]["version"] == json!(three.to_string()) {
            break o;
        }
        assert!(
            Instant::now() < deadline,
            "the dashboard kept {}",
            o["segments"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        after["segments"]["segments"].as_array().map(Vec::len),
        Some(3)
    );
    // The figures of a segment of the new model.
    let d = app.get("/api/dashboard?segment=2").await;
    assert_eq!(d.status().as_u16(), 200);
    let r = ready(&app).await;
    assert_eq!(r["data"]["segments_version"], json!(three.to_string()));
    // The CLV by segment card groups by the new model's segments too.
    let (s, c) = json_of(app.get("/api/dashboard/clv").await).await;
    assert_eq!(s.as_u16(), 200, "{c}");
    assert_eq!(c["available"], json!(true), "{c}");
    assert_eq!(c["segments_version"], json!(three.to_string()), "{c}");
    let ids: Vec<u64> = c["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["segment_id"].as_u64())
        .collect();
    assert_eq!(ids, vec![0, 1, 2], "{c}");
    assert_eq!(
        after["segments"]["migration"]["segments"]
            .as_array()
            .map(Vec::len),
        Some(3),
        "{}",
        after["segments"]
    );
}
