//! How the demo server serves its connections, in the three shapes the lab's scenarios need:
//! - a **pool** of W worker threads, each accepting and serving one connection at a time
//!   (capacity = W / service time);
//! - a single-threaded **event loop** (node, a Python selector loop) whose handler blocks it for
//!   the service time: while it blocks nothing is accepted and nothing is read;
//! - a **thread per connection** (the classic threaded server): every accepted connection is
//!   served at once, so connections in service = arrival rate × response time, each holding a
//!   file descriptor.
//!
//! Each answers a request (one read) with `response_bytes` bytes after the service time and
//! closes — or, while `leak` is on, keeps the connection forever (an fd and CLOSE-WAIT leak)
//! until told to close what it kept.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use socket2::Socket;

/// Most worker threads the pool runs.
pub const MAX_WORKERS: usize = 256;

/// How the server serves (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// W worker threads.
    Pool,
    /// One thread; the handler blocks the loop.
    EventLoop,
    /// A thread per accepted connection.
    ThreadPerConnection,
}

impl Mode {
    /// The name on the `__lab-server` command line.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Pool => "pool",
            Mode::EventLoop => "loop",
            Mode::ThreadPerConnection => "threads",
        }
    }

    /// The mode named `s` on the command line.
    pub fn parse(s: &str) -> Result<Self, String> {
        [Mode::Pool, Mode::EventLoop, Mode::ThreadPerConnection]
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| format!("{s:?} is not a server mode; use pool, loop or threads"))
    }
}

/// What the serving threads share with the command loop.
pub struct Shared {
    /// Worker threads that should run (pool mode).
    pub workers: AtomicUsize,
    /// Service (or response, or blocking) time per request, ms.
    pub service_ms: AtomicU64,
    /// accept() paused.
    pub paused: AtomicBool,
    /// Keep connections instead of closing them.
    pub leak: AtomicBool,
    /// Bytes of each answer.
    pub response_bytes: AtomicUsize,
    /// The connections kept while `leak` is on.
    pub leaked: Mutex<Vec<TcpStream>>,
    /// Which pool workers run.
    pub alive: [AtomicBool; MAX_WORKERS],
}

impl Shared {
    /// Settings at start.
    pub fn new(workers: usize, service_ms: u64, paused: bool, leak: bool, response: usize) -> Self {
        Self {
            workers: AtomicUsize::new(workers.min(MAX_WORKERS)),
            service_ms: AtomicU64::new(service_ms),
            paused: AtomicBool::new(paused),
            leak: AtomicBool::new(leak),
            response_bytes: AtomicUsize::new(response.max(1)),
            leaked: Mutex::new(Vec::new()),
            alive: std::array::from_fn(|_| AtomicBool::new(false)),
        }
    }

    /// Closes every connection kept by the leak; returns how many.
    pub fn close_leaked(&self) -> usize {
        self.leaked.lock().map_or(0, |mut l| l.drain(..).count())
    }

    fn service(&self) -> Duration {
        Duration::from_millis(self.service_ms.load(Ordering::Relaxed))
    }
}

/// Starts serving on `listener` (non-blocking) in `mode`.
pub fn start(mode: Mode, listener: &Arc<Socket>, shared: &Arc<Shared>) -> anyhow::Result<()> {
    match mode {
        Mode::Pool => ensure_workers(listener, shared),
        Mode::EventLoop | Mode::ThreadPerConnection => {
            let (l, s) = (listener.clone(), shared.clone());
            std::thread::Builder::new()
                .name(mode.name().into())
                .spawn(move || {
                    if mode == Mode::EventLoop {
                        event_loop(&l, &s);
                    } else {
                        thread_per_connection(&l, &s);
                    }
                })?;
            Ok(())
        }
    }
}

/// Starts the pool's worker threads that should run and are not running.
pub fn ensure_workers(listener: &Arc<Socket>, shared: &Arc<Shared>) -> anyhow::Result<()> {
    let n = shared.workers.load(Ordering::Relaxed);
    for i in 0..n {
        if shared.alive[i].swap(true, Ordering::SeqCst) {
            continue;
        }
        let (l, s) = (listener.clone(), shared.clone());
        std::thread::Builder::new()
            .name(format!("worker-{i}"))
            .stack_size(64 * 1024)
            .spawn(move || {
                worker(i, &l, &s);
                s.alive[i].store(false, Ordering::SeqCst);
            })?;
    }
    Ok(())
}

/// Waits up to 100 ms for the listener to have a connection; false when paused or none.
fn readable(listener: &Socket, s: &Shared) -> bool {
    if s.paused.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(20));
        return false;
    }
    let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
    poll(&mut fds, PollTimeout::from(100u16)).unwrap_or(0) > 0
}

/// One accept(); on EMFILE/ENFILE sleeps 50 ms and says so, as naive servers retry.
fn accept_one(listener: &Socket) -> Option<TcpStream> {
    match listener.accept() {
        Ok((conn, _)) => Some(conn.into()),
        Err(e)
            if e.raw_os_error() == Some(nix::libc::EMFILE)
                || e.raw_os_error() == Some(nix::libc::ENFILE) =>
        {
            // Out of fds: the connection stays in the accept queue.
            std::thread::sleep(Duration::from_millis(50));
            None
        }
        Err(_) => None,
    }
}

fn worker(i: usize, listener: &Socket, s: &Shared) {
    while i < s.workers.load(Ordering::Relaxed) {
        if readable(listener, s) {
            if let Some(conn) = accept_one(listener) {
                serve(conn, s);
            }
        }
    }
}

fn thread_per_connection(listener: &Socket, s: &Arc<Shared>) {
    loop {
        if !readable(listener, s) {
            continue;
        }
        while let Some(conn) = accept_one(listener) {
            let shared = s.clone();
            // A thread that cannot be made drops its connection (the client sees a close).
            let _ = std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || serve(conn, &shared));
            if s.paused.load(Ordering::Relaxed) {
                break;
            }
        }
    }
}

/// Reads one request, waits the service time, answers, closes (or keeps it: the leak).
fn serve(mut stream: TcpStream, s: &Shared) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 256];
    let _ = stream.read(&mut buf);
    std::thread::sleep(s.service());
    answer(stream, s);
}

/// The block large answers are written from: static, as the serving threads have small stacks.
static BLOCK: [u8; 64 * 1024] = [b'x'; 64 * 1024];

/// Writes the answer (blocking until the peer's window takes it), then closes or keeps it.
/// A large answer is written from one shared block, so the server's memory does not grow with
/// the answers its clients do not read.
fn answer(mut stream: TcpStream, s: &Shared) {
    let _ = stream.set_nonblocking(false);
    let n = s.response_bytes.load(Ordering::Relaxed);
    let written = if n <= 3 {
        stream.write_all(&b"OK\n"[..n])
    } else {
        let mut left = n - 1;
        let mut r = Ok(());
        while left > 0 && r.is_ok() {
            let k = left.min(BLOCK.len());
            r = stream.write_all(&BLOCK[..k]);
            left -= k;
        }
        r.and_then(|()| stream.write_all(b"\n"))
    };
    if written.is_ok() && s.leak.load(Ordering::Relaxed) {
        // The demo's leak: the descriptor is kept, never closed.
        if let Ok(mut l) = s.leaked.lock() {
            l.push(stream);
        }
    }
}

/// The single-threaded event loop: accepts everything waiting, then handles every connection
/// with a request, one after the other — each handler blocks the whole loop for the service
/// time, during which nothing is accepted and nothing read.
fn event_loop(listener: &Socket, s: &Shared) {
    let mut conns: Vec<TcpStream> = Vec::new();
    loop {
        let ready: Vec<bool> = {
            let mut fds = vec![PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
            fds.extend(
                conns
                    .iter()
                    .map(|c| PollFd::new(c.as_fd(), PollFlags::POLLIN)),
            );
            if poll(&mut fds, PollTimeout::from(100u16)).unwrap_or(0) == 0 {
                continue;
            }
            fds.iter()
                .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                .collect()
        };
        let mut keep = Vec::with_capacity(conns.len());
        for (mut c, ready) in conns.drain(..).zip(ready.iter().skip(1)) {
            if !ready {
                keep.push(c);
                continue;
            }
            let mut buf = [0u8; 4096];
            match c.read(&mut buf) {
                Ok(n) if n > 0 => {
                    // The handler: blocks the loop (a synchronous call in an async server).
                    std::thread::sleep(s.service());
                    answer(c, s);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => keep.push(c),
                _ => {} // closed by the peer, or an error: drop it
            }
        }
        conns = keep;
        if ready.first().copied().unwrap_or(false) {
            if s.paused.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            loop {
                match listener.accept() {
                    Ok((c, _)) => {
                        let c: TcpStream = c.into();
                        let _ = c.set_nonblocking(true);
                        conns.push(c);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {
                        // EMFILE and the like: the listener stays readable; do not spin.
                        std::thread::sleep(Duration::from_millis(50));
                        break;
                    }
                }
            }
        }
    }
}
