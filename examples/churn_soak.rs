//! churn_soak: sockq under listener churn for an hour (issue 13), in a private network namespace
//! (root only). docs/reliability.md gives the command, the results and how to read them.
//!
//!     cargo build --release --bin sockq --example churn_soak
//!     sudo target/release/examples/churn_soak --minutes 60 --out docs/reliability-data.csv
//!
//! In one namespace (unshare(CLONE_NEWNET) on a thread, `lo` up; every thread and process below
//! is started from that thread, so they all run in it):
//!
//! - churn: `--churn-per-s` TCP listeners on 127.0.0.1 (kernel-chosen ports, backlog 8) opened
//!   per second, each closed after a random life in `--life-min-ms..--life-max-ms`; half of them
//!   accept, half never do;
//! - `--long-lived` listeners on 127.0.0.1:7001.. held for the whole run: 7001, 7003, … accepted,
//!   7002, 7004, … never (their accept queue fills and then overflows);
//! - `--conns-per-s` non-blocking connects, `--long-share` of them to the long-lived listeners
//!   and the rest to a random live churn listener; each client socket is closed after 3 s;
//! - the release binary (`--sockq`) three ways: the dashboard in a detached tmux session
//!   (`--cols`x`--rows`), `sockq serve --listen ADDR` scraped every `--scrape-secs` by this
//!   harness (GET /metrics), and `sockq watch --json`, whose output this harness reads and
//!   discards (it keeps the length of each line, and once per sample the number of listeners in
//!   one tick).
//!
//! Every `--sample-secs` (60: a minute) a CSV row is appended (and flushed) to `--out`: per
//! process VmRSS, VmHWM, RssAnon, open fds, threads and CPU % since the previous row; the
//! scrapes of that interval (ok/total) and the size of the last one; the watch tick sizes; the
//! churn totals. At the end: a summary (max RSS after `--settle-minutes`, least-squares slope of
//! RSS from then on in MB/hour, fds and threads min/max), and each process's smaps_rollup.
//!
//! Bounded and cleaned up on every path: the run ends after `--minutes`; Ctrl-C / SIGTERM end it
//! early; on exit, error or panic the guards kill and reap serve and watch, and kill the tmux
//! server. serve and watch also die with the namespace thread (PR_SET_PDEATHSIG), and the dashboard
//! runs under `timeout` (the run's length plus two minutes), so even a SIGKILLed harness leaves
//! nothing behind for long. The namespace goes with its last thread and process.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tools may panic on failure
#![allow(unsafe_code)] // pre_exec: prctl(PR_SET_PDEATHSIG) in the child, with a SAFETY comment

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use clap::Parser;
use nix::libc;
use socket2::{Domain, Socket, Type};

/// sockq under listener churn (root; see docs/reliability.md).
#[derive(Debug, Parser, Clone)]
struct Opts {
    /// Length of the run, minutes.
    #[arg(long, default_value_t = 60.0)]
    minutes: f64,
    /// CSV file the samples are appended to (created or truncated).
    #[arg(long, default_value = "docs/reliability-data.csv")]
    out: PathBuf,
    /// Churn listeners opened (and, after their life, closed) per second.
    #[arg(long, default_value_t = 50)]
    churn_per_s: u32,
    /// Shortest life of a churn listener, ms.
    #[arg(long, default_value_t = 2000)]
    life_min_ms: u64,
    /// Longest life of a churn listener, ms.
    #[arg(long, default_value_t = 6000)]
    life_max_ms: u64,
    /// Connections made per second.
    #[arg(long, default_value_t = 20)]
    conns_per_s: u32,
    /// Listeners held for the whole run (127.0.0.1:7001..); 7002, 7004, … never accept.
    #[arg(long, default_value_t = 4)]
    long_lived: u16,
    /// Share of the connections that go to the long-lived listeners.
    #[arg(long, default_value_t = 0.25)]
    long_share: f64,
    /// Seconds between samples (one CSV row each).
    #[arg(long, default_value_t = 60)]
    sample_secs: u64,
    /// Seconds between scrapes of `sockq serve`.
    #[arg(long, default_value_t = 5)]
    scrape_secs: u64,
    /// The summary's max and slope use the rows from this minute on.
    #[arg(long, default_value_t = 5.0)]
    settle_minutes: f64,
    /// Address `sockq serve` listens on (inside the namespace).
    #[arg(long, default_value = "127.0.0.1:9911")]
    listen: SocketAddr,
    /// The sockq binary.
    #[arg(long, default_value = "target/release/sockq")]
    sockq: PathBuf,
    /// Dashboard size (tmux columns).
    #[arg(long, default_value_t = 120)]
    cols: u16,
    /// Dashboard size (tmux rows).
    #[arg(long, default_value_t = 40)]
    rows: u16,
}

// ---------------------------------------------------------------------------------------------
// Stop flag and guards
// ---------------------------------------------------------------------------------------------

fn stop_flag() -> &'static Arc<AtomicBool> {
    static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    STOP.get_or_init(|| Arc::new(AtomicBool::new(false)))
}

fn stopped() -> bool {
    stop_flag().load(Ordering::Relaxed)
}

/// Sleeps until `until` or the stop flag, in steps of at most 100 ms; false if stopped.
fn sleep_until(until: Instant) -> bool {
    loop {
        if stopped() {
            return false;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

/// Child processes killed (SIGKILL) and reaped on drop.
#[derive(Default)]
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
        }
        for c in &mut self.0 {
            let _ = c.wait();
        }
    }
}

/// Sets the stop flag on drop, so helper threads end on every path out of `soak`.
struct StopOnDrop;

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        stop_flag().store(true, Ordering::Relaxed);
    }
}

/// A private tmux server running the dashboard; killed on drop.
struct Tmux {
    socket: String,
    socket_path: Option<String>,
}

impl Tmux {
    fn start(cols: u16, rows: u16, command: &str) -> anyhow::Result<Self> {
        let mut t = Tmux {
            socket: format!("sockq-soak-{}", std::process::id()),
            socket_path: None,
        };
        let mut cmd = Command::new("tmux");
        cmd.args(["-f", "/dev/null", "-L", &t.socket, "new-session", "-d"])
            .args(["-x", &cols.to_string(), "-y", &rows.to_string()])
            .args(["-s", "soak", command])
            .env("SHELL", "/bin/sh")
            .env_remove("TMUX")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null());
        strip_sockq_env(&mut cmd);
        let out = cmd.output().context("running tmux")?;
        ensure!(
            out.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        t.socket_path = t.run(&["display-message", "-p", "#{socket_path}"]).ok();
        Ok(t)
    }

    fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .stdin(Stdio::null())
            .output()?;
        ensure!(
            out.status.success(),
            "tmux {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    }

    fn pane_pid(&self) -> anyhow::Result<u32> {
        Ok(self
            .run(&["display-message", "-p", "-t", "soak", "#{pane_pid}"])?
            .trim()
            .parse()?)
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(p) = &self.socket_path {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn strip_sockq_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SOCKQ_") {
            cmd.env_remove(key);
        }
    }
}

/// The child gets SIGKILL when the thread that spawned it ends.
fn die_with_parent_thread(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

// ---------------------------------------------------------------------------------------------
// A small PRNG (no dependency)
// ---------------------------------------------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn seeded() -> Self {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Rng(t | 1)
    }
    fn next(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

// ---------------------------------------------------------------------------------------------
// The load: churn listeners, long-lived listeners, connections
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct LoadStats {
    opened: AtomicU64,
    closed: AtomicU64,
    live: AtomicU64,
    conns: AtomicU64,
    accepted: AtomicU64,
    open_errors: AtomicU64,
}

struct Churned {
    sock: Socket,
    addr: SocketAddr,
    accepting: bool,
    until: Instant,
}

fn listener(addr: SocketAddr, backlog: i32) -> std::io::Result<Socket> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(backlog)?;
    Ok(s)
}

fn drain(sock: &Socket, stats: &LoadStats) {
    while let Ok((c, _)) = sock.accept() {
        drop(c);
        stats.accepted.fetch_add(1, Ordering::Relaxed);
    }
}

fn run_load(o: &Opts, stats: &LoadStats, end: Instant) -> anyhow::Result<()> {
    let mut rng = Rng::seeded();
    let long: Vec<(Socket, SocketAddr, bool)> = (0..o.long_lived)
        .map(|i| {
            let addr: SocketAddr = ([127, 0, 0, 1], 7001 + i).into();
            listener(addr, 8).map(|s| (s, addr, i % 2 == 0))
        })
        .collect::<Result<_, _>>()
        .context("long-lived listeners")?;
    let open_every = Duration::from_secs_f64(1.0 / f64::from(o.churn_per_s.max(1)));
    let conn_every = Duration::from_secs_f64(1.0 / f64::from(o.conns_per_s.max(1)));
    let span = o.life_max_ms.saturating_sub(o.life_min_ms);
    let mut churn: Vec<Churned> = Vec::new();
    let mut clients: VecDeque<(Instant, Socket)> = VecDeque::new();
    let t0 = Instant::now();
    let (mut next_open, mut next_conn) = (t0, t0);
    while !stopped() && Instant::now() < end {
        let now = Instant::now();
        // Never more than a second behind (a stalled harness does not burst).
        next_open = next_open.max(now - Duration::from_secs(1).min(now - t0));
        next_conn = next_conn.max(now - Duration::from_secs(1).min(now - t0));
        while o.churn_per_s > 0 && next_open <= now {
            next_open += open_every;
            match listener(([127, 0, 0, 1], 0).into(), 8) {
                Ok(sock) => {
                    let addr = sock
                        .local_addr()?
                        .as_socket()
                        .context("local address of a churn listener")?;
                    let life = Duration::from_millis(o.life_min_ms + rng.below(span + 1));
                    churn.push(Churned {
                        sock,
                        addr,
                        accepting: rng.below(2) == 0,
                        until: now + life,
                    });
                    stats.opened.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    stats.open_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        let before = churn.len();
        churn.retain(|c| c.until > now);
        stats
            .closed
            .fetch_add((before - churn.len()) as u64, Ordering::Relaxed);
        stats.live.store(churn.len() as u64, Ordering::Relaxed);
        while o.conns_per_s > 0 && next_conn <= now {
            next_conn += conn_every;
            let target = if !long.is_empty() && (churn.is_empty() || rng.unit() < o.long_share) {
                long[rng.below(long.len() as u64) as usize].1
            } else if !churn.is_empty() {
                churn[rng.below(churn.len() as u64) as usize].addr
            } else {
                continue;
            };
            let c = Socket::new(Domain::IPV4, Type::STREAM, None)?;
            c.set_nonblocking(true)?;
            let _ = c.connect(&target.into()); // EINPROGRESS; a full queue drops the SYN
            clients.push_back((now + Duration::from_secs(3), c));
            stats.conns.fetch_add(1, Ordering::Relaxed);
        }
        while clients.front().is_some_and(|(t, _)| *t <= now) {
            clients.pop_front();
        }
        for c in churn.iter().filter(|c| c.accepting) {
            drain(&c.sock, stats);
        }
        for (s, _, accepting) in &long {
            if *accepting {
                drain(s, stats);
            }
        }
        let next = next_open
            .min(next_conn)
            .min(now + Duration::from_millis(50));
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Scrapes of `sockq serve`
// ---------------------------------------------------------------------------------------------

#[derive(Default, Clone)]
struct ScrapeStats {
    ok: u64,
    total: u64,
    last_bytes: usize,
    last_series: usize,
    last_error: String,
}

fn scrape(addr: SocketAddr) -> anyhow::Result<(usize, usize)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(2)))?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let status = text.lines().next().unwrap_or_default().to_string();
    ensure!(status.contains(" 200"), "status line {status:?}");
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    ensure!(body.contains("sockq_"), "no sockq_ series in the body");
    let series = body
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count();
    Ok((body.len(), series))
}

fn run_scraper(addr: SocketAddr, every: Duration, stats: &Mutex<ScrapeStats>, end: Instant) {
    let mut next = Instant::now();
    while sleep_until(next) && Instant::now() < end {
        next += every;
        let r = scrape(addr);
        let mut st = stats.lock().unwrap();
        st.total += 1;
        match r {
            Ok((bytes, series)) => {
                st.ok += 1;
                st.last_bytes = bytes;
                st.last_series = series;
            }
            Err(e) => st.last_error = format!("{e:#}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The `watch --json` stream
// ---------------------------------------------------------------------------------------------

#[derive(Default, Clone)]
struct WatchStats {
    lines: u64,
    last_len: usize,
    max_len: usize,
    /// From the last tick parsed: listeners in `listeners`, `gone_listeners`, and the
    /// snapshot's TCP and UNIX listeners.
    tick_listeners: u64,
    tick_gone_listed: u64,
    tick_gone_counted: u64,
    snap_tcp: u64,
    snap_unix: u64,
}

fn read_watch(out: ChildStdout, stats: &Mutex<WatchStats>, parse_next: &AtomicBool) {
    let mut r = BufReader::with_capacity(1 << 20, out);
    let mut line = String::new();
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let parsed = if parse_next.swap(false, Ordering::Relaxed) {
                    serde_json::from_str::<serde_json::Value>(&line).ok()
                } else {
                    None
                };
                let mut st = stats.lock().unwrap();
                st.lines += 1;
                st.last_len = n;
                st.max_len = st.max_len.max(n);
                if let Some(v) = parsed {
                    let listeners = v["listeners"].as_array();
                    st.tick_listeners = listeners.map_or(0, |a| a.len() as u64);
                    st.tick_gone_listed = listeners.map_or(0, |a| {
                        a.iter()
                            .filter(|l| l["gone"].as_bool() == Some(true))
                            .count() as u64
                    });
                    st.tick_gone_counted = v["gone_listeners"].as_u64().unwrap_or(0);
                    st.snap_tcp = v["snapshot"]["tcp_listeners"]
                        .as_array()
                        .map_or(0, |a| a.len() as u64);
                    st.snap_unix = v["snapshot"]["unix_listeners"]
                        .as_array()
                        .map_or(0, |a| a.len() as u64);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// /proc sampling
// ---------------------------------------------------------------------------------------------

#[derive(Default, Clone, Copy)]
struct ProcSample {
    alive: bool,
    rss_kb: u64,
    hwm_kb: u64,
    anon_kb: u64,
    fds: u64,
    threads: u64,
    cpu_ticks: u64,
}

fn proc_sample(pid: u32) -> ProcSample {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return ProcSample::default();
    };
    if status
        .lines()
        .any(|l| l.starts_with("State:") && l.contains("zombie"))
    {
        return ProcSample::default();
    }
    let field = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64);
    let cpu_ticks = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            // fields 14 and 15 (utime, stime): indexes 11 and 12 after the comm
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    ProcSample {
        alive: true,
        rss_kb: field("VmRSS:"),
        hwm_kb: field("VmHWM:"),
        anon_kb: field("RssAnon:"),
        fds,
        threads: field("Threads:"),
        cpu_ticks,
    }
}

fn clock_ticks() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100.0, |v| v as f64)
}

/// The first child of `pid` (the dashboard under `timeout`).
fn first_child(pid: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn loadavg1() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_default()
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "?".into());
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .map(|l| l.split_whitespace().collect::<Vec<_>>()[1..].join(" "))
        })
        .unwrap_or_default();
    format!("nproc {nproc}; CPU {cpu}; MemTotal {mem}; kernel {kernel}")
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

const PROCS: [&str; 3] = ["dashboard", "serve", "watch"];

struct Row {
    minute: f64,
    procs: [ProcSample; 3],
}

fn csv_header() -> String {
    let mut h = vec!["minute".to_string(), "elapsed_s".to_string()];
    for p in PROCS {
        for f in [
            "alive", "rss_kb", "hwm_kb", "anon_kb", "fds", "threads", "cpu_pct",
        ] {
            h.push(format!("{p}_{f}"));
        }
    }
    h.extend(
        [
            "scrapes_ok",
            "scrapes_total",
            "metrics_bytes",
            "metrics_series",
            "tick_bytes_last",
            "tick_bytes_max",
            "tick_listeners",
            "tick_gone_listed",
            "tick_gone_counted",
            "snapshot_tcp_listeners",
            "snapshot_unix_listeners",
            "churn_opened",
            "churn_closed",
            "churn_live",
            "conns",
            "accepted",
            "loadavg1",
        ]
        .map(String::from),
    );
    h.join(",")
}

fn spawn_sockq(o: &Opts, args: &[&str], err: &Path, stdout: Stdio) -> anyhow::Result<Child> {
    let mut cmd = Command::new(&o.sockq);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(std::fs::File::create(err)?)
        .env_remove("NO_COLOR");
    strip_sockq_env(&mut cmd);
    die_with_parent_thread(&mut cmd);
    cmd.spawn()
        .with_context(|| format!("starting {} {}", o.sockq.display(), args.join(" ")))
}

fn soak(o: &Opts) -> anyhow::Result<Vec<Row>> {
    let _stop_helpers = StopOnDrop;
    let run_for = Duration::from_secs_f64(o.minutes * 60.0);
    let sockq = std::fs::canonicalize(&o.sockq)
        .with_context(|| format!("{}: build it with cargo build --release", o.sockq.display()))?;
    let tmp = std::env::temp_dir();
    let tag = format!("sockq-soak-{}", std::process::id());
    let errs: Vec<PathBuf> = PROCS
        .iter()
        .map(|p| tmp.join(format!("{tag}-{p}.stderr")))
        .collect();

    let mut children = Children::default();
    let serve = spawn_sockq(
        o,
        &["serve", "--listen", &o.listen.to_string()],
        &errs[1],
        Stdio::null(),
    )?;
    let serve_pid = serve.id();
    children.0.push(serve);
    let mut watch = spawn_sockq(o, &["watch", "--json"], &errs[2], Stdio::piped())?;
    let watch_pid = watch.id();
    let watch_out = watch.stdout.take().context("watch stdout")?;
    children.0.push(watch);
    let bound = run_for.as_secs() + 120;
    let tmux = Tmux::start(
        o.cols,
        o.rows,
        &format!(
            "exec timeout -k 5 {bound} {} 2>{}",
            sockq.display(),
            errs[0].display()
        ),
    )?;
    let timeout_pid = tmux.pane_pid()?;
    let t_wait = Instant::now();
    let dash_pid = loop {
        if let Some(p) = first_child(timeout_pid) {
            break p;
        }
        ensure!(
            t_wait.elapsed() < Duration::from_secs(5),
            "no dashboard process under timeout (pid {timeout_pid})"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let pids = [dash_pid, serve_pid, watch_pid];
    println!(
        "pids: dashboard {dash_pid} (tmux -L {}), serve {serve_pid}, watch {watch_pid}",
        tmux.socket
    );

    let load_stats = Arc::new(LoadStats::default());
    let scrape_stats = Arc::new(Mutex::new(ScrapeStats::default()));
    let watch_stats = Arc::new(Mutex::new(WatchStats::default()));
    let parse_next = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let end = t0 + run_for;

    let mut threads = Vec::new();
    {
        let (o, st) = (o.clone(), load_stats.clone());
        threads.push(std::thread::Builder::new().name("load".into()).spawn(
            move || -> anyhow::Result<()> {
                let r = run_load(&o, &st, end);
                if r.is_err() {
                    stop_flag().store(true, Ordering::Relaxed);
                }
                r
            },
        )?);
    }
    {
        let (addr, every, st) = (
            o.listen,
            Duration::from_secs(o.scrape_secs),
            scrape_stats.clone(),
        );
        threads.push(std::thread::Builder::new().name("scrape".into()).spawn(
            move || -> anyhow::Result<()> {
                std::thread::sleep(Duration::from_secs(2)); // serve's first sample
                run_scraper(addr, every, &st, end);
                Ok(())
            },
        )?);
    }
    {
        let (st, pn) = (watch_stats.clone(), parse_next.clone());
        // Not joined: it ends when watch is killed (EOF).
        std::thread::Builder::new()
            .name("watch-reader".into())
            .spawn(move || read_watch(watch_out, &st, &pn))?;
    }

    let mut csv =
        std::fs::File::create(&o.out).with_context(|| format!("creating {}", o.out.display()))?;
    writeln!(csv, "{}", csv_header())?;
    let hz = clock_ticks();
    let mut rows = Vec::new();
    let mut prev: Option<(Instant, [ProcSample; 3])> = None;
    let mut prev_scrapes = (0u64, 0u64);
    let mut k = 0u64;
    // Minute 0 is taken 5 s in (every process has made its first samples).
    let mut next = t0 + Duration::from_secs(5);
    let mut announced_dead = [false; 3];
    loop {
        parse_next.store(true, Ordering::Relaxed); // the tick after this sample is measured
        if !sleep_until(next) {
            println!("stopped by a signal or a failed helper");
            break;
        }
        let now = Instant::now();
        let procs = pids.map(proc_sample);
        let elapsed = now - t0;
        let minute = if k == 0 {
            0.0
        } else {
            elapsed.as_secs_f64() / 60.0
        };
        let sc = scrape_stats.lock().unwrap().clone();
        let ws = {
            let mut w = watch_stats.lock().unwrap();
            let c = w.clone();
            w.max_len = 0;
            c
        };
        let mut f = vec![
            format!("{minute:.2}"),
            format!("{:.1}", elapsed.as_secs_f64()),
        ];
        for (i, p) in procs.iter().enumerate() {
            let cpu = prev.map_or(0.0, |(t, pp)| {
                let dt = (now - t).as_secs_f64();
                (p.cpu_ticks.saturating_sub(pp[i].cpu_ticks)) as f64 / hz / dt * 100.0
            });
            f.extend([
                u8::from(p.alive).to_string(),
                p.rss_kb.to_string(),
                p.hwm_kb.to_string(),
                p.anon_kb.to_string(),
                p.fds.to_string(),
                p.threads.to_string(),
                format!("{cpu:.1}"),
            ]);
            if !p.alive && !announced_dead[i] {
                announced_dead[i] = true;
                println!(
                    "!! {} (pid {}) is gone at minute {minute:.2}; its stderr: {}",
                    PROCS[i],
                    pids[i],
                    std::fs::read_to_string(&errs[i]).unwrap_or_default().trim()
                );
            }
        }
        let ls = &load_stats;
        f.extend([
            (sc.ok - prev_scrapes.0).to_string(),
            (sc.total - prev_scrapes.1).to_string(),
            sc.last_bytes.to_string(),
            sc.last_series.to_string(),
            ws.last_len.to_string(),
            ws.max_len.to_string(),
            ws.tick_listeners.to_string(),
            ws.tick_gone_listed.to_string(),
            ws.tick_gone_counted.to_string(),
            ws.snap_tcp.to_string(),
            ws.snap_unix.to_string(),
            ls.opened.load(Ordering::Relaxed).to_string(),
            ls.closed.load(Ordering::Relaxed).to_string(),
            ls.live.load(Ordering::Relaxed).to_string(),
            ls.conns.load(Ordering::Relaxed).to_string(),
            ls.accepted.load(Ordering::Relaxed).to_string(),
            loadavg1(),
        ]);
        if sc.total - prev_scrapes.1 > sc.ok - prev_scrapes.0 {
            println!(
                "scrape failures this interval; last error: {}",
                sc.last_error
            );
        }
        prev_scrapes = (sc.ok, sc.total);
        writeln!(csv, "{}", f.join(","))?;
        csv.flush()?;
        println!(
            "minute {minute:5.2}: RSS MB dashboard {:.1} serve {:.1} watch {:.1}; fds {}/{}/{}; threads {}/{}/{}; scrapes {}/{}; tick {} B, {} listeners; churn opened {}",
            procs[0].rss_kb as f64 / 1024.0,
            procs[1].rss_kb as f64 / 1024.0,
            procs[2].rss_kb as f64 / 1024.0,
            procs[0].fds, procs[1].fds, procs[2].fds,
            procs[0].threads, procs[1].threads, procs[2].threads,
            sc.ok, sc.total, ws.last_len, ws.tick_listeners,
            ls.opened.load(Ordering::Relaxed),
        );
        rows.push(Row { minute, procs });
        prev = Some((now, procs));
        if now >= end {
            break;
        }
        k += 1;
        next = (t0 + Duration::from_secs(o.sample_secs * k)).min(end);
    }

    for (i, &pid) in pids.iter().enumerate() {
        let smaps =
            std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
        println!(
            "--- {} (pid {pid}) smaps_rollup at the end:\n{}",
            PROCS[i],
            smaps.trim_end()
        );
    }
    for (i, e) in errs.iter().enumerate() {
        let text = std::fs::read_to_string(e).unwrap_or_default();
        if !text.trim().is_empty() {
            println!("--- {} stderr:\n{}", PROCS[i], text.trim_end());
        }
        let _ = std::fs::remove_file(e);
    }
    stop_flag().store(true, Ordering::Relaxed);
    for t in threads {
        match t.join() {
            Ok(r) => r?,
            Err(p) => std::panic::resume_unwind(p),
        }
    }
    let sc = scrape_stats.lock().unwrap().clone();
    println!("scrapes: {} ok of {}", sc.ok, sc.total);
    drop(tmux);
    drop(children);
    Ok(rows)
}

/// Least-squares slope of `ys` over `xs`.
fn slope(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len() as f64;
    if xs.len() < 2 {
        return 0.0;
    }
    let mx = xs.iter().sum::<f64>() / n;
    let my = ys.iter().sum::<f64>() / n;
    let sxy: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    if sxx == 0.0 {
        0.0
    } else {
        sxy / sxx
    }
}

fn summary(o: &Opts, rows: &[Row]) {
    println!(
        "\nsummary (rows from minute {} on for max and slope):",
        o.settle_minutes
    );
    for (i, p) in PROCS.iter().enumerate() {
        let all: Vec<&ProcSample> = rows
            .iter()
            .map(|r| &r.procs[i])
            .filter(|s| s.alive)
            .collect();
        let late: Vec<(f64, f64)> = rows
            .iter()
            .filter(|r| r.minute >= o.settle_minutes - 1e-9 && r.procs[i].alive)
            .map(|r| (r.minute, r.procs[i].rss_kb as f64 / 1024.0))
            .collect();
        let (xs, ys): (Vec<f64>, Vec<f64>) = late.iter().copied().unzip();
        let max_late = ys.iter().copied().fold(f64::NAN, f64::max);
        let first_late = ys.first().copied().unwrap_or(f64::NAN);
        let last_late = ys.last().copied().unwrap_or(f64::NAN);
        let mb_per_h = slope(&xs, &ys) * 60.0;
        let mm = |f: fn(&ProcSample) -> u64| {
            (
                all.iter().map(|s| f(s)).min().unwrap_or(0),
                all.iter().map(|s| f(s)).max().unwrap_or(0),
            )
        };
        let (fmin, fmax) = mm(|s| s.fds);
        let (tmin, tmax) = mm(|s| s.threads);
        let hwm = all.iter().map(|s| s.hwm_kb).max().unwrap_or(0) as f64 / 1024.0;
        let dead = rows.iter().filter(|r| !r.procs[i].alive).count();
        println!(
            "  {p:9}: max RSS after minute {}: {max_late:.1} MB (under 60 MB: {}); RSS {first_late:.1} -> {last_late:.1} MB; slope {mb_per_h:+.2} MB/hour over {} rows; VmHWM {hwm:.1} MB; fds {fmin}..{fmax}; threads {tmin}..{tmax}; rows not alive: {dead}",
            o.settle_minutes,
            if max_late < 60.0 { "yes" } else { "NO" },
            xs.len(),
        );
    }
}

fn main() -> anyhow::Result<()> {
    let o = Opts::parse();
    ensure!(
        o.minutes > 0.0 && o.sample_secs > 0 && o.scrape_secs > 0,
        "bad durations"
    );
    ensure!(
        o.life_max_ms >= o.life_min_ms,
        "--life-max-ms below --life-min-ms"
    );
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop_flag().clone())?;
    }
    println!("churn_soak: {}", machine());
    println!(
        "sockq: {}; load: {} listeners/s (life {}..{} ms), {} connections/s ({} to {} long-lived), {} minutes, sample every {} s, scrape every {} s",
        o.sockq.display(),
        o.churn_per_s,
        o.life_min_ms,
        o.life_max_ms,
        o.conns_per_s,
        o.long_share,
        o.long_lived,
        o.minutes,
        o.sample_secs,
        o.scrape_secs
    );
    let oc = o.clone();
    let handle = std::thread::Builder::new()
        .name("soak-netns".into())
        .spawn(move || -> anyhow::Result<Vec<Row>> {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                .context("unshare(CLONE_NEWNET): churn_soak must run as root")?;
            let st = Command::new("ip")
                .args(["link", "set", "lo", "up"])
                .stdin(Stdio::null())
                .status()
                .context("ip link set lo up")?;
            if !st.success() {
                bail!("ip link set lo up: {st}");
            }
            soak(&oc)
        })?;
    let rows = match handle.join() {
        Ok(r) => r?,
        Err(p) => std::panic::resume_unwind(p),
    };
    summary(&o, &rows);
    println!("CSV: {}", o.out.display());
    Ok(())
}
