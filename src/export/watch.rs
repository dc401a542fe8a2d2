//! `sockq watch`: one line per tick for people, or one JSON object per tick (JSON lines).

use std::collections::HashSet;
use std::fmt::Write as _;

use crate::model::Tick;
use crate::model::{Finding, ListenerKey};

/// Column header of the human format.
pub const HEADER: &str =
    "TIME      LISTEN  FULL   OVFL/s   DROP/s COOKIE/s  SYNDROP/s  BUSIEST (depth/backlog, ^peak)";

fn rate_cell(t: &Tick, name: &str) -> String {
    match t.counter_rates.get(name).copied().flatten() {
        Some(r) => format!("{r:.1}"),
        None => "-".into(),
    }
}

/// Formats one tick as a line (plus indented lines for findings that are new since `seen`).
/// `seen` holds the (rule, listener) of findings already printed; it is updated.
pub fn human_line(t: &Tick, seen: &mut HashSet<(String, Option<ListenerKey>)>) -> String {
    let time = t
        .snapshot
        .time
        .wall
        .get(11..19)
        .unwrap_or(&t.snapshot.time.wall)
        .to_string();
    let live: Vec<_> = t.listeners.iter().filter(|l| !l.gone).collect();
    let full = live.iter().filter(|l| l.depth_high > l.backlog).count();
    let mut busiest: Vec<_> = live.iter().filter(|l| l.depth_high > 0).collect();
    busiest.sort_by(|a, b| {
        let fa = f64::from(a.depth_high) / f64::from(a.backlog.max(1));
        let fb = f64::from(b.depth_high) / f64::from(b.backlog.max(1));
        fb.total_cmp(&fa)
    });
    let mut busy = String::new();
    for l in busiest.iter().take(3) {
        let _ = write!(busy, "{} {}/{}", l.endpoint, l.depth, l.backlog);
        if l.depth_high > l.depth {
            let _ = write!(busy, "^{}", l.depth_high);
        }
        busy.push_str("  ");
    }
    if busiest.is_empty() {
        busy.push_str("(all accept queues empty)");
    }
    let mut line = format!(
        "{time:<9} {:>6} {:>5} {:>8} {:>8} {:>8} {:>10}  {}",
        live.len(),
        full,
        rate_cell(t, "ListenOverflows"),
        rate_cell(t, "ListenDrops"),
        rate_cell(t, "SyncookiesSent"),
        rate_cell(t, "TCPReqQFullDrop"),
        busy.trim_end()
    );
    if t.gap_before {
        line.push_str("  [gap: samples missed before this one]");
    }
    if t.collector.throttled {
        let _ = write!(
            line,
            "  [CPU budget {:.1}%: SYN-RECV {:.1} s old, polling every {} ms]",
            t.collector.budget_percent,
            t.collector.syn_recv_age_ms as f64 / 1000.0,
            t.collector.fast_interval_ms
        );
    }
    let current: HashSet<(String, Option<ListenerKey>)> =
        t.findings.iter().map(|f| (f.rule.clone(), f.key)).collect();
    for f in &t.findings {
        if !seen.contains(&(f.rule.clone(), f.key)) {
            let _ = write!(line, "\n  {}", finding_text(f));
        }
    }
    *seen = current;
    line
}

/// `CRIT message → next` on one line.
pub fn finding_text(f: &Finding) -> String {
    format!("{} {} Next: {}", f.severity.label(), f.message, f.next)
}
