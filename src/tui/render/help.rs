//! The help overlay and the key tables it shows.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use super::theme::Theme;

/// Every key, for the help overlay and the README.
pub const HELP: [(&str, &str); 15] = [
    ("↑ ↓ / j k", "select a listener (mouse click and wheel too)"),
    ("PgUp PgDn Home End", "move faster"),
    ("Enter", "detail of the selected listener"),
    ("Esc", "back / clear the filter"),
    ("p", "pipeline view: SYN queue → accept queue → process"),
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
    ("| in a gauge", "peak since the last tick (fast sampler)"),
    (
        "ListenDrops",
        "every listen drop incl. overflows (not SYN-queue overflow)",
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

/// The help overlay, centred over `area`; the lab's keys too when a lab runs.
pub(super) fn draw_help(f: &mut Frame, area: Rect, with_lab: bool, theme: Theme) {
    let w = area.width.min(84);
    let entries: Vec<(&str, &str)> = HELP
        .iter()
        .chain(if with_lab { LAB_HELP.iter() } else { [].iter() })
        .copied()
        .collect();
    let h = area.height.min(entries.len() as u16 + 2);
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    f.render_widget(Clear, r);
    let lines: Vec<Line> = entries
        .iter()
        .map(|(k, v)| {
            Line::from(vec![
                Span::styled(format!("{k:>18}  "), theme.bold()),
                Span::raw(*v),
            ])
        })
        .collect();
    f.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(" sockq keys — any key closes ", theme.bold())),
        ),
        r,
    );
}
