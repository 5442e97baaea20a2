//! Bounded work: at most `max_concurrent_heavy` heavy requests of each kind
//! in progress at once (reading the body included); one more is refused at
//! once with 429 and the JSON error body, never queued. Kinds: batches
//! (`/predict/batch`, `/segment/batch`) and reports (the dashboard's data
//! and exports, `/models`), so that a flood of one does not starve the other.

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::RETRY_AFTER;
use actix_web::middleware::Next;
use actix_web::web;
use tokio::sync::Semaphore;

use crate::error::ErrorBody;

/// A kind of heavy request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heavy {
    Batch,
    Report,
}

impl Heavy {
    pub fn name(self) -> &'static str {
        match self {
            Heavy::Batch => "batch",
            Heavy::Report => "report",
        }
    }
}

/// The kind of heavy request `path` is, if it is one.
pub fn heavy_kind(path: &str) -> Option<Heavy> {
    match path {
        "/predict/batch" | "/segment/batch" => Some(Heavy::Batch),
        // The filter values are computed once at start-up: not heavy.
        "/api/dashboard/options" => None,
        "/models" => Some(Heavy::Report),
        p if p == "/api/dashboard" || p.starts_with("/api/dashboard/") => Some(Heavy::Report),
        _ => None,
    }
}

/// The permits of each kind, as app data of the server.
pub struct HeavyLimits {
    pub capacity: usize,
    batch: Arc<Semaphore>,
    report: Arc<Semaphore>,
}

impl HeavyLimits {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        HeavyLimits {
            capacity,
            batch: Arc::new(Semaphore::new(capacity)),
            report: Arc::new(Semaphore::new(capacity)),
        }
    }

    fn semaphore(&self, kind: Heavy) -> &Arc<Semaphore> {
        match kind {
            Heavy::Batch => &self.batch,
            Heavy::Report => &self.report,
        }
    }
}

/// Middleware: take a permit for a heavy request (held until its answer is
/// made), or answer 429 with `Retry-After: 1`.
pub async fn limit_heavy(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let (Some(kind), Some(limits)) = (
        heavy_kind(req.path()),
        req.app_data::<web::Data<HeavyLimits>>().cloned(),
    ) else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let Ok(_permit) = limits.semaphore(kind).clone().try_acquire_owned() else {
        let n = limits.capacity;
        let mut res = ErrorBody::new(format!("too many {} requests in progress", kind.name()))
            .expected(format!(
                "at most {n} {} requests at once (retry shortly)",
                kind.name()
            ))
            .found(format!("{n} in progress"))
            .respond(StatusCode::TOO_MANY_REQUESTS);
        res.headers_mut().insert(
            RETRY_AFTER,
            actix_web::http::header::HeaderValue::from_static("1"),
        );
        return Ok(req.into_response(res).map_into_right_body());
    };
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heavy_routes() {
        assert_eq!(heavy_kind("/predict/batch"), Some(Heavy::Batch));
        assert_eq!(heavy_kind("/segment/batch"), Some(Heavy::Batch));
        assert_eq!(heavy_kind("/api/dashboard"), Some(Heavy::Report));
        assert_eq!(heavy_kind("/api/dashboard/export.csv"), Some(Heavy::Report));
        assert_eq!(heavy_kind("/models"), Some(Heavy::Report));
        assert_eq!(heavy_kind("/api/dashboard/options"), None);
        assert_eq!(heavy_kind("/predict"), None);
        assert_eq!(heavy_kind("/api/dashboardx"), None);
    }
}
