//! The findings panel: what the rules found, and what sockq could not see.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

use super::theme::Theme;
use crate::engine::Engine;
use crate::model::{Finding, Severity};

fn finding_lines(findings: &[Finding], with_next: bool, theme: Theme) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    for fd in findings {
        lines.push(Line::from(vec![
            Span::styled(format!("{} ", fd.severity.label()), theme.sev(fd.severity)),
            Span::raw(fd.message.clone()),
        ]));
        if with_next {
            lines.push(Line::styled(format!("  → {}", fd.next), theme.dim()));
        }
    }
    lines
}

pub(super) fn draw_findings(f: &mut Frame, area: Rect, engine: &Engine, theme: Theme) {
    let Some(tick) = engine.latest() else {
        let block = Block::default()
            .borders(Borders::TOP)
            .title(Span::styled(" Findings ", theme.bold()));
        let inner = block.inner(area);
        f.render_widget(block, area);
        f.render_widget(
            Paragraph::new("Waiting for the first sample…").style(theme.dim()),
            inner,
        );
        return;
    };
    let findings = tick.findings.as_slice();
    let blind = &tick.snapshot.blind_spots;
    let title = match (findings.len(), blind.len()) {
        (0, 0) => " Findings: all quiet ".to_string(),
        (0, b) => format!(" Findings: none · {b} thing(s) not seen "),
        (n, 0) => format!(" Findings ({n}) "),
        (n, b) => format!(" Findings ({n}) · {b} thing(s) not seen "),
    };
    let block = Block::default()
        .borders(Borders::TOP)
        .title(Span::styled(title, theme.bold()));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let width = usize::from(inner.width.max(1));
    let wrapped = |s: &str| (s.chars().count() + 5).div_ceil(width).max(1);
    let with_next = usize::from(inner.height)
        >= findings
            .iter()
            .map(|f| wrapped(&f.message) + wrapped(&f.next))
            .sum::<usize>()
            + blind.iter().map(|b| wrapped(b)).sum::<usize>();
    let mut lines = if findings.is_empty() && blind.is_empty() {
        vec![Line::styled(
            "No queue is full, nothing is dropped, no limit is near.",
            theme.dim(),
        )]
    } else {
        finding_lines(findings, with_next, theme)
    };
    // What sockq could not see is said on screen, never shown as a silent zero.
    for b in blind {
        lines.push(Line::from(vec![
            Span::styled("NOT SEEN ", theme.sev(Severity::Info)),
            Span::raw(b.clone()),
        ]));
    }
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}
