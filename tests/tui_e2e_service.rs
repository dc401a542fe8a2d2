//! End-to-end, issue 14: the real `sockq` dashboard in an 80x24 tmux pane (an SSH user) shows
//! the service side of a live server that accepts connections and never reads them — the
//! case where the accept queue is empty and sockq used to say "all quiet". The numbers on
//! screen are compared with `ss -tn` (Recv-Q) read at the same moment: the table's IN SERVICE
//! and OLDEST WAIT, the detail's unread requests, the pipeline's reading line.
//!
//! Its own tmux server on a private socket, started from the namespace thread, so the pane and
//! sockq live in the test's private network namespace.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and tools may panic on failure

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::*;

/// Generous: a loaded 2-core CI machine may be slow to start the debug binary.
const STARTUP: Duration = Duration::from_secs(15);
/// For the screen to react to a key or a new sample.
const REACT: Duration = Duration::from_secs(10);

/// Accepted connections, and the bytes each client sends that the server never reads.
const N: usize = 7;
const M: usize = 1000;

/// `ss -tnH state established sport = :PORT`: (Recv-Q, Send-Q) per socket.
fn ss_queues(port: u16) -> anyhow::Result<Vec<(u64, u64)>> {
    let sport = format!(":{port}");
    let out = run_ok(
        "ss",
        &["-tnH", "state", "established", "sport", "=", &sport],
    )?;
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            Ok((cols[0].parse()?, cols[1].parse()?))
        })
        .collect()
}

/// The text of `row` under the column titled `title` in `header` (same character offsets),
/// trimmed: the column runs to the next title or the line's end.
fn column(header: &str, row: &str, title: &str) -> String {
    let h: Vec<char> = header.chars().collect();
    let r: Vec<char> = row.chars().collect();
    let t: Vec<char> = title.chars().collect();
    let start = (0..h.len())
        .find(|&i| h[i..].starts_with(&t))
        .unwrap_or_else(|| panic!("no {title} in {header}"));
    // The next title starts after a space following this one.
    let end = (start + t.len()..h.len())
        .find(|&i| h[i - 1] == ' ' && h[i] != ' ')
        .unwrap_or(h.len());
    r.get(start..end.min(r.len()))
        .map(|c| c.iter().collect::<String>().trim().to_string())
        .unwrap_or_default()
}

/// 1000 × 7 = 7000 bytes the way the detail writes them.
fn kib(bytes: u64) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

#[test]
fn an_80x24_dashboard_shows_connections_accepted_and_never_read_as_ss_does() {
    in_netns("tui_e2e_service", || {
        let (l, addr) = listen("127.0.0.1:0", 64)?;
        let port = addr.port();
        let mut clients = connect_n(addr, N)?;
        let accepted: Vec<_> = (0..N)
            .map(|_| l.accept().map(|(s, _)| s))
            .collect::<Result<_, _>>()?;
        for c in &mut clients {
            c.write_all(&[b'r'; M])?;
        }
        // The kernel holds the bytes unread (ss says so) before sockq starts.
        let start = Instant::now();
        while ss_queues(port)?.iter().map(|q| q.0).sum::<u64>() < (N * M) as u64 {
            anyhow::ensure!(start.elapsed() < REACT, "ss: {:?}", ss_queues(port)?);
            std::thread::sleep(Duration::from_millis(20));
        }
        let command = format!("'{}'; echo EXITED rc=$?; sleep 60", sockq_bin());
        let tmux = common::tmux::Tmux::start(
            format!("sockq-test-{}-svc", std::process::id()),
            "svc",
            (80, 24),
            &command,
            &["RUST_BACKTRACE", "RUST_LIB_BACKTRACE"],
        )?;
        let endpoint = format!("127.0.0.1:{port}");
        // The oldest unread age grows past a second once sockq has seen the bytes sit.
        let screen = tmux.wait_for("the row with its unread wait", STARTUP, |s| {
            s.lines()
                .any(|l| l.contains(&endpoint) && l.contains("s unread"))
        })?;
        // ss at the same moment: the numbers are still (nobody reads or writes).
        let ss = ss_queues(port)?;
        let header = screen
            .lines()
            .find(|l| l.contains("ADDRESS"))
            .unwrap_or_else(|| panic!("no header:\n{screen}"));
        let row = screen.lines().find(|l| l.contains(&endpoint)).unwrap();
        // Every established child is accepted (none waits: the queue is empty), and each
        // holds M unread bytes.
        assert_eq!(ss.len(), N, "ss: {ss:?}");
        assert!(ss.iter().all(|q| q.0 == M as u64), "ss: {ss:?}");
        assert_eq!(
            column(header, row, "IN SERVICE"),
            ss.len().to_string(),
            "IN SERVICE against ss's established sockets:\n{screen}"
        );
        let wait = column(header, row, "OLDEST WAIT");
        assert!(wait.ends_with("s unread"), "{wait:?}\n{screen}");
        assert!(row.contains(" 0/64 "), "the accept queue is empty: {row}");
        // The finding says what ss shows.
        tmux.wait_for("the not-reading finding", REACT, |s| {
            s.contains("accepted connection") && s.contains("unread requests")
        })?;

        // The detail: unread connections and bytes as ss's Recv-Q.
        tmux.keys(&["Enter"])?;
        let unread_sum: u64 = ss.iter().map(|q| q.0).sum();
        let want = format!(
            "unread requests {} conns {}",
            ss.iter().filter(|q| q.0 > 0).count(),
            kib(unread_sum)
        );
        let screen = tmux.wait_for(&want, REACT, |s| s.contains(&want))?;
        assert!(
            screen.contains(&format!("in service (accepted, open) {N}")),
            "{screen}"
        );
        assert!(screen.contains("waiting for accept() 0"), "{screen}");
        assert!(screen.contains("unsent responses none"), "{screen}");

        // The pipeline: the reading line of the In service box.
        tmux.keys(&["p"])?;
        let want = format!("reading: {N} unread");
        tmux.wait_for(&want, REACT, |s| s.contains(&want))?;

        tmux.keys(&["q"])?;
        tmux.wait_for("sockq to quit", REACT, |s| s.contains("EXITED rc=0"))?;
        drop((accepted, clients, l));
        Ok(())
    });
}
