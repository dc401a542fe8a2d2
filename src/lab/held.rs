//! Clients that hold their connections for as long as the server takes: a thread per arrival
//! (open-loop arrivals at a set rate, no pool to cap them below `max_held`), for the
//! scenarios where connections live long — slow responses, leaks, clients that do not read.
//!
//! `Answer` clients send a request, wait for the whole answer (up to a timeout) and close, as
//! a browser or an HTTP client would. `NoRead` clients send a request and then do not read
//! until told to (`set_reading(true)`): the server's answer waits in its Send-Q.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

use super::clients::{classify, ClientStats, Outcome, CONNECT_TIMEOUT};

/// Receive buffer of a `NoRead` client: small, so the unread answer stays on the server's
/// side (its Send-Q) rather than in the client's receive queue.
const NO_READ_RCVBUF: usize = 16 * 1024;

/// What each client does after connecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Send a request, read the answer to its end (up to the timeout), close.
    Answer,
    /// Send a request, read nothing until told to, then read to the end and close.
    NoRead,
}

/// The clients; they stop (and close what they hold) when dropped.
pub struct HeldClients {
    rate_milli: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    reading: Arc<AtomicBool>,
}

/// What every client thread shares.
struct Ctx {
    target: SocketAddr,
    behaviour: Behaviour,
    answer_timeout: Duration,
    stats: Arc<ClientStats>,
    stop: Arc<AtomicBool>,
    reading: Arc<AtomicBool>,
    live: AtomicUsize,
    max_held: usize,
}

impl HeldClients {
    /// Starts arrivals at `rate`/s to `target`; at most `max_held` connections at once (later
    /// arrivals are counted as skipped).
    pub fn start(
        target: SocketAddr,
        rate: f64,
        behaviour: Behaviour,
        answer_timeout: Duration,
        max_held: usize,
        stats: Arc<ClientStats>,
    ) -> anyhow::Result<Self> {
        let rate_milli = Arc::new(AtomicU64::new((rate.max(0.0) * 1000.0) as u64));
        let stop = Arc::new(AtomicBool::new(false));
        let reading = Arc::new(AtomicBool::new(false));
        let ctx = Arc::new(Ctx {
            target,
            behaviour,
            answer_timeout,
            stats,
            stop: stop.clone(),
            reading: reading.clone(),
            live: AtomicUsize::new(0),
            max_held,
        });
        let r = rate_milli.clone();
        std::thread::Builder::new()
            .name("lab-held-arrivals".into())
            .spawn(move || arrivals(&ctx, &r))?;
        Ok(Self {
            rate_milli,
            stop,
            reading,
        })
    }

    /// Changes the arrival rate.
    pub fn set_rate(&self, rate: f64) {
        self.rate_milli
            .store((rate.max(0.0) * 1000.0) as u64, Ordering::Relaxed);
    }

    /// `NoRead` clients read (true) or stop reading (false).
    pub fn set_reading(&self, on: bool) {
        self.reading.store(on, Ordering::Relaxed);
    }
}

impl Drop for HeldClients {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn arrivals(ctx: &Arc<Ctx>, rate_milli: &AtomicU64) {
    let mut next = Instant::now();
    while !ctx.stop.load(Ordering::Relaxed) {
        let rate = rate_milli.load(Ordering::Relaxed) as f64 / 1000.0;
        if rate <= 0.0 {
            std::thread::sleep(Duration::from_millis(50));
            next = Instant::now();
            continue;
        }
        next += Duration::from_secs_f64(1.0 / rate);
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else if now - next > Duration::from_secs(1) {
            next = now; // fell far behind: do not burst to catch up
        }
        if ctx.live.load(Ordering::Relaxed) >= ctx.max_held {
            ctx.stats.skip();
            continue;
        }
        ctx.live.fetch_add(1, Ordering::Relaxed);
        let c = ctx.clone();
        let spawned = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                one(&c);
                c.live.fetch_sub(1, Ordering::Relaxed);
            });
        if spawned.is_err() {
            ctx.live.fetch_sub(1, Ordering::Relaxed);
            ctx.stats.skip();
        }
    }
}

/// A connection whose receive buffer is set before connecting (so the window is small from
/// the handshake on).
fn connect(ctx: &Ctx) -> std::io::Result<TcpStream> {
    let s = Socket::new(Domain::for_address(ctx.target), Type::STREAM, None)?;
    if ctx.behaviour == Behaviour::NoRead {
        s.set_recv_buffer_size(NO_READ_RCVBUF)?;
    }
    s.connect_timeout(&ctx.target.into(), CONNECT_TIMEOUT)?;
    Ok(s.into())
}

/// One client, start to end.
fn one(ctx: &Ctx) {
    ctx.stats.begin();
    let t0 = Instant::now();
    let mut s = match connect(ctx) {
        Ok(s) => s,
        Err(e) => return ctx.stats.finish(classify(&e), None),
    };
    let ms = t0.elapsed().as_secs_f64() * 1000.0;
    if let Err(e) = s.write_all(b"GET\n") {
        return ctx.stats.finish(classify(&e), Some(ms));
    }
    if ctx.behaviour == Behaviour::NoRead {
        while !ctx.reading.load(Ordering::Relaxed) {
            if ctx.stop.load(Ordering::Relaxed) {
                return ctx.stats.finish(Outcome::Failed, Some(ms));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let _ = s.set_read_timeout(Some(ctx.answer_timeout));
    ctx.stats.finish(read_answer(&mut s, ctx), Some(ms));
}

/// Reads the answer to its end (the server closes, or a line ends a short answer).
fn read_answer(s: &mut TcpStream, ctx: &Ctx) -> Outcome {
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0usize;
    loop {
        if ctx.stop.load(Ordering::Relaxed) {
            return Outcome::Failed;
        }
        match s.read(&mut buf) {
            Ok(0) if got > 0 => return Outcome::Succeeded,
            Ok(0) => return Outcome::Reset,
            Ok(n) => {
                got += n;
                if buf[n - 1] == b'\n' {
                    return Outcome::Succeeded;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return classify(&e),
        }
    }
}
