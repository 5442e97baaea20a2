//! `GET /health` (the process answers) and `GET /ready` (both models are loaded).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(health, ready),
    components(schemas(Health, Readiness, ModelReadiness))
)]
pub struct Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health))
        .route("/ready", web::get().to(ready));
}

/// Liveness.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

/// One model's state.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ModelReadiness {
    /// The registry's model name: `customer_spend` or `segments`.
    pub name: String,
    pub loaded: bool,
    /// The live registry version (`v0003`), when loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `linear`, `random_forest` or `xgboost` for customer_spend; `kmeans` for segments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Whether `{"customer_id"}` lookups are available for it (the service has data).
    pub customer_lookup: bool,
    /// Not loaded: why. Loaded: why the last promoted version was refused, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Readiness: whether both models are loaded, and which versions.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    /// `ready` (both models loaded) or `not_ready`.
    pub status: String,
    /// customer_spend (for /predict), then segments (for /segment).
    pub models: Vec<ModelReadiness>,
    /// Which models are missing and why, when not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The data snapshot behind the lookups and the dashboard (none: the
    /// service runs without data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<crate::snapshot::SnapshotInfo>,
}

/// 200 while the process is alive.
#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "The process is alive", body = Health)))]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok".into(),
    })
}

/// 200 when both the customer-spend and the segment model are loaded, 503
/// otherwise (the body names the missing one and why).
#[utoipa::path(get, path = "/ready", tag = "health",
    responses(
        (status = 200, description = "Both models are loaded", body = Readiness),
        (status = 503, description = "A model is not loaded (yet); `reason` says which and why", body = Readiness)))]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let spend = state.spend.live();
    let segments = state.segments.live();
    let models = vec![
        ModelReadiness {
            name: state.spend.name.into(),
            loaded: spend.is_some(),
            version: spend.as_ref().map(|m| m.version.clone()),
            kind: spend.as_ref().map(|m| m.kind.name().to_string()),
            customer_lookup: spend.as_ref().is_some_and(|m| m.customers.is_some()),
            error: state.spend.last_error(),
        },
        ModelReadiness {
            name: state.segments.name.into(),
            loaded: segments.is_some(),
            version: segments.as_ref().map(|m| m.version.clone()),
            kind: segments.as_ref().map(|m| m.model.meta.algorithm.clone()),
            customer_lookup: segments.as_ref().is_some_and(|m| m.customers.is_some()),
            error: state.segments.last_error(),
        },
    ];
    // From the handles read above, so that the answer is consistent.
    let mut missing = Vec::new();
    if spend.is_none() {
        missing.push((state.spend.name, state.spend.not_ready_reason()));
    }
    if segments.is_none() {
        missing.push((state.segments.name, state.segments.not_ready_reason()));
    }
    if missing.is_empty() {
        HttpResponse::Ok().json(Readiness {
            status: "ready".into(),
            models,
            reason: None,
            data: state.feed.info(),
        })
    } else {
        let reason = missing
            .iter()
            .map(|(name, why)| format!("{name} not loaded: {why}"))
            .collect::<Vec<_>>()
            .join("; ");
        HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE).json(Readiness {
            status: "not_ready".into(),
            models,
            reason: Some(reason),
            data: state.feed.info(),
        })
    }
}
