//! `sockq serve`: a Prometheus endpoint over the live model.
//!
//! Two threads, one way:
//! - the command's thread runs the one loop (source → engine → filter) and calls
//!   [`Server::publish`] with the latest [`Tick`] (an `Arc` behind a `RwLock`, swapped once per
//!   tick);
//! - the `sockq-http` thread runs a current-thread tokio runtime with hyper's HTTP/1 server. A
//!   scrape only clones the published `Arc` and encodes it: scrapes never trigger collection,
//!   and no client, however slow or malformed, can stall it.
//!
//! The server is hardened for an endpoint that may face a network: a header-read timeout
//! (a client that connects and sends nothing, or half a request line, is closed), a cap on
//! concurrent connections (over it, new connections are closed at once), a maximum connection
//! age (a client that never reads its response is cut off), a small request buffer, and only
//! `GET`/`HEAD` on `/` and `/metrics`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ACCEPT, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};

use super::prometheus::{
    self as prom, ExportOptions, ExporterStats, OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE,
};
use crate::model::Tick;

/// Default address: loopback only, port 9911.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9911";
/// A connection is closed (gracefully: after the response in flight) this long after it was
/// accepted, so a client that never reads its response cannot hold a slot.
const MAX_CONNECTION_AGE: Duration = Duration::from_secs(60);
/// How long a connection closed for age may take to finish its response.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Read buffer per connection (hyper's minimum is 8 KiB); a longer request head is refused.
const MAX_REQUEST_BUFFER: usize = 16 * 1024;

/// How the HTTP side runs (plain settings; the CLI builds them).
#[derive(Debug, Clone, Copy)]
pub struct ServeConfig {
    /// Address and port to serve on.
    pub listen: SocketAddr,
    /// Per-listener series for at most this many listeners.
    pub max_listeners: usize,
    /// At most this many concurrent HTTP connections.
    pub max_connections: usize,
    /// Close a connection that has not sent a complete request head within this time.
    pub header_timeout: Duration,
}

/// Errors of the exporter.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}{hint}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
        /// What to do about it.
        hint: &'static str,
    },
    /// The HTTP thread or its runtime failed.
    #[error("the HTTP server failed: {0}")]
    Http(std::io::Error),
    /// The HTTP thread panicked.
    #[error("the HTTP thread panicked")]
    Panicked,
}

/// What a scrape reads: the latest tick and the exporter's own counts.
#[derive(Debug)]
struct Published {
    tick: Arc<Tick>,
    stats: ExporterStats,
}

/// The latest published state; written once per tick, read by scrapes.
#[derive(Debug, Default)]
struct Latest(RwLock<Option<Arc<Published>>>);

impl Latest {
    fn get(&self) -> Option<Arc<Published>> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, p: Published) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(p));
    }
}

#[derive(Debug, Clone, Copy)]
struct HttpConfig {
    max_connections: usize,
    header_timeout: Duration,
    export: ExportOptions,
}

/// Binds `addr`, with an error that names it.
fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, ServeError> {
    let bind_err = |source: std::io::Error| {
        let hint = match source.kind() {
            std::io::ErrorKind::AddrInUse => {
                " (the address is already in use; choose another port with --listen)"
            }
            std::io::ErrorKind::AddrNotAvailable => " (no such address on this host)",
            std::io::ErrorKind::PermissionDenied => " (ports below 1024 need CAP_NET_BIND_SERVICE)",
            _ => "",
        };
        ServeError::Bind { addr, source, hint }
    };
    let l = std::net::TcpListener::bind(addr).map_err(bind_err)?;
    l.set_nonblocking(true).map_err(bind_err)?;
    Ok(l)
}

/// A running HTTP server: scrapes read what [`Server::publish`] last set. Stops when `stop`
/// is set.
pub struct Server {
    latest: Arc<Latest>,
    local: SocketAddr,
    http: std::thread::JoinHandle<Result<(), ServeError>>,
    stats: ExporterStats,
    last: Option<Arc<Tick>>,
}

impl Server {
    /// Binds the address (a bad or busy one is reported before anything else starts) and
    /// starts the HTTP thread.
    pub fn start(cfg: ServeConfig, stop: Arc<AtomicBool>) -> Result<Self, ServeError> {
        let listener = bind(cfg.listen)?;
        let local = listener.local_addr().map_err(ServeError::Http)?;
        let latest = Arc::new(Latest::default());
        let http_cfg = HttpConfig {
            max_connections: cfg.max_connections,
            header_timeout: cfg.header_timeout,
            export: ExportOptions {
                max_listeners: cfg.max_listeners,
            },
        };
        let http = {
            let latest = latest.clone();
            std::thread::Builder::new()
                .name("sockq-http".into())
                .spawn(move || serve_http(listener, latest, http_cfg, stop))
                .map_err(ServeError::Http)?
        };
        Ok(Self {
            latest,
            local,
            http,
            stats: ExporterStats::default(),
            last: None,
        })
    }

    /// The address served on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// True when the HTTP thread has ended (an error or a panic); [`Server::join`] says why.
    pub fn is_finished(&self) -> bool {
        self.http.is_finished()
    }

    /// Publishes a tick (already filtered) for the next scrapes.
    pub fn publish(&mut self, tick: Tick) {
        let tick = Arc::new(tick);
        self.last = Some(tick.clone());
        self.latest.set(Published {
            tick,
            stats: self.stats,
        });
    }

    /// Counts a failed sample; scrapes keep the last tick, with the error count.
    pub fn sample_failed(&mut self) {
        self.stats.sample_errors += 1;
        if let Some(tick) = &self.last {
            self.latest.set(Published {
                tick: tick.clone(),
                stats: self.stats,
            });
        }
    }

    /// Waits for the HTTP thread (after `stop` was set).
    pub fn join(self) -> Result<(), ServeError> {
        self.http.join().unwrap_or(Err(ServeError::Panicked))
    }
}

/// The HTTP thread: a current-thread runtime serving until `stop` is set.
fn serve_http(
    listener: std::net::TcpListener,
    latest: Arc<Latest>,
    cfg: HttpConfig,
    stop: Arc<AtomicBool>,
) -> Result<(), ServeError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(ServeError::Http)?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).map_err(ServeError::Http)?;
        let permits = Arc::new(tokio::sync::Semaphore::new(cfg.max_connections));
        let mut poll_stop = tokio::time::interval(Duration::from_millis(100));
        let mut last_warning: Option<Instant> = None;
        let mut warn = |msg: String| {
            if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                eprintln!("sockq: {msg}");
                last_warning = Some(Instant::now());
            }
        };
        loop {
            tokio::select! {
                _ = poll_stop.tick() => {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let Ok(permit) = permits.clone().try_acquire_owned() else {
                            drop(stream);
                            warn(format!(
                                "{} HTTP connections open (--max-connections): closing new ones, e.g. from {peer}",
                                cfg.max_connections
                            ));
                            continue;
                        };
                        let _ = stream.set_nodelay(true);
                        let latest = latest.clone();
                        tokio::spawn(async move {
                            connection(stream, latest, cfg).await;
                            drop(permit);
                        });
                    }
                    Err(e) => {
                        // E.g. EMFILE: back off instead of spinning.
                        warn(format!("accept failed: {e}"));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
        Ok::<(), ServeError>(())
    })?;
    // Dropping the runtime cancels every open connection.
    drop(rt);
    Ok(())
}

/// Serves one connection, bounded by the header timeout and the maximum connection age.
async fn connection(stream: tokio::net::TcpStream, latest: Arc<Latest>, cfg: HttpConfig) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(cfg.header_timeout)
        .max_buf_size(MAX_REQUEST_BUFFER)
        .keep_alive(true);
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let p = latest.get();
        async move { Ok::<_, Infallible>(respond(&req, p.as_deref(), &cfg.export)) }
    });
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = tokio::time::sleep(MAX_CONNECTION_AGE) => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
        }
    }
}

const INDEX: &str =
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>sockq</title></head>\n\
<body><h1>sockq</h1>\n<p>Linux socket-queue metrics (accept queue, SYN-RECV, drops, tunables):\n\
<a href=\"/metrics\">/metrics</a> (Prometheus text format 0.0.4;\n\
<a href=\"/metrics?format=openmetrics\">OpenMetrics</a> with\n\
<code>Accept: application/openmetrics-text</code> or <code>?format=openmetrics</code>).</p>\n\
</body></html>\n";

fn simple(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The response to one request. Pure apart from encoding the published tick.
fn respond(
    req: &Request<Incoming>,
    published: Option<&Published>,
    export: &ExportOptions,
) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if path != "/" && path != "/metrics" {
        return simple(
            StatusCode::NOT_FOUND,
            "not found: sockq serves /metrics and /\n",
        );
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = simple(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed: use GET\n",
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    if path == "/" {
        let mut r = Response::new(Full::new(Bytes::from_static(INDEX.as_bytes())));
        r.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        return r;
    }
    let Some(p) = published else {
        return simple(
            StatusCode::SERVICE_UNAVAILABLE,
            "no sample yet: the first arrives within one --interval\n",
        );
    };
    let accept = req.headers().get(ACCEPT).and_then(|v| v.to_str().ok());
    let openmetrics = wants_openmetrics(accept, req.uri().query());
    let families = prom::families(&p.tick, export, &p.stats);
    let (body, content_type) = if openmetrics {
        (prom::encode_openmetrics(families), OPENMETRICS_CONTENT_TYPE)
    } else {
        (prom::encode_text(&families), TEXT_CONTENT_TYPE)
    };
    match body {
        Ok(body) => {
            let mut r = Response::new(Full::new(Bytes::from(body)));
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            r.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(_) => simple(
            StatusCode::INTERNAL_SERVER_ERROR,
            "encoding the metrics failed\n",
        ),
    }
}

/// Content negotiation: OpenMetrics when `?format=openmetrics`, or when the Accept header
/// ranks `application/openmetrics-text` at least as high as `text/plain` (as Prometheus does);
/// `?format=prometheus` (or `text`) forces the 0.0.4 text format.
pub fn wants_openmetrics(accept: Option<&str>, query: Option<&str>) -> bool {
    for pair in query.unwrap_or("").split('&') {
        match pair.split_once('=') {
            Some(("format", "openmetrics")) => return true,
            Some(("format", "prometheus" | "text")) => return false,
            _ => {}
        }
    }
    let Some(accept) = accept else {
        return false;
    };
    let (mut om, mut text) = (0.0f64, 0.0f64);
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .and_then(|(_, v)| v.trim().parse::<f64>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "application/openmetrics-text" => om = om.max(q),
            "text/plain" | "text/*" | "*/*" => text = text.max(q),
            _ => {}
        }
    }
    om > 0.0 && om >= text
}

#[cfg(test)]
mod tests {
    use super::wants_openmetrics;

    #[test]
    fn negotiation_follows_prometheus_accept_header_and_query() {
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert!(wants_openmetrics(Some(prom), None));
        assert!(!wants_openmetrics(Some("*/*"), None));
        assert!(!wants_openmetrics(None, None));
        assert!(wants_openmetrics(
            Some("application/openmetrics-text"),
            None
        ));
        assert!(!wants_openmetrics(
            Some("text/plain;version=0.0.4,application/openmetrics-text;q=0.3"),
            None
        ));
        assert!(wants_openmetrics(None, Some("format=openmetrics")));
        assert!(!wants_openmetrics(
            Some(prom),
            Some("x=1&format=prometheus")
        ));
    }
}
