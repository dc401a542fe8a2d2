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

/// The owner closest to its fd limit (the one that will hit EMFILE first); of several as
/// close, the lowest pid (the same one whatever order the owners come in).
pub fn tightest_owner(owners: &Owners) -> Option<&ProcessInfo> {
    owners.processes().iter().max_by(|a, b| {
        let ratio = |p: &ProcessInfo| match (p.fds_open, p.fd_limit) {
            (Some(o), Some(l)) if l > 0 => o as f64 / l as f64,
            _ => -1.0,
        };
        ratio(a).total_cmp(&ratio(b)).then(b.pid.cmp(&a.pid))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::process;

    #[test]
    fn tightest_owner_is_the_closest_to_its_limit_then_the_lowest_pid() {
        let owners = |order: &[u32]| Owners::Known {
            processes: order
                .iter()
                .map(|&pid| match pid {
                    7 => process(7, "w", Some(90), Some(100)),
                    _ => process(pid, "w", Some(10), Some(100)),
                })
                .collect(),
        };
        assert_eq!(tightest_owner(&owners(&[3, 7, 5])).map(|p| p.pid), Some(7));
        assert_eq!(tightest_owner(&owners(&[5, 3, 4])).map(|p| p.pid), Some(3));
        assert_eq!(tightest_owner(&owners(&[4, 5, 3])).map(|p| p.pid), Some(3));
        assert_eq!(tightest_owner(&owners(&[])).map(|p| p.pid), None);
    }
}
