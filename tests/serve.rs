//! End-to-end tests of `sockq serve`: the real binary in a private network namespace, scraped
//! over plain TCP, its output checked by `promtool`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and tools may panic on failure

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use socket2::{Domain, Socket, Type};

/// A running `sockq serve` (in the calling thread's namespace). Killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `sockq serve --listen LISTEN args…` and waits for its "serving" line.
    fn start(listen: &str, args: &[&str]) -> anyhow::Result<Server> {
        let mut all = vec!["serve", "--listen", listen];
        all.extend_from_slice(args);
        let mut child = sockq_command(&all)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        {
            let mut pipe = child.stderr.take().expect("piped stderr");
            let stderr = stderr.clone();
            // Drain stderr for the life of the child (a full pipe would block it).
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut sent = false;
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let mut s = stderr.lock().unwrap();
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                    if !sent {
                        if let Some(rest) = s.split("serving http://").nth(1) {
                            if let Some(addr) = rest.split('/').next() {
                                if rest.contains('\n') {
                                    sent = tx.send(addr.to_string()).is_ok();
                                }
                            }
                        }
                    }
                }
            });
        }
        let addr = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(a) => a.parse()?,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                anyhow::bail!(
                    "sockq serve did not report its address; stderr: {}",
                    stderr.lock().unwrap()
                );
            }
        };
        Ok(Server {
            child,
            addr,
            stderr,
        })
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits up to 5 s for `needle` on stderr (read by another thread).
    fn stderr_shows(&self, needle: &str) -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if self.stderr().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// SIGTERM, then waits for the exit.
    fn stop(mut self) -> anyhow::Result<ExitStatus> {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM)?;
        wait_with_timeout(&mut self.child, Duration::from_secs(30))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An HTTP response, split.
#[derive(Debug)]
struct Resp {
    status: u16,
    head: String,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// A TCP connection to `addr` from the address `from` (any 127/8 address works on `lo`).
fn connect_from(from: IpAddr, addr: SocketAddr, timeout: Duration) -> anyhow::Result<TcpStream> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    s.bind(&SocketAddr::new(from, 0).into())?;
    s.connect_timeout(&addr.into(), timeout)?;
    Ok(s.into())
}

/// Sends `raw` (a whole HTTP/1.1 request with `Connection: close`) and reads the response.
fn request(addr: SocketAddr, raw: &str, timeout: Duration) -> anyhow::Result<Resp> {
    request_from(None, addr, raw, timeout)
}

/// [`request`] from the source address `from` (the kernel's choice when `None`).
fn request_from(
    from: Option<IpAddr>,
    addr: SocketAddr,
    raw: &str,
    timeout: Duration,
) -> anyhow::Result<Resp> {
    let mut s = match from {
        Some(from) => connect_from(from, addr, timeout)?,
        None => TcpStream::connect_timeout(&addr, timeout)?,
    };
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.write_all(raw.as_bytes())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8(buf)?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("no end of headers in {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("bad status line in {head:?}"))?;
    Ok(Resp {
        status,
        head: head.to_string(),
        body: body.to_string(),
    })
}

fn get(addr: SocketAddr, path: &str, accept: Option<&str>) -> anyhow::Result<Resp> {
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{accept}Connection: close\r\n\r\n"),
        Duration::from_secs(5),
    )
}

/// Scrapes /metrics until `pred` holds on the body; fails after `timeout`.
fn scrape_until(
    addr: SocketAddr,
    timeout: Duration,
    pred: impl Fn(&str) -> bool,
) -> anyhow::Result<String> {
    let start = Instant::now();
    loop {
        let last = get(addr, "/metrics", None);
        if let Ok(r) = &last {
            if r.status == 200 && pred(&r.body) {
                return Ok(r.body.clone());
            }
        }
        if start.elapsed() > timeout {
            anyhow::bail!("condition not met after {timeout:?}; last scrape: {last:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A connection to `addr` from `from` that sends nothing, non-blocking (to poll for its close).
fn open_idle(from: IpAddr, addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let s = connect_from(from, addr, Duration::from_secs(5))?;
    s.set_nonblocking(true)?;
    Ok(s)
}

/// True when the server has closed `s` (EOF or a reset), reading and dropping anything it sent
/// before; false when a read would wait (`s` non-blocking) or timed out.
fn closed_by_server(s: &mut TcpStream) -> anyhow::Result<bool> {
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(true),
            Ok(_) => continue, // e.g. an error response before the close
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(true),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(false)
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// True when the server closes `s` within `within`; false if it stays open that long.
fn closed_within(s: &mut TcpStream, within: Duration) -> anyhow::Result<bool> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(within))?;
    closed_by_server(s)
}

/// `n` connections to `addr` that never send a byte, from the addresses `sources` in turn, each
/// reopened as soon as the server closes it (checked every 100 ms): a local client trying to
/// hold every slot. The connections are open when `start` returns; a thread (in the caller's
/// namespace) keeps them open until [`IdleFlood::stop`].
struct IdleFlood {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<anyhow::Result<u64>>,
}

impl IdleFlood {
    fn start(addr: SocketAddr, sources: Vec<IpAddr>, n: usize) -> anyhow::Result<IdleFlood> {
        let from = move |i: usize| sources[i % sources.len()];
        let mut conns: Vec<TcpStream> = (0..n)
            .map(|i| open_idle(from(i), addr))
            .collect::<anyhow::Result<_>>()?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut reopened = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for (i, c) in conns.iter_mut().enumerate() {
                        if closed_by_server(c)? {
                            *c = open_idle(from(i), addr)?;
                            reopened += 1;
                        }
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Ok(reopened)
            })
        };
        Ok(IdleFlood { stop, thread })
    }

    /// Stops the flood and closes its connections; how many times one was reopened.
    fn stop(self) -> anyhow::Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("the flood thread panicked"))?
    }
}

/// Scrapes /metrics from `from` every 200 ms, `attempts` times (each a new connection with a
/// generous 5 s timeout); returns how many succeeded and what the others got.
fn scrape_every_200ms(from: Option<IpAddr>, addr: SocketAddr, attempts: u32) -> (u32, Vec<String>) {
    let (mut ok, mut failures) = (0, Vec::new());
    let start = Instant::now();
    for i in 1..=attempts {
        let r = request_from(
            from,
            addr,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            Duration::from_secs(5),
        );
        match r {
            Ok(r) if r.status == 200 => ok += 1,
            Ok(r) => failures.push(format!("status {}", r.status)),
            Err(e) => failures.push(format!("{e:#}")),
        }
        if let Some(wait) = (Duration::from_millis(200) * i).checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    (ok, failures)
}

fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

#[test]
fn full_listener_is_exported_in_both_formats_and_passes_promtool() {
    in_netns("serve_full_listener", || {
        let (_l, addr) = listen("127.0.0.1:0", 4)?;
        let _held = connect_n(addr, 5)?;
        wait_for_accept_queue(addr.port(), 5, Duration::from_secs(10))?;
        // SYNs to a full queue are dropped: the listener's drop counter moves (and keeps moving
        // with each retransmission while these live).
        let _syns = syn_only_clients(addr, 3)?;

        let server = Server::start("127.0.0.1:0", &["--interval", "200ms"])?;
        let port = addr.port().to_string();
        let me = [("address", "127.0.0.1"), ("port", port.as_str())];
        let body = scrape_until(server.addr, Duration::from_secs(10), |b| {
            metric_value(b, "sockq_listener_accept_queue_depth", &me) == Some(5.0)
                && metric_value(b, "sockq_listener_drops_total", &me).is_some_and(|d| d > 0.0)
        })?;
        assert_eq!(
            metric_value(&body, "sockq_listener_backlog", &me),
            Some(4.0)
        );
        assert_eq!(
            metric_value(&body, "sockq_listener_accept_queue_depth_peak", &me),
            Some(5.0)
        );
        assert!(
            metric_value(&body, "sockq_tcpext_listen_overflows_total", &[])
                .is_some_and(|v| v > 0.0),
            "{body}"
        );
        assert_eq!(
            metric_value(&body, "sockq_build_info", &[]),
            Some(1.0),
            "{body}"
        );
        assert!(body.contains("sockq_build_info{version=\""), "{body}");
        // sockq's own process, read at the scrape.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs_f64();
        let started = metric_value(&body, "process_start_time_seconds", &[]).expect("start time");
        assert!(
            started <= now + 1.0 && started > now - 120.0,
            "{started} vs {now}"
        );
        assert!(
            metric_value(&body, "process_cpu_seconds_total", &[]).is_some_and(|v| v >= 0.0),
            "{body}"
        );
        for name in [
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "process_threads",
        ] {
            assert!(
                metric_value(&body, name, &[]).is_some_and(|v| v > 0.0),
                "{name}: {body}"
            );
        }
        promtool::check_metrics(&body)?;

        // The default format is 0.0.4 text.
        let r = get(server.addr, "/metrics", None)?;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        assert!(!r.body.contains("# EOF"));

        // OpenMetrics, as Prometheus asks for it and by query.
        let prom_accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        for (path, accept) in [
            ("/metrics", Some(prom_accept)),
            ("/metrics?format=openmetrics", None),
        ] {
            let r = get(server.addr, path, accept)?;
            assert_eq!(r.status, 200, "{path}");
            assert!(
                r.header("content-type")
                    .is_some_and(|c| c.starts_with("application/openmetrics-text")),
                "{}",
                r.head
            );
            assert!(r.body.ends_with("# EOF\n"), "{path}: {}", r.body);
            assert!(r.body.contains("# TYPE sockq_listener_drops counter\n"));
            assert!(r.body.contains(&format!(
                "sockq_listener_accept_queue_depth{{netns=\"current\",address=\"127.0.0.1\",port=\"{port}\","
            )));
            promtool::parse_openmetrics(&r.body)?;
        }

        // The index, and nothing else.
        let r = get(server.addr, "/", None)?;
        assert_eq!(r.status, 200);
        assert!(r.body.contains("href=\"/metrics\""), "{}", r.body);
        assert_eq!(get(server.addr, "/nope", None)?.status, 404);
        let r = request(
            server.addr,
            "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            Duration::from_secs(5),
        )?;
        assert_eq!(r.status, 405);
        assert_eq!(r.header("allow"), Some("GET, HEAD"));

        let stderr_before = server.stderr();
        let status = server.stop()?;
        assert!(
            status.success(),
            "exit on SIGTERM: {status}; stderr: {stderr_before}"
        );
        Ok(())
    });
}

#[test]
fn slow_loris_neither_blocks_scrapes_nor_collection() {
    in_netns("serve_slow_loris", || {
        // All from one address: no per-peer limit here (it would close the oldest first).
        let server = Server::start(
            "127.0.0.1:0",
            &[
                "--interval",
                "200ms",
                "--header-timeout",
                "1s",
                "--max-connections-per-peer",
                "100",
            ],
        )?;
        scrape_until(server.addr, Duration::from_secs(10), |b| {
            metric_value(b, "sockq_ticks_total", &[]).is_some()
        })?;

        let opened = Instant::now();
        let mut idle: Vec<TcpStream> = (0..50)
            .map(|_| TcpStream::connect(server.addr))
            .collect::<Result<_, _>>()?;
        for _ in 0..5 {
            let mut s = TcpStream::connect(server.addr)?;
            s.write_all(b"GET /metr")?;
            idle.push(s);
        }

        // A normal scrape still answers (how fast is not asserted: a loaded machine)…
        let r = request(
            server.addr,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            Duration::from_secs(30),
        )?;
        assert_eq!(r.status, 200);
        // …and collection goes on.
        let ticks = |b: &str| metric_value(b, "sockq_ticks_total", &[]).unwrap_or(0.0);
        let stamp =
            |b: &str| metric_value(b, "sockq_last_sample_timestamp_seconds", &[]).unwrap_or(0.0);
        let (ticks0, stamp0) = (ticks(&r.body), stamp(&r.body));
        let later = scrape_until(server.addr, Duration::from_secs(3), |b| {
            ticks(b) > ticks0 && stamp(b) > stamp0
        })?;
        assert!(ticks(&later) > ticks0);

        // The server closes the silent and the half-request connections after the header
        // timeout (1 s): EOF (or a reset), before our own 30 s deadline.
        for (i, s) in idle.iter_mut().enumerate() {
            let left = Duration::from_secs(30).saturating_sub(opened.elapsed());
            assert!(
                closed_within(s, left.max(Duration::from_millis(10)))?,
                "connection {i} still open {:?} after it was opened",
                opened.elapsed()
            );
            if i == 0 {
                assert!(
                    opened.elapsed() >= Duration::from_millis(900),
                    "closed before the header timeout: {:?}",
                    opened.elapsed()
                );
            }
        }
        assert_eq!(get(server.addr, "/metrics", None)?.status, 200);
        let status = server.stop()?;
        assert!(status.success(), "{status}");
        Ok(())
    });
}

/// The connection-limit counters of a 0.0.4 body: (closed to make room, refused), each as
/// (at --max-connections, at --max-connections-per-peer).
fn limit_counters(body: &str) -> ((f64, f64), (f64, f64)) {
    let n =
        |name: &str, reason: &str| metric_value(body, name, &[("reason", reason)]).unwrap_or(-1.0);
    let both = |name: &str| {
        (
            n(name, "max_connections"),
            n(name, "max_connections_per_peer"),
        )
    };
    (
        both("sockq_http_connections_evicted_total"),
        both("sockq_http_connections_refused_total"),
    )
}

#[test]
fn at_the_cap_the_oldest_idle_connection_makes_room() {
    in_netns("serve_connection_cap", || {
        let server = Server::start(
            "127.0.0.1:0",
            &[
                "--max-connections",
                "10",
                "--max-connections-per-peer",
                "10",
                "--header-timeout",
                "60s",
            ],
        )?;
        scrape_until(server.addr, Duration::from_secs(10), |_| true)?;
        let mut held: Vec<TcpStream> = (0..10)
            .map(|_| TcpStream::connect(server.addr))
            .collect::<Result<_, _>>()?;
        // The 11th connection is served…
        let r = get(server.addr, "/metrics", None)?;
        assert_eq!(r.status, 200);
        assert_eq!(limit_counters(&r.body), ((1.0, 0.0), (0.0, 0.0)));
        // …in the slot of the oldest idle one; the others stay open.
        assert!(
            closed_within(&mut held[0], Duration::from_secs(30))?,
            "the oldest idle connection is still open"
        );
        for (i, s) in held.iter_mut().enumerate().skip(1) {
            assert!(
                !closed_within(s, Duration::from_millis(200))?,
                "connection {i} was closed"
            );
        }
        assert!(
            server.stderr_shows("--max-connections"),
            "{}",
            server.stderr()
        );
        server.stop()?;
        Ok(())
    });
}

#[test]
fn connection_limits_are_range_checked() {
    for (args, env, needle) in [
        (
            &["--max-connections", "8", "--max-connections-per-peer", "9"][..],
            None,
            "'9' for '--max-connections-per-peer <N>': 9 is above --max-connections (8); give a number from 1 to 8",
        ),
        (&["--max-connections-per-peer", "0"][..], None, "'0'"),
        (
            &[][..],
            Some(("SOCKQ_MAX_CONNECTIONS_PER_PEER", "101")),
            "'101' for '--max-connections-per-peer <N>': 101 is above --max-connections (100)",
        ),
        (
            &[][..],
            Some(("SOCKQ_MAX_CONNECTIONS_PER_PEER", "10001")),
            "10001 is not in 1..=10000",
        ),
    ] {
        let mut cmd = sockq_command(&[&["serve", "--listen", "127.0.0.1:0"][..], args].concat());
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let out = cmd.stdin(Stdio::null()).output().expect("run sockq");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {err}");
        assert!(
            err.contains(needle) && err.contains("--max-connections-per-peer"),
            "{args:?} {env:?}: {err}"
        );
    }
}

#[test]
fn an_idle_flood_over_the_cap_does_not_starve_scrapes() {
    in_netns("serve_idle_flood", || {
        // The defaults: --max-connections 100, --header-timeout 5s. (When new connections over
        // the cap were closed at once, 0 of these 30 scrapes succeeded.)
        let server = Server::start("127.0.0.1:0", &["--interval", "200ms"])?;
        scrape_until(server.addr, Duration::from_secs(10), |_| true)?;
        // 150 idle connections from ten addresses, 15 each: under the per-peer limit (25 by
        // default), so only the global cap is in play.
        let flood = IdleFlood::start(server.addr, (10..20).map(loopback).collect(), 150)?;
        let attempts = 30; // ~6 s
        let (ok, failures) = scrape_every_200ms(None, server.addr, attempts);
        let reopened = flood.stop()?;
        eprintln!(
            "idle flood over the cap: {ok}/{attempts} scrapes succeeded; \
             the flood reopened {reopened} connections"
        );
        assert_eq!(ok, attempts, "failed scrapes: {failures:?}");
        // The flood did fill the cap: its idle connections made room for the new ones.
        let body = get(server.addr, "/metrics", None)?.body;
        let ((global, per_peer), refused) = limit_counters(&body);
        assert!(global > 0.0, "{body}");
        assert_eq!((per_peer, refused), (0.0, (0.0, 0.0)));
        server.stop()?;
        Ok(())
    });
}

#[test]
fn one_peer_over_its_limit_does_not_starve_another() {
    in_netns("serve_per_peer_flood", || {
        // The defaults: --max-connections 100, so 25 per peer.
        let server = Server::start("127.0.0.1:0", &["--interval", "200ms"])?;
        scrape_until(server.addr, Duration::from_secs(10), |_| true)?;
        let flood = IdleFlood::start(server.addr, vec![loopback(2)], 150)?;
        let attempts = 30;
        let (ok, failures) = scrape_every_200ms(Some(loopback(3)), server.addr, attempts);
        let reopened = flood.stop()?;
        eprintln!(
            "idle flood from one peer: {ok}/{attempts} scrapes from another succeeded; \
             the flood reopened {reopened} connections"
        );
        assert_eq!(ok, attempts, "failed scrapes: {failures:?}");
        // The peer's limit held the flood to 25 slots, far from the global cap: each of its new
        // connections took the slot of its own oldest idle one (125 at once at the start).
        let body = get(server.addr, "/metrics", None)?.body;
        let ((global, per_peer), refused) = limit_counters(&body);
        assert!(per_peer >= 125.0, "{body}");
        assert_eq!((global, refused), (0.0, (0.0, 0.0)));
        assert!(
            server.stderr_shows("--max-connections-per-peer"),
            "{}",
            server.stderr()
        );
        server.stop()?;
        Ok(())
    });
}

/// A client that asks for /metrics, reads the response head, then stops reading, with a small
/// receive buffer: the server stays in the middle of answering it until it reads the rest.
struct SlowReader {
    s: TcpStream,
    content_length: usize,
    body: Vec<u8>,
}

impl SlowReader {
    fn start(from: IpAddr, addr: SocketAddr) -> anyhow::Result<SlowReader> {
        let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        sock.set_recv_buffer_size(4096)?; // before connect: it bounds the window
        sock.bind(&SocketAddr::new(from, 0).into())?;
        sock.connect_timeout(&addr.into(), Duration::from_secs(5))?;
        let mut s: TcpStream = sock.into();
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        let end = loop {
            if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = s.read(&mut buf)?;
            anyhow::ensure!(n > 0, "closed before the response head: {got:?}");
            got.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&got[..end]).to_string();
        anyhow::ensure!(head.starts_with("HTTP/1.1 200"), "{head}");
        let content_length = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .ok_or_else(|| anyhow::anyhow!("no content-length: {head}"))?;
        Ok(SlowReader {
            s,
            content_length,
            body: got.split_off(end),
        })
    }

    /// Reads the rest: the whole body, or an error if the server cut it.
    fn finish(mut self) -> anyhow::Result<()> {
        self.s.read_to_end(&mut self.body)?;
        anyhow::ensure!(
            self.body.len() == self.content_length,
            "cut: {} of {} bytes",
            self.body.len(),
            self.content_length
        );
        Ok(())
    }
}

#[test]
fn connections_being_answered_are_never_cut_to_make_room() {
    in_netns("serve_slow_reader", || {
        // In this namespace TCP keeps at most 64 KiB in a socket's send buffer, and the slow
        // readers' receive buffers are 4 KiB: a response of several times that (600 listeners:
        // about 550 KB) cannot be in the kernel whole, so a slow reader's connection is still
        // being answered until it reads. (Killing the server at that point, a slow reader was
        // seen to get about 50 KB.)
        set_sysctl("net/ipv4/tcp_wmem", "4096 16384 65536")?;
        let _listeners: Vec<_> = (0..600)
            .map(|_| listen("127.0.0.1:0", 8))
            .collect::<anyhow::Result<_>>()?;
        let server = Server::start(
            "127.0.0.1:0",
            &[
                "--interval",
                "200ms",
                "--max-listeners",
                "1000",
                "--max-connections",
                "4",
                "--max-connections-per-peer",
                "2",
                "--header-timeout",
                "60s",
            ],
        )?;
        scrape_until(server.addr, Duration::from_secs(20), |b| {
            metric_value(b, "sockq_listeners_exported", &[]).is_some_and(|n| n >= 600.0)
        })?;

        // Peer .2 at its limit (2) with both connections being answered: its third is refused.
        let mut slow = vec![
            SlowReader::start(loopback(2), server.addr)?,
            SlowReader::start(loopback(2), server.addr)?,
        ];
        assert!(
            slow[0].content_length > 384 << 10,
            "the body ({} bytes) must not fit in the socket buffers",
            slow[0].content_length
        );
        let mut third = connect_from(loopback(2), server.addr, Duration::from_secs(5))?;
        assert!(closed_within(&mut third, Duration::from_secs(30))?);

        // Idle connections from six other peers over the cap (4): they make room for each
        // other, never with the slow readers' slots.
        let mut idle: Vec<TcpStream> = (3..9)
            .map(|i| open_idle(loopback(i), server.addr))
            .collect::<anyhow::Result<_>>()?;
        for (i, s) in idle.iter_mut().enumerate() {
            let want_closed = i < 4;
            let within = Duration::from_millis(if want_closed { 5000 } else { 200 });
            assert_eq!(
                closed_within(s, within)?,
                want_closed,
                "idle connection {i}"
            );
        }
        // A scrape takes the oldest idle slot.
        let r = request_from(
            Some(loopback(20)),
            server.addr,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            Duration::from_secs(10),
        )?;
        assert_eq!(r.status, 200);

        // Two more slow readers: now all four slots are being answered, and a new connection
        // from anyone is refused at once.
        slow.push(SlowReader::start(loopback(9), server.addr)?);
        slow.push(SlowReader::start(loopback(10), server.addr)?);
        let mut refused = connect_from(loopback(11), server.addr, Duration::from_secs(5))?;
        assert!(closed_within(&mut refused, Duration::from_secs(30))?);

        // Every slow reader gets its whole response.
        for (i, s) in slow.into_iter().enumerate() {
            s.finish()
                .map_err(|e| anyhow::anyhow!("slow reader {i}: {e:#}"))?;
        }
        let body = scrape_until(server.addr, Duration::from_secs(10), |_| true)?;
        // Made room: 4 idle for idle ones, 1 for the scrape, 1 for the 4th slow reader.
        assert_eq!(
            limit_counters(&body),
            ((6.0, 0.0), (1.0, 1.0)),
            "{}",
            server.stderr()
        );
        server.stop()?;
        Ok(())
    });
}

#[test]
fn bad_and_busy_addresses_are_named() {
    let out = run_sockq(&["serve", "--listen", "999.1.1.1:1"]).expect("run sockq");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(1 | 2)),
        "{:?}: {err}",
        out.status
    );
    assert!(err.contains("999.1.1.1:1"), "{err}");

    in_netns("serve_busy_address", || {
        let (_busy, addr) = listen("127.0.0.1:0", 8)?;
        let out = run_sockq(&["serve", "--listen", &addr.to_string()])?;
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(&addr.to_string()), "{err}");
        assert!(err.contains("in use"), "{err}");

        // A non-loopback address is allowed when given, with a warning.
        let server = Server::start("0.0.0.0:0", &[])?;
        let err = server.stderr();
        assert!(
            err.contains("warning") && err.contains("non-loopback"),
            "{err}"
        );
        server.stop()?;
        let server = Server::start("127.0.0.1:0", &[])?;
        assert!(!server.stderr().contains("warning"), "{}", server.stderr());
        server.stop()?;
        Ok(())
    });
}

#[test]
fn cardinality_is_bounded_by_max_listeners() {
    in_netns("serve_cardinality", || {
        // 694 idle listeners, 5 full ones; with sockq's own listener: 700.
        let idle: Vec<_> = (0..694)
            .map(|_| listen("127.0.0.1:0", 8))
            .collect::<anyhow::Result<_>>()?;
        let mut full = Vec::new();
        let mut clients = Vec::new();
        for _ in 0..5 {
            let (l, addr) = listen("127.0.0.1:0", 2)?;
            clients.push(connect_n(addr, 3)?);
            wait_for_accept_queue(addr.port(), 3, Duration::from_secs(10))?;
            full.push((l, addr));
        }
        let server = Server::start(
            "127.0.0.1:0",
            &["--interval", "200ms", "--max-listeners", "100"],
        )?;
        let body = scrape_until(server.addr, Duration::from_secs(15), |b| {
            metric_value(b, "sockq_listeners", &[]) == Some(700.0)
        })?;
        assert_eq!(
            metric_value(&body, "sockq_listeners_exported", &[]),
            Some(100.0)
        );
        let exported = body
            .lines()
            .filter(|l| l.starts_with("sockq_listener_accept_queue_depth{"))
            .count();
        assert_eq!(exported, 100, "per-listener series");
        for (_, addr) in &full {
            let port = addr.port().to_string();
            assert_eq!(
                metric_value(
                    &body,
                    "sockq_listener_accept_queue_depth",
                    &[("port", port.as_str())]
                ),
                Some(3.0),
                "full listener {addr} is exported"
            );
        }
        promtool::check_metrics(&body)?;
        drop((idle, clients));
        server.stop()?;
        Ok(())
    });
}
