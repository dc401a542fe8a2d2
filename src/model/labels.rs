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

/// An age in a few characters: `0.4s`, `9.9s`, `42s`, `12m`, `3h`.
pub fn short_age(ms: u64) -> String {
    match ms {
        0..10_000 => format!("{:.1}s", ms as f64 / 1000.0),
        10_000..600_000 => format!("{}s", ms / 1000),
        600_000..36_000_000 => format!("{}m", ms / 60_000),
        _ => format!("{}h", ms / 3_600_000),
    }
}

/// Bytes in binary units: `512 B`, `12.5 KiB`, `6.3 MiB`, `1.2 GiB`.
pub fn bytes_label(b: u64) -> String {
    const K: f64 = 1024.0;
    let v = b as f64;
    if b < 1024 {
        format!("{b} B")
    } else if v < K * K {
        format!("{:.1} KiB", v / K)
    } else if v < K * K * K {
        format!("{:.1} MiB", v / K / K)
    } else {
        format!("{:.1} GiB", v / K / K / K)
    }
}

/// `text` made safe for a terminal: every control character but newline and tab — C0, DEL, C1
/// (ESC sequences, OSC titles, bells) — and the bidirectional overrides that can make a line
/// read differently from what it is, written as visible escapes (`\x1b`, `\u{202e}`).
/// Everything from the system (process names, socket paths, host names, error texts) passes
/// through this before a text output reaches a terminal.
pub fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    fn unsafe_char(c: char) -> bool {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if !unsafe_char(c) {
            out.push(c);
        } else if (c as u32) < 0x100 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::process;

    #[test]
    fn control_sequences_become_visible_escapes() {
        assert_eq!(terminal_safe("nginx"), "nginx");
        assert_eq!(terminal_safe("a\tb\nc"), "a\tb\nc");
        assert_eq!(
            terminal_safe("\x1b[2J\x1b[31mEVIL\x07"),
            "\\x1b[2J\\x1b[31mEVIL\\x07"
        );
        assert_eq!(terminal_safe("@\x1b]0;title\x07"), "@\\x1b]0;title\\x07");
        assert_eq!(terminal_safe("x\u{9b}y\u{7f}"), "x\\x9by\\x7f");
        assert_eq!(terminal_safe("abc\u{202e}fdp"), "abc\\u{202e}fdp");
    }

    #[test]
    fn tightest_owner_is_the_closest_to_its_limit_then_the_lowest_pid() {
        let owners = |order: &[u32]| Owners::Known {
            processes: order
                .iter()
                .map(|&pid| match pid {
                    7 => process(7, "w", Some(90), Some(100)),
                    _ => process(pid, "w", Some(10), Some(100)),
                })
                .collect::<Vec<_>>()
                .into(),
        };
        assert_eq!(tightest_owner(&owners(&[3, 7, 5])).map(|p| p.pid), Some(7));
        assert_eq!(tightest_owner(&owners(&[5, 3, 4])).map(|p| p.pid), Some(3));
        assert_eq!(tightest_owner(&owners(&[4, 5, 3])).map(|p| p.pid), Some(3));
        assert_eq!(tightest_owner(&owners(&[])).map(|p| p.pid), None);
    }
}
