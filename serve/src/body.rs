//! Reading request bodies with bounds: the content type, a size limit
//! (checked against `Content-Length` before anything is read, then while
//! reading) and a deadline for the whole body (a client that trickles its
//! body is answered 408 and disconnected). The routes parse the bytes
//! themselves (`input.rs`).

use std::time::Duration;

use actix_web::error::{InternalError, JsonPayloadError, PayloadError};
use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::{HttpMessage, HttpRequest, web};

use crate::error::{ErrorBody, json_error};

/// How much of a body, and how long for it.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimits {
    pub bytes: usize,
    pub timeout: Duration,
}

/// The 408 answer of a body that did not arrive in time; the connection
/// is closed (the rest of the body is never read).
fn timed_out(timeout: Duration) -> actix_web::Error {
    let mut res = ErrorBody::new("request body timed out")
        .expected(format!("the whole body within {} ms", timeout.as_millis()))
        .found("a body still incomplete at that time")
        .respond(StatusCode::REQUEST_TIMEOUT);
    res.head_mut()
        .set_connection_type(actix_web::http::ConnectionType::Close);
    InternalError::from_response("request body timed out", res).into()
}

/// The body as `web::Json` would read it (content type, size limit, the
/// errors of `json_error`), as bytes, within `limits.timeout`.
pub async fn read_json(
    req: &HttpRequest,
    payload: web::Payload,
    limits: BodyLimits,
) -> Result<web::Bytes, actix_web::Error> {
    let json = matches!(req.mime_type(), Ok(Some(m))
        if m.subtype().as_str() == "json" || m.suffix().is_some_and(|s| s.as_str() == "json"));
    if !json {
        return Err(json_error(JsonPayloadError::ContentType, req));
    }
    let limit = limits.bytes;
    let length = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(length) = length
        && length > limit
    {
        // Refused before a byte of the body is read.
        return Err(json_error(
            JsonPayloadError::OverflowKnownLength { length, limit },
            req,
        ));
    }
    match tokio::time::timeout(limits.timeout, payload.to_bytes_limited(limit)).await {
        Err(_) => Err(timed_out(limits.timeout)),
        Ok(Ok(Ok(bytes))) => Ok(bytes),
        Ok(Ok(Err(_))) => Err(json_error(
            JsonPayloadError::Payload(PayloadError::Incomplete(None)),
            req,
        )),
        Ok(Err(_)) => Err(json_error(JsonPayloadError::Overflow { limit }, req)),
    }
}
