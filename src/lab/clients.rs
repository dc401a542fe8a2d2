//! The lab's clients: an open-loop load generator at a set arrival rate, and scripted bursts.
//! Each attempt connects, sends one line and waits for the answer, and is classified by what a
//! user would feel: succeeded, timed out, reset, refused.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::model::lab::ClientView;

/// How long a client waits for connect().
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a client waits for the answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// Client threads (concurrent attempts at most).
pub const POOL: usize = 96;

/// Outcome of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Connected and got the answer.
    Succeeded,
    /// No connection or no answer in time (SYNs or the final ACK silently dropped).
    TimedOut,
    /// The connection was reset (e.g. tcp_abort_on_overflow=1).
    Reset,
    /// Connection refused (nothing listening).
    Refused,
    /// Anything else.
    Failed,
}

/// What the clients felt, cumulative.
#[derive(Debug, Default)]
pub struct ClientStats {
    attempted: AtomicU64,
    succeeded: AtomicU64,
    timed_out: AtomicU64,
    reset: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
    in_flight: AtomicU64,
    skipped: AtomicU64,
    /// Connect latencies (ms) of the last attempts that connected.
    latencies: Mutex<VecDeque<f64>>,
}

impl ClientStats {
    /// An attempt starts.
    pub(super) fn begin(&self) {
        self.attempted.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// An attempt begun with [`begin`](Self::begin) ends with `o`.
    pub(super) fn finish(&self, o: Outcome, connect_ms: Option<f64>) {
        self.record(o, connect_ms);
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// An arrival not attempted (too many connections held already).
    pub(super) fn skip(&self) {
        self.skipped.fetch_add(1, Ordering::Relaxed);
    }

    fn record(&self, o: Outcome, connect_ms: Option<f64>) {
        let c = match o {
            Outcome::Succeeded => &self.succeeded,
            Outcome::TimedOut => &self.timed_out,
            Outcome::Reset => &self.reset,
            Outcome::Refused => &self.refused,
            Outcome::Failed => &self.failed,
        };
        c.fetch_add(1, Ordering::Relaxed);
        if let Some(ms) = connect_ms {
            if let Ok(mut l) = self.latencies.lock() {
                if l.len() >= 500 {
                    l.pop_front();
                }
                l.push_back(ms);
            }
        }
    }

    /// Forgets the connect latencies, so percentiles describe the current step only.
    pub fn reset_latencies(&self) {
        if let Ok(mut l) = self.latencies.lock() {
            l.clear();
        }
    }

    /// A consistent-enough copy.
    pub fn view(&self) -> ClientView {
        let (p50, p99) = match self.latencies.lock() {
            Ok(l) if !l.is_empty() => {
                let mut v: Vec<f64> = l.iter().copied().collect();
                v.sort_by(f64::total_cmp);
                let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
                (Some(at(0.5)), Some(at(0.99)))
            }
            _ => (None, None),
        };
        ClientView {
            attempted: self.attempted.load(Ordering::Relaxed),
            succeeded: self.succeeded.load(Ordering::Relaxed),
            timed_out: self.timed_out.load(Ordering::Relaxed),
            reset: self.reset.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            connect_ms_p50: p50,
            connect_ms_p99: p99,
        }
    }
}

/// What a user would call an I/O error.
pub(super) fn classify(e: &std::io::Error) -> Outcome {
    match e.kind() {
        ErrorKind::TimedOut | ErrorKind::WouldBlock => Outcome::TimedOut,
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe => {
            Outcome::Reset
        }
        ErrorKind::ConnectionRefused => Outcome::Refused,
        _ => Outcome::Failed,
    }
}

/// One request: connect, send a line, read the answer.
pub fn attempt(target: SocketAddr, stats: &ClientStats) {
    stats.attempted.fetch_add(1, Ordering::Relaxed);
    stats.in_flight.fetch_add(1, Ordering::Relaxed);
    let t0 = Instant::now();
    let (outcome, ms) = match TcpStream::connect_timeout(&target, CONNECT_TIMEOUT) {
        Err(e) => (classify(&e), None),
        Ok(mut s) => {
            let ms = t0.elapsed().as_secs_f64() * 1000.0;
            let _ = s.set_read_timeout(Some(ANSWER_TIMEOUT));
            let mut buf = [0u8; 16];
            let r = s.write_all(b"GET\n").and_then(|_| s.read(&mut buf));
            let o = match r {
                Ok(n) if n > 0 => Outcome::Succeeded,
                Ok(_) => Outcome::Reset,
                Err(e) => classify(&e),
            };
            (o, Some(ms))
        }
    };
    stats.record(outcome, ms);
    stats.in_flight.fetch_sub(1, Ordering::Relaxed);
}

/// An open-loop generator: arrivals at `rate` per second (changeable), served by a pool of
/// client threads. Stops when dropped.
pub struct LoadGenerator {
    rate_milli: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl LoadGenerator {
    /// Starts arrivals at `rate`/s to `target` (threads inherit the caller's namespace).
    pub fn start(target: SocketAddr, rate: f64, stats: Arc<ClientStats>) -> anyhow::Result<Self> {
        let rate_milli = Arc::new(AtomicU64::new((rate.max(0.0) * 1000.0) as u64));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<()>();
        let rx = Arc::new(Mutex::new(rx));
        let mut threads = Vec::new();
        let busy = Arc::new(AtomicU64::new(0));
        for i in 0..POOL {
            let (rx, stats, stop, busy) = (rx.clone(), stats.clone(), stop.clone(), busy.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("lab-client-{i}"))
                    .stack_size(64 * 1024)
                    .spawn(move || client_loop(&rx, target, &stats, &stop, &busy))?,
            );
        }
        let (r, s, b) = (rate_milli.clone(), stop.clone(), busy.clone());
        threads.push(
            std::thread::Builder::new()
                .name("lab-arrivals".into())
                .spawn(move || arrivals(&tx, &r, &s, &b, &stats))?,
        );
        Ok(Self {
            rate_milli,
            stop,
            threads,
        })
    }

    /// Changes the arrival rate.
    pub fn set_rate(&self, rate: f64) {
        self.rate_milli
            .store((rate.max(0.0) * 1000.0) as u64, Ordering::Relaxed);
    }

    /// Current arrival rate.
    pub fn rate(&self) -> f64 {
        self.rate_milli.load(Ordering::Relaxed) as f64 / 1000.0
    }
}

impl Drop for LoadGenerator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Client threads may sit in a connect/read for a few seconds; they end on their own.
        self.threads.clear();
    }
}

fn arrivals(
    tx: &Sender<()>,
    rate_milli: &AtomicU64,
    stop: &AtomicBool,
    busy: &AtomicU64,
    stats: &ClientStats,
) {
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let rate = rate_milli.load(Ordering::Relaxed) as f64 / 1000.0;
        if rate <= 0.0 {
            std::thread::sleep(Duration::from_millis(50));
            next = Instant::now();
            continue;
        }
        let gap = Duration::from_secs_f64(1.0 / rate);
        next += gap;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else if now - next > Duration::from_secs(1) {
            next = now; // fell far behind: do not burst to catch up
        }
        if busy.load(Ordering::Relaxed) >= POOL as u64 {
            stats.skipped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if tx.send(()).is_err() {
            return;
        }
    }
}

fn client_loop(
    rx: &Mutex<Receiver<()>>,
    target: SocketAddr,
    stats: &ClientStats,
    stop: &AtomicBool,
    busy: &AtomicU64,
) {
    while !stop.load(Ordering::Relaxed) {
        let got = match rx.lock() {
            Ok(r) => r.recv_timeout(Duration::from_millis(200)),
            Err(_) => return,
        };
        match got {
            Ok(()) => {
                busy.fetch_add(1, Ordering::Relaxed);
                attempt(target, stats);
                busy.fetch_sub(1, Ordering::Relaxed);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// `n` attempts at once (a burst), each on its own thread; returns when all are done.
pub fn burst(target: SocketAddr, n: usize, stats: &Arc<ClientStats>) {
    let handles: Vec<_> = (0..n)
        .filter_map(|_| {
            let stats = stats.clone();
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || attempt(target, &stats))
                .ok()
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
}

/// One round of the abort-on-overflow demonstration, against a server with TCP_DEFER_ACCEPT
/// whose accept() is paused and whose backlog is `backlog`:
/// `deferred` clients connect first (their handshake waits for data, so they sit in the SYN
/// queue), then backlog+1 clients fill the accept queue, then the deferred clients send their
/// request: their final ACK meets a full accept queue. Returns the deferred clients' outcomes.
pub fn overflow_round(
    target: SocketAddr,
    backlog: u32,
    deferred: usize,
    stats: &ClientStats,
) -> Vec<Outcome> {
    let mut waiting = Vec::new();
    for _ in 0..deferred {
        stats.attempted.fetch_add(1, Ordering::Relaxed);
        match TcpStream::connect_timeout(&target, CONNECT_TIMEOUT) {
            Ok(s) => waiting.push(s),
            Err(e) => stats.record(classify(&e), None),
        }
    }
    let mut fillers = Vec::new();
    for _ in 0..=backlog {
        if let Ok(mut s) = TcpStream::connect_timeout(&target, CONNECT_TIMEOUT) {
            let _ = s.write_all(b"GET\n");
            fillers.push(s);
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    let mut outcomes = Vec::new();
    for mut s in waiting {
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let mut buf = [0u8; 16];
        let o = match s.write_all(b"GET\n").and_then(|_| {
            std::thread::sleep(Duration::from_millis(50));
            s.read(&mut buf)
        }) {
            Ok(n) if n > 0 => Outcome::Succeeded,
            Ok(_) => Outcome::Reset,
            Err(e) => classify(&e),
        };
        stats.record(o, None);
        outcomes.push(o);
    }
    drop(fillers);
    outcomes
}
