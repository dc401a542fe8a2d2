//! Short labels for owners, shared by every view (tables, the dashboard, the lab).

use super::{Owners, ProcessInfo};

/// `comm[pid]`, `comm[pid]+N` for a pre-fork group, or `?` when unknown.
pub fn process_label(owners: &Owners) -> String {
    match owners {
        Owners::Known { processes } => match processes.split_first() {
            None => "-".into(),
            Some((first, [])) => format!("{}[{}]", first.comm, first.pid),
            Some((first, rest)) => format!("{}[{}]+{}", first.comm, first.pid, rest.len()),
        },
        Owners::Unknown { .. } => "?".into(),
    }
}

/// The owner closest to its fd limit (the one that will hit EMFILE first).
pub fn tightest_owner(owners: &Owners) -> Option<&ProcessInfo> {
    owners.processes().iter().max_by(|a, b| {
        let ratio = |p: &ProcessInfo| match (p.fds_open, p.fd_limit) {
            (Some(o), Some(l)) if l > 0 => o as f64 / l as f64,
            _ => -1.0,
        };
        ratio(a).total_cmp(&ratio(b))
    })
}

/// `open/limit` of the tightest owner; `?` where unknown, `∞` for no limit.
pub fn fds_label(owners: &Owners) -> String {
    match tightest_owner(owners) {
        None => "?".into(),
        Some(p) => format!(
            "{}/{}",
            p.fds_open.map_or("?".into(), |n| n.to_string()),
            p.fd_limit.map_or("unlimited".into(), |n| n.to_string())
        ),
    }
}
