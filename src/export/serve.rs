//! `sockq serve`: a Prometheus endpoint over the live model.
//!
//! Two threads, one way:
//! - this (main) thread runs the same loop as `sockq watch`: [`Sampler`] → [`Engine::ingest`] →
//!   filter → publishes the latest [`Tick`] (an `Arc` behind a `RwLock`, swapped once per tick);
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

use clap::Args;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ACCEPT, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};

use super::prometheus::{
    self as prom, ExportOptions, ExporterStats, DEFAULT_MAX_LISTENERS, OPENMETRICS_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
};
use crate::cli::LiveArgs;
use crate::collect::sampler::{Sampler, SamplerEvent};
use crate::engine::{Engine, EngineConfig};
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

/// `sockq serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to serve on. Loopback by default; give a non-loopback address (e.g.
    /// 0.0.0.0:9911) explicitly to let another host scrape: anyone who can reach it sees
    /// listener addresses and process names.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN, value_parser = parse_listen, env = "SOCKQ_LISTEN")]
    pub listen: SocketAddr,
    /// Export per-listener series for at most N listeners (the most active: dropping, fullest,
    /// most SYN-RECV); sockq_listeners and sockq_listeners_exported show any truncation.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_LISTENERS as u32, value_parser = clap::value_parser!(u32).range(1..=1_000_000), env = "SOCKQ_MAX_LISTENERS")]
    pub max_listeners: u32,
    /// At most N concurrent HTTP connections; more are closed at once.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000), env = "SOCKQ_MAX_CONNECTIONS")]
    pub max_connections: u32,
    /// Close a connection that has not sent a complete request head within this time.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_header_timeout, env = "SOCKQ_HEADER_TIMEOUT")]
    pub header_timeout: Duration,
    /// Sampling options (--window has no effect here: Prometheus keeps the history).
    #[command(flatten)]
    pub live: LiveArgs,
}

fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    s.trim().parse::<SocketAddr>().map_err(|_| {
        format!("{s:?} is not an IP address and port such as 127.0.0.1:9911 or [::1]:9911")
    })
}

fn parse_header_timeout(s: &str) -> Result<Duration, String> {
    let d = crate::cli::parse_duration(s)?;
    if d < Duration::from_millis(100) || d > Duration::from_secs(300) {
        return Err(format!(
            "{s:?} is out of range: the header timeout must be between 100ms and 5m"
        ));
    }
    Ok(d)
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
fn bind(addr: SocketAddr) -> anyhow::Result<std::net::TcpListener> {
    let l = std::net::TcpListener::bind(addr).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                " (the address is already in use; choose another port with --listen)"
            }
            std::io::ErrorKind::AddrNotAvailable => " (no such address on this host)",
            std::io::ErrorKind::PermissionDenied => " (ports below 1024 need CAP_NET_BIND_SERVICE)",
            _ => "",
        };
        anyhow::anyhow!("cannot listen on {addr}: {e}{hint}")
    })?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Runs `sockq serve` until SIGINT/SIGTERM/SIGHUP.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let stop = crate::cli::stop_flag()?;
    // The address first: a bad or busy one is reported before anything else starts.
    let listener = bind(args.listen)?;
    let local = listener.local_addr()?;
    if !local.ip().is_loopback() {
        eprintln!(
            "sockq: warning: serving on non-loopback address {local}: anyone who can reach it \
             can read listener addresses and process names"
        );
    }
    let live = &args.live;
    let sampler = Sampler::start(live.netns.target(), live.sampler_config())?;
    let latest = Arc::new(Latest::default());
    let cfg = HttpConfig {
        max_connections: args.max_connections as usize,
        header_timeout: args.header_timeout,
        export: ExportOptions {
            max_listeners: args.max_listeners as usize,
        },
    };
    let http = {
        let latest = latest.clone();
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("sockq-http".into())
            .spawn(move || serve_http(listener, latest, cfg, stop))?
    };
    eprintln!("sockq: serving http://{local}/metrics");

    let result = collect(&sampler, live, &latest, &stop, &http);
    stop.store(true, Ordering::Relaxed);
    let served = match http.join() {
        Ok(r) => r,
        Err(_) => Err(anyhow::anyhow!("the HTTP thread panicked")),
    };
    drop(sampler);
    result.and(served)
}

/// The collection loop: sampler → engine → filter → publish, like `sockq watch`.
fn collect(
    sampler: &Sampler,
    live: &LiveArgs,
    latest: &Latest,
    stop: &AtomicBool,
    http: &std::thread::JoinHandle<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    // The exporter needs no history (Prometheus keeps it): the smallest rings.
    let mut engine = Engine::new(EngineConfig {
        window: live.interval * 2,
        ..live.engine_config()
    });
    let filter = live.filter.filter();
    let mut stats = ExporterStats::default();
    let mut last: Option<Arc<Tick>> = None;
    while !stop.load(Ordering::Relaxed) && !http.is_finished() {
        let Some(event) = sampler.recv_timeout(Duration::from_millis(100))? else {
            continue;
        };
        match event {
            SamplerEvent::Error(e) => {
                engine.record_gap();
                stats.sample_errors += 1;
                eprintln!("sockq: sample failed (recorded as a gap): {e}");
                if let Some(tick) = &last {
                    latest.set(Published {
                        tick: tick.clone(),
                        stats,
                    });
                }
            }
            SamplerEvent::Sample(sample) => {
                let mut tick = engine.ingest(*sample).clone();
                filter.apply_tick(&mut tick);
                let tick = Arc::new(tick);
                last = Some(tick.clone());
                latest.set(Published { tick, stats });
            }
        }
    }
    Ok(())
}

/// The HTTP thread: a current-thread runtime serving until `stop` is set.
fn serve_http(
    listener: std::net::TcpListener,
    latest: Arc<Latest>,
    cfg: HttpConfig,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
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
        anyhow::Ok(())
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
