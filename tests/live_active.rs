//! Live tests of the fast poll of active listeners (src/collect/active.rs): exact sock_diag
//! requests by socket id and cookie on this kernel, the SO_REUSEPORT fallback by port, and the
//! sampler publishing the active-set size. Compared with `ss -ltn` at the same moment (no
//! process accepts, so the depths stand still).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and tools may panic on failure

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use socket2::{Domain, Socket, Type};
use sockq::collect::active::ActiveSet;
use sockq::collect::netns::NetnsTarget;
use sockq::collect::sampler::{Sampler, SamplerConfig, POLL_ALL_UP_TO};
use sockq::collect::CollectorOptions;
use sockq::model::{ListenerKey, SampleEvent};

/// Depth of every listener `ss -ltn` shows, by "address:port" as ss prints it.
fn ss_depths() -> anyhow::Result<BTreeMap<String, u32>> {
    let out = run_ok("ss", &["-Hltn"])?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((f.get(3)?.to_string(), f.get(1)?.parse().ok()?))
        })
        .collect())
}

/// A listener in an SO_REUSEPORT group on `addr`.
fn reuseport_listener(addr: SocketAddr) -> anyhow::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    s.set_reuse_port(true)?;
    s.bind(&addr.into())?;
    s.listen(16)?;
    Ok(s)
}

#[test]
fn exact_requests_read_each_active_listener_like_ss() {
    in_netns("active_exact", || {
        // Depths 2, 1, 0, 3 on: an IPv4 address, IPv6 loopback, the IPv4 wildcard, a listener
        // bound to the loopback device; and a reuseport group of two (only one is reachable by
        // an exact request: the other is read by a dump of its port).
        let (_a, a) = listen("127.0.0.1:0", 8)?;
        let (_b, b) = listen("[::1]:0", 8)?;
        let (_c, c) = listen("0.0.0.0:0", 8)?;
        let d_sock = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        d_sock.bind_device(Some(b"lo"))?;
        d_sock.bind(&"127.0.0.2:0".parse::<SocketAddr>()?.into())?;
        d_sock.listen(8)?;
        let d = d_sock.local_addr()?.as_socket().unwrap();
        let r1 = reuseport_listener("127.0.0.3:0".parse()?)?;
        let r = r1.local_addr()?.as_socket().unwrap();
        let _r2 = reuseport_listener(r)?;
        let _ca = connect_n(a, 2)?;
        let _cb = connect_n(b, 1)?;
        let _cd = connect_n(d, 3)?;
        let _cr = connect_n(r, 4)?; // spread over the group by the kernel's hash
        wait_for_accept_queue(d.port(), 3, Duration::from_secs(10))?;

        let mut collector = collector()?;
        let snap = collector.sample()?;
        assert_eq!(snap.tcp_listeners.len(), 6, "{:#?}", snap.tcp_listeners);
        let all = || snap.tcp_listeners.iter().map(ListenerKey::from);
        // Without its interface the device-bound listener is not found by the kernel's lookup
        // (nor is the reuseport member its hash does not pick): both answer ENOENT and are
        // read by a dump of their port.
        let mut blind = ActiveSet::default();
        blind.select(all());
        blind.update(&snap.tcp_listeners, &Default::default(), Instant::now());
        let mut depths = Vec::new();
        blind.poll(&mut collector, &mut depths)?;
        assert_eq!(blind.by_port(), 2);
        assert_eq!(depths.len(), 6, "{depths:?}");
        // With the collector's interfaces only the other reuseport member needs its port.
        let mut active = ActiveSet::default();
        active.select(all());
        let bound = collector.bound_interfaces().clone();
        assert_eq!(bound.values().collect::<Vec<_>>(), [&1], "lo is ifindex 1");
        active.update(&snap.tcp_listeners, &bound, Instant::now());
        assert_eq!(active.len(), 6);
        active.poll(&mut collector, &mut depths)?;
        assert_eq!(active.by_port(), 1, "exact requests reach all but one");
        let ss = ss_depths()?;
        let by_key: BTreeMap<ListenerKey, u32> = depths.iter().copied().collect();
        assert_eq!(by_key.len(), 6, "every listener polled once: {depths:?}");
        for l in &snap.tcp_listeners {
            let key = ListenerKey::from(l);
            assert_eq!(by_key.get(&key), Some(&l.accept_queue), "port {}", l.port);
            if l.port != r.port() {
                // One listener per port outside the group: ss's line for it by port.
                let port = format!(":{}", l.port);
                let seen: Vec<u32> = ss
                    .iter()
                    .filter(|(ep, _)| ep.ends_with(&port))
                    .map(|(_, d)| *d)
                    .collect();
                assert_eq!(seen, [l.accept_queue], "port {} vs ss {ss:?}", l.port);
            }
        }
        let depth = |addr: SocketAddr| {
            let l = snap.tcp_listeners.iter().find(|l| l.port == addr.port());
            l.map(|l| l.accept_queue)
        };
        assert_eq!(
            (depth(a), depth(b), depth(c), depth(d)),
            (Some(2), Some(1), Some(0), Some(3))
        );
        let group: u32 = snap
            .tcp_listeners
            .iter()
            .filter(|l| l.port == r.port())
            .map(|l| l.accept_queue)
            .sum();
        assert_eq!(group, 4, "the group's queues hold the 4 clients");

        // A listener closed since the tick answers ENOENT: left out, not an error.
        drop(_a);
        active.poll(&mut collector, &mut depths)?;
        assert_eq!(depths.len(), 5, "{depths:?}");
        assert!(depths.iter().all(|(k, _)| k.cookie
            != snap
                .tcp_listeners
                .iter()
                .find(|l| l.port == a.port())
                .unwrap()
                .cookie));
        Ok(())
    });
}

/// More quiet listeners than `POLL_ALL_UP_TO` and one with 3 clients in its accept queue,
/// sampled with a budget so small that they are not dumped at the fast rate
/// (`poll_everything`): only active (or selected) listeners are polled, and the fast poll slows
/// to one per tick (enough here).
struct ActiveOnly {
    quiet: Vec<(Socket, SocketAddr)>,
    busy: SocketAddr,
    _busy: Socket,
    _clients: Vec<std::net::TcpStream>,
    sampler: Sampler,
}

impl ActiveOnly {
    fn start() -> anyhow::Result<Self> {
        let quiet: Vec<_> = (0..POLL_ALL_UP_TO)
            .map(|_| listen("127.0.0.1:0", 8))
            .collect::<anyhow::Result<_>>()?;
        let (busy_socket, busy) = listen("127.0.0.1:0", 8)?;
        let clients = connect_n(busy, 3)?;
        wait_for_accept_queue(busy.port(), 3, Duration::from_secs(10))?;
        let sampler = Sampler::start(
            NetnsTarget::Current,
            SamplerConfig {
                interval: Duration::from_millis(300),
                fast_interval: Duration::from_millis(50),
                budget_percent: 0.001,
                collector: CollectorOptions {
                    unix: false,
                    owners: false,
                    ..CollectorOptions::default()
                },
            },
        )?;
        Ok(Self {
            quiet,
            busy,
            _busy: busy_socket,
            _clients: clients,
            sampler,
        })
    }
}

#[test]
fn the_sampler_polls_only_active_listeners_and_says_how_many() {
    in_netns("active_sampler", || {
        let scene = ActiveOnly::start()?;
        let (quiet, busy, sampler) = (&scene.quiet, scene.busy, &scene.sampler);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            anyhow::ensure!(Instant::now() < deadline, "no tick with polls within 30 s");
            let Some(SampleEvent::Sample(s)) = sampler.recv_timeout(Duration::from_secs(30))?
            else {
                continue;
            };
            assert_eq!(s.snapshot.tcp_listeners.len(), quiet.len() + 1);
            if s.collector.active_listeners == 0 {
                continue; // the first tick: nothing known to be active yet
            }
            assert_eq!(s.collector.active_listeners, 1);
            if s.collector.fast_poll_hz == 0.0 {
                continue;
            }
            // Only the busy listener has a range (fast readings and the tick's); the quiet
            // ones are read once per tick, by the tick's sample.
            let busy_key = s
                .snapshot
                .tcp_listeners
                .iter()
                .find(|l| l.port == busy.port())
                .map(ListenerKey::from)
                .unwrap();
            assert_eq!(s.depth_ranges.len(), 1, "{:?}", s.depth_ranges);
            let r = s.depth_ranges[0];
            assert_eq!(r.key, busy_key);
            assert!(r.readings > 1, "{r:?}");
            assert_eq!((r.high, r.low), (3, 3));
            return Ok(());
        }
    });
}

/// The dashboard hands the sampler the selected row (`Source::select`): a quiet listener is
/// then polled at the fast rate like an active one, and no longer once the selection is
/// cleared.
#[test]
fn a_selected_quiet_listener_is_polled_until_unselected() {
    use sockq::engine::Source;
    in_netns("active_select", || {
        let mut scene = ActiveOnly::start()?;
        let chosen_port = scene.quiet[0].1.port();
        let sampler = &mut scene.sampler;
        // 0: before the selection; 1: selected; 2: unselected again.
        let mut phase = 0;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            anyhow::ensure!(Instant::now() < deadline, "stuck in phase {phase} for 60 s");
            let Some(SampleEvent::Sample(s)) = sampler.next_event(Duration::from_secs(30))? else {
                continue;
            };
            let chosen = s
                .snapshot
                .tcp_listeners
                .iter()
                .find(|l| l.port == chosen_port)
                .map(ListenerKey::from)
                .unwrap();
            let range = s.depth_ranges.iter().find(|r| r.key == chosen);
            match phase {
                0 if s.collector.active_listeners == 1 => {
                    assert!(range.is_none(), "a quiet listener is not polled: {range:?}");
                    sampler.select(vec![chosen]);
                    phase = 1;
                }
                // The selection takes effect at the next tick; the one after has its polls.
                1 if s.collector.active_listeners == 2 && range.is_some_and(|r| r.readings > 1) => {
                    let r = range.unwrap();
                    assert_eq!((r.high, r.low), (0, 0), "{r:?}");
                    assert_eq!(
                        ss_depths()?.get(&format!("127.0.0.1:{chosen_port}")),
                        Some(&0)
                    );
                    sampler.select(Vec::new());
                    phase = 2;
                }
                2 if s.collector.active_listeners == 1 && range.is_none() => return Ok(()),
                _ => {}
            }
        }
    });
}
