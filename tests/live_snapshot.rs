//! Live tests: real sockets in a private network namespace made by each test.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and tools may panic on failure

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddrV4};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use sockq::lab::syn;
use sockq::model::{Family, Owners, Snapshot, TcpListener};

fn find(s: &Snapshot, port: u16) -> anyhow::Result<&TcpListener> {
    s.tcp_listeners
        .iter()
        .find(|l| l.port == port)
        .ok_or_else(|| anyhow::anyhow!("no listener on port {port} in {:#?}", s.tcp_listeners))
}

/// The first line a child writes on its piped stdout (a helper's "ready" line).
fn first_line(child: &mut std::process::Child) -> anyhow::Result<String> {
    use std::io::BufRead;
    let out = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut line = String::new();
    std::io::BufReader::new(out).read_line(&mut line)?;
    Ok(line)
}

fn counter(s: &Snapshot, name: &str) -> u64 {
    s.counters
        .tcp_ext(name)
        .unwrap_or_else(|| panic!("{name} absent"))
}

#[test]
fn full_accept_queue_is_backlog_plus_one_and_drops_move_together() {
    in_netns("full_accept_queue", || {
        let (_l, addr) = listen("127.0.0.1:0", 4)?;
        let _clients = connect_n(addr, 5)?;
        let mut c = collector()?;
        let s = sample_until(&mut c, Duration::from_secs(2), |s| {
            find(s, addr.port()).is_ok_and(|l| l.accept_queue == 5)
        })?;
        let l = find(&s, addr.port())?;
        assert_eq!((l.accept_queue, l.backlog), (5, 4), "Recv-Q/Send-Q");
        assert!(l.is_full());
        assert_eq!(l.fill(), Some(1.25));
        let drops0 = l.drops.expect("SK_MEMINFO drops");
        let over0 = counter(&s, "ListenOverflows");
        let ldrops0 = counter(&s, "ListenDrops");

        // Three more clients: each SYN (and each retransmission) is dropped.
        let extra = syn_only_clients(addr, 3)?;
        std::thread::sleep(Duration::from_millis(1300));
        drop(extra); // no more retransmissions: the counters settle
        std::thread::sleep(Duration::from_millis(100));
        let s = c.sample()?;
        let l = find(&s, addr.port())?;
        let d_drops = l.drops.expect("drops") - drops0;
        let d_over = counter(&s, "ListenOverflows") - over0;
        let d_ldrops = counter(&s, "ListenDrops") - ldrops0;
        assert!(
            d_drops >= 3,
            "at least one drop per extra client, got {d_drops}"
        );
        assert_eq!(
            d_drops, d_over,
            "listener drops and ListenOverflows move together"
        );
        assert_eq!(d_ldrops, d_over, "every overflow is also a ListenDrop");
        assert_eq!(l.accept_queue, 5);
        Ok(())
    });
}

#[test]
fn somaxconn_caps_the_backlog_per_namespace() {
    let host_before = std::fs::read_to_string("/proc/sys/net/core/somaxconn").ok();
    in_netns("somaxconn", || {
        set_sysctl("net/core/somaxconn", "128")?;
        let (_a, a) = listen("127.0.0.1:0", 511)?;
        let (_b, b) = listen("127.0.0.1:0", 64)?;
        let s = collector()?.sample()?;
        assert_eq!(s.tunables.somaxconn, Some(128));
        assert_eq!(find(&s, a.port())?.backlog, 128);
        assert_eq!(find(&s, b.port())?.backlog, 64);
        Ok(())
    });
    let host_after = std::fs::read_to_string("/proc/sys/net/core/somaxconn").ok();
    assert_eq!(host_before, host_after, "the host's somaxconn is untouched");
}

#[test]
fn spoofed_syns_become_exact_syn_recv_counts_on_the_right_listener() {
    in_netns("syn_recv_1000", || {
        syn::setup_sink()?;
        let (_a, a) = listen("10.88.0.1:80", 2048)?;
        let (_b, b) = listen("10.88.0.1:81", 2048)?;
        let mut sender = syn::SynSender::new()?;
        sender.flood(SocketAddrV4::new(syn::TARGET_ADDR, 80), 0, 1000)?;
        let mut c = collector()?;
        let s = sample_until(&mut c, Duration::from_secs(5), |s| s.syn_recv.total >= 1000)?;
        assert_eq!(s.syn_recv.total, 1000);
        assert_eq!(s.syn_recv.unmatched, 0);
        let la = find(&s, a.port())?;
        assert_eq!((la.syn_recv, la.syn_recv_group), (1000, 1));
        assert_eq!(
            la.accept_queue, 0,
            "half-open requests are not in the accept queue"
        );
        assert_eq!(find(&s, b.port())?.syn_recv, 0);
        Ok(())
    });
}

#[test]
fn ipv6_listener_is_read_with_its_address() {
    in_netns("ipv6", || {
        let (_l, addr) = listen("[::1]:0", 8)?;
        let _c = connect_n(addr, 2)?;
        let mut c = collector()?;
        let s = sample_until(&mut c, Duration::from_secs(2), |s| {
            find(s, addr.port()).is_ok_and(|l| l.accept_queue == 2)
        })?;
        let l = find(&s, addr.port())?;
        assert_eq!(l.family, Family::Ipv6);
        assert_eq!(l.address, "::1".parse::<IpAddr>()?);
        assert_eq!((l.accept_queue, l.backlog), (2, 8));
        assert_eq!(l.endpoint(), format!("[::1]:{}", addr.port()));
        Ok(())
    });
}

#[test]
fn unix_listener_shows_pending_connections_and_backlog() {
    in_netns("unix", || {
        let dir = std::env::temp_dir().join(format!("sockq-unix-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("demo.sock");
        let _ = std::fs::remove_file(&path);
        let s = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)?;
        s.bind(&socket2::SockAddr::unix(&path)?)?;
        s.listen(7)?;
        let clients: Vec<_> = (0..3)
            .map(|_| std::os::unix::net::UnixStream::connect(&path))
            .collect::<Result<_, _>>()?;
        let snap = collector()?.sample()?;
        let unix = snap
            .unix_listeners
            .as_ref()
            .expect("UNIX listeners collected");
        let l = unix
            .iter()
            .find(|l| l.name == path.to_string_lossy())
            .ok_or_else(|| anyhow::anyhow!("{path:?} not in {unix:#?}"))?;
        assert_eq!((l.accept_queue, l.backlog), (3, 7));
        let me = std::process::id();
        assert!(
            l.owners.processes().iter().any(|p| p.pid == me),
            "{:?}",
            l.owners
        );
        drop(clients);
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    });
}

const PY_SERVER: &str = "import socket,sys\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen(8)\nprint(s.getsockname()[1],flush=True)\nsys.stdin.read()\n";

#[test]
fn owner_of_a_child_with_rlimit_nofile_64() {
    in_netns("owner", || {
        let mut child = Command::new("prlimit")
            .args(["--nofile=64:64", "python3", "-c", PY_SERVER])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let line = first_line(&mut child)?;
        let port: u16 = line.trim().parse()?;
        let s = collector()?.sample()?;
        let result = (|| -> anyhow::Result<()> {
            let l = find(&s, port)?;
            let Owners::Known { processes } = &l.owners else {
                anyhow::bail!("owners unknown: {:?}", l.owners);
            };
            assert_eq!(processes.len(), 1, "{processes:?}");
            let p = &processes[0];
            assert_eq!(p.pid, child.id());
            assert_eq!(p.comm, "python3");
            assert_eq!(p.fd_limit, Some(64));
            let fds = std::fs::read_dir(format!("/proc/{}/fd", child.id()))?.count() as u64;
            assert_eq!(p.fds_open, Some(fds));
            Ok(())
        })();
        let _ = child.kill();
        let _ = child.wait();
        result
    });
}

/// A listener that appears between two samples has its owner as soon as the next /proc scan
/// is due: scans are spaced by 50× the last scan's cost, at least 250 ms and at most 2 s (not
/// the 30 s full rescan). How soon within that depends on how loaded the machine is, so the
/// test samples until then rather than asserting the very next sample.
#[test]
fn a_new_listeners_owner_is_known_within_the_rescan_spacing() {
    in_netns("owner_next_sample", || {
        let spawn = || -> anyhow::Result<(std::process::Child, u16)> {
            let mut child = Command::new("python3")
                .args(["-c", PY_SERVER])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()?;
            let port = first_line(&mut child)?.trim().parse()?;
            Ok((child, port))
        };
        let (mut first, first_port) = spawn()?;
        let mut c = collector()?;
        let s1 = c.sample()?;
        let known = |s: &Snapshot, port: u16| -> anyhow::Result<Vec<u32>> {
            Ok(find(s, port)?
                .owners
                .processes()
                .iter()
                .map(|p| p.pid)
                .collect())
        };
        let result = (|| -> anyhow::Result<()> {
            assert_eq!(known(&s1, first_port)?, [first.id()]);
            std::thread::sleep(sockq::collect::OWNER_RESCAN_FLOOR);
            let (mut second, second_port) = spawn()?;
            let found = (|| -> anyhow::Result<Snapshot> {
                // The longest spacing is 2 s; a sample every 100 ms for 3 s covers it.
                let deadline = Instant::now() + Duration::from_secs(3);
                loop {
                    let s2 = c.sample()?;
                    if !known(&s2, second_port)?.is_empty() || Instant::now() > deadline {
                        return Ok(s2);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })();
            let _ = second.kill();
            let _ = second.wait();
            let s2 = found?;
            assert_eq!(
                known(&s2, second_port)?,
                [second.id()],
                "{:?}",
                find(&s2, second_port)?.owners
            );
            assert_eq!(known(&s2, first_port)?, [first.id()]);
            Ok(())
        })();
        let _ = first.kill();
        let _ = first.wait();
        result
    });
}

/// 300 forked children each listening on one port, and the parent listening too with its fd
/// limit lowered to a few fds above what it has open (≥ 50 %: "hot"). Prints the parent's pid
/// when all are listening; opens one more fd for each "open" line on stdin (and prints how
/// many); on EOF on stdin kills the children. Children die with the parent
/// (PR_SET_PDEATHSIG), so a killed parent leaves nothing behind.
const PY_MANY_OWNERS: &str = r#"
import ctypes, os, resource, signal, socket, sys
N = int(sys.argv[1])
libc = ctypes.CDLL(None)
r, w = os.pipe()
kids = []
for i in range(N):
    pid = os.fork()
    if pid == 0:
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        os.close(r)
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        s.listen(8)
        os.write(w, b'x')
        os.close(w)
        signal.pause()
        os._exit(0)
    kids.append(pid)
os.close(w)
got = 0
while got < N:
    b = os.read(r, N - got)
    if not b:
        break
    got += len(b)
os.close(r)
s = socket.socket()
s.bind(('127.0.0.1', 0))
s.listen(8)
open_now = len(os.listdir('/proc/self/fd')) - 1
resource.setrlimit(resource.RLIMIT_NOFILE, (open_now + 3, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
print(os.getpid(), got, flush=True)
held = []
for cmd in sys.stdin:
    if cmd.strip() == 'open':
        held.append(open('/dev/null'))
        print(len(held), flush=True)
for k in kids:
    os.kill(k, signal.SIGKILL)
for k in kids:
    os.waitpid(k, 0)
"#;

/// Beyond 256 owning processes, a sample re-reads the processes near their fd limit every time
/// and the others in turn, oldest first; every number says its age, and every number read is
/// exact.
#[test]
fn owners_beyond_256_processes_are_refreshed_in_turn_and_hot_ones_every_sample() {
    const KIDS: usize = 300;
    in_netns("owners_in_turn", || {
        let mut parent = Command::new("python3")
            .args(["-c", PY_MANY_OWNERS, &KIDS.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut from_parent = std::io::BufReader::new(
            parent
                .stdout
                .take()
                .ok_or_else(|| anyhow::anyhow!("no stdout"))?,
        );
        let mut line = String::new();
        std::io::BufRead::read_line(&mut from_parent, &mut line)?;
        let mut to_parent = parent
            .stdin
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdin"))?;
        let result = (|| -> anyhow::Result<()> {
            let fields: Vec<u32> = line
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()?;
            let [hot_pid, listening] = fields[..] else {
                anyhow::bail!("python said {line:?}");
            };
            assert_eq!(listening as usize, KIDS);
            let owner = |l: &TcpListener| -> anyhow::Result<sockq::model::ProcessInfo> {
                match l.owners.processes() {
                    [p] => Ok(p.clone()),
                    other => anyhow::bail!("port {}: owners {other:?} ({:?})", l.port, l.owners),
                }
            };
            let mut c = collector()?;
            // The scan: every process found and read now.
            let s1 = c.sample()?;
            assert_eq!(s1.tcp_listeners.len(), KIDS + 1);
            for l in &s1.tcp_listeners {
                let p = owner(l)?;
                assert_eq!(p.age_ms, 0, "{p:?}");
                let listed = std::fs::read_dir(format!("/proc/{}/fd", p.pid))?.count() as u64;
                assert_eq!(p.fds_open, Some(listed), "{p:?}");
                let limits = std::fs::read_to_string(format!("/proc/{}/limits", p.pid))?;
                assert_eq!(
                    Some(p.fd_limit),
                    sockq::collect::owners::parse_nofile_soft_limit(&limits),
                    "{p:?}"
                );
                if p.pid == hot_pid {
                    let (open, limit) = (p.fds_open.unwrap_or(0), p.fd_limit.unwrap_or(0));
                    assert!(2 * open >= limit && limit > open, "{p:?} is not hot");
                }
            }
            // Then in turn: 301 processes, 1 hot; 256 of the other 300 per sample.
            let stale = |s: &Snapshot| -> anyhow::Result<BTreeSet<u32>> {
                let mut out = BTreeSet::new();
                for l in &s.tcp_listeners {
                    let p = owner(l)?;
                    if p.pid == hot_pid {
                        assert_eq!(p.age_ms, 0, "the hot process is read every sample: {p:?}");
                    } else if p.age_ms > 0 {
                        out.insert(p.pid);
                    }
                }
                Ok(out)
            };
            std::thread::sleep(Duration::from_millis(20));
            let s2 = c.sample()?;
            let stale2 = stale(&s2)?;
            assert_eq!(stale2.len(), KIDS - 256, "{stale2:?}");
            std::thread::sleep(Duration::from_millis(20));
            let s3 = c.sample()?;
            let stale3 = stale(&s3)?;
            assert_eq!(stale3.len(), KIDS - 256, "{stale3:?}");
            assert!(
                stale2.is_disjoint(&stale3),
                "the oldest go first: {:?}",
                stale2.intersection(&stale3).collect::<Vec<_>>()
            );
            // What was read is exact.
            for l in &s3.tcp_listeners {
                let p = owner(l)?;
                let listed = std::fs::read_dir(format!("/proc/{}/fd", p.pid))?.count() as u64;
                assert_eq!(p.fds_open, Some(listed), "{p:?}");
            }
            // The hot process opens one more fd: the very next sample shows it.
            let hot_fds = |s: &Snapshot| -> anyhow::Result<Option<u64>> {
                for l in &s.tcp_listeners {
                    let p = owner(l)?;
                    if p.pid == hot_pid {
                        return Ok(p.fds_open);
                    }
                }
                anyhow::bail!("no listener of the hot process")
            };
            let before = hot_fds(&s3)?.unwrap_or(0);
            std::io::Write::write_all(&mut to_parent, b"open\n")?;
            let mut reply = String::new();
            std::io::BufRead::read_line(&mut from_parent, &mut reply)?;
            assert_eq!(reply.trim(), "1");
            let s4 = c.sample()?;
            assert_eq!(hot_fds(&s4)?, Some(before + 1));
            assert_eq!(stale(&s4)?.len(), KIDS - 256);

            // sockq itself with a soft fd limit of 64 reads its 257 due processes a sample
            // (one descriptor at a time): every owner stays known, tick after tick.
            let sockq = sockq_command(&["watch", "--json", "--interval", "200ms"]);
            let mut watch = Command::new("prlimit");
            watch
                .arg("--nofile=64:64")
                .arg(sockq.get_program())
                .args(sockq.get_args())
                .stdout(Stdio::piped());
            for (key, value) in sockq.get_envs() {
                match value {
                    Some(v) => watch.env(key, v),
                    None => watch.env_remove(key),
                };
            }
            let mut watch = watch.spawn()?;
            let ticks = (|| -> anyhow::Result<Vec<serde_json::Value>> {
                use std::io::BufRead;
                let out = watch
                    .stdout
                    .take()
                    .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
                let mut lines = std::io::BufReader::new(out).lines();
                let mut ticks = Vec::new();
                while ticks.len() < 3 {
                    let line = lines
                        .next()
                        .ok_or_else(|| anyhow::anyhow!("sockq watch ended"))??;
                    ticks.push(serde_json::from_str(&line)?);
                }
                Ok(ticks)
            })();
            let _ = watch.kill();
            let _ = watch.wait();
            for (i, t) in ticks?.iter().enumerate() {
                let listeners = t["snapshot"]["tcp_listeners"]
                    .as_array()
                    .ok_or_else(|| anyhow::anyhow!("tick {i}: {t}"))?;
                assert_eq!(listeners.len(), KIDS + 1);
                let stale = listeners
                    .iter()
                    .filter(|l| {
                        assert_eq!(l["owners"]["status"], "known", "tick {i}: {l}");
                        l["owners"]["processes"][0]["age_ms"].as_u64() != Some(0)
                    })
                    .count();
                assert_eq!(stale, if i == 0 { 0 } else { KIDS - 256 }, "tick {i}");
            }
            Ok(())
        })();
        drop(to_parent);
        // Killed there if it does not end (its children die with it).
        let ended = wait_with_timeout(&mut parent, Duration::from_secs(10));
        result.and(ended.map(drop))
    });
}

fn ss_listeners(v: &str) -> BTreeSet<(String, u32, u32)> {
    v.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // LISTEN Recv-Q Send-Q Local Peer
            Some((
                f.get(3)?.to_string(),
                f.get(1)?.parse().ok()?,
                f.get(2)?.parse().ok()?,
            ))
        })
        .collect()
}

/// `ss -ltmH`: the `d<N>` of every listener's skmem, by local address.
fn ss_drops(v: &str) -> BTreeSet<(String, u64)> {
    let mut out = BTreeSet::new();
    let mut local = None;
    for line in v.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.first() == Some(&"LISTEN") {
            local = f.get(3).map(|s| s.to_string());
        }
        if let Some(skmem) = line.split("skmem:(").nth(1) {
            let d = skmem.trim_end_matches(')').split(',').find_map(|kv| {
                kv.strip_prefix('d')
                    .and_then(|n| n.trim_end_matches(')').parse().ok())
            });
            if let (Some(l), Some(d)) = (local.take(), d) {
                out.insert((l, d));
            }
        }
    }
    out
}

#[test]
fn agrees_with_ss_on_listeners_drops_and_syn_recv() {
    in_netns("differential_ss", || {
        syn::setup_sink()?;
        let (_full, full) = listen("127.0.0.1:0", 2)?;
        let _held = connect_n(full, 3)?;
        let extra = syn_only_clients(full, 2)?;
        let (_v6, _) = listen("[::]:0", 16)?;
        let (_flood, _) = listen("10.88.0.1:80", 1024)?;
        let (_other, _) = listen("0.0.0.0:8080", 511)?;
        let mut sender = syn::SynSender::new()?;
        sender.flood(SocketAddrV4::new(syn::TARGET_ADDR, 80), 0, 300)?;
        std::thread::sleep(Duration::from_millis(1200));
        drop(extra);
        std::thread::sleep(Duration::from_millis(100));

        let mut c = collector()?;
        let s = sample_until(&mut c, Duration::from_secs(5), |s| s.syn_recv.total >= 300)?;
        let ss = run_ok("ss", &["-ltnH"])?;
        let ss_m = run_ok("ss", &["-ltnmH"])?;
        let ss_syn = run_ok("ss", &["-tnH", "state", "syn-recv"])?;

        let ours: BTreeSet<(String, u32, u32)> = s
            .tcp_listeners
            .iter()
            .map(|l| (l.endpoint(), l.accept_queue, l.backlog))
            .collect();
        assert_eq!(
            ours,
            ss_listeners(&ss),
            "listener rows differ from `ss -ltnH`"
        );
        let our_drops: BTreeSet<(String, u64)> = s
            .tcp_listeners
            .iter()
            .map(|l| (l.endpoint(), l.drops.unwrap_or(u64::MAX)))
            .collect();
        assert_eq!(
            our_drops,
            ss_drops(&ss_m),
            "drop counters differ from `ss -ltm`"
        );
        assert!(
            our_drops.iter().any(|(_, d)| *d > 0),
            "the full listener dropped"
        );
        assert_eq!(
            s.syn_recv.total,
            ss_syn.lines().count() as u64,
            "SYN-RECV total vs ss"
        );
        assert_eq!(s.syn_recv.total, 300);
        Ok(())
    });
}

#[test]
fn an_aborted_dump_does_not_poison_the_next_one() {
    use sockq::collect::diag::listen_request;
    use sockq::collect::netlink::{DiagSocket, NetlinkError};
    in_netns("aborted_dump", || {
        let _ls: Vec<_> = (0..200)
            .map(|_| listen("127.0.0.1:0", 8))
            .collect::<anyhow::Result<_>>()?;
        let mut diag = DiagSocket::new()?;
        let first = diag.dump(listen_request(Family::Ipv4), |_| {
            Err(NetlinkError::Decode("stop here".into()))
        });
        assert!(matches!(first, Err(NetlinkError::Decode(_))), "{first:?}");
        // Without draining, the kernel answers the next dump on this socket with EBUSY.
        let mut n = 0;
        diag.dump(listen_request(Family::Ipv4), |_| {
            n += 1;
            Ok(())
        })?;
        assert_eq!(n, 200);
        Ok(())
    });
}

/// A named namespace made with `ip netns add`, deleted on drop (also on failure).
struct NamedNetns(String);

impl NamedNetns {
    fn new(tag: &str) -> anyhow::Result<Self> {
        let name = format!("sockq-t-{tag}-{}", std::process::id());
        run_ok("ip", &["netns", "add", &name])?;
        let ns = Self(name);
        run_ok("ip", &["-n", &ns.0, "link", "set", "lo", "up"])?;
        Ok(ns)
    }
}

impl Drop for NamedNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

const PY_HOLD: &str = "import socket,sys\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen(3)\ncs=[socket.create_connection(s.getsockname()) for _ in range(2)]\nprint(s.getsockname()[1],flush=True)\nsys.stdin.read()\n";

#[test]
fn netns_by_name_and_by_pid_read_that_namespace() {
    // Needs root like the other live tests; the namespace is named so `--netns` can find it.
    if !nix::unistd::geteuid().is_root() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "needs root under CI"
        );
        eprintln!("\n*** SKIPPED: netns_by_name_and_by_pid_read_that_namespace needs root ***\n");
        return;
    }
    let ns = NamedNetns::new("byname").expect("ip netns add");
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ns.0, "python3", "-c", PY_HOLD])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 in the namespace");
    let mut line = String::new();
    {
        use std::io::BufRead;
        let out = child.stdout.take().expect("stdout");
        std::io::BufReader::new(out)
            .read_line(&mut line)
            .expect("port");
    }
    let port: u16 = line.trim().parse().expect("port number");
    let check = |args: &[&str]| -> serde_json::Value {
        let out = Command::new(sockq_bin())
            .args(["snapshot", "--json"])
            .args(args)
            .output()
            .expect("run sockq");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("json")
    };
    let by_name = check(&["--netns", &ns.0]);
    let by_pid = check(&["--netns-pid", &child.id().to_string()]);
    for (snap, label) in [
        (&by_name, format!("name:{}", ns.0)),
        (&by_pid, format!("pid:{}", child.id())),
    ] {
        assert_eq!(snap["netns"]["label"], label);
        let ls = snap["tcp_listeners"].as_array().expect("listeners");
        assert_eq!(ls.len(), 1, "only the namespace's own listener: {ls:?}");
        assert_eq!(ls[0]["port"], port);
        assert_eq!(
            (ls[0]["accept_queue"].as_u64(), ls[0]["backlog"].as_u64()),
            (Some(2), Some(3))
        );
        assert_eq!(ls[0]["owners"]["processes"][0]["pid"], child.id());
        // Counters and tunables are the namespace's (a fresh one: somaxconn default 4096).
        assert_eq!(snap["tunables"]["net.core.somaxconn"], 4096);
    }
    assert_eq!(by_name["netns"]["inode"], by_pid["netns"]["inode"]);
    let host =
        std::fs::metadata("/proc/self/ns/net").map(|m| std::os::unix::fs::MetadataExt::ino(&m));
    assert_ne!(by_name["netns"]["inode"].as_u64(), host.ok());
    let _ = child.kill();
    let _ = child.wait();
}

/// An idle namespace: once a dump found no SYN-RECV request, the walk of the established hash
/// is not made again while Tcp InSegs stays put (no SYN can have arrived); the first SYN that
/// arrives moves InSegs, and the next sample dumps and counts exactly what `ss` counts.
#[test]
fn syn_recv_dump_is_skipped_while_no_segment_arrives() {
    in_netns("syn_recv_idle", || {
        syn::setup_sink()?;
        let (_a, a) = listen("10.88.0.1:80", 2048)?;
        let mut c = collector()?;
        let first = c.sample()?;
        assert_eq!(first.syn_recv.total, 0);
        for _ in 0..3 {
            let s = c.sample()?;
            assert_eq!((s.syn_recv.total, s.syn_recv.age_ms), (0, 0));
            assert_eq!(
                c.syn_recv_cost(),
                Duration::ZERO,
                "no dump while InSegs stays {:?}",
                s.counters.tcp.get("InSegs")
            );
            assert!(s.tcp_listeners.iter().all(|l| l.syn_recv == 0));
        }
        let mut sender = syn::SynSender::new()?;
        sender.flood(SocketAddrV4::new(syn::TARGET_ADDR, 80), 0, 50)?;
        let s = sample_until(&mut c, Duration::from_secs(30), |s| s.syn_recv.total >= 50)?;
        let ss = Command::new("ss")
            .args(["-Htn", "state", "syn-recv"])
            .output()?;
        let ss_count = String::from_utf8_lossy(&ss.stdout).lines().count() as u64;
        assert_eq!((s.syn_recv.total, ss_count), (50, 50));
        assert_eq!(find(&s, a.port())?.syn_recv, 50);
        Ok(())
    });
}
