//! `GET /openapi.json` (generated from the Rust types by utoipa) and
//! `GET /docs` (Swagger UI, offline: the `swagger-ui-dist` files are
//! embedded in the binary from `serve/static/swagger-ui/`).

use std::sync::OnceLock;

use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, web};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    paths(openapi_json, docs),
    tags((name = "docs", description = "This document and its viewer"))
)]
pub struct Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(openapi_json))
        .route("/docs", web::get().to(docs))
        .route("/docs/", web::get().to(docs))
        .route("/docs/{asset}", web::get().to(asset))
        .route("/static/{asset}", web::get().to(shared));
}

/// Files the pages share (served to anybody, see `auth.rs`).
const SHARED: [(&str, &str, &str); 1] = [(
    "api-key.js",
    "text/javascript; charset=utf-8",
    include_str!("../../static/shared/api-key.js"),
)];

async fn shared(name: web::Path<String>) -> HttpResponse {
    super::embedded(&SHARED, "shared page file", 3600, &name)
}

const INDEX: &str = include_str!("../../static/swagger-ui/index.html");

/// The embedded Swagger UI files: name, content type, bytes.
const ASSETS: [(&str, &str, &str); 4] = [
    (
        "swagger-ui.css",
        "text/css; charset=utf-8",
        include_str!("../../static/swagger-ui/swagger-ui.css"),
    ),
    (
        "swagger-ui-bundle.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/swagger-ui/swagger-ui-bundle.js"),
    ),
    (
        "swagger-ui-standalone-preset.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/swagger-ui/swagger-ui-standalone-preset.js"),
    ),
    (
        "swagger-initializer.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/swagger-ui/swagger-initializer.js"),
    ),
];

/// The document, serialised once.
fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        serde_json::to_string_pretty(&super::api_doc()).unwrap_or_else(|e| {
            eprintln!("error: serialising the OpenAPI document: {e}");
            "{}".into()
        })
    })
}

/// The OpenAPI 3 document of this service.
#[utoipa::path(get, path = "/openapi.json", tag = "docs",
    responses((status = 200, description = "The OpenAPI 3 document", content_type = "application/json")))]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(document())
}

/// Swagger UI on `/openapi.json`; every asset is served from here.
#[utoipa::path(get, path = "/docs", tag = "docs",
    responses((status = 200, description = "Swagger UI (HTML)", content_type = "text/html")))]
pub async fn docs() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::html())
        .body(INDEX)
}

async fn asset(name: web::Path<String>) -> HttpResponse {
    super::embedded(&ASSETS, "documentation asset", 86400, &name)
}
