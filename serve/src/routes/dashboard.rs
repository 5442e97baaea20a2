//! The sales dashboard: the page at `GET /` (also `/dashboard`), its
//! embedded assets (our HTML/CSS/JS, plotly.js and the Brazil state shapes
//! from npm, see `serve/static/vendor/README.md`), and the data endpoints
//! `GET /api/dashboard`, `GET /api/dashboard/options`, `GET /api/dashboard/clv`, the drill-down
//! `GET /api/dashboard/orders` and `GET /api/dashboard/export.csv`.
//!
//! Whether a caller may see customer ids is one boolean,
//! [`customer_ids_allowed`], handed to every answer that could show one.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, ContentType};
use actix_web::{HttpRequest, HttpResponse, web};
use analytics_lib::dashboard::{OrderSort, Which};
use utoipa::OpenApi;

use crate::auth::{Caller, Scope};
use crate::dashboard::export::{OrderView, Table};
use crate::dashboard::query;
use crate::dashboard::{self, DashboardData};
use crate::error::{ErrorBody, internal_error};

#[derive(OpenApi)]
#[openapi(
    paths(page, dashboard_data, dashboard_options, dashboard_clv, dashboard_orders, dashboard_export),
    components(schemas(
        dashboard::Dashboard,
        dashboard::AppliedFilter,
        dashboard::ComparisonInfo,
        dashboard::ComparisonMonth,
        dashboard::SegmentRow,
        dashboard::ProductRow,
        dashboard::CustomerRow,
        dashboard::OrderRow,
        dashboard::export::OrdersAnswer,
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
        dashboard::MigrationView,
        dashboard::ClvCard,
        dashboard::ClvSegmentRow,
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
    /// failure leaves the endpoints answering 503 with the reason). `rows`:
    /// the snapshot's customer rows (the CLV card's layout).
    pub fn build(
        sales: Option<&analytics_lib::kpi::Sales>,
        models: &std::path::Path,
        rows: Option<&analytics_lib::lookup::CustomerRows>,
    ) -> Self {
        match sales {
            None => Self::of(
                None,
                "the service was started without curated data (--data)".into(),
            ),
            Some(sales) => match DashboardData::build(sales, models, rows) {
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

    /// Prepare a dashboard that asks the warehouse per view
    /// ([`DashboardData::build_warehouse`]); never fails, as [`Self::build`].
    pub fn build_warehouse(
        source: std::sync::Arc<analytics_lib::source::Source>,
        data: &dyn analytics_lib::features::FeatureData,
        models: &std::path::Path,
        rows: Option<&analytics_lib::lookup::CustomerRows>,
    ) -> Self {
        match DashboardData::build_warehouse(source, data, models, rows) {
            Ok(dd) => {
                let dd = Arc::new(dd);
                warm_up(Arc::clone(&dd));
                Self::of(Some(dd), String::new())
            }
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
        .route("/api/dashboard/options", web::get().to(dashboard_options))
        .route("/api/dashboard/clv", web::get().to(dashboard_clv))
        .route("/api/dashboard/orders", web::get().to(dashboard_orders))
        .route("/api/dashboard/export.csv", web::get().to(dashboard_export));
}

/// A view that could not be answered: 503 when the warehouse did not
/// answer (the message says so; the next request asks again), else 500.
fn view_failed(context: &str, e: &anyhow::Error) -> HttpResponse {
    match e.downcast_ref::<dashboard::WarehouseError>() {
        Some(w) => {
            // The details (the source's scrubbed message) go to the log only.
            eprintln!("error: {context}: {w}");
            ErrorBody::new("the warehouse did not answer this view: try again in a moment")
                .respond(StatusCode::SERVICE_UNAVAILABLE)
        }
        None => internal_error(context, e),
    }
}

/// May this caller see customer ids (leaderboard, drill-down, exports)?
/// Only with the `customers` scope (every caller has it while the service
/// has no API keys): the one place every dashboard answer takes it from.
pub fn customer_ids_allowed(caller: &Caller) -> bool {
    caller.can(Scope::Customers)
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

/// The view's filters, the same on every dashboard data route: their
/// OpenAPI parameters, written once (the values are read by
/// [`query::parse`], which knows the data's categories, states and dates).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // a description of the parameters, never built
struct ViewFilters {
    /// First day (YYYY-MM-DD); default: 364 days before `to`
    from: Option<String>,
    /// Last day (YYYY-MM-DD); default: the last day with an order
    to: Option<String>,
    /// Product category; repeat for several (none: all)
    #[param(style = Form, explode)]
    category: Option<Vec<String>>,
    /// Customer state (UF, e.g. SP); repeatable
    #[param(style = Form, explode)]
    state: Option<Vec<String>>,
    /// Sales channel; repeatable
    #[param(style = Form, explode)]
    channel: Option<Vec<String>>,
    /// Segment id of the live segment model (see /api/dashboard/options)
    segment: Option<usize>,
    /// `previous` (the period of the same length just before) or `yoy` (the
    /// same days a year earlier); default: `yoy` for whole calendar months
    /// or one year, else `previous`
    compare: Option<String>,
}

/// The dashboard in use and what `check` reads from the request's query
/// string, or the answer to send instead: 503 without data, 400 naming the
/// parameter that is not accepted.
fn request_view<T>(
    req: &HttpRequest,
    state: &DashboardState,
    check: impl FnOnce(&[(String, String)], &DashboardData) -> Result<T, ErrorBody>,
) -> Result<(Arc<DashboardData>, T), Box<HttpResponse>> {
    let now = state.now();
    let Some(data) = now.data.clone() else {
        return Err(Box::new(unavailable(&now)));
    };
    pairs_of(req)
        .and_then(|pairs| check(&pairs, &data))
        .map(|t| (data, t))
        .map_err(|b| Box::new(b.respond(StatusCode::BAD_REQUEST)))
}

/// Ask the warehouse for the default view (its figures and leaderboards,
/// and the first page of its orders) off the request path, so that the
/// first visitor of a new snapshot finds them kept
/// ([`crate::dashboard::recent`]). A failure is only logged: the visitor's
/// request asks again.
fn warm_up(data: Arc<DashboardData>) {
    let spawned = std::thread::Builder::new()
        .name("dashboard-warm-up".into())
        .spawn(move || {
            let started = std::time::Instant::now();
            let done = query::parse(&[], &data)
                .map_err(|e| anyhow::anyhow!("{}", e.error))
                .and_then(|sel| {
                    data.compute(&sel, false)?;
                    data.orders_page(
                        &sel,
                        OrderView::default(),
                        1,
                        dashboard::DEFAULT_PAGE_SIZE,
                        false,
                    )
                });
            match done {
                Ok(_) => eprintln!(
                    "serve: dashboard: the default view asked of the warehouse in {:.1} s",
                    started.elapsed().as_secs_f64()
                ),
                Err(e) => eprintln!("serve: dashboard: warming up the default view failed: {e:#}"),
            }
        });
    if let Err(e) = spawned {
        eprintln!("serve: dashboard: no warm-up thread: {e}");
    }
}

/// The query string as pairs.
fn pairs_of(req: &HttpRequest) -> Result<Vec<(String, String)>, ErrorBody> {
    web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| {
            ErrorBody::new("the query string could not be read")
                .expected("key=value pairs joined by &, percent-encoded")
                .found(e.to_string())
        })
}

/// The drill-down's sort, direction and period (`sort`, `dir`, `period`).
fn order_view(rest: &[(&str, &str)]) -> Result<OrderView, ErrorBody> {
    let mut v = OrderView::default();
    if let Some(s) = query::single(rest, "sort")? {
        let name = query::choice("sort", s, &OrderSort::NAMES)?;
        v.sort = OrderSort::parse(name).unwrap_or(OrderSort::Date);
    }
    if let Some(d) = query::single(rest, "dir")? {
        v.descending = query::choice("dir", d, &["asc", "desc"])? == "desc";
    }
    if let Some(p) = query::single(rest, "period")? {
        v.which = match query::choice("period", p, &["current", "comparison"])? {
            "comparison" => Which::Comparison,
            _ => Which::Current,
        };
    }
    Ok(v)
}

/// Every figure of the dashboard for one filter: KPI cards with their
/// change against the comparison period (`compare`: the previous period of
/// the same length, or the same period a year earlier), monthly revenue
/// with forecast and the comparison months, revenue by category, state and
/// segment with the comparison columns, the top products and customers,
/// cohort retention. Computed by the dashboard engine (built at start-up
/// from the completed lines), which gives what the `analytics_lib::kpi`
/// functions give on the same filter: start-up and the tests check it.
#[utoipa::path(get, path = "/api/dashboard", tag = "dashboard",
    params(ViewFilters),
    responses(
        (status = 200, description = "The figures (with `empty` = true when nothing matches)", body = dashboard::Dashboard),
        (status = 400, description = "A filter value is not accepted", body = crate::error::ErrorBody),
        (status = 503, description = "The service has no data, or the warehouse did not answer", body = crate::error::ErrorBody),
    ))]
pub async fn dashboard_data(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<DashboardState>,
) -> HttpResponse {
    let (data, sel) = match request_view(&req, &state, query::parse) {
        Ok(x) => x,
        Err(answer) => return *answer,
    };
    let customer_ids = customer_ids_allowed(&caller);
    match web::block(move || data.compute(&sel, customer_ids)).await {
        Ok(Ok(d)) => HttpResponse::Ok()
            .insert_header(("Server-Timing", format!("compute;dur={:.1}", d.compute_ms)))
            .json(d),
        Ok(Err(e)) => view_failed("computing the dashboard", &e),
        Err(e) => internal_error("computing the dashboard", &e),
    }
}

/// The values each filter takes (categories, states with coordinates,
/// channels, the data's dates, the default period) and the live segment
/// model's segments with a PCA map of its customers.
#[utoipa::path(get, path = "/api/dashboard/options", tag = "dashboard",
    responses(
        (status = 200, description = "Filter values and segments", body = dashboard::Options),
        (status = 503, description = "The service has no data, or the warehouse did not answer", body = crate::error::ErrorBody),
    ))]
pub async fn dashboard_options(state: web::Data<DashboardState>) -> HttpResponse {
    let state = state.now();
    match &state.data {
        Some(d) => HttpResponse::Ok().json(&d.options),
        None => unavailable(&state),
    }
}

/// The customers' lifetime value per segment: the live spend model's CLV
/// model applied to every customer at the data's reference date (as the
/// lookups answer it), summed per segment of the live segment model. It
/// follows promotions of either model without a restart.
#[utoipa::path(get, path = "/api/dashboard/clv", tag = "dashboard",
    responses(
        (status = 200, description = "The card (`available` = false with the reason in `note` when a model is missing)", body = dashboard::ClvCard),
        (status = 503, description = "The service has no data, or the warehouse did not answer", body = crate::error::ErrorBody),
    ))]
pub async fn dashboard_clv(
    state: web::Data<DashboardState>,
    app: web::Data<crate::state::AppState>,
) -> HttpResponse {
    let state = state.now();
    let Some(data) = state.data.clone() else {
        return unavailable(&state);
    };
    let live = app.live();
    match web::block(move || data.clv_card(live.as_deref())).await {
        Ok(card) => HttpResponse::Ok().json(card),
        Err(e) => internal_error("computing CLV by segment", &e),
    }
}

/// One page of the orders behind the view (the drill-down): completed
/// orders in the view's scope and period (or its comparison period), with
/// the revenue and number of their lines in the view's categories; sorted
/// by `sort` (`date`, `revenue`, `items`; ties by a fixed order so that
/// pages never overlap), `page_size` rows (1 to 200) a page.
#[utoipa::path(get, path = "/api/dashboard/orders", tag = "dashboard",
    params(
        ViewFilters,
        ("period" = Option<String>, Query, description = "`current` (default) or `comparison`: whose orders"),
        ("sort" = Option<String>, Query, description = "`date` (default), `revenue` or `items`"),
        ("dir" = Option<String>, Query, description = "`desc` (default) or `asc`"),
        ("page" = Option<u64>, Query, description = "From 1 (default 1) to 1000000000; past the last page: no rows"),
        ("page_size" = Option<u64>, Query, description = "Rows a page, 1 to 200 (default 25)"),
    ),
    responses(
        (status = 200, description = "The page", body = dashboard::export::OrdersAnswer),
        (status = 400, description = "A parameter is not accepted", body = crate::error::ErrorBody),
        (status = 503, description = "The service has no data, or the warehouse did not answer", body = crate::error::ErrorBody),
    ))]
pub async fn dashboard_orders(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<DashboardState>,
) -> HttpResponse {
    let checked = request_view(&req, &state, |pairs, data| {
        let extra = ["period", "sort", "dir", "page", "page_size"];
        let (sel, rest) = query::parse_with(pairs, data, &extra)?;
        let view = order_view(&rest)?;
        let page = match query::single(&rest, "page")? {
            Some(p) => query::number_in("page", p, 1, dashboard::MAX_PAGE)?,
            None => 1,
        };
        let size = match query::single(&rest, "page_size")? {
            Some(p) => query::number_in("page_size", p, 1, dashboard::MAX_PAGE_SIZE)?,
            None => dashboard::DEFAULT_PAGE_SIZE,
        };
        Ok((sel, view, page, size))
    });
    let (data, (sel, view, page, size)) = match checked {
        Ok(x) => x,
        Err(answer) => return *answer,
    };
    let customer_ids = customer_ids_allowed(&caller);
    match web::block(move || data.orders_page(&sel, view, page, size, customer_ids)).await {
        Ok(Ok(d)) => HttpResponse::Ok()
            .insert_header(("Server-Timing", format!("compute;dur={:.1}", d.compute_ms)))
            .json(d),
        Ok(Err(e)) => view_failed("computing a drill-down page", &e),
        Err(e) => internal_error("computing a drill-down page", &e),
    }
}

/// The table behind the view as CSV (UTF-8, comma-separated, CRLF, a
/// header row): `categories`, `states`, `segments`, `products` (every
/// product with orders in either period) and `customers` (every customer
/// with orders in either period), each with the comparison columns
/// (`comparison_revenue`, `comparison_orders`, `revenue_change`, …), or
/// `orders` (the drill-down: every order of the period, or of the
/// comparison period with `period=comparison`, sorted by `sort`/`dir`).
/// Plain numbers (shares and changes as fractions), ISO dates; the column
/// names are the JSON answers' field names. Customer ids only for a caller
/// who may see them (the column is left out otherwise).
#[utoipa::path(get, path = "/api/dashboard/export.csv", tag = "dashboard",
    params(
        ViewFilters,
        ("table" = String, Query, description = "categories, states, segments, products, customers or orders"),
        ("period" = Option<String>, Query, description = "orders only (ignored by the other tables): `current` (default) or `comparison`"),
        ("sort" = Option<String>, Query, description = "orders only (ignored by the other tables): `date` (default), `revenue` or `items`"),
        ("dir" = Option<String>, Query, description = "orders only (ignored by the other tables): `desc` (default) or `asc`"),
    ),
    responses(
        (status = 200, description = "The table", content_type = "text/csv"),
        (status = 400, description = "A parameter is not accepted (e.g. an unknown table)", body = crate::error::ErrorBody),
        (status = 503, description = "The service has no data, or the warehouse did not answer", body = crate::error::ErrorBody),
    ))]
pub async fn dashboard_export(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<DashboardState>,
) -> HttpResponse {
    let checked = request_view(&req, &state, |pairs, data| {
        let (sel, rest) = query::parse_with(pairs, data, &["table", "period", "sort", "dir"])?;
        let table = match query::single(&rest, "table")? {
            Some(t) => Table::parse(query::choice("table", t, &Table::NAMES)?),
            None => None,
        };
        let Some(table) = table else {
            return Err(ErrorBody::new("which table to export?")
                .field("table")
                .expected(format!("one of {}", Table::NAMES.join(", ")))
                .found("no `table` parameter"));
        };
        // `period`, `sort` and `dir` shape the orders table only; the other
        // tables have one order (leaderboard order) and both periods.
        let view = order_view(&rest)?;
        Ok((sel, table, view))
    });
    let (data, (sel, table, view)) = match checked {
        Ok(x) => x,
        Err(answer) => return *answer,
    };
    let customer_ids = customer_ids_allowed(&caller);
    let period = format!("{}/{}", sel.from, sel.to);
    let comparison = format!("{}/{}", sel.compare_from, sel.compare_to);
    match web::block(move || data.export(table, &sel, view, customer_ids)).await {
        Ok(Ok(csv)) => HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", csv.filename),
            ))
            .insert_header((CACHE_CONTROL, "no-store"))
            .insert_header(("X-Period", period))
            .insert_header(("X-Comparison-Period", comparison))
            .insert_header(("X-Rows", csv.rows.to_string()))
            .body(csv.body),
        Ok(Err(e)) => view_failed("exporting a dashboard table", &e),
        Err(e) => internal_error("exporting a dashboard table", &e),
    }
}
