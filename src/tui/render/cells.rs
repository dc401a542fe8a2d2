//! The listener table's cells: what each column shows for a listener (the accept-queue gauge,
//! the process — or `gone N s ago`, or the fds of an owner near its limit when the FDS column
//! does not fit —, the depth trend…), and one listener's row.

use ratatui::style::Style;
use ratatui::text::Span;
use ratatui::widgets::{Cell, Row as TRow};

use super::text::{
    fit_endpoint, fit_process, rate_text, safe, short_age, spark_text, truncate, UNKNOWN,
};
use super::theme::Theme;
use crate::engine::Engine;
use crate::model::history::ListenerPoint;
use crate::model::labels::{fds_label, tightest_owner};
use crate::model::{Owners, Severity, WaitFor};
use crate::rules::{ACCEPT_WAIT_MS, FD_NEAR, NOT_READING_MS};
use crate::tui::app::Row;

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

/// Indices in [`COLUMNS`].
pub(super) const ADDRESS: usize = 0;
pub(super) const PROCESS: usize = 1;
pub(super) const QUEUE: usize = 2;
const FILL: usize = 3;
const SYN_RECV: usize = 4;
const DROPS: usize = 5;
const IN_SERVICE: usize = 6;
const WAIT: usize = 7;
pub(super) const FDS: usize = 8;
pub(super) const TREND: usize = 9;

/// Widest the accept-queue gauge gets when there is room (its width in [`COLUMNS`] is the
/// least it takes).
pub(super) const QUEUE_MAX: u16 = 22;

/// The table's columns, left to right: title, width and priority. Columns are kept by priority
/// (0 first) while they fit; the address's width is that of the longest address shown.
/// What a listener's service side is worth at 80 columns: in service and the oldest wait come
/// before FILL (the gauge shows it) and SYN-RECV (the counter strip and the detail show it).
pub(super) const COLUMNS: [(&str, u16, u8); 10] = [
    ("ADDRESS", 0, 0),
    ("PROCESS", 16, 2),
    ("ACCEPT QUEUE", 16, 0),
    ("FILL", 5, 5),
    ("SYN-RECV", 8, 6),
    ("DROPS/s", 7, 1),
    ("IN SERVICE", 10, 3),
    ("OLDEST WAIT", 11, 4),
    ("FDS", 11, 7),
    ("DEPTH TREND", 24, 8),
];

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
        ADDRESS => fit_endpoint(&row.endpoint, w),
        PROCESS => process_cell(row, w, fds_shown),
        QUEUE => {
            let nums = format!(" {}/{}", row.depth, row.backlog);
            let bar_w = w.saturating_sub(nums.chars().count()).max(1);
            truncate(
                &(gauge_text(row.depth, row.peak, row.backlog, bar_w) + &nums),
                w,
            )
        }
        FILL => format!("{:.0}%", row.fill() * 100.0),
        SYN_RECV => match row.syn_recv {
            None => "-".into(),
            Some((n, g)) if g > 1 => format!("{n}/{g}g"),
            Some((n, _)) => n.to_string(),
        },
        DROPS => {
            if row.unix {
                "-".into()
            } else {
                rate_text(row.drops_per_s)
            }
        }
        IN_SERVICE => truncate(&in_service_cell(row), w),
        WAIT => truncate(&wait_cell(row).0, w),
        FDS => truncate(&fds_label(&row.owners), w),
        _ => {
            let hist = depth_history(engine, row);
            spark_text(&hist, w, f64::from(row.backlog + 1))
        }
    }
}

/// The IN SERVICE cell: accepted connections (`50`, `50/2g` for an SO_REUSEPORT group of 2,
/// whose numbers are the group's); `–` when unknown, `-` for a UNIX listener.
fn in_service_cell(row: &Row) -> String {
    match &row.service {
        _ if row.unix => "-".into(),
        None => UNKNOWN.into(),
        Some(s) if s.group > 1 => format!("{}/{}g", s.in_service, s.group),
        Some(s) => s.in_service.to_string(),
    }
}

/// The OLDEST WAIT cell: the longest a client waits now, for accept() (`1.2s accept`: the
/// head of the accept queue) or for the process to read its request (`3.4s unread`),
/// whichever is longer; `none` when nothing waits, `–` when unknown. True when it is as long
/// as the findings speak up at.
fn wait_cell(row: &Row) -> (String, bool) {
    let Some(s) = &row.service else {
        return (if row.unix { "-" } else { UNKNOWN }.into(), false);
    };
    match s.oldest_wait() {
        None => ("none".into(), false),
        Some((what, ms)) => {
            let long = match what {
                WaitFor::Accept => ms > ACCEPT_WAIT_MS,
                WaitFor::Read => ms >= NOT_READING_MS,
            };
            (format!("{} {}", short_age(ms), what.label()), long)
        }
    }
}

/// One listener's row: dimmed when it is gone, reversed when selected.
pub(super) fn table_row(
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
            QUEUE => theme.fill(r.peak_fill()),
            FILL => theme.fill(r.fill()),
            DROPS if r.drops_per_s.is_some_and(|d| d > 0.0) => theme.sev(Severity::Critical),
            WAIT if wait_cell(r).1 => theme.sev(Severity::Warning),
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
