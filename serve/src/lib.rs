//! The HTTP face of the platform: prediction API, OpenAPI docs and the
//! dashboard. It serves what analytics-lib computes and never trains.
//!
//! Today: the server skeleton and `GET /health`. The routes of
//! `shared/spec/interfaces.md` are added by the API and dashboard work.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{App, HttpResponse, HttpServer, web};

/// `GET /health`: 200 while the process is alive.
async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// Build the server on an already bound listener (port 0 in tests).
pub fn run(listener: TcpListener) -> std::io::Result<Server> {
    let server = HttpServer::new(|| App::new().route("/health", web::get().to(health)))
        .listen(listener)?
        .run();
    Ok(server)
}
