//! The namespaces view (`sockq --all-netns`): one row per network namespace — name, listener
//! count, worst fill, drops/s, ListenOverflows/s, somaxconn, findings — those in most trouble
//! first. Enter opens today's screens for the selected namespace.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::text::safe;
use super::theme::Theme;
use crate::engine::Engine;
use crate::model::fleet::{tick_trouble, Trouble};
use crate::model::{NetnsRef, Severity};

/// One row of the view, from a namespace's latest tick.
#[derive(Debug, Clone, PartialEq)]
pub struct NamespaceRow {
    /// Its inode (what Enter opens).
    pub inode: u64,
    /// Its label.
    pub label: String,
    /// Listeners now (None before the first tick).
    pub listeners: Option<usize>,
    /// How much trouble it is in.
    pub trouble: Trouble,
    /// net.core.somaxconn.
    pub somaxconn: Option<i64>,
    /// Active findings and the worst severity among them.
    pub findings: usize,
    /// The worst severity of its findings.
    pub worst: Option<Severity>,
    /// How many of the active findings have that worst severity.
    pub worst_count: usize,
    /// The host namespace.
    pub host: bool,
}

/// Width of the namespace's name: 24 leaves 12 columns of findings ("12 CRIT +3") at 80.
const LABEL_W: usize = 24;

/// The rows, those in most trouble first (then the host, then by inode).
pub fn namespace_rows<'a>(
    namespaces: impl Iterator<Item = (&'a NetnsRef, &'a Engine)>,
) -> Vec<NamespaceRow> {
    let mut rows: Vec<NamespaceRow> = namespaces
        .map(|(r, e)| {
            let tick = e.latest();
            let active = tick
                .map(|t| {
                    t.findings
                        .iter()
                        .filter(|f| f.is_active())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            let worst = active.iter().map(|f| f.severity).max();
            NamespaceRow {
                inode: r.inode,
                label: r.label(),
                listeners: tick.map(|t| t.listeners.iter().filter(|l| !l.gone).count()),
                trouble: tick.map(tick_trouble).unwrap_or_default(),
                somaxconn: tick.and_then(|t| t.snapshot.tunables.somaxconn),
                findings: active.len(),
                worst,
                worst_count: active.iter().filter(|f| Some(f.severity) == worst).count(),
                host: r.name.host,
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        Trouble::most_first(&a.trouble, &b.trouble)
            .then(b.host.cmp(&a.host))
            .then(a.inode.cmp(&b.inode))
    });
    rows
}

/// Draws the view: a title, the column header, the rows (the selected one marked), the keys.
pub fn draw_namespaces(
    f: &mut Frame,
    area: Rect,
    rows: &[NamespaceRow],
    selected: usize,
    theme: Theme,
) {
    let width = usize::from(area.width);
    let mut lines = vec![
        Line::styled(
            format!(
                "sockq — every network namespace ({}), most trouble first",
                rows.len()
            ),
            theme.bold(),
        ),
        Line::styled(
            fit(
                &format!(
                    "  {:<LABEL_W$} {:>6} {:>6} {:>8} {:>8} {:>7}  {}",
                    "NETNS", "LISTEN", "FILL", "DROP/s", "OVFL/s", "SOMAXC", "FINDINGS"
                ),
                width,
            ),
            theme.dim(),
        ),
    ];
    let room = usize::from(area.height).saturating_sub(3);
    let first = selected.saturating_sub(room.saturating_sub(1));
    for (i, r) in rows.iter().enumerate().skip(first).take(room) {
        let mark = if i == selected { "▶ " } else { "  " };
        let mut label: String = safe(&r.label).chars().take(LABEL_W).collect();
        if r.label.chars().count() > LABEL_W {
            label.pop();
            label.push('…');
        }
        let listeners = r.listeners.map_or("-".into(), |n| n.to_string());
        let fill = format!("{:.0}%", r.trouble.worst_fill * 100.0);
        // "2 CRIT +3": two critical findings and three less severe ones.
        let findings = match r.worst {
            Some(s) if r.findings > r.worst_count => {
                format!(
                    "{} {} +{}",
                    r.worst_count,
                    s.label(),
                    r.findings - r.worst_count
                )
            }
            Some(s) => format!("{} {}", r.worst_count, s.label()),
            None => "-".into(),
        };
        let somaxconn = r.somaxconn.map_or("?".into(), |v| v.to_string());
        let text = fit(
            &format!(
                "{mark}{label:<LABEL_W$} {listeners:>6} {fill:>6} {:>8.1} {:>8.1} {somaxconn:>7}  {findings}",
                r.trouble.drops, r.trouble.overflows
            ),
            width,
        );
        let style = match r.worst {
            Some(s @ (Severity::Critical | Severity::Warning)) => theme.sev(s),
            _ => ratatui::style::Style::default(),
        };
        let style = if i == selected {
            style.patch(theme.selected())
        } else {
            style
        };
        lines.push(Line::from(Span::styled(text, style)));
    }
    let body = Rect {
        height: area.height.saturating_sub(1),
        ..area
    };
    f.render_widget(Paragraph::new(lines), body);
    let footer = Rect {
        y: area.y + area.height.saturating_sub(1),
        height: area.height.min(1),
        ..area
    };
    f.render_widget(
        Paragraph::new(Line::styled(
            fit(
                "q quit  ↑↓ select  ⏎ open the namespace  (Esc goes back here)",
                width,
            ),
            theme.dim(),
        )),
        footer,
    );
}

/// At most `width` characters.
fn fit(s: &str, width: usize) -> String {
    s.chars().take(width).collect()
}
