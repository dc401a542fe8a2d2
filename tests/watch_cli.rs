//! End-to-end tests of `sockq watch`: the real binary, its JSON lines against the checked-in
//! tick schema, the human format, signals, a closed pipe and bad values.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and tools may panic on failure

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use socket2::Socket;

const SCHEMA_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/schema/tick.schema.json");

const REGENERATE: &str = "regenerate it with `cargo run -q -- schema tick > \
                          docs/schema/tick.schema.json`, review the diff, and bump \
                          TICK_SCHEMA_VERSION if the change is incompatible";

fn checked_in_schema() -> Value {
    common::checked_in_schema(SCHEMA_PATH, REGENERATE)
}

fn schema_errors(doc: &Value) -> String {
    common::schema_errors(SCHEMA_PATH, REGENERATE, doc)
}

/// A full accept queue: listen(2) with three connected clients (Accept Q 3 > Backlog 2).
struct FullQueue {
    addr: SocketAddr,
    _listener: Socket,
    _clients: Vec<TcpStream>,
}

fn full_queue() -> anyhow::Result<FullQueue> {
    let (listener, addr) = listen("127.0.0.1:0", 2)?;
    let clients = connect_n(addr, 3)?;
    wait_for_accept_queue(addr.port(), 3, Duration::from_secs(10))?;
    Ok(FullQueue {
        addr,
        _listener: listener,
        _clients: clients,
    })
}

/// Runs `sockq args…` to completion (at most `timeout`): (status, stdout, stderr).
fn run_for(
    args: &[&str],
    timeout: Duration,
) -> anyhow::Result<(std::process::ExitStatus, String, String)> {
    let mut child = sockq_command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let status = wait_with_timeout(&mut child, timeout)?;
    let (out, err) = drain(&mut child)?;
    Ok((status, out, err))
}

fn drain(child: &mut Child) -> anyhow::Result<(String, String)> {
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut o) = child.stdout.take() {
        o.read_to_string(&mut out)?;
    }
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut err)?;
    }
    Ok((out, err))
}

fn listener_of<'a>(tick: &'a Value, endpoint: &str) -> &'a Value {
    tick["listeners"]
        .as_array()
        .expect("listeners array")
        .iter()
        .find(|l| l["endpoint"] == endpoint)
        .unwrap_or_else(|| panic!("{endpoint} not in {}", tick["listeners"]))
}

#[test]
fn tick_schema_matches_the_checked_in_file() {
    assert_eq!(
        sockq::export::json::tick_schema(),
        checked_in_schema(),
        "the tick schema changed; {REGENERATE}"
    );
    let (status, out, err) = run_for(&["schema", "tick"], Duration::from_secs(10)).unwrap();
    assert!(status.success(), "{err}");
    let printed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(printed, checked_in_schema());
    assert_eq!(
        printed["properties"]["schema_version"]["type"], "integer",
        "{printed:#}"
    );
}

#[test]
fn watch_json_lines_follow_the_schema_and_carry_the_listener() {
    in_netns("watch_json", || {
        let scene = full_queue()?;
        let ep = scene.addr.to_string();
        let (status, out, err) = run_for(
            &["watch", "--json", "--count", "3", "--interval", "200ms"],
            Duration::from_secs(15),
        )?;
        assert!(status.success(), "status {status:?}, stderr: {err}");
        assert_eq!(err, "", "stderr");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        // Seconds the queue has been seen full so far: the sum of the intervals.
        let mut full_for = 0.0;
        let mut prev_seq = 0;
        for (i, line) in lines.iter().enumerate() {
            let tick: Value = serde_json::from_str(line)?;
            let errors = schema_errors(&tick);
            assert!(
                errors.is_empty(),
                "line {} does not follow {SCHEMA_PATH}:\n{errors}",
                i + 1
            );
            assert_eq!(tick["schema_version"], 1);
            // Sequence numbers rise; a sample that came late (over 1.5 intervals, as on a
            // loaded machine) counts the ticks it missed and says so in gap_before.
            let seq = tick["seq"].as_u64().expect("seq");
            if i == 0 {
                assert_eq!(seq, 1);
            }
            assert!(seq > prev_seq, "line {}: seq {seq} after {prev_seq}", i + 1);
            assert_eq!(
                tick["gap_before"],
                seq > prev_seq + 1,
                "line {}: seq {seq} after {prev_seq}",
                i + 1
            );
            prev_seq = seq;

            let l = listener_of(&tick, &ep);
            assert_eq!(l["depth"], 3);
            assert_eq!(l["backlog"], 2);
            assert_eq!(l["depth_high"], 3);
            assert_eq!(l["depth_low"], 3);
            assert_eq!(l["gone"], false);
            assert_eq!(l["key"]["inode"].as_u64().map(|i| i > 0), Some(true));
            let snap_l = tick["snapshot"]["tcp_listeners"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["port"] == scene.addr.port())
                .expect("listener in the snapshot");
            assert_eq!(snap_l["accept_queue"], 3);
            assert_eq!(snap_l["backlog"], 2);
            assert_eq!(snap_l["inode"], l["key"]["inode"]);

            let f = tick["findings"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["rule"] == "accept_queue_full")
                .unwrap_or_else(|| panic!("no accept_queue_full in {}", tick["findings"]));
            assert_eq!(f["severity"], "critical");
            assert_eq!(f["listener"], ep.as_str());
            assert_eq!(f["evidence"]["depth"], 3.0);
            assert_eq!(f["evidence"]["backlog"], 2.0);
            assert_eq!(f["evidence"]["peak"], 3.0);

            if i == 0 {
                assert_eq!(tick["interval_s"], Value::Null);
                assert_eq!(l["drops_per_s"], Value::Null);
                assert_eq!(tick["counter_rates"]["ListenOverflows"], Value::Null);
                assert_eq!(l["high_fill_s"], 0.0);
            } else {
                // How long an interval took is the machine's business; that the numbers
                // add up is sockq's.
                let dt = tick["interval_s"].as_f64().expect("interval_s");
                assert!(dt.is_finite() && dt > 0.0, "interval_s {dt}");
                full_for += dt;
                assert_eq!(l["drops_per_s"], 0.0);
                assert_eq!(tick["counter_rates"]["ListenOverflows"], 0.0);
                let high = l["high_fill_s"].as_f64().unwrap();
                assert!(
                    high > 0.0 && high <= full_for + 1e-6,
                    "high_fill_s {high} after {i} intervals of {full_for} s in all"
                );
                assert_eq!(l["undrained_s"], l["high_fill_s"]);
            }
            assert_eq!(tick["dropping_listeners"], Value::Array(vec![]));
        }
        Ok(())
    });
}

#[test]
fn watch_human_prints_the_header_one_line_per_tick_and_new_findings_once() {
    in_netns("watch_human", || {
        let scene = full_queue()?;
        let ep = scene.addr.to_string();
        let (status, out, err) = run_for(
            &["watch", "--count", "2", "--interval", "200ms"],
            Duration::from_secs(15),
        )?;
        assert!(status.success(), "status {status:?}, stderr: {err}");
        assert_eq!(err, "", "stderr");
        // The header, then two tick lines, each followed by its new findings: the CRIT of the
        // full queue after the first, once. Findings that depend on time passing (the oldest
        // wait for accept(), a poll slowed by the CPU budget on a loaded machine) may follow
        // either tick.
        let all: Vec<&str> = out.lines().collect();
        assert_eq!(all[0], sockq::export::watch::HEADER, "{out}");
        let ticks: Vec<usize> = (1..all.len())
            .filter(|&i| !all[i].starts_with("  "))
            .collect();
        assert_eq!(ticks.len(), 2, "two tick lines:\n{out}");
        assert_eq!(ticks[0], 1, "the first tick right after the header:\n{out}");
        let crit = format!(
            "  CRIT The accept queue of {ep} is full (3/2): the kernel drops new connections to it."
        );
        assert_eq!(
            all.iter().filter(|l| l.starts_with(&crit)).count(),
            1,
            "the CRIT once:\n{out}"
        );
        for l in all.iter().skip(1).filter(|l| l.starts_with("  ")) {
            assert!(
                ["  CRIT ", "  WARN ", "  info "]
                    .iter()
                    .any(|p| l.starts_with(p)),
                "a finding line: {l:?}"
            );
        }
        let lines = [all[0], all[1], all[2], all[ticks[1]]];

        let fields =
            |line: &str| -> Vec<String> { line.split_whitespace().map(str::to_string).collect() };
        let first = fields(lines[1]);
        let time = &first[0];
        assert!(
            time.len() == 8 && time.chars().all(|c| c.is_ascii_digit() || c == ':'),
            "time column {time:?} in {:?}",
            lines[1]
        );
        // LISTEN FULL OVFL/s DROP/s COOKIE/s SYNDROP/s IN-SVC OLDEST-WAIT BUSIEST, then possibly
        // the CPU-budget
        // note: the SYN-RECV dump walks the kernel's global hash, so SYN-RECV requests held in
        // other namespaces of the host (other tests) can make the sampler space it out.
        let budget_note = |line: &str| {
            line.split("  [").skip(1).all(|note| {
                note.starts_with("CPU budget 2.0%: SYN-RECV ")
                    || note.starts_with("gap: samples missed before this one]")
            })
        };
        assert_eq!(
            first[1..7],
            ["1", "1", "-", "-", "-", "-"],
            "{:?}",
            lines[1]
        );
        // Nothing accepted; the three connections wait for accept().
        assert_eq!(first[7], "0", "{:?}", lines[1]);
        assert!(first[8].starts_with("accept:"), "{:?}", lines[1]);
        assert_eq!(first[9..11], [ep.as_str(), "3/2"], "{:?}", lines[1]);
        assert!(budget_note(lines[1]), "{:?}", lines[1]);
        assert!(
            lines[2].starts_with(&format!(
                "  CRIT The accept queue of {ep} is full (3/2): the kernel drops new connections to it."
            )),
            "{:?}",
            lines[2]
        );
        assert!(lines[2].contains(" Next: "), "{:?}", lines[2]);
        let second = fields(lines[3]);
        assert_eq!(
            second[1..8],
            ["1", "1", "0.0", "0.0", "0.0", "0.0", "0"],
            "{:?}",
            lines[3]
        );
        assert!(second[8].starts_with("accept:"), "{:?}", lines[3]);
        assert_eq!(second[9..11], [ep.as_str(), "3/2"], "{:?}", lines[3]);
        assert!(budget_note(lines[3]), "{:?}", lines[3]);
        Ok(())
    });
}

/// Starts `sockq watch --interval 200ms` and waits for its first tick line.
fn running_watch() -> anyhow::Result<(Child, BufReader<std::process::ChildStdout>)> {
    let mut child = sockq_command(&["watch", "--interval", "200ms"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut header = String::new();
    out.read_line(&mut header)?;
    assert_eq!(header.trim_end(), sockq::export::watch::HEADER);
    let mut first = String::new();
    out.read_line(&mut first)?;
    assert!(!first.is_empty(), "no tick line");
    Ok((child, out))
}

fn stops_cleanly_on(signal: nix::sys::signal::Signal) {
    let (mut child, mut out) = running_watch().unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let sent = Instant::now();
    nix::sys::signal::kill(pid, signal).unwrap();
    // How fast is not asserted (a loaded machine); that it stops, and cleanly, is.
    let status = wait_with_timeout(&mut child, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("not stopped {:?} after {signal}: {e:#}", sent.elapsed()));
    assert_eq!(status.code(), Some(0), "{status:?} after {signal}");
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let (_, err) = drain(&mut child).unwrap();
    assert_eq!(err, "", "stderr after {signal}");
    assert!(!rest.contains("error"), "stdout after {signal}: {rest:?}");
    eprintln!("stopped {:?} after {signal}", sent.elapsed());
}

#[test]
fn watch_stops_on_sigint_with_status_0() {
    stops_cleanly_on(nix::sys::signal::Signal::SIGINT);
}

#[test]
fn watch_stops_on_sigterm_with_status_0() {
    stops_cleanly_on(nix::sys::signal::Signal::SIGTERM);
}

#[test]
fn watch_exits_quietly_when_stdout_closes() {
    for json in [true, false] {
        let mut args = vec!["watch", "--interval", "200ms"];
        if json {
            args.push("--json");
        }
        let mut child = sockq_command(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        {
            let mut out = BufReader::new(child.stdout.take().unwrap());
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            assert!(!line.is_empty());
            if json {
                let v: Value = serde_json::from_str(&line).unwrap();
                assert_eq!(v["seq"], 1);
            }
        } // the reading end is closed here, like `sockq watch | head -1`
        let status = wait_with_timeout(&mut child, Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("json={json}: {e:#}"));
        let (_, err) = drain(&mut child).unwrap();
        assert_eq!(status.code(), Some(0), "json={json}: {status:?}, {err}");
        assert_eq!(err, "", "json={json}: stderr");
    }
}

#[test]
fn watch_rejects_bad_values_with_exit_2_naming_the_value() {
    for (args, value, flag) in [
        (&["watch", "--interval", "5ms"][..], "5ms", "--interval"),
        (&["watch", "--cpu-budget", "0"][..], "'0'", "--cpu-budget"),
        (&["watch", "--count", "0"][..], "'0'", "--count"),
    ] {
        let (status, out, err) = run_for(args, Duration::from_secs(10)).unwrap();
        assert_eq!(status.code(), Some(2), "{args:?}: {status:?} {err}");
        assert!(
            err.contains(value) && err.contains(flag),
            "{args:?}: stderr should name {value} and {flag}: {err}"
        );
        assert_eq!(out, "", "{args:?}: stdout");
    }
    // The same value from the environment is rejected the same way.
    let out = sockq_command(&["watch"])
        .env("SOCKQ_INTERVAL", "5ms")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("5ms") && err.contains("100ms"), "{err}");
}

/// `sockq watch --json | less`: the reader stops reading for a while (the pipe fills, then the
/// sampler's channel), then goes away. sockq must still exit, quietly and with status 0.
#[test]
fn watch_exits_when_a_stalled_pipe_closes() {
    let mut child = sockq_command(&["watch", "--json", "--interval", "100ms"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let tick: Value = serde_json::from_str(&line).unwrap();
    let size = line.len();
    // Enough ticks to fill a 64 KiB pipe and then the sampler's channel (4 ticks).
    let ticks_to_stall = 65_536 / size + 6;
    std::thread::sleep(Duration::from_millis(100 * ticks_to_stall as u64 + 1000));
    drop(out);
    let status = wait_with_timeout(&mut child, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e:#} (lines of {size} B, seq {})", tick["seq"]));
    let (_, err) = drain(&mut child).unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}: {err}");
    assert_eq!(err, "");
}
