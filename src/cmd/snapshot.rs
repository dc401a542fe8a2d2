//! `sockq snapshot`: one sample, as a table or JSON.

use std::time::Duration;

use super::CmdResult;
use crate::collect::netns::{self, NetnsTarget};
use crate::collect::{Collector, CollectorOptions};
use crate::export;
use crate::model::labels::terminal_safe;
use crate::model::Filter;
use crate::runtime::write_stdout;

/// Settings of `snapshot`.
#[derive(Debug, Clone)]
pub struct SnapshotConfig {
    /// Which namespace.
    pub target: NetnsTarget,
    /// What to read.
    pub collector: CollectorOptions,
    /// Which listeners to show.
    pub filter: Filter,
    /// JSON instead of the table.
    pub json: bool,
    /// Every network namespace of the host (`--all-netns`) instead of `target`.
    pub all_netns: bool,
    /// How long after the sample the holders' /proc/PID/stat is read again for their CPU
    /// share (`--cpu-window`; default [`crate::collect::SNAPSHOT_CPU_WINDOW`]); zero: not read
    /// again, the shares stay unknown.
    pub cpu_window: Duration,
}

/// Runs `snapshot`.
pub fn run(cfg: SnapshotConfig) -> CmdResult {
    if cfg.all_netns {
        return super::fleet::snapshot(&cfg);
    }
    let label = cfg.target.label();
    let opts = cfg.collector.clone();
    let window = cfg.cpu_window;
    let mut snap = netns::run_in(&cfg.target, move || {
        let mut c = Collector::new(label, opts)?;
        let mut snap = c.sample()?;
        // A process's CPU share needs two reads of it: the holders' /proc/PID/stat is read
        // again a moment later (only when some are known; nothing else is sampled twice).
        if wants_reread(window, &snap) {
            std::thread::sleep(window);
            c.reread_owners(&mut snap);
        }
        Ok(snap)
    })?;
    cfg.filter.apply(&mut snap);
    if cfg.json {
        return write_json(&snap);
    }
    let note = (!cfg.filter.is_empty()).then(|| cfg.filter.describe());
    // Process names and socket paths come from the system: escaped for the terminal.
    let text = terminal_safe(&export::table::render(&snap, note.as_deref())).into_owned();
    Ok(write_stdout(&text)?)
}

/// Pretty JSON of `snap` and a newline, streamed to stdout through a buffer: 10,000 listeners
/// are 11.7 MB of JSON, which built as one string first cost the page faults of that string
/// and the copies of its doublings.
fn write_json(snap: &crate::model::Snapshot) -> CmdResult {
    use std::io::Write as _;
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    serde_json::to_writer_pretty(&mut out, snap)?;
    out.write_all(b"\n")?;
    Ok(out.flush()?)
}

/// True when the holders are to be read again after `window` for their CPU share: a window
/// was asked for (`--cpu-window 0`: none) and some holder is known.
pub(crate) fn wants_reread(window: Duration, snap: &crate::model::Snapshot) -> bool {
    !window.is_zero() && has_known_owners(snap)
}

/// True when some listener's owning processes are known.
fn has_known_owners(snap: &crate::model::Snapshot) -> bool {
    let unix = snap.unix_listeners.iter().flatten().map(|l| &l.owners);
    snap.tcp_listeners
        .iter()
        .map(|l| &l.owners)
        .chain(unix)
        .any(|o| !o.processes().is_empty())
}

/// Runs `schema`: prints the JSON Schema of `snapshot --json` or of `watch --json` lines.
pub fn schema(which: &str) -> CmdResult {
    let schema = match which {
        "tick" => export::json::tick_schema(),
        "all-netns" => export::json::fleet_schema(),
        "all-netns-line" => export::json::fleet_line_schema(),
        _ => export::json::snapshot_schema(),
    };
    Ok(write_stdout(&serde_json::to_string_pretty(&schema)?)?)
}
