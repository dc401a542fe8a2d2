//! Live tests of the service findings (issue 14): slow_readers, close_wait_growing,
//! fds_at_this_rate, application_cap and the input path of tcp_memory_pressure, each on real
//! sockets in a private network namespace made by the test, through the collector and the
//! engine as `sockq` runs them. Each finding must fire with the numbers `ss` (or /proc, nstat)
//! shows at the same moment, and clear when its cause goes. No timed assertions: every wait
//! is for a condition, with a generous deadline.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and tools may panic on failure

mod common;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use socket2::{Domain, Socket, Type};
use sockq::collect::Collector;
use sockq::engine::{Engine, EngineConfig};
use sockq::model::{CollectorStats, Finding, Sample, ServiceStats, Tick};

/// The collector and engine of the test's namespace: one tick per call.
struct Watch {
    c: Collector,
    e: Engine,
}

impl Watch {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            c: collector()?,
            e: Engine::new(EngineConfig::default()),
        })
    }

    fn tick(&mut self) -> anyhow::Result<Tick> {
        let snapshot = self.c.sample()?;
        Ok(self
            .e
            .ingest(Sample {
                snapshot,
                depth_ranges: vec![],
                collector: CollectorStats::default(),
            })
            .clone())
    }

    /// Ticks every 500 ms (calling `between` before each) until `pred` holds; fails after
    /// `timeout` with the last tick's findings and numbers.
    fn until(
        &mut self,
        port: u16,
        timeout: Duration,
        mut between: impl FnMut() -> anyhow::Result<()>,
        pred: impl Fn(&Tick) -> bool,
    ) -> anyhow::Result<Tick> {
        let start = Instant::now();
        loop {
            between()?;
            let t = self.tick()?;
            if pred(&t) {
                return Ok(t);
            }
            anyhow::ensure!(
                start.elapsed() < timeout,
                "not reached after {timeout:?}: findings {:#?}\nservice {:#?}",
                t.findings,
                service(&t, port).ok()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

fn service(t: &Tick, port: u16) -> anyhow::Result<ServiceStats> {
    t.snapshot
        .tcp_listeners
        .iter()
        .find(|l| l.port == port)
        .and_then(|l| l.service.clone())
        .ok_or_else(|| anyhow::anyhow!("no service numbers for port {port}"))
}

fn finding<'a>(t: &'a Tick, rule: &str, port: u16) -> Option<&'a Finding> {
    let endpoint = format!("127.0.0.1:{port}");
    t.findings
        .iter()
        .find(|f| f.rule == rule && f.listener.as_deref() == Some(endpoint.as_str()))
}

/// `ss -tnH[e|m] state STATE sport = :PORT`, one Vec of columns per socket.
fn ss(flags: &str, state: &str, port: u16) -> anyhow::Result<Vec<Vec<String>>> {
    let sport = format!(":{port}");
    let out = run_ok("ss", &[flags, "state", state, "sport", "=", &sport])?;
    Ok(out
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect())
}

/// Sum of column `i` (with a state filter: 0 Recv-Q, 1 Send-Q).
fn ss_sum(lines: &[Vec<String>], i: usize) -> u64 {
    lines.iter().map(|l| l[i].parse::<u64>().unwrap()).sum()
}

/// A client whose receive buffer is small, so what it does not read stays on the server.
fn small_window_client(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.set_recv_buffer_size(16 * 1024)?;
    s.connect_timeout(&addr.into(), Duration::from_secs(2))?;
    Ok(s.into())
}

/// Writes up to `n` bytes on a non-blocking socket until the peer's window is full.
fn write_until_full(s: &mut TcpStream, n: usize) -> anyhow::Result<usize> {
    s.set_nonblocking(true)?;
    let block = vec![b'w'; 64 * 1024];
    let mut written = 0;
    let mut stalls = 0;
    while written < n && stalls < 20 {
        match s.write(&block[..block.len().min(n - written)]) {
            Ok(k) => written += k,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                stalls += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(written)
}

/// Reads what is there without blocking; true at the end of the stream.
fn drain(s: &mut TcpStream) -> anyhow::Result<bool> {
    s.set_nonblocking(true)?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(true),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e.into()),
        }
    }
}

/// A Python server run for a test, killed when dropped.
struct PyServer {
    child: Child,
    stdin: ChildStdin,
    out: BufReader<std::process::ChildStdout>,
    port: u16,
}

impl PyServer {
    /// Runs `script` with `args`; its first line is its port.
    fn start(script: &str, args: &[&str]) -> anyhow::Result<Self> {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line)?;
        let port = line.trim().parse()?;
        Ok(Self {
            child,
            stdin,
            out,
            port,
        })
    }

    /// Sends a command line and waits for the server's answer line.
    fn ask(&mut self, cmd: &str) -> anyhow::Result<String> {
        writeln!(self.stdin, "{cmd}")?;
        self.stdin.flush()?;
        let mut line = String::new();
        self.out.read_line(&mut line)?;
        Ok(line.trim().to_string())
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn slow_readers_fires_with_the_send_q_of_ss_and_clears_when_they_read() {
    const CLIENTS: usize = 3;
    in_netns("findings_slow_readers", || {
        let (l, addr) = listen("127.0.0.1:0", 64)?;
        let port = addr.port();
        let mut clients = Vec::new();
        let mut accepted = Vec::new();
        for _ in 0..CLIENTS {
            clients.push(small_window_client(addr)?);
            accepted.push(TcpStream::from(l.accept()?.0));
        }
        for s in &mut accepted {
            write_until_full(s, 1 << 20)?;
        }
        let mut w = Watch::new()?;
        let t = w.until(
            port,
            Duration::from_secs(40),
            || Ok(()),
            |t| finding(t, "slow_readers", port).is_some(),
        )?;
        let lines = ss("-tnH", "established", port)?;
        let sv = service(&t, port)?;
        let f = finding(&t, "slow_readers", port).unwrap();
        eprintln!("{}", f.message);
        let ss_unsent = ss_sum(&lines, 1);
        assert_eq!(sv.unsent_bytes, ss_unsent, "ss: {lines:?}");
        assert_eq!(sv.unsent_conns, CLIENTS as u64);
        assert!(ss_unsent > 0);
        assert_eq!(f.evidence["unsent_bytes"], ss_unsent as f64);
        assert_eq!(f.evidence["unsent_connections"], CLIENTS as f64);
        assert!(f.evidence["oldest_unsent_s"] >= 5.0, "{f:?}");
        assert!(
            f.message
                .starts_with(&format!("{CLIENTS} connections on 127.0.0.1:{port} hold ")),
            "{}",
            f.message
        );

        // The clients read: the Send-Qs drain and the finding clears. It clears as soon as no
        // Send-Q stays unshrunk for 5 s, which can be while a queue is still draining (a CI
        // run saw 200 KiB left): wait for both.
        let t = w.until(
            port,
            Duration::from_secs(20),
            || {
                for c in &mut clients {
                    drain(c)?;
                }
                Ok(())
            },
            |t| {
                finding(t, "slow_readers", port).is_none()
                    && service(t, port).is_ok_and(|s| s.unsent_bytes == 0)
            },
        )?;
        let sv = service(&t, port)?;
        let lines = ss("-tnH", "established", port)?;
        assert_eq!(sv.unsent_bytes, 0, "{sv:#?}");
        assert_eq!(ss_sum(&lines, 1), 0, "ss: {lines:?}");
        drop((accepted, clients, l));
        Ok(())
    });
}

#[test]
fn close_wait_growing_fires_with_the_count_of_ss_and_clears_when_closed() {
    in_netns("findings_close_wait", || {
        let (l, addr) = listen("127.0.0.1:0", 64)?;
        let port = addr.port();
        let mut held = Vec::new();
        let mut w = Watch::new()?;
        // One client per half second closes its connection; the server keeps its side.
        let t = w.until(
            port,
            Duration::from_secs(40),
            || {
                let c = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
                held.push(l.accept()?.0);
                drop(c);
                Ok(())
            },
            |t| finding(t, "close_wait_growing", port).is_some(),
        )?;
        let f = finding(&t, "close_wait_growing", port).unwrap().clone();
        eprintln!("{}", f.message);
        assert!(f.evidence["rising_s"] >= 10.0, "{f:?}");
        assert!(f.evidence["growth_per_s"] > 0.0, "{f:?}");
        // No new clients: the count holds still; it equals ss at the same moment.
        let t = w.until(
            port,
            Duration::from_secs(10),
            || Ok(()),
            |t| service(t, port).is_ok_and(|s| s.close_wait == held.len() as u64),
        )?;
        let ss_cw = ss("-tnH", "close-wait", port)?.len() as u64;
        let sv = service(&t, port)?;
        assert_eq!(sv.close_wait, ss_cw);
        assert_eq!(sv.close_wait_unaccepted, 0);
        let f = finding(&t, "close_wait_growing", port).expect("still growing over the minute");
        assert_eq!(f.evidence["close_wait"], ss_cw as f64);
        assert!(
            f.message.contains(&format!(" to {ss_cw}: peers close")),
            "{}",
            f.message
        );

        // The server closes them: CLOSE-WAIT falls and the finding clears.
        held.clear();
        let t = w.until(
            port,
            Duration::from_secs(20),
            || Ok(()),
            |t| finding(t, "close_wait_growing", port).is_none(),
        )?;
        assert_eq!(service(&t, port)?.close_wait, 0);
        assert_eq!(ss("-tnH", "close-wait", port)?.len(), 0);
        drop(l);
        Ok(())
    });
}

/// A server with a low fd limit that accepts every connection and holds it until told
/// `close`. Argument: RLIMIT_NOFILE. Prints its port.
const HOLDING_SERVER: &str = r#"
import resource, socket, sys, threading
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), hard))
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(128)
held, lock = [], threading.Lock()
def acceptor():
    while True:
        c, _ = l.accept()
        with lock:
            held.append(c)
threading.Thread(target=acceptor, daemon=True).start()
print(l.getsockname()[1], flush=True)
for line in sys.stdin:
    with lock:
        for c in held:
            c.close()
        n = len(held)
        held.clear()
    print("closed", n, flush=True)
"#;

/// Open fds of `pid` as the kernel counts them against RLIMIT_NOFILE (`stat -c %s
/// /proc/PID/fd`: its bitmap of used descriptors), and the entries `ls` lists. They differ by
/// one for each thread blocked in accept(): the kernel reserves the new descriptor before it
/// waits, and installs it only when a connection comes.
fn open_fds(pid: u32) -> anyhow::Result<(u64, u64)> {
    let dir = format!("/proc/{pid}/fd");
    let size = run_ok("stat", &["-c", "%s", &dir])?.trim().parse()?;
    Ok((size, std::fs::read_dir(&dir)?.count() as u64))
}

#[test]
fn fds_at_this_rate_fires_with_the_fds_of_proc_and_clears_when_connections_end() {
    const LIMIT: u64 = 256;
    in_netns("findings_fds_at_this_rate", || {
        let mut server = PyServer::start(HOLDING_SERVER, &[&LIMIT.to_string()])?;
        let (port, addr, pid) = (server.port, server.addr(), server.pid());
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))?
            .trim()
            .to_string();
        let mut clients = Vec::new();
        let mut w = Watch::new()?;
        // Two connections per half second, held: in service grows 4/s.
        w.until(
            port,
            Duration::from_secs(40),
            || {
                for _ in 0..2 {
                    clients.push(TcpStream::connect_timeout(&addr, Duration::from_secs(2))?);
                }
                Ok(())
            },
            |t| finding(t, "fds_at_this_rate", port).is_some(),
        )?;
        // No more clients: once the server accepted them all, the numbers hold still.
        let n = clients.len() as u64;
        let t = w.until(
            port,
            Duration::from_secs(10),
            || Ok(()),
            |t| {
                service(t, port).is_ok_and(|s| s.in_service == n)
                    && finding(t, "fds_at_this_rate", port).is_some()
            },
        )?;
        // Nothing changed since the sample: /proc and ss give the same numbers now.
        let (fds, listed) = open_fds(pid)?;
        // The server's one acceptor thread waits in accept() with a descriptor reserved.
        assert_eq!(
            listed + 1,
            fds,
            "ls /proc/{pid}/fd lists {listed}, stat says {fds}"
        );
        let ss_in_service = ss("-tnHe", "established", port)?
            .iter()
            .filter(|l| !l.contains(&"ino:0".to_string()))
            .count() as u64;
        let f = finding(&t, "fds_at_this_rate", port).unwrap();
        eprintln!("{}", f.message);
        assert_eq!(f.evidence["in_service"], ss_in_service as f64);
        assert_eq!(f.evidence["fds_open"], fds as f64);
        assert_eq!(f.evidence["fd_limit"], LIMIT as f64);
        let growth = f.evidence["growth_per_s"];
        assert!(growth > 0.0, "{f:?}");
        let left = (LIMIT - fds) as f64 / growth;
        assert!((f.evidence["seconds_left"] - left).abs() < 1e-6, "{f:?}");
        assert!(
            f.message.contains(&format!(
                "{comm}[{pid}] has {} of {LIMIT} file descriptors left",
                LIMIT - fds
            )),
            "{}",
            f.message
        );

        // The server closes every connection: in service falls, the finding clears.
        let answer = server.ask("close")?;
        assert_eq!(answer, format!("closed {}", clients.len()));
        let t = w.until(
            port,
            Duration::from_secs(20),
            || Ok(()),
            |t| finding(t, "fds_at_this_rate", port).is_none(),
        )?;
        assert_eq!(service(&t, port)?.in_service, 0);
        drop(clients);
        Ok(())
    });
}

/// A server capped at N connections (haproxy `maxconn`-like): it accepts N, serves them, and
/// accepts no more until told `more`. Argument: N. Prints its port.
const CAPPED_SERVER: &str = r#"
import socket, sys
cap = int(sys.argv[1])
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(511)
print(l.getsockname()[1], flush=True)
held = [l.accept()[0] for _ in range(cap)]
l.setblocking(False)
for line in sys.stdin:
    n = 0
    while True:
        try:
            held.append(l.accept()[0])
            n += 1
        except BlockingIOError:
            break
    print("accepted", n, flush=True)
"#;

#[test]
fn application_cap_fires_at_a_plateau_of_100_with_a_waiting_queue_and_clears() {
    const CAP: u64 = 100;
    const OVER: u64 = 20;
    in_netns("findings_application_cap", || {
        let mut server = PyServer::start(CAPPED_SERVER, &[&CAP.to_string()])?;
        let (port, addr, pid) = (server.port, server.addr(), server.pid());
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))?
            .trim()
            .to_string();
        let clients = connect_n(addr, (CAP + OVER) as usize)?;
        wait_for_accept_queue(port, OVER as u32, Duration::from_secs(20))?;
        let mut w = Watch::new()?;
        // In service flat for the rule's 10 s of dumps.
        let t = w.until(
            port,
            Duration::from_secs(40),
            || Ok(()),
            |t| finding(t, "application_cap", port).is_some(),
        )?;
        let lines = ss("-tnHe", "established", port)?;
        let ss_waiting = lines
            .iter()
            .filter(|l| l.contains(&"ino:0".to_string()))
            .count() as u64;
        let ss_in_service = lines.len() as u64 - ss_waiting;
        let f = finding(&t, "application_cap", port).unwrap();
        eprintln!("{}", f.message);
        assert_eq!((ss_in_service, ss_waiting), (CAP, OVER), "ss: {lines:?}");
        assert_eq!(f.evidence["in_service"], ss_in_service as f64);
        assert_eq!(f.evidence["cap"], CAP as f64);
        assert_eq!(f.evidence["waiting"], ss_waiting as f64);
        assert!(f.evidence["oldest_wait_s"] >= 1.0, "{f:?}");
        assert!(
            f.message.contains(&format!(
                "hold flat at {CAP} (+0.00/s over the last 10 s or more), exactly the round number {CAP}, while {OVER} connections wait for accept()"
            )),
            "{}",
            f.message
        );
        assert!(
            f.message
                .contains(&format!("{comm}[{pid}] looks capped at {CAP}")),
            "{}",
            f.message
        );

        // The cap is lifted: the waiting connections are accepted and the finding clears.
        assert_eq!(server.ask("more")?, format!("accepted {OVER}"));
        let t = w.until(
            port,
            Duration::from_secs(20),
            || Ok(()),
            |t| finding(t, "application_cap", port).is_none(),
        )?;
        let sv = service(&t, port)?;
        assert_eq!((sv.in_service, sv.waiting), (CAP + OVER, 0), "{sv:#?}");
        drop(clients);
        Ok(())
    });
}

/// Bytes as the findings write them (KiB, or MiB from 10 MiB on).
fn size_text(bytes: u64) -> String {
    if bytes >= 10 * 1024 * 1024 {
        format!("{:.0} MiB", bytes as f64 / 1024.0 / 1024.0)
    } else {
        format!("{:.0} KiB", bytes as f64 / 1024.0)
    }
}

/// `TCP: … mem N` of /proc/thread-self/net/sockstat (pages, host-wide).
fn sockstat_mem() -> anyhow::Result<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/net/sockstat")?;
    text.lines()
        .find(|l| l.starts_with("TCP:"))
        .and_then(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let i = f.iter().position(|w| *w == "mem")?;
            f.get(i + 1)?.parse().ok()
        })
        .ok_or_else(|| anyhow::anyhow!("no TCP mem in {text}"))
}

/// Sum over the port's established sockets of `ss -tmn` skmem r + w + f (what SK_MEMINFO
/// gives sockq: rmem_alloc + wmem_queued + fwd_alloc).
fn ss_skmem(port: u16) -> anyhow::Result<u64> {
    let sport = format!(":{port}");
    let out = run_ok(
        "ss",
        &["-tmnH", "state", "established", "sport", "=", &sport],
    )?;
    let mut sum = 0;
    for part in out.split("skmem:(").skip(1) {
        let inner = part.split(')').next().unwrap_or_default();
        for field in inner.split(',') {
            for p in ["r", "w", "f"] {
                if let Some(v) = field.strip_prefix(p) {
                    if let Ok(n) = v.parse::<u64>() {
                        sum += n;
                    }
                }
            }
        }
    }
    Ok(sum)
}

/// tcp_mem exists only in the host's namespace and TCP memory pressure is host-wide: it
/// cannot be provoked from a private namespace without pushing the whole host into it. So the
/// rule's input path is checked on real values: sockstat `mem` (as sockq reads it and as
/// /proc shows it at the same moment), the listener's socket memory (against `ss -tm`),
/// TCPMemoryPressures (against nstat), and the rule on that real tick with the host's real
/// tcp_mem (silent) and with thresholds at the real value (fires with those numbers).
#[test]
fn tcp_memory_pressure_input_path_on_real_sockstat_values() {
    let host_tcp_mem: Vec<u64> = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_mem")
        .expect("the host's net.ipv4.tcp_mem")
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    in_netns("findings_tcp_memory", move || {
        let (l, addr) = listen("127.0.0.1:0", 64)?;
        let port = addr.port();
        let mut clients = Vec::new();
        let mut accepted = Vec::new();
        for _ in 0..4 {
            clients.push(small_window_client(addr)?);
            accepted.push(TcpStream::from(l.accept()?.0));
        }
        for s in &mut accepted {
            write_until_full(s, 1 << 20)?;
        }
        let mut w = Watch::new()?;
        // A moment when sockstat did not move across the sample: sockq's reading equals it.
        let start = Instant::now();
        let (t, mem) = loop {
            let before = sockstat_mem()?;
            let t = w.tick()?;
            let after = sockstat_mem()?;
            let skmem = ss_skmem(port)?;
            let sv = service(&t, port)?;
            if before == after && sv.mem_bytes == Some(skmem) {
                break (t, after);
            }
            anyhow::ensure!(
                start.elapsed() < Duration::from_secs(30),
                "sockstat never still: {before} → {after}; listener mem {:?} vs ss {skmem}",
                sv.mem_bytes
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        let st = t.snapshot.sockstat.clone().expect("sockstat");
        assert_eq!(st.mem_pages, Some(mem));
        assert_eq!(
            t.snapshot.tunables.tcp_mem, None,
            "net.ipv4.tcp_mem exists only in the initial namespace"
        );
        let sv = service(&t, port)?;
        let listener_mem = sv.mem_bytes.unwrap();
        assert!(
            listener_mem >= sv.unsent_bytes && sv.unsent_bytes > 0,
            "{sv:#?}"
        );
        // TCPMemoryPressures of the namespace, as nstat reads it.
        let hist = TempDir::new("nstat")?;
        let out = Command::new("nstat")
            .args(["-az", "TcpExtTCPMemoryPressures"])
            .env("NSTAT_HISTORY", hist.path().join("h"))
            .output()?;
        let nstat: u64 = String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.starts_with("TcpExtTCPMemoryPressures"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .expect("nstat TcpExtTCPMemoryPressures");
        assert_eq!(
            t.snapshot
                .counters
                .tcp_ext
                .get("TCPMemoryPressures")
                .copied(),
            Some(nstat)
        );

        // The host is far from its thresholds: with its tcp_mem the rule is silent.
        let mut real = t.clone();
        real.snapshot.tunables.tcp_mem = Some([
            host_tcp_mem[0] as i64,
            host_tcp_mem[1] as i64,
            host_tcp_mem[2] as i64,
        ]);
        assert!(
            mem < host_tcp_mem[0],
            "the host is in TCP memory trouble: {mem} pages"
        );
        let rules = |t: &Tick| -> Vec<Finding> {
            sockq::rules::evaluate(t)
                .into_iter()
                .filter(|f| f.rule == "tcp_memory_pressure")
                .collect()
        };
        assert!(rules(&real).is_empty(), "{:?}", rules(&real));
        // Thresholds at the real value: it fires with the real numbers.
        let m = mem as i64;
        real.snapshot.tunables.tcp_mem = Some([m, m * 2, m * 3]);
        let f = rules(&real)
            .pop()
            .expect("tcp_memory_pressure at tcp_mem min");
        eprintln!("{}", f.message);
        assert_eq!(f.severity, sockq::model::Severity::Warning);
        assert_eq!(f.evidence["mem_pages"], mem as f64);
        assert_eq!(f.evidence["top_listener_mem_bytes"], listener_mem as f64);
        assert!(
            f.message.contains(&format!(
                "({} in use of tcp_mem {m} / {} / {} pages",
                size_text(mem * st.page_size),
                m * 2,
                m * 3
            )),
            "{}",
            f.message
        );
        assert!(
            f.message.contains(&format!(
                "the connections of 127.0.0.1:{port} hold {}",
                size_text(listener_mem)
            )),
            "{}",
            f.message
        );
        real.snapshot.tunables.tcp_mem = Some([m / 2, m, m * 2]);
        let f = rules(&real)
            .pop()
            .expect("tcp_memory_pressure at tcp_mem pressure");
        assert_eq!(f.severity, sockq::model::Severity::Critical);

        // The clients read and close: the listener's connections hold no memory any more.
        for c in &mut clients {
            c.shutdown(std::net::Shutdown::Write)?;
        }
        drop(accepted);
        let t = w.until(
            port,
            Duration::from_secs(20),
            || {
                for c in &mut clients {
                    drain(c)?;
                }
                Ok(())
            },
            |t| {
                service(t, port).is_ok_and(|s| s.mem_bytes.unwrap_or(0) == 0 && s.unsent_bytes == 0)
            },
        )?;
        assert_eq!(ss_skmem(port)?, 0);
        let mut cleared = t.clone();
        cleared.snapshot.tunables.tcp_mem = Some([m, m * 2, m * 3]);
        for f in rules(&cleared) {
            assert!(
                !f.message.contains(&format!("127.0.0.1:{port}")),
                "the listener no longer holds memory: {}",
                f.message
            );
        }
        drop(l);
        Ok(())
    });
}

/// Reads one line (CRLF-terminated RESP) from a redis connection.
fn resp_line(s: &mut TcpStream) -> anyhow::Result<String> {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    while !out.ends_with(b"\r\n") {
        anyhow::ensure!(
            s.read(&mut b)? == 1,
            "redis closed: {:?}",
            String::from_utf8_lossy(&out)
        );
        out.push(b[0]);
    }
    Ok(String::from_utf8_lossy(&out).trim_end().to_string())
}

/// A TcpExt counter as nstat reads it in the calling thread's namespace (absolute).
fn nstat(name: &str) -> anyhow::Result<u64> {
    let hist = TempDir::new("nstat")?;
    let out = Command::new("nstat")
        .args(["-az", &format!("TcpExt{name}")])
        .env("NSTAT_HISTORY", hist.path().join("h"))
        .output()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with(&format!("TcpExt{name} ")))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no TcpExt{name} from nstat"))
}

/// redis-server with `maxclients 100` (when installed): 100 clients hold their connections, and
/// every further client is accepted, told "max number of clients reached" and closed, and its
/// next command is answered with a reset. application_cap fires at the plateau of 100 with the
/// resets; the numbers equal `ss`, nstat and redis's own INFO; it clears when the excess stops.
#[test]
fn application_cap_of_redis_maxclients_fires_on_its_resets() {
    const MAX: usize = 100;
    if Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "redis-server is not installed (apt-get install redis-server)"
        );
        eprintln!("\n*** SKIPPED: redis-server is not installed ***\n");
        return;
    }
    in_netns("findings_redis_maxclients", || {
        let port: u16 = 6379;
        let dir = TempDir::new("redis")?;
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--maxclients",
                &MAX.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args([
                "--dir",
                &dir.path().display().to_string(),
                "--protected-mode",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()?;
        struct Kill<'a>(&'a mut Child);
        impl Drop for Kill<'_> {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let pid = child.id();
        let _guard = Kill(&mut child);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let start = Instant::now();
        let ping = |s: &mut TcpStream| -> anyhow::Result<String> {
            s.write_all(b"PING\r\n")?;
            resp_line(s)
        };
        let first = loop {
            if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                break s;
            }
            anyhow::ensure!(
                start.elapsed() < Duration::from_secs(20),
                "redis did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))?
            .trim()
            .to_string();
        let mut held = vec![first];
        while held.len() < MAX {
            held.push(TcpStream::connect_timeout(&addr, Duration::from_secs(2))?);
        }
        for s in &mut held {
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            assert_eq!(ping(s)?, "+PONG");
        }
        // Clients over the cap: accepted, told so, closed; their next command meets a reset.
        let rejected = |n: usize| -> anyhow::Result<()> {
            for _ in 0..n {
                let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
                s.set_read_timeout(Some(Duration::from_secs(10)))?;
                s.write_all(b"PING\r\n")?;
                let line = resp_line(&mut s)?;
                anyhow::ensure!(
                    line.contains("max number of clients"),
                    "redis said {line:?}"
                );
                let mut rest = Vec::new();
                let _ = s.read_to_end(&mut rest); // the server's close
                let _ = s.write_all(b"PING\r\n"); // data after its close: a reset
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(())
        };
        let mut w = Watch::new()?;
        let t = w.until(
            port,
            Duration::from_secs(40),
            || rejected(3),
            |t| finding(t, "application_cap", port).is_some(),
        )?;
        // Nothing moves between the rejected clients: ss and nstat now are the tick's moment.
        let lines = ss("-tnHe", "established", port)?;
        let ss_in_service = lines
            .iter()
            .filter(|l| !l.contains(&"ino:0".to_string()))
            .count();
        let aborts = nstat("TCPAbortOnData")? + nstat("TCPAbortOnClose")?;
        let ext = &t.snapshot.counters.tcp_ext;
        let sockq_aborts = ext.get("TCPAbortOnData").copied().unwrap_or(0)
            + ext.get("TCPAbortOnClose").copied().unwrap_or(0);
        let f = finding(&t, "application_cap", port).unwrap();
        eprintln!("{}", f.message);
        assert_eq!(ss_in_service, MAX, "ss: {lines:?}");
        assert_eq!(f.evidence["in_service"], MAX as f64);
        assert_eq!(f.evidence["cap"], MAX as f64);
        assert!(f.evidence["resets_per_s"] > 0.0, "{f:?}");
        assert_eq!(
            sockq_aborts, aborts,
            "TCPAbortOnData + TCPAbortOnClose: sockq vs nstat"
        );
        assert!(aborts > 0);
        assert!(
            f.message.contains(&format!("hold flat at {MAX} "))
                && f.message.contains(&format!(
                    "exactly the round number {MAX}, while the namespace resets "
                )),
            "{}",
            f.message
        );
        assert!(
            f.message
                .contains(&format!("{comm}[{pid}] looks capped at {MAX}")),
            "{}",
            f.message
        );
        // redis agrees: it turned connections away at maxclients.
        held[0].write_all(b"INFO stats\r\n")?;
        let mut info = String::new();
        let len: usize = resp_line(&mut held[0])?.trim_start_matches('$').parse()?;
        let mut body = vec![0u8; len + 2];
        held[0].read_exact(&mut body)?;
        info.push_str(&String::from_utf8_lossy(&body));
        let refused: u64 = info
            .lines()
            .find_map(|l| l.strip_prefix("rejected_connections:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("rejected_connections in INFO stats");
        assert!(refused > 0, "{info}");

        // No more clients over the cap: no resets, the finding clears.
        w.until(
            port,
            Duration::from_secs(20),
            || Ok(()),
            |t| finding(t, "application_cap", port).is_none(),
        )?;
        drop(held);
        Ok(())
    });
}
