//! The help overlay and the key tables it shows.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use super::theme::Theme;
use crate::tui::app::App;

/// Every key, for the help overlay and the README.
pub const HELP: [(&str, &str); 22] = [
    ("↑ ↓ / j k", "select a listener (mouse click and wheel too)"),
    ("PgUp PgDn Home End", "move faster"),
    ("Enter", "detail of the selected listener"),
    ("Esc", "back / clear the filter"),
    (
        "p",
        "pipeline: SYN queue → accept queue → in service → closing",
    ),
    ("s", "sort: fill (peak), drops, SYN-RECV, port, process"),
    ("/", "filter by address or process"),
    ("u", "show UNIX listeners"),
    ("space", "pause the view (collection goes on)"),
    ("+ / -", "longer / shorter interval"),
    ("?", "this help"),
    ("q, Ctrl-C", "quit"),
    (
        "Accept Q",
        "depth/backlog; full when depth > backlog (holds backlog+1)",
    ),
    ("FILL", "depth / backlog now; s sorts on the peak's fill"),
    ("| in a gauge", "peak since the last tick (fast sampler)"),
    (
        "IN SERVICE",
        "connections accepted and open; 12/2g: a REUSEPORT group's",
    ),
    (
        "OLDEST WAIT",
        "longest a client waits: for accept(), or unread request",
    ),
    ("–", "not known: Enter (detail) says why"),
    (
        "! in a gauge",
        "overflowed since the last tick (seen, or counter-proven)",
    ),
    (
        "ListenDrops",
        "every listen drop incl. overflows (not SYN-queue overflow)",
    ),
    (
        "gone N s ago",
        "the listener closed; its last numbers, dimmed",
    ),
    (
        "cleared N s ago",
        "a critical finding whose cause stopped, held 10 s",
    ),
];

/// Keys of the workshop lab (shown in the help when a lab runs).
pub const LAB_HELP: [(&str, &str); 10] = [
    ("n", "lab: next step of the scenario"),
    ("a / A", "lab: arrival rate down / up"),
    ("w / W", "lab: server workers down / up"),
    ("t / T", "lab: service time down / up"),
    ("b / B", "lab: backlog down / up (listen() again)"),
    ("m / M, l", "lab: somaxconn down / up; l: listen() again"),
    ("c", "lab: tcp_syncookies 0 → 1 → 2"),
    ("f / F", "lab: server fd limit down / up"),
    ("o", "lab: tcp_abort_on_overflow 0 ↔ 1"),
    ("x", "lab: SYN flood on / off"),
];

/// The help overlay, centred over `area` (the part of the screen between the counters and the
/// findings, so both stay visible); the lab's keys too when a lab runs. Scrolled by
/// `app.help_scroll` when taller than `area`, kept in range here.
pub(super) fn draw_help(f: &mut Frame, area: Rect, app: &mut App, theme: Theme) {
    let entries: Vec<(&str, &str)> = HELP
        .iter()
        .chain(if app.lab.is_some() {
            LAB_HELP.iter()
        } else {
            [].iter()
        })
        .copied()
        .collect();
    let w = area.width.min(84);
    let h = area
        .height
        .min(u16::try_from(entries.len() + 2).unwrap_or(u16::MAX));
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    let visible = usize::from(h.saturating_sub(2));
    app.help_page = visible.max(1);
    app.help_scroll = app.help_scroll.min(entries.len().saturating_sub(visible));
    let first = app.help_scroll;
    let title = if visible >= entries.len() {
        " sockq keys — any key closes ".to_string()
    } else {
        format!(
            " sockq keys {}–{} of {} · ↑↓ PgUp PgDn scroll · other keys close ",
            first + 1,
            (first + visible).min(entries.len()),
            entries.len()
        )
    };
    let lines: Vec<Line> = entries
        .iter()
        .skip(first)
        .take(visible)
        .map(|(k, v)| {
            Line::from(vec![
                Span::styled(format!("{k:>18}  "), theme.bold()),
                Span::raw(*v),
            ])
        })
        .collect();
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(title, theme.bold())),
        ),
        r,
    );
}
