//! Drawing the dashboard. Renders from the model (engine) and the dashboard state only.
//!
//! This module holds the entry point and the top-level layout of each screen; each part of a
//! screen is drawn by its own module. Every screen keeps the kernel counters and the findings on
//! screen, down to 80x24: the heights are computed here, never left to a layout solver that
//! could squeeze them out.

mod bounds;
mod cells;
mod counters;
mod detail;
mod findings;
mod footer;
mod header;
mod help;
mod lab;
mod listeners;
pub mod namespaces;
mod pipeline;
mod service;
mod text;
mod theme;

use ratatui::layout::Rect;
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

pub use cells::gauge_text;
pub use counters::counter_hint;
pub use help::{HELP, LAB_HELP};
pub use text::spark_text;
pub use theme::Theme;

use crate::engine::Engine;
use crate::model::Tick;
use crate::tui::app::{App, Listing, Screen};
use counters::{counters_line, draw_counters};
use detail::draw_detail;
use findings::{draw_findings, item_count, lines_used};
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
    // The order of every listener; rows are built only for those drawn.
    let listing = app.listing(engine);
    let body = match app.screen {
        Screen::Main => draw_main(f, area, app, engine, &listing, theme),
        Screen::Detail | Screen::Pipeline => draw_focused(f, area, app, engine, &listing, theme),
    };
    if app.help {
        draw_help(f, body, app, theme);
    }
}

/// `area` cut into consecutive rows of the given heights, top down (the last ones empty when
/// the heights add up to more than the area).
fn stack<const N: usize>(area: Rect, heights: [u16; N]) -> [Rect; N] {
    let mut y = area.y;
    let bottom = area.y + area.height;
    heights.map(|h| {
        let h = h.min(bottom - y);
        let r = Rect {
            y,
            height: h,
            ..area
        };
        y += h;
        r
    })
}

/// The main screen: header, counter strip, listener table, findings and footer, with the lab
/// panel beside or under them during a lab. Returns the table's area (where the help opens).
fn draw_main(
    f: &mut Frame,
    area: Rect,
    app: &mut App,
    engine: &Engine,
    listing: &Listing<'_>,
    theme: Theme,
) -> Rect {
    let area = with_lab_panel(f, area, app, false, theme);
    let tick = engine.latest();
    let (counters_h, table_h, findings_h) =
        main_heights(area, tick, listing.len(), app.help, theme);
    let [head, counters, table, findings, foot] =
        stack(area, [2, counters_h, table_h, findings_h, 1]);
    draw_header_and_footer(f, head, foot, app, tick, theme);
    draw_counters(f, counters, engine, theme);
    draw_listeners(f, table, app, engine, listing, theme);
    draw_findings(f, findings, tick, None, theme);
    table
}

/// Heights of the main screen's counter strip, table and findings in `area` (the header takes
/// two lines, the footer one). The table gets the rows it needs up to half of what is left;
/// the findings what they want of the rest, and always their title and two items (or one line
/// each while the help is open, which takes the table's place); the table the remainder.
fn main_heights(
    area: Rect,
    tick: Option<&Tick>,
    table_rows: usize,
    help: bool,
    theme: Theme,
) -> (u16, u16, u16) {
    let counters: u16 = if area.height >= 40 { 4 } else { 3 };
    let left = usize::from(area.height.saturating_sub(3 + counters));
    let table_need = table_rows.max(1) + 2;
    let findings_min = (1 + item_count(tick).min(2)).min(left);
    let room = left
        .saturating_sub(table_need.min(left / 2))
        .min(left.saturating_sub(3))
        .max(findings_min);
    // With the help open, the findings take a line each; otherwise what they use of the room.
    let inside = room.saturating_sub(1);
    let height = if help {
        item_count(tick).min(inside)
    } else {
        inside
    };
    let findings = (1 + lines_used(tick, area.width, height, theme)).min(room);
    let h = |n: usize| u16::try_from(n).unwrap_or(u16::MAX);
    (counters, h(left - findings), h(findings))
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

/// The detail and pipeline screens of the selected listener: header, the kernel counters on one
/// line, the screen itself (with the lab's narration strip during a lab), the findings — those
/// about the listener first — and the footer. Returns the screen's own area (where the help
/// opens).
fn draw_focused(
    f: &mut Frame,
    area: Rect,
    app: &mut App,
    engine: &Engine,
    listing: &Listing<'_>,
    theme: Theme,
) -> Rect {
    let tick = engine.latest();
    let most = if area.height >= 40 { 6 } else { 3 };
    let findings_h = 1 + u16::try_from(item_count(tick).min(most)).unwrap_or(1);
    let body_h = area.height.saturating_sub(4 + findings_h);
    let [head, counters, body, findings, foot] = stack(area, [2, 1, body_h, findings_h, 1]);
    draw_header_and_footer(f, head, foot, app, tick, theme);
    f.render_widget(
        Paragraph::new(counters_line(tick, counters.width, theme)),
        counters,
    );
    let row = app.selected_listing_row(listing);
    draw_findings(f, findings, tick, row.as_ref().map(|r| r.key), theme);
    let body = with_lab_panel(f, body, app, true, theme);
    match (app.screen, row.as_ref(), tick) {
        (Screen::Detail, Some(row), _) => draw_detail(f, body, row, engine, theme),
        (Screen::Pipeline, Some(row), Some(t)) => draw_pipeline(f, body, row, t, theme),
        (Screen::Detail, ..) => f.render_widget(
            Paragraph::new("No listener selected (Esc goes back)."),
            body,
        ),
        _ => f.render_widget(Paragraph::new("No listener to show."), body),
    }
    body
}
