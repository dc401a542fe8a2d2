//! `sockq record` / `sockq replay`: a recording replays the same frames the live dashboard drew
//! for the same samples; damaged files replay their valid prefix and say where they stop.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and tools may panic on failure

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::OpenOptionsExt;
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
            ..CollectorStats::default()
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
    t.draw(|f| sockq::tui::render::draw(f, &mut app, engine))
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
        match record::read_from(&full[..cut], &damaged) {
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
    let back = record::read_from(&garbled[..], &damaged).expect("reads");
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
        // Sequence numbers rise; a sample that came late (over 1.5 intervals, as on a loaded
        // machine) counts the ticks it missed, so they need not be consecutive.
        let seqs: Vec<u64> = ticks.iter().filter_map(|t| t["seq"].as_u64()).collect();
        assert_eq!(seqs.len(), 3, "{seqs:?}");
        assert_eq!(seqs[0], 1);
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        for t in &ticks {
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

/// Asserts that `err` says what was being done with which file, e.g. "writing /x/rec.gz".
fn assert_names(err: &str, doing: &str, path: &std::path::Path) {
    assert!(
        err.contains(&format!("{doing} {}", path.display())),
        "{err}"
    );
}

/// `sockq record ARGS… FILE` run on the caller's thread (so in its network namespace).
fn record_cli(file: &std::path::Path, extra: &[&str]) -> std::process::Output {
    Command::new(common::sockq_bin())
        .args(["record", "--interval", "100ms"])
        .args(extra)
        .arg(file)
        .output()
        .expect("run sockq record")
}

#[test]
fn a_file_that_fails_on_write_is_named_in_the_error() {
    common::in_netns("record_proc_version", || {
        // /proc/version is a regular file that fails every write (EIO); not root: EACCES.
        let out = record_cli(std::path::Path::new("/proc/version"), &["--count", "1"]);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("writing /proc/version") || err.contains("creating /proc/version"),
            "{err}"
        );
        Ok(())
    });
}

#[test]
fn a_full_disk_is_an_error_naming_the_file() {
    let dir = tmp("full").with_file_name("mnt");
    std::fs::create_dir_all(&dir).expect("mount point");
    common::in_netns("record_full_disk", move || {
        // A 64 KiB tmpfs in a private mount namespace, filled but for one page.
        let script = r#"mount -t tmpfs -o size=64k sockq-full "$1" && head -c 61440 /dev/zero > "$1/fill" && exec "$2" record --interval 100ms --count 1000 "$1/rec.gz""#;
        let out = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", script, "sh"])
            .arg(&dir)
            .arg(common::sockq_bin())
            .output()?;
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err
            .lines()
            .find(|l| l.contains("error"))
            .unwrap_or_default();
        assert!(line.contains("No space left on device"), "{err}");
        assert_names(line, "writing", &dir.join("rec.gz"));
        Ok(())
    });
}

/// Waits up to `limit` for `child` to end by itself; if it does not, SIGTERM, then SIGKILL.
/// Returns its output and whether it ended by itself.
fn wait_or_kill(
    mut child: std::process::Child,
    limit: std::time::Duration,
) -> (std::process::Output, bool) {
    let start = std::time::Instant::now();
    let mut by_itself = true;
    while child.try_wait().expect("try_wait").is_none() {
        if start.elapsed() > limit {
            by_itself = false;
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            std::thread::sleep(std::time::Duration::from_secs(2));
            let _ = child.kill();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    (child.wait_with_output().expect("wait"), by_itself)
}

#[test]
fn record_refuses_a_device_node_and_never_rotates_it() {
    let dir = tmp("chardev").with_file_name("");
    let dev = dir.join("devnull");
    common::in_netns("record_chardev", move || {
        // A copy of /dev/null: writes to it succeed, so rotation would come (at 4 KiB).
        nix::sys::stat::mknod(
            &dev,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(1, 3),
        )?;
        let out = record_cli(
            &dev,
            &["--max-size", "4KiB", "--keep", "1", "--count", "10"],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert_names(&err, "refusing to record to", &dev);
        assert!(err.contains("a character device"), "{err}");
        assert!(err.contains("regular file"), "{err}");
        use std::os::unix::fs::FileTypeExt;
        let meta = std::fs::symlink_metadata(&dev)?;
        assert!(
            meta.file_type().is_char_device(),
            "the node stays where it was"
        );
        assert!(
            !dev.with_file_name("devnull.1").exists(),
            "and is not rotated"
        );
        Ok(())
    });
}

#[test]
fn record_to_a_fifo_is_refused_at_once_with_or_without_a_reader() {
    let dir = tmp("fifo").with_file_name("");
    let fifo = dir.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    common::in_netns("record_fifo", move || {
        // No reader: a blocking open would wait for one for ever, deaf to SIGTERM and SIGINT.
        let child = Command::new(common::sockq_bin())
            .args(["record", "--interval", "100ms", "--count", "1"])
            .arg(&fifo)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        let (out, by_itself) = wait_or_kill(child, std::time::Duration::from_secs(10));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            by_itself,
            "record blocked on a FIFO without a reader: {err}"
        );
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert_names(&err, "refusing to record to", &fifo);
        assert!(err.contains("a FIFO"), "{err}");
        // With a reader: refused as well (it is not a regular file), nothing written to it.
        let reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(&fifo)?;
        let out = record_cli(&fifo, &["--count", "1"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("a FIFO"), "{err}");
        let mut buf = [0u8; 16];
        let n = std::io::Read::read(&mut &reader, &mut buf).unwrap_or(0);
        assert_eq!(n, 0, "nothing was written to the FIFO");
        Ok(())
    });
}

#[test]
fn record_does_not_follow_a_symlink_in_the_last_component() {
    let path = tmp("symlink");
    let victim = path.with_file_name("victim");
    std::fs::write(&victim, b"keep me").expect("victim");
    std::os::unix::fs::symlink(&victim, &path).expect("symlink");
    let err = Recorder::create(&path, header(), 64 << 20, 2)
        .err()
        .expect("a symbolic link is refused")
        .to_string();
    assert_names(&err, "refusing to record to", &path);
    assert!(err.contains("a symbolic link"), "{err}");
    assert_eq!(std::fs::read(&victim).expect("victim"), b"keep me");
    // A directory is refused too; an existing regular file is truncated and recorded to.
    let dir_err = Recorder::create(path.parent().expect("dir"), header(), 64 << 20, 2)
        .err()
        .expect("a directory is refused")
        .to_string();
    assert!(dir_err.contains("a directory"), "{dir_err}");
    let mut rec = Recorder::create(&victim, header(), 64 << 20, 2).expect("a regular file");
    rec.write(&sample(1)).expect("write");
    drop(rec);
    let back = record::read(&victim).expect("read");
    assert_eq!(back.samples, vec![sample(1)]);
}

#[test]
fn rotation_moves_only_regular_files_it_wrote() {
    // A rotated name that is a symbolic link (or a FIFO): rotation stops, naming it, and
    // neither removes nor renames it.
    for keep in [1, 3] {
        let path = tmp(&format!("rot-link-{keep}"));
        let numbered = |n: u32| PathBuf::from(format!("{}.{n}", path.display()));
        let victim = path.with_file_name("victim");
        std::fs::write(&victim, b"keep me").expect("victim");
        std::os::unix::fs::symlink(&victim, numbered(keep)).expect("symlink");
        nix::unistd::mkfifo(
            &numbered(keep + 1),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .expect("mkfifo");
        let mut rec = Recorder::create(&path, header(), 4096, keep).expect("recorder");
        let err = (0..40)
            .find_map(|t| rec.write(&sample(t)).err())
            .expect("rotation refuses the link")
            .to_string();
        assert_names(&err, "refusing to rotate", &numbered(keep));
        assert!(err.contains("a symbolic link"), "{err}");
        assert!(std::fs::symlink_metadata(numbered(keep))
            .expect("link")
            .file_type()
            .is_symlink());
        assert!(path.exists(), "the recording was not moved");
        assert_eq!(std::fs::read(&victim).expect("victim"), b"keep me");
    }
    // The recording replaced by something else while recording: not rotated either.
    let path = tmp("rot-replaced");
    let mut rec = Recorder::create(&path, header(), 4096, 2).expect("recorder");
    std::fs::remove_file(&path).expect("remove");
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let err = (0..40)
        .find_map(|t| rec.write(&sample(t)).err())
        .expect("rotation refuses a replaced file")
        .to_string();
    assert_names(&err, "rotating", &path);
    assert!(err.contains("no longer the file"), "{err}");
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(&path)
        .expect("fifo")
        .file_type()
        .is_fifo());
    assert!(!PathBuf::from(format!("{}.1", path.display())).exists());
}

/// A recording of samples 0..n, and where each line's gzip member ends.
fn recording(name: &str, n: u64) -> (PathBuf, Vec<u8>, Vec<usize>) {
    let path = tmp(name);
    let mut rec = Recorder::create(&path, header(), 64 << 20, 2).expect("recorder");
    let mut ends = vec![rec.written() as usize];
    for t in 0..n {
        rec.write(&sample(t)).expect("write");
        ends.push(rec.written() as usize);
    }
    drop(rec);
    let bytes = std::fs::read(&path).expect("read");
    (path, bytes, ends)
}

/// `sockq replay --json FILE`.
fn replay_json(file: &std::path::Path) -> std::process::Output {
    Command::new(common::sockq_bin())
        .args(["replay", "--json"])
        .arg(file)
        .output()
        .expect("run sockq replay")
}

#[test]
fn a_sample_whose_gzip_checksum_fails_is_not_replayed() {
    let (path, full, ends) = recording("crc", 6);
    // Sample 4 (index 3) is the member ends[3]..ends[4]: break its CRC-32, then its length.
    for (what, at) in [("crc", ends[4] - 8), ("isize", ends[4] - 1)] {
        let mut bad = full.clone();
        bad[at] ^= 0x01;
        let back = record::read_from(&bad[..], &path).expect("reads");
        assert_eq!(
            back.samples,
            (0..3).map(sample).collect::<Vec<_>>(),
            "{what}"
        );
        let damage = back.damage.expect("damage reported");
        assert!(damage.contains("after sample 3"), "{what}: {damage}");
        assert!(damage.contains("sample 4 (line 5"), "{what}: {damage}");
        assert!(
            damage.contains(&format!("byte {}", ends[3])),
            "{what}: {damage}"
        );
    }
    // A stored (uncompressed) member whose data was changed but still parses: the checksum is
    // all that tells, and the changed sample must not reach the engine.
    let json = serde_json::to_vec(&sample(3)).expect("json");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
    std::io::Write::write_all(&mut gz, &json).expect("gz");
    std::io::Write::write_all(&mut gz, b"\n").expect("gz");
    let mut member = gz.finish().expect("gz");
    let needle = b"\"accept_queue\":3";
    let at = member
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("depth 3 in the stored member");
    member[at + needle.len() - 1] = b'4';
    let mut tampered = full[..ends[3]].to_vec();
    tampered.extend_from_slice(&member);
    tampered.extend_from_slice(&full[ends[4]..]);
    let file = path.with_file_name("tampered.gz");
    std::fs::write(&file, &tampered).expect("write");
    let back = record::read(&file).expect("reads");
    assert_eq!(back.samples.len(), 3);
    assert_eq!(back.samples, (0..3).map(sample).collect::<Vec<_>>());
    // The CLI says exactly how many samples were replayed, and where it stopped.
    let out = replay_json(&file);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}: replayed 3 samples; stopped after sample 3: sample 4 (line 5, gzip member at byte {})", file.display(), ends[3])), "{err}");
    assert!(err.contains("checksum"), "{err}");
}

/// One gzip member holding `data`.
fn member(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, data).expect("gz");
    gz.finish().expect("gz")
}

/// A recording's header member, then `body` (gzip members).
fn with_header(name: &str, body: &[u8]) -> PathBuf {
    let path = tmp(name);
    let mut bytes = serde_json::to_vec(&header()).expect("json");
    bytes.push(b'\n');
    let mut file = member(&bytes);
    file.extend_from_slice(body);
    std::fs::write(&path, file).expect("write");
    path
}

/// `sockq replay --json FILE` with its address space capped at 768 MiB.
fn replay_json_capped(file: &std::path::Path) -> std::process::Output {
    Command::new("prlimit")
        .arg(format!("--as={}", 768u64 << 20))
        .arg(common::sockq_bin())
        .args(["replay", "--json"])
        .arg(file)
        .output()
        .expect("run prlimit sockq replay")
}

#[test]
fn a_gigabyte_line_stops_at_the_line_cap() {
    // 1 GiB of spaces (JSON whitespace) and no newline, in 1024 members of 1 MiB: 1 MB of
    // gzip. Read whole, it took 1 GB; 4 GiB made the allocation fail (SIGABRT).
    let one = member(&vec![b' '; 1 << 20]);
    let path = with_header("gig", &one.repeat(1024));
    assert!(std::fs::metadata(&path).expect("meta").len() < 2 << 20);
    let out = replay_json_capped(&path);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.len() < 1000, "{} bytes of stderr", err.len());
    assert!(
        err.contains(
            "replayed 0 samples; stopped after sample 0: sample 1 (line 2, gzip member at byte"
        ),
        "{err}"
    );
    assert!(err.contains("longer than 64.0 MiB"), "{err}");
}

#[test]
fn an_error_quotes_at_most_a_hundred_characters_of_input() {
    // A 10 MiB string where a snapshot belongs: serde's error quotes the whole string.
    let mut body = member(b"{\"snapshot\":\"");
    body.extend_from_slice(&member(&vec![b'a'; 1 << 20]).repeat(10));
    body.extend_from_slice(&member(b"\"}\n"));
    let path = with_header("quote", &body);
    let out = replay_json(&path);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.len() < 1000, "{} bytes of stderr", err.len());
    assert!(
        err.contains("is not a valid sample: invalid type: string"),
        "{err}"
    );
    assert!(!err.contains(&"a".repeat(101)), "{err}");
    // The same in a header: at most 64 KiB of it is read, nothing of it quoted.
    let path = tmp("quote-header");
    let mut first = b"{\"format\":\"".to_vec();
    first.extend_from_slice(&vec![b'a'; 10 << 20]);
    std::fs::write(&path, member(&first)).expect("write");
    let out = replay_json(&path);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.len() < 1000, "{} bytes of stderr", err.len());
    assert!(err.contains("not a sockq recording"), "{err}");
}
#[test]
fn loading_stops_at_the_memory_cap_and_says_where() {
    let (path, full, _) = recording("held", 40);
    let one = record::read_from(&full[..], &path).expect("reads");
    assert_eq!(one.samples.len(), 40);
    // Room for about ten samples: the first ones load, then it stops and says so.
    let limits = record::ReadLimits {
        max_held: 10 * record::held_bytes(&sample(39)),
        ..record::ReadLimits::default()
    };
    let back = record::read_from_with(&full[..], &path, limits).expect("reads");
    let n = back.samples.len();
    assert!((5..=10).contains(&n), "{n} samples");
    assert_eq!(back.samples, (0..n as u64).map(sample).collect::<Vec<_>>());
    let damage = back.damage.expect("says where it stopped");
    assert!(
        damage.contains(&format!("stopped after sample {n}: sample {}", n + 1)),
        "{damage}"
    );
    assert!(damage.contains("the most a replay holds"), "{damage}");
    // A line longer than the cap stops the read too.
    let limits = record::ReadLimits {
        max_line: 1000,
        ..record::ReadLimits::default()
    };
    let err = record::read_from_with(&full[..], &path, limits).expect("reads");
    assert_eq!(err.samples.len(), 0);
    assert!(err.damage.expect("damage").contains("longer than 1000 B"));
}

#[test]
fn replay_of_an_unreadable_file_says_reading_it_failed() {
    let dir = tmp("unreadable").with_file_name("");
    let out = replay_json(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    let said = format!("reading {}: Is a directory", dir.display());
    assert!(err.contains(&said), "{err}");
}

#[test]
fn a_recording_of_a_newer_version_says_so() {
    for (version, fields) in [
        ("2", r#","sockq":"9.0","interval_s":1.0,"netns":"current""#),
        ("2", r#","written_by":"sockq 9.0""#),
        ("99999999999", ""),
    ] {
        let path = tmp(&format!("v{version}{}", fields.len()));
        let line = format!(r#"{{"format":"sockq-recording","version":{version}{fields}}}"#);
        std::fs::write(&path, member(format!("{line}\n").as_bytes())).expect("write");
        let err = record::read(&path).expect_err("newer").to_string();
        assert_eq!(
            err,
            format!(
                "reading {}: recording version {version} is newer than this sockq reads (up to {})",
                path.display(),
                record::RECORDING_VERSION
            )
        );
    }
    let path = tmp("v0");
    let line = r#"{"format":"sockq-recording","version":0}"#;
    std::fs::write(&path, member(format!("{line}\n").as_bytes())).expect("write");
    let err = record::read(&path).expect_err("version 0").to_string();
    assert!(
        err.contains("recording version 0 is not one sockq writes"),
        "{err}"
    );
}

#[test]
fn a_recording_recompressed_or_concatenated_still_reads() {
    let (path, full, _) = recording("recompressed", 6);
    let mut text = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&full[..]), &mut text)
        .expect("zcat");
    // `zcat FILE | gzip`: one member holding every line.
    let back = record::read_from(&member(&text)[..], &path).expect("reads");
    assert_eq!((back.samples.len(), back.damage), (6, None));
    // `cat FILE.1 FILE`: the second header is skipped.
    let back = record::read_from(&full.repeat(2)[..], &path).expect("reads");
    assert_eq!((back.samples.len(), back.damage), (12, None));
    // A bad line inside one member: the lines before it wait for a trailer never checked.
    let lines: Vec<&[u8]> = text.split_inclusive(|&b| b == b'\n').collect();
    let mut bad = lines[..3].concat();
    bad.extend_from_slice(b"{\"bad\":1}\n");
    bad.extend_from_slice(&lines[3..].concat());
    let back = record::read_from(&member(&bad)[..], &path).expect("reads");
    assert_eq!(back.samples.len(), 0);
    let damage = back.damage.expect("damage");
    assert!(
        damage.starts_with("stopped after sample 0: sample 3 (line 4, gzip member at byte 0) is not a valid sample: missing field"),
        "{damage}"
    );
}
