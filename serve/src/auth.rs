//! Bearer-key authentication and scopes (`../shared/spec/interfaces.md`,
//! "Access").
//!
//! `APP_API_KEYS` (or the settings file's `api_keys`) is a comma-separated
//! list of `KEY` or `KEY:SCOPES`, scopes joined by `+` among `predict`,
//! `read` and `customers`; a key without scopes has them all. With no key
//! configured, authentication is off and every caller has every scope (serve
//! then refuses to listen on anything but loopback unless told
//! `--allow-anonymous`, see `configuration.rs`).
//!
//! Which scope a route needs is decided by [`required_scope`], the one table
//! behind the middleware ([`authenticate`]) and the OpenAPI document
//! (`routes::api_doc` declares the bearer scheme and each operation's scope):
//!
//! * `/health` and the pages' static files (`/`, `/dashboard`,
//!   `/dashboard/assets/*`, `/docs`, `/docs/*`, `/static/*`): open. They are
//!   compiled into the binary, the same for everybody, and hold no data; a
//!   browser cannot send a bearer header when it navigates, so the pages ask
//!   for the key (or take it from the URL fragment `#key=…`, which never
//!   reaches a server or a log) and send it with every data request
//!   (`static/api-key.js`).
//! * `/predict`, `/predict/batch`, `/segment`, `/segment/batch`: `predict`.
//! * everything else (`/ready`, `/models`, `/openapi.json`, `/api/…`): `read`.
//!
//! `customers` is not a route's scope: routes that show customer ids (the
//! dashboard's tables and exports) ask the [`Caller`] extractor
//! (`caller.can(Scope::Customers)` or `caller.require(…)`).
//!
//! Keys are compared in constant time (every configured key, every byte up
//! to the longer length, no early exit); a key is never logged nor echoed:
//! the access log names a key by its position in the list (`key=2`).

use std::fmt;
use std::future::{Ready, ready};
use std::str::FromStr;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::error::ErrorBody;

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The prediction and segment routes.
    Predict,
    /// The dashboard's data, `/ready`, `/models`, `/openapi.json`.
    Read,
    /// Customer ids in the dashboard's tables and exports.
    Customers,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Predict, Scope::Read, Scope::Customers];

    pub fn name(self) -> &'static str {
        match self {
            Scope::Predict => "predict",
            Scope::Read => "read",
            Scope::Customers => "customers",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Scope::Predict => 1,
            Scope::Read => 2,
            Scope::Customers => 4,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of scopes.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Scopes(u8);

impl Scopes {
    pub const NONE: Scopes = Scopes(0);
    pub const ALL: Scopes = Scopes(7);

    pub fn contains(self, s: Scope) -> bool {
        self.0 & s.bit() != 0
    }

    pub fn with(self, s: Scope) -> Scopes {
        Scopes(self.0 | s.bit())
    }

    /// `predict+read`, or `none`.
    pub fn names(self) -> String {
        let names: Vec<&str> = Scope::ALL
            .iter()
            .filter(|s| self.contains(**s))
            .map(|s| s.name())
            .collect();
        if names.is_empty() {
            "none".into()
        } else {
            names.join("+")
        }
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names())
    }
}

/// The shortest key accepted: a guessable key is refused at start-up.
pub const MIN_KEY_LEN: usize = 16;

/// One configured key. `Debug` and `Serialize` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    secret: Vec<u8>,
    pub scopes: Scopes,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[redacted]:{}", self.scopes.names())
    }
}

/// Why `APP_API_KEYS` / `api_keys` was refused (never showing a key).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key {index}: expected at least {MIN_KEY_LEN} characters, found {len}")]
    TooShort { index: usize, len: usize },
    #[error(
        "key {index}: expected letters, digits and - . _ ~ + / = only (a bearer token), found the character {found:?}"
    )]
    BadCharacter { index: usize, found: char },
    #[error(
        "key {index}: expected scopes among predict, read, customers joined by +, found {found:?}"
    )]
    BadScope { index: usize, found: String },
    #[error("key {index}: the same key is listed before (as key {first})")]
    Duplicate { index: usize, first: usize },
}

/// A bearer token's characters (RFC 6750 `b64token`).
fn token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '+' | '/' | '=')
}

impl ApiKey {
    /// `KEY` or `KEY:SCOPES`; `index` (from 1) names it in errors.
    fn parse(entry: &str, index: usize) -> Result<ApiKey, KeyError> {
        let (key, scopes) = match entry.split_once(':') {
            Some((k, s)) => (k, Some(s)),
            None => (entry, None),
        };
        if let Some(found) = key.chars().find(|c| !token_char(*c)) {
            return Err(KeyError::BadCharacter { index, found });
        }
        if key.chars().count() < MIN_KEY_LEN {
            return Err(KeyError::TooShort {
                index,
                len: key.chars().count(),
            });
        }
        let scopes = match scopes {
            None => Scopes::ALL,
            Some(list) => {
                let mut set = Scopes::NONE;
                for name in list.split('+') {
                    let scope = Scope::ALL
                        .into_iter()
                        .find(|s| s.name() == name.trim())
                        .ok_or_else(|| KeyError::BadScope {
                            index,
                            found: name.chars().take(40).collect(),
                        })?;
                    set = set.with(scope);
                }
                set
            }
        };
        Ok(ApiKey {
            secret: key.as_bytes().to_vec(),
            scopes,
        })
    }
}

/// The configured keys (none: authentication is off).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApiKeys(Vec<ApiKey>);

impl ApiKeys {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The keys of a list of entries (`KEY` or `KEY:SCOPES`); blank entries
    /// are skipped.
    pub fn from_entries<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, KeyError> {
        let mut keys: Vec<ApiKey> = Vec::new();
        for (i, entry) in entries
            .into_iter()
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .enumerate()
        {
            let key = ApiKey::parse(entry, i + 1)?;
            if let Some(first) = keys.iter().position(|k| k.secret == key.secret) {
                return Err(KeyError::Duplicate {
                    index: i + 1,
                    first: first + 1,
                });
            }
            keys.push(key);
        }
        Ok(ApiKeys(keys))
    }

    /// Which key `token` is (its position from 1) and its scopes. Every
    /// configured key is compared, each in constant time, with no early exit.
    pub fn authenticate(&self, token: &[u8]) -> Option<(usize, Scopes)> {
        let mut found: Option<(usize, Scopes)> = None;
        for (i, key) in self.0.iter().enumerate() {
            let equal = constant_time_eq(&key.secret, token);
            if equal && found.is_none() {
                found = Some((i + 1, key.scopes));
            }
        }
        found
    }
}

impl FromStr for ApiKeys {
    type Err = KeyError;
    /// The comma-separated form of `APP_API_KEYS`.
    fn from_str(s: &str) -> Result<Self, KeyError> {
        Self::from_entries(s.split(','))
    }
}

/// `a == b`, in a time that depends on the lengths only.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().max(b.len());
    let mut diff = a.len() ^ b.len();
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    std::hint::black_box(diff) == 0
}

impl Serialize for ApiKeys {
    /// Redacted: `["[redacted]:predict+read", …]` (the start-up echo).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|k| format!("{k:?}")))
    }
}

impl<'de> Deserialize<'de> for ApiKeys {
    /// A string in `APP_API_KEYS`' form, or a list of `KEY[:SCOPES]` strings.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            One(String),
            Many(Vec<String>),
        }
        let keys = match Form::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "api_keys: expected \"KEY[:SCOPES],…\" or a list of \"KEY[:SCOPES]\" strings",
            )
        })? {
            Form::One(s) => s.parse(),
            Form::Many(list) => ApiKeys::from_entries(list.iter().map(String::as_str)),
        };
        keys.map_err(|e| serde::de::Error::custom(format!("api_keys: {e}")))
    }
}

/// Who is calling, attached to every request by [`authenticate`]; take it
/// as a handler argument (`caller: Caller`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    pub scopes: Scopes,
    /// The key's position in the configured list (from 1); `None` when no
    /// key was sent or authentication is off.
    pub key: Option<usize>,
}

impl Caller {
    /// Authentication off: every scope.
    pub const ANONYMOUS: Caller = Caller {
        scopes: Scopes::ALL,
        key: None,
    };
    /// No (valid) key while authentication is on.
    pub const NOBODY: Caller = Caller {
        scopes: Scopes::NONE,
        key: None,
    };

    pub fn can(&self, scope: Scope) -> bool {
        self.scopes.contains(scope)
    }

    /// `Ok` when the caller has `scope`, else the 403 answer.
    pub fn require(&self, scope: Scope) -> Result<(), AuthError> {
        if self.can(scope) {
            Ok(())
        } else {
            Err(AuthError::Forbidden {
                needed: scope,
                have: self.scopes,
            })
        }
    }
}

impl FromRequest for Caller {
    type Error = actix_web::Error;
    type Future = Ready<Result<Caller, actix_web::Error>>;
    /// The caller [`authenticate`] attached; without that middleware, no
    /// scope at all (closed, never open by mistake).
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(req
            .extensions()
            .get::<Caller>()
            .copied()
            .unwrap_or(Caller::NOBODY)))
    }
}

/// A refused request: 401 (no or unknown key) or 403 (the key lacks the scope).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing API key")]
    Missing,
    #[error("the Authorization header is not a bearer token")]
    Malformed,
    #[error("unknown API key")]
    Unknown,
    #[error("this API key lacks the scope `{needed}`")]
    Forbidden { needed: Scope, have: Scopes },
}

impl actix_web::ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            AuthError::Forbidden { .. } => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let expected = "Authorization: Bearer <key> (a key of APP_API_KEYS)";
        let (body, challenge) = match self {
            AuthError::Missing => (
                ErrorBody::new(self.to_string())
                    .field("Authorization")
                    .expected(expected)
                    .found("no Authorization header"),
                "Bearer realm=\"sales-analytics\"".to_string(),
            ),
            AuthError::Malformed => (
                ErrorBody::new(self.to_string())
                    .field("Authorization")
                    .expected(expected)
                    .found("another authorization scheme, or no token"),
                "Bearer realm=\"sales-analytics\", error=\"invalid_request\"".to_string(),
            ),
            AuthError::Unknown => (
                ErrorBody::new(self.to_string())
                    .field("Authorization")
                    .expected(expected)
                    .found("a bearer token that is not a configured key"),
                "Bearer realm=\"sales-analytics\", error=\"invalid_token\"".to_string(),
            ),
            AuthError::Forbidden { needed, have } => (
                ErrorBody::new(self.to_string())
                    .field("Authorization")
                    .expected(format!("a key with the scope `{needed}`"))
                    .found(format!("a key with the scopes {}", have.names())),
                format!(
                    "Bearer realm=\"sales-analytics\", error=\"insufficient_scope\", scope=\"{needed}\""
                ),
            ),
        };
        let mut res = body.respond(self.status_code());
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            res.headers_mut().insert(WWW_AUTHENTICATE, v);
        }
        res
    }
}

/// The pages and their static files: served to anybody (see the module docs).
pub const OPEN_PREFIXES: [&str; 3] = ["/dashboard/assets/", "/docs/", "/static/"];

/// The scope `path` needs; `None`: open.
pub fn required_scope(path: &str) -> Option<Scope> {
    match path {
        "/health" | "/" | "/dashboard" | "/docs" => None,
        "/predict" | "/predict/batch" | "/segment" | "/segment/batch" => Some(Scope::Predict),
        p if OPEN_PREFIXES.iter().any(|o| p.starts_with(o)) => None,
        _ => Some(Scope::Read),
    }
}

/// The bearer token of an `Authorization` header value.
fn bearer(value: &HeaderValue) -> Option<&[u8]> {
    let v = value.as_bytes();
    let (scheme, rest) = v.split_at(v.iter().position(|b| *b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Who sent `req`, against `keys` (empty: authentication off).
pub fn identify(keys: &ApiKeys, req: &HttpRequest) -> Result<Caller, AuthError> {
    if keys.is_empty() {
        return Ok(Caller::ANONYMOUS);
    }
    let Some(value) = req.headers().get(AUTHORIZATION) else {
        return Err(AuthError::Missing);
    };
    let token = bearer(value).ok_or(AuthError::Malformed)?;
    keys.authenticate(token)
        .map(|(key, scopes)| Caller {
            scopes,
            key: Some(key),
        })
        .ok_or(AuthError::Unknown)
}

/// The configured keys, as app data of the server.
#[derive(Clone, Debug, Default)]
pub struct Auth {
    pub keys: ApiKeys,
}

/// Middleware: attach the [`Caller`] to the request and refuse it (401,
/// 403 with the JSON error body and `WWW-Authenticate`) when it lacks the
/// scope its route needs ([`required_scope`]).
pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let keys = req
        .app_data::<web::Data<Auth>>()
        .map(|a| a.keys.clone())
        .unwrap_or_default();
    let needed = required_scope(req.path());
    let caller = identify(&keys, req.request());
    let caller = match (needed, caller) {
        (_, Ok(c)) if needed.is_none_or(|s| c.can(s)) => c,
        // An open route: no key, or a bad one, is simply nobody.
        (None, _) => Caller::NOBODY,
        (Some(s), Ok(c)) => {
            let e = AuthError::Forbidden {
                needed: s,
                have: c.scopes,
            };
            req.extensions_mut().insert(c);
            return Ok(req.error_response(e).map_into_right_body());
        }
        (Some(_), Err(e)) => return Ok(req.error_response(e).map_into_right_body()),
    };
    req.extensions_mut().insert(caller);
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "k1-0123456789abcdef";
    const K2: &str = "k2-0123456789abcdef";

    #[test]
    fn keys_parse_with_scopes_and_refuse_what_is_not_a_key() {
        let keys: ApiKeys = format!(" {K1}:predict+read , {K2} ,")
            .parse()
            .expect("keys");
        assert_eq!(keys.len(), 2);
        let (i, s) = keys.authenticate(K1.as_bytes()).expect("k1");
        assert_eq!((i, s.names().as_str()), (1, "predict+read"));
        let (i, s) = keys.authenticate(K2.as_bytes()).expect("k2");
        assert_eq!((i, s), (2, Scopes::ALL));
        assert_eq!(keys.authenticate(b"k1-0123456789abcdeX"), None);
        assert_eq!(keys.authenticate(b"k1-0123456789abcde"), None);
        assert_eq!(keys.authenticate(b""), None);

        assert_eq!(
            "short:read".parse::<ApiKeys>(),
            Err(KeyError::TooShort { index: 1, len: 5 })
        );
        assert_eq!(
            format!("{K1}:write").parse::<ApiKeys>(),
            Err(KeyError::BadScope {
                index: 1,
                found: "write".into()
            })
        );
        assert!(matches!(
            format!("{K1},{K1}:read").parse::<ApiKeys>(),
            Err(KeyError::Duplicate { index: 2, first: 1 })
        ));
        assert!(matches!(
            "k1 0123456789abcdef".parse::<ApiKeys>(),
            Err(KeyError::BadCharacter { found: ' ', .. })
        ));
        // Never shown.
        let shown = format!("{keys:?} {}", serde_json::to_string(&keys).expect("json"));
        assert!(!shown.contains("0123456789"), "{shown}");
        assert!(shown.contains("[redacted]:predict+read"), "{shown}");
    }

    #[test]
    fn keys_deserialize_from_a_string_or_a_list() {
        let a: ApiKeys = serde_json::from_str(&format!("\"{K1}:read,{K2}\"")).expect("string");
        let b: ApiKeys = serde_json::from_str(&format!("[\"{K1}:read\", \"{K2}\"]")).expect("list");
        assert_eq!(a, b);
        let e = serde_json::from_str::<ApiKeys>("\"x:read\"").expect_err("short");
        assert!(e.to_string().contains("at least 16"), "{e}");
    }

    #[test]
    fn every_route_has_its_scope() {
        assert_eq!(required_scope("/health"), None);
        assert_eq!(required_scope("/"), None);
        assert_eq!(required_scope("/dashboard/assets/app.js"), None);
        assert_eq!(required_scope("/docs/swagger-ui.css"), None);
        assert_eq!(required_scope("/predict/batch"), Some(Scope::Predict));
        assert_eq!(required_scope("/segment"), Some(Scope::Predict));
        assert_eq!(required_scope("/ready"), Some(Scope::Read));
        assert_eq!(required_scope("/openapi.json"), Some(Scope::Read));
        assert_eq!(
            required_scope("/api/dashboard/export.csv"),
            Some(Scope::Read)
        );
        assert_eq!(required_scope("/predict/"), Some(Scope::Read));
        assert_eq!(required_scope("/nowhere"), Some(Scope::Read));
    }

    #[test]
    fn constant_time_eq_is_eq() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }

    /// A route that shows customer ids only to keys with `customers`, as a
    /// dashboard table or export does.
    #[actix_web::test]
    async fn routes_learn_the_callers_scopes_from_the_extractor() {
        use actix_web::test;
        let keys: ApiKeys = format!("{K1}:read,{K2}:read+customers")
            .parse()
            .expect("keys");
        let app = test::init_service(
            actix_web::App::new()
                .app_data(web::Data::new(Auth { keys }))
                .wrap(actix_web::middleware::from_fn(authenticate))
                .route(
                    "/api/table",
                    web::get().to(|caller: Caller| async move {
                        match caller.require(Scope::Customers) {
                            Ok(()) => HttpResponse::Ok().body("C0001"),
                            Err(_) => HttpResponse::Ok().body("(hidden)"),
                        }
                    }),
                ),
        )
        .await;
        for (key, want) in [(K1, "(hidden)"), (K2, "C0001")] {
            let req = test::TestRequest::get()
                .uri("/api/table")
                .insert_header(("Authorization", format!("Bearer {key}")))
                .to_request();
            let body = test::call_and_read_body(&app, req).await;
            assert_eq!(body, want.as_bytes());
        }
        let req = test::TestRequest::get().uri("/api/table").to_request();
        let res = test::call_service(&app, req).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        // Without the middleware: no scope at all.
        let req = test::TestRequest::get().to_http_request();
        let caller = Caller::extract(&req).await.expect("caller");
        assert_eq!(caller, Caller::NOBODY);
    }
}
