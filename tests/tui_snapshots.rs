//! The dashboard without a terminal: whole frames drawn with `render::draw` on a ratatui
//! `TestBackend`, kept as insta snapshots (80x24 and 200x50), resize robustness at many sizes,
//! and the key handling of `App`. Deterministic: synthetic samples (fixed host, wall times,
//! inodes, cookies and pids; monotonic time stepping by exactly one second), no real time, no
//! /proc, no randomness.
//!
//! Accept changed snapshots with `INSTA_UPDATE=always cargo test --test tui_snapshots`, then read
//! every changed file under tests/snapshots/.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and tools may panic on failure

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::style::{Color, Modifier};
use ratatui::Terminal;
use sockq::engine::{Engine, EngineConfig};
use sockq::model::testing;
use sockq::model::{
    CollectorStats, Counters, DepthRange, Filter, HostInfo, ListenerKey, NetnsInfo, Owners,
    ProcessInfo, Sample, SampleTime, Snapshot, SynRecvSummary, TcpListener, Tunables, UnixListener,
    QUEUE_COUNTERS, SCHEMA_VERSION,
};
use sockq::tui::app::{Action, App, Row, Screen, SortBy};
use sockq::tui::render;

// ---------------------------------------------------------------------------------------------
// A deterministic synthetic namespace
// ---------------------------------------------------------------------------------------------

/// Monotonic time of the first sample (ns).
const T0_NS: u64 = 7_000_000_000_000;
/// Wall time of the first sample (ms since the epoch): 2025-06-01T12:00:00Z.
const WALL0_MS: u64 = 1_748_779_200_000;
/// Ticks ingested per scenario (enough for the sparklines to have history).
const TICKS: u64 = 30;
/// The display interval of every scenario.
const INTERVAL: Duration = Duration::from_secs(1);

/// Uid sockq runs as in the unprivileged scenario.
const USER_UID: u32 = 1000;

fn proc_info(pid: u32, comm: &str, fds: u64, limit: u64) -> ProcessInfo {
    ProcessInfo {
        pid,
        comm: comm.into(),
        fds_open: Some(fds),
        fd_limit: Some(limit),
        age_ms: 0,
        ..ProcessInfo::default()
    }
}

fn known(processes: Vec<ProcessInfo>) -> Owners {
    Owners::Known {
        processes: processes.into(),
    }
}

fn tcp(addr: IpAddr, port: u16, v6only: Option<bool>, id: u64, backlog: u32) -> TcpListener {
    testing::tcp_listener(port)
        .addr(addr)
        .v6only(v6only)
        .identity(31_000 + id, 0x0000_1000_0000_0000 + id)
        .queue(0, backlog)
        .build()
}

type PerTick = Box<dyn Fn(u64) -> u64>;

/// One listener of the synthetic namespace and how it evolves per tick.
struct Spec {
    listener: TcpListener,
    /// Accept-queue depth at tick `t`.
    depth: PerTick,
    /// Drops added during tick `t` (also added to ListenOverflows and ListenDrops).
    drops: PerTick,
    /// SYN-RECV at tick `t`.
    syn: PerTick,
    /// The listener exists at ticks before this one (it goes away then).
    until: u64,
}

impl Spec {
    fn idle(listener: TcpListener) -> Self {
        Self {
            listener,
            depth: Box::new(|_| 0),
            drops: Box::new(|_| 0),
            syn: Box::new(|_| 0),
            until: u64::MAX,
        }
    }

    fn until(mut self, t: u64) -> Self {
        self.until = t;
        self
    }

    fn depth(mut self, f: impl Fn(u64) -> u64 + 'static) -> Self {
        self.depth = Box::new(f);
        self
    }

    fn drops(mut self, f: impl Fn(u64) -> u64 + 'static) -> Self {
        self.drops = Box::new(f);
        self
    }

    fn syn(mut self, f: impl Fn(u64) -> u64 + 'static) -> Self {
        self.syn = Box::new(f);
        self
    }
}

/// A synthetic network namespace: listeners, UNIX listeners, counters, tunables.
struct World {
    specs: Vec<Spec>,
    unix: Option<Vec<UnixListener>>,
    tunables: Tunables,
    blind_spots: Vec<String>,
    /// Namespace counters that rise by this much every tick (beyond the listeners' drops).
    rising: Vec<(&'static str, u64)>,
}

/// The defaults of a fresh network namespace on a current kernel.
fn default_tunables() -> Tunables {
    testing::fresh_netns_tunables()
}

fn wall(ms: u64) -> String {
    let s = (ms - WALL0_MS) / 1000;
    let ms_part = (ms - WALL0_MS) % 1000;
    format!(
        "2025-06-01T12:{:02}:{:02}.{ms_part:03}Z",
        (s / 60) % 60,
        s % 60
    )
}

impl World {
    fn new(specs: Vec<Spec>) -> Self {
        Self {
            specs,
            unix: Some(vec![]),
            tunables: default_tunables(),
            blind_spots: vec![],
            rising: vec![],
        }
    }

    /// The sample of tick `t` (0-based). Counters and drop counters are cumulative sums of the
    /// per-tick increments up to and including `t`.
    fn sample(&self, t: u64) -> Sample {
        let mut counters: BTreeMap<String, u64> = QUEUE_COUNTERS
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), 1000 * i as u64 + 17))
            .collect();
        let mut listeners = Vec::new();
        let mut ranges = Vec::new();
        for spec in self.specs.iter().filter(|s| t < s.until) {
            let mut l = spec.listener.clone();
            let cum: u64 = (0..=t).map(|i| (spec.drops)(i)).sum();
            l.accept_queue = (spec.depth)(t) as u32;
            l.drops = l.drops.map(|d| d + cum);
            l.syn_recv = (spec.syn)(t);
            l.syn_recv_max_retrans = (l.syn_recv > 0).then_some(1);
            *counters.get_mut("ListenOverflows").unwrap() += cum;
            *counters.get_mut("ListenDrops").unwrap() += cum;
            ranges.push(DepthRange {
                key: ListenerKey::from(&l),
                high: l.accept_queue,
                low: l.accept_queue,
                readings: 10,
            });
            listeners.push(l);
        }
        for (name, per_tick) in &self.rising {
            *counters.get_mut(*name).unwrap() += per_tick * t;
        }
        let wall_ms = WALL0_MS + t * 1000;
        let syn_total = listeners.iter().map(|l| l.syn_recv).sum();
        Sample {
            snapshot: Snapshot {
                schema_version: SCHEMA_VERSION,
                time: SampleTime {
                    wall: wall(wall_ms),
                    wall_unix_ms: wall_ms,
                    monotonic_ns: T0_NS + t * 1_000_000_000,
                },
                host: HostInfo {
                    hostname: "demo-host".into(),
                    kernel: "6.18.0".into(),
                },
                netns: NetnsInfo {
                    label: "current".into(),
                    inode: Some(4_026_531_840),
                },
                tcp_listeners: listeners,
                syn_recv: SynRecvSummary {
                    total: syn_total,
                    unmatched: 0,
                    age_ms: 0,
                },
                unix_listeners: self.unix.clone(),
                service: None,
                sockstat: None,
                counters: Counters {
                    tcp_ext: counters,
                    tcp: BTreeMap::new(),
                },
                tunables: self.tunables.clone(),
                blind_spots: self.blind_spots.clone(),
            },
            depth_ranges: ranges,
            collector: CollectorStats {
                cpu_percent: 0.4,
                budget_percent: 1.0,
                sample_ms: 1.5,
                fast_interval_ms: 100,
                fast_interval_asked_ms: 100,
                syn_recv_age_ms: 0,
                throttled: false,
                ..CollectorStats::default()
            },
        }
    }

    /// An engine that has ingested `ticks` samples.
    fn engine(&self, ticks: u64) -> Engine {
        self.engine_with(ticks, Filter::default())
    }

    /// An engine following the listeners `filter` selects (as `--port`/`--process` set it up)
    /// that has ingested `ticks` samples.
    fn engine_with(&self, ticks: u64, filter: Filter) -> Engine {
        let mut engine = Engine::new(EngineConfig {
            interval: INTERVAL,
            filter,
            ..EngineConfig::default()
        });
        for t in 0..ticks {
            engine.ingest(self.sample(t));
        }
        engine
    }
}

// ---- scenarios ----

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

/// A web host: sshd, a dual-stack nginx with three workers, postgres and redis. Empty queues
/// (a small blip on nginx in the history), owners known.
fn healthy_specs() -> Vec<Spec> {
    let mut ssh = tcp(v4(0, 0, 0, 0), 22, None, 1, 128);
    ssh.owners = known(vec![proc_info(812, "sshd", 7, 1024)]);
    let mut web = tcp(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 80, Some(false), 2, 511);
    web.owners = known(vec![
        proc_info(1201, "nginx", 14, 65_536),
        proc_info(1202, "nginx", 52, 65_536),
        proc_info(1203, "nginx", 49, 65_536),
        proc_info(1204, "nginx", 51, 65_536),
    ]);
    let mut pg = tcp(v4(127, 0, 0, 1), 5432, None, 3, 244);
    pg.owners = known(vec![proc_info(1044, "postgres", 12, 1024)]);
    let mut redis = tcp(IpAddr::V6(Ipv6Addr::LOCALHOST), 6379, Some(true), 4, 511);
    redis.owners = known(vec![proc_info(1310, "redis-server", 9, 10_032)]);
    vec![
        Spec::idle(ssh),
        Spec::idle(web).depth(|t| {
            if t < TICKS - 1 {
                [0, 0, 1, 3, 1, 0, 0][t as usize % 7]
            } else {
                0
            }
        }),
        Spec::idle(pg),
        Spec::idle(redis),
    ]
}

fn unix_listeners() -> Vec<UnixListener> {
    vec![UnixListener {
        name: "/run/php/php8.2-fpm.sock".into(),
        inode: 52_001,
        accept_queue: 0,
        backlog: 511,
        owners: known(vec![proc_info(2001, "php-fpm8.2", 10, 1024)]),
    }]
}

fn healthy() -> World {
    let mut w = World::new(healthy_specs());
    w.unix = Some(unix_listeners());
    w
}

/// A listener on 127.0.0.1:8080 whose process stopped accepting: the queue fills to 5/4 over the
/// first ticks and stays full; from tick 5 on, 3 SYNs per second are dropped on it.
fn slowapp() -> Spec {
    let mut app = tcp(v4(127, 0, 0, 1), 8080, None, 5, 4);
    app.uid = 33;
    app.owners = known(vec![proc_info(4242, "slowapp", 23, 1024)]);
    Spec::idle(app)
        .depth(|t| t.min(5))
        .drops(|t| if t >= 5 { 3 } else { 0 })
}

fn overflowing() -> World {
    let mut specs = healthy_specs();
    specs.push(slowapp());
    let mut w = World::new(specs);
    w.unix = Some(unix_listeners());
    w
}

/// The web host with a listener on :9090 that went away at tick 18: at the last tick (29) it was
/// last seen 12 s ago.
fn gone() -> World {
    let mut specs = healthy_specs();
    let mut old = tcp(v4(0, 0, 0, 0), 9090, None, 9, 128);
    old.owners = known(vec![proc_info(5555, "oldapp", 30, 1024)]);
    specs.push(Spec::idle(old).depth(|_| 3).until(18));
    World::new(specs)
}

/// The web host with a listener whose queue no poll ever sees full, while its own drop counter
/// moves with ListenOverflows (2 per second): an overflow proven between polls.
fn proven_overflow() -> World {
    let mut specs = healthy_specs();
    let mut burst = tcp(v4(127, 0, 0, 1), 8081, None, 10, 8);
    burst.owners = known(vec![proc_info(6061, "burstapp", 40, 1024)]);
    specs.push(Spec::idle(burst).drops(|t| if t >= 1 { 2 } else { 0 }));
    World::new(specs)
}

/// The overflowing host while the kernel answers SYNs with cookies (some come back) and resets
/// handshakes: more findings cite counters than the strip has columns for at 80.
fn cookies() -> World {
    let mut w = overflowing();
    w.rising = vec![
        ("TCPReqQFullDoCookies", 60),
        ("SyncookiesSent", 50),
        ("SyncookiesRecv", 10),
        ("EmbryonicRsts", 4),
    ];
    w
}

/// The overflowing host where 127.0.0.1:8080 recovered (its queue drained at tick 27, 3 s
/// before the last tick) while 127.0.0.1:9000 still overflows: 8080's critical finding is held,
/// marked cleared.
fn held() -> World {
    let mut specs = healthy_specs();
    specs.push(
        slowapp()
            .depth(|t| if t < 27 { t.min(5) } else { 0 })
            .drops(|t| if (5..27).contains(&t) { 3 } else { 0 }),
    );
    let mut stuck = tcp(v4(127, 0, 0, 1), 9000, None, 11, 8);
    stuck.owners = known(vec![proc_info(7070, "stuckapp", 31, 1024)]);
    specs.push(
        Spec::idle(stuck)
            .depth(|t| t.min(9))
            .drops(|t| if t >= 9 { 1 } else { 0 }),
    );
    World::new(specs)
}

fn empty() -> World {
    World::new(vec![])
}

/// sockq run as uid 1000: the system's sockets' owners cannot be seen; the user's own dev
/// server (node on :3000) can.
fn unprivileged() -> World {
    let reason = |uid: u32| {
        format!(
            "owned by uid {uid}; sockq runs as uid {USER_UID} and cannot read other users' \
             /proc/PID/fd (run as root to see)"
        )
    };
    let mut specs = healthy_specs();
    specs.push(slowapp());
    for s in specs.iter_mut() {
        s.listener.owners = Owners::Unknown {
            reason: reason(s.listener.uid),
        };
    }
    let mut node = tcp(v4(127, 0, 0, 1), 3000, None, 6, 511);
    node.uid = USER_UID;
    node.owners = known(vec![proc_info(3100, "node", 21, 1_048_576)]);
    specs.push(Spec::idle(node));
    let mut w = World::new(specs);
    w.unix = Some(
        unix_listeners()
            .into_iter()
            .map(|mut u| {
                u.owners = Owners::Unknown {
                    reason: "no process whose /proc/PID/fd sockq could read holds it; 41 of 97 \
                             processes could not be read (run as root to see)"
                        .into(),
                };
                u
            })
            .collect(),
    );
    w
}

/// Five listeners that order differently under every sort key (see `sort_cycles_…`).
fn mixed() -> World {
    let mut slow = tcp(v4(127, 0, 0, 1), 8080, None, 5, 4);
    slow.owners = known(vec![proc_info(4242, "slowapp", 23, 1024)]);
    let mut ssh = tcp(v4(0, 0, 0, 0), 22, None, 1, 128);
    ssh.owners = known(vec![proc_info(812, "sshd", 7, 1024)]);
    let mut web = tcp(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 80, Some(false), 2, 128);
    web.owners = known(vec![proc_info(1201, "nginx", 14, 65_536)]);
    let mut pg = tcp(v4(127, 0, 0, 1), 5432, None, 3, 244);
    pg.owners = known(vec![proc_info(1044, "postgres", 12, 1024)]);
    let mut redis = tcp(IpAddr::V6(Ipv6Addr::LOCALHOST), 6379, Some(true), 4, 511);
    redis.owners = known(vec![proc_info(1310, "redis-server", 9, 10_032)]);
    let mut w = World::new(vec![
        // fill 125 %, 3 drops/s, no SYN-RECV
        Spec::idle(slow).depth(|_| 5).drops(|_| 3),
        // fill 0, no drops, 7 SYN-RECV
        Spec::idle(ssh).syn(|_| 7),
        // fill 50 %, 10 drops/s (bursts), 2 SYN-RECV
        Spec::idle(web).depth(|_| 64).drops(|_| 10).syn(|_| 2),
        // fill 25 %, no drops, no SYN-RECV
        Spec::idle(pg).depth(|_| 61),
        // fill 0, 1 drop/s, 3 SYN-RECV
        Spec::idle(redis).drops(|_| 1).syn(|_| 3),
    ]);
    w.unix = Some(unix_listeners());
    w
}

/// Long IPv6 addresses and a long process name: the address column takes its maximum width and
/// lower-priority columns drop first.
fn long_addresses() -> World {
    let addr = |s: &str| s.parse::<IpAddr>().unwrap();
    let mut api = tcp(
        addr("2001:db8:ffff:1234:5678:9abc:def0:1"),
        8443,
        Some(true),
        7,
        4096,
    );
    api.owners = known(vec![proc_info(5150, "java-api-server", 812, 4096)]);
    let mut metrics = tcp(addr("fd00:1234:5678:9abc::42"), 9100, Some(true), 8, 128);
    metrics.owners = known(vec![proc_info(5210, "node_exporter", 11, 1024)]);
    World::new(vec![
        Spec::idle(api).depth(|t| (t * 37) % 900).syn(|t| t % 4),
        Spec::idle(metrics),
    ])
}

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

fn new_app(color: bool) -> App {
    App::new(INTERVAL, color)
}

fn terminal(w: u16, h: u16) -> Terminal<TestBackend> {
    Terminal::new(TestBackend::new(w, h)).expect("test terminal")
}

/// Draws one whole frame and returns the terminal (for the buffer and its styles).
fn draw(w: u16, h: u16, app: &mut App, engine: &Engine) -> Terminal<TestBackend> {
    let mut t = terminal(w, h);
    t.draw(|f| render::draw(f, app, engine)).expect("draw");
    t
}

/// The frame as text: one line per row between `│` marks, so trailing spaces stay visible.
fn frame_text(t: &Terminal<TestBackend>) -> String {
    let buf = t.backend().buffer();
    let area = buf.area;
    let mut out = String::new();
    let rule: String = "─".repeat(usize::from(area.width));
    out.push_str(&format!("┌{rule}┐ {}x{}\n", area.width, area.height));
    for y in 0..area.height {
        out.push('│');
        for x in 0..area.width {
            // Every symbol this dashboard draws is one column wide.
            out.push_str(buf[(x, y)].symbol());
        }
        out.push_str("│\n");
    }
    out.push_str(&format!("└{rule}┘\n"));
    out
}

/// The text of every screen row whose first cell is drawn reversed (the selected table row).
fn reversed_rows(t: &Terminal<TestBackend>) -> Vec<String> {
    let buf = t.backend().buffer();
    (0..buf.area.height)
        .filter(|&y| buf[(0, y)].modifier.contains(Modifier::REVERSED))
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol())
                .collect::<String>()
        })
        .collect()
}

fn render(w: u16, h: u16, app: &mut App, engine: &Engine) -> String {
    frame_text(&draw(w, h, app, engine))
}

/// Snapshots one screen of one scenario at 80x24 and 200x50.
fn snap_both(name: &str, engine: &Engine, setup: impl Fn(&mut App)) {
    for (w, h) in [(80u16, 24u16), (200, 50)] {
        let mut app = new_app(true);
        setup(&mut app);
        let text = render(w, h, &mut app, engine);
        // The same input draws the same frame (no hidden time or state).
        let mut again = new_app(true);
        setup(&mut again);
        assert_eq!(
            text,
            render(w, h, &mut again, engine),
            "{name} is not stable"
        );
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), text);
    }
}

// ---------------------------------------------------------------------------------------------
// Snapshots of whole frames
// ---------------------------------------------------------------------------------------------

#[test]
fn snapshot_healthy() {
    let engine = healthy().engine(TICKS);
    let tick = engine.latest().unwrap();
    assert!(tick.findings.is_empty(), "{:#?}", tick.findings);
    snap_both("healthy", &engine, |_| {});
}

#[test]
fn snapshot_healthy_with_unix() {
    let engine = healthy().engine(TICKS);
    snap_both("healthy_unix", &engine, |app| app.show_unix = true);
}

#[test]
fn snapshot_overflowing() {
    let engine = overflowing().engine(TICKS);
    let tick = engine.latest().unwrap();
    assert_eq!(tick.counter_rates["ListenOverflows"], Some(3.0));
    let crit: Vec<&str> = tick
        .findings
        .iter()
        .filter(|f| f.severity == sockq::model::Severity::Critical)
        .map(|f| f.rule.as_str())
        .collect();
    assert_eq!(crit, ["accept_queue_full", "listen_overflows"]);
    snap_both("overflowing", &engine, |_| {});
    let text = render(80, 24, &mut new_app(true), &engine);
    assert!(text.contains("CRIT"), "{text}");
    assert!(text.contains("5/4"), "{text}");
    assert!(text.contains("3.0/s"), "{text}");
}

#[test]
fn snapshot_long_addresses() {
    let engine = long_addresses().engine(TICKS);
    snap_both("long_addresses", &engine, |_| {});
}

#[test]
fn snapshot_empty() {
    let engine = empty().engine(TICKS);
    snap_both("empty", &engine, |_| {});
    let text = render(80, 24, &mut new_app(true), &engine);
    assert!(text.contains("No listening sockets"), "{text}");
}

#[test]
fn snapshot_before_the_first_sample() {
    let engine = empty().engine(0);
    snap_both("no_sample_yet", &engine, |_| {});
}

#[test]
fn snapshot_unprivileged() {
    let engine = unprivileged().engine(TICKS);
    snap_both("unprivileged", &engine, |_| {});
}

#[test]
fn snapshot_unprivileged_detail() {
    let engine = unprivileged().engine(TICKS);
    let key = key_of(&engine, "127.0.0.1:8080");
    snap_both("unprivileged_detail", &engine, |app| {
        app.selected = Some(key);
        app.screen = Screen::Detail;
    });
    let mut app = new_app(true);
    app.selected = Some(key);
    app.screen = Screen::Detail;
    let text = render(200, 50, &mut app, &engine);
    assert!(text.contains("owned by uid 33"), "{text}");
}

/// The key of a listener shown (current or gone).
fn key_of_any(engine: &Engine, endpoint: &str) -> ListenerKey {
    new_app(true)
        .rows(engine)
        .iter()
        .find(|r| &*r.endpoint == endpoint)
        .unwrap_or_else(|| panic!("no {endpoint}"))
        .key
}

fn key_of(engine: &Engine, endpoint: &str) -> ListenerKey {
    engine
        .latest()
        .unwrap()
        .listeners
        .iter()
        .find(|l| &*l.endpoint == endpoint)
        .unwrap_or_else(|| panic!("no {endpoint}"))
        .key
}

#[test]
fn snapshot_pipeline() {
    let engine = overflowing().engine(TICKS);
    let key = key_of(&engine, "127.0.0.1:8080");
    snap_both("pipeline", &engine, |app| {
        app.selected = Some(key);
        app.screen = Screen::Pipeline;
    });
}

#[test]
fn snapshot_detail() {
    let engine = overflowing().engine(TICKS);
    let key = key_of(&engine, "127.0.0.1:8080");
    snap_both("detail", &engine, |app| {
        app.selected = Some(key);
        app.screen = Screen::Detail;
    });
    let mut app = new_app(true);
    app.selected = Some(key);
    app.screen = Screen::Detail;
    let text = render(80, 24, &mut app, &engine);
    assert!(text.contains("accept queue 5/4"), "{text}");
}

#[test]
fn snapshot_detail_of_a_prefork_server() {
    let engine = healthy().engine(TICKS);
    let key = key_of(&engine, "*:80");
    snap_both("detail_nginx", &engine, |app| {
        app.selected = Some(key);
        app.screen = Screen::Detail;
    });
}

/// With hundreds of owning processes sockq re-reads the roomy ones in turn: the detail view
/// says how old a process's numbers are, and says nothing for fresh ones.
#[test]
fn detail_says_how_old_an_owners_numbers_are() {
    let mut specs = healthy_specs();
    let Owners::Known { processes } = &mut specs[1].listener.owners else {
        panic!("nginx has known owners");
    };
    let processes = std::sync::Arc::make_mut(processes);
    processes[2].age_ms = 999;
    processes[3].age_ms = 7_400;
    let engine = World::new(specs).engine(TICKS);
    let mut app = new_app(true);
    app.selected = Some(key_of(&engine, "*:80"));
    app.screen = Screen::Detail;
    let text = render(200, 50, &mut app, &engine);
    assert!(
        text.contains("nginx[1204]  fds 51 of 65536  (read 7 s ago)"),
        "{text}"
    );
    // 999 ms is "this second": no age shown.
    assert!(text.contains("nginx[1203]  fds 49 of 65536 "), "{text}");
    assert_eq!(text.matches(" s ago)").count(), 1, "{text}");
}

/// What issue 12 asks of an 80x24 terminal (an SSH session), on every screen: the counter values
/// and at least two findings on screen.
fn assert_issue_12_minimum(name: &str, text: &str) {
    let findings = text
        .lines()
        .filter(|l| ["│CRIT", "│WARN", "│info"].iter().any(|p| l.starts_with(p)))
        .count();
    assert!(
        findings >= 2,
        "{name}: {findings} finding(s) on screen:\n{text}"
    );
    let counters = text.lines().any(|l| {
        l.starts_with("│kernel/s Overflows 3.0") || l.starts_with("│3.0/s ") && l.contains("0.0/s")
    });
    assert!(counters, "{name}: no counter values:\n{text}");
}

/// Snapshots one screen of one scenario at 80x24 and checks the issue's minimum on it.
fn snap_80x24(name: &str, engine: &Engine, setup: impl Fn(&mut App)) -> String {
    let mut app = new_app(true);
    setup(&mut app);
    let text = render(80, 24, &mut app, engine);
    insta::assert_snapshot!(format!("{name}_80x24"), text);
    text
}

/// Five findings and four moving counters at 80x24 (an SSH session): each screen keeps the
/// counter values and at least two findings.
#[test]
fn snapshot_ssh_session_80x24() {
    let engine = cookies().engine(TICKS);
    let key = key_of(&engine, "127.0.0.1:8080");
    let screens: [(&str, Screen, bool); 4] = [
        ("ssh_main", Screen::Main, false),
        ("ssh_detail", Screen::Detail, false),
        ("ssh_pipeline", Screen::Pipeline, false),
        ("ssh_help", Screen::Main, true),
    ];
    for (name, screen, help) in screens {
        let text = snap_80x24(name, &engine, |app| {
            app.selected = Some(key);
            app.screen = screen;
            app.help = help;
        });
        assert_issue_12_minimum(name, &text);
    }
    // The frames of the overflowing host too.
    let engine = overflowing().engine(TICKS);
    for (screen, help) in [
        (Screen::Main, false),
        (Screen::Detail, false),
        (Screen::Pipeline, false),
        (Screen::Main, true),
        (Screen::Detail, true),
    ] {
        let mut app = new_app(true);
        app.selected = Some(key);
        app.screen = screen;
        app.help = help;
        let text = render(80, 24, &mut app, &engine);
        assert_issue_12_minimum(&format!("{screen:?} help={help}"), &text);
    }
}

/// The help is whole at 80x24 by scrolling: ↓ and End reach its last key, Home its first; other
/// keys still close it.
#[test]
fn help_scrolls_to_every_key_at_80x24() {
    let engine = overflowing().engine(TICKS);
    let mut app = new_app(true);
    press(&mut app, &engine, ch('?'));
    let text = render(80, 24, &mut app, &engine);
    assert!(text.contains("sockq keys 1–"), "{text}");
    let mut seen = String::new();
    for _ in 0..render::HELP.len() {
        seen.push_str(&render(80, 24, &mut app, &engine));
        press(&mut app, &engine, key(KeyCode::Down));
    }
    for (k, what) in render::HELP {
        assert!(seen.contains(what), "{k}: {what} never shown");
    }
    press(&mut app, &engine, key(KeyCode::Home));
    assert_eq!(app.help_scroll, 0);
    press(&mut app, &engine, key(KeyCode::End));
    let text = render(80, 24, &mut app, &engine);
    let (last_key, last) = render::HELP[render::HELP.len() - 1];
    assert!(text.contains(last), "{last_key}:\n{text}");
    assert!(app.help);
    press(&mut app, &engine, ch('x'));
    assert!(!app.help);
}

#[test]
fn snapshot_gone_listener() {
    let engine = gone().engine(TICKS);
    let key = key_of_any(&engine, "0.0.0.0:9090");
    let text = snap_80x24("gone", &engine, |_| {});
    assert!(text.contains("gone 12 s ago"), "{text}");
    let text = snap_80x24("gone_detail", &engine, |app| {
        app.selected = Some(key);
        app.screen = Screen::Detail;
    });
    let top = text.lines().nth(4).unwrap();
    assert!(
        top.contains("GONE 12 s ago"),
        "said at the top: {top}\n{text}"
    );
}

#[test]
fn snapshot_held_findings() {
    let engine = held().engine(TICKS);
    let text = snap_80x24("held_findings", &engine, |_| {});
    assert!(text.contains("Findings (3, 1 cleared)"), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    let held = lines
        .iter()
        .position(|l| l.contains("CRIT (cleared 3 s ago)"))
        .unwrap_or_else(|| panic!("{text}"));
    let last_active = lines
        .iter()
        .rposition(|l| {
            (l.starts_with("│CRIT ") || l.starts_with("│WARN ")) && !l.contains("cleared")
        })
        .unwrap();
    assert!(held > last_active, "held after the active ones:\n{text}");
    // Dimmed: drawn in the dim colour, not the severity's red.
    let t = draw(80, 24, &mut new_app(true), &engine);
    let buf = t.backend().buffer();
    let y = u16::try_from(held - 1).unwrap();
    assert_eq!(buf[(0, y)].fg, Color::DarkGray, "{:?}", buf[(0, y)]);
}

/// `--port` as the dashboard runs it: the engine follows the selected listeners only (and
/// counts those it left out), the dashboard says the selection.
#[test]
fn snapshot_port_filter() {
    let select = |ports: Vec<u16>| Filter {
        ports,
        process: None,
    };
    let engine = overflowing().engine_with(TICKS, select(vec![80]));
    let text = snap_80x24("port_filter", &engine, |app| app.select = select(vec![80]));
    assert!(text.contains("Listeners (1 of 5) --port 80"), "{text}");
    let engine = overflowing().engine_with(TICKS, select(vec![81]));
    let text = snap_80x24("port_filter_no_match", &engine, |app| {
        app.select = select(vec![81])
    });
    assert!(
        text.contains("No listener matches --port 81: 5 other listeners are not shown."),
        "{text}"
    );
    // With UNIX listeners shown, those left out count too.
    let mut app = new_app(true);
    app.select = select(vec![81]);
    app.show_unix = true;
    let text = render(80, 24, &mut app, &engine);
    assert!(text.contains("6 other listeners are not shown"), "{text}");
}

#[test]
fn snapshot_proven_overflow() {
    let engine = proven_overflow().engine(TICKS);
    let key = key_of(&engine, "127.0.0.1:8081");
    let text = snap_80x24("proven_overflow", &engine, |_| {});
    assert!(text.contains("! 0/8"), "{text}");
    let text = snap_80x24("proven_overflow_detail", &engine, |app| {
        app.selected = Some(key);
        app.screen = Screen::Detail;
    });
    assert!(
        text.contains("overflowed between polls: 2 drops this tick (counter-proven)"),
        "{text}"
    );
    assert!(text.contains("peak 9 (full at 9)"), "{text}");
}

/// A workshop lab's status, as the lab command hands it to the dashboard.
fn lab_status(
    scenario: sockq::model::lab::Scenario,
    flooding: bool,
) -> sockq::model::lab::LabStatus {
    sockq::model::lab::LabStatus {
        scenario,
        step: 1,
        steps: 4,
        title: "Spoofed SYNs fill the SYN queue".into(),
        narration: vec!["The SYN queue of :8080 holds backlog+1 requests.".into()],
        try_next: "x stops the flood; c cycles tcp_syncookies".into(),
        knobs: scenario.defaults(),
        capacity_per_s: 80.0,
        clients: Default::default(),
        server_pid: 4242,
        last_round: vec![],
        problem: None,
        flooding,
        ss_command: "nsenter --net=/proc/999/ns/net ss -ltn".into(),
    }
}

/// The lab panel says whether the SYN flood runs (syn-flood only) and gives the `ss` command to
/// run beside the dashboard.
#[test]
fn lab_panel_shows_the_flood_and_the_ss_command() {
    use sockq::model::lab::Scenario;
    let engine = overflowing().engine(TICKS);
    for (w, h) in [(200u16, 50u16), (120, 40)] {
        let mut app = new_app(true);
        app.lab = Some(lab_status(Scenario::SynFlood, true));
        let text = render(w, h, &mut app, &engine);
        let flat: String = text.lines().map(|l| l.trim_matches('│').trim()).collect();
        assert!(
            flat.contains("nsenter --net=/proc/999/ns/net ss -ltn"),
            "{text}"
        );
        assert!(flat.contains("SYN flood ON, 2000 spoofed SYNs/s"), "{text}");
        app.lab = Some(lab_status(Scenario::SynFlood, false));
        let text = render(w, h, &mut app, &engine);
        assert!(text.contains("SYN flood off (x starts it)"), "{text}");
        app.lab = Some(lab_status(Scenario::SlowConsumer, false));
        let text = render(w, h, &mut app, &engine);
        assert!(!text.contains("SYN flood"), "{text}");
    }
    // The detail and pipeline screens keep the flood's state in their narration strip.
    let mut app = new_app(true);
    app.lab = Some(lab_status(Scenario::SynFlood, true));
    app.screen = Screen::Pipeline;
    let text = render(120, 40, &mut app, &engine);
    assert!(text.contains("SYN flood ON"), "{text}");
}

/// The knobs of the scenarios after accept() say what the service time is there (the
/// handler's blocking time, the response time) and the answer size of slow-readers.
#[test]
fn lab_panel_names_the_knobs_of_the_service_scenarios() {
    use sockq::model::lab::Scenario;
    let engine = overflowing().engine(TICKS);
    let mut app = new_app(true);
    let flat = |app: &mut App| -> String {
        render(200, 50, app, &engine)
            .lines()
            .map(|l| l.trim_matches('│').trim().to_string())
            .collect()
    };
    app.lab = Some(lab_status(Scenario::BlockedLoop, false));
    assert!(flat(&mut app).contains("handler blocks 5 ms"));
    app.lab = Some(lab_status(Scenario::SlowResponse, false));
    let text = flat(&mut app);
    assert!(
        text.contains("response 500 ms") && text.contains("fd limit 1024"),
        "{text}"
    );
    app.lab = Some(lab_status(Scenario::SlowReaders, false));
    assert!(flat(&mut app).contains("answer 4096 KiB"));
    app.lab = Some(lab_status(Scenario::SlowConsumer, false));
    let text = flat(&mut app);
    assert!(
        text.contains("service 50 ms") && !text.contains("answer"),
        "{text}"
    );
}

/// The header is not cut at 80 columns: with a long host name, PAUSED and the CPU budget it
/// drops its least important parts (kernel, interval) and keeps the namespace and PAUSED.
#[test]
fn header_drops_parts_instead_of_being_cut() {
    let engine = overflowing().engine(TICKS);
    let mut app = new_app(true);
    app.paused = true;
    app.source_status = Some("replay 00:29 of 05:00".into());
    let text = render(80, 24, &mut app, &engine);
    let first = text.lines().nth(1).unwrap();
    for part in ["sockq", "host demo-host", "netns current", "PAUSED"] {
        assert!(first.contains(part), "{part}: {first}");
    }
    assert!(!first.contains('…'), "{first}");
    let second = text.lines().nth(2).unwrap();
    for part in ["replay 00:29 of 05:00", "somaxconn 4096", "syncookies 1"] {
        assert!(second.contains(part), "{part}: {second}");
    }
    assert!(!second.contains('…'), "{second}");
    let mut world = overflowing();
    world.specs.truncate(1);
    let mut engine = world.engine(TICKS - 1);
    let mut sample = world.sample(TICKS - 1);
    sample.snapshot.host.hostname = "a-very-long-host-name.with.its.domain.example.org".into();
    sample.collector.throttled = true;
    sample.collector.syn_recv_age_ms = 3000;
    engine.ingest(sample);
    let mut app = new_app(true);
    app.paused = true;
    let text = render(80, 24, &mut app, &engine);
    let first = text.lines().nth(1).unwrap();
    assert!(
        first.contains("PAUSED") && first.contains("netns current"),
        "{first}"
    );
    assert!(!first.contains("kernel"), "the kernel goes first: {first}");
}

#[test]
fn snapshot_help() {
    let engine = overflowing().engine(TICKS);
    snap_both("help", &engine, |app| app.help = true);
}

#[test]
fn snapshot_filter_typing() {
    let engine = overflowing().engine(TICKS);
    snap_both("filter_typing", &engine, |app| {
        app.filter_input = Some("nginx".into())
    });
}

#[test]
fn snapshot_paused_sorted_by_drops() {
    let engine = overflowing().engine(TICKS);
    snap_both("paused_sort_drops", &engine, |app| {
        app.paused = true;
        app.sort = SortBy::Drops;
    });
}

#[test]
fn snapshot_no_color() {
    let engine = overflowing().engine(TICKS);
    for (w, h) in [(80u16, 24u16), (200, 50)] {
        let mut app = new_app(false);
        let t = draw(w, h, &mut app, &engine);
        let text = frame_text(&t);
        assert!(
            text.contains("CRIT"),
            "severity label without colour: {text}"
        );
        insta::assert_snapshot!(format!("no_color_{w}x{h}"), text);
        // No colour anywhere; severity stays visible by its label and bold.
        let buf = t.backend().buffer();
        for cell in buf.content() {
            assert_eq!(cell.fg, Color::Reset, "fg colour with NO_COLOR: {cell:?}");
            assert_eq!(cell.bg, Color::Reset, "bg colour with NO_COLOR: {cell:?}");
        }
        let crit_bold = (0..buf.area.height).any(|y| {
            (0..buf.area.width.saturating_sub(3)).any(|x| {
                let s: String = (0..4).map(|i| buf[(x + i, y)].symbol()).collect();
                s == "CRIT" && buf[(x, y)].modifier.contains(Modifier::BOLD)
            })
        });
        assert!(crit_bold, "CRIT is bold without colour");
    }
    // With colour, the same frame does use colour (so the check above means something).
    let t = draw(80, 24, &mut new_app(true), &engine);
    assert!(t
        .backend()
        .buffer()
        .content()
        .iter()
        .any(|c| c.fg == Color::Red));
}

#[test]
fn terminal_too_small_says_so() {
    let engine = overflowing().engine(TICKS);
    for (w, h) in [(30u16, 8u16), (1, 1), (39, 24), (80, 9)] {
        let mut app = new_app(true);
        let text = render(w, h, &mut app, &engine);
        if (w, h) == (30, 8) || (w, h) == (1, 1) {
            insta::assert_snapshot!(format!("too_small_{w}x{h}"), text);
        }
        if w >= 20 {
            assert!(text.contains("too small"), "{text}");
        }
    }
}

/// Draws every screen (with and without the help overlay, and the filter prompt) of `engine` at
/// many sizes, keeping one `App` across the sizes as a terminal being resized does; fails on any
/// panic.
fn draw_at_every_size(name: &str, engine: &Engine) {
    // The brief's sizes plus the layout thresholds of render/ (40x10 minimum, 90 and 110 columns,
    // 40 rows).
    let widths = [
        1u16, 2, 5, 10, 20, 39, 40, 41, 60, 80, 89, 90, 109, 110, 120,
    ];
    let heights = [1u16, 2, 5, 9, 10, 11, 24, 39, 40];
    let key = engine
        .latest()
        .and_then(|t| t.listeners.last())
        .map(|l| l.key);
    let variants = [
        (Screen::Main, false, false),
        (Screen::Main, true, false),
        (Screen::Main, false, true),
        (Screen::Detail, false, false),
        (Screen::Detail, true, false),
        (Screen::Pipeline, false, false),
        (Screen::Pipeline, true, false),
    ];
    let labs = [
        None,
        Some(lab_status(sockq::model::lab::Scenario::SynFlood, true)),
    ];
    for ((screen, help, filtering), lab) in variants
        .into_iter()
        .flat_map(|v| labs.iter().map(move |l| (v, l)))
    {
        let mut app = new_app(true);
        app.screen = screen;
        app.help = help;
        app.selected = key;
        app.show_unix = true;
        app.lab = lab.clone();
        // Scrolled as far as the help goes: the renderer brings it back in range.
        app.help_scroll = usize::MAX;
        if filtering {
            app.filter_input = Some("x".repeat(64));
        }
        for &w in &widths {
            for &h in &heights {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    draw(w, h, &mut app, engine);
                }));
                let lab = lab.is_some();
                assert!(
                    r.is_ok(),
                    "{name}: {screen:?} help={help} filtering={filtering} lab={lab} panicked at {w}x{h}"
                );
            }
        }
    }
}

#[test]
fn resize_overflowing_never_panics() {
    draw_at_every_size("overflowing", &overflowing().engine(TICKS));
}

#[test]
fn resize_unprivileged_never_panics() {
    draw_at_every_size("unprivileged", &unprivileged().engine(TICKS));
}

#[test]
fn resize_empty_never_panics() {
    draw_at_every_size("empty", &empty().engine(TICKS));
    draw_at_every_size("no sample yet", &empty().engine(0));
    draw_at_every_size("one tick", &overflowing().engine(1));
}

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn ch(c: char) -> KeyEvent {
    key(KeyCode::Char(c))
}

fn endpoints(rows: &[Row]) -> Vec<&str> {
    rows.iter().map(|r| &*r.endpoint).collect()
}

/// Presses `k` as the event loop does: with the rows currently shown.
fn press(app: &mut App, engine: &Engine, k: KeyEvent) -> Action {
    let rows = app.rows(engine);
    app.on_key(k, &rows)
}

#[test]
fn sort_cycles_and_rows_reorder() {
    let engine = mixed().engine(TICKS);
    let mut app = new_app(true);
    let expected: [(SortBy, &str, [&str; 5]); 6] = [
        (
            SortBy::Fill,
            "fill (peak)",
            [
                "127.0.0.1:8080",
                "*:80",
                // Its drop counter moved while ListenOverflows did: an overflow proven between
                // polls, so its peak is backlog+1.
                "[::1]:6379",
                "127.0.0.1:5432",
                "0.0.0.0:22",
            ],
        ),
        (
            SortBy::Drops,
            "drops",
            [
                "*:80",
                "127.0.0.1:8080",
                "[::1]:6379",
                "0.0.0.0:22",
                "127.0.0.1:5432",
            ],
        ),
        (
            SortBy::SynRecv,
            "SYN-RECV",
            [
                "0.0.0.0:22",
                "[::1]:6379",
                "*:80",
                "127.0.0.1:5432",
                "127.0.0.1:8080",
            ],
        ),
        (
            SortBy::Port,
            "port",
            [
                "0.0.0.0:22",
                "*:80",
                "127.0.0.1:5432",
                "[::1]:6379",
                "127.0.0.1:8080",
            ],
        ),
        (
            SortBy::Process,
            "process",
            [
                "*:80",
                "127.0.0.1:5432",
                "[::1]:6379",
                "127.0.0.1:8080",
                "0.0.0.0:22",
            ],
        ),
        (
            SortBy::Fill,
            "fill (peak)",
            [
                "127.0.0.1:8080",
                "*:80",
                // Its drop counter moved while ListenOverflows did: an overflow proven between
                // polls, so its peak is backlog+1.
                "[::1]:6379",
                "127.0.0.1:5432",
                "0.0.0.0:22",
            ],
        ),
    ];
    for (i, (sort, label, order)) in expected.iter().enumerate() {
        if i > 0 {
            assert_eq!(press(&mut app, &engine, ch('s')), Action::None);
        }
        assert_eq!(app.sort, *sort);
        assert_eq!(app.sort.label(), *label);
        assert_eq!(endpoints(&app.rows(&engine)), order, "sort by {label}");
        let text = render(80, 24, &mut app, &engine);
        assert!(text.contains(&format!("sort: {label}")), "{text}");
    }
}

#[test]
fn filter_typing_enter_applies_and_esc_clears() {
    let engine = mixed().engine(TICKS);
    let mut app = new_app(true);
    assert_eq!(app.rows(&engine).len(), 5);
    press(&mut app, &engine, ch('/'));
    assert_eq!(app.filter_input.as_deref(), Some(""));
    for c in "postx".chars() {
        press(&mut app, &engine, ch(c));
    }
    press(&mut app, &engine, key(KeyCode::Backspace));
    // Typing does not filter yet; keys while typing are text, not commands.
    assert_eq!(app.filter_input.as_deref(), Some("post"));
    assert_eq!(app.rows(&engine).len(), 5);
    assert_eq!(app.sort, SortBy::Fill);
    let text = render(80, 24, &mut app, &engine);
    assert!(text.contains("filter: post█"), "{text}");
    press(&mut app, &engine, key(KeyCode::Enter));
    assert_eq!(app.filter_input, None);
    assert_eq!(app.filter, "post");
    assert_eq!(endpoints(&app.rows(&engine)), ["127.0.0.1:5432"]);
    assert_eq!(app.screen, Screen::Main);
    let text = render(80, 24, &mut app, &engine);
    assert!(text.contains("filter: post"), "{text}");
    // Esc on the main screen clears the filter.
    press(&mut app, &engine, key(KeyCode::Esc));
    assert_eq!(app.filter, "");
    assert_eq!(app.rows(&engine).len(), 5);

    // By address, by pid; a filter matching nothing says so.
    app.filter = ":80".into();
    assert_eq!(
        endpoints(&app.rows(&engine)),
        ["127.0.0.1:8080", "*:80"],
        "address substring"
    );
    app.filter = "4242".into();
    assert_eq!(endpoints(&app.rows(&engine)), ["127.0.0.1:8080"]);
    app.filter = "nothing-matches".into();
    assert!(app.rows(&engine).is_empty());
    let text = render(80, 24, &mut app, &engine);
    assert!(text.contains("No listener matches the filter"), "{text}");

    // Esc while typing cancels the edit and keeps the applied filter.
    app.filter = "ssh".into();
    press(&mut app, &engine, ch('/'));
    press(&mut app, &engine, ch('x'));
    assert_eq!(app.filter_input.as_deref(), Some("sshx"));
    press(&mut app, &engine, key(KeyCode::Esc));
    assert_eq!(app.filter_input, None);
    assert_eq!(app.filter, "ssh");
    assert_eq!(endpoints(&app.rows(&engine)), ["0.0.0.0:22"]);
}

#[test]
fn selection_moves_with_j_k_and_arrows() {
    let engine = mixed().engine(TICKS);
    let mut app = new_app(true);
    let rows = app.rows(&engine);
    let at = |app: &App| app.selected_index(&app.rows(&engine));
    // Nothing selected: the first row is shown selected.
    assert_eq!(app.selected, None);
    assert_eq!(app.selected_row(&rows).map(|r| r.key), Some(rows[0].key));
    press(&mut app, &engine, ch('j'));
    assert_eq!(at(&app), Some(1));
    // On screen, the selected row (and only it) is drawn reversed.
    let t = draw(80, 24, &mut app, &engine);
    let reversed: Vec<String> = reversed_rows(&t);
    assert_eq!(reversed.len(), 1, "{reversed:?}");
    assert!(reversed[0].starts_with("*:80 "), "{reversed:?}");
    press(&mut app, &engine, key(KeyCode::Down));
    assert_eq!(at(&app), Some(2));
    press(&mut app, &engine, ch('k'));
    assert_eq!(at(&app), Some(1));
    press(&mut app, &engine, key(KeyCode::Up));
    assert_eq!(at(&app), Some(0));
    press(&mut app, &engine, key(KeyCode::Up));
    assert_eq!(at(&app), Some(0), "stays at the top");
    for _ in 0..10 {
        press(&mut app, &engine, ch('j'));
    }
    assert_eq!(at(&app), Some(4), "stays at the bottom");
    press(&mut app, &engine, ch('g'));
    assert_eq!(at(&app), Some(0));
    press(&mut app, &engine, ch('G'));
    assert_eq!(at(&app), Some(4));
    // The selection follows the listener, not the position, when the order changes.
    let selected = app.selected;
    press(&mut app, &engine, ch('s'));
    assert_eq!(app.selected, selected);
    let rows = app.rows(&engine);
    let now_at = at(&app).expect("still selected");
    assert_eq!(
        &*rows[now_at].endpoint, "0.0.0.0:22",
        "the same listener, wherever it sorts"
    );
    // Key releases are ignored.
    let mut release = ch('k');
    release.kind = KeyEventKind::Release;
    press(&mut app, &engine, release);
    assert_eq!(at(&app), Some(now_at));
}

#[test]
fn enter_opens_detail_esc_returns_p_toggles_pipeline() {
    let engine = mixed().engine(TICKS);
    let mut app = new_app(true);
    press(&mut app, &engine, ch('j'));
    let second = app.rows(&engine)[1].key;
    press(&mut app, &engine, key(KeyCode::Enter));
    assert_eq!(app.screen, Screen::Detail);
    assert_eq!(app.selected, Some(second));
    let text = render(80, 24, &mut app, &engine);
    assert!(text.contains("*:80 accept queue 64/128"), "{text}");
    press(&mut app, &engine, key(KeyCode::Esc));
    assert_eq!(app.screen, Screen::Main);
    press(&mut app, &engine, ch('p'));
    assert_eq!(app.screen, Screen::Pipeline);
    let text = render(80, 24, &mut app, &engine);
    assert!(text.contains("Accept queue"), "{text}");
    press(&mut app, &engine, ch('p'));
    assert_eq!(app.screen, Screen::Main);
    // p from the detail view goes to the pipeline; Esc from the pipeline goes back to Main.
    press(&mut app, &engine, key(KeyCode::Enter));
    press(&mut app, &engine, ch('p'));
    assert_eq!(app.screen, Screen::Pipeline);
    press(&mut app, &engine, key(KeyCode::Esc));
    assert_eq!(app.screen, Screen::Main);
    // Enter with nothing selected selects the first row.
    let mut app = new_app(true);
    press(&mut app, &engine, key(KeyCode::Enter));
    assert_eq!(app.screen, Screen::Detail);
    assert_eq!(app.selected, Some(app.rows(&engine)[0].key));
    // Enter with no listener at all stays on the main screen.
    let none = empty().engine(3);
    let mut app = new_app(true);
    press(&mut app, &none, key(KeyCode::Enter));
    assert_eq!(app.screen, Screen::Main);
}

#[test]
fn space_pauses_and_u_shows_unix_rows() {
    let engine = mixed().engine(TICKS);
    let mut app = new_app(true);
    press(&mut app, &engine, ch(' '));
    assert!(app.paused);
    let text = render(120, 30, &mut app, &engine);
    assert!(text.contains("PAUSED"), "{text}");
    press(&mut app, &engine, ch(' '));
    assert!(!app.paused);

    assert!(app.rows(&engine).iter().all(|r| !r.unix));
    press(&mut app, &engine, ch('u'));
    assert!(app.show_unix);
    let rows = app.rows(&engine);
    assert_eq!(rows.len(), 6);
    let unix: Vec<&Row> = rows.iter().filter(|r| r.unix).collect();
    assert_eq!(unix.len(), 1);
    assert_eq!(&*unix[0].endpoint, "/run/php/php8.2-fpm.sock");
    assert_eq!((unix[0].depth, unix[0].backlog), (0, 511));
    let text = render(120, 30, &mut app, &engine);
    assert!(text.contains("incl. UNIX"), "{text}");
    press(&mut app, &engine, ch('u'));
    assert_eq!(app.rows(&engine).len(), 5);
}

#[test]
fn plus_and_minus_step_the_interval() {
    let engine = mixed().engine(3);
    let mut app = new_app(true);
    let ms = |a: Action| match a {
        Action::SetInterval(d) => d.as_millis(),
        other => panic!("expected SetInterval, got {other:?}"),
    };
    assert_eq!(ms(press(&mut app, &engine, ch('+'))), 2000);
    assert_eq!(app.interval, Duration::from_secs(2));
    assert_eq!(ms(press(&mut app, &engine, ch('+'))), 5000);
    assert_eq!(ms(press(&mut app, &engine, ch('='))), 10_000);
    assert_eq!(ms(press(&mut app, &engine, ch('-'))), 5000);
    assert_eq!(ms(press(&mut app, &engine, ch('-'))), 2000);
    assert_eq!(ms(press(&mut app, &engine, ch('-'))), 1000);
    assert_eq!(ms(press(&mut app, &engine, ch('-'))), 500);
    assert_eq!(ms(press(&mut app, &engine, ch('-'))), 250);
    assert_eq!(ms(press(&mut app, &engine, ch('-'))), 250, "lowest step");
    for _ in 0..10 {
        press(&mut app, &engine, ch('+'));
    }
    assert_eq!(app.interval, Duration::from_secs(60), "highest step");
    assert_eq!(ms(press(&mut app, &engine, ch('+'))), 60_000);
    // An interval between steps goes to the neighbouring steps.
    let mut app = App::new(Duration::from_millis(1500), true);
    assert_eq!(ms(press(&mut app, &engine, ch('+'))), 2000);
    let mut app = App::new(Duration::from_millis(1500), true);
    assert_eq!(ms(press(&mut app, &engine, ch('-'))), 1000);
    // The header shows the new interval.
    let mut app = new_app(true);
    press(&mut app, &engine, ch('+'));
    let text = render(80, 24, &mut app, &engine);
    assert!(text.contains("every 2s"), "{text}");
}

#[test]
fn q_and_ctrl_c_quit() {
    let engine = mixed().engine(3);
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    let mut app = new_app(true);
    assert_eq!(press(&mut app, &engine, ch('q')), Action::Quit);
    let mut app = new_app(true);
    assert_eq!(press(&mut app, &engine, ctrl_c), Action::Quit);
    // Ctrl-C quits from anywhere, even while typing a filter or with the help open.
    let mut app = new_app(true);
    press(&mut app, &engine, ch('/'));
    assert_eq!(press(&mut app, &engine, ch('q')), Action::None, "q is text");
    assert_eq!(press(&mut app, &engine, ctrl_c), Action::Quit);
    let mut app = new_app(true);
    app.help = true;
    assert_eq!(press(&mut app, &engine, ctrl_c), Action::Quit);
    // Plain c does nothing.
    let mut app = new_app(true);
    assert_eq!(press(&mut app, &engine, ch('c')), Action::None);
}

#[test]
fn question_mark_opens_help_and_any_key_closes_it() {
    let engine = mixed().engine(3);
    let mut app = new_app(true);
    assert_eq!(press(&mut app, &engine, ch('?')), Action::None);
    assert!(app.help);
    let text = render(80, 24, &mut app, &engine);
    assert!(text.contains("sockq keys"), "{text}");
    // Any key closes the help and does nothing else.
    for k in [
        ch('s'),
        ch('p'),
        key(KeyCode::Enter),
        key(KeyCode::Esc),
        ch('j'),
        ch('+'),
        ch('?'),
    ] {
        let mut app = new_app(true);
        press(&mut app, &engine, ch('?'));
        assert_eq!(press(&mut app, &engine, k), Action::None, "{k:?}");
        assert!(!app.help, "{k:?} closes the help");
        assert_eq!(app.sort, SortBy::Fill, "{k:?}");
        assert_eq!(app.screen, Screen::Main, "{k:?}");
        assert_eq!(app.selected, None, "{k:?}");
        assert_eq!(app.interval, INTERVAL, "{k:?}");
    }
    // q with the help open still quits; F1 opens it too.
    let mut app = new_app(true);
    press(&mut app, &engine, key(KeyCode::F(1)));
    assert!(app.help);
    assert_eq!(press(&mut app, &engine, ch('q')), Action::Quit);
}

#[test]
fn snapshot_pipeline_at_the_e2e_size() {
    let engine = overflowing().engine(TICKS);
    let key = key_of(&engine, "127.0.0.1:8080");
    let mut app = new_app(true);
    app.selected = Some(key);
    app.screen = Screen::Pipeline;
    let text = render(100, 30, &mut app, &engine);
    insta::assert_snapshot!("pipeline_100x30", text);
}

// ---------------------------------------------------------------------------------------------
// Known bugs (reported; un-ignore when fixed)
// ---------------------------------------------------------------------------------------------

#[test]
fn pipeline_names_its_stages_at_every_width() {
    let engine = overflowing().engine(TICKS);
    let key = key_of(&engine, "127.0.0.1:8080");
    for w in [80u16, 90, 100, 120, 150, 200] {
        let mut app = new_app(true);
        app.selected = Some(key);
        app.screen = Screen::Pipeline;
        let text = render(w, 30, &mut app, &engine);
        // The box titles sit on the lines of the boxes' top borders.
        let tops: String = text.lines().filter(|l| l.contains('┌')).collect();
        for title in ["SYN queue", "Accept queue", "In service", "Closing"] {
            assert!(tops.contains(title), "{title} at {w}x30:\n{text}");
        }
    }
}

#[test]
fn blind_spots_are_on_screen() {
    let mut world = healthy();
    world.blind_spots =
        vec!["SYN-RECV requests unknown: Operation not permitted (os error 1)".into()];
    let engine = world.engine(TICKS);
    let text = render(200, 50, &mut new_app(true), &engine);
    assert!(text.contains("SYN-RECV requests unknown"), "{text}");
    let text = render(80, 24, &mut new_app(true), &engine);
    assert!(
        text.contains("SYN-RECV requests unknown")
            || text.contains("NOT SEEN")
            || text.contains("blind spot"),
        "{text}"
    );
}

/// True for what must never reach a terminal raw: control characters (ESC, BEL, C1) and the
/// bidirectional overrides that make a line read differently from what it is.
fn unsafe_for_a_terminal(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Text from the system never reaches the terminal raw: ratatui drops ESC silently (the name
/// would change without a trace) and passes a bidi override through. A process named with an
/// escape sequence and an override, and a blind spot with a bell, show as visible escapes on
/// every screen.
#[test]
fn control_characters_from_the_system_are_shown_escaped() {
    let mut spec = slowapp();
    spec.listener.owners = known(vec![proc_info(4242, "\x1b[2Jevil\u{202e}", 23, 1024)]);
    let mut world = World::new(vec![spec]);
    world.blind_spots = vec!["odd\x07text".into()];
    let engine = world.engine(TICKS);
    let key = key_of(&engine, "127.0.0.1:8080");
    for screen in [Screen::Main, Screen::Detail, Screen::Pipeline] {
        for (w, h) in [(80u16, 24u16), (200, 50)] {
            let mut app = new_app(true);
            app.selected = Some(key);
            app.screen = screen;
            let t = draw(w, h, &mut app, &engine);
            let text = frame_text(&t);
            for cell in t.backend().buffer().content() {
                assert!(
                    !cell.symbol().chars().any(unsafe_for_a_terminal),
                    "{screen:?} {w}x{h}: raw {:?} in\n{text}",
                    cell.symbol()
                );
            }
            if screen != Screen::Pipeline {
                assert!(text.contains("\\x1b[2J"), "{screen:?} {w}x{h}:\n{text}");
            }
        }
    }
    let text = render(200, 50, &mut new_app(true), &engine);
    assert!(text.contains("odd\\x07text"), "{text}");
    assert!(text.contains("\\u{202e}"), "{text}");
}

/// Every counter rate a finding cites is on screen, with its name (kernel or short): the strip
/// gives those counters room first.
#[test]
fn counters_the_findings_cite_are_on_screen() {
    use sockq::model::meta::QUEUE_COUNTER_INFO;
    for (name, world) in [("overflowing", overflowing()), ("cookies", cookies())] {
        let engine = world.engine(TICKS);
        let tick = engine.latest().unwrap();
        for (w, h) in [(80u16, 24u16), (100, 30), (200, 50)] {
            let text = render(w, h, &mut new_app(true), &engine);
            let strip: Vec<&str> = text.lines().skip(4).take(2).collect();
            for f in tick.findings.iter().filter(|f| f.is_active()) {
                for (key, value) in &f.evidence {
                    let Some(counter) = key.strip_suffix("_per_s") else {
                        continue;
                    };
                    if *value <= 0.0 {
                        continue;
                    }
                    // Per-listener evidence (drops_per_s) is in the table, not the strip.
                    let Some(info) = QUEUE_COUNTER_INFO.iter().find(|c| c.name == counter) else {
                        continue;
                    };
                    let col = strip[0]
                        .find(info.name)
                        .or_else(|| strip[0].find(info.short))
                        .unwrap_or_else(|| {
                            panic!("{name} {w}x{h}: {counter} ({}) not shown:\n{text}", f.rule)
                        });
                    let col = strip[0][..col].chars().count();
                    let value_text: String = strip[1].chars().skip(col).take(12).collect();
                    assert!(
                        value_text.starts_with(&format!("{value:.1}/s")),
                        "{name} {w}x{h}: {counter} {value} under its name: {value_text:?}\n{text}"
                    );
                }
            }
        }
    }
}

/// FILL is the depth now (docs/metrics.md); the peak is the gauge's mark. A listener whose
/// overflow the counters proved between polls shows `!` and a peak of backlog+1 at depth 0.
#[test]
fn fill_is_the_depth_and_a_proven_overflow_marks_the_gauge() {
    let engine = proven_overflow().engine(TICKS);
    let lt = engine
        .latest()
        .unwrap()
        .listeners
        .iter()
        .find(|l| &*l.endpoint == "127.0.0.1:8081")
        .unwrap();
    assert!(lt.overflow_proven, "{lt:?}");
    let rows = new_app(true).rows(&engine);
    let row = rows
        .iter()
        .find(|r| &*r.endpoint == "127.0.0.1:8081")
        .unwrap();
    assert_eq!((row.depth, row.peak, row.backlog), (0, 9, 8));
    assert_eq!(row.fill(), 0.0);
    assert!(row.peak_fill() > 1.0);
    assert_eq!(
        &*rows[0].endpoint, "127.0.0.1:8081",
        "sorted by the peak's fill"
    );
    // FILL (the depth now) beside the gauge (the peak) where it fits; at 80 columns the
    // service columns come first.
    let text = render(200, 50, &mut new_app(true), &engine);
    let line = text.lines().find(|l| l.contains("127.0.0.1:8081")).unwrap();
    assert!(line.contains("! 0/8 0%"), "{line}");
    let text = render(80, 24, &mut new_app(true), &engine);
    let line = text.lines().find(|l| l.contains("127.0.0.1:8081")).unwrap();
    assert!(line.contains("! 0/8"), "{line}");
}

/// At 80 columns the FDS column does not fit: an owner near its fd limit shows its numbers in the
/// process cell instead (the near-fd-limit finding cites them).
#[test]
fn fds_near_the_limit_show_without_the_fds_column() {
    let mut specs = healthy_specs();
    specs[0].listener.owners = known(vec![proc_info(812, "sshd", 1019, 1024)]);
    let engine = World::new(specs).engine(TICKS);
    let text = render(80, 24, &mut new_app(true), &engine);
    assert!(!text.contains("FDS"), "no FDS column at 80:\n{text}");
    let line = text.lines().find(|l| l.contains("0.0.0.0:22")).unwrap();
    assert!(line.contains("s… fd 1019/1024"), "{line}");
    let text = render(200, 50, &mut new_app(true), &engine);
    let line = text.lines().find(|l| l.contains("0.0.0.0:22")).unwrap();
    assert!(
        line.contains("sshd[812]") && line.contains("1019/1024"),
        "{line}"
    );
}

/// A listener that went away says so in words, not only by dimmed numbers.
#[test]
fn a_gone_listener_says_how_long_ago_it_went() {
    let engine = gone().engine(TICKS);
    let rows = new_app(true).rows(&engine);
    let row = rows
        .iter()
        .find(|r| &*r.endpoint == "0.0.0.0:9090")
        .unwrap();
    assert!(row.gone);
    assert_eq!(row.gone_s, Some(12));
    assert_eq!(
        rows.last().unwrap().key,
        row.key,
        "gone rows sink to the bottom"
    );
    let text = render(80, 24, &mut new_app(true), &engine);
    let line = text.lines().find(|l| l.contains("0.0.0.0:9090")).unwrap();
    assert!(line.contains("gone 12 s ago"), "{line}");
}

/// `--port`/`--process` are said in the table's title, and an empty table says which selection
/// matched nothing.
#[test]
fn the_port_and_process_selection_is_on_screen() {
    let engine = overflowing().engine(TICKS);
    let mut app = new_app(true);
    app.select = Filter {
        ports: vec![80],
        process: None,
    };
    let text = render(80, 24, &mut app, &engine);
    assert!(text.contains("Listeners (1 of 5) --port 80"), "{text}");
    app.select.ports = vec![81];
    app.select.process = Some("nginx".into());
    let text = render(80, 24, &mut app, &engine);
    assert!(
        text.contains("No listener matches --port 81 --process nginx: 5 other listeners"),
        "{text}"
    );
    assert!(!text.contains("No listening sockets"), "{text}");
}

#[test]
fn before_the_first_sample_nothing_is_claimed() {
    let engine = empty().engine(0);
    let text = render(80, 24, &mut new_app(true), &engine);
    assert!(text.contains("waiting for the first sample"), "{text}");
    for claim in ["No listening sockets", "all quiet", "nothing is dropped"] {
        assert!(
            !text.contains(claim),
            "claims `{claim}` with no data:\n{text}"
        );
    }
}
