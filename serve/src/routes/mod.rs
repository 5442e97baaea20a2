//! One file per route family. Each has a `configure` that registers its
//! routes and an `Api` (utoipa) that documents them; adding a family (e.g.
//! `segment.rs` for `POST /segment` and `/segment/batch`) is one file plus
//! its two lines below.

pub mod dashboard;
pub mod docs;
pub mod health;
pub mod models;
pub mod predict;
pub mod segment;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::CACHE_CONTROL;
use actix_web::web::ServiceConfig;
use utoipa::OpenApi;

use crate::error::ErrorBody;

/// Files embedded in the binary: name, content type, bytes.
pub type Assets = [(&'static str, &'static str, &'static str)];

/// The embedded file `name` of `assets`, cached for `max_age` seconds; a
/// 404 naming the files there are otherwise (`what`: "dashboard asset").
pub fn embedded(assets: &Assets, what: &str, max_age: u32, name: &str) -> HttpResponse {
    match assets.iter().find(|(n, _, _)| *n == name) {
        Some((_, mime, body)) => HttpResponse::Ok()
            .content_type(*mime)
            .insert_header((CACHE_CONTROL, format!("public, max-age={max_age}")))
            .body(*body),
        None => ErrorBody::new(format!("no such {what}"))
            .expected(format!(
                "one of {}",
                assets.iter().map(|a| a.0).collect::<Vec<_>>().join(", ")
            ))
            .found(name.to_string())
            .respond(StatusCode::NOT_FOUND),
    }
}

/// Register every family's routes.
pub fn configure(cfg: &mut ServiceConfig) {
    health::configure(cfg);
    predict::configure(cfg);
    segment::configure(cfg);
    models::configure(cfg);
    docs::configure(cfg);
    dashboard::configure(cfg);
}

/// The service's OpenAPI document, merged from every family's `Api`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sales analytics API",
        description = "Customer-spend predictions and customer segments from the registry's live \
                       models, their versions and metrics, health. \
                       Errors are JSON `{\"error\", \"field\", \"expected\", \"found\"}` \
                       (the last three where they apply), 4xx for the caller's mistakes."
    ),
    components(schemas(crate::error::ErrorBody))
)]
struct Base;

pub fn api_doc() -> utoipa::openapi::OpenApi {
    Base::openapi()
        .merge_from(health::Api::openapi())
        .merge_from(predict::Api::openapi())
        .merge_from(segment::Api::openapi())
        .merge_from(models::Api::openapi())
        .merge_from(docs::Api::openapi())
        .merge_from(dashboard::Api::openapi())
}
