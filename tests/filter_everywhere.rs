//! Live end-to-end: `--port` and `--process` select exactly the same listeners in every
//! front-end. For each set of flags, the real binary runs as
//!
//! - `sockq snapshot --json` (`tcp_listeners[]`: address, port),
//! - `sockq watch --json --count 2` (every line: `listeners[].endpoint` and
//!   `snapshot.tcp_listeners[]`),
//! - `sockq serve`, scraped over HTTP (`address`/`port` labels of the `sockq_listener_*` series,
//!   and the `sockq_listeners` count),
//! - the dashboard (plain `sockq`) in tmux, read with `capture-pane` (the rows' ADDRESS column
//!   and the count in the table's title),
//!
//! all at once, in a private network namespace holding two listeners of a python3 child renamed
//! with a long name (its comm is the name cut to 15 bytes) and two of a plain `python3` child
//! (plus, while a case runs, `sockq serve`'s own HTTP listener).
//! What each case must select is written down from who holds which port, never derived from
//! `sockq::model::Filter`; ownership is checked against `ss -ltnp` first. Every disagreement of
//! every case is collected, and the test fails with the list.
//!
//! The listeners stay open for the whole test: a listener that closes while sockq runs (a
//! "gone" row) is not covered here.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and tools may panic on failure

mod common;

use std::collections::BTreeSet;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use common::*;
use serde_json::Value;

/// Generous: a loaded 2-core machine may be slow to start the debug binary or to draw.
const DEADLINE: Duration = Duration::from_secs(20);
/// Display interval of the live front-ends (a short one keeps the test quick).
const INTERVAL: &str = "250ms";
/// The dashboard's terminal: large enough that no row or column is cut.
const TERMINAL: (u16, u16) = (200, 50);

/// A set of `address:port` endpoints, as `ss` and sockq print them.
type Endpoints = BTreeSet<String>;

fn endpoint(ip: IpAddr, port: u16) -> String {
    SocketAddr::new(ip, port).to_string()
}

fn loopback(ports: &[u16]) -> Endpoints {
    ports
        .iter()
        .map(|&p| endpoint(IpAddr::from([127, 0, 0, 1]), p))
        .collect()
}

fn show(set: &Endpoints) -> String {
    if set.is_empty() {
        "{} (none)".to_string()
    } else {
        format!("{{{}}}", set.iter().cloned().collect::<Vec<_>>().join(", "))
    }
}

/// `got` against `expected`, in words, or `None` when they are equal.
fn differs(got: &Endpoints, expected: &Endpoints) -> Option<String> {
    if got == expected {
        return None;
    }
    let missing: Endpoints = expected.difference(got).cloned().collect();
    let extra: Endpoints = got.difference(expected).cloned().collect();
    Some(format!(
        "selects {}, expected {} (missing {}, extra {})",
        show(got),
        show(expected),
        show(&missing),
        show(&extra)
    ))
}

/// /proc/PID/comm (what `--process` matches the name against), trimmed.
fn comm_of(pid: u32) -> anyhow::Result<String> {
    Ok(std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .with_context(|| format!("reading /proc/{pid}/comm"))?
        .trim()
        .to_string())
}

/// A child with its stdout and stderr drained by threads (a full pipe never blocks it).
/// Killed on drop if still running.
struct Proc {
    what: String,
    child: Child,
    out: Arc<Mutex<String>>,
    err: Arc<Mutex<String>>,
    drains: Vec<std::thread::JoinHandle<()>>,
}

impl Proc {
    /// Spawns `cmd` with piped stdout and stderr; stdin is piped too (and kept open) when
    /// `keep_stdin`, else null.
    fn spawn(what: &str, mut cmd: Command, keep_stdin: bool) -> anyhow::Result<Self> {
        let mut child = cmd
            .stdin(if keep_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {what}"))?;
        let mut drains = Vec::new();
        let mut drain = |pipe: Option<Box<dyn Read + Send>>| {
            let buf = Arc::new(Mutex::new(String::new()));
            if let Some(mut pipe) = pipe {
                let buf = buf.clone();
                drains.push(std::thread::spawn(move || {
                    let mut chunk = [0u8; 8192];
                    while let Ok(n) = pipe.read(&mut chunk) {
                        if n == 0 {
                            break;
                        }
                        buf.lock()
                            .unwrap()
                            .push_str(&String::from_utf8_lossy(&chunk[..n]));
                    }
                }));
            }
            buf
        };
        let out = drain(child.stdout.take().map(|p| Box::new(p) as _));
        let err = drain(child.stderr.take().map(|p| Box::new(p) as _));
        Ok(Proc {
            what: what.to_string(),
            child,
            out,
            err,
            drains,
        })
    }

    fn stdout(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    fn stderr(&self) -> String {
        self.err.lock().unwrap().clone()
    }

    /// Polls until `pred` holds on (stdout, stderr); fails when the child exits first or after
    /// `timeout`.
    fn wait_output(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&str, &str) -> bool,
    ) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            if pred(&self.stdout(), &self.stderr()) {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                // Let the drain threads catch up before reporting.
                std::thread::sleep(Duration::from_millis(100));
                if pred(&self.stdout(), &self.stderr()) {
                    return Ok(());
                }
                anyhow::bail!(
                    "{} exited ({status}) before {what}; stdout: {:?}; stderr: {:?}",
                    self.what,
                    self.stdout(),
                    self.stderr()
                );
            }
            if start.elapsed() > timeout {
                anyhow::bail!(
                    "{} did not show {what} within {timeout:?}; stdout: {:?}; stderr: {:?}",
                    self.what,
                    self.stdout(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the exit (killed, and an error, after `timeout`), then for the drained output.
    fn finish(&mut self, timeout: Duration) -> anyhow::Result<(ExitStatus, String, String)> {
        let status = wait_with_timeout(&mut self.child, timeout)
            .with_context(|| format!("{}; stderr: {:?}", self.what, self.stderr()))?;
        // The drain threads see EOF right after the exit; give them a moment on a slow machine
        // (bounded: they are not joined, a pipe a grandchild kept open must not hang the test).
        let start = Instant::now();
        while self.drains.iter().any(|d| !d.is_finished()) && start.elapsed() < DEADLINE {
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok((status, self.stdout(), self.stderr()))
    }

    /// SIGTERM, then waits (SIGKILL after `timeout`).
    fn terminate(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        if self.child.try_wait()?.is_none() {
            let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
        wait_with_timeout(&mut self.child, timeout)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A `python3` child listening on two ports of 127.0.0.1 until its stdin closes (so it also
/// goes when the test process dies) or it is killed (on drop).
struct Python {
    proc: Proc,
    pid: u32,
    ports: [u16; 2],
}

const PYTHON_SCRIPT: &str = "\
import os, socket, sys
if len(sys.argv) > 1:
    # A name longer than 15 bytes: the kernel keeps its first 15 as the comm.
    with open('/proc/self/comm', 'w') as f:
        f.write(sys.argv[1])
held = []
for _ in range(2):
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    s.listen(8)
    held.append(s)
print(os.getpid(), *[s.getsockname()[1] for s in held], flush=True)
sys.stdin.read()
";

/// The long-named holder's name: 24 bytes, of which its comm keeps 15.
const LONG_NAME: &str = "filter_everywhere_holder";

impl Python {
    /// A python3 holding two listeners; named `name` (its comm then being `name`'s first 15
    /// bytes) when given.
    fn start(name: Option<&str>) -> anyhow::Result<Self> {
        let mut cmd = Command::new("python3");
        cmd.args(["-c", PYTHON_SCRIPT]);
        cmd.args(name);
        let mut proc = Proc::spawn("python3 (installed by .ci/run)", cmd, true)?;
        proc.wait_output("its pid and ports", DEADLINE, |out, _| out.contains('\n'))?;
        let line = proc.stdout();
        let nums: Vec<u32> = line
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .with_context(|| format!("python3 printed {line:?}"))?;
        let [pid, a, b] = nums[..] else {
            anyhow::bail!("python3 printed {line:?}, expected `PID PORT PORT`");
        };
        Ok(Python {
            proc,
            pid,
            ports: [u16::try_from(a)?, u16::try_from(b)?],
        })
    }
}

impl Drop for Python {
    fn drop(&mut self) {
        // Through a launcher shim (pyenv) the interpreter could be a grandchild: kill it by the
        // pid it reported, if that is still a python process. `proc` goes next.
        if self.pid != self.proc.child.id() && comm_of(self.pid).is_ok_and(|c| c.contains("python"))
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// The pids `ss -ltnp` lists as holders of the TCP listener on 127.0.0.1:`port`.
fn ss_holders(ss: &str, port: u16) -> BTreeSet<u32> {
    let local = format!(" 127.0.0.1:{port} ");
    ss.lines()
        .filter(|l| l.contains(&local))
        .flat_map(|l| l.split("pid=").skip(1))
        .filter_map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|p| p.parse().ok())
        })
        .collect()
}

/// The dashboard in its own tmux server. On drop, the sockq still running in the pane is
/// killed first (a sockq on a dead terminal must not outlive the test), then the server.
struct Dashboard(common::tmux::Tmux);

impl Dashboard {
    fn start(tag: &str, flags: &[String]) -> anyhow::Result<Self> {
        let quoted: Vec<String> = flags.iter().map(|f| format!("'{f}'")).collect();
        let command = format!(
            "'{}' --interval {INTERVAL} {}; echo EXITED rc=$?; sleep 60",
            sockq_bin(),
            quoted.join(" ")
        );
        common::tmux::Tmux::start(
            format!("sockq-filter-{}-{tag}", std::process::id()),
            "filter",
            TERMINAL,
            &command,
            &["RUST_BACKTRACE", "RUST_LIB_BACKTRACE"],
        )
        .map(Dashboard)
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        if let Ok(shell) = self.0.display("#{pane_pid}") {
            if let Ok(children) = run_ok("pgrep", &["-P", &shell]) {
                for pid in children.split_whitespace().filter_map(|p| p.parse().ok()) {
                    if comm_of(pid).is_ok_and(|c| c == "sockq") {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid as i32),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                }
            }
        }
        // The tmux server goes with the inner `common::tmux::Tmux`.
    }
}

/// What the dashboard's main screen shows: the count in the `Listeners (N)` title and the
/// endpoints of the table's rows. `None` until a sample has been drawn.
#[derive(Debug, PartialEq)]
struct DashboardView {
    count: usize,
    rows: Endpoints,
}

fn dashboard_view(screen: &str) -> Option<DashboardView> {
    if screen
        .to_lowercase()
        .contains("waiting for the first sample")
    {
        return None;
    }
    let mut lines = screen.lines();
    let title = lines.by_ref().find(|l| l.contains(" Listeners ("))?;
    let count = title
        .split(" Listeners (")
        .nth(1)?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    // Rows start with their ADDRESS cell; the table ends at the findings block.
    let rows = lines
        .take_while(|l| !l.trim_start().starts_with("Findings"))
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|cell| cell.parse::<SocketAddr>().ok())
        .map(|a| a.to_string())
        .collect();
    Some(DashboardView { count, rows })
}

/// One sample line of a Prometheus 0.0.4 text body: name, labels, value.
type PromSample = (String, Vec<(String, String)>, String);

fn prom_samples(body: &str) -> Vec<PromSample> {
    body.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(prom_sample)
        .collect()
}

fn prom_sample(line: &str) -> Option<PromSample> {
    let Some(open) = line.find('{') else {
        let (name, value) = line.split_once(' ')?;
        return Some((name.to_string(), Vec::new(), value.trim().to_string()));
    };
    let mut labels = Vec::new();
    let mut rest = line[open + 1..].chars();
    loop {
        let mut c = rest.next()?;
        if c == ',' {
            c = rest.next()?;
        }
        if c == '}' {
            break;
        }
        let mut key = String::new();
        while c != '=' {
            key.push(c);
            c = rest.next()?;
        }
        if rest.next()? != '"' {
            return None;
        }
        let mut value = String::new();
        loop {
            match rest.next()? {
                '\\' => match rest.next()? {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break,
                other => value.push(other),
            }
        }
        labels.push((key, value));
    }
    Some((
        line[..open].to_string(),
        labels,
        rest.as_str().trim().to_string(),
    ))
}

fn label<'a>(labels: &'a [(String, String)], name: &str) -> Option<&'a str> {
    labels
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// What a scrape of `sockq serve` selects: the endpoints of every per-listener series, the
/// `sockq_listeners` count, and the tick count.
#[derive(Debug)]
struct Scrape {
    endpoints: Endpoints,
    listeners: Option<f64>,
    ticks: Option<f64>,
}

fn scrape(body: &str) -> anyhow::Result<Scrape> {
    let mut s = Scrape {
        endpoints: Endpoints::new(),
        listeners: None,
        ticks: None,
    };
    for (name, labels, value) in prom_samples(body) {
        if name.starts_with("sockq_listener_") {
            let (Some(address), Some(port)) = (label(&labels, "address"), label(&labels, "port"))
            else {
                anyhow::bail!("{name} without address and port labels: {labels:?}");
            };
            s.endpoints
                .insert(endpoint(address.parse()?, port.parse()?));
        } else if name == "sockq_listeners" {
            s.listeners = value.parse().ok();
        } else if name == "sockq_ticks_total" {
            s.ticks = value.parse().ok();
        }
    }
    Ok(s)
}

/// The endpoints of a `tcp_listeners` array (snapshot JSON).
fn tcp_listeners(v: &Value) -> anyhow::Result<Endpoints> {
    v.as_array()
        .ok_or_else(|| anyhow::anyhow!("tcp_listeners is not an array: {v}"))?
        .iter()
        .map(|l| {
            let ip: IpAddr = l["address"]
                .as_str()
                .ok_or_else(|| anyhow::anyhow!("listener without address: {l}"))?
                .parse()?;
            let port = l["port"]
                .as_u64()
                .ok_or_else(|| anyhow::anyhow!("listener without port: {l}"))?;
            Ok(endpoint(ip, u16::try_from(port)?))
        })
        .collect()
}

/// One set of flags and what it must select.
struct Case {
    flags: Vec<String>,
    expected: Endpoints,
    why: String,
}

impl Case {
    fn new(flags: &[&str], expected: Endpoints, why: impl Into<String>) -> Self {
        Case {
            flags: flags.iter().map(|s| s.to_string()).collect(),
            expected,
            why: why.into(),
        }
    }

    fn name(&self) -> String {
        if self.flags.is_empty() {
            "(no flags)".to_string()
        } else {
            self.flags.join(" ")
        }
    }
}

/// Runs the four front-ends with the case's flags at once and appends every disagreement with
/// the expected set to `failures`. Errors only when a front-end cannot be run at all.
fn run_case(
    n: usize,
    case: &Case,
    serve_addr: SocketAddr,
    failures: &mut Vec<String>,
) -> anyhow::Result<()> {
    let name = case.name();
    let expected = &case.expected;
    let mut fail = |front_end: &str, what: String| {
        failures.push(format!("case `{name}` ({}): {front_end} {what}", case.why))
    };
    let with_flags = |args: &[&str]| -> Vec<String> {
        args.iter()
            .map(|s| s.to_string())
            .chain(case.flags.iter().cloned())
            .collect()
    };
    let command = |args: &[String]| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        sockq_command(&refs)
    };

    // serve first: its own listener must exist before the others take their first sample.
    let listen = serve_addr.to_string();
    let mut serve = Proc::spawn(
        "sockq serve",
        command(&with_flags(&[
            "serve",
            "--listen",
            &listen,
            "--interval",
            INTERVAL,
        ])),
        false,
    )?;
    serve.wait_output("its `serving` line", DEADLINE, |_, err| {
        err.contains("serving http://") && err.ends_with('\n')
    })?;
    let dashboard = Dashboard::start(&n.to_string(), &case.flags)?;
    let mut watch = Proc::spawn(
        "sockq watch",
        command(&with_flags(&[
            "watch",
            "--json",
            "--count",
            "2",
            "--interval",
            INTERVAL,
        ])),
        false,
    )?;

    // snapshot --json
    let mut snapshot = Proc::spawn(
        "sockq snapshot",
        command(&with_flags(&["snapshot", "--json"])),
        false,
    )?;
    let (status, out, err) = snapshot.finish(DEADLINE)?;
    if !status.success() {
        fail("snapshot", format!("failed ({status}): {err}"));
    } else {
        let doc: Value = serde_json::from_str(&out)
            .with_context(|| format!("snapshot --json printed {out:?}"))?;
        let got = tcp_listeners(&doc["tcp_listeners"])?;
        if let Some(d) = differs(&got, expected) {
            fail("snapshot --json", d);
        }
    }

    // serve: the first scrape taken after two ticks.
    let start = Instant::now();
    let scraped = loop {
        let last = http_get(serve_addr, "/metrics");
        if let Ok((200, body)) = &last {
            let s = scrape(body)?;
            if s.ticks.is_some_and(|t| t >= 2.0) {
                break Some(s);
            }
        }
        if start.elapsed() > DEADLINE {
            let last = match last {
                Ok((status, body)) => {
                    format!("{status}: {}", body.chars().take(300).collect::<String>())
                }
                Err(e) => format!("{e:#}"),
            };
            fail(
                "serve",
                format!(
                    "had no metrics after two ticks within {DEADLINE:?}: last scrape {last}; \
                     stderr: {:?}",
                    serve.stderr()
                ),
            );
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if let Some(s) = scraped {
        if let Some(d) = differs(&s.endpoints, expected) {
            fail("serve /metrics (sockq_listener_* series)", d);
        }
        if s.listeners != Some(expected.len() as f64) {
            fail(
                "serve /metrics",
                format!(
                    "reports sockq_listeners {:?}, expected {}",
                    s.listeners,
                    expected.len()
                ),
            );
        }
    }

    // watch --json --count 2: every line, both lists.
    let (status, out, err) = watch.finish(DEADLINE)?;
    if !status.success() {
        fail("watch", format!("failed ({status}): {err}"));
    } else {
        let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.len() != 2 {
            fail(
                "watch",
                format!("printed {} lines, expected 2: {out:?}", lines.len()),
            );
        }
        for (i, line) in lines.iter().enumerate() {
            let tick: Value = serde_json::from_str(line)
                .with_context(|| format!("watch --json printed {line:?}"))?;
            let endpoints: Endpoints = tick["listeners"]
                .as_array()
                .ok_or_else(|| anyhow::anyhow!("tick without listeners: {line}"))?
                .iter()
                .filter_map(|l| l["endpoint"].as_str().map(String::from))
                .collect();
            if let Some(d) = differs(&endpoints, expected) {
                fail(&format!("watch --json line {} listeners[]", i + 1), d);
            }
            let snap = tcp_listeners(&tick["snapshot"]["tcp_listeners"])?;
            if let Some(d) = differs(&snap, expected) {
                fail(
                    &format!("watch --json line {} snapshot.tcp_listeners", i + 1),
                    d,
                );
            }
        }
    }

    // The dashboard: poll until it shows the expected rows (or the deadline), then look again
    // a few ticks later: what it shows must still be exactly that.
    let ok = |v: &Option<DashboardView>| {
        v.as_ref()
            .is_some_and(|v| &v.rows == expected && v.count == expected.len())
    };
    let start = Instant::now();
    let screen_now = || {
        // Without the blank lines, for the failure messages.
        let s = dashboard.0.screen();
        s.lines()
            .filter(|l| !l.trim().is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut screen = screen_now();
    while !ok(&dashboard_view(&screen))
        && !screen.contains("EXITED rc=")
        && start.elapsed() < DEADLINE
    {
        std::thread::sleep(Duration::from_millis(100));
        screen = screen_now();
    }
    if ok(&dashboard_view(&screen)) {
        std::thread::sleep(Duration::from_millis(800));
        screen = screen_now();
    }
    match dashboard_view(&screen) {
        _ if screen.contains("EXITED rc=") => {
            fail("dashboard", format!("exited; the screen is:\n{screen}"))
        }
        None => fail(
            "dashboard",
            format!("drew no sample within {DEADLINE:?}; the screen is:\n{screen}"),
        ),
        Some(v) => {
            if let Some(d) = differs(&v.rows, expected) {
                fail("dashboard", format!("{d}; the screen is:\n{screen}"));
            } else if v.count != expected.len() {
                fail(
                    "dashboard",
                    format!(
                        "titles `Listeners ({})`, expected {}; the screen is:\n{screen}",
                        v.count,
                        expected.len()
                    ),
                );
            }
        }
    }

    drop(dashboard);
    // How serve exits is not this test's subject; it is killed after 10 s (or on drop).
    let _ = serve.terminate(Duration::from_secs(10));
    Ok(())
}

#[test]
fn every_front_end_selects_the_same_listeners() {
    in_netns("filter_everywhere", || {
        let began = Instant::now();
        // Who holds what: two listeners of a process with a long name (the kernel truncates
        // its comm), two of a python3 child. Not this test process: it forks every front-end,
        // and a child between fork and exec holds copies of its sockets, which a /proc scan
        // may take for their holders.
        let long = Python::start(Some(LONG_NAME))?;
        let [t1, t2] = long.ports;
        let python = Python::start(None)?;
        let [p1, p2] = python.ports;
        let me = long.pid;
        let my_comm = comm_of(me)?;
        let py_comm = comm_of(python.pid)?;
        let py_pid = python.pid.to_string();

        // First principles, checked: the holders' names and pids as --process sees them, and
        // `ss` agreeing on who holds which port (no listener leaked into another process).
        anyhow::ensure!(
            my_comm.len() == 15 && LONG_NAME.starts_with(&my_comm),
            "the long name {LONG_NAME:?} should be cut to its first 15 bytes, got {my_comm:?}"
        );
        let comms = [my_comm.as_str(), py_comm.as_str(), "sockq"];
        anyhow::ensure!(
            py_comm.contains("python3") && !my_comm.contains("python3"),
            "--process python3 must match the child ({py_comm:?}) and not the long-named one ({my_comm:?})"
        );
        anyhow::ensure!(
            !py_comm.contains(&my_comm) && !"sockq".contains(&my_comm),
            "--process {my_comm:?} must match only the long-named one"
        );
        for text in [py_pid.as_str(), "no-such-process"] {
            anyhow::ensure!(
                comms.iter().all(|c| !c.contains(text)),
                "a comm in {comms:?} contains {text:?}: that case would not test what it says"
            );
        }
        let ss = run_ok("ss", &["-Hltnp"])?;
        for (port, pid) in [(t1, me), (t2, me), (p1, python.pid), (p2, python.pid)] {
            let holders = ss_holders(&ss, port);
            anyhow::ensure!(
                holders == BTreeSet::from([pid]),
                "port {port} should be held by pid {pid} alone; ss -ltnp says {holders:?}:\n{ss}"
            );
        }
        eprintln!(
            "filter_everywhere: {my_comm}[{me}] holds {t1} {t2}; {py_comm}[{py_pid}] holds {p1} {p2}"
        );

        let (t1s, t2s, p1s, p2s) = (
            t1.to_string(),
            t2.to_string(),
            p1.to_string(),
            p2.to_string(),
        );
        let cases = vec![
            Case::new(
                &[],
                loopback(&[t1, t2, p1, p2]),
                "no filter: every listener, sockq serve's own included (added below)",
            ),
            Case::new(
                &["--port", &t1s],
                loopback(&[t1]),
                "one port of the long-named holder",
            ),
            Case::new(
                &["--port", &format!("{t1},{p1}")],
                loopback(&[t1, p1]),
                "a comma list across both holders",
            ),
            Case::new(
                &["--port", &t2s, "--port", &p2s],
                loopback(&[t2, p2]),
                "--port repeated",
            ),
            Case::new(
                &["--process", "python3"],
                loopback(&[p1, p2]),
                "by name: python3 holds exactly these",
            ),
            Case::new(
                &["--process", &py_pid],
                loopback(&[p1, p2]),
                "by pid of the python3 child",
            ),
            Case::new(
                &["--process", &my_comm],
                loopback(&[t1, t2]),
                "by name: the long-named holder's (truncated) comm",
            ),
            Case::new(
                &["--port", &p1s, "--process", "python3"],
                loopback(&[p1]),
                "intersection: python3's port p1",
            ),
            Case::new(
                &["--port", &t1s, "--process", "python3"],
                loopback(&[]),
                "intersection is empty: python3 does not hold t1",
            ),
            Case::new(
                &["--process", "no-such-process"],
                loopback(&[]),
                "matches no process",
            ),
        ];

        let mut failures = Vec::new();
        for (n, mut case) in cases.into_iter().enumerate() {
            let serve_addr = SocketAddr::from(([127, 0, 0, 1], 9900 + n as u16));
            if case.flags.is_empty() {
                // Unfiltered, sockq serve's own HTTP listener (held by sockq) is one of them.
                case.expected.insert(serve_addr.to_string());
            }
            let t = Instant::now();
            run_case(n, &case, serve_addr, &mut failures)
                .with_context(|| format!("case `{}`", case.name()))?;
            eprintln!(
                "filter_everywhere: case `{}` → {} in {:.1?}",
                case.name(),
                show(&case.expected),
                t.elapsed()
            );
        }
        drop(python);
        drop(long);
        eprintln!("filter_everywhere: done in {:.1?}", began.elapsed());
        assert!(
            failures.is_empty(),
            "the front-ends do not select the same listeners for the same flags \
             ({} disagreement(s)):\n\n{}",
            failures.len(),
            failures.join("\n\n")
        );
        Ok(())
    });
}

/// Every front-end takes the same two flags (the dashboard: plain `sockq`).
#[test]
fn every_front_end_documents_the_filter_flags() {
    for sub in [None, Some("snapshot"), Some("watch"), Some("serve")] {
        let args: Vec<&str> = sub.into_iter().chain(["--help"]).collect();
        let out = run_sockq(&args).unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "sockq {args:?}: {out:?}");
        for flag in ["--port <PORT>", "--process <TEXT>"] {
            assert!(help.contains(flag), "sockq {args:?} lacks {flag}:\n{help}");
        }
    }
}
