//! Building the server: settings → data → model → routes, on a listener
//! that may be port 0 (tests run many servers at once).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use analytics_lib::source::Source;
use anyhow::Context;

use actix_web::middleware::from_fn;

use crate::access_log::{AccessLog, log_access};
use crate::auth::{Auth, authenticate};
use crate::configuration::Settings;
use crate::error::{json_error, not_found};
use crate::limits::{HeavyLimits, limit_heavy};
use crate::routes::dashboard::DashboardState;
use crate::snapshot::{self, Feed};
use crate::state::{AppState, Reload};

/// A built, bound, not yet running service.
pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    dashboard: web::Data<DashboardState>,
}

/// Run `f` on a plain thread: polars may call tokio's `block_in_place`,
/// which panics on a current-thread runtime (actix's, or a test's).
fn off_runtime<T: Send>(f: impl FnOnce() -> anyhow::Result<T> + Send) -> anyhow::Result<T> {
    std::thread::scope(|s| {
        s.spawn(f)
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the loading thread panicked")))
    })
}

fn workers(settings: &Settings) -> usize {
    if settings.workers > 0 {
        settings.workers
    } else {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    }
}

impl Application {
    /// Bind `settings.bind`, load the data (an error: the caller asked for
    /// it) and the live models of the registry (not an error: the service
    /// starts not ready and the reload task keeps looking), and build the
    /// server.
    pub fn build(settings: Settings) -> anyhow::Result<Application> {
        let source = settings
            .source_config()?
            .map(|c| Source::from_config(&c))
            .transpose()
            .context("while opening the data source")?;
        Self::build_with_source(settings, source)
    }

    /// [`Application::build`] with the data read from `source` instead of
    /// the one the settings describe (`None`: no data). The tests use it to
    /// reach the local Snowflake emulator through their own HTTP layer.
    pub fn build_with_source(
        settings: Settings,
        source: Option<Source>,
    ) -> anyhow::Result<Application> {
        settings.check_exposure()?;
        let listener = TcpListener::bind(&settings.bind)
            .with_context(|| format!("while binding {}", settings.bind))?;
        let n = workers(&settings);
        let access_log = AccessLog::open(&settings.access_log)?;
        let refresh = (settings.data_refresh_secs > 0)
            .then(|| Duration::from_secs(settings.data_refresh_secs));
        let (state, dashboard) = off_runtime(move || {
            // The first data snapshot (`snapshot.rs`: the customers' feature
            // rows and the dashboard; the sales are dropped once it is built).
            let feed = Feed::new(source, &settings.models, refresh);
            let dashboard = match feed.shared_source() {
                Some(src) => {
                    let (snap, dashboard) = snapshot::read(&src, &settings.models)?;
                    feed.install(snap);
                    dashboard
                }
                None => DashboardState::build(None, &settings.models, None),
            };
            let state = AppState::new(settings, feed)?;
            for r in state.reload_if_changed() {
                if let Reload::Failed(e) = r {
                    eprintln!("serve: starting without this model (GET /ready answers 503): {e}");
                }
            }
            Ok((state, dashboard))
        })?;
        // The sales lines the snapshot was built from are freed; without
        // this an idle server keeps them resident (`memory.rs`).
        crate::memory::give_back_freed_memory();
        if let Some(rss) = crate::memory::resident_bytes() {
            eprintln!(
                "serve: {:.0} MiB resident once loaded",
                rss as f64 / (1024.0 * 1024.0)
            );
        }
        let state = web::Data::new(state);
        let port = listener.local_addr()?.port();
        let dashboard = web::Data::new(dashboard);
        let server = run(listener, state.clone(), dashboard.clone(), n, access_log)?;
        Ok(Application {
            port,
            server,
            state,
            dashboard,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serve until the server stops, with the hot-reload task (models) and
    /// the data refresh task (`snapshot.rs`) beside it.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let every = self.state.settings.reload_interval_ms;
        let reload = (every > 0).then(|| {
            let state = self.state.clone().into_inner();
            tokio::spawn(reload_loop(state, Duration::from_millis(every)))
        });
        let refresh = (every > 0 && self.state.feed.source().is_some()).then(|| {
            let state = self.state.clone().into_inner();
            let dashboard = self.dashboard.clone().into_inner();
            tokio::spawn(data_refresh_loop(
                state,
                dashboard,
                Duration::from_millis(every),
            ))
        });
        let result = self.server.await;
        for task in [reload, refresh].into_iter().flatten() {
            task.abort();
        }
        result
    }
}

/// Poll the registry's live pointers; loads happen on the blocking pool.
async fn reload_loop(state: Arc<AppState>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let st = state.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || st.reload_if_changed()).await {
            eprintln!("serve: the reload check failed: {e}");
        }
    }
}

/// Check for a new data snapshot (a changed folder, the refresh interval,
/// a new live segment model); reading happens on the blocking pool.
async fn data_refresh_loop(state: Arc<AppState>, dashboard: Arc<DashboardState>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let (st, dash) = (state.clone(), dashboard.clone());
        if let Err(e) =
            tokio::task::spawn_blocking(move || snapshot::refresh_if_due(&st, &dash)).await
        {
            eprintln!("serve: the data refresh check failed: {e}");
        }
    }
}

/// The Content-Security-Policy of every answer: the pages (dashboard,
/// Swagger UI) load scripts, styles, images and data from this service
/// only, and no other site may frame them. Inline styles are allowed
/// (plotly and Swagger UI set them); inline scripts are not.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// Headers on every answer: no MIME sniffing, the CSP, no referrer.
fn security_headers() -> actix_web::middleware::DefaultHeaders {
    actix_web::middleware::DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
        .add(("Referrer-Policy", "no-referrer"))
}

/// The HTTP server on a bound listener. Every request goes through, in
/// order: the access log, the security headers, authentication
/// (`auth.rs`), the heavy-request limit (`limits.rs`), then its route.
pub fn run(
    listener: TcpListener,
    state: web::Data<AppState>,
    dashboard: web::Data<DashboardState>,
    workers: usize,
    access_log: AccessLog,
) -> std::io::Result<Server> {
    let limit = state.settings.batch_body_limit();
    let auth = web::Data::new(Auth {
        keys: state.settings.api_keys.clone(),
    });
    let heavy = web::Data::new(HeavyLimits::new(state.settings.heavy_limit(workers)));
    let access_log = web::Data::new(access_log);
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(limit_heavy))
            .wrap(from_fn(authenticate))
            .wrap(security_headers())
            .wrap(from_fn(log_access))
            .app_data(auth.clone())
            .app_data(heavy.clone())
            .app_data(access_log.clone())
            .app_data(state.clone())
            .app_data(dashboard.clone())
            .app_data(
                web::JsonConfig::default()
                    .limit(limit)
                    .error_handler(json_error),
            )
            .configure(crate::routes::configure)
            .default_service(web::to(not_found))
    })
    .workers(workers)
    .listen(listener)?
    .run();
    Ok(server)
}
