//! `analytics models`: list, show, promote and roll back registry versions.

use super::*;

/// `customer_spend` or `segments`, or a one-paragraph error.
pub(crate) fn model_name(given: Option<&str>) -> Result<Option<&'static str>> {
    use analytics_lib::registry::{SEGMENTS, SPEND};
    match given {
        None => Ok(None),
        Some(m) if m == SPEND => Ok(Some(SPEND)),
        Some(m) if m == SEGMENTS => Ok(Some(SEGMENTS)),
        Some(m) => anyhow::bail!(
            "unknown model `{m}`: expected `{SPEND}` (the customer-spend regressors) or `{SEGMENTS}` (the segment model)"
        ),
    }
}

/// `27/11/2026 14:05` (UTC) from an RFC 3339 time.
pub(crate) fn table_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%d/%m/%Y %H:%M")
                .to_string()
        })
        .unwrap_or_else(|_| rfc3339.to_string())
}

pub(crate) fn run_models(action: ModelsAction) -> Result<()> {
    use analytics_lib::registry::{Registry, SEGMENTS, SPEND, VersionId};
    use analytics_lib::retrain::lock::JobLock;
    let common = match &action {
        ModelsAction::List(c) | ModelsAction::Rollback(c) => c,
        ModelsAction::Show { common, .. } | ModelsAction::Promote { common, .. } => common,
    };
    let chosen = model_name(common.model.as_deref())?;
    if !common.models.is_dir() {
        anyhow::bail!(
            "{} is not a models folder: expected a folder written by `analytics train` or `analytics retrain`; found {}",
            common.models.display(),
            if common.models.exists() {
                "a file"
            } else {
                "nothing there"
            }
        );
    }
    let reg = Registry::open(&common.models)?;
    let model = chosen.unwrap_or(SPEND);
    let parse = |v: &str| -> Result<VersionId> { Ok(v.parse::<VersionId>()?) };
    match &action {
        ModelsAction::List(c) => {
            let models: Vec<&str> = match chosen {
                Some(m) => vec![m],
                None => vec![SPEND, SEGMENTS],
            };
            let mut out = serde_json::Map::new();
            for m in models {
                out.insert(m.to_string(), registry_listing(&reg, m)?);
            }
            if c.json {
                return print_json(&serde_json::Value::Object(out));
            }
            for (m, listing) in &out {
                print_listing(m, listing);
            }
            Ok(())
        }
        ModelsAction::Show { version, common } => {
            let id = match version {
                Some(v) => parse(v)?,
                None => reg.live_version(model)?.ok_or(
                    analytics_lib::registry::RegistryError::NoLive {
                        model: model.into(),
                    },
                )?,
            };
            let info = reg.version(model, id)?;
            let status = version_status(&reg, model, id)?;
            let verified = reg
                .verify(model, id)
                .map(|_| "ok".to_string())
                .unwrap_or_else(|e| e.to_string());
            if common.json {
                return print_json(&serde_json::json!({
                    "status": status,
                    "dir": info.dir,
                    "verified": verified,
                    "manifest": info.manifest,
                }));
            }
            let mf = &info.manifest;
            println!("{} {} ({status})", mf.model, mf.version);
            println!("  created     {} UTC", table_time(&mf.created_at));
            println!("  folder      {}", info.dir.display());
            println!("  code        {}", mf.code_version);
            println!(
                "  data        {}",
                mf.data_fingerprint.as_deref().unwrap_or("—")
            );
            println!("  checksums   {verified}");
            println!("  files");
            for (name, sum) in &mf.files {
                println!("    {name:<28} {sum}");
            }
            println!("  notes");
            for line in serde_json::to_string_pretty(&mf.info)?.lines() {
                println!("    {line}");
            }
            Ok(())
        }
        ModelsAction::Promote { version, common } => {
            let id = parse(version)?;
            let _lock = JobLock::acquire(&common.models, "models promote")?;
            let before = reg.live_version(model)?;
            let p = reg.promote(model, id)?;
            pointer_out(model, before, &p, common.json)
        }
        ModelsAction::Rollback(c) => {
            let _lock = JobLock::acquire(&c.models, "models rollback")?;
            let before = reg.live_version(model)?;
            let p = reg.rollback(model)?;
            pointer_out(model, before, &p, c.json)
        }
    }
}

pub(crate) fn pointer_out(
    model: &str,
    before: Option<analytics_lib::registry::VersionId>,
    p: &analytics_lib::registry::LivePointer,
    json: bool,
) -> Result<()> {
    let before = before
        .map(|v| v.to_string())
        .unwrap_or_else(|| "none".into());
    eprintln!("{model}: {} is live (was {before})", p.version);
    if json {
        print_json(&serde_json::json!({
            "model": model,
            "live": p.version,
            "previous": before,
            "history": p.history,
            "updated_at": p.updated_at,
        }))?;
    }
    Ok(())
}

/// Where version `id` stands (live, previous, rejected, kept).
pub(crate) fn version_status(
    reg: &analytics_lib::registry::Registry,
    model: &str,
    id: analytics_lib::registry::VersionId,
) -> Result<analytics_lib::registry::Standing> {
    let pointer = reg.live(model)?;
    let info = reg.version(model, id)?;
    Ok(analytics_lib::registry::Standing::of(
        &info,
        pointer.as_ref(),
    ))
}

/// A model's versions as JSON: `{"live", "history", "versions": [...]}`.
pub(crate) fn registry_listing(
    reg: &analytics_lib::registry::Registry,
    model: &str,
) -> Result<serde_json::Value> {
    let pointer = reg.live(model)?;
    let mut versions = Vec::new();
    for v in reg.versions(model)? {
        let info = &v.manifest.info;
        versions.push(serde_json::json!({
            "version": v.id,
            "created_at": v.manifest.created_at,
            "status": analytics_lib::registry::Standing::of(&v, pointer.as_ref()),
            "job": v.manifest.job(),
            "decision": v.manifest.decision(),
            "best": info["best"],
            "k": info["k"],
            "metrics": info["metrics"],
            "data_fingerprint": v.manifest.data_fingerprint,
        }));
    }
    Ok(serde_json::json!({
        "live": pointer.as_ref().map(|p| p.version),
        "history": pointer.as_ref().map(|p| p.history.clone()).unwrap_or_default(),
        "updated_at": pointer.as_ref().map(|p| p.updated_at.clone()),
        "versions": versions,
    }))
}

pub(crate) fn print_listing(model: &str, listing: &serde_json::Value) {
    use analytics_lib::locale;
    let live = listing["live"].as_str().unwrap_or("none");
    println!("{model} (live: {live})");
    let versions = listing["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        println!("  no versions yet (run `analytics train`)");
        println!();
        return;
    }
    println!(
        "  {:<8} {:<17} {:<9} {:<8} {:<32} data fingerprint",
        "version", "created (UTC)", "status", "job", "metrics (test)"
    );
    for v in versions {
        let metric = if model == analytics_lib::registry::SPEND {
            let best = v["best"].as_str().unwrap_or("?");
            let test = &v["metrics"][best]["test"];
            format!(
                "{best} RMSE {} R² {}",
                locale::number(test["rmse"].as_f64().unwrap_or(f64::NAN), 2),
                locale::number(test["r2"].as_f64().unwrap_or(f64::NAN), 3)
            )
        } else {
            format!(
                "k={} silhouette {}",
                v["k"],
                locale::number(v["metrics"]["silhouette"].as_f64().unwrap_or(f64::NAN), 3)
            )
        };
        println!(
            "  {:<8} {:<17} {:<9} {:<8} {:<32} {}",
            v["version"].as_str().unwrap_or("?"),
            table_time(v["created_at"].as_str().unwrap_or("")),
            v["status"].as_str().unwrap_or("?"),
            v["job"].as_str().unwrap_or("—"),
            metric,
            v["data_fingerprint"].as_str().unwrap_or("—")
        );
    }
    println!();
}
