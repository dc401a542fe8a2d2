//! The detail screen's side panel, "who and what bounds it": the limits on the listener's
//! queues (backlog, tunables, the tightest owner's fd limit) and its owning processes. Beside
//! the charts on wide screens, one heading per part; under them, packed, on narrow ones.

use ratatui::style::Style;
use ratatui::text::Line;

use super::text::{num_or, safe, wrap};
use super::theme::Theme;
use crate::model::labels::tightest_owner;
use crate::model::{Owners, Tick, Tunables};
use crate::tui::app::Row;

/// The side panel: the limits that bound the queue, then at most `max_owners` owning processes.
pub(super) fn side_lines(
    row: &Row,
    tick: Option<&Tick>,
    max_owners: usize,
    theme: Theme,
) -> Vec<Line<'static>> {
    let mut lines = limit_lines(row, tick, theme);
    lines.push(Line::styled("Owners", theme.bold()));
    lines.extend(
        owner_entries(&row.owners, max_owners, theme)
            .into_iter()
            .map(|(text, style)| Line::styled(format!("  {text}"), style)),
    );
    lines
}

/// Backlog, the tunables and the tightest owner's fd limit.
fn limit_lines(row: &Row, tick: Option<&Tick>, theme: Theme) -> Vec<Line<'static>> {
    let max_depth = u64::from(row.backlog) + 1;
    let mut lines: Vec<Line> = vec![Line::styled("Limits", theme.bold())];
    let tun = tick
        .map(|t| t.snapshot.tunables.clone())
        .unwrap_or_default();
    lines.push(Line::raw(format!(
        "  backlog {} (queue holds {})",
        row.backlog, max_depth
    )));
    lines.push(Line::raw(format!(
        "  somaxconn {}  syncookies {}",
        num_or(tun.somaxconn, "?"),
        num_or(tun.tcp_syncookies, "?")
    )));
    lines.push(Line::raw(format!(
        "  tcp_max_syn_backlog {}  abort_on_overflow {}",
        num_or(tun.tcp_max_syn_backlog, "?"),
        num_or(tun.tcp_abort_on_overflow, "?")
    )));
    if let Some(p) = tightest_owner(&row.owners) {
        lines.push(Line::raw(format!(
            "  RLIMIT_NOFILE {} ({})",
            num_or(p.fd_limit, "unlimited"),
            safe(&p.comm)
        )));
    }
    lines
}

/// What is known of the owners, one entry per process (at most `max`) and how many more
/// there are, or why they are unknown; each with its style.
fn owner_entries(owners: &Owners, max: usize, theme: Theme) -> Vec<(String, Style)> {
    let processes = match owners {
        Owners::Known { processes } if !processes.is_empty() => processes,
        Owners::Known { .. } => return vec![("none".into(), Style::default())],
        Owners::Unknown { reason } => {
            return vec![(format!("unknown: {}", safe(reason)), theme.dim())];
        }
    };
    let mut entries: Vec<(String, Style)> = processes
        .iter()
        .take(max)
        .map(|p| {
            // With hundreds of owning processes, sockq re-reads the roomy ones in turn.
            let age = if p.age_ms >= 1000 {
                format!("  (read {} s ago)", p.age_ms / 1000)
            } else {
                String::new()
            };
            let text = format!(
                "{}[{}]  fds {} of {}{age}",
                safe(&p.comm),
                p.pid,
                num_or(p.fds_open, "?"),
                num_or(p.fd_limit, "unlimited")
            );
            (text, Style::default())
        })
        .collect();
    if processes.len() > max {
        entries.push((format!("… and {} more", processes.len() - max), theme.dim()));
    }
    entries
}

/// The side panel packed for a narrow screen at `width`: the limits as one wrapped paragraph,
/// then at most three owners under `Owners:`, each wrapped with a hanging indent.
pub(super) fn narrow_side_lines(
    row: &Row,
    tick: Option<&Tick>,
    width: usize,
    theme: Theme,
) -> Vec<Line<'static>> {
    const INDENT: &str = "        ";
    let tun = tick
        .map(|t| t.snapshot.tunables.clone())
        .unwrap_or_default();
    let mut lines: Vec<Line> = wrap(&limits_text(row, &tun), width)
        .into_iter()
        .map(Line::raw)
        .collect();
    for (i, (text, style)) in owner_entries(&row.owners, 3, theme).into_iter().enumerate() {
        let wrapped = wrap(&text, width.saturating_sub(INDENT.len()));
        for (j, l) in wrapped.into_iter().enumerate() {
            let lead = if i == 0 && j == 0 { "Owners: " } else { INDENT };
            lines.push(Line::styled(format!("{lead}{l}"), style));
        }
    }
    lines
}

/// The limits in one sentence: backlog, tunables, the tightest owner's fd limit.
fn limits_text(row: &Row, tun: &Tunables) -> String {
    let fd_limit = tightest_owner(&row.owners).map_or(String::new(), |p| {
        format!(
            " · RLIMIT_NOFILE {} ({})",
            num_or(p.fd_limit, "unlimited"),
            safe(&p.comm)
        )
    });
    format!(
        "Limits: backlog {} (queue holds {}) · somaxconn {} · syncookies {} · abort_on_overflow {} · tcp_max_syn_backlog {}{fd_limit}",
        row.backlog,
        u64::from(row.backlog) + 1,
        num_or(tun.somaxconn, "?"),
        num_or(tun.tcp_syncookies, "?"),
        num_or(tun.tcp_abort_on_overflow, "?"),
        num_or(tun.tcp_max_syn_backlog, "?"),
    )
}
