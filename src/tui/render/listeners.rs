//! The listener table: columns that fit the width, accept-queue gauges, depth trends.

use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::Span;
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row as TRow, Table};
use ratatui::Frame;

use super::text::{fit_endpoint, fit_process, rate_text, spark_text, truncate};
use super::theme::Theme;
use crate::engine::Engine;
use crate::model::history::ListenerPoint;
use crate::model::labels::fds_label;
use crate::model::{Owners, Severity};
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

struct Col {
    width: u16,
    priority: u8,
}

fn table_columns(width: u16, endpoint_w: u16) -> Vec<(usize, u16)> {
    let cols = [
        Col {
            width: endpoint_w,
            priority: 0,
        },
        Col {
            width: 16,
            priority: 2,
        },
        Col {
            width: 22,
            priority: 0,
        },
        Col {
            width: 5,
            priority: 3,
        },
        Col {
            width: 8,
            priority: 4,
        },
        Col {
            width: 7,
            priority: 1,
        },
        Col {
            width: 11,
            priority: 5,
        },
        Col {
            width: 24,
            priority: 6,
        },
    ];
    let mut chosen: Vec<usize> = Vec::new();
    for pr in 0..=6u8 {
        for (i, c) in cols.iter().enumerate() {
            if c.priority == pr {
                let used: u16 = chosen.iter().map(|&j| cols[j].width + 1).sum();
                if used + c.width <= width {
                    chosen.push(i);
                }
            }
        }
    }
    chosen.sort_unstable();
    let mut out: Vec<(usize, u16)> = chosen.iter().map(|&i| (i, cols[i].width)).collect();
    // Give spare width to the trend (or the address when there is no trend).
    let used: u16 = out.iter().map(|(_, w)| w + 1).sum();
    let spare = width.saturating_sub(used);
    let target = out.iter().position(|(i, _)| *i == 7).unwrap_or(0);
    if let Some(c) = out.get_mut(target) {
        c.1 += spare.min(if target == 0 { 20 } else { 36 });
    }
    out
}

const TITLES: [&str; 8] = [
    "ADDRESS",
    "PROCESS",
    "ACCEPT QUEUE",
    "FILL",
    "SYN-RECV",
    "DROPS/s",
    "FDS",
    "DEPTH TREND",
];

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

fn cell_text(i: usize, row: &Row, width: u16, engine: &Engine) -> String {
    let w = usize::from(width);
    match i {
        0 => fit_endpoint(&row.endpoint, w),
        1 => fit_process(&row.owners, w),
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
        6 => truncate(&fds_label(&row.owners), w),
        _ => {
            let hist = depth_history(engine, row);
            spark_text(&hist, w, f64::from(row.backlog + 1))
        }
    }
}

pub(super) fn draw_listeners(
    f: &mut Frame,
    area: Rect,
    app: &mut App,
    engine: &Engine,
    rows: &[Row],
    theme: Theme,
) {
    let unknown = rows
        .iter()
        .any(|r| matches!(r.owners, Owners::Unknown { .. }) && !r.gone);
    let title = format!(
        " Listeners ({}{}) sort: {}{}{} ",
        rows.len(),
        if app.show_unix { " incl. UNIX" } else { "" },
        app.sort.label(),
        if app.filter.is_empty() {
            String::new()
        } else {
            format!("  filter: {}", app.filter)
        },
        if unknown {
            "  ? = owner unknown (Enter: why)"
        } else {
            ""
        }
    );
    let block = Block::default()
        .borders(Borders::TOP)
        .title(Span::styled(title, theme.bold()));
    let inner = block.inner(area);
    f.render_widget(block, area);
    if rows.is_empty() {
        let msg = if engine.latest().is_none() {
            "Waiting for the first sample…"
        } else if app.filter.is_empty() {
            "No listening sockets in this namespace."
        } else {
            "No listener matches the filter (Esc clears it)."
        };
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
    let sel = app.selected_index(rows).unwrap_or(0);
    if sel < app.scroll {
        app.scroll = sel;
    } else if visible > 0 && sel >= app.scroll + visible {
        app.scroll = sel + 1 - visible;
    }
    app.scroll = app.scroll.min(rows.len().saturating_sub(1));
    app.table_top = inner.y + 1;
    let header = TRow::new(cols.iter().map(|(i, _)| Cell::from(TITLES[*i]))).style(theme.dim());
    let selected_key = app.selected;
    let body = rows
        .iter()
        .enumerate()
        .skip(app.scroll)
        .take(visible)
        .map(|(n, r)| {
            let cells = cols.iter().map(|(i, w)| {
                let text = cell_text(*i, r, *w, engine);
                let style = match i {
                    2 | 3 => theme.fill(r.fill()),
                    5 if r.drops_per_s.is_some_and(|d| d > 0.0) => theme.sev(Severity::Critical),
                    _ => Style::default(),
                };
                Cell::from(Span::styled(text, style))
            });
            let mut style = if r.gone {
                theme.dim()
            } else {
                Style::default()
            };
            if selected_key == Some(r.key) || (selected_key.is_none() && n == 0) {
                style = style.patch(theme.selected());
            }
            TRow::new(cells).style(style)
        });
    let widths: Vec<Constraint> = cols.iter().map(|(_, w)| Constraint::Length(*w)).collect();
    f.render_widget(
        Table::new(body, widths).header(header).column_spacing(1),
        inner,
    );
}
