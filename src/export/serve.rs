//! `sockq serve`: a Prometheus endpoint over the live model.
//!
//! Two threads, one way:
//! - the command's thread runs the one loop (source → engine → filter) and calls
//!   [`Server::publish`] with the latest [`Tick`] (an `Arc` behind a `RwLock`, swapped once per
//!   tick);
//! - the `sockq-http` thread runs a current-thread tokio runtime with hyper's HTTP/1 server. A
//!   scrape only clones the published `Arc` and encodes it, with sockq's own process numbers
//!   (`process_*`) from the [`ProcessProvider`] the command passed in (export reads no /proc
//!   itself): scrapes never trigger collection, and no client, however slow or malformed, can
//!   stall it.
//!
//! The server is hardened for an endpoint that may face a network: a header-read timeout
//! (a client that connects and sends nothing, or half a request line, is closed), a cap on
//! concurrent connections and a lower one per peer (at a cap, the oldest idle connection yields
//! its slot to the new one, so idle connections cannot keep a scraper out: [`slots`]), a
//! maximum connection age (a client that never reads its response is cut off), a small request
//! buffer, and only `GET`/`HEAD` on `/` and `/metrics`.

mod routes;
mod slots;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};

use super::prometheus::{self as prom, ExportOptions, ExporterStats};
use crate::model::{ProcessSelf, Tick};
use routes::respond;
pub use routes::wants_openmetrics;
use slots::{Admission, Conn, Limit, Slots};

/// Default address: loopback only, port 9911.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9911";
/// A connection is closed (gracefully: after the response in flight) this long after it was
/// accepted, so a client that never reads its response cannot hold a slot.
const MAX_CONNECTION_AGE: Duration = Duration::from_secs(60);
/// How long a connection closed for age may take to finish its response.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Read buffer per connection (hyper's minimum is 8 KiB); a longer request head is refused.
const MAX_REQUEST_BUFFER: usize = 16 * 1024;

/// Reads sockq's own process (CPU, memory, fds, …) for the `process_*` metrics; called on the
/// HTTP thread for each scrape. `sockq serve` passes `collect::process_self`.
pub type ProcessProvider = Arc<dyn Fn() -> ProcessSelf + Send + Sync>;

/// How the HTTP side runs (plain settings; the CLI builds them).
#[derive(Debug, Clone, Copy)]
pub struct ServeConfig {
    /// Address and port to serve on.
    pub listen: SocketAddr,
    /// Per-listener series for at most this many listeners.
    pub max_listeners: usize,
    /// At most this many concurrent HTTP connections.
    pub max_connections: usize,
    /// At most this many from one peer (an IPv4 address or an IPv6 /64); at most
    /// `max_connections`.
    pub max_connections_per_peer: usize,
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
    exposed: Exposed,
    stats: ExporterStats,
}

/// What the scrapes expose: one namespace's tick, or every namespace's (`--all-netns`).
#[derive(Debug, Clone)]
enum Exposed {
    One(Arc<Tick>),
    Fleet(Arc<prom::FleetExport>),
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
    max_connections_per_peer: usize,
    header_timeout: Duration,
    export: ExportOptions,
}

/// The slots, shared by the accept loop, the connection tasks and the scrapes (all on the one
/// HTTP thread: the lock is never contended).
type SharedSlots = Arc<Mutex<Slots>>;

fn lock(slots: &SharedSlots) -> MutexGuard<'_, Slots> {
    slots.lock().unwrap_or_else(|e| e.into_inner())
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
    last: Option<Exposed>,
}

impl Server {
    /// Binds the address (a bad or busy one is reported before anything else starts) and
    /// starts the HTTP thread; each scrape asks `process` for sockq's own process numbers.
    pub fn start(
        cfg: ServeConfig,
        stop: Arc<AtomicBool>,
        process: ProcessProvider,
    ) -> Result<Self, ServeError> {
        let listener = bind(cfg.listen)?;
        let local = listener.local_addr().map_err(ServeError::Http)?;
        let latest = Arc::new(Latest::default());
        let http_cfg = HttpConfig {
            max_connections: cfg.max_connections,
            max_connections_per_peer: cfg.max_connections_per_peer,
            header_timeout: cfg.header_timeout,
            export: ExportOptions {
                max_listeners: cfg.max_listeners,
            },
        };
        let http = {
            let latest = latest.clone();
            std::thread::Builder::new()
                .name("sockq-http".into())
                .spawn(move || serve_http(listener, latest, http_cfg, stop, process))
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
        self.expose(Exposed::One(Arc::new(tick)));
    }

    /// Publishes every namespace's latest tick (`--all-netns`) for the next scrapes; a
    /// namespace not in `fleet` has no series.
    pub fn publish_fleet(&mut self, fleet: prom::FleetExport) {
        self.expose(Exposed::Fleet(Arc::new(fleet)));
    }

    fn expose(&mut self, exposed: Exposed) {
        self.last = Some(exposed.clone());
        self.latest.set(Published {
            exposed,
            stats: self.stats,
        });
    }

    /// Counts a failed sample; scrapes keep the last tick, with the error count.
    pub fn sample_failed(&mut self) {
        self.stats.sample_errors += 1;
        if let Some(exposed) = &self.last {
            self.latest.set(Published {
                exposed: exposed.clone(),
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
    process: ProcessProvider,
) -> Result<(), ServeError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(ServeError::Http)?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).map_err(ServeError::Http)?;
        let slots: SharedSlots = Arc::new(Mutex::new(Slots::new(
            cfg.max_connections,
            cfg.max_connections_per_peer,
        )));
        let mut poll_stop = tokio::time::interval(Duration::from_millis(100));
        let mut warnings = Warnings::default();
        loop {
            tokio::select! {
                _ = poll_stop.tick() => {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let admission = lock(&slots).admit(peer.ip());
                        let (id, conn) = match admission {
                            Admission::Refused(limit) => {
                                drop(stream);
                                warnings.at_limit(
                                    &cfg,
                                    limit,
                                    peer.ip(),
                                    "all being answered, closing new ones",
                                );
                                continue;
                            }
                            Admission::Admitted { id, conn, made_room } => {
                                if let Some(limit) = made_room {
                                    warnings.at_limit(
                                        &cfg,
                                        limit,
                                        peer.ip(),
                                        "closing the oldest idle one for each new one",
                                    );
                                }
                                (id, conn)
                            }
                        };
                        let _ = stream.set_nodelay(true);
                        let slot = SlotGuard { slots: slots.clone(), id, conn };
                        tokio::spawn(connection(
                            stream,
                            slot,
                            latest.clone(),
                            cfg,
                            process.clone(),
                        ));
                        // Let the new connection read its request (if it sent one) before the
                        // next accept: a burst of accepts must not close it, idle, before its
                        // request was read.
                        tokio::task::yield_now().await;
                    }
                    Err(e) => {
                        // E.g. EMFILE: back off instead of spinning.
                        warnings.warn(Warning::Accept, format!("accept failed: {e}"));
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

/// What stderr says about the limits, at most once a minute per kind (the counters in
/// /metrics have the rest).
#[derive(Debug, Clone, Copy)]
enum Warning {
    Accept,
    Global,
    PerPeer,
}

#[derive(Debug, Default)]
struct Warnings {
    last: [Option<Instant>; 3],
}

impl Warnings {
    fn warn(&mut self, kind: Warning, msg: String) {
        let last = &mut self.last[kind as usize];
        if last.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
            eprintln!("sockq: {msg}");
            *last = Some(Instant::now());
        }
    }

    fn at_limit(&mut self, cfg: &HttpConfig, limit: Limit, peer: IpAddr, action: &str) {
        match limit {
            Limit::Global => self.warn(
                Warning::Global,
                format!(
                    "{} HTTP connections open (--max-connections): {action}, e.g. from {peer}",
                    cfg.max_connections
                ),
            ),
            Limit::PerPeer => self.warn(
                Warning::PerPeer,
                format!(
                    "{} HTTP connections open from {peer} (--max-connections-per-peer): {action}",
                    cfg.max_connections_per_peer
                ),
            ),
        }
    }
}

/// A connection's slot; given back when the connection's task ends (or is dropped).
struct SlotGuard {
    slots: SharedSlots,
    id: u64,
    conn: Arc<Conn>,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        lock(&self.slots).release(self.id);
    }
}

/// Serves one connection, bounded by the header timeout and the maximum connection age; closes
/// it when it yields its slot to a new one (only while idle).
async fn connection(
    stream: tokio::net::TcpStream,
    slot: SlotGuard,
    latest: Arc<Latest>,
    cfg: HttpConfig,
    process: ProcessProvider,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(cfg.header_timeout)
        .max_buf_size(MAX_REQUEST_BUFFER)
        .keep_alive(true);
    let service = {
        let (conn, slots) = (slot.conn.clone(), slot.slots.clone());
        hyper::service::service_fn(move |req: Request<Incoming>| {
            conn.request_started();
            let connections = lock(&slots).stats();
            let body = respond(
                &req,
                latest.get().as_deref(),
                connections,
                &cfg.export,
                &*process,
            );
            let body = body.map(|body| Tracked {
                body,
                conn: conn.clone(),
            });
            async move { Ok::<_, Infallible>(body) }
        })
    };
    let io = Watched {
        io: TokioIo::new(stream),
        conn: slot.conn.clone(),
    };
    let http = builder.serve_connection(io, service);
    tokio::pin!(http);
    tokio::select! {
        biased;
        () = slot.conn.closed() => {}
        _ = http.as_mut() => {}
        () = tokio::time::sleep(MAX_CONNECTION_AGE) => {
            http.as_mut().graceful_shutdown();
            tokio::select! {
                biased;
                () = slot.conn.closed() => {}
                _ = tokio::time::timeout(SHUTDOWN_GRACE, http) => {}
            }
        }
    }
}

/// A response body that tells its connection when hyper has taken all of it (hyper drops the
/// body then).
struct Tracked {
    body: Full<Bytes>,
    conn: Arc<Conn>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.conn.response_queued();
    }
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A connection's socket that tells the connection when hyper's write buffer is empty: hyper
/// flushes the socket only once it has written all it buffered.
struct Watched {
    io: TokioIo<tokio::net::TcpStream>,
    conn: Arc<Conn>,
}

impl Read for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl Write for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let flushed = Pin::new(&mut this.io).poll_flush(cx);
        if let Poll::Ready(Ok(())) = flushed {
            this.conn.flushed();
        }
        flushed
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}
