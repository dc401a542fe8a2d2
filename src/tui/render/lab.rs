//! The workshop lab's narration panel: beside or under the main screen, a strip on the others.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

use super::text::{num_or, safe};
use super::theme::Theme;
use crate::model::lab::{ClientView, Knobs, LabStatus, Scenario};
use crate::model::Severity;
use crate::tui::app::App;

/// The narration panel's lines: the step (and whether the SYN flood runs), what is happening,
/// what clients feel, the knobs, what to try, and the `ss` command to run beside sockq.
/// `compact` keeps the step, the first sentence and the clients (for the pipeline and detail
/// screens, which a room watches).
fn lab_lines(lab: &LabStatus, compact: bool, theme: Theme) -> Vec<Line<'static>> {
    let mut title = vec![
        Span::styled(
            format!(
                "Lab {} · step {}/{}: ",
                lab.scenario.name(),
                lab.step + 1,
                lab.steps
            ),
            theme.bold(),
        ),
        Span::raw(safe(&lab.title)),
    ];
    if lab.scenario == Scenario::SynFlood {
        title.push(flood_span(lab, theme));
    }
    let mut lines = vec![Line::from(title)];
    let narration = if compact {
        &lab.narration[..lab.narration.len().min(1)]
    } else {
        &lab.narration[..]
    };
    lines.extend(narration.iter().map(|n| Line::raw(safe(n))));
    lines.push(clients_line(&lab.clients, theme));
    if !lab.last_round.is_empty() {
        lines.push(Line::raw(format!(
            "Last round: {}",
            safe(&lab.last_round.join(", "))
        )));
    }
    if let Some(p) = &lab.problem {
        lines.push(Line::from(vec![
            Span::styled("Could not: ", theme.sev(Severity::Warning)),
            Span::raw(safe(p)),
        ]));
    }
    if compact {
        return lines;
    }
    lines.push(knobs_line(&lab.knobs, lab.scenario, theme));
    lines.push(Line::styled(
        format!("Try: {}", lab.try_next),
        theme.sev(Severity::Info),
    ));
    if !lab.ss_command.is_empty() {
        lines.push(Line::from(vec![
            Span::styled("Beside sockq: ", theme.bold()),
            Span::raw(safe(&lab.ss_command)),
        ]));
    }
    lines
}

/// Whether the spoofed SYNs are being sent now, and the key that changes it.
fn flood_span(lab: &LabStatus, theme: Theme) -> Span<'static> {
    if lab.flooding {
        Span::styled(
            format!(
                " · SYN flood ON, {:.0} spoofed SYNs/s (x stops it)",
                lab.knobs.flood_rate
            ),
            theme.sev(Severity::Warning),
        )
    } else {
        Span::styled(" · SYN flood off (x starts it)", theme.dim())
    }
}

/// What the lab's clients felt: outcomes and connect times.
fn clients_line(c: &ClientView, theme: Theme) -> Line<'static> {
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
    Line::from(vec![
        Span::styled("Clients ", theme.bold()),
        Span::raw(format!(
            "{} tried · {} ok · {} timed out · {} reset · connect p50 {} ms, p99 {} ms (of those that connected)",
            c.attempted,
            c.succeeded,
            c.timed_out,
            c.reset,
            ms(c.connect_ms_p50),
            ms(c.connect_ms_p99)
        )),
    ])
}

/// The knobs as they are now. The scenarios after accept() name the service time for what it
/// is there (the handler's blocking time, the response time) and add the answer size.
fn knobs_line(k: &Knobs, scenario: Scenario, theme: Theme) -> Line<'static> {
    let service = match scenario {
        Scenario::BlockedLoop => "handler blocks",
        Scenario::SlowResponse => "response",
        _ => "service",
    };
    let answer = if k.response_kib > 0 {
        format!("  answer {} KiB", k.response_kib)
    } else {
        String::new()
    };
    Line::from(vec![
        Span::styled("Knobs ", theme.bold()),
        Span::raw(format!(
            "rate {:.0}/s  workers {}  {service} {} ms  backlog {}  somaxconn {}  syncookies {}  fd limit {}  abort {}{answer}",
            k.rate,
            k.workers,
            k.service_ms,
            k.backlog,
            k.somaxconn,
            k.syncookies,
            num_or(k.fd_limit, "-"),
            k.abort_on_overflow
        )),
    ])
}

/// Height the lab lines need at `width` (wrapped), borders included.
fn lab_height(lines: &[Line], width: u16) -> u16 {
    let w = usize::from(width.saturating_sub(2).max(1));
    let rows: usize = lines.iter().map(|l| l.width().div_ceil(w).max(1)).sum();
    u16::try_from(rows + 2).unwrap_or(u16::MAX)
}

/// The lab lines in a box, wrapped.
fn draw_lab(f: &mut Frame, area: Rect, lines: Vec<Line<'static>>, theme: Theme) {
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.sev(Severity::Info));
    f.render_widget(
        Paragraph::new(lines).block(block).wrap(Wrap { trim: true }),
        area,
    );
}

/// Splits off the lab panel (right on wide screens, bottom otherwise); returns the rest.
pub(super) fn with_lab_panel(
    f: &mut Frame,
    area: Rect,
    app: &App,
    compact: bool,
    theme: Theme,
) -> Rect {
    let Some(lab) = app.lab.as_ref() else {
        return area;
    };
    let lines = lab_lines(lab, compact, theme);
    if area.width >= 150 && !compact {
        let [main, panel] =
            Layout::horizontal([Constraint::Min(90), Constraint::Length(56)]).areas(area);
        draw_lab(f, panel, lines, theme);
        return main;
    }
    let h = lab_height(&lines, area.width).min(area.height / 2);
    let [main, panel] = Layout::vertical([Constraint::Min(6), Constraint::Length(h)]).areas(area);
    draw_lab(f, panel, lines, theme);
    main
}
