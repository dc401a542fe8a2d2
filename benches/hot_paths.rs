//! Criterion benchmarks of sockq's hot paths (no root needed; see docs/perf.md):
//!
//! - `netlink/*`: parsing captured sock_diag datagrams (tests/fixtures/netlink) with
//!   `parse_datagram` and decoding each message (`decode_listener`, `decode_syn_recv` + `SynRecvRuns`,
//!   `decode_unix_listener`);
//! - `procnet/parse_counters`: /proc/net/netstat + snmp of the 6.18 fixture;
//! - `owners/*`: `OwnerResolver::resolve` on the real /proc for sockets this process holds, the
//!   cached path (one readlink per holder + fresh fd count, limit and /proc/PID/stat) and a
//!   full /proc scan; and the cached path for 50 child processes holding one socket each, where
//!   the per-process reads (not the per-socket ones) are the cost;
//! - `engine/ingest`: one tick of 1,000 listeners into an engine whose 15-minute history is full;
//! - `render/*`: one dashboard frame (`sockq::tui::render::draw`, TestBackend 200x50) with 1,000
//!   listeners and full history, and the same at 10,000 listeners (scale, no target).
//!
//! Live dumps against the kernel at scale need root and namespaces: they are in the comparison
//! harness (`examples/perf_compare.rs`), not here.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and tools may panic on failure

use std::hint::black_box;
use std::net::TcpListener as StdListener;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use sockq::collect::diag::{decode_listener, decode_syn_recv, decode_unix_listener, SynRecvRuns};
use sockq::collect::netlink::parse_datagram;
use sockq::collect::owners::OwnerResolver;
use sockq::collect::procnet;
use sockq::engine::{Engine, EngineConfig};
use sockq::tui::app::App;
use sockq::tui::render;

#[path = "support/synth.rs"]
mod synth;

/// Sequence numbers of the captured requests (tests/fixtures/netlink/MANIFEST.md).
const SEQ_LISTEN_V4: u32 = 1;
const SEQ_SYN_RECV_V4: u32 = 3;
const SEQ_UNIX: u32 = 5;

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/netlink")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

fn messages(dgram: &[u8], seq: u32) -> u64 {
    parse_datagram(dgram, seq, None, |_| Ok(()))
        .expect("fixture parses")
        .messages as u64
}

fn netlink(c: &mut Criterion) {
    let mut g = c.benchmark_group("netlink");

    let listen = fixture("tcp-listen-v4-0.bin");
    g.throughput(Throughput::Elements(messages(&listen, SEQ_LISTEN_V4)));
    g.bench_function("listen_v4_datagram_decode_listener", |b| {
        b.iter(|| {
            let mut n = 0usize;
            parse_datagram(black_box(&listen), SEQ_LISTEN_V4, None, |p| {
                if let Some(l) = decode_listener(p)? {
                    n += l.accept_queue as usize;
                    black_box(l);
                }
                Ok(())
            })
            .unwrap();
            n
        })
    });

    let syn = fixture("tcp-syn-recv-v4-0.bin");
    g.throughput(Throughput::Elements(messages(&syn, SEQ_SYN_RECV_V4)));
    g.bench_function("syn_recv_v4_datagram_decode_and_tally", |b| {
        b.iter(|| {
            let mut runs = SynRecvRuns::default();
            parse_datagram(black_box(&syn), SEQ_SYN_RECV_V4, None, |p| {
                if let Some(e) = decode_syn_recv(p)? {
                    runs.add(e);
                }
                Ok(())
            })
            .unwrap();
            runs.finish().total
        })
    });
    // The framing alone: what a dump that only counts messages costs in user space.
    g.bench_function("syn_recv_v4_datagram_count_only", |b| {
        b.iter(|| {
            parse_datagram(black_box(&syn), SEQ_SYN_RECV_V4, None, |_| Ok(()))
                .unwrap()
                .messages
        })
    });

    let unix = fixture("unix-listen-0.bin");
    g.throughput(Throughput::Elements(messages(&unix, SEQ_UNIX)));
    g.bench_function("unix_datagram_decode_unix_listener", |b| {
        b.iter(|| {
            let mut n = 0usize;
            parse_datagram(black_box(&unix), SEQ_UNIX, None, |p| {
                if let Some(l) = decode_unix_listener(p)? {
                    n += l.backlog as usize;
                    black_box(l);
                }
                Ok(())
            })
            .unwrap();
            n
        })
    });
    g.finish();
}

fn procnet_counters(c: &mut Criterion) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc/6.18");
    let netstat = std::fs::read_to_string(dir.join("netstat")).unwrap();
    let snmp = std::fs::read_to_string(dir.join("snmp")).unwrap();
    c.bench_function("procnet/parse_counters_6.18", |b| {
        b.iter(|| {
            let (counters, problems) =
                procnet::parse_counters(black_box(&netstat), black_box(&snmp));
            assert!(problems.is_empty());
            counters
        })
    });
}

/// Sockets held by this process for the owner benchmarks.
const OWNED_SOCKETS: usize = 200;

fn owners(c: &mut Criterion) {
    let held: Vec<StdListener> = (0..OWNED_SOCKETS)
        .map(|_| StdListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    let euid = nix::unistd::geteuid().as_raw();
    let sockets: Vec<(u64, u32)> = held
        .iter()
        .map(|l| {
            let link = format!("/proc/self/fd/{}", l.as_raw_fd());
            (std::fs::metadata(link).unwrap().ino(), euid)
        })
        .collect();
    let netns = std::fs::metadata("/proc/self/ns/net").ok().map(|m| m.ino());
    let processes = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .count();
    eprintln!(
        "owners: {OWNED_SOCKETS} sockets held by this process; /proc lists {processes} processes \
         (a full scan reads the fd table of each process in this network namespace)"
    );

    let mut g = c.benchmark_group("owners");
    g.throughput(Throughput::Elements(OWNED_SOCKETS as u64));
    let mut resolver = OwnerResolver::new(PathBuf::from("/proc"), netns, Duration::from_secs(2));
    let t0 = Instant::now();
    let first = resolver.resolve(&sockets, t0);
    assert_eq!(resolver.scans(), 1);
    assert!(
        sockets
            .iter()
            .all(|(ino, _)| first[ino].processes().len() == 1),
        "every held socket is found"
    );
    // Same `now` every call: within FULL_RESCAN_INTERVAL and no new inode, so never a scan.
    let cached_now = t0 + Duration::from_secs(1);
    g.bench_function("resolve_cached_200_sockets", |b| {
        b.iter(|| resolver.resolve(black_box(&sockets), cached_now))
    });
    assert_eq!(resolver.scans(), 1, "the cached path rescanned /proc");

    // Each call 31 s after the previous: a forced full scan every time.
    let mut scanner = OwnerResolver::new(PathBuf::from("/proc"), netns, Duration::from_secs(2));
    let mut now = t0;
    g.bench_function("resolve_full_scan_200_sockets", |b| {
        b.iter(|| {
            now += Duration::from_secs(31);
            scanner.resolve(black_box(&sockets), now)
        })
    });
    g.finish();
    drop(held);
    owners_per_process(c, netns);
}

/// Holder processes for [`owners_per_process`].
const HOLDER_PROCESSES: usize = 50;

/// The cached path for [`HOLDER_PROCESSES`] `sleep` children, each holding one listener as its
/// stdin: every call refreshes each process (open /proc/PID/fd, one readlink, the fd count, the
/// limit, /proc/PID/stat).
fn owners_per_process(c: &mut Criterion, netns: Option<u64>) {
    let euid = nix::unistd::geteuid().as_raw();
    let mut children = Vec::new();
    let mut sockets = Vec::new();
    for _ in 0..HOLDER_PROCESSES {
        let l = StdListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let link = format!("/proc/self/fd/{}", l.as_raw_fd());
        sockets.push((std::fs::metadata(link).unwrap().ino(), euid));
        let fd: std::os::fd::OwnedFd = l.into();
        let child = std::process::Command::new("sleep")
            .arg("600")
            .stdin(std::process::Stdio::from(fd))
            .spawn()
            .expect("sleep");
        children.push(child);
    }
    let mut resolver = OwnerResolver::new(PathBuf::from("/proc"), netns, Duration::from_secs(2));
    let t0 = Instant::now();
    // Until every child has exec'd and is found (a scan at most every 2 s).
    let mut now = t0;
    loop {
        let found = resolver.resolve(&sockets, now);
        if sockets.iter().all(|(ino, _)| {
            found[ino]
                .processes()
                .first()
                .is_some_and(|p| p.comm == "sleep")
        }) {
            break;
        }
        assert!(now < t0 + Duration::from_secs(120), "children not found");
        std::thread::sleep(Duration::from_millis(50));
        now += Duration::from_secs(31);
    }
    let scans = resolver.scans();
    let mut g = c.benchmark_group("owners");
    g.throughput(Throughput::Elements(HOLDER_PROCESSES as u64));
    g.bench_function("resolve_cached_50_processes", |b| {
        b.iter(|| resolver.resolve(black_box(&sockets), now))
    });
    g.finish();
    assert_eq!(resolver.scans(), scans, "the cached path rescanned /proc");
    for mut child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// An engine with the default 15-minute window at 1 s, its history full.
fn warm_engine(synth: &mut synth::Synth, ticks: usize) -> Engine {
    let mut engine = Engine::new(EngineConfig::default());
    for _ in 0..ticks {
        engine.ingest(synth.next_sample());
    }
    engine
}

fn engine_ingest(c: &mut Criterion) {
    let mut synth = synth::Synth::new(1_000, 50);
    let cap = EngineConfig::default().capacity();
    let mut engine = warm_engine(&mut synth, cap);
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(1_000));
    // Building the sample (a clone of 1,000 listeners) is setup, not measured.
    g.bench_function("ingest_1000_listeners_full_15min_history", |b| {
        b.iter_batched(
            || synth.next_sample(),
            |s| engine.ingest(s).seq,
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn render(c: &mut Criterion) {
    let mut g = c.benchmark_group("render");
    for (n, ticks) in [(1_000u32, EngineConfig::default().capacity()), (10_000, 60)] {
        let mut synth = synth::Synth::new(n, 50);
        let engine = warm_engine(&mut synth, ticks);
        let mut app = App::new(Duration::from_secs(1), true);
        let mut terminal = Terminal::new(TestBackend::new(200, 50)).unwrap();
        g.bench_function(format!("main_200x50_{n}_listeners"), |b| {
            b.iter(|| {
                terminal
                    .draw(|f| render::draw(f, &mut app, black_box(&engine)))
                    .unwrap();
            })
        });
        if n == 1_000 {
            // The rows of the table alone (sorted and filtered), which every frame and every
            // key press computes.
            g.bench_function(format!("app_rows_{n}_listeners"), |b| {
                b.iter(|| app.rows(black_box(&engine)).len())
            });
        }
    }
    g.finish();
}

fn config() -> Criterion {
    // Small samples and short measurements: the whole `cargo bench` stays around a minute on a
    // 2-core machine. Pass criterion's own flags after `--` for longer runs.
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = netlink, procnet_counters, owners, engine_ingest, render
}
criterion_main!(benches);
