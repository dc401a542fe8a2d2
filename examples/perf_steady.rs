//! What a user pays for the whole running sockq at scale (issue 16), side by side with `ss` in
//! the same run, in private network namespaces (root):
//!
//! - scenes of 10,000 TCP listeners held by 1 process (RLIMIT_NOFILE 20,000) and by 2,000
//!   processes (5 each); 10 of the listeners have clients waiting in their accept queue (the
//!   holders never accept), the others are quiet;
//! - per scene: `sockq watch --interval 1s` (stdout to /dev/null) for `--secs` seconds, its
//!   whole-process CPU (utime + stime from /proc/PID/stat) against `ss -ltnp` run once a second
//!   in the same window (user + sys of those processes); then the dashboard (tmux 200x50,
//!   `--interval 1s`), its CPU over the same length and its RSS; `sockq watch --json` for a few
//!   ticks, for the sampler's own numbers (active listeners, fast poll rate, sample time); and
//!   the cold `sockq snapshot --json` (with its default 250 ms CPU-share window, and with
//!   `--cpu-window 0`) against `ss -ltnp`, medians of `--runs` whole processes, interleaved;
//! - RSS of the dashboard with a full 15-minute-sized history (`--interval 100ms --window 90s`:
//!   900 points per series, filled after 90 s) at 1,000, 10,000 and 50,000 listeners held by one
//!   process (50,000: three, each under an fd limit of 20,000).
//!
//! ```sh
//! cargo build --release --bin sockq --example perf_steady
//! sudo target/release/examples/perf_steady                 # everything, about 10 minutes
//! sudo target/release/examples/perf_steady --rss ''        # the two scenes only
//! sudo target/release/examples/perf_steady --snapshot-only # the cold snapshot rows only
//! sudo target/release/examples/perf_steady --scenes '' --rss 10000 --rss-secs 900 \
//!     --rss-args='--interval 1s --window 15m'              # 15 minutes of history at 1 s
//! ```
//!
//! Prints markdown tables on stdout, progress on stderr. Holders die with the thread that forked
//! them (PR_SET_PDEATHSIG); tmux servers and sockq children are killed on drop.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a measuring tool: it may panic on failure
#![allow(unsafe_code)] // the harness forks and builds raw socket addresses; each block has a SAFETY comment

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use clap::Parser;
use nix::libc;

#[derive(Parser, Debug)]
struct Opts {
    /// Seconds each whole-process CPU window lasts (after a warm-up).
    #[arg(long, default_value_t = 25)]
    secs: u64,
    /// Whole-process runs of `sockq snapshot --json` and of `ss -ltnp` (medians).
    #[arg(long, default_value_t = 7)]
    runs: usize,
    /// Scenes: one (1 holder), many (2,000 holders).
    #[arg(long, default_value = "one,many", value_delimiter = ',')]
    scenes: Vec<String>,
    /// Listener counts of the RSS runs (empty: none).
    #[arg(long, default_value = "1000,10000,50000", value_delimiter = ',')]
    rss: Vec<String>,
    /// Seconds the RSS dashboards run (90 fill the history).
    #[arg(long, default_value_t = 95)]
    rss_secs: u64,
    /// The dashboard's arguments in the RSS runs.
    #[arg(
        long,
        default_value = "--interval 100ms --window 90s",
        allow_hyphen_values = true
    )]
    rss_args: String,
    /// The sockq binary.
    #[arg(long)]
    sockq: Option<PathBuf>,
    /// Per scene, only the cold `snapshot --json` rows (default window and `--cpu-window 0`,
    /// against `ss -ltnp`): no `watch`, no dashboard, no RSS runs.
    #[arg(long)]
    snapshot_only: bool,
    /// The `--cpu-window` of each cold snapshot row; `default`: without the flag (250 ms; an
    /// older sockq has no flag).
    #[arg(long, default_value = "default,0", value_delimiter = ',')]
    cpu_windows: Vec<String>,
}

const LISTENERS: usize = 10_000;
const HOLDERS: usize = 2_000;
const BUSY: usize = 10;
/// Listeners one holder makes at most: RLIMIT_NOFILE's hard limit is often 20,000, and raising
/// it needs CAP_SYS_RESOURCE.
const MAX_PER_HOLDER: usize = 18_000;

/// Listener `i`'s address: one address each on 127.1.0.0/16, port 8080.
fn addr(i: usize) -> SocketAddr {
    let i = i as u32 + 1;
    let ip = Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250 + 1) as u8);
    SocketAddr::V4(SocketAddrV4::new(ip, 8080))
}

/// One listening socket, its address built before the fork (the child does not allocate).
#[derive(Clone, Copy)]
struct Spec {
    addr: libc::sockaddr_storage,
    len: libc::socklen_t,
}

fn spec(a: SocketAddr) -> Spec {
    let sa = socket2::SockAddr::from(a);
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
    Spec {
        addr: storage,
        len: sa.len(),
    }
}

/// Forked holders, killed and reaped on drop.
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

/// Forks a process (no exec) that raises its fd limit to `nofile`, opens the IPv4 listeners of
/// `specs` (backlog 128) and sleeps until killed or until the forking thread ends.
fn fork_holder(holders: &mut Holders, specs: &[Spec], nofile: u64) -> anyhow::Result<()> {
    // SAFETY: the child calls only async-signal-safe functions (setrlimit, socket, setsockopt,
    // bind, listen, prctl, getppid, pause, _exit) on data prepared before the fork.
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
            let lim = libc::rlimit {
                rlim_cur: nofile,
                rlim_max: nofile,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                libc::_exit(4);
            }
            for s in specs {
                let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
                let one: libc::c_int = 1;
                let optlen = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_REUSEADDR,
                    (&raw const one).cast(),
                    optlen,
                );
                if fd < 0
                    || libc::bind(fd, (&raw const s.addr).cast(), s.len) != 0
                    || libc::listen(fd, 128) != 0
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

/// Children killed and reaped on drop.
#[derive(Default)]
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A private tmux server running the dashboard; killed on drop.
struct Tmux(String);

impl Tmux {
    fn start(tag: &str, sockq: &Path, args: &str) -> anyhow::Result<Self> {
        let socket = format!("sockq-steady-{}-{tag}", std::process::id());
        let t = Tmux(socket);
        let status = Command::new("tmux")
            .args(["-f", "/dev/null", "-L", &t.0, "new-session", "-d"])
            .args(["-x", "200", "-y", "50", "-s", "perf"])
            .arg(format!("exec {} {args} 2>/dev/null", sockq.display()))
            .env("SHELL", "/bin/sh")
            .env_remove("TMUX")
            .stdin(Stdio::null())
            .status()?;
        ensure!(status.success(), "tmux new-session failed");
        Ok(t)
    }

    fn pane_pid(&self) -> anyhow::Result<u32> {
        let out = Command::new("tmux")
            .args(["-L", &self.0, "display-message", "-p", "-t", "perf"])
            .arg("#{pane_pid}")
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.0, "kill-server"])
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs `f` on a new thread in a new network namespace with `lo` up.
fn in_new_netns<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .context("unshare(CLONE_NEWNET): run as root")?;
        ensure!(Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()?
            .success());
        f()
    })
    .join()
    .unwrap_or_else(|p| std::panic::resume_unwind(p))
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

/// Wall and CPU (user + sys) of one whole process, stdout to /dev/null.
fn time_process(cmd: &Path, args: &[&str]) -> anyhow::Result<(Duration, Duration)> {
    let c0 = children_cpu();
    let t0 = Instant::now();
    let status = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    ensure!(status.success(), "{} {args:?}: {status}", cmd.display());
    Ok((t0.elapsed(), children_cpu().saturating_sub(c0)))
}

/// utime + stime of a process, from /proc/PID/stat.
fn proc_cpu(pid: u32) -> anyhow::Result<Duration> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = &s[s.rfind(')').context("malformed stat")? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>()? + f[12].parse::<u64>()?;
    // SAFETY: sysconf has no preconditions.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap_or(100);
    Ok(Duration::from_nanos(ticks * 1_000_000_000 / hz.max(1)))
}

fn status_mb(pid: u32, key: &str) -> anyhow::Result<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: u64 = s
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {key}"))?;
    Ok(kb as f64 / 1024.0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Builds a scene of `n` listeners held by `holders` processes; waits until `ss` sees them all.
fn scene(n: usize, holders: usize) -> anyhow::Result<Holders> {
    let specs: Vec<Spec> = (0..n).map(|i| spec(addr(i))).collect();
    let per = n.div_ceil(holders);
    let nofile = (per as u64 + 1024).max(1024);
    let mut h = Holders::default();
    for chunk in specs.chunks(per) {
        fork_holder(&mut h, chunk, nofile)?;
    }
    let t0 = Instant::now();
    loop {
        let out = Command::new("ss").args(["-Hltn"]).output()?;
        let seen = String::from_utf8_lossy(&out.stdout).lines().count();
        if seen == n {
            return Ok(h);
        }
        ensure!(
            t0.elapsed() < Duration::from_secs(120),
            "ss sees {seen} of {n} listeners"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Whole-process CPU of `pid` over `secs` while `ss -ltnp` runs once a second: (sockq CPU, ss
/// CPU, wall).
fn cpu_against_ss(pid: u32, secs: u64) -> anyhow::Result<(Duration, Duration, Duration)> {
    let ss = PathBuf::from("ss");
    let c0 = proc_cpu(pid)?;
    let t0 = Instant::now();
    let mut ss_cpu = Duration::ZERO;
    for i in 1..=secs {
        ss_cpu += time_process(&ss, &["-ltnp"])?.1;
        let next = t0 + Duration::from_secs(i);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let wall = t0.elapsed();
    Ok((proc_cpu(pid)?.saturating_sub(c0), ss_cpu, wall))
}

fn pct(cpu: Duration, wall: Duration) -> f64 {
    cpu.as_secs_f64() / wall.as_secs_f64() * 100.0
}

/// The sampler's numbers over a few ticks of `sockq watch --json`: the last tick's collector
/// object, and the median sample_ms.
fn watch_json_stats(sockq: &Path) -> anyhow::Result<(serde_json::Value, f64)> {
    let mut kids = Children::default();
    kids.0.push(
        Command::new(sockq)
            .args(["watch", "--json", "--interval", "1s"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let out = kids.0[0].stdout.take().context("stdout")?;
    let mut lines = BufReader::new(out).lines();
    let mut last = serde_json::Value::Null;
    let mut samples = Vec::new();
    for _ in 0..8 {
        let line = lines.next().context("watch --json ended")??;
        let v: serde_json::Value = serde_json::from_str(&line)?;
        let c = v["collector"].clone();
        samples.push(c["sample_ms"].as_f64().unwrap_or(f64::NAN));
        last = c;
    }
    samples.sort_by(f64::total_cmp);
    Ok((last, samples[samples.len() / 2]))
}

/// The arguments of each cold snapshot measured: `snapshot --json`, with `--cpu-window W` for
/// each `W` but `default`.
fn snapshot_args(windows: &[String]) -> Vec<Vec<String>> {
    windows
        .iter()
        .map(|w| {
            let mut a = vec!["snapshot".to_string(), "--json".to_string()];
            if w != "default" {
                a.extend(["--cpu-window".to_string(), w.clone()]);
            }
            a
        })
        .collect()
}

/// Medians of whole-process runs of a sockq command and of `ss -ltnp`: (wall, CPU) each.
struct Cold {
    sockq: (Duration, Duration),
    ss: (Duration, Duration),
}

impl Cold {
    /// A markdown table row: what, sockq, ss, ratios (wall, then CPU).
    fn row(&self, args: &[String], runs: usize) -> String {
        let (sw, sc) = self.sockq;
        let (rw, rc) = self.ss;
        format!(
            "| cold `sockq {}` against `ss -ltnp`, medians of {runs}, wall (CPU) | {} ({}) ms | {} ({}) ms | **{:.3}** ({:.3}) |",
            args.join(" "),
            ms(sw),
            ms(sc),
            ms(rw),
            ms(rc),
            sw.as_secs_f64() / rw.as_secs_f64(),
            sc.as_secs_f64() / rc.as_secs_f64()
        )
    }
}

/// `runs` whole-process runs of `sockq ARGS` and of `ss -ltnp`, interleaved (rotating which
/// goes first), after one unmeasured run of sockq.
fn cold_snapshot(sockq: &Path, args: &[String], runs: usize) -> anyhow::Result<Cold> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let args = args.as_slice();
    let ss = PathBuf::from("ss");
    let (mut snap, mut ssv) = (Vec::new(), Vec::new());
    time_process(sockq, args)?;
    for i in 0..runs {
        let a = || time_process(sockq, args);
        let b = || time_process(&ss, &["-ltnp"]);
        if i % 2 == 0 {
            snap.push(a()?);
            ssv.push(b()?);
        } else {
            ssv.push(b()?);
            snap.push(a()?);
        }
    }
    let medians = |v: &[(Duration, Duration)]| {
        (
            median(v.iter().map(|t| t.0).collect()),
            median(v.iter().map(|t| t.1).collect()),
        )
    };
    Ok(Cold {
        sockq: medians(&snap),
        ss: medians(&ssv),
    })
}

fn run_scene(opts: &Opts, sockq: &Path, name: &str, holders: usize) -> anyhow::Result<()> {
    let sockq = sockq.to_path_buf();
    let (secs, runs, snapshot_only) = (opts.secs, opts.runs, opts.snapshot_only);
    let snapshots = snapshot_args(&opts.cpu_windows);
    let name = name.to_string();
    in_new_netns(move || {
        eprintln!("scene {name}: {LISTENERS} listeners, {holders} holder(s)");
        let _holders = scene(LISTENERS, holders)?;
        // Clients waiting on the first BUSY listeners (never accepted): the active ones.
        let _clients: Vec<TcpStream> = (0..BUSY)
            .flat_map(|i| (0..3).map(move |_| addr(i)))
            .map(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)))
            .collect::<Result<_, _>>()?;
        let load0 = loadavg();

        let cold = snapshots
            .iter()
            .map(|args| cold_snapshot(&sockq, args, runs))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if snapshot_only {
            println!("\n### {LISTENERS} listeners held by {holders} process(es), cold `snapshot --json` only\n");
            println!(
                "load average (1/5/15 min) {load0} at the start, {} at the end\n",
                loadavg()
            );
            println!("| what | sockq | `ss -ltnp` | ratio |");
            println!("|---|---|---|---|");
            for (args, c) in snapshots.iter().zip(&cold) {
                println!("{}", c.row(args, runs));
            }
            return Ok(());
        }

        // sockq watch, then the dashboard, each against ss -ltnp once a second.
        let mut kids = Children::default();
        kids.0.push(
            Command::new(&sockq)
                .args(["watch", "--interval", "1s"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?,
        );
        let watch_pid = kids.0[0].id();
        std::thread::sleep(Duration::from_secs(4));
        let (w_cpu, w_ss, w_wall) = cpu_against_ss(watch_pid, secs)?;
        let w_rss = status_mb(watch_pid, "VmRSS")?;
        drop(kids);
        let tmux = Tmux::start(&name, &sockq, "--interval 1s")?;
        std::thread::sleep(Duration::from_secs(4));
        let dash = tmux.pane_pid()?;
        let (d_cpu, d_ss, d_wall) = cpu_against_ss(dash, secs)?;
        let (d_rss, d_hwm) = (status_mb(dash, "VmRSS")?, status_mb(dash, "VmHWM")?);
        drop(tmux);
        let (stats, sample_ms) = watch_json_stats(&sockq)?;
        let load1 = loadavg();

        println!("\n### {LISTENERS} listeners held by {holders} process(es)\n");
        println!("load average (1/5/15 min) {load0} at the start, {load1} at the end; {BUSY} listeners with 3 clients waiting each, the others quiet\n");
        println!("| what | sockq | `ss -ltnp` | ratio | % of a core |");
        println!("|---|---|---|---|---|");
        println!(
            "| `sockq watch --interval 1s`, CPU over {:.0} s against `ss -ltnp` once a second | {} ms | {} ms | **{:.3}** | **{:.2} %** (VmRSS {w_rss:.1} MB) |",
            w_wall.as_secs_f64(),
            ms(w_cpu),
            ms(w_ss),
            w_cpu.as_secs_f64() / w_ss.as_secs_f64(),
            pct(w_cpu, w_wall)
        );
        println!(
            "| dashboard (tmux 200x50, `--interval 1s`), same | {} ms | {} ms | **{:.3}** | **{:.2} %** (VmRSS {d_rss:.1} MB, VmHWM {d_hwm:.1} MB) |",
            ms(d_cpu),
            ms(d_ss),
            d_cpu.as_secs_f64() / d_ss.as_secs_f64(),
            pct(d_cpu, d_wall)
        );
        for (args, c) in snapshots.iter().zip(&cold) {
            println!("{} – |", c.row(args, runs));
        }
        println!(
            "\nsampler (`watch --json`, last of 8 ticks): active_listeners {}, fast_poll_hz {}, fast_interval_ms {}, throttled {}, cpu_percent {}; median sample_ms {sample_ms:.1}",
            stats["active_listeners"], stats["fast_poll_hz"], stats["fast_interval_ms"], stats["throttled"], stats["cpu_percent"]
        );
        Ok(())
    })
}

fn run_rss(opts: &Opts, sockq: &Path, n: usize) -> anyhow::Result<()> {
    let sockq = sockq.to_path_buf();
    let secs = opts.rss_secs;
    let args = opts.rss_args.clone();
    in_new_netns(move || {
        // One holder while its fd limit allows (the hard limit here may not be raised).
        let holders = n.div_ceil(MAX_PER_HOLDER);
        eprintln!("rss: {n} listeners, {holders} holder(s)");
        let _holders = scene(n, holders)?;
        let tmux = Tmux::start(&format!("rss{n}"), &sockq, &args)?;
        std::thread::sleep(Duration::from_secs(2));
        let pid = tmux.pane_pid()?;
        let c0 = proc_cpu(pid)?;
        std::thread::sleep(Duration::from_secs(secs));
        let cpu = pct(proc_cpu(pid)?.saturating_sub(c0), Duration::from_secs(secs));
        println!(
            "| {n} ({holders}) | {:.1} | {:.1} | {cpu:.1} % | {} |",
            status_mb(pid, "VmRSS")?,
            status_mb(pid, "VmHWM")?,
            loadavg()
        );
        Ok(())
    })
}

fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    let sockq = match &opts.sockq {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .and_then(Path::parent)
            .context("no target dir")?
            .join("sockq"),
    };
    ensure!(sockq.exists(), "{} not built", sockq.display());
    // The measured binary says what it was built from (`--version`: commit and date); the
    // checkout the harness runs in may be another commit.
    let version = Command::new(&sockq)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!(
        "## perf_steady of `{version}` ({}), nproc {}, load {}",
        sockq.display(),
        std::thread::available_parallelism().map_or(0, usize::from),
        loadavg()
    );
    for s in &opts.scenes {
        match s.as_str() {
            "one" => run_scene(&opts, &sockq, "one", 1)?,
            "many" => run_scene(&opts, &sockq, "many", HOLDERS)?,
            "" => {}
            other => anyhow::bail!("unknown scene {other:?} (one, many)"),
        }
    }
    let sizes: Vec<usize> = opts
        .rss
        .iter()
        .filter(|s| !s.is_empty() && !opts.snapshot_only)
        .map(|s| s.parse())
        .collect::<Result<_, _>>()?;
    if !sizes.is_empty() {
        println!(
            "\n### Dashboard RSS (`{}`; `--interval 100ms --window 90s`: 900 points per series, full after 90 s), after {} s\n",
            opts.rss_args, opts.rss_secs
        );
        println!("| listeners (holders) | VmRSS MB | VmHWM MB | dashboard CPU meanwhile | load at the end |");
        println!("|---|---|---|---|---|");
        for n in sizes {
            run_rss(&opts, &sockq, n)?;
        }
    }
    Ok(())
}
