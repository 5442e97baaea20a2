//! The one error shape of the API, `{"error", "field", "expected", "found"}`
//! (the last three where they apply), and the handlers that turn actix's
//! own extractor errors (bad JSON, body too large, wrong content type, no
//! such route) into it.
//!
//! Route families have their own error enums (see `routes/predict.rs`) that
//! map themselves to a status and this body; their `Unexpected` arm answers
//! 500 with a fixed message and logs the details on stderr only.

use actix_web::error::{InternalError, JsonPayloadError};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What every error answer looks like.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, in one sentence.
    pub error: String,
    /// The input field at fault, as a path (`records[3].frequency`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What would have been accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// What was sent instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<String>,
}

impl ErrorBody {
    pub fn new(error: impl Into<String>) -> Self {
        ErrorBody {
            error: error.into(),
            field: None,
            expected: None,
            found: None,
        }
    }
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
    pub fn expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }
    pub fn found(mut self, found: impl Into<String>) -> Self {
        self.found = Some(found.into());
        self
    }
    pub fn respond(&self, status: StatusCode) -> HttpResponse {
        HttpResponse::build(status).json(self)
    }
}

impl std::fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.error)?;
        if let Some(field) = &self.field {
            write!(f, " (field `{field}`)")?;
        }
        if let Some(e) = &self.expected {
            write!(f, ": expected {e}")?;
        }
        if let Some(found) = &self.found {
            write!(f, ", found {found}")?;
        }
        Ok(())
    }
}

/// The 500 answer: a fixed message, never the cause (that goes to stderr).
pub fn internal_error(context: &str, e: &dyn std::fmt::Debug) -> HttpResponse {
    eprintln!("error: {context}: {e:?}");
    ErrorBody::new("internal error: the request could not be completed")
        .respond(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Short, bounded description of a JSON value, for `found`.
pub fn describe(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => {
            let short: String = s.chars().take(40).collect();
            let more = if s.chars().count() > 40 { "…" } else { "" };
            format!("the string \"{short}{more}\"")
        }
        Value::Array(a) => format!("an array of {} items", a.len()),
        Value::Object(o) => format!("an object with {} fields", o.len()),
    }
}

/// `JsonConfig::error_handler`: every way a JSON body can fail to be read.
pub fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let (status, body) = match &err {
        JsonPayloadError::OverflowKnownLength { length, limit } => (
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorBody::new("request body too large")
                .expected(format!("at most {limit} bytes"))
                .found(format!("{length} bytes")),
        ),
        JsonPayloadError::Overflow { limit } => (
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorBody::new("request body too large")
                .expected(format!("at most {limit} bytes"))
                .found(format!("more than {limit} bytes")),
        ),
        JsonPayloadError::ContentType => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorBody::new("unsupported content type")
                .expected("Content-Type: application/json")
                .found("another or no content type"),
        ),
        JsonPayloadError::Deserialize(e) => {
            let found = match e.classify() {
                serde_json::error::Category::Eof => {
                    format!(
                        "a body that ends early (line {}, column {})",
                        e.line(),
                        e.column()
                    )
                }
                _ => format!("{e}"),
            };
            (
                StatusCode::BAD_REQUEST,
                ErrorBody::new("request body is not valid JSON")
                    .expected("a JSON object")
                    .found(found),
            )
        }
        JsonPayloadError::Serialize(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorBody::new("internal error: the request could not be completed"),
        ),
        // Reading the body failed (client went away, bad chunking, …).
        _ => (
            StatusCode::BAD_REQUEST,
            ErrorBody::new("request body could not be read")
                .expected("a complete JSON body")
                .found("an incomplete or unreadable body"),
        ),
    };
    InternalError::from_response(err, body.respond(status)).into()
}

/// Default service: unknown path or method, as JSON.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    ErrorBody::new("no such route")
        .expected("one of the routes in /openapi.json")
        .found(format!("{} {}", req.method(), req.path()))
        .respond(StatusCode::NOT_FOUND)
}
