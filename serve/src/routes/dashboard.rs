//! The sales dashboard: the page at `GET /` (also `/dashboard`), its
//! embedded assets (our HTML/CSS/JS, plotly.js and the Brazil state shapes
//! from npm, see `serve/static/vendor/README.md`), and the data endpoints
//! `GET /api/dashboard` and `GET /api/dashboard/options`.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, web};
use utoipa::OpenApi;

use crate::dashboard::{self, DashboardData};
use crate::error::{ErrorBody, internal_error};

#[derive(OpenApi)]
#[openapi(
    paths(page, dashboard_data, dashboard_options),
    components(schemas(
        dashboard::Dashboard,
        dashboard::AppliedFilter,
        dashboard::Period,
        dashboard::Kpi,
        dashboard::KpiCards,
        dashboard::MonthlyView,
        dashboard::MonthValue,
        dashboard::ForecastMonth,
        dashboard::BacktestPoint,
        dashboard::CategoryRow,
        dashboard::StateRow,
        dashboard::CohortView,
        dashboard::Options,
        dashboard::StateInfo,
        dashboard::SegmentOptions,
        dashboard::SegmentEntry,
        dashboard::PcaMap,
    )),
    tags((name = "dashboard", description = "The sales dashboard and its data"))
)]
pub struct Api;

/// The dashboard's prepared data, or why there is none.
pub struct DashboardNow {
    pub data: Option<Arc<DashboardData>>,
    pub reason: String,
}

/// The dashboard's app data: the one in use, swapped whole when a new data
/// snapshot or segment model comes in (`crate::snapshot`); a request keeps
/// the one it started with.
pub struct DashboardState {
    now: arc_swap::ArcSwap<DashboardNow>,
}

impl DashboardState {
    fn of(data: Option<Arc<DashboardData>>, reason: String) -> Self {
        DashboardState {
            now: arc_swap::ArcSwap::from_pointee(DashboardNow { data, reason }),
        }
    }

    /// Prepare the dashboard when the service has data; never fails (a
    /// failure leaves the endpoints answering 503 with the reason).
    pub fn build(sales: Option<&analytics_lib::kpi::Sales>, models: &std::path::Path) -> Self {
        match sales {
            None => Self::of(
                None,
                "the service was started without curated data (--data)".into(),
            ),
            Some(sales) => match DashboardData::build(sales, models) {
                Ok(dd) => Self::of(Some(Arc::new(dd)), String::new()),
                Err(e) => {
                    eprintln!("serve: the dashboard could not be prepared: {e:#}");
                    Self::of(
                        None,
                        crate::error::public_message(
                            &format!("the dashboard could not be prepared: {e:#}"),
                            &[models],
                        ),
                    )
                }
            },
        }
    }

    pub fn empty() -> Self {
        Self::of(None, "the dashboard was not prepared".into())
    }

    /// The dashboard in use (one atomic load).
    pub fn now(&self) -> Arc<DashboardNow> {
        self.now.load_full()
    }

    /// Swap in `other`'s dashboard.
    pub fn replace(&self, other: DashboardState) {
        self.now.store(other.now.into_inner());
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(page))
        .route("/dashboard", web::get().to(page))
        .route("/dashboard/assets/{name}", web::get().to(asset))
        .route("/api/dashboard", web::get().to(dashboard_data))
        .route("/api/dashboard/options", web::get().to(dashboard_options));
}

const INDEX: &str = include_str!("../../static/dashboard/index.html");

/// Embedded assets: name, content type, bytes.
const ASSETS: [(&str, &str, &str); 4] = [
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/dashboard/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../static/dashboard/style.css"),
    ),
    (
        "plotly.min.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/vendor/plotly/plotly.min.js"),
    ),
    (
        "brazil.svg",
        "image/svg+xml",
        include_str!("../../static/vendor/svg-maps-brazil/brazil.svg"),
    ),
];

/// The dashboard page (HTML; it loads its data from `/api/dashboard`).
#[utoipa::path(get, path = "/", tag = "dashboard",
    responses((status = 200, description = "The dashboard page (HTML)", content_type = "text/html")))]
pub async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::html())
        .body(INDEX)
}

async fn asset(name: web::Path<String>) -> HttpResponse {
    super::embedded(&ASSETS, "dashboard asset", 3600, &name)
}

/// The 503 answer when the dashboard has no data.
fn unavailable(state: &DashboardNow) -> HttpResponse {
    ErrorBody::new("the dashboard has no data")
        .expected("a service started with curated data (--data)")
        .found(state.reason.clone())
        .respond(StatusCode::SERVICE_UNAVAILABLE)
}

/// Every figure of the dashboard for one filter: KPI cards with their
/// change against the previous period of the same length, monthly revenue
/// with forecast, revenue by category and by state, cohort retention.
/// Computed by the dashboard engine (built at start-up from the completed
/// lines), which gives what the `analytics_lib::kpi` functions give on the
/// same filter: start-up and the tests check it.
#[utoipa::path(get, path = "/api/dashboard", tag = "dashboard",
    params(
        ("from" = Option<String>, Query, description = "First day (YYYY-MM-DD); default: 364 days before `to`"),
        ("to" = Option<String>, Query, description = "Last day (YYYY-MM-DD); default: the last day with an order"),
        ("category" = Option<Vec<String>>, Query, description = "Product category; repeat for several (none: all)", explode = true),
        ("state" = Option<Vec<String>>, Query, description = "Customer state (UF, e.g. SP); repeatable", explode = true),
        ("channel" = Option<Vec<String>>, Query, description = "Sales channel; repeatable", explode = true),
        ("segment" = Option<usize>, Query, description = "Segment id of the live segment model (see /api/dashboard/options)"),
    ),
    responses(
        (status = 200, description = "The figures (with `empty` = true when nothing matches)", body = dashboard::Dashboard),
        (status = 400, description = "A filter value is not accepted", body = crate::error::ErrorBody),
        (status = 503, description = "The service has no data", body = crate::error::ErrorBody),
    ))]
pub async fn dashboard_data(req: HttpRequest, state: web::Data<DashboardState>) -> HttpResponse {
    let state = state.now();
    let Some(data) = state.data.clone() else {
        return unavailable(&state);
    };
    let pairs = match web::Query::<Vec<(String, String)>>::from_query(req.query_string()) {
        Ok(q) => q.into_inner(),
        Err(e) => {
            return ErrorBody::new("the query string could not be read")
                .expected("key=value pairs joined by &, percent-encoded")
                .found(e.to_string())
                .respond(StatusCode::BAD_REQUEST);
        }
    };
    let sel = match dashboard::query::parse(&pairs, &data) {
        Ok(s) => s,
        Err(body) => return body.respond(StatusCode::BAD_REQUEST),
    };
    match web::block(move || data.compute(&sel)).await {
        Ok(Ok(d)) => HttpResponse::Ok()
            .insert_header(("Server-Timing", format!("compute;dur={:.1}", d.compute_ms)))
            .json(d),
        Ok(Err(e)) => internal_error("computing the dashboard", &e),
        Err(e) => internal_error("computing the dashboard", &e),
    }
}

/// The values each filter takes (categories, states with coordinates,
/// channels, the data's dates, the default period) and the live segment
/// model's segments with a PCA map of its customers.
#[utoipa::path(get, path = "/api/dashboard/options", tag = "dashboard",
    responses(
        (status = 200, description = "Filter values and segments", body = dashboard::Options),
        (status = 503, description = "The service has no data", body = crate::error::ErrorBody),
    ))]
pub async fn dashboard_options(state: web::Data<DashboardState>) -> HttpResponse {
    let state = state.now();
    match &state.data {
        Some(d) => HttpResponse::Ok().json(&d.options),
        None => unavailable(&state),
    }
}
