//! The listener table: the columns that fit the width, its title (count, selection, sort,
//! filter), why it is empty, scrolling to the selection. What each cell shows is in `cells`.

use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Cell, Paragraph, Row as TRow, Table};
use ratatui::Frame;

use super::cells::{table_row, ADDRESS, COLUMNS, QUEUE, QUEUE_MAX, TREND};
use super::text::safe;
use super::theme::{section, Theme};
use crate::engine::Engine;
use crate::tui::app::{App, Listing};

/// The columns that fit `width`, as (index into COLUMNS, width), left to right: chosen by
/// priority at their least width; spare width widens the accept-queue gauge first, then the
/// trend (or the address when there is no trend).
fn table_columns(width: u16, endpoint_w: u16) -> Vec<(usize, u16)> {
    let col_w = |i: usize| {
        if i == ADDRESS {
            endpoint_w
        } else {
            COLUMNS[i].1
        }
    };
    let mut chosen: Vec<usize> = Vec::new();
    let last = COLUMNS.iter().map(|c| c.2).max().unwrap_or(0);
    for pr in 0..=last {
        for (i, &(_, _, priority)) in COLUMNS.iter().enumerate() {
            if priority == pr {
                let used: u16 = chosen.iter().map(|&j| col_w(j) + 1).sum();
                if used + col_w(i) <= width {
                    chosen.push(i);
                }
            }
        }
    }
    chosen.sort_unstable();
    let mut out: Vec<(usize, u16)> = chosen.iter().map(|&i| (i, col_w(i))).collect();
    let mut spare = width.saturating_sub(out.iter().map(|(_, w)| w + 1).sum());
    if let Some(c) = out.iter_mut().find(|(i, _)| *i == QUEUE) {
        let more = spare.min(QUEUE_MAX.saturating_sub(c.1));
        c.1 += more;
        spare -= more;
    }
    let target = out.iter().position(|(i, _)| *i == TREND).unwrap_or(0);
    if let Some(c) = out.get_mut(target) {
        c.1 += spare.min(if target == 0 { 20 } else { 36 });
    }
    out
}

/// Draws the listener table in `area`, scrolled so that the selected row shows; keeps the scroll
/// and the screen row of the first listener in `app` (for the keys and the mouse). `total`: how
/// many listeners there are before the filters.
pub(super) fn draw_listeners(
    f: &mut Frame,
    area: Rect,
    app: &mut App,
    engine: &Engine,
    listing: &Listing<'_>,
    theme: Theme,
) {
    let total = listing.total();
    let block = section(title(app, listing, service_note(engine)), theme.bold());
    let inner = block.inner(area);
    f.render_widget(block, area);
    if listing.is_empty() {
        let msg = empty_message(app, engine, total);
        f.render_widget(Paragraph::new(msg).style(theme.dim()), inner);
        return;
    }
    let endpoint_w =
        (listing.endpoint_chars()).clamp(12, if inner.width < 100 { 24 } else { 40 }) as u16;
    let cols = table_columns(inner.width, endpoint_w);
    let visible = usize::from(inner.height.saturating_sub(1));
    scroll_to_selection(app, listing, visible);
    app.table_top = inner.y + 1;
    let header = TRow::new(cols.iter().map(|(i, _)| Cell::from(COLUMNS[*i].0))).style(theme.dim());
    let selected_key = app.selected;
    // Rows are built for the listeners on screen only.
    let body = (app.scroll..listing.len().min(app.scroll + visible)).filter_map(|n| {
        let r = listing.row(n)?;
        // With nothing selected yet, the first listener is.
        let selected = selected_key == Some(r.key) || (selected_key.is_none() && n == 0);
        Some(table_row(&r, selected, &cols, engine, theme))
    });
    let widths: Vec<Constraint> = cols.iter().map(|(_, w)| Constraint::Length(*w)).collect();
    f.render_widget(
        Table::new(body, widths).header(header).column_spacing(1),
        inner,
    );
}

/// What the title says of the service columns when they are not of this sample: how old they
/// are (the dump was spaced out under the CPU budget), or that they are unknown (`–`).
fn service_note(engine: &Engine) -> String {
    let Some(t) = engine.latest() else {
        return String::new();
    };
    match &t.snapshot.service {
        Some(s) if s.age_ms >= 1000 => format!("  connections {} s old", s.age_ms / 1000),
        Some(_) => String::new(),
        None if t.snapshot.tcp_listeners.is_empty() => String::new(),
        None => "  – = connections unknown (Enter: why)".into(),
    }
}

/// The table's title: how many listeners (of how many, when filtered), the `--port`/`--process`
/// selection, the sort, the `/` filter, how old or unknown the service columns are, and the
/// `?` legend when an owner is unknown.
fn title(app: &App, listing: &Listing<'_>, service: String) -> String {
    let unknown = listing.owner_unknown();
    let (shown, total) = (listing.len(), listing.total());
    let count = if shown == total {
        total.to_string()
    } else {
        format!("{shown} of {total}")
    };
    let select = if app.select.is_empty() {
        String::new()
    } else {
        format!(" {}", safe(&app.select.describe()))
    };
    format!(
        " Listeners ({count}{}){select} sort: {}{}{service}{} ",
        if app.show_unix { " incl. UNIX" } else { "" },
        app.sort.label(),
        if app.filter.is_empty() {
            String::new()
        } else {
            format!("  filter: {}", safe(&app.filter))
        },
        if unknown {
            "  ? = owner unknown (Enter: why)"
        } else {
            ""
        }
    )
}

/// Why the table is empty: no sample yet, the `/` filter, the `--port`/`--process` selection
/// (`total` listeners left out), or no listener at all.
fn empty_message(app: &App, engine: &Engine, total: usize) -> String {
    let select = safe(&app.select.describe());
    if engine.latest().is_none() {
        "Waiting for the first sample…".into()
    } else if !app.filter.is_empty() {
        let and = if select.is_empty() {
            String::new()
        } else {
            format!(" and {select}")
        };
        format!("No listener matches the filter{and} (Esc clears the filter).")
    } else if !select.is_empty() {
        let others = match total {
            0 => "there are no listening sockets in this namespace".to_string(),
            1 => "1 other listener is not shown".to_string(),
            n => format!("{n} other listeners are not shown"),
        };
        format!("No listener matches {select}: {others}.")
    } else {
        "No listening sockets in this namespace.".into()
    }
}

/// Scrolls the least that brings the selected row into the `visible` rows.
fn scroll_to_selection(app: &mut App, listing: &Listing<'_>, visible: usize) {
    let sel = app.selected.and_then(|k| listing.position(k)).unwrap_or(0);
    if sel < app.scroll {
        app.scroll = sel;
    } else if visible > 0 && sel >= app.scroll + visible {
        app.scroll = sel + 1 - visible;
    }
    app.scroll = app.scroll.min(listing.len().saturating_sub(1));
}
