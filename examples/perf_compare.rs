//! perf_compare: sockq against `ss` at scale, in private network namespaces (root only).
//!
//! Build and run (docs/perf.md explains every number):
//!
//!     cargo build --release --bin sockq --example perf_compare
//!     sudo target/release/examples/perf_compare            # all phases, medians of 9
//!     sudo target/release/examples/perf_compare --only scale,syn --runs 11
//!
//! Phases (each in its own namespace, made with unshare(CLONE_NEWNET) on a thread; `ss`, tmux,
//! sockq and the socket-holder processes are spawned or forked from that thread, so they run in
//! it). Holders are forked without exec from a thread holding few descriptors (small fd tables,
//! like a real server's) and open their own listeners, then sleep.
//!
//! - `quiet`: on the host (no namespace), `sockq watch --interval 1s` and the dashboard (tmux,
//!   200x50) for `--quiet-secs`; CPU from utime+stime in /proc/PID/stat.
//! - `rss`: 1,000 TCP listeners held by 200 holder processes; the dashboard with
//!   `--interval 100ms --window 90s` (900 history points per listener, as 15 min at 1 s, filled in
//!   90 s) and with the defaults (1 s, 15 min), VmRSS/VmHWM after `--rss-secs`; plus a synthetic
//!   fill (900 ticks of 1,000 listeners ingested into an engine in a child process).
//! - `scale`: 10,000 TCP listeners (8,000 IPv4, 2,000 IPv6) and 1,000 UNIX listeners held by
//!   2,000 holder processes (5 TCP each, 1 UNIX each for the first 1,000); the harness holds none.
//!   Listener sample vs `ss -ltn` and vs raw LISTEN dumps, UNIX listeners vs `ss -lx`, full sample
//!   with owners
//!   (cold: first sample of a new collector, a full /proc scan; warm: the next one, owner cache)
//!   vs `ss -ltnp`, and the `sockq snapshot --json` process vs `ss -ltnp`. Plus `ss -ltn` in an
//!   empty namespace (process start).
//! - `syn`: labs.md §3 — 100,000 SYN-RECV requests on 10.88.0.1:80 (listen backlog and somaxconn
//!   262144, so the queue is never more than half full and never sends cookies; synack_retries 7,
//!   so the requests live 255 s). SYN-RECV count vs `ss -tn state syn-recv` and vs a raw
//!   NETLINK_SOCK_DIAG dump that only counts messages; listener sample under the flood; then
//!   `sockq watch --json` (collector CPU, throttling, SYN-RECV age) and the dashboard's answer to
//!   a key (tmux send-keys, capture-pane polled until the help overlay shows / goes).
//!
//! Timings: sockq's are in-process calls (wall, and thread CPU which includes the kernel's work
//! for the dump); `ss` is timed as a whole process, fork+exec included (wall, and its user+sys
//! CPU from getrusage(RUSAGE_CHILDREN)). Runs are interleaved, rotating which goes first.
//!
//! Rows marked PROTOTYPE time code of this file (module `proto`), not sockq's: sketches of the
//! changes docs/perf.md recommends, each checked to give sockq's exact result.
//!
//! `--profile OP` loops one operation under `perf record -e cpu-clock --call-graph dwarf` instead
//! of timing (listeners, unix, sample-warm, sample-cold; syn-recv, syn-floor).
//!
//! Everything made is removed on exit, on error and on Ctrl-C: child processes are killed (holders
//! also die with the thread that forked them, via PR_SET_PDEATHSIG), tmux servers are killed, the namespaces
//! vanish with their last process and thread.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and tools may panic on failure
#![allow(unsafe_code)] // the harness forks and builds raw socket addresses; each block has a SAFETY comment

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use clap::Parser;
use netlink_packet_sock_diag::SockDiagMessage;
use nix::libc;
use sockq::collect::netlink::DiagSocket;
use sockq::collect::{diag, procnet, thread_cpu, Collector, CollectorOptions};
use sockq::lab::syn;
use sockq::model::Family;

#[path = "../benches/support/synth.rs"]
mod synth;

/// sockq vs ss at scale (root; see docs/perf.md).
#[derive(Debug, Parser)]
struct Opts {
    /// Timed runs per measurement (medians are reported).
    #[arg(long, default_value_t = 9)]
    runs: usize,
    /// Phases to run, comma-separated: quiet, rss, scale, syn.
    #[arg(long, value_delimiter = ',', default_value = "quiet,rss,scale,syn")]
    only: Vec<String>,
    /// The sockq binary (default: target/release/sockq beside this example).
    #[arg(long)]
    sockq: Option<PathBuf>,
    /// Seconds of the quiet-host CPU measurement.
    #[arg(long, default_value_t = 60)]
    quiet_secs: u64,
    /// Seconds the RSS dashboards run before RSS is read (>= 90 fills the 100 ms one).
    #[arg(long, default_value_t = 100)]
    rss_secs: u64,
    /// Seconds of `sockq watch --json` under the SYN flood (0 skips it).
    #[arg(long, default_value_t = 40)]
    flood_secs: u64,
    /// Key presses timed in the dashboard under the flood (each opens and closes the help; 0
    /// skips the test).
    #[arg(long, default_value_t = 10)]
    keys: usize,
    /// Instead of timing, loop one operation under `perf record -e cpu-clock --call-graph dwarf`
    /// (software clock sampling: kernel and user stacks) after building the scene: listeners,
    /// unix, sample-warm, sample-cold (scale phase), syn-recv, syn-floor (syn phase).
    #[arg(long, value_name = "OP")]
    profile: Option<String>,
    /// Seconds to profile for.
    #[arg(long, default_value_t = 10)]
    profile_secs: u64,
    /// perf.data file to write (default /tmp/sockq-perf-OP.data).
    #[arg(long)]
    profile_out: Option<PathBuf>,
    /// (internal) the synthetic RSS measurement, in a child process.
    #[arg(long, hide = true)]
    rss_synthetic: bool,
}

// ---------------------------------------------------------------------------------------------
// Stop on a signal, clean up on every path
// ---------------------------------------------------------------------------------------------

fn stop_flag() -> &'static Arc<AtomicBool> {
    static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    STOP.get_or_init(|| Arc::new(AtomicBool::new(false)))
}

fn check_stop() -> anyhow::Result<()> {
    if stop_flag().load(Ordering::Relaxed) {
        bail!("interrupted by a signal: cleaning up");
    }
    Ok(())
}

fn sleep_checked(d: Duration) -> anyhow::Result<()> {
    let end = Instant::now() + d;
    loop {
        check_stop()?;
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

/// Child processes killed (and reaped) on drop.
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

/// One listening socket a holder process makes: a socket address built before the fork, so the
/// child needs no allocation.
#[derive(Clone, Copy)]
struct HoldSpec {
    family: libc::c_int,
    addr: libc::sockaddr_storage,
    len: libc::socklen_t,
    backlog: libc::c_int,
}

impl HoldSpec {
    fn tcp(addr: SocketAddr, backlog: i32) -> Self {
        let sa = socket2::SockAddr::from(addr);
        // SAFETY: sockaddr_storage is plain old data; all zeroes is a valid value.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        // SAFETY: `sa` holds `sa.len()` valid bytes, at most sizeof(sockaddr_storage).
        unsafe {
            std::ptr::copy_nonoverlapping(
                sa.as_ptr().cast::<u8>(),
                (&raw mut storage).cast::<u8>(),
                sa.len() as usize,
            );
        }
        Self {
            family: if addr.is_ipv4() {
                libc::AF_INET
            } else {
                libc::AF_INET6
            },
            addr: storage,
            len: sa.len(),
            backlog,
        }
    }

    /// An abstract UNIX stream listener `@name`.
    fn unix_abstract(name: &str, backlog: i32) -> Self {
        // SAFETY: as above.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        // SAFETY: sockaddr_un fits in sockaddr_storage; the name is cut to sun_path's size.
        let un = unsafe { &mut *(&raw mut storage).cast::<libc::sockaddr_un>() };
        un.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let bytes = name.as_bytes();
        let n = bytes.len().min(un.sun_path.len() - 1);
        for (dst, &b) in un.sun_path[1..=n].iter_mut().zip(bytes) {
            *dst = b as libc::c_char;
        }
        let len = std::mem::size_of::<libc::sa_family_t>() + 1 + n;
        Self {
            family: libc::AF_UNIX,
            addr: storage,
            len: len as libc::socklen_t,
            backlog,
        }
    }
}

/// Processes made by [`fork_holder`]: killed and reaped on drop.
#[derive(Default)]
struct Holders(Vec<nix::unistd::Pid>);

impl Drop for Holders {
    fn drop(&mut self) {
        use nix::sys::signal::{kill, Signal};
        for &pid in &self.0 {
            let _ = kill(pid, Signal::SIGKILL);
        }
        for &pid in &self.0 {
            let _ = nix::sys::wait::waitpid(pid, None);
        }
    }
}

/// Forks a process (no exec) that opens the listeners of `specs` itself and then sleeps until
/// killed, or until the thread that forked it ends (PR_SET_PDEATHSIG). Forked from a thread that
/// holds few descriptors, its fd table stays small, like a real server's; a holder that fails to
/// make a socket exits at once (the scene check then fails).
fn fork_holder(holders: &mut Holders, specs: &[HoldSpec]) -> anyhow::Result<()> {
    // SAFETY: the child calls only async-signal-safe functions (socket, setsockopt, bind,
    // listen, prctl, getppid, pause, _exit) on data prepared before the fork; it never returns.
    match unsafe { nix::unistd::fork() }.context("fork")? {
        nix::unistd::ForkResult::Parent { child } => {
            holders.0.push(child);
            Ok(())
        }
        nix::unistd::ForkResult::Child => unsafe {
            let parent = libc::getppid();
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() != parent {
                libc::_exit(0);
            }
            libc::prctl(libc::PR_SET_NAME, c"sockq-holder".as_ptr());
            for s in specs {
                let fd = libc::socket(s.family, libc::SOCK_STREAM, 0);
                if fd < 0 {
                    libc::_exit(2);
                }
                let one: libc::c_int = 1;
                let optlen = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
                if s.family != libc::AF_UNIX {
                    libc::setsockopt(
                        fd,
                        libc::SOL_SOCKET,
                        libc::SO_REUSEADDR,
                        (&raw const one).cast(),
                        optlen,
                    );
                }
                if s.family == libc::AF_INET6 {
                    libc::setsockopt(
                        fd,
                        libc::IPPROTO_IPV6,
                        libc::IPV6_V6ONLY,
                        (&raw const one).cast(),
                        optlen,
                    );
                }
                if libc::bind(fd, (&raw const s.addr).cast(), s.len) != 0
                    || libc::listen(fd, s.backlog) != 0
                {
                    libc::_exit(3);
                }
            }
            loop {
                libc::pause();
            }
        },
    }
}

/// Polls until `pred` holds for the listener count; the scene is built by other processes.
fn wait_until(
    what: &str,
    timeout: Duration,
    mut pred: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let t0 = Instant::now();
    while !pred()? {
        ensure!(t0.elapsed() < timeout, "{what}: not after {timeout:?}");
        sleep_checked(Duration::from_millis(50))?;
    }
    Ok(())
}

/// A private tmux server with one session running `command`; killed on drop.
struct Tmux {
    socket: String,
    socket_path: Option<String>,
    err_file: PathBuf,
}

impl Tmux {
    fn start(tag: &str, width: u16, height: u16, sockq: &Path, args: &str) -> anyhow::Result<Self> {
        let socket = format!("sockq-perf-{}-{tag}", std::process::id());
        let err_file = std::env::temp_dir().join(format!("{socket}.stderr"));
        let command = format!("exec {} {args} 2>{}", sockq.display(), err_file.display());
        let mut t = Tmux {
            socket,
            socket_path: None,
            err_file,
        };
        let mut cmd = Command::new("tmux");
        cmd.args(["-f", "/dev/null", "-L", &t.socket, "new-session", "-d"])
            .args(["-x", &width.to_string(), "-y", &height.to_string()])
            .args(["-s", "perf", &command])
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
            "tmux {}: {} (sockq stderr: {})",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim(),
            std::fs::read_to_string(&self.err_file)
                .unwrap_or_default()
                .trim()
        );
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    }

    fn capture(&self) -> anyhow::Result<String> {
        self.run(&["capture-pane", "-p", "-t", "perf"])
    }

    fn send(&self, key: &str) -> anyhow::Result<()> {
        self.run(&["send-keys", "-t", "perf", key]).map(drop)
    }

    fn pane_pid(&self) -> anyhow::Result<u32> {
        Ok(self
            .run(&["display-message", "-p", "-t", "perf", "#{pane_pid}"])?
            .trim()
            .parse()?)
    }

    /// Polls the screen until `pred` holds; the time it took.
    fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> anyhow::Result<Duration> {
        let t0 = Instant::now();
        loop {
            check_stop()?;
            let screen = self.capture()?;
            if pred(&screen) {
                return Ok(t0.elapsed());
            }
            ensure!(
                t0.elapsed() < timeout,
                "the dashboard did not show {what} within {timeout:?}; screen:\n{screen}"
            );
        }
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
        let _ = std::fs::remove_file(&self.err_file);
    }
}

fn strip_sockq_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SOCKQ_") {
            cmd.env_remove(key);
        }
    }
}

/// Runs `f` on a new thread inside a new network namespace with `lo` up. The namespace goes
/// away when the thread and every process spawned from it are gone.
fn in_new_netns<T, F>(name: &str, f: F) -> anyhow::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> anyhow::Result<T> + Send + 'static,
{
    let handle = std::thread::Builder::new()
        .name(format!("perf-{name}"))
        .spawn(move || -> anyhow::Result<T> {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                .context("unshare(CLONE_NEWNET): perf_compare must run as root")?;
            run_quiet("ip", &["link", "set", "lo", "up"])?;
            f()
        })?;
    match handle.join() {
        Ok(r) => r.with_context(|| format!("phase `{name}`")),
        Err(p) => std::panic::resume_unwind(p),
    }
}

fn run_quiet(cmd: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {cmd}"))?;
    ensure!(
        out.status.success(),
        "`{cmd} {}`: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Lines of a command's output minus its header line.
fn count_rows(cmd: &str, args: &[&str], filter: impl Fn(&str) -> bool) -> anyhow::Result<usize> {
    let out = run_quiet(cmd, args)?;
    Ok(out.lines().skip(1).filter(|l| filter(l)).count())
}

// ---------------------------------------------------------------------------------------------
// Timing
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct Timing {
    wall: Duration,
    cpu: Duration,
}

#[derive(Debug, Clone, Default)]
struct Series(Vec<Timing>);

impl Series {
    fn push(&mut self, t: Timing) {
        self.0.push(t);
    }
    fn median_by(&self, f: impl Fn(&Timing) -> Duration) -> Duration {
        let mut v: Vec<Duration> = self.0.iter().map(f).collect();
        v.sort();
        match v.len() {
            0 => Duration::ZERO,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2,
        }
    }
    fn wall(&self) -> Duration {
        self.median_by(|t| t.wall)
    }
    fn cpu(&self) -> Duration {
        self.median_by(|t| t.cpu)
    }
    fn range(&self) -> (Duration, Duration) {
        let w = self.0.iter().map(|t| t.wall);
        (
            w.clone().min().unwrap_or_default(),
            w.max().unwrap_or_default(),
        )
    }
}

/// Times an in-process call: wall and the calling thread's CPU (user + system).
fn time_call<R, E: Into<anyhow::Error>>(
    f: impl FnOnce() -> Result<R, E>,
) -> anyhow::Result<(Timing, R)> {
    let c0 = thread_cpu();
    let t0 = Instant::now();
    let r = f().map_err(Into::into)?;
    let wall = t0.elapsed();
    Ok((
        Timing {
            wall,
            cpu: thread_cpu().saturating_sub(c0),
        },
        r,
    ))
}

fn children_cpu() -> Duration {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_CHILDREN)
        .map(|u| {
            let tv = |t: nix::sys::time::TimeVal| {
                Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
            };
            tv(u.user_time()) + tv(u.system_time())
        })
        .unwrap_or_default()
}

/// Times a whole process (fork + exec + run + exit), stdout to /dev/null.
fn time_process(cmd: &Path, args: &[&str]) -> anyhow::Result<Timing> {
    let c0 = children_cpu();
    let t0 = Instant::now();
    let status = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("running {}", cmd.display()))?;
    let wall = t0.elapsed();
    ensure!(
        status.success(),
        "`{} {}` failed: {status}",
        cmd.display(),
        args.join(" ")
    );
    Ok(Timing {
        wall,
        cpu: children_cpu().saturating_sub(c0),
    })
}

/// CPU time (utime + stime) of a process, from /proc/PID/stat.
fn proc_cpu(pid: u32) -> anyhow::Result<Duration> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = &s[s.rfind(')').context("malformed stat")? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime field 15.
    let ticks: u64 = f[11].parse::<u64>()? + f[12].parse::<u64>()?;
    // SAFETY: sysconf has no preconditions.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap_or(100);
    Ok(Duration::from_nanos(ticks * 1_000_000_000 / hz.max(1)))
}

/// A `kB` field of /proc/PID/status (VmRSS, VmHWM).
fn proc_status_kb(pid: u32, key: &str) -> anyhow::Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    s.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {key} in /proc/{pid}/status"))
}

fn ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1000.0;
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

// ---------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------

/// sockq (in-process) against a reference, both timed N times.
struct Comparison {
    name: String,
    sockq: Series,
    reference_label: String,
    reference: Series,
    /// Highest acceptable wall ratio sockq/reference.
    target: Option<f64>,
}

#[derive(Default)]
struct Report {
    comparisons: Vec<Comparison>,
    /// Single values: (what, value, target, met).
    facts: Vec<(String, String, String, Option<bool>)>,
    notes: Vec<String>,
}

impl Report {
    fn fact(&mut self, what: &str, value: String, target: &str, met: Option<bool>) {
        eprintln!("  {what}: {value}");
        self.facts.push((what.into(), value, target.into(), met));
    }

    fn note(&mut self, s: String) {
        eprintln!("  note: {s}");
        self.notes.push(s);
    }

    fn print(&self, runs: usize) {
        println!("\n### Comparisons (medians of {runs} runs; wall ratio = sockq / reference)\n");
        println!("| measurement | sockq wall ms | reference | ref wall ms | wall ratio | target | met | sockq CPU ms | ref CPU ms | CPU ratio | sockq wall min–max | ref wall min–max |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
        for c in &self.comparisons {
            let (wr, cr) = (
                ratio(c.sockq.wall(), c.reference.wall()),
                ratio(c.sockq.cpu(), c.reference.cpu()),
            );
            let (target, met) = match c.target {
                Some(t) => (
                    format!("≤ {t:.2}"),
                    if wr <= t { "yes" } else { "**no**" }.to_string(),
                ),
                None => ("–".into(), "–".into()),
            };
            let (s0, s1) = c.sockq.range();
            let (r0, r1) = c.reference.range();
            println!(
                "| {} | {} | {} | {} | {wr:.3} | {target} | {met} | {} | {} | {cr:.3} | {}–{} | {}–{} |",
                c.name,
                ms(c.sockq.wall()),
                c.reference_label,
                ms(c.reference.wall()),
                ms(c.sockq.cpu()),
                ms(c.reference.cpu()),
                ms(s0),
                ms(s1),
                ms(r0),
                ms(r1),
            );
        }
        println!("\n### Other measurements\n");
        println!("| measurement | value | target | met |");
        println!("|---|---|---|---|");
        for (what, value, target, met) in &self.facts {
            let met = match met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "–",
            };
            println!("| {what} | {value} | {target} | {met} |");
        }
        if !self.notes.is_empty() {
            println!("\n### Notes\n");
            for n in &self.notes {
                println!("- {n}");
            }
        }
    }
}

/// A timed step of a rotation.
type Step<'a> = &'a mut dyn FnMut() -> anyhow::Result<Timing>;

/// Runs every step `runs` times, interleaved; run i starts with step i mod k, so each step goes
/// first equally often. One untimed warm-up of each first.
fn rotating(runs: usize, steps: &mut [Step<'_>]) -> anyhow::Result<Vec<Series>> {
    for step in steps.iter_mut() {
        step()?;
    }
    let k = steps.len();
    let mut out = vec![Series::default(); k];
    for i in 0..runs {
        check_stop()?;
        for j in 0..k {
            let idx = (i + j) % k;
            out[idx].push(steps[idx]()?);
        }
    }
    Ok(out)
}

/// [`rotating`] with two steps.
fn paired(
    runs: usize,
    mut a: impl FnMut() -> anyhow::Result<Timing>,
    mut b: impl FnMut() -> anyhow::Result<Timing>,
) -> anyhow::Result<(Series, Series)> {
    let mut v = rotating(runs, &mut [&mut a, &mut b])?;
    let b = v.pop().unwrap_or_default();
    let a = v.pop().unwrap_or_default();
    Ok((a, b))
}

/// What to profile and where to write it.
#[derive(Debug, Clone)]
struct Profile {
    op: String,
    secs: u64,
    out: PathBuf,
}

impl Profile {
    fn from_opts(o: &Opts) -> Option<Self> {
        let op = o.profile.clone()?;
        let out = o
            .profile_out
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("/tmp/sockq-perf-{op}.data")));
        Some(Self {
            op,
            secs: o.profile_secs,
            out,
        })
    }

    /// Loops `op` on the calling thread while `perf record` samples this thread.
    fn run(&self, mut op: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<()> {
        let tid = nix::unistd::gettid().to_string();
        let mut perf = Children::default();
        perf.0.push(
            Command::new("perf")
                .args(["record", "-e", "cpu-clock", "-F", "999"])
                .args(["--call-graph", "dwarf,16384", "-t", &tid, "-o"])
                .arg(&self.out)
                .args(["--", "sleep", &self.secs.to_string()])
                .stdin(Stdio::null())
                .spawn()
                .context("running perf (Debian: apt-get install linux-perf)")?,
        );
        std::thread::sleep(Duration::from_millis(300));
        let t0 = Instant::now();
        let mut n = 0u64;
        while perf.0[0].try_wait()?.is_none() {
            check_stop()?;
            op()?;
            n += 1;
        }
        let status = perf.0[0].wait()?;
        ensure!(status.success(), "perf record failed: {status}");
        eprintln!(
            "profiled `{}`: {n} iterations, {:.2} ms each; `perf report -i {} --no-children`",
            self.op,
            t0.elapsed().as_secs_f64() * 1000.0 / n.max(1) as f64,
            self.out.display()
        );
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Machine
// ---------------------------------------------------------------------------------------------

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
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
    let ss = run_quiet("ss", &["-V"]).unwrap_or_default();
    format!("nproc {nproc}; CPU {cpu}; kernel {kernel}; {}", ss.trim())
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

fn collector(owners: bool) -> anyhow::Result<Collector> {
    Ok(Collector::new(
        "perf".into(),
        CollectorOptions {
            owners,
            ..CollectorOptions::default()
        },
    )?)
}

/// TcpExt counters of the calling thread's namespace.
fn netstat_counters() -> anyhow::Result<BTreeMap<String, u64>> {
    let netstat = std::fs::read_to_string("/proc/thread-self/net/netstat")?;
    let snmp = std::fs::read_to_string("/proc/thread-self/net/snmp")?;
    Ok(procnet::parse_counters(&netstat, &snmp).0.tcp_ext)
}

// ---------------------------------------------------------------------------------------------
// Prototypes of the changes docs/perf.md recommends (NOT sockq code): timed beside sockq so the
// recommendation comes with a measured gain. Each is checked to give the same result.
// ---------------------------------------------------------------------------------------------

mod proto {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use sockq::collect::netlink::NetlinkError;
    use sockq::model::Family;

    /// `Collector::syn_recv` with the header read in place instead of by
    /// `InetResponseHeader::parse`; the run-length tally is the same as sockq's `SynRecvRuns`.
    pub fn syn_recv(
        sock: &mut sockq::collect::netlink::DiagSocket,
        families: &[Family],
    ) -> anyhow::Result<sockq::collect::diag::SynRecvTally> {
        type Key = (Family, IpAddr, u16);
        let mut tally = sockq::collect::diag::SynRecvTally::default();
        let mut run: Option<(Key, u64, u8)> = None;
        for &f in families {
            let by_local = &mut tally.by_local;
            let total = &mut tally.total;
            sock.dump(sockq::collect::diag::syn_recv_request(f), |p| {
                if p.len() < 72 {
                    return Err(NetlinkError::Decode("short inet_diag_msg".into()));
                }
                if p[1] != 3 {
                    return Ok(()); // not SYN_RECV
                }
                let family = match p[0] {
                    2 => Family::Ipv4,
                    10 => Family::Ipv6,
                    x => return Err(NetlinkError::Decode(format!("family {x}"))),
                };
                let address = match family {
                    Family::Ipv4 => IpAddr::V4(Ipv4Addr::new(p[8], p[9], p[10], p[11])),
                    Family::Ipv6 => {
                        let a: [u8; 16] = p[8..24].try_into().unwrap_or([0; 16]);
                        IpAddr::V6(Ipv6Addr::from(a))
                    }
                };
                let key = (family, address, u16::from_be_bytes([p[4], p[5]]));
                let retrans = if p[2] == 1 { p[3] } else { 0 };
                *total += 1;
                match &mut run {
                    Some((k, n, r)) if *k == key => {
                        *n += 1;
                        *r = (*r).max(retrans);
                    }
                    _ => {
                        if let Some((k, n, r)) = run.take() {
                            let slot = by_local.entry(k).or_insert((0, 0));
                            slot.0 += n;
                            slot.1 = slot.1.max(r);
                        }
                        run = Some((key, 1, retrans));
                    }
                }
                Ok(())
            })?;
        }
        if let Some((k, n, r)) = run.take() {
            let slot = tally.by_local.entry(k).or_insert((0, 0));
            slot.0 += n;
            slot.1 = slot.1.max(r);
        }
        Ok(tally)
    }
}

// ---------------------------------------------------------------------------------------------
// Phase: scale (10,000 TCP listeners, 1,000 UNIX listeners, 2,000 owner processes)
// ---------------------------------------------------------------------------------------------

const TCP_V4: u16 = 8_000;
const TCP_V6: u16 = 2_000;
const UNIX_LISTENERS: usize = 1_000;
const HOLDERS: usize = 2_000;

fn phase_scale(
    runs: usize,
    sockq: PathBuf,
    profile: Option<Profile>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let floor = in_new_netns("empty", move || {
        let ss = PathBuf::from("ss");
        let mut s = Series::default();
        time_process(&ss, &["-ltn"])?;
        for _ in 0..runs {
            s.push(time_process(&ss, &["-ltn"])?);
        }
        Ok(s)
    })?;
    eprintln!(
        "  ss -ltn in an empty namespace (process start): {} ms",
        ms(floor.wall())
    );

    let (comparisons, facts) = in_new_netns("scale", move || {
        let mut facts = Vec::new();
        // Holder h listens on 5 TCP ports and (h < 1,000) one abstract UNIX socket.
        let mut tcp: Vec<HoldSpec> = (0..TCP_V4)
            .map(|i| HoldSpec::tcp(SocketAddr::from(([127, 0, 0, 1], 20_000 + i)), 128))
            .collect();
        tcp.extend((0..TCP_V6).map(|i| {
            HoldSpec::tcp(
                SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], 40_000 + i)),
                128,
            )
        }));
        let per = tcp.len() / HOLDERS;
        let t0 = Instant::now();
        let mut holders = Holders::default();
        for h in 0..HOLDERS {
            let mut specs = tcp[h * per..(h + 1) * per].to_vec();
            if h < UNIX_LISTENERS {
                let name = format!("sockq-perf-{}-{h}", std::process::id());
                specs.push(HoldSpec::unix_abstract(&name, 128));
            }
            fork_holder(&mut holders, &specs)?;
            if h % 250 == 0 {
                check_stop()?;
            }
        }
        let mut fast = collector(false)?;
        wait_until("10,000 TCP listeners", Duration::from_secs(60), || {
            Ok(fast.listeners()?.listeners.len() >= 10_000)
        })?;
        wait_until("1,000 UNIX listeners", Duration::from_secs(60), || {
            Ok(fast.unix_listeners()?.0.len() >= UNIX_LISTENERS)
        })?;
        eprintln!(
            "  {HOLDERS} holder processes made 10,000 TCP and {UNIX_LISTENERS} UNIX listeners in {} ms",
            ms(t0.elapsed())
        );

        // Verify the scene with both tools.
        let n = fast.listeners()?.listeners.len();
        ensure!(n == 10_000, "sockq sees {n} TCP listeners, expected 10,000");
        let n = count_rows("ss", &["-ltn"], |_| true)?;
        ensure!(n == 10_000, "ss -ltn shows {n} listeners, expected 10,000");
        let n = fast.unix_listeners()?.0.len();
        ensure!(n == UNIX_LISTENERS, "sockq sees {n} UNIX listeners");
        let n = count_rows("ss", &["-lx"], |_| true)?;
        ensure!(n == UNIX_LISTENERS, "ss -lx shows {n} UNIX listeners");
        let n = count_rows("ss", &["-ltnp"], |l| l.contains("users:"))?;
        ensure!(n == 10_000, "ss -ltnp names the process of {n} listeners");
        let snap = collector(true)?.sample()?;
        let known_tcp = snap
            .tcp_listeners
            .iter()
            .filter(|l| !l.owners.processes().is_empty())
            .count();
        let known_unix = snap.unix_listeners.as_ref().map_or(0, |u| {
            u.iter()
                .filter(|l| !l.owners.processes().is_empty())
                .count()
        });
        ensure!(
            known_tcp == 10_000 && known_unix == UNIX_LISTENERS,
            "sockq attributed {known_tcp} TCP and {known_unix} UNIX listeners, expected all"
        );
        // Every holder's fd count and limit as /proc lists them (the holders are idle, so the
        // numbers stand still).
        let mut checked_procs = std::collections::HashSet::new();
        for p in snap.tcp_listeners.iter().flat_map(|l| l.owners.processes()) {
            if !checked_procs.insert(p.pid) {
                continue;
            }
            let listed = std::fs::read_dir(format!("/proc/{}/fd", p.pid))?.count() as u64;
            let limits = std::fs::read_to_string(format!("/proc/{}/limits", p.pid))?;
            ensure!(
                p.fds_open == Some(listed)
                    && Some(p.fd_limit) == sockq::collect::owners::parse_nofile_soft_limit(&limits),
                "pid {}: sockq says {:?} fds of {:?}, /proc lists {listed}",
                p.pid,
                p.fds_open,
                p.fd_limit
            );
        }
        ensure!(
            checked_procs.len() == HOLDERS,
            "{} owners",
            checked_procs.len()
        );
        facts.push((
            "scale scene".to_string(),
            format!(
                "10,000 TCP listeners (8,000 on 127.0.0.1, 2,000 on [::1]), {UNIX_LISTENERS} UNIX \
                 listeners, made and held by {HOLDERS} processes (5 TCP each, 1 UNIX each for the \
                 first 1,000; forked without exec, small fd tables); both tools see all of them and \
                 attribute every one"
            ),
        ));

        if let Some(p) = profile {
            let mut warm = collector(true)?;
            warm.sample()?;
            match p.op.as_str() {
                "listeners" => p.run(|| Ok(fast.listeners().map(drop)?))?,
                "unix" => p.run(|| Ok(fast.unix_listeners().map(drop)?))?,
                "sample-warm" => p.run(|| Ok(warm.sample().map(drop)?))?,
                "sample-cold" => p.run(|| Ok(collector(true)?.sample().map(drop)?))?,
                other => bail!("no profile {other:?} in the scale phase"),
            }
            drop(holders);
            return Ok((Vec::new(), facts));
        }

        let ss = PathBuf::from("ss");
        let mut out = Vec::new();

        eprintln!("  timing: listener sample vs ss -ltn vs raw LISTEN dumps");
        let mut raw = DiagSocket::new()?;
        let mut raw_plain = DiagSocket::new()?;
        let listen_req = |ext: bool| -> Vec<SockDiagMessage> {
            both_families()
                .iter()
                .map(|&f| {
                    if ext {
                        diag::listen_request(f)
                    } else {
                        diag::listen_depth_request(f)
                    }
                })
                .collect()
        };
        // The fast poll's own path (depths only), on a collector of its own.
        let mut poll = collector(false)?;
        let mut depths = Vec::with_capacity(10_000);
        let v = rotating(
            runs,
            &mut [
                &mut || {
                    let (t, s) = time_call(|| fast.listeners())?;
                    ensure!(s.listeners.len() == 10_000);
                    Ok(t)
                },
                &mut || time_process(&ss, &["-ltn"]),
                &mut || {
                    let (t, n) = time_call(|| raw_count(&mut raw, listen_req(true)))?;
                    ensure!(n == 10_000, "raw LISTEN dump counted {n}");
                    Ok(t)
                },
                &mut || {
                    let (t, n) = time_call(|| raw_count(&mut raw_plain, listen_req(false)))?;
                    ensure!(n == 10_000, "raw LISTEN dump counted {n}");
                    Ok(t)
                },
                &mut || {
                    let (t, ()) = time_call(|| poll.listener_depths(&mut depths))?;
                    ensure!(
                        depths.len() == 10_000,
                        "listener_depths saw {}",
                        depths.len()
                    );
                    Ok(t)
                },
            ],
        )?;
        let name = "listener sample, 10,000 TCP listeners (`Collector::listeners`)";
        out.push(Comparison {
            name: name.into(),
            sockq: v[0].clone(),
            reference_label: "`ss -ltn`".into(),
            reference: v[1].clone(),
            target: Some(1.0 / 3.0),
        });
        out.push(Comparison {
            name: name.into(),
            sockq: v[0].clone(),
            reference_label: "raw floor: same two LISTEN dumps (with SKMEMINFO), counting only"
                .into(),
            reference: v[2].clone(),
            target: None,
        });
        out.push(Comparison {
            name: name.into(),
            sockq: v[0].clone(),
            reference_label:
                "raw floor: two LISTEN dumps without extensions (as `ss -ltn` asks), counting only"
                    .into(),
            reference: v[3].clone(),
            target: None,
        });
        out.push(Comparison {
            name: "fast poll, 10,000 TCP listeners (`Collector::listener_depths`, 10 Hz)".into(),
            sockq: v[4].clone(),
            reference_label: "`ss -ltn`".into(),
            reference: v[1].clone(),
            target: Some(1.0 / 3.0),
        });
        eprintln!("  timing: owner refresh, every process vs in turn");
        {
            // Owners alone: one warm resolver that refreshes every holder process on every call
            // (as sockq does with at most 256 of them) and one with sockq's policy at this scale
            // (hot processes plus a tenth of the others per call), on the same sockets.
            let sample = fast.listeners()?.listeners;
            let mut sockets: Vec<(u64, u32)> = sample.iter().map(|l| (l.inode, l.uid)).collect();
            sockets.extend(
                fast.unix_listeners()?
                    .0
                    .iter()
                    .map(|u| (u.inode, sockq::collect::owners::UID_UNKNOWN)),
            );
            let netns = sockq::collect::netns::current_netns_inode();
            let resolver = || {
                sockq::collect::owners::OwnerResolver::new(
                    PathBuf::from("/proc"),
                    netns,
                    Duration::from_secs(2),
                )
            };
            let mut every = resolver().with_refresh_policy(usize::MAX, 1);
            let mut in_turn = resolver();
            let t0 = Instant::now();
            for r in [&mut every, &mut in_turn] {
                let first = r.resolve(&sockets, t0);
                ensure!(first.values().all(|o| !o.processes().is_empty()));
            }
            // Calls 1 s apart in the resolvers' clock (the timed calls are closer in real time).
            let (mut every_calls, mut in_turn_calls) = (0u64, 0u64);
            let v = rotating(
                runs,
                &mut [
                    &mut || {
                        every_calls += 1;
                        let now = t0 + Duration::from_secs(every_calls);
                        let (t, r) = time_call(|| anyhow::Ok(every.resolve(&sockets, now)))?;
                        ensure!(r.len() == sockets.len());
                        ensure!(r
                            .values()
                            .all(|o| o.processes().iter().all(|p| p.age_ms == 0)));
                        Ok(t)
                    },
                    &mut || {
                        in_turn_calls += 1;
                        let now = t0 + Duration::from_secs(in_turn_calls);
                        let (t, r) = time_call(|| anyhow::Ok(in_turn.resolve(&sockets, now)))?;
                        ensure!(r.len() == sockets.len());
                        let oldest = r
                            .values()
                            .flat_map(|o| o.processes().iter().map(|p| p.age_ms))
                            .max()
                            .unwrap_or(0);
                        ensure!(oldest <= 10_000, "a process's numbers are {oldest} ms old");
                        Ok(t)
                    },
                ],
            )?;
            ensure!(
                every.scans() == 1 && in_turn.scans() == 1,
                "a timed resolver rescanned /proc"
            );
            out.push(Comparison {
                name: "owners, warm, 11,000 sockets / 2,000 processes: each call refreshes a \
                       tenth of the processes (`OwnerResolver::resolve`, sockq's policy above 256 \
                       processes)"
                    .into(),
                sockq: v[1].clone(),
                reference_label: "same, every process refreshed on every call".into(),
                reference: v[0].clone(),
                target: None,
            });
        }

        eprintln!("  timing: UNIX listeners vs ss -lx");
        let (a, b) = paired(
            runs,
            || time_call(|| fast.unix_listeners()).map(|(t, _)| t),
            || time_process(&ss, &["-lx"]),
        )?;
        out.push(Comparison {
            name: "UNIX listeners, 1,000 (`Collector::unix_listeners`)".into(),
            sockq: a,
            reference_label: "`ss -lx`".into(),
            reference: b,
            target: None,
        });

        eprintln!("  timing: full sample with owners (cold and warm) vs ss -ltnp");
        let (mut cold, mut warm, mut reference) =
            (Series::default(), Series::default(), Series::default());
        // The warm collector samples on and on, as sockq's sampler does once a tick; each of
        // its samples refreshes the processes whose turn it is.
        let mut steady = collector(true)?;
        steady.sample()?;
        let mut floor = Series::default();
        let one = |cold: &mut Series, warm: &mut Series, steady: &mut Collector| {
            let (t, _) = time_call(|| collector(true)?.sample().map_err(anyhow::Error::from))?;
            cold.push(t);
            let (t, s) = time_call(|| steady.sample())?;
            ensure!(s.tcp_listeners.len() == 10_000);
            ensure!(s
                .tcp_listeners
                .iter()
                .all(|l| !l.owners.processes().is_empty()));
            warm.push(t);
            anyhow::Ok(())
        };
        let raw_scan = |floor: &mut Series| {
            let (t, n) = time_call(raw_proc_floor)?;
            ensure!(n >= 11_000, "the raw /proc floor found {n} socket links");
            floor.push(t);
            anyhow::Ok(())
        };
        one(&mut Series::default(), &mut Series::default(), &mut steady)?;
        time_process(&ss, &["-ltnp"])?;
        raw_scan(&mut Series::default())?;
        let timed = Instant::now();
        for i in 0..runs {
            check_stop()?;
            if i % 2 == 0 {
                one(&mut cold, &mut warm, &mut steady)?;
                reference.push(time_process(&ss, &["-ltnp"])?);
                raw_scan(&mut floor)?;
            } else {
                raw_scan(&mut floor)?;
                reference.push(time_process(&ss, &["-ltnp"])?);
                one(&mut cold, &mut warm, &mut steady)?;
            }
        }
        facts.push((
            "warm full samples".to_string(),
            format!(
                "{runs} consecutive samples of one collector over {:.1} s, so no 30 s full \
                 /proc rescan among them (in a long run one such rescan, about the cold \
                 sample's cost, comes every 30 s)",
                timed.elapsed().as_secs_f64()
            ),
        ));
        out.push(Comparison {
            name: "full sample with owners, warm (`Collector::sample` of a collector that has \
                   sampled before)"
                .into(),
            sockq: warm,
            reference_label: "`ss -ltnp`".into(),
            reference: reference.clone(),
            target: Some(0.25),
        });
        out.push(Comparison {
            name:
                "full sample with owners, cold (new `Collector` + first `sample`: full /proc scan)"
                    .into(),
            sockq: cold.clone(),
            reference_label: "`ss -ltnp`".into(),
            reference: reference.clone(),
            target: Some(0.25),
        });
        out.push(Comparison {
            name: "raw /proc floor: list every /proc/PID/fd and readlink every fd, counting \
                   socket links only (what any /proc-based attribution must do once)"
                .into(),
            sockq: floor.clone(),
            reference_label: "`ss -ltnp`".into(),
            reference,
            target: None,
        });
        out.push(Comparison {
            name: "full sample with owners, cold".into(),
            sockq: cold,
            reference_label: "raw /proc floor (row above)".into(),
            reference: floor,
            target: None,
        });

        eprintln!("  timing: sockq snapshot --json process vs ss -ltnp");
        let (a, b) = paired(
            runs,
            || time_process(&sockq, &["snapshot", "--json"]),
            || time_process(&ss, &["-ltnp"]),
        )?;
        out.push(Comparison {
            name: "`sockq snapshot --json` as a process (cold owners, JSON of 11,000 sockets)"
                .into(),
            sockq: a,
            reference_label: "`ss -ltnp`".into(),
            reference: b,
            target: None,
        });
        drop(holders);
        Ok((out, facts))
    })?;
    report.comparisons.extend(comparisons);
    for (what, value) in facts {
        report.fact(&what, value, "", None);
    }
    report.fact(
        "`ss -ltn` in an empty namespace (process start floor), median wall",
        format!("{} ms", ms(floor.wall())),
        "",
        None,
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Phase: syn (100,000 SYN-RECV requests)
// ---------------------------------------------------------------------------------------------

const SYN_REQUESTS: u32 = 100_000;
const SYN_BACKLOG: i32 = 262_144;

/// The least a cold owner lookup can do through /proc: open and list /proc/PID/fd of every
/// process and readlink every fd relative to it; returns the number of socket links.
fn raw_proc_floor() -> anyhow::Result<u64> {
    use nix::fcntl::OFlag;
    let mut sockets = 0u64;
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let Ok(mut dir) = nix::dir::Dir::open(
            format!("/proc/{pid}/fd").as_str(),
            flags,
            nix::sys::stat::Mode::empty(),
        ) else {
            continue;
        };
        let fds: Vec<std::ffi::CString> = dir
            .iter()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_bytes()
                    .first()
                    .is_some_and(u8::is_ascii_digit)
            })
            .map(|e| e.file_name().to_owned())
            .collect();
        for fd in fds {
            if nix::fcntl::readlinkat(&dir, fd.as_c_str())
                .is_ok_and(|t| t.as_encoded_bytes().starts_with(b"socket:["))
            {
                sockets += 1;
            }
        }
    }
    Ok(sockets)
}

fn syn_recv_total(c: &mut Collector) -> anyhow::Result<u64> {
    Ok(c.syn_recv()?.0.total)
}

fn both_families() -> [Family; 2] {
    [Family::Ipv4, Family::Ipv6]
}

/// Runs the dumps and counts their messages, decoding nothing.
fn raw_count(sock: &mut DiagSocket, requests: Vec<SockDiagMessage>) -> anyhow::Result<u64> {
    let mut n = 0u64;
    for r in requests {
        sock.dump(r, |_| {
            n += 1;
            Ok(())
        })?;
    }
    Ok(n)
}

/// Counts the messages of SYN_RECV dumps of `families`, decoding nothing.
fn raw_floor(sock: &mut DiagSocket, families: &[Family]) -> anyhow::Result<u64> {
    let mut n = 0u64;
    for &f in families {
        sock.dump(diag::syn_recv_request(f), |_| {
            n += 1;
            Ok(())
        })?;
    }
    Ok(n)
}

struct FloodResults {
    comparisons: Vec<Comparison>,
    facts: Vec<(String, String, String, Option<bool>)>,
    notes: Vec<String>,
}

fn phase_syn(opts: &Opts, sockq: PathBuf, report: &mut Report) -> anyhow::Result<()> {
    let runs = opts.runs;
    let flood_secs = opts.flood_secs;
    let keys = opts.keys;
    let profile = Profile::from_opts(opts);
    let r = in_new_netns("syn", move || -> anyhow::Result<FloodResults> {
        let mut facts = Vec::new();
        let mut notes = Vec::new();
        syn::setup_sink()?;
        std::fs::write("/proc/sys/net/core/somaxconn", SYN_BACKLOG.to_string())
            .context("raising somaxconn in the namespace")?;
        let got = std::fs::read_to_string("/proc/sys/net/core/somaxconn")?;
        ensure!(got.trim() == SYN_BACKLOG.to_string(), "somaxconn is {got}");
        std::fs::write("/proc/sys/net/ipv4/tcp_synack_retries", "7")?;
        let target = SocketAddrV4::new(syn::TARGET_ADDR, 80);
        let mut holders = Holders::default();
        fork_holder(
            &mut holders,
            &[HoldSpec::tcp(SocketAddr::V4(target), SYN_BACKLOG)],
        )?;
        let mut c = collector(false)?;
        wait_until("the SYN-RECV listener", Duration::from_secs(10), || {
            Ok(!c.listeners()?.listeners.is_empty())
        })?;
        let l = c.listeners()?;
        let backlog = l.listeners.iter().find(|l| l.port == 80).map(|l| l.backlog);
        ensure!(
            backlog == Some(SYN_BACKLOG as u32),
            "listener backlog {backlog:?}"
        );

        let before = netstat_counters()?;
        let mut sender = syn::SynSender::new()?;
        let t0 = Instant::now();
        sender.flood(target, 0, SYN_REQUESTS)?;
        let sent_in = t0.elapsed();
        let flood_start = Instant::now();
        // Wait for the kernel to take them all in; top up what the input path lost.
        let mut total = 0;
        let mut next_source = SYN_REQUESTS;
        for attempt in 0..6 {
            let mut last = 0;
            let t = Instant::now();
            loop {
                sleep_checked(Duration::from_millis(200))?;
                total = syn_recv_total(&mut c)?;
                if total >= u64::from(SYN_REQUESTS)
                    || (total == last && t.elapsed() > Duration::from_secs(1))
                {
                    break;
                }
                last = total;
            }
            if total >= u64::from(SYN_REQUESTS) {
                break;
            }
            let missing = SYN_REQUESTS - total as u32;
            eprintln!("  {total} requests kept; sending {missing} more (attempt {attempt})");
            sender.flood(target, next_source, missing)?;
            next_source += missing;
        }
        let after = netstat_counters()?;
        let moved = |name: &str| {
            after.get(name).copied().unwrap_or(0) - before.get(name).copied().unwrap_or(0)
        };
        let ss_count = count_rows("ss", &["-tn", "state", "syn-recv"], |_| true)?;
        eprintln!(
            "  {SYN_REQUESTS} SYNs sent in {} ms; sockq counts {total}, ss {ss_count}; \
             SyncookiesSent +{}, TCPReqQFullDoCookies +{}, TCPReqQFullDrop +{}, ListenDrops +{}",
            ms(sent_in),
            moved("SyncookiesSent"),
            moved("TCPReqQFullDoCookies"),
            moved("TCPReqQFullDrop"),
            moved("ListenDrops"),
        );
        ensure!(
            total == u64::from(SYN_REQUESTS) && ss_count == SYN_REQUESTS as usize,
            "expected exactly {SYN_REQUESTS} SYN-RECV requests: sockq {total}, ss {ss_count}"
        );
        ensure!(
            moved("SyncookiesSent") == 0 && moved("TCPReqQFullDoCookies") == 0,
            "SYN cookies were sent: the SYN-RECV count undercounts"
        );
        facts.push((
            "SYN flood scene".into(),
            format!(
                "{SYN_REQUESTS} SYNs sent in {} ms (top-ups: {} extra); sockq and `ss -tn state \
                 syn-recv` both count {total}; SyncookiesSent +0, TCPReqQFullDoCookies +0, \
                 ListenDrops +{}",
                ms(sent_in),
                next_source - SYN_REQUESTS,
                moved("ListenDrops")
            ),
            String::new(),
            None,
        ));

        let mut raw = DiagSocket::new()?;
        if let Some(p) = profile {
            match p.op.as_str() {
                "syn-recv" => p.run(|| syn_recv_total(&mut c).map(drop))?,
                "syn-floor" => p.run(|| raw_floor(&mut raw, &both_families()).map(drop))?,
                other => bail!("no profile {other:?} in the syn phase"),
            }
            drop(holders);
            return Ok(FloodResults {
                comparisons: Vec::new(),
                facts,
                notes,
            });
        }
        // Every request's SYN-ACK is retransmitted 1, 3, 7, 15, 31, 63, 127 s after its SYN:
        // 100,000 at once, a burst of kernel work on one core. Time between the 7 s and the
        // 15 s bursts.
        let ss = PathBuf::from("ss");
        let mut out = Vec::new();
        sleep_checked(Duration::from_secs(8).saturating_sub(flood_start.elapsed()))?;
        let window_start = flood_start.elapsed();
        eprintln!("  timing: SYN-RECV count vs ss -tn state syn-recv vs raw floor");
        let both = [Family::Ipv4, Family::Ipv6];
        let (mut raw4, mut p1) = (DiagSocket::new()?, DiagSocket::new()?);
        // What a sample does in this namespace: only the families that have listeners (the one
        // listener here is IPv4) are dumped.
        let mut c4 = collector(false)?;
        {
            let (a, _) = c.syn_recv()?;
            let b = proto::syn_recv(&mut p1, &both)?;
            ensure!(
                a.total == b.total && a.by_local == b.by_local,
                "the prototype SYN-RECV tally disagrees with Collector::syn_recv"
            );
        }
        let v = rotating(
            runs,
            &mut [
                &mut || {
                    let (t, n) = time_call(|| syn_recv_total(&mut c))?;
                    ensure!(n == u64::from(SYN_REQUESTS), "sockq counted {n}");
                    Ok(t)
                },
                &mut || time_process(&ss, &["-tn", "state", "syn-recv"]),
                &mut || {
                    let (t, n) = time_call(|| raw_floor(&mut raw, &both))?;
                    ensure!(n == u64::from(SYN_REQUESTS), "raw dump counted {n}");
                    Ok(t)
                },
                &mut || Ok(time_call(|| raw_floor(&mut raw4, &[Family::Ipv4]))?.0),
                &mut || {
                    let (t, r) = time_call(|| proto::syn_recv(&mut p1, &both))?;
                    ensure!(r.total == u64::from(SYN_REQUESTS));
                    Ok(t)
                },
                &mut || {
                    let (t, (r, _)) = time_call(|| c4.syn_recv_for(&[Family::Ipv4]))?;
                    ensure!(r.total == u64::from(SYN_REQUESTS));
                    Ok(t)
                },
            ],
        )?;
        let (s_sockq, s_ss, s_floor, s_floor4) =
            (v[0].clone(), v[1].clone(), v[2].clone(), v[3].clone());
        facts.push((
            "SYN-RECV timing window (flood age; SYN-ACK retransmit bursts at 1, 3, 7, 15 s)".into(),
            format!(
                "{:.1} s – {:.1} s",
                window_start.as_secs_f64(),
                flood_start.elapsed().as_secs_f64()
            ),
            String::new(),
            None,
        ));
        out.push(Comparison {
            name: "SYN-RECV count, 100,000 requests, both families (`Collector::syn_recv`, as \
                   in a namespace with IPv4 and IPv6 listeners)"
                .into(),
            sockq: s_sockq.clone(),
            reference_label: "`ss -tn state syn-recv`".into(),
            reference: s_ss.clone(),
            target: Some(1.0 / 3.0),
        });
        out.push(Comparison {
            name: "SYN-RECV count, 100,000 requests, both families (`Collector::syn_recv`, as \
                   in a namespace with IPv4 and IPv6 listeners)"
                .into(),
            sockq: s_sockq.clone(),
            reference_label: "raw floor: same two dumps (IPv4, IPv6), counting messages only"
                .into(),
            reference: s_floor.clone(),
            target: Some(1.3),
        });
        out.push(Comparison {
            name: "SYN-RECV count, 100,000 requests, both families (`Collector::syn_recv`, as \
                   in a namespace with IPv4 and IPv6 listeners)"
                .into(),
            sockq: s_sockq,
            reference_label: "raw floor, IPv4 dump only (for scale: what the IPv6 walk costs)"
                .into(),
            reference: s_floor4.clone(),
            target: None,
        });
        out.push(Comparison {
            name: "PROTOTYPE (not sockq): SYN-RECV count with the 72-byte header read in place \
                   instead of by the crate's parser (the run-length tally is sockq's), both dumps"
                .into(),
            sockq: v[4].clone(),
            reference_label: "raw floor: same two dumps, counting only".into(),
            reference: s_floor.clone(),
            target: Some(1.3),
        });
        out.push(Comparison {
            name: "SYN-RECV count as a sample takes it here (`Collector::syn_recv_for`, IPv4 \
                   only: no IPv6 listener in the namespace, so no IPv6 request can exist)"
                .into(),
            sockq: v[5].clone(),
            reference_label: "`ss -tn state syn-recv`".into(),
            reference: s_ss.clone(),
            target: Some(1.0 / 3.0),
        });

        eprintln!("  timing: listener sample under the flood vs ss -ltn");
        let (a, b) = paired(
            runs,
            || time_call(|| c.listeners()).map(|(t, _)| t),
            || time_process(&ss, &["-ltn"]),
        )?;
        out.push(Comparison {
            name: "listener sample with 100,000 SYN-RECV present (1 listener)".into(),
            sockq: a,
            reference_label: "`ss -ltn`".into(),
            reference: b,
            target: None,
        });

        // --- sockq watch --json under the flood ---
        if flood_secs > 0 {
            eprintln!(
                "  sockq watch --json under the flood for {flood_secs} s (flood age {} s)",
                flood_start.elapsed().as_secs()
            );
            let watch = flood_watch(&sockq, flood_secs)?;
            facts.extend(watch.0);
            notes.extend(watch.1);
        }

        // --- the dashboard's answer to a key ---
        if keys > 0 {
            eprintln!(
                "  dashboard key latency under the flood (flood age {} s)",
                flood_start.elapsed().as_secs()
            );
            facts.extend(flood_keys(&sockq, keys)?);
        }

        let still = syn_recv_total(&mut c)?;
        facts.push((
            "SYN-RECV requests still present at the end of the flood tests".into(),
            format!("{still} (flood age {} s)", flood_start.elapsed().as_secs()),
            format!("{SYN_REQUESTS}"),
            Some(still == u64::from(SYN_REQUESTS)),
        ));
        drop(holders);
        Ok(FloodResults {
            comparisons: out,
            facts,
            notes,
        })
    })?;
    report.comparisons.extend(r.comparisons);
    for (what, value, target, met) in r.facts {
        report.fact(&what, value, &target, met);
    }
    for n in r.notes {
        report.note(n);
    }
    Ok(())
}

type Facts = Vec<(String, String, String, Option<bool>)>;

/// `sockq watch --json --interval 1s` for `secs`: its own CPU and the collector stats per tick.
fn flood_watch(sockq: &Path, secs: u64) -> anyhow::Result<(Facts, Vec<String>)> {
    let mut cmd = Command::new(sockq);
    cmd.args(["watch", "--json", "--interval", "1s"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    strip_sockq_env(&mut cmd);
    let mut children = Children::default();
    children.0.push(cmd.spawn()?);
    let child = &mut children.0[0];
    let pid = child.id();
    let stdout = child.stdout.take().context("no stdout")?;
    let (tx, rx) = mpsc::channel::<(Instant, String)>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(20))
        .context("no tick from sockq watch within 20 s")?;
    let cpu0 = proc_cpu(pid)?;
    let t0 = Instant::now();
    let mut lines = vec![first];
    let end = t0 + Duration::from_secs(secs);
    while Instant::now() < end {
        check_stop()?;
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            lines.push(l);
        }
    }
    let cpu1 = proc_cpu(pid)?;
    let wall = t0.elapsed();
    let rss = proc_status_kb(pid, "VmRSS").unwrap_or(0);
    drop(children);

    let mut cpu = Vec::new();
    let mut age = Vec::new();
    let mut sample_ms = Vec::new();
    let mut throttled = 0;
    let mut totals = Vec::new();
    let mut budget = 0.0;
    // The first tick includes start-up; the rest are steady state.
    for (_, l) in lines.iter().skip(1) {
        let v: serde_json::Value = serde_json::from_str(l).context("a watch --json line")?;
        let c = &v["collector"];
        cpu.push(c["cpu_percent"].as_f64().unwrap_or(f64::NAN));
        age.push(c["syn_recv_age_ms"].as_u64().unwrap_or(0));
        sample_ms.push(c["sample_ms"].as_f64().unwrap_or(f64::NAN));
        budget = c["budget_percent"].as_f64().unwrap_or(0.0);
        if c["throttled"].as_bool() == Some(true) {
            throttled += 1;
        }
        totals.push(v["snapshot"]["syn_recv"]["total"].as_u64().unwrap_or(0));
    }
    let n = cpu.len();
    ensure!(n > 0, "sockq watch printed no tick after the first");
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let maxf = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let process_pct = cpu1.saturating_sub(cpu0).as_secs_f64() / wall.as_secs_f64() * 100.0;
    let facts = vec![
        (
            format!("flood: `sockq watch --json` process CPU over {secs} s (utime+stime)"),
            format!("{process_pct:.2} % of one core"),
            format!("≤ {budget} % (the sampler's budget)"),
            Some(process_pct <= budget),
        ),
        (
            "flood: collector `cpu_percent` per tick (sampler thread)".into(),
            format!(
                "mean {:.2} %, max {:.1} % over {n} ticks",
                mean(&cpu),
                maxf(&cpu)
            ),
            format!("mean ≤ {budget} %"),
            Some(mean(&cpu) <= budget),
        ),
        (
            "flood: ticks marked `throttled`; `syn_recv_age_ms` max".into(),
            format!(
                "{throttled} of {n}; SYN-RECV numbers at most {:.1} s old",
                age.iter().copied().max().unwrap_or(0) as f64 / 1000.0
            ),
            String::new(),
            None,
        ),
        (
            "flood: `sample_ms` per tick (wall of the full sample)".into(),
            format!(
                "median {:.1} ms, max {:.1} ms",
                {
                    let mut s = sample_ms.clone();
                    s.sort_by(f64::total_cmp);
                    s[s.len() / 2]
                },
                maxf(&sample_ms)
            ),
            String::new(),
            None,
        ),
        (
            "flood: SYN-RECV total in the ticks".into(),
            format!(
                "min {}, max {}",
                totals.iter().min().unwrap_or(&0),
                totals.iter().max().unwrap_or(&0)
            ),
            String::new(),
            None,
        ),
        (
            "flood: `sockq watch` VmRSS".into(),
            format!("{:.1} MB", rss as f64 / 1024.0),
            String::new(),
            None,
        ),
    ];
    Ok((facts, Vec::new()))
}

const HELP_MARK: &str = "any key closes";

/// The dashboard under the flood: latency from `send-keys` to the help overlay showing (and
/// going), polling `capture-pane`.
fn flood_keys(sockq: &Path, keys: usize) -> anyhow::Result<Facts> {
    let tmux = Tmux::start("flood", 200, 50, sockq, "--interval 1s")?;
    tmux.wait_for(Duration::from_secs(20), "the SYN-RECV listener", |s| {
        s.contains("10.88.0.1:80")
    })?;
    let pid = tmux.pane_pid()?;
    sleep_checked(Duration::from_secs(2))?;
    // Resolution: one capture-pane round trip.
    let mut cap = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        tmux.capture()?;
        cap.push(t.elapsed());
    }
    cap.sort();
    let cpu0 = proc_cpu(pid)?;
    let t_start = Instant::now();
    let mut lat = Vec::new();
    for k in 0..keys {
        // Spread the presses over the phase of the 1 s tick.
        sleep_checked(Duration::from_millis(150 + (k as u64 * 137) % 700))?;
        let t = Instant::now();
        tmux.send("?")?;
        tmux.wait_for(Duration::from_secs(5), "the help overlay", |s| {
            s.contains(HELP_MARK)
        })?;
        lat.push(t.elapsed());
        sleep_checked(Duration::from_millis(150))?;
        let t = Instant::now();
        tmux.send("?")?;
        tmux.wait_for(Duration::from_secs(5), "the help overlay closed", |s| {
            !s.contains(HELP_MARK)
        })?;
        lat.push(t.elapsed());
    }
    let cpu =
        proc_cpu(pid)?.saturating_sub(cpu0).as_secs_f64() / t_start.elapsed().as_secs_f64() * 100.0;
    let screen = tmux.capture()?;
    lat.sort();
    let median = lat[lat.len() / 2];
    let max = *lat.last().unwrap_or(&Duration::ZERO);
    Ok(vec![
        (
            format!(
                "flood: dashboard answers a key (help overlay on/off, {} presses): send-keys → \
                 change seen in capture-pane",
                lat.len()
            ),
            format!(
                "median {} ms, max {} ms (one capture-pane alone: median {} ms)",
                ms(median),
                ms(max),
                ms(cap[cap.len() / 2])
            ),
            "≤ 200 ms".into(),
            Some(max <= Duration::from_millis(200)),
        ),
        (
            "flood: dashboard process CPU during the key test (utime+stime)".into(),
            format!(
                "{cpu:.2} % of one core (screen shows the throttle note: {})",
                screen.contains("CPU budget")
            ),
            String::new(),
            None,
        ),
    ])
}

// ---------------------------------------------------------------------------------------------
// Phase: quiet host
// ---------------------------------------------------------------------------------------------

fn phase_quiet(opts: &Opts, sockq: &Path, report: &mut Report) -> anyhow::Result<()> {
    let secs = opts.quiet_secs;
    let host_tcp = count_rows("ss", &["-ltn"], |_| true)?;
    let host_unix = count_rows("ss", &["-lx"], |_| true)?;
    let mut cmd = Command::new(sockq);
    cmd.args(["watch", "--interval", "1s"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    strip_sockq_env(&mut cmd);
    let mut children = Children::default();
    children.0.push(cmd.spawn()?);
    let watch_pid = children.0[0].id();
    let tmux = Tmux::start("quiet", 200, 50, sockq, "--interval 1s")?;
    tmux.wait_for(Duration::from_secs(20), "the header", |s| {
        s.contains("somaxconn")
    })?;
    let dash_pid = tmux.pane_pid()?;
    sleep_checked(Duration::from_secs(3))?;
    let load0 = loadavg();
    let (w0, d0, t0) = (proc_cpu(watch_pid)?, proc_cpu(dash_pid)?, Instant::now());
    sleep_checked(Duration::from_secs(secs))?;
    let (w1, d1, wall) = (proc_cpu(watch_pid)?, proc_cpu(dash_pid)?, t0.elapsed());
    let dash_rss = proc_status_kb(dash_pid, "VmRSS")?;
    let watch_rss = proc_status_kb(watch_pid, "VmRSS")?;
    let pct =
        |a: Duration, b: Duration| b.saturating_sub(a).as_secs_f64() / wall.as_secs_f64() * 100.0;
    let (wp, dp) = (pct(w0, w1), pct(d0, d1));
    drop(tmux);
    drop(children);
    let ctx = format!(
        "host: {host_tcp} TCP and {host_unix} UNIX listeners; load {load0} → {}",
        loadavg()
    );
    report.fact(
        &format!("quiet host: dashboard (tmux 200x50, `--interval 1s`) CPU over {secs} s"),
        format!(
            "{dp:.2} % of one core; VmRSS {:.1} MB ({ctx})",
            dash_rss as f64 / 1024.0
        ),
        "≤ 0.5 %",
        Some(dp <= 0.5),
    );
    report.fact(
        &format!("quiet host: `sockq watch --interval 1s` CPU over {secs} s"),
        format!(
            "{wp:.2} % of one core; VmRSS {:.1} MB",
            watch_rss as f64 / 1024.0
        ),
        "≤ 0.5 %",
        Some(wp <= 0.5),
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Phase: RSS with 1,000 listeners and 900 history points
// ---------------------------------------------------------------------------------------------

fn phase_rss(opts: &Opts, sockq: PathBuf, report: &mut Report) -> anyhow::Result<()> {
    let secs = opts.rss_secs;
    // The synthetic fill, in a child process of its own (started now, read at the end).
    let synthetic = Command::new(std::env::current_exe()?)
        .arg("--rss-synthetic")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut synth_children = Children::default();
    synth_children.0.push(synthetic);
    let facts = in_new_netns("rss", move || {
        let tcp: Vec<HoldSpec> = (0..1_000u16)
            .map(|i| HoldSpec::tcp(SocketAddr::from(([127, 0, 0, 1], 30_000 + i)), 128))
            .collect();
        let mut holders = Holders::default();
        for chunk in tcp.chunks(5) {
            fork_holder(&mut holders, chunk)?;
        }
        let mut c = collector(false)?;
        wait_until("1,000 TCP listeners", Duration::from_secs(30), || {
            Ok(c.listeners()?.listeners.len() >= 1_000)
        })?;
        let fast = Tmux::start("rss-fill", 200, 50, &sockq, "--interval 100ms --window 90s")?;
        let default = Tmux::start("rss-default", 200, 50, &sockq, "--interval 1s")?;
        for t in [&fast, &default] {
            t.wait_for(Duration::from_secs(30), "the listeners", |s| {
                s.contains("127.0.0.1:30")
            })?;
        }
        let (fp, dp) = (fast.pane_pid()?, default.pane_pid()?);
        let t0 = Instant::now();
        let (c0, d0) = (proc_cpu(fp)?, proc_cpu(dp)?);
        sleep_checked(Duration::from_secs(secs))?;
        let wall = t0.elapsed().as_secs_f64();
        let fast_cpu = proc_cpu(fp)?.saturating_sub(c0).as_secs_f64() / wall * 100.0;
        let default_cpu = proc_cpu(dp)?.saturating_sub(d0).as_secs_f64() / wall * 100.0;
        let mb = |pid, key| -> anyhow::Result<String> {
            Ok(format!("{:.1}", proc_status_kb(pid, key)? as f64 / 1024.0))
        };
        let facts = vec![
            (
                format!(
                    "RSS, dashboard with 1,000 listeners, `--interval 100ms --window 90s` \
                     (900 points per listener = 15 min at 1 s), after {secs} s"
                ),
                format!(
                    "VmRSS {} MB, VmHWM {} MB (its CPU meanwhile: {fast_cpu:.1} % of one core)",
                    mb(fp, "VmRSS")?,
                    mb(fp, "VmHWM")?
                ),
            ),
            (
                format!(
                    "RSS, dashboard with 1,000 listeners, defaults (1 s, 15 min window), after \
                     {secs} s (history {secs}/900 full)"
                ),
                format!(
                    "VmRSS {} MB, VmHWM {} MB (its CPU meanwhile: {default_cpu:.2} % of one core)",
                    mb(dp, "VmRSS")?,
                    mb(dp, "VmHWM")?
                ),
            ),
        ];
        drop(fast);
        drop(default);
        drop(holders);
        Ok(facts)
    })?;
    let mut first = true;
    for (what, value) in facts {
        let met = first.then(|| {
            // "VmRSS X MB" of the filled dashboard.
            value
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<f64>().ok())
                .is_some_and(|v| v <= 30.0)
        });
        report.fact(&what, value, if first { "≤ 30 MB" } else { "" }, met);
        first = false;
    }
    let child = &mut synth_children.0[0];
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().context("stdout")?, &mut out)?;
    child.wait()?;
    report.fact(
        "RSS, synthetic fill: 900 ticks of 1,000 listeners ingested into an `Engine` (15 min at \
         1 s) + one 200x50 frame, in a child process of this harness",
        out.trim().to_string(),
        "",
        None,
    );
    Ok(())
}

/// The `--rss-synthetic` child: fill an engine, draw a frame, print the memory.
fn rss_synthetic() -> anyhow::Result<()> {
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;
    use sockq::engine::{Engine, EngineConfig};
    let me = std::process::id();
    let base = proc_status_kb(me, "VmRSS")?;
    let mut synth = synth::Synth::new(1_000, 0);
    let mut engine = Engine::new(EngineConfig::default());
    for _ in 0..EngineConfig::default().capacity() {
        engine.ingest(synth.next_sample());
    }
    let mut app = sockq::tui::app::App::new(Duration::from_secs(1), true);
    let mut term = Terminal::new(TestBackend::new(200, 50))?;
    term.draw(|f| sockq::tui::render::draw(f, &mut app, &engine))?;
    println!(
        "VmRSS {:.1} MB, VmHWM {:.1} MB (before the fill {:.1} MB); engine history rings {:.1} MB",
        proc_status_kb(me, "VmRSS")? as f64 / 1024.0,
        proc_status_kb(me, "VmHWM")? as f64 / 1024.0,
        base as f64 / 1024.0,
        engine.history_bytes() as f64 / 1_048_576.0
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------

fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    if opts.rss_synthetic {
        return rss_synthetic();
    }
    ensure!(
        nix::unistd::geteuid().is_root(),
        "perf_compare makes network namespaces, raw sockets and sysctls inside them: run it as root"
    );
    ensure!(opts.runs >= 1, "--runs must be at least 1");
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, stop_flag().clone())?;
    }
    let sockq = match &opts.sockq {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .and_then(Path::parent)
            .map(|d| d.join("sockq"))
            .context("no directory")?,
    };
    ensure!(
        sockq.is_file(),
        "{} not found: `cargo build --release --bin sockq` first, or pass --sockq",
        sockq.display()
    );
    let started = Instant::now();
    let load0 = loadavg();
    let machine = machine();
    eprintln!("perf_compare: {machine}; load {load0}");
    let mut report = Report::default();
    let phases: Vec<&str> = opts.only.iter().map(String::as_str).collect();
    for p in &phases {
        ensure!(
            ["quiet", "rss", "scale", "syn"].contains(p),
            "unknown phase {p:?}"
        );
    }
    // Quiet first (nothing of ours running), SYN last (its requests outlive it by a little).
    if phases.contains(&"quiet") {
        eprintln!("== quiet host ({} s)", opts.quiet_secs);
        phase_quiet(&opts, &sockq, &mut report)?;
    }
    if phases.contains(&"rss") {
        eprintln!("== RSS ({} s)", opts.rss_secs);
        phase_rss(&opts, sockq.clone(), &mut report)?;
    }
    if phases.contains(&"scale") {
        eprintln!("== scale: 10,000 TCP + 1,000 UNIX listeners, {HOLDERS} owner processes");
        phase_scale(
            opts.runs,
            sockq.clone(),
            Profile::from_opts(&opts),
            &mut report,
        )?;
    }
    if phases.contains(&"syn") {
        eprintln!("== SYN-RECV: {SYN_REQUESTS} requests");
        phase_syn(&opts, sockq.clone(), &mut report)?;
    }
    println!("## perf_compare results\n");
    println!("- machine: {machine}");
    println!(
        "- load average (1/5/15 min): {load0} at the start, {} at the end; {} s in all",
        loadavg(),
        started.elapsed().as_secs()
    );
    println!("- sockq binary: {}", sockq.display());
    report.print(opts.runs);
    Ok(())
}
