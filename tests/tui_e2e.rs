//! End-to-end: the real `sockq` binary drawing its dashboard in tmux, against a private network
//! namespace holding a full accept queue. Keys go in with `send-keys`, the screen comes back with
//! `capture-pane`. Checks that the terminal is restored (main screen, cursor visible) on every
//! exit path: `q`, a panic inside the draw loop, SIGHUP and SIGTERM; and that sockq leaves when
//! its terminal goes away (SSH hang-up) instead of spinning.
//!
//! Each test runs its own tmux server on a private socket (`tmux -L sockq-test-<pid>-<tag>`),
//! killed when the test ends. The server is started from the namespace thread, so the pane and
//! sockq live in that namespace.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and tools may panic on failure

mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

/// Generous: a loaded 2-core CI machine may be slow to start the debug binary.
const STARTUP: Duration = Duration::from_secs(10);
/// For the screen to react to a key.
const REACT: Duration = Duration::from_secs(5);

/// The dashboard's tmux server: one 100x30 session running a shell command; on drop, a sockq
/// still running in it is killed first, then the server.
struct Tmux(common::tmux::Tmux);

impl std::ops::Deref for Tmux {
    type Target = common::tmux::Tmux;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Tmux {
    /// Starts `command` (run by /bin/sh) in a new detached 100x30 session, without the test's
    /// backtrace variables (a backtrace would push the panic message off a 30-line pane).
    fn start(tag: &str, command: &str) -> anyhow::Result<Self> {
        Self::start_sized(tag, command, (100, 30))
    }

    /// [`Tmux::start`] in a pane of `size` (columns, rows).
    fn start_sized(tag: &str, command: &str, size: (u16, u16)) -> anyhow::Result<Self> {
        common::tmux::Tmux::start(
            format!("sockq-test-{}-{tag}", std::process::id()),
            "e2e",
            size,
            command,
            &["RUST_BACKTRACE", "RUST_LIB_BACKTRACE"],
        )
        .map(Tmux)
    }

    fn wait_text(&self, text: &str, timeout: Duration) -> anyhow::Result<String> {
        self.wait_for(&format!("`{text}`"), timeout, |s| s.contains(text))
    }

    /// `alternate_on cursor_flag` of the pane: `0 1` once the terminal is restored.
    fn terminal_state(&self) -> anyhow::Result<String> {
        self.display("#{alternate_on} #{cursor_flag}")
    }

    /// The pid of sockq: the child of the pane's shell.
    fn sockq_pid(&self) -> anyhow::Result<i32> {
        let shell = self.display("#{pane_pid}")?;
        let children = run_ok("pgrep", &["-P", &shell])?;
        let pids: Vec<i32> = children
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.trim() == "sockq")
            })
            .collect();
        match pids.as_slice() {
            [pid] => Ok(*pid),
            _ => anyhow::bail!("expected one sockq child of shell {shell}, found {children:?}"),
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // A sockq still running here (a failed test) must not outlive the test: with a
        // crossterm that spins on a closed tty (crossterm issue #793) it would ignore signals.
        if let Ok(shell) = self.display("#{pane_pid}") {
            if let Ok(children) = run_ok("pgrep", &["-P", &shell]) {
                for pid in children.split_whitespace().filter_map(|p| p.parse().ok()) {
                    kill_if_sockq(pid);
                }
            }
        }
        // The server itself goes with the inner `common::tmux::Tmux`.
    }
}

/// SIGKILLs `pid` if it is (still) a sockq process.
fn kill_if_sockq(pid: i32) {
    let is_sockq =
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sockq");
    if is_sockq {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Process state letter (`R`, `S`, `Z`, …) of `pid`, `None` once it is gone.
fn process_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// CPU time (user + system, clock ticks) of `pid`.
fn cpu_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // After the command: state is field 3 of stat(5), utime 14, stime 15.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// SIGKILLs a sockq pid on drop if it is still there.
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        kill_if_sockq(self.0);
    }
}

/// The shell command of a pane: sockq (with `env` assignments in front, if any), then its exit
/// code, then a pause so the pane stays readable.
fn pane_command(env: &str) -> String {
    format!(
        "{env} '{}'; echo EXITED rc=$?; sleep 60",
        common::sockq_bin()
    )
}

/// A listener with backlog 4 and 5 connected, never accepted clients (the accept queue is full
/// at 5/4), plus a thread that keeps sending new SYNs at it so that drops keep moving. Lives in
/// the calling thread's namespace; stops on drop.
struct FullQueue {
    _listener: socket2::Socket,
    _clients: Vec<std::net::TcpStream>,
    stop: Arc<AtomicBool>,
    churn: Option<std::thread::JoinHandle<()>>,
    addr: SocketAddr,
}

impl FullQueue {
    fn new() -> anyhow::Result<Self> {
        let (listener, addr) = listen("127.0.0.1:0", 4)?;
        let clients = connect_n(addr, 5)?;
        wait_for_accept_queue(addr.port(), 5, Duration::from_secs(5))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        // A thread spawned here shares this thread's network namespace.
        let churn = std::thread::spawn(move || {
            let mut pending = std::collections::VecDeque::new();
            while !flag.load(Ordering::Relaxed) {
                if let Ok(mut s) = syn_only_clients(addr, 1) {
                    pending.extend(s.drain(..));
                }
                while pending.len() > 20 {
                    pending.pop_front();
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Ok(Self {
            _listener: listener,
            _clients: clients,
            stop,
            churn: Some(churn),
            addr,
        })
    }
}

impl Drop for FullQueue {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.churn.take() {
            let _ = h.join();
        }
    }
}

/// Parameters of the SGR sequences (`ESC [ … m`) in `s`.
fn sgr_params(s: &str) -> Vec<Vec<u32>> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find("\x1b[") {
        rest = &rest[i + 2..];
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == ';'))
            .unwrap_or(rest.len());
        if rest[end..].starts_with('m') {
            out.push(
                rest[..end]
                    .split(';')
                    .map(|p| p.parse().unwrap_or(0))
                    .collect(),
            );
        }
        rest = &rest[end..];
    }
    out
}

/// True when an SGR sequence sets a foreground or background colour (not the default).
fn sets_colour(params: &[u32]) -> bool {
    params
        .iter()
        .any(|p| matches!(p, 30..=37 | 38 | 40..=47 | 48 | 90..=97 | 100..=107))
}

#[test]
fn dashboard_keys_and_clean_quit() {
    in_netns("tui_e2e_keys", || {
        let q = FullQueue::new()?;
        let tmux = Tmux::start("keys", &pane_command(""))?;
        let row = format!("127.0.0.1:{}", q.addr.port());
        let s = tmux.wait_for("the listener row with 5/4", STARTUP, |s| {
            s.lines().any(|l| l.contains(&row) && l.contains("5/4"))
        })?;
        assert!(s.contains("sort: fill"), "{s}");
        // Drops move: the namespace counters and the findings say so.
        tmux.wait_text("CRIT", REACT)?;
        // Colours are on (the NO_COLOR test checks their absence against this).
        let escapes = tmux.screen_with_escapes()?;
        assert!(
            sgr_params(&escapes).iter().any(|p| sets_colour(p)),
            "no colour in:\n{escapes:?}"
        );

        tmux.keys(&["s"])?;
        tmux.wait_text("sort: drops", REACT)?;

        tmux.keys(&["Enter"])?;
        let s = tmux.wait_text("accept queue 5/4", REACT)?;
        assert!(s.contains(&row), "detail of the listener: {s}");
        tmux.keys(&["Escape"])?;
        tmux.wait_text("Listeners (", REACT)?;

        // The pipeline view (its own footer). Its "Accept queue" box title is clipped at 100
        // columns: see `pipeline_view_names_its_stages_at_100x30`.
        tmux.keys(&["p"])?;
        tmux.wait_for("the pipeline view", REACT, |s| {
            s.contains("Esc/p back") && s.to_lowercase().contains("accept queue")
        })?;
        tmux.keys(&["p"])?;
        tmux.wait_text("Listeners (", REACT)?;

        tmux.keys(&["?"])?;
        tmux.wait_text("sockq keys", REACT)?;
        tmux.keys(&["x"])?;
        tmux.wait_for("the help to close", REACT, |s| {
            !s.contains("sockq keys") && s.contains("Listeners (")
        })?;

        tmux.keys(&["q"])?;
        tmux.wait_text("EXITED rc=0", REACT)?;
        assert_eq!(tmux.terminal_state()?, "0 1", "alternate_on cursor_flag");
        Ok(())
    });
}

/// The rate on the counter strip's value line under `label` (e.g. `12.0` of `12.0/s ▂▄█`).
fn strip_rate(screen: &str, label: &str) -> Option<f64> {
    let lines: Vec<&str> = screen.lines().collect();
    let i = lines.iter().position(|l| l.contains(label))?;
    let col = lines[i].find(label)?;
    let col = lines[i][..col].chars().count();
    let under: String = lines.get(i + 1)?.chars().skip(col).collect();
    under.split("/s").next()?.trim().parse().ok()
}

/// Lines of the screen that start a finding (`CRIT …`, `WARN …`).
fn finding_lines(screen: &str) -> usize {
    screen
        .lines()
        .filter(|l| l.starts_with("CRIT ") || l.starts_with("WARN "))
        .count()
}

/// Issue 12's SSH user: at 80x24, with a listener overflowing, the counter strip shows its
/// values (ListenOverflows moving, the counters findings rely on present) and at least two
/// findings are on screen, on the main screen and on the detail screen.
#[test]
fn ssh_terminal_80x24_shows_counter_values_and_two_findings() {
    in_netns("tui_e2e_80x24", || {
        let q = FullQueue::new()?;
        let tmux = Tmux::start_sized("ssh80", &pane_command(""), (80, 24))?;
        let row = format!("127.0.0.1:{}", q.addr.port());
        tmux.wait_for("the listener row with 5/4", STARTUP, |s| {
            s.lines().any(|l| l.contains(&row) && l.contains("5/4"))
        })?;
        let s = tmux.wait_for("overflows counted and two findings", REACT, |s| {
            strip_rate(s, "Overflows").is_some_and(|r| r > 0.0) && finding_lines(s) >= 2
        })?;
        assert_eq!(s.lines().count(), 24, "{s}");
        for label in ["ListenDrops", "CookiesRecv", "EmbryonicRsts"] {
            assert!(
                strip_rate(&s, label).is_some(),
                "{label} and its rate:\n{s}"
            );
        }
        tmux.keys(&["Enter"])?;
        tmux.wait_for("the detail with counters and two findings", REACT, |s| {
            s.contains("accept queue 5/4")
                && s.lines().any(|l| l.starts_with("kernel/s Overflows "))
                && finding_lines(s) >= 2
        })?;
        tmux.keys(&["q"])?;
        tmux.wait_text("EXITED rc=0", REACT)?;
        assert_eq!(tmux.terminal_state()?, "0 1", "alternate_on cursor_flag");
        Ok(())
    });
}

#[test]
fn pipeline_view_names_its_stages_at_100x30() {
    in_netns("tui_e2e_pipeline", || {
        let _q = FullQueue::new()?;
        let tmux = Tmux::start("pipeline", &pane_command(""))?;
        tmux.wait_text("5/4", STARTUP)?;
        tmux.keys(&["p"])?;
        tmux.wait_text("Esc/p back", REACT)?;
        // The four box titles, on the lines that draw the boxes' top borders.
        tmux.wait_for("the four stage titles", REACT, |s| {
            let tops: String = s.lines().filter(|l| l.contains('┌')).collect();
            ["SYN queue", "Accept queue", "In service", "Closing"]
                .iter()
                .all(|t| tops.contains(t))
        })?;
        tmux.keys(&["q"])?;
        tmux.wait_text("EXITED rc=0", REACT)?;
        Ok(())
    });
}

#[test]
fn panic_in_the_draw_loop_restores_the_terminal() {
    in_netns("tui_e2e_panic", || {
        let tmux = Tmux::start("panic", &pane_command("SOCKQ_TEST_PANIC_AFTER_DRAWS=2"))?;
        let s = tmux.wait_text("EXITED rc=101", STARTUP)?;
        assert_eq!(tmux.terminal_state()?, "0 1", "alternate_on cursor_flag");
        assert!(
            s.contains("test panic inside the draw loop"),
            "the panic message is readable on the main screen:\n{s}"
        );
        Ok(())
    });
}

/// Starts the dashboard, waits for its first frame, sends `signal` to sockq, and checks that it
/// leaves (within 30 s: how fast is not asserted) with the terminal restored.
fn signal_restores_the_terminal(tag: &str, signal: nix::sys::signal::Signal) {
    let tag = tag.to_string();
    in_netns(&format!("tui_e2e_{tag}"), move || {
        let tmux = Tmux::start(&tag, &pane_command(""))?;
        tmux.wait_text("Listeners (", STARTUP)?;
        assert_eq!(
            tmux.terminal_state()?,
            "1 0",
            "dashboard on the alternate screen"
        );
        let pid = tmux.sockq_pid()?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal)?;
        let s = tmux.wait_text("EXITED rc=", Duration::from_secs(30))?;
        assert_eq!(tmux.terminal_state()?, "0 1", "alternate_on cursor_flag");
        assert!(!s.contains("Listeners ("), "main screen is back:\n{s}");
        Ok(())
    });
}

#[test]
fn sighup_restores_the_terminal() {
    signal_restores_the_terminal("sighup", nix::sys::signal::Signal::SIGHUP);
}

#[test]
fn sigterm_restores_the_terminal() {
    signal_restores_the_terminal("sigterm", nix::sys::signal::Signal::SIGTERM);
}

#[test]
fn sigquit_restores_the_terminal() {
    // Ctrl-\ in a terminal: the default action (a core dump) would leave it raw.
    signal_restores_the_terminal("sigquit", nix::sys::signal::Signal::SIGQUIT);
}

#[test]
fn terminal_hang_up_ends_sockq() {
    in_netns("tui_e2e_hangup", || {
        let tmux = Tmux::start("hangup", &pane_command(""))?;
        tmux.wait_text("Listeners (", STARTUP)?;
        let pid = tmux.sockq_pid()?;
        let _reaper = KillOnDrop(pid);
        // The pane's terminal goes away, as with an SSH hang-up: the pty closes and the pane's
        // processes get SIGHUP.
        tmux.tmux(&["kill-server"])?;
        let start = Instant::now();
        let cpu0 = cpu_ticks(pid);
        loop {
            match process_state(pid) {
                None | Some('Z') | Some('X') => return Ok(()),
                Some(state) if start.elapsed() > Duration::from_secs(3) => {
                    let spent = cpu_ticks(pid).zip(cpu0).map(|(b, a)| b.saturating_sub(a));
                    anyhow::bail!(
                        "sockq (pid {pid}) is still running 3 s after its terminal went away: \
                         state {state}, {spent:?} clock ticks of CPU in those 3 s"
                    );
                }
                Some(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    });
}

#[test]
fn no_color_keeps_severity_labels() {
    in_netns("tui_e2e_no_color", || {
        let _q = FullQueue::new()?;
        let tmux = Tmux::start("nocolor", &pane_command("NO_COLOR=1"))?;
        tmux.wait_text("5/4", STARTUP)?;
        tmux.wait_text("CRIT", REACT)?;
        let escapes = tmux.screen_with_escapes()?;
        let coloured: Vec<Vec<u32>> = sgr_params(&escapes)
            .into_iter()
            .filter(|p| sets_colour(p))
            .collect();
        assert!(
            coloured.is_empty(),
            "colour with NO_COLOR: {coloured:?} in\n{escapes:?}"
        );
        tmux.keys(&["q"])?;
        tmux.wait_text("EXITED rc=0", REACT)?;
        assert_eq!(tmux.terminal_state()?, "0 1");
        Ok(())
    });
}

#[test]
fn stdout_not_a_terminal_exits_2_with_a_hint() {
    // Both ends piped.
    let out = sockq_command(&[])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run sockq");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("snapshot"), "{stderr}");
    assert!(stderr.contains("watch"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing on stdout");
}

#[test]
fn stdout_redirected_from_a_terminal_exits_2_without_touching_it() {
    in_netns("tui_e2e_redirect", || {
        let dir = TempDir::new("tui-e2e")?;
        let out = dir.path().join("out");
        let err = dir.path().join("err");
        // stdin is the pane's terminal; only stdout goes to a file.
        let command = format!(
            "'{}' >'{}' 2>'{}'; echo EXITED rc=$?; sleep 60",
            common::sockq_bin(),
            out.display(),
            err.display()
        );
        let tmux = Tmux::start("redirect", &command)?;
        tmux.wait_text("EXITED rc=2", STARTUP)?;
        assert_eq!(tmux.terminal_state()?, "0 1");
        let stdout = std::fs::read(&out)?;
        assert!(stdout.is_empty(), "no escape sequences: {stdout:?}");
        let stderr = std::fs::read_to_string(&err)?;
        assert!(
            stderr.contains("snapshot") && stderr.contains("watch"),
            "{stderr}"
        );
        Ok(())
    });
}
