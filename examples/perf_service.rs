//! perf_service: the service dump (a listener's children, issue 14) at 10,000 or 100,000
//! established connections against `ss -tn` and `ss -tnoi`, in a private network namespace
//! (root only).
//!
//!     cargo build --release --bin sockq --example perf_service
//!     sudo target/release/examples/perf_service --runs 11 --conns 10000 --watch-secs 30
//!     sudo target/release/examples/perf_service --runs 11 --conns 100000 --watch-secs 30
//!
//! One listener on 127.0.0.1 (backlog 65535, `somaxconn` raised in the namespace) has `--conns`
//! accepted connections (the namespace then holds 2 × conns established sockets: each server
//! child and its client; the client side is what the port filter keeps out of sockq's dump).
//! A process may hold at most RLIMIT_NOFILE (hard) descriptors, so the connections are spread
//! over python children of at most [`PER_PROCESS`] each: acceptors that share the listener's
//! descriptor, and clients, each from its own source address 127.0.0.(2+k) (its own range of
//! ephemeral ports). Both tools are checked to see `--conns` children. Then, interleaved and
//! rotating which goes first, `--runs` rounds of:
//!
//! - the service dump as `Collector::sample` makes it (`service::children_request` with the
//!   port filter, `decode_child`, a warm `ChildTracker` pass, `attribute_service`), without
//!   tcp_info (what a quiet server costs) and with it (after a dump that found children waiting
//!   or unread bytes);
//! - the raw floor: the same request through `DiagSocket::dump`, counting messages only;
//! - `ss -tn` (every connection, both families), `ss -tnoi` (with timers and tcp_info),
//!   `ss -tn sport = :PORT` (the same kernel filter), `ss -tnoi sport = :PORT` (with tcp_info,
//!   as sockq's second variant), each as a process;
//! - a full warm `Collector::sample()` (listeners, SYN-RECV, service, counters, owners).
//!
//! Then the budget plan for these costs, and `sockq watch --json --interval 1s` for
//! `--watch-secs`: its sampler's CPU per tick, the service numbers' age and the ticks whose
//! `blind_spots` say the dump was spaced out.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and tools may panic on failure

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use nix::sched::{unshare, CloneFlags};
use nix::sys::resource::{getrusage, setrlimit, Resource, UsageWho};
use socket2::{Domain, Socket, Type};
use sockq::collect::netlink::DiagSocket;
use sockq::collect::sampler::plan_budget;
use sockq::collect::service::{self, ChildTracker};
use sockq::collect::{thread_cpu, Collector, CollectorOptions};
use sockq::model::{testing::tcp_listener, Family};

/// Connections per python child (acceptor or client): under a hard RLIMIT_NOFILE of 20,000.
const PER_PROCESS: usize = 10_000;

struct Args {
    runs: usize,
    conns: usize,
    watch_secs: u64,
}

fn args() -> Args {
    let mut a = Args {
        runs: 11,
        conns: 10_000,
        watch_secs: 30,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    for w in v.chunks(2) {
        let n = w.get(1).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
        match w[0].as_str() {
            "--runs" => a.runs = n as usize,
            "--conns" => a.conns = n as usize,
            "--watch-secs" => a.watch_secs = n,
            other => panic!("unknown option {other}"),
        }
    }
    a
}

#[derive(Default, Clone)]
struct Series {
    wall: Vec<Duration>,
    cpu: Vec<Duration>,
}

impl Series {
    fn push(&mut self, wall: Duration, cpu: Duration) {
        self.wall.push(wall);
        self.cpu.push(cpu);
    }
    fn median(v: &[Duration]) -> Duration {
        let mut v = v.to_vec();
        v.sort();
        v[v.len() / 2]
    }
    fn wall(&self) -> Duration {
        Self::median(&self.wall)
    }
    fn cpu(&self) -> Duration {
        Self::median(&self.cpu)
    }
    fn range(&self) -> String {
        let min = self.wall.iter().min().unwrap();
        let max = self.wall.iter().max().unwrap();
        format!("{}–{}", ms(*min), ms(*max))
    }
}

fn ms(d: Duration) -> String {
    let x = d.as_secs_f64() * 1000.0;
    if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

fn children_cpu() -> Duration {
    let r = getrusage(UsageWho::RUSAGE_CHILDREN).unwrap();
    let tv = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
    };
    tv(r.user_time()) + tv(r.system_time())
}

/// Runs `ss args` to /dev/null: wall and user+sys.
fn time_ss(args: &[&str]) -> (Duration, Duration) {
    let cpu0 = children_cpu();
    let t0 = Instant::now();
    let st = Command::new("ss")
        .args(args)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    (t0.elapsed(), children_cpu().saturating_sub(cpu0))
}

fn main() -> anyhow::Result<()> {
    let a = args();
    std::thread::spawn(move || run(a))
        .join()
        .map_err(|_| anyhow::anyhow!("the harness thread panicked"))?
}

fn run(a: Args) -> anyhow::Result<()> {
    let (_, hard) = nix::sys::resource::getrlimit(Resource::RLIMIT_NOFILE)?;
    ensure!(
        hard >= PER_PROCESS as u64 + 1024,
        "RLIMIT_NOFILE hard limit {hard} is too small for {PER_PROCESS} connections a process"
    );
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    unshare(CloneFlags::CLONE_NEWNET).context("unshare(CLONE_NEWNET): run as root")?;
    let st = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()?;
    ensure!(st.success());
    std::fs::write("/proc/sys/net/ipv4/ip_local_port_range", "10000 65000")?;
    std::fs::write("/proc/sys/net/core/somaxconn", "65535")?;
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    sock.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    sock.listen(65535)?;
    let n = a.conns;
    let t0 = Instant::now();
    // The acceptors inherit the listener (the only descriptor spawned without close-on-exec).
    sock.set_cloexec(false)?;
    let fd = sock.as_raw_fd().to_string();
    let mut acceptors = Vec::new();
    for k in 0..n.div_ceil(PER_PROCESS) {
        let m = PER_PROCESS.min(n - k * PER_PROCESS);
        acceptors.push(python(ACCEPTOR, &[&fd, &m.to_string()])?);
    }
    sock.set_cloexec(true)?;
    let listener: TcpListener = sock.into();
    let addr: SocketAddr = listener.local_addr()?;
    let port = addr.port();
    let mut clients = Vec::new();
    for k in 0..n.div_ceil(PER_PROCESS) {
        let m = PER_PROCESS.min(n - k * PER_PROCESS);
        let src = format!("127.0.0.{}", 2 + k);
        clients.push(python(CLIENTS, &[&port.to_string(), &m.to_string(), &src])?);
    }
    for (_, out) in clients.iter_mut().chain(acceptors.iter_mut()) {
        let mut ready = String::new();
        out.read_line(&mut ready)?;
        ensure!(ready.trim() == "ok", "a python child said {ready:?}");
    }
    eprintln!(
        "{n} connections in {:.1} s ({} acceptor and {} client processes)",
        t0.elapsed().as_secs_f64(),
        acceptors.len(),
        clients.len()
    );

    // Both tools see them.
    let out = Command::new("ss")
        .args([
            "-tnH",
            "state",
            "established",
            "sport",
            "=",
            &format!(":{port}"),
        ])
        .output()?;
    let ss_n = String::from_utf8_lossy(&out.stdout).lines().count();
    ensure!(ss_n == n, "ss sees {ss_n} children");
    let mut c = Collector::new("perf".into(), CollectorOptions::default())?;
    let s = c.sample()?;
    let sv = s
        .tcp_listeners
        .iter()
        .find(|l| l.port == port)
        .and_then(|l| l.service.clone())
        .context("no service numbers")?;
    ensure!(sv.in_service == n as u64, "sockq sees {sv:?}");
    let summary = s.service.clone().unwrap();
    ensure!(summary.sockets == n as u64, "{summary:?}");

    // The dump as the collector makes it, on its own socket and tracker.
    let mut diag = DiagSocket::new()?;
    let mut tracker = ChildTracker::default();
    let ranges = service::port_ranges(&[port], service::MAX_PORT_RANGES);
    let mut listeners = vec![tcp_listener(port).build()];
    let mut dump = |diag: &mut DiagSocket, tracker: &mut ChildTracker, info: bool| {
        let mut pass = tracker.begin(sockq::collect::monotonic_ns());
        diag.dump(
            service::children_request(Family::Ipv4, &ranges, info),
            |p| {
                if let Some(child) = service::decode_child(p)? {
                    pass.add(&child);
                }
                Ok(())
            },
        )
        .unwrap();
        let tally = pass.finish(true);
        let (_, unmatched) = service::attribute_service(&mut listeners, &tally);
        assert_eq!(unmatched, 0);
        assert_eq!(listeners[0].service.as_ref().unwrap().in_service, n as u64);
    };
    dump(&mut diag, &mut tracker, true); // warm: every child known
    let sport = format!("sport = :{port}");
    let steps: Vec<&str> = vec![
        "sockq service dump",
        "sockq service dump + tcp_info",
        "raw floor",
        "ss -tn",
        "ss -tnoi",
        "ss -tn sport",
        "ss -tnoi sport",
        "sockq full sample",
    ];
    let mut series = vec![Series::default(); steps.len()];
    for round in 0..a.runs + 1 {
        for k in 0..steps.len() {
            let i = (round + k) % steps.len();
            let (wall, cpu) = match i {
                0 | 1 => {
                    let (c0, t) = (thread_cpu(), Instant::now());
                    dump(&mut diag, &mut tracker, i == 1);
                    (t.elapsed(), thread_cpu() - c0)
                }
                2 => {
                    let (c0, t) = (thread_cpu(), Instant::now());
                    let mut m = 0usize;
                    diag.dump(
                        service::children_request(Family::Ipv4, &ranges, false),
                        |_| {
                            m += 1;
                            Ok(())
                        },
                    )?;
                    assert_eq!(m, n);
                    (t.elapsed(), thread_cpu() - c0)
                }
                3 => time_ss(&["-tn"]),
                4 => time_ss(&["-tnoi"]),
                5 => time_ss(&["-tn", &sport]),
                6 => time_ss(&["-tnoi", &sport]),
                _ => {
                    let (c0, t) = (thread_cpu(), Instant::now());
                    c.sample()?;
                    (t.elapsed(), thread_cpu() - c0)
                }
            };
            if round > 0 {
                series[i].push(wall, cpu);
            }
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg")?;
    println!(
        "{n} accepted connections on one listener ({} established sockets in the namespace), medians of {} runs, load {}",
        2 * n,
        a.runs,
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    println!();
    println!("| measurement | wall ms | CPU ms | wall min–max | CPU / `ss -tn` | CPU / `ss -tnoi` | CPU / `ss -tn sport` | CPU / `ss -tnoi sport` | CPU / raw floor | wall / `ss -tn` |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let cpu_of = |i: usize| series[i].cpu().as_secs_f64();
    for (i, name) in steps.iter().enumerate() {
        let c = cpu_of(i);
        println!(
            "| {name} | {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
            ms(series[i].wall()),
            ms(series[i].cpu()),
            series[i].range(),
            c / cpu_of(3),
            c / cpu_of(4),
            c / cpu_of(5),
            c / cpu_of(6),
            c / cpu_of(2),
            series[i].wall().as_secs_f64() / series[3].wall().as_secs_f64(),
        );
    }
    // The budget: the two dumps that walk the established hash are planned as one cost.
    let plan = plan_budget(
        Duration::from_millis(100),
        Duration::from_secs(1),
        2.0,
        Duration::from_micros(200),
        series[0].cpu(),
    );
    println!();
    println!(
        "budget 2 %: with a service dump of {} ms CPU the planner spaces it (and SYN-RECV) to {:.2} s, fast poll {} ms",
        ms(series[0].cpu()),
        plan.syn_interval.as_secs_f64(),
        plan.fast_interval.as_millis()
    );

    // End to end: the sampler of `sockq watch` in this namespace.
    let bin = std::env::current_exe()?
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("sockq"))
        .context("no sockq binary beside the example")?;
    let mut child = Command::new(&bin)
        .args(["watch", "--json", "--interval", "1s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let stdout = child.stdout.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(a.watch_secs);
    let mut cpu = Vec::new();
    let mut ages = Vec::new();
    let mut throttled = 0;
    let mut spaced = 0;
    let mut seen = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        spaced += usize::from(line.contains("the dump was spaced out to keep the CPU budget"));
        let v: serde_json::Value = serde_json::from_str(&line)?;
        cpu.push(v["collector"]["cpu_percent"].as_f64().unwrap_or(f64::NAN));
        ages.push(
            v["snapshot"]["service"]["age_ms"]
                .as_u64()
                .unwrap_or(u64::MAX),
        );
        throttled += usize::from(v["collector"]["throttled"].as_bool() == Some(true));
        if let Some(l) = v["snapshot"]["tcp_listeners"]
            .as_array()
            .and_then(|ls| ls.iter().find(|l| l["port"] == port))
        {
            seen.push(l["service"]["in_service"].as_u64().unwrap_or(0));
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let ticks = cpu.len();
    let steady: Vec<f64> = cpu.iter().skip(1).copied().collect();
    let mean = steady.iter().sum::<f64>() / steady.len().max(1) as f64;
    let max = steady.iter().copied().fold(0.0, f64::max);
    let fresh = ages.iter().filter(|&&a| a == 0).count();
    println!(
        "`sockq watch --json --interval 1s`, {ticks} ticks: sampler CPU mean {mean:.2} % (max tick {max:.2} %, first tick left out), service numbers at most {:.1} s old (dumped afresh on {fresh} ticks; {spaced} ticks say in blind_spots that the dump was spaced out), {throttled} ticks throttled, in service seen {:?}",
        *ages.iter().max().unwrap_or(&0) as f64 / 1000.0,
        seen.iter().min()..=seen.iter().max()
    );
    for (mut p, _) in clients.into_iter().chain(acceptors) {
        let _ = p.kill();
        let _ = p.wait();
    }
    drop(listener);
    Ok(())
}

/// Starts `python3 -c code args…` with piped stdin (it holds until stdin closes) and stdout.
fn python(
    code: &str,
    args: &[&str],
) -> anyhow::Result<(Child, BufReader<std::process::ChildStdout>)> {
    let mut c = Command::new("python3")
        .arg("-c")
        .arg(format!("{PRELUDE}{code}"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("python3 for the connections")?;
    let out = BufReader::new(c.stdout.take().context("no stdout")?);
    Ok((c, out))
}

/// Shared by the python children: the descriptor limit, and death with the harness thread (an
/// acceptor blocked in accept() would not see its stdin close).
const PRELUDE: &str = r#"
import ctypes, resource, socket, sys
ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
"#;

/// An acceptor: accept argv[2] connections on the inherited listener argv[1], say "ok", hold
/// them until stdin closes.
const ACCEPTOR: &str = r#"
l = socket.socket(fileno=int(sys.argv[1]))
cs = [l.accept()[0] for _ in range(int(sys.argv[2]))]
print("ok", flush=True)
sys.stdin.read()
"#;

/// The clients: connect argv[2] times to 127.0.0.1:argv[1] from address argv[3]
/// (IP_BIND_ADDRESS_NO_PORT: the port is chosen at connect, per destination), say "ok", hold
/// until stdin closes.
const CLIENTS: &str = r#"
port, n, src = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def conn():
    s = socket.socket()
    s.setsockopt(socket.IPPROTO_IP, 24, 1)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s
cs = [conn() for _ in range(n)]
print("ok", flush=True)
sys.stdin.read()
"#;
