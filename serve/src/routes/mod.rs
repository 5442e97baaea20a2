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
    let mut doc = Base::openapi()
        .merge_from(health::Api::openapi())
        .merge_from(predict::Api::openapi())
        .merge_from(segment::Api::openapi())
        .merge_from(models::Api::openapi())
        .merge_from(docs::Api::openapi())
        .merge_from(dashboard::Api::openapi());
    declare_access_and_bounds(&mut doc);
    doc
}

/// The name of the bearer scheme in the document.
pub const BEARER: &str = "bearerAuth";

/// What every route shares, from the tables the middleware uses (one
/// truth): the bearer scheme and each operation's scope
/// (`auth::required_scope`; OpenAPI 3.1 lets a non-OAuth requirement list
/// roles: the scope) with its 401 and 403; 429 on the heavy routes
/// (`limits::heavy_kind`); 408 on the routes that read a body.
fn declare_access_and_bounds(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::security::{
        HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
    };
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};

    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
    };
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "A key of the service's APP_API_KEYS, sent as `Authorization: Bearer <key>`. \
                     Each operation names the scope its key needs: `predict` (predictions, \
                     segments) or `read` (dashboard data, /ready, /models, this document); \
                     `customers` shows customer ids in the dashboard's tables and exports. \
                     Without configured keys the service does not check them (loopback only).",
                ))
                .build(),
        ),
    );
    for (path, item) in doc.paths.paths.iter_mut() {
        let scope = crate::auth::required_scope(path);
        let heavy = crate::limits::heavy_kind(path);
        for op in [&mut item.get, &mut item.post].into_iter().flatten() {
            let body = op.request_body.is_some();
            let responses = &mut op.responses.responses;
            if let Some(scope) = scope {
                op.security = Some(vec![SecurityRequirement::new(BEARER, [scope.name()])]);
                responses.insert(
                    "401".into(),
                    error("No API key, or not one of the service's keys (WWW-Authenticate says which)").into(),
                );
                responses.insert(
                    "403".into(),
                    error(&format!("The key lacks the scope `{scope}`")).into(),
                );
            }
            if body {
                responses.insert(
                    "408".into(),
                    error("The body did not arrive in full within body_timeout_ms").into(),
                );
            }
            if let Some(kind) = heavy {
                responses.insert(
                    "429".into(),
                    error(&format!(
                        "Too many {} requests in progress (max_concurrent_heavy); retry after Retry-After seconds",
                        kind.name()
                    ))
                    .into(),
                );
            }
        }
    }
}
