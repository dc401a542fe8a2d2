//! Acceptance of the workshop lab (issue "Workshop lab"): the real `sockq lab <scenario>` binary,
//! headless (`--headless`: one JSON line per tick, `{"tick": <Tick>, "lab": <LabStatus>}`) and
//! interactive (in tmux). Each scenario must produce its kernel effect on the demo listener
//! 10.88.0.1:8080 — read from the numbers the kernel reports (`tick.snapshot.tcp_listeners`,
//! `tick.listeners`, `tick.snapshot.counters.tcp_ext`) and from what the lab's clients felt
//! (`lab.clients`) — and every way out of the lab (end of the script, Ctrl-C, `q`, SIGKILL) must
//! leave nothing behind: no demo server, no process in the lab's network namespace, no tun
//! device, and the host's sysctls as they were.
//!
//! The lab makes its own network namespace, a tun device and raw sockets: these tests need root.
//! Without it they fail under CI (CI=true) and say loudly that they were skipped elsewhere.
//! Tests run in parallel; each lab has its own namespace, so they do not disturb each other.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and tools may panic on failure

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::*;

/// The demo service's address and port in the lab namespace.
const ENDPOINT: &str = "10.88.0.1:8080";
const PORT: u64 = 8080;
/// Everything the lab made must be gone this long after it ended.
const CLEANUP: Duration = Duration::from_secs(3);
/// Time for the debug binary to start and print its first tick on a loaded 2-core machine.
const STARTUP: Duration = Duration::from_secs(10);
/// Host sysctls the lab changes in its own namespace and must never change on the host.
const HOST_SYSCTLS: [&str; 4] = [
    "net/core/somaxconn",
    "net/ipv4/tcp_syncookies",
    "net/ipv4/tcp_abort_on_overflow",
    "net/ipv4/tcp_synack_retries",
];

// ---------------------------------------------------------------------------------------------
// Privilege, host state, processes
// ---------------------------------------------------------------------------------------------

/// True when the test can run (root). Otherwise fails under CI and skips loudly elsewhere.
fn can_run(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        // Taken before the first lab of this test binary starts (every test calls this first).
        let _ = host_baseline();
        return true;
    }
    let msg = format!(
        "lab test `{test}` needs root: the lab makes a network namespace, a tun device and raw sockets"
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("\n*** SKIPPED: {msg} ***\n");
    false
}

/// The host's (this test's) network-namespace sysctls the lab must leave alone.
fn host_sysctls() -> Vec<(&'static str, String)> {
    HOST_SYSCTLS
        .iter()
        .map(|p| {
            let v = std::fs::read_to_string(format!("/proc/sys/{p}"))
                .unwrap_or_else(|e| panic!("reading /proc/sys/{p}: {e}"));
            (*p, v.trim().to_string())
        })
        .collect()
}

/// The host's sysctls before any lab of this test binary ran, and whether `sink0` existed.
fn host_baseline() -> &'static (Vec<(&'static str, String)>, bool) {
    static BASELINE: OnceLock<(Vec<(&'static str, String)>, bool)> = OnceLock::new();
    BASELINE.get_or_init(|| (host_sysctls(), host_has_sink()))
}

/// True when a link named `sink0` exists in this test's (the host's) network namespace.
fn host_has_sink() -> bool {
    Command::new("ip")
        .args(["link", "show", "sink0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("running `ip link show sink0` (iproute2 is needed)")
        .success()
}

/// This test's network namespace inode (the host's).
fn host_netns() -> u64 {
    netns_of("/proc/thread-self/ns/net").expect("reading /proc/thread-self/ns/net")
}

/// The inode of a `net:[INODE]` namespace link.
fn netns_of(link: &str) -> Option<u64> {
    let target = std::fs::read_link(link).ok()?;
    target
        .to_str()?
        .strip_prefix("net:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The fields of /proc/PID/stat this file needs.
#[derive(Debug, Clone, PartialEq)]
struct ProcStat {
    state: char,
    ppid: u32,
    /// Start time, clock ticks after boot.
    start: u64,
}

fn proc_stat(path: &str) -> Option<ProcStat> {
    let s = std::fs::read_to_string(path).ok()?;
    let rest = s.get(s.rfind(')')? + 1..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(ProcStat {
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        start: f.get(19)?.parse().ok()?,
    })
}

fn pid_stat(pid: u32) -> Option<ProcStat> {
    proc_stat(&format!("/proc/{pid}/stat"))
}

/// Now, in the unit of a process's start time (clock ticks after boot): the start time of a
/// thread made for the purpose.
fn boot_ticks_now() -> u64 {
    std::thread::spawn(|| proc_stat("/proc/thread-self/stat").map(|s| s.start))
        .join()
        .expect("thread")
        .expect("reading /proc/thread-self/stat")
}

fn describe_pid(pid: u32) -> String {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default();
    let st = pid_stat(pid);
    let zombie_of_us = st
        .as_ref()
        .is_some_and(|s| s.state == 'Z' && s.ppid == std::process::id());
    format!(
        "pid {pid} comm {:?} cmdline {:?} stat {st:?}{}",
        comm.trim(),
        cmdline.trim(),
        if zombie_of_us {
            " (a zombie child of this test)"
        } else {
            ""
        }
    )
}

/// What identifies one lab run, for the leftover checks.
#[derive(Debug, Clone)]
struct LabIds {
    lab_pid: u32,
    lab_start: u64,
    server_pid: u32,
    server_start: u64,
    /// The lab's private network namespace.
    netns: u64,
    /// When the lab was seen set up (server running, namespace configured), in boot ticks.
    /// Every process the lab makes exists by then, so a process started later cannot be one
    /// of its leftovers: it is in a namespace that reuses the freed inode number.
    setup_seen: u64,
}

impl LabIds {
    fn new(lab_pid: u32, server_pid: u32, netns: u64) -> Self {
        let lab_start = pid_stat(lab_pid)
            .unwrap_or_else(|| panic!("lab pid {lab_pid} not found in /proc"))
            .start;
        let server = pid_stat(server_pid)
            .unwrap_or_else(|| panic!("lab server pid {server_pid} not found in /proc"));
        assert_eq!(
            server.ppid, lab_pid,
            "the demo server {server_pid} must be the lab's child"
        );
        assert_ne!(
            netns,
            host_netns(),
            "the lab must run in its own network namespace, not the test's"
        );
        assert_eq!(
            netns_of(&format!("/proc/{lab_pid}/ns/net")),
            Some(netns),
            "the JSON's netns inode is the lab process's namespace"
        );
        assert_eq!(
            netns_of(&format!("/proc/{server_pid}/ns/net")),
            Some(netns),
            "the demo server lives in the lab's namespace"
        );
        LabIds {
            lab_pid,
            lab_start,
            server_pid,
            server_start: server.start,
            netns,
            setup_seen: boot_ticks_now(),
        }
    }
}

/// What the lab `ids` left behind, now (empty: nothing).
fn leftovers(ids: &LabIds) -> Vec<String> {
    let mut found = Vec::new();
    for (what, pid, start) in [
        ("the lab process", ids.lab_pid, ids.lab_start),
        ("the demo server", ids.server_pid, ids.server_start),
    ] {
        // Same pid and start time: the same process (not a reused pid).
        if pid_stat(pid).is_some_and(|s| s.start == start) {
            found.push(format!("{what} still exists: {}", describe_pid(pid)));
        }
    }
    let want = format!("net:[{}]", ids.netns);
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return vec!["cannot read /proc".into()];
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(tasks) = std::fs::read_dir(p.path().join("task")) else {
            continue;
        };
        // The threads in the lab's namespace that were there before the lab was set up (or
        // whose start is unreadable). One started since is in another namespace that got the
        // freed inode: a later process, or a thread another test made for its own private
        // namespace (as `in_netns` does) in a process older than the lab.
        let old_in_lab_ns = tasks.flatten().any(|t| {
            let in_lab = std::fs::read_link(t.path().join("ns/net"))
                .is_ok_and(|l| l.to_str() == Some(want.as_str()));
            let started = proc_stat(&t.path().join("stat").to_string_lossy()).map(|s| s.start);
            in_lab && started.is_none_or(|start| start <= ids.setup_seen)
        });
        if old_in_lab_ns {
            found.push(format!(
                "a process is still in the lab's namespace {want}: {}",
                describe_pid(pid)
            ));
        }
    }
    found
}

/// Asserts, within [`CLEANUP`], that the lab left nothing behind, and that the host's sysctls
/// and links are as before any lab ran.
fn assert_nothing_left(ids: &LabIds, how: &str) {
    let start = Instant::now();
    let deadline = start + CLEANUP;
    loop {
        let left = leftovers(ids);
        if left.is_empty() {
            eprintln!("{how}: nothing left after {:?}", start.elapsed());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{how}: {CLEANUP:?} after the lab ended, it left behind:\n{}",
            left.join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (sysctls, had_sink) = host_baseline();
    assert!(
        !had_sink,
        "a link named sink0 existed in the host namespace before any lab ran: cannot tell a leak"
    );
    assert!(
        !host_has_sink(),
        "{how}: the tun device sink0 is visible in the host namespace (`ip link show sink0` succeeds)"
    );
    assert_eq!(
        &host_sysctls(),
        sysctls,
        "{how}: the host's sysctls changed"
    );
}

// ---------------------------------------------------------------------------------------------
// Headless runs
// ---------------------------------------------------------------------------------------------

/// A running `sockq lab … --headless`.
struct Headless {
    child: Child,
    lines: Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
    cmd: String,
}

impl Headless {
    fn start(args: &[&str]) -> Self {
        let mut all = vec!["lab"];
        all.extend_from_slice(args);
        all.push("--headless");
        let cmd = format!("sockq {}", all.join(" "));
        let mut child = sockq_command(&all)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting `{cmd}`: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let mut stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Some(std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        }));
        Headless {
            child,
            lines,
            stderr,
            cmd,
        }
    }

    /// The next JSON line; `None` at the end of the output. Fails after `timeout`.
    fn next(&mut self, timeout: Duration) -> Option<Value> {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => Some(serde_json::from_str(&line).unwrap_or_else(|e| {
                panic!("`{}` printed a non-JSON line ({e}): {line}", self.cmd)
            })),
            Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let stderr = self.stderr_text();
                panic!(
                    "`{}`: no line for {timeout:?} (killed); stderr: {stderr}",
                    self.cmd
                );
            }
        }
    }

    /// The identifiers of this run, from its first line.
    fn ids(&self, first: &Value) -> LabIds {
        LabIds::new(
            self.child.id(),
            num(first, "/lab/server_pid") as u32,
            num(first, "/tick/snapshot/netns/inode"),
        )
    }

    fn stderr_text(&mut self) -> String {
        self.stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }

    /// Waits for the process to exit; fails after `timeout`.
    fn wait(&mut self, timeout: Duration) -> ExitStatus {
        match wait_with_timeout(&mut self.child, timeout) {
            Ok(s) => s,
            Err(e) => {
                let stderr = self.stderr_text();
                panic!("`{}`: {e:#}; stderr: {stderr}", self.cmd)
            }
        }
    }
}

impl Drop for Headless {
    /// A failed test must not leave its lab running.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One complete headless run.
struct Run {
    lines: Vec<Value>,
    cmd: String,
}

/// Runs `sockq lab ARGS --headless` to its end (its `--duration` or script), checks that it
/// exited successfully and left nothing behind, and returns its JSON lines.
fn run_lab(args: &[&str]) -> Run {
    run_lab_with(args, |_| ()).0
}

/// [`run_lab`], calling `beside(lab pid)` as soon as each line arrives (to read the lab's
/// namespace with another tool at the same moment); returns its results, one per line.
fn run_lab_with<T>(args: &[&str], mut beside: impl FnMut(u32) -> T) -> (Run, Vec<T>) {
    let before = host_sysctls();
    let mut lab = Headless::start(args);
    let mut lines = Vec::new();
    let mut seen = Vec::new();
    let Some(first) = lab.next(STARTUP) else {
        let stderr = lab.stderr_text();
        panic!("`{}` printed nothing; stderr: {stderr}", lab.cmd);
    };
    seen.push(beside(lab.child.id()));
    let ids = lab.ids(&first);
    lines.push(first);
    // A tick a second; a late one is a slow machine, no line for 5 s is a hang.
    while let Some(line) = lab.next(Duration::from_secs(30)) {
        seen.push(beside(lab.child.id()));
        lines.push(line);
    }
    let status = lab.wait(CLEANUP);
    let stderr = lab.stderr_text();
    assert!(
        status.success(),
        "`{}` exited with {status}; stderr: {stderr}",
        lab.cmd
    );
    assert_nothing_left(&ids, &format!("after `{}` ended on its own", lab.cmd));
    assert_eq!(
        before,
        host_sysctls(),
        "the host's sysctls changed during `{}`",
        lab.cmd
    );
    eprintln!("`{}`: {} ticks\n{}", lab.cmd, lines.len(), evidence(&lines));
    (
        Run {
            lines,
            cmd: lab.cmd.clone(),
        },
        seen,
    )
}

// ---------------------------------------------------------------------------------------------
// Reading the JSON lines
// ---------------------------------------------------------------------------------------------

fn num(v: &Value, ptr: &str) -> u64 {
    v.pointer(ptr)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no unsigned number at {ptr} in {}", short(v)))
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    s.chars().take(600).collect()
}

/// The demo listener in the tick's snapshot.
fn listener(line: &Value) -> &Value {
    line.pointer("/tick/snapshot/tcp_listeners")
        .and_then(Value::as_array)
        .and_then(|a| {
            a.iter()
                .find(|l| l["port"].as_u64() == Some(PORT) && l["address"] == "10.88.0.1")
        })
        .unwrap_or_else(|| panic!("no listener {ENDPOINT} in tick {}", seq(line)))
}

/// The demo listener's row in the tick's model (depth peaks, drop rate).
fn listener_model(line: &Value) -> &Value {
    line.pointer("/tick/listeners")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find(|l| l["endpoint"] == ENDPOINT))
        .unwrap_or_else(|| panic!("no model row for {ENDPOINT} in tick {}", seq(line)))
}

fn seq(line: &Value) -> u64 {
    line.pointer("/tick/seq")
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

fn step(line: &Value) -> u64 {
    num(line, "/lab/step")
}

fn depth(line: &Value) -> u64 {
    num(listener(line), "/accept_queue")
}

fn backlog(line: &Value) -> u64 {
    num(listener(line), "/backlog")
}

fn depth_high(line: &Value) -> u64 {
    num(listener_model(line), "/depth_high")
}

/// The listener's own drop counter (sk_drops, cumulative).
fn drops(line: &Value) -> u64 {
    num(listener(line), "/drops")
}

fn syn_recv(line: &Value) -> u64 {
    num(listener(line), "/syn_recv")
}

/// A TcpExt counter of the lab namespace (cumulative).
fn counter(line: &Value, name: &str) -> u64 {
    num(line, &format!("/tick/snapshot/counters/tcp_ext/{name}"))
}

fn clients(line: &Value, field: &str) -> u64 {
    num(line, &format!("/lab/clients/{field}"))
}

/// The demo server among the listener's owners: (fds_open, fd_limit).
fn server_fds(line: &Value) -> (Option<u64>, Option<u64>) {
    let pid = num(line, "/lab/server_pid");
    let p = listener(line)
        .pointer("/owners/processes")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find(|p| p["pid"].as_u64() == Some(pid)))
        .unwrap_or_else(|| {
            panic!(
                "tick {}: the demo server {pid} is not among the listener's owners: {}",
                seq(line),
                short(&listener(line)["owners"])
            )
        });
    (p["fds_open"].as_u64(), p["fd_limit"].as_u64())
}

fn rules(line: &Value) -> BTreeSet<String> {
    line.pointer("/tick/findings")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f["rule"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// One line per tick with the numbers these tests look at, for failure messages and the log.
fn evidence(lines: &[Value]) -> String {
    let mut out = String::new();
    for l in lines {
        let lst = listener(l);
        let c = |f: &str| clients(l, f);
        out.push_str(&format!(
            "  seq {:>2} step {} | queue {}/{} high {} drops {} syn-recv {} fds {:?} | \
             LO {} LD {} ReqQFullDrop {} CookiesSent {} EmbryonicRsts {} | \
             clients tried {} ok {} timed-out {} reset {} in-flight {} p99 {:?} | {:?}\n",
            seq(l),
            step(l),
            lst["accept_queue"],
            lst["backlog"],
            listener_model(l)["depth_high"],
            lst["drops"],
            lst["syn_recv"],
            server_fds(l),
            counter(l, "ListenOverflows"),
            counter(l, "ListenDrops"),
            counter(l, "TCPReqQFullDrop"),
            counter(l, "SyncookiesSent"),
            counter(l, "EmbryonicRsts"),
            c("attempted"),
            c("succeeded"),
            c("timed_out"),
            c("reset"),
            c("in_flight"),
            l.pointer("/lab/clients/connect_ms_p99")
                .and_then(Value::as_f64),
            rules(l),
        ));
    }
    out
}

impl Run {
    fn last(&self) -> &Value {
        self.lines.last().expect("at least one tick")
    }

    /// Fails with the per-tick evidence unless `ok`.
    fn check(&self, ok: bool, what: &str) {
        assert!(
            ok,
            "`{}`: {what}\nticks:\n{}",
            self.cmd,
            evidence(&self.lines)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

/// Arrivals (100/s) above capacity (2 workers / 100 ms = 20/s): the accept queue fills to
/// backlog+1 = 9 and the kernel drops connections to the listener.
#[test]
fn slow_consumer_over_capacity_fills_the_accept_queue_and_drops() {
    if !can_run("slow_consumer_over_capacity_fills_the_accept_queue_and_drops") {
        return;
    }
    let run = run_lab(&[
        "slow-consumer",
        "--no-steps",
        "--rate",
        "100",
        "--workers",
        "2",
        "--service-ms",
        "100",
        "--backlog",
        "8",
        "--duration",
        "6s",
    ]);
    let last = run.last();
    run.check(
        run.lines.iter().all(|l| backlog(l) == 8 && step(l) == 0),
        "backlog 8 and step 0 (--no-steps) on every tick",
    );
    run.check(
        last.pointer("/lab/capacity_per_s").and_then(Value::as_f64) == Some(20.0),
        "capacity = 2 workers / 100 ms = 20/s",
    );
    // Not asserted: depth <= backlog+1. The kernel checks "full" without a lock, so two
    // handshakes completing at once on two CPUs can both get in (10/8 was observed here).
    run.check(
        run.lines.iter().any(|l| depth_high(l) >= 9 && drops(l) > 0),
        "a tick with the queue at backlog+1 (depth_high >= 9) and listener drops > 0",
    );
    run.check(
        counter(last, "ListenOverflows") > 0,
        "ListenOverflows > 0 at the end",
    );
    run.check(
        run.lines
            .iter()
            .any(|l| rules(l).contains("accept_queue_full")),
        "an accept_queue_full finding",
    );
    // The clients feel it: a dropped SYN is retransmitted after 1 s, or the attempt times out.
    let p99 = last
        .pointer("/lab/clients/connect_ms_p99")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    run.check(
        clients(last, "timed_out") > 0 || p99 >= 1000.0,
        "clients time out or wait for a SYN retransmission (p99 connect >= 1 s)",
    );
}

/// Arrivals (10/s) below capacity (4 workers / 20 ms = 200/s): no drops, no full queue,
/// every client served.
#[test]
fn slow_consumer_under_capacity_never_drops() {
    if !can_run("slow_consumer_under_capacity_never_drops") {
        return;
    }
    let run = run_lab(&[
        "slow-consumer",
        "--no-steps",
        "--rate",
        "10",
        "--workers",
        "4",
        "--service-ms",
        "20",
        "--backlog",
        "8",
        "--duration",
        "5s",
    ]);
    let last = run.last();
    for l in &run.lines {
        run.check(
            backlog(l) == 8 && drops(l) == 0 && depth(l) <= 8 && depth_high(l) <= 8,
            &format!("tick {}: backlog 8, never full, no drops", seq(l)),
        );
        run.check(
            counter(l, "ListenOverflows") == 0 && counter(l, "ListenDrops") == 0,
            &format!("tick {}: ListenOverflows = ListenDrops = 0", seq(l)),
        );
        run.check(
            !rules(l).contains("accept_queue_full"),
            &format!("tick {}: no accept_queue_full finding", seq(l)),
        );
    }
    run.check(
        clients(last, "succeeded") >= 25,
        "clients succeed (>= 25 in 5 s at 10/s)",
    );
    for f in ["timed_out", "reset", "refused", "failed", "skipped"] {
        run.check(clients(last, f) == 0, &format!("no client {f}"));
    }
    run.check(
        clients(last, "succeeded") + clients(last, "in_flight") == clients(last, "attempted"),
        "every attempt succeeded or is under way",
    );
}

/// listen(511) in a namespace with somaxconn 128 gets backlog 128; a burst of 200 overflows it.
/// After somaxconn 4096 and listen() again the backlog is 511 and the same burst drops nothing.
#[test]
fn somaxconn_trap_caps_the_backlog_until_listen_again() {
    if !can_run("somaxconn_trap_caps_the_backlog_until_listen_again") {
        return;
    }
    let run = run_lab(&["somaxconn-trap"]);
    let at = |s: u64| -> Vec<&Value> { run.lines.iter().filter(|l| step(l) == s).collect() };
    for s in 0..4 {
        run.check(!at(s).is_empty(), &format!("ticks during step {s}"));
    }
    // Steps 0 and 1: listen(511) capped to somaxconn 128. (The status is taken after the
    // sample, so a tick reporting step <= 1 was sampled before the step-2 listen() again.)
    for l in run.lines.iter().filter(|l| step(l) <= 1) {
        run.check(
            backlog(l) == 128
                && num(l, "/tick/snapshot/tunables/net.core.somaxconn") == 128
                && num(l, "/lab/knobs/backlog") == 511,
            &format!(
                "tick {}: listen(511) gives backlog 128 at somaxconn 128",
                seq(l)
            ),
        );
    }
    let first_burst = at(1);
    run.check(
        first_burst.iter().map(|l| depth_high(l)).max() >= Some(129),
        "the first burst fills the queue to backlog+1 = 129",
    );
    let before_second = *at(2).last().expect("step 2");
    let drops_before = drops(before_second);
    run.check(
        drops_before > 0 && counter(before_second, "ListenOverflows") > 0,
        "the first burst made the listener drop (drops > 0, ListenOverflows > 0)",
    );
    // Step 3 (and the last step-2 tick): somaxconn 4096, listen(511) again → backlog 511.
    for l in std::iter::once(before_second).chain(at(3)) {
        run.check(
            backlog(l) == 511,
            &format!("tick {}: backlog 511 after listen() again", seq(l)),
        );
    }
    for l in at(3) {
        run.check(
            num(l, "/tick/snapshot/tunables/net.core.somaxconn") == 4096,
            &format!("tick {}: somaxconn 4096", seq(l)),
        );
    }
    let last = run.last();
    run.check(step(last) == 3, "the script ends in step 3");
    run.check(
        at(3).iter().map(|l| depth_high(l)).max().unwrap_or(0) >= 150,
        "the second burst queues far more than the old 129 (>= 150 of 200)",
    );
    run.check(
        drops(last) == drops_before
            && counter(last, "ListenOverflows") == counter(before_second, "ListenOverflows"),
        "no new drops during the second burst (listener drops and ListenOverflows unchanged)",
    );
    run.check(
        clients(last, "attempted") == 400
            && clients(last, "timed_out") == clients(before_second, "timed_out"),
        "400 attempts in two bursts; none of the second burst timed out",
    );
}

/// Spoofed SYNs with tcp_syncookies 0: the SYN queue holds backlog+1 = 65 requests, further
/// SYNs are dropped (TCPReqQFullDrop), legitimate clients too.
#[test]
fn syn_flood_without_cookies_fills_the_syn_queue_and_drops() {
    if !can_run("syn_flood_without_cookies_fills_the_syn_queue_and_drops") {
        return;
    }
    let run = run_lab(&["syn-flood", "--syncookies", "0", "--duration", "5s"]);
    let last = run.last();
    run.check(
        run.lines.iter().all(|l| backlog(l) == 64),
        "backlog 64 on every tick",
    );
    run.check(
        run.lines.iter().map(syn_recv).max() == Some(65),
        "SYN-RECV on the listener reaches backlog+1 = 65 and never more",
    );
    run.check(
        counter(last, "TCPReqQFullDrop") > 0 && drops(last) > 0,
        "TCPReqQFullDrop > 0 and listener drops > 0",
    );
    run.check(
        run.lines
            .iter()
            .all(|l| counter(l, "SyncookiesSent") == 0 && counter(l, "TCPReqQFullDoCookies") == 0),
        "no cookies with tcp_syncookies 0",
    );
    run.check(
        clients(last, "timed_out") > 0,
        "legitimate clients time out too",
    );
}

/// tcp_syncookies 2: no request is kept (SYN-RECV 0), every SYN gets a cookie, and legitimate
/// clients get through the flood.
#[test]
fn syn_flood_with_cookies_always_keeps_no_requests_and_serves_clients() {
    if !can_run("syn_flood_with_cookies_always_keeps_no_requests_and_serves_clients") {
        return;
    }
    let run = run_lab(&["syn-flood", "--syncookies", "2", "--duration", "5s"]);
    let last = run.last();
    run.check(
        run.lines.iter().all(|l| syn_recv(l) == 0),
        "SYN-RECV 0 on every tick",
    );
    run.check(counter(last, "SyncookiesSent") > 0, "SyncookiesSent > 0");
    run.check(
        counter(last, "TCPReqQFullDrop") == 0 && drops(last) == 0,
        "nothing dropped",
    );
    run.check(clients(last, "succeeded") > 0, "legitimate clients succeed");
    for f in ["timed_out", "reset", "refused", "failed"] {
        run.check(clients(last, f) == 0, &format!("no client {f}"));
    }
}

/// A server that leaks an fd per connection with RLIMIT_NOFILE 64: its fds reach the limit,
/// accept() fails with EMFILE, the accept queue fills to backlog+1 = 17 and the kernel drops.
#[test]
fn fd_exhaustion_fills_the_queue_at_the_fd_limit() {
    if !can_run("fd_exhaustion_fills_the_queue_at_the_fd_limit") {
        return;
    }
    let run = run_lab(&["fd-exhaustion", "--duration", "8s"]);
    let last = run.last();
    run.check(
        run.lines
            .iter()
            .all(|l| server_fds(l).1 == Some(64) && backlog(l) == 16),
        "the demo server's fd limit is 64 and the backlog 16 on every tick",
    );
    let max_fds = run
        .lines
        .iter()
        .filter_map(|l| server_fds(l).0)
        .max()
        .unwrap_or(0);
    eprintln!("fd-exhaustion: the demo server's fds_open peaked at {max_fds} (fd_limit 64)");
    run.check(
        max_fds >= 63,
        "the server's fds_open reaches its fd_limit 64 (>= 63)",
    );
    run.check(
        run.lines.iter().any(|l| depth(l) >= 17),
        "the accept queue is full: 17/16",
    );
    run.check(drops(last) > 0, "listener drops > 0");
    // Cause before effect: the first drop comes when the fds are at the limit.
    let first_drop = run
        .lines
        .iter()
        .find(|l| drops(l) > 0)
        .expect("a tick with drops");
    run.check(
        server_fds(first_drop).0.unwrap_or(0) >= 63,
        "at the first drop the server is at its fd limit",
    );
}

/// tcp_abort_on_overflow 1: the final ACK meeting a full accept queue is answered with a RST.
#[test]
fn abort_on_overflow_1_resets_clients() {
    if !can_run("abort_on_overflow_1_resets_clients") {
        return;
    }
    let run = run_lab(&[
        "abort-on-overflow",
        "--abort-on-overflow",
        "1",
        "--duration",
        "6s",
    ]);
    let last = run.last();
    run.check(clients(last, "reset") > 0, "clients reset");
    run.check(
        clients(last, "timed_out") == 0,
        "no client timed out (the RST comes at once)",
    );
    run.check(counter(last, "EmbryonicRsts") > 0, "EmbryonicRsts > 0");
    run.check(
        counter(last, "ListenOverflows") > 0,
        "ListenOverflows > 0 (the final ACK met a full queue)",
    );
}

/// tcp_abort_on_overflow 0: the final ACK is dropped silently; the client believes it is
/// connected and times out waiting for the answer. No RST.
#[test]
fn abort_on_overflow_0_drops_silently() {
    if !can_run("abort_on_overflow_0_drops_silently") {
        return;
    }
    let run = run_lab(&[
        "abort-on-overflow",
        "--abort-on-overflow",
        "0",
        "--duration",
        "6s",
    ]);
    let last = run.last();
    run.check(clients(last, "reset") == 0, "no client reset");
    run.check(clients(last, "timed_out") > 0, "clients time out");
    run.check(
        run.lines.iter().all(|l| counter(l, "EmbryonicRsts") == 0),
        "EmbryonicRsts 0 on every tick",
    );
    run.check(
        counter(last, "ListenOverflows") > 0,
        "ListenOverflows > 0 (the final ACK met a full queue)",
    );
}

// ---------------------------------------------------------------------------------------------
// After accept(): the service scenarios, each compared with `ss` in the lab's namespace
// ---------------------------------------------------------------------------------------------

/// One connection of the demo listener's port as `ss -tanHe` shows it.
#[derive(Debug, Clone)]
struct SsConn {
    state: String,
    recv_q: u64,
    send_q: u64,
    /// 0: no file yet (still in the accept queue), or a TIME-WAIT socket.
    ino: u64,
}

/// The non-LISTEN sockets on local port 8080 of the lab's namespace (lab pid `pid`), read
/// with `ss` through nsenter; `None` when the lab is already gone.
fn ss_lab(pid: u32) -> Option<Vec<SsConn>> {
    let out = Command::new("nsenter")
        .arg(format!("--net=/proc/{pid}/ns/net"))
        .args(["ss", "-tanHe", "sport", "=", ":8080"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    Some(
        text.lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let state = f.first()?.to_string();
                (state != "LISTEN").then(|| SsConn {
                    state,
                    recv_q: f.get(1).and_then(|v| v.parse().ok()).unwrap_or(0),
                    send_q: f.get(2).and_then(|v| v.parse().ok()).unwrap_or(0),
                    ino: f
                        .iter()
                        .find_map(|w| w.strip_prefix("ino:"))
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0),
                })
            })
            .collect(),
    )
}

/// The service numbers `ss` gives, by the definitions in docs/metrics.md ("After accept()").
#[derive(Debug, Clone, PartialEq, Default)]
struct SsService {
    waiting: u64,
    in_service: u64,
    unread_conns: u64,
    unread_bytes: u64,
    unsent_conns: u64,
    unsent_bytes: u64,
    close_wait: u64,
    close_wait_unaccepted: u64,
}

impl SsService {
    fn of(conns: &[SsConn]) -> Self {
        let mut s = SsService::default();
        for c in conns {
            let estab = c.state == "ESTAB";
            let close_wait = c.state == "CLOSE-WAIT";
            s.waiting += u64::from(estab && c.ino == 0);
            s.in_service += u64::from(estab && c.ino != 0);
            s.close_wait += u64::from(close_wait);
            s.close_wait_unaccepted += u64::from(close_wait && c.ino == 0);
            // The peer's FIN counts 1 in a CLOSE-WAIT Recv-Q, the own FIN 1 in FIN-WAIT-1's
            // Send-Q: neither is data.
            let unread = c.recv_q.saturating_sub(u64::from(close_wait));
            if (estab || close_wait) && c.ino != 0 && unread > 0 {
                s.unread_conns += 1;
                s.unread_bytes += unread;
            }
            let unsent = c.send_q.saturating_sub(u64::from(c.state == "FIN-WAIT-1"));
            if c.state != "TIME-WAIT" && unsent > 0 {
                s.unsent_conns += 1;
                s.unsent_bytes += unsent;
            }
        }
        s
    }
}

/// The demo listener's service numbers in a tick.
fn service(line: &Value) -> &Value {
    listener(line)
        .get("service")
        .filter(|v| !v.is_null())
        .unwrap_or_else(|| panic!("tick {}: no service numbers", seq(line)))
}

fn svc(line: &Value, field: &str) -> u64 {
    num(service(line), &format!("/{field}"))
}

/// The finding `rule` about the demo listener in a tick.
fn finding<'a>(line: &'a Value, rule: &str) -> Option<&'a Value> {
    line.pointer("/tick/findings")
        .and_then(Value::as_array)?
        .iter()
        .find(|f| f["rule"] == rule && f["listener"] == ENDPOINT)
}

fn evidence_of(f: &Value, name: &str) -> f64 {
    f.pointer(&format!("/evidence/{name}"))
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no evidence {name} in {f}"))
}

/// The lines (with what `ss` showed right after each) where `pick(sockq) == pick(ss)`, and a
/// description of every line for the failure message.
fn matching_ss(
    run: &Run,
    seen: &[Option<Vec<SsConn>>],
    what: &str,
    from_line: impl Fn(&Value) -> Vec<u64>,
    from_ss: impl Fn(&SsService) -> Vec<u64>,
    eligible: impl Fn(&Value) -> bool,
) -> (usize, String) {
    let mut matches = 0;
    let mut log = String::new();
    for (l, ss) in run.lines.iter().zip(seen) {
        let Some(ss) = ss.as_deref().map(SsService::of) else {
            continue;
        };
        let (a, b) = (from_line(l), from_ss(&ss));
        let ok = eligible(l) && a == b;
        matches += usize::from(ok);
        log.push_str(&format!(
            "  seq {} step {}: sockq {what} {a:?}, ss {b:?}{}\n",
            seq(l),
            step(l),
            if ok { "  (match)" } else { "" }
        ));
    }
    (matches, log)
}

/// blocked-loop: a 2 s handler on a single-threaded loop leaves accepted requests unread
/// (not_reading fires, naming the server), then connections wait in the accept queue; the
/// unread numbers equal `ss`; when the handler is short again, the finding clears.
#[test]
fn blocked_loop_leaves_requests_unread_then_fills_the_accept_queue() {
    if !can_run("blocked_loop_leaves_requests_unread_then_fills_the_accept_queue") {
        return;
    }
    let (run, seen) = run_lab_with(&["blocked-loop"], ss_lab);
    let pid = num(run.last(), "/lab/server_pid");
    run.check(
        run.lines
            .iter()
            .filter(|l| step(l) == 0)
            .all(|l| finding(l, "not_reading").is_none()),
        "no not_reading while the handler takes 5 ms (step 1)",
    );
    let firing: Vec<&Value> = run
        .lines
        .iter()
        .filter(|l| step(l) == 1 && finding(l, "not_reading").is_some())
        .collect();
    run.check(
        !firing.is_empty(),
        "not_reading fires while the handler blocks",
    );
    for l in &firing {
        let f = finding(l, "not_reading").unwrap();
        let msg = f["message"].as_str().unwrap_or_default();
        run.check(
            msg.contains(&format!("lab-server[{pid}] accepts but does not read")),
            &format!("the finding names the demo server: {msg}"),
        );
        run.check(
            evidence_of(f, "unread_connections") == svc(l, "unread_conns") as f64
                && evidence_of(f, "oldest_unread_s") >= 1.0,
            &format!("its evidence is the tick's numbers: {f}"),
        );
    }
    run.check(
        run.lines
            .iter()
            .any(|l| step(l) == 1 && svc(l, "unread_conns") > 0 && svc(l, "waiting") > 0),
        "then connections wait for accept() too (unread > 0 and waiting > 0 in one tick)",
    );
    let (matches, log) = matching_ss(
        &run,
        &seen,
        "unread connections, bytes",
        |l| vec![svc(l, "unread_conns"), svc(l, "unread_bytes")],
        |s| vec![s.unread_conns, s.unread_bytes],
        |l| finding(l, "not_reading").is_some() && svc(l, "unread_conns") >= 3,
    );
    eprintln!("{log}");
    run.check(
        matches > 0,
        &format!("unread numbers equal ss in a tick where not_reading fires:\n{log}"),
    );
    // Once the handler is short again the server reads each request within milliseconds, but a
    // dump can still catch one that just arrived (a CI run at load saw one in the last tick):
    // the unread connections fall below the most seen while it blocked, not always to zero.
    let most_unread = firing
        .iter()
        .map(|l| svc(l, "unread_conns"))
        .max()
        .unwrap_or(0);
    let last = run.last();
    run.check(
        step(last) == 2
            && finding(last, "not_reading").is_none()
            && svc(last, "unread_conns") < most_unread,
        &format!(
            "not_reading clears once the handler is short again (step 3), and the unread \
             connections fall below the {most_unread} seen while it blocked"
        ),
    );
}

/// slow-response: a thread per connection with 60 s responses at 5/s and 64 fds: in service
/// grows at the arrival rate, fds_at_this_rate fires with the numbers of the tick, and once
/// accept() fails with EMFILE the connections held equal `ss` exactly.
#[test]
fn slow_response_grows_connections_in_service_until_the_fds_run_out() {
    if !can_run("slow_response_grows_connections_in_service_until_the_fds_run_out") {
        return;
    }
    let (run, seen) = run_lab_with(
        &[
            "slow-response",
            "--no-steps",
            "--rate",
            "5",
            "--service-ms",
            "60000",
            "--fd-limit",
            "64",
            "--duration",
            "18s",
        ],
        ss_lab,
    );
    let firing: Vec<&Value> = run
        .lines
        .iter()
        .filter(|l| finding(l, "fds_at_this_rate").is_some())
        .collect();
    run.check(!firing.is_empty(), "fds_at_this_rate fires");
    for l in &firing {
        let f = finding(l, "fds_at_this_rate").unwrap();
        run.check(
            evidence_of(f, "in_service") == svc(l, "in_service") as f64
                && evidence_of(f, "fd_limit") == 64.0
                && evidence_of(f, "growth_per_s") > 0.0,
            &format!("its evidence is the tick's numbers and the fd limit 64: {f}"),
        );
    }
    run.check(
        run.lines.iter().any(|l| svc(l, "in_service") >= 50),
        "connections in service reach the fd limit (>= 50 of 64)",
    );
    // At the fd limit, in service holds still and equals `ss`; waiting keeps growing (5
    // clients/s, none accepted), so `ss`, read just after each tick, may already see more: the
    // tick's count must lie between the `ss` readings after the previous tick and after it.
    let (matches, log) = matching_ss(
        &run,
        &seen,
        "in service",
        |l| vec![svc(l, "in_service")],
        |s| vec![s.in_service],
        |l| svc(l, "in_service") >= 50,
    );
    eprintln!("{log}");
    run.check(
        matches > 0,
        &format!("in service equals ss once the fds ran out:\n{log}"),
    );
    let waiting_ss: Vec<Option<u64>> = seen
        .iter()
        .map(|ss| ss.as_deref().map(|c| SsService::of(c).waiting))
        .collect();
    let bracketed = run
        .lines
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, l)| svc(l, "in_service") >= 50 && svc(l, "waiting") > 0)
        .filter(|&(k, l)| {
            let w = svc(l, "waiting");
            matches!(
                (waiting_ss[k - 1], waiting_ss[k]),
                (Some(before), Some(after)) if before <= w && w <= after
            )
        })
        .count();
    run.check(
        bracketed > 0,
        &format!(
            "waiting lies between the ss readings around a tick once the fds ran out: ss {waiting_ss:?}"
        ),
    );
}

/// close-wait-leak: CLOSE-WAIT grows at the arrival rate and close_wait_growing fires; with
/// the traffic stopped it stays (and equals `ss` exactly); when the server closes, it clears.
#[test]
fn close_wait_leak_grows_stays_without_traffic_and_clears_when_closed() {
    if !can_run("close_wait_leak_grows_stays_without_traffic_and_clears_when_closed") {
        return;
    }
    let (run, seen) = run_lab_with(&["close-wait-leak"], ss_lab);
    let firing: Vec<&Value> = run
        .lines
        .iter()
        .filter(|l| finding(l, "close_wait_growing").is_some())
        .collect();
    run.check(!firing.is_empty(), "close_wait_growing fires");
    for l in &firing {
        let f = finding(l, "close_wait_growing").unwrap();
        let held = svc(l, "close_wait") - svc(l, "close_wait_unaccepted");
        run.check(
            evidence_of(f, "close_wait") == held as f64 && held >= 5,
            &format!("its evidence is the tick's CLOSE-WAIT {held}: {f}"),
        );
    }
    run.check(
        run.lines
            .iter()
            .any(|l| step(l) == 1 && finding(l, "close_wait_growing").is_some()),
        "it still fires with no traffic (step 2): a leak, not load",
    );
    let (matches, log) = matching_ss(
        &run,
        &seen,
        "CLOSE-WAIT",
        |l| vec![svc(l, "close_wait"), svc(l, "close_wait_unaccepted")],
        |s| vec![s.close_wait, s.close_wait_unaccepted],
        |l| step(l) == 1 && svc(l, "close_wait") >= 5,
    );
    eprintln!("{log}");
    run.check(
        matches > 0,
        &format!("CLOSE-WAIT equals ss while the traffic is stopped:\n{log}"),
    );
    let last = run.last();
    run.check(
        step(last) == 2
            && finding(last, "close_wait_growing").is_none()
            && svc(last, "close_wait") == 0,
        "it clears once the server closes its connections (step 3)",
    );
}

/// slow-readers: clients that never read leave the server's answers in Send-Q; slow_readers
/// fires; with no new clients the unsent bytes equal `ss`'s Send-Q sum exactly and the socket
/// memory holds them; when the clients read, it clears.
#[test]
fn slow_readers_hold_send_q_and_memory_until_they_read() {
    if !can_run("slow_readers_hold_send_q_and_memory_until_they_read") {
        return;
    }
    let (run, seen) = run_lab_with(&["slow-readers"], ss_lab);
    let firing: Vec<&Value> = run
        .lines
        .iter()
        .filter(|l| finding(l, "slow_readers").is_some())
        .collect();
    run.check(!firing.is_empty(), "slow_readers fires");
    for l in &firing {
        let f = finding(l, "slow_readers").unwrap();
        run.check(
            evidence_of(f, "unsent_bytes") == svc(l, "unsent_bytes") as f64
                && evidence_of(f, "oldest_unsent_s") >= 5.0,
            &format!("its evidence is the tick's numbers: {f}"),
        );
    }
    let (matches, log) = matching_ss(
        &run,
        &seen,
        "unsent connections, bytes",
        |l| vec![svc(l, "unsent_conns"), svc(l, "unsent_bytes")],
        |s| vec![s.unsent_conns, s.unsent_bytes],
        |l| step(l) == 1 && svc(l, "unsent_bytes") > 0,
    );
    eprintln!("{log}");
    run.check(
        matches > 0,
        &format!("unsent bytes equal ss's Send-Q while no client arrives:\n{log}"),
    );
    run.check(
        run.lines.iter().filter(|l| step(l) == 1).all(|l| {
            service(l)["mem_bytes"]
                .as_u64()
                .is_some_and(|m| m >= svc(l, "unsent_bytes"))
        }),
        "the connections' socket memory holds at least their Send-Q",
    );
    let last = run.last();
    run.check(
        step(last) == 2
            && finding(last, "slow_readers").is_none()
            && svc(last, "unsent_bytes") == 0,
        "it clears once the clients read (step 3)",
    );
}

// ---------------------------------------------------------------------------------------------
// Nothing left behind
// ---------------------------------------------------------------------------------------------

/// Starts a headless syn-flood (the scenario with the most state: tun device, raw socket,
/// flood thread), lets it run two ticks, ends it with `signal`, checks that nothing is left.
fn headless_signal(signal: nix::sys::signal::Signal) {
    let before = host_sysctls();
    let mut lab = Headless::start(&["syn-flood", "--duration", "60s"]);
    let first = lab.next(STARTUP).expect("a first tick");
    let ids = lab.ids(&first);
    let second = lab.next(Duration::from_secs(30)).expect("a second tick");
    assert!(
        syn_recv(&second) > 0,
        "the flood runs: {}",
        evidence(std::slice::from_ref(&second))
    );
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(ids.lab_pid as i32), signal)
        .expect("signalling the lab");
    let status = lab.wait(CLEANUP);
    let how = format!("after {signal} to `{}`", lab.cmd);
    if signal == nix::sys::signal::Signal::SIGINT {
        assert!(
            status.success(),
            "{how}: exit status {status}; stderr: {}",
            lab.stderr_text()
        );
    }
    assert_nothing_left(&ids, &how);
    assert_eq!(before, host_sysctls(), "{how}: the host's sysctls changed");
}

#[test]
fn headless_ctrl_c_leaves_nothing_behind() {
    if !can_run("headless_ctrl_c_leaves_nothing_behind") {
        return;
    }
    headless_signal(nix::sys::signal::Signal::SIGINT);
}

#[test]
fn sigkill_leaves_nothing_behind() {
    if !can_run("sigkill_leaves_nothing_behind") {
        return;
    }
    headless_signal(nix::sys::signal::Signal::SIGKILL);
}

/// A private tmux server (its own `-L` socket) with one 160x45 session; killed on drop. The lab
/// tests panic on a failed tmux command or wait.
struct Tmux(common::tmux::Tmux);

impl Tmux {
    fn start(tag: &str, command: &str) -> Self {
        Tmux(
            common::tmux::Tmux::start(
                format!("sockq-lab-test-{}-{tag}", std::process::id()),
                "lab",
                (160, 45),
                command,
                &[],
            )
            .expect("tmux new-session (the interactive lab tests need tmux)"),
        )
    }

    fn screen(&self) -> String {
        self.0.screen()
    }

    fn keys(&self, keys: &[&str]) {
        self.0.keys(keys).expect("tmux send-keys");
    }

    fn display(&self, format: &str) -> anyhow::Result<String> {
        self.0.display(format)
    }

    fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        self.0
            .wait_for(what, timeout, pred)
            .unwrap_or_else(|e| panic!("{e:#}"))
    }
}

/// The children of `pid` (all its threads').
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// An interactive lab in tmux, run by a shell that reports its exit status afterwards.
struct Session {
    t: Tmux,
    ids: LabIds,
    scenario: String,
    before: Vec<(&'static str, String)>,
}

impl Session {
    /// Starts `sockq lab ARGS` (ARGS[0] is the scenario) and waits for its dashboard.
    fn start(tag: &str, args: &str) -> Self {
        let before = host_sysctls();
        let scenario = args
            .split_whitespace()
            .next()
            .expect("a scenario")
            .to_string();
        let t = Tmux::start(
            tag,
            &format!(
                "{} lab {args}; echo \"lab exited with status $?\"; sleep 60",
                sockq_bin()
            ),
        );
        let title = format!("Lab {scenario}");
        t.wait_for("the lab dashboard", STARTUP, |s| {
            s.contains(&title) && s.contains(ENDPOINT)
        });
        let shell: u32 = t
            .display("#{pane_pid}")
            .expect("pane pid")
            .parse()
            .expect("a pid");
        let lab_pid = *children(shell)
            .iter()
            .find(|p| comm(**p) == "sockq")
            .unwrap_or_else(|| panic!("no sockq child of the pane's shell {shell}"));
        let server_pid = *children(lab_pid)
            .iter()
            .find(|p| comm(**p) == "lab-server")
            .unwrap_or_else(|| panic!("no lab-server child of the lab {lab_pid}"));
        let netns = netns_of(&format!("/proc/{lab_pid}/ns/net")).expect("the lab's netns");
        let ids = LabIds::new(lab_pid, server_pid, netns);
        Session {
            t,
            ids,
            scenario,
            before,
        }
    }

    /// The narration panel's client counts: (tried, ok), from "Clients N tried · K ok".
    fn clients(screen: &str) -> Option<(u64, u64)> {
        screen.match_indices("Clients ").find_map(|(at, _)| {
            let mut words = screen[at + "Clients ".len()..].split_whitespace();
            let tried = words.next()?.parse().ok()?;
            let _ = (words.next()?, words.next()?); // "tried", "·"
            let ok = words.next()?.parse().ok()?;
            Some((tried, ok))
        })
    }

    /// Quits with `quit` (tmux key names) and checks that nothing is left behind and the
    /// terminal is back.
    fn quit(self, quit: &str) {
        self.t.keys(&[quit]);
        let screen = self.t.wait_for("the lab to exit", CLEANUP, |s| {
            s.contains("lab exited with status")
        });
        assert!(
            screen.contains("lab exited with status 0"),
            "after {quit}: the lab's exit status is not 0:\n{screen}"
        );
        assert!(
            !screen.contains("Lab "),
            "after {quit}: the dashboard is still on screen (terminal not restored):\n{screen}"
        );
        assert_nothing_left(
            &self.ids,
            &format!("after {quit} in the interactive {} lab", self.scenario),
        );
        assert_eq!(
            self.before,
            host_sysctls(),
            "interactive {}: the host's sysctls changed",
            self.scenario
        );
    }
}

/// Runs the interactive lab `scenario`, turns the knob `key` and waits for `changed` on
/// screen, then quits with `quit` and checks that nothing is left behind.
fn interactive(tag: &str, scenario: &str, key: &str, changed: &str, quit: &str) {
    let s = Session::start(tag, scenario);
    s.t.keys(&[key]);
    s.t.wait_for(
        &format!("{changed:?} after key {key}"),
        Duration::from_secs(5),
        |screen| screen.contains(changed),
    );
    s.quit(quit);
}

#[test]
fn interactive_ctrl_c_leaves_nothing_behind() {
    if !can_run("interactive_ctrl_c_leaves_nothing_behind") {
        return;
    }
    // W: one more worker (4 → 5).
    interactive("ctrlc", "slow-consumer", "W", "workers 5", "C-c");
}

#[test]
fn interactive_q_leaves_nothing_behind() {
    if !can_run("interactive_q_leaves_nothing_behind") {
        return;
    }
    // c: tcp_syncookies 1 → 2 in the lab namespace (never on the host: checked at the end).
    interactive("q", "syn-flood", "c", "tcp_syncookies 2", "q");
}

// ---------------------------------------------------------------------------------------------
// Interactive knobs that do not do what the narration says (bugs in src/, see the ignore notes)
// ---------------------------------------------------------------------------------------------

/// With tcp_abort_on_overflow 0 every round's deferred clients must time out (as they do
/// headless). In the dashboard only the first round does; later rounds are "answered".
#[test]
fn interactive_abort_on_overflow_0_every_round_overflows() {
    if !can_run("interactive_abort_on_overflow_0_every_round_overflows") {
        return;
    }
    let s = Session::start("abort0", "abort-on-overflow --abort-on-overflow 0");
    // Rounds take ~6 s each when they overflow (2 clients x 2 s read timeout + 1.5 s pause).
    let screen =
        s.t.wait_for("3 rounds (6 clients)", Duration::from_secs(25), |sc| {
            Session::clients(sc).is_some_and(|(tried, _)| tried >= 6)
        });
    let (tried, ok) = Session::clients(&screen).expect("client counts");
    assert_eq!(
        ok, 0,
        "{ok} of {tried} deferred clients were answered although their final ACK should meet a full accept queue:\n{screen}"
    );
    s.quit("q");
}

/// Pressing `n` through the somaxconn-trap script quickly (during the first burst) must still
/// deliver the second burst and leave the server accepting.
#[test]
fn interactive_somaxconn_trap_next_step_during_a_burst() {
    if !can_run("interactive_somaxconn_trap_next_step_during_a_burst") {
        return;
    }
    let s = Session::start("smxfast", "somaxconn-trap");
    s.t.keys(&["n"]); // step 2: the first burst
    std::thread::sleep(Duration::from_millis(2500));
    s.t.keys(&["n"]); // step 3: somaxconn 4096, listen() again
    std::thread::sleep(Duration::from_millis(500));
    s.t.keys(&["n"]); // step 4: the same burst again
    let screen = s.t.wait_for(
        "the second burst (400 tried) served, queue 0/511",
        Duration::from_secs(15),
        |sc| Session::clients(sc).is_some_and(|(tried, _)| tried >= 400) && sc.contains(" 0/511 "),
    );
    assert!(screen.contains("step 4/4"), "{screen}");
    s.quit("q");
}

/// F raises the fd limit "at once": the server must go on and drain its queue.
#[test]
fn interactive_fd_limit_raise_unblocks_the_server() {
    if !can_run("interactive_fd_limit_raise_unblocks_the_server") {
        return;
    }
    let s = Session::start("fdraise", "fd-exhaustion");
    s.t.wait_for("a full queue (17/16)", Duration::from_secs(10), |sc| {
        sc.contains("17/16")
    });
    let ok_before = Session::clients(&s.t.screen()).map_or(0, |(_, ok)| ok);
    s.t.keys(&["F"]);
    s.t.wait_for("fd limit 128", Duration::from_secs(5), |sc| {
        sc.contains("fd limit 128")
    });
    // The raised limit lets the server accept again: the 17 queued clients and new ones are
    // served (the leak then fills the new limit too, so the queue need not stay empty).
    s.t.wait_for(
        "at least 17 more clients served",
        Duration::from_secs(8),
        |sc| Session::clients(sc).is_some_and(|(_, ok)| ok >= ok_before + 17),
    );
    assert!(
        pid_stat(s.ids.server_pid).is_some_and(|st| st.state != 'Z'),
        "the demo server exited after F:\n{}",
        s.t.screen()
    );
    s.quit("q");
}
