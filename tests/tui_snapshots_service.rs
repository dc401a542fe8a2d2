//! The dashboard's service side (issue 14: after accept()) without a terminal: whole frames
//! drawn with `render::draw` on a ratatui `TestBackend`, kept as insta snapshots (80x24 and
//! larger) — the listener table's IN SERVICE and OLDEST WAIT columns, the detail's service
//! section with its sparklines, the pipeline past accept() — and what each shows when the
//! numbers are stale or unknown. Deterministic: synthetic samples built with
//! `sockq::model::testing`, monotonic time stepping by one second.
//!
//! Accept changed snapshots with `INSTA_UPDATE=always cargo test --test tui_snapshots_service`,
//! then read every changed file under tests/snapshots/.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and tools may panic on failure

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use ratatui::backend::TestBackend;
use ratatui::Terminal;
use sockq::engine::{Engine, EngineConfig};
use sockq::model::testing::{
    idle_service, process_in_state, service_summary, snapshot, tcp_listener,
};
use sockq::model::{
    CollectorStats, ListenerKey, Owners, Sample, ServiceStats, Snapshot, TcpListener, TcpSockstat,
};
use sockq::tui::app::{App, Screen};
use sockq::tui::render;

/// Monotonic time of the first sample (ns).
const T0_NS: u64 = 9_000_000_000_000;
/// Ticks ingested per scenario.
const TICKS: u64 = 30;
const INTERVAL: Duration = Duration::from_secs(1);

/// How the service dump of a scenario is made.
#[derive(Clone, Copy, PartialEq)]
enum Dump {
    /// Fresh every tick.
    Fresh,
    /// Made every 5 ticks and reused in between (spaced out under the CPU budget).
    Spaced,
    /// Failed from tick 20 on: no numbers, and a blind spot saying why.
    FailsFrom20,
    /// Never made (a recording from before sockq read the listeners' connections).
    Never,
}

/// The listener of the story: python3 on 127.0.0.1:8000 whose single-threaded handler blocks
/// its event loop. It accepts, then does not read: from tick 5 on two more connections a
/// second stay unread (46 bytes each, as in the issue), up to 50; clients give up and leave
/// CLOSE-WAIT behind (one every 3 s from tick 10); 3 connections wait for accept().
fn blocked(t: u64) -> TcpListener {
    let unread = (t.saturating_sub(4) * 2).min(50);
    let in_service = 2 + unread;
    let close_wait = t.saturating_sub(10) / 3;
    let s = ServiceStats {
        waiting: 3,
        waiting_oldest_ms: Some(1_400),
        in_service,
        unread_conns: unread,
        unread_bytes: 46 * unread,
        unread_oldest_ms: (unread > 0).then(|| (t - 5) * 1000 + 300),
        unsent_conns: 1,
        unsent_bytes: 2_920,
        unsent_oldest_ms: Some(800),
        mem_bytes: Some(in_service * 4_352),
        close_wait: close_wait + 1,
        close_wait_unaccepted: 1,
        time_wait: 607,
        fin_wait2: 2,
        // 25 new connections a second.
        connections_seen_total: 25 * t,
        ..idle_service()
    };
    tcp_listener(8000)
        .identity(44_001, 0x4400_0001)
        .queue(3, 5)
        .owner(process_in_state(4242, "python3", 'S', Some(99.0), 1))
        .service(Some(s))
        .build()
}

/// The quiet neighbours: sshd (one session in service) and a dual-stack nginx with a
/// SO_REUSEPORT group of two (twelve keep-alive connections, a little unsent).
fn neighbours() -> Vec<TcpListener> {
    let sshd = tcp_listener(22)
        .addr(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
        .identity(44_002, 0x4400_0002)
        .owner(process_in_state(812, "sshd", 'S', Some(0.0), 1))
        .service(Some(ServiceStats {
            in_service: 1,
            connections_seen_total: 3,
            mem_bytes: Some(4_352),
            ..idle_service()
        }))
        .build();
    let nginx = |id: u64| {
        tcp_listener(80)
            .addr(IpAddr::V6(Ipv6Addr::UNSPECIFIED))
            .v6only(Some(false))
            .identity(44_010 + id, 0x4400_0010 + id)
            .queue(0, 511)
            .owners(Owners::Known {
                processes: vec![process_in_state(
                    1200 + id as u32,
                    "nginx",
                    'S',
                    Some(1.0),
                    1,
                )]
                .into(),
            })
            .service(Some(ServiceStats {
                group: 2,
                in_service: 12,
                unsent_conns: 1,
                unsent_bytes: 65_536,
                unsent_oldest_ms: Some(120),
                time_wait: 31,
                connections_seen_total: 0,
                mem_bytes: Some(180_000),
                ..idle_service()
            }))
            .build()
    };
    vec![sshd, nginx(1), nginx(2)]
}

/// The sample of tick `t`.
fn sample(t: u64, dump: Dump) -> Sample {
    let now = T0_NS + t * 1_000_000_000;
    let made = match dump {
        Dump::Spaced => t - t % 5,
        _ => t,
    };
    let mut listeners = vec![blocked(made)];
    listeners.extend(neighbours());
    let unknown = dump == Dump::Never || (dump == Dump::FailsFrom20 && t >= 20);
    if unknown {
        for l in &mut listeners {
            l.service = None;
        }
    }
    let mut snap: Snapshot = snapshot(listeners, now);
    snap.host.hostname = "demo-host".into();
    if !unknown {
        let mut s = service_summary(T0_NS + made * 1_000_000_000);
        s.age_ms = (t - made) * 1000;
        snap.service = Some(s);
    }
    if dump == Dump::FailsFrom20 && t >= 20 {
        snap.blind_spots.push(
            "the listeners' connections are unknown: netlink: receive timed out after 2 s".into(),
        );
    }
    if dump == Dump::Spaced && t != made {
        snap.blind_spots.push(format!(
            "the listeners' connections (waiting, in service, closing) are {}.0 s old: the dump was spaced out to keep the CPU budget",
            t - made
        ));
    }
    snap.sockstat = Some(TcpSockstat {
        inuse: Some(700),
        orphan: Some(0),
        tw: Some(638),
        alloc: Some(720),
        mem_pages: Some(1_200),
        page_size: 4096,
    });
    snap.tunables.tcp_mem = Some([94_011, 125_350, 188_022]);
    snap.counters.tcp = BTreeMap::from([("PassiveOpens".to_string(), 25 * t as i64)]);
    Sample {
        snapshot: snap,
        depth_ranges: vec![],
        collector: CollectorStats::default(),
    }
}

fn engine(dump: Dump) -> Engine {
    let mut e = Engine::new(EngineConfig {
        interval: INTERVAL,
        ..EngineConfig::default()
    });
    for t in 0..TICKS {
        e.ingest(sample(t, dump));
    }
    e
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

/// One whole frame as text, one line per row between `│` marks.
fn render(w: u16, h: u16, app: &mut App, engine: &Engine) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| render::draw(f, app, engine)).unwrap();
    let buf = t.backend().buffer();
    let rule: String = "─".repeat(usize::from(w));
    let mut out = format!("┌{rule}┐ {w}x{h}\n");
    for y in 0..h {
        out.push('│');
        for x in 0..w {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push_str("│\n");
    }
    out.push_str(&format!("└{rule}┘\n"));
    out
}

/// Snapshots `screen` with `endpoint` selected at each size; returns the frames.
fn snap(name: &str, engine: &Engine, screen: Screen, sizes: &[(u16, u16)]) -> Vec<String> {
    let key = key_of(engine, "127.0.0.1:8000");
    sizes
        .iter()
        .map(|&(w, h)| {
            let mut app = App::new(INTERVAL, true);
            app.selected = Some(key);
            app.screen = screen;
            let text = render(w, h, &mut app, engine);
            insta::assert_snapshot!(format!("{name}_{w}x{h}"), text);
            text
        })
        .collect()
}

/// The line of the frame that contains `needle`.
fn line_with<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?}:\n{text}"))
}

#[test]
fn the_table_shows_in_service_and_the_oldest_wait_at_80_columns() {
    let e = engine(Dump::Fresh);
    let frames = snap("service_main", &e, Screen::Main, &[(80, 24), (200, 50)]);
    let narrow = &frames[0];
    let header = line_with(narrow, "ADDRESS");
    assert!(header.contains("IN SERVICE"), "{narrow}");
    assert!(header.contains("OLDEST WAIT"), "{narrow}");
    // 50 unread + 2 reading; the oldest unread request (24.3 s) is older than the head of the
    // accept queue (1.4 s).
    let row = line_with(narrow, "127.0.0.1:8000");
    assert!(row.contains(" 52 "), "{row}");
    assert!(row.contains("24s unread"), "{row}");
    // An SO_REUSEPORT group's numbers are the group's, marked so; nothing waits there.
    let row = line_with(narrow, "*:80");
    assert!(row.contains("12/2g"), "{row}");
    assert!(row.contains("none"), "{row}");
    // Every column fits on the wide screen.
    let wide = &frames[1];
    let header = line_with(wide, "ADDRESS");
    for col in [
        "FILL",
        "SYN-RECV",
        "FDS",
        "DEPTH TREND",
        "IN SERVICE",
        "OLDEST WAIT",
    ] {
        assert!(header.contains(col), "{col}: {header}");
    }
    // The finding the numbers raise is on screen.
    assert!(narrow.contains("unread requests"), "{narrow}");
}

#[test]
fn the_detail_has_a_service_section_with_sparklines() {
    let e = engine(Dump::Fresh);
    let frames = snap("service_detail", &e, Screen::Detail, &[(80, 24), (200, 50)]);
    for text in &frames {
        assert!(text.contains("After accept()"), "{text}");
        let l = line_with(text, "in service (accepted, open) 52");
        assert!(l.contains('█'), "a sparkline: {l}");
        let l = line_with(text, "unread requests 50 conns 2.2 KiB, oldest 24 s");
        assert!(l.contains('█'), "{l}");
        line_with(text, "CLOSE-WAIT 6 (+1 still in the accept queue)");
        assert!(
            text.contains(
                "mean connection lifetime (L/λ) 2.08 s, = response time only without keep-alive"
            ),
            "{text}"
        );
    }
    let wide = &frames[1];
    for needle in [
        "waiting for accept() 3, oldest 1.4 s (head of line)",
        "unsent responses 1 conn 2.9 KiB, oldest 800 ms",
        "new connections 25.0/s",
        // W = L / λ = 52 / 25.
        "mean connection lifetime (L/λ) 2.08 s",
        // 1024 − 10 fds left; (52 + 1014) / 2.08 s.
        "1014 more connections fit before python3[4242]'s fd limit (10/1024)",
        "fds allow 512 new/s at this lifetime",
        "FIN-WAIT-1 0 · FIN-WAIT-2 2 · TIME-WAIT 607",
        "socket memory 221.0 KiB",
        "TCP memory 4.7 MiB host-wide, tcp_mem 94011/125350/188022 pages",
    ] {
        assert!(wide.contains(needle), "{needle}:\n{wide}");
    }
}

#[test]
fn the_pipeline_goes_past_accept() {
    let e = engine(Dump::Fresh);
    let frames = snap(
        "service_pipeline",
        &e,
        Screen::Pipeline,
        &[(80, 24), (100, 30), (200, 50)],
    );
    for text in &frames {
        for title in ["Accept queue", "In service", "Closing"] {
            assert!(text.contains(title), "{title}:\n{text}");
        }
    }
    let wide = &frames[2];
    for needle in [
        "oldest wait 1.4 s",
        "reading: 50 unread, oldest 24 s",
        "oldest 24 s",
        "writing: 1 unsent, oldest 800 ms",
        "in CLOSE-WAIT: peer closed, app not",
        "TIME-WAIT 607",
    ] {
        assert!(wide.contains(needle), "{needle}:\n{wide}");
    }
}

#[test]
fn stale_numbers_say_how_old_they_are() {
    // The last tick (29) shows the dump of tick 25, 4 s old.
    let e = engine(Dump::Spaced);
    let frames = snap("service_stale", &e, Screen::Main, &[(80, 24)]);
    assert!(frames[0].contains("connections 4 s old"), "{}", frames[0]);
    let mut app = App::new(INTERVAL, true);
    app.selected = Some(key_of(&e, "127.0.0.1:8000"));
    app.screen = Screen::Detail;
    let text = render(200, 50, &mut app, &e);
    assert!(
        text.contains(
            "this listener's connections, 4.0 s old (dump spaced out under the CPU budget)"
        ),
        "{text}"
    );
}

#[test]
fn unknown_numbers_are_a_dash_with_the_reason_never_zero() {
    let e = engine(Dump::FailsFrom20);
    let frames = snap("service_unknown", &e, Screen::Main, &[(80, 24)]);
    let row = line_with(&frames[0], "127.0.0.1:8000");
    assert!(row.contains('–'), "{row}");
    assert!(!row.contains(" 0 "), "{row}");
    assert!(
        frames[0].contains("– = connections unknown"),
        "{}",
        frames[0]
    );
    let frames = snap("service_unknown_detail", &e, Screen::Detail, &[(80, 24)]);
    assert!(
        frames[0].contains("– the listeners' connections are unknown: netlink:"),
        "{}",
        frames[0]
    );
    // The sparkline keeps the numbers it had, then gaps: the section says why it has none now.
    let e = engine(Dump::Never);
    let mut app = App::new(INTERVAL, true);
    app.selected = Some(key_of(&e, "127.0.0.1:8000"));
    app.screen = Screen::Detail;
    let text = render(80, 24, &mut app, &e);
    assert!(text.contains("no dump of the listeners'"), "{text}");
    app.screen = Screen::Pipeline;
    let text = render(200, 50, &mut app, &e);
    assert!(text.contains('–'), "{text}");
}

#[test]
fn every_size_draws_without_panicking() {
    for dump in [Dump::Fresh, Dump::FailsFrom20] {
        let e = engine(dump);
        let key = key_of(&e, "127.0.0.1:8000");
        for screen in [Screen::Main, Screen::Detail, Screen::Pipeline] {
            for (w, h) in [
                (40, 10),
                (60, 16),
                (80, 24),
                (99, 30),
                (100, 24),
                (139, 40),
                (140, 40),
                (300, 80),
            ] {
                let mut app = App::new(INTERVAL, false);
                app.selected = Some(key);
                app.screen = screen;
                let text = render(w, h, &mut app, &e);
                assert!(text.lines().count() == usize::from(h) + 2);
            }
        }
    }
}
