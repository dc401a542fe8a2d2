//! `--all-netns` as text: `snapshot` grouped by namespace, the namespaces in most trouble
//! first; `watch` lines carrying the namespace. The JSON documents are
//! [`crate::model::fleet::FleetSnapshot`] and [`crate::model::fleet::FleetLine`].

use std::collections::HashSet;
use std::fmt::Write as _;

use super::{table, watch};
use crate::model::fleet::{snapshot_trouble, FleetSnapshot, NetnsSampling, NetnsSnapshot, Trouble};
use crate::model::{ListenerKey, NetnsRef, Tick};

/// Width of the namespace column of `watch --all-netns`.
pub const NETNS_WIDTH: usize = 24;

/// Column header of `watch --all-netns`.
pub fn watch_header() -> String {
    format!("{:<NETNS_WIDTH$} {}", "NETNS", watch::HEADER)
}

/// One namespace in words: its label, inode, and what else is known (container, pod, main
/// process).
pub fn describe(r: &NetnsRef) -> String {
    let mut s = format!("{} (net:[{}]", r.label(), r.inode);
    if let Some(c) = &r.name.container {
        let _ = write!(
            s,
            ", {} {}",
            c.runtime.as_str(),
            c.id.get(..12).unwrap_or(&c.id)
        );
        if let Some(n) = &c.name {
            let _ = write!(s, " {n}");
        }
    }
    if let Some(p) = &r.name.pod {
        let _ = write!(s, ", pod uid {}", p.uid);
    }
    if let Some(m) = &r.name.main {
        let _ = write!(s, ", main process {}[{}]", m.comm, m.pid);
    }
    if r.name.ip_netns.len() > 1 {
        let _ = write!(s, ", also ip netns {}", r.name.ip_netns[1..].join(", "));
    }
    s.push(')');
    s
}

/// `snapshot --all-netns` as text: a summary line, then each namespace with listeners or
/// trouble as `snapshot` shows one (most trouble first), then the calm namespaces without TCP
/// listeners on one line, then those that could not be read.
pub fn snapshot_text(f: &FleetSnapshot, filter_note: Option<&str>) -> String {
    let read: Vec<&NetnsSnapshot> = f
        .namespaces
        .iter()
        .filter(|n| n.snapshot.is_some())
        .collect();
    let mut out = format!(
        "{} network namespaces found, {} read{}\n",
        f.namespaces_found,
        read.len(),
        if read.len() > 1 {
            "; those in most trouble first"
        } else {
            ""
        }
    );
    if let Some(b) = &f.blind_spot {
        let _ = writeln!(out, "Not seen: {b}");
    }
    let mut shown: Vec<(&NetnsSnapshot, Trouble)> = read
        .iter()
        .filter_map(|n| n.snapshot.as_ref().map(|s| (*n, snapshot_trouble(s))))
        .collect();
    shown.sort_by(|(a, ta), (b, tb)| {
        Trouble::most_first(ta, tb)
            .then(b.netns.name.host.cmp(&a.netns.name.host))
            .then(a.netns.inode.cmp(&b.netns.inode))
    });
    let mut empty = Vec::new();
    for (n, trouble) in shown {
        let Some(snap) = &n.snapshot else { continue };
        if snap.tcp_listeners.is_empty() && trouble.is_calm() {
            empty.push(n.label.as_str());
            continue;
        }
        let _ = writeln!(out, "\n=== {} ===", describe(&n.netns));
        out.push_str(&table::render(snap, filter_note));
    }
    if !empty.is_empty() {
        let _ = writeln!(
            out,
            "\nNo TCP listeners and nothing dropped in {} namespaces: {}",
            empty.len(),
            empty.join(", ")
        );
    }
    for n in f.namespaces.iter().filter(|n| n.snapshot.is_none()) {
        let _ = writeln!(
            out,
            "\nCould not read {}: {}",
            describe(&n.netns),
            n.error.as_deref().unwrap_or("unknown error")
        );
    }
    out
}

/// One `watch --all-netns` line: the namespace's label, then the line `watch` prints for one
/// namespace; its new findings below it name the namespace.
pub fn watch_line(
    label: &str,
    tick: &Tick,
    seen: &mut HashSet<(String, Option<ListenerKey>)>,
) -> String {
    let line = watch::human_line(tick, seen);
    let mut short: String = label.chars().take(NETNS_WIDTH).collect();
    if label.chars().count() > NETNS_WIDTH {
        short.pop();
        short.push('…');
    }
    let mut out = String::new();
    for (i, part) in line.split('\n').enumerate() {
        if i == 0 {
            let _ = write!(out, "{short:<NETNS_WIDTH$} {part}");
        } else {
            let _ = write!(out, "\n  {label}:{part}");
        }
    }
    out
}

/// What a `watch --all-netns` line says of a namespace sampled less often than asked.
pub fn quiet_note(s: &NetnsSampling) -> String {
    format!(
        "  [quiet: sampled every {:.1} s to keep the CPU budget]",
        s.interval_ms as f64 / 1000.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fleet::FLEET_SCHEMA_VERSION;
    use crate::model::testing;
    use crate::model::{EnterBy, NetnsName};

    fn ns(inode: u64, name: &str, depth: u32) -> NetnsSnapshot {
        let r = NetnsRef {
            inode,
            name: NetnsName {
                ip_netns: vec![name.into()],
                ..NetnsName::default()
            },
            enter: EnterBy::Named(name.into()),
            processes: 0,
        };
        let mut snap = testing::snapshot(vec![], 1);
        if depth > 0 {
            let l = testing::tcp_listener(8080).queue(depth, 128).build();
            snap.tcp_listeners.push(l);
        }
        NetnsSnapshot {
            label: r.label(),
            netns: r,
            snapshot: Some(snap),
            error: None,
        }
    }

    #[test]
    fn the_overflowing_namespace_comes_first_and_calm_empty_ones_on_one_line() {
        let f = FleetSnapshot {
            schema_version: FLEET_SCHEMA_VERSION,
            time: "t".into(),
            namespaces_found: 3,
            blind_spot: None,
            namespaces: vec![ns(1, "calm", 0), ns(2, "half", 64), ns(3, "over", 129)],
        };
        let text = snapshot_text(&f, None);
        let over = text.find("=== over").unwrap();
        let half = text.find("=== half").unwrap();
        assert!(over < half, "{text}");
        assert!(
            text.contains("No TCP listeners and nothing dropped in 1 namespaces: calm"),
            "{text}"
        );
    }
}
