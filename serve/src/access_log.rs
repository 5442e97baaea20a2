//! One access-log line per request: time, method, route pattern (never the
//! raw path of an unknown route: `-`), status, latency, and which key by
//! its position in `APP_API_KEYS` (never the key); never a body. Lines go
//! through a bounded channel to one writer thread (a slow log never slows
//! an answer: when the channel is full, lines are counted as dropped and
//! the count is logged). Setting `access_log`: `stderr`, `off` or a file.
//!
//! ```text
//! access ts=2026-12-04T10:52:26.123Z method=POST route=/predict status=200 ms=0.214 key=2
//! ```

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use anyhow::Context;

use crate::auth::Caller;

/// Lines waiting for the writer at most.
const QUEUE: usize = 65_536;

/// The access log of a server.
pub struct AccessLog {
    tx: Option<SyncSender<String>>,
    dropped: AtomicU64,
}

impl AccessLog {
    /// No log.
    pub fn off() -> Self {
        AccessLog {
            tx: None,
            dropped: AtomicU64::new(0),
        }
    }

    /// The log the setting names: `stderr`, `off`, or a file (appended to,
    /// created when missing).
    pub fn open(setting: &str) -> anyhow::Result<Self> {
        let out: Box<dyn Write + Send> = match setting.trim() {
            "off" | "" => return Ok(Self::off()),
            "stderr" => Box::new(std::io::stderr()),
            path => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("setting `access_log`: opening {path}"))?,
            ),
        };
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_lines(rx, out))
            .context("while starting the access log writer")?;
        Ok(AccessLog {
            tx: Some(tx),
            dropped: AtomicU64::new(0),
        })
    }

    pub fn is_on(&self) -> bool {
        self.tx.is_some()
    }

    fn record(&self, line: String) {
        let Some(tx) = &self.tx else { return };
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            let _ = tx.try_send(format!(
                "access dropped={dropped} (the log could not keep up)"
            ));
        }
        if let Err(TrySendError::Full(_)) = tx.try_send(line) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The writer: lines as they come, flushed whenever the queue is empty.
fn write_lines(rx: Receiver<String>, out: Box<dyn Write + Send>) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    while let Ok(line) = rx.recv() {
        let _ = writeln!(out, "{line}");
        while let Ok(line) = rx.try_recv() {
            let _ = writeln!(out, "{line}");
        }
        let _ = out.flush();
    }
}

/// Middleware: time the request and log its line once answered.
pub async fn log_access(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let log = req
        .app_data::<web::Data<AccessLog>>()
        .filter(|l| l.is_on())
        .cloned();
    let Some(log) = log else {
        return next.call(req).await;
    };
    let started = Instant::now();
    let method = req.method().clone();
    let res = next.call(req).await;
    let elapsed = started.elapsed();
    let (status, route, key) = match &res {
        Ok(r) => (
            r.status().as_u16(),
            r.request().match_pattern(),
            r.request().extensions().get::<Caller>().and_then(|c| c.key),
        ),
        Err(e) => (e.as_response_error().status_code().as_u16(), None, None),
    };
    let key = key.map_or_else(|| "-".to_string(), |k| k.to_string());
    log.record(format!(
        "access ts={} method={method} route={} status={status} ms={:.3} key={key}",
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        route.as_deref().unwrap_or("-"),
        elapsed.as_secs_f64() * 1e3
    ));
    res
}
