//! `GET /health` (the process answers) and `GET /ready` (a model is loaded).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(paths(health, ready), components(schemas(Health, Readiness)))]
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

/// Readiness: whether predictions can be answered, and with what.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: String,
    /// The live model's kind (when ready).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The live model's version (when ready).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Whether `{"customer_id"}` lookups are available (the service has data).
    pub customer_lookup: bool,
    /// Why it is not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// 200 while the process is alive.
#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "The process is alive", body = Health)))]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok".into(),
    })
}

/// 200 when a model is loaded, 503 otherwise.
#[utoipa::path(get, path = "/ready", tag = "health",
    responses(
        (status = 200, description = "A model is loaded", body = Readiness),
        (status = 503, description = "No model loaded (yet)", body = Readiness)))]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    match state.live() {
        Some(m) => HttpResponse::Ok().json(Readiness {
            status: "ready".into(),
            model: Some(m.kind.name().into()),
            version: Some(m.version.clone()),
            customer_lookup: m.customers.is_some(),
            reason: None,
        }),
        None => HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE).json(Readiness {
            status: "not_ready".into(),
            model: None,
            version: None,
            customer_lookup: false,
            reason: Some(state.not_ready_reason()),
        }),
    }
}
