//! `GET /health` (the process answers) and `GET /ready` (both models are loaded).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::state::{AppState, SlotStatus};

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
    /// Not loaded: why. Loaded: why the version the registry names was
    /// refused, while it is (paths relative to the models folder).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Loaded, but the registry names another version that failed to load
    /// (`wanted_version`): this one is served until a retry succeeds.
    pub stale: bool,
    /// The version the registry's live pointer names, when loading it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wanted_version: Option<String>,
    /// Failed attempts in a row at loading the version the registry names.
    pub failed_attempts: u32,
    /// Milliseconds to the next attempt, while attempts fail (retried with
    /// backoff: the reload interval, doubled each time, at most 5 minutes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_retry_ms: Option<u64>,
}

/// Readiness: whether both models are loaded, and which versions.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    /// `ready` (both models loaded, the versions the registry names);
    /// `stale` (both loaded, but a version the registry names failed to
    /// load: an older one is served, see `models[].stale`; still 200, the
    /// answers are valid); `not_ready` (a model is missing: 503).
    #[schema(pattern = "^(ready|stale|not_ready)$")]
    pub status: String,
    /// customer_spend (for /predict), then segments (for /segment).
    pub models: Vec<ModelReadiness>,
    /// Which models are missing and why (`not_ready`), or which are stale
    /// and why (`stale`).
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

/// 200 when both the customer-spend and the segment model are loaded
/// (`status` `ready`, or `stale` when a newer version failed to load and is
/// being retried), 503 otherwise (the body names the missing one and why).
#[utoipa::path(get, path = "/ready", tag = "health",
    responses(
        (status = 200, description = "Both models are loaded (`stale`: an older version than the registry names, while the newer one is retried)", body = Readiness),
        (status = 503, description = "A model is not loaded (yet); `reason` says which and why", body = Readiness)))]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let spend = state.spend.live();
    let segments = state.segments.live();
    let entry = |name: &str, loaded: bool, version, kind, lookup, st: SlotStatus| {
        let stale = loaded && st.failures > 0 && st.wanted.is_some() && st.wanted != version;
        ModelReadiness {
            name: name.into(),
            loaded,
            version,
            kind,
            customer_lookup: lookup,
            error: st.error,
            stale,
            wanted_version: st.wanted.filter(|_| st.failures > 0),
            failed_attempts: st.failures,
            next_retry_ms: st
                .retry_in
                .filter(|_| st.failures > 0)
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
    };
    let models = vec![
        entry(
            state.spend.name,
            spend.is_some(),
            spend.as_ref().map(|m| m.version.clone()),
            spend.as_ref().map(|m| m.kind.name().to_string()),
            spend.as_ref().is_some_and(|m| m.customers.is_some()),
            state.spend.status(),
        ),
        entry(
            state.segments.name,
            segments.is_some(),
            segments.as_ref().map(|m| m.version.clone()),
            segments.as_ref().map(|m| m.model.meta.algorithm.clone()),
            segments.as_ref().is_some_and(|m| m.customers.is_some()),
            state.segments.status(),
        ),
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
        let stale: Vec<String> = models
            .iter()
            .filter(|m| m.stale)
            .map(|m| {
                format!(
                    "{} serves {} while {} is retried: {}",
                    m.name,
                    m.version.as_deref().unwrap_or("?"),
                    m.wanted_version.as_deref().unwrap_or("?"),
                    m.error.as_deref().unwrap_or("?")
                )
            })
            .collect();
        HttpResponse::Ok().json(Readiness {
            status: if stale.is_empty() { "ready" } else { "stale" }.into(),
            models,
            reason: (!stale.is_empty()).then(|| stale.join("; ")),
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
