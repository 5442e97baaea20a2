//! `GET /models`: every model file of the models folder with its metadata
//! and metrics, which one `best.json` names, and which one is live.

use std::collections::BTreeMap;
use std::path::Path;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, web};
use analytics_lib::models::ModelFile;
use anyhow::anyhow;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::error::internal_error;
use crate::model::{FAMILY, read_best, version_of};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(list_models),
    components(schemas(ModelsResponse, ModelFamily, ModelVersion, LiveRef, Scores)),
    tags((name = "models", description = "Model files, metrics and the live model"))
)]
pub struct Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/models", web::get().to(list_models));
}

/// Scores on one split.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Scores {
    pub rmse: f64,
    pub mae: f64,
    pub r2: f64,
    /// Rows scored.
    pub n: usize,
}

/// One model file.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ModelVersion {
    /// File name inside the family folder.
    pub file: String,
    /// `linear`, `random_forest` or `xgboost` (absent when unreadable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Whether this file is the one being served.
    pub live: bool,
    /// Whether `best.json` names it.
    pub best: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_cutoff: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_rows: Option<usize>,
    /// Scores by split (`validation`, `test`, `baseline_test`).
    pub metrics: BTreeMap<String, Scores>,
    /// The model's input features, in order.
    pub feature_names: Vec<String>,
    /// Why the file could not be read, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The live model.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct LiveRef {
    pub kind: String,
    pub version: String,
    pub file: String,
}

/// One model family (today only `customer_spend`).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ModelFamily {
    pub name: String,
    /// The kind `best.json` names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveRef>,
    pub versions: Vec<ModelVersion>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ModelsResponse {
    pub models: Vec<ModelFamily>,
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

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn describe_file(path: &Path, live: Option<&(String, String)>, best: Option<&str>) -> ModelVersion {
    let file = file_name(path);
    let mut v = ModelVersion {
        file: file.clone(),
        kind: None,
        version: None,
        live: false,
        best: false,
        created_at: None,
        train_cutoff: None,
        train_rows: None,
        metrics: BTreeMap::new(),
        feature_names: Vec::new(),
        error: None,
    };
    let decoded = std::fs::read(path)
        .map_err(|e| format!("unreadable: {e}"))
        .and_then(|bytes| {
            ModelFile::from_bytes(&bytes, Path::new(&file))
                .map(|f| (f, bytes))
                .map_err(|e| e.to_string())
        });
    match decoded {
        Err(e) => v.error = Some(e),
        Ok((f, bytes)) => {
            let version = version_of(&f.meta, &bytes);
            let kind = f.meta.kind.name().to_string();
            v.live = live.is_some_and(|(lf, lv)| *lf == file && *lv == version);
            v.best = best == Some(kind.as_str()) && file == format!("{kind}.msgpack");
            v.kind = Some(kind);
            v.version = Some(version);
            v.created_at = Some(f.meta.created_at.clone());
            v.train_cutoff = Some(f.meta.train_cutoff.to_string());
            v.train_rows = Some(f.meta.train_rows);
            v.metrics = f
                .meta
                .metrics
                .iter()
                .map(|(k, m)| {
                    (
                        k.clone(),
                        Scores {
                            rmse: m.rmse,
                            mae: m.mae,
                            r2: m.r2,
                            n: m.n,
                        },
                    )
                })
                .collect();
            v.feature_names = f.meta.feature_names;
        }
    }
    v
}

fn list(state: &AppState) -> anyhow::Result<ModelsResponse> {
    let dir = &state.dir;
    let live = state.live();
    let live_ref = live.as_ref().map(|m| LiveRef {
        kind: m.kind.name().to_string(),
        version: m.version.clone(),
        file: file_name(&m.file),
    });
    let live_key = live_ref
        .as_ref()
        .map(|l| (l.file.clone(), l.version.clone()));
    let best = read_best(dir).ok().map(|k| k.name().to_string());
    let mut files: Vec<_> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|e| e == "msgpack")
                    && !file_name(p).starts_with('.')
                    && p.is_file()
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(anyhow!("while listing {}: {e}", dir.display())),
    };
    files.sort();
    let versions = files
        .iter()
        .map(|p| describe_file(p, live_key.as_ref(), best.as_deref()))
        .collect();
    Ok(ModelsResponse {
        models: vec![ModelFamily {
            name: FAMILY.to_string(),
            best,
            live: live_ref,
            versions,
        }],
    })
}

/// Every model file with its metrics, and the live one.
#[utoipa::path(get, path = "/models", tag = "models",
    responses((status = 200, description = "Model files and the live model", body = ModelsResponse)))]
pub async fn list_models(state: web::Data<AppState>) -> Result<HttpResponse, ModelsError> {
    let st = state.into_inner();
    let out = web::block(move || list(&st))
        .await
        .map_err(|e| anyhow!("listing task failed: {e}"))??;
    Ok(HttpResponse::Ok().json(out))
}
