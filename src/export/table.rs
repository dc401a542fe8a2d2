//! The one-shot table of `sockq snapshot`. Pure: a Snapshot in, text out.

use std::fmt::Write as _;

use crate::model::labels::{fds_label, process_label};
use crate::model::meta::{tunable_meaning, QUEUE_COUNTER_INFO};
use crate::model::{Owners, Snapshot, TcpListener, UnixListener};

/// Column-aligned text: the first row is the header; numeric columns are right-aligned.
struct Table {
    rows: Vec<Vec<String>>,
    right: Vec<bool>,
}

impl Table {
    fn new(header: &[&str], right: &[bool]) -> Self {
        Self {
            rows: vec![header.iter().map(|s| s.to_string()).collect()],
            right: right.to_vec(),
        }
    }

    fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    fn render(&self, out: &mut String) {
        let cols = self.right.len();
        let mut width = vec![0usize; cols];
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(cols) {
                width[i] = width[i].max(cell.chars().count());
            }
        }
        for row in &self.rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate().take(cols) {
                let pad = width[i].saturating_sub(cell.chars().count());
                if i > 0 {
                    line.push_str("  ");
                }
                if self.right[i] {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    if i + 1 < cols {
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                }
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
}

/// Fill as a percentage, allowed above 100 %.
pub fn fill_label(l: &TcpListener) -> String {
    match l.fill() {
        Some(f) => format!("{:.0}%", f * 100.0),
        None => "-".into(),
    }
}

fn syn_recv_label(l: &TcpListener) -> String {
    if l.syn_recv_group > 1 {
        format!("{} (port group of {})", l.syn_recv, l.syn_recv_group)
    } else {
        l.syn_recv.to_string()
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or("?".into(), |v| v.to_string())
}

/// Renders the whole snapshot as the `sockq snapshot` table.
pub fn render(snap: &Snapshot, filter_note: Option<&str>) -> String {
    let mut out = String::new();
    let ns = match snap.netns.inode {
        Some(i) => format!("{} (net:[{i}])", snap.netns.label),
        None => snap.netns.label.clone(),
    };
    let _ = writeln!(
        out,
        "sockq snapshot  host {}  kernel {}  netns {}  at {}",
        snap.host.hostname, snap.host.kernel, ns, snap.time.wall
    );
    let _ = writeln!(out);
    render_tcp(&mut out, &snap.tcp_listeners, filter_note);
    let _ = writeln!(
        out,
        "SYN-RECV requests in namespace: {} (matched to no listener: {})",
        snap.syn_recv.total, snap.syn_recv.unmatched
    );
    if let Some(unix) = &snap.unix_listeners {
        let _ = writeln!(out);
        render_unix(&mut out, unix, filter_note);
    }
    let _ = writeln!(out);
    render_counters(&mut out, snap);
    let _ = writeln!(out);
    render_tunables(&mut out, snap);
    if !snap.blind_spots.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "NOT SEEN IN THIS SAMPLE");
        for b in &snap.blind_spots {
            let _ = writeln!(out, "  - {b}");
        }
    }
    out
}

fn render_tcp(out: &mut String, listeners: &[TcpListener], filter_note: Option<&str>) {
    let _ = writeln!(
        out,
        "TCP LISTENERS  Accept Q = established connections waiting for accept() (ss Recv-Q);"
    );
    let _ = writeln!(
        out,
        "  Backlog = limit in force (ss Send-Q), full when Accept Q > Backlog; Drops = the listener's"
    );
    let _ = writeln!(
        out,
        "  own drop counter since it was created (ss -m d); FDs = open/RLIMIT_NOFILE of the owner"
    );
    if listeners.is_empty() {
        let _ = match filter_note {
            Some(f) => writeln!(out, "  (no TCP listener matches {f})"),
            None => writeln!(out, "  (no TCP listeners)"),
        };
        return;
    }
    let mut t = Table::new(
        &[
            "ADDRESS", "PROCESS", "ACCEPT Q", "BACKLOG", "FILL", "SYN-RECV", "DROPS", "FDS",
        ],
        &[false, false, true, true, true, true, true, true],
    );
    let mut unknown_reasons: Vec<&str> = Vec::new();
    for l in listeners {
        let mut fill = fill_label(l);
        if l.is_full() {
            fill = format!("FULL {fill}");
        }
        if let Owners::Unknown { reason } = &l.owners {
            if !unknown_reasons.contains(&reason.as_str()) {
                unknown_reasons.push(reason);
            }
        }
        t.push(vec![
            l.endpoint(),
            process_label(&l.owners),
            l.accept_queue.to_string(),
            l.backlog.to_string(),
            fill,
            syn_recv_label(l),
            opt(l.drops),
            fds_label(&l.owners),
        ]);
    }
    t.render(out);
    for r in unknown_reasons {
        let _ = writeln!(out, "  ? process unknown: {r}");
    }
}

fn render_unix(out: &mut String, unix: &[UnixListener], filter_note: Option<&str>) {
    let _ = writeln!(
        out,
        "UNIX LISTENERS  Accept Q = connections waiting for accept(); Backlog = limit in force"
    );
    if unix.is_empty() {
        let _ = match filter_note {
            Some(f) => writeln!(out, "  (no UNIX stream listener matches {f})"),
            None => writeln!(out, "  (no UNIX stream listeners)"),
        };
        return;
    }
    let mut t = Table::new(
        &["PATH", "PROCESS", "ACCEPT Q", "BACKLOG", "FDS"],
        &[false, false, true, true, true],
    );
    for l in unix {
        let name = if l.name.is_empty() {
            "(unnamed)".to_string()
        } else {
            l.name.clone()
        };
        t.push(vec![
            name,
            process_label(&l.owners),
            l.accept_queue.to_string(),
            l.backlog.to_string(),
            fds_label(&l.owners),
        ]);
    }
    t.render(out);
}

fn render_counters(out: &mut String, snap: &Snapshot) {
    let _ = writeln!(
        out,
        "QUEUE COUNTERS  TcpExt, cumulative since the namespace was created"
    );
    let mut t = Table::new(&["COUNTER", "VALUE", "MEANING"], &[false, true, false]);
    for c in QUEUE_COUNTER_INFO {
        let value = snap
            .counters
            .tcp_ext(c.name)
            .map_or("absent".to_string(), |v| v.to_string());
        t.push(vec![c.name.to_string(), value, c.meaning.to_string()]);
    }
    t.render(out);
}

fn render_tunables(out: &mut String, snap: &Snapshot) {
    let _ = writeln!(out, "TUNABLES");
    let mut t = Table::new(&["TUNABLE", "VALUE", "MEANING"], &[false, true, false]);
    for (name, value) in snap.tunables.entries() {
        t.push(vec![
            name.to_string(),
            value.map_or("absent".into(), |v| v.to_string()),
            tunable_meaning(name, value).to_string(),
        ]);
    }
    t.render(out);
}
