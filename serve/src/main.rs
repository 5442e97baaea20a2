use std::net::TcpListener;

use anyhow::Context;
use clap::Parser;

/// The sales analytics HTTP service.
#[derive(Parser)]
#[command(name = "serve", version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "APP_BIND", default_value = "127.0.0.1:8080")]
    bind: String,
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener =
        TcpListener::bind(&args.bind).with_context(|| format!("while binding {}", args.bind))?;
    eprintln!("listening on http://{}", listener.local_addr()?);
    serve::run(listener)?.await?;
    Ok(())
}
