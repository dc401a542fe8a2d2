//! Bad values on the command line and in the environment: each is refused with exit code 2 and
//! a message naming the flag and what is accepted; none panics (exit 101).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and tools may panic on failure

mod common;

use common::*;

/// Runs sockq with `args` and `env`; returns (exit code, stderr).
fn refused(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = sockq_command(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .expect("sockq runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn huge_negative_and_non_finite_values_are_refused_with_the_flag_named() {
    let cases: &[(&[&str], &str, &str)] = &[
        (
            &["watch", "--count", "1", "--interval", "1e20"],
            "--interval",
            "too long",
        ),
        (
            &["watch", "--count", "1", "--interval", "-1"],
            "--interval",
            "not a positive duration",
        ),
        (
            &["watch", "--count", "1", "--fast-interval", "1e30"],
            "--fast-interval",
            "too long",
        ),
        (
            &["watch", "--count", "1", "--window", "1e300"],
            "--window",
            "too long",
        ),
        (
            &["watch", "--count", "1", "--cpu-budget", "-5"],
            "--cpu-budget",
            "out of range",
        ),
        (
            &["serve", "--header-timeout", "1e20"],
            "--header-timeout",
            "too long",
        ),
        (
            &["lab", "--headless", "--duration", "1e20"],
            "--duration",
            "too long",
        ),
        (
            &["lab", "--headless", "--rate", "nan"],
            "--rate",
            "from 0 to 10000",
        ),
        (
            &["lab", "--headless", "--flood-rate", "inf"],
            "--flood-rate",
            "from 0 to 1000000",
        ),
        (
            &["lab", "--headless", "--service-ms", "0"],
            "--service-ms",
            "1..=600000",
        ),
        (&["snapshot", "--port", "0"], "--port", "1..=65535"),
        (
            &["snapshot", "--cpu-window", "100ms"],
            "--cpu-window",
            "must be 0 (no CPU share, no wait) or between 200ms and 10s",
        ),
        (
            &["snapshot", "--cpu-window", "11s"],
            "--cpu-window",
            "between 200ms and 10s",
        ),
        (
            &["snapshot", "--cpu-window", "-1"],
            "--cpu-window",
            "not a positive duration",
        ),
        (
            &["snapshot", "--all-netns", "--cpu-window", "1e20"],
            "--cpu-window",
            "too long",
        ),
    ];
    for (args, flag, says) in cases {
        let (code, err) = refused(args, &[]);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(flag) && err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn the_same_values_from_the_environment_are_refused_too() {
    let cases: &[(&[&str], &str, &str)] = &[
        (&["watch", "--count", "1"], "SOCKQ_INTERVAL", "1e20"),
        (&["watch", "--count", "1"], "SOCKQ_FAST_INTERVAL", "1e30"),
        (&["watch", "--count", "1"], "SOCKQ_WINDOW", "-3"),
        (&["serve"], "SOCKQ_HEADER_TIMEOUT", "1e20"),
        (&["snapshot"], "SOCKQ_PORT", "0"),
        (&["snapshot"], "SOCKQ_CPU_WINDOW", "50ms"),
    ];
    for (args, var, value) in cases {
        let (code, err) = refused(args, &[(var, value)]);
        assert_eq!(code, 2, "{var}={value}: {err}");
        assert!(err.contains(value), "{var}={value}: {err}");
    }
}

#[test]
fn a_value_of_any_length_is_quoted_short() {
    let long = "9".repeat(100_000);
    let (code, err) = refused(&["watch", "--count", "1", "--window", &long], &[]);
    assert_eq!(code, 2);
    // clap repeats the value it was given; sockq's own part quotes at most 60 characters.
    let ours = err.rsplit(": ").next().unwrap_or_default();
    assert!(ours.len() < 200, "{ours}");
}

#[test]
fn a_missing_namespace_is_reported_before_the_missing_terminal() {
    // No terminal here (stdin is null, stdout a pipe): the namespace error comes first, with
    // its own exit code.
    let (code, err) = refused(&["--netns", "sockq-no-such-ns"], &[]);
    if is_root() {
        assert_eq!(code, 3, "{err}");
        assert!(err.contains("sockq-no-such-ns"), "{err}");
    } else {
        assert!(code == 3 || code == 1, "{code}: {err}");
    }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A process that names itself with terminal escapes and holds a TCP listener and an abstract
/// UNIX listener whose name sets the terminal title; prints READY when listening.
const HOSTILE: &str = r#"
import ctypes, socket, sys, time
ctypes.CDLL(None).prctl(15, b"\x1b[2J\x1b[31mEVIL\x07", 0, 0, 0)
t = socket.socket(); t.bind(("127.0.0.1", 7411)); t.listen(8)
u = socket.socket(socket.AF_UNIX); u.bind("\0\x1b]0;pwned\x07"); u.listen(8)
print("READY", flush=True)
time.sleep(60)
"#;

#[test]
fn names_from_the_system_reach_the_terminal_escaped() {
    in_netns("hostile_names", || {
        let mut child = std::process::Command::new("python3")
            .args(["-c", HOSTILE])
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let guard = KillOnDrop(child.id());
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().expect("piped")),
            &mut line,
        )?;
        anyhow::ensure!(line.trim() == "READY", "the hostile server said {line:?}");
        for args in [
            &["snapshot"][..],
            &["watch", "--count", "2", "--interval", "200ms"],
        ] {
            let out = sockq_command(args).output()?;
            anyhow::ensure!(out.status.success(), "{args:?}: {out:?}");
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                !out.stdout.iter().any(|&b| b == 0x1b || b == 0x07),
                "{args:?} printed a raw escape: {text}"
            );
            if args[0] == "snapshot" {
                assert!(text.contains("\\x1b[2J\\x1b[31mEVIL\\x07"), "{text}");
                assert!(text.contains("\\x1b]0;pwned\\x07"), "{text}");
            }
        }
        drop(guard);
        let _ = child.wait();
        Ok(())
    });
}

/// Kills a pid when dropped (on every path out of a test).
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.0) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}
