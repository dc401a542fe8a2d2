//! The listener table: columns that fit the width, accept-queue gauges, depth trends.

use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::Span;
use ratatui::widgets::{Cell, Paragraph, Row as TRow, Table};
use ratatui::Frame;

use super::text::{fit_endpoint, fit_process, rate_text, safe, spark_text, truncate};
use super::theme::{section, Theme};
use crate::engine::Engine;
use crate::model::history::ListenerPoint;
use crate::model::labels::{fds_label, tightest_owner};
use crate::model::{Owners, Severity};
use crate::rules::FD_NEAR;
use crate::tui::app::{App, Row};

/// The accept-queue gauge as text: a bar of `width` cells filled to depth/backlog, a `|` at the
/// peak, `!` when over the backlog.
pub fn gauge_text(depth: u32, peak: u32, backlog: u32, width: usize) -> String {
    if width == 0 {
        return String::new();
    }
    let cells = |v: u32| -> usize {
        let frac = f64::from(v) / f64::from(backlog.max(1));
        ((frac.min(1.0)) * width as f64).round() as usize
    };
    let filled = cells(depth).min(width);
    let mut bar: Vec<char> = (0..width)
        .map(|i| if i < filled { '█' } else { '░' })
        .collect();
    if peak > depth {
        let p = cells(peak).clamp(1, width) - 1;
        if p >= filled {
            bar[p] = '|';
        }
    }
    if depth > backlog || peak > backlog {
        bar[width - 1] = '!';
    }
    bar.into_iter().collect()
}

/// Index in [`COLUMNS`] of the process and FDS columns.
const PROCESS: usize = 1;
const FDS: usize = 6;

/// The table's columns, left to right: title, width and priority. Columns are kept by priority
/// (0 first) while they fit; the address's width is that of the longest address shown.
const COLUMNS: [(&str, u16, u8); 8] = [
    ("ADDRESS", 0, 0),
    ("PROCESS", 16, 2),
    ("ACCEPT QUEUE", 22, 0),
    ("FILL", 5, 3),
    ("SYN-RECV", 8, 4),
    ("DROPS/s", 7, 1),
    ("FDS", 11, 5),
    ("DEPTH TREND", 24, 6),
];

/// The columns that fit `width`, as (index into COLUMNS, width), left to right.
fn table_columns(width: u16, endpoint_w: u16) -> Vec<(usize, u16)> {
    let col_w = |i: usize| if i == 0 { endpoint_w } else { COLUMNS[i].1 };
    let mut chosen: Vec<usize> = Vec::new();
    for pr in 0..=6u8 {
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
    // Give spare width to the trend (or the address when there is no trend).
    let used: u16 = out.iter().map(|(_, w)| w + 1).sum();
    let spare = width.saturating_sub(used);
    let target = out.iter().position(|(i, _)| *i == 7).unwrap_or(0);
    if let Some(c) = out.get_mut(target) {
        c.1 += spare.min(if target == 0 { 20 } else { 36 });
    }
    out
}

/// The depth (highest seen in each tick) of `row` over its history; gaps as None.
fn depth_history(engine: &Engine, row: &Row) -> Vec<Option<f64>> {
    engine
        .listener(&row.key)
        .map(|h| {
            h.points
                .iter()
                .map(|p: &ListenerPoint| (!p.is_gap()).then_some(f64::from(p.high)))
                .collect()
        })
        .unwrap_or_default()
}

/// `fd OPEN/LIMIT` of the owner nearest its fd limit, when it is near (where the fd rule
/// speaks up).
fn near_fd_limit(owners: &Owners) -> Option<String> {
    let p = tightest_owner(owners)?;
    let (open, limit) = (p.fds_open?, p.fd_limit?);
    (limit > 0 && open as f64 >= FD_NEAR * limit as f64).then(|| format!("fd {open}/{limit}"))
}

/// The process cell: who holds the listener; `gone N s ago` once it went away; and, when the
/// FDS column does not fit, the fd numbers of an owner near its limit after a shortened name.
fn process_cell(row: &Row, w: usize, fds_shown: bool) -> String {
    if row.gone {
        let ago = row.gone_s.map_or(String::new(), |s| format!(" {s} s ago"));
        return truncate(&format!("gone{ago}"), w);
    }
    match near_fd_limit(&row.owners).filter(|_| !fds_shown) {
        Some(fds) => {
            let name_w = w.saturating_sub(fds.chars().count() + 1);
            if name_w < 3 {
                truncate(&fds, w)
            } else {
                format!("{} {fds}", truncate(&safe(row.process_name()), name_w))
            }
        }
        None => fit_process(&row.owners, w),
    }
}

/// The text of column `i` of `row`, fitted to `width`; `fds_shown` when the FDS column is on
/// screen.
fn cell_text(i: usize, row: &Row, width: u16, engine: &Engine, fds_shown: bool) -> String {
    let w = usize::from(width);
    match i {
        0 => fit_endpoint(&row.endpoint, w),
        PROCESS => process_cell(row, w, fds_shown),
        2 => {
            let nums = format!(" {}/{}", row.depth, row.backlog);
            let bar_w = w.saturating_sub(nums.chars().count()).max(1);
            truncate(
                &(gauge_text(row.depth, row.peak, row.backlog, bar_w) + &nums),
                w,
            )
        }
        3 => format!("{:.0}%", row.fill() * 100.0),
        4 => match row.syn_recv {
            None => "-".into(),
            Some((n, g)) if g > 1 => format!("{n}/{g}g"),
            Some((n, _)) => n.to_string(),
        },
        5 => {
            if row.unix {
                "-".into()
            } else {
                rate_text(row.drops_per_s)
            }
        }
        FDS => truncate(&fds_label(&row.owners), w),
        _ => {
            let hist = depth_history(engine, row);
            spark_text(&hist, w, f64::from(row.backlog + 1))
        }
    }
}

/// Draws the listener table in `area`, scrolled so that the selected row shows; keeps the scroll
/// and the screen row of the first listener in `app` (for the keys and the mouse). `total`: how
/// many listeners there are before the filters.
pub(super) fn draw_listeners(
    f: &mut Frame,
    area: Rect,
    app: &mut App,
    engine: &Engine,
    (rows, total): (&[Row], usize),
    theme: Theme,
) {
    let block = section(title(app, rows, total), theme.bold());
    let inner = block.inner(area);
    f.render_widget(block, area);
    if rows.is_empty() {
        let msg = empty_message(app, engine, total);
        f.render_widget(Paragraph::new(msg).style(theme.dim()), inner);
        return;
    }
    let endpoint_w = rows
        .iter()
        .map(|r| r.endpoint.chars().count())
        .max()
        .unwrap_or(7)
        .clamp(12, if inner.width < 100 { 24 } else { 40 }) as u16;
    let cols = table_columns(inner.width, endpoint_w);
    let visible = usize::from(inner.height.saturating_sub(1));
    scroll_to_selection(app, rows, visible);
    app.table_top = inner.y + 1;
    let header = TRow::new(cols.iter().map(|(i, _)| Cell::from(COLUMNS[*i].0))).style(theme.dim());
    let selected_key = app.selected;
    let body = rows
        .iter()
        .enumerate()
        .skip(app.scroll)
        .take(visible)
        .map(|(n, r)| {
            // With nothing selected yet, the first listener is.
            let selected = selected_key == Some(r.key) || (selected_key.is_none() && n == 0);
            table_row(r, selected, &cols, engine, theme)
        });
    let widths: Vec<Constraint> = cols.iter().map(|(_, w)| Constraint::Length(*w)).collect();
    f.render_widget(
        Table::new(body, widths).header(header).column_spacing(1),
        inner,
    );
}

/// The table's title: how many listeners (of how many, when filtered), the `--port`/`--process`
/// selection, the sort, the `/` filter, and the `?` legend when an owner is unknown.
fn title(app: &App, rows: &[Row], total: usize) -> String {
    let unknown = rows
        .iter()
        .any(|r| matches!(r.owners, Owners::Unknown { .. }) && !r.gone);
    let count = if rows.len() == total {
        total.to_string()
    } else {
        format!("{} of {total}", rows.len())
    };
    let select = if app.select.is_empty() {
        String::new()
    } else {
        format!(" {}", safe(&app.select.describe()))
    };
    format!(
        " Listeners ({count}{}){select} sort: {}{}{} ",
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
fn scroll_to_selection(app: &mut App, rows: &[Row], visible: usize) {
    let sel = app.selected_index(rows).unwrap_or(0);
    if sel < app.scroll {
        app.scroll = sel;
    } else if visible > 0 && sel >= app.scroll + visible {
        app.scroll = sel + 1 - visible;
    }
    app.scroll = app.scroll.min(rows.len().saturating_sub(1));
}

/// One listener's row: dimmed when it is gone, reversed when selected.
fn table_row(
    r: &Row,
    selected: bool,
    cols: &[(usize, u16)],
    engine: &Engine,
    theme: Theme,
) -> TRow<'static> {
    let fds_shown = cols.iter().any(|(i, _)| *i == FDS);
    let near_fds = !r.gone && near_fd_limit(&r.owners).is_some();
    let cells = cols.iter().map(|(i, w)| {
        let text = cell_text(*i, r, *w, engine, fds_shown);
        let style = match *i {
            // The gauge carries the peak's mark: coloured by it, so an overflow between two
            // polls shows red even when the queue is empty now.
            2 => theme.fill(r.peak_fill()),
            3 => theme.fill(r.fill()),
            5 if r.drops_per_s.is_some_and(|d| d > 0.0) => theme.sev(Severity::Critical),
            PROCESS if near_fds && !fds_shown => theme.sev(Severity::Warning),
            FDS if near_fds => theme.sev(Severity::Warning),
            _ => Style::default(),
        };
        Cell::from(Span::styled(text, style))
    });
    let mut style = if r.gone {
        theme.dim()
    } else {
        Style::default()
    };
    if selected {
        style = style.patch(theme.selected());
    }
    TRow::new(cells).style(style)
}
