//! The dashboard's namespaces view (`sockq --all-netns`) without a terminal: whole frames on a
//! ratatui `TestBackend` (insta snapshots at 80x24), the order by trouble, Enter opening the
//! namespace's own screens and Esc coming back. Deterministic synthetic namespaces.
//!
//! Accept changed snapshots with `INSTA_UPDATE=always cargo test --test tui_namespaces`, then
//! read every changed file under tests/snapshots/.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and tools may panic on failure

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use sockq::engine::{EngineConfig, NsEvent};
use sockq::model::netns::{Container, MainProcess, Pod, Runtime};
use sockq::model::{
    testing, CollectorStats, EnterBy, NetnsName, NetnsRef, Sample, SampleEvent, TcpListener,
};
use sockq::tui::app::Action;
use sockq::tui::namespaces::Namespaces;
use sockq::tui::DashboardConfig;

const T0: u64 = 7_000_000_000_000;

fn r(inode: u64, name: NetnsName) -> NetnsRef {
    NetnsRef {
        inode,
        name,
        enter: EnterBy::Pid(inode as u32 % 10_000),
        processes: 1,
    }
}

fn sample(
    r: &NetnsRef,
    listeners: Vec<TcpListener>,
    overflows: u64,
    somaxconn: i64,
    s: u64,
) -> NsEvent {
    let mut snap = testing::snapshot(listeners, T0 + s * 1_000_000_000);
    snap.netns.label = r.label();
    snap.netns.inode = Some(r.inode);
    snap.tunables.somaxconn = Some(somaxconn);
    snap.counters
        .tcp_ext
        .insert("ListenOverflows".into(), overflows);
    snap.counters
        .tcp_ext
        .insert("ListenDrops".into(), overflows);
    NsEvent::Sample(
        r.inode,
        SampleEvent::Sample(Box::new(Sample {
            snapshot: snap,
            depth_ranges: vec![],
            collector: CollectorStats::default(),
        })),
    )
}

/// Five namespaces: the host, two calm ones, a pod filling up, one overflowing (somaxconn 128).
fn view() -> Namespaces {
    let mut v = Namespaces::new(DashboardConfig {
        engine: EngineConfig::default(),
        interval: Duration::from_secs(1),
        color: false,
        filter: Default::default(),
    });
    let host = r(
        4026531840,
        NetnsName {
            host: true,
            ..NetnsName::default()
        },
    );
    let blue = r(
        4026532100,
        NetnsName {
            ip_netns: vec!["blue".into()],
            ..NetnsName::default()
        },
    );
    let sleeper = r(
        4026532200,
        NetnsName {
            main: Some(MainProcess {
                pid: 4242,
                comm: "sleep".into(),
            }),
            ..NetnsName::default()
        },
    );
    let pod = r(
        4026532300,
        NetnsName {
            container: Some(Container {
                runtime: Runtime::Containerd,
                id: "a1b2c3d4e5f60718293a4b5c6d7e8f90".into(),
                name: Some("nginx".into()),
            }),
            pod: Some(Pod {
                uid: "5f0c1f5e-3b1c-4c2a-9d7e-0a1b2c3d4e5f".into(),
                namespace: Some("shop".into()),
                name: Some("web-0".into()),
                containers: vec!["nginx".into()],
            }),
            ..NetnsName::default()
        },
    );
    let red = r(
        4026532400,
        NetnsName {
            ip_netns: vec!["red".into()],
            ..NetnsName::default()
        },
    );
    for ns in [&host, &blue, &sleeper, &pod, &red] {
        v.apply(NsEvent::Added(ns.clone()));
    }
    for s in 0..3u64 {
        v.apply(sample(
            &host,
            vec![testing::tcp_listener(22).build()],
            0,
            4096,
            s,
        ));
        v.apply(sample(
            &blue,
            vec![
                testing::tcp_listener(80).build(),
                testing::tcp_listener(443).build(),
            ],
            0,
            4096,
            s,
        ));
        v.apply(sample(&sleeper, vec![], 0, 4096, s));
        v.apply(sample(
            &pod,
            vec![testing::tcp_listener(8080).queue(100, 128).build()],
            0,
            4096,
            s,
        ));
        let over = testing::tcp_listener(7000)
            .queue(129, 128)
            .drops(Some(40 * s))
            .build();
        v.apply(sample(&red, vec![over], 40 * s, 128, s));
    }
    v
}

fn frame(v: &mut Namespaces, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| v.draw(f)).unwrap();
    let buf = t.backend().buffer();
    let mut out = String::new();
    for y in 0..h {
        for x in 0..w {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent {
        code,
        modifiers: KeyModifiers::NONE,
        kind: KeyEventKind::Press,
        state: crossterm::event::KeyEventState::NONE,
    }
}

#[test]
fn the_overflowing_namespace_is_first_with_its_critical_finding() {
    let mut v = view();
    let text = frame(&mut v, 80, 24);
    insta::assert_snapshot!("namespaces_80x24", text);
    let rows: Vec<&str> = text.lines().skip(2).take(5).collect();
    assert!(
        rows[0].contains("red") && rows[0].contains("CRIT"),
        "{text}"
    );
    assert!(rows[0].contains("128"), "somaxconn 128: {text}");
    assert!(
        rows[1].contains("pod shop/web-0"),
        "the filling pod second: {text}"
    );
    let order = v.rows();
    assert_eq!(order.len(), 5);
    assert!(order[0].trouble.overflows > 0.0 && order[0].trouble.drops > 0.0);
}

#[test]
fn enter_opens_the_namespace_and_esc_comes_back() {
    let mut v = view();
    assert!(matches!(v.on_key(key(KeyCode::Enter)), Action::None));
    let text = frame(&mut v, 80, 24);
    assert!(
        text.contains("red"),
        "the opened namespace is named: {text}"
    );
    assert!(text.contains("127.0.0.1:7000"), "its listener: {text}");
    assert!(!text.contains("every network namespace"), "{text}");
    v.on_key(key(KeyCode::Esc));
    let text = frame(&mut v, 80, 24);
    assert!(text.contains("every network namespace"), "{text}");
    // down to the pod, open it: its own listener
    v.on_key(key(KeyCode::Down));
    v.on_key(key(KeyCode::Enter));
    let text = frame(&mut v, 80, 24);
    assert!(
        text.contains("127.0.0.1:8080") && !text.contains("127.0.0.1:7000"),
        "{text}"
    );
    assert!(matches!(v.on_key(key(KeyCode::Char('q'))), Action::Quit));
}

#[test]
fn a_namespace_that_goes_leaves_the_list_and_its_screens() {
    let mut v = view();
    v.on_key(key(KeyCode::Enter));
    let red = v.rows()[0].clone();
    v.apply(NsEvent::Removed(r(red.inode, NetnsName::default())));
    let text = frame(&mut v, 80, 24);
    assert!(text.contains("every network namespace (4)"), "{text}");
    assert!(!text.contains(" red "), "{text}");
}
