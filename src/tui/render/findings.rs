//! The findings panel: what the rules found, and what sockq could not see.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use super::text::safe;
use super::theme::{section, Theme};
use crate::engine::Engine;
use crate::model::{Finding, Severity, Tick};

/// Draws the findings of the latest tick in `area`, each with its next step when all of them fit
/// with it, then the blind spots.
pub(super) fn draw_findings(f: &mut Frame, area: Rect, engine: &Engine, theme: Theme) {
    let tick = engine.latest();
    let block = section(title(tick), theme.bold());
    let inner = block.inner(area);
    f.render_widget(block, area);
    let Some(tick) = tick else {
        f.render_widget(
            Paragraph::new("Waiting for the first sample…").style(theme.dim()),
            inner,
        );
        return;
    };
    let findings = tick.findings.as_slice();
    let blind = &tick.snapshot.blind_spots;
    let with_next = usize::from(inner.height) >= rows_needed(findings, blind, inner.width, true);
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
            Span::raw(safe(b)),
        ]));
    }
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

/// Screen rows the findings and blind spots take wrapped at `width` (roughly: a few columns are
/// allowed for the label), with or without each finding's next step.
pub(super) fn rows_needed(
    findings: &[Finding],
    blind: &[String],
    width: u16,
    with_next: bool,
) -> usize {
    let width = usize::from(width.max(1));
    let wrapped = |s: &str| (s.chars().count() + 5).div_ceil(width).max(1);
    let findings: usize = findings
        .iter()
        .map(|f| wrapped(&f.message) + if with_next { wrapped(&f.next) } else { 0 })
        .sum();
    findings + blind.iter().map(|b| wrapped(b)).sum::<usize>()
}

/// The panel's title: how many findings and blind spots there are.
fn title(tick: Option<&Tick>) -> String {
    let Some(tick) = tick else {
        return " Findings ".to_string();
    };
    match (tick.findings.len(), tick.snapshot.blind_spots.len()) {
        (0, 0) => " Findings: all quiet ".to_string(),
        (0, b) => format!(" Findings: none · {b} thing(s) not seen "),
        (n, 0) => format!(" Findings ({n}) "),
        (n, b) => format!(" Findings ({n}) · {b} thing(s) not seen "),
    }
}

/// Each finding as its severity and message, and its next step under it when `with_next`.
fn finding_lines(findings: &[Finding], with_next: bool, theme: Theme) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    for fd in findings {
        lines.push(Line::from(vec![
            Span::styled(format!("{} ", fd.severity.label()), theme.sev(fd.severity)),
            Span::raw(safe(&fd.message)),
        ]));
        if with_next {
            lines.push(Line::styled(format!("  → {}", safe(&fd.next)), theme.dim()));
        }
    }
    lines
}
