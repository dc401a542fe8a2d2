//! End-to-end tests of `sockq snapshot`: the real binary, run in a private network namespace
//! (spawned from the thread that made it, so the child inherits it), against real sockets.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and tools may panic on failure

mod common;

use std::io::BufRead;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;
use socket2::Socket;

const SCHEMA_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/docs/schema/snapshot.schema.json"
);

const REGENERATE: &str = "regenerate it with `cargo run -q -- schema > \
                          docs/schema/snapshot.schema.json`, review the diff, and bump \
                          SCHEMA_VERSION if the change is incompatible";

fn checked_in_schema() -> Value {
    common::checked_in_schema(SCHEMA_PATH, REGENERATE)
}

fn schema_errors(doc: &Value) -> String {
    common::schema_errors(SCHEMA_PATH, REGENERATE, doc)
}

/// The scene of most tests: a full accept queue (backlog 2, three connected clients, so
/// Accept Q 3 > Backlog 2), an idle second TCP listener, and a UNIX listener with one pending
/// connection. Everything lives in the calling thread's namespace and is held by this process.
struct Scene {
    /// The full listener, on 127.0.0.1.
    full: SocketAddr,
    /// The idle listener, on 127.0.0.1.
    idle: SocketAddr,
    /// Path of the UNIX listener (backlog 5, one pending connection).
    unix_path: PathBuf,
    _sockets: Vec<Socket>,
    _clients: Vec<TcpStream>,
    _unix_client: UnixStream,
    _dir: TempDir,
}

fn scene(tag: &str) -> anyhow::Result<Scene> {
    let (full_sock, full) = listen("127.0.0.1:0", 2)?;
    let clients = connect_n(full, 3)?;
    let (idle_sock, idle) = listen("127.0.0.1:0", 16)?;
    let dir = TempDir::new(tag)?;
    let unix_path = dir.path().join("scene.sock");
    let unix_sock = unix_listen(&unix_path, 5)?;
    let unix_client = UnixStream::connect(&unix_path)?;
    wait_for_accept_queue(full.port(), 3, Duration::from_secs(10))?;
    Ok(Scene {
        full,
        idle,
        unix_path,
        _sockets: vec![full_sock, idle_sock, unix_sock],
        _clients: clients,
        _unix_client: unix_client,
        _dir: dir,
    })
}

fn stdout_of(out: &Output, what: &str) -> anyhow::Result<String> {
    anyhow::ensure!(
        out.status.success(),
        "`{what}` failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout.clone())?)
}

/// `sockq snapshot ARGS` in the calling thread's namespace: its stdout, failing on non-zero.
fn snapshot_text(args: &[&str]) -> anyhow::Result<String> {
    let mut all = vec!["snapshot"];
    all.extend_from_slice(args);
    stdout_of(&run_sockq(&all)?, &format!("sockq {}", all.join(" ")))
}

fn tcp_listener(doc: &Value, addr: SocketAddr) -> anyhow::Result<&Value> {
    doc["tcp_listeners"]
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("no tcp_listeners array in {doc:#}"))?
        .iter()
        .find(|l| l["port"] == addr.port() && l["address"].as_str() == Some(&addr.ip().to_string()))
        .ok_or_else(|| anyhow::anyhow!("no listener {addr} in {:#}", doc["tcp_listeners"]))
}

fn unix_listener<'a>(doc: &'a Value, path: &Path) -> anyhow::Result<&'a Value> {
    doc["unix_listeners"]
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("no unix_listeners array"))?
        .iter()
        .find(|l| l["name"].as_str() == Some(&*path.to_string_lossy()))
        .ok_or_else(|| anyhow::anyhow!("no UNIX listener {path:?} in {:#}", doc["unix_listeners"]))
}

/// The table row of `addr`, split on whitespace.
fn row(table: &str, addr: SocketAddr) -> Option<Vec<&str>> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.first() == Some(&addr.to_string().as_str()))
}

/// JSON pointers where `a` and `b` differ (at most `max`).
fn differences(a: &Value, b: &Value, at: &str, max: usize, out: &mut Vec<String>) {
    if out.len() >= max || a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                match (x.get(k), y.get(k)) {
                    (Some(va), Some(vb)) => differences(va, vb, &format!("{at}/{k}"), max, out),
                    _ if out.len() < max => out.push(format!("{at}/{k}")),
                    _ => {}
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                differences(va, vb, &format!("{at}/{i}"), max, out);
            }
        }
        _ => out.push(if at.is_empty() { "/".into() } else { at.into() }),
    }
}

#[test]
fn checked_in_schema_matches_the_snapshot_types() {
    let generated = sockq::export::json::snapshot_schema();
    let checked_in = checked_in_schema();
    let mut diff = Vec::new();
    differences(&generated, &checked_in, "", 10, &mut diff);
    assert!(
        generated == checked_in,
        "docs/schema/snapshot.schema.json is out of date with sockq::model::Snapshot \
         (differences at {}): {REGENERATE}",
        diff.join(", ")
    );
}

#[test]
fn json_snapshot_validates_against_the_checked_in_schema_with_exact_numbers() {
    in_netns("cli_json_schema", || {
        let sc = scene("cli-json")?;
        let text = snapshot_text(&["--json"])?;
        let doc: Value = serde_json::from_str(&text)?;
        let errors = schema_errors(&doc);
        assert!(
            errors.is_empty(),
            "`sockq snapshot --json` does not match {SCHEMA_PATH}:\n{errors}{text}"
        );

        let l = tcp_listener(&doc, sc.full)?;
        assert_eq!(l["family"], "ipv4");
        assert_eq!((&l["accept_queue"], &l["backlog"]), (&3.into(), &2.into()));
        assert!(l["drops"].is_u64(), "drops present: {l:#}");
        let me = std::process::id();
        assert_eq!(l["owners"]["status"], "known", "{l:#}");
        let pids: Vec<&Value> = l["owners"]["processes"]
            .as_array()
            .map(|p| p.iter().map(|p| &p["pid"]).collect())
            .unwrap_or_default();
        assert_eq!(pids, [&Value::from(me)], "the test process holds it: {l:#}");

        let idle = tcp_listener(&doc, sc.idle)?;
        assert_eq!(
            (&idle["accept_queue"], &idle["backlog"]),
            (&0.into(), &16.into())
        );

        let u = unix_listener(&doc, &sc.unix_path)?;
        assert_eq!((&u["accept_queue"], &u["backlog"]), (&1.into(), &5.into()));
        assert_eq!(u["owners"]["processes"][0]["pid"], me, "{u:#}");
        assert_eq!(
            doc["blind_spots"],
            Value::Array(vec![]),
            "root sees everything"
        );

        // The validator is not vacuous: a wrongly typed field is caught.
        let mut bad = doc.clone();
        bad["tcp_listeners"][0]["accept_queue"] = "3".into();
        assert!(
            !schema_errors(&bad).is_empty(),
            "a string queue depth must be refused"
        );
        Ok(())
    });
}

#[test]
fn table_shows_the_full_queue_and_filters_by_port_process_and_unix() {
    in_netns("cli_table", || {
        let sc = scene("cli-table")?;
        let me = std::process::id();
        let table = snapshot_text(&[])?;
        let full = row(&table, sc.full)
            .ok_or_else(|| anyhow::anyhow!("no row for {} in\n{table}", sc.full))?;
        // ADDRESS PROCESS STATE CPU ACCEPT-Q BACKLOG FILL(2 words when full) SYN-RECV DROPS FDS
        assert!(full[1].ends_with(&format!("[{me}]")), "owner: {full:?}");
        // This test binary's main thread, and its CPU share over the snapshot's 0.25 s.
        assert!(
            full[2].len() == 1 && full[2].chars().all(|c| c.is_ascii_alphabetic()),
            "state: {full:?}"
        );
        assert!(
            full[3]
                .strip_suffix('%')
                .is_some_and(|n| n.parse::<u32>().is_ok()),
            "cpu: {full:?}"
        );
        assert_eq!(full[4..8], ["3", "2", "FULL", "150%"], "{table}");
        assert!(row(&table, sc.idle).is_some(), "{table}");
        assert!(table.contains("UNIX LISTENERS"), "{table}");
        assert!(
            table.contains(&*sc.unix_path.to_string_lossy()),
            "UNIX listener listed:\n{table}"
        );

        let port = sc.full.port().to_string();
        let only = snapshot_text(&["--port", &port])?;
        assert!(row(&only, sc.full).is_some(), "{only}");
        assert!(
            row(&only, sc.idle).is_none(),
            "--port {port} keeps one row:\n{only}"
        );

        let none = snapshot_text(&["--port", "1"])?;
        assert!(none.contains("no TCP listener matches --port 1"), "{none}");
        assert!(row(&none, sc.full).is_none(), "{none}");

        let mine = snapshot_text(&["--process", &me.to_string()])?;
        assert!(row(&mine, sc.full).is_some(), "{mine}");
        assert!(row(&mine, sc.idle).is_some(), "{mine}");
        let other = snapshot_text(&["--process", "sockq-no-such-process"])?;
        assert!(row(&other, sc.full).is_none(), "{other}");
        assert!(
            other.contains("no TCP listener matches --process sockq-no-such-process"),
            "{other}"
        );

        let no_unix = snapshot_text(&["--no-unix"])?;
        assert!(row(&no_unix, sc.full).is_some(), "{no_unix}");
        assert!(!no_unix.contains("UNIX LISTENERS"), "{no_unix}");
        assert!(
            !no_unix.contains(&*sc.unix_path.to_string_lossy()),
            "{no_unix}"
        );
        Ok(())
    });
}

/// The binary, or a copy of it in `dir` (mode 0755), such that any user can run it.
/// The holder (this test process) of the listener `addr` in `doc`.
fn own_holder(doc: &Value, addr: SocketAddr) -> anyhow::Result<Value> {
    let me = std::process::id();
    let l = tcp_listener(doc, addr)?;
    l["owners"]["processes"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["pid"] == me))
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("pid {me} not among the owners: {l:#}"))
}

#[test]
fn cpu_window_0_leaves_the_cpu_share_unknown_and_the_default_measures_it() {
    in_netns("cli_cpu_window", || {
        let sc = scene("cli-cpu-window")?;
        // The default window: the holder was read twice, its share is a number (what this
        // test process used in the window, perhaps 0).
        let doc: Value = serde_json::from_str(&snapshot_text(&["--json"])?)?;
        let p = own_holder(&doc, sc.full)?;
        assert!(p["cpu_percent"].is_f64(), "a CPU share: {p:#}");
        assert!(p["state"].is_string(), "{p:#}");

        // No window: read once, so no share — null in JSON (unknown, not 0), `?` in the
        // table; the rest of what a first read gives is there.
        for (args, env) in [
            (&["--json", "--cpu-window", "0"][..], None),
            (&["--json"][..], Some("0")),
            (&["--json", "--cpu-window", "0s"][..], None),
        ] {
            let mut cmd = sockq_command(&[&["snapshot"][..], args].concat());
            if let Some(v) = env {
                cmd.env("SOCKQ_CPU_WINDOW", v);
            }
            let out = cmd.stdin(Stdio::null()).output()?;
            let doc: Value = serde_json::from_str(&stdout_of(&out, "snapshot")?)?;
            let p = own_holder(&doc, sc.full)?;
            assert!(p["cpu_percent"].is_null(), "{args:?} {env:?}: {p:#}");
            assert!(p["state"].is_string() && p["threads"].is_u64(), "{p:#}");
            assert!(p["fds_open"].is_u64(), "{p:#}");
            assert_eq!(schema_errors(&doc), "", "{args:?}");
        }
        let table = snapshot_text(&["--cpu-window", "0"])?;
        let full = row(&table, sc.full)
            .ok_or_else(|| anyhow::anyhow!("no row for {} in\n{table}", sc.full))?;
        // ADDRESS PROCESS STATE CPU ...
        assert_eq!(full[3], "?", "CPU unknown: {full:?}");
        Ok(())
    });
}

fn world_runnable_bin(dir: &TempDir) -> anyhow::Result<PathBuf> {
    let bin = std::fs::canonicalize(sockq_bin())?;
    let file_ok = std::fs::metadata(&bin)?.permissions().mode() & 0o005 == 0o005;
    let dirs_ok = bin
        .ancestors()
        .skip(1)
        .all(|d| std::fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o001 != 0));
    if file_ok && dirs_ok {
        return Ok(bin);
    }
    let copy = dir.path().join("sockq");
    std::fs::copy(&bin, &copy)?;
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755))?;
    Ok(copy)
}

#[test]
fn unprivileged_snapshot_shows_exact_queues_and_says_why_owners_are_unknown() {
    in_netns("cli_unprivileged", || {
        let nobody = nix::unistd::User::from_name("nobody")?
            .ok_or_else(|| anyhow::anyhow!("no user `nobody`"))?;
        let group = ["nogroup", "nobody"]
            .into_iter()
            .find(|g| nix::unistd::Group::from_name(g).is_ok_and(|g| g.is_some()))
            .ok_or_else(|| anyhow::anyhow!("no group `nogroup` or `nobody`"))?;
        let sc = scene("cli-nobody")?;
        let bin_dir = TempDir::new("cli-bin")?;
        let bin = world_runnable_bin(&bin_dir)?;
        let out = std::process::Command::new("setpriv")
            .arg("--reuid=nobody")
            .arg(format!("--regid={group}"))
            .arg("--clear-groups")
            .arg(&bin)
            .args(["snapshot", "--json"])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdin(Stdio::null())
            .output()?;
        let text = stdout_of(&out, "setpriv --reuid=nobody sockq snapshot --json")?;
        let doc: Value = serde_json::from_str(&text)?;
        let errors = schema_errors(&doc);
        assert!(errors.is_empty(), "schema:\n{errors}{text}");

        let l = tcp_listener(&doc, sc.full)?;
        assert_eq!((&l["accept_queue"], &l["backlog"]), (&3.into(), &2.into()));
        assert!(l["drops"].is_u64(), "drops present: {l:#}");
        let owners = l["owners"]
            .as_object()
            .ok_or_else(|| anyhow::anyhow!("owners: {l:#}"))?;
        assert_eq!(owners.len(), 2, "exactly status and reason: {owners:?}");
        assert_eq!(owners["status"], "unknown", "{owners:?}");
        let reason = owners["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("uid 0") && reason.contains(&format!("uid {}", nobody.uid)),
            "names the socket's uid and sockq's: {reason:?}"
        );
        assert!(reason.contains("root"), "says to run as root: {reason:?}");

        let u = unix_listener(&doc, &sc.unix_path)?;
        assert_eq!((&u["accept_queue"], &u["backlog"]), (&1.into(), &5.into()));
        assert_eq!(u["owners"]["status"], "unknown", "{u:#}");
        Ok(())
    });
}

/// `sockq ARGS`: (exit code, stderr). Not live: nothing is read from the kernel.
fn fails(args: &[&str]) -> (Option<i32>, String) {
    let out = run_sockq(args).expect("spawn sockq");
    assert!(out.stdout.is_empty(), "sockq {args:?} printed to stdout");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_namespaces_exit_3_and_name_the_culprit() {
    let (code, err) = fails(&["snapshot", "--netns", "sockq-no-such-ns"]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("sockq-no-such-ns"), "{err}");

    let (code, err) = fails(&["snapshot", "--netns-pid", "99999999"]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("99999999"), "{err}");

    let (code, err) = fails(&["snapshot", "--netns", "a/b"]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("invalid namespace name"), "{err}");
    assert!(err.contains("a/b"), "{err}");
}

#[test]
fn bad_usage_exits_2_and_names_the_value() {
    let (code, err) = fails(&["snapshot", "--port", "abc"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("abc"), "{err}");

    let (code, err) = fails(&["snapshot", "--port", "70000"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("70000"), "{err}");

    let (code, err) = fails(&["snapshot", "--netns", "x", "--netns-pid", "1"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--netns") && err.contains("--netns-pid"),
        "names both flags: {err}"
    );
}

/// Spawns `sockq ARGS` writing into a pipe of one page, reads the first line, closes the pipe
/// and waits: `sockq … | head -1`. Returns (first line, exit status, stderr).
fn head_1(args: &[&str]) -> anyhow::Result<(String, std::process::ExitStatus, String)> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    // Close-on-exec, so that no child spawned meanwhile by another test keeps the read end.
    let (read_end, write_end) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let pipe_size = fcntl(&write_end, FcntlArg::F_SETPIPE_SZ(4096))?;
    let full = run_sockq(args)?;
    anyhow::ensure!(
        full.stdout.len() > 2 * usize::try_from(pipe_size)?,
        "output of {} bytes fits in the pipe ({pipe_size}): the test would not see EPIPE",
        full.stdout.len()
    );

    let mut child = sockq_command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(write_end))
        .stderr(Stdio::piped())
        .spawn()?;
    let mut first = String::new();
    {
        let mut reader = std::io::BufReader::with_capacity(128, std::fs::File::from(read_end));
        reader.read_line(&mut first)?;
    } // the read end is closed here: sockq's next write fails with EPIPE
    let status = wait_with_timeout(&mut child, Duration::from_secs(60))?;
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        std::io::Read::read_to_string(&mut e, &mut err)?;
    }
    Ok((first, status, err))
}

#[test]
fn stdout_closed_early_is_not_an_error() {
    in_netns("cli_broken_pipe", || {
        let _listeners: Vec<Socket> = (0..300)
            .map(|_| listen("127.0.0.1:0", 8).map(|(s, _)| s))
            .collect::<Result<_, _>>()?;
        for args in [&["snapshot"][..], &["snapshot", "--json"]] {
            let (first, status, err) = head_1(args)?;
            let expected = if args.len() == 1 {
                "sockq snapshot"
            } else {
                "{"
            };
            assert!(
                first.starts_with(expected),
                "{args:?}: first line {first:?}"
            );
            assert!(err.is_empty(), "{args:?}: stderr {err:?}");
            assert_eq!(status.code(), Some(0), "{args:?}: {status}");
        }
        Ok(())
    });
}
