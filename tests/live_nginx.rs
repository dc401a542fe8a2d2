//! Issue 12's acceptance test ("Correct under real load: never miss an overflow"): a real
//! nginx (one worker, 64 worker_connections, backlog capped at somaxconn 128) hit by 2,000
//! connections at once, in a private network namespace, while `sockq watch --json`,
//! `sockq serve` and the dashboard (in tmux) look at it. nginx cannot take 2,000 connections
//! at once: its accept queue overflows between the fast sampler's polls, and sockq must say so
//! in every view, for every tick in which the namespace's ListenOverflows moved.
//!
//! No timing assertion: every wait is for a condition, with a generous deadline. Every child
//! (nginx and its worker, the sockq processes, tmux) is killed on every path by a guard.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and tools may panic on failure

mod common;

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use common::*;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use socket2::{Domain, Socket, Type};

/// nginx's port and sockq serve's, inside the test's own namespace (nothing else is there).
const NGINX_PORT: u16 = 8080;
const SERVE_PORT: u16 = 9464;
/// The numbers.
const CLIENTS: usize = 2000;
const WORKER_CONNECTIONS: u32 = 64;
const SOMAXCONN: u32 = 128;
/// How long the clients hold their connections (their SYNs dropped at a full queue are
/// retransmitted after 1 s and 3 s: the queue keeps overflowing for a while).
const HOLD: Duration = Duration::from_secs(5);
/// After the clients close: the views keep being read (a critical finding is held 10 s).
const AFTER: Duration = Duration::from_secs(3);
/// Generous: a loaded 2-core machine may be slow to start the debug binary.
const STARTUP: Duration = Duration::from_secs(20);

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The nginx binary, or None (loudly) outside CI when it is not installed.
fn nginx_bin() -> anyhow::Result<Option<PathBuf>> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file());
    if found.is_some() {
        return Ok(found);
    }
    let msg = "nginx not found: install the Debian package `nginx` (.ci/run installs it)";
    anyhow::ensure!(!ci(), "{msg}");
    eprintln!("\n*** SKIPPED live_nginx: {msg} ***\n");
    Ok(None)
}

/// Raises this process's soft RLIMIT_NOFILE so that it can hold the clients (children inherit
/// it: nginx and sockq do not need it, and are not harmed by it).
fn raise_nofile(need: u64) -> anyhow::Result<()> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft >= need {
        return Ok(());
    }
    anyhow::ensure!(
        hard >= need,
        "this test holds {CLIENTS} client sockets: RLIMIT_NOFILE hard limit {hard} < {need}"
    );
    setrlimit(Resource::RLIMIT_NOFILE, need, hard)?;
    Ok(())
}

/// A process group (nginx: master and worker) stopped on drop: SIGTERM, then SIGKILL.
struct Nginx {
    child: Child,
    dir: TempDir,
}

impl Nginx {
    /// Starts nginx (calling thread's namespace) with everything in a fresh temp dir: config,
    /// pid, logs, temp paths. It runs as root, in the foreground, in its own process group.
    fn start(bin: &Path) -> anyhow::Result<Nginx> {
        let dir = TempDir::new("nginx")?;
        let d = dir.path().display();
        let conf = format!(
            "user root;\n\
             worker_processes 1;\n\
             daemon off;\n\
             pid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\n\
             events {{ worker_connections {WORKER_CONNECTIONS}; }}\n\
             http {{\n\
               access_log off;\n\
               client_body_temp_path {d}/body;\n\
               proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi;\n\
               uwsgi_temp_path {d}/uwsgi;\n\
               scgi_temp_path {d}/scgi;\n\
               keepalive_timeout 60s;\n\
               client_header_timeout 60s;\n\
               server {{\n\
                 listen 127.0.0.1:{NGINX_PORT};\n\
                 location / {{ return 200 \"ok\\n\"; }}\n\
               }}\n\
             }}\n"
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf)?;
        let out = std::fs::File::create(dir.path().join("stderr.log"))?;
        let child = Command::new(bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .process_group(0)
            .spawn()
            .context("starting nginx")?;
        Ok(Nginx { child, dir })
    }

    /// nginx's own logs, for failure messages.
    fn logs(&self) -> String {
        ["stderr.log", "error.log"]
            .iter()
            .map(|f| {
                let text = std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
                // The worker_connections alerts repeat: the first and last lines are enough.
                let lines: Vec<&str> = text.lines().collect();
                let shown = if lines.len() > 10 {
                    format!(
                        "{}\n  … {} lines …\n{}",
                        lines[..5].join("\n"),
                        lines.len() - 10,
                        lines[lines.len() - 5..].join("\n")
                    )
                } else {
                    text.clone()
                };
                format!("--- nginx {f} ---\n{shown}\n")
            })
            .collect()
    }

    /// Waits until nginx answers `GET /` with 200 (the worker is up).
    fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let addr = SocketAddr::from(([127, 0, 0, 1], NGINX_PORT));
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("nginx exited ({status}):\n{}", self.logs());
            }
            match http_get(addr, "/") {
                Ok((200, _)) => return Ok(()),
                last => anyhow::ensure!(
                    start.elapsed() < timeout,
                    "nginx did not answer within {timeout:?}: {last:?}\n{}",
                    self.logs()
                ),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let group = Pid::from_raw(self.child.id() as i32);
        if let Ok(None) = self.child.try_wait() {
            let _ = kill(group, Signal::SIGTERM); // master: fast shutdown of itself and workers
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(5) {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // Whatever is left of the group (a worker outlives a killed master).
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child killed on drop (SIGTERM first, so that sockq exits cleanly when it can).
struct Guard(Child);

impl Guard {
    fn running(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }

    /// SIGTERM, then waits (kills after 10 s).
    fn stop(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        if self.running() {
            kill(Pid::from_raw(self.0.id() as i32), Signal::SIGTERM)?;
        }
        wait_with_timeout(&mut self.0, Duration::from_secs(10))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.running() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Starts `sockq args…` with stdout and stderr to files.
fn spawn_sockq(args: &[&str], stdout: &Path, stderr: &Path) -> anyhow::Result<Guard> {
    let child = sockq_command(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(stdout)?)
        .stderr(std::fs::File::create(stderr)?)
        .spawn()?;
    Ok(Guard(child))
}

/// The namespace's TcpExt ListenOverflows: `nstat` (run in the calling thread's namespace,
/// with its history file in `dir`) and /proc/thread-self/net/netstat.
fn listen_overflows(dir: &Path) -> anyhow::Result<(u64, u64)> {
    let out = Command::new("nstat")
        .args(["-a", "-z", "-s", "TcpExtListenOverflows"])
        .env("NSTAT_HISTORY", dir.join("nstat.history"))
        .output()
        .context("running nstat (Debian package iproute2)")?;
    anyhow::ensure!(
        out.status.success(),
        "nstat: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let nstat = text
        .lines()
        .find_map(|l| {
            let mut f = l.split_whitespace();
            (f.next() == Some("TcpExtListenOverflows")).then(|| f.next()?.parse().ok())?
        })
        .ok_or_else(|| anyhow::anyhow!("no TcpExtListenOverflows in nstat's output: {text}"))?;
    let netstat = std::fs::read_to_string("/proc/thread-self/net/netstat")?;
    let lines: Vec<&str> = netstat.lines().collect();
    let proc = lines
        .windows(2)
        .find_map(|w| {
            let names = w[0].strip_prefix("TcpExt:")?;
            let values = w[1].strip_prefix("TcpExt:")?;
            let i = names
                .split_whitespace()
                .position(|n| n == "ListenOverflows")?;
            values.split_whitespace().nth(i)?.parse().ok()
        })
        .ok_or_else(|| anyhow::anyhow!("no TcpExt ListenOverflows in {netstat}"))?;
    Ok((nstat, proc))
}

/// The complete JSON lines written so far to `path` (the last one may be half-written).
fn ticks_in(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn listener_in<'a>(tick: &'a Value, endpoint: &str) -> Option<&'a Value> {
    tick["listeners"]
        .as_array()?
        .iter()
        .find(|l| l["endpoint"] == endpoint)
}

fn overflow_rate(tick: &Value) -> f64 {
    tick["counter_rates"]["ListenOverflows"]
        .as_f64()
        .unwrap_or(0.0)
}

/// The ListenOverflows delta a tick reports: its rate times its interval.
fn overflow_delta(tick: &Value) -> u64 {
    let dt = tick["interval_s"].as_f64().unwrap_or(0.0);
    (overflow_rate(tick) * dt).round() as u64
}

/// A tick reduced to what matters here, for failure messages.
fn tick_excerpt(tick: &Value, endpoint: &str) -> String {
    let findings: Vec<Value> = tick["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| {
                    serde_json::json!({
                        "rule": f["rule"], "severity": f["severity"],
                        "listener": f["listener"], "cleared_s": f["cleared_s"],
                        "evidence": f["evidence"],
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    serde_json::json!({
        "seq": tick["seq"],
        "interval_s": tick["interval_s"],
        "ListenOverflows/s": tick["counter_rates"]["ListenOverflows"],
        "ListenDrops/s": tick["counter_rates"]["ListenDrops"],
        "ListenOverflows": tick["snapshot"]["counters"]["tcp_ext"]["ListenOverflows"],
        "listener": listener_in(tick, endpoint),
        "dropping_listeners": tick["dropping_listeners"],
        "findings": findings,
        "collector": tick["collector"],
    })
    .to_string()
}

/// The dashboard's tmux server; on drop, a sockq still running in its pane is killed first.
struct Dashboard(common::tmux::Tmux);

impl Drop for Dashboard {
    fn drop(&mut self) {
        let Ok(shell) = self.0.display("#{pane_pid}") else {
            return;
        };
        let Ok(children) = run_ok("pgrep", &["-P", &shell]) else {
            return;
        };
        for pid in children.split_whitespace().filter_map(|p| p.parse().ok()) {
            let is_sockq = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "sockq");
            if is_sockq {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

/// `/metrics` scraped every ~300 ms by a thread (in the caller's namespace) until stopped:
/// (when, body) of every successful scrape, and the failures.
struct Scraper {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    scrapes: Arc<Mutex<Vec<(Instant, String)>>>,
    failures: Arc<Mutex<Vec<String>>>,
}

impl Scraper {
    fn start(addr: SocketAddr) -> Scraper {
        let stop = Arc::new(AtomicBool::new(false));
        let scrapes = Arc::new(Mutex::new(Vec::new()));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, scrapes, failures) = (stop.clone(), scrapes.clone(), failures.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match http_get(addr, "/metrics") {
                        Ok((200, body)) => scrapes.lock().unwrap().push((Instant::now(), body)),
                        Ok((status, _)) => failures.lock().unwrap().push(format!("{status}")),
                        Err(e) => failures.lock().unwrap().push(format!("{e:#}")),
                    }
                    std::thread::sleep(Duration::from_millis(300));
                }
            })
        };
        Scraper {
            stop,
            thread: Some(thread),
            scrapes,
            failures,
        }
    }

    fn finish(mut self) -> (Vec<(Instant, String)>, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let s = std::mem::take(&mut *self.scrapes.lock().unwrap());
        let f = std::mem::take(&mut *self.failures.lock().unwrap());
        (s, f)
    }
}

impl Drop for Scraper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `n` non-blocking connects to `addr`, issued back to back: (the sockets, connect errors).
fn burst(addr: SocketAddr, n: usize) -> (Vec<Socket>, Vec<String>) {
    let mut socks = Vec::with_capacity(n);
    let mut errors = Vec::new();
    for _ in 0..n {
        let s = match Socket::new(Domain::IPV4, Type::STREAM, None) {
            Ok(s) => s,
            Err(e) => {
                errors.push(format!("socket: {e}"));
                continue;
            }
        };
        if let Err(e) = s.set_nonblocking(true) {
            errors.push(format!("nonblocking: {e}"));
            continue;
        }
        match s.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(nix::libc::EINPROGRESS) => {}
            Err(e) => errors.push(format!("connect: {e}")),
        }
        socks.push(s);
    }
    (socks, errors)
}

#[test]
fn nginx_burst_overflows_are_seen_in_every_view() {
    let Some(nginx_bin) = nginx_bin().expect("nginx") else {
        return;
    };
    in_netns("live_nginx", move || {
        let test_start = Instant::now();
        set_sysctl("net/core/somaxconn", &SOMAXCONN.to_string())?;
        raise_nofile(CLIENTS as u64 + 512)?;
        let dir = TempDir::new("live-nginx")?;
        let (before, _) = listen_overflows(dir.path())?;

        let mut nginx = Nginx::start(&nginx_bin)?;
        nginx.wait_ready(STARTUP)?;
        let endpoint = format!("127.0.0.1:{NGINX_PORT}");
        let port = NGINX_PORT.to_string();

        // The three views, started from this thread: they watch this namespace.
        let watch_out = dir.path().join("watch.jsonl");
        let mut watch = spawn_sockq(
            &["watch", "--json"],
            &watch_out,
            &dir.path().join("watch.err"),
        )?;
        let serve_listen = format!("127.0.0.1:{SERVE_PORT}");
        let mut serve = spawn_sockq(
            &["serve", "--listen", &serve_listen],
            &dir.path().join("serve.out"),
            &dir.path().join("serve.err"),
        )?;
        let dashboard = Dashboard(common::tmux::Tmux::start(
            format!("sockq-test-{}-nginx", std::process::id()),
            "nginx",
            (160, 50),
            &format!("'{}'; echo EXITED rc=$?; sleep 60", common::sockq_bin()),
            &["RUST_BACKTRACE", "RUST_LIB_BACKTRACE"],
        )?);

        // Each view shows nginx's listener (backlog capped by somaxconn) before the burst; the
        // watch has a tick with rates (its second).
        let start = Instant::now();
        loop {
            let ticks = ticks_in(&watch_out);
            let ready = ticks.iter().any(|t| {
                !t["interval_s"].is_null()
                    && listener_in(t, &endpoint).is_some_and(|l| l["backlog"] == SOMAXCONN)
            });
            if ready {
                break;
            }
            anyhow::ensure!(
                watch.running() && start.elapsed() < STARTUP,
                "sockq watch did not show {endpoint} with backlog {SOMAXCONN} (running: {}); \
                 stderr: {}; {} ticks, last: {:?}",
                watch.running(),
                std::fs::read_to_string(dir.path().join("watch.err")).unwrap_or_default(),
                ticks.len(),
                ticks.last().map(|t| tick_excerpt(t, &endpoint))
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let serve_addr: SocketAddr = serve_listen.parse()?;
        let me = [("address", "127.0.0.1"), ("port", port.as_str())];
        let start = Instant::now();
        loop {
            let last = http_get(serve_addr, "/metrics");
            if let Ok((200, body)) = &last {
                if metric_value(body, "sockq_listener_backlog", &me) == Some(f64::from(SOMAXCONN)) {
                    break;
                }
            }
            anyhow::ensure!(
                serve.running() && start.elapsed() < STARTUP,
                "sockq serve did not export {endpoint}: {last:?}; stderr: {}",
                std::fs::read_to_string(dir.path().join("serve.err")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        dashboard.0.wait_for(
            &format!("the dashboard's row of {endpoint}"),
            STARTUP,
            |s| s.lines().any(|l| l.contains(&endpoint)),
        )?;
        let setup_s = test_start.elapsed().as_secs_f64();

        // The burst: 2,000 connections at once, held, then closed. Meanwhile /metrics is
        // scraped by a thread and the dashboard's screen captured here.
        let scraper = Scraper::start(serve_addr);
        let burst_start = Instant::now();
        let (clients, connect_errors) =
            burst(SocketAddr::from(([127, 0, 0, 1], NGINX_PORT)), CLIENTS);
        let burst_s = burst_start.elapsed().as_secs_f64();
        let mut screens = Vec::new();
        let mut closed_at = None;
        let mut clients = Some(clients);
        while burst_start.elapsed() < HOLD + AFTER {
            if closed_at.is_none() && burst_start.elapsed() >= HOLD {
                drop(clients.take());
                closed_at = Some(Instant::now());
            }
            screens.push((Instant::now(), dashboard.0.screen()));
            std::thread::sleep(Duration::from_millis(250));
        }
        drop(clients);
        let (scrapes, scrape_failures) = scraper.finish();

        // Everything stops; then the namespace's own count.
        let watch_status = watch.stop()?;
        let serve_status = serve.stop()?;
        drop(dashboard);
        let nginx_logs = nginx.logs();
        drop(nginx);
        let (after, after_proc) = listen_overflows(dir.path())?;
        let total = after - before;

        let ticks = ticks_in(&watch_out);
        let overflowing: Vec<&Value> = ticks.iter().filter(|t| overflow_rate(t) > 0.0).collect();
        let reported: u64 = ticks.iter().map(overflow_delta).sum();
        let summary = format!(
            "setup {setup_s:.1} s; {CLIENTS} connects in {burst_s:.3} s ({} errors: {:?}); \
             ListenOverflows: nstat {before} -> {after} (/proc {after_proc}), total change \
             {total}; sockq watch: {} ticks, {} with ListenOverflows > 0, reported deltas sum \
             {reported}; {} scrapes ({} failed: {:?}); {} screens; watch {watch_status}, serve \
             {serve_status}; test {:.1} s",
            connect_errors.len(),
            connect_errors.iter().take(3).collect::<Vec<_>>(),
            ticks.len(),
            overflowing.len(),
            scrapes.len(),
            scrape_failures.len(),
            scrape_failures.iter().take(3).collect::<Vec<_>>(),
            screens.len(),
            test_start.elapsed().as_secs_f64(),
        );
        eprintln!("live_nginx: {summary}");
        for t in &overflowing {
            eprintln!("  overflowing tick: {}", tick_excerpt(t, &endpoint));
        }

        // The burst did overflow nginx's accept queue.
        anyhow::ensure!(
            !overflowing.is_empty(),
            "no tick saw ListenOverflows rise: the burst did not overflow nginx ({summary})\n\
             ticks:\n{}\n{nginx_logs}",
            ticks
                .iter()
                .map(|t| tick_excerpt(t, &endpoint))
                .collect::<Vec<_>>()
                .join("\n")
        );

        // watch --json: every tick in which ListenOverflows rose shows nginx's listener
        // overflowed, with an active critical accept_queue_full finding naming it.
        let mut bad = Vec::new();
        for t in &overflowing {
            let l = listener_in(t, &endpoint);
            let listener_ok = l.is_some_and(|l| {
                l["overflowed"] == true
                    && l["depth_high"].as_u64() > l["backlog"].as_u64()
                    && l["backlog"] == SOMAXCONN
            });
            let finding_ok = t["findings"].as_array().is_some_and(|fs| {
                fs.iter().any(|f| {
                    f["rule"] == "accept_queue_full"
                        && f["listener"] == endpoint.as_str()
                        && f["severity"] == "critical"
                        && f["cleared_s"].is_null()
                })
            });
            if !(listener_ok && finding_ok) {
                bad.push(format!(
                    "listener ok: {listener_ok}, finding ok: {finding_ok}: {}",
                    tick_excerpt(t, &endpoint)
                ));
            }
        }
        assert!(
            bad.is_empty(),
            "{} of {} ticks with ListenOverflows > 0 do not show {endpoint} overflowing ({summary}):\n{}",
            bad.len(),
            overflowing.len(),
            bad.join("\n")
        );

        // What sockq reported adds up to no more than the kernel counted, and to something.
        assert!(
            reported > 0 && reported <= total,
            "ListenOverflows deltas reported by sockq: {reported}; the namespace's counter \
             changed by {total} ({summary})"
        );

        // /metrics during the burst: nginx's listener overflowed (and its peak above its
        // backlog) in a scrape; that scrape passes promtool.
        let first_overflow = scrapes.iter().find(|(_, body)| {
            metric_value(body, "sockq_listener_accept_queue_overflowed", &me) == Some(1.0)
        });
        let Some((at, body)) = first_overflow else {
            let seen: Vec<String> = scrapes
                .iter()
                .map(|(at, b)| {
                    format!(
                        "+{:.1}s overflowed {:?} peak {:?} depth {:?} ListenOverflows {:?}",
                        at.duration_since(burst_start).as_secs_f64(),
                        metric_value(b, "sockq_listener_accept_queue_overflowed", &me),
                        metric_value(b, "sockq_listener_accept_queue_depth_peak", &me),
                        metric_value(b, "sockq_listener_accept_queue_depth", &me),
                        metric_value(b, "sockq_tcpext_listen_overflows_total", &[]),
                    )
                })
                .collect();
            panic!(
                "no scrape showed sockq_listener_accept_queue_overflowed{{port=\"{port}\"}} 1 \
                 ({summary}):\n{}",
                seen.join("\n")
            );
        };
        let peak = metric_value(body, "sockq_listener_accept_queue_depth_peak", &me);
        assert!(
            peak.is_some_and(|p| p > f64::from(SOMAXCONN)),
            "scrape at +{:.1}s: overflowed 1 but peak {peak:?} (backlog {SOMAXCONN})",
            at.duration_since(burst_start).as_secs_f64()
        );
        assert!(
            metric_value(body, "sockq_tcpext_listen_overflows_total", &[]).is_some_and(|v| v > 0.0),
            "a scrape with an overflow shows no ListenOverflows:\n{body}"
        );
        common::promtool::check_metrics(body)?;

        // The dashboard, while the clients were connected or just after: CRIT on a line
        // naming nginx's endpoint.
        let crit = screens.iter().find(|(_, s)| {
            s.lines()
                .any(|l| l.contains("CRIT") && l.contains(&endpoint))
        });
        assert!(
            crit.is_some(),
            "no screen showed CRIT for {endpoint} ({summary}); the last one:\n{}",
            screens.last().map_or("", |(_, s)| s.as_str())
        );
        if let Some((at, s)) = crit {
            eprintln!(
                "dashboard at +{:.1}s:\n{s}",
                at.duration_since(burst_start).as_secs_f64()
            );
        }
        Ok(())
    });
}
