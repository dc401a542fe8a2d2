//! `sockq record` / `sockq replay`: a recording replays the same frames the live dashboard drew
//! for the same samples; damaged files replay their valid prefix and say where they stop.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and tools may panic on failure

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use ratatui::backend::TestBackend;
use ratatui::Terminal;
use sockq::engine::{Engine, EngineConfig};
use sockq::model::testing;
use sockq::model::*;
use sockq::record::{self, Header, Recorder};
use sockq::tui::app::{App, Screen};

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sockq-rec-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join("rec.gz")
}

fn listener(port: u16, backlog: u32, depth: u32, drops: u64, pid: u32) -> TcpListener {
    let comm = format!("srv{port}");
    testing::tcp_listener(port)
        .identity(5000 + u64::from(port), 9000 + u64::from(port))
        .queue(depth, backlog)
        .drops(Some(drops))
        .syn_recv(u64::from(depth / 2), (depth > 1).then_some(1))
        .owner(testing::process(
            pid,
            &comm,
            Some(40 + u64::from(depth)),
            Some(1024),
        ))
        .build()
}

/// Tick `t` of a namespace where one listener fills up and drops, and another stays idle.
fn sample(t: u64) -> Sample {
    let depth = (t as u32).min(5);
    let drops = t.saturating_sub(5) * 3;
    let listeners = vec![
        listener(8080, 4, depth, drops, 4242),
        listener(22, 128, 0, 0, 812),
    ];
    let mut tcp_ext: BTreeMap<String, u64> =
        QUEUE_COUNTERS.iter().map(|n| (n.to_string(), 7)).collect();
    tcp_ext.insert("ListenOverflows".into(), 7 + drops);
    tcp_ext.insert("ListenDrops".into(), 7 + drops);
    let ms = 1_790_000_000_000 + t * 1000;
    Sample {
        depth_ranges: listeners
            .iter()
            .map(|l| DepthRange {
                key: ListenerKey::from(l),
                high: l.accept_queue + u32::from(t == 3),
                low: l.accept_queue.saturating_sub(1),
                readings: 10,
            })
            .collect(),
        snapshot: Snapshot {
            schema_version: SCHEMA_VERSION,
            time: SampleTime {
                wall: format!("2026-09-21T10:00:{:02}.000Z", t % 60),
                wall_unix_ms: ms,
                monotonic_ns: 5_000_000_000 + t * 1_000_000_000,
            },
            host: HostInfo {
                hostname: "rec-host".into(),
                kernel: "6.18.0".into(),
            },
            netns: NetnsInfo {
                label: "current".into(),
                inode: Some(4026531840),
            },
            syn_recv: SynRecvSummary {
                total: listeners.iter().map(|l| l.syn_recv).sum(),
                unmatched: 0,
                age_ms: 0,
            },
            tcp_listeners: listeners,
            unix_listeners: Some(vec![]),
            service: None,
            sockstat: None,
            counters: Counters {
                tcp_ext,
                tcp: BTreeMap::new(),
            },
            tunables: Tunables {
                somaxconn: Some(4096),
                tcp_max_syn_backlog: Some(2048),
                tcp_syncookies: Some(1),
                tcp_abort_on_overflow: Some(0),
                ..Tunables::default()
            },
            blind_spots: vec![],
        },
        collector: CollectorStats {
            cpu_percent: 0.31,
            budget_percent: 2.0,
            sample_ms: 1.25,
            fast_interval_ms: 100,
            fast_interval_asked_ms: 100,
            syn_recv_age_ms: 0,
            throttled: false,
        },
    }
}

fn header() -> Header {
    Header {
        format: "sockq-recording".into(),
        version: record::RECORDING_VERSION,
        sockq: "test".into(),
        interval_s: 1.0,
        netns: "current".into(),
    }
}

fn frame(engine: &Engine, screen: Screen, w: u16, h: u16) -> String {
    let mut app = App::new(std::time::Duration::from_secs(1), true);
    app.screen = screen;
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
    t.draw(|f| sockq::tui::ui::draw(f, &mut app, engine))
        .expect("draw");
    let buf = t.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

#[test]
fn replay_draws_the_same_frames_as_live_for_the_same_samples() {
    let path = tmp("frames");
    let samples: Vec<Sample> = (0..20).map(sample).collect();
    let mut live = Engine::new(EngineConfig::default());
    let mut rec = Recorder::create(&path, header(), 64 << 20, 2).expect("recorder");
    for s in &samples {
        rec.write(s).expect("write");
        live.ingest(s.clone());
    }
    drop(rec);
    let back = record::read(&path).expect("read back");
    assert_eq!(back.damage, None);
    assert_eq!(
        back.samples, samples,
        "samples round-trip exactly (floats included)"
    );
    let mut replayed = Engine::new(EngineConfig::default());
    for s in back.samples {
        replayed.ingest(s);
    }
    for (screen, w, h) in [
        (Screen::Main, 80, 24),
        (Screen::Main, 200, 50),
        (Screen::Detail, 120, 40),
        (Screen::Pipeline, 120, 40),
    ] {
        assert_eq!(
            frame(&live, screen, w, h),
            frame(&replayed, screen, w, h),
            "{screen:?} {w}x{h}"
        );
    }
    insta::assert_snapshot!(
        "replayed_main_80x24",
        frame(&replayed, Screen::Main, 80, 24)
    );
}

#[test]
fn a_truncated_recording_replays_its_valid_prefix_and_says_where_it_stops() {
    let path = tmp("trunc");
    let mut rec = Recorder::create(&path, header(), 64 << 20, 2).expect("recorder");
    let mut ends = Vec::new();
    for t in 0..10 {
        rec.write(&sample(t)).expect("write");
        ends.push(rec.written());
    }
    drop(rec);
    let full = std::fs::read(&path).expect("read");
    assert_eq!(full.len() as u64, ends[9]);
    // Cut inside sample 7 (index 6): samples 1..=6 survive.
    let cut = ((ends[5] + ends[6]) / 2) as usize;
    let damaged = tmp("trunc-cut");
    std::fs::write(&damaged, &full[..cut]).expect("write cut");
    let back = record::read(&damaged).expect("a damaged file still reads");
    assert_eq!(back.samples.len(), 6);
    assert_eq!(back.samples, (0..6).map(sample).collect::<Vec<_>>());
    let damage = back.damage.expect("damage reported");
    assert!(damage.contains("after sample 6"), "{damage}");
    // Every cut position: never a panic, always a prefix.
    for cut in (0..full.len()).step_by(97) {
        match record::read_from(&full[..cut]) {
            Ok(r) => assert!(r.samples.len() <= 10),
            Err(e) => assert!(
                e.to_string().contains("not a sockq recording"),
                "cut {cut}: {e}"
            ),
        }
    }
    // Garbage in the middle: the prefix replays.
    let mut garbled = full.clone();
    let mid = ends[3] as usize + 20;
    for b in &mut garbled[mid..mid + 40] {
        *b ^= 0x5a;
    }
    let back = record::read_from(&garbled[..]).expect("reads");
    assert_eq!(back.samples.len(), 4);
    assert!(back.damage.is_some());

    // The CLI: the valid part as JSON lines, then an error naming the position, exit 1.
    let out = Command::new(common::sockq_bin())
        .args(["replay", "--json"])
        .arg(&damaged)
        .output()
        .expect("run sockq replay");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 6);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("after sample 6"), "{err}");
    assert!(err.contains("rec.gz"), "{err}");
}

#[test]
fn not_a_recording_is_a_clear_error() {
    let path = tmp("garbage");
    std::fs::write(&path, b"hello\n").expect("write");
    let out = Command::new(common::sockq_bin())
        .args(["replay", "--json"])
        .arg(&path)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a sockq recording"), "{err}");
    let missing = Command::new(common::sockq_bin())
        .args(["replay", "/nonexistent/sockq.gz"])
        .output()
        .expect("run");
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/sockq.gz"));
}

#[test]
fn rotation_keeps_every_file_readable() {
    let path = tmp("rotate");
    let mut rec = Recorder::create(&path, header(), 4096, 2).expect("recorder");
    for t in 0..40 {
        rec.write(&sample(t)).expect("write");
    }
    drop(rec);
    let numbered = |n: u32| PathBuf::from(format!("{}.{n}", path.display()));
    assert!(numbered(1).exists() && numbered(2).exists());
    assert!(!numbered(3).exists(), "keeps 2 rotated files");
    let mut total = 0;
    for p in [numbered(2), numbered(1), path.clone()] {
        let r = record::read(&p).expect("each file reads on its own");
        assert_eq!(r.damage, None);
        assert!(std::fs::metadata(&p).expect("meta").len() <= 4096 + 4096);
        total += r.samples.len();
    }
    assert!(total > 0 && total <= 40);
    // The newest file ends with the last sample.
    let last = record::read(&path).expect("read");
    assert_eq!(last.samples.last(), Some(&sample(39)));
}

#[test]
fn live_record_then_replay_json() {
    let path = tmp("live");
    let p2 = path.clone();
    common::in_netns("record_live", move || {
        let (_l, addr) = common::listen("127.0.0.1:0", 4)?;
        let _c = common::connect_n(addr, 5)?;
        let out = Command::new(common::sockq_bin())
            .args(["record", "--count", "3", "--interval", "200ms"])
            .arg(&p2)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new(common::sockq_bin())
            .args(["replay", "--json"])
            .arg(&p2)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ticks: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()?;
        assert_eq!(ticks.len(), 3);
        for (i, t) in ticks.iter().enumerate() {
            assert_eq!(t["seq"], i as u64 + 1);
            let l = t["snapshot"]["tcp_listeners"]
                .as_array()
                .and_then(|a| a.iter().find(|l| l["port"] == addr.port()))
                .ok_or_else(|| anyhow::anyhow!("listener missing"))?;
            assert_eq!(l["accept_queue"], 5);
            assert_eq!(l["backlog"], 4);
        }
        // Rates exist from the second tick on, as in `watch --json`.
        assert!(ticks[0]["counter_rates"]["ListenOverflows"].is_null());
        assert!(ticks[1]["counter_rates"]["ListenOverflows"].is_number());
        Ok(())
    });
}
