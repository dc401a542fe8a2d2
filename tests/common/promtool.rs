//! promtool (Debian package `prometheus`; .ci/run installs it): the Prometheus project's own
//! parsers, linter and rule tester, to check what sockq writes and ships.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use super::TempDir;

/// promtool, or None (loudly) outside CI when it is not installed.
pub fn promtool() -> anyhow::Result<Option<&'static str>> {
    if Command::new("promtool").arg("--version").output().is_ok() {
        return Ok(Some("promtool"));
    }
    let msg = "promtool not found (Debian package `prometheus`; .ci/run installs it)";
    anyhow::ensure!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
    eprintln!("\n*** SKIPPED promtool checks: {msg} ***\n");
    Ok(None)
}

/// `promtool ARGS…` in `dir`: must exit 0.
pub fn run_in(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let Some(p) = promtool()? else {
        return Ok(());
    };
    let out = Command::new(p).args(args).current_dir(dir).output()?;
    anyhow::ensure!(
        out.status.success(),
        "promtool {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// `promtool check metrics` on a 0.0.4 text body (Prometheus's text parser and its linter): must
/// exit 0, lint problems included.
pub fn check_metrics(body: &str) -> anyhow::Result<()> {
    let Some(p) = promtool()? else {
        return Ok(());
    };
    let mut child = Command::new(p)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())?;
    let out = child.wait_with_output()?;
    anyhow::ensure!(
        out.status.success(),
        "promtool check metrics failed ({}): {}{}\n--- body ---\n{body}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Parses an OpenMetrics body with Prometheus's own OpenMetrics parser (promtool's backfill,
/// which wants a timestamp on every sample: one is appended), and returns what it stored as
/// `promtool tsdb dump` prints it: (series, value), the value written by Go's `%g` (the
/// shortest form that reads back, as Prometheus writes floats). None when promtool is missing
/// (outside CI).
pub fn parse_openmetrics(body: &str) -> anyhow::Result<Option<Vec<(String, String)>>> {
    let Some(p) = promtool()? else {
        return Ok(None);
    };
    let dir = TempDir::new("openmetrics")?;
    let input = dir.path().join("metrics.om");
    let stamped: String = body
        .lines()
        .map(|l| {
            if l.starts_with('#') {
                format!("{l}\n")
            } else {
                format!("{l} 1700000000\n")
            }
        })
        .collect();
    std::fs::write(&input, stamped)?;
    let blocks = dir.path().join("blocks");
    let out = Command::new(p)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(&blocks)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "promtool could not parse the OpenMetrics body: {}{}\n--- body ---\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // `tsdb dump` opens the directory as a database: promtool 2.42 wants a WAL directory.
    std::fs::create_dir_all(blocks.join("wal"))?;
    let out = Command::new(p)
        .args(["tsdb", "dump"])
        .arg(&blocks)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "promtool tsdb dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut samples = Vec::new();
    for l in String::from_utf8(out.stdout)?.lines() {
        let mut parts = l.rsplitn(3, ' ');
        let (Some(_timestamp), Some(value), Some(series)) =
            (parts.next(), parts.next(), parts.next())
        else {
            anyhow::bail!("unexpected tsdb dump line: {l}");
        };
        samples.push((series.to_string(), value.to_string()));
    }
    Ok(Some(samples))
}
