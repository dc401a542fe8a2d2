//! Drawing the dashboard. Renders from the model (engine) and the dashboard state only.
//!
//! This module holds the entry point and the top-level layout of each screen; each part of a
//! screen is drawn by its own module.

mod counters;
mod detail;
mod findings;
mod footer;
mod header;
mod help;
mod lab;
mod listeners;
mod pipeline;
mod text;
mod theme;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

pub use counters::counter_hint;
pub use help::{HELP, LAB_HELP};
pub use listeners::gauge_text;
pub use text::spark_text;
pub use theme::Theme;

use crate::engine::Engine;
use crate::model::Tick;
use crate::tui::app::{App, Row, Screen};
use counters::draw_counters;
use detail::draw_detail;
use findings::{draw_findings, rows_needed};
use footer::footer;
use header::header_lines;
use help::draw_help;
use lab::with_lab_panel;
use listeners::draw_listeners;
use pipeline::draw_pipeline;

/// Draws the whole dashboard.
pub fn draw(f: &mut Frame, app: &mut App, engine: &Engine) {
    let area = f.area();
    let theme = Theme::new(app.color);
    if area.width < 40 || area.height < 10 {
        let msg = format!(
            "sockq: terminal too small ({}x{}); need 40x10. q quits.",
            area.width, area.height
        );
        f.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), area);
        return;
    }
    let (rows, total) = app.rows_and_total(engine);
    let tick = engine.latest();
    match app.screen {
        Screen::Main => draw_main(f, area, app, engine, (&rows, total), theme),
        Screen::Detail => {
            let body = chrome(f, area, app, tick, theme);
            match app.selected_row(&rows) {
                Some(row) => draw_detail(f, body, row, engine, theme),
                None => f.render_widget(
                    Paragraph::new("No listener selected (Esc goes back)."),
                    body,
                ),
            }
        }
        Screen::Pipeline => {
            let body = chrome(f, area, app, tick, theme);
            match (app.selected_row(&rows), tick) {
                (Some(row), Some(t)) => draw_pipeline(f, body, row, t, theme),
                _ => f.render_widget(Paragraph::new("No listener to show."), body),
            }
        }
    }
    if app.help {
        draw_help(f, area, app.lab.is_some(), theme);
    }
}

/// The main screen: header, counter strip, listener table, findings and footer, with the lab
/// panel beside or under them during a lab.
fn draw_main(
    f: &mut Frame,
    area: Rect,
    app: &mut App,
    engine: &Engine,
    (rows, total): (&[Row], usize),
    theme: Theme,
) {
    let area = with_lab_panel(f, area, app, false, theme);
    let tick = engine.latest();
    let counters_h = if area.height >= 40 { 4 } else { 3 };
    let findings_h = findings_height(tick, area, counters_h, rows.len());
    let [head, counters, table, findings, foot] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(counters_h),
        Constraint::Min(4),
        Constraint::Length(findings_h),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header_and_footer(f, head, foot, app, tick, theme);
    draw_counters(f, counters, engine, theme);
    draw_listeners(f, table, app, engine, (rows, total), theme);
    draw_findings(f, findings, engine, theme);
}

/// The findings get the lines they need (wrapped at the width), up to half of what is left after
/// the table shows its rows; the table gets the rest. Without room for the next steps, the
/// findings alone.
fn findings_height(tick: Option<&Tick>, area: Rect, counters_h: u16, table_rows: usize) -> u16 {
    let findings = tick.map(|t| t.findings.as_slice()).unwrap_or(&[]);
    let blind = tick
        .map(|t| t.snapshot.blind_spots.as_slice())
        .unwrap_or(&[]);
    let with_next = rows_needed(findings, blind, area.width, true);
    let bare = rows_needed(findings, blind, area.width, false);
    let free = usize::from(area.height).saturating_sub(2 + usize::from(counters_h) + 1);
    let table_need = table_rows + 2;
    let room = free.saturating_sub(table_need.min(free / 2)).max(free / 3);
    let need = if with_next <= room { with_next } else { bare };
    (need.max(1) + 1).min(room.max(2)) as u16
}

/// The two header lines in `head` and the key line in `foot`.
fn draw_header_and_footer(
    f: &mut Frame,
    head: Rect,
    foot: Rect,
    app: &App,
    tick: Option<&Tick>,
    theme: Theme,
) {
    f.render_widget(
        Paragraph::new(header_lines(app, tick, theme, head.width)),
        head,
    );
    f.render_widget(Paragraph::new(footer(app, theme)), foot);
}

/// Header, footer and (during a lab) the short narration strip of the detail and pipeline
/// screens; returns the body left for the screen itself.
fn chrome(f: &mut Frame, area: Rect, app: &App, tick: Option<&Tick>, theme: Theme) -> Rect {
    let [head, body, foot] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(6),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header_and_footer(f, head, foot, app, tick, theme);
    with_lab_panel(f, body, app, true, theme)
}
