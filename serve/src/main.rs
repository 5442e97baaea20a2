use std::path::PathBuf;

use clap::Parser;
use serve::configuration::{self, Overrides};
use serve::startup::Application;

/// mimalloc gives memory freed after start-up (the sales lines the lookups
/// and the dashboard are built from) back to the system; glibc's malloc
/// keeps most of it in its per-thread arenas.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The sales analytics HTTP service: predictions from the live model, its
/// metadata, OpenAPI docs. Settings come from defaults, then the file given
/// by --config or APP_CONFIG (TOML or JSON), then APP_* environment variables
/// (APP_BIND, APP_MODELS, APP_DATA, APP_MAX_BATCH, APP_MAX_BODY_BYTES,
/// APP_BODY_TIMEOUT_MS, APP_MAX_CONCURRENT_HEAVY, APP_RELOAD_INTERVAL_MS,
/// APP_TOP_CONTRIBUTIONS, APP_WORKERS, APP_API_KEYS, APP_ALLOW_ANONYMOUS,
/// APP_ACCESS_LOG, APP_SOURCE and APP_SNOWFLAKE_{ACCOUNT,USER,PASSWORD,
/// PRIVATE_KEY_PATH,WAREHOUSE,DATABASE,SCHEMA,ROLE}), then these flags.
///
/// Authentication: APP_API_KEYS="KEY[:SCOPES],…" (scopes predict, read,
/// customers joined by +; none: all), sent as `Authorization: Bearer KEY`.
/// Without keys, serve listens on loopback only unless --allow-anonymous.
#[derive(Parser)]
#[command(name = "serve", version, about)]
struct Args {
    /// Settings file (TOML or JSON).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long)]
    bind: Option<String>,
    /// Model registry folder (customer_spend/live.json and segments/live.json
    /// name the live versions) [default: models].
    #[arg(long)]
    models: Option<PathBuf>,
    /// Curated data folder, to answer {"customer_id"} requests and feed the
    /// dashboard (wins over --source).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Where the data comes from without --data: parquet (no data) or
    /// snowflake (connection from APP_SNOWFLAKE_* or the settings file).
    #[arg(long, value_parser = parse_source_kind)]
    source: Option<analytics_lib::source::SourceKind>,
    /// Serve without API keys on an address other than loopback (anybody
    /// who reaches the port reads every prediction). Keys are never taken
    /// from the command line (other users could read them): APP_API_KEYS.
    #[arg(long)]
    allow_anonymous: bool,
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    // Building a data snapshot touches GiBs of fresh memory: in 4 KiB pages,
    // not huge pages (see the function's note; MIMALLOC_ALLOW_THP=1 keeps them).
    analytics_lib::process::disable_transparent_huge_pages();
    let args = Args::parse();
    let cli = Overrides {
        config: args.config,
        bind: args.bind,
        models: args.models,
        data: args.data,
        source: args.source,
        allow_anonymous: args.allow_anonymous,
    };
    let loaded = configuration::load(&cli, std::env::vars())?;
    for w in &loaded.warnings {
        eprintln!("serve: warning: {w}");
    }
    eprintln!("serve: settings {}", loaded.settings.echo());
    if loaded.settings.api_keys.is_empty() {
        eprintln!(
            "serve: warning: no API keys (APP_API_KEYS): every route is open to whoever reaches the port"
        );
    }
    let bind_host = loaded.settings.bind.clone();
    let app = Application::build(loaded.settings)?;
    let host = bind_host
        .rsplit_once(':')
        .map_or(bind_host.as_str(), |(h, _)| h);
    eprintln!("serve: listening on http://{host}:{}", app.port());
    app.run_until_stopped().await?;
    Ok(())
}

/// `parquet` or `snowflake`, as the library reads it.
fn parse_source_kind(s: &str) -> Result<analytics_lib::source::SourceKind, String> {
    s.parse()
        .map_err(|e: analytics_lib::source::SourceError| e.to_string())
}
