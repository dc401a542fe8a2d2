//! The pipeline screen of one listener: SYN queue → accept queue → process, as three stages.

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Gauge, Paragraph, Wrap};
use ratatui::Frame;

use super::chrome;
use super::text::rate_text;
use super::theme::Theme;
use crate::engine::Engine;
use crate::model::labels::tightest_owner;
use crate::model::Severity;
use crate::tui::app::{App, Row};

/// One stage box of the pipeline view.
struct Stage<'a> {
    title: &'a str,
    value: u64,
    limit: u64,
    /// The number shown big (readable from the back of a room).
    big: String,
    /// A word under it (e.g. FULL).
    badge: Option<&'static str>,
    notes: Vec<Line<'static>>,
}

/// The largest font that fits `text` in `area`: (pixel size, rows it takes).
fn big_font(text: &str, area: Rect) -> Option<(tui_big_text::PixelSize, u16)> {
    use tui_big_text::PixelSize;
    let n = text.chars().count() as u16;
    [
        (PixelSize::Full, 8u16, 8u16),
        (PixelSize::HalfHeight, 8, 4),
        (PixelSize::Quadrant, 4, 4),
        (PixelSize::Octant, 4, 2),
    ]
    .into_iter()
    .find(|(_, w, h)| n * w <= area.width && *h + 4 <= area.height)
    .map(|(p, _, h)| (p, h))
}

fn stage(f: &mut Frame, area: Rect, st: Stage, theme: Theme) {
    let Stage {
        title,
        value,
        limit,
        big,
        badge,
        notes,
    } = st;
    let fill = if limit == 0 {
        0.0
    } else {
        value as f64 / limit as f64
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.fill(fill))
        .title(Span::styled(format!(" {title} "), theme.bold()))
        .title_alignment(Alignment::Center);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let font = big_font(&big, inner);
    let big_h = font.map_or(1, |(_, h)| h);
    let [number, badge_area, gauge, rest] = Layout::vertical([
        Constraint::Length(big_h),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(inner);
    match font {
        Some((size, _)) => f.render_widget(
            tui_big_text::BigText::builder()
                .pixel_size(size)
                .style(theme.fill(fill).add_modifier(Modifier::BOLD))
                .lines(vec![Line::raw(big.clone())])
                .centered()
                .build(),
            number,
        ),
        None => f.render_widget(
            Paragraph::new(Span::styled(big, theme.bold())).alignment(Alignment::Center),
            number,
        ),
    }
    if let Some(b) = badge {
        f.render_widget(
            Paragraph::new(Span::styled(b, theme.sev(Severity::Critical)))
                .alignment(Alignment::Center),
            badge_area,
        );
    }
    let ratio = if limit == 0 { 0.0 } else { fill.min(1.0) };
    f.render_widget(
        Gauge::default()
            .ratio(ratio)
            .label(format!("{:.0}%", fill * 100.0))
            .gauge_style(theme.fill(fill)),
        gauge,
    );
    f.render_widget(
        Paragraph::new(notes)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true }),
        rest,
    );
}

pub(super) fn draw_pipeline(
    f: &mut Frame,
    area: Rect,
    app: &mut App,
    engine: &Engine,
    rows: &[Row],
    theme: Theme,
) {
    let tick = engine.latest();
    let body = chrome(f, area, app, tick, theme);
    let (Some(row), Some(t)) = (app.selected_row(rows), tick) else {
        f.render_widget(Paragraph::new("No listener to show."), body);
        return;
    };
    let tun = &t.snapshot.tunables;
    let rate = |n: &str| t.counter_rates.get(n).copied().flatten();
    let flowing = row.depth > 0 || row.syn_recv.is_some_and(|s| s.0 > 0);
    // The arrows move one step per tick while anything is queued.
    let phase = if flowing { (t.seq % 3) as usize } else { 0 };
    let arrow = |label: &str| -> Vec<Line<'static>> {
        let dots: String = (0..3)
            .map(|i| if i == phase && flowing { '●' } else { '─' })
            .collect();
        vec![
            Line::styled(label.to_string(), theme.dim()).alignment(Alignment::Center),
            Line::styled(format!("{dots}▶"), theme.bold()).alignment(Alignment::Center),
        ]
    };
    let title = Line::from(vec![
        Span::styled(format!("{}  ", row.endpoint), theme.bold()),
        Span::styled(
            "SYN → SYN queue → final ACK → accept queue → accept() → process",
            theme.dim(),
        ),
    ]);
    let [title_area, body] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(3)]).areas(body);
    f.render_widget(
        Paragraph::new(title).alignment(Alignment::Center),
        title_area,
    );
    let vertical = body.width < 100;
    let (areas, arrows): (Vec<Rect>, Vec<Rect>) = if vertical {
        let parts = Layout::vertical([Constraint::Fill(1); 3]).split(body);
        (parts.to_vec(), vec![])
    } else {
        // Boxes no taller than their content needs, centred vertically.
        let h = body.height.min(22);
        let body = Rect {
            y: body.y + (body.height - h) / 2,
            height: h,
            ..body
        };
        let parts = Layout::horizontal([
            Constraint::Length(9),
            Constraint::Fill(1),
            Constraint::Length(10),
            Constraint::Fill(1),
            Constraint::Length(11),
            Constraint::Fill(1),
        ])
        .split(body);
        (
            vec![parts[1], parts[3], parts[5]],
            vec![parts[0], parts[2], parts[4]],
        )
    };
    for (a, label) in arrows.iter().zip(["SYN", "ACK", "accept()"]) {
        let mid = Rect {
            y: a.y + a.height / 2,
            height: 2.min(a.height),
            ..*a
        };
        f.render_widget(Paragraph::new(arrow(label)), mid);
    }
    let syn = row.syn_recv.map_or(0, |s| s.0);
    let syn_limit = u64::from(row.backlog) + 1;
    let cookies = match tun.tcp_syncookies {
        Some(0) => "syncookies 0: a full SYN queue drops SYNs",
        Some(2) => "syncookies 2: no request is kept",
        Some(_) => "syncookies 1: cookies when full",
        None => "syncookies ?",
    };
    stage(
        f,
        areas[0],
        Stage {
            title: "SYN queue",
            value: syn,
            limit: syn_limit,
            big: format!("{syn}/{syn_limit}"),
            badge: (syn >= syn_limit).then_some("FULL"),
            notes: vec![
                Line::raw("half-open requests (SYN-RECV)".to_string()),
                Line::raw(format!("holds backlog+1 = {syn_limit}")),
                Line::raw(cookies.to_string()),
                Line::raw(format!(
                    "dropped {}/s · cookies {}/s",
                    rate_text(rate("TCPReqQFullDrop")),
                    rate_text(rate("SyncookiesSent"))
                )),
            ],
        },
        theme,
    );
    let full = row.peak > row.backlog || row.depth > row.backlog;
    stage(
        f,
        areas[1],
        Stage {
            title: "Accept queue",
            value: u64::from(row.peak.max(row.depth)),
            limit: u64::from(row.backlog),
            big: format!("{}/{}", row.depth, row.backlog),
            badge: full.then_some("FULL: new connections dropped"),
            notes: vec![
                Line::raw("established, waiting for accept()".to_string()),
                Line::raw(format!(
                    "backlog = min(listen(), somaxconn {}) = {}",
                    tun.somaxconn.map_or("?".into(), |v| v.to_string()),
                    row.backlog
                )),
                Line::raw(format!("peak since last tick {}", row.peak)),
                Line::raw(format!(
                    "listener drops {}/s (packets, any queue) · abort_on_overflow {}",
                    rate_text(row.drops_per_s),
                    tun.tcp_abort_on_overflow
                        .map_or("?".into(), |v| v.to_string())
                )),
            ],
        },
        theme,
    );
    let owner = tightest_owner(&row.owners);
    let (open, limit) = owner.map_or((0, 0), |p| {
        (p.fds_open.unwrap_or(0), p.fd_limit.unwrap_or(0))
    });
    stage(
        f,
        areas[2],
        Stage {
            title: "Process",
            value: open,
            limit,
            big: if owner.is_some() {
                format!("{open}/{limit}")
            } else {
                "?".into()
            },
            badge: (limit > 0 && open >= limit).then_some("EMFILE: out of fds"),
            notes: vec![
                Line::raw(owner.map_or("owner unknown".to_string(), |p| {
                    format!("{}[{}]: open fds / RLIMIT_NOFILE", p.comm, p.pid)
                })),
                Line::raw(format!(
                    "processes holding the socket: {}",
                    row.owners.processes().len()
                )),
                Line::raw(if limit > 0 && open * 10 >= limit * 9 {
                    "near the limit: accept() fails with EMFILE, the queue fills".to_string()
                } else {
                    "fds well below the limit".to_string()
                }),
            ],
        },
        theme,
    );
}
