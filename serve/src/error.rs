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

/// A server-side message as a client may see it: no absolute path. The
/// `roots` (the models folder, the data folder) are cut off (a path under
/// them reads relative to them, e.g. `customer_spend/v0002/best.json`), and
/// any other absolute path is shortened to `…/<file name>`. The full
/// message goes to the server's log only.
pub fn public_message(msg: &str, roots: &[&std::path::Path]) -> String {
    let mut out = msg.to_string();
    let mut prefixes: Vec<String> = Vec::new();
    for root in roots {
        for p in [Some(root.to_path_buf()), std::fs::canonicalize(root).ok()]
            .into_iter()
            .flatten()
        {
            let p = p.to_string_lossy().trim_end_matches('/').to_string();
            if p.starts_with('/') && p.len() > 1 && !prefixes.contains(&p) {
                prefixes.push(p);
            }
        }
    }
    // Longest first: a root inside another is cut whole.
    prefixes.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in &prefixes {
        out = out.replace(&format!("{p}/"), "");
        out = out.replace(p.as_str(), ".");
    }
    shorten_absolute_paths(&out)
}

/// Every `/abs/path` token of `s` (starting a word) as `…/<last component>`.
fn shorten_absolute_paths(s: &str) -> String {
    let ends = |c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ')' | ']' | ',' | ';' | '`');
    let mut out = String::with_capacity(s.len());
    let mut prev: Option<char> = None;
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        let starts_word = prev
            .is_none_or(|p| p.is_whitespace() || matches!(p, '"' | '\'' | '(' | '[' | '=' | '`'));
        if c == '/' && starts_word {
            let len = rest.find(ends).unwrap_or(rest.len());
            let token = &rest[..len];
            // Keep a sentence's punctuation after the path.
            let trimmed = token.trim_end_matches(['.', ':']);
            let last = trimmed.rsplit('/').find(|c| !c.is_empty()).unwrap_or("");
            out.push_str("…/");
            out.push_str(last);
            out.push_str(&token[trimmed.len()..]);
            prev = token.chars().last();
            rest = &rest[len..];
            continue;
        }
        out.push(c);
        prev = Some(c);
        rest = &rest[c.len_utf8()..];
    }
    out
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

/// The 400 body of a request body that is not JSON.
pub fn invalid_json(e: &serde_json::Error) -> ErrorBody {
    let found = match e.classify() {
        serde_json::error::Category::Eof => format!(
            "a body that ends early (line {}, column {})",
            e.line(),
            e.column()
        ),
        _ => format!("{e}"),
    };
    ErrorBody::new("request body is not valid JSON")
        .expected("a JSON object")
        .found(found)
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
        JsonPayloadError::Deserialize(e) => (StatusCode::BAD_REQUEST, invalid_json(e)),
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
/// Routes served besides the documented API (the pages and their files),
/// all `GET`.
const PAGES: [&str; 6] = [
    "/",
    "/dashboard",
    "/dashboard/assets/{name}",
    "/docs/",
    "/docs/{asset}",
    "/static/{asset}",
];

/// Every route pattern and the methods it answers: the OpenAPI document's
/// paths (the truth about the API) and [`PAGES`].
fn routes() -> &'static [(String, Vec<&'static str>)] {
    static ROUTES: std::sync::OnceLock<Vec<(String, Vec<&'static str>)>> =
        std::sync::OnceLock::new();
    ROUTES.get_or_init(|| {
        let mut out: Vec<(String, Vec<&'static str>)> = crate::routes::api_doc()
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let methods = [
                    ("GET", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("DELETE", item.delete.is_some()),
                    ("PATCH", item.patch.is_some()),
                ]
                .into_iter()
                .filter(|(_, has)| *has)
                .map(|(name, _)| name)
                .collect();
                (path.clone(), methods)
            })
            .collect();
        out.extend(PAGES.iter().map(|p| (p.to_string(), vec!["GET"])));
        out
    })
}

/// Does `path` fit `pattern` (`{name}` matches one non-empty segment)?
fn matches(pattern: &str, path: &str) -> bool {
    let (mut a, mut b) = (pattern.split('/'), path.split('/'));
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(p), Some(s)) if p.starts_with('{') && p.ends_with('}') && !s.is_empty() => {}
            (Some(p), Some(s)) if p == s => {}
            _ => return false,
        }
    }
}

/// The methods a route answers, when `path` is one (HEAD goes with GET).
pub fn allowed_methods(path: &str) -> Option<Vec<&'static str>> {
    let mut methods: Vec<&'static str> = routes()
        .iter()
        .filter(|(pattern, _)| matches(pattern, path))
        .flat_map(|(_, m)| m.iter().copied())
        .collect();
    if methods.is_empty() {
        return None;
    }
    if methods.contains(&"GET") {
        methods.push("HEAD");
    }
    methods.sort_unstable();
    methods.dedup();
    Some(methods)
}

/// What no route answers: 405 with `Allow` when the path is a route and
/// only the method is wrong, else 404.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    if let Some(methods) = allowed_methods(req.path()) {
        let allow = methods.join(", ");
        let mut res = ErrorBody::new("method not allowed")
            .expected(format!("one of {allow}"))
            .found(format!("{} {}", req.method(), req.path()))
            .respond(StatusCode::METHOD_NOT_ALLOWED);
        if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&allow) {
            res.headers_mut().insert(actix_web::http::header::ALLOW, v);
        }
        return res;
    }
    ErrorBody::new("no such route")
        .expected("one of the routes in /openapi.json")
        .found(format!("{} {}", req.method(), req.path()))
        .respond(StatusCode::NOT_FOUND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_route_with_another_method_is_405_material() {
        assert!(matches(
            "/dashboard/assets/{name}",
            "/dashboard/assets/app.js"
        ));
        assert!(!matches("/dashboard/assets/{name}", "/dashboard/assets/"));
        assert!(!matches("/predict", "/predict/batch"));
        assert_eq!(allowed_methods("/predict"), Some(vec!["POST"]));
        assert_eq!(allowed_methods("/health"), Some(vec!["GET", "HEAD"]));
        assert_eq!(allowed_methods("/nowhere"), None);
    }

    #[test]
    fn public_messages_carry_no_absolute_path() {
        let root = std::path::Path::new("/srv/app/models");
        let msg = "customer_spend v0003 failed verification: reading /srv/app/models/customer_spend/v0003/best.json: \
                   denied (see /var/lib/x/data.parquet). Also \"/etc/passwd\", and /srv/app/models";
        assert_eq!(
            public_message(msg, &[root]),
            "customer_spend v0003 failed verification: reading customer_spend/v0003/best.json: \
             denied (see …/data.parquet). Also \"…/passwd\", and ."
        );
        assert_eq!(
            public_message("a/b and 1/2 stay", &[root]),
            "a/b and 1/2 stay"
        );
    }
}
