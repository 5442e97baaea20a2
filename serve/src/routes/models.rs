//! `GET /models`: every version of every model in the registry with its
//! manifest (metrics, creation time, files), which one is live (the
//! registry's pointer), which one this service has loaded, and the history.

use std::collections::BTreeMap;
use std::path::Path;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, web};
use analytics_lib::models::ModelKind;
use analytics_lib::registry::{
    BestChoice, LivePointer, SEGMENTS, SPEND, Standing, VersionInfo, read_spend_meta,
};
use anyhow::anyhow;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{OpenApi, ToSchema};

use crate::error::internal_error;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(list_models),
    components(schemas(ModelsResponse, RegistryModel, VersionEntry, LoadedModel, Scores)),
    tags((name = "models", description = "Model versions, metrics and the live ones"))
)]
pub struct Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/models", web::get().to(list_models));
}

/// Scores of a regression model on one split.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Scores {
    pub rmse: f64,
    pub mae: f64,
    pub r2: f64,
    /// Rows scored.
    pub n: usize,
}

/// One complete version of a model (its manifest exists and parses).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct VersionEntry {
    /// `v0003`.
    pub version: String,
    /// Whether the registry's `live.json` names it.
    pub live: bool,
    /// Whether this service is serving it right now.
    pub loaded: bool,
    /// Whether it was live before (a rollback target).
    pub in_history: bool,
    /// Where it stands: `live`, `previous` (in the history), `rejected` (a
    /// retrain challenger that lost) or `kept` (as `analytics models list`).
    #[schema(value_type = String)]
    pub status: Standing,
    /// RFC 3339, UTC (from the manifest).
    pub created_at: String,
    pub code_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_fingerprint: Option<String>,
    /// customer_spend: the kind its `best.json` names; segments: `kmeans`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The version's files (checksummed in its manifest).
    pub files: Vec<String>,
    /// The manifest's `info.metrics`. For a customer_spend version whose
    /// manifest carries none: the scores by split of each kind, from its
    /// `<kind>.json` files (`{"xgboost": {"test": {"rmse", …}}}`).
    #[schema(value_type = Object)]
    pub metrics: Value,
    /// The manifest's free-form `info` (job, chosen model, parameters, …).
    #[schema(value_type = Object)]
    pub info: Value,
}

/// What this service has loaded for a model.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct LoadedModel {
    pub version: String,
    /// `linear`, `random_forest`, `xgboost` or `kmeans`.
    pub kind: String,
    /// The model's input features, in order (the request fields).
    pub feature_names: Vec<String>,
}

/// One model of the registry.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RegistryModel {
    /// `customer_spend`, `segments`, …
    pub name: String,
    /// The version `live.json` names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<String>,
    /// The versions live before it, oldest first.
    pub history: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// What this service serves (can lag `live` by one reload interval, or
    /// differ when the live version was refused: see `GET /ready`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loaded: Option<LoadedModel>,
    /// Complete versions, oldest first.
    pub versions: Vec<VersionEntry>,
    /// Why the registry could not be read for this model, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ModelsResponse {
    /// customer_spend and segments first, then any other model of the registry.
    pub models: Vec<RegistryModel>,
    /// The data snapshot the live models answer lookups from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<crate::snapshot::SnapshotInfo>,
}

#[derive(thiserror::Error, Debug)]
pub enum ModelsError {
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl ResponseError for ModelsError {
    fn status_code(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }
    fn error_response(&self) -> HttpResponse {
        match self {
            ModelsError::Unexpected(e) => internal_error("models", e),
        }
    }
}

/// Scores by split of every kind saved in a customer_spend version.
fn spend_metrics(dir: &Path) -> Value {
    let mut out = serde_json::Map::new();
    for kind in ModelKind::ALL {
        let Ok(Some(meta)) = read_spend_meta(dir, kind) else {
            continue;
        };
        let scores: BTreeMap<String, Scores> = meta
            .metrics
            .iter()
            .map(|(split, m)| {
                (
                    split.clone(),
                    Scores {
                        rmse: m.rmse,
                        mae: m.mae,
                        r2: m.r2,
                        n: m.n,
                    },
                )
            })
            .collect();
        out.insert(
            kind.name().to_string(),
            serde_json::to_value(scores).unwrap_or(Value::Null),
        );
    }
    if out.is_empty() {
        Value::Null
    } else {
        Value::Object(out)
    }
}

fn entry(
    model: &str,
    v: VersionInfo,
    pointer: Option<&LivePointer>,
    loaded: Option<&str>,
) -> VersionEntry {
    let version = v.id.to_string();
    let status = Standing::of(&v, pointer);
    let m = v.manifest;
    let kind = match model {
        SPEND => BestChoice::read(&v.dir)
            .ok()
            .map(|b| b.best.name().to_string()),
        SEGMENTS => Some("kmeans".to_string()),
        _ => None,
    };
    let metrics = match m.info.get("metrics") {
        Some(x) if !x.is_null() => x.clone(),
        _ if model == SPEND => spend_metrics(&v.dir),
        _ => Value::Null,
    };
    VersionEntry {
        live: status == Standing::Live,
        loaded: loaded == Some(version.as_str()),
        in_history: pointer.is_some_and(|p| p.history.contains(&v.id)),
        status,
        version,
        created_at: m.created_at,
        code_version: m.code_version,
        data_fingerprint: m.data_fingerprint,
        kind,
        files: m.files.into_keys().collect(),
        metrics,
        info: m.info,
    }
}

fn describe_model(state: &AppState, name: &str) -> RegistryModel {
    let reg = &state.registry;
    let loaded = match name {
        SPEND => state.live().map(|m| LoadedModel {
            version: m.version.clone(),
            kind: m.kind.name().to_string(),
            feature_names: m.feature_names().to_vec(),
        }),
        SEGMENTS => state.live_segments().map(|m| LoadedModel {
            version: m.version.clone(),
            kind: m.model.meta.algorithm.clone(),
            feature_names: m.feature_names().to_vec(),
        }),
        _ => None,
    };
    let mut out = RegistryModel {
        name: name.to_string(),
        live: None,
        history: Vec::new(),
        updated_at: None,
        loaded,
        versions: Vec::new(),
        error: None,
    };
    let mut errors = Vec::new();
    let pointer = match reg.live(name) {
        Ok(p) => p,
        Err(e) => {
            errors.push(e.to_string());
            None
        }
    };
    if let Some(p) = &pointer {
        out.live = Some(p.version.to_string());
        out.history = p.history.iter().map(ToString::to_string).collect();
        out.updated_at = Some(p.updated_at.clone());
    }
    match reg.versions(name) {
        Ok(vs) => {
            let loaded = out.loaded.as_ref().map(|l| l.version.clone());
            out.versions = vs
                .into_iter()
                .map(|v| entry(name, v, pointer.as_ref(), loaded.as_deref()))
                .collect();
        }
        Err(e) => errors.push(e.to_string()),
    }
    if !errors.is_empty() {
        let msg = errors.join("; ");
        eprintln!("serve: GET /models: {name}: {msg}");
        out.error = Some(crate::error::public_message(&msg, &[reg.root()]));
    }
    out
}

fn list(state: &AppState) -> anyhow::Result<ModelsResponse> {
    let mut names = vec![SPEND.to_string(), SEGMENTS.to_string()];
    // An unreadable models folder still lists the two served models.
    for other in state.registry.models().unwrap_or_default() {
        if !names.contains(&other) {
            names.push(other);
        }
    }
    Ok(ModelsResponse {
        models: names.iter().map(|n| describe_model(state, n)).collect(),
        data: state.feed.info(),
    })
}

/// Every version of every model in the registry with its metrics, the live
/// one and the history.
#[utoipa::path(get, path = "/models", tag = "models",
    responses((status = 200, description = "The registry: versions, metrics, live versions", body = ModelsResponse)))]
pub async fn list_models(state: web::Data<AppState>) -> Result<HttpResponse, ModelsError> {
    let st = state.into_inner();
    let out = web::block(move || list(&st))
        .await
        .map_err(|e| anyhow!("listing task failed: {e}"))??;
    Ok(HttpResponse::Ok().json(out))
}
