//! `sockq snapshot`: one sample, as a table or JSON.

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
}

/// Runs `snapshot`.
pub fn run(cfg: SnapshotConfig) -> CmdResult {
    let label = cfg.target.label();
    let opts = cfg.collector.clone();
    let mut snap = netns::run_in(&cfg.target, move || {
        let mut c = Collector::new(label, opts)?;
        c.sample()
    })?;
    cfg.filter.apply(&mut snap);
    let text = if cfg.json {
        export::json::snapshot_pretty(&snap)?
    } else {
        let note = (!cfg.filter.is_empty()).then(|| cfg.filter.describe());
        // Process names and socket paths come from the system: escaped for the terminal.
        terminal_safe(&export::table::render(&snap, note.as_deref())).into_owned()
    };
    Ok(write_stdout(&text)?)
}

/// Runs `schema`: prints the JSON Schema of `snapshot --json` or of `watch --json` lines.
pub fn schema(which: &str) -> CmdResult {
    let schema = if which == "tick" {
        export::json::tick_schema()
    } else {
        export::json::snapshot_schema()
    };
    Ok(write_stdout(&serde_json::to_string_pretty(&schema)?)?)
}
