//! The conventions of the CLIs people like: shared flags before or after a subcommand, every
//! on/off environment variable taking 1, yes or empty, completions and a man page.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

mod common;

use std::io::Write;
use std::process::Stdio;

use common::*;

fn run(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = sockq_command(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null()).output().expect("sockq runs")
}

fn ok(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = run(args, env);
    assert!(
        out.status.success(),
        "{args:?} {env:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_on_off_variable_takes_1_yes_and_empty() {
    let vars = [
        "SOCKQ_NO_COLOR",
        "SOCKQ_NO_UNIX",
        "SOCKQ_NO_OWNERS",
        "SOCKQ_JSON",
    ];
    for var in vars {
        for value in ["1", "yes", "", "0", "no", "true", "false"] {
            ok(&["snapshot"], &[(var, value)]);
        }
    }
    // SOCKQ_JSON=1 means JSON; =0 and empty mean the table.
    assert!(ok(&["snapshot"], &[("SOCKQ_JSON", "1")]).starts_with('{'));
    assert!(ok(&["snapshot"], &[("SOCKQ_JSON", "0")]).starts_with("sockq snapshot"));
    assert!(ok(&["snapshot"], &[("SOCKQ_JSON", "")]).starts_with("sockq snapshot"));
    // A typo is refused, naming the value and what is accepted, not taken as "on".
    for var in vars {
        let out = run(&["snapshot"], &[(var, "maybe")]);
        assert_eq!(out.status.code(), Some(2), "{var}=maybe");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("maybe") && err.contains("on/off"),
            "{var}: {err}"
        );
    }
    // And for the flags of watch.
    ok(
        &["watch", "--count", "1"],
        &[("SOCKQ_NO_COLOR", "1"), ("SOCKQ_JSON", "yes")],
    );
}

#[test]
fn shared_flags_work_before_and_after_the_subcommand() {
    ok(&["--port", "80", "snapshot"], &[]);
    ok(&["snapshot", "--port", "80"], &[]);
    ok(&["watch", "--no-color", "--count", "1"], &[]);
    ok(&["--no-color", "watch", "--count", "1"], &[]);
    ok(
        &["--interval", "200ms", "watch", "--count", "1", "--json"],
        &[],
    );
    let text = ok(&["--port", "1", "snapshot"], &[]);
    assert!(
        text.contains("--port 1"),
        "the filter is applied and said: {text}"
    );
}

#[test]
fn version_names_the_revision_and_build_date() {
    let v = ok(&["--version"], &[]);
    assert!(v.starts_with("sockq 0."), "{v}");
    assert!(v.contains(", built "), "{v}");
}

#[test]
fn bash_completion_is_valid_bash() {
    let script = ok(&["completions", "bash"], &[]);
    assert!(script.contains("sockq"));
    let mut bash = std::process::Command::new("bash")
        .arg("-n")
        .stdin(Stdio::piped())
        .spawn()
        .expect("bash");
    bash.stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(bash.wait().unwrap().success(), "bash -n rejects the script");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let s = ok(&["completions", shell], &[]);
        assert!(s.contains("sockq") && s.contains("snapshot"), "{shell}");
    }
    insta::assert_snapshot!("completions_bash", script);
}

#[test]
fn man_page_renders() {
    let page = ok(&["man"], &[]);
    assert!(page.contains(".TH sockq 1"), "{page}");
    // The title and VERSION lines hold the revision and date, which change every commit: not
    // snapshotted.
    let mut after_version = false;
    let stable: String = page
        .lines()
        .filter(|l| {
            let skip = l.starts_with(".TH ") || after_version;
            after_version = *l == ".SH VERSION";
            !skip
        })
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!("man_page", stable);
    if std::process::Command::new("man")
        .arg("--version")
        .output()
        .is_ok()
    {
        let mut man = std::process::Command::new("man")
            .args(["-l", "-"])
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "80")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("man");
        man.stdin
            .take()
            .unwrap()
            .write_all(page.as_bytes())
            .unwrap();
        let out = man.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("SYNOPSIS") || text.contains("NAME"), "{text}");
    }
}
