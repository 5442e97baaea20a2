//! `GET /openapi.json` (generated from the Rust types by utoipa) and
//! `GET /docs` (Swagger UI, offline: the `swagger-ui-dist` files are
//! embedded in the binary from `serve/static/swagger-ui/`).

use std::sync::{Arc, OnceLock};

use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, web};
use serde_json::{Value, json};
use utoipa::OpenApi;

use crate::routes::dashboard::DashboardState;
use crate::state::AppState;

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

/// The document as generated from the Rust types, serialised once.
fn generated() -> &'static serde_json::Value {
    static DOC: OnceLock<serde_json::Value> = OnceLock::new();
    DOC.get_or_init(|| {
        serde_json::to_value(super::api_doc()).unwrap_or_else(|e| {
            eprintln!("error: serialising the OpenAPI document: {e}");
            serde_json::json!({})
        })
    })
}

/// The largest number a feature takes (XGBoost reads f32).
const FEATURE_MAX: f64 = f32::MAX as f64;

/// A feature's schema: a finite number ≥ 0, at most 1 for a share.
fn feature_schema(name: &str) -> Value {
    let share = name.starts_with(analytics_lib::features::SHARE_PREFIX);
    json!({
        "type": "number",
        "minimum": 0.0,
        "maximum": if share { 1.0 } else { FEATURE_MAX },
        "description": if share {
            "Share of monetary spent in this category (0 to 1)"
        } else {
            "A finite number ≥ 0"
        },
    })
}

/// An object schema of exactly these features: `required` ones, the others
/// optional, nothing else.
fn features_object(names: &[String], required: &[String], description: &str) -> Value {
    let properties: serde_json::Map<String, Value> = names
        .iter()
        .map(|n| (n.clone(), feature_schema(n)))
        .collect();
    json!({
        "type": "object",
        "description": description,
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// The document for what this service serves now: the generated one, with
/// what the server checks and only the live models and the data know made
/// exact. The request schemas list the live models' features (names,
/// ranges, required, nothing else); batches hold at most `max_batch`
/// records; the dashboard's filters take the data's values (categories,
/// states, channels, segment ids, dates in the accepted years). A client
/// (or schemathesis) can then trust it: what it allows is accepted.
pub fn live_document(state: &AppState, dashboard: &DashboardState) -> Value {
    let mut doc = generated().clone();
    let schemas = &mut doc["components"]["schemas"];
    // A lookup is the id alone.
    schemas["CustomerRef"]["additionalProperties"] = json!(false);
    if let Some(live) = state.live() {
        let names = live.feature_names();
        schemas["FeatureValues"] = features_object(
            names,
            names,
            &format!(
                "Every feature of the live model {} {} by name (GET /models lists them in order), \
                 all required, nothing else.",
                live.kind.name(),
                live.version
            ),
        );
    }
    if let Some(live) = state.live_segments() {
        let names = live.feature_names();
        let required: Vec<String> = crate::input::SEGMENT_REQUIRED
            .iter()
            .map(|s| s.to_string())
            .filter(|s| names.contains(s))
            .collect();
        schemas["SegmentFeatureValues"] = features_object(
            names,
            &required,
            &format!(
                "The live segment model {}'s features by name: recency_days, frequency and monetary \
                 required; average_ticket (default monetary / frequency) and the category shares \
                 optional (none: placed on RFM only; some: the others count as 0); nothing else.",
                live.version
            ),
        );
    }
    let max = state.settings.max_batch;
    for batch in ["BatchRequest", "SegmentBatchRequest"] {
        schemas[batch]["properties"]["records"]["maxItems"] = json!(max);
        schemas[batch]["additionalProperties"] = json!(false);
    }
    dashboard_choices(&mut doc);
    let now = dashboard.now();
    if let Some(data) = &now.data {
        let o = &data.options;
        // An empty value means "all".
        let values = |list: &[String]| {
            let mut v: Vec<String> = vec![String::new()];
            v.extend(list.iter().cloned());
            json!(v)
        };
        let (lo, hi) = crate::dashboard::query::date_bounds(o.min_date, o.max_date);
        // Empty: the default period's day.
        let date = json!({"anyOf": [{"type": "string", "enum": [""]}, {
            "type": "string",
            "format": "date",
            "pattern": date_pattern(
                lo.unwrap_or(chrono::NaiveDate::MIN),
                hi.unwrap_or(chrono::NaiveDate::MAX),
            ),
            "description": format!(
                "YYYY-MM-DD from {} to {} (the data's first and last day ± {} days)",
                lo.unwrap_or(chrono::NaiveDate::MIN),
                hi.unwrap_or(chrono::NaiveDate::MAX),
                crate::dashboard::query::DATE_MARGIN_DAYS
            ),
        }]});
        let segment = match data.options.segments.segments.len() {
            0 => json!({"type": "string", "enum": [""]}),
            k => json!({"anyOf": [
                {"type": "integer", "minimum": 0, "maximum": k - 1},
                {"type": "string", "enum": [""]},
            ]}),
        };
        for item in doc["paths"]
            .as_object_mut()
            .into_iter()
            .flat_map(|p| p.values_mut())
        {
            // `get_mut`: indexing would add what is missing.
            let Some(params) = item
                .get_mut("get")
                .and_then(|g| g.get_mut("parameters"))
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            for p in params {
                let list = |values: Value| json!({"type": "array", "items": {"type": "string", "enum": values}});
                let schema = match p["name"].as_str() {
                    Some("from" | "to") => date.clone(),
                    Some("category") => list(values(&o.categories)),
                    Some("state") => list(values(&o.state_codes)),
                    Some("channel") => list(values(&o.channels)),
                    Some("segment") => segment.clone(),
                    _ => continue,
                };
                p["schema"] = schema;
            }
        }
    }
    doc
}

/// The dashboard routes' own parameters, exact: the comparison, the
/// drill-down's period, sort, direction and paging, the export's table.
/// An empty value is the default (except for `table`, which is required).
fn dashboard_choices(doc: &mut Value) {
    use analytics_lib::dashboard::{Comparison, OrderSort};
    let choice = |names: &[&str]| {
        let mut v = vec![""];
        v.extend_from_slice(names);
        json!({"type": "string", "enum": v})
    };
    let number = |lo: u64, hi: u64| {
        json!({"anyOf": [
            {"type": "integer", "minimum": lo, "maximum": hi},
            {"type": "string", "enum": [""]},
        ]})
    };
    for (path, item) in doc["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|p| p.iter_mut())
    {
        if !path.starts_with("/api/dashboard") {
            continue;
        }
        let Some(params) = item
            .get_mut("get")
            .and_then(|g| g.get_mut("parameters"))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for p in params {
            let schema = match p["name"].as_str() {
                Some("compare") => choice(&Comparison::NAMES),
                Some("period") => choice(&["current", "comparison"]),
                Some("sort") => choice(&OrderSort::NAMES),
                Some("dir") => choice(&["asc", "desc"]),
                Some("page") => number(1, crate::dashboard::MAX_PAGE),
                Some("page_size") => number(1, crate::dashboard::MAX_PAGE_SIZE),
                Some("table") => {
                    json!({"type": "string", "enum": crate::dashboard::export::Table::NAMES})
                }
                _ => continue,
            };
            p["schema"] = schema;
        }
    }
}

/// `a|b|…` of the two-digit numbers from `lo` to `hi`.
fn two_digits(lo: u32, hi: u32) -> String {
    (lo..=hi)
        .map(|n| format!("{n:02}"))
        .collect::<Vec<_>>()
        .join("|")
}

/// A regular expression of the `YYYY-MM-DD` strings from `lo` to `hi`
/// (with `format: date` for the days each month has). Years of four digits.
pub fn date_pattern(lo: chrono::NaiveDate, hi: chrono::NaiveDate) -> String {
    use chrono::Datelike;
    let (lo, hi) = (
        lo.max(chrono::NaiveDate::from_ymd_opt(1, 1, 1).unwrap_or(lo)),
        hi.min(chrono::NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or(hi)),
    );
    let (ly, lm, ld) = (lo.year(), lo.month(), lo.day());
    let (hy, hm, hd) = (hi.year(), hi.month(), hi.day());
    /// Days of year `y` from month `a` day `da` to month `b` day `db`.
    fn span(parts: &mut Vec<String>, y: i32, (a, da): (u32, u32), (b, db): (u32, u32)) {
        if a == b {
            parts.push(format!("{y:04}-{a:02}-({})", two_digits(da, db)));
            return;
        }
        parts.push(format!("{y:04}-{a:02}-({})", two_digits(da, 31)));
        if a + 1 < b {
            parts.push(format!(
                "{y:04}-({})-({})",
                two_digits(a + 1, b - 1),
                two_digits(1, 31)
            ));
        }
        parts.push(format!("{y:04}-{b:02}-({})", two_digits(1, db)));
    }
    let mut parts = Vec::new();
    if ly == hy {
        span(&mut parts, ly, (lm, ld), (hm, hd));
    } else {
        span(&mut parts, ly, (lm, ld), (12, 31));
        if ly + 1 < hy {
            let years = (ly + 1..hy)
                .map(|y| format!("{y:04}"))
                .collect::<Vec<_>>()
                .join("|");
            parts.push(format!(
                "({years})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
            ));
        }
        span(&mut parts, hy, (1, 1), (hm, hd));
    }
    format!("^({})$", parts.join("|"))
}

/// The live document, serialised, cached until a live model or the data
/// snapshot (its filter values and date range) changes.
fn document(state: &AppState, dashboard: &DashboardState) -> Arc<String> {
    let key = (
        state.live().map(|m| m.version.clone()),
        state.live_segments().map(|m| m.version.clone()),
        state.feed.info().map(|d| d.loaded_at),
    );
    let mut cache = state.doc_cache.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((k, text)) = cache.as_ref()
        && *k == key
    {
        return text.clone();
    }
    let text = Arc::new(
        serde_json::to_string_pretty(&live_document(state, dashboard)).unwrap_or_else(|e| {
            eprintln!("error: serialising the OpenAPI document: {e}");
            "{}".into()
        }),
    );
    *cache = Some((key, text.clone()));
    text
}

/// The OpenAPI 3 document of this service.
#[utoipa::path(get, path = "/openapi.json", tag = "docs",
    responses((status = 200, description = "The OpenAPI 3 document: the live models' features and the data's filter values", content_type = "application/json")))]
pub async fn openapi_json(
    state: web::Data<AppState>,
    dashboard: web::Data<DashboardState>,
) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(document(&state, &dashboard).to_string())
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

/// A feature value in the request schemas: a finite number ≥ 0.
pub(crate) fn feature_number(description: &str) -> utoipa::openapi::schema::ObjectBuilder {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Number)
        .minimum(Some(0.0))
        .description(Some(description))
}

/// The `share_<category>` values of a features object (its additional
/// properties): numbers from 0 to 1.
pub(crate) fn share_values() -> Option<utoipa::openapi::RefOr<utoipa::openapi::Schema>> {
    Some(utoipa::openapi::RefOr::T(utoipa::openapi::Schema::Object(
        feature_number("share_<category>: share of monetary spent in that category")
            .maximum(Some(1.0))
            .build(),
    )))
}

/// A request body of `/predict` or `/segment`: `{"customer_id"}`
/// (`CustomerRef`) or the feature values of the schema named `values`.
pub(crate) fn customer_or(
    values: &str,
    description: &str,
) -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    use utoipa::openapi::{Ref, RefOr};
    utoipa::openapi::schema::OneOfBuilder::new()
        .item(RefOr::Ref(Ref::from_schema_name("CustomerRef")))
        .item(RefOr::Ref(Ref::from_schema_name(values)))
        .description(Some(description))
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn d(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    /// The pattern holds exactly the days from `lo` to `hi`.
    #[test]
    fn the_date_pattern_is_the_range() {
        for (lo, hi) in [
            ("2022-06-13", "2026-02-03"),
            ("2024-03-05", "2024-03-20"),
            ("2024-03-05", "2024-05-20"),
            ("2023-12-31", "2024-01-01"),
        ] {
            let (lo, hi) = (d(lo), d(hi));
            let re = date_pattern(lo, hi);
            let inner = re.trim_start_matches("^(").trim_end_matches(")$");
            let alternatives: Vec<&str> = inner.split('|').collect();
            assert!(!alternatives.is_empty());
            // Checked against every day of a wide window by a tiny matcher
            // of this pattern's shape (fixed-width alternatives).
            let mut day = lo - chrono::Duration::days(400);
            while day <= hi + chrono::Duration::days(400) {
                let s = day.to_string();
                let want = day >= lo && day <= hi;
                assert_eq!(matches(&re, &s), want, "{re} on {s}");
                day += chrono::Duration::days(1);
            }
        }
    }

    /// Match `s` against the subset of regular expressions `date_pattern`
    /// writes: `^…$`, literals, `[a-b]` / `[ab]` classes and `(…|…)` groups.
    fn matches(re: &str, s: &str) -> bool {
        fn seq(p: &str, s: &str) -> bool {
            if p.is_empty() {
                return s.is_empty();
            }
            if let Some(rest) = p.strip_prefix('(') {
                let (mut depth, mut end) = (1, rest.len());
                for (i, c) in rest.char_indices() {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                let (group, after) = (&rest[..end], &rest[end + 1..]);
                let (mut depth, mut start, mut alts) = (0, 0, Vec::new());
                for (i, c) in group.char_indices() {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        '|' if depth == 0 => {
                            alts.push(&group[start..i]);
                            start = i + 1;
                        }
                        _ => {}
                    }
                }
                alts.push(&group[start..]);
                return alts.iter().any(|a| seq(&format!("{a}{after}"), s));
            }
            let Some(c) = s.chars().next() else {
                return false;
            };
            if let Some(rest) = p.strip_prefix('[') {
                let end = rest.find(']').unwrap_or(rest.len());
                let class = &rest.as_bytes()[..end];
                let ok = if class.len() == 3 && class[1] == b'-' {
                    (class[0]..=class[2]).any(|b| char::from(b) == c)
                } else {
                    class.iter().any(|b| char::from(*b) == c)
                };
                return ok && seq(&rest[end + 1..], &s[c.len_utf8()..]);
            }
            p.starts_with(c) && seq(&p[c.len_utf8()..], &s[c.len_utf8()..])
        }
        seq(re.trim_start_matches('^').trim_end_matches('$'), s)
    }
}
